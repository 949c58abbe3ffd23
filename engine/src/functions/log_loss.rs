//! The `log_loss` builtin (docs/functions.md#log_loss): on the mean of per-row terms
//! (`PairMeanAcc`) it shares with `brier`, `mae`, `rmse` and `mape`.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{PairMeanAcc, sig};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct LogLoss;

impl Function for LogLoss {
    fn name(&self) -> &'static str {
        "log_loss"
    }
    fn summary(&self) -> &'static str {
        "Mean cross-entropy of the predicted probability of the positive class, clipped to [1e-15, 1 - 1e-15]."
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
            source: "expect log_loss(score, label) < 0.3",
            description: "calibrated, confident predictions",
            rows: &["score: 0.9", "score: 0.2", "score: 0.8"],
            labels: &["label: 1", "label: 0", "label: 1"],
            expect: Passes,
            value: Some(Number(0.18388253942874858)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PairMeanAcc::boxed(
            "log_loss",
            true,
            |p, y| {
                let p = p.clamp(1e-15, 1.0 - 1e-15);
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            },
            |m| m,
        )
    }
}
