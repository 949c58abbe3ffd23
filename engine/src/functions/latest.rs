//! The `latest` builtin (docs/functions.md#latest): asks for the event-time column
//! (`wants_time`) and keeps one value and its time; when two states merge, the one given later
//! wins a tie.

use std::any::Any;

use arrow_array::ArrayRef;

use super::ExampleStatus::Fails;
use super::ExampleValue::Text;
use super::common::{Cat, Num, arity, same, sig, undefined};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};
use crate::value::Value;

pub struct Latest;

impl Function for Latest {
    fn name(&self) -> &'static str {
        "latest"
    }
    fn summary(&self) -> &'static str {
        "The non-null value at the greatest event time (on equal times, the last row given); undefined without values."
    }
    fn signature(&self) -> Signature {
        Signature {
            wants_time: true,
            ..sig(
                FunctionKind::Aggregate,
                &[Param {
                    name: "x",
                    ty: ArgType::Any,
                }],
                ReturnType::SameAsArg(0),
            )
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect latest(status) == \"succeeded\"",
            description: "the last training run succeeded; the latest row says it failed",
            rows: &["status: \"succeeded\"", "status: \"failed\""],
            expect: Fails,
            value: Some(Text("failed")),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(LatestAcc {
            time: None,
            value: Value::Null,
        }))
    }
}

struct LatestAcc {
    time: Option<f64>,
    value: Value,
}

impl Accumulator for LatestAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("latest", args, 2)?;
        let x = Cat::new("latest", &args[0])?;
        let t = Num::new("latest (time column)", &args[1])?;
        // Find the row first and build one value per batch, not one per improving row.
        let mut best: Option<(f64, usize)> = None;
        for i in 0..t.len() {
            let Some(ti) = t.get(i) else { continue };
            if x.is_missing(i) {
                continue;
            }
            if best.is_none_or(|(b, _)| ti >= b) {
                best = Some((ti, i));
            }
        }
        if let Some((ti, i)) = best
            && self.time.is_none_or(|b| ti >= b)
        {
            self.time = Some(ti);
            self.value = x.value(i);
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        // The other state counts as given after this one: it wins ties.
        let o = same::<Self>("latest", other)?;
        if let Some(t) = o.time
            && self.time.is_none_or(|b| t >= b)
        {
            self.time = Some(t);
            self.value = o.value.clone();
        }
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        match self.time {
            Some(_) => Ok(Outcome::Value(self.value.clone())),
            None => undefined("latest of no values"),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
