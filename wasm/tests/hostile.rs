//! Hostile plugins (tests/fixtures/hostile/*.wat): each must give a clear error at load
//! time (what `mlc lint` reports) or an `EvalError` within its configured bound, and never
//! harm the host. Each fixture states its limits and the expected message in its header.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use mlc_engine::functions::{EvalError, Outcome, Side};
use mlc_wasm::{Limits, PluginHost};

/// Splits base.wat into its `;; @export NAME` sections.
fn base_sections() -> Vec<(String, String)> {
    let base = std::fs::read_to_string(fixtures().join("base.wat")).unwrap();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in base.lines() {
        if let Some(name) = line.strip_prefix(";; @export ") {
            sections.push((name.trim().to_string(), String::new()));
        } else if let Some((_, text)) = sections.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    sections
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture's own text plus every base export it neither defines nor omits.
fn assemble(fixture: &str) -> String {
    let mut module = String::from("(module\n");
    module.push_str(fixture);
    for (name, text) in base_sections() {
        let defined = fixture.contains(&format!("(export \"{name}\")"));
        let omitted = fixture.contains(&format!(";; @omit {name}"));
        if !defined && !omitted {
            module.push_str(&text);
        }
    }
    module.push_str(")\n");
    module
}

struct Expectations {
    limits: Limits,
    load: Vec<String>,
    eval: Vec<String>,
    undefined: Vec<String>,
}

fn expectations(fixture: &str) -> Expectations {
    let mut e = Expectations {
        limits: Limits::default(),
        load: Vec::new(),
        eval: Vec::new(),
        undefined: Vec::new(),
    };
    for line in fixture.lines() {
        if let Some(rest) = line.strip_prefix(";; limits:") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').unwrap();
                let v: u64 = v.parse().unwrap();
                match k {
                    "memory" => e.limits.memory_bytes = v,
                    "timeout" => e.limits.timeout = Duration::from_secs(v),
                    "fuel" => e.limits.fuel = Some(v),
                    other => panic!("unknown limit {other}"),
                }
            }
        } else if let Some(rest) = line.strip_prefix(";; expect-load:") {
            e.load.push(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix(";; expect-eval:") {
            e.eval.push(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix(";; expect-undefined:") {
            e.undefined.push(rest.trim().to_string());
        }
    }
    e
}

/// Loads, runs one accumulator over 1000 rows and finalizes; the first error wins. The
/// time is that of loading without compiling (a start function runs then) plus evaluating.
fn run(
    host: &PluginHost,
    name: &str,
    path: &Path,
    limits: Limits,
) -> (Result<Outcome, String>, Duration) {
    // Compile first (not bounded by the plugin's limits), so the timing below is the sandbox's.
    let _ = host.load_path(
        name,
        path,
        Limits {
            timeout: Duration::ZERO,
            ..limits
        },
    );
    let started = Instant::now();
    let result = run_loaded(host, name, path, limits);
    (result, started.elapsed())
}

fn run_loaded(
    host: &PluginHost,
    name: &str,
    path: &Path,
    limits: Limits,
) -> Result<Outcome, String> {
    let plugin = host.load_path(name, path, limits)?;
    let column = common::floats(&(0..1000).map(|i| Some(i as f64)).collect::<Vec<_>>());
    let args = vec![column; plugin.meta.args.len()];
    let run = || -> Result<Outcome, EvalError> {
        let mut acc = plugin.accumulator()?;
        acc.update(Side::Current, &args)?;
        acc.finalize()
    };
    run().map_err(|e| format!("EVAL: {e}"))
}

#[test]
fn hostile_fixtures_fail_cleanly_within_their_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(Some(dir.path().to_path_buf()));
    let mut entries: Vec<_> = std::fs::read_dir(fixtures().join("hostile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wat"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 15, "fixtures missing: {entries:?}");
    let mut failures = Vec::new();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let fixture = std::fs::read_to_string(&path).unwrap();
        let expect = expectations(&fixture);
        assert!(
            !(expect.load.is_empty() && expect.eval.is_empty() && expect.undefined.is_empty()),
            "{name}: no expectation in its header"
        );
        let module = dir.path().join(format!("{name}.wat"));
        std::fs::write(&module, assemble(&fixture)).unwrap();

        let (result, elapsed) = run(&host, &name, &module, expect.limits);
        eprintln!("{name}: {elapsed:?}");
        // Timeouts are enforced to the epoch tick; a second of slack covers a loaded machine.
        let bound = expect.limits.timeout + Duration::from_secs(1);
        if elapsed > bound {
            failures.push(format!("{name}: took {elapsed:?}, bound {bound:?}"));
        }
        let outcome = match (&result, expect.load.is_empty(), expect.eval.is_empty()) {
            (Err(msg), false, _) if !msg.starts_with("EVAL:") => {
                // What `mlc lint` reports must say the same (inspect uses default limits).
                let wanted = &expect.load;
                let missing: Vec<_> = wanted
                    .iter()
                    .filter(|w| !msg.contains(w.as_str()))
                    .collect();
                if !missing.is_empty() {
                    failures.push(format!("{name}: load error {msg:?} lacks {missing:?}"));
                }
                if expect.limits == Limits::default() {
                    match mlc_wasm::inspect(&module) {
                        Ok(sig) => failures.push(format!("{name}: inspect accepted it: {sig:?}")),
                        Err(e) if !wanted.iter().all(|w| e.contains(w.as_str())) => {
                            failures.push(format!("{name}: inspect said {e:?}"))
                        }
                        Err(_) => {}
                    }
                }
                continue;
            }
            (Err(msg), true, false) if msg.starts_with("EVAL:") => {
                let missing: Vec<_> = expect
                    .eval
                    .iter()
                    .filter(|w| !msg.contains(w.as_str()))
                    .collect();
                if !missing.is_empty() {
                    failures.push(format!("{name}: eval error {msg:?} lacks {missing:?}"));
                }
                continue;
            }
            (Ok(outcome), true, true) => outcome,
            (other, _, _) => {
                failures.push(format!("{name}: unexpected result {other:?}"));
                continue;
            }
        };
        match outcome {
            Outcome::Undefined(reason)
                if expect.undefined.iter().all(|w| reason.contains(w.as_str())) => {}
            other => failures.push(format!("{name}: expected undefined, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_base_fixture_is_a_working_plugin() {
    // Guards the harness: if base.wat itself were broken, every hostile case could pass
    // for the wrong reason.
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("base.wat");
    std::fs::write(&module, assemble("")).unwrap();
    let host = PluginHost::without_disk_cache();
    let outcome = run(&host, "base", &module, Limits::default()).0.unwrap();
    assert_eq!(
        outcome,
        Outcome::Value(mlc_engine::value::Value::Float(1000.0))
    );
    let sig = mlc_wasm::inspect(&module).unwrap();
    assert_eq!(sig.args, vec![mlc_engine::schema::DataType::Float]);
}

#[test]
fn a_failed_sandbox_stays_failed_and_other_sandboxes_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let trap = dir.path().join("trap.wat");
    std::fs::write(
        &trap,
        assemble(&std::fs::read_to_string(fixtures().join("hostile/trap_in_update.wat")).unwrap()),
    )
    .unwrap();
    let good = dir.path().join("good.wat");
    std::fs::write(&good, assemble("")).unwrap();
    let host = PluginHost::without_disk_cache();
    let bad = host.load_path("trap", &trap, Limits::default()).unwrap();
    let ok = host.load_path("good", &good, Limits::default()).unwrap();
    let col = common::floats(&[Some(1.0), None, Some(3.0)]);

    let mut bad_acc = bad.accumulator().unwrap();
    let mut ok_acc = ok.accumulator().unwrap();
    let first = bad_acc
        .update(Side::Current, std::slice::from_ref(&col))
        .unwrap_err();
    ok_acc
        .update(Side::Current, std::slice::from_ref(&col))
        .unwrap();
    // The poisoned sandbox repeats its first failure instead of running on a broken state.
    let again = bad_acc.finalize().unwrap_err();
    assert_eq!(first, again);
    assert_eq!(
        ok_acc.finalize().unwrap(),
        Outcome::Value(mlc_engine::value::Value::Float(2.0))
    );
    // A new session of the same plugin starts clean.
    let mut fresh = ok.accumulator().unwrap();
    fresh.update(Side::Current, &[col]).unwrap();
    assert_eq!(
        fresh.finalize().unwrap(),
        Outcome::Value(mlc_engine::value::Value::Float(2.0))
    );
}

#[test]
fn each_failure_counts_once_under_its_reason() {
    // (fixture, the reason its evaluation fails with); a sandbox that failed repeats its
    // failure to later calls (finalize here) without counting it again.
    let cases = [
        ("infinite_loop", "timeout"),
        ("infinite_loop_fuel", "fuel"),
        ("memory_bomb", "memory"),
        ("huge_alloc", "memory"),
        ("stack_overflow", "stack"),
        ("trap_in_update", "trap"),
        ("lying_arity", "trap"),
        ("nan_result", "output"),
        ("infinite_result", "output"),
        ("bad_alloc_pointer", "output"),
        ("update_error_status", "reported"),
        ("undefined_result", ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(Some(dir.path().to_path_buf()));
    let column = common::floats(&(0..1000).map(|i| Some(i as f64)).collect::<Vec<_>>());
    let mut failures = Vec::new();
    for (name, reason) in cases {
        let fixture =
            std::fs::read_to_string(fixtures().join(format!("hostile/{name}.wat"))).unwrap();
        let limits = expectations(&fixture).limits;
        let module = dir.path().join(format!("{name}.wat"));
        std::fs::write(&module, assemble(&fixture)).unwrap();
        let plugin = host.load_path(name, &module, limits).unwrap();
        let counts = mlc_wasm::FailureCounts::new();
        let args = vec![column.clone(); plugin.meta.args.len()];
        let outcome = (|| -> Result<Outcome, EvalError> {
            let mut acc = plugin.accumulator_counted(&counts)?;
            let updated = acc.update(Side::Current, &args);
            let finalized = acc.finalize();
            updated?;
            finalized
        })();
        let expected = if reason.is_empty() {
            vec![]
        } else {
            vec![(name.to_string(), reason, 1)]
        };
        if counts.snapshot() != expected {
            failures.push(format!(
                "{name}: counted {:?}, expected {expected:?} (outcome {outcome:?})",
                counts.snapshot()
            ));
        }
        // The same plugin without a tally still fails, and counts nowhere.
        let _ = plugin.accumulator().and_then(|mut acc| {
            acc.update(Side::Current, &args)?;
            acc.finalize()
        });
        assert_eq!(counts.snapshot().len(), expected.len());
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
