//! The SQL both backends run word for word: creating and evolving component tables and
//! remembering their declarations (`mlc_components`), the service's state (`mlc_state`),
//! evaluation slot claims (`mlc_slots`), stored results (`mlc_results`), quarantined records
//! (`mlc_quarantine`), the simple reads (latest time, count, extras), deleting old rows in
//! batches, and streaming fetched rows into Arrow batches.
//!
//! Written once, as the macro [`shared_sql!`], which each backend instantiates in its own
//! module for its sqlx database and store type: it generates a module `shared` of free
//! functions (for use inside the backend's transactions) and the store's methods that are the
//! same on both. A macro rather than functions generic over `sqlx::Database`: sqlx's generic
//! executors need higher-ranked bounds (`for<'c> &'c mut DB::Connection: Executor<'c>`, and
//! `Encode`/`Decode`/`Type` per bound type) that every function would repeat.
//! `QueryBuilder::push_bind` writes each backend's placeholder (`?` or `$n`).
//!
//! What the backends spell differently is explicit, in their own files: the [`Dialect`]
//! fragments (placeholders, column types, the unique index's null handling, the row
//! identifier), how a write transaction begins (`begin_write`: SQLite takes its write lock up
//! front), PostgreSQL's lock on `mlc_components` while a component is declared, and SQLite's
//! column segments, dropped when columns are added or rows deleted.

use mlc_engine::schema::{ComponentSchema, DataType};

use crate::sql::{self, EXTRA_COLUMN, quote, table_name};

/// Claims older than this before the slot being claimed are of no further use.
pub(crate) const SLOT_RETENTION_US: i64 = 7 * 86_400 * 1_000_000;

/// The columns of `mlc_results`, in the order results are written and decoded.
pub(crate) const RESULT_COLUMNS: &str =
    "check_name, at_us, status, rules_version, slice, column_name, json";

/// The few SQL fragments the backends spell differently; each backend implements it for its
/// sqlx database, beside the rest of its own SQL.
pub(crate) trait Dialect {
    /// The hidden columns that name a row of a table, comma-separated (to delete rows in
    /// batches).
    const ROW_ID: &'static str;

    /// The placeholder of the `n`th bound value (from 1) in SQL written out whole, for the
    /// queries a backend also runs outside sqlx (`QueryBuilder::push_bind` writes its own).
    fn placeholder(n: usize) -> String;

    /// The column type a declared type is stored as.
    fn column_type(ty: DataType) -> &'static str;

    /// What follows `ON <table>` in the unique index of a component table: its `time` and
    /// `key` columns (both quoted), such that a null key counts as one value (a re-sent
    /// null-key record is a duplicate).
    fn time_key_index(time: &str, key: &str) -> String;

    /// A statement run in a write transaction before its change-journal entries, if the
    /// backend needs one to number entries in commit order (PostgreSQL's writers run side by
    /// side; SQLite's one writer already does).
    const CHANGES_LOCK: Option<&'static str>;
}

/// The statements that create component `schema`'s table for backend `D`: the table, and its
/// unique index on time and key (which deduplicates re-sent records, a null key counting as
/// one value, and serves time ranges). Also what `mlc explain --ddl` prints.
pub(crate) fn create_table_sql<D: Dialect>(schema: &ComponentSchema) -> (String, String) {
    let table = quote(&table_name(&schema.name));
    let mut ddl = format!("CREATE TABLE IF NOT EXISTS {table} (");
    for (i, c) in sql::needed_columns(schema).iter().enumerate() {
        let not_null = if i == 1 { " NOT NULL" } else { "" };
        ddl.push_str(&format!(
            "{} {}{not_null}, ",
            quote(&c.name),
            D::column_type(c.ty)
        ));
    }
    ddl.push_str(&format!("{} TEXT)", quote(EXTRA_COLUMN)));
    let index = format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} {}",
        quote(&format!("{}_time_key", table_name(&schema.name))),
        D::time_key_index(&quote(&schema.time), &quote(&schema.key))
    );
    (ddl, index)
}

/// The SQL shared by both backends, for sqlx database `$db` and the backend's store type
/// `$store` (a struct of the invoking module with a `pool: sqlx::Pool<$db>` field and an
/// `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>>`). Generates the
/// module `shared` and, in it, `impl $store` with the methods both backends share.
macro_rules! shared_sql {
    ($db:ty, $store:ident) => {
        /// The SQL both backends share (see `shared_sql.rs`).
        pub(crate) mod shared {
            use futures::TryStreamExt;
            use mlc_engine::schema::ComponentSchema;
            use sqlx::{AssertSqlSafe, QueryBuilder, Row};

            use $crate::error::{Result, StoreError};
            use $crate::shared_sql::{Dialect, RESULT_COLUMNS, SLOT_RETENTION_US};
            use $crate::sql::{
                self, ColumnBuilder, EXTRA_COLUMN, ReadPlan, StoredColumn, quote, table_name,
            };
            use $crate::{BatchStream, QuarantinedRecord, ResultQuery, StoredResult};

            type Conn = <$db as sqlx::Database>::Connection;

            /// The last declaration of component `name` and its stored columns, if any.
            async fn load_declaration(
                conn: &mut Conn,
                name: &str,
            ) -> Result<Option<(ComponentSchema, Vec<StoredColumn>)>> {
                let mut q = QueryBuilder::<$db>::new(
                    "SELECT schema, columns FROM mlc_components WHERE name = ",
                );
                q.push_bind(name);
                match q.build().fetch_optional(conn).await? {
                    None => Ok(None),
                    Some(row) => {
                        let schema: String = row.try_get(0)?;
                        let columns: String = row.try_get(1)?;
                        sql::decode_schema(name, &schema, &columns).map(Some)
                    }
                }
            }

            /// Records `schema` and its stored columns inside the caller's write transaction.
            async fn save_declaration(
                tx: &mut Conn,
                schema: &ComponentSchema,
                stored: &[StoredColumn],
            ) -> Result<()> {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO mlc_components (name, table_name, schema, columns, updated_at_us) ",
                );
                let row = (
                    schema.name.clone(),
                    table_name(&schema.name),
                    sql::encode_json(schema)?,
                    sql::encode_json(&stored)?,
                    sql::now_us(),
                );
                q.push_values([row], |mut b, (n, t, s, c, at)| {
                    b.push_bind(n)
                        .push_bind(t)
                        .push_bind(s)
                        .push_bind(c)
                        .push_bind(at);
                });
                q.push(
                    " ON CONFLICT (name) DO UPDATE SET schema = excluded.schema, \
                     columns = excluded.columns, updated_at_us = excluded.updated_at_us",
                );
                q.build().execute(tx).await?;
                Ok(())
            }

            /// Creates the component's table (and its unique index, unless `unique_index` is
            /// false: the table exists and its partitions hold the index), or adds the columns
            /// of newly declared fields to it, and records the declaration, inside the caller's
            /// write transaction, which must keep two declarations of one component apart (each
            /// backend does so in its own way). Returns true when columns were added to an
            /// existing table.
            pub(crate) async fn declare_component(
                tx: &mut Conn,
                schema: &ComponentSchema,
                unique_index: bool,
            ) -> Result<bool> {
                let column_type = <$db as Dialect>::column_type;
                let table = quote(&table_name(&schema.name));
                let existing = load_declaration(&mut *tx, &schema.name).await?;
                let (mut stored, added) = match &existing {
                    None => {
                        let cols = sql::needed_columns(schema);
                        let (table, index) =
                            $crate::shared_sql::create_table_sql::<$db>(schema);
                        sqlx::raw_sql(AssertSqlSafe(table)).execute(&mut *tx).await?;
                        if unique_index {
                            sqlx::raw_sql(AssertSqlSafe(index)).execute(&mut *tx).await?;
                        }
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
                let evolved = existing.is_some() && !added.is_empty();
                stored.extend(added);
                save_declaration(tx, schema, &stored).await?;
                Ok(evolved)
            }

            /// Records in the change journal, inside the caller's write transaction, that
            /// rows of `component` with times in `ranges` changed (changes.rs).
            pub(crate) async fn record_changes(
                tx: &mut Conn,
                component: &str,
                ranges: &[(i64, i64)],
            ) -> Result<()> {
                if ranges.is_empty() {
                    return Ok(());
                }
                if let Some(lock) = <$db as Dialect>::CHANGES_LOCK {
                    sqlx::raw_sql(lock).execute(&mut *tx).await?;
                }
                let now = sql::now_us();
                for chunk in ranges.chunks(200) {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO mlc_changes (component, from_us, to_us, recorded_at_us) ",
                    );
                    q.push_values(chunk, |mut b, (lo, hi)| {
                        b.push_bind(component)
                            .push_bind(*lo)
                            .push_bind(*hi)
                            .push_bind(now);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                Ok(())
            }

            /// Stores quarantined records inside the caller's write transaction; one sent
            /// again (the same fingerprint) is not stored twice.
            pub(crate) async fn insert_quarantine(
                tx: &mut Conn,
                records: &[QuarantinedRecord],
            ) -> Result<()> {
                for chunk in records.chunks(1000) {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO mlc_quarantine (component, received_at_us, source, raw, reason, fingerprint) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(&r.component)
                            .push_bind(r.received_at_us)
                            .push_bind(&r.source)
                            .push_bind(&r.raw)
                            .push_bind(&r.reason)
                            .push_bind(r.fingerprint());
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                Ok(())
            }

            /// Deletes at most `batch_rows` rows of `schema`'s table with `time < before_us`;
            /// returns how many it deleted.
            pub(crate) async fn delete_before(
                conn: &mut Conn,
                schema: &ComponentSchema,
                before_us: i64,
                batch_rows: u64,
            ) -> Result<u64> {
                let table = quote(&table_name(&schema.name));
                let id = <$db as Dialect>::ROW_ID;
                // The outer time condition too: on a partitioned table a row id names a row
                // of one partition only, and another partition may hold a newer row with the
                // same id.
                let t = quote(&schema.time);
                let mut q = QueryBuilder::<$db>::new(format!("DELETE FROM {table} WHERE {t} < "));
                q.push_bind(before_us)
                    .push(format!(
                        " AND ({id}) IN (SELECT {id} FROM {table} WHERE {t} < "
                    ))
                    .push_bind(before_us)
                    .push(" LIMIT ")
                    .push_bind(i64::try_from(batch_rows).unwrap_or(i64::MAX))
                    .push(")");
                Ok(q.build().execute(conn).await?.rows_affected())
            }

            /// The query of a window read: `plan`'s columns of the rows with `start <= time <
            /// end`, in time order; the binds are `start` and `end`.
            pub(crate) fn window_sql(plan: &ReadPlan) -> String {
                format!(
                    "SELECT {} FROM {} WHERE {t} >= {} AND {t} < {} ORDER BY {t}",
                    plan.select_list(),
                    quote(&plan.table),
                    <$db as Dialect>::placeholder(1),
                    <$db as Dialect>::placeholder(2),
                    t = quote(&plan.time)
                )
            }

            /// Runs `sql` with `binds` on a task of its own and yields bounded batches through
            /// a channel of two: the reader stays at most two batches ahead of the consumer.
            pub(crate) fn stream_rows<B>(
                pool: sqlx::Pool<$db>,
                sql: String,
                binds: Vec<B>,
                plan: ReadPlan,
            ) -> BatchStream
            where
                B: for<'q> sqlx::Encode<'q, $db> + sqlx::Type<$db> + Send + 'static,
            {
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<arrow_array::RecordBatch>>(2);
                tokio::spawn(async move {
                    let produce = async {
                        let mut q = sqlx::query(AssertSqlSafe(sql));
                        for b in binds {
                            q = q.bind(b);
                        }
                        let mut rows = q.fetch(&pool);
                        let cap = $crate::READ_BATCH_ROWS;
                        let mut builders = plan.builders(cap);
                        let mut n = 0;
                        while let Some(row) = rows.try_next().await? {
                            for (i, b) in builders.iter_mut().enumerate() {
                                match b {
                                    ColumnBuilder::Int(b) => {
                                        b.append_option(row.try_get::<Option<i64>, _>(i)?)
                                    }
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
                $crate::sql::receiver_stream(rx)
            }

            impl super::$store {
                /// The last declaration of every component, by name.
                pub(crate) async fn components(&self) -> Result<Vec<ComponentSchema>> {
                    let rows = QueryBuilder::<$db>::new(
                        "SELECT name, schema, columns FROM mlc_components ORDER BY name",
                    )
                    .build()
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

                pub(crate) async fn get_state(&self, name: &str) -> Result<Option<String>> {
                    let mut q =
                        QueryBuilder::<$db>::new("SELECT value FROM mlc_state WHERE name = ");
                    q.push_bind(name);
                    let row = q.build().fetch_optional(&self.pool).await?;
                    row.map(|r| r.try_get::<String, _>(0))
                        .transpose()
                        .map_err(StoreError::from)
                }

                pub(crate) async fn put_state(&self, name: &str, value: &str) -> Result<()> {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO mlc_state (name, value, updated_at_us) ",
                    );
                    q.push_values([(name, value, sql::now_us())], |mut b, (n, v, t)| {
                        b.push_bind(n).push_bind(v).push_bind(t);
                    });
                    q.push(
                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                         updated_at_us = excluded.updated_at_us",
                    );
                    q.build().execute(&self.pool).await?;
                    Ok(())
                }

                /// Claims `(check, slot_us)` for `owner` in one write transaction; true when
                /// this call made the claim.
                pub(crate) async fn claim_slot(
                    &self,
                    check: &str,
                    slot_us: i64,
                    owner: &str,
                ) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO mlc_slots (check_name, slot_us, owner, claimed_at_us) ",
                    );
                    q.push_values(
                        [(check, slot_us, owner, sql::now_us())],
                        |mut b, (c, s, o, t)| {
                            b.push_bind(c).push_bind(s).push_bind(o).push_bind(t);
                        },
                    );
                    q.push(" ON CONFLICT DO NOTHING");
                    let claimed = q.build().execute(&mut *tx).await?.rows_affected() == 1;
                    let mut old =
                        QueryBuilder::<$db>::new("DELETE FROM mlc_slots WHERE check_name = ");
                    old.push_bind(check)
                        .push(" AND slot_us < ")
                        .push_bind(slot_us.saturating_sub(SLOT_RETENTION_US));
                    old.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(claimed)
                }

                /// The change journal's entries after `after` (changes.rs); `None`: only where
                /// it ends now.
                pub(crate) async fn changes_since(
                    &self,
                    after: Option<i64>,
                ) -> Result<$crate::ChangeLog> {
                    let row = QueryBuilder::<$db>::new(
                        "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM mlc_changes",
                    )
                    .build()
                    .fetch_one(&self.pool)
                    .await?;
                    let (first, last): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                    let Some(after) = after else {
                        return Ok($crate::ChangeLog {
                            last,
                            complete: false,
                            changes: Vec::new(),
                        });
                    };
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT seq, component, from_us, to_us, first_rowid, last_rowid \
                         FROM mlc_changes WHERE seq > ",
                    );
                    q.push_bind(after).push(" ORDER BY seq");
                    let rows = q.build().fetch_all(&self.pool).await?;
                    let mut log = $crate::ChangeLog {
                        last: last.max(after),
                        // Entries are trimmed from the oldest: if the first kept one is past
                        // the reader's next, some it has not seen may be gone.
                        // (Trimming keeps the newest entry, so an empty journal was never
                        // written.)
                        complete: if first == 0 { after == 0 } else { first <= after + 1 },
                        changes: Vec::with_capacity(rows.len()),
                    };
                    for r in rows {
                        let seq: i64 = r.try_get(0)?;
                        log.last = log.last.max(seq);
                        let first: Option<i64> = r.try_get(4)?;
                        let last: Option<i64> = r.try_get(5)?;
                        log.changes.push($crate::Change {
                            component: r.try_get(1)?,
                            from_us: r.try_get(2)?,
                            to_us: r.try_get(3)?,
                            rowids: first.zip(last),
                        });
                    }
                    Ok(log)
                }

                /// Deletes the journal entries recorded before `before_us`, except the newest
                /// (which tells readers where the journal ends).
                pub(crate) async fn trim_changes(&self, before_us: i64) -> Result<u64> {
                    let mut q =
                        QueryBuilder::<$db>::new("DELETE FROM mlc_changes WHERE recorded_at_us < ");
                    q.push_bind(before_us)
                        .push(" AND seq < (SELECT max(seq) FROM mlc_changes)");
                    Ok(q.build().execute(&self.pool).await?.rows_affected())
                }

                /// Stores check results in one write transaction.
                pub(crate) async fn insert_results(&self, results: &[StoredResult]) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    for r in results {
                        let mut q = QueryBuilder::<$db>::new("INSERT INTO mlc_results (");
                        q.push(RESULT_COLUMNS).push(") ");
                        q.push_values([r], |mut b, r| {
                            b.push_bind(&r.check)
                                .push_bind(r.at_us)
                                .push_bind(&r.status)
                                .push_bind(&r.rules_version)
                                .push_bind(&r.slice)
                                .push_bind(r.column.as_deref())
                                .push_bind(&r.json);
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                pub(crate) async fn query_results(
                    &self,
                    f: &ResultQuery,
                ) -> Result<Vec<StoredResult>> {
                    let mut q = QueryBuilder::<$db>::new("SELECT ");
                    q.push(RESULT_COLUMNS).push(" FROM mlc_results WHERE 1 = 1");
                    if let Some(c) = &f.check {
                        q.push(" AND check_name = ").push_bind(c.as_str());
                    }
                    if let Some(s) = f.since_us {
                        q.push(" AND at_us >= ").push_bind(s);
                    }
                    if let Some(u) = f.until_us {
                        q.push(" AND at_us < ").push_bind(u);
                    }
                    if let Some(s) = &f.status {
                        q.push(" AND status = ").push_bind(s.as_str());
                    }
                    // SQLite needs a LIMIT before an OFFSET; i64::MAX means none in both.
                    let limit = f
                        .limit
                        .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
                    q.push(" ORDER BY at_us DESC, id DESC LIMIT ")
                        .push_bind(limit)
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(f.offset).unwrap_or(i64::MAX));
                    let rows = q.build().fetch_all(&self.pool).await?;
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

                /// The latest time of `schema`'s rows before `before_us`, from the time index.
                pub(crate) async fn max_time(
                    &self,
                    schema: &ComponentSchema,
                    before_us: i64,
                ) -> Result<Option<i64>> {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "SELECT max({t}) FROM {} WHERE {t} < ",
                        quote(&table_name(&schema.name)),
                        t = quote(&schema.time)
                    ));
                    q.push_bind(before_us);
                    let row = q.build().fetch_one(&self.pool).await?;
                    Ok(row.try_get::<Option<i64>, _>(0)?)
                }

                pub(crate) async fn count(&self, schema: &ComponentSchema) -> Result<u64> {
                    let row = QueryBuilder::<$db>::new(format!(
                        "SELECT count(*) FROM {}",
                        quote(&table_name(&schema.name))
                    ))
                    .build()
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
                    let (k, t) = (quote(&schema.key), quote(&schema.time));
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "SELECT {k}, {t}, {} FROM {} WHERE {t} >= ",
                        quote(EXTRA_COLUMN),
                        quote(&table_name(&schema.name)),
                    ));
                    q.push_bind(start_us.unwrap_or(i64::MIN))
                        .push(format!(" AND {t} < "))
                        .push_bind(end_us)
                        .push(format!(" ORDER BY {t}, {k}"));
                    let rows = q.build().fetch_all(&self.pool).await?;
                    rows.iter()
                        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                        .collect()
                }

                pub(crate) async fn quarantined(
                    &self,
                    component: &str,
                    limit: u64,
                ) -> Result<Vec<QuarantinedRecord>> {
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT component, received_at_us, source, raw, reason FROM mlc_quarantine \
                         WHERE component = ",
                    );
                    q.push_bind(component)
                        .push(" ORDER BY id LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
                    let rows = q.build().fetch_all(&self.pool).await?;
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
            }
        }
    };
}

pub(crate) use shared_sql;
