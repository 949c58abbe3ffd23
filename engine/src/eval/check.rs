//! One check over its rows: `where`, slices, `each`, every aggregate through its
//! accumulator (one pass per row set for all of the check's aggregates), `min_rows`, and the
//! verdict per (slice, column).

use std::collections::HashMap;

use arrow_array::{Array, ArrayRef, BooleanArray};

use super::agg::{AggResult, ExpectOutcome, Status, group_thousands, judge};
use super::slice::{Slice, TooManySlices, key_string, slices_at_most};
use super::{Frame, arrow_error, eval_row, predicate_mask};
use crate::functions::{Accumulator, EvalError, Outcome as AccOutcome, Side, SpecialInput};
use crate::plan::{AggregateCall, CheckPlan, ColumnId, FunctionRef, RowSet};
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
pub(crate) type AccFactory<'a> =
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
type CoverageRows = (Frame, BooleanArray, Option<BooleanArray>);

/// Applies `where` and keeps the rows of the inner joins; returns the rows that count, and
/// the rows over which coverage is measured.
fn prepare(
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
/// `group by` failed), which the caller reports as status `error`.
pub fn evaluate_check(
    plan: &CheckPlan,
    input: &CheckInput<'_>,
    make: &AccFactory<'_>,
) -> Result<Vec<Outcome>, EvalError> {
    let (current, coverage_rows) = prepare(plan, input.current, &input.time)?;
    let n_columns = plan.each.as_ref().map_or(1, |e| e.columns.len().max(1));
    let max_slices = (input.max_series / n_columns).max(1);
    let slices = |frame: &Frame| -> Result<Vec<Slice>, EvalError> {
        slices_at_most(frame, &plan.group_by, max_slices)?.map_err(|TooManySlices| {
            let cols: Vec<&str> = plan.group_by.iter().map(|c| c.name.as_str()).collect();
            let each = if n_columns > 1 {
                format!(" for each of {n_columns} columns")
            } else {
                String::new()
            };
            EvalError::Invalid(format!(
                "`group by {}` gives more than {max_slices} slices{each}, past the limit of {} results per check; \
                 group by a column with fewer values, or raise the limit with `--max-series-per-check` \
                 (`max_series_per_check` in mlc serve's config)",
                cols.join(", "),
                input.max_series,
            ))
        })
    };
    let baseline = input
        .baseline
        .map(|b| prepare(plan, b, input.baseline_time.as_ref().unwrap_or(&input.time)))
        .transpose()?
        .map(|(f, _)| f);

    // With coverage, the slices of all rows give it; the counted rows' slices are cut from
    // them instead of being computed again.
    let (cur_slices, coverage) = match &coverage_rows {
        Some((frame, matched, kept)) => {
            let all = slices(frame)?;
            let coverage = coverage_by_slice(&all, matched);
            let counted = match kept {
                Some(k) => kept_slices(all, k),
                None => all,
            };
            (counted, coverage)
        }
        None => (slices(&current)?, HashMap::new()),
    };
    let base_slices: HashMap<String, Slice> = match &baseline {
        Some(b) => slices(b)?
            .into_iter()
            .map(|s| (key_string(&s.key), s))
            .collect(),
        None => HashMap::new(),
    };

    let columns: Vec<Option<&ColumnId>> = match &plan.each {
        Some(each) => each.columns.iter().map(Some).collect(),
        None => vec![None],
    };
    let shared = Shared {
        spread_aggregates: columns.len() == 1,
        plan,
        input,
        make,
        current: &current,
        baseline: baseline.as_ref(),
        cur_slices: &cur_slices,
        base_slices: &base_slices,
        coverage_rows: coverage_rows.as_ref(),
        coverage: &coverage,
    };
    // `each` columns are independent: spread them over the cores, results in column order.
    let per_column = par_map(&columns, columns.len() > 1, |c| {
        evaluate_column(&shared, *c)
    });
    let mut out = Vec::with_capacity(cur_slices.len() * columns.len());
    for r in per_column {
        out.extend(r?);
    }
    Ok(out)
}

/// Below this many rows, aggregates are computed one after the other: threads would cost more
/// than they save.
const PARALLEL_MIN_ROWS: usize = 50_000;

/// `f` over `items`, in order; on scoped threads (at most one per core, each taking the next
/// item not yet taken, so that one slow item does not hold up a whole share) when `parallel`.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    parallel: bool,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
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

/// What every (slice, column) evaluation of one check reads.
struct Shared<'s, 'i> {
    /// Whether the aggregates of a column may run side by side (not when the columns do).
    spread_aggregates: bool,
    plan: &'s CheckPlan,
    input: &'s CheckInput<'i>,
    make: &'s AccFactory<'s>,
    current: &'s Frame,
    baseline: Option<&'s Frame>,
    cur_slices: &'s [Slice],
    base_slices: &'s HashMap<String, Slice>,
    coverage_rows: Option<&'s CoverageRows>,
    coverage: &'s HashMap<String, f64>,
}

/// The outcomes of one `each` column (or of the check, without `each`), slice by slice.
fn evaluate_column(
    sh: &Shared<'_, '_>,
    column: Option<&ColumnId>,
) -> Result<Vec<Outcome>, EvalError> {
    let Shared {
        spread_aggregates: _,
        plan,
        input,
        make,
        current,
        baseline,
        cur_slices,
        base_slices,
        coverage_rows,
        coverage,
    } = *sh;
    let mut out = Vec::with_capacity(cur_slices.len());
    let cur_each = column.and_then(|c| current.column(c)).cloned();
    let base_each = match (column, &baseline) {
        (Some(c), Some(b)) => b.column(c).cloned(),
        _ => None,
    };
    if let Some(c) = column
        && cur_each.is_none()
    {
        return Err(EvalError::Invalid(format!(
            "column `{}` was not fetched",
            c.name
        )));
    }
    // Per aggregate: its arguments, computed once over all rows and then cut per slice, and
    // its value in every slice. Aggregates are independent: over many rows (and when the
    // `each` columns are not already spread over the cores) they run side by side.
    type State = Result<Box<dyn Accumulator>, String>;
    let per_agg = |call: &&AggregateCall| -> Vec<State> {
        if call.function.special_input().is_some() {
            return Vec::new();
        }
        let cur_args = argument(call, current, cur_each.as_ref(), &input.time, true);
        let base_args = baseline.map(|b| {
            argument(
                call,
                b,
                base_each.as_ref(),
                input.baseline_time.as_ref().unwrap_or(&input.time),
                false,
            )
        });
        cur_slices
            .iter()
            .map(|slice| {
                let base_slice = base_slices.get(&key_string(&slice.key));
                accumulate(
                    call,
                    make,
                    &cur_args,
                    Some(slice),
                    base_args.as_ref(),
                    base_slice,
                    baseline.is_some(),
                )
            })
            .collect()
    };
    let calls: Vec<&AggregateCall> = plan.aggregates.iter().collect();
    // Aggregates that keep the same state over the same arguments (`accuracy`, `precision`
    // and `recall` of one prediction and label) read the rows once: the first of them, the
    // leader, is fed; the others start from its state.
    let kinds: Vec<Option<&'static str>> = calls
        .iter()
        .map(|c| match c.function {
            FunctionRef::Builtin(_) => make(c).ok().and_then(|a| a.state_kind()),
            FunctionRef::Plugin(_) => None,
        })
        .collect();
    let leader: Vec<usize> = (0..calls.len())
        .map(|i| {
            (0..i)
                .find(|&j| {
                    kinds[i].is_some()
                        && kinds[j] == kinds[i]
                        && calls[j].args == calls[i].args
                        && calls[j].rows == calls[i].rows
                })
                .unwrap_or(i)
        })
        .collect();
    let leaders: Vec<&AggregateCall> = (0..calls.len())
        .filter(|&i| leader[i] == i)
        .map(|i| calls[i])
        .collect();
    let parallel = sh.spread_aggregates && current.rows >= PARALLEL_MIN_ROWS;
    let states = par_map(&leaders, parallel, per_agg);
    let mut by_agg: Vec<std::vec::IntoIter<AggResult>> = (0..calls.len())
        .map(|i| {
            let pos = (0..=leader[i]).filter(|&j| leader[j] == j).count() - 1;
            let call = calls[i];
            // A follower whose leader failed is fed on its own, so that its error names it.
            let refed: Option<Vec<State>> =
                (leader[i] != i && states[pos].iter().any(Result::is_err)).then(|| per_agg(&call));
            let fed_itself = leader[i] == i || refed.is_some();
            refed
                .as_deref()
                .unwrap_or(&states[pos])
                .iter()
                .map(|state| {
                    let state = state.as_ref().map_err(Clone::clone);
                    let outcome = state.and_then(|acc| {
                        if fed_itself {
                            return acc.finalize().map_err(|e| format!("{}: {e}", call.text));
                        }
                        let mut mine = make(call)?;
                        mine.merge(acc.as_ref())
                            .and_then(|()| mine.finalize())
                            .map_err(|e| format!("{}: {e}", call.text))
                    });
                    finish(call, outcome)
                })
                .collect::<Vec<_>>()
                .into_iter()
        })
        .collect();
    for slice in cur_slices {
        let key = key_string(&slice.key);
        let base_slice = base_slices.get(&key);
        let slice_coverage = coverage_rows.as_ref().map(|_| coverage.get(&key).copied());
        let results: Vec<AggResult> = plan
            .aggregates
            .iter()
            .zip(by_agg.iter_mut())
            .map(|(call, computed)| {
                if let Some(f) = call.function.builtin()
                    && let Some(special) = f.special_input()
                {
                    let measured = match special {
                        SpecialInput::EventAge => input.event_age_secs,
                        SpecialInput::JoinMatchRate => match slice_coverage {
                            Some(c) => c,
                            None => {
                                return AggResult::Undefined(format!(
                                    "{} needs a joined source (`on A join B using k`)",
                                    call.text
                                ));
                            }
                        },
                    };
                    return finish(call, Ok(f.special_outcome(measured)));
                }
                computed.next().unwrap_or_else(|| {
                    AggResult::Undefined("internal error: the aggregate was not computed".into())
                })
            })
            .collect();
        let mut expects: Vec<ExpectOutcome> = plan
            .expects
            .iter()
            .map(|e| judge(&e.expr, &e.text, &plan.aggregates, &results))
            .collect();
        let rows = slice.len as u64;
        let baseline_rows = baseline
            .as_ref()
            .map(|_| base_slice.map_or(0, |s| s.len) as u64);
        let short = if rows < plan.min_rows {
            Some(format!(
                "only {}, fewer than min_rows {}",
                rows_text(rows),
                group_thousands(plan.min_rows as i64)
            ))
        } else {
            match baseline_rows {
                Some(b) if b < plan.min_rows => Some(format!(
                    "only {} in the baseline, fewer than min_rows {}",
                    rows_text(b),
                    group_thousands(plan.min_rows as i64)
                )),
                _ => None,
            }
        };
        if let Some(reason) = short {
            for e in &mut expects {
                e.status = Status::Insufficient;
                e.explanation = reason.clone();
            }
        }
        let status = Status::combine(expects.iter().map(|e| e.status));
        out.push(Outcome {
            slice: plan
                .group_by
                .iter()
                .map(|c| c.name.clone())
                .zip(slice.key.iter().cloned())
                .collect(),
            column: column.map(|c| c.name.clone()),
            status,
            rows,
            baseline_rows,
            coverage: slice_coverage.flatten(),
            expects,
        });
    }
    Ok(out)
}

/// An aggregate's argument arrays over all rows of a row set, or why they could not be
/// computed. An aggregate that does not read this row set gets an empty list.
fn argument(
    call: &AggregateCall,
    frame: &Frame,
    each: Option<&ArrayRef>,
    time: &ColumnId,
    current: bool,
) -> Result<Vec<ArrayRef>, String> {
    let reads = match call.rows {
        RowSet::Current => current,
        RowSet::Baseline => !current,
        RowSet::Both => true,
    };
    if !reads || call.function.special_input().is_some() {
        return Ok(Vec::new());
    }
    let mut args = call
        .args
        .iter()
        .map(|a| eval_row(a, frame, each))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", call.text))?;
    let wants_time = call
        .function
        .builtin()
        .is_some_and(|f| f.signature().wants_time);
    if wants_time {
        let t = frame.column(time).cloned().ok_or_else(|| {
            format!(
                "{}: the event-time column `{}` was not fetched",
                call.text, time.name
            )
        })?;
        args.push(t);
    }
    Ok(args)
}

fn cut(args: &[ArrayRef], slice: &Slice) -> Result<Vec<ArrayRef>, EvalError> {
    match &slice.rows {
        None => Ok(args.to_vec()),
        Some(idx) => args
            .iter()
            .map(|a| arrow_select::take::take(a.as_ref(), idx, None).map_err(arrow_error))
            .collect(),
    }
}

/// Zero-argument aggregates (`count()`) still need to see how many rows there are: they get
/// one all-true column.
fn row_marker(len: usize) -> ArrayRef {
    std::sync::Arc::new(BooleanArray::from(vec![true; len]))
}

fn accumulate(
    call: &AggregateCall,
    make: &AccFactory<'_>,
    cur_args: &Result<Vec<ArrayRef>, String>,
    cur_slice: Option<&Slice>,
    base_args: Option<&Result<Vec<ArrayRef>, String>>,
    base_slice: Option<&Slice>,
    has_baseline: bool,
) -> Result<Box<dyn Accumulator>, String> {
    let mut acc = make(call)?;
    let feed = |acc: &mut Box<dyn Accumulator>,
                side: Side,
                args: &Result<Vec<ArrayRef>, String>,
                slice: Option<&Slice>|
     -> Result<(), String> {
        let args = args.as_ref().map_err(Clone::clone)?;
        let Some(slice) = slice else {
            // This slice has no baseline rows: the accumulator sees none.
            return Ok(());
        };
        let mut cut_args = cut(args, slice).map_err(|e| e.to_string())?;
        if cut_args.is_empty() {
            cut_args.push(row_marker(slice.len));
        }
        acc.update(side, &cut_args)
            .map_err(|e| format!("{}: {e}", call.text))
    };
    match call.rows {
        RowSet::Current => feed(&mut acc, Side::Current, cur_args, cur_slice)?,
        RowSet::Baseline | RowSet::Both => {
            if !has_baseline {
                return Err(format!("{} needs a `baseline` clause", call.text));
            }
            if call.rows == RowSet::Both {
                feed(&mut acc, Side::Current, cur_args, cur_slice)?;
            }
            if let Some(b) = base_args {
                // A one-sample aggregate over the baseline (`baseline.mean(x)`) is fed as
                // its "current" rows: to it they are simply the rows to aggregate.
                let side = if call.rows == RowSet::Both {
                    Side::Baseline
                } else {
                    Side::Current
                };
                feed(&mut acc, side, b, base_slice)?;
            }
        }
    }
    Ok(acc)
}

/// An aggregate's result from its accumulator's outcome.
fn finish(call: &AggregateCall, outcome: Result<AccOutcome, String>) -> AggResult {
    match outcome {
        Ok(AccOutcome::Value(v)) => AggResult::Value(v),
        Ok(AccOutcome::Undefined(r)) => {
            AggResult::Undefined(format!("{} is undefined: {r}", call.text))
        }
        Err(e) => AggResult::Error(e),
    }
}

/// Coverage per slice: matched rows over all rows of the first component, by slice key.
fn coverage_by_slice(all: &[Slice], matched: &BooleanArray) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for s in all {
        let (hit, total) = match &s.rows {
            None => (matched.true_count(), matched.len()),
            Some(idx) => {
                let hit = idx
                    .values()
                    .iter()
                    .filter(|&&i| matched.value(i as usize))
                    .count();
                (hit, idx.len())
            }
        };
        if total > 0 {
            out.insert(key_string(&s.key), hit as f64 / total as f64);
        }
    }
    out
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
