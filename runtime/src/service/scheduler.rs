//! Runs each check on its `every`, at times aligned to multiples of the interval since the
//! Unix epoch, so that results of all checks (and of replicas) line up in time.
//!
//! One timer task per check; the evaluation itself is spawned, so a slow check delays no
//! other. Before evaluating, a replica claims the (check, slot) in the store: with several
//! replicas on one store, each slot is evaluated once. A check whose previous evaluation is still running skips its slot (counted in
//! `mlc_evaluations_skipped_total`) instead of piling up work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::App;
use super::backend::CheckInfo;

struct Entry {
    fingerprint: String,
    running: Arc<AtomicBool>,
    next_us: Arc<AtomicI64>,
    task: JoinHandle<()>,
}

#[derive(Default)]
pub(crate) struct Scheduler {
    entries: HashMap<String, Entry>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("checks", &self.entries.len())
            .finish()
    }
}

/// What a reload did to the schedule.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SyncReport {
    pub kept: Vec<String>,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
}

pub fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// The first slot strictly after `now_us` for an interval of `every_us`.
pub(crate) fn next_slot(now_us: i64, every_us: i64) -> i64 {
    let every_us = every_us.max(1);
    now_us
        .div_euclid(every_us)
        .saturating_add(1)
        .saturating_mul(every_us)
}

/// The latest slot at or before `now_us`: the one a check evaluates when it starts.
pub(crate) fn current_slot(now_us: i64, every_us: i64) -> i64 {
    let every_us = every_us.max(1);
    now_us.div_euclid(every_us).saturating_mul(every_us)
}

/// The start evaluations of the checks started together are spread over at most this long…
const START_SPREAD: Duration = Duration::from_secs(30);
/// …and at most this far apart, so that they do not all read the store at once.
const START_STEP: Duration = Duration::from_millis(200);

/// When the `i`-th of `n` checks started together evaluates its current slot.
pub(crate) fn start_delay(i: usize, n: usize) -> Duration {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let i = u32::try_from(i).unwrap_or(u32::MAX).min(n - 1);
    START_STEP.min(START_SPREAD / n) * i
}

impl Scheduler {
    /// Makes the running timers match `checks`: unchanged checks (same fingerprint) keep
    /// their timer and in-flight state, changed ones restart, removed ones stop. A started
    /// timer (at start, or for a new or changed check) first evaluates its check's current
    /// slot, so that a check with a long `every` shows results at once; those first runs are
    /// staggered ([`start_delay`]).
    pub fn sync(&mut self, app: &Arc<App>, checks: &[CheckInfo]) -> SyncReport {
        let starting = checks
            .iter()
            .filter(|c| {
                self.entries
                    .get(&c.name)
                    .is_none_or(|e| e.fingerprint != c.fingerprint)
            })
            .count();
        let mut report = SyncReport::default();
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        let removed: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !names.contains(&k.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(e) = self.entries.remove(&name) {
                e.task.abort();
            }
            report.stopped.push(name);
        }
        for check in checks {
            if let Some(e) = self.entries.get(&check.name)
                && e.fingerprint == check.fingerprint
            {
                report.kept.push(check.name.clone());
                continue;
            }
            let running = self
                .entries
                .remove(&check.name)
                .map(|e| {
                    e.task.abort();
                    // A changed check's evaluation still in flight keeps the skip guard.
                    e.running
                })
                .unwrap_or_default();
            let next_us = Arc::new(AtomicI64::new(0));
            let every_us = i64::try_from(check.every_secs.max(1))
                .unwrap_or(86_400)
                .saturating_mul(1_000_000);
            let delay = start_delay(report.started.len(), starting);
            let task = tokio::spawn(run_loop(
                Arc::downgrade(app),
                check.name.clone(),
                every_us,
                running.clone(),
                next_us.clone(),
                delay,
            ));
            self.entries.insert(
                check.name.clone(),
                Entry {
                    fingerprint: check.fingerprint.clone(),
                    running,
                    next_us,
                    task,
                },
            );
            report.started.push(check.name.clone());
        }
        report
    }

    /// The next scheduled evaluation time of a check, microseconds since the epoch.
    pub(crate) fn next_run_us(&self, check: &str) -> Option<i64> {
        self.entries
            .get(check)
            .map(|e| e.next_us.load(Ordering::Relaxed))
            .filter(|&v| v > 0)
    }

    pub(crate) fn stop_all(&mut self) {
        for (_, e) in self.entries.drain() {
            e.task.abort();
        }
    }
}

async fn run_loop(
    app: Weak<App>,
    name: String,
    every_us: i64,
    running: Arc<AtomicBool>,
    next_us: Arc<AtomicI64>,
    start_delay: Duration,
) {
    // First the current slot (the latest at or before now), after the staggering delay. Its
    // time is taken after the delay, so it is always before the next slot below: evaluation
    // times of a check only go forward.
    next_us.store(
        now_us().saturating_add(i64::try_from(start_delay.as_micros()).unwrap_or(i64::MAX)),
        Ordering::Relaxed,
    );
    tokio::time::sleep(start_delay).await;
    if !run_slot(&app, &name, current_slot(now_us(), every_us), &running) {
        return;
    }
    loop {
        let now = now_us();
        let slot = next_slot(now, every_us);
        next_us.store(slot, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_micros(
            u64::try_from(slot.saturating_sub(now)).unwrap_or(0),
        ))
        .await;
        if !run_slot(&app, &name, slot, &running) {
            return;
        }
    }
}

/// Starts the evaluation of `slot` unless the previous one is still running (then the slot
/// is skipped and counted). `false` when the service is gone or shutting down.
fn run_slot(app: &Weak<App>, name: &str, slot: i64, running: &Arc<AtomicBool>) -> bool {
    let name = name.to_string();
    let Some(app) = app.upgrade() else {
        return false;
    };
    if app.is_shutting_down() {
        return false;
    }
    if running.swap(true, Ordering::AcqRel) {
        app.metrics
            .evaluations_skipped
            .get_or_create(&super::metrics::CheckLabels {
                check: name.clone(),
            })
            .inc();
        tracing::warn!(check = %name, "previous evaluation still running; slot skipped");
        return true;
    }
    let guard = running.clone();
    let check = name.clone();
    let inflight = app.inflight_guard();
    tokio::spawn(async move {
        // Replicas sharing a store each see the slot; the one that claims it evaluates.
        match app.backend.claim_slot(check.clone(), slot).await {
            Ok(true) => {
                let _ = app.run_evaluation(&check, slot, true).await;
            }
            Ok(false) => {
                app.metrics
                    .evaluations_claimed_elsewhere
                    .get_or_create(&super::metrics::CheckLabels {
                        check: check.clone(),
                    })
                    .inc();
                tracing::debug!(
                    check = %check,
                    slot,
                    "slot already claimed (by another replica, or evaluated before a restart or reload)"
                );
            }
            Err(e) => {
                // Evaluating anyway may duplicate a replica's work; skipping could lose
                // the slot altogether. The store error will show in the evaluation too.
                tracing::warn!(check = %check, error = %e, "cannot claim the slot; evaluating");
                let _ = app.run_evaluation(&check, slot, true).await;
            }
        }
        guard.store(false, Ordering::Release);
        drop(inflight);
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_to_the_interval() {
        let m = 60_000_000;
        assert_eq!(next_slot(0, m), m);
        assert_eq!(next_slot(m - 1, m), m);
        assert_eq!(next_slot(m, m), 2 * m);
        assert_eq!(next_slot(125_000_000, m), 180_000_000);
        assert_eq!(current_slot(125_000_000, m), 120_000_000);
        assert_eq!(current_slot(m, m), m);
        assert_eq!(next_slot(i64::MAX - 1, m), i64::MAX, "saturates");
    }

    #[test]
    fn start_evaluations_are_staggered_within_bounds() {
        assert_eq!(start_delay(0, 1), Duration::ZERO);
        assert_eq!(start_delay(1, 2), START_STEP);
        let last = start_delay(999, 1000);
        assert!(last <= START_SPREAD && last > START_SPREAD / 2, "{last:?}");
        assert!(start_delay(5, 1000) < start_delay(6, 1000));
    }
}
