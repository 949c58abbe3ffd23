//! The `mlc` command: argument parsing and wiring only; the work lives in the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mimalloc, built without transparent huge pages (`no_thp`, Cargo.toml): on VMs that hand
/// freed memory back to the host, faulting in fresh 2 MiB pages right after another process
/// freed memory cost W2 0.55-0.80 s instead of 0.24-0.39 s (bench/eval/results-2026-12-03f.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Monitoring for machine-learning pipelines: declarative checks over stored history.
#[derive(Debug, Parser)]
#[command(name = "mlc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check .mlc files: names, types, arities, plugins (exit 0 valid, 2 invalid).
    Lint(cmd::lint::Args),
    /// Rewrite .mlc files in canonical form (idempotent, comments kept).
    Fmt(cmd::fmt::Args),
    /// Print each check's plan.
    Explain(cmd::explain::Args),
    /// Load CSV, JSON lines or Parquet records into a component.
    Ingest(cmd::ingest::Args),
    /// Delete old records in bounded batches.
    Prune(cmd::prune::Args),
    /// Run the service: scheduled evaluation, HTTP API, Prometheus metrics, alerts, hot reload.
    Serve(cmd::serve::Args),
    /// Evaluate the checks once (exit 1 on a fail or error of severity warning or critical).
    Check(cmd::check::Args),
    /// Evaluate the checks at every step of a past range and store the results.
    Backfill(cmd::backfill::Args),
    /// Run the `test` blocks of .mlc files on in-memory stores.
    Test(cmd::test::Args),
    /// Run the bundled example pipeline, with injected faults, on an embedded store.
    Demo(cmd::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = tuning_from_env() {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Lint(args) => cmd::lint::run(args),
        Command::Fmt(args) => cmd::fmt::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Prune(args) => cmd::prune::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Backfill(args) => cmd::backfill::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Demo(args) => cmd::demo::run(args),
    };
    if std::env::var_os("MLC_REPORT_PEAK_MEMORY").is_some() {
        report_peak_memory();
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Settings read from the environment by every command (docs/operations.md).
fn tuning_from_env() -> anyhow::Result<()> {
    let bytes = |name: &str, default: usize| -> anyhow::Result<Option<usize>> {
        let Ok(v) = std::env::var(name) else {
            return Ok(None);
        };
        v.trim().parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "{name}={v:?} is not a number of bytes; set it to a whole number such as \
                 {default} (the default), or unset it"
            )
        })
    };
    let distinct = mlc_engine::functions::DEFAULT_DISTINCT_VALUES_BYTES;
    if let Some(n) = bytes("MLC_DISTINCT_VALUES_BYTES", distinct)? {
        mlc_engine::functions::set_distinct_values_bytes(n);
    }
    // Read by the SQLite store when it opens; checked here so that a typo is not ignored.
    bytes("MLC_SQLITE_MMAP_BYTES", 0)?;
    Ok(())
}

/// `MLC_REPORT_PEAK_MEMORY`: prints the process's peak resident memory (VmHWM, what
/// `/usr/bin/time` reports) on stderr as the command ends (docs/operations.md).
fn report_peak_memory() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status.lines().find(|l| l.starts_with("VmHWM:")) {
        Some(line) => {
            let kib = line.trim_start_matches("VmHWM:").trim();
            eprintln!("peak resident memory: {kib}");
        }
        None => eprintln!("peak resident memory: unknown (no VmHWM in /proc/self/status)"),
    }
}
