//! `mlc serve`: flags and environment variables, `mlc.toml`, logging, and the wiring of the
//! store backend into `mlc_runtime::service`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mlc_runtime::service::{self, ConfigLayer, ServiceConfig};

/// Every flag also reads an environment variable and a key of the same name (with `_`) in
/// `mlc.toml`; flags win over the environment, which wins over the file.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
CONFIG FILE (mlc.toml):
  checks = [\"checks/\"]            listen = \"127.0.0.1:9400\"
  db = \"sqlite://mlc.db\"          token = \"...\"
  alertmanager = [\"http://am:9093\"]  webhook = [\"http://hooks/mlc\"]
  max_body_bytes = 67108864       max_series_per_check = 1000
  pane_cache_bytes = 1073741824
  watch = true                    debounce_ms = 500
  notify_retries = 5              notify_backoff_ms = 500
  shutdown_timeout_secs = 30      state_file = \"mlc-alerts.json\"
  header_timeout_secs = 10        body_timeout_secs = 60

SIGNALS: SIGHUP reloads the rules; SIGTERM and SIGINT shut down gracefully (in-flight
requests and evaluations finish, alert state is saved, exit 0).

ENDPOINTS: POST /v1/ingest/{component}, GET /v1/checks, GET /v1/results, POST /v1/evaluate,
POST /-/reload, GET /metrics, GET /healthz, GET / (dashboard), GET /v1/openapi.json.
See docs/operations.md.")]
pub struct Args {
    /// Rule files or folders (all *.mlc below them); repeatable.
    #[arg(long, env = "MLC_CHECKS", value_delimiter = ',')]
    checks: Vec<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9400].
    #[arg(long, env = "MLC_LISTEN")]
    listen: Option<String>,
    /// Store URL: sqlite://PATH or postgres://... [default: sqlite://mlc.db].
    #[arg(long, env = "MLC_DB")]
    db: Option<String>,
    /// Bearer token required on every endpoint but /healthz and /metrics.
    #[arg(long, env = "MLC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Alertmanager base URL (alerts go to URL/api/v2/alerts); repeatable.
    #[arg(long, env = "MLC_ALERTMANAGER", value_delimiter = ',')]
    alertmanager: Vec<String>,
    /// Webhook URL that receives every alert change as JSON; repeatable.
    #[arg(long, env = "MLC_WEBHOOK", value_delimiter = ',')]
    webhook: Vec<String>,
    /// Config file [default: ./mlc.toml when it exists].
    #[arg(long, env = "MLC_CONFIG")]
    config: Option<PathBuf>,
    /// Largest accepted ingest body in bytes (413 above) [default: 64 MiB].
    #[arg(long, env = "MLC_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Most slice/column series one check exposes on /metrics [default: 1000].
    #[arg(long, env = "MLC_MAX_SERIES_PER_CHECK")]
    max_series_per_check: Option<usize>,
    /// Most bytes the checks' cached pane states hold together; 0 re-reads every window at
    /// every evaluation (docs/evaluation.md#panes) [default: 1 GiB].
    #[arg(long, env = "MLC_PANE_CACHE_BYTES")]
    pane_cache_bytes: Option<u64>,
    /// Do not watch the rule files (reload with POST /-/reload or SIGHUP only).
    #[arg(long, env = "MLC_NO_WATCH")]
    no_watch: bool,
    /// Quiet period after a file change before reloading, in ms [default: 500].
    #[arg(long, env = "MLC_DEBOUNCE_MS")]
    debounce_ms: Option<u64>,
    /// Retries of a failed alert delivery [default: 5].
    #[arg(long, env = "MLC_NOTIFY_RETRIES")]
    notify_retries: Option<u32>,
    /// First retry delay in ms, doubled per attempt up to 30 s [default: 500].
    #[arg(long, env = "MLC_NOTIFY_BACKOFF_MS")]
    notify_backoff_ms: Option<u64>,
    /// How long shutdown waits for evaluations and alert deliveries [default: 30].
    #[arg(long, env = "MLC_SHUTDOWN_TIMEOUT_SECS")]
    shutdown_timeout_secs: Option<u64>,
    /// Seconds a request's header may take to arrive (also how long an idle keep-alive
    /// connection is kept) [default: 10].
    #[arg(long, env = "MLC_HEADER_TIMEOUT_SECS")]
    header_timeout_secs: Option<u64>,
    /// Seconds a request's body may take to arrive after its header (408 after) [default: 60].
    #[arg(long, env = "MLC_BODY_TIMEOUT_SECS")]
    body_timeout_secs: Option<u64>,
    /// Where alert state is saved [default: next to a SQLite store, else ./mlc-alerts.json].
    #[arg(long, env = "MLC_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// Log as JSON lines instead of text (level from RUST_LOG, default info).
    #[arg(long, env = "MLC_LOG_JSON")]
    log_json: bool,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let file_path = args.config.clone().or_else(|| {
        let default = PathBuf::from("mlc.toml");
        default.exists().then_some(default)
    });
    let file = file_path
        .as_deref()
        .map(ConfigLayer::from_toml_file)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let cli = ConfigLayer {
        checks: (!args.checks.is_empty()).then_some(args.checks),
        listen: args.listen,
        db: args.db,
        token: args.token,
        alertmanager: (!args.alertmanager.is_empty()).then_some(args.alertmanager),
        webhook: (!args.webhook.is_empty()).then_some(args.webhook),
        max_body_bytes: args.max_body_bytes,
        max_series_per_check: args.max_series_per_check,
        pane_cache_bytes: args.pane_cache_bytes,
        watch: args.no_watch.then_some(false),
        debounce_ms: args.debounce_ms,
        notify_retries: args.notify_retries,
        notify_backoff_ms: args.notify_backoff_ms,
        shutdown_timeout_secs: args.shutdown_timeout_secs,
        state_file: args.state_file,
        header_timeout_secs: args.header_timeout_secs,
        body_timeout_secs: args.body_timeout_secs,
    };
    let config = ServiceConfig::resolve(cli, file).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        let backend = service::store_backend::StoreBackend::open(&config)
            .await
            .map_err(anyhow::Error::msg)?;
        service::serve(config, Arc::new(backend)).await?;
        Ok(ExitCode::SUCCESS)
    });
    // Dropping the runtime would wait for every blocking task, and a rules load stuck in a
    // read (the reload that gave up on it is long answered) would keep the process alive
    // after "shutdown complete".
    runtime.shutdown_timeout(BLOCKING_TASKS_GRACE);
    outcome
}

/// How long the process waits at exit for blocking tasks still running (everything that
/// matters was finished and saved by `service::serve` before it returned).
const BLOCKING_TASKS_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
