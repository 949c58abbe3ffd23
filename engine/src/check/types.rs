//! The checker's expression types: column types plus what only aggregates produce
//! (durations, results with fields), and the compatibility rules between them.

use crate::functions::{ArgType, ReturnType};
use crate::schema::DataType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Float,
    Bool,
    Str,
    Timestamp,
    /// Seconds; only aggregates (`freshness()`) and duration literals have it.
    Duration,
    /// The `null` literal: fits anywhere.
    Null,
    /// A result with named numeric fields, such as `ks(x)`.
    Struct(&'static [&'static str]),
}

impl Ty {
    pub(crate) fn from_data(t: DataType) -> Ty {
        match t {
            DataType::Int => Ty::Int,
            DataType::Float => Ty::Float,
            DataType::Bool => Ty::Bool,
            DataType::String => Ty::Str,
            DataType::Timestamp => Ty::Timestamp,
        }
    }
    /// The column type of a row-level value; `None` for null (and for what rows cannot hold).
    pub(crate) fn to_data(self) -> Option<DataType> {
        match self {
            Ty::Int => Some(DataType::Int),
            Ty::Float => Some(DataType::Float),
            Ty::Bool => Some(DataType::Bool),
            Ty::Str => Some(DataType::String),
            Ty::Timestamp => Some(DataType::Timestamp),
            Ty::Duration | Ty::Null | Ty::Struct(_) => None,
        }
    }
    pub(crate) fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }
    /// How the type reads in a message: "a number", "a string".
    pub fn describe(self) -> String {
        match self {
            Ty::Int | Ty::Float => "a number".into(),
            Ty::Bool => "a condition (true or false)".into(),
            Ty::Str => "a string".into(),
            Ty::Timestamp => "a timestamp".into(),
            Ty::Duration => "a duration".into(),
            Ty::Null => "`null`".into(),
            Ty::Struct(fields) => format!(
                "a result with fields {}",
                fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Whether two values can be ordered (`<`, `between`) or, with `equality`, compared with
/// `==`/`in`. Null is handled by the caller.
pub(crate) fn comparable(a: Ty, b: Ty, equality: bool) -> bool {
    match (a, b) {
        (x, y) if x.is_numeric() && y.is_numeric() => true,
        (Ty::Str, Ty::Str) | (Ty::Timestamp, Ty::Timestamp) | (Ty::Duration, Ty::Duration) => true,
        (Ty::Bool, Ty::Bool) => equality,
        _ => false,
    }
}

/// Whether a value of type `t` may be passed where `want` is expected.
pub(crate) fn accepts(want: ArgType, t: Ty) -> bool {
    if t == Ty::Null {
        return true;
    }
    match want {
        ArgType::Numeric | ArgType::Probability => t.is_numeric(),
        ArgType::Predicate => t == Ty::Bool,
        ArgType::Label => matches!(t, Ty::Int | Ty::Bool),
        ArgType::Categorical => matches!(t, Ty::Str | Ty::Bool | Ty::Int),
        ArgType::Any => !matches!(t, Ty::Struct(_)),
    }
}

pub(crate) fn describe_arg(want: ArgType) -> &'static str {
    match want {
        ArgType::Numeric => "a number (an int or float column or expression)",
        ArgType::Predicate => "a condition such as `age >= 0`",
        ArgType::Label => "a label: an int or bool column (positive class 1 / true)",
        ArgType::Categorical => "a categorical column (string, bool or int)",
        ArgType::Probability => "a number literal between 0 and 1",
        ArgType::Any => "a column or expression",
    }
}

/// What a plugin parameter of column type `want` accepts: plugins receive numbers (f64), so
/// ints and floats are interchangeable and a bool column passes as 0/1.
pub(crate) fn plugin_accepts(want: DataType, t: Ty) -> bool {
    match want {
        DataType::Int | DataType::Float => t.is_numeric() || t == Ty::Null,
        DataType::Bool => matches!(t, Ty::Bool | Ty::Int | Ty::Null),
        other => Ty::from_data(other) == t || t == Ty::Null,
    }
}

/// The type a function returns, given its argument types.
pub(crate) fn return_type(ret: ReturnType, args: &[Ty]) -> Ty {
    match ret {
        ReturnType::Number => Ty::Float,
        ReturnType::Duration => Ty::Duration,
        ReturnType::Bool => Ty::Bool,
        ReturnType::SameAsArg(i) => args.get(i).copied().unwrap_or(Ty::Null),
        ReturnType::Struct(fields) => Ty::Struct(fields),
    }
}
