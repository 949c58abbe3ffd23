"""Writes the small Parquet files of tests/ingest_hostile.rs (pyarrow 26): run it in this folder."""
import math

import pyarrow as pa
import pyarrow.parquet as pq

ts = [(1772323200 + i) * 1_000_000 for i in range(4)]
utc = pa.timestamp("us", tz="UTC")

# inf, -inf and NaN in a float column (row 1 is fine); n as UInt64 within the int range.
pq.write_table(pa.table({
    "request_id": pa.array(["p0", "p1", "p2", "p3"]),
    "ts": pa.array(ts, type=utc),
    "score": pa.array([0.5, math.inf, -math.inf, math.nan], type=pa.float64()),
    "n": pa.array([1, 2, 3, 4], type=pa.uint64()),
}), "nonfinite.parquet")

# A UInt64 above the largest int in row 2.
pq.write_table(pa.table({
    "request_id": pa.array(["u0", "u1"]),
    "ts": pa.array(ts[:2], type=utc),
    "n": pa.array([7, 18446744073709551615], type=pa.uint64()),
    "country": pa.array(["DE", "x" * 300]),
}), "u64.parquet")

# A table of no rows.
pq.write_table(pa.table({
    "request_id": pa.array([], type=pa.string()),
    "ts": pa.array([], type=utc),
}), "no_rows.parquet")
