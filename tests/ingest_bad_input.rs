//! `mlc ingest` on bad input (binary garbage, ragged CSV, a huge single line, non-UTF-8):
//! a clear error or quarantine, never a panic, never a partially written batch. SQLite and
//! PostgreSQL alike.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use mlc_store::{ComponentSchema, DataType, FieldSchema, Store};

mod common;
use common::garbage;

const MLC: &str = env!("CARGO_BIN_EXE_mlc");

fn pg_url() -> String {
    std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `body(url)` on a fresh SQLite file and a fresh PostgreSQL schema with `inference`
/// declared.
fn each_backend(body: impl Fn(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let schema = format!(
        "mlc_bad_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    for (url, pg) in [
        (format!("sqlite://{}/store.db", dir.path().display()), false),
        (format!("{}?schema={schema}", pg_url()), true),
    ] {
        rt().block_on(async {
            let s = Store::open(&url).await.unwrap();
            let f = |n: &str, ty| FieldSchema { name: n.into(), ty };
            s.ensure_component(&ComponentSchema {
                name: "inference".into(),
                key: "request_id".into(),
                time: "ts".into(),
                fields: vec![f("age", DataType::Int), f("country", DataType::String)],
            })
            .await
            .unwrap();
            s.close().await;
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&url)));
        if pg {
            rt().block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                )))
                .execute(&mut c)
                .await
                .unwrap();
            });
        }
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}

fn counts(url: &str) -> (u64, usize) {
    rt().block_on(async {
        let s = Store::open(url).await.unwrap();
        let n = s.count("inference").await.unwrap();
        let q = s.quarantined("inference", 1_000_000).await.unwrap().len();
        s.close().await;
        (n, q)
    })
}

fn ingest(url: &str, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["ingest"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["inference", file.to_str().unwrap()]);
    Command::new(MLC)
        .args(&args)
        .env("MLC_DB", url)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_panic(o: &Output) {
    let t = text(o);
    assert!(!t.contains("panicked"), "{t}");
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 1 || c == 2),
        "{t}"
    );
}

#[test]
fn binary_garbage_is_an_error_or_quarantine_never_a_panic() {
    each_backend(|url| {
        let dir = tempfile::tempdir().unwrap();
        for (i, seed) in [1u64, 2, 3].into_iter().enumerate() {
            let bytes = garbage(2 << 20, seed);
            for ext in ["csv", "jsonl", "parquet"] {
                let p = dir.path().join(format!("g{i}.{ext}"));
                std::fs::write(&p, &bytes).unwrap();
                let out = ingest(url, &p, &[]);
                assert_no_panic(&out);
                assert!(
                    !out.status.success(),
                    "garbage accepted as {ext}: {}",
                    text(&out)
                );
            }
            // Garbage after a valid header: rows are quarantined or the input stops, nothing
            // half-stored.
            let mut with_header = b"request_id,ts,age,country\n".to_vec();
            with_header.extend_from_slice(&bytes);
            let p = dir.path().join(format!("h{i}.csv"));
            std::fs::write(&p, &with_header).unwrap();
            let out = ingest(url, &p, &[]);
            assert_no_panic(&out);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        }
        assert_eq!(counts(url).0, 0, "no garbage row has a valid time");
        let out = ingest(url, &dir.path().join("missing.csv"), &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).contains("cannot open"), "{}", text(&out));
    });
}

#[test]
fn ragged_rows_and_non_utf8_are_quarantined_and_the_rest_stored() {
    each_backend(|url| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ragged.csv");
        let mut data = b"request_id,ts,age,country\n".to_vec();
        data.extend_from_slice(b"a,2026-03-01T00:00:00Z,1,DE\n");
        data.extend_from_slice(b"b,2026-03-01T00:00:01Z,2\n");
        data.extend_from_slice(b"c,2026-03-01T00:00:02Z,3,DE,extra\n");
        data.extend_from_slice(b"d,2026-03-01T00:00:03Z,4,\xff\xfeDE\n");
        data.extend_from_slice(b"e,2026-03-01T00:00:04Z,5,\"quoted, with comma\"\n");
        std::fs::write(&p, &data).unwrap();
        let out = ingest(url, &p, &[]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let so = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            so.contains("2 accepted, 0 duplicates, 3 quarantined"),
            "{so}"
        );
        assert!(
            so.contains("line 3: the row has 3 fields but the header has 4"),
            "{so}"
        );
        assert!(
            so.contains("line 4: the row has 5 fields but the header has 4"),
            "{so}"
        );
        assert!(
            so.contains("line 5: field `country` is not valid UTF-8"),
            "{so}"
        );

        let p = dir.path().join("latin1.jsonl");
        std::fs::write(&p, b"{\"request_id\":\"f\",\"ts\":1772323200,\"country\":\"Espa\xf1a\"}\n{\"request_id\":\"g\",\"ts\":1772323200}\n").unwrap();
        let out = ingest(url, &p, &[]);
        assert_no_panic(&out);
        let so = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            so.contains("1 accepted, 0 duplicates, 1 quarantined"),
            "{so}"
        );
        assert!(so.contains("line 1: not valid UTF-8"), "{so}");
        assert_eq!(counts(url), (3, 4));
    });
}

#[test]
fn a_huge_single_line_is_refused_without_holding_it() {
    // 96 MiB without a newline, over the 64 MiB line limit: big enough to prove the limit,
    // small enough for a test.
    let dir = tempfile::tempdir().unwrap();
    let huge = 96usize << 20;
    let csv = dir.path().join("huge.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        w.write_all(
            b"request_id,ts,age,country\na,2026-03-01T00:00:00Z,1,DE\nb,2026-03-01T00:00:01Z,2,",
        )
        .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..(huge >> 20) {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\nc,2026-03-01T00:00:02Z,3,DE\n").unwrap();
    }
    let jsonl = dir.path().join("huge.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
        w.write_all(b"{\"request_id\":\"j1\",\"ts\":1772323200}\n{\"request_id\":\"j2\",\"ts\":1772323200,\"country\":\"").unwrap();
        let chunk = vec![b'y'; 1 << 20];
        for _ in 0..(huge >> 20) {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\"}\n{\"request_id\":\"j3\",\"ts\":1772323200}\n")
            .unwrap();
    }
    each_backend(|url| {
        let out = ingest(url, &csv, &[]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("a line is longer than 64 MiB"),
            "{}",
            text(&out)
        );
        assert!(
            text(&out).contains("1 accepted"),
            "the record before the line is stored: {}",
            text(&out)
        );

        let out = ingest(url, &jsonl, &[]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let so = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            so.contains("2 accepted, 0 duplicates, 1 quarantined"),
            "{so}"
        );
        assert!(so.contains("line 2: the line is"), "{so}");
        let q = rt().block_on(async {
            let s = Store::open(url).await.unwrap();
            let q = s.quarantined("inference", 10).await.unwrap();
            s.close().await;
            q
        });
        assert_eq!(q.len(), 1);
        assert!(
            q[0].raw.len() <= 64 << 10,
            "the quarantined raw record is cut"
        );
    });
}
