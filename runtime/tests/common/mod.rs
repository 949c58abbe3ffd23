//! What the runtime's integration tests share: a seeded generator, ingest of JSON lines into
//! the `events` component, and an executor's results as JSON.

#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::sync::Arc;

use mlc_engine::plan::Program;
use mlc_runtime::exec::Executor;
use mlc_store::Store;
use mlc_store::ingest::{Format, IngestOptions, Input, ingest};
use serde_json::Value as Json;

/// xorshift64*: deterministic, so a failure names its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Ingests JSON lines into the `events` component of `program`; every line must be stored.
pub async fn put(store: &Store, program: &Program, lines: &[String]) {
    let schema = program.component("events").unwrap();
    let body: Arc<[u8]> = lines.join("\n").into_bytes().into();
    let r = ingest(
        store,
        schema,
        Input::Bytes(body),
        Format::Jsonl,
        &IngestOptions::default(),
        None,
    )
    .await
    .unwrap();
    assert!(r.error.is_none(), "{r:?}");
}

/// Every check of the executor's program at `at`, as result JSON.
pub async fn results(exec: &Executor, at: i64) -> Vec<Json> {
    let plans: Vec<_> = exec.program().checks.iter().collect();
    exec.evaluate(&plans, at)
        .await
        .iter()
        .map(|r| serde_json::from_str(&r.to_json_line()).unwrap())
        .collect()
}
