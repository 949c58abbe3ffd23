//! Rendering of diagnostics: the exact plain layout, color only when asked, and
//! diagnostics from the later stages (warnings, labels in other files, stale spans).
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use mlc_grammar::ast::Span;
use mlc_grammar::{Code, Diagnostic, Sources, render};

fn sources() -> (Sources, mlc_grammar::FileId, mlc_grammar::FileId) {
    let mut s = Sources::default();
    let a = s.add(
        "checks/a.mlc",
        "check a {\n  on inference\n  expect age >= 0\n}\n",
    );
    let b = s.add(
        "checks/b.mlc",
        "component inference {\n  key id\n  time ts\n}\n",
    );
    (s, a, b)
}

#[test]
fn plain_layout_is_exact() {
    let (s, a, b) = sources();
    let d = Diagnostic::warning(Code::Syntax, a, Span::new(34, 42), "a row-level expect")
        .with_label("judged per row")
        .with_secondary(b, Span::new(10, 19), "declared here")
        .with_help("write `all(age >= 0)`");
    let out = render(&[d], &s, false);
    let want = "\
warning[E0001]: a row-level expect
  --> checks/a.mlc:3:10
  |
3 |   expect age >= 0
  |          ^^^^^^^^ judged per row
  |
  --> checks/b.mlc:1:11
  |
1 | component inference {
  |           --------- declared here
  |
  = help: write `all(age >= 0)`

";
    assert_eq!(out, want);
}

#[test]
fn color_only_when_asked() {
    let (s, a, _) = sources();
    let d = Diagnostic::error(Code::Syntax, a, Span::new(0, 5), "boom");
    assert!(!render(std::slice::from_ref(&d), &s, false).contains('\u{1b}'));
    assert!(render(&[d], &s, true).contains('\u{1b}'));
}

#[test]
fn a_span_past_the_end_still_renders() {
    let (s, a, _) = sources();
    let d = Diagnostic::error(Code::Syntax, a, Span::new(500, 900), "stale");
    let out = render(&[d], &s, false);
    assert!(out.starts_with("error[E0001]: stale"), "{out}");
}
