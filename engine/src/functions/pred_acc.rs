//! The accumulator shared by `rate`, `all` and `any`: rows seen and rows where the predicate
//! holds (a null predicate counts as false).

use std::any::Any;

use arrow_array::{Array, ArrayRef};

use super::common::{Pred, arity, same};
use super::{Accumulator, EvalError, Outcome, RowSum, Side};

/// The sums a [`PredAcc`] is made of: its rows, and those where the predicate holds.
pub(crate) const PRED_SUMS: &[RowSum] = &[RowSum::Rows, RowSum::True(0)];

pub(crate) struct PredAcc {
    pub(crate) name: &'static str,
    pub(crate) rows: u64,
    pub(crate) trues: u64,
    pub(crate) finish: fn(u64, u64) -> Result<Outcome, EvalError>,
}

impl PredAcc {
    pub(crate) fn boxed(
        name: &'static str,
        finish: fn(u64, u64) -> Result<Outcome, EvalError>,
    ) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(PredAcc {
            name,
            rows: 0,
            trues: 0,
            finish,
        }))
    }
}

impl Accumulator for PredAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        self.rows += args[0].len() as u64;
        self.trues += Pred::new(self.name, &args[0])?.count_true();
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>(self.name, other)?;
        self.rows += o.rows;
        self.trues += o.trues;
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
            self.trues.checked_sub(o.trues),
        ) {
            (Some(rows), Some(trues)) => {
                (self.rows, self.trues) = (rows, trues);
                true
            }
            _ => false,
        }
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        (self.finish)(self.rows, self.trues)
    }
    /// `[rows, trues]`: [`PRED_SUMS`].
    fn add_sums(&mut self, sums: &[u64]) -> Result<(), EvalError> {
        match sums {
            [rows, trues] if trues <= rows => {
                self.rows += rows;
                self.trues += trues;
                Ok(())
            }
            _ => Err(EvalError::Invalid(format!(
                "{}: expected a row count and a count of true rows",
                self.name
            ))),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
