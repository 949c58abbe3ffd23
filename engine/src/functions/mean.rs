//! The `mean` builtin (docs/functions.md#mean): on the `MomentsAcc` it shares with `variance`
//! and `stddev`.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{Moments, sig, undefined, value};
use super::moments_acc::MomentsAcc;
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub struct Mean;

impl Function for Mean {
    fn name(&self) -> &'static str {
        "mean"
    }
    fn summary(&self) -> &'static str {
        "The arithmetic mean of the non-null values; undefined without values."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect mean(score) within 10% of baseline.mean(score)",
            description: "the mean score is within 10% of the baseline's: 0.65 against 0.7",
            rows: &["score: 0.6", "score: 0.7"],
            baseline: &["score: 0.6", "score: 0.8"],
            expect: Passes,
            value: Some(Number(0.65)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        MomentsAcc::boxed("mean", finish)
    }
}

fn finish(m: &Moments) -> Result<Outcome, EvalError> {
    if m.n == 0 {
        return undefined("mean of no values");
    }
    value(m.mean())
}
