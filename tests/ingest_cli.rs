//! End-to-end tests of `mlc ingest` and `mlc prune` on the real binary, against SQLite and
//! PostgreSQL: the kill -9 crash test, bad input, counts and exit codes.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::{drop_schema, pg_url};
use mlc_store::{ComponentSchema, DataType, FieldSchema, Store};

const MLC: &str = env!("CARGO_BIN_EXE_mlc");

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh database per backend: a SQLite file in `dir`, or a PostgreSQL schema of its own.
fn db_urls(dir: &Path, tag: &str) -> Vec<(String, Option<String>)> {
    let schema = format!(
        "mlc_cli_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    vec![
        (format!("sqlite://{}/store.db", dir.display()), None),
        (format!("{}?schema={schema}", pg_url()), Some(schema)),
    ]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn schema() -> ComponentSchema {
    let f = |n: &str, ty| FieldSchema { name: n.into(), ty };
    ComponentSchema {
        name: "inference".into(),
        key: "request_id".into(),
        time: "ts".into(),
        fields: vec![
            f("age", DataType::Int),
            f("score", DataType::Float),
            f("country", DataType::String),
        ],
    }
}

fn declare(url: &str) {
    rt().block_on(async {
        let s = Store::open(url).await.unwrap();
        s.ensure_component(&schema()).await.unwrap();
        s.close().await;
    });
}

fn count(url: &str) -> u64 {
    rt().block_on(async {
        let s = Store::open(url).await.unwrap();
        let n = s.count("inference").await.unwrap();
        s.close().await;
        n
    })
}

fn mlc(args: &[&str], url: &str) -> Output {
    Command::new(MLC)
        .args(args)
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

fn big_csv(path: &Path, rows: usize) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "request_id,ts,age,score,country").unwrap();
    for i in 0..rows {
        writeln!(
            w,
            "r{i:08},{},{},{}.25,DE",
            1_772_323_200 + i as i64,
            i % 90,
            i % 7
        )
        .unwrap();
    }
}

#[test]
fn kill_9_mid_file_leaves_whole_batches_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 400_000;
    let batch = 5_000u64;
    let file = dir.path().join("big.csv");
    big_csv(&file, rows);
    let file = file.to_str().unwrap();
    for (url, schema) in db_urls(dir.path(), "crash") {
        declare(&url);
        let mut child = Command::new(MLC)
            .args([
                "ingest",
                "--batch-rows",
                &batch.to_string(),
                "inference",
                file,
            ])
            .env("MLC_DB", &url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once some batches are in, well before the end.
        let start = Instant::now();
        loop {
            let n = count(&url);
            if n >= 3 * batch {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "{url}: ingest ended before it could be killed"
            );
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{url}: no batch stored in 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // A COMMIT the client sent just before it died still completes on the PostgreSQL
        // server after the process is gone: wait until the count holds still for half a
        // second, or the rerun would find more duplicates than were counted.
        let mut stored = count(&url);
        let settle = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let again = count(&url);
            if again == stored || settle.elapsed() > Duration::from_secs(30) {
                break;
            }
            stored = again;
        }
        assert!(
            stored < rows as u64,
            "{url}: killed too late to test anything ({stored})"
        );
        assert_eq!(
            stored % batch,
            0,
            "{url}: a partial batch is stored ({stored} rows)"
        );

        let out = mlc(
            &[
                "ingest",
                "--batch-rows",
                &batch.to_string(),
                "inference",
                file,
            ],
            &url,
        );
        assert!(out.status.success(), "{url}: {}", text(&out));
        let expect = format!(
            "{} accepted, {stored} duplicates, 0 quarantined",
            rows as u64 - stored
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&expect),
            "{url}: {}",
            text(&out)
        );
        assert_eq!(count(&url), rows as u64, "{url}");
        if let Some(s) = schema {
            drop_schema(&s);
        }
    }
}

#[test]
fn counts_exit_codes_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "request_id,ts,age\na,2026-03-01T00:00:00Z,1\nb,2026-03-01T00:00:01Z,2\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"request_id\":\"c\",\"ts\":\"2026-03-01T00:00:02Z\"}\n{\"request_id\":\"d\"}\n",
    )
    .unwrap();
    let (g, b) = (good.to_str().unwrap(), bad.to_str().unwrap());
    for (url, schema) in db_urls(dir.path(), "counts") {
        // A store without the component (without `--checks`, ingest creates no store).
        rt().block_on(async { Store::open(&url).await.unwrap().close().await });
        let out = mlc(&["ingest", "inference", g], &url);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("has no component `inference`"),
            "{}",
            text(&out)
        );
        declare(&url);
        let out = mlc(&["ingest", "inference", g, g], &url);
        assert!(out.status.success(), "{}", text(&out));
        let so = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            so.contains("2 accepted, 0 duplicates, 0 quarantined"),
            "{so}"
        );
        assert!(
            so.contains("0 accepted, 2 duplicates, 0 quarantined"),
            "{so}"
        );
        assert!(
            so.contains("total: 2 accepted, 2 duplicates, 0 quarantined"),
            "{so}"
        );
        let out = mlc(&["ingest", "inference", b], &url);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let so = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            so.contains("1 accepted, 0 duplicates, 1 quarantined"),
            "{so}"
        );
        assert!(so.contains("line 2: missing time `ts`"), "{so}");

        let out = Command::new(MLC)
            .args(["ingest", "--format", "csv", "inference", "-"])
            .env("MLC_DB", &url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(b"request_id,ts\ne,1772323300\n")?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("-: 1 accepted"),
            "{}",
            text(&out)
        );
        let out = mlc(&["ingest", "inference", "-"], &url);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out).contains("needs `--format"), "{}", text(&out));
        let out = mlc(&["ingest", "inference", "data.txt"], &url);
        assert!(
            text(&out).contains("pass `--format csv|jsonl|parquet`"),
            "{}",
            text(&out)
        );

        assert_eq!(count(&url), 4);
        // Records of March 2026 are older than 1 day by now (the test clock is 2026-11 or later).
        let out = mlc(
            &["prune", "--older-than", "1d", "--component", "inference"],
            &url,
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("deleted 4 records"),
            "{}",
            text(&out)
        );
        let out = mlc(&["prune", "--older-than", "90x"], &url);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("the unit must be one of s, m, h, d, w"),
            "{}",
            text(&out)
        );
        if let Some(s) = schema {
            drop_schema(&s);
        }
    }
}

#[test]
fn an_open_quote_stops_the_file_and_the_fixed_file_stores_the_rest() {
    // The file of issue 15: k1's quote never closes. It used to store k0 and k1 with k2 and k3
    // inside k1's `country`, and exit 0.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.mlc");
    std::fs::write(
        &rules,
        "component events {\n  key request_id\n  time ts\n  fields { score: float, n: int, flag: bool, country: string }\n}\n",
    )
    .unwrap();
    let head = "request_id,ts,score,n,flag,country\nk0,1772323200,0.5,0,true,DE\n";
    let tail = "k2,1772323202,0.5,2,true,DE\nk3,1772323203,0.5,3,true,DE\n";
    let broken = dir.path().join("q.csv");
    std::fs::write(
        &broken,
        format!("{head}k1,1772323201,0.5,1,true,\"DE\n{tail}"),
    )
    .unwrap();
    let fixed = dir.path().join("fixed.csv");
    std::fs::write(
        &fixed,
        format!("{head}k1,1772323201,0.5,1,true,\"DE\"\n{tail}"),
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    for (url, schema) in db_urls(dir.path(), "quote") {
        let ingest = |file: &Path| {
            mlc(
                &["ingest", "--checks", r, "events", file.to_str().unwrap()],
                &url,
            )
        };
        let out = ingest(&broken);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains("q.csv: 1 accepted, 0 duplicates, 0 quarantined"),
            "{}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.contains("stopped at line 3: a quoted field opens on this line")
                && err.contains("the records before line 3 were stored and none from it on"),
            "{}",
            text(&out)
        );
        let out = ingest(&fixed);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains("fixed.csv: 3 accepted, 1 duplicates, 0 quarantined"),
            "{}",
            text(&out)
        );
        let n = rt().block_on(async {
            let s = Store::open(&url).await.unwrap();
            let n = s.count("events").await.unwrap();
            s.close().await;
            n
        });
        assert_eq!(n, 4, "{url}");
        if let Some(s) = schema {
            drop_schema(&s);
        }
    }
}
