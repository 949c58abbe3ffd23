//! The `null_rate` builtin (docs/functions.md#null_rate): its own counter rather than Arrow's
//! null count, which does not see the NaN of a float column.

use std::any::Any;

use arrow_array::{Array, ArrayRef};

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Cat, arity, same, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    RowSum, Side, Signature,
};

pub(crate) struct NullRate;

impl Function for NullRate {
    fn name(&self) -> &'static str {
        "null_rate"
    }
    fn summary(&self) -> &'static str {
        "The fraction of rows where the value is null (NaN counts as null, as in pandas)."
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
            source: "expect null_rate(income) < 5%",
            description: "fewer than 5% of rows lack an income; one of four does",
            rows: &[
                "income: 52000",
                "income: null",
                "income: 48000",
                "income: 61000",
            ],
            expect: Fails,
            value: Some(Number(0.25)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(NullRateAcc { rows: 0, nulls: 0 }))
    }
    fn row_sums(&self, args: usize) -> Option<&'static [RowSum]> {
        (args == 1).then_some(&[RowSum::Rows, RowSum::Null(0)])
    }
}

struct NullRateAcc {
    rows: u64,
    nulls: u64,
}

impl Accumulator for NullRateAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("null_rate", args, 1)?;
        let a = &args[0];
        self.rows += a.len() as u64;
        match Cat::new("null_rate", a)? {
            Cat::Num(n) if !n.is_int() => {
                self.nulls += (0..a.len()).filter(|&i| n.get(i).is_none()).count() as u64;
            }
            _ => self.nulls += a.null_count() as u64,
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>("null_rate", other)?;
        self.rows += o.rows;
        self.nulls += o.nulls;
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        let Some(o) = other.as_any().downcast_ref::<Self>() else {
            return false;
        };
        match (
            self.rows.checked_sub(o.rows),
            self.nulls.checked_sub(o.nulls),
        ) {
            (Some(rows), Some(nulls)) => {
                (self.rows, self.nulls) = (rows, nulls);
                true
            }
            _ => false,
        }
    }
    /// `[rows, nulls]`.
    fn add_sums(&mut self, sums: &[u64]) -> Result<(), EvalError> {
        match sums {
            [rows, nulls] if nulls <= rows => {
                self.rows += rows;
                self.nulls += nulls;
                Ok(())
            }
            _ => Err(EvalError::Invalid(
                "null_rate: expected a row count and a count of null rows".into(),
            )),
        }
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        if self.rows == 0 {
            return undefined("no rows");
        }
        value(self.nulls as f64 / self.rows as f64)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
