//! The `psi` builtin (docs/functions.md#psi): on the bins of `binning.rs`, shared with `js`,
//! which does not floor empty bins.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::value;
use super::common::{Sample, SampleMode, TwoSampleAcc, sig};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Psi;

impl Function for Psi {
    fn name(&self) -> &'static str {
        "psi"
    }
    fn summary(&self) -> &'static str {
        "Population stability index sum((p - q) ln(p / q)) over the baseline-decile bins (numeric) or the categories (string, bool); an empty bin counts as 0.0001."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::TwoSample,
            &[Param {
                name: "x",
                ty: ArgType::Any,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect psi(income) < 0.2",
            description: "no significant population shift of income; a rise of 10,000 empties the baseline's lowest decile",
            rows: &[
                "income: 20000",
                "income: 30000",
                "income: 40000",
                "income: 50000",
                "income: 60000",
                "income: 70000",
                "income: 80000",
                "income: 90000",
                "income: 100000",
                "income: 110000",
            ],
            baseline: &[
                "income: 10000",
                "income: 20000",
                "income: 30000",
                "income: 40000",
                "income: 50000",
                "income: 60000",
                "income: 70000",
                "income: 80000",
                "income: 90000",
                "income: 100000",
            ],
            expect: Fails,
            value: Some(Number(0.7593994704263101)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        TwoSampleAcc::boxed("psi", SampleMode::ByType, finish)
    }
}

fn finish(current: &Sample, baseline: &Sample) -> Result<Outcome, EvalError> {
    let (cur, base) = super::binning::bin_counts("psi", current, baseline)?;
    let (nc, nb) = (current.len() as f64, baseline.len() as f64);
    let prop = |c: f64, n: f64| if c == 0.0 { 0.0001 } else { c / n };
    let mut total = super::common::Sum::default();
    for (c, b) in cur.iter().zip(&base) {
        let (p, q) = (prop(*c, nc), prop(*b, nb));
        total.add((p - q) * (p / q).ln());
    }
    value(total.value())
}
