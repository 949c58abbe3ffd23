//! The SQL both backends run word for word: component declarations (`mlc_components`), the
//! service's state (`mlc_state`), evaluation slot claims (`mlc_slots`) and stored results
//! (`mlc_results`). Written once, as a macro
//! instantiated for each sqlx backend, with `QueryBuilder::push_bind` writing each backend's
//! placeholder (`?` or `$n`); the backends differ only in how they begin a write transaction
//! (SQLite takes its write lock up front), which the caller does.

/// Claims older than this before the slot being claimed are of no further use.
const SLOT_RETENTION_US: i64 = 7 * 86_400 * 1_000_000;

/// The columns of `mlc_results`, in the order results are written and decoded.
const RESULT_COLUMNS: &str = "check_name, at_us, status, rules_version, slice, column_name, json";

macro_rules! shared_sql {
    ($db:ty) => {
        use sqlx::{QueryBuilder, Row};

        use super::{RESULT_COLUMNS, SLOT_RETENTION_US};
        use mlc_engine::schema::ComponentSchema;

        use crate::error::{Result, StoreError};
        use crate::sql::{StoredColumn, table_name};
        use crate::{ResultQuery, StoredResult, sql};

        type Conn = <$db as sqlx::Database>::Connection;

        /// The last declaration of component `name` and its stored columns, if any.
        pub(crate) async fn load_declaration(
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
        pub(crate) async fn save_declaration(
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

        /// The last declaration of every component, by name.
        pub(crate) async fn components(conn: &mut Conn) -> Result<Vec<ComponentSchema>> {
            let rows = QueryBuilder::<$db>::new(
                "SELECT name, schema, columns FROM mlc_components ORDER BY name",
            )
            .build()
            .fetch_all(conn)
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

        pub(crate) async fn get_state(conn: &mut Conn, name: &str) -> Result<Option<String>> {
            let mut q = QueryBuilder::<$db>::new("SELECT value FROM mlc_state WHERE name = ");
            q.push_bind(name);
            let row = q.build().fetch_optional(conn).await?;
            row.map(|r| r.try_get::<String, _>(0))
                .transpose()
                .map_err(StoreError::from)
        }

        pub(crate) async fn put_state(conn: &mut Conn, name: &str, value: &str) -> Result<()> {
            let mut q =
                QueryBuilder::<$db>::new("INSERT INTO mlc_state (name, value, updated_at_us) ");
            q.push_values([(name, value, sql::now_us())], |mut b, (n, v, t)| {
                b.push_bind(n).push_bind(v).push_bind(t);
            });
            q.push(
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                 updated_at_us = excluded.updated_at_us",
            );
            q.build().execute(conn).await?;
            Ok(())
        }

        /// Claims `(check, slot_us)` for `owner` inside the caller's write transaction; true
        /// when this call made the claim.
        pub(crate) async fn claim_slot(
            tx: &mut Conn,
            check: &str,
            slot_us: i64,
            owner: &str,
        ) -> Result<bool> {
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
            let mut old = QueryBuilder::<$db>::new("DELETE FROM mlc_slots WHERE check_name = ");
            old.push_bind(check)
                .push(" AND slot_us < ")
                .push_bind(slot_us.saturating_sub(SLOT_RETENTION_US));
            old.build().execute(&mut *tx).await?;
            Ok(claimed)
        }

        /// Inserts `results` inside the caller's write transaction.
        pub(crate) async fn insert_results(tx: &mut Conn, results: &[StoredResult]) -> Result<()> {
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
            Ok(())
        }

        pub(crate) async fn query_results(
            conn: &mut Conn,
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
            let rows = q.build().fetch_all(conn).await?;
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
    };
}

/// For the SQLite backend.
pub(crate) mod sqlite {
    shared_sql!(sqlx::Sqlite);
}

/// For the PostgreSQL backend.
pub(crate) mod postgres {
    shared_sql!(sqlx::Postgres);
}
