//! `mlc explain`: print each check's plan (what it reads, its window, aggregates, asserts).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.mlc` files or folders.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Explain only this check.
    #[arg(long = "check", value_name = "NAME")]
    pub check: Option<String>,
    /// Also print the SQL a check runs on PostgreSQL where its counts are pushed down.
    #[arg(long)]
    pub verbose: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = mlc_runtime::rules::load_rules(&args.paths);
    if rules.has_errors() {
        eprint!("{}", rules.render(std::io::stderr().is_terminal()));
        eprintln!("{}", rules.summary());
        return Ok(ExitCode::from(2));
    }
    rules
        .require_checks(args.check.as_deref())
        .map_err(anyhow::Error::msg)?;
    // Each check's plan (as `mlc_engine::explain` prints it), then what PostgreSQL computes
    // of it (docs/evaluation.md#pushdown).
    let checks = rules
        .program
        .checks
        .iter()
        .filter(|c| args.check.as_deref().is_none_or(|n| c.name == n));
    for (i, c) in checks.enumerate() {
        if i > 0 {
            println!();
        }
        let text = c.to_string();
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        if let Some(p) = mlc_runtime::exec::explain_pushdown(&rules.program, c, args.verbose) {
            print!("{p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
