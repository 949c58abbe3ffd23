//! Row-level evaluation: a [`RowExpr`] over the rows of a [`Frame`] gives one value per row,
//! with SQL null semantics (nulls propagate, `and`/`or` are three-valued).

use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use mlc_grammar::ast::{BinaryOp, UnaryOp};

use super::Frame;
use super::column::{Col, Kind};
use crate::functions::EvalError;
use crate::plan::{RowExpr, RowExprKind};
use crate::schema::DataType;
use crate::value::Value;

/// Evaluates `expr` on every row of `frame`; `each` is the column `each NAME` stands for.
pub(crate) fn eval_row(
    expr: &RowExpr,
    frame: &Frame,
    each: Option<&ArrayRef>,
) -> Result<ArrayRef, EvalError> {
    // A bare column is handed through untouched: aggregates then see exactly what the store
    // returned and no copy is made.
    match &expr.kind {
        RowExprKind::Column(id) => {
            return frame
                .column(id)
                .cloned()
                .ok_or_else(|| missing_column(&id.name));
        }
        RowExprKind::EachVar => {
            return each.cloned().ok_or_else(|| {
                EvalError::Invalid("an `each` variable was used outside an `each` check".into())
            });
        }
        _ => {}
    }
    Ok(eval_col(expr, frame, each)?.into_array(frame.rows))
}

/// Evaluates a predicate to a mask where a null counts as false, as `where` and `rate(P)`
/// need it.
pub(crate) fn predicate_mask(
    expr: &RowExpr,
    frame: &Frame,
    each: Option<&ArrayRef>,
) -> Result<BooleanArray, EvalError> {
    let col = eval_col(expr, frame, each)?;
    let n = frame.rows;
    match col {
        Col::Bool(b) => Ok(if b.null_count() == 0 {
            b
        } else {
            (0..n).map(|i| Some(b.is_valid(i) && b.value(i))).collect()
        }),
        Col::Lit(Value::Bool(v)) => Ok(BooleanArray::from(vec![v; n])),
        Col::Lit(Value::Null) => Ok(BooleanArray::from(vec![false; n])),
        other => Err(EvalError::Invalid(format!(
            "a filter must be a condition, but this expression gives {:?} values",
            other.kind()
        ))),
    }
}

fn missing_column(name: &str) -> EvalError {
    EvalError::Invalid(format!("column `{name}` was not fetched from the store"))
}

/// Evaluates to the typed column form.
pub(crate) fn eval_col(
    expr: &RowExpr,
    frame: &Frame,
    each: Option<&ArrayRef>,
) -> Result<Col, EvalError> {
    let n = frame.rows;
    match &expr.kind {
        RowExprKind::Column(id) => {
            let col = Col::from_array(frame.column(id).ok_or_else(|| missing_column(&id.name))?)?;
            // The store hands times back as int64 microseconds; the declared type says
            // they are times, so that `ts > "2026-03-01T00:00:00Z"` compares as times.
            Ok(match col {
                Col::Int(a) if id.ty == DataType::Timestamp => Col::Timestamp(a),
                other => other,
            })
        }
        RowExprKind::EachVar => Col::from_array(each.ok_or_else(|| {
            EvalError::Invalid("an `each` variable was used outside an `each` check".into())
        })?),
        RowExprKind::Literal(v) => Ok(Col::Lit(v.clone())),
        RowExprKind::Unary { op, operand } => {
            let a = eval_col(operand, frame, each)?;
            unary(*op, &a, n)
        }
        RowExprKind::Binary { op, lhs, rhs } => {
            let a = eval_col(lhs, frame, each)?;
            let b = eval_col(rhs, frame, each)?;
            binary(*op, &a, &b, n)
        }
        RowExprKind::IsNull { operand, negated } => {
            let a = eval_col(operand, frame, each)?;
            let neg = *negated;
            if let Some(mask) = null_mask(&a, n, neg) {
                return Ok(Col::Bool(mask));
            }
            Ok(Col::Bool(
                (0..n).map(|i| Some(a.is_null_at(i) != neg)).collect(),
            ))
        }
        RowExprKind::InList {
            operand,
            list,
            negated,
        } => {
            let a = eval_col(operand, frame, each)?;
            let items = list
                .iter()
                .map(|item| eval_col(item, frame, each))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(mask) = str_in_literals(&a, &items, *negated) {
                return Ok(Col::Bool(mask));
            }
            let mut acc = Col::Lit(Value::Bool(false));
            for b in items {
                let eq = compare(BinaryOp::Eq, &a, &b, n)?;
                acc = kleene(BinaryOp::Or, &acc, &eq, n)?;
            }
            if *negated {
                unary(UnaryOp::Not, &acc, n)
            } else {
                Ok(acc)
            }
        }
        RowExprKind::Between { operand, low, high } => {
            let a = eval_col(operand, frame, each)?;
            let lo = eval_col(low, frame, each)?;
            let hi = eval_col(high, frame, each)?;
            let ge = compare(BinaryOp::Ge, &a, &lo, n)?;
            let le = compare(BinaryOp::Le, &a, &hi, n)?;
            kleene(BinaryOp::And, &ge, &le, n)
        }
        RowExprKind::Within {
            operand,
            tolerance,
            target,
            relative,
        } => {
            let x = eval_col(operand, frame, each)?;
            let tol = eval_col(tolerance, frame, each)?;
            let t = eval_col(target, frame, each)?;
            let rel = *relative;
            Ok(Col::Bool(
                (0..n)
                    .map(|i| Some(within(x.f64_at(i)?, tol.f64_at(i)?, t.f64_at(i)?, rel)))
                    .collect(),
            ))
        }
        RowExprKind::Scalar { function, args } => {
            let cols = args
                .iter()
                .map(|a| eval_col(a, frame, each))
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(n);
            let mut row = Vec::with_capacity(cols.len());
            for i in 0..n {
                row.clear();
                row.extend(cols.iter().map(|c| c.value_at(i)));
                out.push(function.call_scalar(&row)?);
            }
            values_to_col(out, expr.ty)
        }
    }
}

/// `abs(x - target) <= tol`, or `<= tol * abs(target)` for a percentage tolerance.
pub fn within(x: f64, tol: f64, target: f64, relative: bool) -> bool {
    let bound = if relative { tol * target.abs() } else { tol };
    (x - target).abs() <= bound
}

/// Builds a column of the expression's type from per-row values.
fn values_to_col(values: Vec<Value>, ty: Option<DataType>) -> Result<Col, EvalError> {
    let kind_of = |v: &Value| match v {
        Value::Int(_) => Some(DataType::Int),
        Value::Float(_) | Value::Duration(_) => Some(DataType::Float),
        Value::Bool(_) => Some(DataType::Bool),
        Value::Str(_) => Some(DataType::String),
        Value::Timestamp(_) => Some(DataType::Timestamp),
        Value::Null | Value::Struct(_) => None,
    };
    let ty = ty.or_else(|| values.iter().find_map(kind_of));
    Ok(match ty {
        None => Col::Lit(Value::Null),
        Some(DataType::Float) => Col::Float(values.iter().map(Value::as_f64).collect()),
        Some(DataType::Int) => Col::Int(
            values
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect(),
        ),
        Some(DataType::Timestamp) => Col::Timestamp(
            values
                .iter()
                .map(|v| match v {
                    Value::Timestamp(i) | Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect(),
        ),
        Some(DataType::Bool) => Col::Bool(
            values
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect(),
        ),
        Some(DataType::String) => Col::Str(std::sync::Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
        )),
    })
}

fn unary(op: UnaryOp, a: &Col, n: usize) -> Result<Col, EvalError> {
    match (op, a) {
        (UnaryOp::Not, Col::Lit(Value::Bool(b))) => Ok(Col::Lit(Value::Bool(!b))),
        (_, Col::Lit(Value::Null)) => Ok(Col::Lit(Value::Null)),
        (UnaryOp::Not, Col::Bool(b)) => Ok(Col::Bool(b.iter().map(|v| v.map(|v| !v)).collect())),
        (UnaryOp::Neg, Col::Int(x)) => Ok(Col::Int(
            x.iter().map(|v| v.and_then(i64::checked_neg)).collect(),
        )),
        (UnaryOp::Neg, Col::Float(x)) => Ok(Col::Float(x.iter().map(|v| v.map(|v| -v)).collect())),
        (UnaryOp::Neg, Col::Lit(v)) => match v {
            Value::Int(i) => Ok(Col::Lit(i.checked_neg().map_or(Value::Null, Value::Int))),
            Value::Float(f) => Ok(Col::Lit(Value::Float(-f))),
            Value::Duration(f) => Ok(Col::Lit(Value::Duration(-f))),
            _ => Err(type_error("-", a.kind(), a.kind())),
        },
        _ => {
            let _ = n;
            Err(EvalError::Invalid(format!(
                "`{}` cannot be applied to {:?} values",
                if op == UnaryOp::Not { "not" } else { "-" },
                a.kind()
            )))
        }
    }
}

fn type_error(op: &str, a: Kind, b: Kind) -> EvalError {
    EvalError::Invalid(format!("`{op}` cannot combine {a:?} and {b:?} values"))
}

/// `and` / `or` with SQL's three-valued logic: `false and null` is false, `true or null` true.
fn kleene(op: BinaryOp, a: &Col, b: &Col, n: usize) -> Result<Col, EvalError> {
    for c in [a, b] {
        if !matches!(c.kind(), Kind::Bool | Kind::Null) {
            return Err(type_error(op.symbol(), a.kind(), b.kind()));
        }
    }
    let f = |i: usize| -> Option<bool> {
        let (x, y) = (a.bool_at(i), b.bool_at(i));
        match op {
            BinaryOp::And => match (x, y) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            _ => match (x, y) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
        }
    };
    if let (Col::Lit(_), Col::Lit(_)) = (a, b) {
        return Ok(Col::Lit(f(0).map_or(Value::Null, Value::Bool)));
    }
    if let (Col::Bool(x), Col::Bool(y)) = (a, b) {
        return Ok(Col::Bool(kleene_columns(op, x, y)));
    }
    Ok(Col::Bool((0..n).map(f).collect()))
}

/// `and`/`or` of two boolean columns a word at a time, with the same three-valued answers as
/// the row-wise path: a side that is known false (and) or true (or) decides the row even when
/// the other side is null.
fn kleene_columns(op: BinaryOp, x: &BooleanArray, y: &BooleanArray) -> BooleanArray {
    use arrow_buffer::{BooleanBuffer, NullBuffer};
    let n = x.len();
    let valid = |a: &BooleanArray| -> BooleanBuffer {
        a.nulls()
            .map_or_else(|| BooleanBuffer::new_set(n), |m| m.inner().clone())
    };
    let (xv, yv, xm, ym) = (x.values(), y.values(), valid(x), valid(y));
    let both = &xm & &ym;
    let (values, known) = match op {
        BinaryOp::And => (xv & yv, &(&both | &(&xm & &!xv)) | &(&ym & &!yv)),
        _ => (xv | yv, &(&both | &(&xm & xv)) | &(&ym & yv)),
    };
    let nulls = NullBuffer::new(known);
    BooleanArray::new(values, (nulls.null_count() > 0).then_some(nulls))
}

fn binary(op: BinaryOp, a: &Col, b: &Col, n: usize) -> Result<Col, EvalError> {
    match op {
        BinaryOp::And | BinaryOp::Or => kleene(op, a, b, n),
        op if op.is_comparison() => compare(op, a, b, n),
        _ => arithmetic(op, a, b, n),
    }
}

/// Parses an RFC 3339 time to microseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_microsecond())
}

/// A string literal compared with a timestamp is read as an RFC 3339 time.
fn coerce_time_literal(c: &Col, other: Kind) -> Result<Col, EvalError> {
    match c {
        Col::Lit(Value::Str(s)) if other == Kind::Timestamp => parse_time(s)
            .map(|t| Col::Lit(Value::Timestamp(t)))
            .ok_or_else(|| {
                EvalError::Invalid(format!(
                    "\"{s}\" is compared with a time but is not an RFC 3339 time such as \
                     \"2026-03-01T00:00:00Z\""
                ))
            }),
        _ => Ok(c.clone()),
    }
}

fn compare(op: BinaryOp, a: &Col, b: &Col, n: usize) -> Result<Col, EvalError> {
    let a = &coerce_time_literal(a, b.kind())?;
    let b = &coerce_time_literal(b, a.kind())?;
    if let Some(out) = compare_column_literal(op, a, b) {
        return Ok(Col::Bool(out));
    }
    compare_rows(op, a, b, n)
}

/// [`compare`] row by row, for every shape of operands.
fn compare_rows(op: BinaryOp, a: &Col, b: &Col, n: usize) -> Result<Col, EvalError> {
    let ord = |o: std::cmp::Ordering| ordering_holds(op, o);
    let (ka, kb) = (a.kind(), b.kind());
    let both_lit = matches!((a, b), (Col::Lit(_), Col::Lit(_)));
    let rows = if both_lit { 1 } else { n };
    let out: BooleanArray = match (ka, kb) {
        (Kind::Null, _) | (_, Kind::Null) => return Ok(Col::Lit(Value::Null)),
        (Kind::Str, Kind::Str) => (0..rows)
            .map(|i| Some(ord(a.str_at(i)?.cmp(b.str_at(i)?))))
            .collect(),
        (Kind::Bool, Kind::Bool) => (0..rows)
            .map(|i| Some(ord(a.bool_at(i)?.cmp(&b.bool_at(i)?))))
            .collect(),
        (Kind::Int | Kind::Timestamp, Kind::Int | Kind::Timestamp) => (0..rows)
            .map(|i| Some(ord(a.i64_at(i)?.cmp(&b.i64_at(i)?))))
            .collect(),
        (Kind::Int | Kind::Float | Kind::Timestamp, Kind::Int | Kind::Float | Kind::Timestamp) => {
            (0..rows)
                .map(|i| {
                    let (x, y) = (a.f64_at(i)?, b.f64_at(i)?);
                    Some(float_cmp(op, x, y))
                })
                .collect()
        }
        _ => return Err(type_error(op.symbol(), ka, kb)),
    };
    if both_lit {
        return Ok(Col::Lit(if out.is_null(0) {
            Value::Null
        } else {
            Value::Bool(out.value(0))
        }));
    }
    Ok(Col::Bool(out))
}

fn ordering_holds(op: BinaryOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        BinaryOp::Eq => o == Equal,
        BinaryOp::Ne => o != Equal,
        BinaryOp::Lt => o == Less,
        BinaryOp::Le => o != Greater,
        BinaryOp::Gt => o == Greater,
        _ => o != Less,
    }
}

/// `x OP y` on floats. NaN compares unequal to everything, itself included, as in IEEE
/// arithmetic: only `!=` holds.
fn float_cmp(op: BinaryOp, x: f64, y: f64) -> bool {
    match x.partial_cmp(&y) {
        Some(o) => ordering_holds(op, o),
        None => op == BinaryOp::Ne,
    }
}

/// `x is [not] null` over an array column from its validity bitmap: the row-wise answers
/// (never null). `None` for a literal.
fn null_mask(a: &Col, n: usize, negated: bool) -> Option<BooleanArray> {
    use arrow_buffer::BooleanBuffer;
    let array: &dyn Array = match a {
        Col::Int(x) | Col::Timestamp(x) => x,
        Col::Float(x) => x,
        Col::Bool(x) => x,
        Col::Str(x) => x.as_ref(),
        Col::Lit(_) => return None,
    };
    if array.len() != n {
        return None;
    }
    let valid = match array.logical_nulls() {
        Some(nulls) => nulls.inner().clone(),
        None => BooleanBuffer::new_set(n),
    };
    Some(BooleanArray::new(
        if negated { valid } else { !&valid },
        None,
    ))
}

/// `x [not] in ["a", "b", ...]` over a string column with only non-null string literals: a
/// null `x` gives null, as the row-wise chain of `=` and `or` does. `None` for any other shape.
fn str_in_literals(a: &Col, items: &[Col], negated: bool) -> Option<BooleanArray> {
    use arrow_buffer::BooleanBuffer;
    let Col::Str(x) = a else { return None };
    let x = x.as_any().downcast_ref::<StringArray>()?;
    let mut set: Vec<&str> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Col::Lit(Value::Str(s)) => set.push(s),
            _ => return None,
        }
    }
    // Literals of at most 15 bytes (country codes, statuses) are compared as integers,
    // packed as `group by` codes its keys, so a row costs a 16-byte load and a few integer
    // compares instead of a `memcmp` call per literal (10M rows against 10 countries: 8% of
    // W3's time went to `memcmp`).
    let shorts: Vec<u128> = set
        .iter()
        .filter(|s| s.len() < 16)
        .map(|s| super::slice::packed_short(s.as_bytes(), 0, s.len()))
        .collect();
    let longs: Vec<&str> = set.iter().copied().filter(|s| s.len() >= 16).collect();
    let offsets = x.value_offsets();
    let bytes = x.value_data();
    let bits = BooleanBuffer::collect_bool(x.len(), |i| {
        // Null rows are masked below; their value slot is empty.
        let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
        let hit = if to - from >= 16 {
            longs.contains(&x.value(i))
        } else {
            shorts.contains(&super::slice::packed_short(bytes, from, to))
        };
        hit != negated
    });
    Some(BooleanArray::new(bits, x.nulls().cloned()))
}

/// `column OP literal` (or `literal OP column`) over a numeric column, a word at a time: the
/// answers of the row-wise path, nulls staying null. `None` for any other shape.
fn compare_column_literal(op: BinaryOp, a: &Col, b: &Col) -> Option<BooleanArray> {
    use arrow_buffer::BooleanBuffer;
    let (col, lit, op) = match (a, b) {
        (Col::Lit(_), Col::Lit(_)) => return None,
        (c, Col::Lit(v)) => (c, v, op),
        (Col::Lit(v), c) => {
            let mirrored = match op {
                BinaryOp::Lt => BinaryOp::Gt,
                BinaryOp::Le => BinaryOp::Ge,
                BinaryOp::Gt => BinaryOp::Lt,
                BinaryOp::Ge => BinaryOp::Le,
                other => other,
            };
            (c, v, mirrored)
        }
        _ => return None,
    };
    match (col, lit) {
        (Col::Int(x) | Col::Timestamp(x), Value::Int(y) | Value::Timestamp(y)) => {
            let (v, y) = (x.values(), *y);
            let bits = BooleanBuffer::collect_bool(v.len(), |i| ordering_holds(op, v[i].cmp(&y)));
            Some(BooleanArray::new(bits, x.nulls().cloned()))
        }
        (Col::Float(x), Value::Int(_) | Value::Float(_)) => {
            let (v, y) = (x.values(), lit.as_f64()?);
            let bits = BooleanBuffer::collect_bool(v.len(), |i| float_cmp(op, v[i], y));
            Some(BooleanArray::new(bits, x.nulls().cloned()))
        }
        (Col::Int(x) | Col::Timestamp(x), Value::Float(y)) => {
            let (v, y) = (x.values(), *y);
            let bits = BooleanBuffer::collect_bool(v.len(), |i| float_cmp(op, v[i] as f64, y));
            Some(BooleanArray::new(bits, x.nulls().cloned()))
        }
        _ => None,
    }
}

fn arithmetic(op: BinaryOp, a: &Col, b: &Col, n: usize) -> Result<Col, EvalError> {
    let (ka, kb) = (a.kind(), b.kind());
    let both_lit = matches!((a, b), (Col::Lit(_), Col::Lit(_)));
    let rows = if both_lit { 1 } else { n };
    let is_duration = |c: &Col| matches!(c, Col::Lit(Value::Duration(_)));
    let out = match (ka, kb) {
        (Kind::Null, _) | (_, Kind::Null) => return Ok(Col::Lit(Value::Null)),
        (Kind::Int, Kind::Int) if op != BinaryOp::Div => Col::Int(
            (0..rows)
                .map(|i| {
                    let (x, y) = (a.i64_at(i)?, b.i64_at(i)?);
                    match op {
                        BinaryOp::Add => x.checked_add(y),
                        BinaryOp::Sub => x.checked_sub(y),
                        _ => x.checked_mul(y),
                    }
                })
                .collect::<Int64Array>(),
        ),
        // A time shifted by a duration stays a time; durations are seconds.
        (Kind::Timestamp, Kind::Float)
            if is_duration(b) && matches!(op, BinaryOp::Add | BinaryOp::Sub) =>
        {
            let sign = if op == BinaryOp::Add { 1.0 } else { -1.0 };
            Col::Timestamp(
                (0..rows)
                    .map(|i| {
                        let shifted = a.i64_at(i)? as f64 + sign * b.f64_at(i)? * 1e6;
                        Some(shifted as i64)
                    })
                    .collect(),
            )
        }
        // The difference of two times is a duration in seconds.
        (Kind::Timestamp, Kind::Timestamp) if op == BinaryOp::Sub => Col::Float(
            (0..rows)
                .map(|i| Some((a.i64_at(i)? - b.i64_at(i)?) as f64 / 1e6))
                .collect::<Float64Array>(),
        ),
        (Kind::Int | Kind::Float, Kind::Int | Kind::Float) => Col::Float(
            (0..rows)
                .map(|i| {
                    let (x, y) = (a.f64_at(i)?, b.f64_at(i)?);
                    match op {
                        BinaryOp::Add => Some(x + y),
                        BinaryOp::Sub => Some(x - y),
                        BinaryOp::Mul => Some(x * y),
                        // Division by zero gives null rather than an infinity that would
                        // silently pass or fail comparisons.
                        _ => (y != 0.0).then(|| x / y),
                    }
                })
                .collect::<Float64Array>(),
        ),
        _ => return Err(type_error(op.symbol(), ka, kb)),
    };
    if both_lit {
        let v = out.value_at(0);
        return Ok(Col::Lit(match (v, is_duration(a) || is_duration(b)) {
            (Value::Float(f), true) => Value::Duration(f),
            (v, _) => v,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    fn same(a: &Col, b: &Col) -> bool {
        match (a, b) {
            (Col::Bool(x), Col::Bool(y)) => x == y,
            _ => false,
        }
    }

    /// The word-at-a-time paths give exactly the row-wise answers: nulls, NaN, both operand
    /// orders, every comparison, mixed int and float.
    #[test]
    fn column_literal_comparisons_and_kleene_match_the_row_wise_path() {
        let floats = Col::Float(Float64Array::from(vec![
            Some(-1.5),
            None,
            Some(0.0),
            Some(f64::NAN),
            Some(2.0),
            Some(1.0),
        ]));
        let ints = Col::Int(Int64Array::from(vec![
            Some(-3),
            Some(1),
            None,
            Some(0),
            Some(i64::MAX),
            Some(1),
        ]));
        let lits = [
            Value::Int(1),
            Value::Float(0.5),
            Value::Float(f64::NAN),
            Value::Int(0),
        ];
        let ops = [
            BinaryOp::Eq,
            BinaryOp::Ne,
            BinaryOp::Lt,
            BinaryOp::Le,
            BinaryOp::Gt,
            BinaryOp::Ge,
        ];
        let mut masks = Vec::new();
        for col in [&floats, &ints] {
            for lit in &lits {
                let lit = Col::Lit(lit.clone());
                for op in ops {
                    for (a, b) in [(col, &lit), (&lit, col)] {
                        let fast = compare(op, a, b, 6).unwrap();
                        let rows = compare_rows(op, a, b, 6).unwrap();
                        assert!(
                            same(&fast, &rows),
                            "{op:?} {a:?} {b:?}: {fast:?} vs {rows:?}"
                        );
                        if let Col::Bool(m) = fast {
                            masks.push(m);
                        }
                    }
                }
            }
        }
        for x in &masks {
            for y in masks.iter().step_by(7) {
                for op in [BinaryOp::And, BinaryOp::Or] {
                    let (cx, cy) = (Col::Bool(x.clone()), Col::Bool(y.clone()));
                    let fast = kleene(op, &cx, &cy, 6).unwrap();
                    let f = |i: usize| -> Option<bool> {
                        let (a, b) = (cx.bool_at(i), cy.bool_at(i));
                        match (op, a, b) {
                            (BinaryOp::And, Some(false), _) | (BinaryOp::And, _, Some(false)) => {
                                Some(false)
                            }
                            (BinaryOp::And, Some(true), Some(true)) => Some(true),
                            (BinaryOp::Or, Some(true), _) | (BinaryOp::Or, _, Some(true)) => {
                                Some(true)
                            }
                            (BinaryOp::Or, Some(false), Some(false)) => Some(false),
                            _ => None,
                        }
                    };
                    let want: BooleanArray = (0..6).map(f).collect();
                    assert!(same(&fast, &Col::Bool(want)), "{op:?}");
                }
            }
        }
    }

    /// `in` over strings and `is null` from the bitmap give the row-wise answers.
    #[test]
    fn string_in_list_and_is_null_match_the_row_wise_path() {
        let arr: ArrayRef = std::sync::Arc::new(StringArray::from(vec![
            Some("DE"),
            None,
            Some(""),
            Some("US"),
            Some("de"),
            Some("Zürich"),
        ]));
        let col = Col::Str(arr.clone());
        let list = [
            Col::Lit(Value::Str("US".into())),
            Col::Lit(Value::Str("DE".into())),
            Col::Lit(Value::Str("Zürich".into())),
        ];
        for negated in [false, true] {
            let fast = str_in_literals(&col, &list, negated).unwrap();
            let mut acc = Col::Lit(Value::Bool(false));
            for b in &list {
                let eq = compare_rows(BinaryOp::Eq, &col, b, 6).unwrap();
                acc = kleene(BinaryOp::Or, &acc, &eq, 6).unwrap();
            }
            if negated {
                acc = unary(UnaryOp::Not, &acc, 6).unwrap();
            }
            assert!(same(&Col::Bool(fast), &acc), "negated {negated}: {acc:?}");
        }
        // A null or non-string literal in the list takes the row-wise path.
        assert!(str_in_literals(&col, &[Col::Lit(Value::Null)], false).is_none());
        let ints = Col::Int(Int64Array::from(vec![Some(1), None, Some(3)]));
        for (c, n) in [(&col, 6), (&ints, 3)] {
            for negated in [false, true] {
                let fast = null_mask(c, n, negated).unwrap();
                let rows: BooleanArray = (0..n).map(|i| Some(c.is_null_at(i) != negated)).collect();
                assert_eq!(fast, rows);
            }
        }
        let no_nulls = Col::Float(Float64Array::from(vec![1.0, 2.0]));
        assert_eq!(
            null_mask(&no_nulls, 2, false).unwrap(),
            BooleanArray::from(vec![false, false])
        );
    }
}
