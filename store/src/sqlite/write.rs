//! The SQLite backend's write path for file databases: one read-write rusqlite connection,
//! a cached single-row insert bound straight from the batch's columns, one `BEGIN IMMEDIATE`
//! transaction per batch.
//!
//! sqlx's SQLite driver copies every bound value into an argument list and hands the
//! statement to its worker thread; for a 13-column batch that was about two thirds of
//! ingest's CPU time. This path binds each value once. It also knows the rowid each stored
//! row got, which lets `mlc ingest` build column segments (segments.rs) from the rows it has
//! just parsed ([`InlineSeal`]) instead of reading them back. Schema changes, migrations,
//! prune and `:memory:` databases stay on sqlx; both take SQLite's write lock the same way.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use mlc_engine::schema::ComponentSchema;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::rows::{Column, Rows};
use crate::segments::{self, SegmentInfo};
use crate::sql::{ColumnBuilder, ReadPlan, quote, row_columns, stored_fields, table_name};
use crate::{QuarantinedRecord, WriteOutcome};

/// A built segment: what it covers and its encoded columns by name.
pub(crate) type Built = (SegmentInfo, Vec<(String, Vec<u8>)>);

/// The one write connection of a file database, opened on first use.
pub(crate) struct Writer {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).finish()
    }
}

/// What [`Writer::insert`] did.
pub(crate) struct Inserted {
    pub outcome: WriteOutcome,
    /// The table's segment generation, read in the insert's transaction.
    pub generation: i64,
    /// For each stored row: its index in the batch and the rowid it got, in batch order.
    pub stored: Vec<(u32, i64)>,
}

impl Writer {
    pub(crate) fn new(path: PathBuf) -> Writer {
        Writer {
            path,
            conn: Mutex::new(None),
        }
    }

    /// Runs `f` on the write connection (one caller at a time; SQLite has one writer anyway).
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| StoreError::Ingest("internal error: the SQLite writer panicked".into()))?;
        if guard.is_none() {
            let conn = Connection::open(&self.path)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            // As the sqlx connections: WAL (a property of the file, set on open) with NORMAL
            // sync keeps every committed batch across a process crash.
            conn.execute_batch(
                "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;",
            )?;
            conn.set_prepared_statement_cache_capacity(64);
            *guard = Some(conn);
        }
        match guard.as_mut() {
            Some(conn) => f(conn),
            None => unreachable!("opened above"),
        }
    }

    /// Stores `rows` (a record already stored under the same key and time is skipped) and the
    /// quarantined records in one transaction.
    pub(crate) fn insert(
        &self,
        schema: &ComponentSchema,
        rows: &Rows,
        quarantine: &[QuarantinedRecord],
    ) -> Result<Inserted> {
        let tbl = table_name(&schema.name);
        let names = row_columns(schema);
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            quote(&tbl),
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        );
        let extra_at = names.len();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let generation = generation(&tx, &tbl)?;
            let mut stored = Vec::with_capacity(rows.len());
            {
                let mut stmt = tx.prepare_cached(&sql)?;
                for i in 0..rows.len() {
                    stmt.raw_bind_parameter(1, rows.key[i].as_deref())?;
                    stmt.raw_bind_parameter(2, rows.time[i])?;
                    for (c, col) in rows.fields.iter().enumerate() {
                        let at = c + 3;
                        match col {
                            Column::Int(v) | Column::Timestamp(v) => {
                                stmt.raw_bind_parameter(at, v[i])?
                            }
                            Column::Float(v) => stmt.raw_bind_parameter(at, v[i])?,
                            Column::Bool(v) => stmt.raw_bind_parameter(at, v[i])?,
                            Column::Str(v) => stmt.raw_bind_parameter(at, v[i].as_deref())?,
                        }
                    }
                    stmt.raw_bind_parameter(extra_at, rows.extra[i].as_deref())?;
                    if stmt.raw_execute()? == 1 {
                        stored.push((i as u32, tx.last_insert_rowid()));
                    }
                }
            }
            if !stored.is_empty() {
                let ranges = crate::changes::time_ranges(
                    stored.iter().map(|&(i, _)| rows.time[i as usize]),
                );
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO mlc_changes
                     (component, from_us, to_us, first_rowid, last_rowid, recorded_at_us)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )?;
                let now = crate::sql::now_us();
                // One writer, one transaction: the rows stored are exactly the rowids between
                // the first and the last.
                let first = stored.iter().map(|s| s.1).min();
                let last = stored.iter().map(|s| s.1).max();
                for (lo, hi) in ranges {
                    stmt.execute(rusqlite::params![schema.name, lo, hi, first, last, now])?;
                }
            }
            if !quarantine.is_empty() {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO mlc_quarantine (component, received_at_us, source, raw, reason, fingerprint)
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )?;
                for r in quarantine {
                    stmt.execute(rusqlite::params![
                        r.component,
                        r.received_at_us,
                        r.source,
                        r.raw,
                        r.reason,
                        r.fingerprint()
                    ])?;
                }
            }
            tx.commit()?;
            let accepted = stored.len() as u64;
            Ok(Inserted {
                outcome: WriteOutcome {
                    accepted,
                    duplicates: rows.len() as u64 - accepted,
                    quarantined: quarantine.len() as u64,
                },
                generation,
                stored,
            })
        })
    }

    /// Stores built segments of `tbl` in one transaction and says how many (one overlapping a
    /// stored segment is skipped); `None`, storing nothing, when the table's generation is no
    /// longer `generation` (rows were deleted or columns added since they were read).
    pub(crate) fn store_segments(
        &self,
        tbl: &str,
        generation: i64,
        built: &[Built],
    ) -> Result<Option<u64>> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if self::generation(&tx, tbl)? != generation {
                return Ok(None);
            }
            let mut stored = 0;
            for (info, columns) in built {
                // Another process may have sealed the same rows meanwhile (perhaps cut
                // otherwise): segments never overlap.
                let taken = tx
                    .prepare_cached(
                        "SELECT count(*) FROM mlc_segments
                         WHERE tbl = ? AND first_rowid <= ? AND last_rowid >= ?",
                    )?
                    .query_row(
                        rusqlite::params![tbl, info.last_rowid, info.first_rowid],
                        |r| r.get::<_, i64>(0),
                    )?;
                if taken > 0 {
                    continue;
                }
                tx.prepare_cached(
                    "INSERT INTO mlc_segments (tbl, first_rowid, last_rowid, row_count, min_time, max_time)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )?
                .execute(rusqlite::params![
                    tbl,
                    info.first_rowid,
                    info.last_rowid,
                    info.row_count,
                    info.min_time,
                    info.max_time
                ])?;
                let mut put = tx.prepare_cached(
                    "INSERT INTO mlc_segment_columns (tbl, first_rowid, name, data) VALUES (?, ?, ?, ?)",
                )?;
                for (name, data) in columns {
                    put.execute(rusqlite::params![tbl, info.first_rowid, name, data])?;
                }
                stored += 1;
            }
            tx.commit()?;
            Ok(Some(stored))
        })
    }
}

fn generation(conn: &Connection, tbl: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce((SELECT generation FROM mlc_segment_generations WHERE tbl = ?1), 0)",
        )?
        .query_row([tbl], |r| r.get(0))?)
}

/// Encodes a batch read or built in rowid order as the segment of rowids `first..=last`;
/// `None` when it is empty or a column does not fit the layout (it stays read from the rows).
pub(crate) fn encode_segment(
    batch: &arrow_array::RecordBatch,
    plan: &ReadPlan,
    first: i64,
    last: i64,
    time_col: usize,
) -> Option<Built> {
    let times = batch
        .column(time_col)
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()?;
    let min_time = *times.values().iter().min()?;
    let max_time = *times.values().iter().max()?;
    let mut columns = Vec::with_capacity(plan.columns.len());
    for (i, (name, ty)) in plan.columns.iter().enumerate() {
        columns.push((
            name.clone(),
            segments::encode(batch.column(i).as_ref(), *ty)?,
        ));
    }
    Some((
        SegmentInfo {
            first_rowid: first,
            last_rowid: last,
            row_count: batch.num_rows() as i64,
            min_time,
            max_time,
        },
        columns,
    ))
}

/// Where a segment column's values come from in a [`Rows`] batch.
#[derive(Clone, Copy)]
enum Source {
    Key,
    Time,
    Field(usize),
}

/// Column segments built during one ingest from the rows it stores, so that they need not be
/// read back. Rows are collected while their rowids follow each other (one writer's batches,
/// in one generation); a full segment's worth is encoded and stored. A gap (another writer's
/// rows in between), a new generation (a prune) or the end of the ingest drops what was
/// collected: those rows are sealed by [`crate::Store::seal`] from the table, as before.
pub(crate) struct InlineSeal {
    size: usize,
    plan: ReadPlan,
    sources: Vec<Source>,
    time_col: usize,
    builders: Vec<ColumnBuilder>,
    len: usize,
    first_rowid: i64,
    generation: i64,
}

impl InlineSeal {
    pub(crate) fn new(schema: &ComponentSchema, size: usize) -> Result<InlineSeal> {
        let names: Vec<&str> = schema.column_names().collect();
        let plan = ReadPlan::new(schema, &names)?;
        let fields: Vec<&str> = stored_fields(schema).map(|f| f.name.as_str()).collect();
        let sources = names
            .iter()
            .map(|n| {
                if *n == schema.key {
                    Source::Key
                } else if *n == schema.time {
                    Source::Time
                } else {
                    Source::Field(fields.iter().position(|f| f == n).unwrap_or(usize::MAX))
                }
            })
            .collect();
        let time_col = names.iter().position(|n| *n == schema.time).unwrap_or(1);
        Ok(InlineSeal {
            size,
            builders: plan.builders(0),
            plan,
            sources,
            time_col,
            len: 0,
            first_rowid: 0,
            generation: 0,
        })
    }

    fn reset(&mut self, first_rowid: i64, generation: i64) {
        self.builders = self.plan.builders(self.size);
        self.len = 0;
        self.first_rowid = first_rowid;
        self.generation = generation;
    }

    /// Takes in the rows a batch stored; returns the segments that filled up, each with the
    /// generation its rows were stored in.
    pub(crate) fn add(&mut self, rows: &Rows, inserted: &Inserted) -> Vec<(i64, Built)> {
        let mut full = Vec::new();
        for &(i, rowid) in &inserted.stored {
            let follows = self.len > 0
                && inserted.generation == self.generation
                && rowid == self.first_rowid + self.len as i64;
            if !follows {
                self.reset(rowid, inserted.generation);
            }
            if !self.push(rows, i as usize) {
                // A value this layout cannot hold: leave these rows to the table path.
                self.reset(0, inserted.generation);
                continue;
            }
            self.len += 1;
            if self.len == self.size {
                let last = self.first_rowid + self.len as i64 - 1;
                if let Ok(batch) = self.plan.finish(&mut self.builders, self.len)
                    && let Some(b) =
                        encode_segment(&batch, &self.plan, self.first_rowid, last, self.time_col)
                {
                    full.push((self.generation, b));
                }
                self.len = 0;
                self.first_rowid = 0;
            }
        }
        full
    }

    /// Appends row `i` of `rows` as SQLite stores it: a float `-0.0` reads back as `0.0`.
    fn push(&mut self, rows: &Rows, i: usize) -> bool {
        for (b, src) in self.builders.iter_mut().zip(&self.sources) {
            match (b, *src) {
                (ColumnBuilder::Str(b), Source::Key) => b.append_option(rows.key[i].as_deref()),
                (ColumnBuilder::Int(b), Source::Time) => b.append_value(rows.time[i]),
                (b, Source::Field(f)) => match (b, rows.fields.get(f)) {
                    (ColumnBuilder::Int(b), Some(Column::Int(v) | Column::Timestamp(v))) => {
                        b.append_option(v[i])
                    }
                    (ColumnBuilder::Float(b), Some(Column::Float(v))) => {
                        // SQLite stores NaN as NULL and -0.0 as 0.0.
                        b.append_option(v[i].filter(|x| !x.is_nan()).map(|x| x + 0.0))
                    }
                    (ColumnBuilder::Bool(b), Some(Column::Bool(v))) => b.append_option(v[i]),
                    (ColumnBuilder::Str(b), Some(Column::Str(v))) => {
                        b.append_option(v[i].as_deref())
                    }
                    _ => return false,
                },
                _ => return false,
            }
        }
        true
    }
}
