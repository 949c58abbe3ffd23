//! The `any` builtin (docs/functions.md#any): on the `PredAcc` it shares with `rate` and `all`:
//! true when the predicate held on some row.

use super::ExampleStatus::Fails;
use super::ExampleValue::Bool;
use super::common::sig;
use super::pred_acc::{PRED_SUMS, PredAcc};
use super::{
    Accumulator, ArgType, Example, Function, FunctionKind, Outcome, Param, ReturnType, Signature,
};
use crate::value::Value;

pub struct Any;

impl Function for Any {
    fn name(&self) -> &'static str {
        "any"
    }
    fn summary(&self) -> &'static str {
        "Whether the predicate holds on at least one row (null counts as false); false on no rows."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "predicate",
                ty: ArgType::Predicate,
            }],
            ReturnType::Bool,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect not any(status == \"failed\")",
            description: "no job reported a failure; the second did",
            rows: &["status: \"succeeded\"", "status: \"failed\""],
            expect: Fails,
            value: Some(Bool(true)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PredAcc::boxed("any", |_rows, trues| {
            Ok(Outcome::Value(Value::Bool(trues > 0)))
        })
    }
    fn row_sums(&self, args: usize) -> Option<&'static [super::RowSum]> {
        (args == 1).then_some(PRED_SUMS)
    }
}
