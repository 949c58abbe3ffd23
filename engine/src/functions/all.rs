//! The `all` builtin (docs/functions.md#all): on the `PredAcc` it shares with `rate` and `any`:
//! true when the predicate holds on as many rows as were seen.

use super::ExampleStatus::Fails;
use super::ExampleValue::Bool;
use super::common::sig;
use super::pred_acc::{PRED_SUMS, PredAcc};
use super::{
    Accumulator, ArgType, Example, Function, FunctionKind, Outcome, Param, ReturnType, Signature,
};
use crate::value::Value;

pub struct All;

impl Function for All {
    fn name(&self) -> &'static str {
        "all"
    }
    fn summary(&self) -> &'static str {
        "Whether the predicate holds on every row (null counts as false); true on no rows."
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
            source: "expect all(age between 0 and 120)",
            description: "every age is plausible; 140 is not",
            rows: &["age: 34", "age: 140"],
            expect: Fails,
            value: Some(Bool(false)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PredAcc::boxed("all", |rows, trues| {
            Ok(Outcome::Value(Value::Bool(trues == rows)))
        })
    }
    fn row_sums(&self, args: usize) -> Option<&'static [super::RowSum]> {
        (args == 1).then_some(PRED_SUMS)
    }
}
