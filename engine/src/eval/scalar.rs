//! Scalar functions on single values (`abs`, `ln`, `coalesce`, ...), used both on rows and on
//! aggregate values. The registry's implementation wins; the fallback here keeps the
//! language's scalars usable whatever the registry holds, with the same null rules.

use crate::functions::{self, EvalError, FunctionKind};
use crate::value::Value;

/// Calls the scalar function `name` on one set of argument values.
pub fn call_scalar(name: &str, args: &[Value]) -> Result<Value, EvalError> {
    if let Some(f) = functions::lookup(name)
        && f.signature().kind == FunctionKind::Scalar
    {
        return f.call_scalar(args);
    }
    fallback(name, args)
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A result that keeps durations as durations (`abs(freshness() - 1h)`).
fn like(arg: &Value, x: f64) -> Value {
    match arg {
        Value::Duration(_) => Value::Duration(x),
        Value::Int(_) if x.fract() == 0.0 && x.abs() < 9.0e15 => Value::Int(x as i64),
        _ => Value::Float(x),
    }
}

fn fallback(name: &str, args: &[Value]) -> Result<Value, EvalError> {
    let first = args.first().unwrap_or(&Value::Null);
    let unary = |f: fn(f64) -> Option<f64>| -> Value {
        match number(first).and_then(f) {
            Some(x) => Value::Float(x),
            None => Value::Null,
        }
    };
    Ok(match name {
        "abs" => match first {
            Value::Int(i) => i.checked_abs().map_or(Value::Null, Value::Int),
            v => number(v).map_or(Value::Null, |x| like(v, x.abs())),
        },
        // Outside their domain these give null (SQL engines differ; null keeps a bad row
        // from failing the whole evaluation and is skipped by aggregates).
        "ln" => unary(|x| (x > 0.0).then(|| x.ln())),
        "exp" => unary(|x| Some(x.exp())),
        "sqrt" => unary(|x| (x >= 0.0).then(|| x.sqrt())),
        "least" | "greatest" => {
            // As PostgreSQL: nulls are ignored, null only when every argument is.
            let mut best: Option<&Value> = None;
            for v in args.iter().filter(|v| !v.is_null()) {
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        let ord = compare_values(v, b).ok_or_else(|| {
                            EvalError::Invalid(format!("`{name}` cannot compare {v:?} with {b:?}"))
                        })?;
                        let take_new = if name == "least" {
                            ord.is_lt()
                        } else {
                            ord.is_gt()
                        };
                        if take_new { v } else { b }
                    }
                });
            }
            best.cloned().unwrap_or(Value::Null)
        }
        "coalesce" => args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        other => {
            return Err(EvalError::Invalid(format!(
                "`{other}` is not a known scalar function"
            )));
        }
    })
}

/// Orders two non-null values of comparable kinds (numbers with numbers, strings with
/// strings, bools with bools).
pub fn compare_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) | (Value::Timestamp(x), Value::Timestamp(y)) => {
            Some(x.cmp(y))
        }
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
