#!/usr/bin/env python3
"""Peak RSS of `mlc check` and `mlc serve` on a `group by` over 1M distinct ids (issue 15,
item 3), with the series limit and with it raised past the ids (what every evaluation did
before the limit was enforced while grouping).

Usage: python3 bench/cardinality/run.py [--mlc target/release/mlc] [--out results-DATE.md]
Data and store under /tmp/mlc-card.
"""
import argparse, os, random, re, shutil, socket, subprocess, sys, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = "/tmp/mlc-card"
AT = "2026-03-01T00:00:00Z"


def data():
    path = os.path.join(WORK, "events.csv")
    if not os.path.exists(path):
        random.seed(1)
        base = 1772323200 - 86400
        with open(path, "w") as f:
            f.write("request_id,ts,score,country\n")
            for i in range(1_000_000):
                f.write(f"req-{i:012d}-abcdef,{base + i * 86400 // 1_000_000},{random.random():.4f},"
                        f"{'DE' if i % 3 else 'US'}\n")
    return path


def check(mlc, limit):
    p = subprocess.run(["/usr/bin/time", "-v", mlc, "check", "rules.mlc", "--db", "card.db", "--at", AT,
                        "--max-series-per-check", str(limit), "--format", "json"],
                       cwd=WORK, capture_output=True, text=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    secs = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    return secs, rss, len(p.stdout.splitlines())


def serve(mlc, limit, evaluations=2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([mlc, "serve", "--checks", "rules.mlc", "--db", "card.db", "--listen",
                             f"127.0.0.1:{port}", "--max-series-per-check", str(limit)],
                            cwd=WORK, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        runs = []
        for _ in range(evaluations):
            t = time.perf_counter()
            req = urllib.request.Request(f"{base}/v1/evaluate?at={AT}", method="POST")
            body = urllib.request.urlopen(req, timeout=600).read()
            runs.append((time.perf_counter() - t, len(body), status(proc.pid, "VmRSS")))
        return runs, status(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--out")
    a = ap.parse_args()
    mlc = os.path.abspath(a.mlc)
    os.makedirs(WORK, exist_ok=True)
    shutil.copy(os.path.join(HERE, "rules.mlc"), WORK)
    for f in os.listdir(WORK):
        if f.startswith("card.db"):
            os.remove(os.path.join(WORK, f))
    subprocess.run([mlc, "ingest", "--checks", "rules.mlc", "--db", "card.db", "events", data()],
                   cwd=WORK, check=True, stdout=subprocess.DEVNULL)
    rows = ["| run | wall | peak RSS | results per evaluation |", "|---|---|---|---|"]
    for limit in (1000, 2_000_000):
        secs, rss, n = check(mlc, limit)
        rows.append(f"| `mlc check`, limit {limit:,} | {secs:.2f} s | {rss:,.0f} MiB | {n:,} |")
    for limit in (1000, 2_000_000):
        runs, peak = serve(mlc, limit)
        walls = ", ".join(f"{w:.2f} s" for w, _, _ in runs)
        rows.append(f"| `mlc serve`, limit {limit:,}, {len(runs)} evaluations | {walls} | {peak:,.0f} MiB "
                    f"({runs[-1][2]:,.0f} MiB resident after) | {runs[-1][1]:,} bytes answered |")
    text = "\n".join(rows) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(f"# `group by` over 1M distinct ids\n\n`bench/cardinality/run.py`, mlc `{mlc}`.\n\n{text}")


if __name__ == "__main__":
    sys.exit(main())
