//! The `r2` builtin (docs/functions.md#r2): one pass: the residuals' sum is compensated, and
//! the actual values' squared deviations come from `Moments`.

use std::any::Any;

use arrow_array::ArrayRef;

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::{Moments, Num, Sum, arity, same, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};

pub(crate) struct R2;

impl Function for R2 {
    fn name(&self) -> &'static str {
        "r2"
    }
    fn summary(&self) -> &'static str {
        "1 - SS_res / SS_tot over rows with both values, as scikit-learn's r2_score; undefined when the actual values are constant."
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
            source: "expect r2(predicted_price, price) >= 0.7",
            description: "the model explains at least 70% of the variance of prices",
            rows: &[
                "predicted_price: 110, price: 100",
                "predicted_price: 190, price: 200",
                "predicted_price: 310, price: 300",
            ],
            expect: Passes,
            value: Some(Number(0.985)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(R2Acc {
            ss_res: Sum::default(),
            actual: Moments::default(),
        }))
    }
}

struct R2Acc {
    ss_res: Sum,
    actual: Moments,
}

impl Accumulator for R2Acc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("r2", args, 2)?;
        let p = Num::new("r2", &args[0])?;
        let a = Num::new("r2", &args[1])?;
        for i in 0..p.len() {
            if let (Some(p), Some(a)) = (p.get(i), a.get(i)) {
                self.ss_res.add((a - p) * (a - p));
                self.actual.add(a);
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>("r2", other)?;
        self.ss_res.merge(&o.ss_res);
        self.actual.merge(&o.actual);
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        if self.actual.n == 0 {
            return undefined("no rows with both a prediction and an actual value");
        }
        let ss_tot = self.actual.m2();
        if ss_tot == 0.0 {
            return undefined("the actual values are constant");
        }
        value(1.0 - self.ss_res.value() / ss_tot)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
