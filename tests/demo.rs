//! End-to-end tests of `mlc demo`: the binary generates the example pipeline's history,
//! stores and evaluates it, and every injected fault is caught while the healthy results
//! pass; the same verdicts come out of `mlc check --format json` on the demo's store and
//! on stores filled from the exported CSV files through `mlc ingest`, SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{drop_schema, pg_url};
use mlc_demo::judge::judge;
use serde_json::Value as Json;

const AT: &str = "2026-03-01T00:00:00Z";
/// Smaller than the default 3,000 so that a debug build stays quick; the expected verdicts
/// hold at this size too (checked against the pandas/scipy reference in
/// examples/pipeline/reference.py for several seeds).
const REQUESTS_PER_DAY: &str = "1000";
/// The example pipeline's components, as `--export` writes them.
const COMPONENTS: [&str; 6] = [
    "inference",
    "feedback",
    "offline_scores",
    "training",
    "batch_jobs",
    "features",
];

fn mlc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the mlc binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn examples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/pipeline")
        .display()
        .to_string()
}

/// Every expectation holds in the results of `mlc check --format json`.
fn assert_verdicts(json_lines: &str) {
    let results: Vec<Json> = json_lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let wrong: Vec<String> = judge(&results)
        .iter()
        .filter(|v| !v.holds())
        .map(|v| {
            format!(
                "{} is {} (expected {}): {}",
                v.expectation,
                v.actual.as_deref().unwrap_or("missing"),
                v.expectation.status,
                v.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn demo_catches_every_fault_and_check_and_ingest_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A plain date is midnight UTC, the same instant as AT: every command takes the same
    // time forms (the demo once refused a date).
    let out = mlc(
        &[
            "demo",
            "--at",
            "2026-03-01",
            "--db",
            "demo.db",
            "--requests-per-day",
            REQUESTS_PER_DAY,
            "--export",
            "export",
        ],
        d,
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "mlc demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("10 of 10 faults caught; 23 of 23 healthy results passed"),
        "{stdout}"
    );
    assert!(!stdout.contains("MISSED"), "{stdout}");
    for next in ["mlc serve", "mlc explain", "mlc check"] {
        assert!(stdout.contains(next), "no hint about `{next}`:\n{stdout}");
    }

    // The same store, through `mlc check`: exit 1 (there are failures), the same verdicts.
    let checks = examples();
    let out = mlc(
        &[
            "check",
            &checks,
            "--db",
            "sqlite://demo.db",
            "--at",
            AT,
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_verdicts(&text(&out.stdout));

    // The exported CSV files through `mlc ingest` into a new store, embedded and on the
    // PostgreSQL server: the same verdicts again.
    struct DropSchema(String);
    impl Drop for DropSchema {
        fn drop(&mut self) {
            drop_schema(&self.0);
        }
    }
    let schema = DropSchema(format!("mlc_demo_{}", std::process::id()));
    let pg = format!("{}?schema={}", pg_url(), schema.0);
    for url in ["sqlite://ingested.db", pg.as_str()] {
        for component in COMPONENTS {
            let file = format!("export/{component}.csv");
            let out = mlc(
                &["ingest", "--checks", &checks, "--db", url, component, &file],
                d,
            );
            assert!(
                out.status.success(),
                "ingest {component} into {url}: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        let out = mlc(
            &[
                "check", &checks, "--db", url, "--at", AT, "--format", "json",
            ],
            d,
        );
        assert_eq!(out.status.code(), Some(1), "{url}: {}", text(&out.stderr));
        assert_verdicts(&text(&out.stdout));
    }
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["a", "b"] {
        let out = mlc(
            &[
                "demo",
                "--at",
                AT,
                "--db",
                &format!("{name}.db"),
                "--requests-per-day",
                "200",
                "--export",
                name,
            ],
            d,
        );
        assert!(out.status.code().is_some(), "{}", text(&out.stderr));
    }
    for component in COMPONENTS {
        let a = std::fs::read(d.join(format!("a/{component}.csv"))).unwrap();
        let b = std::fs::read(d.join(format!("b/{component}.csv"))).unwrap();
        assert!(a.len() > 100, "{component}.csv is nearly empty");
        assert!(
            a == b,
            "{component}.csv differs between two runs with the same seed"
        );
    }
}

#[test]
fn demo_never_replaces_a_file_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious.db");
    std::fs::write(&precious, b"SQLite format 3\0 someone's data").unwrap();
    let out = mlc(
        &[
            "demo",
            "--at",
            AT,
            "--db",
            "precious.db",
            "--requests-per-day",
            "200",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("refusing to replace"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&precious).unwrap(),
        b"SQLite format 3\0 someone's data"
    );
}
