//! Sharded PostgreSQL (docs/operations.md#sharded-postgresql): a coordinator whose component
//! tables are partitioned by key over `postgres_fdw` foreign tables on two more servers,
//! made with the statements `mlc explain --ddl` prints. The example pipeline's records are
//! ingested through the coordinator; every check's result equals the one a single PostgreSQL
//! server, and SQLite, give for the same records, re-sent records are stored once (by the shards' unique
//! indexes), pruning deletes what it deletes on one server, and `EXPLAIN (VERBOSE)` of a
//! pushed-down count shows the aggregate running on each shard.
//!
//! Needs the servers `.ci/run` starts: the coordinator at `MLC_TEST_POSTGRES` and the shards
//! at `MLC_TEST_SHARDS` (comma-separated; default ports 5433 and 5434).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::str::FromStr;
use std::sync::Arc;

use mlc_demo::generate::{DAY, DemoConfig, generate};
use mlc_demo::load::store_table;
use mlc_runtime::exec::Executor;
use mlc_store::{Store, SumsQuery};
use serde_json::Value as Json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, PgPool};

const SHARDS: &str =
    "postgres://postgres@127.0.0.1:5433/test,postgres://postgres@127.0.0.1:5434/test";

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').unwrap().0;
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn admin(url: &str) -> PgPool {
    PgPool::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL for the sharded test must be reachable at {url} (.ci/run starts it): {e}"
        )
    })
}

async fn run(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn fresh_db(admin: &PgPool, db: &str) {
    run(admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    run(admin, &format!("CREATE DATABASE {db}")).await;
}

/// Every check of the executor's program at `at`, as result JSON.
async fn results(exec: &Executor, at: i64) -> Vec<Json> {
    let plans: Vec<_> = exec.program().checks.iter().collect();
    exec.evaluate(&plans, at)
        .await
        .iter()
        .map(|r| serde_json::from_str(&r.to_json_line()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_postgres_gives_what_one_server_gives() {
    let base = std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let shards: Vec<String> = std::env::var("MLC_TEST_SHARDS")
        .unwrap_or_else(|_| SHARDS.to_string())
        .split(',')
        .map(str::to_string)
        .collect();
    let db = format!("mlc_shards_{}", std::process::id());
    let single_db = format!("mlc_single_{}", std::process::id());
    let coordinator_admin = admin(&base).await;
    fresh_db(&coordinator_admin, &db).await;
    fresh_db(&coordinator_admin, &single_db).await;
    let rules = mlc_demo::rules::load(None).unwrap();
    let program = Arc::new(rules.program);

    // Each shard: the tables as one server has them (with their unique indexes).
    let mut shard_pools = Vec::new();
    let mut servers = Vec::new();
    for (i, url) in shards.iter().enumerate() {
        let shard_admin = admin(url).await;
        fresh_db(&shard_admin, &db).await;
        shard_admin.close().await;
        let pool = admin(&with_db(url, &db)).await;
        for c in &program.components {
            run(&pool, &mlc_store::postgres_ddl(c, &[])).await;
        }
        shard_pools.push(pool);
        servers.push((format!("shard{}", i + 1), url.clone()));
    }
    // The coordinator: one foreign server per shard, and the partitioned tables.
    let co_url = with_db(&base, &db);
    let co_pool = admin(&co_url).await;
    run(&co_pool, "CREATE EXTENSION postgres_fdw").await;
    for (name, url) in &servers {
        let o = PgConnectOptions::from_str(url).unwrap();
        run(
            &co_pool,
            &format!(
                "CREATE SERVER {name} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{}', port '{}', dbname '{db}', async_capable 'true', batch_size '1000'); \
                 CREATE USER MAPPING FOR CURRENT_USER SERVER {name} OPTIONS (user '{}')",
                o.get_host(),
                o.get_port(),
                o.get_username()
            ),
        )
        .await;
    }
    let names: Vec<String> = servers.iter().map(|(n, _)| n.clone()).collect();
    for c in &program.components {
        run(&co_pool, &mlc_store::postgres_ddl(c, &names)).await;
    }

    let co = Store::open(&co_url).await.unwrap();
    let single = Store::open(&with_db(&base, &single_db)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lite = Store::open(&format!("sqlite://{}/one.db", dir.path().display()))
        .await
        .unwrap();
    let config = DemoConfig {
        requests_per_day: 200,
        ..DemoConfig::default()
    };
    let data = generate(&config);
    for t in &data.tables {
        let schema = program.component(t.component).unwrap();
        let a = store_table(&co, schema, t).await.unwrap();
        let b = store_table(&single, schema, t).await.unwrap();
        let c = store_table(&lite, schema, t).await.unwrap();
        assert_eq!(a, b, "{}", t.component);
        assert_eq!(a, c, "{}", t.component);
        assert_eq!(a.accepted as usize, t.rows(), "{}", t.component);
    }
    // The rows live on the shards, on both, and a re-sent table is stored once: each shard's
    // unique index refuses the copies, through the coordinator.
    for pool in &shard_pools {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM mlc_c_inference")
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(n > 0);
    }
    let inference = data.table("inference").unwrap();
    let schema = program.component("inference").unwrap();
    let again = store_table(&co, schema, inference).await.unwrap();
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates as usize, inference.rows());

    // Every check, at the end of the history and two days before: the same results on the
    // shards, on one server and on SQLite.
    let on_co = Executor::new(co.clone(), program.clone(), "v");
    let on_single = Executor::new(single.clone(), program.clone(), "v");
    let on_lite = Executor::new(lite.clone(), program.clone(), "v");
    for at in [config.at_us - 2 * DAY, config.at_us] {
        let want = results(&on_lite, at).await;
        assert_eq!(want, results(&on_single, at).await, "at {at}");
        let got = results(&on_co, at).await;
        // One result per check and slice.
        assert!(want.len() >= program.checks.len());
        assert_eq!(want.len(), got.len());
        for (w, g) in want.iter().zip(&got) {
            assert_ne!(w["status"], "error", "{w}");
            assert_eq!(w, g, "at {at}");
        }
    }
    assert!(on_co.pushed_down() > 0);
    assert_eq!(on_co.pushed_down(), on_single.pushed_down());

    // A pushed-down count runs on the shards: one aggregate per shard, a string comparison
    // (byte order, `COLLATE "C"`) and a float one included, and its counts are one server's.
    let q = SumsQuery {
        group_by: vec!["country".into(), "device".into()],
        filter: Some(r#"("country" COLLATE "C" >= E'BR'::TEXT)"#.into()),
        terms: vec![None, Some(r#"("score" > 0.5::DOUBLE PRECISION)"#.into())],
        start_us: Some(config.at_us - 7 * DAY),
        end_us: config.at_us,
        max_groups: 1000,
    };
    let (mut got, sql) = co.row_sums("inference", &q).await.unwrap().unwrap();
    let (mut want, _) = single.row_sums("inference", &q).await.unwrap().unwrap();
    let order = |g: &mlc_store::SumsGroup| format!("{:?}", g.key);
    got.sort_by_key(order);
    want.sort_by_key(order);
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN (VERBOSE) {sql}")))
        .fetch_all(&co_pool)
        .await
        .unwrap();
    let plan = plan.join("\n");
    let on_shards = plan
        .lines()
        .filter(|l| l.contains("Relations: Aggregate on"))
        .count();
    assert_eq!(on_shards, shards.len(), "{plan}");
    let remote: Vec<&str> = plan.lines().filter(|l| l.contains("Remote SQL")).collect();
    assert_eq!(remote.len(), shards.len(), "{plan}");
    for l in remote {
        assert!(
            l.contains("count(*) FILTER") && l.contains("GROUP BY") && l.contains(">= 'BR'"),
            "{plan}"
        );
    }

    // PostgreSQL counts a range exactly for the executor's memory sizing, through the
    // coordinator as on one server.
    let (from, to) = (Some(config.at_us - 7 * DAY), config.at_us);
    let n = co.estimate_rows("inference", from, to).await.unwrap();
    assert_eq!(
        n,
        single.estimate_rows("inference", from, to).await.unwrap()
    );
    let outside: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM mlc_c_inference WHERE ts >= $1 AND ts < $2 AND (country COLLATE "C" < 'BR' OR country IS NULL)"#,
    )
    .bind(from.unwrap())
    .bind(to)
    .fetch_one(&co_pool)
    .await
    .unwrap();
    let counted: u64 = got.iter().map(|g| g.rows).sum();
    assert_eq!(n, Some(counted + outside as u64));

    // Pruning through the coordinator deletes what it deletes on one server (in batches
    // smaller than a shard's share).
    let before = config.at_us - 20 * DAY;
    let a = co.prune(Some("inference"), before, 500).await.unwrap();
    let b = single.prune(Some("inference"), before, 500).await.unwrap();
    assert_eq!(a, b);
    assert!(a > 0);
    assert_eq!(
        co.count("inference").await.unwrap(),
        single.count("inference").await.unwrap()
    );

    // A table made beforehand without a column mlc writes is refused at declaration, naming
    // the column and the statement that makes it right; nothing is written.
    run(
        &co_pool,
        r#"CREATE TABLE mlc_c_made (id TEXT COLLATE "C", ts BIGINT NOT NULL, __mlc_extra TEXT)"#,
    )
    .await;
    let made = mlc_store::ComponentSchema {
        name: "made".into(),
        key: "id".into(),
        time: "ts".into(),
        fields: vec![mlc_store::FieldSchema {
            name: "age".into(),
            ty: mlc_store::DataType::Int,
        }],
    };
    let err = co.ensure_component(&made).await.unwrap_err().to_string();
    assert!(
        err.contains("has no column `age` (bigint)") && err.contains("mlc explain --ddl"),
        "{err}"
    );
    run(&co_pool, "ALTER TABLE mlc_c_made ADD COLUMN age TEXT").await;
    let err = co.ensure_component(&made).await.unwrap_err().to_string();
    assert!(
        err.contains("holds column `age` as text, not bigint"),
        "{err}"
    );

    co.close().await;
    single.close().await;
    co_pool.close().await;
    for pool in shard_pools {
        pool.close().await;
    }
    run(
        &coordinator_admin,
        &format!("DROP DATABASE {db} WITH (FORCE)"),
    )
    .await;
    run(
        &coordinator_admin,
        &format!("DROP DATABASE {single_db} WITH (FORCE)"),
    )
    .await;
    for url in &shards {
        let shard_admin = admin(url).await;
        run(&shard_admin, &format!("DROP DATABASE {db} WITH (FORCE)")).await;
    }
}
