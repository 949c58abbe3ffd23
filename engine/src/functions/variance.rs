//! The `variance` builtin (docs/functions.md#variance): on the `MomentsAcc` it shares with
//! `mean` and `stddev`, whose sum of squared deviations is merged exactly across batches.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Moments, sig, undefined, value};
use super::moments_acc::MomentsAcc;
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Variance;

impl Function for Variance {
    fn name(&self) -> &'static str {
        "variance"
    }
    fn summary(&self) -> &'static str {
        "The sample variance (n - 1 in the denominator); undefined with fewer than 2 values."
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
            source: "expect variance(score) > 0",
            description: "the model does not return a constant score; this one does",
            rows: &["score: 0.5", "score: 0.5", "score: 0.5"],
            expect: Fails,
            value: Some(Number(0.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        MomentsAcc::boxed("variance", finish)
    }
}

fn finish(m: &Moments) -> Result<Outcome, EvalError> {
    if m.n < 2 {
        return undefined(format!("variance needs at least 2 values, got {}", m.n));
    }
    value(m.m2() / (m.n - 1) as f64)
}
