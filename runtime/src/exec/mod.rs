//! The executor: runs checked plans at an evaluation time `T` against the store. It asks
//! the store only for the columns and time ranges the plans need (checks reading the same
//! component over the same range share one scan), joins late labels, then hands the rows to
//! `mlc_engine::eval` on the blocking pool, off the async runtime.

pub mod join;
mod panes;
mod pushdown;
pub use pushdown::explain as explain_pushdown;
mod stream;

pub use panes::{PANE_CACHE_BYTES, PaneStats, pane_width_secs};
pub use stream::SLICE_CELLS;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, new_empty_array};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use mlc_engine::eval::check::builtin_accumulator;
use mlc_engine::eval::{CheckState, Conclusion, SourceRows};
use mlc_engine::functions::{Accumulator, SpecialInput};
use mlc_engine::plan::{
    AggregateCall, BaselinePlan, CheckPlan, ColumnId, FunctionRef, Program, SourcePlan,
};
use mlc_engine::schema::DataType;
use mlc_store::Store;
use mlc_wasm::{FailureCounts, LoadedPlugin, PluginHost};

use crate::results::{CheckResult, Timing};

const US: i64 = 1_000_000;

fn secs_us(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / US).saturating_mul(US)
}

/// The program's plugins by name, or why one could not be loaded.
pub type Plugins = HashMap<String, Result<LoadedPlugin, String>>;

/// Loads (and compiles, through the module cache) every plugin the program declares.
pub(crate) fn load_plugins(program: &Program) -> Plugins {
    if program.plugins.is_empty() {
        return Plugins::new();
    }
    let host = PluginHost::new(mlc_wasm::default_cache_dir());
    program
        .plugins
        .iter()
        .map(|decl| (decl.name.clone(), host.load(decl)))
        .collect()
}

/// Runs a program's checks against a store.
pub struct Executor {
    store: Store,
    program: Arc<Program>,
    plugins: Arc<Plugins>,
    rules_version: String,
    /// The most results one check may give in one evaluation (`--max-series-per-check`).
    max_series: usize,
    /// The most values a backfill's prefetch may hold (`--prefetch-cells`).
    prefetch_cells: u64,
    /// The most values (rows x columns) a streamed window is read in at a time
    /// (`--slice-cells`).
    slice_cells: u64,
    /// `mlc serve`'s panes of the checks' windows, kept between evaluations
    /// (docs/evaluation.md#panes); `None` elsewhere.
    panes: Option<Arc<panes::PaneCache>>,
    /// Aggregates the database computed so far (docs/evaluation.md#pushdown).
    pushdowns: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("rules_version", &self.rules_version)
            .finish()
    }
}

/// One read of a component's rows over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScanKey {
    component: String,
    start: Option<i64>,
    end: i64,
}

/// One read of the latest row per value of a component's column `key` (the join's `using`
/// column) before `before`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LatestKey {
    component: String,
    key: String,
    before: i64,
}

/// Where the keys a [`LatestKey`] read must find come from: a column of a scan's rows (the
/// first component's), or of another join's right rows (a chained join).
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeysFrom {
    Scan(ScanKey, String),
    Latest(LatestKey, String),
}

/// The reads one source needs.
#[derive(Debug, Clone)]
struct SourceReads {
    first: ScanKey,
    joins: Vec<LatestKey>,
}

#[derive(Default)]
struct Reads {
    scans: HashMap<ScanKey, Vec<String>>,
    /// Per scan, the columns some check needs the values of; the scan's other columns are
    /// read only for their nulls (`CheckPlan::nulls_only_columns`).
    values: HashMap<ScanKey, Vec<String>>,
    latest: HashMap<LatestKey, Vec<String>>,
    /// Per latest read, the rows whose join keys it must find: it reads only those keys.
    keys_from: HashMap<LatestKey, Vec<KeysFrom>>,
    max_time: HashMap<String, i64>,
}

fn add_columns(into: &mut Vec<String>, cols: &[String]) {
    for c in cols {
        if !into.contains(c) {
            into.push(c.clone());
        }
    }
}

/// Where a check reads its rows at `T`.
#[derive(Debug, Clone)]
struct CheckReads {
    timing: Timing,
    current: SourceReads,
    baseline: Option<BaselineReads>,
    /// An aggregate reads [`SpecialInput::EventAge`] (`freshness()`): the first component's
    /// latest event time before `T` is read too, ignoring `window`.
    event_age: bool,
}

#[derive(Debug, Clone)]
enum BaselineReads {
    Component { key: ScanKey },
    Source(SourceReads),
}

impl Executor {
    /// Loads the program's plugins; a plugin that fails to load makes only the expects that
    /// call it `error`.
    pub fn new(store: Store, program: Arc<Program>, rules_version: impl Into<String>) -> Executor {
        let plugins = Arc::new(load_plugins(&program));
        Executor::with_plugins(store, program, plugins, rules_version)
    }

    /// An executor sharing already loaded plugins (`mlc test` runs many stores, one program).
    pub(crate) fn with_plugins(
        store: Store,
        program: Arc<Program>,
        plugins: Arc<Plugins>,
        rules_version: impl Into<String>,
    ) -> Executor {
        Executor {
            store,
            program,
            plugins,
            rules_version: rules_version.into(),
            max_series: mlc_engine::eval::check::DEFAULT_MAX_SERIES,
            prefetch_cells: PREFETCH_MAX_CELLS,
            slice_cells: SLICE_CELLS,
            panes: None,
            pushdowns: Arc::default(),
        }
    }

    /// Keeps the partial state of each pane of the checks' windows between evaluations, at
    /// most about `bytes` of them, and evaluates the checks that can from their panes
    /// (docs/evaluation.md#panes): what `mlc serve` does. 0 keeps none.
    /// How many aggregates (per check evaluation) the database computed rather than the
    /// rows being read (docs/evaluation.md#pushdown).
    pub fn pushed_down(&self) -> u64 {
        self.pushdowns.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn with_panes(mut self, bytes: u64) -> Executor {
        self.panes = (bytes > 0).then(|| Arc::new(panes::PaneCache::new(bytes)));
        self
    }

    /// Bounds what [`Executor::prefetch`] may hold, in values (rows times columns; default
    /// [`PREFETCH_MAX_CELLS`]); 0 turns the prefetch off.
    pub fn with_prefetch_cells(mut self, cells: u64) -> Executor {
        self.prefetch_cells = cells;
        self
    }

    /// Caps the results (slices times `each` columns) of one check in one evaluation: a check
    /// past it stops grouping and gives one `error` result that says so (default 1000).
    /// Reads streamed windows in time slices of at most about `cells` values (rows times
    /// columns, at least one row); see docs/evaluation.md#streaming.
    pub fn with_slice_cells(mut self, cells: u64) -> Executor {
        self.slice_cells = cells;
        self
    }

    pub fn with_max_series(mut self, max_series: usize) -> Executor {
        self.max_series = max_series.max(1);
        self
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn rules_version(&self) -> &str {
        &self.rules_version
    }

    fn selected<'p>(&'p self, only: Option<&[String]>) -> Vec<&'p CheckPlan> {
        self.program
            .checks
            .iter()
            .filter(|c| only.is_none_or(|names| names.contains(&c.name)))
            .collect()
    }

    /// Evaluates every check of the program (or those named) at `at_us`.
    pub async fn evaluate_all(&self, at_us: i64, only: Option<&[String]>) -> Vec<CheckResult> {
        self.evaluate(&self.selected(only), at_us).await
    }

    /// [`Executor::evaluate_all`] reading from rows prefetched for many evaluation times
    /// (see [`Executor::prefetch`]); reads the prefetch does not cover go to the store.
    pub async fn evaluate_all_with(
        &self,
        at_us: i64,
        only: Option<&[String]>,
        prefetch: Option<&Prefetch>,
    ) -> Vec<CheckResult> {
        self.evaluate_with(&self.selected(only), at_us, prefetch)
            .await
    }

    /// Reads, once, every row the checks need at all of `times` (a backfill): per joined
    /// component its rows up to the last time, indexed by key, and per component one scan over
    /// the union of the windows. The joined histories come first: without them each time reads
    /// the latest row of every key of the whole history, while a scan read per time reads only
    /// that time's window. What would take the values held past the bound
    /// ([`Executor::with_prefetch_cells`]) is left out and read per time instead
    /// ([`Prefetch::read_per_step`] says what). `None` when a read failed (the per-time reads
    /// then report it).
    pub async fn prefetch(&self, times: &[i64], only: Option<&[String]>) -> Option<Prefetch> {
        self.prefetch_in(times, only, false).await
    }

    /// In how many groups of consecutive times a backfill over `times` reads its rows so that
    /// each group's reads stay within the bound ([`Executor::with_prefetch_cells`]): 1 when
    /// everything fits at once (then [`Executor::prefetch`]), up to one per time. Each
    /// group of several times is read by [`Executor::prefetch_keyed`]. `None` when the
    /// store could not say how many rows it holds.
    pub async fn prefetch_groups(&self, times: &[i64], only: Option<&[String]>) -> Option<usize> {
        let checks = self.selected(only);
        let mut reads = Reads::default();
        for &t in times {
            for c in &checks {
                self.plan_reads(c, t, &mut reads);
            }
        }
        let mut parts: Vec<(&str, usize)> = Vec::new();
        for (key, cols) in &reads.scans {
            parts.push((key.component.as_str(), cols.len()));
        }
        for (key, cols) in &reads.latest {
            parts.push((key.component.as_str(), cols.len()));
        }
        // Each component once, with its widest read.
        parts.sort_unstable();
        parts.dedup_by(|a, b| {
            let same = a.0 == b.0;
            if same {
                b.1 = b.1.max(a.1);
            }
            same
        });
        let cells = self.cells_at_most(&parts).await?;
        if self.prefetch_cells == 0 {
            return Some(times.len().max(1));
        }
        let groups = cells.div_ceil(self.prefetch_cells).max(1);
        Some(
            usize::try_from(groups)
                .unwrap_or(usize::MAX)
                .min(times.len().max(1)),
        )
    }

    /// [`Executor::prefetch`] for one group of a backfill's times (see
    /// [`Executor::prefetch_groups`]), without the bound: the scans over the group's windows,
    /// and of each joined component only the rows of the keys those scans hold (every such
    /// row before the group's last time, a semi-join read once for the group), indexed by
    /// key. A join whose keys come from another join's rows (a chained join) is read per
    /// time.
    pub async fn prefetch_keyed(&self, times: &[i64], only: Option<&[String]>) -> Option<Prefetch> {
        self.prefetch_in(times, only, true).await
    }

    async fn prefetch_in(
        &self,
        times: &[i64],
        only: Option<&[String]>,
        keyed: bool,
    ) -> Option<Prefetch> {
        let checks = self.selected(only);
        let mut reads = Reads::default();
        for &t in times {
            for c in &checks {
                self.plan_reads(c, t, &mut reads);
            }
        }
        // Per component: the union of the scanned ranges and columns.
        let mut scans: HashMap<String, (Option<i64>, i64, Vec<String>)> = HashMap::new();
        for (key, cols) in &reads.scans {
            let e = scans
                .entry(key.component.clone())
                .or_insert((key.start, key.end, Vec::new()));
            e.0 = match (e.0, key.start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
            e.1 = e.1.max(key.end);
            add_columns(&mut e.2, cols);
        }
        // Per (component, join column): the latest time and the columns.
        let mut latest: HashMap<(String, String), (i64, Vec<String>)> = HashMap::new();
        for (key, cols) in &reads.latest {
            let e = latest
                .entry((key.component.clone(), key.key.clone()))
                .or_insert((key.before, Vec::new()));
            e.0 = e.0.max(key.before);
            add_columns(&mut e.1, cols);
        }
        // The memory bound: at most every stored row of each component, times its columns;
        // the joined histories first, then the scans, all or none of each kind.
        let latest_parts: Vec<(&str, usize)> = latest
            .iter()
            .map(|((c, _), (_, cols))| (c.as_str(), cols.len()))
            .collect();
        let latest_cells = self.cells_at_most(&latest_parts).await?;
        let scan_parts: Vec<(&str, usize)> = scans
            .iter()
            .map(|(c, (_, _, cols))| (c.as_str(), cols.len()))
            .collect();
        let scan_cells = self.cells_at_most(&scan_parts).await?;
        let take_latest = keyed || !latest.is_empty() && latest_cells <= self.prefetch_cells;
        let held = if take_latest { latest_cells } else { 0 };
        let take_scans = keyed || held.saturating_add(scan_cells) <= self.prefetch_cells;
        let mut per_step: Vec<String> = Vec::new();
        // Keyed: the joins whose keys all come from scans of the first component.
        let mut key_sources: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        if keyed {
            let mut chained: Vec<(String, String)> = Vec::new();
            for (lk, from) in &reads.keys_from {
                let id = (lk.component.clone(), lk.key.clone());
                for f in from {
                    match f {
                        KeysFrom::Scan(scan, column) => {
                            let e = key_sources.entry(id.clone()).or_default();
                            let source = (scan.component.clone(), column.clone());
                            if !e.contains(&source) {
                                e.push(source);
                            }
                        }
                        KeysFrom::Latest(..) => chained.push(id.clone()),
                    }
                }
            }
            for id in chained {
                key_sources.remove(&id);
                if latest.remove(&id).is_some() {
                    per_step.push(format!("the latest `{}` per key", id.0));
                }
            }
        }
        if !take_latest {
            per_step.extend(
                latest
                    .drain()
                    .map(|((c, _), _)| format!("the latest `{c}` per key")),
            );
        }
        if !take_scans {
            per_step.extend(scans.drain().map(|(c, _)| format!("`{c}`")));
        }
        per_step.sort();
        // Not keyed, the joined histories are read first, so that each scan can look its
        // join keys up as it is read (see `with_heads`), slice by slice.
        let named_all = named_columns(&checks);
        let named = &named_all;
        let scan_reads = |heads: HashMap<String, Vec<HeadsJoin>>| {
            scans.into_iter().map(move |(comp, (start, end, cols))| {
                let joins = heads.get(&comp).cloned().unwrap_or_default();
                async move {
                    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
                    let slices = match joins.is_empty() {
                        true => vec![(start, end)],
                        false => {
                            let rows = (self.slice_cells / cols.len().max(1) as u64).max(1);
                            self.store.time_slices(&comp, start, end, rows).await.ok()?
                        }
                    };
                    let mut batches = Vec::new();
                    for (a, b) in slices {
                        let got = self.store.scan_batches(&comp, &refs, a, b).await.ok()?;
                        let got = match joins.is_empty() {
                            true => got,
                            false => {
                                let (joins, named) = (joins.clone(), named.clone());
                                tokio::task::spawn_blocking(move || {
                                    got.iter()
                                        .map(|b| add_heads(b, &joins, &named))
                                        .collect::<Result<Vec<_>, String>>()
                                })
                                .await
                                .ok()?
                                .ok()?
                            }
                        };
                        batches.extend(got);
                    }
                    self.prefetched_scan(comp, start, end, cols, batches, &joins, named)
                }
            })
        };
        // Keyed, the joined rows are read after the scans, for the keys they hold.
        let mut scan_reads = Some(scan_reads);
        let scans: HashMap<String, PrefetchedScan> = match keyed {
            true => futures::future::join_all(scan_reads.take()?(HashMap::new()))
                .await
                .into_iter()
                .collect::<Option<_>>()?,
            false => HashMap::new(),
        };
        let (scans_ref, key_sources) = (&scans, &key_sources);
        let latest_reads = latest
            .into_iter()
            .map(|((comp, key), (before, cols))| async move {
                let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
                let batches = match keyed {
                    false => self.store.scan_batches(&comp, &refs, None, before).await,
                    true => {
                        let id = (comp.clone(), key.clone());
                        let keys = scanned_keys(scans_ref, key_sources.get(&id)?)?;
                        self.store
                            .rows_by_key(&comp, &refs, before, &key, &keys)
                            .await
                    }
                }
                .ok()?;
                let batch = self.concat(&comp, &cols, batches).ok()?;
                let schema = self.program.component(&comp)?;
                // Indexing a million keys is tens of ms of CPU: off the async runtime's threads.
                let (column, time) = (key.clone(), schema.time.clone());
                let history = tokio::task::spawn_blocking(move || {
                    join::KeyedHistory::unordered(batch, &column, &time)
                })
                .await
                .ok()?
                .ok()?;
                Some((
                    (comp, key),
                    PrefetchedHistory {
                        before,
                        columns: cols,
                        history: Arc::new(history),
                    },
                ))
            });
        let latest: HashMap<(String, String), PrefetchedHistory> =
            futures::future::join_all(latest_reads)
                .await
                .into_iter()
                .collect::<Option<_>>()?;
        let prefetch = match scan_reads {
            // Keyed: the heads are found now, the scans' keys were needed to read the joins.
            None => {
                let prefetch = Prefetch {
                    scans,
                    latest,
                    per_step,
                };
                with_heads(prefetch, &reads, named).await
            }
            Some(scan_reads) => {
                let heads = heads_joins(&reads, &latest);
                let scans = futures::future::join_all(scan_reads(heads))
                    .await
                    .into_iter()
                    .collect::<Option<_>>()?;
                Prefetch {
                    scans,
                    latest,
                    per_step,
                }
            }
        };
        Some(prefetch)
    }

    /// A prefetched scan of the batches read of `comp` over `[start, end)` (`cols`, and the
    /// heads of `joins`); `None` when they are not in time order.
    #[allow(clippy::too_many_arguments)]
    fn prefetched_scan(
        &self,
        comp: String,
        start: Option<i64>,
        end: i64,
        cols: Vec<String>,
        batches: Vec<RecordBatch>,
        joins: &[HeadsJoin],
        named: &[String],
    ) -> Option<(String, PrefetchedScan)> {
        // Kept as read (each step concatenates only the pieces of its own window),
        // with each batch's first and last time.
        let time = self.program.component(&comp)?.time.clone();
        let mut parts = Vec::with_capacity(batches.len());
        for b in batches {
            let times = b
                .column_by_name(&time)?
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()?
                .values();
            if let (Some(&lo), Some(&hi)) = (times.first(), times.last()) {
                parts.push((lo, hi, b));
            }
        }
        if parts.windows(2).any(|w| w[1].0 < w[0].1) {
            return None;
        }
        let empty = || -> Option<RecordBatch> {
            let b = self.concat(&comp, &cols, Vec::new()).ok()?;
            add_heads(&b, joins, named).ok()
        };
        let schema = match parts.first() {
            Some((_, _, b)) => b.schema(),
            None => empty()?.schema(),
        };
        Some((
            comp,
            PrefetchedScan {
                start,
                end,
                columns: cols,
                time,
                schema,
                parts,
            },
        ))
    }

    /// At most how many values reading every stored row of each `(component, columns)` holds.
    async fn cells_at_most(&self, parts: &[(&str, usize)]) -> Option<u64> {
        let mut n: u64 = 0;
        for (comp, cols) in parts {
            let rows = self.store.rows_at_most(comp).await.ok()?;
            n = n.saturating_add(rows.saturating_mul(*cols as u64));
        }
        Some(n)
    }

    /// Evaluates the given checks at `at_us`, results in check order then slice order.
    pub async fn evaluate(&self, checks: &[&CheckPlan], at_us: i64) -> Vec<CheckResult> {
        self.evaluate_with(checks, at_us, None).await
    }

    /// [`Executor::evaluate`], reading from `prefetch` what it covers.
    pub(crate) async fn evaluate_with(
        &self,
        checks: &[&CheckPlan],
        at_us: i64,
        prefetch: Option<&Prefetch>,
    ) -> Vec<CheckResult> {
        self.evaluate_counted(checks, at_us, prefetch, &FailureCounts::new())
            .await
    }

    /// [`Executor::evaluate_with`], counting in `plugin_failures` every failed plugin call
    /// (by plugin and reason), for `/metrics`. The results say the same either way.
    pub(crate) async fn evaluate_counted(
        &self,
        checks: &[&CheckPlan],
        at_us: i64,
        prefetch: Option<&Prefetch>,
        plugin_failures: &FailureCounts,
    ) -> Vec<CheckResult> {
        if prefetch.is_some() {
            return self
                .evaluate_fetched(checks, at_us, prefetch, plugin_failures)
                .await
                .into_iter()
                .flatten()
                .collect();
        }
        // With a pane cache (`mlc serve`), checks that can are concluded from their panes.
        let mut paned: Vec<Option<Vec<CheckResult>>> = vec![None; checks.len()];
        if self.panes.is_some() {
            let got = futures::future::join_all(
                checks
                    .iter()
                    .map(|c| self.evaluate_paned(c, at_us, plugin_failures)),
            )
            .await;
            paned = got;
        }
        // Checks without joins stream their windows through their states (stream.rs); the
        // others read their rows whole, then join.
        let (streamed, whole): (Vec<usize>, Vec<usize>) = (0..checks.len())
            .filter(|&i| paned[i].is_none())
            .partition(|&i| stream::streams(checks[i]));
        let pick = |idx: &[usize]| idx.iter().map(|&i| checks[i]).collect::<Vec<_>>();
        let (a, b) = (pick(&streamed), pick(&whole));
        let (a, b) = futures::join!(
            self.evaluate_streamed(&a, at_us, plugin_failures),
            self.evaluate_fetched(&b, at_us, None, plugin_failures)
        );
        let mut out: Vec<Vec<CheckResult>> =
            paned.into_iter().map(Option::unwrap_or_default).collect();
        for (i, r) in streamed.into_iter().zip(a).chain(whole.into_iter().zip(b)) {
            out[i] = r;
        }
        out.into_iter().flatten().collect()
    }

    /// The results of `checks`, per check, their rows read whole (from `prefetch` where it
    /// holds them), joined, then evaluated.
    async fn evaluate_fetched(
        &self,
        checks: &[&CheckPlan],
        at_us: i64,
        prefetch: Option<&Prefetch>,
        plugin_failures: &FailureCounts,
    ) -> Vec<Vec<CheckResult>> {
        if checks.is_empty() {
            return Vec::new();
        }
        let mut reads = Reads::default();
        let plans: Vec<CheckReads> = checks
            .iter()
            .map(|c| self.plan_reads(c, at_us, &mut reads))
            .collect();
        let mut fetched = self.fetch(reads, prefetch).await;
        fetched.right_columns = right_columns(checks);
        let fetched = Arc::new(fetched);

        let mut tasks = Vec::with_capacity(checks.len());
        for (plan, check_reads) in checks.iter().zip(plans) {
            let plan = (*plan).clone();
            let fetched = fetched.clone();
            let plugins = self.plugins.clone();
            let program = self.program.clone();
            let version = self.rules_version.clone();
            let max_series = self.max_series;
            let plugin_failures = plugin_failures.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                let ctx = RunContext {
                    program: &program,
                    plugins: &plugins,
                    version: &version,
                    max_series,
                    plugin_failures: &plugin_failures,
                };
                run_check(&ctx, &plan, &check_reads, &fetched)
            }));
        }
        let mut out = Vec::new();
        for (task, plan) in futures::future::join_all(tasks)
            .await
            .into_iter()
            .zip(checks)
        {
            match task {
                Ok(results) => out.push(results),
                Err(e) => out.push(vec![CheckResult::error(
                    plan,
                    &format!("the evaluation stopped unexpectedly: {e}"),
                    Timing {
                        at_us,
                        window_start_us: None,
                        window_end_us: at_us,
                    },
                    &self.rules_version,
                )]),
            }
        }
        out
    }

    /// `nulls_only`: the columns of the first component the check reads only for their nulls.
    #[allow(clippy::too_many_arguments)]
    fn source_reads(
        &self,
        source: &SourcePlan,
        nulls_only: &[String],
        start: Option<i64>,
        end: i64,
        at_us: i64,
        reads: &mut Reads,
    ) -> SourceReads {
        let mut comps = source.components.iter();
        let first = comps.next();
        let key = ScanKey {
            component: first.map(|c| c.name.clone()).unwrap_or_default(),
            start,
            end,
        };
        if let Some(first) = first {
            let mut cols = first.columns.clone();
            let schema = self.program.component(&first.name);
            if let Some(schema) = schema {
                // The time is always read: `latest` and `count()` need it.
                add_columns(&mut cols, std::slice::from_ref(&schema.time));
            }
            let values: Vec<String> = cols
                .iter()
                .filter(|c| {
                    !nulls_only.contains(c) || schema.is_none_or(|s| **c == s.key || **c == s.time)
                })
                .cloned()
                .collect();
            add_columns(reads.values.entry(key.clone()).or_default(), &values);
            add_columns(reads.scans.entry(key.clone()).or_default(), &cols);
        }
        let mut joins: Vec<LatestKey> = Vec::new();
        // The latest read of each right component so far, by its index in the source.
        let mut by_source: HashMap<usize, LatestKey> = HashMap::new();
        for join in &source.joins {
            let Some(right) = source.components.get(join.right) else {
                continue;
            };
            let lk = LatestKey {
                component: right.name.clone(),
                key: join.right_key.clone(),
                before: at_us,
            };
            let mut cols = right.columns.clone();
            let mut needed = vec![join.right_key.clone()];
            if let Some(schema) = self.program.component(&right.name) {
                // The time orders the rows by key: which one is the latest.
                needed.push(schema.time.clone());
            }
            add_columns(&mut cols, &needed);
            add_columns(reads.latest.entry(lk.clone()).or_default(), &cols);
            let from = match join.left_key.source {
                0 => Some(KeysFrom::Scan(key.clone(), join.left_key.name.clone())),
                s => by_source
                    .get(&s)
                    .map(|l| KeysFrom::Latest(l.clone(), join.left_key.name.clone())),
            };
            if let Some(from) = from {
                let all = reads.keys_from.entry(lk.clone()).or_default();
                if !all.contains(&from) {
                    all.push(from);
                }
            }
            by_source.insert(join.right, lk.clone());
            joins.push(lk);
        }
        SourceReads { first: key, joins }
    }

    fn plan_reads(&self, check: &CheckPlan, at_us: i64, reads: &mut Reads) -> CheckReads {
        let end = at_us.saturating_sub(secs_us(check.delay_secs));
        let start = check.window_secs.map(|w| end.saturating_sub(secs_us(w)));
        let nulls_only: Vec<String> = check
            .nulls_only_columns()
            .into_iter()
            .filter(|c| c.source == 0)
            .map(|c| c.name)
            .collect();
        let current = self.source_reads(&check.source, &nulls_only, start, end, at_us, reads);
        let baseline = check.baseline.as_ref().map(|b| match b {
            BaselinePlan::Component { name, columns } => {
                let key = ScanKey {
                    component: name.clone(),
                    start: None,
                    end,
                };
                let mut cols = columns.clone();
                if let Some(schema) = self.program.component(name) {
                    add_columns(&mut cols, std::slice::from_ref(&schema.time));
                }
                // A component baseline reads every column for its values, also when another
                // check scans the same rows only for some columns' nulls.
                add_columns(reads.values.entry(key.clone()).or_default(), &cols);
                add_columns(reads.scans.entry(key.clone()).or_default(), &cols);
                BaselineReads::Component { key }
            }
            BaselinePlan::Offset { offset_secs } => {
                let b_end = end.saturating_sub(secs_us(*offset_secs));
                let b_start = check.window_secs.map(|w| b_end.saturating_sub(secs_us(w)));
                BaselineReads::Source(self.source_reads(
                    &check.source,
                    &nulls_only,
                    b_start,
                    b_end,
                    at_us,
                    reads,
                ))
            }
            BaselinePlan::Range { from_us, to_us } => BaselineReads::Source(self.source_reads(
                &check.source,
                &nulls_only,
                Some(*from_us),
                *to_us,
                at_us,
                reads,
            )),
        });
        let event_age = check
            .aggregates
            .iter()
            .any(|a| a.function.special_input() == Some(SpecialInput::EventAge));
        if event_age {
            reads
                .max_time
                .insert(current.first.component.clone(), at_us);
        }
        CheckReads {
            timing: Timing {
                at_us,
                window_start_us: start,
                window_end_us: end,
            },
            current,
            baseline,
            event_age,
        }
    }

    async fn fetch(&self, reads: Reads, prefetch: Option<&Prefetch>) -> Fetched {
        let values = &reads.values;
        let scans = reads.scans.into_iter().map(|(key, cols)| async move {
            if let Some(hit) = prefetch.and_then(|p| p.scan(&key, &cols)) {
                return (key, Ok(hit));
            }
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            let needed = values.get(&key);
            let nulls_only: Vec<&str> = refs
                .iter()
                .filter(|c| needed.is_some_and(|v| !v.iter().any(|n| n == *c)))
                .copied()
                .collect();
            let got = self
                .store
                .scan_batches_nulls_only(&key.component, &refs, &nulls_only, key.start, key.end)
                .await
                .map_err(|e| format!("reading `{}`: {e}", key.component))
                .and_then(|b| self.batches(&key.component, &cols, b));
            (key, got)
        });
        let (scans, max_time) = futures::join!(
            futures::future::join_all(scans),
            self.max_times(reads.max_time)
        );
        let scans: HashMap<ScanKey, Result<Vec<RecordBatch>, String>> = scans.into_iter().collect();
        let latest = self
            .fetch_latest(reads.latest, reads.keys_from, &scans, prefetch)
            .await;
        Fetched {
            scans,
            latest,
            max_time,
            joined: std::sync::Mutex::new(HashMap::new()),
            right_columns: HashMap::new(),
        }
    }

    /// Per component, its latest event time before the time given (`freshness()`).
    async fn max_times(
        &self,
        reads: HashMap<String, i64>,
    ) -> HashMap<String, Result<Option<i64>, String>> {
        futures::future::join_all(reads.into_iter().map(|(comp, before)| async move {
            let got = self
                .store
                .max_time(&comp, before)
                .await
                .map_err(|e| format!("reading `{comp}`: {e}"));
            (comp, got)
        }))
        .await
        .into_iter()
        .collect()
    }

    /// The right sides of the joins: each read, unless the prefetch holds it, for only the
    /// keys of the rows it is joined to (after the reads those keys come from: a chained
    /// join's keys are in the right rows of the join before it).
    async fn fetch_latest(
        &self,
        mut pending: HashMap<LatestKey, Vec<String>>,
        keys_from: HashMap<LatestKey, Vec<KeysFrom>>,
        scans: &HashMap<ScanKey, Result<Vec<RecordBatch>, String>>,
        prefetch: Option<&Prefetch>,
    ) -> HashMap<LatestKey, Result<join::Right, String>> {
        let mut done: HashMap<LatestKey, Result<join::Right, String>> = HashMap::new();
        while !pending.is_empty() {
            let ready: Vec<LatestKey> = pending
                .keys()
                .filter(|k| {
                    keys_from.get(*k).is_none_or(|from| {
                        from.iter().all(|f| match f {
                            KeysFrom::Scan(..) => true,
                            KeysFrom::Latest(dep, _) => done.contains_key(dep),
                        })
                    })
                })
                .cloned()
                .collect();
            if ready.is_empty() {
                // Not reachable (joins chain left to right), but never loop.
                for (key, _) in pending.drain() {
                    done.insert(key, Err("the joins' reads depend on each other".into()));
                }
                break;
            }
            let reads = ready.into_iter().map(|key| {
                let cols = pending.remove(&key).unwrap_or_default();
                let keys = match prefetch.and_then(|p| p.latest(&key, &cols)) {
                    Some(hit) => Err(Ok(hit)),
                    None => Ok(join_keys(keys_from.get(&key), scans, &done)),
                };
                async move {
                    let keys = match keys {
                        Err(hit) => return (key, hit),
                        Ok(Err(e)) => return (key, Err(e)),
                        Ok(Ok(keys)) => keys,
                    };
                    let got = self.read_latest(&key, &cols, &keys).await;
                    (key, got)
                }
            });
            let got = futures::future::join_all(reads).await;
            done.extend(got);
        }
        done
    }

    /// The latest row of each of `keys` in `key.component` before `key.before`, indexed.
    async fn read_latest(
        &self,
        key: &LatestKey,
        cols: &[String],
        keys: &[&str],
    ) -> Result<join::Right, String> {
        let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        let batches = self
            .store
            .latest_by_key(&key.component, &refs, key.before, &key.key, keys)
            .await
            .map_err(|e| format!("reading `{}`: {e}", key.component))?;
        let batch = self.concat(&key.component, cols, batches)?;
        let time = self
            .program
            .component(&key.component)
            .map(|s| s.time.clone())
            .ok_or_else(|| format!("component `{}` is not declared", key.component))?;
        let column = key.key.clone();
        let history = tokio::task::spawn_blocking(move || {
            join::KeyedHistory::unordered(batch, &column, &time)
        })
        .await
        .map_err(|e| format!("joining `{}`: {e}", key.component))?
        .map_err(|e| e.to_string())?;
        Ok(join::Right {
            history: Arc::new(history),
            before: key.before,
        })
    }

    /// The store's batches as they came, or one empty, typed batch when no rows came (so that
    /// a check over no rows still sees its columns and, for a joined source, its joins).
    fn batches(
        &self,
        component: &str,
        cols: &[String],
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, String> {
        if batches.is_empty() {
            return Ok(vec![self.concat(component, cols, batches)?]);
        }
        Ok(batches)
    }

    /// One batch from the store's bounded batches (an empty, typed one when no rows came).
    fn concat(
        &self,
        component: &str,
        cols: &[String],
        batches: Vec<RecordBatch>,
    ) -> Result<RecordBatch, String> {
        if batches.len() == 1 {
            return Ok(batches.into_iter().next().unwrap_or_else(|| unreachable!()));
        }
        if let Some(first) = batches.first() {
            return concat_columns(&batches, first.schema())
                .map_err(|e| format!("reading `{component}`: {e}"));
        }
        let schema = self.program.component(component);
        let fields: Vec<Field> = cols
            .iter()
            .map(|c| {
                let ty = schema
                    .and_then(|s| s.column_type(c))
                    .unwrap_or(DataType::String);
                Field::new(c, arrow_type(ty), true)
            })
            .collect();
        let arrays: Vec<ArrayRef> = fields
            .iter()
            .map(|f| new_empty_array(f.data_type()))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())
    }
}

/// A join whose keys a prefetched scan looks up as it is read: its key column and the
/// prefetched history it is joined to.
#[derive(Clone)]
struct HeadsJoin {
    column: String,
    history: Arc<join::KeyedHistory>,
}

/// Per scanned component, the joins on its columns whose histories are prefetched: a
/// backfill looks their keys up once, as the scan is read, and each step only walks back
/// from the heads found to its own time ([`join::KeyedHistory::heads_column`]).
fn heads_joins(
    reads: &Reads,
    latest: &HashMap<(String, String), PrefetchedHistory>,
) -> HashMap<String, Vec<HeadsJoin>> {
    let mut out: HashMap<String, Vec<HeadsJoin>> = HashMap::new();
    for (lk, from) in &reads.keys_from {
        let Some(h) = latest.get(&(lk.component.clone(), lk.key.clone())) else {
            continue;
        };
        for f in from {
            if let KeysFrom::Scan(scan, column) = f {
                let joins = out.entry(scan.component.clone()).or_default();
                if !joins
                    .iter()
                    .any(|j| j.column == *column && Arc::ptr_eq(&j.history, &h.history))
                {
                    joins.push(HeadsJoin {
                        column: column.clone(),
                        history: h.history.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The columns `checks` name in expressions, `where`, `group by` and `each` (of any
/// component): a scanned join key none of them names is dropped once its heads are found.
fn named_columns(checks: &[&CheckPlan]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in checks {
        add_columns(&mut out, &first_source_columns(c));
    }
    out
}

/// `prefetch` (read keyed: the scans first, for the keys the joins read) with the heads of
/// its scans' join keys added as in [`heads_joins`].
async fn with_heads(mut prefetch: Prefetch, reads: &Reads, named: &[String]) -> Prefetch {
    for (component, joins) in heads_joins(reads, &prefetch.latest) {
        let Some(mut scan) = prefetch.scans.remove(&component) else {
            continue;
        };
        let named = named.to_vec();
        let task = tokio::task::spawn_blocking(move || {
            let parts = std::mem::take(&mut scan.parts);
            let mut done = Vec::with_capacity(parts.len());
            for (lo, hi, b) in parts {
                done.push((lo, hi, add_heads(&b, &joins, &named)?));
            }
            scan.parts = done;
            scan.schema =
                add_heads(&RecordBatch::new_empty(scan.schema.clone()), &joins, &named)?.schema();
            Ok::<_, String>(scan)
        });
        match task.await {
            Ok(Ok(scan)) => {
                prefetch.scans.insert(component, scan);
            }
            // The scan's batches are gone with the failed task: it is read at each step.
            _ => prefetch.per_step.push(format!("`{component}`")),
        }
    }
    prefetch.per_step.sort();
    prefetch
}

/// `batch` with, per join, the heads of its key column's keys in the join's history (in
/// pieces on every core: a batch may hold millions of rows), and without the key columns
/// no check names (`named`).
fn add_heads(
    batch: &RecordBatch,
    joins: &[HeadsJoin],
    named: &[String],
) -> Result<RecordBatch, String> {
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let dropped = !named.contains(f.name()) && joins.iter().any(|j| j.column == *f.name());
        if !dropped {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    for j in joins {
        let keys = batch
            .column_by_name(&j.column)
            .and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
            .ok_or_else(|| format!("join key `{}` was not fetched as strings", j.column))?;
        let n = keys.len();
        let pieces: Vec<std::ops::Range<usize>> = (0..n)
            .step_by(1 << 16)
            .map(|a| a..(a + (1 << 16)).min(n))
            .collect();
        let heads = mlc_engine::eval::par_map(&pieces, pieces.len() > 1, |r| {
            j.history.heads(&keys.slice(r.start, r.len()))
        });
        let heads: Vec<&dyn Array> = heads.iter().map(|h| h as &dyn Array).collect();
        let heads = match heads.len() {
            0 => Arc::new(arrow_array::UInt32Array::from(Vec::<u32>::new())) as ArrayRef,
            _ => arrow_select::concat::concat(&heads).map_err(|e| e.to_string())?,
        };
        fields.push(Field::new(
            j.history.heads_column(),
            arrow_schema::DataType::UInt32,
            true,
        ));
        columns.push(heads);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| e.to_string())
}

/// The non-null values of the columns `sources` names, `(component, column)`, in the
/// prefetched scans, repeats included (the store takes each key once); `None` when a column is missing or not text.
fn scanned_keys<'a>(
    scans: &'a HashMap<String, PrefetchedScan>,
    sources: &[(String, String)],
) -> Option<Vec<&'a str>> {
    let mut keys: Vec<&str> = Vec::new();
    for (component, column) in sources {
        for (_, _, batch) in &scans.get(component)?.parts {
            push_keys(&mut keys, batch, column).ok()?;
        }
    }
    Some(keys)
}

/// The non-null values of the columns `from` names (the left sides' join keys), repeats
/// included: what a latest read must find. A failed scan gives none (its checks report it).
fn join_keys<'a>(
    from: Option<&Vec<KeysFrom>>,
    scans: &'a HashMap<ScanKey, Result<Vec<RecordBatch>, String>>,
    done: &'a HashMap<LatestKey, Result<join::Right, String>>,
) -> Result<Vec<&'a str>, String> {
    let mut keys: Vec<&str> = Vec::new();
    for f in from.into_iter().flatten() {
        match f {
            KeysFrom::Scan(scan, column) => {
                if let Some(Ok(batches)) = scans.get(scan) {
                    for b in batches {
                        push_keys(&mut keys, b, column)?;
                    }
                }
            }
            KeysFrom::Latest(dep, column) => match done.get(dep) {
                Some(Ok(right)) => push_keys(&mut keys, right.history.batch(), column)?,
                Some(Err(e)) => return Err(e.clone()),
                None => {}
            },
        }
    }
    Ok(keys)
}

/// Appends the non-null values of `batch`'s string column `column` to `keys`.
fn push_keys<'a>(
    keys: &mut Vec<&'a str>,
    batch: &'a RecordBatch,
    column: &str,
) -> Result<(), String> {
    let Some(array) = batch.column_by_name(column) else {
        return Err(format!("join key `{column}` was not fetched"));
    };
    let Some(strings) = array.as_any().downcast_ref::<arrow_array::StringArray>() else {
        return Err(format!(
            "join keys must be strings, found a {} column",
            array.data_type()
        ));
    };
    keys.extend(strings.iter().flatten());
    Ok(())
}

/// The batches as one, each column copied on a thread of its own (at most one per core): a
/// 1M-row, 14-column read is 150 MB to copy.
fn concat_columns(
    batches: &[RecordBatch],
    schema: arrow_schema::SchemaRef,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let indices: Vec<usize> = (0..schema.fields().len()).collect();
    let columns: Vec<ArrayRef> = mlc_engine::eval::par_map(&indices, true, |&i| {
        let parts: Vec<&dyn arrow_array::Array> =
            batches.iter().map(|b| b.column(i).as_ref()).collect();
        arrow_select::concat::concat(&parts)
    })
    .into_iter()
    .collect::<Result<_, _>>()?;
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

/// The Arrow type the store reads a column type as.
pub fn arrow_type(ty: DataType) -> ArrowType {
    match ty {
        DataType::Int | DataType::Timestamp => ArrowType::Int64,
        DataType::Float => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::String => ArrowType::Utf8,
    }
}

/// Backfills read at most this many values (rows times columns, all components together)
/// up front; beyond it each evaluation time is read on its own, keeping memory bounded.
pub const PREFETCH_MAX_CELLS: u64 = 64_000_000;

/// Rows read once for many evaluation times: see [`Executor::prefetch`].
pub struct Prefetch {
    scans: HashMap<String, PrefetchedScan>,
    /// By component and join column.
    latest: HashMap<(String, String), PrefetchedHistory>,
    /// What did not fit the bound and is read at each time instead.
    per_step: Vec<String>,
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch")
            .field("scans", &self.scans.keys().collect::<Vec<_>>())
            .field("latest", &self.latest.keys().collect::<Vec<_>>())
            .finish()
    }
}

struct PrefetchedScan {
    start: Option<i64>,
    end: i64,
    columns: Vec<String>,
    time: String,
    schema: arrow_schema::SchemaRef,
    /// The batches as read, in time order, each with its first and last time.
    parts: Vec<(i64, i64, RecordBatch)>,
}

struct PrefetchedHistory {
    before: i64,
    columns: Vec<String>,
    history: Arc<join::KeyedHistory>,
}

impl Prefetch {
    /// The reads left out of the prefetch (past its bound), each read at every time instead,
    /// as text (`` `inference` ``, `` the latest `feedback` per key ``); empty when all fit.
    pub fn read_per_step(&self) -> &[String] {
        &self.per_step
    }

    /// The rows of `key`, cut from the prefetched scan when it covers the range and columns:
    /// slices of its batches, nothing copied.
    fn scan(&self, key: &ScanKey, cols: &[String]) -> Option<Vec<RecordBatch>> {
        let p = self.scans.get(&key.component)?;
        let covers_start = match (p.start, key.start) {
            (None, _) => true,
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => false,
        };
        if !covers_start || key.end > p.end || !cols.iter().all(|c| p.columns.contains(c)) {
            return None;
        }
        let mut pieces = Vec::new();
        for (first, last, batch) in &p.parts {
            if key.start.is_some_and(|s| *last < s) || *first >= key.end {
                continue;
            }
            let times = batch
                .column_by_name(&p.time)?
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()?
                .values();
            let lo = key.start.map_or(0, |s| times.partition_point(|t| *t < s));
            let hi = times.partition_point(|t| *t < key.end);
            if hi > lo {
                pieces.push(batch.slice(lo, hi - lo));
            }
        }
        if pieces.is_empty() {
            pieces.push(RecordBatch::new_empty(p.schema.clone()));
        }
        Some(pieces)
    }

    /// The right side of a join at `key.before`, when the prefetched history covers it.
    fn latest(&self, key: &LatestKey, cols: &[String]) -> Option<join::Right> {
        let p = self.latest.get(&(key.component.clone(), key.key.clone()))?;
        if key.before > p.before || !cols.iter().all(|c| p.columns.contains(c)) {
            return None;
        }
        Some(join::Right {
            history: p.history.clone(),
            before: key.before,
        })
    }
}

struct Fetched {
    /// Each scan's batches in time order (at least one, empty when no rows came).
    scans: HashMap<ScanKey, Result<Vec<RecordBatch>, String>>,
    latest: HashMap<LatestKey, Result<join::Right, String>>,
    max_time: HashMap<String, Result<Option<i64>, String>>,
    /// Joined sources, shared by the checks that join the same rows the same way (two
    /// checks over `inference join feedback` match the keys once).
    joined: std::sync::Mutex<HashMap<String, JoinedOnce>>,
    /// Per component joined as a right side: the columns any of the evaluated checks uses
    /// of it, the only ones a join copies.
    right_columns: HashMap<String, Vec<String>>,
}

/// Per component joined as a right side by any of `checks`: the columns they use of it.
fn right_columns(checks: &[&CheckPlan]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for check in checks {
        let used = check.used_columns();
        for join in &check.source.joins {
            let Some(comp) = check.source.components.get(join.right) else {
                continue;
            };
            let cols = out.entry(comp.name.clone()).or_default();
            // What the check reads of it, and the keys later joins take from it (a chained
            // `join c using k2` where only this component has `k2`).
            let later_keys = check
                .source
                .joins
                .iter()
                .map(|j| &j.left_key)
                .filter(|k| k.source == join.right);
            for c in used
                .iter()
                .filter(|c| c.source == join.right)
                .chain(later_keys)
            {
                if !cols.contains(&c.name) {
                    cols.push(c.name.clone());
                }
            }
        }
    }
    out
}

/// A source's rows, batch by batch.
type Batches = Arc<Vec<SourceRows>>;

type JoinedOnce = Arc<std::sync::OnceLock<Result<Batches, String>>>;

impl Fetched {
    fn source(&self, plan: &SourcePlan, reads: &SourceReads) -> Result<Batches, String> {
        if plan.joins.is_empty() {
            return self.join(plan, reads);
        }
        // Everything the joined rows depend on: the reads, and each join's keys and kind.
        let key = format!("{reads:?}|{:?}", plan.joins);
        let once = match self.joined.lock() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            Err(_) => return self.join(plan, reads),
        };
        once.get_or_init(|| self.join(plan, reads)).clone()
    }

    fn join(&self, plan: &SourcePlan, reads: &SourceReads) -> Result<Batches, String> {
        let first = self
            .scans
            .get(&reads.first)
            .ok_or_else(|| "rows were not fetched".to_string())?
            .as_ref()
            .map_err(Clone::clone)?;
        let rights = reads
            .joins
            .iter()
            .map(|k| {
                self.latest
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| Err("rows were not fetched".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        first
            .iter()
            .map(|batch| {
                join::join_source(plan, batch.clone(), &rights, Some(&self.right_columns))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Arc::new)
    }
}

/// What every check of one evaluation shares.
struct RunContext<'a> {
    program: &'a Program,
    plugins: &'a HashMap<String, Result<LoadedPlugin, String>>,
    version: &'a str,
    max_series: usize,
    /// Where plugin calls count their failures.
    plugin_failures: &'a FailureCounts,
}

impl RunContext<'_> {
    /// A fresh accumulator for `call`: a builtin's, or a plugin's counting its failures.
    fn make(&self, call: &AggregateCall) -> Result<Box<dyn Accumulator>, String> {
        match &call.function {
            FunctionRef::Builtin(_) => builtin_accumulator(call),
            FunctionRef::Plugin(name) => match self.plugins.get(name) {
                Some(Ok(p)) => p
                    .accumulator_counted(self.plugin_failures)
                    .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(format!("plugin `{name}` could not be loaded: {e}")),
                None => Err(format!("plugin `{name}` is not declared")),
            },
        }
    }
}

/// The columns of its first component's rows that a check's expressions name.
fn first_source_columns(plan: &CheckPlan) -> Vec<String> {
    plan.used_columns()
        .into_iter()
        .filter(|c| c.source == 0)
        .map(|c| c.name)
        .collect()
}

/// The name of a check's first component.
fn first_component(plan: &CheckPlan) -> &str {
    plan.source
        .components
        .first()
        .map(|c| c.name.as_str())
        .unwrap_or_default()
}

/// The event-time columns of a check's current rows and of its baseline rows.
fn check_times(program: &Program, plan: &CheckPlan) -> (ColumnId, Option<ColumnId>) {
    let time_of = |component: &str| -> ColumnId {
        ColumnId {
            source: 0,
            name: program
                .component(component)
                .map(|s| s.time.clone())
                .unwrap_or_default(),
            ty: DataType::Timestamp,
        }
    };
    let first = first_component(plan);
    let baseline_time = match &plan.baseline {
        Some(BaselinePlan::Component { name, .. }) => Some(time_of(name)),
        Some(_) => Some(time_of(first)),
        None => None,
    };
    (time_of(first), baseline_time)
}

/// Seconds from `T` back to the first component's latest event before it (`freshness()`),
/// from the `max_time` reads.
fn event_age(
    plan: &CheckPlan,
    timing: Timing,
    max_time: &HashMap<String, Result<Option<i64>, String>>,
) -> Result<Option<f64>, String> {
    match max_time.get(first_component(plan)) {
        Some(Ok(Some(t))) => Ok(Some((timing.at_us - t) as f64 / US as f64)),
        Some(Ok(None)) | None => Ok(None),
        Some(Err(e)) => Err(e.clone()),
    }
}

fn run_check(
    ctx: &RunContext<'_>,
    plan: &CheckPlan,
    reads: &CheckReads,
    fetched: &Fetched,
) -> Vec<CheckResult> {
    let RunContext {
        program,
        version,
        max_series,
        ..
    } = *ctx;
    let timing = reads.timing;
    let fail = |reason: String| vec![CheckResult::error(plan, &reason, timing, version)];
    let current = match fetched.source(&plan.source, &reads.current) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let baseline = match &reads.baseline {
        None => None,
        Some(BaselineReads::Component { key }) => match fetched.scans.get(key) {
            Some(Ok(batches)) => match batches
                .iter()
                .map(|b| mlc_engine::eval::Frame::new(vec![b.clone()]).map(SourceRows::plain))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(rows) => Some(Arc::new(rows)),
                Err(e) => return fail(e.to_string()),
            },
            Some(Err(e)) => return fail(e.clone()),
            None => return fail("baseline rows were not fetched".into()),
        },
        Some(BaselineReads::Source(r)) => match fetched.source(&plan.source, r) {
            Ok(b) => Some(b),
            Err(e) => return fail(e),
        },
    };
    let (time, baseline_time) = check_times(program, plan);
    let event_age_secs = if reads.event_age {
        match event_age(plan, timing, &fetched.max_time) {
            Ok(age) => age,
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let make = |call: &AggregateCall| ctx.make(call);
    // The rows reach the check batch by batch, as the store gave them: no window is copied
    // into one array first.
    let conclusion = Conclusion {
        has_baseline: baseline.is_some(),
        event_age_secs,
    };
    let b_time = baseline_time.as_ref().unwrap_or(&time);
    let outcomes = CheckState::new(plan, &make, max_series).evaluate_batches(
        plan,
        (current.as_slice(), &time),
        baseline.as_ref().map(|b| (b.as_slice(), b_time)),
        &conclusion,
        &make,
    );
    match outcomes {
        Ok(outcomes) => outcomes
            .iter()
            .map(|o| CheckResult::from_outcome(plan, o, timing, version))
            .collect(),
        Err(e) => fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

    use mlc_store::ingest::{Format, IngestOptions, Input, ingest};

    use super::*;

    const RULES: &str = r#"
component inference {
  key request_id
  time ts
  fields {
    country: string
    prediction: int
  }
}
component feedback {
  key request_id
  time ts
  fields {
    label: int
  }
}
check daily {
  on inference join feedback using request_id
  window 1d
  group by country
  expect accuracy(prediction, label) >= 0.5
  expect count() >= 1
}
check covered {
  on inference left join feedback using request_id
  window 2d
  expect coverage() >= 0.5
}
check ids {
  on inference
  window 1d
  expect distinct(request_id) >= 1
}
"#;

    const DAY: i64 = 86_400_000_000;
    /// 2026-03-01T00:00:00Z
    const T0: i64 = 1_772_323_200_000_000;

    fn program() -> Arc<Program> {
        Arc::new(mlc_engine::check::compile_text(RULES).unwrap())
    }

    async fn put(store: &Store, program: &Program, component: &str, lines: Vec<String>) {
        let body: Arc<[u8]> = lines.join("\n").into_bytes().into();
        let r = ingest(
            store,
            program.component(component).unwrap(),
            Input::Bytes(body),
            Format::Jsonl,
            &IngestOptions::default(),
            None,
        )
        .await
        .unwrap();
        assert!(r.error.is_none(), "{r:?}");
    }

    /// 4 days of requests, most labelled 1 to 40 hours later, some twice (a correction),
    /// in a file with column segments of 20 rows (time slices are cut at them).
    async fn store(program: &Program, dir: &std::path::Path) -> Store {
        let url = format!("sqlite://{}/s.db?segment_rows=20", dir.display());
        let store = Store::open(&url).await.unwrap();
        let (mut inference, mut feedback) = (Vec::new(), Vec::new());
        for i in 0..400i64 {
            let ts = T0 + i * 4 * DAY / 400;
            let country = ["DE", "US", "FR"][(i % 3) as usize];
            let id = match i % 31 {
                0 => "null".to_string(),
                _ => format!("\"r{i}\""),
            };
            inference.push(format!(
                r#"{{"request_id":{id},"ts":{},"country":"{country}","prediction":{}}}"#,
                ts as f64 / 1e6,
                i % 2
            ));
            for (k, late) in [(0, 1 + i % 40), (1, 41 + i % 7)] {
                if i % 5 == 4 || (k == 1 && i % 4 != 0) {
                    continue;
                }
                feedback.push(format!(
                    r#"{{"request_id":{id},"ts":{},"label":{}}}"#,
                    (ts + late * DAY / 24) as f64 / 1e6,
                    (i / 2 + k) % 2
                ));
            }
        }
        put(&store, program, "inference", inference).await;
        put(&store, program, "feedback", feedback).await;
        store
    }

    /// A backfill's prefetch looks the scanned join keys up once (a column of heads per
    /// join), in time slices, and drops the key column when no check names it; each time
    /// evaluated from it equals an evaluation that reads and joins everything itself.
    #[tokio::test]
    async fn a_prefetch_looks_join_keys_up_once_and_gives_what_each_time_reads() {
        let program = program();
        let dir = tempfile::tempdir().unwrap();
        let store = store(&program, dir.path()).await;
        let times: Vec<i64> = (1..=9).map(|k| T0 + k * DAY / 2).collect();
        for (only, keeps_key) in [(Some(vec!["daily".to_string()]), false), (None, true)] {
            for slice_cells in [8, 1_000_000] {
                let exec = Executor::new(store.clone(), program.clone(), "v")
                    .with_slice_cells(slice_cells);
                let only = only.as_deref();
                let prefetch = exec.prefetch(&times, only).await.unwrap();
                assert!(prefetch.read_per_step().is_empty());
                let scan = &prefetch.scans["inference"];
                let heads = prefetch.latest.values().next().unwrap();
                let column = heads.history.heads_column();
                assert!(scan.parts.len() > usize::from(slice_cells == 8) * 10);
                for (_, _, b) in &scan.parts {
                    assert_eq!(
                        b.column_by_name(&column).unwrap().data_type(),
                        &ArrowType::UInt32
                    );
                    assert_eq!(
                        b.column_by_name("request_id").is_some(),
                        keeps_key,
                        "{only:?}"
                    );
                }
                for &t in &times {
                    let fetched = exec.evaluate_all_with(t, only, Some(&prefetch)).await;
                    let direct = exec.evaluate_all_with(t, only, None).await;
                    let json = |r: &[CheckResult]| serde_json::to_value(r).unwrap();
                    assert_eq!(json(&fetched), json(&direct), "at {t}, {only:?}");
                    assert!(!fetched.is_empty());
                }
            }
        }
    }
}
