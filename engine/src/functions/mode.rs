//! The `mode` builtin (docs/functions.md#mode): on the `CounterAcc` (a count per distinct
//! value), whose entries come in ascending order; that order is how ties are broken.

use super::ExampleStatus::{Fails, Passes};
use super::ExampleValue::Text;
use super::common::undefined;
use super::common::{Counter, sig};
use super::counter_acc::CounterAcc;
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Signature,
};

pub(crate) struct Mode;

impl Function for Mode {
    fn name(&self) -> &'static str {
        "mode"
    }
    fn summary(&self) -> &'static str {
        "The most frequent non-null value; ties go to the smallest value."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Any,
            }],
            ReturnType::SameAsArg(0),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                source: "expect mode(country) == \"US\"",
                description: "the US is still the most common country",
                rows: &["country: \"US\"", "country: \"DE\"", "country: \"US\""],
                expect: Passes,
                value: Some(Text("US")),
                ..Example::NO_ROWS
            },
            Example {
                source: "expect mode(country) == \"US\"",
                description: "a tie between US and DE goes to DE, the smaller value",
                rows: &[
                    "country: \"US\"",
                    "country: \"DE\"",
                    "country: \"DE\"",
                    "country: \"US\"",
                ],
                expect: Fails,
                value: Some(Text("DE")),
                ..Example::NO_ROWS
            },
        ]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        CounterAcc::boxed("mode", finish)
    }
}

fn finish(c: &Counter) -> Result<Outcome, EvalError> {
    // Entries come in ascending order, so the first maximum is the smallest tied value.
    let mut best: Option<(usize, u64)> = None;
    let entries = c.entries();
    for (i, (_, n)) in entries.iter().enumerate() {
        if best.is_none_or(|(_, b)| *n > b) {
            best = Some((i, *n));
        }
    }
    match best {
        Some((i, _)) => Ok(Outcome::Value(entries[i].0.to_value())),
        None => undefined("no non-null values"),
    }
}
