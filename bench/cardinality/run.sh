#!/usr/bin/env bash
# Peak RSS of `mlc check` and `mlc serve` on a `group by` over 1M distinct ids (issue 15,
# item 3). Usage: bench/cardinality/run.sh [MLC_BINARY]; data and store under /tmp/mlc-card.
# "Before" is the same binary with the limit raised past the ids (--max-series-per-check
# 2000000): that is what every evaluation did before the limit was enforced while grouping.
set -euo pipefail
MLC=${1:-target/release/mlc}
MLC=$(realpath "$MLC")
HERE=$(cd "$(dirname "$0")" && pwd)
W=/tmp/mlc-card
mkdir -p "$W" && cd "$W"
if [ ! -f events.csv ]; then
  python3 - <<'PY'
import random
random.seed(1)
with open('events.csv', 'w') as f:
    f.write('request_id,ts,score,country\n')
    base = 1772323200 - 86400
    for i in range(1_000_000):
        f.write(f'req-{i:012d}-abcdef,{base + i * 86400 // 1_000_000},{random.random():.4f},{"DE" if i % 3 else "US"}\n')
PY
fi
cp "$HERE/rules.mlc" .
rm -f card.db card.db-*
"$MLC" ingest --checks rules.mlc --db card.db events events.csv
for lim in 1000 2000000; do
  /usr/bin/time -f "mlc check, limit $lim: %e s, peak RSS %M KB" \
    "$MLC" check rules.mlc --db card.db --at 2026-03-01T00:00:00Z --max-series-per-check $lim \
    --format json > check_$lim.json 2> check_$lim.err || true
  echo "$(tail -1 check_$lim.err); $(wc -l < check_$lim.json) results"
done
for lim in 1000 2000000; do
  port=$((9600 + RANDOM % 200))
  "$MLC" serve --checks rules.mlc --db card.db --listen 127.0.0.1:$port --max-series-per-check $lim > serve_$lim.log 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.2; done
  for i in 1 2; do
    s=$(date +%s.%N)
    curl -s -X POST "http://127.0.0.1:$port/v1/evaluate?at=2026-03-01T00:00:00Z" -o eval_$lim.json
    e=$(date +%s.%N)
    echo "mlc serve, limit $lim, evaluation $i: $(echo "$e - $s" | bc) s, $(wc -c < eval_$lim.json) bytes of results, RSS after $(awk '/VmRSS/{print $2}' /proc/$pid/status) KB"
  done
  echo "mlc serve, limit $lim: peak RSS $(awk '/VmHWM/{print $2}' /proc/$pid/status) KB"
  kill $pid; wait $pid 2>/dev/null || true
done
