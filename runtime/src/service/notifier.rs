//! Delivers alert notifications to Alertmanager (v2 API) and plain webhooks, each receiver
//! on its own queue with retries and exponential backoff, so a slow or failing receiver
//! never blocks evaluation or the other receivers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::alerts::{Notification, State};
use super::metrics::{Metrics, NotifyLabels};

/// Notifications waiting per receiver; beyond this new ones are dropped and counted rather
/// than letting memory grow while a receiver is down.
const QUEUE: usize = 10_000;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Alertmanager,
    Webhook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Alertmanager => "alertmanager",
            Kind::Webhook => "webhook",
        }
    }
}

/// Where notifications go, and how hard to try.
#[derive(Debug, Clone)]
pub(crate) struct NotifierConfig {
    pub alertmanager: Vec<String>,
    pub webhook: Vec<String>,
    pub retries: u32,
    pub backoff: Duration,
    /// Base URL of this service, for `generatorURL`.
    pub external_url: String,
}

struct Receiver {
    kind: Kind,
    tx: mpsc::Sender<Notification>,
}

pub(crate) struct Notifier {
    receivers: Vec<Receiver>,
    tasks: JoinSet<()>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("receivers", &self.receivers.len())
            .finish()
    }
}

fn rfc3339(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Label names must match `[a-zA-Z_][a-zA-Z0-9_]*` in Alertmanager.
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The alert as Alertmanager's v2 API (`postableAlert`) wants it; webhooks get the same
/// object plus `status` (`firing` or `resolved`).
pub(crate) fn alert_object(n: &Notification, external_url: &str) -> Json {
    let a = &n.alert;
    let mut labels = Map::new();
    labels.insert("alertname".into(), Json::String(a.check.clone()));
    labels.insert("check".into(), Json::String(a.check.clone()));
    labels.insert("severity".into(), Json::String(a.severity.clone()));
    for (k, v) in &n.labels {
        labels.insert(label_name(k), Json::String(v.clone()));
    }
    if let Json::Object(slice) = &a.slice {
        for (k, v) in slice {
            let mut name = label_name(k);
            if labels.contains_key(&name) {
                name = format!("slice_{name}");
            }
            let value = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            labels.insert(name, Json::String(value));
        }
    }
    if let Some(column) = &a.column {
        labels.insert("column".into(), Json::String(column.clone()));
    }
    let mut annotations = Map::new();
    annotations.insert("summary".into(), Json::String(a.message.clone()));
    if let Some(d) = &n.description {
        annotations.insert("description".into(), Json::String(d.clone()));
    }
    if let Some(v) = &n.rules_version {
        annotations.insert("rules_version".into(), Json::String(v.clone()));
    }
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(a.active_since_us),
        "endsAt": rfc3339(n.ends_at_us),
        "generatorURL": format!("{external_url}/?check={}", a.check),
    })
}

impl Notifier {
    pub fn start(config: NotifierConfig, metrics: Arc<Metrics>) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let mut tasks = JoinSet::new();
        let mut receivers = Vec::new();
        let targets = config
            .alertmanager
            .iter()
            .map(|u| {
                (
                    Kind::Alertmanager,
                    format!("{}/api/v2/alerts", u.trim_end_matches('/')),
                )
            })
            .chain(config.webhook.iter().map(|u| (Kind::Webhook, u.clone())));
        for (kind, url) in targets {
            let (tx, rx) = mpsc::channel(QUEUE);
            receivers.push(Receiver { kind, tx });
            tasks.spawn(deliver_loop(
                kind,
                url,
                rx,
                client.clone(),
                config.clone(),
                metrics.clone(),
            ));
        }
        Notifier {
            receivers,
            tasks,
            metrics,
        }
    }

    /// Queues a notification for every receiver; never waits.
    pub fn send(&self, n: &Notification) {
        for r in &self.receivers {
            if n.repeat && r.kind == Kind::Webhook {
                continue;
            }
            if r.tx.try_send(n.clone()).is_err() {
                self.metrics
                    .notifications
                    .get_or_create(&NotifyLabels {
                        receiver: r.kind.name().into(),
                        outcome: "dropped".into(),
                    })
                    .inc();
                tracing::warn!(
                    receiver = r.kind.name(),
                    "alert queue full; notification dropped"
                );
            }
        }
    }

    /// Closes the queues and waits (up to `timeout`) for queued notifications to go out.
    pub async fn shutdown(mut self, timeout: Duration) {
        self.receivers.clear();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, drain).await.is_err() {
            tracing::warn!("alert deliveries still pending at shutdown were abandoned");
        }
    }
}

async fn deliver_loop(
    kind: Kind,
    url: String,
    mut rx: mpsc::Receiver<Notification>,
    client: reqwest::Client,
    config: NotifierConfig,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = rx.recv().await {
        // Whatever else is already queued goes in the same request.
        let mut batch = vec![first];
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(n) => batch.push(n),
                Err(_) => break,
            }
        }
        let alerts: Vec<Json> = batch
            .iter()
            .map(|n| {
                let mut o = alert_object(n, &config.external_url);
                // Alertmanager's postableAlert has no status (endsAt says it); webhooks do.
                if let (Kind::Webhook, Json::Object(map)) = (kind, &mut o) {
                    let status = if n.alert.state == State::Resolved {
                        "resolved"
                    } else {
                        "firing"
                    };
                    map.insert("status".into(), Json::String(status.into()));
                }
                o
            })
            .collect();
        let body = match kind {
            Kind::Alertmanager => Json::Array(alerts),
            Kind::Webhook => {
                let any_firing = batch.iter().any(|n| n.alert.state != State::Resolved);
                json!({
                    "version": "1",
                    "receiver": "mlc",
                    "status": if any_firing { "firing" } else { "resolved" },
                    "alerts": alerts,
                })
            }
        };
        let outcome = post_with_retries(&client, &url, &body, config.retries, config.backoff).await;
        let label = match &outcome {
            Ok(()) => "sent",
            Err(_) => "failed",
        };
        if let Err(e) = outcome {
            tracing::error!(receiver = kind.name(), %url, error = %e, "alert delivery failed after retries");
        }
        metrics
            .notifications
            .get_or_create(&NotifyLabels {
                receiver: kind.name().into(),
                outcome: label.into(),
            })
            .inc_by(batch.len() as u64);
    }
}

async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    body: &Json,
    retries: u32,
    backoff: Duration,
) -> Result<(), String> {
    let mut delay = backoff;
    let mut attempt = 0u32;
    loop {
        let error = match client.post(url).json(body).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                // A 4xx other than 429 means the payload is refused; sending it again will not help.
                if status.is_client_error() && status.as_u16() != 429 {
                    return Err(format!("receiver refused the alert with HTTP {status}"));
                }
                format!("HTTP {status}")
            }
            Err(e) => e.to_string(),
        };
        if attempt >= retries {
            return Err(format!("{error} (after {} attempts)", attempt + 1));
        }
        attempt += 1;
        tracing::warn!(%url, %error, attempt, "alert delivery failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::super::alerts::Alert;
    use super::*;

    #[test]
    fn alertmanager_object_carries_labels_and_annotations() {
        let n = Notification {
            alert: Alert {
                check: "recall_slo".into(),
                slice: json!({"country": "DE", "severity": "x"}),
                column: None,
                state: State::Firing,
                active_since_us: 0,
                resolved_us: None,
                message: "recall = 0.8".into(),
                severity: "critical".into(),
                last_eval_us: 0,
            },
            repeat: false,
            labels: vec![("team".into(), "risk".into())],
            description: Some("Monthly recall".into()),
            rules_version: Some("sha256:ab".into()),
            ends_at_us: 60_000_000,
        };
        let o = alert_object(&n, "http://127.0.0.1:9400");
        assert_eq!(o["labels"]["alertname"], "recall_slo");
        assert_eq!(o["labels"]["country"], "DE");
        assert_eq!(o["labels"]["slice_severity"], "x");
        assert_eq!(o["labels"]["severity"], "critical");
        assert_eq!(o["labels"]["team"], "risk");
        assert_eq!(o["annotations"]["summary"], "recall = 0.8");
        assert_eq!(o["annotations"]["description"], "Monthly recall");
        assert_eq!(o["startsAt"], "1970-01-01T00:00:00Z");
        assert_eq!(o["endsAt"], "1970-01-01T00:01:00Z");
    }
}
