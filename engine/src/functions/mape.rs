//! The `mape` builtin (docs/functions.md#mape): on the mean of per-row terms (`PairMeanAcc`) it
//! shares with `log_loss`, `brier`, `mae` and `rmse`.

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{PairMeanAcc, sig};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Mape;

impl Function for Mape {
    fn name(&self) -> &'static str {
        "mape"
    }
    fn summary(&self) -> &'static str {
        "Mean absolute percentage error, |actual - prediction| / max(|actual|, machine epsilon), as scikit-learn (a fraction, not a percent)."
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
            source: "expect mape(forecast, demand) < 15%",
            description: "forecasts are within 15% of demand on average",
            rows: &[
                "forecast: 110, demand: 100",
                "forecast: 90, demand: 100",
                "forecast: 200, demand: 250",
            ],
            expect: Passes,
            value: Some(Number(0.4 / 3.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PairMeanAcc::boxed(
            "mape",
            false,
            |p, a| (a - p).abs() / a.abs().max(f64::EPSILON),
            |m| m,
        )
    }
}
