"""Reference values for the example plugins (examples/plugins/), computed with numpy/scipy.

Writes ece.json: datasets with their expected calibration error (10 equal-width bins, a
score p in bin min(floor(10 p), 9), rows with a null score or label skipped) and their 10%
trimmed mean (scipy.stats.trim_mean). wasm/tests/examples.rs runs the plugins on the same
data. Run: python3 tests/reference/ece.py  (needs numpy and scipy)
"""

import json
import pathlib

import numpy as np
from scipy import stats


def ece(score, label, bins=10):
    keep = ~(np.isnan(score) | np.isnan(label))
    p = np.clip(score[keep], 0.0, 1.0)
    y = label[keep]
    idx = np.minimum(np.floor(p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = idx == b
        if in_bin.any():
            total += in_bin.sum() / len(p) * abs(y[in_bin].mean() - p[in_bin].mean())
    return total


def dataset(name, rng, n, miscalibration, null_rate):
    score = rng.beta(2.0, 3.0, n).round(6)
    label = (rng.random(n) < score ** miscalibration).astype(float)
    score[rng.random(n) < null_rate] = np.nan
    label[rng.random(n) < null_rate] = np.nan
    as_list = lambda a: [None if np.isnan(v) else float(v) for v in a]
    return {
        "name": name,
        "score": as_list(score),
        "label": as_list(label),
        "ece": ece(score, label),
        "trimmed_mean_score": float(stats.trim_mean(score[~np.isnan(score)], 0.1)),
    }


def main():
    rng = np.random.default_rng(20261129)
    cases = [
        dataset("calibrated", rng, 3000, 1.0, 0.0),
        dataset("overconfident_with_nulls", rng, 2500, 1.8, 0.05),
        dataset("small", rng, 37, 0.7, 0.1),
    ]
    out = pathlib.Path(__file__).with_name("ece.json")
    out.write_text(json.dumps({"generated_by": "tests/reference/ece.py", "cases": cases}) + "\n")


if __name__ == "__main__":
    main()
