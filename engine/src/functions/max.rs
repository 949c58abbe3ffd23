//! The `max` builtin (docs/functions.md#max): on the `ExtremeAcc` it shares with `min`.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::sig;
use super::extreme_acc::ExtremeAcc;
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Max;

impl Function for Max {
    fn name(&self) -> &'static str {
        "max"
    }
    fn summary(&self) -> &'static str {
        "The largest non-null value, of the column's type; undefined without values."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::SameAsArg(0),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect max(score) <= 1",
            description: "scores never exceed 1",
            rows: &["score: 0.3", "score: 0.95"],
            expect: Passes,
            value: Some(Number(0.95)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ExtremeAcc::boxed("max", true)
    }
}
