#!/usr/bin/env python3
"""Issue 20, target 3: `mlc serve` holding a 10M-row window, after 1% new rows and 0.1% late
rows, re-evaluates from its panes at a fraction of a full evaluation's cost, with the same
results.

    python3 bench/eval/continuous.py --data /tmp/peers/data/n10000000 --reps 3 \
        [--mlc target/release/mlc] [--out bench/eval/results-DATE-continuous.md]

The store is `/tmp/mlc-eval-bench/n{rows}.db` (ingested by run.py / scale.py, or here when
missing), copied for each rep. Per rep, two servers on the copy, both asked over HTTP with
`POST /v1/evaluate?check=C&at=T` (the time the request takes, seen by the client):
- `panes`: the default (`pane_cache_bytes` 512 MiB): evaluates at T = 2024-03-31T00:00Z
  (cold: computes every pane), and again at T after nothing changed (warm);
- `rows`: `MLC_PANE_CACHE_BYTES=0`, every evaluation from the rows, as before panes: at T
  (each time twice in a row, the faster counted: the first may read the copy from disk).
Then `mlc ingest` (another process: the servers learn of it from the store's change journal)
appends 1% new rows (times in [T, T + 1h)) and 0.1% late rows (times spread over the
window's 30 days), and both servers evaluate at T + 1h; then the next hour's 1% and another
0.1% late rows, and both evaluate at T + 2h (a server's steady state: the evaluation before
came from panes, not from the cold computation of every pane). The results of the two must
agree (counts, statuses, quantiles and KS exactly; means to 1e-9 relative). Reported per
check: the full evaluation from the rows, the panes' cold and warm evaluations, and warm /
full at T + 1h and at T + 2h.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(HERE, "continuous.mlc")
COMPONENTS = os.path.join(ROOT, "bench", "peers", "components.mlc")
CHECKS = ["cont_counts", "cont_quality", "cont_duplicates", "cont_drift"]
T = "2024-03-31T00:00:00Z"
T_NEXT = "2024-03-31T01:00:00Z"
T_STEADY = "2024-03-31T02:00:00Z"
T_US = 1711843200 * 1_000_000
COUNTRIES = ["US", "IN", "BR", "DE", "GB", "FR", "JP", "MX", "CA", "NG"]
SUMS = ("mean(",)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def iso(us):
    secs, frac = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:06d}Z"


def new_rows(path, rows, late, seed, hour=0):
    """`rows` new rows in [T + hour, T + hour + 1h) and `late` rows spread over the 30 days
    before T."""
    rng = random.Random(seed * 1000 + hour)
    with open(path, "w") as f:
        f.write("request_id,ts,model_version,country,age,income,f0,f1,f2,f3,f4,f5,f6,f7,"
                "score,prediction\n")
        for i in range(rows + late):
            if i < rows:
                ts = T_US + hour * 3600 * 1_000_000 + rng.randrange(3600 * 1_000_000)
            else:
                ts = T_US - 1 - rng.randrange(30 * 86400 * 1_000_000 - 3600 * 1_000_000)
            fs = ",".join(f"{rng.gauss(0, 1):.6f}" for _ in range(8))
            f.write(f"n{seed}h{hour}x{i:09d},{iso(ts)},v1.4.2,{rng.choice(COUNTRIES)},"
                    f"{rng.randrange(18, 80)},{rng.uniform(1000, 90000):.2f},{fs},"
                    f"{rng.random():.6f},{rng.randrange(2)}\n")


class Server:
    def __init__(self, mlc, db, env):
        self.port = free_port()
        # The server's log goes to a file (a pipe nobody reads would stop a chatty server,
        # say with RUST_LOG=mlc_runtime=debug to see where an evaluation's time goes).
        self.log_path = f"{db}.{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [mlc, "serve", "--checks", RULES, "--db", "sqlite://" + db, "--listen",
             f"127.0.0.1:{self.port}", "--no-watch"],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=self.log)
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        else:
            sys.exit("mlc serve did not start:\n" + open(self.log_path).read())
        # Let the start-up evaluations (at now: empty windows) finish.
        time.sleep(1.0)

    def evaluate(self, check, at):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/evaluate?check={check}&at={at}", method="POST")
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=3600) as r:
            body = json.loads(r.read())
        return time.perf_counter() - t0, body["results"]

    def peak_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def same(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: members differ"
        for k in a:
            if k in ("message", "rules_version"):
                continue
            if k.startswith(SUMS) and isinstance(a[k], float) and isinstance(b[k], float):
                if abs(a[k] - b[k]) > 1e-9 * max(abs(a[k]), abs(b[k]), 1.0):
                    return f"{path}.{k}: {a[k]} vs {b[k]}"
                continue
            d = same(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a} vs {b}"


def full(whole, check, at):
    """A full evaluation's time: the faster of two in a row on the server without panes
    (the first may pay for reading the store's copy into the page cache; single reads
    varied 0.5-3.8 s for the same evaluation on this kind of machine)."""
    t1, got = whole.evaluate(check, at)
    t2, _ = whole.evaluate(check, at)
    return min(t1, t2), got


def both(whole, panes, rows, at, from_rows, from_panes):
    """Every check evaluated at `at` by both servers, timed into `rows[c][from_rows]` and
    `rows[c][from_panes]`; exits if their results differ or one is an error."""
    for c in CHECKS:
        t, want = full(whole, c, at)
        rows[c][from_rows].append(t)
        t, got = panes.evaluate(c, at)
        rows[c][from_panes].append(t)
        diff = same(want, got)
        if diff:
            sys.exit(f"{c}: panes and rows disagree at {at}: {diff}")
        if any(r["status"] == "error" for r in got):
            sys.exit(f"{c}: error: {got}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    n = json.load(open(os.path.join(a.data, "meta.json")))["rows"]
    db = f"/tmp/mlc-eval-bench/n{n}.db"
    if not os.path.exists(db):
        os.makedirs(os.path.dirname(db), exist_ok=True)
        for comp in ("inference", "feedback", "training"):
            t0 = time.perf_counter()
            subprocess.run([a.mlc, "ingest", "--db", "sqlite://" + db, "--checks", COMPONENTS,
                            comp, os.path.join(a.data, comp + ".csv")], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"ingest {comp}: {time.perf_counter() - t0:.1f} s", flush=True)
    work = "/tmp/mlc-cont"
    os.makedirs(work, exist_ok=True)
    new, late = n // 100, n // 1000
    rows = {c: {"full": [], "cold": [], "warm_same": [], "full_after": [], "warm": [],
                "full_steady": [], "steady": []}
            for c in CHECKS}
    peaks, ingests = [], []
    for rep in range(a.reps):
        copy = os.path.join(work, "w.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(copy + suffix):
                os.remove(copy + suffix)
            if os.path.exists(db + suffix):
                shutil.copyfile(db + suffix, copy + suffix)
        # The copy's pages written out before the servers start, not during their reads.
        os.sync()
        csv = os.path.join(work, f"new{rep}.csv")
        new_rows(csv, new, late, seed=rep)
        csv2 = os.path.join(work, f"new{rep}b.csv")
        new_rows(csv2, new, late, seed=rep, hour=1)
        panes = Server(a.mlc, copy, {})
        whole = Server(a.mlc, copy, {"MLC_PANE_CACHE_BYTES": "0"})
        try:
            for c in CHECKS:
                # The rows first: the page cache then holds the window for both.
                t, _ = full(whole, c, T)
                rows[c]["full"].append(t)
                t, _ = panes.evaluate(c, T)
                rows[c]["cold"].append(t)
                t, _ = panes.evaluate(c, T)
                rows[c]["warm_same"].append(t)
            t0 = time.perf_counter()
            subprocess.run([a.mlc, "ingest", "--db", "sqlite://" + copy, "--checks",
                            COMPONENTS, "inference", csv], check=True,
                           stdout=subprocess.DEVNULL)
            ingests.append(time.perf_counter() - t0)
            both(whole, panes, rows, T_NEXT, "full_after", "warm")
            # Steady state: the next hour's 1% and another 0.1% late, after an evaluation
            # from panes (not the cold one) freed what it held.
            subprocess.run([a.mlc, "ingest", "--db", "sqlite://" + copy, "--checks",
                            COMPONENTS, "inference", csv2], check=True,
                           stdout=subprocess.DEVNULL)
            both(whole, panes, rows, T_STEADY, "full_steady", "steady")
            peaks.append((panes.peak_mib(), whole.peak_mib()))
        finally:
            panes.stop()
            whole.stop()
        print(f"rep {rep + 1}: " + ", ".join(
            f"{c} {rows[c]['full_after'][-1]:.3f} s -> {rows[c]['warm'][-1]:.3f} s, "
            f"then {rows[c]['full_steady'][-1]:.3f} s -> {rows[c]['steady'][-1]:.3f} s"
            for c in CHECKS), flush=True)

    med = statistics.median
    out = [f"# Continuous evaluation: {n:,} rows, +{new:,} new and {late:,} late rows "
           f"(median of {a.reps})", "",
           "Each figure is one `POST /v1/evaluate?check=C&at=T` as the client sees it. "
           "`rows`: a server with `MLC_PANE_CACHE_BYTES=0` (every evaluation from the rows; the "
           "faster of two evaluations in a row, the second with the window in the page "
           "cache); "
           "`panes`: the default. Results of both agree at T + 1h (checked).", "",
           "T + 1h follows the cold evaluation (whose freed memory the allocator may return "
           "during the next one); T + 2h follows another hour's rows after an evaluation "
           "from panes, as a server runs.", "",
           "| check | rows at T | panes cold at T | panes again at T | rows at T+1h | "
           "panes at T+1h | panes / rows at T+1h | rows at T+2h | panes at T+2h | "
           "panes / rows at T+2h |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for c in CHECKS:
        r = rows[c]
        ratio = med(r["warm"]) / med(r["full_after"])
        steady = med(r["steady"]) / med(r["full_steady"])
        out.append(f"| {c} | {med(r['full']):.3f} s | {med(r['cold']):.3f} s | "
                   f"{med(r['warm_same']):.3f} s | {med(r['full_after']):.3f} s | "
                   f"{med(r['warm']):.3f} s | {100 * ratio:.1f}% | "
                   f"{med(r['full_steady']):.3f} s | {med(r['steady']):.3f} s | "
                   f"{100 * steady:.1f}% |")
    total_rows = sum(med(rows[c]["full_after"]) for c in CHECKS)
    total_warm = sum(med(rows[c]["warm"]) for c in CHECKS)
    steady_rows = sum(med(rows[c]["full_steady"]) for c in CHECKS)
    steady_warm = sum(med(rows[c]["steady"]) for c in CHECKS)
    out += ["", f"All four: {total_rows:.3f} s from the rows, {total_warm:.3f} s from panes "
            f"({100 * total_warm / total_rows:.1f}%) at T + 1h; {steady_rows:.3f} s and "
            f"{steady_warm:.3f} s ({100 * steady_warm / steady_rows:.1f}%) at T + 2h.",
            f"`mlc ingest` of the new rows: {med(ingests):.2f} s. Peak RSS of the servers "
            f"(panes / rows): " + ", ".join(f"{p:.0f} / {w:.0f} MiB" for p, w in peaks) + "."]
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
