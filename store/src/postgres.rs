//! The PostgreSQL backend, for scale: batches are written with binary `COPY`, straight into the
//! component table when they hold no stored or repeated record, otherwise into a temporary
//! stage table moved into the component table with `ON CONFLICT DO NOTHING`; one transaction
//! per batch either way.

use std::str::FromStr;

use futures::TryStreamExt;
use mlc_engine::schema::{ComponentSchema, DataType};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::error::{Result, StoreError};
use crate::rows::{Column, Rows};
use crate::shared_sql::postgres as shared;
use crate::sql::{self, ColumnBuilder, EXTRA_COLUMN, ReadPlan, quote, table_name};
use crate::{BatchStream, QuarantinedRecord, ResultQuery, StoredResult, WriteOutcome};

#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
}

fn migrator() -> Migrator {
    sql::migrator(&[
        (
            1,
            "init",
            include_str!("../migrations/postgres/0001_init.sql"),
        ),
        (
            2,
            "service_state",
            include_str!("../migrations/postgres/0002_service_state.sql"),
        ),
        (
            3,
            "quarantine_once",
            include_str!("../migrations/postgres/0003_quarantine_once.sql"),
        ),
    ])
}

fn column_type(ty: DataType) -> &'static str {
    match ty {
        DataType::Int | DataType::Timestamp => "BIGINT",
        DataType::Float => "DOUBLE PRECISION",
        DataType::Bool => "BOOLEAN",
        DataType::String => "TEXT",
    }
}

/// Splits an optional `schema=NAME` parameter (ours, not libpq's) off the URL.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(v) => {
                schema = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<PgStore> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let (base, schema) = split_schema(url);
        let mut options = PgConnectOptions::from_str(&base).map_err(open_err)?;
        if let Some(schema) = &schema {
            let valid = !schema.is_empty()
                && schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(StoreError::BadUrl(format!(
                    "{url} (schema names may hold only letters, digits and `_`)"
                )));
            }
            let mut conn = PgConnection::connect_with(&options)
                .await
                .map_err(open_err)?;
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote(schema)
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        migrator().run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn ensure_component(&self, schema: &ComponentSchema) -> Result<()> {
        let table = quote(&table_name(&schema.name));
        let mut tx = self.pool.begin().await?;
        // Two processes declaring the same component at once must not both create it.
        sqlx::query("LOCK TABLE mlc_components IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let existing = shared::load_declaration(&mut tx, &schema.name).await?;
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
                // Deduplicates re-sent records (a null key counts as one value) and serves
                // time ranges; (key, time) serves the latest-row-per-key read of joins.
                ddl.push_str(&format!(
                    "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} ({}, {}) NULLS NOT DISTINCT;",
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
        shared::save_declaration(&mut tx, schema, &stored).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn components(&self) -> Result<Vec<ComponentSchema>> {
        let mut conn = self.pool.acquire().await?;
        shared::components(&mut conn).await
    }

    /// Writes one batch in one transaction. The rows go by binary `COPY` straight into the
    /// component table, inside a savepoint; when that meets a stored or repeated key and time
    /// (unique violation) the savepoint is rolled back and the same encoded rows go the slow,
    /// deduplicating way: `COPY` into a temporary stage table, then `INSERT .. SELECT .. ON
    /// CONFLICT DO NOTHING`. `expect_duplicates` (the writer's previous batch had some) skips
    /// the direct attempt, so re-sending an ingested file does not pay twice per batch.
    pub(crate) async fn write_batch(
        &self,
        schema: &ComponentSchema,
        rows: &Rows,
        quarantine: &[QuarantinedRecord],
        expect_duplicates: bool,
    ) -> Result<WriteOutcome> {
        let names = sql::row_columns(schema);
        let ncols = i16::try_from(names.len()).map_err(|_| {
            StoreError::Ingest(format!(
                "component `{}` has more columns than PostgreSQL's COPY takes",
                schema.name
            ))
        })?;
        let names = names.join(", ");
        let table = quote(&table_name(&schema.name));
        let mut out = WriteOutcome {
            quarantined: quarantine.len() as u64,
            ..WriteOutcome::default()
        };
        check_text_lengths(rows)?;
        let mut tx = self.pool.begin().await?;
        if !rows.is_empty() {
            let mut encoded = Encoded::new(rows, ncols);
            let mut direct = false;
            if !expect_duplicates {
                sqlx::raw_sql("SAVEPOINT mlc_direct")
                    .execute(&mut *tx)
                    .await?;
                let stmt = format!("COPY {table} ({names}) FROM STDIN (FORMAT binary)");
                match copy_in(&mut tx, &stmt, &mut encoded).await {
                    Ok(n) => {
                        if n != rows.len() as u64 {
                            return Err(StoreError::Ingest(format!(
                                "internal error: COPY stored {n} of {} rows",
                                rows.len()
                            )));
                        }
                        sqlx::raw_sql("RELEASE SAVEPOINT mlc_direct")
                            .execute(&mut *tx)
                            .await?;
                        out.accepted = n;
                        direct = true;
                    }
                    Err(e) if is_unique_violation(&e) => {
                        sqlx::raw_sql("ROLLBACK TO SAVEPOINT mlc_direct")
                            .execute(&mut *tx)
                            .await?;
                        tracing::debug!(
                            component = %schema.name,
                            "batch holds stored or repeated records: deduplicating through the stage table"
                        );
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !direct {
                sqlx::query(AssertSqlSafe(format!(
                    "CREATE TEMP TABLE mlc_stage (LIKE {table}) ON COMMIT DROP"
                )))
                .execute(&mut *tx)
                .await?;
                let stmt = format!("COPY mlc_stage ({names}) FROM STDIN (FORMAT binary)");
                copy_in(&mut tx, &stmt, &mut encoded).await?;
                let res = sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {table} ({names}) SELECT {names} FROM mlc_stage ON CONFLICT DO NOTHING"
                )))
                .execute(&mut *tx)
                .await?;
                out.accepted = res.rows_affected();
            }
        }
        out.duplicates = rows.len() as u64 - out.accepted;
        for chunk in quarantine.chunks(1000) {
            let mut stmt = String::from(
                "INSERT INTO mlc_quarantine (component, received_at_us, source, raw, reason, fingerprint) VALUES ",
            );
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 6;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect();
            stmt.push_str(&tuples.join(", "));
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
            "SELECT {} FROM {} WHERE {t} >= $1 AND {t} < $2 ORDER BY {t}",
            plan.select_list(),
            quote(&plan.table),
            t = quote(&plan.time)
        );
        stream_rows(
            self.pool.clone(),
            sql,
            vec![start_us.unwrap_or(i64::MIN), end_us],
            plan,
        )
    }

    pub(crate) async fn latest_by_key(
        &self,
        plan: ReadPlan,
        before_us: i64,
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        let sql = format!(
            "SELECT DISTINCT ON ({k}) {} FROM {} WHERE {t} < $1 AND {k} IS NOT NULL ORDER BY {k}, {t} DESC",
            plan.select_list(),
            quote(&plan.table),
            t = quote(&plan.time),
            k = quote(&plan.key)
        );
        stream_rows(self.pool.clone(), sql, vec![before_us], plan)
            .try_collect()
            .await
    }

    pub(crate) async fn max_time(
        &self,
        schema: &ComponentSchema,
        before_us: i64,
    ) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT max({t}) FROM {} WHERE {t} < $1",
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
            "SELECT {k}, {t}, {e} FROM {} WHERE {t} >= $1 AND {t} < $2 ORDER BY {t}, {k}",
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
             WHERE component = $1 ORDER BY id LIMIT $2",
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
        let mut conn = self.pool.acquire().await?;
        shared::get_state(&mut conn, name).await
    }

    pub(crate) async fn put_state(&self, name: &str, value: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        shared::put_state(&mut conn, name, value).await
    }

    pub(crate) async fn claim_slot(&self, check: &str, slot_us: i64, owner: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let claimed = shared::claim_slot(&mut tx, check, slot_us, owner).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    pub(crate) async fn insert_results(&self, results: &[StoredResult]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        shared::insert_results(&mut tx, results).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn query_results(&self, q: &ResultQuery) -> Result<Vec<StoredResult>> {
        let mut conn = self.pool.acquire().await?;
        shared::query_results(&mut conn, q).await
    }

    pub(crate) async fn prune_batch(
        &self,
        schema: &ComponentSchema,
        before_us: i64,
        batch_rows: u64,
    ) -> Result<u64> {
        let table = quote(&table_name(&schema.name));
        let sql = format!(
            "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {} < $1 LIMIT $2)",
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

/// The longest text value sent: PostgreSQL's limit on one value (1 GiB less one byte). Under
/// it, a value's length fits COPY's 32-bit field length even with every byte a NUL (two bytes
/// each once escaped, see [`put_text`]).
const MAX_TEXT_BYTES: usize = (1 << 30) - 1;

/// Refuses a batch holding a text value PostgreSQL cannot store, before any of it is sent.
fn check_text_lengths(rows: &Rows) -> Result<()> {
    let texts = rows.key.iter().chain(&rows.extra).chain(
        rows.fields
            .iter()
            .filter_map(|c| match c {
                Column::Str(v) => Some(v),
                _ => None,
            })
            .flatten(),
    );
    match texts.flatten().map(String::len).max() {
        Some(n) if n > MAX_TEXT_BYTES => Err(StoreError::Ingest(format!(
            "a text value of {n} bytes is over PostgreSQL's limit of {MAX_TEXT_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

/// A batch in COPY's binary format, encoded once: chunk by chunk as the first `COPY` sends it,
/// then kept, so that the fallback to the stage table sends the same bytes again.
struct Encoded<'a> {
    rows: &'a Rows,
    ncols: i16,
    /// Rows encoded so far.
    next: usize,
    chunks: Vec<Vec<u8>>,
}

/// Bytes of COPY data sent per message.
const COPY_CHUNK: usize = 1 << 20;

/// The binary COPY header: signature, flags (none) and header extension length (zero).
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl<'a> Encoded<'a> {
    fn new(rows: &'a Rows, ncols: i16) -> Encoded<'a> {
        Encoded {
            rows,
            ncols,
            next: 0,
            chunks: Vec::new(),
        }
    }

    /// Encodes the next chunk into `self.chunks`; false when every row already is.
    fn encode_chunk(&mut self) -> bool {
        let n = self.rows.len();
        if self.next == n && !self.chunks.is_empty() {
            return false;
        }
        let mut buf = Vec::with_capacity(COPY_CHUNK + (64 << 10));
        if self.chunks.is_empty() {
            buf.extend_from_slice(COPY_HEADER);
        }
        while self.next < n && buf.len() < COPY_CHUNK {
            encode_row(&mut buf, self.rows, self.next, self.ncols);
            self.next += 1;
        }
        if self.next == n {
            buf.extend_from_slice(&(-1i16).to_be_bytes());
        }
        self.chunks.push(buf);
        true
    }
}

/// Runs the `COPY .. FROM STDIN (FORMAT binary)` statement `stmt` with the batch: the chunks
/// encoded by an earlier attempt, then the rest, encoded as it goes. Returns the rows copied.
async fn copy_in(conn: &mut PgConnection, stmt: &str, data: &mut Encoded<'_>) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(stmt).await?;
    for chunk in &data.chunks {
        copy.send(chunk.as_slice()).await?;
    }
    while data.encode_chunk() {
        if let Some(chunk) = data.chunks.last() {
            copy.send(chunk.as_slice()).await?;
        }
    }
    copy.finish().await
}

/// Appends row `i` as a binary COPY tuple: the field count, then each field as a 32-bit
/// length (-1 for null) and its bytes: 64-bit integers and floats big-endian, booleans one
/// byte, text as UTF-8.
fn encode_row(buf: &mut Vec<u8>, rows: &Rows, i: usize, ncols: i16) {
    buf.extend_from_slice(&ncols.to_be_bytes());
    put_text(buf, rows.key[i].as_deref());
    put_i64(buf, Some(rows.time[i]));
    for col in &rows.fields {
        match col {
            Column::Int(v) | Column::Timestamp(v) => put_i64(buf, v[i]),
            Column::Float(v) => match v[i] {
                // One NaN, as `NaN` in COPY's text format gives.
                Some(x) => {
                    let x = if x.is_nan() { f64::NAN } else { x };
                    buf.extend_from_slice(&8i32.to_be_bytes());
                    buf.extend_from_slice(&x.to_be_bytes());
                }
                None => put_null(buf),
            },
            Column::Bool(v) => match v[i] {
                Some(b) => {
                    buf.extend_from_slice(&1i32.to_be_bytes());
                    buf.push(u8::from(b));
                }
                None => put_null(buf),
            },
            Column::Str(v) => put_text(buf, v[i].as_deref()),
        }
    }
    put_text(buf, rows.extra[i].as_deref());
}

fn put_null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn put_i64(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(x) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&x.to_be_bytes());
        }
        None => put_null(buf),
    }
}

/// A text value (at most [`MAX_TEXT_BYTES`], see [`check_text_lengths`]). A NUL byte cannot be
/// stored in a PostgreSQL text value: it is written as the two characters `\0`, as the text
/// format path always did.
fn put_text(buf: &mut Vec<u8>, s: Option<&str>) {
    let Some(s) = s else {
        put_null(buf);
        return;
    };
    let bytes = s.as_bytes();
    let nuls = if bytes.contains(&0) {
        bytes.iter().filter(|&&b| b == 0).count()
    } else {
        0
    };
    let len = i32::try_from(bytes.len() + nuls).unwrap_or(i32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    if nuls == 0 {
        buf.extend_from_slice(bytes);
    } else {
        for &b in bytes {
            if b == 0 {
                buf.extend_from_slice(b"\\0");
            } else {
                buf.push(b);
            }
        }
    }
}

/// Runs `sql` with `binds` on a task of its own and yields bounded batches through a channel
/// of two: the reader stays at most two batches ahead of the consumer.
fn stream_rows(pool: PgPool, sql: String, binds: Vec<i64>, plan: ReadPlan) -> BatchStream {
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
