"""Reference values for every mlc builtin, computed with numpy / scipy / scikit-learn.

Run from the repository root with a Python that has numpy, scipy, scikit-learn and pandas:

    python tests/reference/gen.py > tests/reference/values.json

`engine/tests/reference.rs` feeds the same columns to the Rust accumulators and compares every
value to 1e-9 relative (1e-12 absolute near zero). A case whose metric is undefined on its data
(scipy/numpy give nan or raise) is expected to be `Undefined` in mlc.
"""

import json
import math
import sys
from collections import Counter

import numpy as np
import pandas as pd
import scipy
import sklearn
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn import metrics

rng = np.random.default_rng(20261129)
CASES = []


def col(ty, values):
    """A column: type name and values (None is null)."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif ty == "int":
            out.append(int(v))
        elif ty == "float":
            out.append(float(v))
        elif ty == "bool":
            out.append(bool(v))
        elif ty == "timestamp":
            out.append(int(v))
        else:
            out.append(str(v))
    return {"type": ty, "values": out}


def nonnull(values):
    return [v for v in values if v is not None]


COLUMNS = []
COLUMN_IDS = {}


def ref(column):
    """Columns are stored once in `columns` and cases refer to them by index."""
    key = json.dumps(column)
    if key not in COLUMN_IDS:
        COLUMN_IDS[key] = len(COLUMNS)
        COLUMNS.append(column)
    return COLUMN_IDS[key]


def add(name, function, args, expect, baseline=None):
    case = {"name": name, "function": function, "args": [ref(a) for a in args]}
    if baseline is not None:
        case["baseline"] = [ref(b) for b in baseline]
    case["expect"] = expect
    CASES.append(case)


def num(x):
    x = float(x)
    if math.isnan(x):
        return {"undefined": True}
    return {"value": x}


def undefined():
    return {"undefined": True}


def guarded(f):
    """The value of f(), or undefined when numpy/scipy/sklearn give nan, warn or raise."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return num(f())
        except (ValueError, ZeroDivisionError, RuntimeWarning, FloatingPointError, Warning):
            return undefined()


# ---------------------------------------------------------------- numeric data sets
def numeric_sets():
    sets = {
        "small": col("float", rng.normal(10, 3, 7)),
        "ties_float": col("float", rng.integers(0, 5, 30).astype(float)),
        "ties_int": col("int", rng.integers(-3, 4, 25)),
        "all_equal": col("float", [3.25] * 10),
        "single": col("float", [2.5]),
        "two": col("float", [1.0, 4.0]),
        "nulls": col("float", [None if rng.random() < 0.25 else v for v in rng.normal(0, 1, 40)]),
        "int_nulls": col("int", [None if rng.random() < 0.2 else int(v) for v in rng.integers(0, 100, 50)]),
        "empty": col("float", []),
        "all_null": col("float", [None, None, None]),
        "large": col("float", np.round(rng.lognormal(3, 1, 5000), 6)),
        "offset": col("float", 1e9 + rng.normal(0, 1, 200)),
        "negative_zero": col("float", [-0.0, 0.0, 1.5, -2.25, 0.0]),
    }
    return sets


for set_name, c in numeric_sets().items():
    xs = nonnull(c["values"])
    a = np.array(xs, dtype=float)
    n = len(a)
    add(f"sum/{set_name}", "sum", [c], num(np.sum(a)) if n else {"value": 0.0})
    add(f"mean/{set_name}", "mean", [c], num(np.mean(a)) if n else undefined())
    add(f"min/{set_name}", "min", [c], num(np.min(a)) if n else undefined())
    add(f"max/{set_name}", "max", [c], num(np.max(a)) if n else undefined())
    add(f"variance/{set_name}", "variance", [c], num(np.var(a, ddof=1)) if n > 1 else undefined())
    add(f"stddev/{set_name}", "stddev", [c], num(np.std(a, ddof=1)) if n > 1 else undefined())
    add(f"median/{set_name}", "median", [c], num(np.median(a)) if n else undefined())
    for q in [0.0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]:
        qc = col("float", [q] * len(c["values"]))
        add(f"quantile/{set_name}/{q}", "quantile", [c, qc], num(np.quantile(a, q)) if n else undefined())
    add(f"null_rate/{set_name}", "null_rate", [c],
        num(pd.Series(c["values"], dtype=float).isna().mean()) if c["values"] else undefined())
    add(f"distinct/{set_name}", "distinct", [c], {"value": float(len(set(xs)))})
    s = pd.Series(xs, dtype=float)
    add(f"duplicate_rate/{set_name}", "duplicate_rate", [c],
        num(s.duplicated(keep=False).mean()) if n else undefined())
    if n:
        counts = Counter(xs)
        top = max(counts.values())
        add(f"mode/{set_name}", "mode", [c], {"value": float(min(v for v, k in counts.items() if k == top))})
    else:
        add(f"mode/{set_name}", "mode", [c], undefined())

# Categorical columns for distinct / duplicate_rate / mode / null_rate.
cats = col("string", [None if rng.random() < 0.1 else rng.choice(["DE", "US", "FR", "IT"]) for _ in range(60)])
xs = nonnull(cats["values"])
add("distinct/strings", "distinct", [cats], {"value": float(len(set(xs)))})
add("duplicate_rate/strings", "duplicate_rate", [cats], num(pd.Series(xs).duplicated(keep=False).mean()))
add("null_rate/strings", "null_rate", [cats], num(sum(v is None for v in cats["values"]) / len(cats["values"])))
counts = Counter(xs)
top = max(counts.values())
add("mode/strings", "mode", [cats], {"value": min(v for v, k in counts.items() if k == top)})
tie = col("string", ["b", "a", "b", "a", "c"])
add("mode/strings_tie", "mode", [tie], {"value": "a"})
uniq = col("string", ["x", "y", "z", None])
add("duplicate_rate/unique", "duplicate_rate", [uniq], {"value": 0.0})
bools = col("bool", [True, False, True, None, True])
add("mode/bools", "mode", [bools], {"value": True})
add("distinct/bools", "distinct", [bools], {"value": 2.0})

# latest: the value at the greatest time, ties go to the last row.
t = col("timestamp", [5, 3, 9, 9, 1, 7])
x = col("float", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
add("latest/ties", "latest", [x, t], {"value": 4.0})
x = col("float", [1.0, 2.0, 3.0, None, 5.0, 6.0])
add("latest/null_at_latest", "latest", [x, t], {"value": 3.0})
ts = rng.permutation(1000) * 1_000_000
xv = rng.normal(0, 1, 1000)
add("latest/random", "latest", [col("float", xv), col("timestamp", ts)], {"value": float(xv[np.argmax(ts)])})
add("latest/empty", "latest", [col("float", []), col("timestamp", [])], undefined())
add("latest/strings", "latest", [col("string", ["a", "b", "c"]), col("timestamp", [3, 2, 1])], {"value": "a"})

# ---------------------------------------------------------------- predicates
for name, values in {
    "mixed": [True, False, None, True, True, False, None, True],
    "all_true": [True] * 6,
    "with_null": [True, True, None],
    "empty": [],
    "random": [bool(v) for v in rng.random(500) < 0.3],
}.items():
    p = col("bool", values)
    t = col("timestamp", list(range(len(values))))
    trues = sum(1 for v in values if v is True)
    add(f"count/all/{name}", "count", [t], {"value": float(len(values))})
    add(f"count/pred/{name}", "count", [p, t], {"value": float(trues)})
    add(f"rate/{name}", "rate", [p], num(trues / len(values)) if values else undefined())
    add(f"all/{name}", "all", [p], {"value": all(v is True for v in values)})
    add(f"any/{name}", "any", [p], {"value": any(v is True for v in values)})

# ---------------------------------------------------------------- classification
def classification(name, pred, label, score):
    pairs = [(p, y) for p, y in zip(pred["values"], label["values"]) if p is not None and y is not None]
    pp = np.array([int(p) for p, _ in pairs])
    yy = np.array([int(y) for _, y in pairs])
    n = len(pairs)
    add(f"accuracy/{name}", "accuracy", [pred, label], num(metrics.accuracy_score(yy, pp)) if n else undefined())
    tp = int(np.sum((pp == 1) & (yy == 1)))
    fp = int(np.sum((pp == 1) & (yy != 1)))
    fn = int(np.sum((pp != 1) & (yy == 1)))
    tn = int(np.sum((pp != 1) & (yy != 1)))
    add(f"precision/{name}", "precision", [pred, label],
        num(metrics.precision_score(yy, pp, zero_division=np.nan)) if tp + fp else undefined())
    add(f"recall/{name}", "recall", [pred, label],
        num(metrics.recall_score(yy, pp, zero_division=np.nan)) if tp + fn else undefined())
    add(f"f1/{name}", "f1", [pred, label],
        num(metrics.f1_score(yy, pp, zero_division=np.nan)) if 2 * tp + fp + fn else undefined())
    add(f"fpr/{name}", "fpr", [pred, label], num(fp / (fp + tn)) if fp + tn else undefined())
    spairs = [(s, y) for s, y in zip(score["values"], label["values"]) if s is not None and y is not None]
    ss = np.array([s for s, _ in spairs], dtype=float)
    sy = np.array([int(y) for _, y in spairs])
    both = len(set(sy.tolist())) == 2
    add(f"auc/{name}", "auc", [score, label], num(metrics.roc_auc_score(sy, ss)) if both else undefined())
    if len(spairs):
        p = np.clip(ss, 1e-15, 1 - 1e-15)
        ll = -np.mean(sy * np.log(p) + (1 - sy) * np.log(1 - p))
        add(f"log_loss/{name}", "log_loss", [score, label], num(ll))
        add(f"brier/{name}", "brier", [score, label],
            num(metrics.brier_score_loss(sy, ss, pos_label=1)) if both else num(np.mean((ss - sy) ** 2)))
    else:
        add(f"log_loss/{name}", "log_loss", [score, label], undefined())
        add(f"brier/{name}", "brier", [score, label], undefined())


n = 400
y = rng.integers(0, 2, n)
s = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
pred = (s > 0.5).astype(int)
classification("random", col("int", pred), col("int", y), col("float", s))
classification("ties", col("int", pred), col("int", y), col("float", np.round(s, 1)))
classification("bool_labels", col("bool", pred.astype(bool)), col("bool", y.astype(bool)), col("float", s))
yn = [None if rng.random() < 0.15 else int(v) for v in y]
pn = [None if rng.random() < 0.1 else int(v) for v in pred]
sn = [None if rng.random() < 0.1 else float(v) for v in s]
classification("nulls", col("int", pn), col("int", yn), col("float", sn))
classification("one_class", col("int", [1, 0, 1, 1]), col("int", [0, 0, 0, 0]), col("float", [0.9, 0.1, 0.6, 0.7]))
classification("all_positive", col("int", [1, 1, 0]), col("int", [1, 1, 1]), col("float", [0.9, 0.8, 0.3]))
classification("no_positive_pred", col("int", [0, 0, 0, 0]), col("int", [1, 0, 1, 0]), col("float", [0.2, 0.1, 0.3, 0.4]))
classification("single", col("int", [1]), col("int", [1]), col("float", [0.7]))
classification("empty", col("int", []), col("int", []), col("float", []))
classification("extreme_scores", col("int", [1, 0, 1, 0]), col("int", [0, 1, 1, 0]), col("float", [1.0, 0.0, 1.0, 0.0]))
classification("all_tied_scores", col("int", [1, 0, 1, 0, 1]), col("int", [1, 0, 0, 1, 1]), col("float", [0.5] * 5))
mc_pred = col("int", [0, 1, 2, 2, 1, 0, 2])
mc_true = col("int", [0, 2, 2, 2, 1, 1, 0])
add("accuracy/multiclass", "accuracy", [mc_pred, mc_true],
    num(metrics.accuracy_score(mc_true["values"], mc_pred["values"])))

# ---------------------------------------------------------------- regression
def regression(name, pred, actual):
    pairs = [(p, a) for p, a in zip(pred["values"], actual["values"]) if p is not None and a is not None]
    pp = np.array([p for p, _ in pairs], dtype=float)
    aa = np.array([a for _, a in pairs], dtype=float)
    n = len(pairs)
    add(f"mae/{name}", "mae", [pred, actual], num(metrics.mean_absolute_error(aa, pp)) if n else undefined())
    add(f"rmse/{name}", "rmse", [pred, actual], num(metrics.root_mean_squared_error(aa, pp)) if n else undefined())
    add(f"mape/{name}", "mape", [pred, actual],
        num(metrics.mean_absolute_percentage_error(aa, pp)) if n else undefined())
    const = n == 0 or np.all(aa == aa[0])
    add(f"r2/{name}", "r2", [pred, actual], undefined() if const or n < 2 else num(metrics.r2_score(aa, pp)))


a = rng.normal(100, 20, 300)
p = a + rng.normal(0, 5, 300)
regression("random", col("float", p), col("float", a))
regression("ints", col("int", np.round(p)), col("int", np.round(a)))
regression("zeros_in_actual", col("float", [0.0, 1.0, 2.0, 0.0, 5.0]), col("float", [0.5, 0.0, 2.5, 0.0, 4.0]))
regression("nulls", col("float", [None if rng.random() < 0.2 else v for v in p[:50]]),
           col("float", [None if rng.random() < 0.2 else v for v in a[:50]]))
regression("constant_actual", col("float", [1.0, 2.0, 3.0]), col("float", [2.0, 2.0, 2.0]))
regression("single", col("float", [1.0]), col("float", [2.0]))
regression("empty", col("float", []), col("float", []))
regression("perfect", col("float", [1.0, 2.0, 3.0]), col("float", [1.0, 2.0, 3.0]))
regression("worse_than_mean", col("float", [3.0, 1.0, 5.0, -2.0]), col("float", [1.0, 2.0, 3.0, 4.0]))


# ---------------------------------------------------------------- two-sample
def psi_js(cur, base, categorical):
    cur = nonnull(cur)
    base = nonnull(base)
    if categorical:
        keys = sorted(set(cur) | set(base), key=lambda v: (str(type(v)), v))
        c = np.array([sum(1 for v in cur if v == k) for k in keys], dtype=float)
        b = np.array([sum(1 for v in base if v == k) for k in keys], dtype=float)
    else:
        edges = np.quantile(np.array(base, dtype=float), np.arange(1, 10) / 10)
        c = np.bincount(np.searchsorted(edges, np.array(cur, dtype=float), side="left"), minlength=10).astype(float)
        b = np.bincount(np.searchsorted(edges, np.array(base, dtype=float), side="left"), minlength=10).astype(float)
    p = c / len(cur)
    q = b / len(base)
    pf = np.where(c == 0, 0.0001, p)
    qf = np.where(b == 0, 0.0001, q)
    psi = float(np.sum((pf - qf) * np.log(pf / qf)))
    js = float(jensenshannon(p, q, base=2))
    return psi, js


def two_sample(name, cur, base, categorical=False):
    xc, xb = nonnull(cur["values"]), nonnull(base["values"])
    empty = not xc or not xb
    if not categorical:
        if empty:
            add(f"ks/{name}", "ks", [cur], undefined(), baseline=[base])
            add(f"wasserstein/{name}", "wasserstein", [cur], undefined(), baseline=[base])
        else:
            r = stats.ks_2samp(np.array(xc, dtype=float), np.array(xb, dtype=float), method="auto")
            add(f"ks/{name}", "ks", [cur],
                {"struct": {"statistic": float(r.statistic), "pvalue": float(r.pvalue)}}, baseline=[base])
            add(f"wasserstein/{name}", "wasserstein", [cur],
                num(stats.wasserstein_distance(xc, xb)), baseline=[base])
    if empty:
        add(f"psi/{name}", "psi", [cur], undefined(), baseline=[base])
        add(f"js/{name}", "js", [cur], undefined(), baseline=[base])
    else:
        psi, js = psi_js(xc, xb, categorical)
        add(f"psi/{name}", "psi", [cur], num(psi), baseline=[base])
        add(f"js/{name}", "js", [cur], num(js), baseline=[base])
    if categorical or cur["type"] == "int":
        keys = sorted(set(xc) | set(xb), key=lambda v: (str(type(v)), v))
        if empty or len(keys) < 2:
            add(f"chi2/{name}", "chi2", [cur], undefined(), baseline=[base])
        else:
            table = np.array([[sum(1 for v in xc if v == k) for k in keys],
                              [sum(1 for v in xb if v == k) for k in keys]])
            r = stats.chi2_contingency(table, correction=False)
            add(f"chi2/{name}", "chi2", [cur],
                {"struct": {"statistic": float(r.statistic), "pvalue": float(r.pvalue), "dof": float(r.dof)}},
                baseline=[base])


def f(values):
    return col("float", values)


def f4(values):
    """Large samples are rounded to 4 decimals to keep the committed JSON small."""
    return col("float", np.round(values, 4))


two_sample("small_unequal", f(rng.normal(0, 1, 8)), f(rng.normal(0.5, 1, 7)))
two_sample("small_equal", f(rng.normal(0, 1, 20)), f(rng.normal(0.8, 1, 20)))
two_sample("equal_far", f(rng.normal(0, 1, 50)), f(rng.normal(3, 1, 50)))
two_sample("ties", f(rng.integers(0, 6, 40).astype(float)), f(rng.integers(0, 7, 35).astype(float)))
two_sample("ties_int", col("int", rng.integers(0, 6, 40)), col("int", rng.integers(1, 7, 60)))
two_sample("medium", f(rng.normal(0, 1, 300)), f(rng.normal(0.1, 1.1, 500)))
two_sample("medium_same", f(rng.normal(0, 1, 1000)), f(rng.normal(0, 1, 1200)))
exact_side = f4(rng.normal(0, 1, 10000))
two_sample("exact_limit", exact_side, f4(rng.normal(0.02, 1, 9000)))
asymp_side = f4(rng.normal(0, 1, 10001))
two_sample("asymp_same", asymp_side, exact_side)
two_sample("asymp_shift", asymp_side, f4(rng.normal(0.05, 1, 8000)))
two_sample("asymp_far", f4(rng.normal(0.3, 1, 10002)), exact_side)
two_sample("asymp_equal_sizes", f4(rng.normal(0.01, 1, 10001)), asymp_side)
two_sample("asymp_small_other", asymp_side, f4(rng.normal(0.2, 1, 30)))
two_sample("one_vs_five", f([0.3]), f([0.1, 0.2, 0.4, 0.5, 0.9]))
two_sample("single_each", f([1.0]), f([2.0]))
two_sample("identical", f([1.0, 2.0, 3.0]), f([1.0, 2.0, 3.0]))
two_sample("all_equal", f([2.0] * 10), f([2.0] * 15))
two_sample("disjoint", f([1.0, 2.0, 3.0, 4.0]), f([10.0, 11.0, 12.0]))
two_sample("nulls", f([None if rng.random() < 0.2 else v for v in rng.normal(0, 1, 30)]),
           f([None if rng.random() < 0.2 else v for v in rng.normal(0.3, 1, 25)]))
two_sample("empty_current", f([]), f([1.0, 2.0]))
two_sample("empty_baseline", f([1.0, 2.0]), f([None]))


def s(values):
    return col("string", values)


countries = ["DE", "US", "FR", "IT", "ES"]
two_sample("countries", s(rng.choice(countries, 300, p=[0.3, 0.3, 0.2, 0.1, 0.1])),
           s(rng.choice(countries, 400, p=[0.25, 0.35, 0.2, 0.15, 0.05])), categorical=True)
two_sample("countries_shifted", s(rng.choice(countries, 3000, p=[0.1, 0.5, 0.2, 0.1, 0.1])),
           s(rng.choice(countries, 4000, p=[0.3, 0.2, 0.2, 0.15, 0.15])), categorical=True)
two_sample("new_category", s(["a", "b", "c", "c", "d"]), s(["a", "a", "b", "c"]), categorical=True)
two_sample("one_category", s(["a", "a"]), s(["a"]), categorical=True)
two_sample("two_by_two", s(["a"] * 30 + ["b"] * 10), s(["a"] * 20 + ["b"] * 25), categorical=True)
two_sample("bools", col("bool", [True, False, True, True, None]), col("bool", [False, False, True]),
           categorical=True)
two_sample("string_nulls", s(["x", None, "y", "x"]), s(["y", "y", None, "x"]), categorical=True)
two_sample("cat_empty", s([None]), s(["a", "b"]), categorical=True)

# ---------------------------------------------------------------- distributions directly
kstwo = []
for n_ in [1, 2, 5, 10, 37, 100, 140, 141, 500, 1000, 5000, 20000, 100000, 150000]:
    for x_ in [0.001, 0.01, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.5, 0.6, 0.9, 0.99]:
        kstwo.append([n_, x_, float(stats.kstwo.sf(x_, n_))])
smirnov = []
from scipy import special

for n_ in [2, 3, 10, 50, 141, 1000, 10000]:
    for x_ in [0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.95]:
        smirnov.append([n_, x_, float(special.smirnov(n_, x_))])

json.dump({
    "generated_by": "tests/reference/gen.py",
    "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
                 "pandas": pd.__version__},
    # Float values are written as text: Rust parses decimal text to the nearest f64 exactly,
    # whereas JSON number readers may be one ulp off, which shows in statistics of 1e9 + noise.
    "columns": [
        {"type": c["type"], "values": [None if v is None else repr(v) for v in c["values"]]}
        if c["type"] == "float" else c
        for c in COLUMNS
    ],
    "cases": CASES,
    "kstwo_sf": kstwo,
    "smirnov_sf": smirnov,
}, sys.stdout, indent=None, separators=(",", ":"))
sys.stdout.write("\n")
