//! The `ln` builtin (docs/functions.md#ln): evaluated by `scalar_math::real_fn`, which turns a
//! result that is not a finite number into null, as SQLite does, so that one bad row does not
//! fail a check.

use super::ExampleStatus::Passes;
use super::common::sig;
use super::scalar_math::real_fn;
use super::{ArgType, EvalError, Example, Function, FunctionKind, Param, ReturnType, Signature};
use crate::value::Value;

pub(crate) struct Ln;

impl Function for Ln {
    fn name(&self) -> &'static str {
        "ln"
    }
    fn summary(&self) -> &'static str {
        "Natural logarithm; null for x <= 0 or a null x."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Scalar,
            &[Param {
                name: "x",
                ty: ArgType::Numeric,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect ln(mean(income)) within 10% of ln(baseline.mean(income))",
            description: "the log of mean income stays within 10% of the baseline's: the mean grew by 19%, its log by 1.6%",
            rows: &["income: 52000", "income: 48000"],
            baseline: &["income: 40000", "income: 44000"],
            expect: Passes,
            ..Example::NO_ROWS
        }]
    }
    fn call_scalar(&self, args: &[Value]) -> Result<Value, EvalError> {
        real_fn("ln", args, f64::ln)
    }
}
