//! `mlc test`: run the `test` blocks of `.mlc` files, each on its own in-memory store;
//! exit 0 when every assertion holds, 1 otherwise, 2 when the rules are invalid.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `.mlc` files or folders (every `*.mlc` below them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Run each test in a fresh schema of this PostgreSQL database (made and dropped by the
    /// test) instead of an in-memory store: the checks' results on PostgreSQL, pushdown
    /// included. Not read from MLC_DB.
    #[arg(long, value_name = "postgres://...")]
    pub db: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(db) = &args.db {
        mlc_runtime::testing::check_test_db(db).map_err(anyhow::Error::msg)?;
    }
    let rules = match super::check::load(&args.paths, &[]) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if rules.program.tests.is_empty() {
        eprintln!("no `test` blocks found under the given paths");
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let outcomes = runtime.block_on(mlc_runtime::testing::run_tests_on(
        Arc::new(rules.program.clone()),
        &rules.rules_version,
        args.db.as_deref(),
    ));
    print!("{}", mlc_runtime::testing::render(&outcomes));
    Ok(if outcomes.iter().all(|t| t.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
