//! The SQLite backend: the embedded default. One file in WAL mode; one transaction per
//! batch. This file holds the pool's operations that are SQLite's own (open, write
//! transactions, the [`Dialect`], declarations and prune with the segments they drop, batches
//! on `:memory:`); the SQL PostgreSQL runs too (declarations, state, slots, results,
//! quarantine, simple reads, row streaming) comes from `shared_sql.rs`. File databases write
//! through rusqlite (`write.rs`) and read through it (`read.rs`, the one read path), and
//! `seal.rs` builds column segments. `:memory:` stores keep sqlx's prepared multi-row inserts
//! and reads.

mod read;
mod seal;
mod write;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mlc_engine::schema::{ComponentSchema, DataType};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::error::{Result, StoreError};
use crate::rows::{Column, Rows};
use crate::segments;
use crate::shared_sql::{Dialect, shared_sql};
use crate::sql::{self, quote, table_name};
use crate::{QuarantinedRecord, WriteOutcome};
use read::Readers;
use seal::drop_segments;
pub(crate) use write::InlineSeal;
use write::Writer;

/// SQLite refuses statements with more bound variables than this (its compile-time default).
const MAX_VARIABLES: usize = 32_766;

#[derive(Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// The fast read path of a file database; `None` for `:memory:`, read through `pool`.
    readers: Option<Arc<Readers>>,
    /// Read connections for lookups by key (memory-mapped: `read::KEYED_MMAP_BYTES`).
    keyed_readers: Option<Arc<Readers>>,
    /// The fast write path of a file database; `None` for `:memory:`, written through `pool`.
    writer: Option<Arc<Writer>>,
    /// Rows of rowid space per column segment (segments.rs); 0: no segments.
    segment_rows: i64,
}

// Declarations, state, slots, results, quarantine, the simple reads and row streaming: the SQL
// both backends share (shared_sql.rs), as `SqliteStore` methods and the functions of `shared`.
shared_sql!(sqlx::Sqlite, SqliteStore);

/// One batch for [`SqliteStore::write_owned`]: moved to the blocking thread that writes it.
pub(crate) struct OwnedBatch {
    pub schema: ComponentSchema,
    pub rows: Arc<Rows>,
    pub quarantine: Arc<Vec<QuarantinedRecord>>,
}

fn migrator() -> Migrator {
    sql::migrator(&[
        (
            1,
            "init",
            include_str!("../migrations/sqlite/0001_init.sql"),
        ),
        (
            2,
            "service_state",
            include_str!("../migrations/sqlite/0002_service_state.sql"),
        ),
        (
            3,
            "quarantine_once",
            include_str!("../migrations/sqlite/0003_quarantine_once.sql"),
        ),
        (
            4,
            "segments",
            include_str!("../migrations/sqlite/0004_segments.sql"),
        ),
        (
            5,
            "changes",
            include_str!("../migrations/sqlite/0005_changes.sql"),
        ),
    ])
}

/// Splits our `segment_rows=N` parameter (rows of rowid space per column segment, 0 for none;
/// not sqlx's) off a SQLite URL.
fn split_segment_rows(url: &str) -> Result<(String, i64)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), segments::DEFAULT_SEGMENT_ROWS));
    };
    let mut rows = segments::DEFAULT_SEGMENT_ROWS;
    let mut rest = Vec::new();
    for param in query.split('&') {
        match param.strip_prefix("segment_rows=") {
            Some(v) => {
                rows = v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    StoreError::BadParameter(format!(
                        "`{url}`: segment_rows must be a whole number of rows (0 turns column segments off), not `{v}`"
                    ))
                })?;
            }
            None => rest.push(param),
        }
    }
    if rest.is_empty() {
        Ok((base.to_string(), rows))
    } else {
        Ok((format!("{base}?{}", rest.join("&")), rows))
    }
}

impl Dialect for sqlx::Sqlite {
    const ROW_ID: &'static str = "rowid";

    /// Bound in order: the same SQL runs through sqlx and rusqlite.
    fn placeholder(_n: usize) -> String {
        "?".to_string()
    }

    /// SQLite has no boolean type: booleans are stored as the integers 0 and 1.
    fn column_type(ty: DataType) -> &'static str {
        match ty {
            DataType::Int | DataType::Bool | DataType::Timestamp => "INTEGER",
            DataType::Float => "REAL",
            DataType::String => "TEXT",
        }
    }

    /// SQLite takes nulls as distinct in a unique index, so the index is on `ifnull(key,
    /// x'')`: x'' is a blob, never equal to a text key, and equal to itself.
    fn time_key_index(time: &str, key: &str) -> String {
        format!("({time}, ifnull({key}, x''))")
    }

    /// One writer at a time already numbers entries in commit order.
    const CHANGES_LOCK: Option<&'static str> = None;
}

impl SqliteStore {
    pub(crate) async fn open(url: &str, create: bool) -> Result<SqliteStore> {
        let full_url = url;
        let (url, segment_rows) = split_segment_rows(url)?;
        let url = url.as_str();
        let open_err = |source| StoreError::Open {
            url: full_url.to_string(),
            source,
        };
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut readers = None;
        let mut keyed_readers = None;
        let mut writer = None;
        let pool = if memory {
            // Every connection to `:memory:` is a database of its own, so the pool must keep
            // exactly one connection for the store's lifetime.
            let options = SqliteConnectOptions::from_str(url).map_err(open_err)?;
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(open_err)?
        } else {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(open_err)?
                .create_if_missing(create)
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL keeps every committed transaction across a process crash
                // (only a power loss may drop the last ones) and is much faster than FULL.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .pragma("cache_size", "-65536");
            let file = options.get_filename().to_path_buf();
            readers = Some(Arc::new(Readers::new(
                file.clone(),
                read::scan_mmap_bytes(),
            )));
            keyed_readers = Some(Arc::new(Readers::new(file, read::KEYED_MMAP_BYTES)));
            writer = Some(Arc::new(Writer::new(options.get_filename().to_path_buf())));
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(open_err)?
        };
        migrator().run(&pool).await?;
        Ok(SqliteStore {
            pool,
            readers,
            keyed_readers,
            writer,
            segment_rows,
        })
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front: a deferred
    /// transaction that reads first cannot upgrade when another connection committed in
    /// between (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out), so concurrent ingest
    /// batches would fail instead of queueing.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn ensure_component(&self, schema: &ComponentSchema) -> Result<()> {
        // `BEGIN IMMEDIATE` holds the write lock: a second declaration of the component waits
        // for this one to commit, then finds it.
        let mut tx = self.begin_write().await?;
        if shared::declare_component(&mut tx, schema, true).await? {
            // Segments hold the columns a table had when they were built: a new column drops
            // them all (docs/storage.md, "Column segments").
            drop_segments(&mut tx, &table_name(&schema.name), None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a batch. File databases write on a blocking thread through [`Writer`], which
    /// needs the batch owned: this copies it (see [`SqliteStore::write_owned`]).
    pub(crate) async fn write_batch(
        &self,
        schema: &ComponentSchema,
        rows: &Rows,
        quarantine: &[QuarantinedRecord],
    ) -> Result<WriteOutcome> {
        if self.writer.is_some() {
            let batch = OwnedBatch {
                schema: schema.clone(),
                rows: Arc::new(rows.clone()),
                quarantine: Arc::new(quarantine.to_vec()),
            };
            return self.write_owned(batch, None).await;
        }
        self.write_batch_sqlx(schema, rows, quarantine).await
    }

    /// An [`InlineSeal`] for an ingest into `schema`'s table, when this store builds segments.
    pub(crate) fn inline_seal(
        &self,
        schema: &ComponentSchema,
    ) -> Result<Option<Arc<std::sync::Mutex<InlineSeal>>>> {
        if self.writer.is_none() || self.segment_rows <= 0 {
            return Ok(None);
        }
        let size = usize::try_from(self.segment_rows).unwrap_or(usize::MAX);
        Ok(Some(Arc::new(std::sync::Mutex::new(InlineSeal::new(
            schema, size,
        )?))))
    }

    /// Stores a batch it owns; with `inline`, also builds and stores the segments its stored
    /// rows complete, from the rows themselves.
    pub(crate) async fn write_owned(
        &self,
        batch: OwnedBatch,
        inline: Option<Arc<std::sync::Mutex<InlineSeal>>>,
    ) -> Result<WriteOutcome> {
        let Some(writer) = self.writer.clone() else {
            return self
                .write_batch_sqlx(&batch.schema, &batch.rows, &batch.quarantine)
                .await;
        };
        blocking(move || {
            let inserted = writer.insert(&batch.schema, &batch.rows, &batch.quarantine)?;
            if let Some(inline) = inline {
                let full = match inline.lock() {
                    Ok(mut seal) => seal.add(&batch.rows, &inserted),
                    Err(_) => Vec::new(),
                };
                let tbl = table_name(&batch.schema.name);
                for (generation, built) in full {
                    // A segment refused (a prune meanwhile) is left to `seal`, from the table.
                    writer.store_segments(&tbl, generation, std::slice::from_ref(&built))?;
                }
            }
            Ok(inserted.outcome)
        })
        .await
    }

    async fn write_batch_sqlx(
        &self,
        schema: &ComponentSchema,
        rows: &Rows,
        quarantine: &[QuarantinedRecord],
    ) -> Result<WriteOutcome> {
        let names = sql::row_columns(schema);
        let ncols = names.len();
        let per_stmt = (MAX_VARIABLES / ncols).clamp(1, 1000);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote(&table_name(&schema.name)),
            names.join(", ")
        );
        let tuple = format!("({})", vec!["?"; ncols].join(", "));
        let mut out = WriteOutcome {
            quarantined: quarantine.len() as u64,
            ..WriteOutcome::default()
        };
        let mut tx = self.begin_write().await?;
        let mut start = 0;
        while start < rows.len() {
            let end = (start + per_stmt).min(rows.len());
            let mut stmt = head.clone();
            stmt.push_str(&vec![tuple.as_str(); end - start].join(", "));
            stmt.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(AssertSqlSafe(stmt));
            for i in start..end {
                q = q.bind(rows.key[i].as_deref()).bind(rows.time[i]);
                for col in &rows.fields {
                    q = match col {
                        Column::Int(v) | Column::Timestamp(v) => q.bind(v[i]),
                        Column::Float(v) => q.bind(v[i]),
                        Column::Bool(v) => q.bind(v[i]),
                        Column::Str(v) => q.bind(v[i].as_deref()),
                    };
                }
                q = q.bind(rows.extra[i].as_deref());
            }
            out.accepted += q.execute(&mut *tx).await?.rows_affected();
            start = end;
        }
        out.duplicates = rows.len() as u64 - out.accepted;
        if out.accepted > 0 {
            let ranges = crate::changes::time_ranges(rows.time.iter().copied());
            shared::record_changes(&mut tx, &schema.name, &ranges).await?;
        }
        shared::insert_quarantine(&mut tx, quarantine).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The rows with `first <= rowid <= last` and `start <= time < end`, from the row table.
    pub(crate) async fn rows_by_rowid(
        &self,
        plan: sql::ReadPlan,
        (first, last): (i64, i64),
        (start, end): (i64, i64),
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        if let Some(got) = self
            .rows_of_write(&plan, (first, last), (start, end))
            .await?
        {
            return Ok(got);
        }
        if let Some(readers) = self.readers.clone() {
            return blocking(move || {
                let mut out = Vec::new();
                read::read_rows(
                    &readers,
                    &plan,
                    first,
                    last.saturating_add(1),
                    start,
                    end,
                    &mut out,
                )?;
                Ok(out)
            })
            .await;
        }
        use futures::TryStreamExt;
        let sql = format!(
            "SELECT {} FROM {} WHERE rowid >= ?1 AND rowid <= ?2 AND {t} >= ?3 AND {t} < ?4",
            plan.select_list(),
            quote(&plan.table),
            t = quote(&plan.time)
        );
        shared::stream_rows(self.pool.clone(), sql, vec![first, last, start, end], plan)
            .try_collect()
            .await
    }

    /// `max(rowid) - min(rowid) + 1`: two b-tree descents (each in a subquery of its own:
    /// SQLite answers a lone `min` or `max` from the b-tree's edge, but scans the whole
    /// table for both in one select). Rowids are never reused out of order (a new row gets
    /// the largest plus one), so the span bounds the count.
    pub(crate) async fn rows_at_most(&self, schema: &ComponentSchema) -> Result<u64> {
        let sql = format!(
            "SELECT coalesce((SELECT max(rowid) FROM {t}) - (SELECT min(rowid) FROM {t}) + 1, 0)",
            t = quote(&table_name(&schema.name))
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?.max(0) as u64)
    }

    pub(crate) async fn prune_batch(
        &self,
        schema: &ComponentSchema,
        before_us: i64,
        batch_rows: u64,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let deleted = shared::delete_before(&mut tx, schema, before_us, batch_rows).await?;
        if deleted > 0 {
            shared::record_changes(&mut tx, &schema.name, &[(i64::MIN, before_us)]).await?;
            // The segments that may hold deleted rows go in the same transaction.
            drop_segments(&mut tx, &table_name(&schema.name), Some(before_us)).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

/// Starts blocking work of the read path on tokio's blocking pool at once (not when the
/// returned future is first polled, so that parts started together run side by side).
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T>> {
    let handle = tokio::task::spawn_blocking(f);
    async move {
        handle
            .await
            .map_err(|e| StoreError::Ingest(format!("the read stopped unexpectedly: {e}")))?
    }
}
