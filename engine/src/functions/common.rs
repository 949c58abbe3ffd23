//! Shared machinery of the builtins: typed views over Arrow argument arrays, exact summation,
//! category counters, and the generic accumulators several builtins reuse (a confusion matrix
//! serves five classification metrics, a mean of per-row terms serves five others).

use std::any::Any;
use std::collections::HashMap;

use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeStringArray, PrimitiveArray, StringArray, StringViewArray, TimestampMicrosecondArray,
};
use arrow_schema::DataType as ArrowType;

use super::{Accumulator, EvalError, Outcome, Side};
use crate::value::Value;

/// Builds the error for an argument of the wrong Arrow type; the checker should have caught it,
/// so this names what the function expected to help whoever wired the call.
pub(crate) fn wrong_type(function: &str, what: &str, got: &ArrowType) -> EvalError {
    EvalError::Invalid(format!(
        "{function}: expected {what}, got an array of type {got}"
    ))
}

pub(crate) fn arity(function: &str, args: &[ArrayRef], want: usize) -> Result<(), EvalError> {
    if args.len() < want {
        return Err(EvalError::Invalid(format!(
            "{function}: expected {want} argument array(s), got {}",
            args.len()
        )));
    }
    let n = args[0].len();
    if args[..want].iter().any(|a| a.len() != n) {
        return Err(EvalError::Invalid(format!(
            "{function}: argument arrays differ in length"
        )));
    }
    Ok(())
}

fn downcast<T: 'static>(a: &dyn Array) -> Option<&T> {
    a.as_any().downcast_ref::<T>()
}

/// A numeric argument: ints, floats or timestamps read as `f64`. NaN counts as missing, as in
/// pandas, so that one NaN does not turn every statistic into NaN.
pub(crate) enum Num<'a> {
    I64(&'a Int64Array),
    I32(&'a Int32Array),
    F64(&'a Float64Array),
    F32(&'a Float32Array),
    Ts(&'a TimestampMicrosecondArray),
}

impl<'a> Num<'a> {
    pub(crate) fn new(function: &str, a: &'a ArrayRef) -> Result<Self, EvalError> {
        let a = a.as_ref();
        if let Some(x) = downcast::<PrimitiveArray<Int64Type>>(a) {
            return Ok(Num::I64(x));
        }
        if let Some(x) = downcast::<PrimitiveArray<Float64Type>>(a) {
            return Ok(Num::F64(x));
        }
        if let Some(x) = downcast::<PrimitiveArray<Int32Type>>(a) {
            return Ok(Num::I32(x));
        }
        if let Some(x) = downcast::<PrimitiveArray<Float32Type>>(a) {
            return Ok(Num::F32(x));
        }
        if let Some(x) = downcast::<TimestampMicrosecondArray>(a) {
            return Ok(Num::Ts(x));
        }
        Err(wrong_type(
            function,
            "a numeric (int or float) column",
            a.data_type(),
        ))
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Num::I64(a) => a.len(),
            Num::I32(a) => a.len(),
            Num::F64(a) => a.len(),
            Num::F32(a) => a.len(),
            Num::Ts(a) => a.len(),
        }
    }

    pub(crate) fn is_int(&self) -> bool {
        matches!(self, Num::I64(_) | Num::I32(_) | Num::Ts(_))
    }

    /// The value of row `i`, or `None` when it is null or NaN.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        let v = match self {
            Num::I64(a) => a.is_valid(i).then(|| a.value(i) as f64),
            Num::I32(a) => a.is_valid(i).then(|| f64::from(a.value(i))),
            Num::F64(a) => a.is_valid(i).then(|| a.value(i)),
            Num::F32(a) => a.is_valid(i).then(|| f64::from(a.value(i))),
            Num::Ts(a) => a.is_valid(i).then(|| a.value(i) as f64),
        }?;
        (!v.is_nan()).then_some(v)
    }

    /// The exact integer of row `i` for integer columns (sums and `min`/`max` of ints stay exact).
    #[inline]
    pub(crate) fn get_int(&self, i: usize) -> Option<i64> {
        match self {
            Num::I64(a) => a.is_valid(i).then(|| a.value(i)),
            Num::I32(a) => a.is_valid(i).then(|| i64::from(a.value(i))),
            Num::Ts(a) => a.is_valid(i).then(|| a.value(i)),
            Num::F64(_) | Num::F32(_) => None,
        }
    }
}

/// A label or prediction: int or bool. The positive class is `1` / `true`.
pub(crate) enum Label<'a> {
    I64(&'a Int64Array),
    I32(&'a Int32Array),
    Bool(&'a BooleanArray),
}

impl<'a> Label<'a> {
    pub(crate) fn new(function: &str, a: &'a ArrayRef) -> Result<Self, EvalError> {
        let a = a.as_ref();
        if let Some(x) = downcast::<Int64Array>(a) {
            return Ok(Label::I64(x));
        }
        if let Some(x) = downcast::<BooleanArray>(a) {
            return Ok(Label::Bool(x));
        }
        if let Some(x) = downcast::<Int32Array>(a) {
            return Ok(Label::I32(x));
        }
        Err(wrong_type(
            function,
            "a label column (int or bool)",
            a.data_type(),
        ))
    }

    /// The class of row `i` as an integer (`true` is 1), or `None` when null.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        match self {
            Label::I64(a) => a.is_valid(i).then(|| a.value(i)),
            Label::I32(a) => a.is_valid(i).then(|| i64::from(a.value(i))),
            Label::Bool(a) => a.is_valid(i).then(|| i64::from(a.value(i))),
        }
    }
}

/// A row-level predicate: one that is null on a row counts as false (docs/evaluation.md#verdicts).
pub(crate) struct Pred<'a>(&'a BooleanArray);

impl<'a> Pred<'a> {
    pub(crate) fn new(function: &str, a: &'a ArrayRef) -> Result<Self, EvalError> {
        downcast::<BooleanArray>(a.as_ref())
            .map(Pred)
            .ok_or_else(|| wrong_type(function, "a boolean predicate", a.data_type()))
    }

    /// How many rows hold (null counts as false).
    pub(crate) fn count_true(&self) -> u64 {
        let a = self.0;
        match a.nulls() {
            None => a.true_count() as u64,
            Some(nulls) => a
                .values()
                .iter()
                .zip(nulls.iter())
                .filter(|(v, valid)| *v && *valid)
                .count() as u64,
        }
    }
}

/// A string argument of any Arrow string layout.
pub(crate) enum Strs<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl Strs<'_> {
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            Strs::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// A column compared by value (`distinct`, `mode`, `chi2`, ...): any supported type.
pub(crate) enum Cat<'a> {
    Num(Num<'a>),
    Bool(&'a BooleanArray),
    Str(Strs<'a>),
}

impl<'a> Cat<'a> {
    pub(crate) fn new(function: &str, a: &'a ArrayRef) -> Result<Self, EvalError> {
        let d = a.as_ref();
        if let Some(x) = downcast::<BooleanArray>(d) {
            return Ok(Cat::Bool(x));
        }
        if let Some(x) = downcast::<StringArray>(d) {
            return Ok(Cat::Str(Strs::Utf8(x)));
        }
        if let Some(x) = downcast::<LargeStringArray>(d) {
            return Ok(Cat::Str(Strs::Large(x)));
        }
        if let Some(x) = downcast::<StringViewArray>(d) {
            return Ok(Cat::Str(Strs::View(x)));
        }
        match Num::new(function, a) {
            Ok(n) => Ok(Cat::Num(n)),
            Err(_) => Err(wrong_type(
                function,
                "an int, float, bool, string or timestamp column",
                d.data_type(),
            )),
        }
    }

    /// Whether row `i` is missing (null, or NaN in a float column).
    #[inline]
    pub(crate) fn is_missing(&self, i: usize) -> bool {
        match self {
            Cat::Num(n) => n.get(i).is_none(),
            Cat::Bool(a) => a.is_null(i),
            Cat::Str(s) => s.get(i).is_none(),
        }
    }

    /// Row `i` as a [`Value`] (`Value::Null` when missing).
    pub(crate) fn value(&self, i: usize) -> Value {
        match self {
            Cat::Num(n) if n.is_int() => n.get_int(i).map_or(Value::Null, Value::Int),
            Cat::Num(n) => n.get(i).map_or(Value::Null, Value::Float),
            Cat::Bool(b) => {
                if b.is_valid(i) {
                    Value::Bool(b.value(i))
                } else {
                    Value::Null
                }
            }
            Cat::Str(s) => s.get(i).map_or(Value::Null, |v| Value::Str(v.to_owned())),
        }
    }
}

/// Compensated (Neumaier) summation: keeps sums of many terms accurate to the last bits, so
/// results agree with numpy's pairwise sums to far better than 1e-9 regardless of order.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    pub(crate) fn merge(&mut self, other: &Sum) {
        self.add(other.sum);
        self.add(other.comp);
    }
    pub(crate) fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// Count, sum and sum of squared deviations, merged with Chan et al.'s parallel formula so
/// that a split column gives the same variance as the whole. Values are taken relative to the
/// first one seen: Welford's update loses digits on data far from zero (1e9 plus noise), the
/// shifted values do not, and numpy's two-pass variance is matched to ~1e-15.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moments {
    pub(crate) n: u64,
    shift: f64,
    /// Sum of `x - shift`.
    sum: Sum,
    /// Mean of `x - shift`.
    mean: f64,
    m2: f64,
}

impl Moments {
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        if self.n == 0 {
            self.shift = x;
        }
        let x = x - self.shift;
        self.n += 1;
        self.sum.add(x);
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }
    pub(crate) fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        // Re-express the other side relative to this side's shift.
        let k = o.shift - self.shift;
        let o_mean = o.mean + k;
        let mut o_sum = o.sum;
        o_sum.add(k * o.n as f64);
        let n = (self.n + o.n) as f64;
        let delta = o_mean - self.mean;
        self.m2 += o.m2 + delta * delta * (self.n as f64) * (o.n as f64) / n;
        self.mean += delta * o.n as f64 / n;
        self.n += o.n;
        self.sum.merge(&o_sum);
    }
    pub(crate) fn mean(&self) -> f64 {
        self.shift + self.sum.value() / self.n as f64
    }
    /// Sum of squared deviations from the mean.
    pub(crate) fn m2(&self) -> f64 {
        self.m2.max(0.0)
    }
}

/// Maps keyed by column values. foldhash is several times faster than the default SipHash on
/// millions of short keys (`duplicate_rate(request_id)`) and still randomly seeded per map.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Occurrences of each distinct value. Each type has its own map so that a lookup borrows the
/// row's value and only a value seen for the first time allocates.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counter {
    pub(crate) ints: FastMap<i64, u64>,
    /// Keyed by the bits of the float, with -0.0 folded into 0.0.
    pub(crate) floats: FastMap<u64, u64>,
    pub(crate) strs: FastMap<String, u64>,
    /// `[false, true]`
    pub(crate) bools: [u64; 2],
    pub(crate) total: u64,
}

/// One distinct value of a [`Counter`], ordered for deterministic output.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub(crate) enum CatKey<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl CatKey<'_> {
    pub(crate) fn to_value(&self) -> Value {
        match self {
            CatKey::Bool(b) => Value::Bool(*b),
            CatKey::Int(i) => Value::Int(*i),
            CatKey::Float(f) => Value::Float(*f),
            CatKey::Str(s) => Value::Str((*s).to_owned()),
        }
    }
}

fn float_key(x: f64) -> u64 {
    if x == 0.0 {
        0.0f64.to_bits()
    } else {
        x.to_bits()
    }
}

impl Counter {
    /// About the bytes its distinct values and their counts hold.
    pub(crate) fn held_bytes(&self) -> usize {
        (self.ints.len() + self.floats.len()) * 24
            + self.strs.keys().map(|k| k.capacity() + 48).sum::<usize>()
    }

    /// Counts the non-missing values of `a`.
    pub(crate) fn add_array(&mut self, a: &Cat<'_>, len: usize) {
        match a {
            Cat::Num(n) if n.is_int() => {
                for i in 0..len {
                    if let Some(v) = n.get_int(i) {
                        *self.ints.entry(v).or_insert(0) += 1;
                        self.total += 1;
                    }
                }
            }
            Cat::Num(n) => {
                for i in 0..len {
                    if let Some(v) = n.get(i) {
                        *self.floats.entry(float_key(v)).or_insert(0) += 1;
                        self.total += 1;
                    }
                }
            }
            Cat::Bool(b) => {
                for i in 0..len {
                    if b.is_valid(i) {
                        self.bools[usize::from(b.value(i))] += 1;
                        self.total += 1;
                    }
                }
            }
            Cat::Str(s) => {
                for i in 0..len {
                    if let Some(v) = s.get(i) {
                        if let Some(c) = self.strs.get_mut(v) {
                            *c += 1;
                        } else {
                            self.strs.insert(v.to_owned(), 1);
                        }
                        self.total += 1;
                    }
                }
            }
        }
    }

    pub(crate) fn merge(&mut self, o: &Counter) {
        for (k, c) in &o.ints {
            *self.ints.entry(*k).or_insert(0) += c;
        }
        for (k, c) in &o.floats {
            *self.floats.entry(*k).or_insert(0) += c;
        }
        for (k, c) in &o.strs {
            if let Some(x) = self.strs.get_mut(k) {
                *x += c;
            } else {
                self.strs.insert(k.clone(), *c);
            }
        }
        self.bools[0] += o.bools[0];
        self.bools[1] += o.bools[1];
        self.total += o.total;
    }

    /// Takes `o`'s counts out (see [`super::Accumulator::retract`]); values whose count falls
    /// to zero go. False when `o` counts a value more often than this does.
    pub(crate) fn retract(&mut self, o: &Counter) -> bool {
        fn take<K: std::hash::Hash + Eq>(map: &mut FastMap<K, u64>, key: &K, n: u64) -> bool {
            match map.get_mut(key) {
                Some(c) if *c > n => {
                    *c -= n;
                    true
                }
                Some(c) if *c == n => {
                    map.remove(key);
                    true
                }
                _ => n == 0,
            }
        }
        for (k, c) in &o.ints {
            if !take(&mut self.ints, k, *c) {
                return false;
            }
        }
        for (k, c) in &o.floats {
            if !take(&mut self.floats, k, *c) {
                return false;
            }
        }
        for (k, c) in &o.strs {
            if !take(&mut self.strs, k, *c) {
                return false;
            }
        }
        match (
            self.bools[0].checked_sub(o.bools[0]),
            self.bools[1].checked_sub(o.bools[1]),
            self.total.checked_sub(o.total),
        ) {
            (Some(f), Some(t), Some(total)) => {
                (self.bools, self.total) = ([f, t], total);
                true
            }
            _ => false,
        }
    }

    /// Every distinct value with its count, in ascending order of value.
    pub(crate) fn entries(&self) -> Vec<(CatKey<'_>, u64)> {
        let mut out: Vec<(CatKey<'_>, u64)> = Vec::with_capacity(self.distinct());
        for (b, c) in [false, true].into_iter().zip(self.bools) {
            if c > 0 {
                out.push((CatKey::Bool(b), c));
            }
        }
        let mut ints: Vec<_> = self
            .ints
            .iter()
            .map(|(k, c)| (CatKey::Int(*k), *c))
            .collect();
        ints.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        out.extend(ints);
        let mut floats: Vec<_> = self
            .floats
            .iter()
            .map(|(k, c)| (f64::from_bits(*k), *c))
            .collect();
        floats.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.extend(floats.into_iter().map(|(k, c)| (CatKey::Float(k), c)));
        let mut strs: Vec<_> = self.strs.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        strs.sort_unstable();
        out.extend(strs.into_iter().map(|(k, c)| (CatKey::Str(k), c)));
        out
    }

    pub(crate) fn distinct(&self) -> usize {
        self.ints.len()
            + self.floats.len()
            + self.strs.len()
            + self.bools.iter().filter(|c| **c > 0).count()
    }
}

/// Downcasts the other side of a merge, with an error naming the function if it differs.
pub(crate) fn same<'a, T: 'static>(
    function: &str,
    other: &'a dyn Accumulator,
) -> Result<&'a T, EvalError> {
    other.as_any().downcast_ref::<T>().ok_or_else(|| {
        EvalError::Invalid(format!(
            "{function}: cannot merge the state of a different aggregate"
        ))
    })
}

pub(crate) fn value(x: f64) -> Result<Outcome, EvalError> {
    Ok(Outcome::Value(Value::Float(x)))
}

pub(crate) fn undefined(reason: impl Into<String>) -> Result<Outcome, EvalError> {
    Ok(Outcome::Undefined(reason.into()))
}

/// Counts of a binary confusion matrix, plus exact agreement for multi-class accuracy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Confusion {
    pub(crate) n: u64,
    /// Rows where prediction equals label (also for classes other than 0 and 1).
    pub(crate) equal: u64,
    pub(crate) tp: u64,
    pub(crate) fp: u64,
    pub(crate) tn: u64,
    pub(crate) fn_: u64,
}

/// The accumulator of `accuracy`, `precision`, `recall`, `f1` and `fpr`: a confusion matrix
/// over (prediction, label) rows where both are present; `finish` turns it into the metric.
pub(crate) struct ConfusionAcc {
    pub(crate) name: &'static str,
    pub(crate) counts: Confusion,
    pub(crate) finish: fn(&Confusion) -> Result<Outcome, EvalError>,
}

impl ConfusionAcc {
    pub(crate) fn boxed(
        name: &'static str,
        finish: fn(&Confusion) -> Result<Outcome, EvalError>,
    ) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(ConfusionAcc {
            name,
            counts: Confusion::default(),
            finish,
        }))
    }
}

/// Adds to `c` the rows where both `p` and `y` are present: [`ConfusionAcc::update`] for
/// integer columns (the usual ones), without a branch per row.
fn count_ints(c: &mut Confusion, p: &Int64Array, y: &Int64Array) {
    let (pv, yv) = (p.values(), y.values());
    let (mut n, mut equal, mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut add = |p: i64, y: i64| {
        let (a, b) = (u64::from(p == 1), u64::from(y == 1));
        n += 1;
        equal += u64::from(p == y);
        tp += a & b;
        fp += a & (1 - b);
        fn_ += (1 - a) & b;
    };
    match arrow_buffer::NullBuffer::union(p.nulls(), y.nulls()) {
        None => pv.iter().zip(yv.iter()).for_each(|(&p, &y)| add(p, y)),
        Some(valid) => valid.valid_indices().for_each(|i| add(pv[i], yv[i])),
    }
    c.n += n;
    c.equal += equal;
    c.tp += tp;
    c.fp += fp;
    c.fn_ += fn_;
    c.tn += n - tp - fp - fn_;
}

impl Accumulator for ConfusionAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 2)?;
        let pred = Label::new(self.name, &args[0])?;
        let label = Label::new(self.name, &args[1])?;
        let c = &mut self.counts;
        if let (Label::I64(p), Label::I64(y)) = (&pred, &label) {
            count_ints(c, p, y);
            return Ok(());
        }
        for i in 0..args[0].len() {
            let (Some(p), Some(y)) = (pred.get(i), label.get(i)) else {
                continue;
            };
            c.n += 1;
            c.equal += u64::from(p == y);
            match (p == 1, y == 1) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>(self.name, other)?.counts;
        let c = &mut self.counts;
        c.n += o.n;
        c.equal += o.equal;
        c.tp += o.tp;
        c.fp += o.fp;
        c.tn += o.tn;
        c.fn_ += o.fn_;
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        let Some(o) = other.as_any().downcast_ref::<Self>() else {
            return false;
        };
        let (c, o) = (&mut self.counts, &o.counts);
        let sub = [
            c.n.checked_sub(o.n),
            c.equal.checked_sub(o.equal),
            c.tp.checked_sub(o.tp),
            c.fp.checked_sub(o.fp),
            c.tn.checked_sub(o.tn),
            c.fn_.checked_sub(o.fn_),
        ];
        let [
            Some(n),
            Some(equal),
            Some(tp),
            Some(fp),
            Some(tn),
            Some(fn_),
        ] = sub
        else {
            return false;
        };
        *c = Confusion {
            n,
            equal,
            tp,
            fp,
            tn,
            fn_,
        };
        true
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        (self.finish)(&self.counts)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn state_kind(&self) -> Option<&'static str> {
        Some("confusion")
    }
}

/// The accumulator of metrics that are a mean of a per-row term of two numeric columns
/// (`log_loss`, `brier`, `mae`, `rmse`, `mape`): pairs with a missing side are skipped.
pub(crate) struct PairMeanAcc {
    pub(crate) name: &'static str,
    /// The second argument is a label (int or bool) rather than a number.
    pub(crate) label_second: bool,
    pub(crate) term: fn(f64, f64) -> f64,
    pub(crate) finish: fn(f64) -> f64,
    pub(crate) n: u64,
    pub(crate) sum: Sum,
}

impl PairMeanAcc {
    pub(crate) fn boxed(
        name: &'static str,
        label_second: bool,
        term: fn(f64, f64) -> f64,
        finish: fn(f64) -> f64,
    ) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(PairMeanAcc {
            name,
            label_second,
            term,
            finish,
            n: 0,
            sum: Sum::default(),
        }))
    }
}

impl Accumulator for PairMeanAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 2)?;
        let a = Num::new(self.name, &args[0])?;
        if self.label_second {
            let b = Label::new(self.name, &args[1])?;
            for i in 0..a.len() {
                if let (Some(x), Some(y)) = (a.get(i), b.get(i)) {
                    self.n += 1;
                    // The positive class is 1 / true; any other class is negative.
                    self.sum.add((self.term)(x, if y == 1 { 1.0 } else { 0.0 }));
                }
            }
        } else {
            let b = Num::new(self.name, &args[1])?;
            for i in 0..a.len() {
                if let (Some(x), Some(y)) = (a.get(i), b.get(i)) {
                    self.n += 1;
                    self.sum.add((self.term)(x, y));
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>(self.name, other)?;
        self.n += o.n;
        self.sum.merge(&o.sum);
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        if self.n == 0 {
            return undefined("no rows where both arguments are present");
        }
        value((self.finish)(self.sum.value() / self.n as f64))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The accumulator of statistics that need every value (`median`, `quantile`): keeps the
/// non-missing values of one numeric column.
#[derive(Default)]
pub(crate) struct ValuesAcc {
    pub(crate) values: Vec<f64>,
    /// Whether `values` is in ascending order (set by `prepare`): later merges keep it so.
    pub(crate) sorted: bool,
}

impl ValuesAcc {
    /// Sorts the values in place, once.
    pub(crate) fn prepare(&mut self) {
        if !self.sorted {
            sort_floats(&mut self.values);
            self.sorted = true;
        }
    }

    /// The values in ascending order: in place once sorted, else a sorted copy.
    pub(crate) fn sorted_values(&self) -> std::borrow::Cow<'_, [f64]> {
        if self.sorted {
            return std::borrow::Cow::Borrowed(&self.values);
        }
        let mut copy = self.values.clone();
        sort_floats(&mut copy);
        std::borrow::Cow::Owned(copy)
    }

    /// Takes in `other`'s values: a sorted state stays sorted (one pass).
    pub(crate) fn merge(&mut self, other: &ValuesAcc) {
        if self.sorted && !self.values.is_empty() {
            merge_sorted(&mut self.values, &other.values);
        } else {
            self.values.extend_from_slice(&other.values);
            self.sorted = false;
        }
    }

    /// Takes `other`'s values out, one occurrence each (see
    /// [`super::Accumulator::retract`]).
    pub(crate) fn retract(&mut self, other: &ValuesAcc) -> bool {
        self.prepare();
        remove_sorted(&mut self.values, &other.values)
    }

    pub(crate) fn held_bytes(&self) -> usize {
        self.values.capacity() * 8
    }

    pub(crate) fn push_array(&mut self, function: &str, a: &ArrayRef) -> Result<(), EvalError> {
        let n = Num::new(function, a)?;
        push_values(&mut self.values, &n);
        self.sorted = false;
        Ok(())
    }
}

pub(crate) fn push_values(out: &mut Vec<f64>, n: &Num<'_>) {
    out.reserve(n.len());
    for i in 0..n.len() {
        if let Some(v) = n.get(i) {
            out.push(v);
        }
    }
}

/// numpy's default (`linear`) quantile of ascending `sorted` values; `q` in `0..=1`.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    // numpy computes the virtual index as q * (n - 1) and interpolates with
    // `lerp(a, b, t) = a + (b - a) * t`, switching to `b - (b - a) * (1 - t)` when t >= 0.5;
    // doing the same keeps results identical to the last bit.
    let idx = q * (n - 1) as f64;
    let lo = idx.floor();
    let t = idx - lo;
    let lo = lo as usize;
    if lo + 1 >= n {
        return sorted[n - 1];
    }
    let (a, b) = (sorted[lo], sorted[lo + 1]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Merges `add` (any order) into ascending `into`, which stays ascending: `add` sorted, then
/// one pass from the back, in place.
pub(crate) fn merge_sorted(into: &mut Vec<f64>, add: &[f64]) {
    if add.is_empty() {
        return;
    }
    let mut t = add.to_vec();
    sort_floats(&mut t);
    let (n, m) = (into.len(), t.len());
    into.resize(n + m, 0.0);
    let (mut i, mut j) = (n, m);
    while j > 0 {
        let k = i + j - 1;
        if i > 0 && into[i - 1].total_cmp(&t[j - 1]).is_gt() {
            into[k] = into[i - 1];
            i -= 1;
        } else {
            into[k] = t[j - 1];
            j -= 1;
        }
    }
}

/// Removes from ascending `from` one occurrence of each value of `take` (any order), in one
/// pass; false when some value of `take` is not there (`from` is then left unusable).
pub(crate) fn remove_sorted(from: &mut Vec<f64>, take: &[f64]) -> bool {
    if take.is_empty() {
        return true;
    }
    let mut t = take.to_vec();
    sort_floats(&mut t);
    let (mut w, mut j) = (0, 0);
    for r in 0..from.len() {
        let v = from[r];
        if j < t.len() {
            match t[j].total_cmp(&v) {
                std::cmp::Ordering::Equal => {
                    j += 1;
                    continue;
                }
                std::cmp::Ordering::Less => return false,
                std::cmp::Ordering::Greater => {}
            }
        }
        from[w] = v;
        w += 1;
    }
    from.truncate(w);
    j == t.len()
}

/// Sorts floats ascending (NaN never occurs: readers drop it). An LSD radix sort was tried
/// and measured slower than this pattern-defeating quicksort on 0.2M-1M values here.
pub(crate) fn sort_floats(v: &mut [f64]) {
    v.sort_unstable_by(f64::total_cmp);
}

/// A signature with every parameter required, no variadic tail and no time column; callers
/// adjust the rest with struct update syntax.
pub(crate) fn sig(
    kind: super::FunctionKind,
    params: &'static [super::Param],
    returns: super::ReturnType,
) -> super::Signature {
    super::Signature {
        kind,
        params,
        required: params.len(),
        variadic: false,
        returns,
        wants_time: false,
    }
}

/// One row set of a two-sample comparison: numeric values, or category counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    pub(crate) nums: Vec<f64>,
    pub(crate) cats: Counter,
    /// Whether any numeric (`Some(true)`) or categorical (`Some(false)`) batch was seen.
    pub(crate) numeric: Option<bool>,
    /// Whether `nums` is in ascending order (set by [`Accumulator::prepare`]).
    pub(crate) sorted: bool,
}

impl Sample {
    /// About the bytes its values and counts hold.
    pub(crate) fn held_bytes(&self) -> usize {
        self.nums.capacity() * 8 + self.cats.held_bytes()
    }

    /// The numeric values in ascending order: `nums` itself once sorted in place, else a
    /// sorted copy.
    pub(crate) fn sorted_nums(&self) -> std::borrow::Cow<'_, [f64]> {
        if self.sorted {
            return std::borrow::Cow::Borrowed(&self.nums);
        }
        let mut copy = self.nums.clone();
        sort_floats(&mut copy);
        std::borrow::Cow::Owned(copy)
    }

    pub(crate) fn len(&self) -> usize {
        self.nums.len() + self.cats.total as usize
    }
}

/// How a two-sample function reads its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SampleMode {
    /// Numeric values only (`ks`, `wasserstein`).
    Numeric,
    /// Category counts, whatever the type (`chi2`).
    Categorical,
    /// Int and float columns numerically, string and bool columns by category (`psi`, `js`).
    ByType,
}

/// Sides of at least this many values are sorted on two threads.
const PARALLEL_SORT: usize = 1 << 20;

/// The accumulator of the two-sample functions: keeps both row sets, exactly.
pub(crate) struct TwoSampleAcc {
    pub(crate) name: &'static str,
    pub(crate) mode: SampleMode,
    pub(crate) current: Sample,
    pub(crate) baseline: Sample,
    pub(crate) finish: fn(&Sample, &Sample) -> Result<Outcome, EvalError>,
}

impl TwoSampleAcc {
    pub(crate) fn boxed(
        name: &'static str,
        mode: SampleMode,
        finish: fn(&Sample, &Sample) -> Result<Outcome, EvalError>,
    ) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(TwoSampleAcc {
            name,
            mode,
            current: Sample::default(),
            baseline: Sample::default(),
            finish,
        }))
    }
}

impl TwoSampleAcc {
    fn finish_over(&self, current: &Sample, baseline: &Sample) -> Result<Outcome, EvalError> {
        if (current.numeric, baseline.numeric) == (Some(true), Some(false))
            || (current.numeric, baseline.numeric) == (Some(false), Some(true))
        {
            return Err(mixed(self.name));
        }
        if current.len() == 0 {
            return undefined("no current values to compare");
        }
        if baseline.len() == 0 {
            return undefined("no baseline values to compare against");
        }
        (self.finish)(current, baseline)
    }
}

fn mixed(name: &str) -> EvalError {
    EvalError::Invalid(format!(
        "{name}: the column is numeric on one side and categorical on the other"
    ))
}

impl Accumulator for TwoSampleAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn held_bytes(&self) -> usize {
        self.current.held_bytes() + self.baseline.held_bytes()
    }
    /// Sorts in place (and gives back the slack of their growth) the values that finishing
    /// sorts: both sides for `ks` and `wasserstein`, the baseline's for the bins of `psi`
    /// and `js`; finishing then copies nothing.
    fn prepare(&mut self) {
        let both = self.mode == SampleMode::Numeric;
        let sort = |s: &mut Sample| {
            if !s.sorted {
                sort_floats(&mut s.nums);
                s.nums.shrink_to_fit();
                s.sorted = true;
            }
        };
        // Two large sides sort side by side (the sort is most of `ks`'s time).
        if both && self.current.nums.len().min(self.baseline.nums.len()) >= PARALLEL_SORT {
            let (current, baseline) = (&mut self.current, &mut self.baseline);
            std::thread::scope(|scope| {
                scope.spawn(|| sort(current));
                sort(baseline);
            });
            return;
        }
        sort(&mut self.baseline);
        if both {
            sort(&mut self.current);
        }
    }
    fn update(&mut self, side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        let s = match side {
            Side::Current => &mut self.current,
            Side::Baseline => &mut self.baseline,
        };
        let a = &args[0];
        let numeric = match self.mode {
            SampleMode::Numeric => true,
            SampleMode::Categorical => false,
            SampleMode::ByType => matches!(Cat::new(self.name, a)?, Cat::Num(_)),
        };
        if s.numeric.is_some_and(|n| n != numeric) {
            return Err(mixed(self.name));
        }
        s.numeric = Some(numeric);
        if numeric {
            push_values(&mut s.nums, &Num::new(self.name, a)?);
            s.sorted = false;
        } else {
            s.cats.add_array(&Cat::new(self.name, a)?, a.len());
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>(self.name, other)?;
        for (mine, theirs) in [
            (&mut self.current, &o.current),
            (&mut self.baseline, &o.baseline),
        ] {
            match (mine.numeric, theirs.numeric) {
                (Some(a), Some(b)) if a != b => return Err(mixed(self.name)),
                (None, b) => mine.numeric = b,
                _ => {}
            }
            if mine.sorted && !mine.nums.is_empty() {
                // A state kept sorted (a window `mlc serve` slides) stays sorted.
                merge_sorted(&mut mine.nums, &theirs.nums);
            } else {
                mine.nums.extend_from_slice(&theirs.nums);
                mine.sorted = false;
            }
            mine.cats.merge(&theirs.cats);
        }
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        let Some(o) = other.as_any().downcast_ref::<Self>() else {
            return false;
        };
        for (mine, theirs) in [
            (&mut self.current, &o.current),
            (&mut self.baseline, &o.baseline),
        ] {
            if !mine.sorted {
                sort_floats(&mut mine.nums);
                mine.sorted = true;
            }
            if !remove_sorted(&mut mine.nums, &theirs.nums) || !mine.cats.retract(&theirs.cats) {
                return false;
            }
        }
        true
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        self.finish_over(&self.current, &self.baseline)
    }
    /// `ks`, `wasserstein` (numbers) and `psi`, `js` (numbers, or categories) over the same
    /// argument keep the same samples: one state serves them all, its values held once.
    /// `chi2` takes numbers as categories, so it keeps its own.
    fn state_kind(&self) -> Option<&'static str> {
        match self.mode {
            SampleMode::Numeric | SampleMode::ByType => Some("two-sample"),
            SampleMode::Categorical => None,
        }
    }
    fn finalize_shared(&self, leader: &dyn Accumulator) -> Option<Result<Outcome, EvalError>> {
        let leader = leader.as_any().downcast_ref::<TwoSampleAcc>()?;
        if self.mode == SampleMode::Numeric
            && [leader.current.numeric, leader.baseline.numeric].contains(&Some(false))
        {
            // The checker gives a numeric function a numeric argument; were a category to
            // come, this function could not take it, as its own update would not have.
            return Some(Err(EvalError::Invalid(format!(
                "{}: the column is not numeric",
                self.name
            ))));
        }
        Some(self.finish_over(&leader.current, &leader.baseline))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Tests' pseudo-random draws (xorshift64 from `seed`, not 0): each call gives one in
/// `0..m`.
/// Integer labels counted without a branch per row give the matrix the row-by-row count
/// gives (the same rows as booleans): classes other than 0 and 1, nulls on either side.
#[cfg(test)]
#[test]
fn integer_labels_count_as_row_by_row() {
    #![allow(clippy::unwrap_used)]
    let mut draw = draws(7);
    for n in [0usize, 1, 63, 64, 65, 1000] {
        let pick = |draw: &mut dyn FnMut(u64) -> u64| {
            (0..n)
                .map(|_| match draw(10) {
                    0 => None,
                    1 => Some(2),
                    k => Some(i64::from(k % 2 == 0)),
                })
                .collect::<Vec<_>>()
        };
        let (p, y) = (pick(&mut draw), pick(&mut draw));
        let mut fast = Confusion::default();
        count_ints(
            &mut fast,
            &Int64Array::from(p.clone()),
            &Int64Array::from(y.clone()),
        );
        let mut want = Confusion::default();
        for (p, y) in p.iter().zip(&y) {
            let (Some(p), Some(y)) = (*p, *y) else {
                continue;
            };
            want.n += 1;
            want.equal += u64::from(p == y);
            match (p == 1, y == 1) {
                (true, true) => want.tp += 1,
                (true, false) => want.fp += 1,
                (false, true) => want.fn_ += 1,
                (false, false) => want.tn += 1,
            }
        }
        let key = |c: &Confusion| (c.n, c.equal, c.tp, c.fp, c.tn, c.fn_);
        assert_eq!(key(&fast), key(&want), "{n} rows");
    }
}

#[cfg(test)]
pub(crate) fn draws(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed;
    move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    }
}
