//! `mlc demo`: a self-contained run of the bundled example pipeline on an embedded store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mlc_demo::{DemoConfig, DemoOptions};

/// Generates 35 days of a credit-risk model's pipeline (inference requests, late labels,
/// offline re-scoring, training data, batch jobs, features) with ten injected faults,
/// stores them in a fresh SQLite file, evaluates the checks of examples/pipeline at the
/// end of the history and reports which faults the checks caught. Exit 0 when every
/// fault was caught and every healthy result passed, 1 otherwise.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SQLite store to create (`PATH` or `sqlite://PATH`); replaced on every run, and
    /// never a file that a demo did not write.
    #[arg(long, default_value = "mlc-demo.db")]
    db: String,
    /// Evaluation time (RFC 3339 with an offset, a date, epoch seconds or `now-1d`); the
    /// history ends just before it [default: now, rounded down to the hour].
    #[arg(long)]
    at: Option<String>,
    /// Seed of the generator: the same seed and time give the same records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Inference requests per day (the other components scale with it).
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u32).range(200..=200_000))]
    requests_per_day: u32,
    /// Evaluate the rules in this folder (e.g. an edited examples/pipeline) instead of the
    /// copy built into mlc.
    #[arg(long)]
    checks: Option<PathBuf>,
    /// Also write the generated records as CSV files (one per component) into this folder.
    #[arg(long)]
    export: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let at_us = match &args.at {
        Some(text) => mlc_runtime::time::parse_time(text, jiff::Timestamp::now().as_microsecond())
            .map_err(|e| anyhow::anyhow!("--at {e}"))?,
        None => {
            let now = jiff::Timestamp::now().as_microsecond();
            now - now.rem_euclid(mlc_demo::generate::HOUR)
        }
    };
    let db = PathBuf::from(args.db.strip_prefix("sqlite://").unwrap_or(&args.db));
    if args.db.contains("://") && !args.db.starts_with("sqlite://") {
        anyhow::bail!(
            "`mlc demo` creates an embedded SQLite store: give --db a file path, not `{}`",
            args.db
        );
    }
    let opts = DemoOptions {
        config: DemoConfig {
            seed: args.seed,
            at_us,
            requests_per_day: args.requests_per_day,
            ..DemoConfig::default()
        },
        db,
        checks: args.checks,
        export: args.export,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let mut stdout = std::io::stdout().lock();
    let outcome = runtime.block_on(mlc_demo::run(&opts, &mut stdout))?;
    Ok(if outcome.as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
