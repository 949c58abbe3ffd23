//! The accumulator shared by `mean`, `variance` and `stddev`: count, exact sum and the sum of
//! squared deviations, mergeable.

use std::any::Any;

use arrow_array::ArrayRef;

use super::common::{Moments, Num, arity, same};
use super::{Accumulator, EvalError, Outcome, Side};

pub(crate) struct MomentsAcc {
    pub(crate) name: &'static str,
    pub(crate) m: Moments,
    pub(crate) finish: fn(&Moments) -> Result<Outcome, EvalError>,
}

impl MomentsAcc {
    pub(crate) fn boxed(
        name: &'static str,
        finish: fn(&Moments) -> Result<Outcome, EvalError>,
    ) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(MomentsAcc {
            name,
            m: Moments::default(),
            finish,
        }))
    }
}

impl Accumulator for MomentsAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        let n = Num::new(self.name, &args[0])?;
        for i in 0..n.len() {
            if let Some(x) = n.get(i) {
                self.m.add(x);
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.m.merge(&same::<Self>(self.name, other)?.m);
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        (self.finish)(&self.m)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
