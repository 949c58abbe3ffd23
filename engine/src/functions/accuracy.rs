//! The `accuracy` builtin (docs/functions.md#accuracy): on the confusion matrix
//! (`ConfusionAcc`) it shares with `precision`, `recall`, `f1` and `fpr`: a check's rows are
//! counted once for all five.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Confusion, ConfusionAcc, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Accuracy;

impl Function for Accuracy {
    fn name(&self) -> &'static str {
        "accuracy"
    }
    fn summary(&self) -> &'static str {
        "The fraction of rows where the prediction equals the label (any classes); rows with a null side are skipped."
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
            source: "expect accuracy(prediction, label) >= 0.95",
            description: "95% of predictions are right; three of four are",
            rows: &[
                "prediction: 1",
                "prediction: 0",
                "prediction: 1",
                "prediction: 0",
            ],
            labels: &["label: 1", "label: 0", "label: 0", "label: 0"],
            expect: Fails,
            value: Some(Number(0.75)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ConfusionAcc::boxed("accuracy", finish)
    }
}

fn finish(c: &Confusion) -> Result<Outcome, EvalError> {
    if c.n == 0 {
        return undefined("no rows with both a prediction and a label");
    }
    value(c.equal as f64 / c.n as f64)
}
