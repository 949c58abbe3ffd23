//! The `min` builtin (docs/functions.md#min): on the `ExtremeAcc` it shares with `max`.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::sig;
use super::extreme_acc::ExtremeAcc;
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Min;

impl Function for Min {
    fn name(&self) -> &'static str {
        "min"
    }
    fn summary(&self) -> &'static str {
        "The smallest non-null value, of the column's type; undefined without values."
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
            source: "expect min(age) >= 0",
            description: "no negative age; one row has -1",
            rows: &["age: 34", "age: -1", "age: 51"],
            expect: Fails,
            value: Some(Number(-1.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ExtremeAcc::boxed("min", false)
    }
}
