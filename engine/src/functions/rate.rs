//! The `rate` builtin (docs/functions.md#rate): on the `PredAcc` it shares with `all` and
//! `any`: rows seen and rows where the predicate holds.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::sig;
use super::common::{undefined, value};
use super::pred_acc::{PRED_SUMS, PredAcc};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Rate;

impl Function for Rate {
    fn name(&self) -> &'static str {
        "rate"
    }
    fn summary(&self) -> &'static str {
        "The fraction of all rows of the slice where the predicate holds (null counts as false)."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "predicate",
                ty: ArgType::Predicate,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect rate(score between 0 and 1) >= 99%",
            description: "at least 99% of scores lie in [0, 1]; one of four does not",
            rows: &["score: 0.2", "score: 0.9", "score: 1.3", "score: 0.5"],
            expect: Fails,
            value: Some(Number(0.75)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PredAcc::boxed("rate", |rows, trues| {
            if rows == 0 {
                undefined("no rows")
            } else {
                value(trues as f64 / rows as f64)
            }
        })
    }
    fn row_sums(&self, args: usize) -> Option<&'static [super::RowSum]> {
        (args == 1).then_some(PRED_SUMS)
    }
}
