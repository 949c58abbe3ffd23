//! The `recall` builtin (docs/functions.md#recall): on the confusion matrix (`ConfusionAcc`) it
//! shares with `accuracy`, `precision`, `f1` and `fpr`: a check's rows are counted once for all
//! five.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Confusion, ConfusionAcc, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Recall;

impl Function for Recall {
    fn name(&self) -> &'static str {
        "recall"
    }
    fn summary(&self) -> &'static str {
        "TP / (TP + FN) for the positive class 1 / true; undefined without positive labels."
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
            source: "expect recall(prediction, label) >= 0.9",
            description: "at least 90% of real cases are caught; two of three are",
            rows: &[
                "prediction: 1",
                "prediction: 1",
                "prediction: 0",
                "prediction: 0",
            ],
            labels: &["label: 1", "label: 1", "label: 1", "label: 0"],
            expect: Fails,
            value: Some(Number(2.0 / 3.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ConfusionAcc::boxed("recall", finish)
    }
}

fn finish(c: &Confusion) -> Result<Outcome, EvalError> {
    if c.tp + c.fn_ == 0 {
        return undefined("no positive labels");
    }
    value(c.tp as f64 / (c.tp + c.fn_) as f64)
}
