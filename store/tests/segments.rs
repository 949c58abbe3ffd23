//! Column segments (SQLite file stores): every read through segments gives exactly what the
//! row table gives, whatever happened to the table since the segments were built.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

mod common;

use arrow_array::{Array, RecordBatch};
use common::*;
use mlc_store::ingest::{Format, IngestOptions, Input, ingest};
use mlc_store::{DataType, Store};

/// A small deterministic generator (the test must not depend on a crate's RNG).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// `n` records from `first`, times unique (minute `i` plus a shuffle within blocks of 50, so
/// storage order is not time order), nulls in every column, text with tabs, quotes and
/// non-ASCII, and every tenth record sent twice.
fn csv(first: i64, n: i64, rng: &mut Lcg, with_score: bool) -> String {
    let mut out = String::from("request_id,ts,age,income,country,approved,seen");
    out.push_str(if with_score { ",score\n" } else { "\n" });
    for i in first..first + n {
        let minute = (i / 50) * 50 + (49 - i % 50);
        let ts = 1_772_323_200 + minute * 60;
        let r = rng.next();
        let cell = |present: bool, v: String| if present { v } else { String::new() };
        let line = format!(
            "r{i},{ts},{},{},{},{},{}{}\n",
            cell(!r.is_multiple_of(7), format!("{}", (r % 90) as i64 - 5)),
            cell(
                !r.is_multiple_of(5),
                format!("{}", (r % 100_000) as f64 / 7.0)
            ),
            cell(
                !r.is_multiple_of(11),
                ["DE", "\"a\tb\"", "Zürich ✓", "\"q\"\"uote\"", ""][(r % 5) as usize].to_string()
            ),
            cell(!r.is_multiple_of(3), r.is_multiple_of(2).to_string()),
            cell(!r.is_multiple_of(13), format!("{}", ts - (r % 1000) as i64)),
            if with_score {
                format!(",{}", cell(!r.is_multiple_of(4), format!("{}", r % 17)))
            } else {
                String::new()
            },
        );
        out.push_str(&line);
        if i % 10 == 0 {
            out.push_str(&line);
        }
    }
    out
}

async fn load(store: &Store, schema: &mlc_store::ComponentSchema, text: String) {
    let opts = IngestOptions {
        batch_rows: 97,
        ..IngestOptions::default()
    };
    let r = ingest(
        store,
        schema,
        Input::Bytes(text.into_bytes().into()),
        Format::Csv,
        &opts,
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.quarantined, 0, "{:?}", r.reasons);
}

fn concat(batches: &[RecordBatch], schema: &arrow_schema::SchemaRef) -> RecordBatch {
    arrow_select::concat::concat_batches(schema, batches).unwrap()
}

const MIN: i64 = 60_000_000;

/// Every window and projection read through segments equals the same read from the rows.
async fn assert_same(rows: &Store, segs: &Store, columns_sets: &[&[&str]], what: &str) {
    let windows = [
        (None, T0 + 100_000 * MIN),
        (Some(T0), T0 + 100_000 * MIN),
        (Some(T0 + 333 * MIN), T0 + 777 * MIN),
        (Some(T0 + 64 * MIN), T0 + 128 * MIN),
        (Some(T0 + 1190 * MIN), T0 + 1300 * MIN),
        (Some(T0 + 5 * MIN), T0 + 6 * MIN),
        (Some(T0 + 2_000 * MIN), T0 + 3_000 * MIN),
        (Some(T0 - 10 * MIN), T0),
    ];
    for columns in columns_sets {
        for (start, end) in windows {
            let a = rows
                .scan_batches("inference", columns, start, end)
                .await
                .unwrap();
            let b = segs
                .scan_batches("inference", columns, start, end)
                .await
                .unwrap();
            let n: usize = a.iter().map(RecordBatch::num_rows).sum();
            if n == 0 {
                assert_eq!(b.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
                continue;
            }
            let schema = a[0].schema();
            let whole = concat(&a, &schema);
            assert_eq!(
                whole,
                concat(&b, &schema),
                "{what}: columns {columns:?}, window {start:?}..{end}"
            );
            // Read with every other column (the time aside) only for its nulls: those keep
            // their type and exactly their nulls; the others are unchanged.
            let nulls: Vec<&str> = columns
                .iter()
                .enumerate()
                .filter(|(i, c)| i % 2 == 1 && **c != "ts")
                .map(|(_, c)| *c)
                .collect();
            for store in [rows, segs] {
                let c = store
                    .scan_batches_nulls_only("inference", columns, &nulls, start, end)
                    .await
                    .unwrap();
                let c = concat(&c, &schema);
                assert_eq!(c.num_rows(), whole.num_rows());
                for (i, name) in columns.iter().enumerate() {
                    let (x, y) = (whole.column(i), c.column(i));
                    let at = format!("{what}: {name} of {columns:?}, window {start:?}..{end}");
                    if nulls.contains(name) {
                        assert_eq!(x.data_type(), y.data_type(), "{at}");
                        assert_eq!(x.logical_nulls(), y.logical_nulls(), "{at}");
                    } else {
                        assert_eq!(x, y, "{at}");
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn reads_through_segments_equal_reads_of_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    // The same file, read through segments of 64 rows and with segments off.
    let segs = Store::open(&format!("sqlite://{}?segment_rows=64", path.display()))
        .await
        .unwrap();
    let rows = Store::open(&format!("sqlite://{}?segment_rows=0", path.display()))
        .await
        .unwrap();
    let mut schema = inference();
    let mut rng = Lcg(7);
    let all: &[&[&str]] = &[
        &[
            "request_id",
            "ts",
            "age",
            "income",
            "country",
            "approved",
            "seen",
        ],
        &["ts", "income"],
        &["country", "ts", "approved"],
    ];

    load(&segs, &schema, csv(0, 1000, &mut rng, false)).await;
    assert_eq!(segs.seal("inference").await.unwrap(), 0, "ingest sealed");
    assert_same(&rows, &segs, all, "after ingest").await;

    // Re-sent records change nothing; new ones fill the tail.
    load(&segs, &schema, csv(900, 250, &mut rng, false)).await;
    assert_eq!(rows.count("inference").await.unwrap(), 1150);
    assert_same(&rows, &segs, all, "after more rows").await;

    // Prune drops the segments that held pruned rows; reads stay exact before and after
    // sealing again.
    let cut = T0 + 300 * MIN;
    assert!(segs.prune(Some("inference"), cut, 37).await.unwrap() > 0);
    assert_same(&rows, &segs, all, "after prune").await;
    assert!(segs.seal("inference").await.unwrap() > 0);
    assert_same(&rows, &segs, all, "after prune and seal").await;

    // A declaration that gains a field: the old rows hold null there.
    schema.fields.push(field("score", DataType::Int));
    segs.ensure_component(&schema).await.unwrap();
    let with_score: &[&[&str]] = &[
        &[
            "request_id",
            "ts",
            "age",
            "income",
            "country",
            "approved",
            "seen",
            "score",
        ],
        &["ts", "score"],
    ];
    assert_same(&rows, &segs, with_score, "after a new field").await;
    load(&segs, &schema, csv(1150, 300, &mut rng, true)).await;
    assert_same(&rows, &segs, with_score, "after rows with the new field").await;
    let b = segs
        .scan_batches("inference", &["ts", "score"], None, T0 + 100_000 * MIN)
        .await
        .unwrap();
    let scores = ints(&b, 1);
    assert!(scores.iter().any(Option::is_some) && scores.iter().any(Option::is_none));

    // A damaged segment is read from the rows instead.
    {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let n = sqlx::query("UPDATE mlc_segment_columns SET data = x'0102' WHERE name = 'income'")
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
        assert!(n > 0);
        sqlx::query("DELETE FROM mlc_segment_columns WHERE name = 'country'")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    assert_same(&rows, &segs, with_score, "after damage").await;
}

#[tokio::test]
async fn small_tables_and_postgres_build_no_segments() {
    each_backend(|store, dir| async move {
        let schema = inference();
        let p = write(&dir, "a.csv", csv(0, 300, &mut Lcg(3), false));
        ingest_file(&store, &schema, &p).await;
        assert_eq!(store.seal("inference").await.unwrap(), 0);
        let b = store
            .scan_batches("inference", &["ts", "age"], None, T0 + 100_000 * MIN)
            .await
            .unwrap();
        assert_eq!(rows(&b), 300);
    })
    .await;
}
