//! `mlc fmt` over every `.mlc` file in the repository (walked at test time, so new
//! examples and test cases are covered as they are added): formatting is idempotent,
//! keeps the meaning (the AST, spans aside) and keeps every comment.

// Test helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::{comment_texts, erase_spans, mlc_files, repo_root};
use mlc_grammar::{FileId, format, parse};

#[test]
fn format_is_idempotent_and_keeps_meaning_over_the_repository() {
    let files = mlc_files(&repo_root());
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        // Files that do not parse (syntax-error cases) are covered by the error tests.
        let Ok(ast) = parse(FileId(0), &text) else {
            continue;
        };
        checked += 1;
        let once = format(&ast, &text);
        let reparsed = match parse(FileId(0), &once) {
            Ok(a) => a,
            Err(d) => {
                failures.push(format!(
                    "{}: formatted text does not parse: {d:?}",
                    path.display()
                ));
                continue;
            }
        };
        if erase_spans(&reparsed) != erase_spans(&ast) {
            failures.push(format!(
                "{}: formatting changed the meaning",
                path.display()
            ));
        }
        if comment_texts(&reparsed) != comment_texts(&ast) {
            failures.push(format!(
                "{}: formatting lost or changed a comment",
                path.display()
            ));
        }
        let twice = format(&reparsed, &once);
        if twice != once {
            failures.push(format!(
                "{}: not idempotent:\n{once}\n---\n{twice}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The grammar's own cases alone are more than this; fewer means the walk broke.
    assert!(
        checked >= 10,
        "only {checked} parseable .mlc files found under {}",
        repo_root().display()
    );
}

#[test]
fn span_erasing_comparison_sees_real_differences() {
    let a = parse(FileId(0), "check c { on x expect a > 1 }").unwrap();
    let b = parse(FileId(0), "check c {\n  on x\n  expect a  >  1\n}").unwrap();
    let c = parse(FileId(0), "check c { on x expect a >= 1 }").unwrap();
    assert_eq!(erase_spans(&a), erase_spans(&b));
    assert_ne!(erase_spans(&a), erase_spans(&c));
}
