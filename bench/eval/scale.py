#!/usr/bin/env python3
"""W1-W3 at scale against the peers on the formats their users keep (issue 20's targets).

    /tmp/peers/venv/bin/python ../shared/bench/peers/gen_data.py --rows 10000000 --formats csv --out /tmp/peers/data/n10000000
    /tmp/peers/venv/bin/python ../shared/bench/peers/resident.py /tmp/peers/data/n10000000
    python3 bench/eval/run.py --data /tmp/peers/data/n10000000 --reps 1 --skip-peers   # ingests once
    python3 bench/eval/scale.py --data /tmp/peers/data/n10000000 --reps 3

Runs mlc (`--reps` times each, median) and, in the same run, each peer once per rep on its
resident format (DuckDB on its own database with `--mode direct`, polars and pandas on
Parquet) and on CSV, all as whole processes under `/usr/bin/time -v`. Prints one markdown
table: wall seconds and peak RSS of each, and the ratio peer wall / mlc wall (above 1: mlc is
faster). The target of issue 20 is a ratio of at least 2 against the best resident peer of
each workload, with mlc's peak RSS at most that peer's.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "peers"))
PY = "/tmp/peers/venv/bin/python"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import MLC_JOBS as MLC  # noqa: E402  (the same mlc commands as run.py)

# workload -> [(label, script, args)]
PEER_JOBS = {
    "W1": [("polars parquet", "w1_polars.py", ["--fmt", "parquet"]),
           ("duckdb database", "w1_duckdb.py", ["--fmt", "duckdb"]),
           ("pandas+scipy parquet", "w1_scipy.py", ["--fmt", "parquet"])],
    "W2": [("duckdb database direct", "w2_duckdb.py", ["--fmt", "duckdb", "--mode", "direct"]),
           ("polars parquet", "w2_polars.py", ["--fmt", "parquet"]),
           ("duckdb csv direct", "w2_duckdb.py", ["--mode", "direct"])],
    "W3": [("duckdb database direct", "w3_duckdb.py", ["--fmt", "duckdb", "--mode", "direct"]),
           ("polars parquet", "w3_polars.py", ["--fmt", "parquet"]),
           ("polars csv", "w3_polars.py", [])],
}


def timed(cmd, env=None, ok=(0,)):
    """Wall seconds and peak RSS MiB of `cmd`, or why it failed (an exit status not in `ok`)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", p.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if p.returncode not in ok or not wall or not rss:
        return None, p.stderr[-400:]
    parts = [float(x) for x in wall.group(1).split(":")]
    secs = parts[-1] + 60 * (parts[-2] if len(parts) > 1 else 0) + 3600 * (parts[-3] if len(parts) > 2 else 0)
    return (secs, int(rss.group(1)) / 1024), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/peers/data/n10000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--work", default="/tmp/mlc-eval-bench")
    ap.add_argument("--only", default="W1,W2,W3")
    a = ap.parse_args()
    db = os.path.join(a.work, os.path.basename(os.path.normpath(a.data)) + ".db")
    if not os.path.exists(db):
        sys.exit(f"{db} does not exist: ingest first with bench/eval/run.py --data {a.data} --skip-peers")
    env = {**os.environ, "MLC_DB": "sqlite://" + db}
    only = a.only.split(",")
    runs = {}
    for _ in range(a.reps):
        for w in only:
            # mlc exits 1 when a check fails, which these workloads' data makes some do.
            got, err = timed([a.mlc] + MLC[w], env, ok=(0, 1))
            if err:
                sys.exit(f"mlc {w} failed: {err}")
            runs.setdefault((w, "mlc"), []).append(got)
            for label, script, args in PEER_JOBS[w]:
                got, err = timed([PY, os.path.join(PEERS, script), a.data, "--out", "/dev/null"] + args)
                runs.setdefault((w, label), []).append(got if not err else None)
                if err:
                    print(f"[{w} {label} failed: {err.strip().splitlines()[-1] if err.strip() else '?'}]", file=sys.stderr)
    med = lambda xs, i: statistics.median(x[i] for x in xs if x) if any(xs) else None
    print(f"data: {a.data}; store: SQLite {db}; mlc: {a.mlc}; {a.reps} reps, median; whole processes\n")
    print("| workload | mlc wall s | mlc RSS MiB | peer | peer wall s | peer RSS MiB | ratio (peer / mlc) |")
    print("|---|---|---|---|---|---|---|")
    for w in only:
        mw, mr = med(runs[(w, "mlc")], 0), med(runs[(w, "mlc")], 1)
        for label, _, _ in PEER_JOBS[w]:
            pw, pr = med(runs[(w, label)], 0), med(runs[(w, label)], 1)
            if pw is None:
                print(f"| {w} | {mw:.2f} | {mr:.0f} | {label} | failed | | |")
                continue
            print(f"| {w} | {mw:.2f} | {mr:.0f} | {label} | {pw:.2f} | {pr:.0f} | {pw / mw:.2f}x |")


if __name__ == "__main__":
    main()
