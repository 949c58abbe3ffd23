//! Parses the `.mlc` files given as arguments and prints their AST or their diagnostics;
//! a quick way to see what the parser makes of a file.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use mlc_grammar::{Sources, parse, render};

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
        match parse(id, &text) {
            Ok(file) => println!("{file:#?}"),
            Err(diags) => print!("{}", render(&diags, &sources, false)),
        }
    }
}
