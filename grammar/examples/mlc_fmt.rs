//! Prints the canonical form of each `.mlc` file given as an argument (what `mlc fmt`
//! would write), or its diagnostics.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use mlc_grammar::{Sources, format_source, render};

fn main() {
    let mut sources = Sources::default();
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let id = sources.add(path.clone(), text.clone());
        match format_source(id, &text) {
            Ok(out) => print!("{out}"),
            Err(diags) => eprint!("{}", render(&diags, &sources, false)),
        }
    }
}
