//! `mlc prune`: delete records older than an age, in bounded batches.

use std::process::ExitCode;

use anyhow::Context;
use mlc_store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Delete records whose event time is older than this (`90d`, `12w`, `36h`).
    #[arg(long, value_parser = parse_age)]
    older_than: u64,
    /// Only this component (default: every component).
    #[arg(long)]
    component: Option<String>,
    /// The store: `sqlite://PATH` (or a bare file path) or `postgres://...`.
    #[arg(long, env = "MLC_DB", default_value = "sqlite://mlc.db")]
    db: String,
    /// Records deleted per transaction.
    #[arg(long, default_value_t = 10_000, hide = true)]
    batch_rows: u64,
}

fn parse_age(s: &str) -> Result<u64, String> {
    mlc_store::parse_duration_secs(s)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open_existing(&args.db).await?;
        let age_us = i64::try_from(args.older_than.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
        let before = jiff::Timestamp::now()
            .as_microsecond()
            .saturating_sub(age_us);
        let n = store
            .prune(args.component.as_deref(), before, args.batch_rows)
            .await?;
        let cutoff = jiff::Timestamp::from_microsecond(before)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| before.to_string());
        println!("deleted {n} records older than {cutoff}");
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
