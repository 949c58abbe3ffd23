//! The `freshness` builtin (docs/functions.md#freshness): a special function: the evaluator
//! hands it the age of the component's latest event (`SpecialInput::EventAge`), read by the
//! executor outside the window, so a component that stopped reporting is noticed even when the
//! window is empty.

use super::ExampleStatus::Fails;
use super::ExampleValue::Seconds;
use super::common::sig;
use super::{Example, Function, FunctionKind, Outcome, ReturnType, Signature, SpecialInput};
use crate::value::Value;

pub(crate) struct Freshness;

impl Function for Freshness {
    fn name(&self) -> &'static str {
        "freshness"
    }
    fn summary(&self) -> &'static str {
        "The evaluation time minus the latest event time before it, in seconds; ignores window."
    }
    fn signature(&self) -> Signature {
        // Computed from the latest event time, not from argument columns: no accumulator.
        sig(FunctionKind::Special, &[], ReturnType::Duration)
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect freshness() < 15m",
            description: "the component reported within the last 15 minutes; its latest row is 20 minutes old",
            rows: &[
                "ts: \"2026-02-28T23:30:00Z\"",
                "ts: \"2026-02-28T23:40:00Z\"",
            ],
            expect: Fails,
            value: Some(Seconds(1200.0)),
            ..Example::NO_ROWS
        }]
    }
    fn special_input(&self) -> Option<SpecialInput> {
        Some(SpecialInput::EventAge)
    }
    fn special_outcome(&self, age_secs: Option<f64>) -> Outcome {
        match age_secs {
            Some(s) => Outcome::Value(Value::Duration(s)),
            None => Outcome::Undefined("no event before the evaluation time".into()),
        }
    }
}
