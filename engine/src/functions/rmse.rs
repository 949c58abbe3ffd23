//! The `rmse` builtin (docs/functions.md#rmse): on the mean of per-row terms (`PairMeanAcc`) it
//! shares with `log_loss`, `brier`, `mae` and `mape`.

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{PairMeanAcc, sig};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub(crate) struct Rmse;

impl Function for Rmse {
    fn name(&self) -> &'static str {
        "rmse"
    }
    fn summary(&self) -> &'static str {
        "Root mean squared error between prediction and actual value."
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
            source: "expect rmse(predicted_price, price) within 10% of baseline.rmse(predicted_price, price)",
            description: "the error did not grow by more than 10%; it grew from 8 to 10",
            rows: &[
                "predicted_price: 100, price: 110",
                "predicted_price: 200, price: 190",
            ],
            baseline: &[
                "predicted_price: 100, price: 108",
                "predicted_price: 200, price: 192",
            ],
            expect: Fails,
            value: Some(Number(10.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PairMeanAcc::boxed("rmse", false, |p, a| (p - a) * (p - a), f64::sqrt)
    }
}
