//! `freshness()`: The evaluation time minus the latest event time before it, in seconds; ignores window.

use super::common::sig;
use super::{Example, Function, FunctionKind, ReturnType, Signature};

pub struct Freshness;

impl Function for Freshness {
    fn name(&self) -> &'static str {
        "freshness"
    }
    fn summary(&self) -> &'static str {
        "The evaluation time minus the latest event time before it, in seconds; ignores window."
    }
    fn signature(&self) -> Signature {
        // Computed by the executor from data other than argument columns: no accumulator.
        sig(FunctionKind::Special, &[], ReturnType::Duration)
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect freshness() < 15m",
            description: "the component reported within the last 15 minutes",
        }]
    }
}
