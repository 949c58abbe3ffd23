//! The `chi2` builtin (docs/functions.md#chi2): counts categories per side with
//! `binning::bin_counts` and tests the table with `stats::chi2_contingency`.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::undefined;
use super::common::{Sample, SampleMode, TwoSampleAcc, sig};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};
use crate::value::Value;

pub(crate) struct Chi2;

impl Function for Chi2 {
    fn name(&self) -> &'static str {
        "chi2"
    }
    fn summary(&self) -> &'static str {
        "Chi-squared test of independence on the 2 x k table of category counts (current, baseline), as scipy's chi2_contingency with correction=False; undefined with fewer than 2 categories."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::TwoSample,
            &[Param {
                name: "x",
                ty: ArgType::Categorical,
            }],
            ReturnType::Struct(&["statistic", "pvalue", "dof"]),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect chi2(country).pvalue > 0.01",
            description: "the country mix did not shift against the baseline (1% level)",
            rows: &[
                "country: \"US\"",
                "country: \"US\"",
                "country: \"DE\"",
                "country: \"FR\"",
            ],
            baseline: &[
                "country: \"US\"",
                "country: \"DE\"",
                "country: \"DE\"",
                "country: \"FR\"",
            ],
            expect: Passes,
            value: Some(Number(0.7165313105737893)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        TwoSampleAcc::boxed("chi2", SampleMode::Categorical, finish)
    }
}

fn finish(current: &Sample, baseline: &Sample) -> Result<Outcome, EvalError> {
    let (cur, base) = super::binning::bin_counts("chi2", current, baseline)?;
    if cur.len() < 2 {
        return undefined(format!(
            "chi2 needs at least 2 categories, got {}",
            cur.len()
        ));
    }
    let (stat, p, dof) = super::stats::chi2_contingency([&cur, &base]);
    Ok(Outcome::Value(Value::Struct(vec![
        ("statistic".into(), Value::Float(stat)),
        ("pvalue".into(), Value::Float(p)),
        ("dof".into(), Value::Float(dof)),
    ])))
}
