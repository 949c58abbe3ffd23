//! The seam between the service and the rest of mlc: loading rules, ingesting records,
//! evaluating a check at a time, and storing/reading results and alert state.
//!
//! The service (HTTP, scheduling, reload, metrics, alerts) is written against this trait so
//! that its mechanics can be tested on their own; [`super::store_backend::StoreBackend`] is
//! the real implementation over `mlc_store` and `mlc_runtime::{rules, exec}`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A boxed future, so that [`Backend`] stays object-safe.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One JSON record as posted to `/v1/ingest/{component}`.
pub type Record = Map<String, Json>;

/// A validated ingest body: JSON lines or a JSON array of objects, as received.
pub(crate) type Body = Arc<[u8]>;

/// One check of a loaded rule set, as the service schedules and reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckInfo {
    pub name: String,
    pub file: String,
    pub every_secs: u64,
    pub for_secs: u64,
    pub severity: String,
    pub description: Option<String>,
    pub labels: Vec<(String, String)>,
    /// Changes whenever anything about the check's meaning changes; reload keeps the
    /// schedule of checks whose fingerprint is the same.
    #[serde(skip)]
    pub fingerprint: String,
}

/// A loaded, linted set of rules.
pub struct RuleSet {
    /// `rules_version` as docs/evaluation.md#results defines it.
    pub version: String,
    pub checks: Vec<CheckInfo>,
    /// Component names that can be ingested into.
    pub components: Vec<String>,
    /// Every file the rules were read from (`.mlc` and plugin modules), so the watcher can
    /// also follow imports and plugins outside the checks folder.
    pub files: Vec<PathBuf>,
    /// The backend's compiled form, handed back to [`Backend::evaluate`].
    pub compiled: Arc<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("version", &self.version)
            .field("checks", &self.checks)
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    pub fn check(&self, name: &str) -> Option<&CheckInfo> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// One result of docs/evaluation.md#results: its text exactly as produced (field order kept, for
/// storing and serving) and the same parsed (for metrics, alerts and the dashboard).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultDoc {
    pub value: Json,
    pub text: String,
}

impl ResultDoc {
    pub(crate) fn from_text(text: String) -> Result<ResultDoc, String> {
        let value =
            serde_json::from_str(&text).map_err(|e| format!("stored result is not JSON: {e}"))?;
        Ok(ResultDoc { value, text })
    }
    pub fn from_value(value: Json) -> ResultDoc {
        ResultDoc {
            text: value.to_string(),
            value,
        }
    }
}

/// What one evaluation produced, and whether its results were stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub results: Vec<ResultDoc>,
    /// `Err` when the results could not be stored (they are still reported and alerted on).
    pub stored: Result<(), String>,
    /// Plugin calls of this evaluation that failed: `(plugin, reason, count)`, the reason one
    /// of `mlc_wasm::PluginFailure::REASONS` (for `mlc_plugin_failures_total`).
    pub plugin_failures: Vec<(String, &'static str, u64)>,
}

/// Rules that did not load: a one-line summary and every rendered diagnostic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RulesError {
    pub message: String,
    pub diagnostics: Vec<String>,
}

/// What ingest did with a batch.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IngestReport {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// One entry per quarantined record: where it was in the body (`request line 3`) and why.
    pub reasons: Vec<String>,
}

/// Why an ingest call failed as a whole.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestError {
    /// No such component in the loaded rules (HTTP 404).
    UnknownComponent(String),
    /// The batch could not be stored (HTTP 500); nothing of it was kept.
    Store(String),
}

/// Filters of `GET /v1/results`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultsQuery {
    pub check: Option<String>,
    /// Microseconds since the epoch; results evaluated at or after this time.
    pub since_us: Option<i64>,
    pub status: Option<String>,
    pub limit: u64,
    pub offset: u64,
}

/// Everything the service needs from storage, rules and the executor.
pub trait Backend: Send + Sync + 'static {
    /// Loads and lints every rule file below `roots`. Blocking: called off the async runtime.
    fn load_rules(&self, roots: &[PathBuf]) -> Result<RuleSet, RulesError>;

    /// Stores one request body of `records` records (already checked to be well-formed JSON
    /// objects) atomically: all of its accepted records or none.
    fn ingest<'a>(
        &'a self,
        rules: &'a RuleSet,
        component: &'a str,
        body: Body,
        records: usize,
    ) -> BoxFuture<'a, Result<IngestReport, IngestError>>;

    /// Evaluates one check at `at_us` and stores its results (one per slice/column, each
    /// carrying the rules version). `Err` when the evaluation failed as a whole: the service
    /// counts, logs and shows it as it is (`super::EvaluateError::Failed`), whatever its cause.
    fn evaluate(
        &self,
        rules: Arc<RuleSet>,
        check: String,
        at_us: i64,
    ) -> BoxFuture<'_, Result<Evaluation, String>>;

    /// Stored results, newest first.
    fn query_results(&self, query: ResultsQuery) -> BoxFuture<'_, Result<Vec<ResultDoc>, String>>;

    /// The alert state saved by [`Backend::save_alert_state`], if any.
    fn load_alert_state(&self) -> BoxFuture<'_, Result<Option<String>, String>>;

    fn save_alert_state(&self, json: String) -> BoxFuture<'_, Result<(), String>>;

    /// Claims the scheduled evaluation of `check` at `slot_us` for this process: `true` for
    /// exactly one of the replicas sharing the store. A backend without shared storage
    /// always says yes.
    fn claim_slot(&self, check: String, slot_us: i64) -> BoxFuture<'_, Result<bool, String>> {
        let _ = (check, slot_us);
        Box::pin(async { Ok(true) })
    }

    /// Background upkeep of storage, run every minute: builds the column segments of the
    /// rows ingested since (see `Store::seal`). Returns how many segments it stored.
    fn maintain(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async { Ok(0) })
    }

    /// Flushes and closes storage at shutdown.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
