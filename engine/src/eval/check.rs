//! One check over its rows: what a check is evaluated on (`SourceRows`, `CheckInput`), what
//! it gives per (slice, column) (`Outcome`), and the row filters every batch goes through
//! (`where`, the inner joins). The aggregates and verdicts are `super::state`'s.

use arrow_array::{Array, BooleanArray};

use super::agg::{ExpectOutcome, Status, group_thousands};
use super::slice::Slice;
use super::state::{CheckState, Conclusion};
use super::{Frame, arrow_error, predicate_mask};
use crate::functions::{Accumulator, EvalError};
use crate::plan::{AggregateCall, CheckPlan, ColumnId};
use crate::value::Value;

/// The rows of a source with every join done as a left join, and which rows count.
#[derive(Debug, Clone)]
pub struct SourceRows {
    pub frame: Frame,
    /// Rows that survive the inner joins; `None` keeps every row.
    pub kept: Option<BooleanArray>,
    /// Rows that found a match in every join; `None` for a source without joins.
    pub matched: Option<BooleanArray>,
}

impl SourceRows {
    /// A source without joins.
    pub fn plain(frame: Frame) -> SourceRows {
        SourceRows {
            frame,
            kept: None,
            matched: None,
        }
    }
}

/// Everything a check is evaluated on.
#[derive(Debug, Clone)]
pub struct CheckInput<'a> {
    pub current: &'a SourceRows,
    pub baseline: Option<&'a SourceRows>,
    /// The event-time column of the first component, appended for `latest(x)`.
    pub time: ColumnId,
    /// The event-time column of the baseline rows.
    pub baseline_time: Option<ColumnId>,
    /// [`SpecialInput::EventAge`] (`freshness()`): seconds from `T` back to the latest event
    /// before `T`; `None` when there is none.
    pub event_age_secs: Option<f64>,
    /// The most results (slices times `each` columns) one evaluation may give: grouping stops
    /// at the first slice past it and the check is an error, so a `group by` over an id keeps
    /// memory and stored results bounded by this, not by the rows.
    pub max_series: usize,
}

/// The default of [`CheckInput::max_series`] (`--max-series-per-check`).
pub const DEFAULT_MAX_SERIES: usize = 1000;

/// The result of one (slice, column) of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `group by` column names with this slice's values; empty without `group by`.
    pub slice: Vec<(String, Value)>,
    /// The `each` column, if any.
    pub column: Option<String>,
    pub status: Status,
    pub rows: u64,
    pub baseline_rows: Option<u64>,
    /// For joined sources: the fraction of the first component's rows that matched.
    pub coverage: Option<f64>,
    pub expects: Vec<ExpectOutcome>,
}

/// Makes a fresh accumulator for an aggregate call (builtins from the registry, plugins
/// from the Wasm host).
pub type AccFactory<'a> =
    dyn Fn(&AggregateCall) -> Result<Box<dyn Accumulator>, String> + Sync + 'a;

/// The accumulator of a builtin aggregate, from the function the plan holds.
pub fn builtin_accumulator(call: &AggregateCall) -> Result<Box<dyn Accumulator>, String> {
    call.function
        .builtin()
        .and_then(|f| f.accumulator())
        .ok_or_else(|| {
            format!(
                "`{}` has no aggregate implementation in this build",
                call.function.name()
            )
        })
}

/// The rows (with `where` applied) over which coverage is measured, which of them matched,
/// and which of them count (`None`: all).
pub(super) type CoverageRows = (Frame, BooleanArray, Option<BooleanArray>);

/// Applies `where` and keeps the rows of the inner joins; returns the rows that count, and
/// the rows over which coverage is measured.
pub(super) fn prepare(
    plan: &CheckPlan,
    rows: &SourceRows,
    time: &ColumnId,
) -> Result<(Frame, Option<CoverageRows>), EvalError> {
    // Only the columns the check names (and the event time) are carried through the row
    // filters below: a join key or a column another check reads is not copied.
    let mut keep = plan.used_columns();
    keep.push(time.clone());
    let projected = rows.frame.project(&keep)?;
    let (frame, kept, matched) = match &plan.filter {
        Some(f) => {
            let mask = predicate_mask(f, &projected, None)?;
            let pick = |a: &Option<BooleanArray>| -> Result<Option<BooleanArray>, EvalError> {
                a.as_ref()
                    .map(|a| {
                        arrow_select::filter::filter(a, &mask)
                            .map(|r| r.as_any().downcast_ref::<BooleanArray>().cloned())
                            .map_err(arrow_error)
                    })
                    .transpose()
                    .map(Option::flatten)
            };
            (
                projected.filter(&mask)?,
                pick(&rows.kept)?,
                pick(&rows.matched)?,
            )
        }
        None => (projected, rows.kept.clone(), rows.matched.clone()),
    };
    let counted = match &kept {
        Some(k) => frame.filter(k)?,
        None => frame.clone(),
    };
    Ok((counted, matched.map(|m| (frame, m, kept))))
}

/// Evaluates a check; `Err` means the whole check could not be evaluated (its `where` or
/// `group by` failed), which the caller reports as status `error`. The rows are one batch
/// per row set; [`CheckState`] takes them in any number of batches.
pub fn evaluate_check(
    plan: &CheckPlan,
    input: &CheckInput<'_>,
    make: &AccFactory<'_>,
) -> Result<Vec<Outcome>, EvalError> {
    let state = CheckState::new(plan, make, input.max_series);
    let baseline = input.baseline.map(|b| {
        (
            std::slice::from_ref(b),
            input.baseline_time.as_ref().unwrap_or(&input.time),
        )
    });
    state.evaluate_batches(
        plan,
        (std::slice::from_ref(input.current), &input.time),
        baseline,
        &Conclusion::of(input),
        make,
    )
}

/// Below this many rows, aggregates are computed one after the other: threads would cost more
/// than they save.
pub(super) const PARALLEL_MIN_ROWS: usize = 50_000;

/// The cores this process may use, asked of the system once: `available_parallelism` reads
/// the cgroup's files at every call (tens of microseconds), which a pane's few rows, fed
/// hundreds of times an evaluation, paid each time.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` over `items`, in order; on scoped threads (at most one per core, each taking the next
/// item not yet taken, so that one slow item does not hold up a whole share) when `parallel`.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    parallel: bool,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = cores().min(items.len());
    if !parallel || threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        // A panic in a worker is a bug; re-raise it on the caller's thread as it would have
        // been without threads.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The slices of the rows `kept` keeps, in the numbering of those rows alone (the frame
/// `kept` filters down to), from the slices of all rows: what [`slices`] gives for the
/// filtered frame. A slice of `group by` left without rows is dropped; the one slice of a
/// check without `group by` (all rows) stays.
pub(super) fn kept_slices(all: Vec<Slice>, kept: &BooleanArray) -> Vec<Slice> {
    // Each row's position among the kept rows.
    let mut rank = Vec::with_capacity(kept.len());
    let mut next = 0u32;
    for k in kept.values().iter() {
        rank.push(next);
        next += u32::from(k);
    }
    all.into_iter()
        .filter_map(|s| match s.rows {
            None => Some(Slice {
                len: next as usize,
                ..s
            }),
            Some(idx) => {
                let rows: Vec<u32> = idx
                    .values()
                    .iter()
                    .filter(|&&i| kept.value(i as usize))
                    .map(|&i| rank[i as usize])
                    .collect();
                (!rows.is_empty()).then(|| Slice {
                    key: s.key,
                    len: rows.len(),
                    rows: Some(arrow_array::UInt32Array::from(rows)),
                })
            }
        })
        .collect()
}

/// `5,120 rows` style text for messages.
pub fn rows_text(rows: u64) -> String {
    if rows == 1 {
        "1 row".into()
    } else {
        format!("{} rows", group_thousands(rows as i64))
    }
}
