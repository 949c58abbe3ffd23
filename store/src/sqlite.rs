//! The SQLite backend: the embedded default. One file in WAL mode; writes go through
//! prepared multi-row inserts inside one transaction per batch.

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

use crate::error::{Result, StoreError};
use crate::rows::{Column, Rows};
use crate::sql::{
    self, ColumnBuilder, EXTRA_COLUMN, ReadPlan, StoredColumn, quote, stored_fields, table_name,
};
use crate::sqlite_read::Readers;
use crate::{BatchStream, QuarantinedRecord, ResultQuery, StoredResult, WriteOutcome};

/// SQLite refuses statements with more bound variables than this (its compile-time default).
const MAX_VARIABLES: usize = 32_766;

#[derive(Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// The fast read path of a file database; `None` for `:memory:`, read through `pool`.
    readers: Option<Arc<Readers>>,
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
    ])
}

fn column_type(ty: DataType) -> &'static str {
    match ty {
        DataType::Int | DataType::Bool | DataType::Timestamp => "INTEGER",
        DataType::Float => "REAL",
        DataType::String => "TEXT",
    }
}

impl SqliteStore {
    pub(crate) async fn open(url: &str) -> Result<SqliteStore> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut readers = None;
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
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL keeps every committed transaction across a process crash
                // (only a power loss may drop the last ones) and is much faster than FULL.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .pragma("cache_size", "-65536");
            readers = Some(Arc::new(Readers::new(options.get_filename().to_path_buf())));
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(open_err)?
        };
        migrator().run(&pool).await?;
        Ok(SqliteStore { pool, readers })
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

    pub(crate) async fn write_batch(
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
        // The survey: rows in the range (from the time index), the table's rowid span (two
        // O(1) lookups), and the first and last time in the range (two index seeks).
        let survey = format!(
            "SELECT (SELECT count(*) FROM {tb} WHERE {t} >= ?1 AND {t} < ?2),
                    (SELECT min(rowid) FROM {tb}), (SELECT max(rowid) FROM {tb}),
                    (SELECT {t} FROM {tb} WHERE {t} >= ?1 AND {t} < ?2 ORDER BY {t} LIMIT 1),
                    (SELECT {t} FROM {tb} WHERE {t} >= ?1 AND {t} < ?2 ORDER BY {t} DESC LIMIT 1)"
        );
        let got = blocking({
            let r = readers.clone();
            move || r.row_i64s(&survey, &[start, end_us])
        })
        .await?;
        let [Some(rows), Some(lo_id), Some(hi_id), Some(lo_t), Some(hi_t)] = got[..] else {
            return Ok(Vec::new());
        };
        let rows = usize::try_from(rows).unwrap_or(0);
        let time_col = plan.columns.iter().position(|(n, _)| *n == plan.time);
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
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(before_us)
            .bind(i64::try_from(batch_rows).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
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
