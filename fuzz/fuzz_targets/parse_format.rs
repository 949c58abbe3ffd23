//! Fuzzes the parser and the formatter: no input may panic, overflow the stack or hang,
//! and for every input that parses, the canonical form must parse again to the same
//! meaning and be a fixed point of formatting.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlc_grammar::{FileId, Sources, format, parse, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(FileId(0), text) {
        Ok(ast) => {
            let once = format(&ast, text);
            let reparsed = match parse(FileId(0), &once) {
                Ok(a) => a,
                Err(d) => panic!("formatted text does not parse: {d:?}\n{once}"),
            };
            assert_eq!(
                strip(&format!("{:?}", reparsed.items)),
                strip(&format!("{:?}", ast.items))
            );
            let twice = format(&reparsed, &once);
            assert_eq!(once, twice, "formatting is not idempotent");
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            let mut sources = Sources::default();
            sources.add("fuzz.mlc", text);
            let _ = render(&diags, &sources, false);
        }
    }
});

/// The AST's debug text without spans, which formatting is allowed to change.
fn strip(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("Span { start: ") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}
