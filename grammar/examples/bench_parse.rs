//! Times parsing (and formatting) a generated file of 2,000 checks, about 20,000 lines.
//! Run in release: `cargo run -p mlc-grammar --release --example bench_parse`.
//! The requirement is "well under 200 ms" to parse. An argument sets another number of
//! checks.

use std::fmt::Write as _;
use std::time::Instant;

use mlc_grammar::{FileId, format, parse};

fn generate(checks: usize) -> String {
    let mut s = String::new();
    s.push_str("component inference {\n  key request_id\n  time ts\n  fields {\n");
    s.push_str(
        "    age: int\n    score: float\n    country: string\n    prediction: int\n  }\n}\n\n",
    );
    for i in 0..checks {
        let _ = write!(
            s,
            "# check number {i}\n\
             check generated_{i} {{\n\
             \x20 on inference join feedback using request_id\n\
             \x20 window {w}d\n\
             \x20 baseline offset 7d\n\
             \x20 where country in [\"DE\", \"US\"] and age is not null\n\
             \x20 group by country\n\
             \x20 min_rows 200\n\
             \x20 expect recall(prediction, label) >= 0.9 and mean(score) within 20% of baseline.mean(score)\n\
             \x20 expect ks(age).pvalue > 0.01 or not (rate(age between 0 and 120) < 99%)\n\
             \x20 labels {{ team: \"risk\", n: \"{i}\" }}\n\
             }}\n\n",
            w = 1 + i % 30
        );
    }
    s
}

/// CPU time of this thread in seconds (Linux), so that a machine busy with other work
/// does not inflate the figure; `None` elsewhere.
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn main() {
    // An optional argument sets the number of checks (e.g. fewer under valgrind).
    let checks = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let text = generate(checks);
    let lines = text.lines().count();
    // Warm up once, then take the best of a few runs to damp noise on a shared machine.
    let file = match parse(FileId(0), &text) {
        Ok(f) => f,
        Err(d) => {
            eprintln!("generated file does not parse: {d:?}");
            std::process::exit(1);
        }
    };
    let mut best_parse = f64::MAX;
    let mut best_parse_cpu = f64::MAX;
    let mut best_fmt = f64::MAX;
    for _ in 0..5 {
        let (t, c) = (Instant::now(), thread_cpu());
        let parsed = parse(FileId(0), &text);
        best_parse = best_parse.min(t.elapsed().as_secs_f64());
        if let (Some(c0), Some(c1)) = (c, thread_cpu()) {
            best_parse_cpu = best_parse_cpu.min(c1 - c0);
        }
        if let Ok(f) = parsed {
            let t = Instant::now();
            let out = format(&f, &text);
            best_fmt = best_fmt.min(t.elapsed().as_secs_f64());
            assert!(!out.is_empty());
            // Dropping the AST is part of a parse's cost for a caller; keep it out of
            // the format figure.
            drop(f);
        }
    }
    println!(
        "{} checks, {lines} lines, {} KiB: parse {:.1} ms wall, {:.1} ms CPU; format {:.1} ms wall \
         (best of 5)",
        file.items.len() - 1,
        text.len() / 1024,
        best_parse * 1e3,
        best_parse_cpu * 1e3,
        best_fmt * 1e3
    );
}
