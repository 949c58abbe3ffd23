//! `brier(score, label)`: Mean squared difference between the predicted probability and the outcome (1 for the positive class).

use super::common::{PairMeanAcc, sig};
use super::{Accumulator, ArgType, Example, Function, FunctionKind, Param, ReturnType, Signature};

pub struct Brier;

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
            description: "probabilities are close to outcomes",
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        PairMeanAcc::boxed("brier", true, |p, y| (p - y) * (p - y), |m| m)
    }
}
