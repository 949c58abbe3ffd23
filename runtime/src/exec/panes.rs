//! Panes (docs/evaluation.md#panes): `mlc serve` keeps, per check, the partial state of each
//! pane of its window (a fixed grid of time ranges, by default as wide as its `every`) between
//! evaluations, and at each evaluation computes only the panes it does not hold: the edges of
//! the window that are not whole panes, the panes new since the last evaluation, and those the
//! store's change journal says gained or lost rows (a late row, a prune) since the pane was
//! computed, whichever process or replica wrote them. The window's state is the merge of its
//! panes in time order, concluded as a full read's would be.
//!
//! A check takes panes when it reads no join and has a `window`, its baseline (if any) is a
//! shifted window (`baseline offset`) or a fixed range (`baseline from .. to ..`), and it
//! calls no plugin; others are evaluated from their rows at every evaluation, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{RecordBatch, UInt32Array};
use mlc_engine::eval::{CheckState, Conclusion, Frame, SourceRows};
use mlc_engine::functions::Side;
use mlc_engine::plan::{BaselinePlan, CheckPlan, FunctionRef};
use mlc_wasm::FailureCounts;

use super::stream::{self, Owned};
use super::{BaselineReads, Executor, Reads, check_times, event_age};
use crate::results::CheckResult;

/// The default most bytes the pane states of all checks may hold together
/// (`pane_cache_bytes` in `mlc serve`'s config, `MLC_PANE_CACHE_BYTES`).
pub const PANE_CACHE_BYTES: u64 = 1 << 30;

/// The most panes a window is cut into.
const MAX_PANES: u64 = 1024;

/// Pane widths tried after the check's `every`, narrowest first (seconds).
const WIDTHS: [u64; 7] = [60, 300, 900, 3_600, 6 * 3_600, 86_400, 7 * 86_400];

/// What the pane cache did, summed over evaluations (for tests and `/metrics`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PaneStats {
    /// Evaluations answered from panes.
    pub evaluations: u64,
    /// Panes taken from the cache.
    pub reused: u64,
    /// Panes (and partial edge panes) computed from rows.
    pub computed: u64,
    /// Panes taken from the cache and brought up to date with the rows written since.
    pub updated: u64,
    /// Evaluations that slid the last window's state rather than merging every pane.
    pub slid: u64,
    /// Rows read to compute them.
    pub rows_read: u64,
}

/// The panes of every check of one rule set, bounded in bytes.
pub(crate) struct PaneCache {
    budget: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    checks: HashMap<String, CheckPanes>,
    /// Checks evaluated from their rows from now on, and why.
    off: HashMap<String, String>,
    stats: PaneStats,
}

struct Window {
    members: std::collections::HashSet<RangeKey>,
    state: CheckState,
}

/// One range of a check's rows: a pane, or the part of one at a window's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RangeKey {
    baseline: bool,
    start: i64,
    end: i64,
}

struct CheckPanes {
    /// The last change-journal entry these states have seen.
    seq: i64,
    width_us: i64,
    states: HashMap<RangeKey, Arc<CheckState>>,
    /// The last evaluation's window: the merge of the panes `members`, concluded (its values
    /// sorted). The next evaluation slides it ([`CheckState::slide`]) by the panes that leave
    /// and join rather than merging every pane again.
    window: Option<Window>,
    bytes: u64,
}

impl PaneCache {
    pub(crate) fn new(budget: u64) -> PaneCache {
        PaneCache {
            budget,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> PaneStats {
        self.lock().stats
    }

    /// Why `check` is evaluated without panes, if it is.
    pub(crate) fn off_reason(&self, check: &str) -> Option<String> {
        self.lock().off.get(check).cloned()
    }

    fn turn_off(&self, check: &str, why: String) {
        tracing::info!(check, reason = %why, "evaluated from its rows at every evaluation, without panes");
        let mut inner = self.lock();
        inner.checks.remove(check);
        inner.off.insert(check.to_string(), why);
    }

    fn take(&self, check: &str) -> Option<CheckPanes> {
        self.lock().checks.remove(check)
    }

    /// Keeps `panes` for the next evaluation if they fit the budget beside the others' (else
    /// the check goes without panes).
    fn put(&self, check: &str, panes: CheckPanes) {
        let mut inner = self.lock();
        let others: u64 = inner.checks.values().map(|p| p.bytes).sum();
        if others + panes.bytes > self.budget {
            drop(inner);
            self.turn_off(
                check,
                format!(
                    "its panes hold about {} MiB, past the pane cache's {} MiB with the other \
                     checks' {} MiB (raise `pane_cache_bytes`)",
                    panes.bytes >> 20,
                    self.budget >> 20,
                    others >> 20
                ),
            );
            return;
        }
        inner.checks.insert(check.to_string(), panes);
    }
}

/// Whether `plan` can be evaluated from panes, else why not.
pub(crate) fn eligible(plan: &CheckPlan) -> Result<(), &'static str> {
    if !stream::streams(plan) {
        return Err("it reads a join");
    }
    if plan.window_secs.is_none() {
        return Err("it has no `window`");
    }
    if matches!(plan.baseline, Some(BaselinePlan::Component { .. })) {
        return Err("its baseline is a whole component");
    }
    if plan
        .aggregates
        .iter()
        .any(|a| matches!(a.function, FunctionRef::Plugin(_)))
    {
        return Err("it calls a plugin, whose states live in one evaluation's sandbox");
    }
    Ok(())
}

/// The pane width of a check, in seconds: its `every` when that divides the window into at
/// most [`MAX_PANES`] panes, else the narrowest of [`WIDTHS`] that does; `None` when none
/// does.
pub fn pane_width_secs(plan: &CheckPlan) -> Option<u64> {
    let window = plan.window_secs?;
    let fits = |w: u64| w > 0 && window % w == 0 && window / w <= MAX_PANES;
    std::iter::once(plan.every_secs)
        .chain(WIDTHS)
        .find(|&w| fits(w))
}

/// `[start, end)` cut at multiples of `width` (from the epoch): the partial pane at each
/// edge and the whole panes between.
fn cut(start: i64, end: i64, width: i64, baseline: bool) -> Vec<RangeKey> {
    let mut out = Vec::new();
    let mut lo = start;
    while lo < end {
        let next = (lo.div_euclid(width) + 1).saturating_mul(width).min(end);
        out.push(RangeKey {
            baseline,
            start: lo,
            end: next,
        });
        lo = next;
    }
    out
}

impl Executor {
    /// The results of `plan` at `at_us` from its panes, computing those the cache lacks;
    /// `None` when the check is not taken from panes (the caller evaluates it from its rows).
    pub(super) async fn evaluate_paned(
        &self,
        plan: &CheckPlan,
        at_us: i64,
        plugin_failures: &FailureCounts,
    ) -> Option<Vec<CheckResult>> {
        let cache = self.panes.as_ref()?;
        if cache.off_reason(&plan.name).is_some() {
            return None;
        }
        if let Err(why) = eligible(plan) {
            cache.turn_off(&plan.name, why.to_string());
            return None;
        }
        let Some(width) = pane_width_secs(plan) else {
            cache.turn_off(
                &plan.name,
                "no pane width divides its window into at most 1024 panes".into(),
            );
            return None;
        };
        let width_us = super::secs_us(width);
        let mut reads = Reads::default();
        let check_reads = self.plan_reads(plan, at_us, &mut reads);
        let timing = check_reads.timing;
        let fail = |reason: &str| {
            Some(vec![CheckResult::error(
                plan,
                reason,
                timing,
                &self.rules_version,
            )])
        };
        let current = &check_reads.current.first;
        let mut needed = cut(current.start?, current.end, width_us, false);
        if let Some(BaselineReads::Source(b)) = &check_reads.baseline {
            needed.extend(cut(b.first.start?, b.first.end, width_us, true));
        }

        let started = std::time::Instant::now();
        // The journal first, then the rows (see `fresh` below).
        let old = cache.take(&plan.name);
        let log = match self.store.changes_since(old.as_ref().map(|p| p.seq)).await {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(check = %plan.name, error = %e, "cannot read the change journal; evaluating from the rows");
                return None;
            }
        };
        let journal_at = started.elapsed();
        let component = current.component.clone();
        let touches = |c: &mlc_store::Change, k: &RangeKey| {
            c.component == component && c.from_us < k.end && k.start < c.to_us
        };
        let owned = self.owned(plugin_failures);
        let mut rows_read = 0u64;
        let mut updated = 0usize;
        let mut leave: Vec<Arc<CheckState>> = Vec::new();
        let mut panes = match old {
            Some(mut p) if log.complete && p.width_us == width_us => {
                // Panes no longer needed go; a pane whose rows changed in a way the journal
                // cannot give (a prune, a store without row numbers) is computed again; one
                // that only gained rows the journal numbers takes those rows alone. What
                // goes leaves the window.
                let wanted: std::collections::HashSet<&RangeKey> = needed.iter().collect();
                let gone: Vec<RangeKey> = p
                    .states
                    .keys()
                    .filter(|k| {
                        !wanted.contains(k)
                            || log
                                .changes
                                .iter()
                                .any(|c| c.rowids.is_none() && touches(c, k))
                    })
                    .copied()
                    .collect();
                for k in gone {
                    if let Some(state) = p.states.remove(&k)
                        && let Some(w) = &mut p.window
                        && w.members.remove(&k)
                    {
                        leave.push(state);
                    }
                }
                let mut writes: Vec<(i64, i64)> = log
                    .changes
                    .iter()
                    .filter(|c| p.states.keys().any(|k| touches(c, k)))
                    .filter_map(|c| c.rowids)
                    .collect();
                writes.sort_unstable();
                writes.dedup();
                if !writes.is_empty() {
                    match self.add_rows(plan, &reads, &mut p, &writes, &owned).await {
                        Ok((rows, panes)) => {
                            rows_read += rows;
                            updated = panes;
                        }
                        Err(e) => {
                            tracing::warn!(check = %plan.name, error = %e, "cannot bring the panes up to date; computing them again");
                            p.states.clear();
                            p.window = None;
                        }
                    }
                }
                p
            }
            _ => CheckPanes {
                seq: 0,
                width_us,
                states: HashMap::new(),
                window: None,
                bytes: 0,
            },
        };
        panes.seq = log.last;
        let updated_at = started.elapsed();

        let missing: Vec<RangeKey> = needed
            .iter()
            .filter(|k| !panes.states.contains_key(k))
            .copied()
            .collect();
        let (reused, computed) = (needed.len() - missing.len(), missing.len());
        // Runs of adjacent missing ranges of one side are read in one pass.
        let mut runs: Vec<Vec<RangeKey>> = Vec::new();
        for k in missing.iter().copied() {
            match runs.last_mut() {
                Some(run)
                    if run
                        .last()
                        .is_some_and(|l| l.baseline == k.baseline && l.end == k.start) =>
                {
                    run.push(k)
                }
                _ => runs.push(vec![k]),
            }
        }
        for run in runs {
            match self.compute_panes(plan, &reads, &run, &owned).await {
                Ok((states, rows)) => {
                    rows_read += rows;
                    for (k, s) in run.into_iter().zip(states) {
                        panes.states.insert(k, Arc::new(s));
                    }
                }
                Err(e) => return fail(&e),
            }
        }

        // A pane computed from the rows holds every write the journal had before the read
        // (`log`), and maybe some of those committed during it: those that touch it are read
        // again from the journal next time, so such a pane is not kept (the others are exact
        // as of `log`, and take the later writes as every pane does).
        let fresh: Vec<RangeKey> = missing;
        let ambiguous: Vec<RangeKey> = match self.store.changes_since(Some(log.last)).await {
            Ok(after) if after.complete => fresh
                .iter()
                .filter(|k| after.changes.iter().any(|c| touches(c, k)))
                .copied()
                .collect(),
            _ => fresh.clone(),
        };

        let computed_at = started.elapsed();
        let mut conclusion = Conclusion {
            has_baseline: plan.baseline.is_some(),
            event_age_secs: None,
        };
        if check_reads.event_age {
            let max_time = self.max_times(reads.max_time.clone()).await;
            match event_age(plan, timing, &max_time) {
                Ok(age) => conclusion.event_age_secs = age,
                Err(e) => return fail(&e),
            }
        }

        // Slide the last window by the panes that left and joined it, or merge every pane in
        // time order (current, then baseline); conclude, keeping the state; off the async
        // threads.
        let all: Vec<Arc<CheckState>> = needed
            .iter()
            .filter_map(|k| panes.states.get(k).cloned())
            .collect();
        let mut window = panes.window.take();
        let join: Vec<Arc<CheckState>> = match &window {
            Some(w) => needed
                .iter()
                .filter(|k| !w.members.contains(k))
                .filter_map(|k| panes.states.get(k).cloned())
                .collect(),
            None => Vec::new(),
        };
        if window
            .as_ref()
            .is_some_and(|w| w.members.iter().any(|k| !panes.states.contains_key(k)))
        {
            window = None;
        }
        let plan_owned = plan.clone();
        let concluded = tokio::task::spawn_blocking(move || {
            owned.with(|ctx| {
                let make = |call: &_| ctx.make(call);
                fn refs(v: &[Arc<CheckState>]) -> Vec<&CheckState> {
                    v.iter().map(|s| s.as_ref()).collect()
                }
                let slid = match window {
                    Some(mut w) => {
                        let ok = w.state.slide(
                            &plan_owned,
                            &refs(&leave),
                            &refs(&join),
                            &refs(&all),
                            &make,
                        );
                        matches!(ok, Ok(true)).then_some(w.state)
                    }
                    None => None,
                };
                let slid_ok = slid.is_some();
                let mut merged = match slid {
                    Some(state) => state,
                    None => {
                        let mut merged = CheckState::new(&plan_owned, &make, ctx.max_series);
                        for s in &all {
                            merged.merge_from(&plan_owned, s, &make)?;
                        }
                        merged
                    }
                };
                let columns = merged.columns();
                if merged.needs_second_read(0..columns) {
                    return Ok::<_, mlc_engine::functions::EvalError>(None);
                }
                let outcomes = merged.conclude_kept(&plan_owned, &conclusion, &make);
                merged.drop_unretractable(&plan_owned, &make);
                Ok(Some((outcomes, merged, slid_ok)))
            })
        })
        .await;
        let (outcomes, merged, slid) = match concluded {
            Ok(Ok(Some(got))) => got,
            Ok(Ok(None)) => {
                cache.turn_off(
                    &plan.name,
                    "`distinct`/`duplicate_rate` keep codes whose repeats need a second read of \
                     the rows"
                        .into(),
                );
                return None;
            }
            Ok(Err(e)) => return fail(&e.to_string()),
            Err(e) => return fail(&format!("the evaluation stopped unexpectedly: {e}")),
        };

        // Keep the ranges this evaluation used: the next one, a step later, shares most.
        let used: std::collections::HashSet<RangeKey> = needed.iter().copied().collect();
        panes
            .states
            .retain(|k, _| used.contains(k) && !ambiguous.contains(k));
        // The window holds what its panes hold, unless a pane may hold a write the journal
        // gives again: then the next evaluation merges its panes afresh.
        let window_bytes = merged.held_bytes() as u64;
        panes.window = ambiguous.is_empty().then(|| Window {
            members: used,
            state: merged,
        });
        panes.bytes = window_bytes
            + panes
                .states
                .values()
                .map(|s| s.held_bytes() as u64 + 256)
                .sum::<u64>();
        tracing::debug!(
            check = %plan.name,
            reused,
            updated,
            computed,
            rows_read,
            journal_ms = journal_at.as_secs_f64() * 1e3,
            update_ms = updated_at.as_secs_f64() * 1e3,
            compute_ms = (computed_at - updated_at).as_secs_f64() * 1e3,
            conclude_ms = (started.elapsed() - computed_at).as_secs_f64() * 1e3,
            "evaluated from panes"
        );
        cache.put(&plan.name, panes);
        {
            let mut inner = cache.lock();
            inner.stats.evaluations += 1;
            inner.stats.reused += reused as u64;
            inner.stats.computed += computed as u64;
            inner.stats.updated += updated as u64;
            inner.stats.slid += u64::from(slid);
            inner.stats.rows_read += rows_read;
        }
        Some(
            outcomes
                .iter()
                .map(|o| CheckResult::from_outcome(plan, o, timing, &self.rules_version))
                .collect(),
        )
    }

    /// The states of adjacent ranges `run` (one side), from one read over all of them, each
    /// batch's rows handed to the range their time falls in. Also the rows read.
    async fn compute_panes(
        &self,
        plan: &CheckPlan,
        reads: &Reads,
        run: &[RangeKey],
        owned: &Owned,
    ) -> Result<(Vec<CheckState>, u64), String> {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok((Vec::new(), 0));
        };
        let baseline = first.baseline;
        let side = if baseline {
            Side::Baseline
        } else {
            Side::Current
        };
        let (time, baseline_time) = check_times(&self.program, plan);
        let time = if baseline {
            baseline_time.unwrap_or(time)
        } else {
            time
        };
        let component = super::first_component(plan).to_string();
        let (columns, nulls_only) = pane_columns(plan, reads, &component, &time.name);
        let ranges: Vec<(i64, i64)> = run.iter().map(|k| (k.start, k.end)).collect();
        let (lo, hi) = (first.start, last.end);
        let rows_per_slice = (self.slice_cells / columns.len().max(1) as u64).max(1);
        let slices = self
            .store
            .time_slices(&component, Some(lo), hi, rows_per_slice)
            .await
            .map_err(|e| format!("reading `{component}`: {e}"))?;
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        let nulls: Vec<&str> = nulls_only.iter().map(String::as_str).collect();

        let mut states: Option<Vec<CheckState>> = Some(owned.with(|ctx| {
            let make = |call: &_| ctx.make(call);
            run.iter()
                .map(|_| CheckState::new(plan, &make, ctx.max_series))
                .collect()
        }));
        let mut fed = vec![false; run.len()];
        let mut rows_read = 0u64;
        for (a, b) in slices {
            let batches = self
                .store
                .scan_batches_nulls_only(&component, &refs, &nulls, a, b)
                .await
                .map_err(|e| format!("reading `{component}`: {e}"))?;
            rows_read += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            let parts = split_off(batches, &time.name, &ranges).await?;
            for (i, _) in &parts {
                fed[*i] = true;
            }
            let mut taken = states.take().unwrap_or_default();
            let plan = plan.clone();
            let time = time.clone();
            let owned = owned.clone();
            let got = tokio::task::spawn_blocking(move || {
                let res = owned.with(|ctx| {
                    let make = |call: &_| ctx.make(call);
                    for (i, batch) in parts {
                        let rows =
                            SourceRows::plain(Frame::new(vec![batch]).map_err(|e| e.to_string())?);
                        taken[i]
                            .add(&plan, side, &rows, &time, &make)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                });
                (taken, res)
            })
            .await
            .map_err(|e| format!("the evaluation stopped unexpectedly: {e}"))?;
            got.1?;
            states = Some(got.0);
        }
        let mut states = states.unwrap_or_default();
        // A range of no rows sees the columns, typed, as one empty batch: as a window read
        // whole over no rows does.
        if fed.iter().any(|f| !f) {
            let empty = self.concat(&component, &columns, Vec::new())?;
            let plan = plan.clone();
            let owned = owned.clone();
            states = tokio::task::spawn_blocking(move || {
                let res = owned.with(|ctx| {
                    let make = |call: &_| ctx.make(call);
                    let rows = SourceRows::plain(
                        Frame::new(vec![empty.clone()]).map_err(|e| e.to_string())?,
                    );
                    for (state, was_fed) in states.iter_mut().zip(&fed) {
                        if !was_fed {
                            state
                                .add(&plan, side, &rows, &time, &make)
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    Ok::<(), String>(())
                });
                res.map(|()| states)
            })
            .await
            .map_err(|e| format!("the evaluation stopped unexpectedly: {e}"))??;
        }
        Ok((states, rows_read))
    }

    /// Adds to the cached panes of `panes` the rows of the writes `writes` (row numbers, first
    /// and last) that fall in them. Returns the rows read and how many panes took rows.
    async fn add_rows(
        &self,
        plan: &CheckPlan,
        reads: &Reads,
        panes: &mut CheckPanes,
        writes: &[(i64, i64)],
        owned: &Owned,
    ) -> Result<(u64, usize), String> {
        let (time, _) = check_times(&self.program, plan);
        let component = super::first_component(plan).to_string();
        let (columns, _) = pane_columns(plan, reads, &component, &time.name);
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        // Only the times of the cached panes: a write's rows elsewhere (new panes, the
        // window's edges) are read with those.
        let start = panes.states.keys().map(|k| k.start).min().unwrap_or(0);
        let end = panes.states.keys().map(|k| k.end).max().unwrap_or(0);
        let began = std::time::Instant::now();
        let mut batches = Vec::new();
        for &(first, last) in writes {
            batches.extend(
                self.store
                    .rows_by_rowid(&component, &refs, (first, last), (start, end))
                    .await
                    .map_err(|e| format!("reading `{component}`: {e}"))?,
            );
        }
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let mut keys: Vec<RangeKey> = panes.states.keys().copied().collect();
        keys.sort_unstable();
        let mut parts: Vec<(RangeKey, RecordBatch)> = Vec::new();
        for baseline in [false, true] {
            let side: Vec<RangeKey> = keys
                .iter()
                .filter(|k| k.baseline == baseline)
                .copied()
                .collect();
            let ranges: Vec<(i64, i64)> = side.iter().map(|k| (k.start, k.end)).collect();
            for (i, b) in split_off(batches.clone(), &time.name, &ranges).await? {
                parts.push((side[i], b));
            }
        }
        let split_at = began.elapsed();
        let touched: std::collections::HashSet<RangeKey> = parts.iter().map(|p| p.0).collect();
        let mut window = panes.window.take();
        let mut targets: Vec<(RangeKey, Arc<CheckState>)> = Vec::new();
        for k in &touched {
            if let Some(state) = panes.states.remove(k) {
                targets.push((*k, state));
            }
        }
        let plan_name = plan.name.clone();
        let plan = plan.clone();
        let owned = owned.clone();
        let done = tokio::task::spawn_blocking(move || {
            owned.with(|ctx| {
                let make = |call: &_| ctx.make(call);
                let mut out = Vec::with_capacity(targets.len());
                // Every pane's new rows, merged into the window at once (one pass over its
                // kept values, not one per pane).
                let mut joining = CheckState::new(&plan, &make, usize::MAX);
                // Each pane's new rows as a state of their own, the panes side by side.
                let keys: Vec<RangeKey> = targets.iter().map(|t| t.0).collect();
                let deltas = mlc_engine::eval::par_map(&keys, keys.len() > 8, |k| {
                    let side = if k.baseline {
                        Side::Baseline
                    } else {
                        Side::Current
                    };
                    let mut delta = CheckState::new(&plan, &make, ctx.max_series);
                    for (_, b) in parts.iter().filter(|p| p.0 == *k) {
                        let rows = SourceRows::plain(
                            Frame::new(vec![b.clone()]).map_err(|e| e.to_string())?,
                        );
                        delta
                            .add(&plan, side, &rows, &time, &make)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(delta)
                });
                for ((k, mut state), delta) in targets.into_iter().zip(deltas) {
                    let delta = delta?;
                    // The cache holds the only reference once an evaluation is over.
                    let Some(s) = Arc::get_mut(&mut state) else {
                        window = None;
                        continue;
                    };
                    if window.as_ref().is_some_and(|w| w.members.contains(&k))
                        && joining.merge_from(&plan, &delta, &make).is_err()
                    {
                        window = None;
                    }
                    s.merge(&plan, delta).map_err(|e| e.to_string())?;
                    out.push((k, state));
                }
                if let Some(w) = &mut window
                    && !matches!(w.state.slide(&plan, &[], &[&joining], &[], &make), Ok(true))
                {
                    window = None;
                }
                Ok::<_, String>((out, window))
            })
        })
        .await
        .map_err(|e| format!("the evaluation stopped unexpectedly: {e}"))??;
        let (done, window) = done;
        let n = done.len();
        tracing::debug!(
            check = %plan_name,
            rows,
            panes = n,
            read_split_ms = split_at.as_secs_f64() * 1e3,
            states_ms = (began.elapsed() - split_at).as_secs_f64() * 1e3,
            "rows of numbered writes added to panes"
        );
        panes.states.extend(done);
        panes.window = window;
        Ok((rows, n))
    }

    /// What the pane cache did so far (`None` without one).
    pub fn pane_stats(&self) -> Option<PaneStats> {
        self.panes.as_ref().map(|c| c.stats())
    }

    /// Why `check` is evaluated from its rows rather than from panes, once it has been
    /// evaluated (`None` while it takes panes, or without a cache).
    pub fn panes_off_reason(&self, check: &str) -> Option<String> {
        self.panes.as_ref().and_then(|c| c.off_reason(check))
    }
}

/// [`split`] on the blocking pool: it touches every row, which the async threads must not.
async fn split_off(
    batches: Vec<RecordBatch>,
    time: &str,
    ranges: &[(i64, i64)],
) -> Result<Vec<(usize, RecordBatch)>, String> {
    let (time, ranges) = (time.to_string(), ranges.to_vec());
    tokio::task::spawn_blocking(move || split(batches, &time, &ranges))
        .await
        .map_err(|e| format!("the evaluation stopped unexpectedly: {e}"))?
}

/// Each batch's rows by the range of `ranges` (ascending, apart) their time falls in: a
/// batch within one range whole, else filtered per range; rows in none are left out.
fn split(
    batches: Vec<RecordBatch>,
    time: &str,
    ranges: &[(i64, i64)],
) -> Result<Vec<(usize, RecordBatch)>, String> {
    const NONE: usize = usize::MAX;
    let range_of = |t: i64| {
        let i = ranges.partition_point(|r| r.0 <= t);
        match i.checked_sub(1) {
            Some(i) if t < ranges[i].1 => i,
            _ => NONE,
        }
    };
    let mut out = Vec::new();
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let col = batch
            .column_by_name(time)
            .ok_or_else(|| format!("internal error: the read lacks the time column `{time}`"))?;
        let times = col
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| format!("internal error: the time column `{time}` is not int64"))?;
        let values = times.values();
        let first = range_of(values[0]);
        if first != NONE && values.iter().all(|&t| range_of(t) == first) {
            out.push((first, batch));
            continue;
        }
        // The rows' positions grouped by range (in their order within each), then one
        // `take` per range: linear in the rows, however many ranges a batch spans.
        let mut order: Vec<(usize, u32)> = values
            .iter()
            .enumerate()
            .map(|(i, &t)| (range_of(t), i as u32))
            .filter(|&(r, _)| r != NONE)
            .collect();
        order.sort_unstable();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            let idx = UInt32Array::from_iter_values(group.iter().map(|&(_, i)| i));
            let part =
                arrow_select::take::take_record_batch(&batch, &idx).map_err(|e| e.to_string())?;
            out.push((group[0].0, part));
        }
    }
    Ok(out)
}

/// The columns a check reads of its first component's rows (those its expressions name and
/// the time), and which of them only for their nulls.
fn pane_columns(
    plan: &CheckPlan,
    reads: &Reads,
    component: &str,
    time: &str,
) -> (Vec<String>, Vec<String>) {
    let key = reads
        .scans
        .keys()
        .find(|k| k.component == component)
        .cloned();
    let mut columns: Vec<String> = key
        .as_ref()
        .and_then(|k| reads.scans.get(k))
        .cloned()
        .unwrap_or_default();
    let mut needs = super::first_source_columns(plan);
    needs.push(time.to_string());
    columns.retain(|c| needs.contains(c));
    let values = key.as_ref().and_then(|k| reads.values.get(k));
    let nulls_only: Vec<String> = columns
        .iter()
        .filter(|c| values.is_some_and(|v| !v.contains(c)))
        .cloned()
        .collect();
    (columns, nulls_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_cut_at_multiples_of_the_width() {
        let k = |start, end| RangeKey {
            baseline: false,
            start,
            end,
        };
        assert_eq!(
            cut(5, 35, 10, false),
            vec![k(5, 10), k(10, 20), k(20, 30), k(30, 35)]
        );
        assert_eq!(cut(10, 30, 10, false), vec![k(10, 20), k(20, 30)]);
        assert_eq!(cut(-15, -5, 10, false), vec![k(-15, -10), k(-10, -5)]);
        assert!(cut(7, 7, 10, false).is_empty());
    }

    #[test]
    fn rows_go_to_the_range_holding_their_time_and_others_are_left_out() {
        use arrow_array::{ArrayRef, Int64Array};
        let times: ArrayRef = Arc::new(Int64Array::from(vec![25, 5, 12, 31, 19, 40, 10]));
        let tags: ArrayRef = Arc::new(Int64Array::from(vec![0, 1, 2, 3, 4, 5, 6]));
        let batch = RecordBatch::try_from_iter([("ts", times), ("tag", tags)]).unwrap();
        // [10, 20) and [30, 40): 25, 5 and 40 fall in none.
        let parts = split(vec![batch.clone()], "ts", &[(10, 20), (30, 40)]).unwrap();
        let tags_of = |b: &RecordBatch| -> Vec<i64> {
            b.column(1).as_primitive::<Int64Type>().values().to_vec()
        };
        let got: Vec<(usize, Vec<i64>)> = parts.iter().map(|(r, b)| (*r, tags_of(b))).collect();
        assert_eq!(got, vec![(0, vec![2, 4, 6]), (1, vec![3])]);
        // A batch within one range goes whole.
        let parts = split(vec![batch], "ts", &[(0, 100)]).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].1.num_rows(), 7);
    }
}
