//! The real [`Backend`]: rules from disk (`crate::rules`), records and results in
//! `mlc_store`, evaluation by `crate::exec::Executor`. Alert state is a JSON file (written
//! atomically by rename) because the store has no key-value table yet.

use std::path::PathBuf;
use std::sync::Arc;

use mlc_engine::plan::{CheckPlan, Program};
use mlc_store::Store;
use mlc_store::ingest::{Format, IngestOptions, Input};

use super::backend::{
    Backend, Body, BoxFuture, CheckInfo, Evaluation, IngestError, IngestReport, ResultDoc,
    ResultsQuery, RuleSet, RulesError,
};
use super::config::ServiceConfig;
use crate::exec::Executor;

/// What [`RuleSet::compiled`] holds for this backend.
struct Compiled {
    program: Arc<Program>,
    executor: Executor,
}

pub struct StoreBackend {
    store: Store,
    /// Where alert state was kept before it moved into the store: read once, when the store
    /// has none yet.
    state_file: PathBuf,
    /// This process, as recorded on the evaluation slots it claims.
    owner: String,
    /// `max_series_per_check`: enforced while a check groups its rows, not only on `/metrics`.
    max_series: usize,
    /// `pane_cache_bytes`: what each rule set's executor may keep of its checks' panes.
    pane_bytes: u64,
}

fn owner_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "mlc".to_string());
    format!(
        "{host}/{}/{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    )
}

/// The name of the alert book in the store's state table.
const ALERT_STATE: &str = "alerts";

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBackend")
            .field("store", &self.store)
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// Beside a SQLite file (`mlc.db` -> `mlc.db.alerts.json`); elsewhere in the working folder.
fn default_state_file(db: &str) -> PathBuf {
    match mlc_store::sqlite_file(db) {
        Some(path) if !path.as_os_str().is_empty() => {
            let mut p = path.into_os_string();
            p.push(".alerts.json");
            PathBuf::from(p)
        }
        _ => PathBuf::from("mlc-alerts.json"),
    }
}

fn severity_name(plan: &CheckPlan) -> String {
    format!("{:?}", plan.severity).to_lowercase()
}

/// Everything that makes a check behave differently: its plan as `mlc explain` prints it,
/// plus what only alerts and results carry.
fn fingerprint(plan: &CheckPlan) -> String {
    format!(
        "{plan}\n{}\n{:?}\n{:?}\n{}\n{}",
        plan.file, plan.labels, plan.description, plan.for_secs, plan.every_secs
    )
}

fn check_info(plan: &CheckPlan) -> CheckInfo {
    CheckInfo {
        name: plan.name.clone(),
        file: plan.file.clone(),
        every_secs: plan.every_secs,
        for_secs: plan.for_secs,
        severity: severity_name(plan),
        description: plan.description.clone(),
        labels: plan.labels.clone(),
        fingerprint: fingerprint(plan),
    }
}

impl StoreBackend {
    /// Creates the tables of the components the rules declare and the store does not know
    /// yet. Without them a check on a component nothing was ingested into yet is an `error`
    /// ("unknown component"), and fires its alert, at its first evaluation (which `mlc serve`
    /// runs at start) when there is simply no data yet (`insufficient`). Tables that exist
    /// are left to ingest, which adds newly declared fields. Called on the blocking thread
    /// of a reload; a failure is logged and shows again at ingest.
    fn create_new_components(&self, program: &mlc_engine::plan::Program) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.block_on(async {
            let known: Vec<String> = match self.store.components().await {
                Ok(known) => known.into_iter().map(|c| c.name).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the store's components");
                    return;
                }
            };
            for schema in program.components.iter().filter(|c| !known.contains(&c.name)) {
                if let Err(e) = self.store.ensure_component(schema).await {
                    tracing::warn!(component = %schema.name, error = %e, "cannot create the component's table");
                }
            }
        });
    }

    pub async fn open(config: &ServiceConfig) -> Result<StoreBackend, String> {
        let store = Store::open(&config.db)
            .await
            .map_err(|e| format!("cannot open the store `{}`: {e}", config.db))?;
        let state_file = config
            .state_file
            .clone()
            .unwrap_or_else(|| default_state_file(&config.db));
        let mut backend = StoreBackend::with_store(store, state_file)
            .with_max_series(config.max_series_per_check);
        backend.pane_bytes = config.pane_cache_bytes;
        Ok(backend)
    }

    /// Caps the results of one check in one evaluation (see [`Executor::with_max_series`]).
    pub fn with_max_series(mut self, max_series: usize) -> StoreBackend {
        self.max_series = max_series.max(1);
        self
    }

    pub(crate) fn with_store(store: Store, state_file: PathBuf) -> StoreBackend {
        StoreBackend {
            store,
            state_file,
            owner: owner_id(),
            max_series: mlc_engine::eval::check::DEFAULT_MAX_SERIES,
            pane_bytes: crate::exec::PANE_CACHE_BYTES,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn compiled(rules: &RuleSet) -> Option<&Compiled> {
    rules.compiled.downcast_ref::<Compiled>()
}

impl Backend for StoreBackend {
    fn load_rules(&self, roots: &[PathBuf]) -> Result<RuleSet, RulesError> {
        let loaded = crate::rules::load_rules(roots);
        if loaded.has_errors() {
            let diagnostics: Vec<String> = loaded
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    mlc_grammar::render(std::slice::from_ref(d), &loaded.sources, false)
                        .trim_end()
                        .to_string()
                })
                .collect();
            return Err(RulesError {
                message: loaded.summary(),
                diagnostics,
            });
        }
        let mut files: Vec<PathBuf> = loaded.files.iter().map(|f| f.path.clone()).collect();
        files.extend(loaded.program.plugins.iter().map(|p| p.path.clone()));
        let version = loaded.rules_version;
        let program = Arc::new(loaded.program);
        self.create_new_components(&program);
        let executor = Executor::new(self.store.clone(), program.clone(), version.clone())
            .with_max_series(self.max_series)
            .with_panes(self.pane_bytes);
        Ok(RuleSet {
            version,
            checks: program.checks.iter().map(check_info).collect(),
            components: program.components.iter().map(|c| c.name.clone()).collect(),
            files,
            compiled: Arc::new(Compiled { program, executor }),
        })
    }

    fn ingest<'a>(
        &'a self,
        rules: &'a RuleSet,
        component: &'a str,
        body: Body,
        records: usize,
    ) -> BoxFuture<'a, Result<IngestReport, IngestError>> {
        Box::pin(async move {
            let schema = compiled(rules)
                .and_then(|c| c.program.component(component))
                .ok_or_else(|| IngestError::UnknownComponent(component.to_string()))?;
            // One request is one batch and so one transaction: an acknowledged request is
            // stored whole, a failed one not at all.
            let opts = IngestOptions {
                batch_rows: records.max(1),
                max_reasons: records.max(1),
                // Sealed on a timer (service/mod.rs), not in the request.
                seal: false,
                ..IngestOptions::default()
            };
            let report = mlc_store::ingest::ingest(
                &self.store,
                schema,
                Input::Bytes(body),
                Format::Jsonl,
                &opts,
                None,
            )
            .await
            .map_err(|e| IngestError::Store(e.to_string()))?;
            if let Some(e) = report.error {
                return Err(IngestError::Store(e));
            }
            Ok(IngestReport {
                accepted: report.accepted,
                duplicates: report.duplicates,
                quarantined: report.quarantined,
                reasons: report.reasons,
            })
        })
    }

    fn evaluate(
        &self,
        rules: Arc<RuleSet>,
        check: String,
        at_us: i64,
    ) -> BoxFuture<'_, Result<Evaluation, String>> {
        Box::pin(async move {
            let compiled = compiled(&rules).ok_or("rules were not loaded by this backend")?;
            let plan = compiled
                .program
                .check(&check)
                .ok_or_else(|| format!("no check named `{check}` in the loaded rules"))?;
            let plugin_failures = mlc_wasm::FailureCounts::new();
            let results = compiled
                .executor
                .evaluate_counted(&[plan], at_us, None, &plugin_failures)
                .await;
            let stored: Vec<mlc_store::StoredResult> = results
                .iter()
                .map(|r| crate::results::stored(r, at_us))
                .collect();
            let outcome = self
                .store
                .insert_results(&stored)
                .await
                .map_err(|e| e.to_string());
            let docs = stored
                .into_iter()
                .map(|s| ResultDoc::from_text(s.json))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Evaluation {
                results: docs,
                stored: outcome,
                plugin_failures: plugin_failures.snapshot(),
            })
        })
    }

    fn query_results(&self, query: ResultsQuery) -> BoxFuture<'_, Result<Vec<ResultDoc>, String>> {
        Box::pin(async move {
            let q = mlc_store::ResultQuery {
                check: query.check,
                since_us: query.since_us,
                until_us: None,
                status: query.status,
                limit: Some(query.limit),
                offset: query.offset,
            };
            let rows = self
                .store
                .query_results(&q)
                .await
                .map_err(|e| e.to_string())?;
            rows.into_iter()
                .map(|r| ResultDoc::from_text(r.json))
                .collect()
        })
    }

    fn load_alert_state(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        let path = self.state_file.clone();
        Box::pin(async move {
            if let Some(saved) = self
                .store
                .get_state(ALERT_STATE)
                .await
                .map_err(|e| format!("cannot read the alert state from the store: {e}"))?
            {
                return Ok(Some(saved));
            }
            // Earlier versions kept the state in a file: take it over once.
            match tokio::fs::read_to_string(&path).await {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
            }
        })
    }

    fn save_alert_state(&self, json: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.store
                .put_state(ALERT_STATE, &json)
                .await
                .map_err(|e| format!("cannot save the alert state in the store: {e}"))
        })
    }

    fn claim_slot(&self, check: String, slot_us: i64) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            self.store
                .claim_slot(&check, slot_us, &self.owner)
                .await
                .map_err(|e| format!("cannot claim the evaluation slot: {e}"))
        })
    }

    fn maintain(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let mut sealed = 0;
            let components = self.store.components().await.map_err(|e| e.to_string())?;
            for c in components {
                sealed += self
                    .store
                    .seal(&c.name)
                    .await
                    .map_err(|e| format!("cannot build the segments of `{}`: {e}", c.name))?;
            }
            // Journal entries older than any pane worth keeping (mlc_store::changes).
            let cut = jiff::Timestamp::now().as_microsecond() - mlc_store::CHANGES_RETENTION_US;
            self.store
                .trim_changes(cut)
                .await
                .map_err(|e| format!("cannot trim the change journal: {e}"))?;
            Ok(sealed)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.store.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules with a plugin whose fuel budget is enough to start but not to read 500 rows.
    const STARVED_PLUGIN: &str = r#"
plugin wat_mean from "mean.wat" { fuel 2000 }

component api {
  key request_id
  time ts
  fields {
    latency_ms: float
  }
}

check mean_latency {
  on api
  every 1h
  window 1h
  expect wat_mean(latency_ms) < 250
}
"#;

    fn sample(text: &str, prefix: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_plugin_call_is_counted_on_metrics_by_reason() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(
            rules.join("mean.wat"),
            include_str!("../../../examples/plugins/mean_wat/mean.wat"),
        )
        .unwrap();
        std::fs::write(rules.join("checks.mlc"), STARVED_PLUGIN).unwrap();
        let store = Store::open("sqlite::memory:").await.unwrap();
        let backend = Arc::new(StoreBackend::with_store(
            store,
            dir.path().join("alerts.json"),
        ));
        let config = ServiceConfig::resolve(
            crate::service::ConfigLayer {
                checks: Some(vec![rules.clone()]),
                listen: Some("127.0.0.1:0".into()),
                watch: Some(false),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(crate::service::serve_on(
            listener,
            config,
            backend,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{addr}{path}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !client
            .get(url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "service did not come up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let metrics = || async {
            client
                .get(url("/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        // The service evaluates every check at start (on no rows yet); let that run end
        // first, so the count below is that of the one evaluation asked for.
        let started = "mlc_evaluation_duration_seconds_count{check=\"mean_latency\"} ";
        while sample(&metrics().await, started).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no evaluation at start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let ts = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
        let body: String = (0..500)
            .map(|i| {
                format!("{{\"request_id\": \"r{i}\", \"ts\": \"{ts}\", \"latency_ms\": 100.0}}\n")
            })
            .collect();
        let r = client
            .post(url("/v1/ingest/api"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);

        let line = "mlc_plugin_failures_total{plugin=\"wat_mean\",reason=\"fuel\"} ";
        let before = sample(&metrics().await, line).unwrap_or(0);
        let r: serde_json::Value = client
            .post(url("/v1/evaluate?check=mean_latency"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = r.to_string();
        assert!(
            text.contains("ran out of fuel (a budget of 2000 instructions)"),
            "{text}"
        );
        let after = sample(&metrics().await, line);
        assert_eq!(after, Some(before + 1), "{}", metrics().await);

        let _ = stop.send(());
        done.await.unwrap().unwrap();
    }

    #[test]
    fn state_file_sits_beside_a_sqlite_store() {
        assert_eq!(
            default_state_file("sqlite://data/mlc.db"),
            PathBuf::from("data/mlc.db.alerts.json")
        );
        assert_eq!(
            default_state_file("sqlite::memory:"),
            PathBuf::from("mlc-alerts.json")
        );
        assert_eq!(
            default_state_file("postgres://u@h/db"),
            PathBuf::from("mlc-alerts.json")
        );
        // A bare path is a SQLite file too.
        assert_eq!(
            default_state_file("data/mlc.db"),
            PathBuf::from("data/mlc.db.alerts.json")
        );
        assert_eq!(
            default_state_file("sqlite://data/mlc.db?segment_rows=0"),
            PathBuf::from("data/mlc.db.alerts.json")
        );
    }
}
