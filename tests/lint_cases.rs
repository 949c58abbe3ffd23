//! Data-driven tests of `mlc lint` and `mlc explain`: every `tests/cases/valid/*.mlc` with its
//! plan, every `tests/cases/invalid/*.mlc` with its rendered diagnostics (insta snapshots);
//! every diagnostic code has a case and a section in docs/diagnostics.md; formatting any
//! `.mlc` file of the repository does not change what it means.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use mlc_engine::load::FileSystem;
use mlc_grammar::{Code, Diagnostic, FileId};
use mlc_runtime::rules::{DiskFs, Rules, WasmPlugins, load_rules_with};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The path as the command would be given it from the repository root.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(ROOT).unwrap_or(path).to_path_buf()
}

fn lint(path: &Path) -> Rules {
    load_rules_with(&DiskFs, &WasmPlugins, &[relative(path)])
}

#[test]
fn valid_cases_explain() {
    insta::glob!("cases/valid/*.mlc", |path| {
        let rules = lint(path);
        assert!(
            !rules.has_errors(),
            "{} should lint clean:\n{}",
            path.display(),
            rules.render(false)
        );
        assert!(
            !rules.program.checks.is_empty(),
            "{} has no check to explain",
            path.display()
        );
        let text = mlc_engine::explain::explain(&rules.program, None).unwrap_or_default();
        insta::assert_snapshot!("explain", text);
    });
}

#[test]
fn invalid_cases_diagnostics() {
    insta::glob!("cases/invalid/*.mlc", |path| {
        let rules = lint(path);
        assert!(rules.has_errors(), "{} should not lint", path.display());
        let text = format!("{}{}\n", rules.render(false), rules.summary());
        insta::assert_snapshot!("diagnostics", text);
    });
}

/// Codes that no file can produce, with the reason. Keep in step with docs/diagnostics.md.
const UNREACHABLE_FROM_FILES: &[Code] = &[];

fn invalid_cases() -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join("tests/cases/invalid");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mlc"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_code_has_an_invalid_case() {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for path in invalid_cases() {
        for d in lint(&path).diagnostics {
            seen.insert(d.code.as_str());
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !UNREACHABLE_FROM_FILES.contains(c))
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "no case in tests/cases/invalid produces {missing:?}"
    );
}

#[test]
fn diagnostics_doc_lists_every_code() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/diagnostics.md")).unwrap();
    let headings: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = Code::ALL
        .iter()
        .map(|c| format!("{}: {}", c.as_str(), c.title()))
        .collect();
    assert_eq!(
        headings, expected,
        "docs/diagnostics.md must have one `## CODE: title` section per code of Code::ALL, in order"
    );
}

/// Reads files from disk and hands out their canonical form (the original when it does not
/// parse), so a load sees the whole program as `mlc fmt` would leave it.
struct Formatted;

impl FileSystem for Formatted {
    fn read(&self, path: &Path) -> io::Result<String> {
        let text = DiskFs.read(path)?;
        Ok(mlc_grammar::format_source(FileId(0), &text).unwrap_or(text))
    }
    fn list_mlc(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        DiskFs.list_mlc(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        DiskFs.is_dir(path)
    }
}

fn repo_mlc_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    walk(&path, out);
                }
            } else if name.ends_with(".mlc") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(ROOT), &mut out);
    out.sort();
    out
}

fn meaning(diags: &[Diagnostic]) -> Vec<(Code, String)> {
    diags.iter().map(|d| (d.code, d.message.clone())).collect()
}

#[test]
fn formatting_keeps_every_plan() {
    let files = repo_mlc_files();
    assert!(
        files.len() >= 10,
        "expected the repository's .mlc files, found {}",
        files.len()
    );
    for path in files {
        let rel = relative(&path);
        let before = load_rules_with(&DiskFs, &WasmPlugins, std::slice::from_ref(&rel));
        let after = load_rules_with(&Formatted, &WasmPlugins, std::slice::from_ref(&rel));
        assert_eq!(
            meaning(&before.diagnostics),
            meaning(&after.diagnostics),
            "formatting {} changes its diagnostics",
            rel.display()
        );
        let explain =
            |r: &Rules| mlc_engine::explain::explain(&r.program, None).unwrap_or_default();
        assert_eq!(
            explain(&before),
            explain(&after),
            "formatting {} changes its plans",
            rel.display()
        );
        let tests = |r: &Rules| {
            format!(
                "{:?}",
                r.program
                    .tests
                    .iter()
                    .map(|t| (&t.name, &t.rows, t.asserts.len()))
                    .collect::<Vec<_>>()
            )
        };
        assert_eq!(
            tests(&before),
            tests(&after),
            "formatting {} changes its tests",
            rel.display()
        );
    }
}

/// The ready-made checks and every example folder (each is its own program: examples may
/// declare the same component names) lint clean.
#[test]
fn repository_rules_lint_clean() {
    let mut dirs = vec![PathBuf::from("checks"), PathBuf::from("examples/pipeline")];
    if let Ok(entries) = std::fs::read_dir(Path::new(ROOT).join("examples/plugins")) {
        let mut plugins: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .map(|p| relative(&p))
            .collect();
        plugins.sort();
        dirs.extend(plugins);
    }
    for dir in dirs {
        let rules = load_rules_with(&DiskFs, &WasmPlugins, std::slice::from_ref(&dir));
        assert!(
            !rules.has_errors(),
            "{} does not lint:\n{}",
            dir.display(),
            rules.render(false)
        );
    }
}
