//! The function reference (`docs/functions.md`), generated from the registry so that it
//! cannot drift from what the checker and the executor use.

use std::fmt::Write;

use super::{
    ArgType, Example, ExampleStatus, ExampleValue, Function, FunctionKind, ReturnType, Signature,
    all,
};
use crate::eval::agg::{format_duration, format_number};

/// The components every example's check reads ([`super::Example`]): `inference` holds the
/// rows, `feedback` the labels joined to them by `request_id`.
pub const EXAMPLE_COMPONENTS: &str = r#"component inference {
  key request_id
  time ts
  fields {
    age: int, income: float, country: string, score: float, prediction: int,
    model_version: string, latency_ms: float, logit: float, status: string, failed_jobs: int,
    predicted_eta: float, actual_eta: float, predicted_price: float, price: float,
    forecast: float, demand: float
  }
}
component feedback {
  key request_id
  time ts
  fields { label: int }
}
"#;

/// The evaluation time of every example (`T`).
pub const EXAMPLE_AT: &str = "2026-03-01T00:00:00Z";

fn arg_type(t: ArgType) -> &'static str {
    match t {
        ArgType::Numeric => "numeric",
        ArgType::Predicate => "predicate",
        ArgType::Label => "label",
        ArgType::Categorical => "categorical",
        ArgType::Probability => "probability",
        ArgType::Any => "any",
    }
}

fn return_type(sig: &Signature) -> String {
    match sig.returns {
        ReturnType::Number => "number".into(),
        ReturnType::Duration => "duration".into(),
        ReturnType::Bool => "bool".into(),
        ReturnType::SameAsArg(i) => match sig.params.get(i) {
            Some(p) => format!("type of {}", p.name),
            None => "value".into(),
        },
        ReturnType::Struct(fields) => format!("{{{}}}", fields.join(", ")),
    }
}

/// `name(a: numeric, [b: predicate], c: any...) -> number`
pub(crate) fn signature_line(f: &dyn Function) -> String {
    let sig = f.signature();
    let mut params = Vec::new();
    for (i, p) in sig.params.iter().enumerate() {
        let mut s = format!("{}: {}", p.name, arg_type(p.ty));
        if sig.variadic && i + 1 == sig.params.len() {
            s.push_str(", ...");
        }
        if i >= sig.required {
            s = format!("[{s}]");
        }
        params.push(s);
    }
    format!(
        "{}({}) -> {}",
        f.name(),
        params.join(", "),
        return_type(&sig)
    )
}

fn section(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Scalar => "Scalar functions",
        FunctionKind::Aggregate => "Aggregates",
        FunctionKind::TwoSample => "Against the baseline",
        FunctionKind::Special => "Pipeline functions",
    }
}

/// The whole reference, in Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Builtin functions\n\n\
         <!-- Generated from the registry (engine/src/functions) by engine/tests/functions_docs.rs;\n\
         do not edit: run `MLC_UPDATE_DOCS=1 cargo test -p mlc-engine --test functions_docs`. -->\n\n\
         Argument types: `numeric` is an int or float column or expression; `predicate` a row-level\n\
         condition (null counts as false); `label` an int or bool column whose positive class is\n\
         `1` / `true`; `categorical` a string, bool or int column; `probability` a literal between 0\n\
         and 1; `any` a column of any type. Aggregates skip null inputs (and NaN, as pandas does);\n\
         a metric that is undefined on the rows (no values, a single class, ...) makes its `expect`\n\
         `insufficient` with the reason. Every aggregate can also run over the baseline rows as\n\
         `baseline.f(...)`.\n\n\
         Every example below is run as a test (runtime/tests/function_examples.rs): its `expect`\n\
         becomes a check with `window 1d`, evaluated at `T` = `{at}` on the rows shown,\n\
         and it must give the status and the value shown. Rows are records of `inference`, given\n\
         by column (`age` 34, 140 is two records), one minute apart and the last at `T - 1m`, with\n\
         `request_id` `\"r1\"`, `\"r2\"`, ... unless they give theirs. Labels are records of\n\
         `feedback`, the first for the first row and so on, with that row's `request_id` and\n\
         time; the check then reads `on inference join feedback using request_id`, so a row\n\
         without a label drops out. Baseline rows are records of `inference` 7 days earlier; the\n\
         check then has `baseline offset 7d`. The components:\n\n\
         ```mlc\n{components}```\n",
        at = EXAMPLE_AT,
        components = EXAMPLE_COMPONENTS,
    );
    for kind in [
        FunctionKind::Scalar,
        FunctionKind::Aggregate,
        FunctionKind::TwoSample,
        FunctionKind::Special,
    ] {
        let _ = write!(out, "\n## {}\n", section(kind));
        for f in all().iter().filter(|f| f.signature().kind == kind) {
            let _ = write!(out, "\n### `{}`\n\n", f.name());
            let _ = writeln!(out, "`{}`\n", signature_line(*f));
            let _ = writeln!(out, "{}", f.summary());
            if f.signature().wants_time {
                out.push_str("\nReads the event time of each row as well.\n");
            }
            for e in f.examples() {
                let _ = write!(out, "\n```mlc\n{}\n```\n{}\n", e.source, e.description);
                example_rows(&mut out, f.name(), e);
            }
        }
    }
    out
}

/// The fields of an example's record, `age: 34, country: "DE"` as `[("age", "34"),
/// ("country", "\"DE\"")]` (commas inside strings do not separate fields).
pub fn record_fields(record: &str) -> Vec<(&str, &str)> {
    let mut parts = Vec::new();
    let (mut start, mut in_string) = (0, false);
    for (i, c) in record.char_indices() {
        match c {
            '"' => in_string = !in_string,
            ',' if !in_string => {
                parts.push(&record[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&record[start..]);
    parts
        .into_iter()
        .filter_map(|p| p.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// Records compactly: by column (`` `age` 34, 140 ``) when every record gives the same
/// fields, otherwise one by one (`` `{ ts: "..." }` ``).
fn records_text(rows: &[&str]) -> String {
    let parsed: Vec<Vec<(&str, &str)>> = rows.iter().map(|r| record_fields(r)).collect();
    let names: Vec<&str> = parsed
        .first()
        .map(|f| f.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let same_fields = parsed
        .iter()
        .all(|f| f.iter().map(|(k, _)| *k).eq(names.iter().copied()));
    if !same_fields || names.is_empty() {
        return rows
            .iter()
            .map(|r| format!("`{{ {r} }}`"))
            .collect::<Vec<_>>()
            .join(", ");
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<&str> = parsed.iter().map(|f| f[i].1).collect();
            format!("`{name}` {}", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rows an example runs on and what it gives, as a short list under it.
fn example_rows(out: &mut String, name: &str, e: &Example) {
    out.push('\n');
    let _ = writeln!(out, "- rows: {}", records_text(e.rows));
    if !e.labels.is_empty() {
        let _ = writeln!(out, "- labels, row by row: {}", records_text(e.labels));
    }
    if !e.baseline.is_empty() {
        let _ = writeln!(out, "- baseline rows: {}", records_text(e.baseline));
    }
    let status = match e.expect {
        ExampleStatus::Passes => "passes",
        ExampleStatus::Fails => "fails",
    };
    match (e.value, e.call_text(name)) {
        (Some(v), Some(call)) => {
            let _ = writeln!(out, "- **{status}**: `{call}` {}", value_text(v));
        }
        _ => {
            let _ = writeln!(out, "- **{status}**");
        }
    }
}

/// `= 0.8`, `≈ 0.6667` when the shown digits round the value, `= "US"`, `= 10m`.
fn value_text(v: ExampleValue) -> String {
    match v {
        ExampleValue::Number(x) => {
            let shown = format_number(x);
            let exact = shown.replace(',', "").parse::<f64>().ok() == Some(x);
            format!("{} {shown}", if exact { "=" } else { "≈" })
        }
        ExampleValue::Seconds(s) => format!("= {}", format_duration(s)),
        ExampleValue::Bool(b) => format!("= {b}"),
        ExampleValue::Text(t) => format!("= \"{t}\""),
    }
}
