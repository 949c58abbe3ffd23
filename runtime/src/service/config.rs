//! The service's configuration: flags and environment variables (parsed by the command)
//! layered over an optional `mlc.toml`, layered over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Longest request header or body timeout accepted (a day): the timeouts exist so that a slow
/// client cannot hold a connection for good.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Default listen address: loopback only, so nothing is exposed by accident.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:9400";

/// One layer of settings; every field optional. The command line (with its environment
/// variables) is one layer, `mlc.toml` another; [`ServiceConfig::resolve`] merges them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConfigLayer {
    pub checks: Option<Vec<PathBuf>>,
    pub listen: Option<String>,
    pub db: Option<String>,
    pub token: Option<String>,
    pub alertmanager: Option<Vec<String>>,
    pub webhook: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub max_series_per_check: Option<usize>,
    pub pane_cache_bytes: Option<u64>,
    pub watch: Option<bool>,
    pub debounce_ms: Option<u64>,
    pub notify_retries: Option<u32>,
    pub notify_backoff_ms: Option<u64>,
    pub shutdown_timeout_secs: Option<u64>,
    pub state_file: Option<PathBuf>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
}

impl ConfigLayer {
    /// Reads `mlc.toml`. Unknown keys are refused so that a typo does not silently fall back
    /// to a default.
    pub fn from_toml_file(path: &Path) -> Result<ConfigLayer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file `{}`: {e}", path.display()))?;
        Self::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub(crate) fn from_toml_str(text: &str) -> Result<ConfigLayer, String> {
        toml::from_str(text).map_err(|e| format!("invalid config: {e}"))
    }

    /// `self` wins over `lower` field by field.
    fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            checks: self.checks.or(lower.checks),
            listen: self.listen.or(lower.listen),
            db: self.db.or(lower.db),
            token: self.token.or(lower.token),
            alertmanager: self.alertmanager.or(lower.alertmanager),
            webhook: self.webhook.or(lower.webhook),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            max_series_per_check: self.max_series_per_check.or(lower.max_series_per_check),
            pane_cache_bytes: self.pane_cache_bytes.or(lower.pane_cache_bytes),
            watch: self.watch.or(lower.watch),
            debounce_ms: self.debounce_ms.or(lower.debounce_ms),
            notify_retries: self.notify_retries.or(lower.notify_retries),
            notify_backoff_ms: self.notify_backoff_ms.or(lower.notify_backoff_ms),
            shutdown_timeout_secs: self.shutdown_timeout_secs.or(lower.shutdown_timeout_secs),
            state_file: self.state_file.or(lower.state_file),
            header_timeout_secs: self.header_timeout_secs.or(lower.header_timeout_secs),
            body_timeout_secs: self.body_timeout_secs.or(lower.body_timeout_secs),
        }
    }
}

/// The resolved configuration of one `mlc serve`.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Files or folders of `.mlc` rules.
    pub checks: Vec<PathBuf>,
    pub listen: SocketAddr,
    /// Store URL (`sqlite://PATH` or `postgres://...`).
    pub db: String,
    /// When set, every endpoint but `/healthz` and `/metrics` needs `Authorization: Bearer`.
    pub token: Option<String>,
    /// Alertmanager base URLs; alerts go to `{url}/api/v2/alerts`.
    pub alertmanager: Vec<String>,
    /// Plain webhook URLs; each alert change is POSTed as JSON.
    pub webhook: Vec<String>,
    /// Largest accepted ingest body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most `(slice, column)` series one check may expose on `/metrics`; more are dropped
    /// with a warning, so a `group by` over an id column cannot exhaust memory.
    pub max_series_per_check: usize,
    /// Most bytes the checks' pane states may hold together (docs/evaluation.md#panes); 0
    /// evaluates every check from its rows at every evaluation.
    pub pane_cache_bytes: u64,
    /// Watch the rule files and reload on change.
    pub watch: bool,
    pub debounce: Duration,
    /// Delivery attempts after the first one for each alert notification.
    pub notify_retries: u32,
    /// First retry delay; doubled for each further attempt.
    pub notify_backoff: Duration,
    /// How long shutdown waits for running evaluations and alert deliveries.
    pub shutdown_timeout: Duration,
    /// Where the alert state is saved; `None` = the backend's default.
    pub state_file: Option<PathBuf>,
    /// How long a request's header may take to arrive, from the moment the connection is
    /// ready for a request (accepted, or its previous response sent): slower clients, and
    /// idle keep-alive connections, are disconnected.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive once its header has; slower uploads get
    /// 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Longest a reload may spend reading the rules before it is refused (not a setting:
    /// [`RELOAD_TIMEOUT`]; tests shorten it).
    pub reload_timeout: Duration,
}

/// How long reading the rules may take before a reload is refused.
pub(crate) const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of `header_timeout_secs`.
pub(crate) const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default of `body_timeout_secs`.
pub(crate) const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;

impl ServiceConfig {
    /// Merges `cli` (flags and environment) over `file` (`mlc.toml`) over the defaults.
    pub fn resolve(cli: ConfigLayer, file: Option<ConfigLayer>) -> Result<ServiceConfig, String> {
        let layer = cli.over(file.unwrap_or_default());
        let checks = layer.checks.filter(|c| !c.is_empty()).ok_or_else(|| {
            "no rules given: pass `--checks PATH` (or `checks = [\"PATH\"]` in mlc.toml)"
                .to_string()
        })?;
        let listen_text = layer.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            format!("invalid listen address `{listen_text}`: {e} (expected e.g. 127.0.0.1:9400)")
        })?;
        let mut urls = Vec::new();
        for url in layer
            .alertmanager
            .iter()
            .flatten()
            .chain(layer.webhook.iter().flatten())
        {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "invalid URL `{url}`: it must start with http:// or https://"
                ));
            }
            urls.push(url);
        }
        let header_timeout_secs = layer
            .header_timeout_secs
            .unwrap_or(DEFAULT_HEADER_TIMEOUT_SECS);
        let body_timeout_secs = layer.body_timeout_secs.unwrap_or(DEFAULT_BODY_TIMEOUT_SECS);
        for (name, secs) in [
            ("header_timeout_secs", header_timeout_secs),
            ("body_timeout_secs", body_timeout_secs),
        ] {
            if secs == 0 || secs > MAX_TIMEOUT_SECS {
                return Err(format!(
                    "invalid {name} {secs}: it must be between 1 and {MAX_TIMEOUT_SECS} seconds \
                     (--{} N)",
                    name.replace('_', "-")
                ));
            }
        }
        Ok(ServiceConfig {
            checks,
            listen,
            db: layer.db.unwrap_or_else(|| "sqlite://mlc.db".to_string()),
            token: layer.token.filter(|t| !t.is_empty()),
            alertmanager: layer.alertmanager.unwrap_or_default(),
            webhook: layer.webhook.unwrap_or_default(),
            max_body_bytes: layer.max_body_bytes.unwrap_or(64 * 1024 * 1024),
            max_series_per_check: layer.max_series_per_check.unwrap_or(1000),
            pane_cache_bytes: layer
                .pane_cache_bytes
                .unwrap_or(crate::exec::PANE_CACHE_BYTES),
            watch: layer.watch.unwrap_or(true),
            debounce: Duration::from_millis(layer.debounce_ms.unwrap_or(500)),
            notify_retries: layer.notify_retries.unwrap_or(5),
            notify_backoff: Duration::from_millis(layer.notify_backoff_ms.unwrap_or(500)),
            shutdown_timeout: Duration::from_secs(layer.shutdown_timeout_secs.unwrap_or(30)),
            state_file: layer.state_file,
            header_timeout: Duration::from_secs(header_timeout_secs),
            body_timeout: Duration::from_secs(body_timeout_secs),
            reload_timeout: RELOAD_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let file = ConfigLayer::from_toml_str(
            "checks = [\"rules\"]\nlisten = \"127.0.0.1:9999\"\nwebhook = [\"http://h/x\"]\n",
        )
        .unwrap();
        let cli = ConfigLayer {
            listen: Some("127.0.0.1:1234".into()),
            ..Default::default()
        };
        let cfg = ServiceConfig::resolve(cli, Some(file)).unwrap();
        assert_eq!(cfg.listen.port(), 1234);
        assert_eq!(cfg.checks, vec![PathBuf::from("rules")]);
        assert_eq!(cfg.webhook, vec!["http://h/x".to_string()]);
        assert_eq!(cfg.db, "sqlite://mlc.db");
    }

    #[test]
    fn default_listen_is_loopback() {
        let cli = ConfigLayer {
            checks: Some(vec!["c".into()]),
            ..Default::default()
        };
        let cfg = ServiceConfig::resolve(cli, None).unwrap();
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert!(cfg.listen.ip().is_loopback());
    }

    #[test]
    fn errors_name_the_fix() {
        let err = ServiceConfig::resolve(ConfigLayer::default(), None).unwrap_err();
        assert!(err.contains("--checks"), "{err}");
        let err = ConfigLayer::from_toml_str("lisen = \"x\"").unwrap_err();
        assert!(err.contains("lisen"), "{err}");
        let cli = ConfigLayer {
            checks: Some(vec!["c".into()]),
            alertmanager: Some(vec!["am:9093".into()]),
            ..Default::default()
        };
        assert!(
            ServiceConfig::resolve(cli, None)
                .unwrap_err()
                .contains("http://")
        );
    }
}
