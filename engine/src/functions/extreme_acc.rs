//! The accumulator shared by `min` and `max`: the extreme non-null value, kept as an int for
//! int columns so that the result has the column's type.

use std::any::Any;

use arrow_array::ArrayRef;

use super::common::{Num, arity, same, undefined};
use super::{Accumulator, EvalError, Outcome, Side};
use crate::value::Value;

pub(crate) struct ExtremeAcc {
    pub(crate) name: &'static str,
    pub(crate) max: bool,
    pub(crate) int: Option<i64>,
    pub(crate) float: Option<f64>,
}

impl ExtremeAcc {
    pub(crate) fn boxed(name: &'static str, max: bool) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(ExtremeAcc {
            name,
            max,
            int: None,
            float: None,
        }))
    }
    fn take_int(&mut self, v: i64) {
        self.int = Some(match self.int {
            Some(b) if self.max => b.max(v),
            Some(b) => b.min(v),
            None => v,
        });
    }
    fn take_float(&mut self, v: f64) {
        self.float = Some(match self.float {
            Some(b) if self.max => b.max(v),
            Some(b) => b.min(v),
            None => v,
        });
    }
}

impl Accumulator for ExtremeAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        let n = Num::new(self.name, &args[0])?;
        if n.is_int() {
            for i in 0..n.len() {
                if let Some(v) = n.get_int(i) {
                    self.take_int(v);
                }
            }
        } else {
            for i in 0..n.len() {
                if let Some(v) = n.get(i) {
                    self.take_float(v);
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let o = same::<Self>(self.name, other)?;
        if let Some(v) = o.int {
            self.take_int(v);
        }
        if let Some(v) = o.float {
            self.take_float(v);
        }
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        Ok(Outcome::Value(match (self.int, self.float) {
            (None, None) => return undefined(format!("{} of no values", self.name)),
            (Some(i), None) => Value::Int(i),
            (None, Some(f)) => Value::Float(f),
            (Some(i), Some(f)) => Value::Float(if self.max {
                f.max(i as f64)
            } else {
                f.min(i as f64)
            }),
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
