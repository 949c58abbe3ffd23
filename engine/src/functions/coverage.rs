//! The `coverage` builtin (docs/functions.md#coverage): a special function, measured from the
//! joins' match mask (`SpecialInput::JoinMatchRate`); the checker accepts it only on a joined
//! source (E0208).

use super::ExampleStatus::Passes;
use super::ExampleValue::Number;
use super::common::sig;
use super::{Example, Function, FunctionKind, Outcome, ReturnType, Signature, SpecialInput};
use crate::value::Value;

pub(crate) struct Coverage;

impl Function for Coverage {
    fn name(&self) -> &'static str {
        "coverage"
    }
    fn summary(&self) -> &'static str {
        "In a joined source, the fraction of the first component's rows that found a match."
    }
    fn signature(&self) -> Signature {
        // Computed from the joins' match mask, not from argument columns: no accumulator.
        sig(FunctionKind::Special, &[], ReturnType::Number)
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect coverage() >= 80%",
            description: "at least 80% of predictions have their label yet; four of five do",
            rows: &[
                "prediction: 1",
                "prediction: 0",
                "prediction: 1",
                "prediction: 0",
                "prediction: 1",
            ],
            labels: &["label: 1", "label: 0", "label: 1", "label: 1"],
            expect: Passes,
            value: Some(Number(0.8)),
            ..Example::NO_ROWS
        }]
    }
    fn special_input(&self) -> Option<SpecialInput> {
        Some(SpecialInput::JoinMatchRate)
    }
    fn special_outcome(&self, matched_fraction: Option<f64>) -> Outcome {
        match matched_fraction {
            Some(c) => Outcome::Value(Value::Float(c)),
            None => Outcome::Undefined("no rows of the first component".into()),
        }
    }
    fn needs_join(&self) -> bool {
        true
    }
}
