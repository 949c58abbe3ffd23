//! mlc-store: the history store behind one interface, with two real backends (SQLite, the
//! embedded default, and PostgreSQL), and the ingest path (CSV, JSON lines, Parquet) into it.
//!
//! # Storage model
//!
//! Each component gets one table, `mlc_c_<component>`, created and extended from its
//! declaration by [`Store::ensure_component`]: the key (`TEXT`, nullable), the time (`BIGINT`
//! microseconds since the Unix epoch, UTC), one typed column per declared field, and
//! `__mlc_extra` holding the undeclared fields of each record as a JSON object (text).
//! A unique index on `(time, key)`, with a null key treated as one value, makes a re-sent record
//! (same component, key and time) a duplicate that is stored once: the first one stored wins.
//!
//! # Reads
//!
//! Reads return Arrow [`RecordBatch`]es with one column per requested name, typed as:
//! `int` → `Int64`, `float` → `Float64`, `bool` → `Boolean`, `string` and the key → `Utf8`,
//! `timestamp` and the time → `Int64` **microseconds since the Unix epoch (UTC)**. Every
//! column is nullable except the time.
//!
//! All methods are `async` and must run on a tokio runtime.

#![forbid(unsafe_code)]

mod assemble;
mod changes;
mod error;
pub mod ingest;
mod postgres;
mod rows;
mod segments;
mod shared_sql;
mod sql;
mod sqlite;

/// Segments built during one ingest (see [`Store::write_ingest_batch`]).
pub(crate) type IngestSeal = std::sync::Arc<std::sync::Mutex<sqlite::InlineSeal>>;

use std::pin::Pin;

use arrow_array::RecordBatch;
use futures::Stream;
pub use mlc_engine::schema::{ComponentSchema, DataType, FieldSchema};
use serde::{Deserialize, Serialize};

pub use changes::{CHANGES_RETENTION_US, Change, ChangeLog};
pub use error::{Result, StoreError};
pub use rows::{Column, Rows};

/// Rows per batch returned by reads: bounds the memory of a read whatever the window size.
pub const READ_BATCH_ROWS: usize = 65_536;

/// `ident` quoted as an SQL identifier, as the store names its columns.
pub fn quote_ident(ident: &str) -> String {
    sql::quote(ident)
}

/// Per-row counts of a component's rows in a time range, grouped, which the database
/// computes where it can ([`Store::row_sums`], docs/evaluation.md#pushdown). Expressions are
/// SQL in PostgreSQL's dialect over the component's columns ([`quote_ident`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SumsQuery {
    /// Columns to group by (string, integer or boolean columns).
    pub group_by: Vec<String>,
    /// Only the rows where this holds (a null counts as false).
    pub filter: Option<String>,
    /// Per count: `None` counts the rows; `Some(p)` the rows where `p` holds.
    pub terms: Vec<Option<String>>,
    pub start_us: Option<i64>,
    pub end_us: i64,
    /// The most groups the caller takes: the query asks for one more (`LIMIT`), so that a
    /// `group by` over a column of millions of values brings one past the limit to report,
    /// not millions.
    pub max_groups: usize,
}

/// The SQL of `q` over `schema`'s table, its time range from `start` to `end` (SQL
/// expressions: numbers when it runs, words in `mlc explain`).
///
/// With `partitions` (the leaf partitions of a table some of whose partitions are foreign
/// tables), the same counting query runs once per partition, combined with `UNION ALL` and
/// summed per group on top: PostgreSQL 15 does not push a partial aggregate through
/// `postgres_fdw` by itself, but sends each per-partition aggregate whole to its shard, all
/// shards at once (docs/operations.md#sharded-postgresql).
pub fn sums_sql(
    schema: &ComponentSchema,
    q: &SumsQuery,
    start: &str,
    end: &str,
    partitions: Option<&[String]>,
) -> String {
    let groups: Vec<String> = q.group_by.iter().map(|g| sql::quote(g)).collect();
    let mut counts = vec!["count(*)".to_string()];
    for t in &q.terms {
        counts.push(match t {
            None => "count(*)".into(),
            Some(p) => format!("count(*) FILTER (WHERE {p})"),
        });
    }
    let t = sql::quote(&schema.time);
    let one = |from: &str, counts: &[String]| {
        let select: Vec<&str> = groups.iter().chain(counts).map(String::as_str).collect();
        let mut out = format!(
            "SELECT {} FROM {from} WHERE {t} >= {start} AND {t} < {end}",
            select.join(", "),
        );
        if let Some(f) = &q.filter {
            out.push_str(&format!(" AND ({f})"));
        }
        if !groups.is_empty() {
            out.push_str(&format!(" GROUP BY {}", groups.join(", ")));
        }
        out
    };
    let mut out = match partitions {
        None => one(&sql::quote(&sql::table_name(&schema.name)), &counts),
        Some(parts) => {
            let named: Vec<String> = counts
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} AS c{i}"))
                .collect();
            let each: Vec<String> = parts.iter().map(|p| one(p, &named)).collect();
            let select: Vec<String> = groups
                .iter()
                .cloned()
                .chain((0..counts.len()).map(|i| format!("COALESCE(sum(c{i}), 0)::BIGINT")))
                .collect();
            let mut out = format!(
                "SELECT {} FROM ({}) AS per_partition",
                select.join(", "),
                each.join(" UNION ALL ")
            );
            if !groups.is_empty() {
                out.push_str(&format!(" GROUP BY {}", groups.join(", ")));
            }
            out
        }
    };
    if !groups.is_empty() {
        out.push_str(&format!(" LIMIT {}", q.max_groups.saturating_add(1)));
    }
    out
}

/// The PostgreSQL statements that make component `schema`'s table, as mlc makes it itself:
/// for a store where it must exist beforehand (docs/operations.md#sharded-postgresql).
///
/// With no `shards`, the table and its unique index (run this on each shard). With the names
/// of `postgres_fdw` servers, the coordinator's table: partitioned by hash of the key, one
/// foreign partition per server, each naming the same table on its shard.
pub fn postgres_ddl(schema: &ComponentSchema, shards: &[String]) -> String {
    let (table, index) = shared_sql::create_table_sql::<sqlx::Postgres>(schema);
    if shards.is_empty() {
        return format!("{table};\n{index};\n");
    }
    let name = sql::table_name(&schema.name);
    let mut out = format!("{table} PARTITION BY HASH ({});\n", sql::quote(&schema.key));
    for (i, server) in shards.iter().enumerate() {
        out.push_str(&format!(
            "CREATE FOREIGN TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES WITH (MODULUS {}, REMAINDER {i}) SERVER {} OPTIONS (table_name '{name}');\n",
            sql::quote(&format!("{name}_{server}")),
            sql::quote(&name),
            shards.len(),
            sql::quote(server),
        ));
    }
    out
}

/// One group of a [`SumsQuery`]: its key, its rows and its counts, in the query's order.
#[derive(Debug, Clone, PartialEq)]
pub struct SumsGroup {
    pub key: Vec<mlc_engine::value::Value>,
    pub rows: u64,
    pub sums: Vec<u64>,
}

/// The history store: one of the two backends, chosen by the URL given to [`Store::open`].
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend())
    }
}

/// A stream of bounded batches, as returned by [`Store::scan`].
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send + 'static>>;

/// A record kept aside because it does not fit its component, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedRecord {
    pub component: String,
    /// When the store received it, microseconds since the epoch.
    pub received_at_us: i64,
    /// Where it came from: a file name, `-` for stdin, or `http`.
    pub source: String,
    /// The record as it came (a CSV line re-encoded as CSV, a JSON line, a Parquet row as JSON).
    pub raw: String,
    pub reason: String,
}

impl QuarantinedRecord {
    /// What makes a quarantined record the same one when it is sent again: a SHA-256 of its
    /// component, source (file and position), raw text and reason, in hex.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [&self.component, &self.source, &self.raw, &self.reason] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What one [`Store::write_batch`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    /// Records newly stored.
    pub accepted: u64,
    /// Records not stored because a record with the same key and time already was.
    pub duplicates: u64,
    /// Records put in quarantine.
    pub quarantined: u64,
}

impl WriteOutcome {
    pub fn add(&mut self, other: WriteOutcome) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
    }
}

/// One stored check result. `json` is the full result object of docs/evaluation.md#results; the other
/// fields are copies of some of its members, kept as columns so that they can be filtered on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResult {
    pub check: String,
    /// The evaluation time `T`, microseconds since the epoch.
    pub at_us: i64,
    /// `pass`, `fail`, `insufficient` or `error`.
    pub status: String,
    pub rules_version: String,
    /// The slice as JSON text (`{}` without `group by`).
    pub slice: String,
    /// The `each` column, if any.
    pub column: Option<String>,
    pub json: String,
}

/// A store URL as every command takes it: `sqlite://PATH`, `sqlite::memory:`,
/// `postgres://...` or `postgresql://...` as they are, and a bare `PATH` (no `scheme://`) as
/// the SQLite file `sqlite://PATH`. Any other scheme is [`StoreError::BadUrl`].
pub fn normalize_url(db: &str) -> Result<String> {
    if db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")
    {
        return Ok(db.to_string());
    }
    if db.is_empty() || db.contains("://") {
        return Err(StoreError::BadUrl(db.to_string()));
    }
    // sqlx percent-decodes the path of a URL and cuts it at `?`: keep those bytes literal.
    let path = db
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    Ok(format!("sqlite://{path}"))
}

/// The file a SQLite store URL names (`None` for an in-memory store or another backend).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let url = normalize_url(url).ok()?;
    let rest = url.strip_prefix("sqlite:")?;
    if rest.contains(":memory:") || rest.contains("mode=memory") {
        return None;
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let path = path
        .replace("%3F", "?")
        .replace("%23", "#")
        .replace("%25", "%");
    Some(std::path::PathBuf::from(path))
}

/// Deletes the SQLite store at `path` with its WAL, shared-memory and journal files: for a
/// command that created a store and then stored nothing in it (a failed first ingest), so that
/// no empty database is left for later commands to take for real. Missing files are fine.
pub fn remove_sqlite_store(path: &std::path::Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Filters of [`Store::query_results`]. Results come newest first (by `at_us`, then by
/// insertion order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultQuery {
    pub check: Option<String>,
    /// Only results with `at_us >= since_us`.
    pub since_us: Option<i64>,
    /// Only results with `at_us < until_us`.
    pub until_us: Option<i64>,
    pub status: Option<String>,
    /// At most this many (all when `None`).
    pub limit: Option<u64>,
    pub offset: u64,
}

impl Store {
    /// Opens (and creates when missing) the store at `url` and applies pending migrations.
    ///
    /// - `sqlite://PATH`, or a bare `PATH`: a file, created when missing, in WAL mode.
    /// - `sqlite::memory:`: a private in-memory database (one connection), for tests of checks.
    /// - `postgres://USER@HOST:PORT/DB` (or `postgresql://`); an extra `schema=NAME` query
    ///   parameter keeps every table in that schema, created when missing.
    ///
    /// Only commands that write records (`mlc ingest`, `mlc serve`, the demo) create a store;
    /// commands that read one use [`Store::open_existing`].
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_as(url, true).await
    }

    /// Opens a store that must already exist: a SQLite file that is missing is
    /// [`StoreError::NoStore`], and nothing is created. PostgreSQL and in-memory stores open as
    /// with [`Store::open`].
    pub async fn open_existing(url: &str) -> Result<Store> {
        Self::open_as(url, false).await
    }

    async fn open_as(url: &str, create: bool) -> Result<Store> {
        let url = normalize_url(url)?;
        let url = url.as_str();
        if url.starts_with("sqlite:") {
            if !create
                && let Some(path) = sqlite_file(url)
                && !path.exists()
            {
                return Err(StoreError::NoStore(path.display().to_string()));
            }
            Ok(Store {
                backend: Backend::Sqlite(sqlite::SqliteStore::open(url, create).await?),
            })
        } else {
            Ok(Store {
                backend: Backend::Postgres(postgres::PgStore::open(url).await?),
            })
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Creates the component's table, or adds the columns of newly declared fields to it, and
    /// remembers the declaration. A field whose type differs from the stored column's, or a
    /// changed key or time column, is refused with a [`StoreError::SchemaConflict`] that says
    /// what to do; nothing is converted.
    pub async fn ensure_component(&self, schema: &ComponentSchema) -> Result<()> {
        sql::validate_schema(schema)?;
        match &self.backend {
            Backend::Sqlite(s) => s.ensure_component(schema).await,
            Backend::Postgres(s) => s.ensure_component(schema).await,
        }
    }

    /// The last declared schema of every component the store knows, sorted by name.
    pub async fn components(&self) -> Result<Vec<ComponentSchema>> {
        match &self.backend {
            Backend::Sqlite(s) => s.components().await,
            Backend::Postgres(s) => s.components().await,
        }
    }

    /// The last declared schema of one component.
    pub async fn component(&self, name: &str) -> Result<ComponentSchema> {
        self.components()
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| StoreError::UnknownComponent(name.to_string()))
    }

    /// Stores a batch of coerced records and the quarantined records that came with it, in one
    /// transaction: after a crash either all of it is stored or none of it.
    pub async fn write_batch(
        &self,
        schema: &ComponentSchema,
        rows: &Rows,
        quarantine: &[QuarantinedRecord],
    ) -> Result<WriteOutcome> {
        rows.check_shape(schema)?;
        match &self.backend {
            Backend::Sqlite(s) => s.write_batch(schema, rows, quarantine).await,
            Backend::Postgres(s) => s.write_batch(schema, rows, quarantine, false).await,
        }
    }

    /// An ingest's batch, owned (SQLite writes it on a blocking thread without a copy), with
    /// the ingest's [`sqlite::InlineSeal`] when it builds segments as it goes, and told
    /// whether the batch likely holds duplicates (the ingest's previous batch did): PostgreSQL
    /// then skips its direct `COPY`, which a duplicate would make it redo through its stage
    /// table. The outcome is the same either way.
    pub(crate) async fn write_ingest_batch(
        &self,
        schema: &ComponentSchema,
        rows: Rows,
        quarantine: Vec<QuarantinedRecord>,
        expect_duplicates: bool,
        inline: Option<&IngestSeal>,
    ) -> Result<WriteOutcome> {
        rows.check_shape(schema)?;
        match &self.backend {
            Backend::Sqlite(s) => {
                let batch = sqlite::OwnedBatch {
                    schema: schema.clone(),
                    rows: std::sync::Arc::new(rows),
                    quarantine: std::sync::Arc::new(quarantine),
                };
                s.write_owned(batch, inline.cloned()).await
            }
            Backend::Postgres(s) => {
                s.write_batch(schema, &rows, &quarantine, expect_duplicates)
                    .await
            }
        }
    }

    /// The state of building `schema`'s segments during one ingest; `None` when this store
    /// keeps none (PostgreSQL, `:memory:`, `segment_rows=0`).
    pub(crate) fn ingest_seal(&self, schema: &ComponentSchema) -> Result<Option<IngestSeal>> {
        match &self.backend {
            Backend::Sqlite(s) => s.inline_seal(schema),
            Backend::Postgres(_) => Ok(None),
        }
    }

    /// Builds the column segments of `component`'s rows that have none yet (SQLite file
    /// stores; see docs/storage.md), so that later reads copy columns instead of decoding
    /// rows. Returns how many segments were stored; 0 on PostgreSQL and `:memory:`. Reads are
    /// correct whether or not this ever runs.
    pub async fn seal(&self, component: &str) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(s) => s.seal(&self.component(component).await?).await,
            Backend::Postgres(_) => Ok(0),
        }
    }

    /// The rows of `component` with `start_us <= time < end_us` (no lower bound when
    /// `start_us` is `None`), in time order, as batches of at most [`READ_BATCH_ROWS`] rows
    /// holding `columns` in the order given (see the crate docs for the Arrow types).
    pub async fn scan(
        &self,
        component: &str,
        columns: &[&str],
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<BatchStream> {
        let schema = self.component(component).await?;
        let plan = sql::ReadPlan::new(&schema, columns)?;
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.scan(plan, start_us, end_us)),
            Backend::Postgres(s) => Ok(s.scan(plan, start_us, end_us)),
        }
    }

    /// [`Store::scan`], collected.
    pub async fn scan_batches(
        &self,
        component: &str,
        columns: &[&str],
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<Vec<RecordBatch>> {
        self.scan_batches_nulls_only(component, columns, &[], start_us, end_us)
            .await
    }

    /// [`Store::scan_batches`], where the columns also named in `nulls_only` are needed only
    /// for which rows are null (`x is null`): their arrays keep the column's type and
    /// validity, but their values may be zeros. Reads from column segments then read only
    /// the validity bitmaps of those columns; other reads return the values as usual.
    pub async fn scan_batches_nulls_only(
        &self,
        component: &str,
        columns: &[&str],
        nulls_only: &[&str],
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        let schema = self.component(component).await?;
        let plan = sql::ReadPlan::new(&schema, columns)?.with_nulls_only(nulls_only);
        match &self.backend {
            Backend::Sqlite(s) => s.scan_collect(plan, start_us, end_us).await,
            Backend::Postgres(s) => s.scan(plan, start_us, end_us).try_collect().await,
        }
    }

    /// `[start_us, end_us)` of `component` cut into time slices of about `rows_per_slice`
    /// rows each, in order, covering the range exactly: `[(start_us, c1), (Some(c1), c2), ...,
    /// (Some(ck), end_us)]`. A reader that takes a window slice by slice (the executor streams
    /// windows through the checks' states) then holds one slice's rows at a time. SQLite
    /// files estimate the cuts from the column segments' row counts and time spans, reading
    /// no row (rows ingested far out of time order make the slices uneven, never wrong);
    /// other stores, and tables without segments, give the range as one slice.
    pub async fn time_slices(
        &self,
        component: &str,
        start_us: Option<i64>,
        end_us: i64,
        rows_per_slice: u64,
    ) -> Result<Vec<(Option<i64>, i64)>> {
        let cuts = self
            .estimate(component, start_us, end_us, rows_per_slice)
            .await?
            .map(|(_, cuts)| cuts)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut from = start_us;
        for c in cuts {
            out.push((from, c));
            from = Some(c);
        }
        out.push((from, end_us));
        Ok(out)
    }

    /// About how many rows of `component` have `start_us <= time < end_us`: on SQLite
    /// estimated as [`Store::time_slices`] does (no row is read), `None` where there is no
    /// estimate (in-memory stores, tables without segments); on PostgreSQL counted exactly,
    /// the server walking its (time, key) index: a planner's estimate can be far off before
    /// the table's first `ANALYZE`, and the executor sizes its memory by this.
    pub async fn estimate_rows(
        &self,
        component: &str,
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<Option<u64>> {
        if let Backend::Postgres(s) = &self.backend {
            let schema = self.component(component).await?;
            return s.count_range(&schema, start_us, end_us).await.map(Some);
        }
        Ok(self
            .estimate(component, start_us, end_us, u64::MAX)
            .await?
            .map(|(rows, _)| rows.round() as u64))
    }

    async fn estimate(
        &self,
        component: &str,
        start_us: Option<i64>,
        end_us: i64,
        rows_per_slice: u64,
    ) -> Result<Option<(f64, Vec<i64>)>> {
        let schema = self.component(component).await?;
        match &self.backend {
            Backend::Sqlite(s) => {
                s.time_cuts(
                    &sql::table_name(&schema.name),
                    start_us.unwrap_or(i64::MIN),
                    end_us,
                    rows_per_slice,
                )
                .await
            }
            Backend::Postgres(_) => Ok(None),
        }
    }

    /// Per value of `keys` (which may repeat), the latest row with `time < before_us` whose column `key_column`
    /// (the component's key, or another string column a join matches on) holds it; a value
    /// without one gives no row. `columns` must include `key_column` and the time when the
    /// caller needs them to join. Reads only what can match, a semi-join: one pass over the
    /// rows before `before_us`, each part filtered by the keys as it is read (SQLite:
    /// through the column segments, in bounded time slices; PostgreSQL: in the server), so
    /// memory holds the matching rows, not the component's history. SQLite filters by the
    /// keys' 64-bit hashes (no pointer chase per probe), so a row of another key with the
    /// same hash may come too, about once in 2^64 / (keys x rows) reads: callers match keys
    /// exactly (the join does). When two rows of a key share the latest time (impossible for
    /// the component's key through ingest, which deduplicates on key and time), one of them
    /// is returned.
    pub async fn latest_by_key(
        &self,
        component: &str,
        columns: &[&str],
        before_us: i64,
        key_column: &str,
        keys: &[&str],
    ) -> Result<Vec<RecordBatch>> {
        self.rows_of_keys(component, columns, before_us, key_column, keys, true)
            .await
    }

    /// Every row with `time < before_us` whose column `key_column` holds one of `keys`, in
    /// time order: [`Store::latest_by_key`] before any time up to `before_us` for those keys
    /// (a backfill reads them once for a group of steps). Read the same way, a semi-join.
    pub async fn rows_by_key(
        &self,
        component: &str,
        columns: &[&str],
        before_us: i64,
        key_column: &str,
        keys: &[&str],
    ) -> Result<Vec<RecordBatch>> {
        self.rows_of_keys(component, columns, before_us, key_column, keys, false)
            .await
    }

    async fn rows_of_keys(
        &self,
        component: &str,
        columns: &[&str],
        before_us: i64,
        key_column: &str,
        keys: &[&str],
        latest_only: bool,
    ) -> Result<Vec<RecordBatch>> {
        let schema = self.component(component).await?;
        let plan = sql::ReadPlan::new(&schema, columns)?;
        if schema.column_type(key_column).is_none() {
            return Err(StoreError::UnknownColumn {
                component: component.to_string(),
                column: key_column.to_string(),
            });
        }
        match &self.backend {
            Backend::Sqlite(s) => {
                s.rows_of_keys(plan, before_us, key_column, keys, latest_only)
                    .await
            }
            Backend::Postgres(s) => {
                s.rows_of_keys(plan, before_us, key_column, keys, latest_only)
                    .await
            }
        }
    }

    /// The latest event time (microseconds) of `component` before `before_us`, or `None`
    /// when it has no such row. Answered from the time index.
    pub async fn max_time(&self, component: &str, before_us: i64) -> Result<Option<i64>> {
        let schema = self.component(component).await?;
        match &self.backend {
            Backend::Sqlite(s) => s.max_time(&schema, before_us).await,
            Backend::Postgres(s) => s.max_time(&schema, before_us).await,
        }
    }

    /// The groups of `query` over `component`, counted by the database: `None` where the
    /// store does not push counts down (SQLite, whose rows the process reads as fast as the
    /// database would count them), and the SQL that ran.
    pub async fn row_sums(
        &self,
        component: &str,
        query: &SumsQuery,
    ) -> Result<Option<(Vec<SumsGroup>, String)>> {
        let schema = self.component(component).await?;
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(s) => s.row_sums(&schema, query).await.map(Some),
        }
    }

    /// Whether [`Store::row_sums`] counts in the database (PostgreSQL) rather than giving
    /// `None` (SQLite).
    pub fn counts_rows(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The number of stored records of `component`.
    pub async fn count(&self, component: &str) -> Result<u64> {
        let schema = self.component(component).await?;
        match &self.backend {
            Backend::Sqlite(s) => s.count(&schema).await,
            Backend::Postgres(s) => s.count(&schema).await,
        }
    }

    /// At least the number of stored records of `component`, found without counting them
    /// (SQLite: the span of the table's rowids, which only prune leaves gaps in; PostgreSQL:
    /// the count itself). For memory bounds, where a 1M-row count costs tens of ms.
    pub async fn rows_at_most(&self, component: &str) -> Result<u64> {
        let schema = self.component(component).await?;
        match &self.backend {
            Backend::Sqlite(s) => s.rows_at_most(&schema).await,
            Backend::Postgres(s) => s.count(&schema).await,
        }
    }

    /// The undeclared fields of the records of `component` with `start_us <= time < end_us`,
    /// as `(key, time_us, JSON object text)`, for inspection; checks cannot use them.
    pub async fn extras(
        &self,
        component: &str,
        start_us: Option<i64>,
        end_us: i64,
    ) -> Result<Vec<(Option<String>, i64, Option<String>)>> {
        let schema = self.component(component).await?;
        match &self.backend {
            Backend::Sqlite(s) => s.extras(&schema, start_us, end_us).await,
            Backend::Postgres(s) => s.extras(&schema, start_us, end_us).await,
        }
    }

    /// Up to `limit` quarantined records of `component`, oldest first.
    pub async fn quarantined(&self, component: &str, limit: u64) -> Result<Vec<QuarantinedRecord>> {
        match &self.backend {
            Backend::Sqlite(s) => s.quarantined(component, limit).await,
            Backend::Postgres(s) => s.quarantined(component, limit).await,
        }
    }

    /// Stores check results (one transaction).
    pub async fn insert_results(&self, results: &[StoredResult]) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.insert_results(results).await,
            Backend::Postgres(s) => s.insert_results(results).await,
        }
    }

    /// Stored results matching `q`, newest first.
    pub async fn query_results(&self, q: &ResultQuery) -> Result<Vec<StoredResult>> {
        match &self.backend {
            Backend::Sqlite(s) => s.query_results(q).await,
            Backend::Postgres(s) => s.query_results(q).await,
        }
    }

    /// Deletes the records with `time < before_us` of one component (or of all), in
    /// transactions of at most `batch_rows` rows so that ingest is never blocked for long.
    /// Returns the number of records deleted.
    pub async fn prune(
        &self,
        component: Option<&str>,
        before_us: i64,
        batch_rows: u64,
    ) -> Result<u64> {
        let targets = match component {
            Some(name) => vec![self.component(name).await?],
            None => self.components().await?,
        };
        let batch_rows = batch_rows.max(1);
        let mut total = 0;
        for schema in &targets {
            loop {
                let n = match &self.backend {
                    Backend::Sqlite(s) => s.prune_batch(schema, before_us, batch_rows).await?,
                    Backend::Postgres(s) => s.prune_batch(schema, before_us, batch_rows).await?,
                };
                total += n;
                if n < batch_rows {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// The change journal after entry `after` (docs/storage.md, "Change journal"): which
    /// times of which components gained or lost rows since, written by any process. `None`
    /// asks only where the journal ends (`last`), to start from.
    pub async fn changes_since(&self, after: Option<i64>) -> Result<ChangeLog> {
        match &self.backend {
            Backend::Sqlite(s) => s.changes_since(after).await,
            Backend::Postgres(s) => s.changes_since(after).await,
        }
    }

    /// `columns` of the rows of `component` numbered `first..=last` (the rows one write
    /// stored, as a [`Change`] gives them) with `start_us <= time < end_us`. Only where the
    /// journal gives row numbers (SQLite files); an error elsewhere.
    pub async fn rows_by_rowid(
        &self,
        component: &str,
        columns: &[&str],
        (first, last): (i64, i64),
        (start_us, end_us): (i64, i64),
    ) -> Result<Vec<RecordBatch>> {
        let schema = self.component(component).await?;
        let plan = sql::ReadPlan::new(&schema, columns)?;
        match &self.backend {
            Backend::Sqlite(s) => {
                s.rows_by_rowid(plan, (first, last), (start_us, end_us))
                    .await
            }
            Backend::Postgres(_) => Err(StoreError::Ingest(
                "internal error: PostgreSQL rows have no numbers to read them by".into(),
            )),
        }
    }

    /// Deletes the change journal's entries recorded before `before_us` (the newest is kept):
    /// a reader that last looked before then is told it missed some.
    pub async fn trim_changes(&self, before_us: i64) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(s) => s.trim_changes(before_us).await,
            Backend::Postgres(s) => s.trim_changes(before_us).await,
        }
    }

    /// A named document of the service's state (`None` when never written).
    pub async fn get_state(&self, name: &str) -> Result<Option<String>> {
        match &self.backend {
            Backend::Sqlite(s) => s.get_state(name).await,
            Backend::Postgres(s) => s.get_state(name).await,
        }
    }

    /// Writes a named document of the service's state, replacing the previous one.
    pub async fn put_state(&self, name: &str, value: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.put_state(name, value).await,
            Backend::Postgres(s) => s.put_state(name, value).await,
        }
    }

    /// Claims the evaluation of `check` at `slot_us` for `owner`: `true` for exactly one
    /// caller per (check, slot), however many replicas share the store and whenever they
    /// ask (a replica that comes late to a slot another has finished is refused too, which
    /// a lock held only while evaluating would not do).
    pub async fn claim_slot(&self, check: &str, slot_us: i64, owner: &str) -> Result<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.claim_slot(check, slot_us, owner).await,
            Backend::Postgres(s) => s.claim_slot(check, slot_us, owner).await,
        }
    }

    /// Drops the PostgreSQL schema this store was opened in (`?schema=NAME`) with everything
    /// in it, for a scratch store such as each test of `mlc test --db`; false, and nothing
    /// dropped, for a store opened without one (or SQLite). The store is unusable after.
    pub async fn drop_schema(&self) -> Result<bool> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(false),
            Backend::Postgres(s) => s.drop_schema().await,
        }
    }

    /// Closes the pool, waiting for connections to finish (flushes SQLite's WAL on exit).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(s) => s.close().await,
        }
    }
}

/// Parses an age such as `90d`: an integer and a unit, `s m h d w` (the language's durations).
pub fn parse_duration_secs(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(unit_at);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write an integer and a unit, like `90d`"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "`{s}` is not a duration: the unit must be one of s, m, h, d, w (like `90d`)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too long a duration"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Component `events` (key `id`, time `ts`) with one field.
    fn events(field: &str, ty: DataType) -> ComponentSchema {
        ComponentSchema {
            name: "events".into(),
            key: "id".into(),
            time: "ts".into(),
            fields: vec![FieldSchema {
                name: field.into(),
                ty,
            }],
        }
    }

    #[test]
    fn a_grouped_count_asks_for_one_group_past_the_limit_not_all() {
        let schema = events("country", DataType::String);
        let mut q = SumsQuery {
            group_by: vec!["country".into()],
            filter: None,
            terms: vec![None],
            start_us: Some(5),
            end_us: 9,
            max_groups: 1000,
        };
        assert_eq!(
            sums_sql(&schema, &q, "5", "9", None),
            r#"SELECT "country", count(*), count(*) FROM "mlc_c_events" WHERE "ts" >= 5 AND "ts" < 9 GROUP BY "country" LIMIT 1001"#
        );
        // Without `group by` there is one group: no limit.
        q.group_by.clear();
        assert!(!sums_sql(&schema, &q, "5", "9", None).contains("LIMIT"));
    }

    #[test]
    fn a_table_with_foreign_partitions_is_counted_per_partition_and_summed() {
        let schema = events("country", DataType::String);
        let mut q = SumsQuery {
            group_by: vec!["country".into()],
            filter: Some("\"country\" IS NOT NULL".into()),
            terms: vec![None],
            start_us: Some(5),
            end_us: 9,
            max_groups: 10,
        };
        let parts = ["s1".to_string(), "public.s2".to_string()];
        let each = |from: &str| {
            format!(
                r#"SELECT "country", count(*) AS c0, count(*) AS c1 FROM {from} WHERE "ts" >= 5 AND "ts" < 9 AND ("country" IS NOT NULL) GROUP BY "country""#
            )
        };
        assert_eq!(
            sums_sql(&schema, &q, "5", "9", Some(&parts)),
            format!(
                r#"SELECT "country", COALESCE(sum(c0), 0)::BIGINT, COALESCE(sum(c1), 0)::BIGINT FROM ({} UNION ALL {}) AS per_partition GROUP BY "country" LIMIT 11"#,
                each("s1"),
                each("public.s2")
            )
        );
        q.group_by.clear();
        q.filter = None;
        assert_eq!(
            sums_sql(&schema, &q, "5", "9", Some(&parts[..1])),
            r#"SELECT COALESCE(sum(c0), 0)::BIGINT, COALESCE(sum(c1), 0)::BIGINT FROM (SELECT count(*) AS c0, count(*) AS c1 FROM s1 WHERE "ts" >= 5 AND "ts" < 9) AS per_partition"#
        );
    }

    #[test]
    fn the_ddl_of_a_sharded_table_partitions_by_key_over_the_servers() {
        let schema = events("age", DataType::Int);
        let plain = postgres_ddl(&schema, &[]);
        assert_eq!(
            plain,
            "CREATE TABLE IF NOT EXISTS \"mlc_c_events\" (\"id\" TEXT COLLATE \"C\", \"ts\" BIGINT NOT NULL, \"age\" BIGINT, \"__mlc_extra\" TEXT);\n\
             CREATE UNIQUE INDEX IF NOT EXISTS \"mlc_c_events_time_key\" ON \"mlc_c_events\" (\"ts\", \"id\") NULLS NOT DISTINCT;\n"
        );
        let sharded = postgres_ddl(&schema, &["shard1".into(), "shard2".into()]);
        assert!(sharded.starts_with(
            "CREATE TABLE IF NOT EXISTS \"mlc_c_events\" (\"id\" TEXT COLLATE \"C\", \"ts\" BIGINT NOT NULL, \"age\" BIGINT, \"__mlc_extra\" TEXT) PARTITION BY HASH (\"id\");\n"
        ));
        assert!(sharded.contains("CREATE FOREIGN TABLE IF NOT EXISTS \"mlc_c_events_shard2\" PARTITION OF \"mlc_c_events\" FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER \"shard2\" OPTIONS (table_name 'mlc_c_events');\n"));
        assert!(!sharded.contains("UNIQUE"));
    }

    #[test]
    fn a_bare_path_is_a_sqlite_file() {
        assert_eq!(normalize_url("mlc.db").unwrap(), "sqlite://mlc.db");
        assert_eq!(
            normalize_url("/tmp/a b/x.db").unwrap(),
            "sqlite:///tmp/a b/x.db"
        );
        assert_eq!(normalize_url("sqlite://x.db").unwrap(), "sqlite://x.db");
        assert_eq!(normalize_url("sqlite::memory:").unwrap(), "sqlite::memory:");
        assert!(matches!(
            normalize_url("mysql://h/db"),
            Err(StoreError::BadUrl(_))
        ));
        assert!(matches!(normalize_url(""), Err(StoreError::BadUrl(_))));
        for path in [
            "x.db",
            "/tmp/a?b#c%d.db",
            "sqlite://rel/x.db",
            "sqlite:///abs/x.db?segment_rows=0",
        ] {
            let file = sqlite_file(path).unwrap();
            assert!(
                !file.to_string_lossy().contains("sqlite"),
                "{path}: {file:?}"
            );
        }
        assert_eq!(
            sqlite_file("/tmp/a?b#c%d.db").unwrap(),
            std::path::PathBuf::from("/tmp/a?b#c%d.db")
        );
        assert_eq!(
            sqlite_file("sqlite:///abs/x.db?segment_rows=0").unwrap(),
            std::path::PathBuf::from("/abs/x.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn reading_a_missing_store_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd ?#%.db");
        let bare = path.to_str().unwrap();
        let err = Store::open_existing(bare).await.err().unwrap();
        assert!(matches!(err, StoreError::NoStore(_)), "{err}");
        assert!(err.to_string().contains("--db") && err.to_string().contains("MLC_DB"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A bare path creates the file it names, and then opens as an existing store.
        Store::open(bare).await.unwrap().close().await;
        assert!(path.exists());
        Store::open_existing(bare).await.unwrap().close().await;
        let url = format!("sqlite://{}", dir.path().join("other.db").display());
        assert!(Store::open_existing(&url).await.is_err());
        assert!(!dir.path().join("other.db").exists());
        // A created store is removed whole, WAL and shared memory included.
        let store = Store::open(bare).await.unwrap();
        store.put_state("k", "v").await.unwrap();
        store.close().await;
        remove_sqlite_store(&path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        remove_sqlite_store(&path).unwrap();
    }
}
