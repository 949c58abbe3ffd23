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
    /// Print, instead of plans, the PostgreSQL statements that make each component's table,
    /// for a store where tables are made beforehand (docs/operations.md#sharded-postgresql).
    #[arg(long)]
    pub ddl: bool,
    /// With `--ddl`: the coordinator's tables, partitioned by key over these `postgres_fdw`
    /// servers (comma-separated), one foreign partition each.
    #[arg(
        long,
        value_name = "SERVER,...",
        value_delimiter = ',',
        requires = "ddl"
    )]
    pub shards: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = mlc_runtime::rules::load_rules(&args.paths);
    if rules.has_errors() {
        eprint!("{}", rules.render(std::io::stderr().is_terminal()));
        eprintln!("{}", rules.summary());
        return Ok(ExitCode::from(2));
    }
    if args.ddl {
        for s in &args.shards {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                anyhow::bail!(
                    "`{s}` is not a server name mlc writes: use letters, digits and `_` (the name given to CREATE SERVER)"
                );
            }
        }
        let mut out = String::new();
        for c in &rules.program.components {
            out.push_str(&format!("-- component {}\n", c.name));
            out.push_str(&mlc_store::postgres_ddl(c, &args.shards));
        }
        return emit(&out);
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
    let mut out = String::new();
    for (i, c) in checks.enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let text = c.to_string();
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        if let Some(p) = mlc_runtime::exec::explain_pushdown(&rules.program, c, args.verbose) {
            out.push_str(&p);
        }
    }
    emit(&out)
}

/// Writes `out` to standard output; a reader that stopped early (`| head`) is not an error.
fn emit(out: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
