//! Data-driven tests: every file under `tests/cases/` with its snapshot.
//!
//! - `parse/*.mlc` must parse; the snapshot is the AST.
//! - `errors/*.mlc` must not parse; the snapshot is the rendered diagnostics.
//! - `fmt/*.mlc` must parse; the snapshot is the canonical form.

// Test helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use mlc_grammar::{FileId, Sources, format_source, parse, render};

fn read(path: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = format!("cases/{}", path.file_name().unwrap().to_string_lossy());
    (name, text)
}

#[test]
fn parse_cases() {
    insta::glob!("cases/parse/*.mlc", |path| {
        let (_, text) = read(path);
        let file = parse(FileId(0), &text).unwrap_or_else(|d| panic!("{}: {d:#?}", path.display()));
        insta::assert_debug_snapshot!(file);
    });
}

#[test]
fn error_cases() {
    insta::glob!("cases/errors/*.mlc", |path| {
        let (name, text) = read(path);
        let mut sources = Sources::default();
        let id = sources.add(name, text.clone());
        let diags = match parse(id, &text) {
            Ok(_) => panic!("{} parsed without error", path.display()),
            Err(d) => d,
        };
        let rendered = render(&diags, &sources, false);
        // Messages speak the language's words, never the grammar's rule names.
        for bad in [
            "k_",
            "op_",
            "lterm",
            "arith",
            "primary",
            "EOI",
            "WHITESPACE",
        ] {
            assert!(
                !rendered.contains(bad),
                "{}: rule name `{bad}` leaked:\n{rendered}",
                path.display()
            );
        }
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn fmt_cases() {
    insta::glob!("cases/fmt/*.mlc", |path| {
        let (_, text) = read(path);
        let formatted = format_source(FileId(0), &text).unwrap_or_else(|d| panic!("{d:#?}"));
        let again = format_source(FileId(0), &formatted).unwrap_or_else(|d| panic!("{d:#?}"));
        assert_eq!(formatted, again, "formatting is not idempotent");
        insta::assert_snapshot!(formatted);
    });
}
