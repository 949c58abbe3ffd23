//! The PostgreSQL backend, for scale: batches are written with binary `COPY`, straight into the
//! component table when they hold no stored or repeated record, otherwise into a temporary
//! stage table moved into the component table with `ON CONFLICT DO NOTHING`; one transaction
//! per batch either way. The SQL SQLite runs too (declarations, state, slots, results,
//! quarantine, simple reads, row streaming) comes from `shared_sql.rs`; this file holds
//! PostgreSQL's own: open, the [`Dialect`], the declaration lock, `COPY`, the latest row per key.

use std::str::FromStr;

use futures::TryStreamExt;
use mlc_engine::schema::{ComponentSchema, DataType};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

use crate::error::{Result, StoreError};
use crate::rows::{Column, Rows};
use crate::shared_sql::{Dialect, shared_sql};
use crate::sql::{self, ReadPlan, quote, table_name};
use crate::{BatchStream, QuarantinedRecord, WriteOutcome};

#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    /// The schema of `?schema=NAME`, when the URL named one.
    schema: Option<String>,
}

// Declarations, state, slots, results, quarantine, the simple reads and row streaming: the SQL
// both backends share (shared_sql.rs), as `PgStore` methods and the functions of `shared`.
shared_sql!(sqlx::Postgres, PgStore);

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
        (
            4,
            "changes",
            include_str!("../migrations/postgres/0004_changes.sql"),
        ),
    ])
}

impl Dialect for sqlx::Postgres {
    /// A row's physical location: PostgreSQL tables have no row id of their own, and in a
    /// partitioned table a location is one partition's (`tableoid` names the partition).
    const ROW_ID: &'static str = "tableoid, ctid";

    fn placeholder(n: usize) -> String {
        format!("${n}")
    }

    fn column_type(ty: DataType) -> &'static str {
        match ty {
            DataType::Int | DataType::Timestamp => "BIGINT",
            DataType::Float => "DOUBLE PRECISION",
            DataType::Bool => "BOOLEAN",
            // Compared byte by byte, as mlc compares strings: a pushed-down comparison
            // (`COLLATE "C"`) is then the column's own, which postgres_fdw can send to the
            // shards of a partitioned table (docs/operations.md#sharded-postgresql).
            DataType::String => "TEXT COLLATE \"C\"",
        }
    }

    /// `NULLS NOT DISTINCT` (PostgreSQL 15) makes a null key equal to another null key.
    fn time_key_index(time: &str, key: &str) -> String {
        format!("({time}, {key}) NULLS NOT DISTINCT")
    }

    /// Writers take this lock (held to their commit) before their journal entries, so that
    /// entries are numbered in commit order: a reader that saw entry n has seen every entry
    /// before it.
    const CHANGES_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7273436864)");
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
        Ok(PgStore { pool, schema })
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// The rows of `schema`'s table with `start_us <= time < end_us`.
    pub(crate) async fn count_range(
        &self,
        schema: &ComponentSchema,
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<u64> {
        let t = quote(&schema.time);
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {} WHERE {t} >= $1 AND {t} < $2",
            quote(&table_name(&schema.name))
        )))
        .bind(start_us.unwrap_or(i64::MIN))
        .bind(end_us)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    /// See [`crate::Store::drop_schema`].
    pub(crate) async fn drop_schema(&self) -> Result<bool> {
        let Some(schema) = &self.schema else {
            return Ok(false);
        };
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            quote(schema)
        )))
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// A write transaction: a plain `BEGIN`. PostgreSQL's row locks and unique indexes keep
    /// concurrent writers apart; declaring a component takes its table lock itself.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    pub(crate) async fn ensure_component(&self, schema: &ComponentSchema) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Two processes declaring the same component at once must not both create it: the
        // second waits here until the first commits, then finds its declaration.
        sqlx::query("LOCK TABLE mlc_components IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        // A table made beforehand (a partitioned one, say: docs/operations.md#sharded-postgresql)
        // must hold the columns mlc writes; a unique index on a table with foreign partitions
        // is each shard's own.
        let table = table_name(&schema.name);
        let declared: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM mlc_components WHERE name = $1")
                .bind(&schema.name)
                .fetch_optional(&mut *tx)
                .await?;
        let mut foreign = false;
        if declared.is_none() {
            let made = existing_columns(&mut tx, &table).await?;
            if !made.is_empty() {
                check_made_table(schema, &table, &made)?;
                foreign = foreign_partitions(&mut tx, &table).await?.is_some();
            }
        }
        shared::declare_component(&mut tx, schema, !foreign).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes one batch in one transaction. The rows go by binary `COPY` straight into the
    /// component table, inside a savepoint; when that meets a stored or repeated key and time
    /// (unique violation) the savepoint is rolled back and the same encoded rows go the slow,
    /// deduplicating way: `COPY` into a temporary stage table, then `INSERT .. SELECT .. ON
    /// CONFLICT DO NOTHING`. `expect_duplicates` (the writer's previous batch had some) skips
    /// the direct attempt, so re-sending an ingested file does not pay twice per batch. So does
    /// a table with foreign partitions: `COPY` sends their rows one `INSERT` at a time, while
    /// `INSERT .. SELECT` sends them in the foreign server's batches (`batch_size`): 60,000
    /// rows/s instead of 7,000 here (docs/operations.md#sharded-postgresql).
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
        let mut tx = self.begin_write().await?;
        if !rows.is_empty() {
            let mut encoded = Encoded::new(rows, ncols);
            let mut direct = false;
            let foreign = foreign_partitions(&mut tx, &table_name(&schema.name))
                .await?
                .is_some();
            if !expect_duplicates && !foreign {
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
        if out.accepted > 0 {
            let ranges = crate::changes::time_ranges(rows.time.iter().copied());
            shared::record_changes(&mut tx, &schema.name, &ranges).await?;
        }
        shared::insert_quarantine(&mut tx, quarantine).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) fn scan(&self, plan: ReadPlan, start_us: Option<i64>, end_us: i64) -> BatchStream {
        let sql = shared::window_sql(&plan);
        let binds = vec![start_us.unwrap_or(i64::MIN), end_us];
        shared::stream_rows(self.pool.clone(), sql, binds, plan)
    }

    /// See [`crate::Store::latest_by_key`] and [`crate::Store::rows_by_key`] (`latest_only`
    /// false): one query, the keys bound as one JSON array; the server filters the rows
    /// before `before_us` by them (and keeps the latest per key). `IN (SELECT ..)` is a semi
    /// join PostgreSQL hashes: `= ANY(ARRAY(SELECT ..))` compared each row with every key, and
    /// the example pipeline's joins of 90,000 requests with their labels took 2 minutes
    /// instead of 2 s. (A bound `TEXT[]` is hashed too, but planning it cost 0.8 s through
    /// `postgres_fdw`.)
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
        let (t, k) = (quote(&plan.time), quote(key_column));
        let filter = format!(
            "FROM {} WHERE {k} IN (SELECT json_array_elements_text($1::json)) AND {t} < {before_us}",
            quote(&plan.table)
        );
        let sql = match latest_only {
            true => format!(
                "SELECT DISTINCT ON ({k}) {} {filter} ORDER BY {k}, {t} DESC",
                plan.select_list()
            ),
            false => format!("SELECT {} {filter} ORDER BY {t}", plan.select_list()),
        };
        let json = sql::encode_json(keys)?;
        shared::stream_rows(self.pool.clone(), sql, vec![json], plan)
            .try_collect()
            .await
    }

    /// See [`crate::Store::row_sums`]: one `GROUP BY` query, `count(*) FILTER (WHERE ..)`
    /// per term; on a table with foreign partitions, one such query per partition, summed
    /// (see [`crate::sums_sql`]).
    pub(crate) async fn row_sums(
        &self,
        schema: &ComponentSchema,
        q: &crate::SumsQuery,
    ) -> Result<(Vec<crate::SumsGroup>, String)> {
        use mlc_engine::value::Value;
        use sqlx::Row;
        let mut types = Vec::with_capacity(q.group_by.len());
        for g in &q.group_by {
            match schema.column_type(g) {
                Some(t @ (DataType::String | DataType::Int | DataType::Bool)) => types.push(t),
                _ => {
                    return Err(StoreError::UnknownColumn {
                        component: schema.name.clone(),
                        column: g.clone(),
                    });
                }
            }
        }
        let partitions = {
            let mut conn = self.pool.acquire().await?;
            foreign_partitions(&mut conn, &table_name(&schema.name)).await?
        };
        let sql = crate::sums_sql(
            schema,
            q,
            &q.start_us.unwrap_or(i64::MIN).to_string(),
            &q.end_us.to_string(),
            partitions.as_deref(),
        );
        let rows = sqlx::query(AssertSqlSafe(sql.clone()))
            .fetch_all(&self.pool)
            .await?;
        let n = q.group_by.len();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut key = Vec::with_capacity(n);
            for (i, ty) in types.iter().enumerate() {
                key.push(match ty {
                    DataType::String => row
                        .try_get::<Option<String>, _>(i)?
                        .map_or(Value::Null, Value::Str),
                    DataType::Int => row
                        .try_get::<Option<i64>, _>(i)?
                        .map_or(Value::Null, Value::Int),
                    _ => row
                        .try_get::<Option<bool>, _>(i)?
                        .map_or(Value::Null, Value::Bool),
                });
            }
            let count = |i: usize| row.try_get::<i64, _>(i).map(|v| v.max(0) as u64);
            let rows = count(n)?;
            let sums = (0..q.terms.len())
                .map(|j| count(n + 1 + j))
                .collect::<std::result::Result<Vec<u64>, _>>()?;
            out.push(crate::SumsGroup { key, rows, sums });
        }
        Ok((out, sql))
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
        }
        tx.commit().await?;
        Ok(deleted)
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

/// The columns of `table` (unquoted, in the search path) and their types as PostgreSQL
/// spells them; none when there is no such table.
async fn existing_columns(conn: &mut PgConnection, table: &str) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(quote(table))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Refuses a table made beforehand that lacks a column mlc writes, or holds it with another
/// type, naming the statement that makes it right.
fn check_made_table(
    schema: &ComponentSchema,
    table: &str,
    made: &[(String, String)],
) -> Result<()> {
    let mut wanted: Vec<(String, &str)> = sql::needed_columns(schema)
        .into_iter()
        .map(|c| {
            let ty = match c.ty {
                DataType::Int | DataType::Timestamp => "bigint",
                DataType::Float => "double precision",
                DataType::Bool => "boolean",
                DataType::String => "text",
            };
            (c.name, ty)
        })
        .collect();
    wanted.push((sql::EXTRA_COLUMN.to_string(), "text"));
    for (name, ty) in wanted {
        let problem = match made.iter().find(|(n, _)| *n == name) {
            None => format!("has no column `{name}` ({ty})"),
            Some((_, t)) if t != ty => format!("holds column `{name}` as {t}, not {ty}"),
            Some(_) => continue,
        };
        return Err(StoreError::SchemaConflict(format!(
            "table `{table}` of component `{}` exists but {problem}: make it with the \
             statement `mlc explain --ddl` prints (docs/operations.md#sharded-postgresql)",
            schema.name
        )));
    }
    Ok(())
}

/// The leaf partitions of `table` (each as a name to write in SQL) when any of them is a
/// foreign table; `None` for a plain table or one whose partitions are all local (there the
/// planner aggregates per partition itself where that pays).
async fn foreign_partitions(conn: &mut PgConnection, table: &str) -> Result<Option<Vec<String>>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "WITH RECURSIVE tree(oid) AS ( \
           SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass($1) \
           UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid) \
         SELECT c.oid::regclass::text, c.relkind::text FROM tree JOIN pg_class c ON c.oid = tree.oid \
         WHERE c.relkind <> 'p' ORDER BY 1",
    )
    .bind(quote(table))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .any(|(_, kind)| kind == "f")
        .then(|| rows.into_iter().map(|(name, _)| name).collect()))
}
