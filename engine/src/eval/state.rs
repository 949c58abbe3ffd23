//! A check's partial state: per slice, its row counts, its join coverage counts and the
//! accumulator of every aggregate, fed batch by batch ([`CheckState::add`]), merged with the
//! state of other rows of the same check ([`CheckState::merge`]) and concluded into the
//! verdicts ([`CheckState::conclude`]). A window can so be evaluated from its rows in any
//! number of batches, or from the states of its parts (docs/evaluation.md#partial-states);
//! [`super::evaluate_check`] is one batch per row set.
//!
//! What a state holds is what its aggregates need, not the rows: counts for `rate`, the
//! confusion matrix for `recall`, the values for `ks` and `quantile`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use arrow_array::{ArrayRef, BooleanArray};

use super::agg::{AggResult, ExpectOutcome, Status, group_thousands, judge};
use super::check::{
    AccFactory, CheckInput, Outcome, PARALLEL_MIN_ROWS, SourceRows, kept_slices, par_map, prepare,
    rows_text,
};
use super::slice::{Slice, TooManySlices, compare_keys, key_string, slices_at_most};
use super::{Frame, arrow_error, eval_row};
use crate::functions::{Accumulator, EvalError, Outcome as AccOutcome, Side, SpecialInput};
use crate::plan::{AggregateCall, CheckPlan, ColumnId, FunctionRef, RowSet};
use crate::value::Value;

/// Why an aggregate has no state: `Call` errors are worded by the call they happen in
/// (`recall(p, l): ...`), so aggregates sharing a state each name themselves; `Whole` ones
/// are complete sentences already.
#[derive(Debug, Clone)]
enum AccError {
    Call(String),
    Whole(String),
}

impl AccError {
    fn text(&self, call: &AggregateCall) -> String {
        match self {
            AccError::Call(e) => format!("{}: {e}", call.text),
            AccError::Whole(e) => e.clone(),
        }
    }
}

type AccState = Result<Box<dyn Accumulator>, AccError>;

/// One aggregate of one `each` column (or of the check, without `each`): its accumulator
/// per slice key, or the error that struck it in every slice.
#[derive(Default)]
struct AggState {
    /// An argument that could not be computed fails the aggregate in every slice.
    failed: Option<AccError>,
    by_slice: HashMap<String, AccState>,
    /// Where the shared state failed on rows, each aggregate sharing it was fed those rows on
    /// its own, so that its error names it: by (aggregate index, slice key).
    follower_errors: HashMap<(usize, String), AccError>,
    /// Whether some accumulator asked for its rows a second time
    /// ([`Accumulator::needs_second_read`]).
    again: bool,
}

/// What a slice has seen of the current and baseline rows.
#[derive(Debug, Clone)]
struct SliceMeta {
    key: Vec<Value>,
    /// Current rows that count (after `where` and the inner joins). A slice gives a result
    /// when it has some (a slice seen only in the rows coverage is measured over has none),
    /// or when it is the one slice of a check without `group by`.
    rows: u64,
    /// Joined sources: the slice's rows (after `where`) and those that matched every join.
    matched: u64,
    total: u64,
}

/// The partial state of one check over some rows. See the module docs.
pub struct CheckState {
    /// Per aggregate of the plan: the index of the aggregate whose state it shares (itself
    /// when it leads, or for aggregates with a state of their own).
    leader: Vec<usize>,
    /// The aggregates that are fed rows: leaders without a special input.
    fed: Vec<usize>,
    /// Number of `each` columns (1 without `each`).
    columns: usize,
    /// `[column * fed.len() + i]`: the state of aggregate `fed[i]` for that column.
    aggs: Vec<Mutex<AggState>>,
    slices: HashMap<String, SliceMeta>,
    /// Baseline rows per slice key (keys with no current rows included, for the limit).
    baseline_rows: HashMap<String, u64>,
    /// Whether rows of a joined source were added (coverage is then measured).
    joined: bool,
    max_series: usize,
    /// Per `fed` aggregate: whether its state came from sums the database computed
    /// ([`CheckState::add_sums`]); rows fed later skip it.
    pushed: Vec<bool>,
}

impl std::fmt::Debug for CheckState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckState")
            .field("slices", &self.slices.len())
            .field("baseline_slices", &self.baseline_rows.len())
            .finish()
    }
}

impl CheckState {
    /// The state of no rows. `make` gives the accumulators (the same factory must be used
    /// for every call on this state and the states merged into it).
    pub fn new(plan: &CheckPlan, make: &AccFactory<'_>, max_series: usize) -> CheckState {
        let calls = &plan.aggregates;
        // Aggregates that keep the same state over the same arguments (`accuracy`,
        // `precision` and `recall` of one prediction and label) read the rows once: the
        // first of them, the leader, is fed; the others start from its state.
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
        let fed: Vec<usize> = (0..calls.len())
            .filter(|&i| leader[i] == i && calls[i].function.special_input().is_none())
            .collect();
        let columns = plan.each.as_ref().map_or(1, |e| e.columns.len().max(1));
        CheckState {
            leader,
            aggs: (0..columns * fed.len()).map(|_| Mutex::default()).collect(),
            pushed: vec![false; fed.len()],
            fed,
            columns,
            slices: HashMap::new(),
            baseline_rows: HashMap::new(),
            joined: false,
            max_series: max_series.max(1),
        }
    }

    /// The most slices one evaluation may give, per `each` column.
    fn max_slices(&self) -> usize {
        (self.max_series / self.columns).max(1)
    }

    fn too_many(&self, plan: &CheckPlan) -> EvalError {
        let cols: Vec<&str> = plan.group_by.iter().map(|c| c.name.as_str()).collect();
        let each = if self.columns > 1 {
            format!(" for each of {} columns", self.columns)
        } else {
            String::new()
        };
        EvalError::Invalid(format!(
            "`group by {}` gives more than {} slices{each}, past the limit of {} results per check; \
             group by a column with fewer values, or raise the limit with `--max-series-per-check` \
             (`max_series_per_check` in mlc serve's config)",
            cols.join(", "),
            self.max_slices(),
            self.max_series,
        ))
    }

    fn slices_of(&self, plan: &CheckPlan, frame: &Frame) -> Result<Vec<Slice>, EvalError> {
        slices_at_most(frame, &plan.group_by, self.max_slices())?
            .map_err(|TooManySlices| self.too_many(plan))
    }

    /// Feeds rows of the current window (`Side::Current`, with `time` the event-time column
    /// of the first component) or of the baseline (`Side::Baseline`). `Err` fails the whole
    /// check (its `where` or `group by` could not be evaluated, or it has too many slices).
    pub fn add(
        &mut self,
        plan: &CheckPlan,
        side: Side,
        rows: &SourceRows,
        time: &ColumnId,
        make: &AccFactory<'_>,
    ) -> Result<(), EvalError> {
        let batch = self.register(plan, side, rows, time)?;
        let tasks: Vec<usize> = (0..self.aggs.len()).collect();
        let parallel =
            self.aggs.len() > 1 && (self.columns > 1 || batch.frame.rows >= PARALLEL_MIN_ROWS);
        par_map(&tasks, parallel, |&t| {
            self.feed_task(plan, t, std::slice::from_ref(&batch), make, false);
        });
        Ok(())
    }

    /// Feeds one side's rows, given as batches, to the states of the `each` columns in
    /// `columns` (every column when `None`). `count`: also registers the rows (their slices, row
    /// counts, coverage and the limit). A check read in several passes over the same rows,
    /// one per `each` column so that only that column's values are held, counts the rows in
    /// its first pass only; the other passes only feed their columns. `Err` fails the whole
    /// check, as [`CheckState::add`].
    #[allow(clippy::too_many_arguments)]
    pub fn add_pass(
        &mut self,
        plan: &CheckPlan,
        side: Side,
        rows: &[SourceRows],
        time: &ColumnId,
        make: &AccFactory<'_>,
        columns: Option<std::ops::Range<usize>>,
        count: bool,
    ) -> Result<(), EvalError> {
        self.feed_pass(plan, side, rows, time, make, columns, count, false)
    }

    /// [`CheckState::add_pass`] (`again`: [`CheckState::add_again`], to the aggregates that
    /// asked only).
    #[allow(clippy::too_many_arguments)]
    fn feed_pass(
        &mut self,
        plan: &CheckPlan,
        side: Side,
        rows: &[SourceRows],
        time: &ColumnId,
        make: &AccFactory<'_>,
        columns: Option<std::ops::Range<usize>>,
        count: bool,
        again: bool,
    ) -> Result<(), EvalError> {
        let columns = columns.unwrap_or(0..self.columns);
        let mut batches = Vec::with_capacity(rows.len());
        for r in rows {
            batches.push(self.register_pass(plan, side, r, time, count, &columns)?);
        }
        let fed = self.fed.len();
        let state = &*self;
        let tasks: Vec<usize> = (columns.start * fed..columns.end.min(self.columns) * fed)
            .filter(|&t| {
                !again
                    || state.aggs[t]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .again
            })
            .collect();
        let n: usize = batches.iter().map(|b| b.frame.rows).sum();
        let parallel = tasks.len() > 1 && (columns.len() > 1 || n >= PARALLEL_MIN_ROWS);
        par_map(&tasks, parallel, |&t| {
            state.feed_task(plan, t, &batches, make, again)
        });
        Ok(())
    }

    /// Whether an aggregate of the `each` columns in `columns` needs its rows a second time
    /// before concluding ([`Accumulator::needs_second_read`]): the caller then gives the same
    /// rows to [`CheckState::add_again`]. Asked once, after the last rows.
    pub fn needs_second_read(&mut self, columns: std::ops::Range<usize>) -> bool {
        let fed = self.fed.len();
        let tasks: Vec<usize> =
            (columns.start * fed..columns.end.min(self.columns) * fed).collect();
        let state = &*self;
        let wants = par_map(&tasks, tasks.len() > 1, |&t| state.wants_again(t));
        wants.into_iter().any(|w| w)
    }

    /// Asks every accumulator of state `t` whether it needs its rows again, and notes it.
    fn wants_again(&self, t: usize) -> bool {
        let mut agg = self.aggs[t]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut any = false;
        for acc in agg.by_slice.values_mut().flatten() {
            any |= acc.needs_second_read();
        }
        agg.again = any;
        any
    }

    /// The rows of one side again, as [`CheckState::add_pass`] gave them, for the aggregates
    /// that asked ([`CheckState::needs_second_read`]).
    pub fn add_again(
        &mut self,
        plan: &CheckPlan,
        side: Side,
        rows: &[SourceRows],
        time: &ColumnId,
        make: &AccFactory<'_>,
        columns: Option<std::ops::Range<usize>>,
    ) -> Result<(), EvalError> {
        self.feed_pass(plan, side, rows, time, make, columns, false, true)
    }

    /// The outcomes of the `each` columns in `columns` (all slices of each, columns in
    /// order, slices in key order), their states dropped after: with
    /// [`CheckState::add_pass`], a check concludes each column as soon as its pass is done.
    /// Every row must have been counted first.
    pub fn conclude_columns(
        &mut self,
        plan: &CheckPlan,
        columns: std::ops::Range<usize>,
        input: &Conclusion,
        make: &AccFactory<'_>,
    ) -> Vec<Outcome> {
        let slices = self.result_slices(plan);
        let each = each_columns(plan);
        let indices: Vec<usize> = columns.filter(|&ci| ci < each.len()).collect();
        let fed = self.fed.len();
        let state = &*self;
        let per_column = par_map(&indices, indices.len() > 1, |&ci| {
            slices
                .iter()
                .map(|slice| state.conclude_slice(plan, ci, each[ci], slice, input, make))
                .collect::<Vec<_>>()
        });
        for ci in indices {
            for t in ci * fed..(ci + 1) * fed {
                *self.aggs[t]
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = AggState::default();
            }
        }
        per_column.into_iter().flatten().collect()
    }

    /// How many aggregates are fed rows (those sharing another's state, and the special
    /// ones, are not).
    pub fn fed(&self) -> usize {
        self.fed.len()
    }

    /// Number of `each` columns (1 without `each`).
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// A check's outcomes over all of its rows, given at once as batches: the rows, slices
    /// and limits of every batch are taken first, then the aggregates column by column (the
    /// `each` columns side by side), each column's states concluded and dropped before the
    /// next is fed. Memory then holds the states of the columns in progress, not of all of
    /// them (`ks` over ten columns keeps two columns' values, not ten). The same outcomes as
    /// [`CheckState::add`] for each batch and then [`CheckState::conclude`].
    pub fn evaluate_batches(
        mut self,
        plan: &CheckPlan,
        current: (&[SourceRows], &ColumnId),
        baseline: Option<(&[SourceRows], &ColumnId)>,
        input: &Conclusion,
        make: &AccFactory<'_>,
    ) -> Result<Vec<Outcome>, EvalError> {
        let mut batches = Vec::new();
        for rows in current.0 {
            batches.push(self.register(plan, Side::Current, rows, current.1)?);
        }
        if let Some((rows, time)) = baseline {
            for r in rows {
                batches.push(self.register(plan, Side::Baseline, r, time)?);
            }
        }
        let slices = self.result_slices(plan);
        let columns = each_columns(plan);
        let fed = self.fed.len();
        let rows: usize = batches.iter().map(|b| b.frame.rows).sum();
        let indices: Vec<usize> = (0..columns.len()).collect();
        let state = &self;
        let per_column = par_map(&indices, columns.len() > 1, |&ci| {
            let tasks: Vec<usize> = (ci * fed..(ci + 1) * fed).collect();
            let parallel = columns.len() == 1 && fed > 1 && rows >= PARALLEL_MIN_ROWS;
            par_map(&tasks, parallel, |&t| {
                state.feed_task(plan, t, &batches, make, false)
            });
            // An aggregate keeping codes (`distinct` over ids) may want the rows again.
            let again: Vec<usize> = tasks
                .iter()
                .copied()
                .filter(|&t| state.wants_again(t))
                .collect();
            par_map(&again, parallel, |&t| {
                state.feed_task(plan, t, &batches, make, true)
            });
            let out: Vec<Outcome> = slices
                .iter()
                .map(|slice| state.conclude_slice(plan, ci, columns[ci], slice, input, make))
                .collect();
            for t in tasks {
                *state.aggs[t]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = AggState::default();
            }
            out
        });
        Ok(per_column.into_iter().flatten().collect())
    }

    /// Feeds state `t` (`column * fed + i`) the rows of `batches`.
    fn feed_task(
        &self,
        plan: &CheckPlan,
        t: usize,
        batches: &[Batch<'_>],
        make: &AccFactory<'_>,
        again: bool,
    ) {
        let fed = self.fed.len();
        if self.pushed[t % fed] {
            return;
        }
        let lead = self.fed[t % fed];
        let followers: Vec<(usize, &AggregateCall)> = (0..self.leader.len())
            .filter(|&i| i != lead && self.leader[i] == lead)
            .map(|i| (i, &plan.aggregates[i]))
            .collect();
        let mut state = self.aggs[t]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for b in batches {
            let rows = Rows {
                side: b.side,
                frame: &b.frame,
                each: b.each[t / fed].as_ref(),
                time: b.time,
                slices: &b.slices,
                keys: &b.keys,
            };
            feed(
                &mut state,
                &plan.aggregates[lead],
                &followers,
                &rows,
                make,
                again,
            );
        }
    }

    /// Applies `where` and the inner joins to a batch, registers its slices (rows, coverage,
    /// the limit) and gives what its aggregates are fed.
    fn register<'t>(
        &mut self,
        plan: &CheckPlan,
        side: Side,
        rows: &SourceRows,
        time: &'t ColumnId,
    ) -> Result<Batch<'t>, EvalError> {
        let all = 0..self.columns;
        self.register_pass(plan, side, rows, time, true, &all)
    }

    /// [`CheckState::register`], counting the rows only when `count` (a later pass over rows
    /// already counted only cuts them into slices), and needing only the `each` arrays of
    /// `columns`.
    fn register_pass<'t>(
        &mut self,
        plan: &CheckPlan,
        side: Side,
        rows: &SourceRows,
        time: &'t ColumnId,
        count: bool,
        columns: &std::ops::Range<usize>,
    ) -> Result<Batch<'t>, EvalError> {
        let (frame, coverage_rows) = prepare(plan, rows, time)?;
        let slices = match side {
            Side::Current => self.add_current_slices(plan, &frame, coverage_rows, count)?,
            Side::Baseline => {
                let slices = self.slices_of(plan, &frame)?;
                if count {
                    for s in &slices {
                        *self.baseline_rows.entry(key_string(&s.key)).or_default() += s.len as u64;
                    }
                    if self.baseline_rows.len() > self.max_slices() {
                        return Err(self.too_many(plan));
                    }
                }
                slices
            }
        };
        let mut each = Vec::with_capacity(self.columns);
        for (ci, c) in each_columns(plan).into_iter().enumerate() {
            if !columns.contains(&ci) {
                each.push(None);
                continue;
            }
            let array = c.and_then(|c| frame.column(c)).cloned();
            if let (Some(c), None, Side::Current) = (c, &array, side) {
                return Err(EvalError::Invalid(format!(
                    "column `{}` was not fetched",
                    c.name
                )));
            }
            each.push(array);
        }
        let keys: Vec<String> = slices.iter().map(|s| key_string(&s.key)).collect();
        Ok(Batch {
            side,
            frame,
            time,
            slices,
            keys,
            each,
        })
    }

    /// Registers the current rows' slices (and their coverage, for a joined source); returns
    /// the slices of the rows that count.
    fn add_current_slices(
        &mut self,
        plan: &CheckPlan,
        frame: &Frame,
        coverage_rows: Option<(Frame, BooleanArray, Option<BooleanArray>)>,
        count: bool,
    ) -> Result<Vec<Slice>, EvalError> {
        let counted = match coverage_rows {
            // With coverage, the slices of all rows give it; the counted rows' slices are
            // cut from them instead of being computed again.
            Some((all_rows, matched, kept)) => {
                self.joined = true;
                let all = self.slices_of(plan, &all_rows)?;
                for s in all.iter().filter(|_| count) {
                    let (hit, total) = match &s.rows {
                        None => (matched.true_count(), matched.len()),
                        Some(idx) => (
                            idx.values()
                                .iter()
                                .filter(|&&i| matched.value(i as usize))
                                .count(),
                            idx.len(),
                        ),
                    };
                    let meta = self.meta(&s.key);
                    meta.matched += hit as u64;
                    meta.total += total as u64;
                }
                match kept {
                    Some(k) => kept_slices(all, &k),
                    None => all,
                }
            }
            None => self.slices_of(plan, frame)?,
        };
        if !count {
            return Ok(counted);
        }
        for s in &counted {
            let meta = self.meta(&s.key);
            meta.rows += s.len as u64;
        }
        if self.slices.len() > self.max_slices() {
            return Err(self.too_many(plan));
        }
        Ok(counted)
    }

    /// The aggregates whose whole state is per-row sums a database can compute
    /// ([`crate::functions::Function::row_sums`]): `(index in the plan's aggregates, sums)`.
    /// Only over the current rows, of a check without `each`, sharing no state.
    pub fn summable(&self, plan: &CheckPlan) -> Vec<(usize, &'static [crate::functions::RowSum])> {
        if self.columns != 1 || plan.each.is_some() {
            return Vec::new();
        }
        self.fed
            .iter()
            .filter(|&&i| (0..self.leader.len()).all(|j| j == i || self.leader[j] != i))
            .filter_map(|&i| {
                let call = &plan.aggregates[i];
                let FunctionRef::Builtin(f) = call.function else {
                    return None;
                };
                if call.rows != RowSet::Current {
                    return None;
                }
                f.row_sums(call.args.len()).map(|s| (i, s))
            })
            .collect()
    }

    /// Marks the aggregates `aggregates` (indices among [`CheckState::summable`]'s) as taken
    /// from sums computed elsewhere ([`CheckState::add_sums`]): rows fed from now on skip
    /// them.
    pub fn take_from_sums(&mut self, aggregates: &[usize]) {
        for (t, i) in self.fed.iter().enumerate() {
            if aggregates.contains(i) {
                self.pushed[t] = true;
            }
        }
    }

    /// Takes one slice of current rows as sums computed elsewhere (by the database:
    /// docs/evaluation.md#pushdown): `rows` rows after `where`, with slice key `key`, and per
    /// aggregate of `sums` (its index, among [`CheckState::summable`]'s) its sums in
    /// [`crate::functions::Function::row_sums`] order. Those aggregates are marked as taken
    /// ([`CheckState::take_from_sums`]): rows fed afterwards (with `count` false, for the
    /// other aggregates) skip them; mark them before feeding rows when the sums come later.
    pub fn add_sums(
        &mut self,
        plan: &CheckPlan,
        key: Vec<Value>,
        rows: u64,
        sums: &[(usize, Vec<u64>)],
        make: &AccFactory<'_>,
    ) -> Result<(), EvalError> {
        let k = key_string(&key);
        self.meta(&key).rows += rows;
        if self.slices.len() > self.max_slices() {
            return Err(self.too_many(plan));
        }
        for (i, values) in sums {
            let Some(t) = self.fed.iter().position(|f| f == i) else {
                return Err(EvalError::Invalid(format!(
                    "internal error: aggregate {i} is not fed"
                )));
            };
            self.pushed[t] = true;
            let call = &plan.aggregates[*i];
            let agg = self.aggs[t]
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = agg
                .by_slice
                .entry(k.clone())
                .or_insert_with(|| make(call).map_err(AccError::Whole));
            if let Ok(acc) = entry
                && let Err(e) = acc.add_sums(values)
            {
                *entry = Err(AccError::Call(e.to_string()));
            }
        }
        Ok(())
    }

    fn meta(&mut self, key: &[Value]) -> &mut SliceMeta {
        self.slices
            .entry(key_string(key))
            .or_insert_with(|| SliceMeta {
                key: key.to_vec(),
                rows: 0,
                matched: 0,
                total: 0,
            })
    }

    /// Folds in the state of other rows of the same check (made by [`CheckState::new`] with
    /// the same plan and factory). Merging the states of disjoint rows gives the state of all
    /// of them: counts exactly, sums to the last bits (docs/evaluation.md#partial-states).
    pub fn merge(&mut self, plan: &CheckPlan, other: CheckState) -> Result<(), EvalError> {
        self.add_counts(plan, &other)?;
        for (t, theirs) in other.aggs.into_iter().enumerate() {
            let theirs = theirs
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(mine) = self.aggs.get_mut(t) else {
                continue;
            };
            let mine = mine
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if mine.failed.is_none() {
                mine.failed = theirs.failed;
            }
            for (k, e) in theirs.follower_errors {
                mine.follower_errors.entry(k).or_insert(e);
            }
            for (key, acc) in theirs.by_slice {
                match mine.by_slice.entry(key) {
                    Entry::Vacant(v) => {
                        v.insert(acc);
                    }
                    Entry::Occupied(mut o) => {
                        let merged = match (o.get_mut(), acc) {
                            (Err(_), _) => continue,
                            (Ok(_), Err(e)) => Err(e),
                            (Ok(m), Ok(a)) => m
                                .merge(a.as_ref())
                                .map_err(|e| AccError::Call(e.to_string())),
                        };
                        if let Err(e) = merged {
                            *o.get_mut() = Err(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds `other`'s row counts per slice (current, baseline, matched) to this state's,
    /// within the slice limit.
    fn add_counts(&mut self, plan: &CheckPlan, other: &CheckState) -> Result<(), EvalError> {
        for m in other.slices.values() {
            let meta = self.meta(&m.key);
            meta.rows += m.rows;
            meta.matched += m.matched;
            meta.total += m.total;
        }
        for (key, n) in &other.baseline_rows {
            *self.baseline_rows.entry(key.clone()).or_default() += n;
        }
        self.joined |= other.joined;
        if self.slices.len() > self.max_slices() || self.baseline_rows.len() > self.max_slices() {
            return Err(self.too_many(plan));
        }
        Ok(())
    }

    /// [`CheckState::merge`] of a state that stays as it is (a pane `mlc serve` keeps,
    /// docs/evaluation.md#panes): its accumulators are merged into fresh ones from `make`
    /// where this state has none of a slice. The same state as merging a copy of `other`.
    pub fn merge_from(
        &mut self,
        plan: &CheckPlan,
        other: &CheckState,
        make: &AccFactory<'_>,
    ) -> Result<(), EvalError> {
        self.add_counts(plan, other)?;
        let fed = self.fed.len();
        for (t, theirs) in other.aggs.iter().enumerate() {
            let theirs = theirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(mine) = self.aggs.get_mut(t) else {
                continue;
            };
            let mine = mine
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if mine.failed.is_none() {
                mine.failed = theirs.failed.clone();
            }
            for (k, e) in &theirs.follower_errors {
                mine.follower_errors
                    .entry(k.clone())
                    .or_insert_with(|| e.clone());
            }
            let call = &plan.aggregates[self.fed[t % fed]];
            for (key, acc) in &theirs.by_slice {
                let slot = match mine.by_slice.entry(key.clone()) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => v.insert(make(call).map_err(AccError::Whole)),
                };
                let merged = match (&mut *slot, acc) {
                    (Err(_), _) => continue,
                    (Ok(_), Err(e)) => Err(e.clone()),
                    (Ok(m), Ok(a)) => m
                        .merge(a.as_ref())
                        .map_err(|e| AccError::Call(e.to_string())),
                };
                if let Err(e) = merged {
                    *slot = Err(e);
                }
            }
        }
        Ok(())
    }

    /// Slides a state kept from an earlier evaluation (`mlc serve`'s window,
    /// docs/evaluation.md#panes): the rows of `leave` (states of rows it holds) go, those of
    /// `join` (states of other rows) come. Accumulators that can take rows out
    /// ([`Accumulator::retract`]) do; the others are rebuilt by merging the states in `all`
    /// (those of every row it holds afterwards, in order), as [`CheckState::merge_from`]
    /// would. Gives the state of the rows of `all`: the same verdicts as merging `all`.
    /// `Ok(false)`: the state cannot slide (an aggregate failed); it is then unusable and
    /// the caller merges `all` afresh.
    pub fn slide(
        &mut self,
        plan: &CheckPlan,
        leave: &[&CheckState],
        join: &[&CheckState],
        all: &[&CheckState],
        make: &AccFactory<'_>,
    ) -> Result<bool, EvalError> {
        // What leaves and what joins, each as one state, so that every accumulator is
        // walked once for each.
        let mut out = CheckState::new(plan, make, usize::MAX);
        for s in leave {
            out.merge_from(plan, s, make)?;
        }
        let mut into = CheckState::new(plan, make, usize::MAX);
        for s in join {
            into.merge_from(plan, s, make)?;
        }
        let failed = |st: &CheckState| {
            st.aggs.iter().any(|a| {
                let a = a.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                a.failed.is_some()
                    || !a.follower_errors.is_empty()
                    || a.by_slice.values().any(Result::is_err)
            })
        };
        if failed(self) || failed(&out) || failed(&into) {
            return Ok(false);
        }
        // Row counts.
        for m in out.slices.values() {
            let Some(meta) = self.slices.get_mut(&key_string(&m.key)) else {
                return Ok(false);
            };
            match (
                meta.rows.checked_sub(m.rows),
                meta.matched.checked_sub(m.matched),
                meta.total.checked_sub(m.total),
            ) {
                (Some(r), Some(ma), Some(t)) => (meta.rows, meta.matched, meta.total) = (r, ma, t),
                _ => return Ok(false),
            }
        }
        for (key, n) in &out.baseline_rows {
            match self
                .baseline_rows
                .get_mut(key)
                .and_then(|b| b.checked_sub(*n))
            {
                Some(left) => {
                    self.baseline_rows.insert(key.clone(), left);
                }
                None => return Ok(false),
            }
        }
        // Accumulators: out, then in; those that cannot take rows out are rebuilt.
        let fed = self.fed.len();
        let retractable = self.retractable(plan, make);
        // (aggregate state, slice key) to merge afresh from `all`.
        let mut rebuild: std::collections::HashSet<(usize, String)> =
            std::collections::HashSet::new();
        for (t, theirs) in out.aggs.iter_mut().enumerate() {
            if !retractable[t] {
                continue;
            }
            let theirs = theirs
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mine = self.aggs[t]
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key, acc) in &theirs.by_slice {
                let (Ok(acc), Some(Ok(m))) = (acc, mine.by_slice.get_mut(key)) else {
                    return Ok(false);
                };
                if !m.retract(acc.as_ref()) {
                    rebuild.insert((t, key.clone()));
                }
            }
        }
        for (t, theirs) in into.aggs.iter_mut().enumerate() {
            if !retractable[t] {
                continue;
            }
            let theirs = theirs
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mine = self.aggs[t]
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key, acc) in theirs.by_slice.drain() {
                let Ok(acc) = acc else {
                    return Ok(false);
                };
                if rebuild.contains(&(t, key.clone())) {
                    continue;
                }
                match mine.by_slice.entry(key) {
                    Entry::Vacant(v) => {
                        v.insert(Ok(acc));
                    }
                    Entry::Occupied(mut o) => match o.get_mut() {
                        Ok(m) => {
                            if m.merge(acc.as_ref()).is_err() {
                                return Ok(false);
                            }
                        }
                        Err(_) => return Ok(false),
                    },
                }
            }
        }
        // (The slice limit is checked once the slices left empty are gone.)
        let limit = std::mem::replace(&mut self.max_series, usize::MAX);
        let counted = self.add_counts(plan, &into);
        self.max_series = limit;
        counted?;
        // Accumulators of a kind that cannot take rows out, every slice of them.
        for (t, retracts) in retractable.iter().enumerate() {
            if *retracts {
                continue;
            }
            let mine = self.aggs[t]
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            mine.by_slice.clear();
            for s in all {
                let theirs = s.aggs[t]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for key in theirs.by_slice.keys() {
                    rebuild.insert((t, key.clone()));
                }
            }
        }
        for (t, key) in rebuild {
            let call = &plan.aggregates[self.fed[t % fed]];
            let mut fresh = match make(call) {
                Ok(a) => a,
                Err(_) => return Ok(false),
            };
            for s in all {
                let theirs = s.aggs[t]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match theirs.by_slice.get(&key) {
                    Some(Ok(a)) if fresh.merge(a.as_ref()).is_err() => return Ok(false),
                    Some(Err(_)) => return Ok(false),
                    _ => {}
                }
            }
            self.aggs[t]
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .by_slice
                .insert(key, Ok(fresh));
        }
        // Slices left with no rows go, as they would from a merge of `all`.
        let empty: Vec<String> = self
            .slices
            .iter()
            .filter(|(_, m)| m.rows == 0 && m.matched == 0 && m.total == 0)
            .map(|(k, _)| k.clone())
            .collect();
        self.baseline_rows.retain(|_, n| *n > 0);
        for key in empty {
            self.slices.remove(&key);
            if self.baseline_rows.contains_key(&key) {
                continue;
            }
            for a in &mut self.aggs {
                a.get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .by_slice
                    .remove(&key);
            }
        }
        if self.slices.len() > self.max_slices() || self.baseline_rows.len() > self.max_slices() {
            return Err(self.too_many(plan));
        }
        Ok(true)
    }

    /// Per fed accumulator state: whether its kind can take rows out
    /// ([`Accumulator::can_retract`]).
    fn retractable(&self, plan: &CheckPlan, make: &AccFactory<'_>) -> Vec<bool> {
        let fed = self.fed.len();
        (0..self.aggs.len())
            .map(|t| make(&plan.aggregates[self.fed[t % fed]]).is_ok_and(|a| a.can_retract()))
            .collect()
    }

    /// Drops the accumulators of kinds that cannot take rows out: a state kept to slide
    /// ([`CheckState::slide`]) rebuilds them from its parts anyway, so it need not hold
    /// them (the values of `distinct`, the sums of `mean`).
    pub fn drop_unretractable(&mut self, plan: &CheckPlan, make: &AccFactory<'_>) {
        let retractable = self.retractable(plan, make);
        for (t, keep) in retractable.into_iter().enumerate() {
            if !keep {
                self.aggs[t]
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .by_slice
                    .clear();
            }
        }
    }

    /// [`CheckState::conclude`] keeping the state (its values left sorted), for a state
    /// that slides on.
    pub fn conclude_kept(
        &mut self,
        plan: &CheckPlan,
        input: &Conclusion,
        make: &AccFactory<'_>,
    ) -> Vec<Outcome> {
        let slices = self.result_slices(plan);
        let columns = each_columns(plan);
        let indices: Vec<usize> = (0..columns.len()).collect();
        let state = &*self;
        // `each` columns are independent (finalising `ks` sorts its values): spread them over
        // the cores, results in column order.
        let per_column = par_map(&indices, columns.len() > 1, |&ci| {
            slices
                .iter()
                .map(|slice| state.conclude_slice(plan, ci, columns[ci], slice, input, make))
                .collect::<Vec<_>>()
        });
        per_column.into_iter().flatten().collect()
    }

    /// About the bytes the accumulators of this state hold beyond their fixed size
    /// ([`Accumulator::held_bytes`]), plus a little per slice and accumulator.
    pub fn held_bytes(&self) -> usize {
        let per_slice = 128 * (self.slices.len() + self.baseline_rows.len());
        let accs: usize = self
            .aggs
            .iter()
            .map(|a| {
                let a = a.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                a.by_slice
                    .values()
                    .map(|acc| 96 + acc.as_ref().map_or(0, |acc| acc.held_bytes()))
                    .sum::<usize>()
            })
            .sum();
        per_slice + accs
    }

    /// The verdict per (slice, column), slices in key order within each column, as
    /// [`super::evaluate_check`] gives them. A caller that can read the rows again asks
    /// [`CheckState::needs_second_read`] first and gives them to [`CheckState::add_again`]:
    /// without it, an aggregate keeping repeated codes (`distinct` over ids past
    /// `MLC_DISTINCT_VALUES_BYTES`) concludes as an error, never as a wrong count.
    pub fn conclude(
        mut self,
        plan: &CheckPlan,
        input: &Conclusion,
        make: &AccFactory<'_>,
    ) -> Vec<Outcome> {
        self.conclude_kept(plan, input, make)
    }

    /// The slices that give a result, in key order.
    fn result_slices(&mut self, plan: &CheckPlan) -> Vec<SliceMeta> {
        if plan.group_by.is_empty() {
            // A check without `group by` has its one result even over no rows.
            self.meta(&[]);
        }
        let mut slices: Vec<SliceMeta> = self
            .slices
            .values()
            .filter(|m| m.rows > 0 || plan.group_by.is_empty())
            .cloned()
            .collect();
        slices.sort_by(|a, b| compare_keys(&a.key, &b.key));
        slices
    }

    fn conclude_slice(
        &self,
        plan: &CheckPlan,
        column_index: usize,
        column: Option<&ColumnId>,
        slice: &SliceMeta,
        input: &Conclusion,
        make: &AccFactory<'_>,
    ) -> Outcome {
        let key = key_string(&slice.key);
        let coverage = self
            .joined
            .then(|| (slice.total > 0).then(|| slice.matched as f64 / slice.total as f64));
        let results: Vec<AggResult> = plan
            .aggregates
            .iter()
            .enumerate()
            .map(|(i, call)| {
                if let Some(f) = call.function.builtin()
                    && let Some(special) = f.special_input()
                {
                    let measured = match special {
                        SpecialInput::EventAge => input.event_age_secs,
                        SpecialInput::JoinMatchRate => match coverage {
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
                let lead = self.leader[i];
                let Some(pos) = self.fed.iter().position(|&f| f == lead) else {
                    return AggResult::Error(
                        "internal error: the aggregate was not computed".into(),
                    );
                };
                let mut state = self.aggs[column_index * self.fed.len() + pos]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(Ok(acc)) = state.by_slice.get_mut(&key) {
                    acc.prepare();
                }
                finish(
                    call,
                    conclude_one(i, call, lead == i, &state, &key, input.has_baseline, make),
                )
            })
            .collect();
        verdict(
            plan,
            slice,
            &key,
            column,
            coverage,
            results,
            &self.baseline_rows,
            input,
        )
    }
}

/// What concluding a state needs besides the state.
#[derive(Debug, Clone, Copy)]
pub struct Conclusion {
    /// Whether the check has baseline rows (even none in this window).
    pub has_baseline: bool,
    /// [`SpecialInput::EventAge`]: seconds from `T` back to the latest event before it.
    pub event_age_secs: Option<f64>,
}

impl Conclusion {
    pub fn of(input: &CheckInput<'_>) -> Conclusion {
        Conclusion {
            has_baseline: input.baseline.is_some(),
            event_age_secs: input.event_age_secs,
        }
    }
}

/// The outcome of one aggregate in one slice from its (or its leader's) state.
fn conclude_one(
    index: usize,
    call: &AggregateCall,
    leads: bool,
    state: &AggState,
    key: &str,
    has_baseline: bool,
    make: &AccFactory<'_>,
) -> Result<AccOutcome, String> {
    if call.rows != RowSet::Current && !has_baseline {
        return Err(format!("{} needs a `baseline` clause", call.text));
    }
    if let Some(e) = &state.failed {
        return Err(e.text(call));
    }
    let fresh;
    let acc: &dyn Accumulator = match state.by_slice.get(key) {
        Some(Ok(a)) => a.as_ref(),
        Some(Err(e)) => {
            let own = (!leads)
                .then(|| state.follower_errors.get(&(index, key.to_string())))
                .flatten();
            return Err(own.unwrap_or(e).text(call));
        }
        None => {
            // No rows of this slice reached the aggregate (e.g. `baseline.mean(x)` in a
            // slice without baseline rows): its state is that of no rows.
            fresh = make(call)?;
            fresh.as_ref()
        }
    };
    if leads {
        return acc.finalize().map_err(|e| format!("{}: {e}", call.text));
    }
    let mut mine = make(call)?;
    if let Some(shared) = mine.finalize_shared(acc) {
        return shared.map_err(|e| format!("{}: {e}", call.text));
    }
    mine.merge(acc)
        .and_then(|()| mine.finalize())
        .map_err(|e| format!("{}: {e}", call.text))
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

/// The expects of one (slice, column) judged on its aggregates' results, with `min_rows`.
#[allow(clippy::too_many_arguments)]
fn verdict(
    plan: &CheckPlan,
    slice: &SliceMeta,
    key: &str,
    column: Option<&ColumnId>,
    coverage: Option<Option<f64>>,
    results: Vec<AggResult>,
    baseline_rows: &HashMap<String, u64>,
    input: &Conclusion,
) -> Outcome {
    let mut expects: Vec<ExpectOutcome> = plan
        .expects
        .iter()
        .map(|e| judge(&e.expr, &e.text, &plan.aggregates, &results))
        .collect();
    let rows = slice.rows;
    let baseline_rows = input
        .has_baseline
        .then(|| baseline_rows.get(key).copied().unwrap_or(0));
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
    Outcome {
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
        coverage: coverage.flatten(),
        expects,
    }
}

/// The `each` columns of a check (one `None` without `each`).
fn each_columns(plan: &CheckPlan) -> Vec<Option<&ColumnId>> {
    match &plan.each {
        Some(e) if !e.columns.is_empty() => e.columns.iter().map(Some).collect(),
        _ => vec![None],
    }
}

/// One batch after `where` and the inner joins: its slices, and per `each` column its array.
struct Batch<'t> {
    side: Side,
    frame: Frame,
    time: &'t ColumnId,
    slices: Vec<Slice>,
    keys: Vec<String>,
    each: Vec<Option<ArrayRef>>,
}

/// One batch of rows as the aggregates of one `each` column see them.
struct Rows<'a> {
    side: Side,
    frame: &'a Frame,
    each: Option<&'a ArrayRef>,
    time: &'a ColumnId,
    slices: &'a [Slice],
    keys: &'a [String],
}

/// Feeds one aggregate (of one `each` column) the rows of every slice of `rows`.
/// `followers` share its state (`(plan index, call)`).
fn feed(
    state: &mut AggState,
    call: &AggregateCall,
    followers: &[(usize, &AggregateCall)],
    rows: &Rows<'_>,
    make: &AccFactory<'_>,
    again: bool,
) {
    // Which side of the accumulator these rows are, if it reads them at all. A one-sample
    // aggregate over the baseline (`baseline.mean(x)`) is fed them as its "current" rows: to
    // it they are simply the rows to aggregate.
    let acc_side = match (call.rows, rows.side) {
        (RowSet::Current, Side::Current) | (RowSet::Both, Side::Current) => Side::Current,
        (RowSet::Baseline, Side::Baseline) => Side::Current,
        (RowSet::Both, Side::Baseline) => Side::Baseline,
        (RowSet::Current, Side::Baseline) | (RowSet::Baseline, Side::Current) => return,
    };
    if state.failed.is_some() {
        return;
    }
    let args = match argument(call, rows.frame, rows.each, rows.time) {
        Ok(a) => a,
        Err(e) => {
            state.failed = Some(e);
            return;
        }
    };
    if again {
        for (slice, key) in rows.slices.iter().zip(rows.keys) {
            let Some(entry) = state.by_slice.get_mut(key) else {
                continue;
            };
            let Ok(acc) = entry else { continue };
            let got = cut(&args, slice).and_then(|a| acc.update_again(acc_side, &a));
            if let Err(e) = got {
                *entry = Err(AccError::Call(e.to_string()));
            }
        }
        return;
    }
    for (slice, key) in rows.slices.iter().zip(rows.keys) {
        let entry = state
            .by_slice
            .entry(key.clone())
            .or_insert_with(|| make(call).map_err(AccError::Whole));
        let Ok(acc) = entry else {
            continue;
        };
        let cut_args = match cut(&args, slice) {
            Ok(mut a) => {
                if a.is_empty() {
                    a.push(row_marker(slice.len));
                }
                a
            }
            Err(e) => {
                *entry = Err(AccError::Whole(e.to_string()));
                continue;
            }
        };
        if let Err(e) = acc.update(acc_side, &cut_args) {
            *entry = Err(AccError::Call(e.to_string()));
            // The aggregates sharing this state are fed these rows on their own: their
            // errors are their own words.
            for &(i, f) in followers {
                let own = make(f).map_err(AccError::Whole).and_then(|mut a| {
                    a.update(acc_side, &cut_args)
                        .map_err(|e| AccError::Call(e.to_string()))
                });
                if let Err(own) = own {
                    state.follower_errors.insert((i, key.clone()), own);
                }
            }
        }
    }
}

/// An aggregate's argument arrays over all rows of a frame (with the event time appended for
/// functions that want it).
fn argument(
    call: &AggregateCall,
    frame: &Frame,
    each: Option<&ArrayRef>,
    time: &ColumnId,
) -> Result<Vec<ArrayRef>, AccError> {
    let mut args = call
        .args
        .iter()
        .map(|a| eval_row(a, frame, each))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AccError::Call(e.to_string()))?;
    let wants_time = call
        .function
        .builtin()
        .is_some_and(|f| f.signature().wants_time);
    if wants_time {
        let t = frame.column(time).cloned().ok_or_else(|| {
            AccError::Call(format!(
                "the event-time column `{}` was not fetched",
                time.name
            ))
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
