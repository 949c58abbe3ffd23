//! The `stddev` builtin (docs/functions.md#stddev): on the `MomentsAcc` it shares with `mean`
//! and `variance`.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Moments, sig, undefined, value};
use super::moments_acc::MomentsAcc;
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Stddev;

impl Function for Stddev {
    fn name(&self) -> &'static str {
        "stddev"
    }
    fn summary(&self) -> &'static str {
        "The sample standard deviation (n - 1 in the denominator); undefined with fewer than 2 values."
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
            source: "expect stddev(income) within 20% of baseline.stddev(income)",
            description: "the spread of income did not change by more than 20%; it doubled",
            rows: &["income: 40000", "income: 50000", "income: 60000"],
            baseline: &["income: 45000", "income: 50000", "income: 55000"],
            expect: Fails,
            value: Some(Number(10000.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        MomentsAcc::boxed("stddev", finish)
    }
}

fn finish(m: &Moments) -> Result<Outcome, EvalError> {
    if m.n < 2 {
        return undefined(format!("stddev needs at least 2 values, got {}", m.n));
    }
    value((m.m2() / (m.n - 1) as f64).sqrt())
}
