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
    match mlc_engine::explain::explain(&rules.program, args.check.as_deref()) {
        Some(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let names: Vec<&str> = rules
                .program
                .checks
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            anyhow::bail!(
                "no check named `{}` in the rules; the checks are: {}",
                args.check.unwrap_or_default(),
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
    }
}
