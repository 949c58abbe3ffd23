//! `coverage()`: In a joined source, the fraction of the first component's rows that found a match.

use super::common::sig;
use super::{Example, Function, FunctionKind, ReturnType, Signature};

pub struct Coverage;

impl Function for Coverage {
    fn name(&self) -> &'static str {
        "coverage"
    }
    fn summary(&self) -> &'static str {
        "In a joined source, the fraction of the first component's rows that found a match."
    }
    fn signature(&self) -> Signature {
        // Computed by the executor from data other than argument columns: no accumulator.
        sig(FunctionKind::Special, &[], ReturnType::Number)
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect coverage() >= 80%",
            description: "at least 80% of predictions have their label yet",
        }]
    }
}
