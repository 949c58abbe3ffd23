//! The aggregate level: an `expect` is an expression over aggregate values. This module
//! evaluates it, decides its status, collects the values shown in results, and explains a
//! verdict in words a person can act on.

use mlc_grammar::ast::{BinaryOp, UnaryOp};
use serde::Serialize;

use super::row::within;
use super::scalar::compare_values;
use crate::plan::{AggExpr, AggregateCall};
use crate::value::Value;

/// The value of one aggregate over one row set.
#[derive(Debug, Clone, PartialEq)]
pub enum AggResult {
    Value(Value),
    /// Undefined on these rows (no positive labels, no values), with the reason.
    Undefined(String),
    /// The computation failed (a plugin trapped, an internal error), with the reason.
    Error(String),
}

/// The verdict of an expect, or of a whole result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Insufficient,
    Error,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Insufficient => "insufficient",
            Status::Error => "error",
        }
    }

    /// A check's status from its expects': any failure fails it (a definite finding is
    /// worth more than an evaluation problem elsewhere), then error, then insufficient.
    pub fn combine(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Pass)
    }
}

/// One expect judged on one slice.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectOutcome {
    pub text: String,
    pub status: Status,
    /// Each aggregate of the expect as written, struct fields as `ks(x).pvalue`; `Null`
    /// where undefined.
    pub values: Vec<(String, Value)>,
    /// Why the expect did not pass, e.g. `recall(prediction, label) = 0.83, expected >= 0.9`,
    /// or why it could not be judged.
    pub explanation: String,
}

enum Problem {
    Undefined(String),
    Error(String),
}

/// Judges one expect given the values of the check's aggregates.
pub fn judge(
    expr: &AggExpr,
    text: &str,
    calls: &[AggregateCall],
    values: &[AggResult],
) -> ExpectOutcome {
    let shown = shown_values(expr, calls, values);
    let (status, explanation) = match eval(expr, values) {
        Ok(Value::Bool(true)) => (Status::Pass, explain(expr, calls, values)),
        Ok(Value::Bool(false)) => (Status::Fail, explain(expr, calls, values)),
        Ok(Value::Null) => (
            Status::Insufficient,
            format!("`{text}` cannot be judged: a value it compares is null"),
        ),
        Ok(other) => (
            Status::Error,
            format!("`{text}` gives {other:?}, not true or false"),
        ),
        Err(Problem::Undefined(reason)) => (Status::Insufficient, reason),
        Err(Problem::Error(reason)) => (Status::Error, reason),
    };
    ExpectOutcome {
        text: text.to_string(),
        status,
        values: shown,
        explanation,
    }
}

fn eval(expr: &AggExpr, values: &[AggResult]) -> Result<Value, Problem> {
    match expr {
        AggExpr::Literal(v) => Ok(v.clone()),
        AggExpr::Aggregate(i) => match values.get(*i) {
            Some(AggResult::Value(v)) => Ok(v.clone()),
            Some(AggResult::Undefined(r)) => Err(Problem::Undefined(r.clone())),
            Some(AggResult::Error(r)) => Err(Problem::Error(r.clone())),
            None => Err(Problem::Error(format!("aggregate #{i} was not computed"))),
        },
        AggExpr::Field { base, field } => {
            let v = eval(base, values)?;
            v.field(field)
                .cloned()
                .ok_or_else(|| Problem::Error(format!("the value has no field `{field}`")))
        }
        AggExpr::Unary { op, operand } => {
            let v = eval(operand, values)?;
            Ok(match (op, v) {
                (_, Value::Null) => Value::Null,
                (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
                (UnaryOp::Neg, Value::Int(i)) => i.checked_neg().map_or(Value::Null, Value::Int),
                (UnaryOp::Neg, Value::Duration(d)) => Value::Duration(-d),
                (UnaryOp::Neg, v) => match v.as_f64() {
                    Some(x) => Value::Float(-x),
                    None => return Err(Problem::Error(format!("cannot negate {v:?}"))),
                },
                (UnaryOp::Not, v) => return Err(Problem::Error(format!("`not` of {v:?}"))),
            })
        }
        AggExpr::Binary {
            op: op @ (BinaryOp::And | BinaryOp::Or),
            lhs,
            rhs,
        } => {
            let a = as_bool(eval(lhs, values)?)?;
            let b = as_bool(eval(rhs, values)?)?;
            Ok(match (op, a, b) {
                (BinaryOp::And, Some(false), _) | (BinaryOp::And, _, Some(false)) => {
                    Value::Bool(false)
                }
                (BinaryOp::And, Some(true), Some(true)) => Value::Bool(true),
                (BinaryOp::Or, Some(true), _) | (BinaryOp::Or, _, Some(true)) => Value::Bool(true),
                (BinaryOp::Or, Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            })
        }
        AggExpr::Binary { op, lhs, rhs } => {
            let a = eval(lhs, values)?;
            let b = eval(rhs, values)?;
            if op.is_comparison() {
                compare(*op, &a, &b)
            } else {
                arithmetic(*op, &a, &b)
            }
        }
        AggExpr::IsNull { operand, negated } => {
            let v = eval(operand, values)?;
            Ok(Value::Bool(v.is_null() != *negated))
        }
        AggExpr::InList {
            operand,
            list,
            negated,
        } => {
            let v = eval(operand, values)?;
            let mut saw_null = v.is_null();
            let mut found = false;
            for item in list {
                match compare(BinaryOp::Eq, &v, &eval(item, values)?)? {
                    Value::Bool(true) => found = true,
                    Value::Null => saw_null = true,
                    _ => {}
                }
            }
            Ok(if found {
                Value::Bool(!negated)
            } else if saw_null {
                Value::Null
            } else {
                Value::Bool(*negated)
            })
        }
        AggExpr::Between { operand, low, high } => {
            let v = eval(operand, values)?;
            let ge = compare(BinaryOp::Ge, &v, &eval(low, values)?)?;
            let le = compare(BinaryOp::Le, &v, &eval(high, values)?)?;
            Ok(match (ge, le) {
                (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            })
        }
        AggExpr::Within {
            operand,
            tolerance,
            target,
            relative,
        } => {
            let x = eval(operand, values)?;
            let tol = eval(tolerance, values)?;
            let t = eval(target, values)?;
            Ok(match (x.as_f64(), tol.as_f64(), t.as_f64()) {
                (Some(x), Some(tol), Some(t)) => Value::Bool(within(x, tol, t, *relative)),
                _ => Value::Null,
            })
        }
        AggExpr::Scalar { function, args } => {
            let args = args
                .iter()
                .map(|a| eval(a, values))
                .collect::<Result<Vec<_>, _>>()?;
            function
                .call_scalar(&args)
                .map_err(|e| Problem::Error(e.to_string()))
        }
    }
}

fn as_bool(v: Value) -> Result<Option<bool>, Problem> {
    match v {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        other => Err(Problem::Error(format!("{other:?} is not true or false"))),
    }
}

fn compare(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, Problem> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let a = time_literal(a, b);
    let b = time_literal(b, &a);
    let Some(ord) = compare_values(&a, &b) else {
        // NaN is unequal to everything; other pairs are a type mismatch the checker missed.
        if a.as_f64().is_some() && b.as_f64().is_some() {
            return Ok(Value::Bool(op == BinaryOp::Ne));
        }
        return Err(Problem::Error(format!("cannot compare {a:?} with {b:?}")));
    };
    use std::cmp::Ordering::*;
    Ok(Value::Bool(match op {
        BinaryOp::Eq => ord == Equal,
        BinaryOp::Ne => ord != Equal,
        BinaryOp::Lt => ord == Less,
        BinaryOp::Le => ord != Greater,
        BinaryOp::Gt => ord == Greater,
        _ => ord != Less,
    }))
}

/// A string compared with a time (`latest(ts) > "2026-01-01T00:00:00Z"`) is read as a time.
fn time_literal(v: &Value, other: &Value) -> Value {
    match (v, other) {
        (Value::Str(s), Value::Timestamp(_)) => {
            super::row::parse_time(s).map_or_else(|| v.clone(), Value::Timestamp)
        }
        _ => v.clone(),
    }
}

fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, Problem> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Err(Problem::Error(format!(
            "`{}` cannot combine {a:?} and {b:?}",
            op.symbol()
        )));
    };
    let r = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        _ => {
            if y == 0.0 {
                return Err(Problem::Undefined(format!(
                    "division by zero: the divisor {} is 0",
                    format_value(b)
                )));
            }
            x / y
        }
    };
    let duration = matches!(a, Value::Duration(_)) || matches!(b, Value::Duration(_));
    Ok(match (a, b) {
        (Value::Int(_), Value::Int(_)) if op != BinaryOp::Div && r.abs() < 9.0e15 => {
            Value::Int(r as i64)
        }
        _ if duration && matches!(op, BinaryOp::Add | BinaryOp::Sub) => Value::Duration(r),
        _ => Value::Float(r),
    })
}

/// Every aggregate of the expression with its value, in order of appearance, as results
/// show them: `ks(x).pvalue` for a field, every field of a struct used whole.
pub(crate) fn shown_values(
    expr: &AggExpr,
    calls: &[AggregateCall],
    values: &[AggResult],
) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    collect(expr, calls, values, &mut out);
    out
}

fn collect(
    expr: &AggExpr,
    calls: &[AggregateCall],
    values: &[AggResult],
    out: &mut Vec<(String, Value)>,
) {
    let mut push = |k: String, v: Value| {
        if !out.iter().any(|(n, _)| *n == k) {
            out.push((k, v));
        }
    };
    match expr {
        AggExpr::Literal(_) => {}
        AggExpr::Aggregate(i) => {
            let text = calls
                .get(*i)
                .map_or_else(|| format!("#{i}"), |c| c.text.clone());
            match values.get(*i) {
                Some(AggResult::Value(Value::Struct(fields))) => {
                    for (f, v) in fields {
                        push(format!("{text}.{f}"), v.clone());
                    }
                }
                Some(AggResult::Value(v)) => push(text, v.clone()),
                _ => push(text, Value::Null),
            }
        }
        AggExpr::Field { base, field } => {
            if let AggExpr::Aggregate(i) = base.as_ref() {
                let text = calls
                    .get(*i)
                    .map_or_else(|| format!("#{i}"), |c| c.text.clone());
                let v = match values.get(*i) {
                    Some(AggResult::Value(v)) => v.field(field).cloned().unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                push(format!("{text}.{field}"), v);
            } else {
                collect(base, calls, values, out);
            }
        }
        AggExpr::Unary { operand, .. } | AggExpr::IsNull { operand, .. } => {
            collect(operand, calls, values, out)
        }
        AggExpr::Binary { lhs, rhs, .. } => {
            collect(lhs, calls, values, out);
            collect(rhs, calls, values, out);
        }
        AggExpr::InList { operand, list, .. } => {
            collect(operand, calls, values, out);
            for e in list {
                collect(e, calls, values, out);
            }
        }
        AggExpr::Between { operand, low, high } => {
            for e in [operand, low, high] {
                collect(e, calls, values, out);
            }
        }
        AggExpr::Within {
            operand,
            tolerance,
            target,
            ..
        } => {
            for e in [operand, tolerance, target] {
                collect(e, calls, values, out);
            }
        }
        AggExpr::Scalar { args, .. } => {
            for e in args {
                collect(e, calls, values, out);
            }
        }
    }
}

/// A number or value as a person reads it: `0.83`, `5,120`, `2h 5m`, a time in RFC 3339.
pub(crate) fn format_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => group_thousands(*i),
        Value::Float(f) => format_number(*f),
        Value::Str(s) => format!("\"{s}\""),
        Value::Timestamp(us) => jiff::Timestamp::from_microsecond(*us)
            .map_or_else(|_| us.to_string(), |t| t.to_string()),
        Value::Duration(s) => format_duration(*s),
        Value::Struct(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", format_value(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// `5120.0` as `5,120`; otherwise up to four significant decimals.
pub fn format_number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return group_thousands(f as i64);
    }
    let digits = if f.abs() >= 1.0 {
        4
    } else {
        (3.0 - f.abs().log10().floor()).clamp(4.0, 12.0) as usize
    };
    let s = format!("{f:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

pub fn group_thousands(i: i64) -> String {
    let digits = i.unsigned_abs().to_string();
    let mut out = String::new();
    for (n, c) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if i < 0 { format!("-{out}") } else { out }
}

/// Seconds as `1d 2h`, `15m`, `42s` (two largest units).
pub(crate) fn format_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return format!("{secs}s");
    }
    let sign = if secs < 0.0 { "-" } else { "" };
    let mut rest = secs.abs().round() as u64;
    if rest == 0 {
        return format!("{}s", format_number(secs));
    }
    let mut parts = Vec::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= len {
            parts.push(format!("{}{unit}", rest / len));
            rest %= len;
        }
        if parts.len() == 2 {
            break;
        }
    }
    format!("{sign}{}", parts.join(" "))
}

/// The canonical text of an aggregate expression, for explanations.
pub(crate) fn expr_text(expr: &AggExpr, calls: &[AggregateCall]) -> String {
    match expr {
        AggExpr::Literal(v) => match v {
            Value::Str(s) => format!("\"{s}\""),
            Value::Duration(d) => format_duration(*d).replace(' ', ""),
            Value::Float(f) => format!("{f}"),
            Value::Int(i) => i.to_string(),
            other => format_value(other),
        },
        AggExpr::Aggregate(i) => calls
            .get(*i)
            .map_or_else(|| format!("#{i}"), |c| c.text.clone()),
        AggExpr::Field { base, field } => format!("{}.{field}", expr_text(base, calls)),
        AggExpr::Unary {
            op: UnaryOp::Neg,
            operand,
        } => format!("-{}", expr_text(operand, calls)),
        AggExpr::Unary {
            op: UnaryOp::Not,
            operand,
        } => format!("not {}", expr_text(operand, calls)),
        AggExpr::Binary { op, lhs, rhs } => {
            let side = |e: &AggExpr| match e {
                AggExpr::Binary { .. } => format!("({})", expr_text(e, calls)),
                _ => expr_text(e, calls),
            };
            format!("{} {} {}", side(lhs), op.symbol(), side(rhs))
        }
        AggExpr::IsNull { operand, negated } => {
            format!(
                "{} is {}null",
                expr_text(operand, calls),
                if *negated { "not " } else { "" }
            )
        }
        AggExpr::InList {
            operand,
            list,
            negated,
        } => format!(
            "{} {}in [{}]",
            expr_text(operand, calls),
            if *negated { "not " } else { "" },
            list.iter()
                .map(|e| expr_text(e, calls))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AggExpr::Between { operand, low, high } => format!(
            "{} between {} and {}",
            expr_text(operand, calls),
            expr_text(low, calls),
            expr_text(high, calls)
        ),
        AggExpr::Within {
            operand,
            tolerance,
            target,
            ..
        } => format!(
            "{} within {} of {}",
            expr_text(operand, calls),
            expr_text(tolerance, calls),
            expr_text(target, calls)
        ),
        AggExpr::Scalar { function, args } => format!(
            "{function}({})",
            args.iter()
                .map(|e| expr_text(e, calls))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `lhs = value` unless `lhs` is a literal, then the literal alone.
fn with_value(e: &AggExpr, calls: &[AggregateCall], values: &[AggResult]) -> String {
    let text = expr_text(e, calls);
    match e {
        AggExpr::Literal(_) => text,
        _ => match eval(e, values) {
            Ok(v) => format!("{text} = {}", format_value(&v)),
            Err(_) => text,
        },
    }
}

/// Explains a judged expect: the left side with its value and what was expected, e.g.
/// `recall(prediction, label) = 0.83, expected >= 0.9`.
fn explain(expr: &AggExpr, calls: &[AggregateCall], values: &[AggResult]) -> String {
    let right = |e: &AggExpr| match e {
        AggExpr::Literal(_) => expr_text(e, calls),
        _ => format!("({})", with_value(e, calls, values)),
    };
    match expr {
        AggExpr::Binary { op, lhs, rhs } if op.is_comparison() => {
            format!(
                "{}, expected {} {}",
                with_value(lhs, calls, values),
                op.symbol(),
                right(rhs)
            )
        }
        AggExpr::Between { operand, low, high } => format!(
            "{}, expected between {} and {}",
            with_value(operand, calls, values),
            right(low),
            right(high)
        ),
        AggExpr::Within {
            operand,
            tolerance,
            target,
            relative,
        } => {
            let tol = match (tolerance.as_ref(), relative) {
                (AggExpr::Literal(Value::Float(f)), true) => {
                    format!("{}%", format_number(f * 100.0))
                }
                _ => right(tolerance),
            };
            format!(
                "{}, expected within {tol} of {}",
                with_value(operand, calls, values),
                right(target)
            )
        }
        AggExpr::InList {
            operand,
            list,
            negated,
        } => format!(
            "{}, expected {}in [{}]",
            with_value(operand, calls, values),
            if *negated { "not " } else { "" },
            list.iter()
                .map(|e| expr_text(e, calls))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AggExpr::IsNull { operand, negated } => format!(
            "{}, expected {}null",
            with_value(operand, calls, values),
            if *negated { "not " } else { "" }
        ),
        _ => {
            let shown = shown_values(expr, calls, values);
            let parts: Vec<String> = shown
                .iter()
                .map(|(k, v)| format!("{k} = {}", format_value(v)))
                .collect();
            if parts.is_empty() {
                expr_text(expr, calls)
            } else {
                format!("{} with {}", expr_text(expr, calls), parts.join(", "))
            }
        }
    }
}
