//! Streamed evaluation (docs/evaluation.md#streaming): the checks of an evaluation that read
//! no join take their rows from the store one time slice at a time. Each slice is fed to the
//! partial state of every check that reads it and dropped, while the next slice is read, so
//! memory holds about two slices and the checks' states, not their windows. A check with
//! several `each` columns whose aggregates keep values (`ks`, `quantile`) is read a few
//! columns at a time (as many as there are cores), concluding them before the next are
//! read: those columns' values are held, not every column's. Results are those of the whole window read at once: every accumulator sees the
//! same rows in the same order, only cut into other batches.

use std::collections::HashMap;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow_array::RecordBatch;
use mlc_engine::eval::{CheckState, Conclusion, Frame, Outcome, SourceRows};
use mlc_engine::functions::Side;
use mlc_engine::plan::{CheckPlan, ColumnId, FunctionRef, Program};
use mlc_wasm::FailureCounts;

use super::{
    BaselineReads, CheckReads, Executor, Plugins, Reads, RunContext, ScanKey, check_times,
    event_age,
};
use crate::results::{CheckResult, Timing};

/// The default most values (rows x columns) read per time slice: 64 MiB of 8-byte values.
pub const SLICE_CELLS: u64 = 8 << 20;

/// One check's evaluation in progress.
struct Job {
    plan: CheckPlan,
    reads: CheckReads,
    state: CheckState,
    /// Why the check failed (its result is then this error).
    failure: Option<String>,
    outcomes: Vec<Outcome>,
    time: ColumnId,
    baseline_time: Option<ColumnId>,
    conclusion: Conclusion,
    /// The columns of its rows the check reads: those its expressions name, and the time.
    needs: Vec<String>,
    /// How many of its aggregates keep values ([`Accumulator::keeps_values`]).
    keeping: usize,
    /// Whether an aggregate of it may ask for its rows a second time (`distinct`,
    /// `duplicate_rate`: [`CheckState::needs_second_read`]).
    rereads: bool,
    /// The columns a second read needs: what `where`, `group by`, `each` and those
    /// aggregates name, and the time.
    again_needs: Vec<String>,
    /// Pushdown (docs/evaluation.md#pushdown): whether the database counted the rows of the
    /// window (the reads then feed the other aggregates only), and whether it computed every
    /// aggregate fed rows (the window is then not read at all).
    counted: bool,
    pushed_whole: bool,
}

/// Rows of one read handed to one check.
#[derive(Debug, Clone)]
struct Feed {
    job: usize,
    side: Side,
    /// The `each` columns these rows are for (`None`: every column).
    columns: Option<Range<usize>>,
    /// Whether the check counts these rows (its first pass over them).
    count: bool,
    /// Whether these rows are read a second time, for the aggregates that asked for them
    /// ([`CheckState::needs_second_read`]).
    again: bool,
}

/// One read of a component's rows over a range, slice by slice.
struct Pass {
    key: ScanKey,
    columns: Vec<String>,
    nulls_only: Vec<String>,
    feeds: Vec<Feed>,
}

enum Step {
    Read(Pass),
    /// Concludes a check's columns; first, if an aggregate of theirs asks for its rows a
    /// second time, reads them again (`again`: the check's passes over those columns).
    Conclude {
        job: usize,
        columns: Range<usize>,
        again: Vec<Pass>,
    },
}

/// What the blocking tasks need of the executor, owned.
#[derive(Clone)]
pub(super) struct Owned {
    pub(super) program: Arc<Program>,
    pub(super) plugins: Arc<Plugins>,
    pub(super) version: String,
    pub(super) max_series: usize,
    pub(super) plugin_failures: FailureCounts,
}

impl Owned {
    pub(super) fn with<T>(&self, f: impl FnOnce(&RunContext<'_>) -> T) -> T {
        f(&RunContext {
            program: &self.program,
            plugins: &self.plugins,
            version: &self.version,
            max_series: self.max_series,
            plugin_failures: &self.plugin_failures,
        })
    }
}

/// Whether `check` can be streamed: it reads no join (a join's right side is read for the
/// keys of the whole window at once).
pub(super) fn streams(check: &CheckPlan) -> bool {
    check.source.joins.is_empty()
}

impl Executor {
    /// What blocking tasks need of the executor, counting plugin failures in
    /// `plugin_failures`.
    pub(super) fn owned(&self, plugin_failures: &FailureCounts) -> Owned {
        Owned {
            program: self.program.clone(),
            plugins: self.plugins.clone(),
            version: self.rules_version.clone(),
            max_series: self.max_series,
            plugin_failures: plugin_failures.clone(),
        }
    }

    /// The results of `checks` (each [`streams`]) at `at_us`, per check in the order given.
    pub(super) async fn evaluate_streamed(
        &self,
        checks: &[&CheckPlan],
        at_us: i64,
        plugin_failures: &FailureCounts,
    ) -> Vec<Vec<CheckResult>> {
        let owned = self.owned(plugin_failures);
        let mut shared = Reads::default();
        let mut own: Vec<Option<Reads>> = Vec::with_capacity(checks.len());
        let mut jobs: Vec<Job> = Vec::with_capacity(checks.len());
        for plan in checks {
            let plan = (*plan).clone();
            let (state, keeping, rereading) = owned.with(|ctx| {
                let make = |call: &_| ctx.make(call);
                let state = CheckState::new(&plan, &make, ctx.max_series);
                // Builtins only: a plugin's state is bounded by its sandbox, and making
                // one would instantiate its module.
                let builtins: Vec<(usize, _)> = plan
                    .aggregates
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| matches!(a.function, FunctionRef::Builtin(_)))
                    .filter_map(|(i, a)| make(a).ok().map(|acc| (i, acc)))
                    .collect();
                // Aggregates sharing one state (`ks` and `psi` of a column) hold its values
                // once: only the first of them counts.
                let keeping = builtins
                    .iter()
                    .enumerate()
                    .filter(|&(n, (i, acc))| {
                        let a = &plan.aggregates[*i];
                        let shares = acc.state_kind().is_some()
                            && builtins[..n].iter().any(|(j, other)| {
                                let b = &plan.aggregates[*j];
                                other.state_kind() == acc.state_kind()
                                    && b.args == a.args
                                    && b.rows == a.rows
                            });
                        acc.keeps_values() && !shares
                    })
                    .count();
                let rereading: Vec<usize> = builtins
                    .iter()
                    .filter(|(_, acc)| acc.may_need_second_read())
                    .map(|(i, _)| *i)
                    .collect();
                (state, keeping, rereading)
            });
            let by_column = keeping > 0 && state.columns() > 1;
            let reads = if by_column {
                let mut mine = Reads::default();
                let r = self.plan_reads(&plan, at_us, &mut mine);
                own.push(Some(mine));
                r
            } else {
                own.push(None);
                self.plan_reads(&plan, at_us, &mut shared)
            };
            let (time, baseline_time) = check_times(&self.program, &plan);
            let mut needs = super::first_source_columns(&plan);
            let times = baseline_time.iter().chain([&time]).map(|t| t.name.clone());
            needs.extend(times.clone());
            let mut again_needs: Vec<String> = plan
                .columns_for_aggregates(&rereading)
                .into_iter()
                .filter(|c| c.source == 0)
                .map(|c| c.name)
                .collect();
            again_needs.extend(times);
            jobs.push(Job {
                counted: false,
                pushed_whole: false,
                needs,
                keeping,
                rereads: !rereading.is_empty(),
                again_needs,
                conclusion: Conclusion {
                    has_baseline: plan.baseline.is_some(),
                    event_age_secs: None,
                },
                plan,
                reads,
                state,
                failure: None,
                outcomes: Vec::new(),
                time,
                baseline_time,
            });
        }

        // `freshness()`: the latest event before T, one read per component.
        let mut max_time: HashMap<String, i64> = shared.max_time.clone();
        for r in own.iter().flatten() {
            max_time.extend(r.max_time.iter().map(|(k, v)| (k.clone(), *v)));
        }
        let max_time = self.max_times(max_time).await;
        for job in &mut jobs {
            if job.reads.event_age {
                match event_age(&job.plan, job.reads.timing, &max_time) {
                    Ok(age) => job.conclusion.event_age_secs = age,
                    Err(e) => job.failure = Some(e),
                }
            }
        }

        let mut pushed = self.push_down(&mut jobs, &own);

        // A check read by column takes as many columns a pass as keep their values within
        // COLUMN_PASS_BYTES, estimated from the rows of its window and baseline (all of them
        // for a small window: one pass, the columns concluded side by side), at least one;
        // as many as there are cores where nothing is estimated. The results do not depend
        // on it.
        let cores = mlc_engine::eval::cores().min(8);
        let mut per_pass = vec![cores; jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            if own[i].is_none() {
                continue;
            }
            let mut rows = Some(0u64);
            for key in [Some(job.reads.current.first.clone()), baseline_key(job)]
                .into_iter()
                .flatten()
            {
                let n = self
                    .store
                    .estimate_rows(&key.component, key.start, key.end)
                    .await;
                rows = match (rows, n) {
                    (Some(r), Ok(Some(n))) => Some(r + n),
                    _ => None,
                };
            }
            if let Some(rows) = rows {
                let per_column = rows.saturating_mul(8 * job.keeping as u64).max(1);
                per_pass[i] = usize::try_from(COLUMN_PASS_BYTES / per_column)
                    .unwrap_or(cores)
                    .clamp(1, job.state.columns().max(1));
                // Whole rounds of the cores (each concludes a column): 3 columns on 2 cores
                // take as long as 4.
                if per_pass[i] > cores && per_pass[i] < job.state.columns() {
                    per_pass[i] -= per_pass[i] % cores;
                }
            }
        }
        for step in plan_steps(&jobs, &shared, &own, &per_pass) {
            if jobs.len() != checks.len() {
                // The blocking pool gave nothing back (the runtime is shutting down).
                break;
            }
            if matches!(step, Step::Conclude { .. })
                && let Some(queries) = pushed.take()
            {
                absorb_pushed(&mut jobs, queries.await, &owned);
            }
            jobs = match step {
                Step::Read(pass) => self.run_pass(jobs, pass, &owned).await,
                Step::Conclude {
                    job,
                    columns,
                    again,
                } => {
                    if !again.is_empty() {
                        let cols = columns.clone();
                        let wants = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                        let w = wants.clone();
                        jobs = blocking(jobs, move |jobs| {
                            let j = &mut jobs[job];
                            if j.failure.is_none() && j.state.needs_second_read(cols) {
                                w.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                        })
                        .await;
                        if wants.load(std::sync::atomic::Ordering::Relaxed) {
                            for pass in again {
                                if jobs.len() != checks.len() {
                                    break;
                                }
                                jobs = self.run_pass(jobs, pass, &owned).await;
                            }
                        }
                        if jobs.len() != checks.len() {
                            break;
                        }
                    }
                    let owned = owned.clone();
                    blocking(jobs, move |jobs| {
                        let j = &mut jobs[job];
                        if j.failure.is_some() {
                            return;
                        }
                        let got = owned.with(|ctx| {
                            let make = |call: &_| ctx.make(call);
                            std::panic::catch_unwind(AssertUnwindSafe(|| {
                                j.state
                                    .conclude_columns(&j.plan, columns, &j.conclusion, &make)
                            }))
                        });
                        match got {
                            Ok(outcomes) => j.outcomes.extend(outcomes),
                            Err(_) => j.failure = Some(STOPPED.into()),
                        }
                    })
                    .await
                }
            };
        }

        if jobs.len() != checks.len() {
            return checks
                .iter()
                .map(|plan| {
                    let timing = Timing {
                        at_us,
                        window_start_us: None,
                        window_end_us: at_us,
                    };
                    vec![CheckResult::error(
                        plan,
                        STOPPED,
                        timing,
                        &self.rules_version,
                    )]
                })
                .collect();
        }
        jobs.into_iter()
            .map(|j| match j.failure {
                Some(reason) => vec![CheckResult::error(
                    &j.plan,
                    &reason,
                    j.reads.timing,
                    &self.rules_version,
                )],
                None => j
                    .outcomes
                    .iter()
                    .map(|o| {
                        CheckResult::from_outcome(&j.plan, o, j.reads.timing, &self.rules_version)
                    })
                    .collect(),
            })
            .collect()
    }

    /// Pushdown (docs/evaluation.md#pushdown): the aggregates of checks read whole whose
    /// state is row counts are counted by the database where the store does that
    /// (PostgreSQL). The checks are told now (their reads then bring only what their other
    /// aggregates need, or nothing); the queries run on a task of their own, side by side and
    /// beside those reads, and [`absorb_pushed`] hands their counts over before the first
    /// conclusion.
    fn push_down(&self, jobs: &mut [Job], own: &[Option<Reads>]) -> Option<PushedQueries> {
        if !self.store.counts_rows() {
            return None;
        }
        let mut queries = Vec::new();
        for (i, job) in jobs.iter_mut().enumerate() {
            if own[i].is_some() || job.failure.is_some() {
                continue;
            }
            let summable = job.state.summable(&job.plan);
            if summable.is_empty() {
                continue;
            }
            let key = &job.reads.current.first;
            // Past `max_series` slices the check fails, as when its rows are read; the query
            // brings one group more than that to tell.
            let Some(p) = super::pushdown::plan(
                &job.plan,
                &summable,
                job.state.fed(),
                key.start,
                key.end,
                self.max_series,
            ) else {
                continue;
            };
            let pushed: Vec<usize> = p.aggregates.iter().map(|a| a.0).collect();
            job.state.take_from_sums(&pushed);
            job.counted = true;
            job.pushed_whole = p.whole;
            // The reads bring what the other aggregates, `where` and `group by` name.
            let rest: Vec<usize> = (0..job.plan.aggregates.len())
                .filter(|i| !pushed.contains(i))
                .collect();
            let mut needs: Vec<String> = job
                .plan
                .columns_for_aggregates(&rest)
                .into_iter()
                .filter(|c| c.source == 0)
                .map(|c| c.name)
                .collect();
            needs.push(job.time.name.clone());
            job.needs = needs;
            self.pushdowns
                .fetch_add(pushed.len() as u64, std::sync::atomic::Ordering::Relaxed);
            queries.push((i, key.component.clone(), p));
        }
        if queries.is_empty() {
            return None;
        }
        // The checks' queries side by side (as many at once as the store's pool has
        // connections), results in the checks' order.
        let store = self.store.clone();
        Some(tokio::spawn(async move {
            futures::future::join_all(queries.into_iter().map(|(i, component, p)| {
                let store = store.clone();
                async move {
                    let got = store.row_sums(&component, &p.query).await;
                    (i, p, got)
                }
            }))
            .await
        }))
    }

    /// Reads one pass slice by slice, the next slice read while the checks take the last.
    async fn run_pass(&self, jobs: Vec<Job>, pass: Pass, owned: &Owned) -> Vec<Job> {
        let mut jobs = jobs;
        let Pass {
            key,
            columns,
            nulls_only,
            feeds,
        } = pass;
        let feeds: Vec<Feed> = feeds
            .into_iter()
            .filter(|f| jobs[f.job].failure.is_none())
            .collect();
        if feeds.is_empty() {
            return jobs;
        }
        let fail_all = |jobs: &mut Vec<Job>, reason: &str| {
            for f in &feeds {
                if let Some(j) = jobs.get_mut(f.job) {
                    j.failure.get_or_insert_with(|| reason.to_string());
                }
            }
        };
        let rows_per_slice = (self.slice_cells / columns.len().max(1) as u64).max(1);
        let slices = match self
            .store
            .time_slices(&key.component, key.start, key.end, rows_per_slice)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                fail_all(&mut jobs, &format!("reading `{}`: {e}", key.component));
                return jobs;
            }
        };
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        let nulls: Vec<&str> = nulls_only.iter().map(String::as_str).collect();
        let read = |(lo, hi): (Option<i64>, i64)| {
            let (refs, nulls, component) = (&refs, &nulls, &key.component);
            async move {
                self.store
                    .scan_batches_nulls_only(component, refs, nulls, lo, hi)
                    .await
                    .map_err(|e| format!("reading `{component}`: {e}"))
            }
        };
        let mut rows = 0usize;
        let mut next = Some(read(slices[0]).await);
        let mut i = 0;
        let n = jobs.len();
        while let Some(got) = next.take() {
            if jobs.len() != n {
                // The blocking pool gave nothing back; the caller reports it.
                return jobs;
            }
            let batches = match got {
                Ok(b) => b,
                Err(e) => {
                    fail_all(&mut jobs, &e);
                    return jobs;
                }
            };
            rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            i += 1;
            let fed = feed(jobs, batches, feeds.clone(), owned.clone());
            if let Some(&slice) = slices.get(i) {
                let (j, n) = tokio::join!(fed, read(slice));
                jobs = j;
                next = Some(n);
            } else {
                jobs = fed.await;
            }
        }
        if rows == 0 {
            // A check over no rows still sees its columns, typed, as one empty batch.
            match self.concat(&key.component, &columns, Vec::new()) {
                Ok(empty) => jobs = feed(jobs, vec![empty], feeds.clone(), owned.clone()).await,
                Err(e) => fail_all(&mut jobs, &e),
            }
        }
        jobs
    }
}

/// What an evaluation reads and concludes, in order: first one pass per range the checks
/// read whole (the current windows, then the baselines), shared by every check that reads
/// it, and those checks' conclusions; then, per check read by column, a pass over its window
/// and one over its baseline for each group of its `per_pass` columns, each group
/// concluded after its passes.
fn plan_steps(
    jobs: &[Job],
    shared: &Reads,
    own: &[Option<Reads>],
    per_pass: &[usize],
) -> Vec<Step> {
    let pass = |reads: &Reads, key: &ScanKey, mut columns: Vec<String>, feeds: Vec<Feed>| -> Pass {
        // Only what the checks name and the time: not the key, which the store is asked for
        // to join (a string per row, often the widest column).
        columns.retain(|c| {
            feeds.iter().any(|f| {
                let job = &jobs[f.job];
                if f.again {
                    &job.again_needs
                } else {
                    &job.needs
                }
                .contains(c)
            })
        });
        let values = reads.values.get(key);
        let nulls_only = columns
            .iter()
            .filter(|c| values.is_some_and(|v| !v.contains(c)))
            .cloned()
            .collect();
        Pass {
            key: key.clone(),
            columns,
            nulls_only,
            feeds,
        }
    };
    let whole: Vec<usize> = (0..jobs.len()).filter(|&i| own[i].is_none()).collect();
    // Checks the database computed whole read nothing; they are only concluded.
    let reading: Vec<usize> = whole
        .iter()
        .copied()
        .filter(|&i| !jobs[i].pushed_whole)
        .collect();
    let mut keys: Vec<ScanKey> = Vec::new();
    for &i in &reading {
        let k = &jobs[i].reads.current.first;
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    for &i in &reading {
        if let Some(k) = baseline_key(&jobs[i])
            && !keys.contains(&k)
        {
            keys.push(k);
        }
    }
    let mut steps = Vec::new();
    for key in &keys {
        let mut feeds = Vec::new();
        for &i in &reading {
            let side = |side| Feed {
                job: i,
                side,
                columns: None,
                count: !(side == Side::Current && jobs[i].counted),
                again: false,
            };
            if jobs[i].reads.current.first == *key {
                feeds.push(side(Side::Current));
            }
            if baseline_key(&jobs[i]).as_ref() == Some(key) {
                feeds.push(side(Side::Baseline));
            }
        }
        let columns = shared.scans.get(key).cloned().unwrap_or_default();
        steps.push(Step::Read(pass(shared, key, columns, feeds)));
    }
    for &i in &whole {
        let sides = [
            Some((jobs[i].reads.current.first.clone(), Side::Current)),
            baseline_key(&jobs[i]).map(|k| (k, Side::Baseline)),
        ];
        let again = if jobs[i].rereads {
            sides
                .iter()
                .flatten()
                .map(|(key, side)| {
                    let columns = shared.scans.get(key).cloned().unwrap_or_default();
                    let feed = Feed {
                        job: i,
                        side: *side,
                        columns: None,
                        count: false,
                        again: true,
                    };
                    pass(shared, key, columns, vec![feed])
                })
                .collect()
        } else {
            Vec::new()
        };
        steps.push(Step::Conclude {
            job: i,
            columns: 0..jobs[i].state.columns(),
            again,
        });
    }
    for (i, reads) in own.iter().enumerate() {
        let Some(reads) = reads else { continue };
        let job = &jobs[i];
        let sides = [
            Some((job.reads.current.first.clone(), Side::Current)),
            baseline_key(job).map(|k| (k, Side::Baseline)),
        ];
        let (n, per_pass) = (job.state.columns(), per_pass[i].max(1));
        for first in (0..n).step_by(per_pass) {
            let group = first..(first + per_pass).min(n);
            let passes = |count: bool, again: bool| {
                sides
                    .iter()
                    .flatten()
                    .map(|(key, side)| {
                        let all = reads.scans.get(key).cloned().unwrap_or_default();
                        let columns = job.plan.columns_for_each(&all, group.clone());
                        let feed = Feed {
                            job: i,
                            side: *side,
                            columns: Some(group.clone()),
                            count,
                            again,
                        };
                        pass(reads, key, columns, vec![feed])
                    })
                    .collect::<Vec<Pass>>()
            };
            steps.extend(passes(first == 0, false).into_iter().map(Step::Read));
            let again = if job.rereads {
                passes(false, true)
            } else {
                Vec::new()
            };
            steps.push(Step::Conclude {
                job: i,
                columns: group.clone(),
                again,
            });
        }
    }
    steps
}

const STOPPED: &str = "the evaluation stopped unexpectedly";

/// The most bytes of values the columns of one pass of a check read by column may hold
/// (8 bytes a value, per aggregate keeping values), when more than one column a pass.
const COLUMN_PASS_BYTES: u64 = 256 << 20;

/// The range a check's baseline reads, if it has one.
fn baseline_key(job: &Job) -> Option<ScanKey> {
    match &job.reads.baseline {
        Some(BaselineReads::Component { key }) => Some(key.clone()),
        Some(BaselineReads::Source(s)) => Some(s.first.clone()),
        None => None,
    }
}

/// The pushdown queries of an evaluation, running: per check, its index, what was pushed
/// and the database's groups (with the SQL that ran).
type PushedQueries = tokio::task::JoinHandle<Vec<Counted>>;

/// One check's pushdown query, done: the check's index, what was pushed, and the groups the
/// database gave (with the SQL that ran).
type Counted = (
    usize,
    super::pushdown::Pushdown,
    mlc_store::Result<Option<(Vec<mlc_store::SumsGroup>, String)>>,
);

/// Hands each check the counts the database computed for it ([`CheckState::add_sums`]); a
/// query that failed fails its check (its rows were read for its other aggregates only).
fn absorb_pushed(
    jobs: &mut [Job],
    done: Result<Vec<Counted>, tokio::task::JoinError>,
    owned: &Owned,
) {
    let Ok(done) = done else {
        for j in jobs.iter_mut().filter(|j| j.counted) {
            j.failure.get_or_insert_with(|| STOPPED.into());
        }
        return;
    };
    for (i, p, got) in done {
        let job = &mut jobs[i];
        let groups = match got {
            Ok(Some((groups, sql))) => {
                tracing::debug!(check = %job.plan.name, groups = groups.len(), %sql, "pushed down");
                groups
            }
            Ok(None) => {
                job.failure = Some("internal error: the store counted nothing".into());
                continue;
            }
            Err(e) => {
                job.failure = Some(format!(
                    "reading `{}`: the database could not count the check's rows: {e}",
                    job.reads.current.first.component
                ));
                continue;
            }
        };
        let failed = owned.with(|ctx| {
            let make = |call: &_| ctx.make(call);
            for g in groups {
                let mut at = 0;
                let sums: Vec<(usize, Vec<u64>)> = p
                    .aggregates
                    .iter()
                    .map(|&(agg, n)| {
                        at += n;
                        (agg, g.sums[at - n..at].to_vec())
                    })
                    .collect();
                if let Err(e) = job.state.add_sums(&job.plan, g.key, g.rows, &sums, &make) {
                    return Some(e.to_string());
                }
            }
            None
        });
        if let Some(e) = failed {
            job.failure.get_or_insert(e);
        }
    }
}

/// Runs `f` over the jobs on the blocking pool and gives them back (the jobs are lost only
/// if the pool itself fails, and then every check says so).
async fn blocking(mut jobs: Vec<Job>, f: impl FnOnce(&mut Vec<Job>) + Send + 'static) -> Vec<Job> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        // A panic fails the checks still running, and keeps every check's result.
        if std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut jobs))).is_err() {
            for j in &mut jobs {
                j.failure.get_or_insert_with(|| STOPPED.into());
            }
        }
        let _ = tx.send(jobs);
    });
    let _ = task.await;
    rx.await.unwrap_or_default()
}

/// Hands one slice's batches to the checks of `feeds`.
async fn feed(
    jobs: Vec<Job>,
    batches: Vec<RecordBatch>,
    feeds: Vec<Feed>,
    owned: Owned,
) -> Vec<Job> {
    blocking(jobs, move |jobs| {
        let rows: Result<Vec<SourceRows>, String> = batches
            .into_iter()
            .map(|b| {
                Frame::new(vec![b])
                    .map(SourceRows::plain)
                    .map_err(|e| e.to_string())
            })
            .collect();
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                for f in &feeds {
                    jobs[f.job].failure.get_or_insert_with(|| e.clone());
                }
                return;
            }
        };
        owned.with(|ctx| {
            let make = |call: &_| ctx.make(call);
            for f in &feeds {
                let j = &mut jobs[f.job];
                if j.failure.is_some() {
                    continue;
                }
                let time = match f.side {
                    Side::Current => &j.time,
                    Side::Baseline => j.baseline_time.as_ref().unwrap_or(&j.time),
                };
                let got = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    if f.again {
                        j.state
                            .add_again(&j.plan, f.side, &rows, time, &make, f.columns.clone())
                    } else {
                        j.state.add_pass(
                            &j.plan,
                            f.side,
                            &rows,
                            time,
                            &make,
                            f.columns.clone(),
                            f.count,
                        )
                    }
                }));
                match got {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => j.failure = Some(e.to_string()),
                    Err(_) => j.failure = Some(STOPPED.into()),
                }
            }
        });
    })
    .await
}
