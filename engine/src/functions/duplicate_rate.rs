//! `duplicate_rate(x)`: The fraction of non-null values whose value occurs more than once.

use super::common::{Counter, sig};
#[allow(unused_imports)]
use super::common::{undefined, value};
use super::counter_acc::CounterAcc;
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub struct DuplicateRate;

impl Function for DuplicateRate {
    fn name(&self) -> &'static str {
        "duplicate_rate"
    }
    fn summary(&self) -> &'static str {
        "The fraction of non-null values whose value occurs more than once."
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
            source: "expect duplicate_rate(request_id) == 0",
            description: "no request id is reported twice",
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        CounterAcc::boxed("duplicate_rate", finish)
    }
}

fn finish(c: &Counter) -> Result<Outcome, EvalError> {
    if c.total == 0 {
        return undefined("no non-null values");
    }
    value(c.duplicated() as f64 / c.total as f64)
}
