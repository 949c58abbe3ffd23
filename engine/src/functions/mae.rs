//! The `mae` builtin (docs/functions.md#mae): on the mean of per-row terms (`PairMeanAcc`) it
//! shares with `log_loss`, `brier`, `rmse` and `mape`.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{PairMeanAcc, sig};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Mae;

impl Function for Mae {
    fn name(&self) -> &'static str {
        "mae"
    }
    fn summary(&self) -> &'static str {
        "Mean absolute error between prediction and actual value."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[
                Param {
                    name: "prediction",
                    ty: ArgType::Numeric,
                },
                Param {
                    name: "actual",
                    ty: ArgType::Numeric,
                },
            ],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect mae(predicted_eta, actual_eta) < 120",
            description: "ETAs are off by less than 2 minutes on average",
            rows: &[
                "predicted_eta: 600, actual_eta: 660",
                "predicted_eta: 900, actual_eta: 780",
                "predicted_eta: 300, actual_eta: 330",
            ],
            expect: Passes,
            value: Some(Number(70.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PairMeanAcc::boxed("mae", false, |p, a| (p - a).abs(), |m| m)
    }
}
