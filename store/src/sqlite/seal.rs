//! Sealing: building the column segments (segments.rs) of full rowid ranges of a component's
//! table after ingest, and dropping them in the same transaction as anything that deletes rows
//! or adds columns (a segment is a copy of rows, never the truth).

use mlc_engine::schema::ComponentSchema;
use sqlx::sqlite::SqliteConnection;

use super::read::{Readers, segment_list};
use super::write::{Built, encode_segment};
use super::{SqliteStore, blocking};
use crate::error::Result;
use crate::sql::{ReadPlan, quote, table_name};

impl SqliteStore {
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
        let parts = mlc_engine::eval::cores().min(8);
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
pub(super) async fn drop_segments(
    tx: &mut SqliteConnection,
    tbl: &str,
    before_us: Option<i64>,
) -> Result<()> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::super::read::SEGMENT_BLOB_SQL;
    use super::super::{OwnedBatch, SqliteStore, split_segment_rows};
    use super::*;
    use crate::rows::{Column, Rows};
    use crate::segments;
    use mlc_engine::schema::{DataType, FieldSchema};

    /// A store in `dir` sealing segments of 10 rows, with [`schema`]'s component.
    async fn sealing_store(dir: &tempfile::TempDir) -> (SqliteStore, ComponentSchema) {
        let url = format!("sqlite://{}/s.db?segment_rows=10", dir.path().display());
        let store = SqliteStore::open(&url, true).await.unwrap();
        let schema = schema();
        store.ensure_component(&schema).await.unwrap();
        (store, schema)
    }

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
        let (store, schema) = sealing_store(&dir).await;
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

    /// A write's rows read through the segments that lie wholly inside it (`rows_by_rowid`,
    /// what a pane update reads) are the rows the table gives for its rowids, in the same
    /// order, for every time range; a segment shared with another write is never used.
    #[tokio::test]
    async fn a_writes_rows_through_its_segments_equal_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (store, schema) = sealing_store(&dir).await;
        // (key, time in seconds) per row.
        let make = |rows_of: &[(i64, i64)]| {
            let mut r = Rows::new(&schema, rows_of.len());
            for &(k, t) in rows_of {
                r.key.push(Some(format!("k{k}")));
                r.time.push(t * 1_000_000);
                if let Column::Float(v) = &mut r.fields[0] {
                    v.push(Some(k as f64));
                }
                r.extra.push(None);
            }
            r
        };
        // Write 1: rowids 1..=25. Write 2: rowids 26..=81, 40 new rows then 16 late ones
        // among write 1's times. Write 3: rowids 82..=97.
        let first: Vec<(i64, i64)> = (0..25).map(|i| (i, i)).collect();
        let mut second: Vec<(i64, i64)> = (100..140).map(|i| (i, 1000 + i)).collect();
        second.extend((200..216).map(|i| (i, 3 + (i * 7) % 20)));
        let third: Vec<(i64, i64)> = (300..316).map(|i| (i, 2000 + i)).collect();
        for w in [&first, &second, &third] {
            store.write_batch(&schema, &make(w), &[]).await.unwrap();
        }
        store.seal(&schema).await.unwrap();
        let names: Vec<&str> = schema.column_names().collect();
        let plan = ReadPlan::new(&schema, &names).unwrap();
        let readers = store.readers.clone().unwrap();
        let column = |b: &[arrow_array::RecordBatch]| -> Vec<f64> {
            b.iter()
                .flat_map(|b| {
                    let a = b.column(2).as_any();
                    let a = a.downcast_ref::<arrow_array::Float64Array>().unwrap();
                    a.values().to_vec()
                })
                .collect()
        };
        let s = 1_000_000;
        for (write, used) in [((1, 25), true), ((26, 81), true), ((82, 97), false)] {
            for range in [
                (i64::MIN, i64::MAX),
                (0, 10 * s),
                (10 * s, 1_120 * s),
                (1_120 * s, i64::MAX),
                (500 * s, 600 * s),
            ] {
                let mut want = Vec::new();
                super::super::read::read_rows(
                    &readers,
                    &plan,
                    write.0,
                    write.1 + 1,
                    range.0,
                    range.1,
                    &mut want,
                )
                .unwrap();
                let got = store.rows_of_write(&plan, write, range).await.unwrap();
                // Write 3 holds no whole segment (81..=90 is shared with write 2).
                assert_eq!(got.is_some(), used, "{write:?} {range:?}");
                if let Some(got) = got {
                    assert_eq!(column(&got), column(&want), "{write:?} {range:?}");
                }
            }
        }
        // Write 2's late rows alone: no new row, and only the segments that hold them.
        let late = store
            .rows_of_write(&plan, (26, 81), (0, 100 * s))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(column(&late).len(), 16);
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
