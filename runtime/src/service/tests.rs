//! Tests of the service's mechanics on a real listener with the scripted backend: auth,
//! ingest errors, scheduling and skipped overlaps, reload (watch and HTTP), alerts to a real
//! local receiver with retries. End-to-end tests over the real store and executor live in
//! the workspace's `tests/service_*.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value as Json;
use tokio::sync::oneshot;

use super::testkit::FakeBackend;
use super::*;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), ServiceError>>,
    client: reqwest::Client,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    async fn get_json(&self, path: &str) -> Json {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }
}

fn layer(dir: &Path) -> ConfigLayer {
    ConfigLayer {
        checks: Some(vec![dir.to_path_buf()]),
        listen: Some("127.0.0.1:0".into()),
        debounce_ms: Some(200),
        notify_backoff_ms: Some(100),
        ..Default::default()
    }
}

async fn start(layer: ConfigLayer, backend: Arc<FakeBackend>) -> Running {
    let config = ServiceConfig::resolve(layer, None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(serve_on(listener, config, backend, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "service did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        addr,
        stop: Some(tx),
        done,
        client,
    }
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, secs: u64, mut f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local alert receiver: records every POSTed body; answers 500 to the first
/// `fail_first` requests.
struct Receiver {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Json>>>,
    hits: Arc<AtomicUsize>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (bodies.clone(), hits.clone());
    let handler = post(move |axum::Json(body): axum::Json<Json>| {
        let (b, h) = (b.clone(), h.clone());
        async move {
            if h.fetch_add(1, Ordering::SeqCst) < fail_first {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            b.lock().unwrap().push(body);
            StatusCode::OK
        }
    });
    let app = Router::new()
        .route("/api/v2/alerts", handler.clone())
        .route("/hook", handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { addr, bodies, hits }
}

fn alerts_with_status(r: &Receiver, status: &str) -> Vec<Json> {
    r.bodies
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        // Alertmanager payloads say "resolved" by an endsAt that is not in the future.
        .filter(|a| {
            let ends: jiff::Timestamp = a["endsAt"].as_str().unwrap().parse().unwrap();
            (status == "resolved") == (ends <= jiff::Timestamp::now())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_except_for_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.token = Some("s3cret".into());
    let svc = start(l, Arc::new(FakeBackend::default())).await;
    for path in ["/v1/checks", "/v1/results", "/", "/v1/openapi.json"] {
        let r = svc.client.get(svc.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: Json = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("Bearer"));
        let r = svc
            .client
            .get(svc.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = svc
            .client
            .get(svc.url(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = svc
        .client
        .post(svc.url("/v1/ingest/inference"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for path in ["/healthz", "/metrics"] {
        assert_eq!(
            svc.client.get(svc.url(path)).send().await.unwrap().status(),
            200
        );
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reports_quarantine_and_refuses_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.max_body_bytes = Some(1000);
    let backend = Arc::new(FakeBackend::default());
    let svc = start(l, backend.clone()).await;
    let url = svc.url("/v1/ingest/inference");
    let r = svc
        .client
        .post(&url)
        .body("{\"ts\": 1}\n{\"x\": 2}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["quarantined"], 1);
    assert_eq!(body["reasons"][0], "request line 2: missing time `ts`");

    let r = svc
        .client
        .post(&url)
        .body("{\"ts\": 1}\n{oops\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("line 2: malformed JSON"),
        "{body}"
    );

    let big = format!("[{}]", vec!["{\"ts\": 1}"; 200].join(","));
    let r = svc.client.post(&url).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("1000 bytes"),
        "{body}"
    );

    let r = svc
        .client
        .post(svc.url("/v1/ingest/nope"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("inference"),
        "{body}"
    );

    let m = svc.metrics().await;
    assert!(
        m.contains("mlc_ingested_records_total{component=\"inference\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mlc_quarantined_records_total{component=\"inference\"} 1"),
        "{m}"
    );
    assert_eq!(backend.ingested.lock().unwrap().len(), 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_alerts_honour_for_fire_resolve_and_survive_retries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 1 for 2\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5), ("US", "pass", 0.95)]);
    let am = receiver(2).await;
    let mut l = layer(dir.path());
    l.alertmanager = Some(vec![format!("http://{}", am.addr)]);
    let svc = start(l, backend.clone()).await;

    eventually("first failing evaluation", 5, async || {
        svc.get_json("/v1/checks").await["checks"][0]["alerts"][0]["state"] == "pending"
    })
    .await;
    let pending_at = Instant::now();
    assert!(alerts_with_status(&am, "firing").is_empty());
    eventually("firing alert delivered after retries", 10, async || {
        !alerts_with_status(&am, "firing").is_empty()
    })
    .await;
    // `for 2` needs two more one-second slots after the first failing one.
    assert!(
        pending_at.elapsed() >= Duration::from_millis(1500),
        "fired too early"
    );
    assert!(
        am.hits.load(Ordering::SeqCst) >= 3,
        "the first two attempts were refused"
    );
    let firing = alerts_with_status(&am, "firing");
    assert_eq!(firing[0]["labels"]["alertname"], "slo");
    assert_eq!(firing[0]["labels"]["country"], "DE");
    assert_eq!(firing[0]["labels"]["team"], "ml");
    assert!(firing.iter().all(|a| a["labels"]["country"] == "DE"));

    let m = svc.metrics().await;
    assert!(
        m.contains(
            "mlc_check_status{check=\"slo\",slice=\"country=DE\",column=\"\",status=\"fail\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "mlc_check_value{check=\"slo\",slice=\"country=US\",column=\"\",value=\"mean(x)\"} 0.95"
        ),
        "{m}"
    );
    assert!(
        m.contains("mlc_evaluation_duration_seconds_count{check=\"slo\"}"),
        "{m}"
    );

    backend.set("slo", &[("DE", "pass", 0.9), ("US", "pass", 0.95)]);
    eventually("resolved alert delivered", 10, async || {
        !alerts_with_status(&am, "resolved").is_empty()
    })
    .await;
    // Every stored result carries the rules version.
    assert!(
        backend
            .stored
            .lock()
            .unwrap()
            .iter()
            .all(|r| r["rules_version"].is_string())
    );
    let page = svc
        .get_json("/v1/results?check=slo&status=fail&limit=1")
        .await;
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slow every 1 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slow", &[("", "pass", 1.0)]);
    *backend.eval_delay.lock().unwrap() = Duration::from_millis(2500);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("a skipped slot", 8, async || {
        svc.metrics()
            .await
            .contains("mlc_evaluations_skipped_total{check=\"slow\"}")
    })
    .await;
    // /metrics keeps answering while the evaluation sleeps.
    let t = Instant::now();
    svc.metrics().await;
    assert!(t.elapsed() < Duration::from_millis(500));
    let evals = backend.evaluations.lock().unwrap().clone();
    for (_, at) in &evals {
        assert_eq!(at % 1_000_000, 0, "slots are aligned to whole seconds");
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_is_all_or_nothing_and_keeps_unchanged_state() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("a.mlc");
    std::fs::write(
        &rules,
        "check keep every 1 for 3600\ncheck gone every 1 for 0\n",
    )
    .unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("keep", &[("DE", "fail", 0.1)]);
    backend.set("gone", &[("", "fail", 0.2)]);
    backend.set("new", &[("", "pass", 0.3)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("both checks evaluated", 5, async || {
        let m = svc.metrics().await;
        m.contains("check=\"keep\"") && m.contains("check=\"gone\"")
    })
    .await;
    let pending_since = svc.get_json("/v1/checks").await["checks"][0]["alerts"][0].clone();
    assert_eq!(pending_since["state"], "pending");

    // An invalid edit keeps the old rules running and flips the metric.
    std::fs::write(&rules, "check keep every 1 for 3600\nINVALID\n").unwrap();
    eventually("refused reload exposed", 10, async || {
        svc.metrics()
            .await
            .contains("mlc_rules_last_reload_successful 0")
    })
    .await;
    let checks = svc.get_json("/v1/checks").await;
    assert_eq!(checks["reload"]["successful"], false);
    assert!(
        checks["reload"]["error"]["diagnostics"][0]
            .as_str()
            .unwrap()
            .contains("INVALID")
    );
    assert_eq!(
        checks["checks"].as_array().unwrap().len(),
        2,
        "old rules still loaded"
    );
    let r = svc.client.post(svc.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 422);

    // A valid edit: `gone` removed, `new` added, `keep` unchanged.
    std::fs::write(
        &rules,
        "check keep every 1 for 3600\ncheck new every 1 for 0\n",
    )
    .unwrap();
    eventually("valid edit picked up", 10, async || {
        let c = svc.get_json("/v1/checks").await;
        c["reload"]["successful"] == true
            && c["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "new")
    })
    .await;
    let m = svc.metrics().await;
    assert!(m.contains("mlc_rules_last_reload_successful 1"));
    assert!(!m.contains("mlc_check_status{check=\"gone\""), "{m}");
    let checks = svc.get_json("/v1/checks").await;
    let keep = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "keep")
        .unwrap()
        .clone();
    assert_eq!(keep["alerts"][0]["state"], "pending");
    assert_eq!(
        keep["alerts"][0]["active_since_us"],
        pending_since["active_since_us"]
    );

    let r: Json = svc
        .client
        .post(svc.url("/-/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["successful"], true);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 1 for 3600\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("pending", 5, async || {
        svc.get_json("/v1/checks").await["checks"][0]["alerts"][0]["state"] == "pending"
    })
    .await;
    let before =
        svc.get_json("/v1/checks").await["checks"][0]["alerts"][0]["active_since_us"].clone();
    svc.stop().await;
    let svc = start(layer(dir.path()), backend.clone()).await;
    let after = svc.get_json("/v1/checks").await["checks"][0]["alerts"][0].clone();
    assert_eq!(after["state"], "pending");
    assert_eq!(after["active_since_us"], before);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_now_dashboard_and_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 3600 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5), ("US", "pass", 0.9)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    for at in ["2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z"] {
        let r: Json = svc
            .client
            .post(svc.url(&format!("/v1/evaluate?check=slo&at={at}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["results"].as_array().unwrap().len(), 2);
    }
    let r = svc
        .client
        .post(svc.url("/v1/evaluate?check=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let html = svc
        .client
        .get(svc.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h2 id=\"slo\">slo</h2>"));
    assert!(html.contains("country=DE"));
    assert_eq!(html.matches("<svg").count(), 2);
    let r = svc
        .client
        .get(svc.url("/v1/results?status=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = svc.client.get(svc.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Json = r.json().await.unwrap();
    assert!(body["error"].is_string());
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_transitions_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 1 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5)]);
    let hook = receiver(0).await;
    let mut l = layer(dir.path());
    l.webhook = Some(vec![format!("http://{}/hook", hook.addr)]);
    let svc = start(l, backend.clone()).await;
    eventually("firing webhook", 5, async || {
        !hook.bodies.lock().unwrap().is_empty()
    })
    .await;
    // Several more failing evaluations: no re-sends to webhooks.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    backend.set("slo", &[("DE", "pass", 0.9)]);
    eventually("resolved webhook", 5, async || {
        hook.bodies.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[0]["alerts"][0]["status"], "firing");
    assert_eq!(bodies[0]["alerts"][0]["labels"]["country"], "DE");
    assert_eq!(bodies[1]["status"], "resolved");
    svc.stop().await;
}
