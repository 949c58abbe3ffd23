//! Every `test` block of the repository (the standard checks, the example pipeline, the
//! plugin examples and the semantics cases) gives on PostgreSQL, in a database collated
//! `en-US`, exactly the results it gives on the in-memory SQLite store: same verdicts, same
//! values, same slices, as JSON. This is `mlc test --db`, run the way a user would, with
//! pushdown where PostgreSQL can count.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlc_runtime::testing::{TestOutcome, run_tests_on};
use sqlx::{AssertSqlSafe, PgPool};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The sets of files loaded together, as `mlc test` would be given them.
fn sets() -> Vec<Vec<PathBuf>> {
    let mut sets = vec![
        vec![root().join("checks")],
        vec![root().join("examples/pipeline")],
    ];
    for dir in ["examples/plugins", "tests/cases/semantics"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "mlc"))
            .collect();
        entries.sort();
        sets.extend(entries.into_iter().map(|p| vec![p]));
    }
    sets
}

fn summary(t: &TestOutcome) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "file": t.file,
        "error": t.error,
        "asserts": t.asserts.iter().map(|a| (a.text.clone(), a.ok)).collect::<Vec<_>>(),
        "results": t.results.iter().map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.to_json_line()).unwrap()
        }).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_test_block_gives_on_postgres_what_it_gives_in_memory() {
    let base = std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let admin = PgPool::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL for tests must be reachable at {base}: {e}"));
    let db = format!("mlc_cases_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!(
            "CREATE DATABASE {db} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' \
             TEMPLATE template0"
        ),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    let mut compared = 0;
    let mut results = 0;
    for paths in sets() {
        let rules = mlc_runtime::rules::load_rules(&paths);
        assert!(!rules.has_errors(), "{paths:?}: {}", rules.render(false));
        let program = Arc::new(rules.program.clone());
        let memory = run_tests_on(program.clone(), &rules.rules_version, None).await;
        let postgres = run_tests_on(program, &rules.rules_version, Some(&url)).await;
        assert_eq!(memory.len(), postgres.len());
        for (m, p) in memory.iter().zip(&postgres) {
            assert!(m.ok(), "{paths:?}: {} fails in memory", m.name);
            assert_eq!(summary(m), summary(p), "{paths:?}");
            compared += 1;
            results += m.results.len();
        }
    }
    assert!(compared >= 40, "only {compared} test blocks found");
    assert!(results >= 100, "only {results} results compared");
    // Every test dropped the schema it made.
    let check = PgPool::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'mlc\\_test\\_%'",
    )
    .fetch_one(&check)
    .await
    .unwrap();
    assert_eq!(left, 0);
    check.close().await;
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)")))
        .execute(&admin)
        .await
        .unwrap();
}
