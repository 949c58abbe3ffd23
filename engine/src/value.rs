//! Scalar values: literals in plans, aggregate results, and the numbers in result JSON.

use serde::Serialize;

/// One value. Timestamps are microseconds since the Unix epoch (UTC); durations are seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Timestamp(i64),
    Duration(f64),
    /// A result with named fields, such as `ks(x)` (`statistic`, `pvalue`).
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// The value as a number, when it is one (bools are not numbers here).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Duration(d) => Some(*d),
            Value::Timestamp(t) => Some(*t as f64),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// A field of a struct value, e.g. `pvalue` of `ks(x)`.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}
