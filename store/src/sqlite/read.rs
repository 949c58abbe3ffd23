//! The SQLite backend's read path for file databases: windows (`scan`, `scan_collect`) and
//! the latest row per key, through column segments where they cover the rows and the row
//! table elsewhere. Reads run on blocking threads over read-only rusqlite connections to the
//! same file (WAL lets them read while writes go on), decoding each value straight into an
//! Arrow builder, or each segment blob straight into a column's final buffers (assemble.rs).
//!
//! sqlx's SQLite driver hands every row across a channel from its worker thread and copies
//! its values (about 2 µs a row for four columns); this path reads the same rows in a tenth
//! of that, which is what a 230k-row window in well under 100 ms needs. Writes, migrations
//! and in-memory databases (one private connection) stay on sqlx.

use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, blocking};
use crate::BatchStream;
use crate::assemble::{ColumnAssembler, Zeros};
use crate::error::{Result, StoreError};
use crate::segments::{self, Piece, SegmentInfo};
use crate::sql::{ColumnBuilder, ReadPlan, quote};

/// Idle read connections kept for reuse.
const MAX_IDLE: usize = 8;

/// Read-only connections to one SQLite file.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// SQLite's `mmap_size` for these connections.
    mmap_bytes: u64,
}

/// `mmap_size` of the connections that scan windows: none by default. A scan reads each page
/// once; through a mapping, every page read stays in the process's resident memory (up to
/// the mapping's size) although the kernel can drop it, and it reads no faster (W1 and W3
/// at 10M rows took the same time either way, with 250-350 MiB less peak RSS without it,
/// 2026-12-07). `MLC_SQLITE_MMAP_BYTES` sets it.
pub(crate) fn scan_mmap_bytes() -> u64 {
    std::env::var("MLC_SQLITE_MMAP_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `mmap_size` of the connections that look rows up by key (a join's labels): 1 GiB. The
/// lookups come back to the same pages, which a mapping serves without copying them (W2 at
/// 10M rows: 2.15-2.24 s mapped, 2.30-2.66 s without).
pub(crate) const KEYED_MMAP_BYTES: u64 = 1 << 30;

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish()
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf, mmap_bytes: u64) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            mmap_bytes,
        }
    }

    fn take(&self) -> Result<Connection> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // A 64 MiB page cache, and memory-mapped reads where they pay ([`scan_mmap_bytes`]).
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -65536; PRAGMA mmap_size = {};",
            self.mmap_bytes
        ))?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    /// Runs `f` on a read connection of the pool.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let got = f(&conn);
        self.give(conn);
        got
    }

    /// Runs `sql` with `binds` and hands the rows to `sink` as batches of at most `cap` rows
    /// (`usize::MAX`: one batch), in the query's order; `sink` returns `false` to stop early.
    pub(crate) fn read<B: rusqlite::ToSql>(
        &self,
        sql: &str,
        binds: &[B],
        plan: &ReadPlan,
        cap: usize,
        mut sink: impl FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        self.read_sized(
            sql,
            binds,
            plan,
            cap,
            cap.min(crate::READ_BATCH_ROWS),
            &mut sink,
        )
    }

    /// [`Readers::read`] with builders sized for `capacity` rows up front: a caller that
    /// knows the row count spares the reallocations (and fresh pages) of growing them.
    pub(crate) fn read_sized<B: rusqlite::ToSql>(
        &self,
        sql: &str,
        binds: &[B],
        plan: &ReadPlan,
        cap: usize,
        capacity: usize,
        sink: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        let conn = self.take()?;
        let outcome = (|| -> Result<()> {
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(binds.iter()))?;
            let mut builders = plan.builders(capacity);
            let mut n = 0;
            while let Some(row) = rows.next()? {
                for (i, b) in builders.iter_mut().enumerate() {
                    append(b, row.get_ref(i)?, plan, i)?;
                }
                n += 1;
                if n == cap {
                    n = 0;
                    if !sink(plan.finish(&mut builders, cap)?) {
                        return Ok(());
                    }
                }
            }
            if n > 0 {
                sink(plan.finish(&mut builders, n)?);
            }
            Ok(())
        })();
        self.give(conn);
        outcome
    }
}

fn append(b: &mut ColumnBuilder, v: ValueRef<'_>, plan: &ReadPlan, i: usize) -> Result<()> {
    match (b, v) {
        (ColumnBuilder::Int(b), ValueRef::Integer(x)) => b.append_value(x),
        (ColumnBuilder::Float(b), ValueRef::Real(x)) => b.append_value(x),
        (ColumnBuilder::Float(b), ValueRef::Integer(x)) => b.append_value(x as f64),
        (ColumnBuilder::Bool(b), ValueRef::Integer(x)) => b.append_value(x != 0),
        (ColumnBuilder::Str(b), ValueRef::Text(x)) => {
            b.append_value(std::str::from_utf8(x).map_err(|_| mismatch(plan, i, "invalid UTF-8"))?)
        }
        (ColumnBuilder::Int(b), ValueRef::Null) => b.append_null(),
        (ColumnBuilder::Float(b), ValueRef::Null) => b.append_null(),
        (ColumnBuilder::Bool(b), ValueRef::Null) => b.append_null(),
        (ColumnBuilder::Str(b), ValueRef::Null) => b.append_null(),
        (_, other) => {
            return Err(mismatch(
                plan,
                i,
                &format!("a stored {:?} value", other.data_type()),
            ));
        }
    }
    Ok(())
}

fn mismatch(plan: &ReadPlan, i: usize, what: &str) -> StoreError {
    let (name, ty) = plan
        .columns
        .get(i)
        .map(|(n, t)| (n.as_str(), t.name()))
        .unwrap_or(("?", "?"));
    StoreError::CorruptSchema {
        component: plan.table.clone(),
        reason: format!("column `{name}` is declared `{ty}` but holds {what}"),
    }
}

impl SqliteStore {
    pub(crate) fn scan(&self, plan: ReadPlan, start_us: Option<i64>, end_us: i64) -> BatchStream {
        let sql = super::shared::window_sql(&plan);
        let binds = vec![start_us.unwrap_or(i64::MIN), end_us];
        match &self.readers {
            Some(r) => stream_blocking(r.clone(), sql, binds, plan),
            None => super::shared::stream_rows(self.pool.clone(), sql, binds, plan),
        }
    }

    /// The rows numbered `first..=last` (one write's) with time in `[start, end)`, through
    /// the column segments that lie wholly inside that range (those whose times miss
    /// `[start, end)` are not read at all), the other rowids from the rows. `None` when the
    /// segments would not help ([`segments::pieces`]) or there are none: the caller reads the
    /// rows.
    pub(crate) async fn rows_of_write(
        &self,
        plan: &ReadPlan,
        (first, last): (i64, i64),
        (start, end): (i64, i64),
    ) -> Result<Option<Vec<arrow_array::RecordBatch>>> {
        let Some(readers) = self.readers.clone() else {
            return Ok(None);
        };
        let time_col = plan.columns.iter().position(|(n, _)| *n == plan.time);
        let (Some(tc), true) = (time_col, self.segment_rows > 0) else {
            return Ok(None);
        };
        let tbl = plan.table.clone();
        let segs = blocking({
            let r = readers.clone();
            move || r.with(|conn| segment_list(conn, &tbl))
        })
        .await?;
        // Only segments inside the write: one that also holds rows of another write would
        // give those too.
        let inside: Vec<SegmentInfo> = segs
            .into_iter()
            .filter(|s| s.first_rowid >= first && s.last_rowid <= last)
            .collect();
        if inside.is_empty() {
            return Ok(None);
        }
        let Some(pieces) = segments::pieces(&inside, first, last, start, end) else {
            return Ok(None);
        };
        read_pieces(readers, plan.clone(), pieces, start, end, tc)
            .await
            .map(Some)
    }

    /// [`SqliteStore::scan`], collected. A file database is read by several threads at once,
    /// each over its own part of the time range, and the parts are put back in time order.
    pub(crate) async fn scan_collect(
        &self,
        plan: ReadPlan,
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        let Some(readers) = self.readers.clone() else {
            return self.scan(plan, start_us, end_us).try_collect().await;
        };
        let parts = mlc_engine::eval::cores().min(8);
        let start = start_us.unwrap_or(i64::MIN);
        let tb = quote(&plan.table);
        let t = quote(&plan.time);
        // The survey: the table's rowid span (two O(1) lookups), the first and last time in
        // the range (two index seeks), and, for the row path, the rows in the range (a walk of
        // the time index, so only when the segments cannot serve the read).
        let span_sql = format!(
            "SELECT (SELECT min(rowid) FROM {tb}), (SELECT max(rowid) FROM {tb}),
                    (SELECT {t} FROM {tb} WHERE {t} >= ?1 AND {t} < ?2 ORDER BY {t} LIMIT 1),
                    (SELECT {t} FROM {tb} WHERE {t} >= ?1 AND {t} < ?2 ORDER BY {t} DESC LIMIT 1)"
        );
        let count_sql = format!("SELECT count(*) FROM {tb} WHERE {t} >= ?1 AND {t} < ?2");
        let time_col = plan.columns.iter().position(|(n, _)| *n == plan.time);
        let with_segments = self.segment_rows > 0 && time_col.is_some();
        let (got, pieces) = blocking({
            let (r, tbl) = (readers.clone(), plan.table.clone());
            move || {
                r.with(|conn| {
                    // One snapshot for the survey and the segment list.
                    let tx = conn.unchecked_transaction()?;
                    let mut got: Vec<Option<i64>> =
                        tx.query_row(&span_sql, [start, end_us], |r| {
                            (0..4).map(|i| r.get::<_, Option<i64>>(i)).collect()
                        })?;
                    if let [Some(lo_id), Some(hi_id), Some(_), Some(_)] = got[..]
                        && with_segments
                    {
                        let segs = segment_list(&tx, &tbl)?;
                        if let Some(p) = segments::pieces(&segs, lo_id, hi_id, start, end_us) {
                            return Ok((got, Some(p)));
                        }
                    }
                    if got.iter().all(Option::is_some) {
                        got.push(tx.query_row(&count_sql, [start, end_us], |r| r.get(0))?);
                    }
                    Ok((got, None))
                })
            }
        })
        .await?;
        if let (Some(pieces), Some(tc)) = (pieces, time_col) {
            if let Some(one) = read_columns(
                readers.clone(),
                plan.clone(),
                pieces.clone(),
                start,
                end_us,
                tc,
            )
            .await?
            {
                return sort_by_time(vec![one], tc);
            }
            let out = read_pieces(readers, plan, pieces, start, end_us, tc).await?;
            return sort_by_time(out, tc);
        }
        let [Some(lo_id), Some(hi_id), Some(lo_t), Some(hi_t), Some(rows)] = got[..] else {
            return Ok(Vec::new());
        };
        let rows = usize::try_from(rows).unwrap_or(0);
        // A range holding most of the table is read in storage order (a sequential scan of
        // the table, then a check that it came in time order, sorting only when it did not);
        // a narrow one through the time index. Each is cut into parts read side by side.
        let span = usize::try_from(hi_id.saturating_sub(lo_id).saturating_add(1)).unwrap_or(0);
        let dense = time_col.is_some() && rows.saturating_mul(3) >= span;
        let (sql, cuts) = if dense {
            (
                format!(
                    "SELECT {} FROM {tb} NOT INDEXED WHERE rowid >= ?1 AND rowid < ?2 AND {t} >= ?3 AND {t} < ?4 ORDER BY rowid",
                    plan.select_list()
                ),
                split_range(lo_id, hi_id, parts),
            )
        } else {
            (
                format!(
                    "SELECT {} FROM {tb} WHERE {t} >= ?1 AND {t} < ?2 ORDER BY {t}",
                    plan.select_list()
                ),
                split_range(lo_t, hi_t, parts),
            )
        };
        // Builders sized for each part's share (plus slack) spare the copies of growing them.
        let capacity = rows / cuts.len().saturating_sub(1).max(1) + rows / 16 + 1024;
        let tasks: Vec<_> = cuts
            .windows(2)
            .map(|w| {
                let (r, sql, plan) = (readers.clone(), sql.clone(), plan.clone());
                let binds = if dense {
                    vec![w[0], w[1], start, end_us]
                } else {
                    vec![w[0], w[1]]
                };
                blocking(move || {
                    let mut out = Vec::new();
                    r.read_sized(&sql, &binds, &plan, usize::MAX, capacity, &mut |batch| {
                        out.push(batch);
                        true
                    })
                    .map(|()| out)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.extend(t.await?);
        }
        match (dense, time_col) {
            (true, Some(tc)) => sort_by_time(out, tc),
            _ => Ok(out),
        }
    }

    /// See [`crate::Store::time_slices`]: the estimated rows and the interior cut points,
    /// from the segment list of `table` (one indexed read of `mlc_segments`, no row is
    /// read); `None` without segments.
    pub(crate) async fn time_cuts(
        &self,
        table: &str,
        start: i64,
        end: i64,
        rows_per_slice: u64,
    ) -> Result<Option<(f64, Vec<i64>)>> {
        let Some(readers) = self.readers.clone() else {
            return Ok(None);
        };
        if self.segment_rows <= 0 {
            return Ok(None);
        }
        let tbl = table.to_string();
        let segs = blocking(move || readers.with(|conn| segment_list(conn, &tbl))).await?;
        if segs.is_empty() {
            return Ok(None);
        }
        Ok(Some(segments::time_cuts_of(
            &segs,
            start,
            end,
            rows_per_slice,
        )))
    }

    /// See [`crate::Store::latest_by_key`]. A file database is read in one pass over the
    /// rows before `before_us`, through the column segments, in time slices of about
    /// [`SEGMENTS_PER_SLICE`] segments of rows, each slice filtered by the keys as soon as it is read: memory
    /// holds one slice and the rows that match, never the component's history. (An
    /// in-memory database runs the same filter as one SQL query.)
    /// With `latest_only` false, every row of the keys before `before_us`, in time order
    /// (see [`crate::Store::rows_by_key`]).
    pub(crate) async fn rows_of_keys(
        &self,
        plan: ReadPlan,
        before_us: i64,
        key_column: &str,
        keys: &[&str],
        latest_only: bool,
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let tb = quote(&plan.table);
        let t = quote(&plan.time);
        let k = quote(key_column);
        let position = |name: &str| plan.columns.iter().position(|(n, _)| *n == name);
        let (Some(readers), Some(key_col), Some(_)) = (
            self.keyed_readers.clone(),
            position(key_column),
            position(&plan.time),
        ) else {
            // The bare columns of the row that holds max(): SQLite's documented behaviour.
            let tail = match latest_only {
                true => format!(
                    ", max({t}) FROM {tb} WHERE {k} IN (SELECT value FROM json_each(?1)) AND {t} < {before_us} GROUP BY {k}"
                ),
                false => format!(
                    " FROM {tb} WHERE {k} IN (SELECT value FROM json_each(?1)) AND {t} < {before_us} ORDER BY {t}"
                ),
            };
            let sql = format!("SELECT {}{tail}", plan.select_list());
            let json = crate::sql::encode_json(keys)?;
            return super::shared::stream_rows(self.pool.clone(), sql, vec![json], plan)
                .try_collect()
                .await;
        };
        let survey = format!(
            "SELECT (SELECT min({t}) FROM {tb} WHERE {t} < ?1),
                    coalesce((SELECT max(rowid) FROM {tb}) - (SELECT min(rowid) FROM {tb}) + 1, 0)"
        );
        let (first, rows) = blocking({
            let r = readers.clone();
            move || {
                r.with(|c| {
                    Ok(c.query_row(&survey, [before_us], |r| {
                        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
                    })?)
                })
            }
        })
        .await?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        let per_slice = match u64::try_from(self.segment_rows) {
            Ok(n) if n > 0 => n.saturating_mul(SEGMENTS_PER_SLICE),
            _ => SEGMENTS_PER_SLICE * 65_536,
        };
        let slices = usize::try_from(rows.max(0) as u64 / per_slice + 1).unwrap_or(1);
        let cuts = split_range(first, before_us.saturating_sub(1), slices);
        // 64-bit hashes: probing them costs no pointer chase to a key's bytes.
        let wanted: Arc<foldhash::HashSet<u64>> =
            Arc::new(keys.iter().map(|k| KEY_HASH.hash_one(k)).collect());
        let mut kept = Vec::new();
        for w in cuts.windows(2) {
            let batches = self.scan_collect(plan.clone(), Some(w[0]), w[1]).await?;
            let wanted = wanted.clone();
            kept.extend(
                blocking(move || {
                    let parts = mlc_engine::eval::par_map(&batches, batches.len() > 1, |b| {
                        keep_keys(b, key_col, &wanted)
                    });
                    parts.into_iter().collect::<Result<Vec<_>>>()
                })
                .await?
                .into_iter()
                .filter(|b| b.num_rows() > 0),
            );
        }
        if !latest_only {
            return Ok(kept);
        }
        blocking(move || latest_per_key(kept, key_col)).await
    }
}

/// Segments' worth of rows read per time slice by [`SqliteStore::latest_by_key`]: 2M rows
/// with the default segments (about 50 bytes each for a key, a time and a label).
const SEGMENTS_PER_SLICE: u64 = 32;

/// Hashes the keys a semi-join looks for.
const KEY_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x6d6c_634b);

/// The rows of `batch` whose string column `key_col` hashes to one of `wanted`.
fn keep_keys(
    batch: &RecordBatch,
    key_col: usize,
    wanted: &foldhash::HashSet<u64>,
) -> Result<RecordBatch> {
    let keys = batch
        .column(key_col)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .ok_or_else(|| {
            StoreError::Ingest("internal error: a key column read as non-text".into())
        })?;
    let keep: arrow_array::BooleanArray = keys
        .iter()
        .map(|k| Some(k.is_some_and(|k| wanted.contains(&KEY_HASH.hash_one(k)))))
        .collect();
    arrow_select::filter::filter_record_batch(batch, &keep)
        .map_err(|e| StoreError::Ingest(format!("internal error: {e}")))
}

/// Of rows in time order, the last of each key: one batch (none when no rows).
fn latest_per_key(batches: Vec<RecordBatch>, key_col: usize) -> Result<Vec<RecordBatch>> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(Vec::new());
    };
    let internal = |e: arrow_schema::ArrowError| StoreError::Ingest(format!("internal error: {e}"));
    let all = arrow_select::concat::concat_batches(&schema, &batches).map_err(internal)?;
    let Some(keys) = all
        .column(key_col)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
    else {
        return Ok(vec![all]);
    };
    let mut last: foldhash::HashMap<&str, u32> = foldhash::HashMap::default();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            last.insert(k, i as u32);
        }
    }
    let mut rows: Vec<u32> = last.into_values().collect();
    rows.sort_unstable();
    let rows = arrow_array::UInt32Array::from(rows);
    Ok(vec![
        arrow_select::take::take_record_batch(&all, &rows).map_err(internal)?,
    ])
}

/// The sealed segments of `tbl`, by first rowid.
pub(super) fn segment_list(conn: &rusqlite::Connection, tbl: &str) -> Result<Vec<SegmentInfo>> {
    let mut stmt = conn.prepare(
        "SELECT first_rowid, last_rowid, row_count, min_time, max_time FROM mlc_segments
         WHERE tbl = ?1 ORDER BY first_rowid",
    )?;
    let mut rows = stmt.query([tbl])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(SegmentInfo {
            first_rowid: r.get(0)?,
            last_rowid: r.get(1)?,
            row_count: r.get(2)?,
            min_time: r.get(3)?,
            max_time: r.get(4)?,
        });
    }
    Ok(out)
}

/// The rows of `[start, end)` through segments and uncovered rowid ranges (`pieces`, in rowid
/// order), read in parts side by side; the batches come back in rowid order.
async fn read_pieces(
    readers: Arc<Readers>,
    plan: ReadPlan,
    pieces: Vec<Piece>,
    start: i64,
    end: i64,
    time_col: usize,
) -> Result<Vec<arrow_array::RecordBatch>> {
    let weight = |p: &Piece| match p {
        Piece::Segment(s) => s.row_count.max(1),
        Piece::Rows { lo, hi } => (hi - lo).max(1),
    };
    let parts = mlc_engine::eval::cores().min(8) as i64;
    let total: i64 = pieces.iter().map(weight).sum();
    let share = (total / parts).max(1);
    let mut groups: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut acc = 0;
    for p in pieces {
        if acc >= share && groups.len() < parts as usize {
            groups.push(Vec::new());
            acc = 0;
        }
        acc += weight(&p);
        if let Some(g) = groups.last_mut() {
            g.push(p);
        }
    }
    let tasks: Vec<_> = groups
        .into_iter()
        .map(|group| {
            let (r, plan) = (readers.clone(), plan.clone());
            blocking(move || {
                let mut out = Vec::new();
                for p in group {
                    match p {
                        Piece::Segment(seg) => {
                            match r.with(|c| read_segment(c, &plan, &seg, start, end, time_col))? {
                                Some(b) => out.push(b),
                                // Missing or unreadable: the rows are the truth.
                                None => read_rows(
                                    &r,
                                    &plan,
                                    seg.first_rowid,
                                    seg.last_rowid + 1,
                                    start,
                                    end,
                                    &mut out,
                                )?,
                            }
                        }
                        Piece::Rows { lo, hi } => {
                            read_rows(&r, &plan, lo, hi, start, end, &mut out)?;
                        }
                    }
                }
                Ok(out)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await?);
    }
    out.retain(|b| b.num_rows() > 0);
    Ok(out)
}

/// One column blob of one segment: table, first rowid, column name.
pub(super) const SEGMENT_BLOB_SQL: &str =
    "SELECT data FROM mlc_segment_columns WHERE tbl = ?1 AND first_rowid = ?2 AND name = ?3";

/// The rowid of one segment column's row, for incremental blob reads.
const SEGMENT_ROWID_SQL: &str =
    "SELECT rowid FROM mlc_segment_columns WHERE tbl = ?1 AND first_rowid = ?2 AND name = ?3";

/// The pieces as one batch, built column by column: each whole segment's blob is read straight
/// into the column's final buffers (assemble.rs), so the read allocates little more than its
/// result (decoding every segment first, then copying them into one batch, touched twice the
/// memory, and fresh pages cost the kernel a zeroing each). Columns read only for their nulls
/// (`plan.nulls_only`) read only their blobs' validity bitmaps. Columns are spread over the
/// cores. Segments partly inside `[start, end)`
/// and row ranges are read whole first, as [`read_pieces`] reads them. `None` when a segment
/// is missing or unreadable: the caller then reads piece by piece, falling back to the rows.
async fn read_columns(
    readers: Arc<Readers>,
    plan: ReadPlan,
    pieces: Vec<Piece>,
    start: i64,
    end: i64,
    time_col: usize,
) -> Result<Option<arrow_array::RecordBatch>> {
    use arrow_array::{Array, ArrayRef};
    let whole =
        move |p: &Piece| matches!(p, Piece::Segment(s) if s.min_time >= start && s.max_time < end);
    // The pieces not read column by column, as batches, in piece order (none for a whole
    // segment).
    let mut batches: Vec<Vec<arrow_array::RecordBatch>> = Vec::with_capacity(pieces.len());
    for p in &pieces {
        batches.push(match p {
            _ if whole(p) => Vec::new(),
            Piece::Segment(seg) => {
                let (r, plan, seg) = (readers.clone(), plan.clone(), *seg);
                match blocking(move || {
                    r.with(|c| read_segment(c, &plan, &seg, start, end, time_col))
                })
                .await?
                {
                    Some(b) => vec![b],
                    None => return Ok(None),
                }
            }
            Piece::Rows { lo, hi } => {
                let (r, plan, (lo, hi)) = (readers.clone(), plan.clone(), (*lo, *hi));
                blocking(move || {
                    let mut out = Vec::new();
                    read_rows(&r, &plan, lo, hi, start, end, &mut out)?;
                    Ok(out)
                })
                .await?
            }
        });
    }
    // Rows in all: whole segments by their count, the other pieces as read.
    let total_rows: usize = pieces
        .iter()
        .zip(&batches)
        .map(|(p, read)| match p {
            Piece::Segment(s) if whole(p) => usize::try_from(s.row_count).unwrap_or(0),
            _ => read.iter().map(|b| b.num_rows()).sum(),
        })
        .sum();
    let zeros = Zeros::new(if plan.nulls_only.iter().any(|&z| z) {
        total_rows
    } else {
        0
    });
    let batches = Arc::new(batches);
    let pieces = Arc::new(pieces);
    let threads = mlc_engine::eval::cores().min(8);
    let n_cols = plan.columns.len();
    // Each thread takes the next column not yet taken, the widest first (strings, then
    // fixed-width values, then columns read only for their nulls), so that no thread is left
    // with the two string columns while the others wait.
    let mut order: Vec<usize> = (0..n_cols).collect();
    order.sort_by_key(|&c| {
        let wide = plan.columns[c].1 == mlc_engine::schema::DataType::String;
        (plan.nulls_only[c], !wide)
    });
    let order = Arc::new(order);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..threads.min(n_cols.max(1)))
        .map(|_| {
            let (r, plan, batches, pieces, zeros, order, next) = (
                readers.clone(),
                plan.clone(),
                batches.clone(),
                pieces.clone(),
                zeros.clone(),
                order.clone(),
                next.clone(),
            );
            blocking(move || {
                let mut out: Vec<(usize, Option<ArrayRef>)> = Vec::new();
                while let Some(&c) =
                    order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let (name, ty) = &plan.columns[c];
                    let got = r.with(|conn| {
                        let mut col = ColumnAssembler::new(*ty, total_rows, plan.nulls_only[c]);
                        assemble_column(conn, &plan, name, &pieces, &batches, c, &whole, &mut col)
                            .map(|ok| if ok { col.finish(&zeros) } else { None })
                    })?;
                    match got {
                        Some(a) => out.push((c, Some(a))),
                        None => return Ok(vec![(c, None)]),
                    }
                }
                Ok(out)
            })
        })
        .collect();
    let mut columns: Vec<Option<ArrayRef>> = vec![None; n_cols];
    for t in tasks {
        for (c, a) in t.await? {
            match a {
                Some(a) => columns[c] = Some(a),
                None => return Ok(None),
            }
        }
    }
    let Some(columns) = columns.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let rows = columns.first().map_or_else(
        || {
            batches
                .iter()
                .flatten()
                .map(|b| b.num_rows())
                .sum::<usize>()
                + pieces
                    .iter()
                    .filter(|p| whole(p))
                    .map(|p| match p {
                        Piece::Segment(s) => usize::try_from(s.row_count).unwrap_or(0),
                        Piece::Rows { .. } => 0,
                    })
                    .sum::<usize>()
        },
        |c| c.len(),
    );
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(arrow_array::RecordBatch::try_new_with_options(plan.arrow.clone(), columns, &options).ok())
}

/// Column `c` (`name`) of a read, appended to `col` piece by piece: whole segments' blobs read
/// straight into its buffers, the other pieces from `batches`. `false` when a segment's blob is
/// missing or malformed (the caller reads the rows instead).
#[allow(clippy::too_many_arguments)]
fn assemble_column(
    conn: &rusqlite::Connection,
    plan: &ReadPlan,
    name: &str,
    pieces: &[Piece],
    batches: &[Vec<arrow_array::RecordBatch>],
    c: usize,
    whole: &impl Fn(&Piece) -> bool,
    col: &mut ColumnAssembler,
) -> Result<bool> {
    use rusqlite::OptionalExtension;
    let mut find = conn.prepare_cached(SEGMENT_ROWID_SQL)?;
    let mut blob: Option<rusqlite::blob::Blob<'_>> = None;
    for (p, read) in pieces.iter().zip(batches) {
        match p {
            Piece::Segment(seg) if whole(p) => {
                let Some(rowid) = find
                    .query_row(rusqlite::params![plan.table, seg.first_rowid, name], |r| {
                        r.get::<_, i64>(0)
                    })
                    .optional()?
                else {
                    return Ok(false);
                };
                let handle = match blob.take() {
                    Some(mut b) => {
                        b.reopen(rowid)?;
                        b
                    }
                    None => conn.blob_open(
                        rusqlite::MAIN_DB,
                        c"mlc_segment_columns",
                        c"data",
                        rowid,
                        true,
                    )?,
                };
                let got = col.append_blob(&handle)?;
                blob = Some(handle);
                if got != usize::try_from(seg.row_count).ok() {
                    return Ok(false);
                }
            }
            _ => {
                for b in read {
                    if !col.append_array(b.column(c).as_ref()) {
                        return Ok(false);
                    }
                }
            }
        }
    }
    Ok(true)
}

/// The rows with `lo <= rowid < hi` and time in `[start, end)`, in rowid order.
pub(super) fn read_rows(
    readers: &Readers,
    plan: &ReadPlan,
    lo: i64,
    hi: i64,
    start: i64,
    end: i64,
    out: &mut Vec<arrow_array::RecordBatch>,
) -> Result<()> {
    let sql = format!(
        "SELECT {} FROM {} NOT INDEXED WHERE rowid >= ?1 AND rowid < ?2 AND {t} >= ?3 AND {t} < ?4 ORDER BY rowid",
        plan.select_list(),
        quote(&plan.table),
        t = quote(&plan.time)
    );
    let capacity = usize::try_from(hi - lo).unwrap_or(0).min(1 << 20);
    readers.read_sized(
        &sql,
        &[lo, hi, start, end],
        plan,
        usize::MAX,
        capacity,
        &mut |b| {
            out.push(b);
            true
        },
    )
}

/// A segment's rows with time in `[start, end)`, decoded from its column blobs; `None` when a
/// blob is missing or does not decode as its column's type.
fn read_segment(
    conn: &rusqlite::Connection,
    plan: &ReadPlan,
    seg: &SegmentInfo,
    start: i64,
    end: i64,
    time_col: usize,
) -> Result<Option<arrow_array::RecordBatch>> {
    let mut stmt = conn.prepare(SEGMENT_BLOB_SQL)?;
    let rows = usize::try_from(seg.row_count).unwrap_or(0);
    let mut arrays = Vec::with_capacity(plan.columns.len());
    for (name, ty) in &plan.columns {
        let mut found = stmt.query(rusqlite::params![plan.table, seg.first_rowid, name])?;
        let Some(row) = found.next()? else {
            return Ok(None);
        };
        let Ok(blob) = row.get_ref(0)?.as_blob() else {
            return Ok(None);
        };
        match segments::decode(blob, *ty) {
            Some(a) if a.len() == rows => arrays.push(a),
            _ => return Ok(None),
        }
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    let Ok(batch) =
        arrow_array::RecordBatch::try_new_with_options(plan.arrow.clone(), arrays, &options)
    else {
        return Ok(None);
    };
    if seg.min_time >= start && seg.max_time < end {
        return Ok(Some(batch));
    }
    let Some(times) = batch
        .column(time_col)
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .cloned()
    else {
        return Ok(None);
    };
    Ok(segments::filter_time(batch, &times, start, end))
}

/// Batches read in storage order, put in time order: unchanged when they already are (records
/// are mostly ingested in time order), else one batch sorted by time, stably.
fn sort_by_time(
    batches: Vec<arrow_array::RecordBatch>,
    time_col: usize,
) -> Result<Vec<arrow_array::RecordBatch>> {
    use arrow_array::Array;
    let time_of = |b: &arrow_array::RecordBatch| {
        b.column(time_col)
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .map(|a| a.values().clone())
    };
    let mut last = i64::MIN;
    let mut sorted = true;
    for b in &batches {
        let Some(times) = time_of(b) else {
            return Ok(batches);
        };
        for &t in times.iter() {
            if t < last {
                sorted = false;
                break;
            }
            last = t;
        }
        if !sorted {
            break;
        }
    }
    if sorted || batches.is_empty() {
        return Ok(batches);
    }
    let schema = batches[0].schema();
    let all = arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| StoreError::Ingest(format!("internal error ordering a read: {e}")))?;
    let Some(times) = time_of(&all) else {
        return Ok(vec![all]);
    };
    let mut idx: Vec<u32> = (0..all.num_rows() as u32).collect();
    idx.sort_by_key(|&i| times[i as usize]);
    let idx = arrow_array::UInt32Array::from(idx);
    let sorted = arrow_select::take::take_record_batch(&all, &idx)
        .map_err(|e| StoreError::Ingest(format!("internal error ordering a read: {e}")))?;
    Ok(vec![sorted])
}

/// `n` ranges covering `[lo, hi]`: `n + 1` increasing cut points, the last one past `hi`.
fn split_range(lo: i64, hi: i64, n: usize) -> Vec<i64> {
    let span = i128::from(hi) - i128::from(lo) + 1;
    let n = i128::try_from(n.max(1)).unwrap_or(1).min(span.max(1));
    (0..=n)
        .map(|i| {
            let cut = i128::from(lo) + span * i / n;
            i64::try_from(cut).unwrap_or(i64::MAX)
        })
        .collect()
}

/// Runs `sql` on a blocking thread over the fast read path and yields bounded batches
/// through a channel of two: the reader stays at most two batches ahead of the consumer.
fn stream_blocking<B: rusqlite::ToSql + Send + 'static>(
    readers: Arc<Readers>,
    sql: String,
    binds: Vec<B>,
    plan: ReadPlan,
) -> BatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<arrow_array::RecordBatch>>(2);
    tokio::task::spawn_blocking(move || {
        let res = readers.read(&sql, &binds, &plan, crate::READ_BATCH_ROWS, |b| {
            tx.blocking_send(Ok(b)).is_ok()
        });
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    crate::sql::receiver_stream(rx)
}
