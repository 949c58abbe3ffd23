//! `mlc lint`: parse and check rule files; diagnostics on stderr, exit 0 valid / 2 invalid.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.mlc` files or folders (every `*.mlc` below them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = mlc_runtime::rules::load_rules(&args.paths);
    let color = std::io::stderr().is_terminal();
    eprint!("{}", rules.render(color));
    eprintln!("{}", rules.summary());
    Ok(if rules.has_errors() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
