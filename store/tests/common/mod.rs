//! Test harness: runs a test body against SQLite and the real PostgreSQL, each in a fresh
//! database (a temp file; a schema of its own, dropped afterwards).

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::FutureExt;
use mlc_store::{ComponentSchema, DataType, FieldSchema, Store};
use sqlx::Connection;

pub fn pg_url() -> String {
    std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `body` once per backend; PostgreSQL must answer (the tests never skip it).
pub async fn each_backend<F, Fut>(body: F)
where
    F: Fn(Store, tempfile::TempDir) -> Fut,
    Fut: Future<Output = ()>,
{
    // The database lives apart from the body's scratch directory, which a body that does not
    // use it drops at once.
    let db_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/store.db", db_dir.path().display());
    let store = Store::open(&url).await.unwrap();
    body(store.clone(), tempfile::tempdir().unwrap()).await;
    store.close().await;

    let schema = format!(
        "mlc_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let url = format!("{}?schema={schema}", pg_url());
    let store = Store::open(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL for tests must be reachable at MLC_TEST_POSTGRES ({}): {e}",
            pg_url()
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let result = AssertUnwindSafe(body(store.clone(), dir))
        .catch_unwind()
        .await;
    store.close().await;
    drop_schema(&schema).await;
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

pub async fn drop_schema(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

pub fn field(name: &str, ty: DataType) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        ty,
    }
}

/// The `inference` component of the spec, trimmed.
pub fn inference() -> ComponentSchema {
    ComponentSchema {
        name: "inference".into(),
        key: "request_id".into(),
        time: "ts".into(),
        fields: vec![
            field("age", DataType::Int),
            field("income", DataType::Float),
            field("country", DataType::String),
            field("approved", DataType::Bool),
            field("seen", DataType::Timestamp),
        ],
    }
}

pub fn write(dir: &tempfile::TempDir, name: &str, content: impl AsRef<[u8]>) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// `2026-03-01T00:00:00Z` in microseconds.
pub const T0: i64 = 1_772_323_200_000_000;
pub const HOUR: i64 = 3_600_000_000;

use arrow_array::Array;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};

pub fn ints(batches: &[RecordBatch], col: usize) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(col)
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn floats(batches: &[RecordBatch], col: usize) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(col)
                .as_primitive::<Float64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn strs(batches: &[RecordBatch], col: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(col)
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn bools(batches: &[RecordBatch], col: usize) -> Vec<Option<bool>> {
    batches
        .iter()
        .flat_map(|b| b.column(col).as_boolean().iter().collect::<Vec<_>>())
        .collect()
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

pub fn null_count(batches: &[RecordBatch], col: usize) -> usize {
    batches.iter().map(|b| b.column(col).null_count()).sum()
}

pub async fn ingest_file(
    store: &Store,
    schema: &ComponentSchema,
    path: &std::path::Path,
) -> mlc_store::ingest::IngestReport {
    use mlc_store::ingest::{Format, IngestOptions, Input, ingest};
    let format = Format::from_path(path).unwrap();
    ingest(
        store,
        schema,
        Input::Path(path.into()),
        format,
        &IngestOptions::default(),
        None,
    )
    .await
    .unwrap()
}
