//! `greatest(x, ...)`: The largest of its arguments, ignoring nulls (null only when all are null).

use super::common::sig;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub struct Greatest;

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
            description: "neither column has 1% or more nulls",
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        super::scalar_math::extreme("greatest", args, true)
    }
}
