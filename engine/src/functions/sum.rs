//! The `sum` builtin (docs/functions.md#sum): int columns add up in an `i128`, float columns by
//! compensated (Neumaier) summation, so the result does not depend on the order of rows.

use std::any::Any;

use arrow_array::ArrayRef;

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Num, Sum as FloatSum, arity, same, sig, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};

pub struct Sum;

impl Function for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn summary(&self) -> &'static str {
        "The sum of the non-null values (0 when there are none, as numpy); ints are summed exactly."
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
            source: "expect sum(failed_jobs) == 0",
            description: "no batch job failed in the window; one batch reports 2",
            rows: &["failed_jobs: 0", "failed_jobs: 2", "failed_jobs: null"],
            expect: Fails,
            value: Some(Number(2.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(SumAcc {
            ints: 0,
            floats: FloatSum::default(),
        }))
    }
}

struct SumAcc {
    /// Integer columns are summed exactly; i128 cannot overflow on any realistic row count.
    ints: i128,
    floats: FloatSum,
}

impl Accumulator for SumAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("sum", args, 1)?;
        let n = Num::new("sum", &args[0])?;
        if n.is_int() {
            for i in 0..n.len() {
                if let Some(v) = n.get_int(i) {
                    self.ints += i128::from(v);
                }
            }
        } else {
            for i in 0..n.len() {
                if let Some(v) = n.get(i) {
                    self.floats.add(v);
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>("sum", other)?;
        self.ints += o.ints;
        self.floats.merge(&o.floats);
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        let mut total = self.floats;
        total.add(self.ints as f64);
        value(total.value())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
