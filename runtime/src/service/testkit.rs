//! A scripted [`Backend`] for testing the service's own mechanics (scheduling, reload,
//! metrics, alerts, HTTP) without storage or the executor. Rules are one line per check in
//! `*.rules` files: `check NAME every SECS for SECS`; a line `INVALID` makes the load fail.
//! The status each check returns per slice is set by the test.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::backend::*;

/// Per check: (slice value, status, metric value) of each result it returns.
type Script = HashMap<String, Vec<(String, String, f64)>>;

#[derive(Default)]
pub(crate) struct FakeBackend {
    pub script: Mutex<Script>,
    pub stored: Mutex<Vec<Json>>,
    pub alert_state: Mutex<Option<String>>,
    pub ingested: Mutex<Vec<Record>>,
    pub evaluations: Mutex<Vec<(String, i64)>>,
    pub eval_delay: Mutex<Duration>,
    /// Plugin failures every evaluation reports: `(plugin, reason, count)`.
    pub plugin_failures: Mutex<Vec<(String, &'static str, u64)>>,
    /// When set, every evaluation fails as a whole with this error.
    pub eval_error: Mutex<Option<String>>,
    /// When set, every evaluation's results are returned but not stored, for this reason.
    pub store_error: Mutex<Option<String>>,
}

impl FakeBackend {
    pub fn set(&self, check: &str, rows: &[(&str, &str, f64)]) {
        self.script.lock().unwrap().insert(
            check.to_string(),
            rows.iter()
                .map(|(s, st, v)| (s.to_string(), st.to_string(), *v))
                .collect(),
        );
    }
}

impl Backend for FakeBackend {
    fn load_rules(&self, roots: &[PathBuf]) -> Result<RuleSet, RulesError> {
        let mut checks = Vec::new();
        let mut files = Vec::new();
        for root in roots {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(root)
                .map_err(|e| RulesError {
                    message: e.to_string(),
                    diagnostics: vec![],
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "mlc"))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let w: Vec<&str> = line.split_whitespace().collect();
                    match w.as_slice() {
                        ["check", name, "every", e, "for", f] => checks.push(CheckInfo {
                            name: name.to_string(),
                            file: path.display().to_string(),
                            every_secs: e.parse().unwrap_or(1),
                            for_secs: f.parse().unwrap_or(0),
                            severity: "critical".into(),
                            description: None,
                            labels: vec![("team".into(), "ml".into())],
                            fingerprint: line.to_string(),
                        }),
                        _ => {
                            return Err(RulesError {
                                message: "1 error in the rules".into(),
                                diagnostics: vec![format!(
                                    "{}:1:1: error: bad line `{line}`",
                                    path.display()
                                )],
                            });
                        }
                    }
                }
                files.push(path);
            }
        }
        let mut hash = 0u64;
        for c in &checks {
            for b in c.fingerprint.bytes() {
                hash = hash.wrapping_mul(31).wrapping_add(u64::from(b));
            }
        }
        Ok(RuleSet {
            version: format!("sha256:{hash:x}"),
            checks,
            components: vec!["inference".into()],
            files,
            compiled: Arc::new(()),
        })
    }

    fn ingest<'a>(
        &'a self,
        _rules: &'a RuleSet,
        _component: &'a str,
        body: Body,
        _records: usize,
    ) -> BoxFuture<'a, Result<IngestReport, IngestError>> {
        Box::pin(async move {
            let records = super::http::parse_records(&body).map_err(IngestError::Store)?;
            let mut report = IngestReport::default();
            for (i, r) in records.into_iter().enumerate() {
                if r.get("ts").is_none_or(Json::is_null) {
                    report.quarantined += 1;
                    report
                        .reasons
                        .push(format!("request line {}: missing time `ts`", i + 1));
                } else {
                    report.accepted += 1;
                    self.ingested.lock().unwrap().push(r);
                }
            }
            Ok(report)
        })
    }

    fn evaluate(
        &self,
        rules: Arc<RuleSet>,
        check: String,
        at_us: i64,
    ) -> BoxFuture<'_, Result<Evaluation, String>> {
        Box::pin(async move {
            self.evaluations
                .lock()
                .unwrap()
                .push((check.clone(), at_us));
            let delay = *self.eval_delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(e) = self.eval_error.lock().unwrap().clone() {
                return Err(e);
            }
            let rows = self
                .script
                .lock()
                .unwrap()
                .get(&check)
                .cloned()
                .unwrap_or_default();
            let at = jiff::Timestamp::from_microsecond(at_us)
                .map(|t| t.to_string())
                .unwrap_or_default();
            let results: Vec<ResultDoc> = rows
                .into_iter()
                .map(|(slice, status, v)| {
                    json!({"check": check, "status": status, "at": at,
                           "slice": if slice.is_empty() { json!({}) } else { json!({"country": slice}) },
                           "column": null,
                           "expects": [{"expr": "mean(x) < 1", "status": status, "values": {"mean(x)": v}}],
                           "message": format!("mean(x) = {v}"), "rules_version": rules.version})
                })
                .map(ResultDoc::from_value)
                .collect();
            let stored = match self.store_error.lock().unwrap().clone() {
                Some(e) => Err(e),
                None => {
                    self.stored
                        .lock()
                        .unwrap()
                        .extend(results.iter().map(|r| r.value.clone()));
                    Ok(())
                }
            };
            Ok(Evaluation {
                results,
                stored,
                plugin_failures: self.plugin_failures.lock().unwrap().clone(),
            })
        })
    }

    fn query_results(&self, query: ResultsQuery) -> BoxFuture<'_, Result<Vec<ResultDoc>, String>> {
        Box::pin(async move {
            let stored = self.stored.lock().unwrap();
            Ok(stored
                .iter()
                .rev()
                .filter(|r| query.check.as_deref().is_none_or(|c| r["check"] == c))
                .filter(|r| query.status.as_deref().is_none_or(|s| r["status"] == s))
                .skip(query.offset as usize)
                .take(query.limit as usize)
                .cloned()
                .map(ResultDoc::from_value)
                .collect())
        })
    }

    fn load_alert_state(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        Box::pin(async move { Ok(self.alert_state.lock().unwrap().clone()) })
    }

    fn save_alert_state(&self, json: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            *self.alert_state.lock().unwrap() = Some(json);
            Ok(())
        })
    }
}
