//! The `duplicate_rate` builtin (docs/functions.md#duplicate_rate): on the `HashedAcc` it
//! shares with `distinct`: values are counted by hash and compared for equality only within a
//! hash.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{sig, undefined, value};
use super::hashed_acc::HashedAcc;
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct DuplicateRate;

impl Function for DuplicateRate {
    fn name(&self) -> &'static str {
        "duplicate_rate"
    }
    fn summary(&self) -> &'static str {
        "The fraction of non-null values whose value occurs more than once."
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
            source: "expect duplicate_rate(request_id) == 0",
            description: "no request id is reported twice; `b` is, so two values of three are duplicates",
            rows: &[
                "request_id: \"a\"",
                "request_id: \"b\"",
                "request_id: \"b\"",
            ],
            expect: Fails,
            value: Some(Number(2.0 / 3.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(HashedAcc::boxed(
            "duplicate_rate",
            |_, total, duplicated| {
                if total == 0 {
                    return undefined("no non-null values");
                }
                value(duplicated as f64 / total as f64)
            },
        ))
    }
}
