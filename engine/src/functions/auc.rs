//! The `auc` builtin (docs/functions.md#auc): counts Mann-Whitney wins over the (score, label)
//! pairs sorted by score, in exact integers until the final division.

use std::any::Any;

use arrow_array::ArrayRef;

use super::ExampleStatus::Fails;
use super::ExampleValue::Number;
use super::common::{Label, Num, arity, same, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};

pub(crate) struct Auc;

impl Function for Auc {
    fn name(&self) -> &'static str {
        "auc"
    }
    fn summary(&self) -> &'static str {
        "ROC AUC of the score for the positive class 1 / true, tied scores counting one half (as scikit-learn); undefined unless both classes occur."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[
                Param {
                    name: "score",
                    ty: ArgType::Numeric,
                },
                Param {
                    name: "label",
                    ty: ArgType::Label,
                },
            ],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect auc(score, label) >= 0.8",
            description: "positives rank above negatives in at least 80% of pairs; here in 4 of 6, as a positive scored 0.35 ranks below two negatives",
            rows: &[
                "score: 0.9",
                "score: 0.35",
                "score: 0.4",
                "score: 0.3",
                "score: 0.6",
            ],
            labels: &["label: 1", "label: 1", "label: 0", "label: 0", "label: 0"],
            expect: Fails,
            value: Some(Number(4.0 / 6.0)),
            ..Example::NO_ROWS
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(AucAcc { pairs: Vec::new() }))
    }
}

struct AucAcc {
    /// (score, is positive) for every row with both present.
    pairs: Vec<(f64, bool)>,
}

impl Accumulator for AucAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn held_bytes(&self) -> usize {
        self.pairs.capacity() * 16
    }
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("auc", args, 2)?;
        let s = Num::new("auc", &args[0])?;
        let y = Label::new("auc", &args[1])?;
        self.pairs.reserve(s.len());
        for i in 0..s.len() {
            if let (Some(s), Some(y)) = (s.get(i), y.get(i)) {
                self.pairs.push((s, y == 1));
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.pairs
            .extend_from_slice(&same::<Self>("auc", other)?.pairs);
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        let pos = self.pairs.iter().filter(|p| p.1).count();
        let neg = self.pairs.len() - pos;
        if pos == 0 || neg == 0 {
            return undefined(format!(
                "auc needs both classes, got {pos} positive and {neg} negative labels"
            ));
        }
        let mut v = self.pairs.clone();
        v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // Mann-Whitney: AUC = P(score+ > score-) + P(score+ == score-) / 2, which is what the
        // trapezoidal ROC area of scikit-learn equals. Counting, per group of tied scores, the
        // negatives below it keeps every quantity an exact integer until the final division.
        let mut twice_wins: u128 = 0;
        let mut neg_below: u128 = 0;
        let mut i = 0;
        while i < v.len() {
            let mut j = i;
            let (mut p, mut n) = (0u128, 0u128);
            while j < v.len() && v[j].0 == v[i].0 {
                if v[j].1 {
                    p += 1
                } else {
                    n += 1
                }
                j += 1;
            }
            twice_wins += p * (2 * neg_below + n);
            neg_below += n;
            i = j;
        }
        value(twice_wins as f64 / (2.0 * pos as f64 * neg as f64))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
