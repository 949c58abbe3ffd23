//! The `wasserstein` builtin (docs/functions.md#wasserstein): keeps both samples
//! (`TwoSampleAcc`) and walks their sorted values together in `stats::wasserstein`, as scipy
//! does.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::value;
use super::common::{Sample, SampleMode, TwoSampleAcc, sig};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Wasserstein;

impl Function for Wasserstein {
    fn name(&self) -> &'static str {
        "wasserstein"
    }
    fn summary(&self) -> &'static str {
        "The first Wasserstein (earth mover's) distance between the current and the baseline values, as scipy's wasserstein_distance."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::TwoSample,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect wasserstein(score) < 0.05",
            description: "the score distribution moved by less than 0.05 on average",
            rows: &["score: 0.2", "score: 0.4", "score: 0.6"],
            baseline: &["score: 0.22", "score: 0.42", "score: 0.62"],
            expect: Passes,
            value: Some(Number(0.02)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        TwoSampleAcc::boxed("wasserstein", SampleMode::Numeric, finish)
    }
}

fn finish(current: &Sample, baseline: &Sample) -> Result<Outcome, EvalError> {
    let (a, b) = (current.sorted_nums(), baseline.sorted_nums());
    value(super::stats::wasserstein(&a, &b))
}
