//! Two `mlc serve` replicas on one PostgreSQL database: every scheduled slot of a check is
//! evaluated by exactly one of them (one set of results per slot, none doubled), and the
//! other counts the slot as claimed elsewhere.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use sqlx::Row;

const RULES: &str = r#"
component inference {
  key request_id
  time ts
  fields {
    score: float
  }
}

check tick {
  on inference
  window 1h
  every 1s
  expect count() >= 0
}
"#;

fn start(dir: &Path, db: &str) -> (Child, SocketAddr) {
    common::start_serve(dir, db)
}

fn claimed_elsewhere(addr: SocketAddr) -> u64 {
    let text = reqwest::blocking::get(format!("http://{addr}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("mlc_evaluations_claimed_elsewhere_total{check=\"tick\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn two_replicas_evaluate_each_slot_once() {
    let schema = format!("mlc_replicas_{}", std::process::id());
    let db = format!("{}?schema={schema}", common::pg_url());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/tick.mlc"), RULES).unwrap();

    // The first replica creates the schema before the second opens it.
    let (mut a, addr_a) = start(dir.path(), &db);
    let (mut b, addr_b) = start(dir.path(), &db);
    std::thread::sleep(Duration::from_secs(6));
    let elsewhere = claimed_elsewhere(addr_a) + claimed_elsewhere(addr_b);
    for child in [&mut a, &mut b] {
        common::terminate(child);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (per_slot, owners) = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&common::pg_url()).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT at_us, count(*) FROM {schema}.mlc_results WHERE check_name = 'tick' \
             GROUP BY at_us ORDER BY at_us"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        let per_slot: Vec<(i64, i64)> = rows
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))
            .collect();
        let owners: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT count(DISTINCT owner) FROM {schema}.mlc_slots"
        )))
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&pool)
        .await
        .unwrap();
        (per_slot, owners)
    });
    // Both replicas ran every slot's timer for about 6 s: at least 4 slots, each evaluated
    // (and its one result stored) exactly once, the rest counted as claimed elsewhere.
    assert!(per_slot.len() >= 4, "{per_slot:?}");
    assert!(
        per_slot.iter().all(|(_, n)| *n == 1),
        "doubled: {per_slot:?}"
    );
    assert!(elsewhere >= 3, "claimed elsewhere: {elsewhere}");
    assert!((1..=2).contains(&owners), "owners: {owners}");
}
