//! The SQLite backend: the embedded default. One file in WAL mode; one transaction per
//! batch. File databases write through rusqlite (sqlite_write.rs) and read through it
//! (sqlite_read.rs); `:memory:` stores keep sqlx's prepared multi-row inserts.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use mlc_engine::schema::{ComponentSchema, DataType};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::assemble::{ColumnAssembler, Zeros};
use crate::error::{Result, StoreError};
use crate::rows::{Column, Rows};
use crate::segments::{self, Piece, SegmentInfo};
use crate::sql::{
    self, ColumnBuilder, EXTRA_COLUMN, ReadPlan, StoredColumn, quote, stored_fields, table_name,
};
use crate::sqlite_read::Readers;
use crate::sqlite_write::{Built, InlineSeal, Writer, encode_segment};
use crate::{BatchStream, QuarantinedRecord, ResultQuery, StoredResult, WriteOutcome};

/// SQLite refuses statements with more bound variables than this (its compile-time default).
const MAX_VARIABLES: usize = 32_766;

#[derive(Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// The fast read path of a file database; `None` for `:memory:`, read through `pool`.
    readers: Option<Arc<Readers>>,
    /// The fast write path of a file database; `None` for `:memory:`, written through `pool`.
    writer: Option<Arc<Writer>>,
    /// Rows of rowid space per column segment (segments.rs); 0: no segments.
    segment_rows: i64,
}

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

fn column_type(ty: DataType) -> &'static str {
    match ty {
        DataType::Int | DataType::Bool | DataType::Timestamp => "INTEGER",
        DataType::Float => "REAL",
        DataType::String => "TEXT",
    }
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
            readers = Some(Arc::new(Readers::new(options.get_filename().to_path_buf())));
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

    async fn load(
        conn: &mut SqliteConnection,
        name: &str,
    ) -> Result<Option<(ComponentSchema, Vec<StoredColumn>)>> {
        let row = sqlx::query("SELECT schema, columns FROM mlc_components WHERE name = ?")
            .bind(name)
            .fetch_optional(conn)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let schema: String = row.try_get(0)?;
                let columns: String = row.try_get(1)?;
                sql::decode_schema(name, &schema, &columns).map(Some)
            }
        }
    }

    pub(crate) async fn ensure_component(&self, schema: &ComponentSchema) -> Result<()> {
        let table = quote(&table_name(&schema.name));
        let mut tx = self.begin_write().await?;
        let existing = Self::load(&mut tx, &schema.name).await?;
        let (mut stored, added) = match &existing {
            None => {
                let cols = sql::needed_columns(schema);
                let mut ddl = format!("CREATE TABLE IF NOT EXISTS {table} (");
                for (i, c) in cols.iter().enumerate() {
                    let not_null = if i == 1 { " NOT NULL" } else { "" };
                    ddl.push_str(&format!(
                        "{} {}{not_null}, ",
                        quote(&c.name),
                        column_type(c.ty)
                    ));
                }
                ddl.push_str(&format!("{} TEXT);", quote(EXTRA_COLUMN)));
                // The unique index deduplicates re-sent records (a null key counts as one
                // value: x'' is a blob, never equal to a text key) and serves time ranges.
                ddl.push_str(&format!(
                    "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} ({}, ifnull({}, x''));",
                    quote(&format!("{}_time_key", table_name(&schema.name))),
                    quote(&schema.time),
                    quote(&schema.key)
                ));
                sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
                (cols, Vec::new())
            }
            Some((old, stored)) => {
                let added = sql::evolve(old, stored, schema)?;
                (stored.clone(), added)
            }
        };
        for c in &added {
            let ddl = format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                quote(&c.name),
                column_type(c.ty)
            );
            sqlx::query(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        }
        if existing.is_some() && !added.is_empty() {
            drop_segments(&mut tx, &table_name(&schema.name), None).await?;
        }
        stored.extend(added);
        sqlx::query(
            "INSERT INTO mlc_components (name, table_name, schema, columns, updated_at_us)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET schema = excluded.schema,
                 columns = excluded.columns, updated_at_us = excluded.updated_at_us",
        )
        .bind(&schema.name)
        .bind(table_name(&schema.name))
        .bind(sql::encode_json(schema)?)
        .bind(sql::encode_json(&stored)?)
        .bind(sql::now_us())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn components(&self) -> Result<Vec<ComponentSchema>> {
        let rows = sqlx::query("SELECT name, schema, columns FROM mlc_components ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get(0)?;
                let schema: String = r.try_get(1)?;
                let columns: String = r.try_get(2)?;
                Ok(sql::decode_schema(&name, &schema, &columns)?.0)
            })
            .collect()
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
        let mut names = vec![quote(&schema.key), quote(&schema.time)];
        names.extend(stored_fields(schema).map(|f| quote(&f.name)));
        names.push(quote(EXTRA_COLUMN));
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
        for chunk in quarantine.chunks(1000) {
            let mut stmt = String::from(
                "INSERT INTO mlc_quarantine (component, received_at_us, source, raw, reason, fingerprint) VALUES ",
            );
            stmt.push_str(&vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "));
            stmt.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(AssertSqlSafe(stmt));
            for r in chunk {
                q = q
                    .bind(&r.component)
                    .bind(r.received_at_us)
                    .bind(&r.source)
                    .bind(&r.raw)
                    .bind(&r.reason)
                    .bind(r.fingerprint());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) fn scan(&self, plan: ReadPlan, start_us: Option<i64>, end_us: i64) -> BatchStream {
        let sql = format!(
            "SELECT {} FROM {} WHERE {t} >= ? AND {t} < ? ORDER BY {t}",
            plan.select_list(),
            quote(&plan.table),
            t = quote(&plan.time)
        );
        let binds = vec![start_us.unwrap_or(i64::MIN), end_us];
        match &self.readers {
            Some(r) => stream_blocking(r.clone(), sql, binds, plan),
            None => stream_rows(self.pool.clone(), sql, binds, plan),
        }
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
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
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

    pub(crate) async fn latest_by_key(
        &self,
        plan: ReadPlan,
        before_us: i64,
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        // SQLite returns the bare columns of the row that holds max(): one pass, one query.
        let sql = format!(
            "SELECT {}, max({t}) FROM {} WHERE {t} < ? AND {k} IS NOT NULL GROUP BY {k}",
            plan.select_list(),
            quote(&plan.table),
            t = quote(&plan.time),
            k = quote(&plan.key)
        );
        match &self.readers {
            Some(r) => stream_blocking(r.clone(), sql, vec![before_us], plan),
            None => stream_rows(self.pool.clone(), sql, vec![before_us], plan),
        }
        .try_collect()
        .await
    }

    pub(crate) async fn max_time(
        &self,
        schema: &ComponentSchema,
        before_us: i64,
    ) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT max({t}) FROM {} WHERE {t} < ?",
            quote(&table_name(&schema.name)),
            t = quote(&schema.time)
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(before_us)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    pub(crate) async fn count(&self, schema: &ComponentSchema) -> Result<u64> {
        let sql = format!("SELECT count(*) FROM {}", quote(&table_name(&schema.name)));
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? as u64)
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

    pub(crate) async fn extras(
        &self,
        schema: &ComponentSchema,
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<Vec<(Option<String>, i64, Option<String>)>> {
        let sql = format!(
            "SELECT {k}, {t}, {e} FROM {} WHERE {t} >= ? AND {t} < ? ORDER BY {t}, {k}",
            quote(&table_name(&schema.name)),
            k = quote(&schema.key),
            t = quote(&schema.time),
            e = quote(EXTRA_COLUMN)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(start_us.unwrap_or(i64::MIN))
            .bind(end_us)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    pub(crate) async fn quarantined(
        &self,
        component: &str,
        limit: u64,
    ) -> Result<Vec<QuarantinedRecord>> {
        let rows = sqlx::query(
            "SELECT component, received_at_us, source, raw, reason FROM mlc_quarantine
             WHERE component = ? ORDER BY id LIMIT ?",
        )
        .bind(component)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QuarantinedRecord {
                    component: r.try_get(0)?,
                    received_at_us: r.try_get(1)?,
                    source: r.try_get(2)?,
                    raw: r.try_get(3)?,
                    reason: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn get_state(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM mlc_state WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(StoreError::from)
    }

    pub(crate) async fn put_state(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO mlc_state (name, value, updated_at_us) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value,
                 updated_at_us = excluded.updated_at_us",
        )
        .bind(name)
        .bind(value)
        .bind(sql::now_us())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn claim_slot(&self, check: &str, slot_us: i64, owner: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO mlc_slots (check_name, slot_us, owner, claimed_at_us)
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(check)
        .bind(slot_us)
        .bind(owner)
        .bind(sql::now_us())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // Claims older than a week are of no further use.
        sqlx::query("DELETE FROM mlc_slots WHERE check_name = ? AND slot_us < ?")
            .bind(check)
            .bind(slot_us.saturating_sub(7 * 86_400 * 1_000_000))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    pub(crate) async fn insert_results(&self, results: &[StoredResult]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for r in results {
            sqlx::query(
                "INSERT INTO mlc_results (check_name, at_us, status, rules_version, slice, column_name, json)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.check)
            .bind(r.at_us)
            .bind(&r.status)
            .bind(&r.rules_version)
            .bind(&r.slice)
            .bind(r.column.as_deref())
            .bind(&r.json)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn query_results(&self, q: &ResultQuery) -> Result<Vec<StoredResult>> {
        let mut sql = String::from(
            "SELECT check_name, at_us, status, rules_version, slice, column_name, json
             FROM mlc_results WHERE 1 = 1",
        );
        if q.check.is_some() {
            sql.push_str(" AND check_name = ?");
        }
        if q.since_us.is_some() {
            sql.push_str(" AND at_us >= ?");
        }
        if q.until_us.is_some() {
            sql.push_str(" AND at_us < ?");
        }
        if q.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        sql.push_str(" ORDER BY at_us DESC, id DESC LIMIT ? OFFSET ?");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(c) = &q.check {
            query = query.bind(c.clone());
        }
        if let Some(s) = q.since_us {
            query = query.bind(s);
        }
        if let Some(u) = q.until_us {
            query = query.bind(u);
        }
        if let Some(s) = &q.status {
            query = query.bind(s.clone());
        }
        let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        query = query
            .bind(limit)
            .bind(i64::try_from(q.offset).unwrap_or(i64::MAX));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(StoredResult {
                    check: r.try_get(0)?,
                    at_us: r.try_get(1)?,
                    status: r.try_get(2)?,
                    rules_version: r.try_get(3)?,
                    slice: r.try_get(4)?,
                    column: r.try_get(5)?,
                    json: r.try_get(6)?,
                })
            })
            .collect()
    }

    pub(crate) async fn prune_batch(
        &self,
        schema: &ComponentSchema,
        before_us: i64,
        batch_rows: u64,
    ) -> Result<u64> {
        let table = quote(&table_name(&schema.name));
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {} < ? LIMIT ?)",
            quote(&schema.time)
        );
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(before_us)
            .bind(i64::try_from(batch_rows).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() > 0 {
            drop_segments(&mut tx, &table_name(&schema.name), Some(before_us)).await?;
        }
        tx.commit().await?;
        Ok(res.rows_affected())
    }

    /// Builds the column segments (segments.rs) of every full rowid range of `schema`'s table
    /// that has none yet, and returns how many it stored. Nothing to do on `:memory:` or with
    /// segments turned off. Memory stays bounded: a few segments are built at a time.
    pub(crate) async fn seal(&self, schema: &ComponentSchema) -> Result<u64> {
        let (Some(readers), Some(writer), size) =
            (self.readers.clone(), self.writer.clone(), self.segment_rows)
        else {
            return Ok(0);
        };
        if size <= 0 {
            return Ok(0);
        }
        let tbl = table_name(&schema.name);
        let names: Vec<&str> = schema.column_names().collect();
        let plan = ReadPlan::new(schema, &names)?;
        let time_col = names.iter().position(|n| *n == schema.time).unwrap_or(1);
        let (generation, todo) = blocking({
            let (r, tbl) = (readers.clone(), tbl.clone());
            move || r.with(|conn| sealable(conn, &tbl, size))
        })
        .await?;
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let mut stored = 0;
        for chunk in todo.chunks(parts) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|&(first, last)| {
                    let (r, plan, tbl) = (readers.clone(), plan.clone(), tbl.clone());
                    blocking(move || build_segment(&r, &plan, &tbl, first, last, time_col))
                })
                .collect();
            let mut built = Vec::new();
            for t in tasks {
                if let Some(b) = t.await? {
                    built.push(b);
                }
            }
            let (w, tbl2) = (writer.clone(), tbl.clone());
            match blocking(move || w.store_segments(&tbl2, generation, &built)).await? {
                Some(n) => stored += n,
                // Rows were deleted or columns added since they were read: build again later.
                None => return Ok(stored),
            }
        }
        Ok(stored)
    }
}

/// Drops the segments of `tbl` that may hold rows with time before `before_us` (all of them
/// when `None`) and bumps its generation, in the caller's write transaction.
async fn drop_segments(tx: &mut SqliteConnection, tbl: &str, before_us: Option<i64>) -> Result<()> {
    let before = before_us.unwrap_or(i64::MAX);
    let all = before_us.is_none();
    sqlx::query(
        "DELETE FROM mlc_segment_columns WHERE tbl = ?1 AND first_rowid IN
             (SELECT first_rowid FROM mlc_segments WHERE tbl = ?1 AND (?3 OR min_time < ?2))",
    )
    .bind(tbl)
    .bind(before)
    .bind(all)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM mlc_segments WHERE tbl = ?1 AND (?3 OR min_time < ?2)")
        .bind(tbl)
        .bind(before)
        .bind(all)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO mlc_segment_generations (tbl, generation) VALUES (?, 1)
         ON CONFLICT (tbl) DO UPDATE SET generation = generation + 1",
    )
    .bind(tbl)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The table's segment generation and the rowid ranges to build segments for, read in one
/// snapshot: the rowids no segment covers, cut into ranges of `size`. Any range up to the
/// largest rowid is complete (new rows get larger rowids), but the tail is left until it fills
/// a whole range, so that segments are not built for a handful of rows.
fn sealable(conn: &rusqlite::Connection, tbl: &str, size: i64) -> Result<(i64, Vec<(i64, i64)>)> {
    let tx = conn.unchecked_transaction()?;
    let generation: i64 = tx.query_row(
        "SELECT coalesce((SELECT generation FROM mlc_segment_generations WHERE tbl = ?1), 0)",
        [tbl],
        |r| r.get(0),
    )?;
    let (lo, hi): (Option<i64>, Option<i64>) = tx.query_row(
        &format!(
            "SELECT (SELECT min(rowid) FROM {t}), (SELECT max(rowid) FROM {t})",
            t = quote(tbl)
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok((generation, Vec::new()));
    };
    let segs = segment_list(&tx, tbl)?;
    let mut todo = Vec::new();
    let mut next = lo;
    let cut = |from: i64, to: i64, todo: &mut Vec<(i64, i64)>, whole_only: bool| {
        let mut a = from;
        while a <= to {
            let b = a.saturating_add(size - 1).min(to);
            if whole_only && b - a + 1 < size {
                break;
            }
            todo.push((a, b));
            a = b.saturating_add(1);
        }
    };
    for s in &segs {
        if s.first_rowid > next {
            cut(next, (s.first_rowid - 1).min(hi), &mut todo, false);
        }
        next = next.max(s.last_rowid.saturating_add(1));
    }
    cut(next, hi, &mut todo, true);
    Ok((generation, todo))
}

/// Reads the rows of the range starting at `first` and encodes them; `None` when the range is
/// empty or a column does not fit the layout (it stays read from the rows).
fn build_segment(
    readers: &Readers,
    plan: &ReadPlan,
    tbl: &str,
    first: i64,
    last: i64,
    time_col: usize,
) -> Result<Option<Built>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE rowid >= ?1 AND rowid <= ?2 ORDER BY rowid",
        plan.select_list(),
        quote(tbl)
    );
    let mut batch = None;
    readers.read_sized(
        &sql,
        &[first, last],
        plan,
        usize::MAX,
        usize::try_from(last - first + 1).unwrap_or(0).min(1 << 20),
        &mut |b| {
            batch = Some(b);
            true
        },
    )?;
    Ok(batch.and_then(|b| encode_segment(&b, plan, first, last, time_col)))
}

/// The sealed segments of `tbl`, by first rowid.
fn segment_list(conn: &rusqlite::Connection, tbl: &str) -> Result<Vec<SegmentInfo>> {
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
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8)) as i64;
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
const SEGMENT_BLOB_SQL: &str =
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
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let n_cols = plan.columns.len();
    let tasks: Vec<_> = (0..threads.min(n_cols.max(1)))
        .map(|t| {
            let (r, plan, batches, pieces, zeros) = (
                readers.clone(),
                plan.clone(),
                batches.clone(),
                pieces.clone(),
                zeros.clone(),
            );
            blocking(move || {
                let mut out: Vec<(usize, Option<ArrayRef>)> = Vec::new();
                for c in (t..n_cols).step_by(threads) {
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
fn read_rows(
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
    let columns = all
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &idx, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Ingest(format!("internal error ordering a read: {e}")))?;
    let sorted = arrow_array::RecordBatch::try_new(schema, columns)
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
fn stream_blocking(
    readers: Arc<Readers>,
    sql: String,
    binds: Vec<i64>,
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
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Runs `sql` with `binds` on a task of its own and yields bounded batches through a channel
/// of two: the reader stays at most two batches ahead of the consumer.
fn stream_rows(pool: SqlitePool, sql: String, binds: Vec<i64>, plan: ReadPlan) -> BatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<arrow_array::RecordBatch>>(2);
    tokio::spawn(async move {
        let produce = async {
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(b);
            }
            let mut rows = q.fetch(&pool);
            let cap = crate::READ_BATCH_ROWS;
            let mut builders = plan.builders(cap);
            let mut n = 0;
            while let Some(row) = rows.try_next().await? {
                for (i, b) in builders.iter_mut().enumerate() {
                    match b {
                        ColumnBuilder::Int(b) => b.append_option(row.try_get::<Option<i64>, _>(i)?),
                        ColumnBuilder::Float(b) => {
                            b.append_option(row.try_get::<Option<f64>, _>(i)?)
                        }
                        ColumnBuilder::Bool(b) => {
                            b.append_option(row.try_get::<Option<bool>, _>(i)?)
                        }
                        ColumnBuilder::Str(b) => {
                            b.append_option(row.try_get::<Option<&str>, _>(i)?)
                        }
                    }
                }
                n += 1;
                if n == cap {
                    let batch = plan.finish(&mut builders, n)?;
                    n = 0;
                    if tx.send(Ok(batch)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if n > 0 {
                let batch = plan.finish(&mut builders, n)?;
                let _ = tx.send(Ok(batch)).await;
            }
            Ok::<(), StoreError>(())
        };
        if let Err(e) = produce.await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mlc_engine::schema::FieldSchema;

    fn schema() -> ComponentSchema {
        ComponentSchema {
            name: "c".into(),
            key: "k".into(),
            time: "t".into(),
            fields: vec![FieldSchema {
                name: "x".into(),
                ty: DataType::Float,
            }],
        }
    }

    fn rows(schema: &ComponentSchema, from: i64, n: i64) -> Rows {
        let mut r = Rows::new(schema, n as usize);
        for i in from..from + n {
            r.key.push(Some(format!("k{i}")));
            r.time.push(i * 1_000_000);
            if let Column::Float(v) = &mut r.fields[0] {
                v.push(Some(i as f64));
            }
            r.extra.push(None);
        }
        r
    }

    /// A segment built from rows read before a prune is not stored: it would hold rows the
    /// table no longer has.
    #[tokio::test]
    async fn a_segment_built_before_a_prune_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db?segment_rows=10", dir.path().display());
        let store = SqliteStore::open(&url, true).await.unwrap();
        let schema = schema();
        store.ensure_component(&schema).await.unwrap();
        store
            .write_batch(&schema, &rows(&schema, 0, 25), &[])
            .await
            .unwrap();
        let readers = store.readers.clone().unwrap();
        let tbl = table_name(&schema.name);
        let (generation, todo) = readers.with(|c| sealable(c, &tbl, 10)).unwrap();
        assert_eq!(todo, vec![(1, 10), (11, 20)], "the tail 21..=25 waits");
        let names: Vec<&str> = schema.column_names().collect();
        let plan = ReadPlan::new(&schema, &names).unwrap();
        let built: Vec<Built> = todo
            .iter()
            .map(|&(a, b)| {
                build_segment(&readers, &plan, &tbl, a, b, 1)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        assert_eq!(built[0].0.min_time, 0);
        assert_eq!(built[1].0.max_time, 19_000_000);
        // Rows go between reading and storing.
        assert_eq!(store.prune_batch(&schema, 5_000_000, 100).await.unwrap(), 5);
        assert_eq!(
            store
                .writer
                .as_ref()
                .unwrap()
                .store_segments(&tbl, generation, &built)
                .unwrap(),
            None
        );
        // Sealing again reads the table as it is now.
        assert_eq!(store.seal(&schema).await.unwrap(), 2);
        let (_, todo) = readers.with(|c| sealable(c, &tbl, 10)).unwrap();
        assert!(todo.is_empty(), "{todo:?}");
        let segs = readers.with(|c| segment_list(c, &tbl)).unwrap();
        assert_eq!(segs[0].first_rowid, 6);
        assert_eq!(segs[0].row_count, 10);
        assert_eq!(segs[0].min_time, 5_000_000);
        // A segment overlapping a stored one is skipped, not stored twice.
        let again = build_segment(&readers, &plan, &tbl, 1, 10, 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .writer
                .as_ref()
                .unwrap()
                .store_segments(&tbl, generation + 1, &[again])
                .unwrap(),
            Some(0)
        );
    }

    /// Segments built from an ingest's own rows hold exactly the bytes a segment read back
    /// from the table would: SQLite's storage quirks (-0.0 reads back as 0.0) included. Rows
    /// another writer slips in between, or a prune, stop the collection instead of producing
    /// a segment that misses or holds rows the table does not.
    #[tokio::test]
    async fn segments_built_while_ingesting_equal_segments_read_from_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db?segment_rows=8", dir.path().display());
        let store = SqliteStore::open(&url, true).await.unwrap();
        let field = |name: &str, ty| FieldSchema {
            name: name.into(),
            ty,
        };
        let schema = ComponentSchema {
            name: "c".into(),
            key: "k".into(),
            time: "t".into(),
            fields: vec![
                field("x", DataType::Float),
                field("n", DataType::Int),
                field("b", DataType::Bool),
                field("s", DataType::String),
                field("at", DataType::Timestamp),
            ],
        };
        store.ensure_component(&schema).await.unwrap();
        let batch = |from: i64, to: i64| {
            let mut r = Rows::new(&schema, 0);
            for i in from..to {
                r.key.push((i % 7 != 3).then(|| format!("k{i}")));
                r.time.push(i * 1_000_000);
                let x = [
                    Some(-0.0),
                    None,
                    Some(f64::INFINITY),
                    Some(1.5),
                    Some(-2.25),
                ];
                let s = [Some("ü ✓"), None, Some(""), Some("a\tb")];
                for col in &mut r.fields {
                    match col {
                        Column::Float(v) => v.push(x[i as usize % 5]),
                        Column::Int(v) => v.push((i % 4 != 0).then_some(i64::MIN + i)),
                        Column::Bool(v) => v.push((i % 3 != 0).then_some(i % 2 == 0)),
                        Column::Str(v) => v.push(s[i as usize % 4].map(str::to_string)),
                        Column::Timestamp(v) => v.push(Some(-i)),
                    }
                }
                r.extra.push(None);
            }
            OwnedBatch {
                schema: schema.clone(),
                rows: Arc::new(r),
                quarantine: Arc::new(Vec::new()),
            }
        };
        let inline = store.inline_seal(&schema).unwrap().unwrap();
        let tbl = table_name(&schema.name);
        let readers = store.readers.clone().unwrap();
        let segs = || readers.with(|c| segment_list(c, &tbl)).unwrap();
        let ranges = || {
            segs()
                .iter()
                .map(|s| (s.first_rowid, s.last_rowid))
                .collect::<Vec<_>>()
        };
        // Rows 10 and 11 come twice: skipped, the rowids still follow each other.
        for (a, b) in [(0, 12), (10, 30)] {
            store
                .write_owned(batch(a, b), Some(inline.clone()))
                .await
                .unwrap();
        }
        assert_eq!(ranges(), vec![(1, 8), (9, 16), (17, 24)]);
        // Rows 25..=30 wait. Another writer's rows come next: the collection starts again
        // after them.
        store.write_owned(batch(30, 33), None).await.unwrap();
        store
            .write_owned(batch(33, 41), Some(inline.clone()))
            .await
            .unwrap();
        assert_eq!(ranges(), vec![(1, 8), (9, 16), (17, 24), (34, 41)]);
        // A prune between two batches: what was collected before it is dropped.
        store
            .write_owned(batch(41, 45), Some(inline.clone()))
            .await
            .unwrap();
        assert_eq!(store.prune_batch(&schema, 2_000_000, 100).await.unwrap(), 2);
        assert_eq!(ranges(), vec![(9, 16), (17, 24), (34, 41)]);
        store
            .write_owned(batch(45, 55), Some(inline.clone()))
            .await
            .unwrap();
        assert_eq!(ranges(), vec![(9, 16), (17, 24), (34, 41), (46, 53)]);

        // Each stored blob equals the one built by reading the rows back.
        let names: Vec<&str> = schema.column_names().collect();
        let plan = ReadPlan::new(&schema, &names).unwrap();
        for seg in segs() {
            let (info, columns) =
                build_segment(&readers, &plan, &tbl, seg.first_rowid, seg.last_rowid, 1)
                    .unwrap()
                    .unwrap();
            assert_eq!(
                (info.row_count, info.min_time, info.max_time),
                (seg.row_count, seg.min_time, seg.max_time)
            );
            for (name, data) in columns {
                let stored: Vec<u8> = readers
                    .with(|c| {
                        Ok(c.query_row(
                            SEGMENT_BLOB_SQL,
                            rusqlite::params![tbl, seg.first_rowid, name],
                            |r| r.get(0),
                        )?)
                    })
                    .unwrap();
                assert_eq!(
                    stored, data,
                    "column {name} of the segment at {}",
                    seg.first_rowid
                );
            }
        }
    }

    #[test]
    fn segment_rows_is_our_url_parameter() {
        assert_eq!(
            split_segment_rows("sqlite://a.db?segment_rows=5&mode=rwc").unwrap(),
            ("sqlite://a.db?mode=rwc".to_string(), 5)
        );
        assert_eq!(
            split_segment_rows("sqlite://a.db").unwrap(),
            ("sqlite://a.db".to_string(), segments::DEFAULT_SEGMENT_ROWS)
        );
        let err = split_segment_rows("sqlite://a.db?segment_rows=-1").unwrap_err();
        assert!(
            err.to_string().contains("0 turns column segments off"),
            "{err}"
        );
    }
}
