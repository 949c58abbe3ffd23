//! Pushdown (docs/evaluation.md#pushdown): on PostgreSQL the database counts the rows of
//! `count`, `rate`, `all`, `any` and `null_rate`, and every result equals the one SQLite gives from the
//! rows, over random rows with nulls, strings that sort differently by bytes and by locale,
//! `where`, `group by` (nulls included) and checks that mix pushed and read aggregates. The
//! executor's count of pushed aggregates proves none fell back to reading rows.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::sync::Arc;

use mlc_engine::plan::Program;
use mlc_runtime::exec::Executor;
use mlc_store::Store;

use common::{Rng, put, results};

const H: i64 = 3_600_000_000;
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
    ok: bool
    tier: int
  }
}

check counts {
  on events
  window 6h
  expect count() >= 0
  expect count(age < 30) >= 0
  expect count(age is null) >= 0
  expect count(income <= 100.5 or score > 0.75) >= 0
  expect count(not (score >= 0.25 and age > 40)) >= 0
  expect count(country < "b") >= 0
  expect count(country >= "Z" and country != "é") >= 0
  expect count(country not in ["a", "B", "é"]) >= 0
  expect count(age in [20, 21, 22] or income in [7.0, 14.0]) >= 0
  expect count(age between 25 and 35) >= 0
  expect count(score between 0.1 and 0.2 or ok) >= 0
  expect count(ok == false) >= 0
  expect count(ok != (age > 50)) >= 0
  expect count(tier > 1.5) >= 0
  expect count(ts >= "2026-03-01T02:00:00Z") >= 0
  expect rate(age >= 18) > 0.5
  expect all(score <= 1)
  expect any(country == "B")
  expect null_rate(income) < 1
  expect null_rate(country) < 1
  expect null_rate(ok) < 1
}

check sliced {
  on events
  window 6h
  where ok or age is null
  group by country, tier
  expect rate(score > 0.5) >= 0
  expect count() > 2
  expect all(age is not null)
}

check by_flag {
  on events
  window 4h
  group by ok
  expect any(age > 70)
  expect count(income > 1000) >= 0
}

check mixed {
  on events
  window 6h
  where income > 10
  group by country
  expect count() >= 0
  expect quantile(score, 0.5) >= 0
  expect rate(age < 40) >= 0
}

check kept_on_rows {
  on events
  window 6h
  expect count(age + 1 > 30) >= 0
  expect count(abs(score - 0.5) < 0.1) >= 0
}
"#;

/// Aggregates the database computes per evaluation of `RULES` (all but `quantile` and
/// the two with arithmetic).
const PUSHED_PER_EVALUATION: u64 = 21 + 3 + 2 + 2;

fn program() -> Arc<Program> {
    Arc::new(mlc_engine::check::compile_text(RULES).unwrap())
}

fn rows(seed: u64, n: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    // "B" < "Z" < "a" < "b" < "é" by bytes; a locale would sort "a" before "B".
    let countries = ["a", "B", "b", "Z", "é", "O'Hara", r"back\\slash"];
    (0..n)
        .map(|i| {
            let ts = T0 + rng.below(7 * H as u64) as i64;
            let values = [
                format!("\"{}\"", countries[rng.below(7) as usize]),
                (15 + rng.below(60)).to_string(),
                ((rng.below(3000) as f64) / 7.0).to_string(),
                ((rng.below(100) as f64) / 100.0).to_string(),
                (rng.below(3) != 0).to_string(),
                rng.below(4).to_string(),
            ];
            let [country, age, income, score, ok, tier] = values.map(|v| {
                if rng.below(8) == 0 {
                    "null".to_string()
                } else {
                    v
                }
            });
            format!(
                r#"{{"id":"r{i}","ts":{},"country":{country},"age":{age},"income":{income},"score":{score},"ok":{ok},"tier":{tier}}}"#,
                ts as f64 / 1e6
            )
        })
        .collect()
}

#[tokio::test]
async fn postgres_counts_in_the_database_and_agrees_with_sqlite() {
    let base = std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    // A database whose default collation is a locale's (ICU en-US, where "a" < "B"), as many
    // users' are: comparisons must still be mlc's, by bytes.
    let db = format!("mlc_pushdown_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL for tests must be reachable at {base}: {e}"));
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!(
            "CREATE DATABASE {db} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' \
             TEMPLATE template0"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    let pg = Store::open(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lite = Store::open(&format!("sqlite://{}/p.db", dir.path().display()))
        .await
        .unwrap();
    let program = program();
    let on_pg = Executor::new(pg.clone(), program.clone(), "v");
    let on_lite = Executor::new(lite.clone(), program.clone(), "v");
    let mut evaluations = 0;
    for seed in [3, 4] {
        let lines = rows(seed, 400);
        for store in [&pg, &lite] {
            put(store, &program, &lines).await;
        }
        // Before any row, inside the rows, and after them (windows partly empty).
        for at in [T0, T0 + 3 * H, T0 + 7 * H, T0 + 12 * H] {
            let want = results(&on_lite, at).await;
            let got = results(&on_pg, at).await;
            assert_eq!(want.len(), got.len());
            for (w, g) in want.iter().zip(&got) {
                assert_ne!(w["status"], "error", "{w}");
                assert_eq!(w, g, "seed {seed} at {at}");
            }
            evaluations += 1;
        }
    }
    // Past the limit of slices a grouped check fails alike, whether its groups came from the
    // database (which returns one past the limit, not all) or from the rows.
    let few_pg = Executor::new(pg.clone(), program.clone(), "v").with_max_series(3);
    let few_lite = Executor::new(lite.clone(), program.clone(), "v").with_max_series(3);
    let want = results(&few_lite, T0 + 7 * H).await;
    let got = results(&few_pg, T0 + 7 * H).await;
    let sliced = |r: &Vec<serde_json::Value>| -> serde_json::Value {
        r.iter().find(|x| x["check"] == "sliced").cloned().unwrap()
    };
    assert_eq!(sliced(&want)["status"], "error", "{:?}", sliced(&want));
    assert_eq!(want, got);
    // Every aggregate that can be counted by the database was, at every evaluation; SQLite
    // reads its rows.
    assert_eq!(on_pg.pushed_down(), PUSHED_PER_EVALUATION * evaluations);
    assert_eq!(on_lite.pushed_down(), 0);
    pg.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
        .execute(&admin)
        .await
        .unwrap();
}
