//! A typed view of one evaluated column (or a broadcast literal), so that row expressions
//! can be computed element by element without matching on Arrow types at every step.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType as ArrowType, TimeUnit};

use crate::functions::EvalError;
use crate::value::Value;

/// What kind of values a [`Col`] holds, as far as operators care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Bool,
    Str,
    Timestamp,
    Null,
}

/// One column of values, each possibly null. Literals are kept unbroadcast.
#[derive(Debug, Clone)]
pub(crate) enum Col {
    Int(Int64Array),
    Float(Float64Array),
    Bool(BooleanArray),
    /// Any string encoding Arrow offers; read through [`Col::str_at`].
    Str(ArrayRef),
    /// Microseconds since the epoch.
    Timestamp(Int64Array),
    /// The same value on every row.
    Lit(Value),
}

impl Col {
    /// Wraps an Arrow array, accepting the encodings a store may hand back.
    pub(crate) fn from_array(array: &ArrayRef) -> Result<Col, EvalError> {
        Ok(match array.data_type() {
            ArrowType::Int64 => Col::Int(array.as_primitive::<Int64Type>().clone()),
            ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 | ArrowType::UInt8 => {
                Col::Int(widen_int(array)?)
            }
            ArrowType::UInt16 | ArrowType::UInt32 | ArrowType::UInt64 => {
                Col::Int(widen_int(array)?)
            }
            ArrowType::Float64 => Col::Float(array.as_primitive::<Float64Type>().clone()),
            ArrowType::Float32 => Col::Float(
                array
                    .as_primitive::<arrow_array::types::Float32Type>()
                    .iter()
                    .map(|v| v.map(f64::from))
                    .collect(),
            ),
            ArrowType::Boolean => Col::Bool(array.as_boolean().clone()),
            ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => Col::Str(array.clone()),
            ArrowType::Timestamp(TimeUnit::Microsecond, _) => {
                let a = array.as_primitive::<TimestampMicrosecondType>();
                Col::Timestamp(a.reinterpret_cast::<Int64Type>())
            }
            ArrowType::Timestamp(unit, _) => {
                let scale: fn(i64) -> Option<i64> = match unit {
                    TimeUnit::Second => |v| v.checked_mul(1_000_000),
                    TimeUnit::Millisecond => |v| v.checked_mul(1_000),
                    TimeUnit::Nanosecond => |v| Some(v / 1_000),
                    TimeUnit::Microsecond => Some,
                };
                let ints = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<arrow_array::types::TimestampSecondType>()
                        .reinterpret_cast::<Int64Type>(),
                    TimeUnit::Millisecond => array
                        .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                        .reinterpret_cast::<Int64Type>(),
                    TimeUnit::Nanosecond => array
                        .as_primitive::<arrow_array::types::TimestampNanosecondType>()
                        .reinterpret_cast::<Int64Type>(),
                    TimeUnit::Microsecond => array
                        .as_primitive::<TimestampMicrosecondType>()
                        .reinterpret_cast::<Int64Type>(),
                };
                Col::Timestamp(ints.iter().map(|v| v.and_then(scale)).collect())
            }
            ArrowType::Null => Col::Lit(Value::Null),
            other => {
                return Err(EvalError::Invalid(format!(
                    "a column of Arrow type {other} cannot be evaluated; the store should hand back \
                     int64, float64, bool, utf8 or timestamp columns"
                )));
            }
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Col::Int(_) => Kind::Int,
            Col::Float(_) => Kind::Float,
            Col::Bool(_) => Kind::Bool,
            Col::Str(_) => Kind::Str,
            Col::Timestamp(_) => Kind::Timestamp,
            Col::Lit(v) => match v {
                Value::Null => Kind::Null,
                Value::Bool(_) => Kind::Bool,
                Value::Int(_) => Kind::Int,
                Value::Float(_) | Value::Duration(_) => Kind::Float,
                Value::Str(_) => Kind::Str,
                Value::Timestamp(_) => Kind::Timestamp,
                Value::Struct(_) => Kind::Null,
            },
        }
    }

    pub(crate) fn is_null_at(&self, i: usize) -> bool {
        match self {
            Col::Int(a) => a.is_null(i),
            Col::Float(a) => a.is_null(i),
            Col::Bool(a) => a.is_null(i),
            Col::Str(a) => a.is_null(i),
            Col::Timestamp(a) => a.is_null(i),
            Col::Lit(v) => v.is_null(),
        }
    }

    /// The value as a number (ints, floats and timestamps in microseconds; durations in
    /// seconds).
    pub(crate) fn f64_at(&self, i: usize) -> Option<f64> {
        match self {
            Col::Int(a) => (!a.is_null(i)).then(|| a.value(i) as f64),
            Col::Float(a) => (!a.is_null(i)).then(|| a.value(i)),
            Col::Timestamp(a) => (!a.is_null(i)).then(|| a.value(i) as f64),
            Col::Lit(v) => v.as_f64(),
            Col::Bool(_) | Col::Str(_) => None,
        }
    }

    pub(crate) fn i64_at(&self, i: usize) -> Option<i64> {
        match self {
            Col::Int(a) | Col::Timestamp(a) => (!a.is_null(i)).then(|| a.value(i)),
            Col::Lit(Value::Int(v)) | Col::Lit(Value::Timestamp(v)) => Some(*v),
            _ => None,
        }
    }

    pub(crate) fn bool_at(&self, i: usize) -> Option<bool> {
        match self {
            Col::Bool(a) => (!a.is_null(i)).then(|| a.value(i)),
            Col::Lit(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn str_at(&self, i: usize) -> Option<&str> {
        match self {
            Col::Str(a) => {
                if a.is_null(i) {
                    return None;
                }
                if let Some(s) = a.as_string_opt::<i32>() {
                    Some(s.value(i))
                } else if let Some(s) = a.as_string_opt::<i64>() {
                    Some(s.value(i))
                } else {
                    a.as_string_view_opt().map(|s| s.value(i))
                }
            }
            Col::Lit(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The value of one row, for scalar functions and slice keys.
    pub(crate) fn value_at(&self, i: usize) -> Value {
        match self {
            Col::Int(a) => opt(a.is_null(i), || Value::Int(a.value(i))),
            Col::Float(a) => opt(a.is_null(i), || Value::Float(a.value(i))),
            Col::Bool(a) => opt(a.is_null(i), || Value::Bool(a.value(i))),
            Col::Timestamp(a) => opt(a.is_null(i), || Value::Timestamp(a.value(i))),
            Col::Str(_) => self
                .str_at(i)
                .map_or(Value::Null, |s| Value::Str(s.to_string())),
            Col::Lit(v) => v.clone(),
        }
    }

    /// Materialises the column as an Arrow array of `len` rows.
    pub(crate) fn into_array(self, len: usize) -> ArrayRef {
        match self {
            Col::Int(a) => Arc::new(a),
            Col::Float(a) => Arc::new(a),
            Col::Bool(a) => Arc::new(a),
            Col::Str(a) => a,
            Col::Timestamp(a) => Arc::new(a.reinterpret_cast::<TimestampMicrosecondType>()),
            Col::Lit(v) => broadcast(&v, len),
        }
    }
}

fn opt(null: bool, f: impl FnOnce() -> Value) -> Value {
    if null { Value::Null } else { f() }
}

fn widen_int(array: &ArrayRef) -> Result<Int64Array, EvalError> {
    use arrow_array::types::*;
    let out: Int64Array = match array.data_type() {
        ArrowType::Int8 => array
            .as_primitive::<Int8Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        ArrowType::Int16 => array
            .as_primitive::<Int16Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        ArrowType::Int32 => array
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        ArrowType::UInt8 => array
            .as_primitive::<UInt8Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        ArrowType::UInt16 => array
            .as_primitive::<UInt16Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        ArrowType::UInt32 => array
            .as_primitive::<UInt32Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        ArrowType::UInt64 => array
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.and_then(|v| i64::try_from(v).ok()))
            .collect(),
        other => {
            return Err(EvalError::Invalid(format!(
                "{other} is not an integer type"
            )));
        }
    };
    Ok(out)
}

/// An array of `len` copies of a value.
pub(crate) fn broadcast(v: &Value, len: usize) -> ArrayRef {
    match v {
        Value::Null | Value::Struct(_) => Arc::new(arrow_array::NullArray::new(len)),
        Value::Bool(b) => Arc::new(BooleanArray::from(vec![*b; len])),
        Value::Int(i) => Arc::new(Int64Array::from_value(*i, len)),
        Value::Float(f) | Value::Duration(f) => Arc::new(Float64Array::from_value(*f, len)),
        Value::Str(s) => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, len))),
        Value::Timestamp(t) => Arc::new(TimestampMicrosecondArray::from_value(*t, len)),
    }
}
