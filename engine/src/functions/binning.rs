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
            let count = |sample: &Sample| {
                let values = &sample.nums;
                // Sorted without NaN: a value is in bin k when k edges are below it, so the
                // values up to edge k are those of bins 0..=k, found by binary search.
                let ends_clean = |v: Option<&f64>| v.is_none_or(|x| !x.is_nan());
                if sample.sorted
                    && ends_clean(values.first())
                    && ends_clean(values.last())
                    && edges.iter().all(|e| !e.is_nan())
                {
                    let mut c = vec![0.0; 10];
                    let mut below = 0;
                    for (k, e) in edges.iter().enumerate() {
                        let upto = values.partition_point(|v| v <= e);
                        c[k] = (upto - below) as f64;
                        below = upto;
                    }
                    c[9] = (values.len() - below) as f64;
                    return c;
                }
                let mut c = vec![0.0; 10];
                for v in values {
                    c[edges.partition_point(|e| e < v)] += 1.0;
                }
                c
            };
            Ok((count(current), count(baseline)))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::common::{Counter, Sample, sort_floats};

    fn sample(nums: Vec<f64>, sorted: bool) -> Sample {
        Sample {
            nums,
            cats: Counter::default(),
            numeric: Some(true),
            sorted,
        }
    }

    #[test]
    fn sorted_values_fall_in_the_bins_that_one_by_one_gives() {
        // Values on the edges themselves, ties, infinities; a baseline with few values.
        let mut next = crate::functions::common::draws(0x9e37_79b9);
        for round in 0..300 {
            let span = [5, 40, 1000][round % 3];
            let mut draw = |n: usize| -> Vec<f64> {
                (0..n)
                    .map(|_| match next(50) {
                        0 => f64::INFINITY,
                        1 => f64::NEG_INFINITY,
                        _ => next(span) as f64 / 4.0,
                    })
                    .collect()
            };
            let (n, m) = (1 + round % 17, 1 + (round * 7) % 300);
            let mut base = draw(n);
            let cur = draw(m);
            sort_floats(&mut base);
            let mut sorted = cur.clone();
            sort_floats(&mut sorted);
            let one_by_one =
                super::bin_counts("psi", &sample(cur, false), &sample(base.clone(), true)).unwrap();
            let searched =
                super::bin_counts("psi", &sample(sorted, true), &sample(base, true)).unwrap();
            assert_eq!(one_by_one, searched, "round {round}");
        }
    }
}
