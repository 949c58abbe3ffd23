//! `mlc backfill`: evaluate the checks at every step of a past range and store the results
//! with the rules version, answering "when would this check have fired?". Exit codes as
//! `mlc check`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt;
use mlc_runtime::exec::{Executor, Prefetch};
use mlc_runtime::results::{CheckResult, stored};
use mlc_runtime::time::{parse_duration, parse_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary per check: how many evaluations passed or failed, and when.
    Table,
    /// Every result, one JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.mlc` files or folders (every `*.mlc` below them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// First evaluation time: RFC 3339 with an offset, a date (midnight UTC), epoch seconds,
    /// `now` or `now-30d`.
    #[arg(long)]
    pub from: String,
    /// Last evaluation time (same forms as --from), included when a step lands on it.
    #[arg(long)]
    pub to: String,
    /// Time between evaluations, e.g. `1h` or `1d`.
    #[arg(long)]
    pub step: String,
    /// Backfill only this check (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Evaluate without storing the results.
    #[arg(long)]
    pub dry_run: bool,
    /// The store: `sqlite://PATH` (or a bare file path) or `postgres://...`.
    #[arg(long, env = "MLC_DB", default_value = "sqlite://mlc.db")]
    pub db: String,
    /// The most results (slices times `each` columns) one check may give per evaluation; a
    /// check past it is one `error` result (a `group by` over an id would make one per row).
    #[arg(long, env = "MLC_MAX_SERIES_PER_CHECK",
          default_value_t = mlc_engine::eval::check::DEFAULT_MAX_SERIES, value_parser = super::check::parse_max_series)]
    pub max_series_per_check: usize,
    /// The most values (rows times columns) read once for all the times; reads past it are
    /// made at each time instead, the joined components' histories kept first (0: none).
    #[arg(long, env = "MLC_PREFETCH_CELLS", default_value_t = mlc_runtime::exec::PREFETCH_MAX_CELLS)]
    pub prefetch_cells: u64,
    /// The most values (rows times columns) read at a time: a component whose join keys
    /// are looked up once for all the times is read in time slices of about this many
    /// values, each slice's keys looked up and then let go.
    #[arg(long, env = "MLC_SLICE_CELLS", default_value_t = mlc_runtime::exec::SLICE_CELLS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub slice_cells: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = match super::check::load(&args.paths, &args.checks) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let parsed = (|| -> Result<(i64, i64, u64), String> {
        let now = super::check::now_us();
        let from = parse_time(&args.from, now).map_err(|e| format!("--from {e}"))?;
        let to = parse_time(&args.to, now).map_err(|e| format!("--to {e}"))?;
        let step = parse_duration(&args.step).map_err(|e| format!("--step {e}"))?;
        if to < from {
            return Err("--to is before --from".into());
        }
        Ok((from, to, step))
    })();
    let (from, to, step) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let step_us = i64::try_from(step)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000);
    let times: Vec<i64> =
        std::iter::successors(Some(from), |t| t.checked_add(step_us).filter(|n| *n <= to))
            .collect();
    let bar = indicatif::ProgressBar::new(times.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} evaluations  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let all = runtime.block_on(async {
        let store = super::check::open_store(&args.db, &rules.program).await?;
        let exec = Executor::new(
            store.clone(),
            Arc::new(rules.program.clone()),
            rules.rules_version.clone(),
        )
        .with_max_series(args.max_series_per_check)
        .with_prefetch_cells(args.prefetch_cells)
        .with_slice_cells(args.slice_cells);
        let only = (!args.checks.is_empty()).then_some(args.checks.as_slice());
        // One read of every component for all the times when it fits in memory; else one per
        // group of consecutive times, each reading the joined rows of its own keys only.
        bar.set_message("reading history");
        let groups = exec.prefetch_groups(&times, only).await.unwrap_or(1);
        let per_group = times.len().div_ceil(groups.max(1)).max(1);
        let mut all: Vec<CheckResult> = Vec::new();
        let mut told = false;
        for group in times.chunks(per_group) {
            let prefetch = match groups {
                1 => exec.prefetch(group, only).await,
                _ if group.len() > 1 => exec.prefetch_keyed(group, only).await,
                _ => None,
            };
            let per_step = prefetch.as_ref().map(Prefetch::read_per_step);
            if !told && (per_step.is_some_and(|p| !p.is_empty()) || groups > 1) {
                told = true;
                let mut what = Vec::new();
                if groups > 1 && per_group > 1 {
                    what.push(format!(
                        "read in {} groups of up to {per_group} steps, the joined rows of each group's keys once",
                        times.len().div_ceil(per_group)
                    ));
                }
                match per_step {
                    Some(p) if !p.is_empty() => {
                        what.push(format!("{} read at each step", p.join(", ")))
                    }
                    Some(_) => {}
                    None => what.push("every read made at each step".to_string()),
                }
                let what = what.join("; ");
                bar.suspend(|| {
                    eprintln!(
                        "backfill: {what}: past --prefetch-cells {}",
                        args.prefetch_cells
                    )
                });
            }
            // Evaluation times are independent: a few run at once (each on blocking threads),
            // so both cores work; results still come, and are stored, in time order.
            let parallel = mlc_engine::eval::cores().clamp(1, 8);
            let (exec, prefetch) = (&exec, prefetch.as_ref());
            let mut evaluations = futures::stream::iter(group.iter().copied())
                .map(|t| async move { (t, exec.evaluate_all_with(t, only, prefetch).await) })
                .buffered(parallel);
            while let Some((t, results)) = evaluations.next().await {
                bar.set_message(mlc_runtime::results::time_text(t));
                if !args.dry_run {
                    let rows: Vec<_> = results.iter().map(|r| stored(r, t)).collect();
                    store.insert_results(&rows).await?;
                }
                all.extend(results);
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        store.close().await;
        anyhow::Ok(all)
    })?;
    match args.format {
        Format::Json => {
            for r in &all {
                println!("{}", r.to_json_line());
            }
        }
        Format::Table => print!(
            "{}",
            mlc_runtime::results::render_backfill(&all, times.len())
        ),
    }
    if !args.dry_run {
        eprintln!(
            "stored {} results of {} evaluations ({})",
            all.len(),
            times.len(),
            rules.rules_version
        );
    }
    Ok(super::check::exit_code(&all))
}
