//! The `brier` builtin (docs/functions.md#brier): on the mean of per-row terms (`PairMeanAcc`)
//! it shares with `log_loss`, `mae`, `rmse` and `mape`.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{PairMeanAcc, sig};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Brier;

impl Function for Brier {
    fn name(&self) -> &'static str {
        "brier"
    }
    fn summary(&self) -> &'static str {
        "Mean squared difference between the predicted probability and the outcome (1 for the positive class)."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[
                Param {
                    name: "score",
                    ty: ArgType::Numeric,
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
            source: "expect brier(score, label) < 0.1",
            description: "probabilities are close to outcomes; a confident 0.8 for a negative costs 0.64",
            rows: &["score: 0.9", "score: 0.2", "score: 0.8"],
            labels: &["label: 1", "label: 0", "label: 0"],
            expect: Fails,
            value: Some(Number(0.23)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PairMeanAcc::boxed("brier", true, |p, y| (p - y) * (p - y), |m| m)
    }
}
