//! Why a plugin call failed, typed: [`PluginFailure`] (the cause, with a `reason()` label
//! for `/metrics`) and [`PluginError`] (the cause plus where it happened, whose `Display` is
//! the sentence users read in results). [`FailureCounts`] tallies failures by plugin and
//! reason for the sessions that are given one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::host::{bytes_text, duration_text};

/// The cause of a plugin failure. `Display` gives the cause as users read it, e.g. `it ran
/// out of fuel (a budget of 1000 instructions); raise it with ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginFailure {
    /// It ran past its time budget (`timeout`, summed over the calls of one evaluation).
    Timeout { limit: Duration },
    /// It spent its instruction budget (`fuel`).
    OutOfFuel { budget: u64 },
    /// It asked for more linear memory than its cap (`memory`); both in bytes.
    Memory { limit: u64, asked: u64 },
    /// It overflowed its call stack.
    StackOverflow,
    /// Any other trap (`unreachable`, an out-of-bounds access, ...): wasmtime's text of it.
    Trap(String),
    /// It answered with something the host cannot use (a NaN or infinite result, a block
    /// outside its memory): the whole sentence.
    BadOutput(String),
    /// It reported a failure itself (a status other than success, with the message from
    /// `mlc_last_error`): the whole sentence.
    Reported(String),
    /// Anything else (a host-side refusal, a wasmtime error that is not a trap).
    Other(String),
}

impl PluginFailure {
    /// Every label [`PluginFailure::reason`] gives, in a stable order.
    pub const REASONS: [&'static str; 8] = [
        "timeout", "fuel", "memory", "stack", "trap", "output", "reported", "other",
    ];

    /// A short label for counting failures by cause (the `reason` of
    /// `mlc_plugin_failures_total`).
    pub fn reason(&self) -> &'static str {
        match self {
            PluginFailure::Timeout { .. } => "timeout",
            PluginFailure::OutOfFuel { .. } => "fuel",
            PluginFailure::Memory { .. } => "memory",
            PluginFailure::StackOverflow => "stack",
            PluginFailure::Trap(_) => "trap",
            PluginFailure::BadOutput(_) => "output",
            PluginFailure::Reported(_) => "reported",
            PluginFailure::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginFailure::Timeout { limit } => write!(
                f,
                "it exceeded its timeout of {} and was stopped; raise it with `timeout` in the \
                 plugin declaration",
                duration_text(*limit)
            ),
            PluginFailure::OutOfFuel { budget } => write!(
                f,
                "it ran out of fuel (a budget of {budget} instructions); raise it with `fuel` in \
                 the plugin declaration"
            ),
            PluginFailure::Memory { limit, asked } => write!(
                f,
                "it exceeded its memory limit of {} (it asked for {}); raise it with `memory` in \
                 the plugin declaration",
                bytes_text(*limit),
                bytes_text(*asked)
            ),
            PluginFailure::StackOverflow => {
                f.write_str("it overflowed its stack (trap: stack overflow)")
            }
            PluginFailure::Trap(text) => write!(f, "trap: {text}"),
            PluginFailure::BadOutput(text)
            | PluginFailure::Reported(text)
            | PluginFailure::Other(text) => f.write_str(text),
        }
    }
}

/// Where a failure happened; decides how [`PluginError`] words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum During {
    /// While the instance started (its start function, its initial memory). The sentence
    /// does not name the plugin: the caller says which file or plugin it was.
    Start,
    /// In the named export.
    Call(&'static str),
    /// Before a call, when the time budget was already spent by earlier calls.
    BetweenCalls,
    /// Elsewhere: the failure's own text is the whole sentence.
    Host,
}

/// A plugin failure and where it happened. `Display` is the sentence a result shows, e.g.
/// ``plugin `ece` failed in mlc_agg_update: trap: wasm `unreachable` instruction executed``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PluginError {
    pub plugin: String,
    pub during: During,
    pub failure: PluginFailure,
}

impl PluginError {
    pub fn new(plugin: &str, during: During, failure: PluginFailure) -> PluginError {
        PluginError {
            plugin: plugin.to_string(),
            during,
            failure,
        }
    }

    /// A failure whose text is the whole sentence ([`During::Host`]).
    pub fn host(plugin: &str, failure: PluginFailure) -> PluginError {
        PluginError::new(plugin, During::Host, failure)
    }

    pub fn reason(&self) -> &'static str {
        self.failure.reason()
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plugin = &self.plugin;
        match (self.during, &self.failure) {
            (During::Start, PluginFailure::Memory { limit, asked }) => write!(
                f,
                "it needs {} of memory to start, more than its limit of {}; raise it with \
                 `memory` in the plugin declaration",
                bytes_text(*asked),
                bytes_text(*limit)
            ),
            (During::Start, failure) => write!(f, "it cannot be started: {failure}"),
            (During::Call(call), failure) => {
                write!(f, "plugin `{plugin}` failed in {call}: {failure}")
            }
            (During::BetweenCalls, PluginFailure::Timeout { limit }) => write!(
                f,
                "plugin `{plugin}` exceeded its timeout of {} (raise it with `timeout` in the \
                 plugin declaration)",
                duration_text(*limit)
            ),
            (During::BetweenCalls | During::Host, failure) => failure.fmt(f),
        }
    }
}

impl std::error::Error for PluginError {}

/// Failures counted by (plugin, reason). Cloning shares the tally: give one to the sessions
/// of an evaluation ([`crate::LoadedPlugin::session_counted`]) and read it afterwards. Each
/// failing call counts once; the repeats of a poisoned sandbox do not count again.
#[derive(Debug, Clone, Default)]
pub struct FailureCounts {
    counts: Arc<Mutex<BTreeMap<(String, &'static str), u64>>>,
}

impl FailureCounts {
    pub fn new() -> FailureCounts {
        FailureCounts::default()
    }

    pub fn record(&self, plugin: &str, reason: &'static str) {
        // A poisoned lock only means another thread panicked while counting: keep counting.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((plugin.to_string(), reason)).or_default() += 1;
    }

    /// `(plugin, reason, count)` in plugin then reason order; empty when nothing failed.
    pub fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((plugin, reason), n)| (plugin.clone(), *reason, *n))
            .collect()
    }

    /// The count of one plugin and reason.
    pub fn get(&self, plugin: &str, reason: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .filter(|((p, r), _)| p == plugin && *r == reason)
            .map(|(_, n)| *n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_those_results_have_always_shown() {
        let at = |failure| PluginError::new("p", During::Call("mlc_agg_update"), failure);
        assert_eq!(
            at(PluginFailure::Timeout {
                limit: Duration::from_secs(1)
            })
            .to_string(),
            "plugin `p` failed in mlc_agg_update: it exceeded its timeout of 1s and was stopped; \
             raise it with `timeout` in the plugin declaration"
        );
        assert_eq!(
            at(PluginFailure::Memory {
                limit: 32 << 20,
                asked: 33 << 20
            })
            .to_string(),
            "plugin `p` failed in mlc_agg_update: it exceeded its memory limit of 32 MiB (it \
             asked for 33 MiB); raise it with `memory` in the plugin declaration"
        );
        assert_eq!(
            PluginError::new(
                "p",
                During::BetweenCalls,
                PluginFailure::Timeout {
                    limit: Duration::from_secs(2)
                }
            )
            .to_string(),
            "plugin `p` exceeded its timeout of 2s (raise it with `timeout` in the plugin \
             declaration)"
        );
        assert_eq!(
            PluginError::new(
                "p",
                During::Start,
                PluginFailure::Memory {
                    limit: 64 << 20,
                    asked: 128 << 20
                }
            )
            .to_string(),
            "it needs 128 MiB of memory to start, more than its limit of 64 MiB; raise it with \
             `memory` in the plugin declaration"
        );
        assert_eq!(
            PluginError::new("p", During::Start, PluginFailure::StackOverflow).to_string(),
            "it cannot be started: it overflowed its stack (trap: stack overflow)"
        );
        assert_eq!(
            PluginError::host("p", PluginFailure::BadOutput("plugin `p`: x".into())).to_string(),
            "plugin `p`: x"
        );
    }

    #[test]
    fn every_failure_has_one_of_the_documented_reasons() {
        let all = [
            PluginFailure::Timeout {
                limit: Duration::ZERO,
            },
            PluginFailure::OutOfFuel { budget: 1 },
            PluginFailure::Memory { limit: 1, asked: 2 },
            PluginFailure::StackOverflow,
            PluginFailure::Trap(String::new()),
            PluginFailure::BadOutput(String::new()),
            PluginFailure::Reported(String::new()),
            PluginFailure::Other(String::new()),
        ];
        let reasons: Vec<&str> = all.iter().map(PluginFailure::reason).collect();
        assert_eq!(reasons, PluginFailure::REASONS);
    }

    #[test]
    fn counts_add_up_per_plugin_and_reason() {
        let counts = FailureCounts::new();
        let shared = counts.clone();
        shared.record("a", "timeout");
        shared.record("a", "timeout");
        counts.record("b", "trap");
        assert_eq!(
            counts.snapshot(),
            vec![
                ("a".to_string(), "timeout", 2),
                ("b".to_string(), "trap", 1)
            ]
        );
        assert_eq!(counts.get("a", "timeout"), 2);
        assert_eq!(counts.get("a", "trap"), 0);
    }
}
