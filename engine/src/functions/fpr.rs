//! The `fpr` builtin (docs/functions.md#fpr): on the confusion matrix (`ConfusionAcc`) it
//! shares with `accuracy`, `precision`, `recall` and `f1`: a check's rows are counted once for
//! all five.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{Confusion, ConfusionAcc, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Fpr;

impl Function for Fpr {
    fn name(&self) -> &'static str {
        "fpr"
    }
    fn summary(&self) -> &'static str {
        "FP / (FP + TN), the false positive rate; undefined without negative labels."
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
            source: "expect fpr(prediction, label) < 2%",
            description: "fewer than 2% of legitimate cases are flagged; none of three is",
            rows: &[
                "prediction: 1",
                "prediction: 0",
                "prediction: 0",
                "prediction: 0",
            ],
            labels: &["label: 1", "label: 0", "label: 0", "label: 0"],
            expect: Passes,
            value: Some(Number(0.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        ConfusionAcc::boxed("fpr", finish)
    }
}

fn finish(c: &Confusion) -> Result<Outcome, EvalError> {
    if c.fp + c.tn == 0 {
        return undefined("no negative labels");
    }
    value(c.fp as f64 / (c.fp + c.tn) as f64)
}
