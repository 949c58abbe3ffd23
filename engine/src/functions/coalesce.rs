//! The `coalesce` builtin (docs/functions.md#coalesce): evaluated row by row, so `coalesce(age,
//! 0)` fills a null before an aggregate would skip it or a predicate count it as false.

use super::ExampleStatus::Passes;
use super::common::sig;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Coalesce;

impl Function for Coalesce {
    fn name(&self) -> &'static str {
        "coalesce"
    }
    fn summary(&self) -> &'static str {
        "The first argument that is not null, or null when all are."
    }
    fn signature(&self) -> Signature {
        Signature {
            variadic: true,
            required: 1,
            ..sig(
                FunctionKind::Scalar,
                &[Param {
                    name: "x",
                    ty: ArgType::Any,
                }],
                ReturnType::SameAsArg(0),
            )
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect all(coalesce(age, 0) >= 0)",
            description: "ages are non-negative, a missing age counting as 0 (`all(age >= 0)` fails on the null)",
            rows: &["age: 34", "age: null"],
            expect: Passes,
            ..Example::NO_ROWS
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        Ok(args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null))
    }
}
