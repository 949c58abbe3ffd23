//! The `f1` builtin (docs/functions.md#f1): on the confusion matrix (`ConfusionAcc`) it shares
//! with `accuracy`, `precision`, `recall` and `fpr`: a check's rows are counted once for all
//! five.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{Confusion, ConfusionAcc, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct F1;

impl Function for F1 {
    fn name(&self) -> &'static str {
        "f1"
    }
    fn summary(&self) -> &'static str {
        "2TP / (2TP + FP + FN), the harmonic mean of precision and recall; undefined with no positive prediction or label."
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
            source: "expect f1(prediction, label) >= 0.85",
            description: "precision and recall together stay high: precision 1, recall 0.8",
            rows: &[
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 1",
                "prediction: 0",
            ],
            labels: &["label: 1", "label: 1", "label: 1", "label: 1", "label: 1"],
            expect: Passes,
            value: Some(Number(8.0 / 9.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ConfusionAcc::boxed("f1", finish)
    }
}

fn finish(c: &Confusion) -> Result<Outcome, EvalError> {
    let den = 2 * c.tp + c.fp + c.fn_;
    if den == 0 {
        return undefined("no positive predictions and no positive labels");
    }
    value((2 * c.tp) as f64 / den as f64)
}
