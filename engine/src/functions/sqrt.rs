//! The `sqrt` builtin (docs/functions.md#sqrt): evaluated by `scalar_math::real_fn`, shared
//! with `ln` and `exp`.

use super::ExampleStatus::Fails;
use super::common::sig;
use super::scalar_math::real_fn;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Sqrt;

impl Function for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn summary(&self) -> &'static str {
        "Square root; null for x < 0 or a null x."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Scalar,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect sqrt(variance(score)) < 0.3",
            description: "the spread of the score, in its own unit, stays below 0.3; these scores spread by 0.36",
            rows: &["score: 0.2", "score: 0.4", "score: 0.9"],
            expect: Fails,
            ..Example::NO_ROWS
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        real_fn("sqrt", args, f64::sqrt)
    }
}
