//! `mlc fmt`: rewrite rule files in canonical form; `--check` only lists what would change.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.mlc` files or folders.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write nothing; list the files that are not formatted and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = mlc_runtime::rules::fmt_paths(&args.paths, args.check);
    if !report.diagnostics.is_empty() {
        eprint!(
            "{}",
            mlc_grammar::render(
                &report.diagnostics,
                &report.sources,
                std::io::stderr().is_terminal()
            )
        );
    }
    for name in &report.changed {
        if args.check {
            println!("{name}");
        } else {
            eprintln!("formatted {name}");
        }
    }
    if report.has_errors() {
        return Ok(ExitCode::from(2));
    }
    if args.check && !report.changed.is_empty() {
        eprintln!(
            "{} of {} files would be reformatted; run `mlc fmt` on them",
            report.changed.len(),
            report.files
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
