//! Unit tests of the checker on small in-memory programs; the data-driven cases live in the
//! repository's `tests/cases/`.

use std::path::PathBuf;

use super::{NoPlugins, compile};
use crate::load::{MemoryFs, load};
use crate::plan::{BaselinePlan, Program, RowSet};

const COMPONENTS: &str = r#"
component inference {
  key request_id
  time ts
  fields {
    age: int
    income: float
    country: string
    score: float
    prediction: int
  }
}
component feedback {
  key request_id
  time ts
  fields { label: int, country: string }
}
component training {
  key request_id
  time ts
  fields { age: int, income: float }
}
"#;

/// Compiles `text` (with the components above) and returns the program and the rendered
/// diagnostics.
fn run(text: &str) -> (Program, String) {
    let fs = MemoryFs::new()
        .with("c.mlc", COMPONENTS)
        .with("t.mlc", format!("import \"c.mlc\"\n{text}"));
    let loaded = load(&fs, &[PathBuf::from("t.mlc")]);
    assert!(
        !loaded.has_errors(),
        "{}",
        mlc_grammar::render(&loaded.diagnostics, &loaded.sources, false)
    );
    let (program, diags) = compile(&loaded.files, &loaded.sources, &NoPlugins);
    (program, mlc_grammar::render(&diags, &loaded.sources, false))
}

fn codes(text: &str) -> Vec<String> {
    let (_, out) = run(text);
    out.lines()
        .filter_map(|l| {
            l.strip_prefix("error[")
                .and_then(|r| r.split(']').next())
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn recall_slo_compiles_with_columns_read() {
    let (p, out) = run(r#"
check recall_slo {
  on inference join feedback using request_id
  window 30d
  delay 2d
  group by inference.country
  min_rows 200
  expect recall(prediction, label) >= 0.9
  expect coverage() >= 80%
}"#);
    assert_eq!(out, "");
    let c = &p.checks[0];
    assert_eq!(
        c.source.components[0].columns,
        ["request_id", "ts", "country", "prediction"]
    );
    assert_eq!(
        c.source.components[1].columns,
        ["request_id", "ts", "label"]
    );
    assert_eq!(c.window_secs, Some(30 * 86_400));
    assert_eq!(c.aggregates.len(), 2);
}

#[test]
fn nulls_only_columns_are_those_read_only_for_their_nulls() {
    let names = |text: &str| -> Vec<(usize, String)> {
        let (p, out) = run(text);
        assert_eq!(out, "");
        p.checks[0]
            .nulls_only_columns()
            .into_iter()
            .map(|c| (c.source, c.name))
            .collect()
    };
    let s = |v: &[(usize, &str)]| -> Vec<(usize, String)> {
        v.iter().map(|(i, n)| (*i, n.to_string())).collect()
    };
    // Only `is [not] null` on the bare column counts; `where` too.
    assert_eq!(
        names(
            "check v { on inference where score is not null \
             expect count(age is null) == 0 expect count(income is null or age < 0) == 0 }"
        ),
        s(&[(0, "score"), (0, "income")])
    );
    // A value use anywhere (an aggregate, `where`, inside an expression) takes it out.
    assert_eq!(
        names(
            "check v { on inference where age > 0 expect count(age is null) == 0 \
             expect count(income is null) == 0 expect mean(income) > 0 }"
        ),
        s(&[])
    );
    assert_eq!(
        names("check v { on inference expect count((score + 1) is null) == 0 }"),
        s(&[])
    );
    // `group by` columns, `each` columns and join keys need their values.
    assert_eq!(
        names(
            "check v { on inference group by country \
             expect count(country is null) == 0 expect count(score is null) == 0 }"
        ),
        s(&[(0, "score")])
    );
    assert_eq!(
        names(
            "check v { on inference left join feedback using request_id \
             expect count(inference.request_id is null) == 0 expect count(label is null) < 5 }"
        ),
        s(&[(1, "label")])
    );
}

#[test]
fn aggregates_are_deduplicated_per_row_set() {
    let (p, out) = run(r#"
check d {
  on inference
  window 1d
  baseline offset 7d
  expect mean(age) > 1
  expect mean(age) < 100
  expect baseline.mean(age) > 0
  expect ks(age).pvalue > 0.01
}"#);
    assert_eq!(out, "");
    let rows: Vec<RowSet> = p.checks[0].aggregates.iter().map(|a| a.rows).collect();
    assert_eq!(rows, [RowSet::Current, RowSet::Baseline, RowSet::Both]);
}

#[test]
fn component_baseline_reads_only_what_it_needs() {
    let (p, out) = run(r#"
check skew {
  on inference
  baseline training
  where age >= 0
  expect psi(income) < 0.2
  expect mean(score) > 0
}"#);
    assert_eq!(out, "");
    let Some(BaselinePlan::Component { columns, .. }) = &p.checks[0].baseline else {
        panic!()
    };
    assert_eq!(columns, &["ts", "age", "income"]);
    let (_, out) = run("check skew { on inference baseline training expect psi(score) < 0.2 }");
    assert!(out.contains("E0306"), "{out}");
}

#[test]
fn reports_every_error_not_only_the_first() {
    let got = codes(
        r#"
check a {
  on inference
  expect age >= 0
  expect reacll(prediction, country) > 1
  expect mean(country) > 1
  window 0s
}
check a { on nope expect count() > 0 }
"#,
    );
    for code in ["E0203", "E0103", "E0201", "E0303", "E0105"] {
        assert!(got.iter().any(|c| c == code), "{code} missing in {got:?}");
    }
}

#[test]
fn each_reports_the_column_that_fails() {
    let (_, out) = run("check e { on inference each c in [age, country] expect mean(c) > 0 }");
    assert!(out.contains("(when `c` is `country`)"), "{out}");
    assert!(!out.contains("(when `c` is `age`)"), "{out}");
    let (p, out) =
        run("check e { on inference each c in numeric(inference) expect null_rate(c) < 1% }");
    assert_eq!(out, "");
    assert_eq!(p.checks[0].each.as_ref().map(|e| e.columns.len()), Some(4));
}

#[test]
fn joins_need_qualified_ambiguous_columns() {
    let got = codes(
        "check j { on inference join feedback using request_id expect rate(country == \"DE\") > 0 }",
    );
    assert_eq!(got, ["E0106"]);
    let got = codes(
        "check j { on inference join feedback using request_id group by request_id expect count() > 0 }",
    );
    assert!(got.is_empty(), "the join key is not ambiguous: {got:?}");
}
