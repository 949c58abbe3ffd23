//! Shared evaluation of the scalar builtins, which apply row by row and to aggregate values.

use super::EvalError;
use crate::value::Value;

pub(crate) fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, EvalError> {
    match args {
        [v] => Ok(v),
        _ => Err(EvalError::Invalid(format!(
            "{name} takes 1 argument, got {}",
            args.len()
        ))),
    }
}

pub(crate) fn number(name: &str, v: &Value) -> Result<f64, EvalError> {
    match v {
        Value::Int(_) | Value::Float(_) | Value::Duration(_) => v
            .as_f64()
            .ok_or_else(|| EvalError::Invalid(format!("{name}: not a number"))),
        other => Err(EvalError::Invalid(format!(
            "{name} needs a number, got {other:?}"
        ))),
    }
}

/// Applies a real function; an argument outside its domain (or a result that is not a finite
/// number) gives null, as SQLite's `ln(-1)` does, so that one bad row does not fail a check.
pub(crate) fn real_fn(name: &str, args: &[Value], f: fn(f64) -> f64) -> Result<Value, EvalError> {
    let v = one_arg(name, args)?;
    if v.is_null() {
        return Ok(Value::Null);
    }
    let y = f(number(name, v)?);
    Ok(if y.is_finite() {
        Value::Float(y)
    } else {
        Value::Null
    })
}

/// `least` / `greatest`: nulls are ignored (null only when every argument is null), as in
/// PostgreSQL. Ints stay ints and durations stay durations when every argument is one.
pub(crate) fn extreme(name: &str, args: &[Value], greatest: bool) -> Result<Value, EvalError> {
    if args.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{name} needs at least 1 argument"
        )));
    }
    let mut best: Option<(f64, &Value)> = None;
    let (mut all_int, mut all_dur) = (true, true);
    for v in args.iter().filter(|v| !v.is_null()) {
        let x = number(name, v)?;
        all_int &= matches!(v, Value::Int(_));
        all_dur &= matches!(v, Value::Duration(_));
        let better = match best {
            None => true,
            Some((b, _)) => {
                if greatest {
                    x > b
                } else {
                    x < b
                }
            }
        };
        if better {
            best = Some((x, v));
        }
    }
    Ok(match best {
        None => Value::Null,
        Some((_, v)) if all_int || all_dur => v.clone(),
        Some((x, _)) => Value::Float(x),
    })
}
