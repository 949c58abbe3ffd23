//! Helpers shared by the end-to-end tests (`mlc serve` as a process, stores, hostile input).
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `mlc serve` on the rules in `dir/rules` and the store `db`, on a free loopback
/// port, and waits until `/healthz` answers.
pub fn start_serve(dir: &Path, db: &str) -> (Child, SocketAddr) {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args(["serve", "--no-watch", "--checks"])
        .arg(dir.join("rules"))
        .arg("--db")
        .arg(db)
        .arg("--listen")
        .arg(addr.to_string())
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("http://{addr}/healthz")).send().is_err() {
        assert!(Instant::now() < deadline, "mlc serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

/// The PostgreSQL server the tests use (`.ci/run` starts one when none answers).
pub fn pg_url() -> String {
    std::env::var("MLC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Drops a test's PostgreSQL schema and everything in it.
pub fn drop_schema(schema: &str) {
    let out = Command::new("psql")
        .args([
            &pg_url(),
            "-qc",
            &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops `mlc serve` with SIGTERM and asserts it shut down cleanly (exit 0).
pub fn terminate(child: &mut Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
pub fn garbage(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}
