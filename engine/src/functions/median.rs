//! The `median` builtin (docs/functions.md#median): keeps every value (`ValuesAcc`, as
//! `quantile` does) and takes `quantile_sorted` at 0.5 of them sorted.

use std::any::Any;

use arrow_array::ArrayRef;

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{ValuesAcc, arity, quantile_sorted, same, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};

pub struct Median;

impl Function for Median {
    fn name(&self) -> &'static str {
        "median"
    }
    fn summary(&self) -> &'static str {
        "The median of the non-null values (mean of the two middle values for an even count, as numpy); undefined without values."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect median(latency_ms) < 50",
            description: "the typical request is served in under 50 ms; one slow request does not move the median",
            rows: &[
                "latency_ms: 12",
                "latency_ms: 30",
                "latency_ms: 45",
                "latency_ms: 400",
            ],
            expect: Passes,
            value: Some(Number(37.5)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(MedianAcc(ValuesAcc::default())))
    }
}

struct MedianAcc(ValuesAcc);

impl Accumulator for MedianAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn held_bytes(&self) -> usize {
        self.0.held_bytes()
    }
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("median", args, 1)?;
        self.0.push_array("median", &args[0])
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.0.merge(&same::<Self>("median", other)?.0);
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| self.0.retract(&o.0))
    }
    fn prepare(&mut self) {
        self.0.prepare();
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        if self.0.values.is_empty() {
            return undefined("median of no values");
        }
        value(quantile_sorted(&self.0.sorted_values(), 0.5))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
