//! The `exp` builtin (docs/functions.md#exp): evaluated by `scalar_math::real_fn`, shared with
//! `ln` and `sqrt`.

use super::ExampleStatus::{Fails, Passes};
use super::common::sig;
use super::scalar_math::real_fn;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Exp;

impl Function for Exp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn summary(&self) -> &'static str {
        "e raised to x; null when the result overflows or x is null."
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
        &[
            Example {
                source: "expect all(exp(logit) > 0)",
                description: "every logit maps to a positive odds value",
                rows: &["logit: -2.5", "logit: 0.3", "logit: 4.1"],
                expect: Passes,
                ..Example::NO_ROWS
            },
            Example {
                source: "expect all(exp(logit) > 0)",
                description: "a logit of 800 overflows: its null odds count as false",
                rows: &["logit: 0.3", "logit: 800"],
                expect: Fails,
                ..Example::NO_ROWS
            },
        ]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        real_fn("exp", args, f64::exp)
    }
}
