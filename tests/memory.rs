//! Memory of a streamed evaluation against the size of its window (issue 20's memory test):
//! a window ten times larger raises the peak by what the exact states need, not by its rows.
//!
//! Two stores, of N and 10N rows over the same 8 days, evaluated by `mlc check` with small
//! time slices (`--slice-cells`), each run reporting its peak resident memory
//! (`MLC_REPORT_PEAK_MEMORY`). The bound derived, per check:
//! - counts, null rates and sums over eight columns keep a few numbers per slice whatever the
//!   rows: the peaks may differ by allocator noise only (under `SLACK`), while holding the
//!   larger window's eight columns would take 9N x 8 columns x 8 bytes more (58 MB here);
//! - `quantile` keeps its column's values, 8 bytes a row, in a vector that doubles as it
//!   grows (the old and the new room, up to 3 x the values, are held at the copy): the peaks
//!   may differ by three times the extra rows' values (3 x 9N x 8 bytes, 21 MB) plus
//!   `SLACK`, not by the window's columns.

#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::path::Path;
use std::process::Command;

const MLC: &str = env!("CARGO_BIN_EXE_mlc");
const N: usize = 100_000;
/// What allocator and runtime noise may add between two runs (thread stacks, the heaps of
/// the threads that happened to allocate): up to 13 MiB seen between the smallest peaks of
/// two runs each. Reading the larger window whole adds 62 MiB (`--slice-cells` above its
/// size), which this test then fails.
const SLACK: u64 = 24 << 20;

const CHECKS: &str = r#"
component events {
  key id
  time ts
  fields {
    f0: float
    f1: float
    f2: float
    f3: float
    f4: float
    f5: float
    f6: float
    f7: float
  }
}
check counts {
  on events
  window 8d
  expect count(f0 < 0 or f1 < 0 or f2 < 0 or f3 < 0) == 0
  expect count(f4 < 0 or f5 < 0 or f6 < 0 or f7 < 0) == 0
  expect null_rate(f0) < 0.5
  expect sum(f7) > 0
}
check values {
  on events
  window 8d
  expect quantile(f3, 0.5) > 0
}
"#;

fn write_rows(path: &Path, rows: usize) {
    let mut out = String::with_capacity(rows * 80);
    out.push_str("id,ts,f0,f1,f2,f3,f4,f5,f6,f7\n");
    let span = 8 * 86_400_000_000u64;
    for i in 0..rows {
        let us = (i as u64) * (span / rows as u64);
        let (s, frac) = (us / 1_000_000, us % 1_000_000);
        let (d, rem) = (s / 86_400, s % 86_400);
        out.push_str(&format!(
            "r{i},2026-03-{:02}T{:02}:{:02}:{:02}.{frac:06}Z",
            1 + d,
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        ));
        for c in 0..8u64 {
            let v = ((i as u64).wrapping_mul(2654435761).wrapping_add(c * 97) % 10_000) as f64;
            out.push_str(&format!(",{}", v / 7.0));
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// Peak resident memory of `mlc check` of one check, in bytes.
fn peak(checks: &Path, db: &str, check: &str) -> u64 {
    let out = Command::new(MLC)
        .args([
            "check",
            checks.to_str().unwrap(),
            "--db",
            db,
            "--check",
            check,
            "--at",
            "2026-03-09T00:00:00Z",
            "--format",
            "json",
            "--slice-cells",
            "40000",
        ])
        .env("MLC_REPORT_PEAK_MEMORY", "1")
        .env_remove("MLC_DB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak resident memory: "))
        .unwrap_or_else(|| panic!("no peak reported: {stderr}"));
    let kib: u64 = line.trim_end_matches(" kB").trim().parse().unwrap();
    kib * 1024
}

#[test]
fn a_window_ten_times_larger_holds_what_its_states_need() {
    let dir = tempfile::tempdir().unwrap();
    let checks = dir.path().join("checks.mlc");
    std::fs::write(&checks, CHECKS).unwrap();
    let mut peaks = Vec::new();
    for rows in [N, 10 * N] {
        let csv = dir.path().join(format!("events{rows}.csv"));
        write_rows(&csv, rows);
        let db = format!("sqlite://{}/s{rows}.db", dir.path().display());
        let out = Command::new(MLC)
            .args(["ingest", "--checks", checks.to_str().unwrap(), "--db", &db])
            .args(["events", csv.to_str().unwrap()])
            .env_remove("MLC_DB")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The smallest of three runs: a run's peak can only be raised by noise.
        let run = |check| (0..3).map(|_| peak(&checks, &db, check)).min().unwrap();
        peaks.push((run("counts"), run("values")));
    }
    let (small, large) = (peaks[0], peaks[1]);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "counts: {:.1} -> {:.1} MiB; values: {:.1} -> {:.1} MiB",
        mib(small.0),
        mib(large.0),
        mib(small.1),
        mib(large.1)
    );
    assert!(
        large.0 <= small.0 + SLACK,
        "counts over 10x the rows peaked at {:.1} MiB against {:.1} MiB: more than the \
         constant state and {:.0} MiB of noise",
        mib(large.0),
        mib(small.0),
        mib(SLACK)
    );
    let values = (3 * 9 * N * 8) as u64;
    assert!(
        large.1 <= small.1 + values + SLACK,
        "quantile over 10x the rows peaked at {:.1} MiB against {:.1} MiB: more than the \
         room of the extra rows' values ({:.1} MiB) and {:.0} MiB of noise",
        mib(large.1),
        mib(small.1),
        mib(values),
        mib(SLACK)
    );
}
