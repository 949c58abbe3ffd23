//! The `ks` builtin (docs/functions.md#ks): keeps both samples (`TwoSampleAcc`); the statistic
//! and its p-value come from `stats::ks_2samp`, which follows scipy step by step.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Sample, SampleMode, TwoSampleAcc, sig};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};
use crate::value::Value;

pub(crate) struct Ks;

impl Function for Ks {
    fn name(&self) -> &'static str {
        "ks"
    }
    fn summary(&self) -> &'static str {
        "Two-sample Kolmogorov-Smirnov test of the current against the baseline values, as scipy's ks_2samp (two-sided, method auto: exact p-value up to 10000 values per side, asymptotic beyond)."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::TwoSample,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::Struct(&["statistic", "pvalue"]),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect ks(income).pvalue > 0.01",
            description: "income is not distributed differently from the baseline (1% level); every income is now above every baseline income",
            rows: &[
                "income: 61000",
                "income: 64000",
                "income: 68000",
                "income: 72000",
                "income: 75000",
            ],
            baseline: &[
                "income: 40000",
                "income: 45000",
                "income: 50000",
                "income: 52000",
                "income: 58000",
            ],
            expect: Fails,
            value: Some(Number(2.0 / 252.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        TwoSampleAcc::boxed("ks", SampleMode::Numeric, finish)
    }
}

fn finish(current: &Sample, baseline: &Sample) -> Result<Outcome, EvalError> {
    let (a, b) = (current.sorted_nums(), baseline.sorted_nums());
    let (d, p) = super::stats::ks_2samp(&a, &b);
    Ok(Outcome::Value(Value::Struct(vec![
        ("statistic".into(), Value::Float(d)),
        ("pvalue".into(), Value::Float(p)),
    ])))
}
