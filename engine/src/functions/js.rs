//! The `js` builtin (docs/functions.md#js): on the bins of `psi`; the proportions are
//! normalised a second time, as scipy does, so the last bits agree.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::value;
use super::common::{Sample, SampleMode, TwoSampleAcc, sig};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Js;

impl Function for Js {
    fn name(&self) -> &'static str {
        "js"
    }
    fn summary(&self) -> &'static str {
        "Jensen-Shannon distance (base 2) between the current and baseline bin proportions (the bins of psi, no flooring), as scipy's jensenshannon."
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
            source: "expect js(country) < 0.1",
            description: "the country mix stays close to the baseline's; a quarter of it moved from DE to US",
            rows: &[
                "country: \"US\"",
                "country: \"US\"",
                "country: \"US\"",
                "country: \"DE\"",
            ],
            baseline: &[
                "country: \"US\"",
                "country: \"US\"",
                "country: \"DE\"",
                "country: \"DE\"",
            ],
            expect: Fails,
            value: Some(Number(0.22089576884901735)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        TwoSampleAcc::boxed("js", SampleMode::ByType, finish)
    }
}

fn finish(current: &Sample, baseline: &Sample) -> Result<Outcome, EvalError> {
    let (cur, base) = super::binning::bin_counts("js", current, baseline)?;
    let (nc, nb) = (current.len() as f64, baseline.len() as f64);
    // scipy divides the proportions by their sum again; doing the same keeps the last bits.
    let p: Vec<f64> = cur.iter().map(|c| c / nc).collect();
    let q: Vec<f64> = base.iter().map(|b| b / nb).collect();
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let (mut left, mut right) = (0.0, 0.0);
    for (p, q) in p.iter().zip(&q) {
        let (p, q) = (p / sp, q / sq);
        let m = (p + q) / 2.0;
        left += rel_entr(p, m);
        right += rel_entr(q, m);
    }
    let js = (left + right) / std::f64::consts::LN_2;
    value((js / 2.0).max(0.0).sqrt())
}
