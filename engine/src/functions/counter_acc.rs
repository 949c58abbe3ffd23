//! The accumulator shared by `distinct`, `duplicate_rate` and `mode`: a count per distinct
//! non-null value.

use std::any::Any;

use arrow_array::ArrayRef;

use super::common::{Cat, Counter, arity, same};
use super::{Accumulator, EvalError, Outcome, Side};

pub(crate) struct CounterAcc {
    pub(crate) name: &'static str,
    pub(crate) counts: Counter,
    pub(crate) finish: fn(&Counter) -> Result<Outcome, EvalError>,
}

impl CounterAcc {
    pub(crate) fn boxed(
        name: &'static str,
        finish: fn(&Counter) -> Result<Outcome, EvalError>,
    ) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(CounterAcc {
            name,
            counts: Counter::default(),
            finish,
        }))
    }
}

impl Accumulator for CounterAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn held_bytes(&self) -> usize {
        self.counts.held_bytes()
    }
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        let cat = Cat::new(self.name, &args[0])?;
        self.counts.add_array(&cat, args[0].len());
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.counts.merge(&same::<Self>(self.name, other)?.counts);
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| self.counts.retract(&o.counts))
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        (self.finish)(&self.counts)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
