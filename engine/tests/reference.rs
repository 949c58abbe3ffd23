//! Compares every builtin aggregate with the reference values that `tests/reference/gen.py`
//! computed with numpy / scipy / scikit-learn (`tests/reference/values.json`): to 1e-9
//! relative (1e-12 absolute near zero), fed whole, in small batches, and split in two
//! accumulators that are then merged.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use mlc_engine::functions::{self, Outcome, Side, stats};
use mlc_engine::value::Value;
use serde_json::Value as Json;

fn load() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/reference/values.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn column(spec: &Json) -> ArrayRef {
    let values = spec["values"].as_array().unwrap();
    match spec["type"].as_str().unwrap() {
        "int" => Arc::new(values.iter().map(Json::as_i64).collect::<Int64Array>()),
        // Floats are text so that they parse to exactly the f64 numpy used.
        "float" => Arc::new(
            values
                .iter()
                .map(|v| v.as_str().map(|s| s.parse::<f64>().unwrap()))
                .collect::<Float64Array>(),
        ),
        "bool" => Arc::new(values.iter().map(Json::as_bool).collect::<BooleanArray>()),
        "string" => Arc::new(values.iter().map(Json::as_str).collect::<StringArray>()),
        "timestamp" => Arc::new(
            values
                .iter()
                .map(Json::as_i64)
                .collect::<TimestampMicrosecondArray>(),
        ),
        other => panic!("unknown column type {other}"),
    }
}

fn close(got: f64, want: f64) -> bool {
    if got == want {
        return true;
    }
    let diff = (got - want).abs();
    diff <= 1e-12 || diff <= 1e-9 * want.abs().max(got.abs())
}

/// Checks an outcome against the expectation; `Err` describes the mismatch.
fn check(got: &Outcome, want: &Json) -> Result<(), String> {
    let mismatch = || Err(format!("got {got:?}, want {want}"));
    match got {
        Outcome::Undefined(_) => {
            if want.get("undefined").is_some() {
                Ok(())
            } else {
                mismatch()
            }
        }
        Outcome::Value(v) => {
            if let Some(fields) = want.get("struct") {
                for (name, w) in fields.as_object().unwrap() {
                    match v.field(name).and_then(Value::as_f64) {
                        Some(g) if close(g, w.as_f64().unwrap()) => {}
                        _ => return mismatch(),
                    }
                }
                return Ok(());
            }
            let Some(w) = want.get("value") else {
                return mismatch();
            };
            let ok = match (v, w) {
                (Value::Bool(g), Json::Bool(w)) => g == w,
                (Value::Str(g), Json::String(w)) => g == w,
                (v, Json::Number(w)) => v.as_f64().is_some_and(|g| close(g, w.as_f64().unwrap())),
                _ => false,
            };
            if ok { Ok(()) } else { mismatch() }
        }
    }
}

enum Feed {
    Whole,
    Batches(usize),
    SplitMerge,
}

fn run(function: &str, args: &[ArrayRef], baseline: &[ArrayRef], feed: &Feed) -> Outcome {
    let f = functions::lookup(function).unwrap();
    let fresh = || f.accumulator().unwrap();
    let len = |a: &[ArrayRef]| a.first().map_or(0, |c| c.len());
    let slice = |a: &[ArrayRef], off: usize, n: usize| -> Vec<ArrayRef> {
        a.iter().map(|c| c.slice(off, n)).collect()
    };
    let feed_range =
        |acc: &mut Box<dyn functions::Accumulator>, from: f64, to: f64, step: usize| {
            for (side, cols) in [(Side::Current, args), (Side::Baseline, baseline)] {
                if cols.is_empty() {
                    continue;
                }
                let n = len(cols);
                let (lo, hi) = ((n as f64 * from) as usize, (n as f64 * to) as usize);
                let mut off = lo;
                while off < hi {
                    let k = step.min(hi - off);
                    acc.update(side, &slice(cols, off, k)).unwrap();
                    off += k;
                }
                if lo == hi {
                    // Empty batches must be harmless too.
                    acc.update(side, &slice(cols, lo, 0)).unwrap();
                }
            }
        };
    match feed {
        Feed::Whole => {
            let mut acc = fresh();
            feed_range(&mut acc, 0.0, 1.0, usize::MAX);
            acc.finalize().unwrap()
        }
        Feed::Batches(k) => {
            let mut acc = fresh();
            feed_range(&mut acc, 0.0, 1.0, *k);
            acc.finalize().unwrap()
        }
        Feed::SplitMerge => {
            let mut a = fresh();
            let mut b = fresh();
            feed_range(&mut a, 0.0, 0.4, usize::MAX);
            feed_range(&mut b, 0.4, 1.0, usize::MAX);
            a.merge(b.as_ref()).unwrap();
            a.finalize().unwrap()
        }
    }
}

#[test]
fn every_builtin_matches_the_reference_values() {
    let data = load();
    let columns: Vec<ArrayRef> = data["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(column)
        .collect();
    let pick = |ids: Option<&Json>| -> Vec<ArrayRef> {
        ids.and_then(Json::as_array).map_or(Vec::new(), |ids| {
            ids.iter()
                .map(|i| columns[i.as_u64().unwrap() as usize].clone())
                .collect()
        })
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    let cases = data["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let function = case["function"].as_str().unwrap();
        let args = pick(case.get("args"));
        let baseline = pick(case.get("baseline"));
        for (label, feed) in [
            ("whole", Feed::Whole),
            ("batches of 7", Feed::Batches(7)),
            ("split", Feed::SplitMerge),
        ] {
            let got = run(function, &args, &baseline, &feed);
            if let Err(e) = check(&got, &case["expect"]) {
                failures.push(format!("{name} ({label}): {e}"));
            }
            checked += 1;
        }
    }
    assert!(cases.len() > 400, "the reference file lost its cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_aggregate_builtin_has_reference_cases() {
    let data = load();
    let cases = data["cases"].as_array().unwrap();
    for f in functions::all() {
        let kind = f.signature().kind;
        if matches!(
            kind,
            functions::FunctionKind::Scalar | functions::FunctionKind::Special
        ) {
            continue;
        }
        let n = cases.iter().filter(|c| c["function"] == f.name()).count();
        assert!(n >= 3, "{} has only {n} reference cases", f.name());
    }
}

#[test]
fn kolmogorov_distribution_matches_scipy() {
    let data = load();
    let mut failures = Vec::new();
    for row in data["kstwo_sf"].as_array().unwrap() {
        let (n, x, want) = (
            row[0].as_u64().unwrap(),
            row[1].as_f64().unwrap(),
            row[2].as_f64().unwrap(),
        );
        let got = stats::kstwo_sf(n, x);
        if !close(got, want) {
            failures.push(format!("kstwo.sf({x}, {n}) = {got}, scipy {want}"));
        }
    }
    for row in data["smirnov_sf"].as_array().unwrap() {
        let (n, x, want) = (
            row[0].as_u64().unwrap(),
            row[1].as_f64().unwrap(),
            row[2].as_f64().unwrap(),
        );
        let got = stats::smirnov_sf(n, x);
        if !close(got, want) {
            failures.push(format!("smirnov({n}, {x}) = {got}, scipy {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
