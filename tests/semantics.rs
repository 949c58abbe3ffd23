//! Evaluation semantics as data: every `.mlc` file under `tests/cases/semantics/` holds
//! components, checks and `test` blocks, run through `mlc test` itself.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::Command;

const MLC: &str = env!("CARGO_BIN_EXE_mlc");

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/semantics");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mlc"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_semantics_case_holds() {
    let files = case_files();
    assert!(
        files.len() >= 5,
        "expected the semantics cases, found {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        // One file per run: each declares its own components.
        let out = Command::new(MLC).arg("test").arg(file).output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}:\n{}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_failing_assertion_prints_the_actual_result() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.mlc");
    std::fs::write(
        &file,
        r#"
component events {
  key id
  time ts
  fields { value: float }
}
check positive {
  on events
  expect min(value) > 0
}
test wrong_expectation {
  at "2026-03-01T00:00:00Z"
  rows events [ { id: "a", ts: "2026-02-28T00:00:00Z", value: 2.5 } ]
  assert positive fails
}
"#,
    )
    .unwrap();
    let out = Command::new(MLC).arg("test").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED wrong_expectation"), "{stdout}");
    assert!(stdout.contains("assert positive fails"), "{stdout}");
    assert!(stdout.contains("got pass"), "{stdout}");
    assert!(
        stdout.contains("min(value) = 2.5, expected > 0 over 1 row"),
        "{stdout}"
    );
    assert!(stdout.contains("\"check\":\"positive\""), "{stdout}");
}

#[test]
fn fixtures_that_do_not_fit_their_component_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad_fixture.mlc");
    std::fs::write(&file, "component events {\n  key id\n  time ts\n  fields { value: float }\n}\ncheck c {\n  on events\n  expect count() > 0\n}\ntest t {\n  at \"2026-03-01T00:00:00Z\"\n  rows events from \"missing.csv\"\n  assert c passes\n}\n").unwrap();
    let out = Command::new(MLC).arg("test").arg(&file).output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("missing.csv"), "{all}");
}

#[test]
fn mlc_test_db_runs_the_cases_on_postgres_and_names_a_wrong_url() {
    let base = std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/semantics/joins.mlc");
    let out = Command::new(MLC)
        .args(["test", "--db", &base])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok"), "{stdout}");
    // A URL that cannot hold a schema per test is refused before anything runs, with the fix.
    for (url, says) in [
        ("sqlite://x.db", "give a postgres:// URL"),
        (&*format!("{base}?schema=mine"), "leave out `schema=`"),
    ] {
        let out = Command::new(MLC)
            .args(["test", "--db", url])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
