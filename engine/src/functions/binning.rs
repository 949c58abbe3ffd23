//! The bins `psi` and `js` compare (docs/functions.md#psi): for a numeric column, ten bins cut at the
//! baseline's deciles (bin i holds `e(i-1) < v <= e(i)`); for a categorical column, one bin
//! per category seen on either side.

use super::EvalError;
use super::common::{Sample, quantile_sorted};

/// Counts per bin of the current and the baseline sample, in the same bin order.
pub(crate) fn bin_counts(
    name: &str,
    current: &Sample,
    baseline: &Sample,
) -> Result<(Vec<f64>, Vec<f64>), EvalError> {
    match (current.numeric, baseline.numeric) {
        (Some(true), Some(true)) => {
            let base = baseline.sorted_nums();
            let edges: Vec<f64> = (1..10)
                .map(|i| quantile_sorted(&base, f64::from(i) / 10.0))
                .collect();
            let count = |values: &[f64]| {
                let mut c = vec![0.0; 10];
                for v in values {
                    c[edges.partition_point(|e| e < v)] += 1.0;
                }
                c
            };
            Ok((count(&current.nums), count(&baseline.nums)))
        }
        (Some(false), Some(false)) => {
            let mut merged = current.cats.clone();
            merged.merge(&baseline.cats);
            let keys = merged.entries();
            let mut cur = Vec::with_capacity(keys.len());
            let mut base = Vec::with_capacity(keys.len());
            for (k, _) in &keys {
                cur.push(count_of(&current.cats, k) as f64);
                base.push(count_of(&baseline.cats, k) as f64);
            }
            Ok((cur, base))
        }
        _ => Err(EvalError::Invalid(format!(
            "{name}: the column is numeric on one side and categorical on the other"
        ))),
    }
}

fn count_of(c: &super::common::Counter, k: &super::common::CatKey<'_>) -> u64 {
    use super::common::CatKey;
    match k {
        CatKey::Bool(b) => c.bools[usize::from(*b)],
        CatKey::Int(i) => c.ints.get(i).copied().unwrap_or(0),
        CatKey::Float(f) => c.floats.get(&f.to_bits()).copied().unwrap_or(0),
        CatKey::Str(s) => c.strs.get(*s).copied().unwrap_or(0),
    }
}
