//! The example plugins under examples/plugins/: each committed `.wasm` loads, passes the
//! host's checks, and gives the same numbers as a native Rust implementation on the same
//! data; where the toolchain is present, the sources are rebuilt and must behave the same.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use arrow_array::ArrayRef;
use mlc_engine::functions::{Outcome, Side};
use mlc_engine::schema::DataType;
use mlc_engine::value::Value;
use mlc_wasm::{Limits, LoadedPlugin, PluginHost};

fn example(path: &str) -> PathBuf {
    common::repo_root().join("examples/plugins").join(path)
}

fn load(path: &Path) -> LoadedPlugin {
    PluginHost::without_disk_cache()
        .load_path("example", path, Limits::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn value(outcome: Outcome) -> f64 {
    match outcome {
        Outcome::Value(Value::Float(v)) => v,
        other => panic!("expected a number, got {other:?}"),
    }
}

/// Feeds `args` in batches of `batch` rows into one accumulator.
fn run_batches(plugin: &LoadedPlugin, args: &[ArrayRef], batch: usize) -> Outcome {
    let mut acc = plugin.accumulator().unwrap();
    let rows = args[0].len();
    let mut start = 0;
    while start < rows {
        let len = batch.min(rows - start);
        let slice: Vec<ArrayRef> = args.iter().map(|a| a.slice(start, len)).collect();
        acc.update(Side::Current, &slice).unwrap();
        start += len;
    }
    acc.finalize().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

// ---- WAT: mean -------------------------------------------------------------------------

fn native_mean(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

#[test]
fn wat_mean_matches_native_mean_across_chunks_and_nulls() {
    let plugin = load(&example("mean_wat/mean.wasm"));
    assert_eq!(plugin.meta.name, "wat_mean");
    assert_eq!(plugin.signature().args, vec![DataType::Float]);
    let mut rng = common::Rng::new(7);
    // More rows than one 64k chunk, with nulls, so chunking and NaN-for-null both count.
    let values: Vec<Option<f64>> = (0..150_000)
        .map(|_| {
            let x = rng.next_f64();
            (x > 0.1).then_some(x * 100.0 - 20.0)
        })
        .collect();
    let args = vec![common::floats(&values)];
    let expected = native_mean(&values).unwrap();
    for batch in [150_000, 1000, 65_537] {
        let got = value(run_batches(&plugin, &args, batch));
        assert!(close(got, expected), "batch {batch}: {got} vs {expected}");
    }
}

#[test]
fn wat_mean_takes_ints_and_bools_and_reports_no_values_as_undefined() {
    let plugin = load(&example("mean_wat/mean.wasm"));
    let ints = common::ints(&[Some(1), None, Some(4)]);
    assert_eq!(value(run_batches(&plugin, &[ints], 10)), 2.5);
    let bools = common::bools(&[Some(true), Some(false), Some(true), None]);
    assert!(close(value(run_batches(&plugin, &[bools], 10)), 2.0 / 3.0));
    let nulls = common::floats(&[None, None]);
    match run_batches(&plugin, &[nulls], 10) {
        Outcome::Undefined(reason) => assert_eq!(reason, "no non-null values"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn accumulators_of_one_session_merge() {
    let plugin = load(&example("mean_wat/mean.wasm"));
    let session = plugin.session().unwrap();
    let mut a = session.accumulator().unwrap();
    let mut b = session.accumulator().unwrap();
    a.update(Side::Current, &[common::floats(&[Some(1.0), Some(2.0)])])
        .unwrap();
    b.update(Side::Current, &[common::floats(&[Some(6.0)])])
        .unwrap();
    a.merge(b.as_ref()).unwrap();
    assert_eq!(value(a.finalize().unwrap()), 3.0);
    // Across sessions there is no shared memory to merge in.
    let c = plugin.accumulator().unwrap();
    let err = a.merge(c.as_ref()).unwrap_err();
    assert!(err.to_string().contains("different sessions"), "{err}");
}

#[test]
fn committed_wat_build_matches_its_source() {
    let source = example("mean_wat/mean.wat");
    let built = wat::parse_file(&source).unwrap();
    let committed = std::fs::read(example("mean_wat/mean.wasm")).unwrap();
    assert!(
        built == committed,
        "examples/plugins/mean_wat/mean.wasm is stale; run examples/plugins/mean_wat/build.sh"
    );
}

// ---- reference data (tests/reference/ece.json, made by tests/reference/ece.py) ----------

struct Case {
    name: String,
    score: Vec<Option<f64>>,
    label: Vec<Option<f64>>,
    ece: f64,
    trimmed_mean_score: f64,
}

fn reference_cases() -> Vec<Case> {
    let path = common::repo_root().join("tests/reference/ece.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let column = |v: &serde_json::Value| -> Vec<Option<f64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(serde_json::Value::as_f64)
            .collect()
    };
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            score: column(&c["score"]),
            label: column(&c["label"]),
            ece: c["ece"].as_f64().unwrap(),
            trimmed_mean_score: c["trimmed_mean_score"].as_f64().unwrap(),
        })
        .collect()
}

/// ECE as defined in examples/plugins/ece_rust/src/lib.rs, written independently.
fn native_ece(score: &[Option<f64>], label: &[Option<f64>]) -> Option<f64> {
    let rows: Vec<(f64, f64)> = score
        .iter()
        .zip(label)
        .filter_map(|(s, l)| Some(((*s)?.clamp(0.0, 1.0), (*l)?)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for b in 0..10 {
        let in_bin: Vec<_> = rows
            .iter()
            .filter(|(p, _)| ((p * 10.0).floor() as usize).min(9) == b)
            .collect();
        if in_bin.is_empty() {
            continue;
        }
        let k = in_bin.len() as f64;
        let acc = in_bin.iter().map(|(_, y)| y).sum::<f64>() / k;
        let conf = in_bin.iter().map(|(p, _)| p).sum::<f64>() / k;
        total += k / rows.len() as f64 * (acc - conf).abs();
    }
    Some(total)
}

/// scipy.stats.trim_mean(x, 0.1) over the non-null values.
fn native_trimmed_mean(values: &[Option<f64>]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let cut = (0.1 * v.len() as f64) as usize;
    let kept = &v[cut..v.len() - cut];
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

fn check_ece(plugin: &LoadedPlugin) {
    assert_eq!(plugin.meta.name, "ece");
    assert_eq!(
        plugin.signature().args,
        vec![DataType::Float, DataType::Int]
    );
    for case in reference_cases() {
        let native = native_ece(&case.score, &case.label).unwrap();
        assert!(
            close(native, case.ece),
            "{}: native {native} vs numpy {}",
            case.name,
            case.ece
        );
        let labels: Vec<Option<i64>> = case.label.iter().map(|l| l.map(|v| v as i64)).collect();
        let args = vec![common::floats(&case.score), common::ints(&labels)];
        for batch in [7, 1000, 100_000] {
            let got = value(run_batches(plugin, &args, batch));
            assert!(
                close(got, case.ece),
                "{} batch {batch}: plugin {got} vs {}",
                case.name,
                case.ece
            );
        }
    }
}

fn check_trimmed_mean(plugin: &LoadedPlugin) {
    assert_eq!(plugin.meta.name, "trimmed_mean");
    for case in reference_cases() {
        let native = native_trimmed_mean(&case.score).unwrap();
        assert!(
            close(native, case.trimmed_mean_score),
            "{}: native {native}",
            case.name
        );
        let args = vec![common::floats(&case.score)];
        for batch in [5, 100_000] {
            let got = value(run_batches(plugin, &args, batch));
            assert!(
                close(got, case.trimmed_mean_score),
                "{} batch {batch}: plugin {got} vs scipy {}",
                case.name,
                case.trimmed_mean_score
            );
        }
    }
}

#[test]
fn rust_ece_matches_numpy_reference_and_native_implementation() {
    check_ece(&load(&example("ece_rust/ece.wasm")));
}

#[test]
fn rust_ece_rejects_labels_outside_zero_one_and_is_undefined_without_rows() {
    let plugin = load(&example("ece_rust/ece.wasm"));
    let mut acc = plugin.accumulator().unwrap();
    let err = acc
        .update(
            Side::Current,
            &[common::floats(&[Some(0.3)]), common::ints(&[Some(2)])],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("ece needs labels 0 or 1, got 2"),
        "{err}"
    );
    let mut acc = plugin.accumulator().unwrap();
    acc.update(
        Side::Current,
        &[common::floats(&[None]), common::ints(&[Some(1)])],
    )
    .unwrap();
    assert_eq!(
        acc.finalize().unwrap(),
        Outcome::Undefined("no rows with both a score and a label".into())
    );
    // Bool labels are accepted as 0/1.
    let mut acc = plugin.accumulator().unwrap();
    acc.update(
        Side::Current,
        &[
            common::floats(&[Some(0.95), Some(0.05)]),
            common::bools(&[Some(true), Some(false)]),
        ],
    )
    .unwrap();
    assert!(close(value(acc.finalize().unwrap()), 0.05));
}

#[test]
fn c_trimmed_mean_matches_scipy_reference_and_native_implementation() {
    let plugin = load(&example("trimmed_mean_c/trimmed_mean.wasm"));
    check_trimmed_mean(&plugin);
    // Many states in one session reuse freed memory instead of growing without bound.
    let session = plugin.session().unwrap();
    let col = common::floats(&(0..10_000).map(|i| Some(i as f64)).collect::<Vec<_>>());
    for _ in 0..200 {
        let mut acc = session.accumulator().unwrap();
        acc.update(Side::Current, std::slice::from_ref(&col))
            .unwrap();
        assert_eq!(value(acc.finalize().unwrap()), 4999.5);
    }
}

// ---- rebuilding the committed binaries from source -----------------------------------

/// When the toolchain is missing the rebuild is skipped, unless CI asks for it with
/// `MLC_REQUIRE_PLUGIN_TOOLCHAINS=1`.
fn toolchain_missing(what: &str) {
    assert!(
        std::env::var_os("MLC_REQUIRE_PLUGIN_TOOLCHAINS").is_none(),
        "{what} is required (MLC_REQUIRE_PLUGIN_TOOLCHAINS is set)"
    );
    eprintln!("skipping the rebuild: {what} is not installed");
}

fn has_command(cmd: &str) -> bool {
    std::process::Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn rust_ece_source_builds_into_an_equivalent_module() {
    let libdir = std::process::Command::new("rustc")
        .args([
            "--print",
            "target-libdir",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output();
    let installed = libdir.is_ok_and(|o| {
        o.status.success() && Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir()
    });
    if !installed {
        return toolchain_missing("the wasm32-unknown-unknown Rust target");
    }
    let target = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .current_dir(example("ece_rust"))
        .env("CARGO_TARGET_DIR", target.path())
        .status()
        .unwrap();
    assert!(status.success(), "examples/plugins/ece_rust does not build");
    let built = out.path().join("ece.wasm");
    std::fs::copy(
        target
            .path()
            .join("wasm32-unknown-unknown/release/mlc_plugin_ece.wasm"),
        &built,
    )
    .unwrap();
    check_ece(&load(&built));
}

#[test]
fn c_trimmed_mean_source_builds_into_an_equivalent_module() {
    let clang = ["clang-16", "clang"].into_iter().find(|c| has_command(c));
    let ld = ["wasm-ld-16", "wasm-ld"]
        .into_iter()
        .find(|c| has_command(c));
    let (Some(_), Some(_)) = (clang, ld) else {
        return toolchain_missing("clang and wasm-ld (Debian: clang-16 lld-16)");
    };
    let dir = tempfile::tempdir().unwrap();
    for file in ["trimmed_mean.c", "build.sh"] {
        std::fs::copy(example("trimmed_mean_c").join(file), dir.path().join(file)).unwrap();
    }
    let status = std::process::Command::new("sh")
        .arg(dir.path().join("build.sh"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "examples/plugins/trimmed_mean_c does not build"
    );
    check_trimmed_mean(&load(&dir.path().join("trimmed_mean.wasm")));
}
