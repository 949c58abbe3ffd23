//! The `least` builtin (docs/functions.md#least): shares `scalar_math::extreme` with
//! `greatest`: nulls are skipped as in PostgreSQL, and the result stays an int or a duration
//! only when every argument is one.

use super::ExampleStatus::Passes;
use super::common::sig;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Least;

impl Function for Least {
    fn name(&self) -> &'static str {
        "least"
    }
    fn summary(&self) -> &'static str {
        "The smallest of its arguments, ignoring nulls (null only when all are null)."
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
            source: "expect least(recall(prediction, label), precision(prediction, label)) >= 0.8",
            description: "both recall and precision are at least 0.8: here recall is 0.8 and precision 1",
            rows: &[
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 0",
                "prediction: 0",
            ],
            labels: &[
                "label: 1", "label: 1", "label: 1", "label: 1", "label: 1", "label: 0",
            ],
            expect: Passes,
            ..Example::NO_ROWS
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        super::scalar_math::extreme("least", args, false)
    }
}
