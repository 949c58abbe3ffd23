//! `distinct(x)`: The number of distinct non-null values.

use super::common::{Counter, sig};
#[allow(unused_imports)]
use super::common::{undefined, value};
use super::counter_acc::CounterAcc;
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub struct Distinct;

impl Function for Distinct {
    fn name(&self) -> &'static str {
        "distinct"
    }
    fn summary(&self) -> &'static str {
        "The number of distinct non-null values."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Any,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect distinct(model_version) == 1",
            description: "a single model version serves the window",
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        CounterAcc::boxed("distinct", finish)
    }
}

fn finish(c: &Counter) -> Result<Outcome, EvalError> {
    value(c.distinct() as f64)
}
