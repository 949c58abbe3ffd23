#!/usr/bin/env python3
"""Evaluation benchmark: `mlc check` / `mlc backfill` end to end against the Python peers of
../shared/bench/peers, on the same 1M-row data, in the same run, with the same answers.

Workloads (the checks are bench/peers/*.mlc):
  W1  mlc check    bench/peers/w1_drift.mlc     at 2024-03-31   KS + PSI on 10 columns, chi2
  W2  mlc backfill bench/peers/w2_accuracy.mlc  30 days, 1d     accuracy/precision/recall per
                                                                day x country, late labels
  W3  mlc check    bench/peers/w3_validity.mlc                  15 row-validity counts

Each mlc figure is the wall time of the whole process (start to verdicts printed), the
data already ingested into a SQLite store (ingest is timed once, apart). Each peer figure is
the peer's own load + compute (`total_s`, imports excluded, which flatters the peers) and
its process wall time. Runs are round-robin (mlc, then the peers) to spread machine noise;
medians are reported. Every mlc value is compared with the reference peer's output.

usage: python3 bench/eval/run.py [--data /tmp/peers/data/n1000000] [--reps 3]
           [--mlc target/release/mlc] [--work /tmp/mlc-eval-bench] [--skip-peers]
           [--reingest] [--out bench/eval/results-DATE.md]
           [--db postgres://postgres@127.0.0.1:5432/test?schema=bench_1m]

Prerequisites: ../shared/bench/peers/setup.sh and gen_data.py (see bench/eval/README.md),
`cargo build --release`.
"""
import argparse
import datetime
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "peers"))
CHECKS = os.path.join(ROOT, "bench", "peers")
NUMERIC = ["age", "income"] + [f"f{i}" for i in range(8)]

# job id in run_bench.py -> (workload, role)
PEER_JOBS = {
    "W1.scipy.csv": ("W1", "peer"),
    "W1.evidently.csv": ("W1", "evidently"),
    "W2.duckdb-direct.csv": ("W2", "peer"),
    "W2.pandas.csv": ("W2", "peer"),
    "W2.evidently.csv": ("W2", "evidently"),
    "W3.polars.csv": ("W3", "peer"),
    "W3.pandas.csv": ("W3", "peer"),
    "W3.gx.csv": ("W3", "gx"),
}

MLC_JOBS = {
    "W1": ["check", "--format", "json", "--at", "2024-03-31T00:00:00Z",
           os.path.join(CHECKS, "w1_drift.mlc")],
    "W2": ["backfill", "--format", "json", "--dry-run", "--from", "2024-03-08T00:00:00Z",
           "--to", "2024-04-06T00:00:00Z", "--step", "1d", os.path.join(CHECKS, "w2_accuracy.mlc")],
    "W3": ["check", "--format", "json", "--at", "2024-03-31T00:00:00Z",
           os.path.join(CHECKS, "w3_validity.mlc")],
}


def run_timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) / 1024 if m else None
    return p, wall, rss


def pg_schema(url):
    m = re.search(r"[?&]schema=([A-Za-z0-9_]+)", url)
    return m.group(1) if m else None


def ingest(a, db):
    """Ingests the data into `db` (a SQLite path, or a PostgreSQL URL whose `schema=` holds
    it) unless it is there already (`--reingest` starts over)."""
    if db.startswith("postgres"):
        marker = os.path.join(a.work, "pg-" + re.sub(r"[^A-Za-z0-9]+", "_", db) + ".done")
        if os.path.exists(marker) and not a.reingest:
            return None
        schema = pg_schema(db)
        if not schema:
            sys.exit("--db: give the PostgreSQL URL a `?schema=NAME` for the bench's tables")
        base = db.split("?")[0]
        subprocess.run(["psql", base, "-q", "-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE"],
                       check=True)
    else:
        marker = None
        if os.path.exists(db) and not a.reingest:
            return None
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
    out = {}
    for comp in ("inference", "feedback", "training"):
        p, wall, rss = run_timed([a.mlc, "ingest", "--db", store_url(db), "--checks",
                                  os.path.join(CHECKS, "components.mlc"), comp,
                                  os.path.join(a.data, comp + ".csv")])
        if p.returncode != 0:
            sys.exit(f"ingest {comp} failed:\n{p.stderr}")
        out[comp] = (wall, rss)
        print(f"ingest {comp}: {wall:.2f} s, peak RSS {rss:.0f} MiB", flush=True)
    if marker:
        # Freshly copied rows have no statistics and no hint bits yet: the first reads would
        # set them (W1-W3 took 3.0-3.5 s each until they had). Autovacuum gets there in time;
        # the bench does not wait for it.
        # (Two commands: one `-c` of both would run them in one transaction, where VACUUM
        # cannot run.)
        subprocess.run(["psql", db.split("?")[0], "-q", "-c",
                        f"SET search_path = {pg_schema(db)}", "-c", "VACUUM ANALYZE"],
                       check=True)
        open(marker, "w").close()
    return out


def store_url(db):
    return db if db.startswith("postgres") else "sqlite://" + db


def lines(stdout):
    return [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]


def expect_values(result):
    """{expr: first numeric value} of one result line."""
    out = {}
    for e in result.get("expects", []):
        vals = e.get("values") or {}
        for k, v in vals.items():
            out[(e["expr"], k)] = v
    return out


def close(a, b, rel=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def compare_w1(results, ref):
    bad, n = [], 0
    for r in results:
        col = r.get("column")
        vals = expect_values(r)
        for (expr, _), v in vals.items():
            if col and expr.startswith("ks("):
                want = ref[col]["ks_p"]
            elif col and expr.startswith("psi("):
                want = ref[col]["psi"]
            elif expr.startswith("chi2("):
                want = ref["country"]["chi2_p"]
            else:
                continue
            n += 1
            # PSI of f3: numpy's interpolated quantile lands a few ulps off a data value
            # (see the peers' README); everything else is held to 1e-9.
            if not close(v, want, 1e-9 if not (col == "f3" and expr.startswith("psi(")) else 1e-3):
                bad.append(f"{col or 'country'} {expr}: mlc {v} vs peer {want}")
    return n, bad


def compare_w2(results, ref):
    bad, n = [], 0
    names = {"accuracy": "accuracy", "precision": "precision", "recall": "recall"}
    for r in results:
        day = datetime.datetime.fromisoformat(r["window"]["start"].replace("Z", "+00:00")).strftime("%Y-%m-%d")
        slice_ = r.get("slice") or {}
        key = f"{day}|{slice_.get('country', '__all__')}"
        want = ref.get(key)
        if want is None:
            bad.append(f"{key}: not in the peer's output")
            continue
        n += 1
        if r["rows"] != want["n"]:
            bad.append(f"{key}: rows {r['rows']} vs n {want['n']}")
        for (expr, _), v in expect_values(r).items():
            fn = expr.split("(")[0]
            if fn in names:
                n += 1
                if not close(v, want[names[fn]]):
                    bad.append(f"{key} {fn}: mlc {v} vs peer {want[names[fn]]}")
    groups = {k for k in ref}
    seen = len(results)
    if seen != len(groups):
        bad.append(f"{seen} results against {len(groups)} peer groups")
    return n, bad


W3_KEYS = {
    "count(age < 0)": "age_ge_0",
    "count(age is null)": "age_not_null",
    "count(income <= 0)": "income_gt_0",
    "count(score < 0 or score > 1)": "score_between_0_1",
    "count(country not in": "country_in_set",
    "count(request_id is null)": "request_id_not_null",
    **{f"count(f{i} is null)": f"f{i}_not_null" for i in range(8)},
}


def compare_w3(results, ref):
    bad, n = [], 0
    for r in results:
        rows = r["rows"]
        for (expr, _), v in expect_values(r).items():
            if expr.startswith("duplicate_rate("):
                n += 1
                # duplicate_rate = rows whose non-null id repeats / rows with a non-null id
                non_null = rows - ref["request_id_not_null"]
                got = round(v * non_null)
                if got != ref["request_id_unique"]:
                    bad.append(f"duplicate rows: mlc {got} vs peer {ref['request_id_unique']}")
                continue
            key = next((k for p, k in W3_KEYS.items() if expr.startswith(p)), None)
            if key is None:
                continue
            n += 1
            if v != ref[key]:
                bad.append(f"{expr}: mlc {v} vs peer {ref[key]}")
    return n, bad


def median(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and not math.isnan(x)]
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/peers/data/n1000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--work", default="/tmp/mlc-eval-bench")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--reingest", action="store_true")
    ap.add_argument("--only", default="W1,W2,W3")
    ap.add_argument("--out", default=None)
    ap.add_argument("--db", default=None,
                    help="a PostgreSQL URL with ?schema=NAME to run mlc on instead of SQLite")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    db = a.db or os.path.join(a.work, os.path.basename(os.path.normpath(a.data)) + ".db")
    ingested = ingest(a, db)
    env = {**os.environ, "MLC_DB": store_url(db)}
    peer_out = f"/tmp/peers/out/{os.path.basename(os.path.normpath(a.data))}"
    peer_results = os.path.join(a.work, "peer-results")
    runs_path = os.path.join(peer_results, "runs.jsonl")
    if os.path.exists(runs_path):
        os.remove(runs_path)
    only = a.only.split(",")
    mlc = {w: [] for w in only}
    outputs = {}
    for rep in range(a.reps):
        for w in only:
            p, wall, rss = run_timed([a.mlc, *MLC_JOBS[w]], env)
            if p.returncode not in (0, 1):
                sys.exit(f"mlc {w} failed ({p.returncode}):\n{p.stderr[-3000:]}")
            mlc[w].append((wall, rss))
            outputs[w] = lines(p.stdout)
            print(f"[{rep}] mlc {w}: {wall:.3f} s, peak RSS {rss:.0f} MiB", flush=True)
        if not a.skip_peers:
            jobs = [j for j, (w, _) in PEER_JOBS.items() if w in only]
            subprocess.run([sys.executable, os.path.join(PEERS, "run_bench.py"), "--data", a.data,
                            "--reps", "1", "--only", ",".join(jobs), "--results", peer_results],
                           check=True)
    peers = {}
    if os.path.exists(runs_path):
        for line in open(runs_path):
            r = json.loads(line)
            peers.setdefault(r["job"], []).append(r)

    report = [f"# mlc evaluation vs peers ({datetime.date.today()}, {a.reps} reps, median)", "",
              f"data: {a.data}; store: {'PostgreSQL' if db.startswith('postgres') else 'SQLite'} "
              f"{db}; mlc: {a.mlc}", ""]
    if ingested:
        report.append("ingest (once): " + ", ".join(
            f"{c} {w:.2f} s / {r:.0f} MiB" for c, (w, r) in ingested.items()))
        report.append("")
    report += ["| workload | mlc wall s | mlc RSS MiB | peer | peer load+compute s | peer process wall s | ratio (peer load+compute / mlc wall) | ratio (peer process / mlc) |",
               "|---|---|---|---|---|---|---|---|"]
    for w in only:
        mw = median([x for x, _ in mlc[w]])
        mr = median([r for _, r in mlc[w]])
        for job, (pw, role) in PEER_JOBS.items():
            if pw != w or role == "reference" or job not in peers:
                continue
            rs = [r for r in peers[job] if "error" not in r]
            total = median([r.get("total_s") for r in rs])
            if job == "W1.evidently.csv":
                total = median([r.get("total_s", 0) + r.get("compute_psi_s", 0) for r in rs])
                job = "W1.evidently.csv (+PSI report)"
            if job == "W2.evidently.csv":
                total = median([r.get("load_s", 0) + r.get("est_full_loop_s", 0) for r in rs])
                job = "W2.evidently.csv (all windows, extrapolated)"
            pwall = median([r.get("proc_wall_s") for r in rs])
            report.append(f"| {w} | {mw:.3f} | {mr:.0f} | {job} | {total:.3f} | {pwall:.2f} | "
                          f"{total / mw:.2f}x | {pwall / mw:.2f}x |")
        if not peers:
            report.append(f"| {w} | {mw:.3f} | {mr:.0f} | (peers skipped) | | | | |")
    report.append("")
    refs = {"W1": "W1.scipy.csv", "W2": "W2.pandas.csv", "W3": "W3.pandas.csv"}
    cmp = {"W1": compare_w1, "W2": compare_w2, "W3": compare_w3}
    for w in only:
        ref_path = os.path.join(peer_out, refs[w] + ".json")
        if not os.path.exists(ref_path):
            alt = {"W2": "W2.duckdb-direct.csv", "W3": "W3.polars.csv"}.get(w)
            ref_path = os.path.join(peer_out, (alt or refs[w]) + ".json")
        if not os.path.exists(ref_path):
            report.append(f"- {w}: no peer output at {ref_path} to compare with")
            continue
        n, bad = cmp[w](outputs[w], json.load(open(ref_path)))
        verdict = "all equal" if not bad else f"{len(bad)} differ: " + "; ".join(bad[:8])
        report.append(f"- {w} answers vs {os.path.basename(ref_path)}: {n} values compared, {verdict}")
    text = "\n".join(report) + "\n"
    print("\n" + text)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
