//! `mlc serve`: the long-running service. It loads the rules, evaluates each check on its
//! `every`, stores every result, keeps alert state and notifies receivers, reloads the rules
//! when they change (all-or-nothing), and answers the HTTP API of docs/operations.md#the-http-api.
//!
//! [`App`] is the shared state; [`serve`] binds the listener and runs until SIGTERM/SIGINT.
//! Storage, rules and evaluation are reached through [`backend::Backend`].

pub mod alerts;
pub mod backend;
pub mod config;
mod conn;
mod dashboard;
mod http;
pub mod metrics;
pub(crate) mod notifier;
mod openapi;
pub(crate) mod scheduler;
pub mod store_backend;
pub mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use backend::{Backend, CheckInfo, Evaluation, IngestReport, ResultDoc, RuleSet, RulesError};
pub use config::{ConfigLayer, ServiceConfig};

use alerts::{AlertBook, Notification, State};
use metrics::{CheckLabels, Metrics};
use notifier::{Notifier, NotifierConfig};
use scheduler::{Scheduler, now_us};
use watch::{ReloadCause, RuleWatcher};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "cannot listen on {addr}: {source} (is another `mlc serve` running? pick another with --listen)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the rules do not load, so the service does not start:\n{}", .0.diagnostics.join("\n"))]
    Rules(RulesError),
    #[error("{0}")]
    Other(String),
}

/// Why [`App::run_evaluation`] gave no results. `Display` is what `POST /v1/evaluate` lists
/// under `errors` and what the log says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum EvaluateError {
    /// No rules are loaded yet: `POST /v1/evaluate?check=` answers 503.
    #[error("no rules are loaded")]
    NoRules,
    /// The loaded rules have no check of this name: `POST /v1/evaluate?check=` answers 404.
    /// Nothing was evaluated, counted or recorded.
    #[error("no check named `{0}` in the loaded rules")]
    UnknownCheck(String),
    /// The backend's evaluation failed as a whole, in its words: counted in
    /// `mlc_evaluation_errors_total` and, when live, kept as the check's last run error.
    #[error("{0}")]
    Failed(String),
}

/// The outcome of the last reload, as `GET /v1/checks` shows it.
#[derive(Debug, Clone, Serialize, Default)]
pub(crate) struct ReloadStatus {
    pub successful: bool,
    /// RFC 3339 time of the last reload attempt.
    pub at: String,
    /// When the last reload was refused: why, with every diagnostic.
    pub error: Option<RulesError>,
}

/// The last evaluation of a check.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LastRun {
    pub at_us: i64,
    pub duration_secs: f64,
    pub results: Vec<Json>,
    pub error: Option<String>,
}

/// Shared state of a running service.
pub(crate) struct App {
    pub config: ServiceConfig,
    backend: Arc<dyn Backend>,
    rules: RwLock<Option<Arc<RuleSet>>>,
    reload_status: Mutex<ReloadStatus>,
    pub metrics: Arc<Metrics>,
    alerts: Mutex<AlertBook>,
    /// The (key, state) pairs last saved, so unchanged alert state is not rewritten.
    alerts_saved: tokio::sync::Mutex<Vec<(String, String, State)>>,
    notifier: Mutex<Option<Notifier>>,
    scheduler: Mutex<Scheduler>,
    last_runs: Mutex<HashMap<String, LastRun>>,
    reload_gate: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    inflight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counts one evaluation in flight until dropped, so shutdown can wait for it.
pub(crate) struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How far in the future a saved alert's times may be (clock adjustments between runs)
/// before it is taken for corrupt and dropped at start.
const FUTURE_ALERT_SLACK_US: i64 = 24 * 3600 * 1_000_000;

pub fn rfc3339(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl App {
    pub fn new(config: ServiceConfig, backend: Arc<dyn Backend>) -> Arc<App> {
        let metrics = Arc::new(Metrics::new(config.max_series_per_check));
        let external_url = format!("http://{}", config.listen);
        let notifier = Notifier::start(
            NotifierConfig {
                alertmanager: config.alertmanager.clone(),
                webhook: config.webhook.clone(),
                retries: config.notify_retries,
                backoff: config.notify_backoff,
                external_url,
            },
            metrics.clone(),
        );
        Arc::new(App {
            config,
            backend,
            rules: RwLock::new(None),
            reload_status: Mutex::new(ReloadStatus::default()),
            metrics,
            alerts: Mutex::new(AlertBook::default()),
            alerts_saved: tokio::sync::Mutex::new(Vec::new()),
            notifier: Mutex::new(Some(notifier)),
            scheduler: Mutex::new(Scheduler::default()),
            last_runs: Mutex::new(HashMap::new()),
            reload_gate: tokio::sync::Mutex::new(()),
            shutting_down: AtomicBool::new(false),
            inflight: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn rules(&self) -> Option<Arc<RuleSet>> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn reload_status(&self) -> ReloadStatus {
        lock(&self.reload_status).clone()
    }

    pub fn last_run(&self, check: &str) -> Option<LastRun> {
        lock(&self.last_runs).get(check).cloned()
    }

    pub(crate) fn next_run_us(&self, check: &str) -> Option<i64> {
        lock(&self.scheduler).next_run_us(check)
    }

    pub(crate) fn alerts_of(&self, check: &str) -> Vec<alerts::Alert> {
        lock(&self.alerts).alerts_of(check).cloned().collect()
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn inflight_guard(&self) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(self.inflight.clone())
    }

    /// Loads the saved alert state, so pending and firing alerts survive a restart.
    pub(crate) async fn restore_alerts(&self) {
        match self.backend.load_alert_state().await {
            Ok(Some(text)) => match AlertBook::from_json(&text) {
                Ok(mut book) => {
                    // Versions that let `POST /v1/evaluate?at=` drive alerts could save one
                    // pending since the year 58,000 (epoch milliseconds read as seconds): it
                    // would never fire. Such alerts are dropped; the next evaluation judges
                    // afresh.
                    let dropped = book.drop_future(now_us().saturating_add(FUTURE_ALERT_SLACK_US));
                    if dropped > 0 {
                        tracing::warn!(
                            alerts = dropped,
                            "saved alerts with times in the future dropped; the next evaluations judge them afresh"
                        );
                    }
                    let n = book.alerts().count();
                    *lock(&self.alerts) = book;
                    tracing::info!(alerts = n, "alert state restored");
                }
                Err(e) => tracing::warn!(error = %e, "starting with empty alert state"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read saved alert state; starting empty"),
        }
    }

    /// Re-reads every rule file; swaps the new set in only when all of it lints. On failure
    /// the old set keeps running and the error is logged and exposed.
    pub async fn reload(self: &Arc<Self>) -> Result<Arc<RuleSet>, RulesError> {
        let _gate = self.reload_gate.lock().await;
        let backend = self.backend.clone();
        let roots = self.config.checks.clone();
        let limit = self.config.reload_timeout;
        let loading = tokio::task::spawn_blocking(move || backend.load_rules(&roots));
        // A load that never returns (a file system that hangs) must not hold the gate: the
        // reload is refused and the next one may try again.
        let loaded = match tokio::time::timeout(limit, loading).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => Err(RulesError {
                message: format!("loading the rules crashed: {e}"),
                diagnostics: Vec::new(),
            }),
            Err(_) => Err(RulesError {
                message: format!(
                    "reading the rules took longer than {} s (a rule file that blocks on \
                     read, or a hung file system?)",
                    limit.as_secs_f64()
                ),
                diagnostics: Vec::new(),
            }),
        };
        let at = rfc3339(now_us());
        let set = match loaded {
            Ok(set) => Arc::new(set),
            Err(err) => {
                self.metrics.reload_successful.set(0);
                tracing::error!(error = %err.message, "rules refused; the previous rules keep running");
                for d in &err.diagnostics {
                    tracing::error!("{d}");
                }
                *lock(&self.reload_status) = ReloadStatus {
                    successful: false,
                    at,
                    error: Some(err.clone()),
                };
                return Err(err);
            }
        };
        // Poisoned or not, the new rules are installed: a panic elsewhere while the lock was
        // held must not leave the service running the old rules while reporting the new.
        let old = self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(set.clone());
        let mut notes = Vec::new();
        if let Some(old) = old {
            for check in old.checks.iter().filter(|c| set.check(&c.name).is_none()) {
                self.metrics.remove_check(&check.name);
                lock(&self.last_runs).remove(&check.name);
                notes.extend(lock(&self.alerts).remove_check(check, now_us()));
                tracing::info!(check = %check.name, "check removed");
            }
        }
        self.notify(&notes);
        if !notes.is_empty() {
            self.save_alerts().await;
        }
        let report = lock(&self.scheduler).sync(self, &set.checks);
        self.metrics.reload_successful.set(1);
        self.metrics.reload_timestamp.set(now_us() as f64 / 1e6);
        *lock(&self.reload_status) = ReloadStatus {
            successful: true,
            at,
            error: None,
        };
        tracing::info!(
            rules_version = %set.version,
            checks = set.checks.len(),
            started = ?report.started,
            kept = report.kept.len(),
            stopped = ?report.stopped,
            "rules loaded"
        );
        Ok(set)
    }

    fn notify(&self, notes: &[Notification]) {
        if let Some(n) = lock(&self.notifier).as_ref() {
            for note in notes {
                n.send(note);
            }
        }
    }

    /// Evaluates one check at `at_us` (the backend stores the results). A `live` evaluation
    /// (a scheduled slot, or `POST /v1/evaluate` without `at`) also updates `/metrics`, the
    /// check's last run and the alert state; any other only stores and returns its results, so
    /// that a look at another time cannot fire, hold or resolve an alert.
    pub(crate) async fn run_evaluation(
        &self,
        check: &str,
        at_us: i64,
        live: bool,
    ) -> Result<Vec<ResultDoc>, EvaluateError> {
        let rules = self.rules().ok_or(EvaluateError::NoRules)?;
        let info = rules
            .check(check)
            .cloned()
            .ok_or_else(|| EvaluateError::UnknownCheck(check.to_string()))?;
        let labels = CheckLabels {
            check: check.to_string(),
        };
        let started = Instant::now();
        let outcome = self
            .backend
            .evaluate(rules.clone(), check.to_string(), at_us)
            .await;
        let duration_secs = started.elapsed().as_secs_f64();
        self.metrics
            .evaluation_duration
            .get_or_create(&labels)
            .observe(duration_secs);
        let evaluation = match outcome {
            Ok(evaluation) => evaluation,
            Err(e) => {
                self.metrics.evaluation_errors.get_or_create(&labels).inc();
                tracing::error!(check, at = %rfc3339(at_us), error = %e, "evaluation failed");
                if live {
                    lock(&self.last_runs).insert(
                        check.to_string(),
                        LastRun {
                            at_us,
                            duration_secs,
                            results: Vec::new(),
                            error: Some(e.clone()),
                        },
                    );
                }
                return Err(EvaluateError::Failed(e));
            }
        };
        // Counted for every evaluation, live or not, like its duration and errors.
        self.metrics
            .record_plugin_failures(&evaluation.plugin_failures);
        let mut error = None;
        if let Err(e) = &evaluation.stored {
            self.metrics.evaluation_errors.get_or_create(&labels).inc();
            tracing::error!(check, error = %e, "results could not be stored");
            error = Some(format!("results not stored: {e}"));
        }
        if !live {
            tracing::debug!(check, at = %rfc3339(at_us), results = evaluation.results.len(), "evaluated at a given time (alerts and /metrics left alone)");
            return Ok(evaluation.results);
        }
        let values: Vec<Json> = evaluation.results.iter().map(|r| r.value.clone()).collect();
        self.metrics.record_results(check, &values);
        let notes = lock(&self.alerts).observe(&info, &values, at_us);
        self.notify(&notes);
        self.save_alerts().await;
        tracing::debug!(check, at = %rfc3339(at_us), results = values.len(), duration_secs, "evaluated");
        lock(&self.last_runs).insert(
            check.to_string(),
            LastRun {
                at_us,
                duration_secs,
                results: values,
                error,
            },
        );
        Ok(evaluation.results)
    }

    /// Saves the alert book when an alert changed state since the last save.
    async fn save_alerts(&self) {
        let mut saved = self.alerts_saved.lock().await;
        let (json, signature) = {
            let book = lock(&self.alerts);
            let sig: Vec<(String, String, State)> = book
                .alerts()
                .map(|a| {
                    (
                        a.check.clone(),
                        format!("{}|{:?}", a.slice, a.column),
                        a.state,
                    )
                })
                .collect();
            if sig == *saved {
                return;
            }
            (book.to_json(), sig)
        };
        match self.backend.save_alert_state(json).await {
            Ok(()) => *saved = signature,
            Err(e) => tracing::error!(error = %e, "alert state could not be saved"),
        }
    }

    /// Stops timers, waits for running evaluations and queued alert deliveries, saves the
    /// alert state.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        lock(&self.scheduler).stop_all();
        let deadline = Instant::now() + self.config.shutdown_timeout;
        while self.inflight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.save_alerts().await;
        let notifier = lock(&self.notifier).take();
        if let Some(n) = notifier {
            let left = deadline.saturating_duration_since(Instant::now());
            n.shutdown(left.max(Duration::from_secs(1))).await;
        }
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// Runs the service on `config.listen` until SIGTERM or SIGINT.
pub async fn serve(config: ServiceConfig, backend: Arc<dyn Backend>) -> Result<(), ServiceError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
    serve_on(listener, config, backend, shutdown_signal()).await
}

/// Runs the service on an already bound listener until `shutdown` completes (tests bind
/// port 0 and pass their own shutdown).
/// Where a browser on this machine finds the dashboard: the listen address, or loopback
/// when listening on every interface.
pub(crate) fn dashboard_url(local: std::net::SocketAddr) -> String {
    let mut shown = local;
    if local.ip().is_unspecified() {
        shown.set_ip(match local.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{shown}/")
}

/// How often `mlc serve` runs [`Backend::maintain`].
const MAINTAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) async fn serve_on(
    listener: TcpListener,
    config: ServiceConfig,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let app = App::new(config, backend);
    app.restore_alerts().await;
    app.reload().await.map_err(ServiceError::Rules)?;

    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel::<ReloadCause>();
    let mut watcher = None;
    if app.config.watch {
        match RuleWatcher::start(app.config.debounce, &app.config.checks, reload_tx.clone()) {
            Ok(mut w) => {
                let files = app.rules().map(|r| r.files.clone()).unwrap_or_default();
                w.watch_rules(&app.config.checks, &files);
                watcher = Some(w);
            }
            Err(e) => {
                tracing::warn!(error = %e, "rules are not watched; use POST /-/reload or SIGHUP")
            }
        }
    }
    #[cfg(unix)]
    {
        let tx = reload_tx.clone();
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send(ReloadCause::Signal).is_err() {
                        return;
                    }
                }
            });
        }
    }
    let reload_app = app.clone();
    let reloader = tokio::spawn(async move {
        while let Some(cause) = reload_rx.recv().await {
            tracing::info!(?cause, "reloading rules");
            // Re-resolve first: a checks folder replaced by another is watched before it is
            // read, so an edit made during the reload is not missed.
            if let Some(w) = watcher.as_mut() {
                let files = reload_app
                    .rules()
                    .map(|r| r.files.clone())
                    .unwrap_or_default();
                w.watch_rules(&reload_app.config.checks, &files);
            }
            if let Ok(set) = reload_app.reload().await
                && let Some(w) = watcher.as_mut()
            {
                w.watch_rules(&reload_app.config.checks, &set.files);
            }
        }
    });

    let upkeep = {
        let backend = app.backend.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MAINTAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match backend.maintain().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(segments = n, "column segments built"),
                    Err(e) => {
                        tracing::warn!(error = %e, "storage upkeep failed; reads stay correct, only slower")
                    }
                }
            }
        })
    };

    let router = http::router(app.clone());
    let local = listener.local_addr().ok();
    let addr = local.map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, "mlc serve listening");
    if let Some(local) = local {
        tracing::info!(
            url = %dashboard_url(local),
            token = app.config.token.is_some(),
            "dashboard"
        );
    }
    let listener = conn::TimeoutListener::new(listener, app.config.header_timeout);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    tracing::info!("HTTP server stopped; finishing evaluations and alert deliveries");
    reloader.abort();
    upkeep.abort();
    app.shutdown().await;
    app.backend.close().await;
    tracing::info!("shutdown complete");
    served.map_err(|e| ServiceError::Other(format!("HTTP server failed: {e}")))
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
