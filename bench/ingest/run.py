#!/usr/bin/env python3
"""Ingest and read benchmarks of mlc's store, beside peers measured in the same run.

Measures, on the peers' `inference` file (../../../shared/bench/peers, gen_data.py):
  - `mlc ingest` into SQLite and into PostgreSQL (COPY), rows/s and peak RSS, timed as a user
    runs it: the release binary's whole process, start to exit (declarations read, file
    parsed, rows stored, segments built, database closed);
  - DuckDB `read_csv` into a table, and pandas `read_csv` + `to_sql` into SQLite;
  - reading one 7-day window's 4 numeric columns back from SQLite (and PostgreSQL);
  - peak RSS of mlc ingest for the 1M file and a 5M file (the 1M file five times over, keys
    made unique), to show memory does not grow with the file.

Usage: python3 bench/ingest/run.py [--data /tmp/peers/data/n1000000] [--python /tmp/peers/venv/bin/python]
       [--pg postgres://postgres@127.0.0.1:5432/test] [--skip-5m]
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mlc_ingest(mlc, db, path):
    """Runs `mlc ingest` of the inference file into db; returns (result dict, peak RSS MiB)."""
    comps = os.path.join(ROOT, "bench", "peers", "components.mlc")
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", mlc, "ingest", "--db", db, "--checks", comps,
                        "inference", path], capture_output=True, text=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"mlc ingest failed:\n{p.stdout}\n{p.stderr}")
    m = re.search(r"(\d+) accepted, (\d+) duplicates, (\d+) quarantined", p.stdout + p.stderr)
    if not m:
        sys.exit(f"mlc ingest printed no counts:\n{p.stdout}\n{p.stderr}")
    rows = sum(int(g) for g in m.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    return {"rows": rows, "secs": secs, "rows_per_s": rows / secs}, rss


def run(cmd, **kw):
    """Runs cmd under /usr/bin/time -v; returns (RESULT json or None, peak RSS MiB, wall s)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) / 1024 if m else float("nan")
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
    return res, rss, wall


PEER_DUCKDB = """
import duckdb, sys, time, json
con = duckdb.connect(sys.argv[2])
t = time.perf_counter()
con.execute(f"CREATE TABLE inference AS SELECT * FROM read_csv('{sys.argv[1]}')")
n = con.execute("SELECT count(*) FROM inference").fetchone()[0]
s = time.perf_counter() - t
print("RESULT " + json.dumps({"rows": n, "secs": s, "rows_per_s": n / s}))
"""

PEER_PANDAS = """
import pandas as pd, sqlite3, sys, time, json
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
t1 = time.perf_counter()
con = sqlite3.connect(sys.argv[2])
df.to_sql("inference", con, index=False, chunksize=50000)
con.commit()
t2 = time.perf_counter()
n = len(df)
print("RESULT " + json.dumps({"rows": n, "secs": t2 - t, "to_sql_secs": t2 - t1, "rows_per_s": n / (t2 - t)}))
"""


def make_5m(src, dst):
    """The 1M file five times, request ids prefixed per copy so that no row is a duplicate."""
    with open(src) as f, open(dst, "w") as out:
        header = f.readline()
        body = f.read()
    with open(dst, "w") as out:
        out.write(header)
        for c in range(5):
            out.write(re.sub(r"(?m)^r", f"c{c}r", body))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/peers/data/n1000000")
    ap.add_argument("--python", default="/tmp/peers/venv/bin/python")
    ap.add_argument("--pg", default=os.environ.get("MLC_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--skip-5m", action="store_true")
    a = ap.parse_args()
    csv = os.path.join(a.data, "inference.csv")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "mlc"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "mlc-store", "--example", "ingest_bench"], cwd=ROOT, check=True)
    tgt = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    mlc = os.path.join(tgt, "release", "mlc")
    exe = os.path.join(tgt, "release", "examples", "ingest_bench")
    tmp = tempfile.mkdtemp(prefix="mlc-bench-")
    rows = []
    try:
        db = f"sqlite://{tmp}/mlc.db"
        r, rss = mlc_ingest(mlc, db, csv)
        rows.append(("mlc ingest -> SQLite", r["rows_per_s"], r["secs"], rss))
        schema = f"mlc_bench_{os.getpid()}"
        pg = f"{a.pg}?schema={schema}"
        r, rss = mlc_ingest(mlc, pg, csv)
        rows.append(("mlc ingest -> PostgreSQL (COPY)", r["rows_per_s"], r["secs"], rss))
        r, rss, _ = run([a.python, "-c", PEER_DUCKDB, csv, f"{tmp}/duck.db"])
        rows.append(("DuckDB read_csv -> table", r["rows_per_s"], r["secs"], rss))
        r, rss, _ = run([a.python, "-c", PEER_PANDAS, csv, f"{tmp}/pandas.db"])
        rows.append((f"pandas read_csv + to_sql -> SQLite (to_sql {r['to_sql_secs']:.1f} s)", r["rows_per_s"], r["secs"], rss))
        base = rows[0][1]
        print(f"\n## Ingest of {csv} ({r['rows']:,} rows)\n")
        print("| what | rows/s | seconds | peak RSS MiB | mlc SQLite / this |")
        print("|---|---:|---:|---:|---:|")
        for name, rps, secs, rss in rows:
            print(f"| {name} | {rps:,.0f} | {secs:.2f} | {rss:.0f} | {base / rps:.2f}x |")

        start, end = "2024-03-23T00:00:00Z", "2024-03-30T00:00:00Z"
        print(f"\n## Read of a 7-day window [{start}, {end}), columns age, income, f0, score\n")
        print("| store | rows | median ms | min ms |")
        print("|---|---:|---:|---:|")
        for url in (db, pg):
            r, _, _ = run([exe, "read", url, start, end, "7"])
            print(f"| {r['backend']} | {r['rows']:,} | {r['median_ms']:.1f} | {r['min_ms']:.1f} |")
        subprocess.run(["psql", a.pg, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False)

        if not a.skip_5m:
            big = f"{tmp}/inference5m.csv"
            make_5m(csv, big)
            print("\n## Peak memory of mlc ingest against file size (SQLite)\n")
            print("| file | rows | rows/s | peak RSS MiB |")
            print("|---|---:|---:|---:|")
            for name, path in (("1M", csv), ("5M", big)):
                r, rss = mlc_ingest(mlc, f"sqlite://{tmp}/rss_{name}.db", path)
                print(f"| {name} | {r['rows']:,} | {r['rows_per_s']:,.0f} | {rss:.0f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
