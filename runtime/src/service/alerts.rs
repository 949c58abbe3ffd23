//! Alert state per (check, slice, column): inactive, pending (until the check has failed
//! continuously for its `for`), firing, resolved. Pure: evaluation results in,
//! notifications out; [`super::notifier`] delivers them and the book is saved as JSON so it
//! survives a restart.
//!
//! Times are the evaluation times `T` (slot times), not the wall clock, so `for 1h` means an
//! hour of evaluations, and a backfilled or delayed run judges what it evaluated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::backend::CheckInfo;
use super::metrics::{column_label, slice_label};

/// Resolved alerts are kept this long (shown and re-sent to Alertmanager), as Prometheus does.
const RESOLVED_RETENTION_US: i64 = 15 * 60 * 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Firing,
    Resolved,
}

/// One alert of the book. Inactive alerts are not kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Alert {
    pub check: String,
    /// The result's `slice` object (`{}` without `group by`).
    pub slice: Json,
    pub column: Option<String>,
    pub state: State,
    /// When the current failing streak started (the first failing evaluation).
    pub active_since_us: i64,
    /// When it was resolved (state `resolved` only).
    pub resolved_us: Option<i64>,
    pub message: String,
    pub severity: String,
    pub last_eval_us: i64,
}

/// A change to tell receivers about.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notification {
    pub alert: Alert,
    /// `true` when this is only a periodic re-send of a firing alert (Alertmanager forgets
    /// alerts that are not re-sent); webhooks get transitions only.
    pub repeat: bool,
    pub labels: Vec<(String, String)>,
    pub description: Option<String>,
    pub rules_version: Option<String>,
    /// When receivers should consider the alert over if not re-sent (firing) or when it
    /// ended (resolved), microseconds since the epoch.
    pub ends_at_us: i64,
}

type Key = (String, String, String);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlertBook {
    alerts: BTreeMap<String, Alert>,
}

fn key_string(k: &Key) -> String {
    // A key that stays a valid JSON object key when the book is saved.
    format!("{}\u{1f}{}\u{1f}{}", k.0, k.1, k.2)
}

fn failing(status: &str) -> bool {
    status == "fail" || status == "error"
}

impl AlertBook {
    pub(crate) fn from_json(text: &str) -> Result<AlertBook, String> {
        serde_json::from_str(text).map_err(|e| format!("saved alert state is unreadable: {e}"))
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"alerts\":{}}".to_string())
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub(crate) fn alerts_of<'a>(&'a self, check: &'a str) -> impl Iterator<Item = &'a Alert> + 'a {
        self.alerts.values().filter(move |a| a.check == check)
    }

    /// Advances the state of every alert of `check` with one evaluation's results.
    pub(crate) fn observe(
        &mut self,
        check: &CheckInfo,
        results: &[Json],
        at_us: i64,
    ) -> Vec<Notification> {
        let for_us = i64::try_from(check.for_secs)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1_000_000);
        // Alertmanager resolves an alert that is not re-sent before `endsAt`; leave room for
        // a few missed evaluations.
        let resend_horizon_us = i64::try_from(check.every_secs.max(60))
            .unwrap_or(3600)
            .saturating_mul(4_000_000);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for result in results {
            let slice = result
                .get("slice")
                .cloned()
                .unwrap_or(Json::Object(Default::default()));
            let column = result
                .get("column")
                .and_then(Json::as_str)
                .map(str::to_string);
            let key: Key = (
                check.name.clone(),
                slice_label(Some(&slice)),
                column_label(result.get("column")),
            );
            let ks = key_string(&key);
            seen.push(ks.clone());
            let status = result
                .get("status")
                .and_then(Json::as_str)
                .unwrap_or("error");
            let message = result
                .get("message")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string();
            let rules_version = result
                .get("rules_version")
                .and_then(Json::as_str)
                .map(str::to_string);
            let notify = |alert: &Alert, repeat: bool, ends_at_us: i64| Notification {
                alert: alert.clone(),
                repeat,
                labels: check.labels.clone(),
                description: check.description.clone(),
                rules_version: rules_version.clone(),
                ends_at_us,
            };
            let existing = self.alerts.get_mut(&ks);
            match (existing, failing(status)) {
                (None, true)
                | (
                    Some(Alert {
                        state: State::Resolved,
                        ..
                    }),
                    true,
                ) => {
                    let state = if for_us == 0 {
                        State::Firing
                    } else {
                        State::Pending
                    };
                    let alert = Alert {
                        check: check.name.clone(),
                        slice,
                        column,
                        state,
                        active_since_us: at_us,
                        resolved_us: None,
                        message,
                        severity: check.severity.clone(),
                        last_eval_us: at_us,
                    };
                    if state == State::Firing {
                        out.push(notify(
                            &alert,
                            false,
                            at_us.saturating_add(resend_horizon_us),
                        ));
                    }
                    self.alerts.insert(ks, alert);
                }
                (Some(alert), true) => {
                    alert.message = message;
                    alert.severity = check.severity.clone();
                    alert.last_eval_us = at_us;
                    // A streak cannot start after an evaluation that belongs to it (an
                    // evaluation finishing out of order, or a time saved by an older version
                    // from a mistaken `at`): it started at the earliest failing evaluation.
                    alert.active_since_us = alert.active_since_us.min(at_us);
                    if alert.state == State::Pending
                        && at_us.saturating_sub(alert.active_since_us) >= for_us
                    {
                        alert.state = State::Firing;
                        out.push(notify(
                            alert,
                            false,
                            at_us.saturating_add(resend_horizon_us),
                        ));
                    } else if alert.state == State::Firing {
                        out.push(notify(alert, true, at_us.saturating_add(resend_horizon_us)));
                    }
                }
                (Some(alert), false) => {
                    alert.last_eval_us = at_us;
                    match alert.state {
                        State::Pending => {
                            self.alerts.remove(&ks);
                        }
                        // No data is no evidence of recovery: a firing alert stays firing
                        // until the check passes again.
                        State::Firing if status == "insufficient" => {}
                        State::Firing => {
                            alert.state = State::Resolved;
                            alert.resolved_us = Some(at_us);
                            alert.message = message;
                            out.push(notify(alert, false, at_us));
                        }
                        State::Resolved => {}
                    }
                }
                (None, false) => {}
            }
        }
        // Slices that no longer appear (the group vanished) resolve, as in Prometheus.
        let gone: Vec<String> = self
            .alerts
            .iter()
            .filter(|(k, a)| a.check == check.name && !seen.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        for ks in gone {
            out.extend(self.end(&ks, check, at_us));
        }
        // A resolution "in the future" of this evaluation is no reason to keep it forever.
        self.alerts.retain(|_, a| {
            a.state != State::Resolved
                || a.resolved_us.is_none_or(|r| {
                    at_us.saturating_sub(r).saturating_abs() <= RESOLVED_RETENTION_US
                })
        });
        out
    }

    /// Drops every alert with a time after `limit_us` (saved by a version that let a mistaken
    /// evaluation time drive alerts); returns how many.
    pub(crate) fn drop_future(&mut self, limit_us: i64) -> usize {
        let before = self.alerts.len();
        self.alerts.retain(|_, a| {
            a.active_since_us <= limit_us
                && a.last_eval_us <= limit_us
                && a.resolved_us.is_none_or(|r| r <= limit_us)
        });
        before - self.alerts.len()
    }

    /// Ends one alert: a firing one resolves (and is announced), a pending one is dropped.
    fn end(&mut self, ks: &str, check: &CheckInfo, at_us: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        match self.alerts.get_mut(ks) {
            Some(alert) if alert.state == State::Firing => {
                alert.state = State::Resolved;
                alert.resolved_us = Some(at_us);
                out.push(Notification {
                    alert: alert.clone(),
                    repeat: false,
                    labels: check.labels.clone(),
                    description: check.description.clone(),
                    rules_version: None,
                    ends_at_us: at_us,
                });
            }
            Some(alert) if alert.state == State::Pending => {
                self.alerts.remove(ks);
            }
            _ => {}
        }
        out
    }

    /// A check was removed from the rules: its firing alerts resolve, the rest is dropped.
    pub(crate) fn remove_check(&mut self, check: &CheckInfo, now_us: i64) -> Vec<Notification> {
        let keys: Vec<String> = self
            .alerts
            .iter()
            .filter(|(_, a)| a.check == check.name)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for ks in keys {
            out.extend(self.end(&ks, check, now_us));
            self.alerts.remove(&ks);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(for_secs: u64) -> CheckInfo {
        CheckInfo {
            name: "c".into(),
            file: "c.mlc".into(),
            every_secs: 60,
            for_secs,
            severity: "critical".into(),
            description: Some("d".into()),
            labels: vec![("team".into(), "risk".into())],
            fingerprint: String::new(),
        }
    }

    fn res(country: &str, status: &str) -> Json {
        json!({"check": "c", "status": status, "slice": {"country": country}, "column": null,
               "message": format!("{country} {status}")})
    }

    const S: i64 = 1_000_000;

    #[test]
    fn for_is_honoured_then_fires_then_resolves() {
        let mut book = AlertBook::default();
        let c = check(120);
        assert!(book.observe(&c, &[res("DE", "fail")], 0).is_empty());
        assert_eq!(book.alerts().next().unwrap().state, State::Pending);
        assert!(book.observe(&c, &[res("DE", "fail")], 60 * S).is_empty());
        let n = book.observe(&c, &[res("DE", "fail")], 120 * S);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].alert.state, State::Firing);
        assert_eq!(n[0].alert.active_since_us, 0);
        assert!(!n[0].repeat);
        let n = book.observe(&c, &[res("DE", "fail")], 180 * S);
        assert!(n[0].repeat);
        let n = book.observe(&c, &[res("DE", "pass")], 240 * S);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].alert.state, State::Resolved);
        assert_eq!(n[0].ends_at_us, 240 * S);
    }

    #[test]
    fn a_pass_inside_for_resets_pending() {
        let mut book = AlertBook::default();
        let c = check(120);
        book.observe(&c, &[res("DE", "fail")], 0);
        book.observe(&c, &[res("DE", "pass")], 60 * S);
        assert_eq!(book.alerts().count(), 0);
        book.observe(&c, &[res("DE", "fail")], 120 * S);
        assert!(book.observe(&c, &[res("DE", "fail")], 180 * S).is_empty());
    }

    #[test]
    fn insufficient_holds_firing_and_slices_are_independent() {
        let mut book = AlertBook::default();
        let c = check(0);
        let n = book.observe(&c, &[res("DE", "fail"), res("US", "pass")], 0);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].alert.slice, json!({"country": "DE"}));
        let n = book.observe(&c, &[res("DE", "insufficient"), res("US", "pass")], 60 * S);
        assert!(n.is_empty());
        // The DE slice vanishing resolves its alert.
        let n = book.observe(&c, &[res("US", "pass")], 120 * S);
        assert_eq!(n[0].alert.state, State::Resolved);
    }

    #[test]
    fn survives_a_round_trip_through_json() {
        let mut book = AlertBook::default();
        let c = check(120);
        book.observe(&c, &[res("DE", "fail")], 0);
        let mut back = AlertBook::from_json(&book.to_json()).unwrap();
        assert_eq!(back, book);
        let n = back.observe(&c, &[res("DE", "fail")], 120 * S);
        assert_eq!(n[0].alert.state, State::Firing);
    }

    #[test]
    fn times_at_the_ends_of_the_range_do_not_wrap() {
        let mut book = AlertBook::default();
        let c = check(0);
        let n = book.observe(&c, &[res("DE", "fail")], i64::MAX - 1);
        assert_eq!(n.len(), 1);
        assert_eq!(
            n[0].ends_at_us,
            i64::MAX,
            "saturates instead of wrapping negative"
        );
        let n = book.observe(&c, &[res("DE", "fail")], i64::MAX);
        assert!(n[0].repeat && n[0].ends_at_us == i64::MAX);
        let n = book.observe(&c, &[res("DE", "pass")], i64::MAX);
        assert_eq!(n[0].alert.state, State::Resolved);
        // Resolved "in the future" of the evaluation: not kept forever.
        book.observe(&c, &[res("DE", "pass")], 0);
        assert_eq!(book.alerts().count(), 0);
    }

    #[test]
    fn a_pending_alert_saved_in_the_future_still_fires_after_for() {
        // An older version let `at=1772323200000` (epoch ms as seconds, year ~58,000) start a
        // streak; live evaluations must still fire it after `for`, not never.
        let mut book = AlertBook::default();
        let c = check(120);
        book.observe(&c, &[res("DE", "fail")], 1_772_323_200_000 * S);
        assert!(book.observe(&c, &[res("DE", "fail")], 0).is_empty());
        assert!(book.observe(&c, &[res("DE", "fail")], 60 * S).is_empty());
        let n = book.observe(&c, &[res("DE", "fail")], 120 * S);
        assert_eq!(
            n.len(),
            1,
            "fires once `for` has passed since the first live failure"
        );
        assert_eq!(n[0].alert.active_since_us, 0);
    }

    #[test]
    fn alerts_from_the_future_are_dropped_on_restore() {
        let mut book = AlertBook::default();
        let c = check(120);
        let d = CheckInfo {
            name: "d".into(),
            ..check(120)
        };
        book.observe(&c, &[res("DE", "fail")], 100 * S);
        book.observe(&d, &[res("US", "fail")], 1_772_323_200_000 * S);
        assert_eq!(book.drop_future(1000 * S), 1);
        let left: Vec<&Alert> = book.alerts().collect();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].check, "c");
    }

    #[test]
    fn removed_check_resolves_firing_alerts() {
        let mut book = AlertBook::default();
        let c = check(0);
        book.observe(&c, &[res("DE", "fail")], 0);
        let n = book.remove_check(&c, 10 * S);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].alert.state, State::Resolved);
        assert_eq!(book.alerts().count(), 0);
    }
}
