//! The `greatest` builtin (docs/functions.md#greatest): shares `scalar_math::extreme` with
//! `least`: nulls are skipped as in PostgreSQL, and the result stays an int or a duration only
//! when every argument is one.

use super::ExampleStatus::Fails;
use super::common::sig;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Greatest;

impl Function for Greatest {
    fn name(&self) -> &'static str {
        "greatest"
    }
    fn summary(&self) -> &'static str {
        "The largest of its arguments, ignoring nulls (null only when all are null)."
    }
    fn signature(&self) -> Signature {
        Signature {
            variadic: true,
            required: 1,
            ..sig(
                FunctionKind::Scalar,
                &[Param {
                    name: "x",
                    ty: ArgType::Numeric,
                }],
                ReturnType::SameAsArg(0),
            )
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect greatest(null_rate(age), null_rate(income)) < 1%",
            description: "neither column has 1% or more nulls; one income of two is missing",
            rows: &["age: 34, income: 52000", "age: 51, income: null"],
            expect: Fails,
            ..Example::NO_ROWS
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        super::scalar_math::extreme("greatest", args, true)
    }
}
