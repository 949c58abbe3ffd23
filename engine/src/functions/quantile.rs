//! The `quantile` builtin (docs/functions.md#quantile): keeps every value (`ValuesAcc`, as
//! `median` does); `q` arrives as a constant argument column and must be the same on every row.

use std::any::Any;

use arrow_array::ArrayRef;

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Num, ValuesAcc, arity, quantile_sorted, same, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};

pub(crate) struct Quantile;

impl Function for Quantile {
    fn name(&self) -> &'static str {
        "quantile"
    }
    fn summary(&self) -> &'static str {
        "The q-quantile (0 <= q <= 1) of the non-null values, interpolating linearly as numpy's default; undefined without values."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[
                Param {
                    name: "x",
                    ty: ArgType::Numeric,
                },
                Param {
                    name: "q",
                    ty: ArgType::Probability,
                },
            ],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect quantile(income, 0.9) within 10% of baseline.quantile(income, 0.9)",
            description: "the 90th percentile of income moved by less than 10%; it fell from 52,000 to 46,000",
            rows: &[
                "income: 10000",
                "income: 20000",
                "income: 30000",
                "income: 40000",
                "income: 50000",
            ],
            baseline: &[
                "income: 10000",
                "income: 20000",
                "income: 30000",
                "income: 40000",
                "income: 60000",
            ],
            expect: Fails,
            value: Some(Number(46000.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(QuantileAcc {
            values: ValuesAcc::default(),
            q: None,
        }))
    }
}

struct QuantileAcc {
    values: ValuesAcc,
    /// `q` arrives as a (constant) argument column; it is unknown until a non-empty batch.
    q: Option<f64>,
}

impl QuantileAcc {
    fn set_q(&mut self, q: f64) -> Result<(), EvalError> {
        if !(0.0..=1.0).contains(&q) {
            return Err(EvalError::Invalid(format!(
                "quantile: q must be between 0 and 1, got {q}"
            )));
        }
        match self.q {
            Some(old) if old != q => Err(EvalError::Invalid(format!(
                "quantile: q must be the same on every row, got {old} and {q}"
            ))),
            _ => {
                self.q = Some(q);
                Ok(())
            }
        }
    }
}

impl Accumulator for QuantileAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn held_bytes(&self) -> usize {
        self.values.held_bytes()
    }
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("quantile", args, 2)?;
        let q = Num::new("quantile", &args[1])?;
        if let Some(q) = (0..q.len()).find_map(|i| q.get(i)) {
            self.set_q(q)?;
        }
        self.values.push_array("quantile", &args[0])
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>("quantile", other)?;
        if let Some(q) = o.q {
            self.set_q(q)?;
        }
        self.values.merge(&o.values);
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| self.values.retract(&o.values))
    }
    fn prepare(&mut self) {
        self.values.prepare();
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        let Some(q) = self.q.filter(|_| !self.values.values.is_empty()) else {
            return undefined("quantile of no values");
        };
        value(quantile_sorted(&self.values.sorted_values(), q))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
