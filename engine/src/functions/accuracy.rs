//! `accuracy(prediction, label)`: The fraction of rows where the prediction equals the label (any classes); rows with a null side are skipped.

use super::common::{Confusion, ConfusionAcc, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub struct Accuracy;

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
            description: "95% of predictions are right",
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
