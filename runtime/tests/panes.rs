//! Panes (docs/evaluation.md#panes): an executor that keeps its checks' pane states between
//! evaluations gives what one that reads every window whole gives, over random rows arriving
//! in random order, late rows into old panes, re-sent (duplicate) records and prunes, on
//! SQLite (with column segments) and PostgreSQL; and a late row recomputes exactly the panes
//! that hold its time, changing exactly the results whose windows contain it.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::sync::Arc;

use mlc_engine::plan::Program;
use mlc_runtime::exec::Executor;
use mlc_store::Store;
use serde_json::Value as Json;

use common::{Rng, put, results};

const H: i64 = 3_600_000_000;
const M: i64 = 60_000_000;
/// 2026-03-01T00:00:00Z
const T0: i64 = 1_772_323_200_000_000;

const RULES: &str = r#"
component events {
  key id
  time ts
  fields {
    country: string
    age: int
    income: float
    score: float
    pred: int
    label: int
    ok: bool
  }
}

check counts {
  on events
  window 3h
  every 1h
  expect count() >= 0
  expect null_rate(age) <= 1
  expect rate(age > 30) >= 0
  expect all(age >= 0)
  expect min(income) > -1000000
  expect max(income) < 1000000
}

check by_country {
  on events
  window 5h
  every 30m
  where ok
  group by country
  expect count() > 0
  expect quantile(income, 0.9) > -1
  expect median(score) >= 0
  expect distinct(id) > 0
  expect duplicate_rate(age) >= 0
  expect mode(country) != "zz"
}

check drift_offset {
  on events
  window 2h
  every 15m
  baseline offset 2h
  expect ks(income).pvalue >= 0
  expect psi(score) >= 0
  expect chi2(country).pvalue >= 0
  expect wasserstein(age) >= 0
}

check drift_range {
  on events
  window 4h
  every 10m
  baseline from "2026-03-01T00:00:00Z" to "2026-03-01T03:00:00Z"
  each col in [income, score]
  expect ks(col).pvalue >= 0
  expect js(col) >= 0
}

check quality {
  on events
  window 6h
  every 2h
  group by country
  expect accuracy(pred, label) >= 0
  expect recall(pred, label) >= 0
  expect auc(score, label) >= 0
}

check sums {
  on events
  window 3h
  every 20m
  expect mean(income) > -1000000
  expect sum(score) >= 0
  expect stddev(income) >= 0
}

check fresh {
  on events
  window 1h
  every 5m
  expect freshness() < 100d
  expect latest(country) != "zz"
}
"#;

fn program(rules: &str) -> Arc<Program> {
    Arc::new(mlc_engine::check::compile_text(rules).unwrap())
}

fn record(rng: &mut Rng, n: u64, ts: i64) -> String {
    let countries = ["DE", "US", "FR", "BR"];
    let country = countries[rng.below(4) as usize];
    let age = if rng.below(12) == 0 {
        "null".to_string()
    } else {
        (18 + rng.below(60)).to_string()
    };
    let income = (rng.below(100_000) as f64) / 7.0;
    let score = (rng.below(1000) as f64) / 1000.0;
    let label = rng.below(2);
    let pred = if rng.below(4) == 0 { 1 - label } else { label };
    let ok = rng.below(5) != 0;
    format!(
        r#"{{"id":"r{n}","ts":{},"country":"{country}","age":{age},"income":{income},"score":{score},"pred":{pred},"label":{label},"ok":{ok}}}"#,
        ts as f64 / 1e6
    )
}

/// Aggregates whose value is a float sum: equal to the last few ulps, not bit for bit.
const SUMS: [&str; 3] = ["mean(", "sum(", "stddev("];

fn same(a: &Json, b: &Json, path: &str) -> Result<(), String> {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            if x.keys().collect::<Vec<_>>() != y.keys().collect::<Vec<_>>() {
                return Err(format!("{path}: members differ: {a} vs {b}"));
            }
            for (k, v) in x {
                if k == "message" && SUMS.iter().any(|s| v.as_str().unwrap_or("").contains(s)) {
                    continue;
                }
                let w = &y[k];
                if SUMS.iter().any(|s| k.starts_with(s))
                    && let (Some(p), Some(q)) = (v.as_f64(), w.as_f64())
                {
                    if (p - q).abs() > 1e-9 * p.abs().max(q.abs()).max(1.0) {
                        return Err(format!("{path}.{k}: {p} vs {q}"));
                    }
                    continue;
                }
                same(v, w, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same(v, w, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

/// Random writes and evaluation times; after each, the paned executor's results equal the
/// whole reads'.
async fn property(store: Store, seed: u64) -> mlc_runtime::exec::PaneStats {
    let program = program(RULES);
    let whole = Executor::new(store.clone(), program.clone(), "v");
    let paned = Executor::new(store.clone(), program.clone(), "v").with_panes(1 << 30);
    for c in &program.checks {
        assert!(
            mlc_runtime::exec::pane_width_secs(c).is_some(),
            "{} has no pane width",
            c.name
        );
    }
    let mut rng = Rng(seed);
    let mut n = 0u64;
    let mut at = T0 + 4 * H;
    let mut sent: Vec<Vec<String>> = Vec::new();
    let mut compared = 0;
    for step in 0..24 {
        // New rows in the last step's span, late rows up to 8 hours back, sometimes a batch
        // sent again, sometimes a prune.
        let mut lines = Vec::new();
        for _ in 0..(20 + rng.below(60)) {
            let ts = at - 1 - rng.below(40 * M as u64) as i64;
            n += 1;
            lines.push(record(&mut rng, n, ts));
        }
        for _ in 0..rng.below(6) {
            let ts = at - 1 - rng.below(8 * H as u64) as i64;
            n += 1;
            lines.push(record(&mut rng, n, ts));
        }
        // Random arrival order within the batch.
        for i in (1..lines.len()).rev() {
            lines.swap(i, rng.below(i as u64 + 1) as usize);
        }
        put(&store, &program, &lines).await;
        sent.push(lines);
        if rng.below(4) == 0 {
            let again = sent[rng.below(sent.len() as u64) as usize].clone();
            put(&store, &program, &again).await;
        }
        if rng.below(6) == 0 {
            store
                .prune(Some("events"), at - 7 * H + rng.below(H as u64) as i64, 50)
                .await
                .unwrap();
        }
        // Evaluate at the same time again (after the writes) or up to 40 minutes later, on
        // and off the panes' grid.
        if step % 5 != 4 {
            at += match rng.below(3) {
                0 => 0,
                1 => 5 * M * rng.below(9) as i64,
                _ => rng.below(40 * M as u64) as i64,
            };
        }
        let want = results(&whole, at).await;
        let got = results(&paned, at).await;
        assert_eq!(want.len(), got.len(), "seed {seed} step {step}");
        for (w, g) in want.iter().zip(&got) {
            if let Err(e) = same(w, g, &w["check"].to_string()) {
                panic!("seed {seed} step {step} at {at}: {e}");
            }
            assert_ne!(w["status"], "error", "{w}");
            compared += 1;
        }
    }
    let stats = paned.pane_stats().unwrap();
    assert!(compared > 24 * 7, "{compared}");
    // Every check was taken from panes, and most panes came from the cache.
    for c in &program.checks {
        assert_eq!(paned.panes_off_reason(&c.name), None, "{}", c.name);
    }
    assert_eq!(stats.evaluations, 24 * program.checks.len() as u64);
    assert!(stats.reused > 0, "{stats:?}");
    // Most evaluations slid the last window's state instead of merging every pane.
    assert!(stats.slid * 2 > stats.evaluations, "{stats:?}");
    stats
}

#[tokio::test]
async fn panes_give_what_whole_reads_give_on_sqlite() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db?segment_rows=64", dir.path().display());
        let stats = property(Store::open(&url).await.unwrap(), seed).await;
        // SQLite files number their rows: cached panes take the rows written since alone.
        assert!(stats.updated > 0, "{stats:?}");
    }
}

#[tokio::test]
async fn panes_give_what_whole_reads_give_on_postgres() {
    let base = std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("mlc_panes_{}", std::process::id());
    let store = Store::open(&format!("{base}?schema={schema}"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL for tests must be reachable at {base}: {e}"));
    property(store.clone(), 7).await;
    store.close().await;
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_late_row_recomputes_its_pane_and_changes_exactly_the_windows_holding_it() {
    let rules = r#"
component events {
  key id
  time ts
  fields { country: string }
}
check w1h { on events window 1h every 15m expect count() >= 0 }
check w2h { on events window 2h every 15m expect count() >= 0 }
check w4h { on events window 4h every 15m expect count() >= 0 }
check w8h { on events window 8h every 15m expect count() >= 0 }
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = Store::open(&format!("sqlite://{}/l.db", dir.path().display()))
        .await
        .unwrap();
    // A SQLite file's journal numbers the rows written: the two panes take the late row
    // alone. An in-memory store's does not: they are computed again from their rows.
    late_row(rules, file, (0, 2)).await;
    late_row(rules, Store::open("sqlite::memory:").await.unwrap(), (2, 0)).await;
}

async fn late_row(rules: &str, store: Store, (computed, updated): (u64, u64)) {
    let program = program(rules);
    let mut rng = Rng(11);
    let lines: Vec<String> = (0..400)
        .map(|i| {
            let ts = T0 + rng.below(10 * H as u64) as i64;
            format!(r#"{{"id":"a{i}","ts":{},"country":"DE"}}"#, ts as f64 / 1e6)
        })
        .collect();
    put(&store, &program, &lines).await;
    let paned = Executor::new(store.clone(), program.clone(), "v").with_panes(1 << 30);
    let at = T0 + 10 * H;
    let before = results(&paned, at).await;
    let first = paned.pane_stats().unwrap();
    // 4 + 8 + 16 + 32 panes of 15 minutes, the window's edges on the grid.
    assert_eq!((first.computed, first.reused), (60, 0), "{first:?}");

    // One row three hours before T: in the 4h and 8h windows only.
    let late = format!(
        r#"{{"id":"late","ts":{},"country":"DE"}}"#,
        (at - 3 * H + 7 * M) as f64 / 1e6
    );
    put(&store, &program, &[late]).await;
    let after = results(&paned, at).await;
    let second = paned.pane_stats().unwrap();
    assert_eq!(
        (
            second.computed - first.computed,
            second.updated - first.updated,
            second.reused - first.reused
        ),
        (computed, updated, 60 - computed),
        "{second:?}"
    );
    let rows = |r: &[Json], check: &str| {
        r.iter()
            .find(|x| x["check"] == check)
            .map(|x| x["rows"].as_u64().unwrap())
            .unwrap()
    };
    for (check, grows) in [("w1h", false), ("w2h", false), ("w4h", true), ("w8h", true)] {
        assert_eq!(
            rows(&after, check),
            rows(&before, check) + u64::from(grows),
            "{check}"
        );
    }
    // And what a whole read gives.
    let whole = Executor::new(store.clone(), program.clone(), "v");
    assert_eq!(results(&whole, at).await, after);
}
