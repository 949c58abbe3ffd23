//! Ordering single values: comparisons in `expect` and the order of slices.
//! Scalar functions (`abs`, `ln`, `coalesce`, ...) are not here: a plan holds each call's
//! builtin, and [`crate::functions::Function::call_scalar`] in its own file is the one
//! implementation.

use crate::value::Value;

/// Orders two non-null values of comparable kinds (numbers with numbers, strings with
/// strings, bools with bools).
pub(crate) fn compare_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) | (Value::Timestamp(x), Value::Timestamp(y)) => {
            Some(x.cmp(y))
        }
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
