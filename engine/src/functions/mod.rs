//! The builtin function registry: one file per builtin, each implementing [`Function`],
//! registered once in [`all`]. The checker resolves a call's name once ([`lookup`]) and the
//! plan holds the function itself (`plan::FunctionRef`, `RowExprKind::Scalar`), so nothing
//! after checking goes by name. The checker types calls from [`Function::signature`] and
//! validates them with hooks such as [`Function::needs_join`]; the evaluator runs aggregates
//! through [`Function::accumulator`], scalars through [`Function::call_scalar`], and the
//! special functions from the data they declare in [`Function::special_input`];
//! docs/functions.md is generated from [`Function::summary`] and [`Function::examples`], so
//! the reference cannot drift, and every example is run on its rows
//! (runtime/tests/function_examples.rs), so none can be wrong. A builtin's whole behaviour is
//! in its file: adding one is a new file and a line in [`all`].

mod binning;
mod common;
mod counter_acc;
pub mod docs;
mod extreme_acc;
mod hashed_acc;
mod moments_acc;
mod pred_acc;
mod scalar_math;
pub mod stats;
#[cfg(test)]
mod tests;

pub use hashed_acc::{
    DEFAULT_VALUES_LIMIT as DEFAULT_DISTINCT_VALUES_BYTES,
    set_values_limit as set_distinct_values_bytes,
};

mod abs;
mod accuracy;
mod all;
mod any;
mod auc;
mod brier;
mod chi2;
mod coalesce;
mod count;
mod coverage;
mod distinct;
mod duplicate_rate;
mod exp;
mod f1;
mod fpr;
mod freshness;
mod greatest;
mod js;
mod ks;
mod latest;
mod least;
mod ln;
mod log_loss;
mod mae;
mod mape;
mod max;
mod mean;
mod median;
mod min;
mod mode;
mod null_rate;
mod precision;
mod psi;
mod quantile;
mod r2;
mod rate;
mod recall;
mod rmse;
mod sqrt;
mod stddev;
mod sum;
mod variance;
mod wasserstein;

use std::any::Any;

use arrow_array::ArrayRef;

use crate::value::Value;

/// How a function is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// Row by row (`abs`, `ln`, `coalesce`, ...); also usable on aggregate values.
    Scalar,
    /// Over the current rows of a slice (`mean`, `recall`, ...); `baseline.f(..)` runs it over
    /// the baseline rows instead.
    Aggregate,
    /// Compares current and baseline rows (`ks`, `psi`, ...); needs a `baseline` clause.
    TwoSample,
    /// Computed from data other than the argument columns, which the function names through
    /// [`Function::special_input`]: `freshness()` (latest event time, ignoring `window`) and
    /// `coverage()` (join matches).
    Special,
}

/// The type an argument accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// `int` or `float`.
    Numeric,
    /// A row-level boolean expression (`rate(age >= 0)`).
    Predicate,
    /// A label or prediction: `int` or `bool`; the positive class is `1` / `true`.
    Label,
    /// A column compared by category: `string`, `bool` or `int`.
    Categorical,
    /// A fraction `0..=1` given as a literal (`quantile(x, 0.9)`).
    Probability,
    /// Any column type.
    Any,
}

/// The type of what a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnType {
    /// A float (counts are floats too in expectations).
    Number,
    /// Seconds; compares with duration literals.
    Duration,
    Bool,
    /// The type of the argument at this index (`min`, `latest`, `mode`, `coalesce`).
    SameAsArg(usize),
    /// Named numeric fields, accessed as `f(x).field`.
    Struct(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: ArgType,
}

#[derive(Debug, Clone)]
pub struct Signature {
    pub kind: FunctionKind,
    pub params: &'static [Param],
    /// Parameters after this many may be omitted (`count()` vs `count(P)`).
    pub required: usize,
    /// The last parameter repeats (`least`, `greatest`, `coalesce`).
    pub variadic: bool,
    pub returns: ReturnType,
    /// The executor appends the event-time column as a last argument (`latest`).
    pub wants_time: bool,
}

/// An example shown in docs/functions.md and run as a test (runtime/tests/function_examples.rs):
/// the check fragment is evaluated on its rows and must give its outcome, so the reference
/// never shows an example that does not work.
///
/// Rows are written as the fields of an inline test record (`age: 34, income: 52000`) of the
/// components in [`docs::EXAMPLE_COMPONENTS`]; the runner fills in what an example does not
/// give: `request_id` (`"r1"`, `"r2"`, ... by position) and `ts` (one minute apart, the last
/// one minute before the evaluation time [`docs::EXAMPLE_AT`]; baseline rows 7 days earlier).
/// Write the fields an example needs and `..Example::NO_ROWS` for the rest.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// A check fragment, e.g. `expect recall(prediction, label) >= 0.9`.
    pub source: &'static str,
    pub description: &'static str,
    /// The current rows of `inference`, in time order.
    pub rows: &'static [&'static str],
    /// Rows of `inference` a week earlier; when given, the check has `baseline offset 7d`.
    pub baseline: &'static [&'static str],
    /// Rows of `feedback`, the i-th for the i-th row (same `request_id`); when given, the check
    /// reads `on inference join feedback using request_id`, so rows without one drop out.
    pub labels: &'static [&'static str],
    /// The status of the check on these rows.
    pub expect: ExampleStatus,
    /// The value the result reports for the function's first call in `source` (its key in
    /// the result's `values`, `.field` included): required when the result reports it (the
    /// aggregates and two-sample functions), `None` when it does not (a scalar's value is not
    /// reported, only the aggregates around and inside it).
    pub value: Option<ExampleValue>,
}

impl Example {
    /// What an example has when it gives only its source: no rows of any kind, a pass and no
    /// value; the base of `..Example::NO_ROWS`.
    pub(crate) const NO_ROWS: Example = Example {
        source: "",
        description: "",
        rows: &[],
        baseline: &[],
        labels: &[],
        expect: ExampleStatus::Passes,
        value: None,
    };

    /// The text of the first call of `name` in the source that is not `baseline.name(...)`,
    /// with a `.field` that follows it: `ks(income).pvalue` in
    /// `expect ks(income).pvalue > 0.01`. It is the key of the call's value in the result.
    pub fn call_text(&self, name: &str) -> Option<&'static str> {
        let src = self.source;
        let bytes = src.as_bytes();
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let open = format!("{name}(");
        let mut from = 0;
        while let Some(found) = src[from..].find(&open) {
            let start = from + found;
            from = start + open.len();
            if start > 0 && (ident(bytes[start - 1]) || bytes[start - 1] == b'.') {
                continue;
            }
            let mut depth = 0usize;
            let mut in_string = false;
            let mut end = None;
            for (i, &b) in bytes.iter().enumerate().skip(start + name.len()) {
                match b {
                    b'"' => in_string = !in_string,
                    b'(' if !in_string => depth += 1,
                    b')' if !in_string => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut end = end?;
            if bytes.get(end) == Some(&b'.') {
                end += 1;
                while bytes.get(end).is_some_and(|&b| ident(b)) {
                    end += 1;
                }
            }
            return Some(&src[start..end]);
        }
        None
    }
}

/// What an example's check gives on its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleStatus {
    Passes,
    Fails,
}

impl ExampleStatus {
    /// As a `test` block's `assert` writes it.
    pub fn keyword(self) -> &'static str {
        match self {
            ExampleStatus::Passes => "passes",
            ExampleStatus::Fails => "fails",
        }
    }
}

/// A value an example's result reports, as result JSON holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExampleValue {
    /// A number (counts too), compared with a relative tolerance of 1e-9.
    Number(f64),
    /// A duration in seconds (`freshness()`), compared as a number.
    Seconds(f64),
    Bool(bool),
    Text(&'static str),
}

/// Which row set a batch of values comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Current,
    Baseline,
}

/// What an aggregate gives when finalised.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Value(Value),
    /// The metric is undefined on these rows (no positive labels, no values); the reason is
    /// shown to the user and the `expect` becomes `insufficient`.
    Undefined(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Invalid(String),
}

/// What a [`FunctionKind::Special`] function is computed from instead of argument columns.
/// The executor reads it, the evaluator measures it per slice and hands the measure to
/// [`Function::special_outcome`]; neither knows which function asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialInput {
    /// Seconds from the evaluation time back to the latest event of the first component
    /// before it, ignoring `window` (the executor reads the component's latest event time).
    EventAge,
    /// The fraction of the first component's rows (after `where`, per slice) that found a
    /// match in every join: the joins' match mask. Only a joined source has one, so a function
    /// reading it also answers `true` to [`Function::needs_join`].
    JoinMatchRate,
}

/// Streaming state of one aggregate over one row set (init = construction).
pub trait Accumulator: Send {
    /// Feeds one batch: one array per argument, all the same length, nulls included
    /// (aggregates skip them, as in SQL).
    fn update(&mut self, side: Side, args: &[ArrayRef]) -> Result<(), EvalError>;
    /// Folds in the state of another accumulator of the same function and arguments.
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError>;
    fn finalize(&self) -> Result<Outcome, EvalError>;
    fn as_any(&self) -> &dyn Any;
    /// Whether the state grows with the rows because it keeps their values (`ks`,
    /// `quantile`, `distinct`, `auc`), rather than a fixed-size summary (counts, sums, a
    /// confusion matrix). The executor reads a check with several `each` columns one column
    /// at a time when one of its aggregates keeps values, so that one column's values are
    /// held at a time.
    fn keeps_values(&self) -> bool {
        false
    }
    /// About how many bytes the state holds beyond its fixed size (its kept values): what
    /// `mlc serve`'s pane cache counts against its budget (docs/evaluation.md#panes).
    fn held_bytes(&self) -> usize {
        0
    }
    /// Takes out of this state the rows of `other`, the state of some of the rows this one
    /// was fed (`mlc serve` slides a window's state by the panes that leave it,
    /// docs/evaluation.md#panes), exactly: true when done. False where the state cannot (a
    /// float sum, whose order of additions would change; min and max; ...), or `other` was
    /// not part of it; the state is then unusable and the caller rebuilds it from the parts
    /// of its rows.
    fn retract(&mut self, _other: &dyn Accumulator) -> bool {
        false
    }
    /// Whether [`Accumulator::retract`] can take rows out of this kind of state.
    fn can_retract(&self) -> bool {
        false
    }
    /// Called once before [`Accumulator::finalize`] when no more rows will come: the state
    /// may reorganise itself in place (sort its values) so that finalizing copies nothing.
    /// The outcome is the same with or without it.
    fn prepare(&mut self) {}
    /// Called once when no more rows will come, before [`Accumulator::prepare`]: whether the
    /// accumulator needs the same rows again, through [`Accumulator::update_again`], before
    /// it can finalize. `distinct` and `duplicate_rate` keeping 64-bit codes ask for it when
    /// a code repeats, to compare the values of those rows alone. The caller then feeds every
    /// row it fed [`Accumulator::update`] (in any batches and order).
    fn needs_second_read(&mut self) -> bool {
        false
    }
    /// Whether [`Accumulator::needs_second_read`] may ever answer yes (the executor then
    /// plans how it would read the rows again).
    fn may_need_second_read(&self) -> bool {
        false
    }
    /// The rows again, after [`Accumulator::needs_second_read`] asked for them.
    fn update_again(&mut self, _side: Side, _args: &[ArrayRef]) -> Result<(), EvalError> {
        Ok(())
    }
    /// Accumulators answering the same `Some(kind)` keep the same state for the same
    /// arguments and rows (the confusion matrix behind `accuracy`, `precision`, `recall`,
    /// `f1` and `fpr`): the evaluator fills one of them and hands its state to the others
    /// through [`Accumulator::merge`], so a check's rows are read once for all of them.
    fn state_kind(&self) -> Option<&'static str> {
        None
    }
    /// For an accumulator whose state is kept by another of the same [`state_kind`]
    /// (`leader`): its outcome over the leader's state, read in place (`None`: the evaluator
    /// merges the leader's state into it and finalizes, which copies the state; cheap for a
    /// confusion matrix, not for the values `ks` keeps).
    ///
    /// [`state_kind`]: Accumulator::state_kind
    fn finalize_shared(&self, _leader: &dyn Accumulator) -> Option<Result<Outcome, EvalError>> {
        None
    }
    /// Adds the per-row sums [`Function::row_sums`] names, computed over some rows elsewhere
    /// (by the database: docs/evaluation.md#pushdown), as if those rows had been fed.
    fn add_sums(&mut self, _sums: &[u64]) -> Result<(), EvalError> {
        Err(EvalError::Invalid(
            "internal error: this aggregate takes no sums computed elsewhere".into(),
        ))
    }
}

/// A per-row sum an aggregate's state is made of, which a database can compute with
/// `GROUP BY` (docs/evaluation.md#pushdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSum {
    /// The number of rows.
    Rows,
    /// The number of rows where argument `i`, a predicate, is true (null counts as false).
    True(usize),
    /// The number of rows where argument `i` is null; a float NaN counts as null.
    Null(usize),
}

pub trait Function: Sync + Send {
    fn name(&self) -> &'static str;
    /// One sentence for the reference.
    fn summary(&self) -> &'static str;
    fn signature(&self) -> Signature;
    fn examples(&self) -> &'static [Example];
    /// A fresh accumulator (aggregates and two-sample functions only).
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        None
    }
    /// Evaluates a scalar function on one row's argument values (scalar functions only).
    fn call_scalar(&self, _args: &[Value]) -> Result<Value, EvalError> {
        Err(EvalError::Invalid(format!(
            "{} is not a scalar function",
            self.name()
        )))
    }
    /// The data a [`FunctionKind::Special`] function is computed from (`None`: its argument
    /// columns, through [`Function::accumulator`] or [`Function::call_scalar`]).
    fn special_input(&self) -> Option<SpecialInput> {
        None
    }
    /// The value of a special function from its input measured over one slice's rows;
    /// `None` when there was nothing to measure (no event, no rows).
    fn special_outcome(&self, _measured: Option<f64>) -> Outcome {
        Outcome::Undefined(format!("{}() is not a special function", self.name()))
    }
    /// Whether a call is only valid on a joined source (`on A join B using k`); the checker
    /// rejects it otherwise (E0208).
    fn needs_join(&self) -> bool {
        false
    }
    /// The per-row sums a call with `args` arguments keeps as its whole state, in the order
    /// [`Accumulator::add_sums`] takes them; `None` when its state is not such sums.
    fn row_sums(&self, _args: usize) -> Option<&'static [RowSum]> {
        None
    }
}

/// A function shows as its name (in `mlc explain` and in explanations).
impl std::fmt::Display for dyn Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Debug for dyn Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Function({})", self.name())
    }
}

/// Builtins are one value each, known by their unique name: plans holding them compare as
/// plans naming them did.
impl PartialEq for dyn Function {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

/// Every builtin, in the order of the reference.
pub fn all() -> &'static [&'static dyn Function] {
    &[
        &abs::Abs,
        &ln::Ln,
        &exp::Exp,
        &sqrt::Sqrt,
        &least::Least,
        &greatest::Greatest,
        &coalesce::Coalesce,
        &count::Count,
        &rate::Rate,
        &all::All,
        &any::Any,
        &null_rate::NullRate,
        &distinct::Distinct,
        &duplicate_rate::DuplicateRate,
        &freshness::Freshness,
        &coverage::Coverage,
        &sum::Sum,
        &mean::Mean,
        &min::Min,
        &max::Max,
        &stddev::Stddev,
        &variance::Variance,
        &median::Median,
        &quantile::Quantile,
        &mode::Mode,
        &latest::Latest,
        &accuracy::Accuracy,
        &precision::Precision,
        &recall::Recall,
        &f1::F1,
        &fpr::Fpr,
        &auc::Auc,
        &log_loss::LogLoss,
        &brier::Brier,
        &mae::Mae,
        &rmse::Rmse,
        &mape::Mape,
        &r2::R2,
        &ks::Ks,
        &chi2::Chi2,
        &psi::Psi,
        &js::Js,
        &wasserstein::Wasserstein,
    ]
}

/// The builtin of that name, if any.
pub fn lookup(name: &str) -> Option<&'static dyn Function> {
    all().iter().copied().find(|f| f.name() == name)
}
