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
    print!(
        "{}",
        mlc_engine::explain::explain(&rules.program, args.check.as_deref()).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
