//! The `count` builtin (docs/functions.md#count): without a predicate it has no argument column
//! to count, so it asks for the event-time column (`wants_time`), present on every row.

use std::any::Any;

use arrow_array::{Array, ArrayRef, BooleanArray};

use super::ExampleStatus::{Fails, Passes};
use super::ExampleValue::Number;
use super::common::{Pred, same, sig, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    RowSum, Side, Signature,
};

pub(crate) struct Count;

impl Function for Count {
    fn name(&self) -> &'static str {
        "count"
    }
    fn summary(&self) -> &'static str {
        "The number of rows, or with a predicate the number of rows where it holds (null counts as false)."
    }
    fn signature(&self) -> Signature {
        // `count()` has no argument column to learn the number of rows from, so it asks for
        // the event-time column (present on every row) like `latest` does.
        Signature {
            required: 0,
            wants_time: true,
            ..sig(
                FunctionKind::Aggregate,
                &[Param {
                    name: "predicate",
                    ty: ArgType::Predicate,
                }],
                ReturnType::Number,
            )
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                source: "expect count() >= 1000",
                description: "at least 1000 rows in the window; three are not enough",
                rows: &["age: 34", "age: 51", "age: 27"],
                expect: Fails,
                value: Some(Number(3.0)),
                ..Example::NO_ROWS
            },
            Example {
                source: "expect count(age < 0) == 0",
                description: "no row has a negative age; a null age counts as false, not as negative",
                rows: &["age: 34", "age: null", "age: 51"],
                expect: Passes,
                value: Some(Number(0.0)),
                ..Example::NO_ROWS
            },
        ]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(CountAcc { n: 0 }))
    }
    fn row_sums(&self, args: usize) -> Option<&'static [RowSum]> {
        match args {
            0 => Some(&[RowSum::Rows]),
            1 => Some(&[RowSum::True(0)]),
            _ => None,
        }
    }
}

struct CountAcc {
    n: u64,
}

impl Accumulator for CountAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        // The predicate is the only boolean argument; any other first argument is the
        // appended time column and every row counts.
        match args.first() {
            Some(a) if a.as_any().is::<BooleanArray>() => {
                self.n += Pred::new("count", a)?.count_true();
            }
            Some(a) => self.n += a.len() as u64,
            None => {
                return Err(EvalError::Invalid(
                    "count(): the executor must append the event-time column (wants_time)".into(),
                ));
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.n += same::<Self>("count", other)?.n;
        Ok(())
    }
    fn can_retract(&self) -> bool {
        true
    }
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        let Some(o) = other.as_any().downcast_ref::<Self>() else {
            return false;
        };
        self.n.checked_sub(o.n).map(|n| self.n = n).is_some()
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        value(self.n as f64)
    }
    fn add_sums(&mut self, sums: &[u64]) -> Result<(), EvalError> {
        match sums {
            [n] => {
                self.n += n;
                Ok(())
            }
            _ => Err(EvalError::Invalid("count: expected one sum".into())),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
