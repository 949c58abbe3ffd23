//! End-to-end tests of `mlc check` and `mlc backfill` on the real binary: exit codes, the
//! result JSON's exact shape, and the table and JUnit formats.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MLC: &str = env!("CARGO_BIN_EXE_mlc");

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/check_cli")
}

fn mlc(args: &[&str]) -> Output {
    mlc_with(args, &[])
}

/// `mlc` with these environment variables set.
fn mlc_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(MLC)
        .args(args)
        .env_remove("MLC_DB")
        .env_remove("MLC_DISTINCT_VALUES_BYTES")
        .env_remove("MLC_SQLITE_MMAP_BYTES")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A store with the fixtures ingested through `mlc ingest`.
fn store(dir: &Path) -> String {
    let db = format!("sqlite://{}/store.db", dir.display());
    let checks = cases().join("checks.mlc");
    for (component, file) in [("inference", "inference.csv"), ("feedback", "feedback.csv")] {
        let out = mlc(&[
            "ingest",
            "--checks",
            checks.to_str().unwrap(),
            "--db",
            &db,
            component,
            cases().join(file).to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "ingest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    db
}

fn check(db: &str, extra: &[&str]) -> Output {
    let checks = cases().join("checks.mlc");
    let mut args = vec![
        "check",
        checks.to_str().unwrap(),
        "--db",
        db,
        "--at",
        "2026-03-01T00:00:00Z",
    ];
    args.extend_from_slice(extra);
    mlc(&args)
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_results_have_the_spec_shape_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let out = check(&db, &["--format", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // recall in DE is 0.5 with severity critical: exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout.lines().next().unwrap();
    let keys = [
        "check",
        "file",
        "status",
        "severity",
        "at",
        "window",
        "slice",
        "column",
        "rows",
        "baseline_rows",
        "coverage",
        "expects",
        "message",
        "rules_version",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            first
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("no {k} in {first}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "keys out of order: {first}"
    );

    let results = lines(&out);
    let by = |check: &str, country: Option<&str>| {
        results
            .iter()
            .find(|r| r["check"] == check && country.is_none_or(|c| r["slice"]["country"] == c))
            .unwrap_or_else(|| panic!("no result for {check} {country:?} in {stdout}"))
    };
    let ages = by("ages_valid", None);
    assert_eq!(ages["status"], "pass");
    assert_eq!(ages["slice"], serde_json::json!({}));
    assert_eq!(ages["rows"], 4);
    assert_eq!(ages["coverage"], serde_json::Value::Null);
    assert_eq!(ages["window"]["start"], "2026-02-28T00:00:00Z");
    assert_eq!(ages["window"]["end"], "2026-03-01T00:00:00Z");
    assert_eq!(ages["at"], "2026-03-01T00:00:00Z");
    assert_eq!(ages["expects"][0]["values"]["all(age >= 0)"], true);

    let de = by("recall_slo", Some("DE"));
    assert_eq!(de["status"], "fail");
    assert_eq!(de["severity"], "critical");
    assert_eq!(de["rows"], 2);
    assert_eq!(de["coverage"], 1.0);
    assert_eq!(de["expects"][0]["expr"], "recall(prediction, label) >= 0.9");
    assert_eq!(de["expects"][0]["values"]["recall(prediction, label)"], 0.5);
    assert_eq!(
        de["message"],
        "recall(prediction, label) = 0.5, expected >= 0.9 over 2 rows, 100% labelled"
    );
    // In the US one request has no label yet: the inner join drops it, coverage says so.
    let us = by("recall_slo", Some("US"));
    assert_eq!(us["status"], "pass");
    assert_eq!(us["rows"], 1);
    assert_eq!(us["coverage"], 0.5);
    assert!(de["rules_version"].as_str().unwrap().contains("sha256:"));

    let volume = by("volume_info", None);
    assert_eq!(volume["status"], "fail");
    assert_eq!(volume["severity"], "info");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    // A failing check of severity info alone does not fail the command.
    assert_eq!(
        check(&db, &["--check", "volume_info"]).status.code(),
        Some(0)
    );
    assert_eq!(
        check(&db, &["--check", "ages_valid"]).status.code(),
        Some(0)
    );
    assert_eq!(
        check(&db, &["--check", "recall_slo"]).status.code(),
        Some(1)
    );
    // Usage errors: an unknown check, a bad time.
    let unknown = check(&db, &["--check", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("ages_valid"));
    let bad_time = check(&db, &["--at", "yesterday"]);
    assert_eq!(bad_time.status.code(), Some(2));
    // Invalid rules.
    let bad = dir.path().join("bad.mlc");
    std::fs::write(&bad, "check broken { on nowhere expect count() > 0 }\n").unwrap();
    let out = mlc(&["check", bad.to_str().unwrap(), "--db", &db]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn table_and_junit_formats() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let table = String::from_utf8_lossy(&check(&db, &[]).stdout).to_string();
    assert!(table.contains("FAIL"), "{table}");
    assert!(table.contains("country=DE"), "{table}");
    assert!(
        table.contains("4 results: 2 pass, 2 fail, 0 insufficient, 0 error"),
        "{table}"
    );
    let junit = String::from_utf8_lossy(&check(&db, &["--format", "junit"]).stdout).to_string();
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert!(
        junit.contains("<testsuite name=\"recall_slo\" tests=\"2\" failures=\"1\""),
        "{junit}"
    );
    assert!(
        junit.contains("<failure message=\"recall(prediction, label) = 0.5"),
        "{junit}"
    );
}

#[test]
fn backfill_stores_one_evaluation_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let checks = cases().join("checks.mlc");
    let out = mlc(&[
        "backfill",
        checks.to_str().unwrap(),
        "--db",
        &db,
        "--from",
        "2026-02-28T00:00:00Z",
        "--to",
        "2026-03-02T00:00:00Z",
        "--step",
        "1d",
        "--check",
        "ages_valid",
        "--format",
        "json",
    ]);
    let results = lines(&out);
    let statuses: Vec<_> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    // Nothing before the data, the data on 2026-03-01, nothing again a day later.
    assert_eq!(statuses, vec!["insufficient", "pass", "insufficient"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stored 3 results"));
}

/// `mlc backfill` reads each component once for all its steps and joins labels from a keyed
/// history; its results must be exactly those of `mlc check` run at each step on its own
/// (which reads through the store's latest-row-per-key query). The data has labels that
/// arrive late (some after a step), labels corrected later (two rows for one key), null keys,
/// and rows ingested out of time order.
#[test]
fn backfill_agrees_with_check_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let checks = dir.path().join("checks.mlc");
    std::fs::write(
        &checks,
        r#"
component inference {
  key request_id
  time ts
  fields {
    country: string
    score: float
    prediction: int
  }
}
component feedback {
  key request_id
  time ts
  fields {
    label: int
    reviewer: string
  }
}
component reviews {
  key reviewer
  time ts
  fields {
    trusted: bool
  }
}
check recall_daily {
  on inference join feedback using request_id
  window 1d
  group by country
  expect recall(prediction, label) >= 0.9
  expect count() >= 1
}
check coverage_daily {
  on inference left join feedback using request_id
  window 2d
  expect coverage() >= 0.5
  expect accuracy(prediction, label) >= 0.5
}
check trusted_labels {
  on inference join feedback using request_id join reviews using reviewer
  window 1d
  expect rate(trusted) >= 0.5
  expect count() >= 1
}
check score_drift {
  on inference
  window 1d
  baseline offset 1d
  expect psi(score) < 0.2
  expect mean(score) > 0.1
}
check score_nulls_shared {
  on inference
  window 1d
  expect count(score is null) == 0
  expect count(country is not null) >= 1
}
check score_nulls_alone {
  on inference
  window 3d
  where score is not null
  expect count(score is null or prediction is null) == 0
  expect count(country is null) < count()
}
"#,
    )
    .unwrap();
    // Deterministic rows over 6 days, written in a shuffled order.
    let mut inference = Vec::new();
    let mut feedback = Vec::new();
    let mut x: u64 = 7;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as i64
    };
    for i in 0..600i64 {
        let hour = i * 6 * 24 / 600;
        let ts = format!(
            "2026-03-0{}T{:02}:{:02}:00Z",
            1 + hour / 24,
            hour % 24,
            i % 60
        );
        let id = if i % 97 == 0 {
            String::new()
        } else {
            format!("r{i}")
        };
        let country = ["DE", "US", "FR"][(next() % 3) as usize];
        let pred = next() % 2;
        // Some scores null: `score_nulls_*` read the column only for its nulls.
        let score = if i % 13 == 5 {
            String::new()
        } else {
            format!("{:.3}", (next() % 1000) as f64 / 1000.0)
        };
        inference.push(format!("{id},{ts},{country},{score},{pred}"));
        if next() % 5 != 0 {
            // Labels 0 to 71 hours later: some arrive after the steps that read their row.
            let late = hour + next() % 72;
            let lts = if i % 11 == 0 {
                // Exactly on a step: a label at T is not yet known at T.
                let on = late - late % 12;
                format!("2026-03-{:02}T{:02}:00:00Z", 1 + on / 24, on % 24)
            } else {
                format!(
                    "2026-03-{:02}T{:02}:{:02}:30Z",
                    1 + late / 24,
                    late % 24,
                    i % 60
                )
            };
            feedback.push(format!("{id},{lts},{},u{}", next() % 2, i % 4));
            if next() % 7 == 0 {
                // A corrected label, a day later.
                let c = late + 24;
                let cts = format!("2026-03-{:02}T{:02}:{:02}:30Z", 1 + c / 24, c % 24, i % 60);
                feedback.push(format!("{id},{cts},{},u{}", next() % 2, i % 3));
            }
        }
    }
    let shuffle = |rows: &mut Vec<String>| {
        for i in (1..rows.len()).rev() {
            rows.swap(i, (i * 7919 + 13) % (i + 1));
        }
    };
    let mut ordered = inference.clone();
    ordered.sort_by(|a, b| a.split(',').nth(1).cmp(&b.split(',').nth(1)));
    shuffle(&mut inference);
    shuffle(&mut feedback);
    let write = |name: &str, header: &str, rows: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        path
    };
    let inf = write(
        "inference.csv",
        "request_id,ts,country,score,prediction",
        &inference,
    );
    let fb = write("feedback.csv", "request_id,ts,label,reviewer", &feedback);
    // Reviewers' trust changes every 12 hours: which record a step sees depends on its T.
    let reviews: Vec<String> = (0..12 * 4)
        .map(|i| {
            let (half, u) = (i / 4, i % 4);
            format!(
                "u{u},2026-03-{:02}T{:02}:{:02}:00Z,{}",
                1 + half / 2,
                (half % 2) * 12 + u,
                u * 7,
                (half + u) % 3 != 0
            )
        })
        .collect();
    let rv = write("reviews.csv", "reviewer,ts,trusted", &reviews);
    let db = format!("sqlite://{}/store.db", dir.path().display());
    let c = checks.to_str().unwrap();
    let backfilled = ingest_and_backfill(
        c,
        &db,
        &[("inference", &inf), ("feedback", &fb), ("reviews", &rv)],
    );
    assert!(!backfilled.is_empty());
    let step_checks = |db: &str| {
        let mut stepped = Vec::new();
        let mut at = jiff::Timestamp::from_second(1_772_409_600).unwrap(); // 2026-03-02
        let end: jiff::Timestamp = "2026-03-07T12:00:00Z".parse().unwrap();
        while at <= end {
            let out = mlc(&[
                "check",
                c,
                "--db",
                db,
                "--format",
                "json",
                "--at",
                &at.to_string(),
            ]);
            stepped.extend(lines(&out));
            at += jiff::SignedDuration::from_hours(12);
        }
        stepped
    };
    let stepped = step_checks(&db);
    assert_eq!(backfilled.len(), stepped.len());
    for (b, s) in backfilled.iter().zip(&stepped) {
        assert_eq!(b, s);
    }
    // The data exercises what it should: the chained join's reviewer trust passes at some
    // steps and fails at others; late and corrected labels change the answers.
    let trusted: std::collections::HashSet<&str> = backfilled
        .iter()
        .filter(|r| r["check"] == "trusted_labels")
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert!(
        trusted.contains("pass") && trusted.contains("fail"),
        "{trusted:?}"
    );
    assert!(
        backfilled
            .iter()
            .any(|r| r["coverage"].as_f64().is_some_and(|c| c < 1.0))
    );

    // The same rows stored in time order with segments of 50 rows: the prefetched window
    // comes back as many batches, which each step cuts and joins across; same results.
    let ord = write(
        "ordered.csv",
        "request_id,ts,country,score,prediction",
        &ordered,
    );
    let db2 = format!(
        "sqlite://{}/ordered.db?segment_rows=50",
        dir.path().display()
    );
    let again = ingest_and_backfill(
        c,
        &db2,
        &[("inference", &ord), ("feedback", &fb), ("reviews", &rv)],
    );
    assert_eq!(again, backfilled);
    // Read in slices of about 40 values (8 rows of 5 columns), each slice's keys looked up
    // once for all the steps and then dropped (no check names `request_id`): the same.
    let (sliced, _) = backfill(c, &db2, &["--slice-cells", "40"]);
    assert_eq!(sliced, backfilled);
    // A prefetch bound of about a third of what the backfill reads (5 values an inference
    // row, 4 a label): the steps go in groups, each reading its windows and the labels of
    // their keys once, the chained join's reviews at each step; and one that holds nothing:
    // every read at each step. The same results, and the backfill says how it reads.
    let third = ((inference.len() * 5 + feedback.len() * 4) / 3 + 1).to_string();
    for (cells, says) in [
        (
            third.as_str(),
            "backfill: read in 4 groups of up to 3 steps, the joined rows of each group's keys once; the latest `reviews` per key read at each step",
        ),
        ("0", "backfill: every read made at each step"),
    ] {
        let (results, stderr) = backfill(c, &db, &["--prefetch-cells", cells]);
        assert_eq!(results, backfilled, "--prefetch-cells {cells}");
        assert!(stderr.contains(says), "--prefetch-cells {cells}: {stderr}");
    }
    // Under the default bound everything is read once, and nothing is said.
    let (_, stderr) = backfill(c, &db, &[]);
    assert!(!stderr.contains("backfill:"), "{stderr}");
    // `mlc check` on the segments reads `score` and `country` of `score_nulls_alone` only
    // for their nulls (validity bitmaps), and `score_nulls_shared` shares its scan with
    // `score_drift`, which needs the values: both equal the backfill's full reads.
    assert!(
        backfilled
            .iter()
            .any(|r| r["check"] == "score_nulls_alone" && r["status"] == "pass")
    );
    assert!(
        backfilled
            .iter()
            .any(|r| r["check"] == "score_nulls_shared" && r["status"] == "fail")
    );
    assert_eq!(step_checks(&db2), backfilled);
}

/// Ingests each (component, file) into `db`, then backfills 2026-03-02 to 03-07 12:00 in
/// 12-hour steps and returns the JSON results.
fn ingest_and_backfill(
    checks: &str,
    db: &str,
    files: &[(&str, &PathBuf)],
) -> Vec<serde_json::Value> {
    ingest_all(checks, db, files);
    backfill(checks, db, &[]).0
}

/// Ingests each (component, file) into `db` with `mlc ingest`, which must succeed.
fn ingest_all(checks: &str, db: &str, files: &[(&str, &PathBuf)]) {
    for (component, file) in files {
        let out = mlc(&[
            "ingest",
            "--checks",
            checks,
            "--db",
            db,
            component,
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Backfills 2026-03-02 to 03-07 12:00 in 12-hour steps with `extra` arguments; the JSON
/// results and what it printed on stderr.
fn backfill(checks: &str, db: &str, extra: &[&str]) -> (Vec<serde_json::Value>, String) {
    let mut args = vec![
        "backfill",
        checks,
        "--db",
        db,
        "--dry-run",
        "--format",
        "json",
        "--from",
        "2026-03-02T00:00:00Z",
        "--to",
        "2026-03-07T12:00:00Z",
        "--step",
        "12h",
    ];
    args.extend_from_slice(extra);
    let back = mlc(&args);
    assert!(
        back.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    (
        lines(&back),
        String::from_utf8_lossy(&back.stderr).into_owned(),
    )
}

/// A component baseline and a check that reads the same component only for a column's nulls
/// share one scan: the column must still be read for its values (the baseline's mean), from
/// segments too.
#[test]
fn a_component_baseline_gets_values_where_another_check_reads_only_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let checks = dir.path().join("checks.mlc");
    std::fs::write(
        &checks,
        r#"
component inference {
  key request_id
  time ts
  fields { age: int }
}
component training {
  key request_id
  time ts
  fields { age: int }
}
check training_nulls {
  on training
  expect count(age is null) == 0
}
check skew {
  on inference
  baseline training
  expect baseline.mean(age) == 42
  expect mean(age) == 40
}
"#,
    )
    .unwrap();
    let rows = |age: i64| {
        let mut out = String::from("request_id,ts,age\n");
        for i in 0..200 {
            let a = if i % 9 == 4 {
                String::new()
            } else {
                age.to_string()
            };
            out.push_str(&format!(
                "r{i},2026-03-01T{:02}:{:02}:00Z,{a}\n",
                i / 60,
                i % 60
            ));
        }
        out
    };
    let db = format!("sqlite://{}/store.db?segment_rows=50", dir.path().display());
    let c = checks.to_str().unwrap();
    for (component, age) in [("training", 42), ("inference", 40)] {
        let file = dir.path().join(format!("{component}.csv"));
        std::fs::write(&file, rows(age)).unwrap();
        ingest_all(c, &db, &[(component, &file)]);
    }
    let out = mlc(&[
        "check",
        c,
        "--db",
        &db,
        "--format",
        "json",
        "--at",
        "2026-03-02T00:00:00Z",
    ]);
    let got = lines(&out);
    let status = |name: &str| {
        got.iter()
            .find(|r| r["check"] == name)
            .map(|r| r["status"].clone())
            .unwrap_or_else(|| panic!("no result for {name}: {got:?}"))
    };
    assert_eq!(status("training_nulls"), "fail", "{got:?}");
    assert_eq!(status("skew"), "pass", "{got:?}");
}

/// `mlc` run in `dir` as the working directory, with no MLC_DB.
fn mlc_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(MLC)
        .args(args)
        .current_dir(dir)
        .env_remove("MLC_DB")
        .output()
        .unwrap()
}

#[test]
fn commands_that_only_read_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let checks = cases().join("checks.mlc");
    let checks = checks.to_str().unwrap();
    for args in [
        vec!["check", checks],
        vec![
            "backfill",
            checks,
            "--from",
            "2026-02-01",
            "--to",
            "2026-03-01",
            "--step",
            "1d",
        ],
        vec!["prune", "--older-than", "90d"],
        // Without --checks the component can only come from an existing store.
        vec![
            "ingest",
            "inference",
            cases().join("inference.csv").to_str().unwrap(),
        ],
    ] {
        let out = mlc_in(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no store at `mlc.db`") && err.contains("--db") && err.contains("MLC_DB"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} created a file"
        );
    }
    // A first ingest that fails stores nothing and leaves no empty store behind.
    let ingest_new = |file: &str| {
        let args = [
            "ingest",
            "--checks",
            checks,
            "--db",
            "new.db",
            "inference",
            file,
        ];
        mlc_in(dir.path(), &args)
    };
    let out = ingest_new(dir.path().join("missing.csv").to_str().unwrap());
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a failed ingest left a store"
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "nothing,like,the,schema\n1,2,3,4\n").unwrap();
    let out = ingest_new("bad.csv");
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !dir.path().join("new.db").exists(),
        "a failed ingest left a store"
    );
}

#[test]
fn a_bare_path_is_a_sqlite_store_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let url = store(dir.path());
    let bare = url.strip_prefix("sqlite://").unwrap();
    let by_url = check(&url, &["--format", "json"]);
    let by_path = check(bare, &["--format", "json"]);
    assert_eq!(
        by_path.status.code(),
        by_url.status.code(),
        "{}",
        String::from_utf8_lossy(&by_path.stderr)
    );
    let strip = |o: &Output| {
        lines(o)
            .into_iter()
            .map(|mut v| {
                v.as_object_mut().unwrap().remove("duration_ms");
                v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&by_path), strip(&by_url));
    // Ingest into a new store given as a bare path, then read it back the same way.
    let other = dir.path().join("other.db");
    let out = mlc(&[
        "ingest",
        "--checks",
        cases().join("checks.mlc").to_str().unwrap(),
        "--db",
        other.to_str().unwrap(),
        "inference",
        cases().join("inference.csv").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(
        other.to_str().unwrap(),
        &["--check", "ages_valid", "--format", "json"],
    );
    assert_eq!(
        lines(&out)[0]["rows"],
        4,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn time_arguments_keep_the_time_of_day_and_take_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let checks = cases().join("checks.mlc");
    let at = |at: &str| {
        let c = checks.to_str().unwrap();
        mlc(&[
            "check",
            c,
            "--db",
            &db,
            "--check",
            "ages_valid",
            "--format",
            "json",
            "--at",
            at,
        ])
    };
    let at_of = |t: &str| {
        let out = at(t);
        assert_ne!(
            out.status.code(),
            Some(2),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out)[0]["at"].as_str().unwrap().to_string()
    };
    assert_eq!(at_of("2026-03-01T11:00:00+00:00"), "2026-03-01T11:00:00Z");
    assert_eq!(at_of("2026-03-01T12:30:00+01:30"), "2026-03-01T11:00:00Z");
    assert_eq!(at_of("2026-03-01"), "2026-03-01T00:00:00Z");
    assert_eq!(at_of("1772362800"), "2026-03-01T11:00:00Z");
    let now = jiff::Timestamp::now();
    let rel: jiff::Timestamp = at_of("now-14d").parse().unwrap();
    let diff = now.as_second() - rel.as_second() - 14 * 86_400;
    assert!(diff.abs() < 60, "now-14d was {rel}");
    for bad in [
        "2026-03-01T11:00:00",
        "1772362800000",
        "yesterday",
        "now-3y",
    ] {
        let out = at(bad);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(bad), "{bad}");
    }
    // backfill: the time of day of --from and --to is kept too.
    let out = mlc(&[
        "backfill",
        cases().join("checks.mlc").to_str().unwrap(),
        "--db",
        &db,
        "--check",
        "ages_valid",
        "--dry-run",
        "--format",
        "json",
        "--from",
        "2026-03-01T06:00:00+00:00",
        "--to",
        "2026-03-01T18:00:00+00:00",
        "--step",
        "12h",
    ]);
    let ats: Vec<String> = lines(&out)
        .iter()
        .map(|v| v["at"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ats,
        ["2026-03-01T06:00:00Z", "2026-03-01T18:00:00Z"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `group by` over the key (one slice per record) is one `error` result past
/// `--max-series-per-check`, stored once by backfill, and `mlc lint` warns about it.
#[test]
fn group_by_over_an_id_is_bounded_by_the_series_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/store.db", dir.path().display());
    let rules = dir.path().join("ids.mlc");
    std::fs::write(
        &rules,
        "component events {\n  key request_id\n  time ts\n  fields {\n    score: float\n  }\n}\n\n\
         check per_request {\n  on events\n  window 1d\n  group by request_id\n  expect mean(score) >= 0\n}\n",
    )
    .unwrap();
    let csv = dir.path().join("events.csv");
    let mut text = String::from("request_id,ts,score\n");
    for i in 0..3_000 {
        text.push_str(&format!("r{i:06},{},0.5\n", 1_772_323_200 - 3_600 - i));
    }
    std::fs::write(&csv, text).unwrap();
    let r = rules.to_str().unwrap();
    let out = mlc(&[
        "ingest",
        "--checks",
        r,
        "--db",
        &db,
        "events",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let lint = mlc(&["lint", r]);
    let err = String::from_utf8_lossy(&lint.stderr);
    assert_eq!(lint.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning[W0311]") && err.contains("group by request_id"),
        "{err}"
    );

    let run = |extra: &[&str]| {
        let mut args = vec![
            "check",
            r,
            "--db",
            &db,
            "--at",
            "2026-03-01T00:00:00Z",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        mlc(&args)
    };
    let out = run(&["--max-series-per-check", "1000"]);
    let results = lines(&out);
    assert_eq!(results.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(results[0]["status"], "error");
    let message = results[0]["message"].as_str().unwrap();
    assert!(
        message.contains("more than 1000 slices") && message.contains("--max-series-per-check"),
        "{message}"
    );
    assert_eq!(out.status.code(), Some(1));
    // The default limit is the same; a limit above the ids' count evaluates every slice.
    assert_eq!(lines(&run(&[])).len(), 1);
    assert_eq!(
        lines(&run(&["--max-series-per-check", "3000"])).len(),
        3_000
    );
    let zero = run(&["--max-series-per-check", "0"]);
    assert_eq!(zero.status.code(), Some(2));

    // Backfill stores that one error per step, not a result per id.
    let out = mlc(&[
        "backfill",
        r,
        "--db",
        &db,
        "--from",
        "2026-03-01T00:00:00Z",
        "--to",
        "2026-03-01T12:00:00Z",
        "--step",
        "12h",
        "--max-series-per-check",
        "100",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = rt_count_results(dir.path().join("store.db").to_str().unwrap());
    assert_eq!(stored, 2);
}

fn rt_count_results(path: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM mlc_results")
            .fetch_one(&mut c)
            .await
            .unwrap()
    })
}

/// Checks without a join stream their windows through their states in time slices
/// (docs/evaluation.md#streaming), and a check with `each` columns whose aggregates keep
/// values is read once per column. Cut into slices of a few rows, read whole (the backfill's
/// prefetch) or from a store without column segments: the same results, byte for byte.
#[test]
fn streamed_windows_give_what_whole_reads_give() {
    let dir = tempfile::tempdir().unwrap();
    let checks = dir.path().join("checks.mlc");
    std::fs::write(
        &checks,
        r#"
component events {
  key id
  time ts
  fields {
    country: string
    a: float
    b: int
    c: float
    tag: string
  }
}
component reference {
  key id
  time ts
  fields {
    country: string
    a: float
    b: int
    c: float
    tag: string
  }
}
check drift_each {
  on events
  window 2d
  baseline offset 2d
  each col in [a, b, c]
  expect ks(col).pvalue >= 0.01
  expect psi(col) < 0.2
  expect quantile(col, 0.9) < 90
}
check drift_each_grouped {
  on events
  window 3d
  baseline reference
  where b > 2
  group by country
  each col in [a, c]
  expect wasserstein(col) < 5
  expect median(col) > 10
}
check counts_each {
  on events
  window 1d
  each col in [a, c, b]
  expect null_rate(col) < 0.05
  expect mean(col) > 20
}
check validity {
  on events
  expect count(a < 5) == 0
  expect duplicate_rate(id) == 0
  expect distinct(tag) <= 40
  expect latest(a) > 10
  expect freshness() < 1d
  expect count(c is null) == 0
  expect sum(a) > 0
}
check ks_alone {
  on events
  window 2d
  baseline offset 2d
  each col in [a, b, c]
  expect ks(col).pvalue >= 0.01
}
check psi_alone {
  on events
  window 2d
  baseline offset 2d
  each col in [a, b, c]
  expect psi(col) < 0.2
}
check two_sample_together {
  on events
  window 2d
  baseline offset 2d
  expect psi(country) < 0.2
  expect js(country) < 0.1
  expect wasserstein(a) < 5
  expect psi(a) < 0.2
  expect ks(a).pvalue > 0
}
check two_sample_alone {
  on events
  window 2d
  baseline offset 2d
  expect js(country) < 0.1
}
check psi_country_alone {
  on events
  window 2d
  baseline offset 2d
  expect psi(country) < 0.2
}
check wasserstein_alone {
  on events
  window 2d
  baseline offset 2d
  expect wasserstein(a) < 5
}
check ids_by_country {
  on events
  group by country
  expect duplicate_rate(id) == 0
  expect distinct(tag) > 1
}
check nothing_then {
  on events
  window 1h
  delay 30d
  baseline offset 1d
  each col in [a, c]
  expect ks(col).pvalue >= 0.01
  expect count() >= 1
}
"#,
    )
    .unwrap();
    // 1,200 events over 8 days written in a shuffled order, a shift in `a` on the last days,
    // nulls in `c`, a repeated id; 300 reference rows.
    let mut x: u64 = 11;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as i64
    };
    let row = |i: i64, day: i64, next: &mut dyn FnMut() -> i64| {
        let ts = format!(
            "2026-03-{:02}T{:02}:{:02}:{:02}Z",
            1 + day,
            next() % 24,
            next() % 60,
            i % 60
        );
        let country = ["DE", "US", "FR", "BR"][(next() % 4) as usize];
        let shift = if day >= 6 { 7.0 } else { 0.0 };
        let a = 10.0 + shift + (next() % 1000) as f64 / 25.0;
        let c = if i % 17 == 3 {
            String::new()
        } else {
            format!("{:.2}", (next() % 500) as f64 / 7.0)
        };
        format!(
            "{},{ts},{country},{a:.3},{},{c},t{}",
            if i == 77 { 76 } else { i },
            next() % 9,
            next() % 45
        )
    };
    let mut events: Vec<String> = (0..1200).map(|i| row(i, i * 8 / 1200, &mut next)).collect();
    for i in (1..events.len()).rev() {
        events.swap(i, (i * 7919 + 13) % (i + 1));
    }
    let reference: Vec<String> = (5000..5300).map(|i| row(i, 0, &mut next)).collect();
    let header = "id,ts,country,a,b,c,tag";
    let write = |name: &str, rows: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        path
    };
    let ev = write("events.csv", &events);
    let rf = write("reference.csv", &reference);
    let c = checks.to_str().unwrap();
    let at = "2026-03-09T00:00:00Z";
    // `distinct` and `duplicate_rate` keep 64-bit codes past MLC_DISTINCT_VALUES_BYTES, and
    // read the rows again where a code repeats: from the first byte, the same results.
    let check = |db: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["check", c, "--db", db, "--format", "json", "--at", at];
        args.extend_from_slice(extra);
        let out = mlc_with(&args, env);
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out)
    };
    let mut seen = Vec::new();
    for segments in ["40", "0"] {
        let db = format!(
            "sqlite://{}/s{segments}.db?segment_rows={segments}",
            dir.path().display()
        );
        ingest_all(c, &db, &[("events", &ev), ("reference", &rf)]);
        // The backfill's prefetch reads each window whole: the reference.
        let backfill = |env: &[(&str, &str)]| {
            lines(&mlc_with(
                &[
                    "backfill",
                    c,
                    "--db",
                    &db,
                    "--dry-run",
                    "--format",
                    "json",
                    "--from",
                    at,
                    "--to",
                    at,
                    "--step",
                    "1d",
                ],
                env,
            ))
        };
        let whole = backfill(&[]);
        let codes = [("MLC_DISTINCT_VALUES_BYTES", "0")];
        assert_eq!(backfill(&codes), whole, "segments {segments}, codes");
        for cells in ["1", "40", "333", "100000000"] {
            let got = check(&db, &["--slice-cells", cells], &[]);
            assert_eq!(got, whole, "segments {segments}, --slice-cells {cells}");
            let got = check(&db, &["--slice-cells", cells], &codes);
            assert_eq!(
                got, whole,
                "segments {segments}, --slice-cells {cells}, codes"
            );
        }
        seen.push(whole);
    }
    assert_eq!(seen[0], seen[1]);
    let whole = &seen[0];
    // Every check gives its results, some pass and some fail, none is an error.
    let status = |check: &str| -> Vec<&str> {
        whole
            .iter()
            .filter(|r| r["check"] == check)
            .map(|r| r["status"].as_str().unwrap())
            .collect()
    };
    assert_eq!(status("drift_each").len(), 3);
    assert_eq!(status("drift_each_grouped").len(), 8);
    assert_eq!(status("counts_each").len(), 3);
    assert!(whole.iter().all(|r| r["status"] != "error"), "{whole:?}");
    for s in ["pass", "fail"] {
        assert!(whole.iter().any(|r| r["status"] == s), "no {s}: {whole:?}");
    }
    assert_eq!(status("validity"), ["fail"]);
    assert_eq!(status("ids_by_country").len(), 4);
    // `ks`, `psi`, `js` and `wasserstein` of one argument share one state (its values held
    // once): each gives what it gives alone.
    let value = |check: &str, column: Option<&str>, expr: &str| -> serde_json::Value {
        let r = whole
            .iter()
            .find(|r| r["check"] == check && column.is_none_or(|c| r["column"] == c))
            .unwrap_or_else(|| panic!("no result of {check}"));
        let v = r["expects"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e["values"].get(expr))
            .unwrap_or_else(|| panic!("no {expr} in {r}"));
        assert!(v.is_number(), "{check} {expr}: {v}");
        v.clone()
    };
    for col in ["a", "b", "c"] {
        let c = Some(col);
        assert_eq!(
            value("drift_each", c, "ks(col).pvalue"),
            value("ks_alone", c, "ks(col).pvalue")
        );
        assert_eq!(
            value("drift_each", c, "psi(col)"),
            value("psi_alone", c, "psi(col)")
        );
    }
    for (alone, expr) in [
        ("two_sample_alone", "js(country)"),
        ("psi_country_alone", "psi(country)"),
        ("wasserstein_alone", "wasserstein(a)"),
    ] {
        assert_eq!(
            value("two_sample_together", None, expr),
            value(alone, None, expr),
            "{expr}"
        );
    }
    assert_eq!(
        value("two_sample_together", None, "psi(a)"),
        value("psi_alone", Some("a"), "psi(col)")
    );
    assert_eq!(
        value("two_sample_together", None, "ks(a).pvalue"),
        value("ks_alone", Some("a"), "ks(col).pvalue")
    );
    // A setting that is not a number of bytes is refused, naming the fix.
    let out = mlc_with(
        &["check", c, "--db", "sqlite::memory:", "--at", at],
        &[("MLC_DISTINCT_VALUES_BYTES", "64MB")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MLC_DISTINCT_VALUES_BYTES=\"64MB\" is not a number of bytes"),
        "{err}"
    );
    let out = mlc_with(
        &["check", c, "--db", "sqlite::memory:", "--at", at],
        &[("MLC_SQLITE_MMAP_BYTES", "-1")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MLC_SQLITE_MMAP_BYTES=\"-1\" is not a number of bytes"),
        "{err}"
    );
    assert_eq!(status("nothing_then").len(), 2);
}

#[test]
fn explain_says_what_postgres_counts_and_verbose_shows_the_sql() {
    let checks = cases().join("checks.mlc");
    let out = mlc(&["explain", checks.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // `all` and `count` are counted in the database; the joined `recall` is not.
    let part = |name: &str| {
        let at = text.find(&format!("check {name} ")).unwrap();
        let rest = &text[at..];
        let end = rest[1..].find("\ncheck ").map_or(rest.len(), |e| e + 1);
        rest[..end].to_string()
    };
    assert!(
        part("ages_valid").contains("on PostgreSQL:\n    counted in the database: a0\n"),
        "{text}"
    );
    assert!(
        part("volume_info").contains("counted in the database: a0"),
        "{text}"
    );
    assert!(!part("recall_slo").contains("on PostgreSQL"), "{text}");
    assert!(!text.contains("sql:"), "{text}");
    let out = mlc(&[
        "explain",
        "--verbose",
        "--check",
        "ages_valid",
        checks.to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(r#"sql: SELECT count(*), count(*), count(*) FILTER (WHERE ("age" >= (0)::BIGINT)) FROM "mlc_c_inference" WHERE "ts" >= <window start> AND "ts" < <window end>"#),
        "{text}"
    );
}
