//! Scalar functions on single values (`abs`, `ln`, `coalesce`, ...), used both on rows and on
//! aggregate values: each is the registry's, in its own file under `functions/`; nothing here
//! repeats their semantics.

use crate::functions::{self, EvalError, FunctionKind};
use crate::value::Value;

/// Calls the scalar function `name` on one set of argument values.
pub fn call_scalar(name: &str, args: &[Value]) -> Result<Value, EvalError> {
    if let Some(f) = functions::lookup(name)
        && f.signature().kind == FunctionKind::Scalar
    {
        return f.call_scalar(args);
    }
    Err(EvalError::Invalid(format!(
        "`{name}` is not a known scalar function"
    )))
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
