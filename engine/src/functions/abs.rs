//! The `abs` builtin (docs/functions.md#abs): `i64::MIN` has no int absolute value, so it gives
//! a float rather than overflowing.

use super::ExampleStatus::Passes;
use super::common::sig;
use super::scalar_math::{number, one_arg};
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Abs;

impl Function for Abs {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn summary(&self) -> &'static str {
        "Absolute value; ints stay ints, durations stay durations, null gives null."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Scalar,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::SameAsArg(0),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect abs(mean(score) - baseline.mean(score)) < 0.05",
            description: "the mean score moved by less than 0.05 from the baseline (here by 0.04)",
            rows: &["score: 0.62", "score: 0.70"],
            baseline: &["score: 0.60", "score: 0.64"],
            expect: Passes,
            ..Example::NO_ROWS
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        let v = one_arg("abs", args)?;
        Ok(match v {
            Value::Null => Value::Null,
            Value::Int(i) => i
                .checked_abs()
                .map_or(Value::Float((*i as f64).abs()), Value::Int),
            Value::Duration(d) => Value::Duration(d.abs()),
            other => Value::Float(number("abs", other)?.abs()),
        })
    }
}
