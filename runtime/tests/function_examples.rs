//! Runs every builtin's examples (`Function::examples`), so docs/functions.md never shows one
//! that does not work: one `.mlc` program with a check and a `test` block per example, loaded
//! from disk like `mlc test` loads rules and run by `testing::run_tests`. Each example must give
//! its status and, where the result reports the function's value, that value (relative
//! tolerance 1e-9).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::fmt::Write as _;
use std::sync::Arc;

use mlc_engine::functions::docs::{EXAMPLE_AT, EXAMPLE_COMPONENTS, record_fields};
use mlc_engine::functions::{self, Example, ExampleValue, Function};
use mlc_runtime::results::CheckResult;
use mlc_runtime::testing::{TestOutcome, run_tests};

/// One example with the name of its check and test.
struct Case {
    function: &'static dyn Function,
    example: Example,
    name: String,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for f in functions::all() {
        for (i, e) in f.examples().iter().enumerate() {
            out.push(Case {
                function: *f,
                example: *e,
                name: format!("{}_example_{}", f.name(), i + 1),
            });
        }
    }
    out
}

/// Whether a record gives the field itself (`ts: "..."`), so the runner must not.
fn gives(record: &str, field: &str) -> bool {
    record_fields(record).iter().any(|(k, _)| *k == field)
}

/// `{ request_id: "r1", ts: "...", <fields> }`, filling in what the record does not give.
fn record(fields: &str, request_id: &str, ts: jiff::Timestamp) -> String {
    let mut parts = Vec::new();
    if !gives(fields, "request_id") {
        parts.push(format!("request_id: \"{request_id}\""));
    }
    if !gives(fields, "ts") {
        parts.push(format!("ts: \"{ts}\""));
    }
    parts.push(fields.to_string());
    format!("    {{ {} }},\n", parts.join(", "))
}

/// The check and the test of one example, as docs/functions.md describes them.
fn program_text(case: &Case, at: jiff::Timestamp) -> String {
    let e = &case.example;
    let name = &case.name;
    let mut text = format!("check {name} {{\n");
    if e.labels.is_empty() {
        text.push_str("  on inference\n");
    } else {
        text.push_str("  on inference join feedback using request_id\n");
    }
    text.push_str("  window 1d\n");
    if !e.baseline.is_empty() {
        text.push_str("  baseline offset 7d\n");
    }
    let _ = writeln!(text, "  {}\n}}", e.source);

    let minute = jiff::SignedDuration::from_mins(1);
    let week = jiff::SignedDuration::from_hours(7 * 24);
    let row_time = |i: usize, n: usize| at - minute * (n - i) as i32;
    let _ = writeln!(text, "test {name} {{\n  at \"{EXAMPLE_AT}\"");
    text.push_str("  rows inference [\n");
    let n = e.rows.len();
    for (i, r) in e.rows.iter().enumerate() {
        text.push_str(&record(r, &format!("r{}", i + 1), row_time(i, n)));
    }
    let nb = e.baseline.len();
    for (i, r) in e.baseline.iter().enumerate() {
        text.push_str(&record(r, &format!("b{}", i + 1), row_time(i, nb) - week));
    }
    text.push_str("  ]\n");
    if !e.labels.is_empty() {
        // A label takes the key and time the runner gives its row.
        assert!(
            !e.rows
                .iter()
                .any(|r| gives(r, "request_id") || gives(r, "ts")),
            "{name}: the rows of an example with labels must leave `request_id` and `ts` \
             to the runner"
        );
        text.push_str("  rows feedback [\n");
        for (i, r) in e.labels.iter().enumerate() {
            text.push_str(&record(r, &format!("r{}", i + 1), row_time(i, n)));
        }
        text.push_str("  ]\n");
    }
    let _ = writeln!(text, "  assert {name} {}\n}}", e.expect.keyword());
    text
}

fn same_value(want: ExampleValue, got: &serde_json::Value) -> bool {
    let close = |a: f64| {
        got.as_f64()
            .is_some_and(|b| a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()))
    };
    match want {
        ExampleValue::Number(a) | ExampleValue::Seconds(a) => close(a),
        ExampleValue::Bool(b) => got.as_bool() == Some(b),
        ExampleValue::Text(t) => got.as_str() == Some(t),
    }
}

/// What is wrong with one example's run, if anything.
fn judge(case: &Case, outcome: Option<&TestOutcome>) -> Option<String> {
    let e = &case.example;
    let Some(outcome) = outcome else {
        return Some("its test did not run".into());
    };
    if let Some(error) = &outcome.error {
        return Some(format!("its test could not run: {error}"));
    }
    if let Some(a) = outcome.asserts.iter().find(|a| !a.ok) {
        let detail = a.detail.as_deref().unwrap_or_default();
        return Some(format!(
            "`{}` does not hold: {}",
            a.text,
            detail.replace('\n', "\n    ")
        ));
    }
    let results: Vec<&CheckResult> = outcome
        .results
        .iter()
        .filter(|r| r.check == case.name)
        .collect();
    let [result] = results.as_slice() else {
        return Some(format!("it gave {} results, not one", results.len()));
    };
    let Some(call) = e.call_text(case.function.name()) else {
        return Some(format!("`{}` does not call {}", e.source, case.function));
    };
    let reported = result.expects.iter().find_map(|x| x.values.get(call));
    match (e.value, reported) {
        (None, None) => None,
        (Some(want), Some(got)) if same_value(want, got) => None,
        (Some(want), Some(got)) => Some(format!(
            "`{call}` is {got}, the example says {want:?}\n    {}",
            result.to_json_line()
        )),
        (Some(want), None) => Some(format!(
            "the example says `{call}` is {want:?}, but the result reports no value of it \
             (a scalar's value is not reported: drop `value`)\n    {}",
            result.to_json_line()
        )),
        (None, Some(got)) => Some(format!(
            "the result reports `{call}` = {got}: give the example that `value`\n    {}",
            result.to_json_line()
        )),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_gives_its_outcome() {
    let cases = cases();
    let at: jiff::Timestamp = EXAMPLE_AT.parse().unwrap();
    let mut text = String::from(EXAMPLE_COMPONENTS);
    for case in &cases {
        text.push('\n');
        text.push_str(&program_text(case, at));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("examples.mlc");
    std::fs::write(&path, &text).unwrap();

    let rules = mlc_runtime::rules::load_rules(std::slice::from_ref(&path));
    assert!(
        !rules.has_errors(),
        "the examples' program does not load:\n{}\n{text}",
        rules.render(false)
    );
    assert_eq!(rules.program.tests.len(), cases.len());
    let outcomes = run_tests(Arc::new(rules.program.clone()), &rules.rules_version).await;

    let mut failures = String::new();
    for case in &cases {
        let outcome = outcomes.iter().find(|t| t.name == case.name);
        if let Some(why) = judge(case, outcome) {
            let _ = writeln!(
                failures,
                "\n{} (`{}`): {why}",
                case.name, case.example.source
            );
        }
    }
    assert!(
        failures.is_empty(),
        "examples in engine/src/functions/*.rs that do not give what they say:{failures}"
    );
}
