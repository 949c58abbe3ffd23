//! The parser and the formatter never panic, whatever the input: arbitrary strings,
//! strings made of the language's own tokens, and mutations of valid files.

// Test helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::{comment_texts, erase_spans};
use mlc_grammar::{FileId, Sources, format, parse, render};
use proptest::prelude::*;

const VALID: &str = include_str!("cases/parse/check_clauses.mlc");
const VALID_TEST: &str = include_str!("cases/parse/test_block.mlc");
const VALID_EXPR: &str = include_str!("cases/parse/expressions.mlc");
const MESSY: &str = include_str!("cases/fmt/messy.mlc");

fn exercise(text: &str) {
    match parse(FileId(0), text) {
        Ok(ast) => {
            let out = format(&ast, text);
            // What the formatter prints must parse again, mean the same, keep every
            // comment, and be a fixed point.
            let again = match parse(FileId(0), &out) {
                Ok(a) => a,
                Err(d) => panic!("formatted text does not parse: {d:?}\n{out}"),
            };
            assert_eq!(
                erase_spans(&again),
                erase_spans(&ast),
                "meaning changed:\n{text}\n---\n{out}"
            );
            assert_eq!(
                comment_texts(&again),
                comment_texts(&ast),
                "comments changed:\n{out}"
            );
            assert_eq!(format(&again, &out), out, "not idempotent:\n{text}");
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            let mut sources = Sources::default();
            sources.add("f.mlc", text);
            let rendered = render(&diags, &sources, false);
            assert!(rendered.contains("error["));
        }
    }
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "check",
        "component",
        "test",
        "plugin",
        "import",
        "on",
        "window",
        "expect",
        "where",
        "group",
        "by",
        "each",
        "in",
        "not",
        "and",
        "or",
        "between",
        "within",
        "of",
        "is",
        "null",
        "baseline",
        "offset",
        "from",
        "to",
        "join",
        "left",
        "using",
        "key",
        "time",
        "fields",
        "labels",
        "rows",
        "assert",
        "at",
        "for",
        "x",
        "mean",
        "ks",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        ".",
        "<",
        "<=",
        "==",
        "!=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "1",
        "2.5",
        "1e-6",
        "10%",
        "7d",
        "64MiB",
        "\"s\"",
        "\"unterminated",
        "`q`",
        "`",
        "#c\n",
        "#c\r\n",
        "\r\n",
        "\u{feff}",
        "\n",
        " ",
        "é",
        "\\",
    ])
}

fn mutate(base: &str, at: usize, len: usize, insert: &str) -> String {
    let mut s = base.to_string();
    let mut at = at % (s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    let mut end = (at + len).min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.replace_range(at..end, insert);
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}") {
        exercise(&text);
    }

    #[test]
    fn token_soup(tokens in prop::collection::vec(token(), 0..60)) {
        exercise(&tokens.join(" "));
    }

    #[test]
    fn mutated_valid_files(
        which in 0usize..3,
        at in any::<usize>(),
        len in 0usize..12,
        insert in prop::collection::vec(token(), 0..3),
    ) {
        let base = [VALID, VALID_TEST, VALID_EXPR][which];
        exercise(&mutate(base, at, len, &insert.join(" ")));
    }
}

/// Inserts a comment (up to a line break) at each chosen whitespace position.
fn with_comments(base: &str, picks: &[usize]) -> String {
    let spaces: Vec<usize> = base.match_indices([' ', '\n']).map(|(i, _)| i).collect();
    let mut at: Vec<usize> = picks.iter().map(|p| spaces[p % spaces.len()]).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = String::with_capacity(base.len() + at.len() * 12);
    let mut last = 0;
    for (n, i) in at.into_iter().enumerate() {
        out.push_str(&base[last..i]);
        out.push_str(&format!(" # note {n}\n"));
        last = i;
    }
    out.push_str(&base[last..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Comments anywhere between tokens survive formatting, which stays a fixed point.
    #[test]
    fn comments_anywhere(which in 0usize..4, picks in prop::collection::vec(any::<usize>(), 1..8)) {
        let base = [VALID, VALID_TEST, VALID_EXPR, MESSY][which];
        exercise(&with_comments(base, &picks));
    }
}

#[test]
fn deep_and_long_inputs_do_not_overflow_the_stack() {
    let deep = format!(
        "check c {{ on x expect {}a{} > 0 }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    exercise(&deep);
    let negs = format!("check c {{ on x expect {}a > 0 }}", "- ".repeat(5000));
    exercise(&negs);
    let nots = format!("check c {{ on x expect {}a }}", "not ".repeat(5000));
    exercise(&nots);
    let long = format!("check c {{ on x expect a{} > 0 }}", " + a".repeat(3000));
    exercise(&long);
    let calls = format!(
        "check c {{ on x expect {}a{} > 0 }}",
        "f(".repeat(3000),
        ")".repeat(3000)
    );
    exercise(&calls);
}
