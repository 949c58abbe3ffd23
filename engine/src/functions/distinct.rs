//! The `distinct` builtin (docs/functions.md#distinct): on the `HashedAcc` it shares with
//! `duplicate_rate`: values are counted by hash and compared for equality only within a hash.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{sig, value};
use super::hashed_acc::HashedAcc;
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Distinct;

impl Function for Distinct {
    fn name(&self) -> &'static str {
        "distinct"
    }
    fn summary(&self) -> &'static str {
        "The number of distinct non-null values."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Any,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect distinct(model_version) == 1",
            description: "a single model version serves the window; v4 started serving beside v3",
            rows: &[
                "model_version: \"v3\"",
                "model_version: \"v3\"",
                "model_version: \"v4\"",
            ],
            expect: Fails,
            value: Some(Number(2.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(HashedAcc::boxed("distinct", |distinct, _, _| {
            value(distinct as f64)
        }))
    }
}
