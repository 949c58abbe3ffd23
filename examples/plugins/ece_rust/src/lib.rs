//! Expected calibration error (ECE) of a binary classifier as an mlc plugin: with 10
//! equal-width bins of the predicted probability, the row-weighted mean over bins of
//! |fraction of positive labels - mean predicted probability|.
//!
//! Bins: a score `p` (clamped to [0, 1]) falls in bin `min(floor(10 p), 9)`. Rows with a null
//! score or label are skipped; labels must be 0 or 1 (or bool). With no complete rows the
//! metric is undefined. tests/reference/ece.py computes the same with numpy.

use mlc_plugin_sdk::{Aggregate, Outcome};

const BINS: usize = 10;

/// Per bin: rows, sum of scores, sum of labels. Enough to merge partial states exactly.
#[derive(Default)]
pub struct Ece {
    count: [f64; BINS],
    score_sum: [f64; BINS],
    label_sum: [f64; BINS],
}

impl Aggregate for Ece {
    fn update(&mut self, columns: &[&[f64]]) -> Result<(), String> {
        let [scores, labels] = columns else {
            return Err(format!(
                "ece takes 2 columns (score, label), got {}",
                columns.len()
            ));
        };
        for (&score, &label) in scores.iter().zip(labels.iter()) {
            if score.is_nan() || label.is_nan() {
                continue;
            }
            if label != 0.0 && label != 1.0 {
                return Err(format!("ece needs labels 0 or 1, got {label}"));
            }
            let p = score.clamp(0.0, 1.0);
            let bin = ((p * BINS as f64) as usize).min(BINS - 1);
            self.count[bin] += 1.0;
            self.score_sum[bin] += p;
            self.label_sum[bin] += label;
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<(), String> {
        for b in 0..BINS {
            self.count[b] += other.count[b];
            self.score_sum[b] += other.score_sum[b];
            self.label_sum[b] += other.label_sum[b];
        }
        Ok(())
    }

    fn finalize(&self) -> Result<Outcome, String> {
        let n: f64 = self.count.iter().sum();
        if n == 0.0 {
            return Ok(Outcome::Undefined(
                "no rows with both a score and a label".into(),
            ));
        }
        // count_b / n * |label_sum_b / count_b - score_sum_b / count_b|, simplified.
        let gap: f64 = (0..BINS)
            .map(|b| (self.label_sum[b] - self.score_sum[b]).abs())
            .sum();
        Ok(Outcome::Value(gap / n))
    }
}

mlc_plugin_sdk::export_plugin! {
    aggregate: Ece,
    name: "ece",
    args: [score: float, label: int],
    description: "Expected calibration error of predicted probabilities over 10 equal-width bins",
}
