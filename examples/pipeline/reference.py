#!/usr/bin/env python3
"""An independent reference for the example pipeline's checks, in pandas/scipy.

Each check of this folder is re-implemented by hand from SPEC.md's definitions (not
by interpreting the .mlc files), so its verdicts can be compared with mlc's:

    python3 examples/pipeline/reference.py --data DIR --at 2026-03-01T00:00:00Z

reads DIR/<component>.csv (as written by `mlc demo --export DIR`) and prints one line
per (check, slice, column) with the status and the values. fixtures/verify_fixtures.py
uses the same functions on the test fixtures. Needs numpy, pandas and scipy.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

H = pd.Timedelta(hours=1)
D = pd.Timedelta(days=1)


def load(path, time_col="ts"):
    df = pd.read_csv(path, keep_default_na=False, na_values=[""],
                     dtype={"request_id": str, "customer_id": str, "run_id": str,
                            "row_id": str, "country": str, "device": str,
                            "model_version": str, "job": str, "status": str,
                            "job_run": str})
    df[time_col] = pd.to_datetime(df[time_col], utc=True, format="ISO8601")
    return df


def window(df, at, length=None, delay=pd.Timedelta(0)):
    end = at - delay
    keep = df["ts"] < end
    if length is not None:
        keep &= df["ts"] >= end - length
    return df[keep]


def latest_before(df, at, key="request_id"):
    """Per key, the latest row with time < at (the right side of a join)."""
    df = df[(df["ts"] < at) & df[key].notna()]
    return df.sort_values("ts").drop_duplicates(key, keep="last")


def join(left, right, at, how, key="request_id"):
    r = latest_before(right, at, key).drop(columns=["ts"]).assign(_matched=True)
    out = left.merge(r, on=key, how="left")
    out["_matched"] = out["_matched"].eq(True) & left[key].notna().to_numpy()
    coverage = out["_matched"].mean() if len(out) else float("nan")
    if how == "inner":
        out = out[out["_matched"]]
    return out, coverage


def slices(df, col):
    for value, part in df.groupby(col, dropna=False):
        yield ({col: None if pd.isna(value) else value}), part


def verdict(rows, min_rows, expects, baseline_rows=None):
    """expects: list of (text, value or None, ok). None value = undefined."""
    if rows < min_rows or (baseline_rows is not None and baseline_rows < min_rows):
        return "insufficient"
    statuses = ["insufficient" if v is None or (isinstance(v, float) and np.isnan(v))
                else ("pass" if ok else "fail") for _, v, ok in expects]
    if "fail" in statuses:
        return "fail"
    if "insufficient" in statuses:
        return "insufficient"
    return "pass"


def psi_bins(cur, base):
    cur = cur.dropna().to_numpy(dtype=float)
    base = base.dropna().to_numpy(dtype=float)
    edges = np.quantile(base, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=10) / len(cur)
    q = np.bincount(np.searchsorted(edges, base, side="left"), minlength=10) / len(base)
    return p, q


def cat_bins(cur, base):
    cats = sorted(set(cur.dropna()) | set(base.dropna()))
    c = cur.dropna().value_counts()
    b = base.dropna().value_counts()
    cc = np.array([c.get(k, 0) for k in cats], dtype=float)
    bc = np.array([b.get(k, 0) for k in cats], dtype=float)
    return cc, bc


def psi_value(p, q):
    p = np.where(p == 0, 0.0001, p)
    q = np.where(q == 0, 0.0001, q)
    return float(np.sum((p - q) * np.log(p / q)))


def recall(pred, label):
    pos = label == 1
    return float((pred[pos] == 1).mean()) if pos.any() else None


def precision(pred, label):
    flagged = pred == 1
    return float((label[flagged] == 1).mean()) if flagged.any() else None


def auc(score, label):
    from sklearn.metrics import roc_auc_score
    if label.nunique() < 2:
        return None
    return float(roc_auc_score(label, score))


def evaluate(data, at):
    """All example checks at time `at` over data {component: DataFrame}."""
    out = []
    data = {c: _declared(c, df) for c, df in data.items()}

    def emit(check, slice_, column, status, values):
        out.append((check, slice_, column, status, values))

    inf = data.get("inference")
    if inf is not None:
        cur = window(inf, at, D)
        # age_in_range
        aged = cur[cur["age"].notna()]
        for s, part in slices(aged, "device"):
            ok = part["age"].between(0, 120).all()
            emit("age_in_range", s, None, verdict(len(part), 1, [("all", 1.0, ok)]),
                 {"all(age between 0 and 120)": bool(ok)})
        # income_null_rate
        for s, part in slices(cur, "country"):
            nr = float(part["income"].isna().mean())
            emit("income_null_rate", s, None,
                 verdict(len(part), 20, [("null_rate", nr, nr < 0.05)]),
                 {"null_rate(income)": nr})
        # request_ids_unique
        if len(cur):
            keys = cur["request_id"]
            nr = float(keys.isna().mean())
            nn = keys.dropna()
            dup = float(nn.duplicated(keep=False).mean()) if len(nn) else float("nan")
            emit("request_ids_unique", {}, None,
                 verdict(len(cur), 1, [("n", nr, nr == 0), ("d", dup, dup == 0)]),
                 {"null_rate(request_id)": nr, "duplicate_rate(request_id)": dup})
        emit_fresh(emit, "inference_fresh", inf, at, 10 * 60)
        base = window(inf, at - 7 * D, D)
        # feature_drift_wow
        for col in ["age", "income", "tenure_days"]:
            if not cur[col].notna().any() or not base[col].notna().any():
                emit("feature_drift_wow", {}, None, "insufficient", {})
                continue
            p, q = psi_bins(cur[col], base[col])
            v = psi_value(p, q)
            emit("feature_drift_wow", {}, col,
                 verdict(len(cur), 500, [("psi", v, v < 0.2)], len(base)),
                 {"psi(feature)": v})
        # mobile_latency_p90
        mob_c = cur[cur["device"].isin(["ios", "android"])]
        mob_b = base[base["device"].isin(["ios", "android"])]
        if len(mob_c) and len(mob_b):
            qc = float(np.quantile(mob_c["latency_ms"].dropna(), 0.9))
            qb = float(np.quantile(mob_b["latency_ms"].dropna(), 0.9))
            emit("mobile_latency_p90", {}, None,
                 verdict(len(mob_c), 200, [("r", qc, qc < 1.5 * qb), ("a", qc, qc < 400)],
                         len(mob_b)),
                 {"quantile(latency_ms, 0.9)": qc, "baseline.quantile(latency_ms, 0.9)": qb})
        # country_mix_wow
        cc, bc = cat_bins(cur["country"], base["country"])
        if cc.sum() and bc.sum():
            chi = stats.chi2_contingency(np.vstack([cc, bc]), correction=False)
            js = float(jensenshannon(cc / cc.sum(), bc / bc.sum(), base=2))
            ok = chi.pvalue > 0.001 or js < 0.1
            emit("country_mix_wow", {}, None,
                 verdict(len(cur), 500, [("mix", js, ok)], len(base)),
                 {"chi2(country).pvalue": float(chi.pvalue), "js(country)": js})
        # score_stability
        if len(cur) and len(base):
            mc, mb = cur["score"].mean(), base["score"].mean()
            rc = (cur["prediction"] == 1).mean()
            rb = (base["prediction"] == 1).mean()
            emit("score_stability", {}, None,
                 verdict(len(cur), 500, [("m", mc, abs(mc - mb) <= 0.2 * abs(mb)),
                                         ("r", rc, abs(rc - rb) <= 0.02)], len(base)),
                 {"mean(score)": mc, "baseline.mean(score)": mb,
                  "rate(prediction == 1)": rc, "baseline.rate(prediction == 1)": rb})
        # train_serve_skew
        tr = data.get("training")
        if tr is not None:
            cur7 = window(inf, at, 7 * D)
            trb = tr[tr["ts"] < at]
            for col in ["age", "tenure_days"]:
                ks = stats.ks_2samp(cur7[col].dropna(), trb[col].dropna())
                emit("train_serve_skew", {}, col,
                     verdict(len(cur7), 300, [("ks", ks.statistic, ks.statistic < 0.1)],
                             len(trb)),
                     {"ks(feature).statistic": float(ks.statistic)})
        fb = data.get("feedback")
        if fb is not None:
            emit_fresh(emit, "feedback_fresh", fb, at, 6 * 3600)
            # label_coverage
            lc = window(inf, at, D, 7 * D)
            if len(lc):
                _, cov = join(lc, fb, at, "left")
                emit("label_coverage", {}, None,
                     verdict(len(lc), 100, [("c", cov, cov >= 0.9)]), {"coverage()": cov})
            # recall_slo, precision_slo
            month = window(inf, at, 30 * D, 2 * D)
            for check, col in [("recall_slo", "country"), ("precision_slo", "model_version")]:
                for s, part in slices(month, col):
                    joined, cov = join(part, fb, at, "inner")
                    pred, label = joined["prediction"], joined["label"]
                    if check == "recall_slo":
                        r = recall(pred, label)
                        ex = [("c", cov, cov >= 0.8), ("r", r, r is not None and r >= 0.8)]
                        vals = {"coverage()": cov, "recall(prediction, label)": r}
                    else:
                        p = precision(pred, label)
                        a = auc(joined["score"], label)
                        ex = [("c", cov, cov >= 0.8), ("p", p, p is not None and p >= 0.7),
                              ("a", a, a is not None and a >= 0.85)]
                        vals = {"coverage()": cov, "precision(prediction, label)": p,
                                "auc(score, label)": a}
                    emit(check, s, None, verdict(len(joined), 200, ex), vals)
        off = data.get("offline_scores")
        if off is not None:
            day = window(inf, at, D, D)
            for s, part in slices(day, "model_version"):
                joined, cov = join(part, off, at, "inner")
                rate = float(((joined["score"] - joined["offline_score"]).abs() <= 0.001).mean()) \
                    if len(joined) else None
                emit("online_matches_offline", s, None,
                     verdict(len(joined), 50, [("c", cov, cov >= 0.95),
                                               ("r", rate, rate is not None and rate >= 0.99)]),
                     {"coverage()": cov, "rate(abs(score - offline_score) <= 0.001)": rate})
    jobs = data.get("batch_jobs")
    if jobs is not None:
        cur = window(jobs, at, D)
        for s, part in slices(cur, "job"):
            failed = int((part["status"] == "failed").sum())
            wrote = bool(((part["rows_written"] > 0) | (part["status"] == "failed")).all())
            emit("batch_jobs_succeed", s, None,
                 verdict(len(part), 1, [("f", failed, failed == 0), ("w", 1.0, wrote)]),
                 {'count(status == "failed")': failed})
    feats = data.get("features")
    if feats is not None:
        emit_fresh(emit, "features_fresh", feats, at, 2 * 3600)
    return out


# Declared fields per component: a fixture may leave some out; they read as null.
DECLARED = {
    "inference": ["request_id", "customer_id", "age", "income", "tenure_days", "country",
                  "device", "latency_ms", "score", "prediction", "model_version"],
    "feedback": ["request_id", "label"],
    "offline_scores": ["request_id", "offline_score", "job_run"],
    "training": ["row_id", "age", "income", "tenure_days", "country", "device", "label"],
    "batch_jobs": ["run_id", "job", "status", "rows_written", "duration_s"],
    "features": ["customer_id", "txn_count_7d", "avg_amount_30d"],
}


def _declared(component, df):
    df = df.copy()
    for col in DECLARED.get(component, []):
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=object, index=df.index)
    return df


def emit_fresh(emit, check, df, at, limit_s):
    seen = df[df["ts"] < at]
    if not len(seen):
        emit(check, {}, None, "insufficient", {})
        return
    age = (at - seen["ts"].max()).total_seconds()
    emit(check, {}, None, "pass" if age < limit_s else "fail", {"freshness()": age})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--at", required=True)
    args = ap.parse_args()
    at = pd.Timestamp(args.at)
    data = {p.stem: load(p) for p in sorted(args.data.glob("*.csv"))}
    for check, s, col, status, values in evaluate(data, at):
        where = ",".join(f"{k}={v}" for k, v in s.items()) or "-"
        print(f"{check:24} {where:22} {col or '-':12} {status:12} "
              + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in values.items()))


if __name__ == "__main__":
    sys.exit(main())
