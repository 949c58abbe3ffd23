//! The Prometheus exposition of `/metrics` (prometheus-client): check status and values per
//! (check, slice, column), ingest counters, reload and evaluation health.
//!
//! Series of one check are replaced as a whole after each evaluation and removed with the
//! check, so slices that vanish and checks that are deleted do not linger. Each check may
//! expose at most `max_series_per_check` (slice, column) pairs: a `group by` over an id
//! column is capped with a warning instead of growing the registry without bound.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value as Json;

/// The statuses a result can have; `mlc_check_status` has one series per status with 1 on
/// the current one (the OpenMetrics "state set" shape), so alerting rules read
/// `mlc_check_status{status="fail"} == 1`.
pub(crate) const STATUSES: [&str; 4] = ["pass", "fail", "insufficient", "error"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub check: String,
    pub slice: String,
    pub column: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ValueLabels {
    pub check: String,
    pub slice: String,
    pub column: String,
    /// The aggregate as written in the check, e.g. `recall(prediction, label)`.
    pub value: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CheckLabels {
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ComponentLabels {
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PluginFailureLabels {
    pub plugin: String,
    /// `mlc_wasm::PluginFailure::reason`: timeout, fuel, memory, stack, trap, output,
    /// reported, other.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct NotifyLabels {
    pub receiver: String,
    pub outcome: String,
}

fn evaluation_histogram() -> Histogram {
    // 1 ms .. ~65 s: a check over a few rows and one over 30 days of history both land in a
    // bucket that tells them apart.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The series one evaluation of a check set, so the next one can remove what it no longer
/// sets.
#[derive(Default)]
struct CheckSeries {
    status: Vec<StatusLabels>,
    values: Vec<ValueLabels>,
}

pub(crate) struct Metrics {
    registry: Registry,
    check_status: Family<StatusLabels, Gauge>,
    check_value: Family<ValueLabels, Gauge<f64, AtomicU64>>,
    pub ingested: Family<ComponentLabels, Counter>,
    pub quarantined: Family<ComponentLabels, Counter>,
    pub duplicates: Family<ComponentLabels, Counter>,
    pub reload_successful: Gauge,
    pub reload_timestamp: Gauge<f64, AtomicU64>,
    pub evaluation_duration: Family<CheckLabels, Histogram>,
    pub evaluations_skipped: Family<CheckLabels, Counter>,
    pub evaluations_claimed_elsewhere: Family<CheckLabels, Counter>,
    pub evaluation_errors: Family<CheckLabels, Counter>,
    plugin_failures: Family<PluginFailureLabels, Counter>,
    series_capped: Family<CheckLabels, Gauge>,
    pub notifications: Family<NotifyLabels, Counter>,
    series: Mutex<HashMap<String, CheckSeries>>,
    max_series_per_check: usize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// `{"country": "DE", "segment": "a"}` as the `slice` label: `country=DE,segment=a`
/// (empty without `group by`). Key order is the check's `group by` order.
pub(crate) fn slice_label(slice: Option<&Json>) -> String {
    let Some(Json::Object(map)) = slice else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| match v {
            Json::String(s) => format!("{k}={s}"),
            Json::Null => format!("{k}=null"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn column_label(column: Option<&Json>) -> String {
    match column {
        Some(Json::String(s)) => s.clone(),
        _ => String::new(),
    }
}

impl Metrics {
    pub fn new(max_series_per_check: usize) -> Metrics {
        let mut registry = Registry::default();
        let check_status = Family::<StatusLabels, Gauge>::default();
        let check_value = Family::<ValueLabels, Gauge<f64, AtomicU64>>::default();
        let ingested = Family::<ComponentLabels, Counter>::default();
        let quarantined = Family::<ComponentLabels, Counter>::default();
        let duplicates = Family::<ComponentLabels, Counter>::default();
        let reload_successful = Gauge::default();
        let reload_timestamp = Gauge::<f64, AtomicU64>::default();
        let evaluation_duration = Family::<CheckLabels, Histogram>::new_with_constructor(
            evaluation_histogram as fn() -> Histogram,
        );
        let evaluations_skipped = Family::<CheckLabels, Counter>::default();
        let evaluations_claimed_elsewhere = Family::<CheckLabels, Counter>::default();
        let evaluation_errors = Family::<CheckLabels, Counter>::default();
        let plugin_failures = Family::<PluginFailureLabels, Counter>::default();
        let series_capped = Family::<CheckLabels, Gauge>::default();
        let notifications = Family::<NotifyLabels, Counter>::default();
        registry.register(
            "mlc_check_status",
            "Latest status of a check per slice and column: 1 on the current status \
             (pass, fail, insufficient, error), 0 on the others",
            check_status.clone(),
        );
        registry.register(
            "mlc_check_value",
            "Latest value of each aggregate of a check's expects, per slice and column \
             (durations in seconds)",
            check_value.clone(),
        );
        registry.register(
            "mlc_ingested_records",
            "Records accepted by ingest, per component",
            ingested.clone(),
        );
        registry.register(
            "mlc_quarantined_records",
            "Records put in quarantine by ingest (wrong type, missing time), per component",
            quarantined.clone(),
        );
        registry.register(
            "mlc_duplicate_records",
            "Re-sent records (same component, key and time) stored once, per component",
            duplicates.clone(),
        );
        registry.register(
            "mlc_rules_last_reload_successful",
            "1 when the last reload of the rules succeeded, 0 when it was refused",
            reload_successful.clone(),
        );
        registry.register(
            "mlc_rules_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload of the rules",
            reload_timestamp.clone(),
        );
        registry.register(
            "mlc_evaluation_duration_seconds",
            "Time taken by one evaluation of a check",
            evaluation_duration.clone(),
        );
        registry.register(
            "mlc_evaluations_skipped",
            "Scheduled evaluations skipped because the previous run of the check was still going",
            evaluations_skipped.clone(),
        );
        registry.register(
            "mlc_evaluations_claimed_elsewhere",
            "Scheduled evaluations left to another replica that claimed the slot first (shared store)",
            evaluations_claimed_elsewhere.clone(),
        );
        registry.register(
            "mlc_evaluation_errors",
            "Evaluations of a check that failed as a whole (store unreachable, ...)",
            evaluation_errors.clone(),
        );
        registry.register(
            "mlc_plugin_failures",
            "Plugin calls that failed during evaluations, per plugin and reason (timeout, fuel, \
             memory, stack, trap, output, reported, other)",
            plugin_failures.clone(),
        );
        registry.register(
            "mlc_check_series_dropped",
            "Slice/column series of a check not exposed at its last evaluation because of the \
             max_series_per_check cap",
            series_capped.clone(),
        );
        registry.register(
            "mlc_alert_notifications",
            "Alert notifications per receiver and outcome (sent, failed after retries, dropped)",
            notifications.clone(),
        );
        Metrics {
            registry,
            check_status,
            check_value,
            ingested,
            quarantined,
            duplicates,
            reload_successful,
            reload_timestamp,
            evaluation_duration,
            evaluations_skipped,
            evaluations_claimed_elsewhere,
            evaluation_errors,
            plugin_failures,
            series_capped,
            notifications,
            series: Mutex::new(HashMap::new()),
            max_series_per_check,
        }
    }

    /// Replaces the series of `check` with those of one evaluation's results.
    pub(crate) fn record_results(&self, check: &str, results: &[Json]) {
        let mut next = CheckSeries::default();
        let mut seen = HashSet::new();
        let mut dropped = 0i64;
        for result in results {
            let slice = slice_label(result.get("slice"));
            let column = column_label(result.get("column"));
            if !seen.contains(&(slice.clone(), column.clone())) {
                if seen.len() >= self.max_series_per_check {
                    dropped += 1;
                    continue;
                }
                seen.insert((slice.clone(), column.clone()));
            }
            let status = result
                .get("status")
                .and_then(Json::as_str)
                .unwrap_or("error");
            for s in STATUSES {
                let labels = StatusLabels {
                    check: check.to_string(),
                    slice: slice.clone(),
                    column: column.clone(),
                    status: s.to_string(),
                };
                self.check_status
                    .get_or_create(&labels)
                    .set(i64::from(s == status));
                next.status.push(labels);
            }
            let expects = result.get("expects").and_then(Json::as_array);
            for expect in expects.into_iter().flatten() {
                let Some(Json::Object(values)) = expect.get("values") else {
                    continue;
                };
                for (name, value) in values {
                    let Some(v) = value.as_f64() else { continue };
                    let labels = ValueLabels {
                        check: check.to_string(),
                        slice: slice.clone(),
                        column: column.clone(),
                        value: name.clone(),
                    };
                    self.check_value.get_or_create(&labels).set(v);
                    next.values.push(labels);
                }
            }
        }
        if dropped > 0 {
            tracing::warn!(
                check,
                dropped,
                cap = self.max_series_per_check,
                "check has more slice/column series than max_series_per_check; the rest are \
                 not exposed on /metrics (narrow the group by, or raise the cap)"
            );
        }
        self.series_capped
            .get_or_create(&CheckLabels {
                check: check.to_string(),
            })
            .set(dropped);
        let cur_status: HashSet<StatusLabels> = next.status.iter().cloned().collect();
        let cur_values: HashSet<ValueLabels> = next.values.iter().cloned().collect();
        let old = self
            .series
            .lock()
            .ok()
            .and_then(|mut m| m.insert(check.to_string(), next));
        if let Some(old) = old {
            for labels in old.status.iter().filter(|l| !cur_status.contains(*l)) {
                self.check_status.remove(labels);
            }
            for labels in old.values.iter().filter(|l| !cur_values.contains(*l)) {
                self.check_value.remove(labels);
            }
        }
    }

    /// Counts the failed plugin calls of one evaluation: `(plugin, reason, count)`.
    pub(crate) fn record_plugin_failures(&self, failures: &[(String, &'static str, u64)]) {
        for (plugin, reason, count) in failures {
            let labels = PluginFailureLabels {
                plugin: plugin.clone(),
                reason: (*reason).to_string(),
            };
            self.plugin_failures.get_or_create(&labels).inc_by(*count);
        }
    }

    /// Removes every series of a check that is no longer loaded.
    pub(crate) fn remove_check(&self, check: &str) {
        let old = self.series.lock().ok().and_then(|mut m| m.remove(check));
        if let Some(old) = old {
            for labels in &old.status {
                self.check_status.remove(labels);
            }
            for labels in &old.values {
                self.check_value.remove(labels);
            }
        }
        let labels = CheckLabels {
            check: check.to_string(),
        };
        self.evaluation_duration.remove(&labels);
        self.evaluations_skipped.remove(&labels);
        self.evaluation_errors.remove(&labels);
        self.series_capped.remove(&labels);
    }

    /// The Prometheus text format (0.0.4).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(slice: Json, status: &str, v: f64) -> Json {
        json!({"check": "c", "status": status, "slice": slice, "column": null,
               "expects": [{"expr": "mean(x) < 1", "status": status, "values": {"mean(x)": v}}]})
    }

    #[test]
    fn status_is_a_state_set_and_values_are_labelled() {
        let m = Metrics::new(10);
        m.record_results("c", &[result(json!({"country": "DE"}), "fail", 2.5)]);
        let text = m.render().unwrap();
        assert!(
            text.contains(
                "mlc_check_status{check=\"c\",slice=\"country=DE\",column=\"\",status=\"fail\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains(
            "mlc_check_status{check=\"c\",slice=\"country=DE\",column=\"\",status=\"pass\"} 0"
        ));
        assert!(text.contains(
            "mlc_check_value{check=\"c\",slice=\"country=DE\",column=\"\",value=\"mean(x)\"} 2.5"
        ));
        assert!(text.contains("# TYPE mlc_check_status gauge"));
    }

    #[test]
    fn vanished_slices_and_removed_checks_disappear() {
        let m = Metrics::new(10);
        m.record_results(
            "c",
            &[
                result(json!({"k": "a"}), "pass", 1.0),
                result(json!({"k": "b"}), "pass", 1.0),
            ],
        );
        m.record_results("c", &[result(json!({"k": "a"}), "pass", 1.0)]);
        let text = m.render().unwrap();
        assert!(text.contains("slice=\"k=a\""));
        assert!(!text.contains("slice=\"k=b\""), "{text}");
        m.remove_check("c");
        let text = m.render().unwrap();
        assert!(!text.contains("check=\"c\""), "{text}");
    }

    #[test]
    fn plugin_failures_are_counted_by_plugin_and_reason() {
        let m = Metrics::new(10);
        m.record_plugin_failures(&[("ece".into(), "timeout", 1), ("ece".into(), "fuel", 2)]);
        m.record_plugin_failures(&[("ece".into(), "timeout", 1)]);
        let text = m.render().unwrap();
        assert!(
            text.contains("mlc_plugin_failures_total{plugin=\"ece\",reason=\"timeout\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("mlc_plugin_failures_total{plugin=\"ece\",reason=\"fuel\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE mlc_plugin_failures_total counter"),
            "{text}"
        );
    }

    #[test]
    fn series_are_capped_per_check() {
        let m = Metrics::new(3);
        let results: Vec<Json> = (0..50)
            .map(|i| result(json!({"id": format!("u{i}")}), "pass", 1.0))
            .collect();
        m.record_results("c", &results);
        let text = m.render().unwrap();
        let status_lines = text
            .lines()
            .filter(|l| l.starts_with("mlc_check_status{") && l.contains("status=\"pass\""))
            .count();
        assert_eq!(status_lines, 3);
        assert!(
            text.contains("mlc_check_series_dropped{check=\"c\"} 47"),
            "{text}"
        );
    }
}
