//! `mlc ingest`: load records from files or stdin into a component, print the counts.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use mlc_store::ingest::{Format, IngestOptions, IngestReport, Input, Progress, ingest};
use mlc_store::{ComponentSchema, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checks (file or folder) declaring the component; default: the schema the store last knew.
    #[arg(long)]
    checks: Option<PathBuf>,
    /// The store: `sqlite://PATH` (or a bare file path) or `postgres://...`.
    #[arg(long, env = "MLC_DB", default_value = "sqlite://mlc.db")]
    db: String,
    /// Input format when the file extension does not tell (always needed for `-`).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Records per transaction.
    #[arg(long, default_value_t = 50_000, hide = true)]
    batch_rows: usize,
    /// The component the records belong to.
    component: String,
    /// CSV (header row), JSON lines or Parquet files; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<String>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // A store this command creates and then stores nothing in is removed again: a failed
    // first ingest must not leave an empty database that later commands take for real.
    let new_file = mlc_store::sqlite_file(&args.db).filter(|p| !p.exists());
    let (result, stored) = runtime.block_on(run_async(args));
    if let Some(path) = new_file
        && !stored
        && !matches!(&result, Ok(c) if *c == ExitCode::SUCCESS)
        && let Err(e) = mlc_store::remove_sqlite_store(&path)
    {
        eprintln!(
            "warning: could not remove the empty store `{}`: {e}",
            path.display()
        );
    }
    result
}

/// The rules of `--checks`, refused with their diagnostics when they do not lint.
fn checked_rules(path: &std::path::Path) -> anyhow::Result<mlc_runtime::rules::Rules> {
    let rules = mlc_runtime::rules::load_rules(&[path.to_path_buf()]);
    if rules.has_errors() {
        eprint!("{}", rules.render(false));
        bail!(
            "`--checks {}` does not lint; fix the rules first (`mlc lint {}`)",
            path.display(),
            path.display()
        );
    }
    Ok(rules)
}

async fn schema_for(
    args: &Args,
    rules: Option<&mlc_runtime::rules::Rules>,
    store: &Store,
) -> anyhow::Result<ComponentSchema> {
    if let (Some(path), Some(rules)) = (&args.checks, rules) {
        // The declaration in the rules wins: it is (re)declared in the store, which adds new
        // fields and refuses a changed type with the fix spelled out.
        let Some(schema) = rules.program.component(&args.component).cloned() else {
            let known: Vec<String> = rules
                .program
                .components
                .iter()
                .map(|c| format!("`{}`", c.name))
                .collect();
            bail!(
                "`--checks {}` declares no component `{}` (it declares {})",
                path.display(),
                args.component,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        };
        store.ensure_component(&schema).await?;
        return Ok(schema);
    }
    match store.component(&args.component).await {
        Ok(s) => Ok(s),
        Err(mlc_store::StoreError::UnknownComponent(_)) => {
            let known: Vec<String> = store
                .components()
                .await?
                .into_iter()
                .map(|c| format!("`{}`", c.name))
                .collect();
            let known = if known.is_empty() {
                "it knows none yet".to_string()
            } else {
                format!("it knows {}", known.join(", "))
            };
            bail!(
                "the store at `{}` has no component `{}` ({known}); pass `--checks PATH` with its `component` declaration",
                args.db,
                args.component
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The command's outcome, and whether any record (accepted or quarantined) was stored.
async fn run_async(args: Args) -> (anyhow::Result<ExitCode>, bool) {
    // Without `--checks` the component must already be in a store, so none is created; with
    // them, the rules are checked before the store is opened (and perhaps created).
    let rules = match &args.checks {
        Some(path) => match checked_rules(path) {
            Ok(r) => Some(r),
            Err(e) => return (Err(e), false),
        },
        None => None,
    };
    let opened = if rules.is_some() {
        Store::open(&args.db).await
    } else {
        Store::open_existing(&args.db).await
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => return (Err(e.into()), false),
    };
    let mut stored = false;
    let result = ingest_all(&args, rules.as_ref(), &store, &mut stored).await;
    store.close().await;
    (result, stored)
}

async fn ingest_all(
    args: &Args,
    rules: Option<&mlc_runtime::rules::Rules>,
    store: &Store,
    stored: &mut bool,
) -> anyhow::Result<ExitCode> {
    let schema = schema_for(args, rules, store).await?;
    let opts = IngestOptions {
        batch_rows: args.batch_rows.max(1),
        ..IngestOptions::default()
    };
    let mut inputs = Vec::new();
    for f in &args.files {
        let input = Input::from_arg(f);
        let format = match (args.format, &input) {
            (Some(fmt), _) => fmt,
            (None, Input::Path(p)) => Format::from_path(p).with_context(|| {
                format!("cannot tell the format of `{f}` from its extension; pass `--format csv|jsonl|parquet`")
            })?,
            (None, _) => bail!("reading standard input needs `--format csv|jsonl|parquet`"),
        };
        inputs.push((f, input, format));
    }
    let mut total = IngestReport::default();
    let mut all_complete = true;
    for (name, input, format) in inputs {
        let bar = progress_bar(&input);
        let progress = bar.clone().map(|bar| {
            Arc::new(move |p: Progress| {
                if let Some(t) = p.total_bytes {
                    bar.set_length(t);
                }
                bar.set_position(p.bytes_read);
                bar.set_message(format!("{} records", p.records));
            }) as mlc_store::ingest::ProgressFn
        });
        let report = ingest(store, &schema, input, format, &opts, progress).await?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        // An input of no records (an empty file, a header alone) is not an error, but say so.
        let none =
            report.accepted + report.duplicates + report.quarantined == 0 && report.error.is_none();
        println!(
            "{name}: {} accepted, {} duplicates, {} quarantined{}",
            report.accepted,
            report.duplicates,
            report.quarantined,
            if none { " (no records in it)" } else { "" }
        );
        for r in &report.reasons {
            println!("  quarantined: {r}");
        }
        if report.quarantined > report.reasons.len() as u64 {
            println!(
                "  … and {} more quarantined records (kept in the store's quarantine)",
                report.quarantined - report.reasons.len() as u64
            );
        }
        if let Some(e) = &report.error {
            eprintln!("error: {e}");
        }
        all_complete &= report.complete();
        *stored |= report.accepted + report.duplicates + report.quarantined > 0;
        total.add(&report, 0);
    }
    if args.files.len() > 1 {
        println!(
            "total: {} accepted, {} duplicates, {} quarantined",
            total.accepted, total.duplicates, total.quarantined
        );
    }
    Ok(if all_complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A byte-based progress bar on a terminal, for inputs large enough to wait for.
fn progress_bar(input: &Input) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let len = match input {
        Input::Path(p) => std::fs::metadata(p).ok()?.len(),
        _ => 0,
    };
    if matches!(input, Input::Path(_)) && len < (8 << 20) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}
