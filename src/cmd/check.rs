//! `mlc check`: evaluate the checks once at a time `T` and print the results; exit 0 when
//! nothing failed, 1 on a `fail` or `error` of severity warning or critical, 2 when the
//! rules are invalid or the command is misused.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mlc_runtime::exec::Executor;
use mlc_runtime::results::{CheckResult, render_junit, render_table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One result object per line (docs/evaluation.md#results).
    Json,
    /// JUnit XML for CI systems.
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.mlc` files or folders (every `*.mlc` below them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Evaluation time: RFC 3339 with an offset (`2026-03-01T12:00:00Z`), a date (midnight
    /// UTC), epoch seconds, `now` or a time relative to it (`now-14d`).
    #[arg(long, default_value = "now")]
    pub at: String,
    /// Evaluate only this check (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The store: `sqlite://PATH` (or a bare file path) or `postgres://...`.
    #[arg(long, env = "MLC_DB", default_value = "sqlite://mlc.db")]
    pub db: String,
    /// The most results (slices times `each` columns) one check may give per evaluation; a
    /// check past it is one `error` result (a `group by` over an id would make one per row).
    #[arg(long, env = "MLC_MAX_SERIES_PER_CHECK",
          default_value_t = mlc_engine::eval::check::DEFAULT_MAX_SERIES, value_parser = parse_max_series)]
    pub max_series_per_check: usize,
    /// The most values (rows times columns) of a window held at a time: checks without a
    /// join read their windows in time slices of about this many values (less memory, more
    /// reads when smaller).
    #[arg(long, env = "MLC_SLICE_CELLS", default_value_t = mlc_runtime::exec::SLICE_CELLS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub slice_cells: u64,
}

/// `--max-series-per-check`: a whole number of results, at least 1.
pub fn parse_max_series(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a limit: give a whole number of results, at least 1"
        )),
    }
}

/// Loads the rules, refusing invalid ones (exit 2) and unknown `--check` names.
pub fn load(paths: &[PathBuf], checks: &[String]) -> Result<mlc_runtime::rules::Rules, ExitCode> {
    let rules = mlc_runtime::rules::load_rules(paths);
    if rules.has_errors() {
        eprint!("{}", rules.render(std::io::stderr().is_terminal()));
        eprintln!("{}", rules.summary());
        return Err(ExitCode::from(2));
    }
    if let Err(e) = rules.require_checks(checks.iter().map(String::as_str)) {
        eprintln!("error: {e}");
        return Err(ExitCode::from(2));
    }
    Ok(rules)
}

/// Opens an existing store (a missing one is an error naming `--db`, never created empty)
/// and declares the rules' components in it (new fields become columns).
pub async fn open_store(
    db: &str,
    program: &mlc_engine::plan::Program,
) -> anyhow::Result<mlc_store::Store> {
    let store = mlc_store::Store::open_existing(db).await?;
    for c in &program.components {
        if let Err(e) = store.ensure_component(c).await {
            // Checks on this component report the problem as `error`; the rest still run.
            eprintln!("warning: component `{}`: {e}", c.name);
        }
    }
    Ok(store)
}

/// The current time in microseconds since the epoch, what `now` means in a time argument.
pub fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Exit 1 when a result is a `fail` or `error` of severity warning or critical.
pub fn exit_code(results: &[CheckResult]) -> ExitCode {
    if results.iter().any(CheckResult::is_alarming) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = match load(&args.paths, &args.checks) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let at_us = match mlc_runtime::time::parse_time(&args.at, now_us()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --at {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(async {
        let store = open_store(&args.db, &rules.program).await?;
        let exec = Executor::new(
            store.clone(),
            Arc::new(rules.program.clone()),
            rules.rules_version.clone(),
        )
        .with_max_series(args.max_series_per_check)
        .with_slice_cells(args.slice_cells);
        let only = (!args.checks.is_empty()).then_some(args.checks.as_slice());
        let results = exec.evaluate_all(at_us, only).await;
        store.close().await;
        anyhow::Ok(results)
    })?;
    match args.format {
        Format::Table => print!("{}", render_table(&results)),
        Format::Json => {
            for r in &results {
                println!("{}", r.to_json_line());
            }
        }
        Format::Junit => print!("{}", render_junit(&results)),
    }
    Ok(exit_code(&results))
}
