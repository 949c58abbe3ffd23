//! Keeps `docs/functions.md` identical to what the registry generates, and checks the facts
//! the docs and the checker rely on: names are unique, every example calls its function and
//! has rows its runner (runtime/tests/function_examples.rs) can place, and every aggregate has
//! an accumulator. `MLC_UPDATE_DOCS=1` rewrites the file.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use mlc_engine::functions::{self, FunctionKind, docs};

#[test]
fn functions_md_is_generated_from_the_registry() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/functions.md");
    let want = docs::markdown();
    if std::env::var_os("MLC_UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
        return;
    }
    let got = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        got == want,
        "docs/functions.md is out of date with the registry; regenerate it with\n\
         MLC_UPDATE_DOCS=1 cargo test -p mlc-engine --test functions_docs"
    );
}

#[test]
fn registry_is_consistent() {
    let all = functions::all();
    let mut names: Vec<_> = all.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "duplicate builtin names");
    for f in all {
        let sig = f.signature();
        assert!(
            sig.required <= sig.params.len(),
            "{}: required > params",
            f.name()
        );
        assert!(!f.summary().is_empty(), "{} has no summary", f.name());
        assert!(!f.examples().is_empty(), "{} has no example", f.name());
        for e in f.examples() {
            assert!(
                e.source.contains(&format!("{}(", f.name())),
                "{}: example `{}` does not call it",
                f.name(),
                e.source
            );
            assert!(
                e.source.starts_with("expect "),
                "{}: example is not an expect",
                f.name()
            );
            // The runner gives rows one minute apart inside a one-day window, and each label
            // the key of the row at its position.
            assert!(
                !e.rows.is_empty() && e.rows.len() <= 1440 && e.baseline.len() <= 1440,
                "{}: example `{}` needs 1 to 1440 rows",
                f.name(),
                e.source
            );
            assert!(
                e.labels.len() <= e.rows.len(),
                "{}: example `{}` has more labels than rows",
                f.name(),
                e.source
            );
        }
        let has_acc = f.accumulator().is_some();
        match sig.kind {
            FunctionKind::Aggregate | FunctionKind::TwoSample => {
                assert!(has_acc, "{} has no accumulator", f.name())
            }
            FunctionKind::Scalar | FunctionKind::Special => {
                assert!(!has_acc, "{} should not have an accumulator", f.name())
            }
        }
        assert!(functions::lookup(f.name()).is_some());
    }
}

#[test]
fn every_example_compiles_as_a_check() {
    use std::path::PathBuf;

    use mlc_engine::check::{NoPlugins, compile};
    use mlc_engine::load::{MemoryFs, load};

    let mut text = String::from(docs::EXAMPLE_COMPONENTS);
    let mut n = 0;
    for f in functions::all() {
        for e in f.examples() {
            n += 1;
            // A join lets `coverage()` check, a baseline the two-sample and `baseline.` ones.
            text.push_str(&format!(
                "check example_{n}_{} {{\n  on inference join feedback using request_id\n  \
                 baseline offset 7d\n  {}\n}}\n",
                f.name(),
                e.source
            ));
        }
    }
    let fs = MemoryFs::new().with("examples.mlc", text);
    let loaded = load(&fs, &[PathBuf::from("examples.mlc")]);
    let render = |d| mlc_grammar::render(d, &loaded.sources, false);
    assert!(!loaded.has_errors(), "{}", render(&loaded.diagnostics));
    let (program, diags) = compile(&loaded.files, &loaded.sources, &NoPlugins);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    assert!(errors.is_empty(), "{}", render(&errors));
    assert_eq!(program.checks.len(), n);
}
