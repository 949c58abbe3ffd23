//! The `precision` builtin (docs/functions.md#precision): on the confusion matrix
//! (`ConfusionAcc`) it shares with `accuracy`, `recall`, `f1` and `fpr`: a check's rows are
//! counted once for all five.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{Confusion, ConfusionAcc, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Precision;

impl Function for Precision {
    fn name(&self) -> &'static str {
        "precision"
    }
    fn summary(&self) -> &'static str {
        "TP / (TP + FP) for the positive class 1 / true; undefined when nothing is predicted positive."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[
                Param {
                    name: "prediction",
                    ty: ArgType::Label,
                },
                Param {
                    name: "label",
                    ty: ArgType::Label,
                },
            ],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect precision(prediction, label) >= 0.8",
            description: "at least 80% of flagged cases are real; four of five are",
            rows: &[
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 0",
            ],
            labels: &[
                "label: 1", "label: 1", "label: 1", "label: 1", "label: 0", "label: 0",
            ],
            expect: Passes,
            value: Some(Number(0.8)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ConfusionAcc::boxed("precision", finish)
    }
}

fn finish(c: &Confusion) -> Result<Outcome, EvalError> {
    if c.tp + c.fp == 0 {
        return undefined("no positive predictions");
    }
    value(c.tp as f64 / (c.tp + c.fp) as f64)
}
