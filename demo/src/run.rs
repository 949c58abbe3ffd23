//! `mlc demo` end to end: rules, generated records, a fresh SQLite store, one evaluation
//! at the end of the history, and a report of what failed and why.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mlc_engine::plan::Program;
use mlc_store::Store;
use serde_json::Value as Json;

use super::DemoError;
use super::data::rfc3339;
use super::generate::{DemoConfig, generate};
use super::judge::{Verdict, judge, print_summary};
use super::load::store_table;
use mlc_runtime::exec::Executor;
use mlc_runtime::results::CheckResult;

/// What `mlc demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub config: DemoConfig,
    /// The SQLite file to create, replacing the one a previous demo left.
    pub db: PathBuf,
    /// Rules to run instead of the copy of examples/pipeline built into mlc.
    pub checks: Option<PathBuf>,
    /// Also write the generated records as `<component>.csv` into this folder.
    pub export: Option<PathBuf>,
}

/// What a demo run found.
#[derive(Debug)]
pub struct DemoOutcome {
    pub results: Vec<CheckResult>,
    pub verdicts: Vec<Verdict>,
    /// Every fault was caught and every healthy result passed.
    pub as_expected: bool,
    pub records: usize,
    pub rules_version: String,
}

/// The rules the demo evaluates: a program and where it came from.
pub struct Rules {
    pub program: Program,
    pub version: String,
    /// Shown to the user: the folder, or "built-in copy of examples/pipeline".
    pub origin: String,
}

pub async fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    let at = opts.config.at_us;
    let w = |e: io::Error| DemoError::Output(e);

    let rules = super::rules::load(opts.checks.as_deref())?;
    writeln!(
        out,
        "mlc demo: a credit-risk model's pipeline, {} days of history up to {} (seed {})",
        opts.config.days,
        rfc3339(at),
        opts.config.seed
    )
    .map_err(w)?;
    writeln!(
        out,
        "rules: {} ({} checks, {})",
        rules.origin,
        rules.program.checks.len(),
        rules.version
    )
    .map_err(w)?;

    let t0 = Instant::now();
    let data = generate(&opts.config);
    writeln!(
        out,
        "generated {} records in {:.1} s",
        thousands(data.total_rows() as u64),
        t0.elapsed().as_secs_f64()
    )
    .map_err(w)?;

    if let Some(dir) = &opts.export {
        std::fs::create_dir_all(dir).map_err(|e| DemoError::io(dir, e))?;
        for table in &data.tables {
            let path = dir.join(format!("{}.csv", table.component));
            let file = std::fs::File::create(&path).map_err(|e| DemoError::io(&path, e))?;
            let mut buf = io::BufWriter::new(file);
            table
                .write_csv(&mut buf)
                .map_err(|e| DemoError::io(&path, e))?;
            buf.flush().map_err(|e| DemoError::io(&path, e))?;
        }
        writeln!(out, "wrote the records as CSV into {}", dir.display()).map_err(w)?;
    }

    let t0 = Instant::now();
    replace_db(&opts.db)?;
    let url = format!("sqlite://{}", opts.db.display());
    let store = Store::open(&url).await?;
    writeln!(out, "\nstoring them in {url}").map_err(w)?;
    for table in &data.tables {
        let schema = rules.program.component(table.component).ok_or_else(|| {
            DemoError::Schema(format!(
                "the rules declare no component `{}`, which the demo generates records for",
                table.component
            ))
        })?;
        let outcome = store_table(&store, schema, table).await?;
        writeln!(
            out,
            "  {:<16} {:>9} accepted  {:>3} duplicates  {:>3} quarantined",
            table.component,
            thousands(outcome.accepted),
            outcome.duplicates,
            outcome.quarantined
        )
        .map_err(w)?;
    }
    writeln!(out, "  in {:.1} s", t0.elapsed().as_secs_f64()).map_err(w)?;

    let t0 = Instant::now();
    let version = rules.version.clone();
    let executor = Executor::new(store.clone(), Arc::new(rules.program), version.clone());
    let results = executor.evaluate_all(at, None).await;
    writeln!(
        out,
        "\nevaluated {} checks at {} in {:.1} s\n",
        executor.program().checks.len(),
        rfc3339(at),
        t0.elapsed().as_secs_f64()
    )
    .map_err(w)?;

    let json: Vec<Json> = results
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let verdicts = judge(&json);
    let as_expected = print_summary(out, &json, &verdicts).map_err(w)?;
    next_steps(out, opts, &rules.origin, at).map_err(w)?;
    writeln!(
        out,
        "\n(demo done in {:.1} s)",
        started.elapsed().as_secs_f64()
    )
    .map_err(w)?;
    store.close().await;
    Ok(DemoOutcome {
        results,
        verdicts,
        as_expected,
        records: data.total_rows(),
        rules_version: version,
    })
}

fn next_steps(out: &mut dyn Write, opts: &DemoOptions, origin: &str, at: i64) -> io::Result<()> {
    let db = format!("sqlite://{}", opts.db.display());
    let checks = opts
        .checks
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "examples/pipeline".to_string());
    let at = rfc3339(at);
    writeln!(out, "\nWhat to try next:")?;
    if opts.checks.is_none() {
        writeln!(
            out,
            "  (the rules are the {origin}; in a checkout of mlc they are in examples/pipeline/)"
        )?;
    }
    writeln!(out, "  why a check failed, with every value:")?;
    writeln!(
        out,
        "    mlc check {checks} --db {db} --at {at} --check recall_slo --format json"
    )?;
    writeln!(
        out,
        "  how a check is evaluated (window, joins, late labels):"
    )?;
    writeln!(out, "    mlc explain {checks} --check recall_slo")?;
    writeln!(
        out,
        "  edit a check, e.g. lower recall_slo's threshold in {checks}/quality.mlc to 0.5, then:"
    )?;
    writeln!(
        out,
        "    mlc lint {checks} && mlc check {checks} --db {db} --at {at}"
    )?;
    writeln!(out, "  when would it have fired over the last two weeks?")?;
    writeln!(
        out,
        "    mlc backfill {checks} --db {db} --check recall_slo --from {} --to {at} --step 1d",
        rfc3339(opts.config.at_us - 14 * super::generate::DAY)
    )?;
    writeln!(
        out,
        "  the service, with its dashboard at http://127.0.0.1:9400/:"
    )?;
    writeln!(out, "    mlc serve --checks {checks} --db {db}")?;
    writeln!(out, "  the tests of the checks themselves:")?;
    writeln!(out, "    mlc test {checks}")?;
    Ok(())
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Removes the SQLite file a previous demo left (and its WAL files), refusing to delete
/// anything that is not a demo store: `--db` could point at a user's real data.
fn replace_db(path: &Path) -> Result<(), DemoError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(DemoError::io(path, e)),
        Ok(meta) => {
            if meta.len() > 0 && !is_demo_store(path)? {
                return Err(DemoError::NotADemoStore(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(|e| DemoError::io(path, e))?;
        }
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(DemoError::io(path, e)),
            _ => {}
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| DemoError::io(parent, e))?;
    }
    Ok(())
}

/// A SQLite file whose schema (on its first pages) names the table of the demo's
/// `offline_scores` component, which only the demo's rules declare.
fn is_demo_store(path: &Path) -> Result<bool, DemoError> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut head))
        .map_err(|e| DemoError::io(path, e))?;
    let marker: &[u8] = b"offline_scores";
    Ok(head.starts_with(b"SQLite format 3\0") && head.windows(marker.len()).any(|w| w == marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(355_025), "355,025");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn replace_db_refuses_files_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious.db");
        std::fs::write(&precious, b"SQLite format 3\0 some user's tables").unwrap();
        assert!(matches!(
            replace_db(&precious),
            Err(DemoError::NotADemoStore(_))
        ));
        assert!(precious.exists());

        let demo = dir.path().join("mlc-demo.db");
        std::fs::write(
            &demo,
            b"SQLite format 3\0 CREATE TABLE mlc_c_offline_scores",
        )
        .unwrap();
        std::fs::write(dir.path().join("mlc-demo.db-wal"), b"wal").unwrap();
        replace_db(&demo).unwrap();
        assert!(!demo.exists());
        assert!(!dir.path().join("mlc-demo.db-wal").exists());

        let nested = dir.path().join("a/b/demo.db");
        replace_db(&nested).unwrap();
        assert!(nested.parent().unwrap().is_dir());
    }
}
