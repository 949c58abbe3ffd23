//! `mlc test`: runs the `test` blocks of a program. Each test gets its own in-memory
//! store (or, with `mlc test --db postgres://...`, a schema of its own in that database,
//! dropped after), loads its fixtures (inline records or CSV files) through the ordinary
//! ingest path, evaluates the checks it asserts on at its `at` time and compares their
//! statuses.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use mlc_engine::eval::Status;
use mlc_engine::plan::{Program, TestAssert, TestCase, TestRowsSource};
use mlc_engine::value::Value;
use mlc_grammar::ast::Expected;
use mlc_store::Store;
use mlc_store::ingest::{Format, IngestOptions, Input, ingest};
use mlc_wasm::LoadedPlugin;

use crate::exec::{Executor, load_plugins};
use crate::results::{CheckResult, value_json};

/// One assertion's verdict.
#[derive(Debug, Clone)]
pub struct AssertOutcome {
    /// The assertion as written, e.g. `assert recall_slo fails for { country: "DE" }`.
    pub text: String,
    pub ok: bool,
    /// When it does not hold: what happened instead, with the check's actual results.
    pub detail: Option<String>,
}

/// One test block's verdict.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub file: String,
    pub asserts: Vec<AssertOutcome>,
    /// Set when the test could not run (a fixture did not load).
    pub error: Option<String>,
    /// The results of the asserted checks that the assertions were judged on (empty when the
    /// test could not run): their values, for callers that look beyond the statuses.
    pub results: Vec<CheckResult>,
}

impl TestOutcome {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.asserts.iter().all(|a| a.ok)
    }
}

/// Runs every test of the program, in order, each on a fresh in-memory store.
pub async fn run_tests(program: Arc<Program>, rules_version: &str) -> Vec<TestOutcome> {
    run_tests_on(program, rules_version, None).await
}

/// Runs every test of the program, in order: each on a fresh in-memory store, or with `db`
/// (a PostgreSQL URL without `?schema=`) in a fresh schema of that database, dropped after.
pub async fn run_tests_on(
    program: Arc<Program>,
    rules_version: &str,
    db: Option<&str>,
) -> Vec<TestOutcome> {
    let plugins = Arc::new(load_plugins(&program));
    let mut out = Vec::with_capacity(program.tests.len());
    for (n, test) in program.tests.iter().enumerate() {
        let url = db.map(|base| scratch_url(base, n));
        out.push(
            run_test(
                &program,
                test,
                plugins.clone(),
                rules_version,
                url.as_deref(),
            )
            .await,
        );
    }
    out
}

/// The URL of test `n`'s own schema in the database of `base`.
fn scratch_url(base: &str, n: usize) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema=mlc_test_{}_{n}", std::process::id())
}

/// Whether `url` can hold the scratch schemas of `mlc test --db`: a PostgreSQL URL without
/// a schema of its own; the error names the fix.
pub fn check_test_db(url: &str) -> Result<(), String> {
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(format!(
            "`mlc test --db` runs each test in a schema of its own in a PostgreSQL database: give a postgres:// URL, not `{url}` (without --db, tests run on in-memory stores)"
        ));
    }
    if url.contains("schema=") {
        return Err(format!(
            "`{url}`: leave out `schema=`; each test makes and drops a schema of its own (mlc_test_<pid>_<n>)"
        ));
    }
    Ok(())
}

/// Runs one test on a fresh store: in memory, or at `url` (dropping its schema after).
pub(crate) async fn run_test(
    program: &Arc<Program>,
    test: &TestCase,
    plugins: Arc<HashMap<String, Result<LoadedPlugin, String>>>,
    rules_version: &str,
    url: Option<&str>,
) -> TestOutcome {
    let mut outcome = TestOutcome {
        name: test.name.clone(),
        file: test.file.clone(),
        asserts: Vec::new(),
        error: None,
        results: Vec::new(),
    };
    let store = match Store::open(url.unwrap_or("sqlite::memory:")).await {
        Ok(s) => s,
        Err(e) => {
            outcome.error = Some(format!("cannot open a store for the test: {e}"));
            return outcome;
        }
    };
    if let Err(e) = load_fixtures(&store, program, test).await {
        outcome.error = Some(e);
        discard(&store).await;
        return outcome;
    }
    let exec = Executor::with_plugins(store.clone(), program.clone(), plugins, rules_version);
    let mut names: Vec<String> = Vec::new();
    for a in &test.asserts {
        if !names.contains(&a.check) {
            names.push(a.check.clone());
        }
    }
    let results = exec.evaluate_all(test.at_us, Some(names.as_slice())).await;
    for a in &test.asserts {
        outcome.asserts.push(judge_assert(a, &results));
    }
    outcome.results = results;
    discard(&store).await;
    outcome
}

/// Drops a test's scratch schema (PostgreSQL) and closes its store.
async fn discard(store: &Store) {
    if let Err(e) = store.drop_schema().await {
        tracing::warn!(error = %e, "could not drop a test's scratch schema");
    }
    store.close().await;
}

async fn load_fixtures(store: &Store, program: &Program, test: &TestCase) -> Result<(), String> {
    // Every component exists, so a check reading one without fixtures sees no rows
    // rather than an unknown table.
    for c in &program.components {
        store
            .ensure_component(c)
            .await
            .map_err(|e| format!("component `{}`: {e}", c.name))?;
    }
    for rows in &test.rows {
        let schema = program
            .component(&rows.component)
            .ok_or_else(|| format!("`rows {}`: no such component", rows.component))?;
        let (input, format, what) = match &rows.source {
            TestRowsSource::File(path) => {
                let format = Format::from_path(path).unwrap_or(Format::Csv);
                (
                    Input::Path(path.clone()),
                    format,
                    format!("`{}`", path.display()),
                )
            }
            TestRowsSource::Inline(records) => {
                let mut text = String::new();
                for record in records {
                    let obj: serde_json::Map<String, serde_json::Value> = record
                        .iter()
                        .map(|(k, v)| (k.clone(), fixture_json(v)))
                        .collect();
                    let _ = writeln!(text, "{}", serde_json::Value::Object(obj));
                }
                (
                    Input::Bytes(Arc::from(text.into_bytes())),
                    Format::Jsonl,
                    "the inline rows".to_string(),
                )
            }
        };
        let report = ingest(
            store,
            schema,
            input,
            format,
            &IngestOptions::default(),
            None,
        )
        .await
        .map_err(|e| format!("loading {what} into `{}`: {e}", rows.component))?;
        if let Some(e) = report.error {
            return Err(format!("loading {what} into `{}`: {e}", rows.component));
        }
        if report.quarantined > 0 {
            return Err(format!(
                "{} record(s) of {what} do not fit component `{}`: {}",
                report.quarantined,
                rows.component,
                report.reasons.join("; ")
            ));
        }
    }
    Ok(())
}

/// Fixture values as JSON for the ingest path; times as RFC 3339 text.
fn fixture_json(v: &Value) -> serde_json::Value {
    value_json(v)
}

fn expected_status(e: Expected) -> Status {
    match e {
        Expected::Passes => Status::Pass,
        Expected::Fails => Status::Fail,
        Expected::Insufficient => Status::Insufficient,
        Expected::Error => Status::Error,
    }
}

fn expected_text(e: Expected) -> &'static str {
    match e {
        Expected::Passes => "passes",
        Expected::Fails => "fails",
        Expected::Insufficient => "is insufficient",
        Expected::Error => "is error",
    }
}

fn literal_text(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("\"{s}\""),
        other => value_json(other).to_string(),
    }
}

/// The assertion as written.
pub(crate) fn assert_text(a: &TestAssert) -> String {
    let mut s = format!("assert {} {}", a.check, expected_text(a.expected));
    if let Some(slice) = &a.slice {
        let parts: Vec<String> = slice
            .iter()
            .map(|(k, v)| format!("{k}: {}", literal_text(v)))
            .collect();
        let _ = write!(s, " for {{ {} }}", parts.join(", "));
    }
    s
}

fn same_value(want: &serde_json::Value, got: &serde_json::Value) -> bool {
    match (want.as_f64(), got.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => want == got,
    }
}

/// Whether a result belongs to the slice an assertion names; `column` names the `each`
/// column.
fn in_slice(r: &CheckResult, slice: &[(String, Value)]) -> bool {
    slice.iter().all(|(k, v)| {
        let want = value_json(v);
        match r.slice.get(k) {
            Some(got) => same_value(&want, got),
            None if k == "column" => r.column.as_deref() == want.as_str(),
            None => false,
        }
    })
}

fn judge_assert(a: &TestAssert, results: &[CheckResult]) -> AssertOutcome {
    let text = assert_text(a);
    let of_check: Vec<&CheckResult> = results.iter().filter(|r| r.check == a.check).collect();
    let chosen: Vec<&CheckResult> = match &a.slice {
        Some(slice) => of_check
            .iter()
            .copied()
            .filter(|r| in_slice(r, slice))
            .collect(),
        None => of_check.clone(),
    };
    let want = expected_status(a.expected);
    if chosen.is_empty() {
        let mut detail = String::from("the check gave no result for this slice");
        if !of_check.is_empty() {
            detail.push_str("; its results:");
            for r in &of_check {
                let _ = write!(detail, "\n    {}", r.to_json_line());
            }
        }
        return AssertOutcome {
            text,
            ok: false,
            detail: Some(detail),
        };
    }
    // The check's status over the chosen results, as `mlc check` would summarise it: it
    // fails when any result fails, passes only when every result passes.
    let got = Status::combine(chosen.iter().map(|r| r.status()));
    if got == want {
        return AssertOutcome {
            text,
            ok: true,
            detail: None,
        };
    }
    let mut detail = format!("got {}:", got.as_str());
    for r in chosen {
        let slice = r.slice_text();
        let _ = write!(
            detail,
            "\n  {}{}: {}\n    {}",
            r.status,
            if slice.is_empty() {
                String::new()
            } else {
                format!(" for {slice}")
            },
            r.message,
            r.to_json_line()
        );
    }
    AssertOutcome {
        text,
        ok: false,
        detail: Some(detail),
    }
}

/// The report `mlc test` prints: a line per test, details of failed assertions, a summary.
pub fn render(outcomes: &[TestOutcome]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    for t in outcomes {
        if t.ok() {
            passed += 1;
            let _ = writeln!(
                out,
                "ok     {} ({}, {} assertions)",
                t.name,
                t.file,
                t.asserts.len()
            );
            continue;
        }
        failed += 1;
        let _ = writeln!(out, "FAILED {} ({})", t.name, t.file);
        if let Some(e) = &t.error {
            let _ = writeln!(out, "  error: {e}");
        }
        for a in t.asserts.iter().filter(|a| !a.ok) {
            let _ = writeln!(out, "  {}", a.text);
            if let Some(d) = &a.detail {
                for line in d.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} tests: {passed} passed, {failed} failed",
        outcomes.len()
    );
    out
}
