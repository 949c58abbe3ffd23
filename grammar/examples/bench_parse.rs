//! Times parsing (and formatting) generated files of 2,000 checks.
//! Run in release: `cargo run -p mlc-grammar --release --example bench_parse [CHECKS]`.
//! The requirement is "well under 200 ms" to parse 2,000 checks (about 20,000 lines).
//!
//! Two files are measured: `typical` repeats the shapes of the example pipeline's checks
//! (about 10 lines each); `dense` gives every check long expressions in three clauses,
//! the heavier case. CPU time is printed beside wall time because a machine busy with
//! other work inflates the wall time.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::fmt::Write as _;
use std::time::Instant;

use mlc_grammar::{FileId, format, parse};

const HEADER: &str = "component inference {\n  key request_id\n  time ts\n  fields {\n    \
                      age: int\n    score: float\n    country: string\n    prediction: int\n  \
                      }\n}\n\n";

fn typical(checks: usize) -> String {
    let mut s = HEADER.to_string();
    for i in 0..checks {
        let _ = match i % 3 {
            0 => write!(
                s,
                "# Monthly recall SLO, number {i}.\n\
                 check recall_{i} {{\n\
                 \x20 on inference join feedback using request_id\n\
                 \x20 window 30d\n\
                 \x20 delay 2d\n\
                 \x20 group by country\n\
                 \x20 min_rows 200\n\
                 \x20 expect recall(prediction, label) >= 0.9\n\
                 \x20 severity critical\n\
                 \x20 labels {{ team: \"risk\" }}\n\
                 }}\n\n"
            ),
            1 => write!(
                s,
                "check drift_{i} {{\n\
                 \x20 on inference\n\
                 \x20 window 1d\n\
                 \x20 baseline offset 7d\n\
                 \x20 each feature in [age, score]\n\
                 \x20 min_rows 500\n\
                 \x20 expect psi(feature) < 0.2\n\
                 \x20 description \"Input features drift against last week\"\n\
                 }}\n\n"
            ),
            _ => write!(
                s,
                "check validity_{i} {{\n\
                 \x20 on inference\n\
                 \x20 window 1d\n\
                 \x20 where age is not null\n\
                 \x20 group by country\n\
                 \x20 expect all(age between 0 and 120)\n\
                 \x20 expect null_rate(score) < 5%\n\
                 \x20 labels {{ team: \"platform\", component: \"inference\" }}\n\
                 }}\n\n"
            ),
        };
    }
    s
}

fn dense(checks: usize) -> String {
    let mut s = HEADER.to_string();
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

/// CPU time of this thread in seconds (Linux), `None` elsewhere.
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn measure(name: &str, text: &str) {
    let lines = text.lines().count();
    let items = match parse(FileId(0), text) {
        Ok(f) => f.items.len(),
        Err(d) => {
            eprintln!("the {name} file does not parse: {d:?}");
            std::process::exit(1);
        }
    };
    // Best of five, after a warm-up, to damp the noise of a shared machine.
    let (mut wall, mut cpu, mut fmt) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (t, c) = (Instant::now(), thread_cpu());
        let parsed = parse(FileId(0), text);
        wall = wall.min(t.elapsed().as_secs_f64());
        if let (Some(c0), Some(c1)) = (c, thread_cpu()) {
            cpu = cpu.min(c1 - c0);
        }
        if let Ok(f) = parsed {
            let t = Instant::now();
            let out = format(&f, text);
            fmt = fmt.min(t.elapsed().as_secs_f64());
            assert!(!out.is_empty());
        }
    }
    println!(
        "{name:>7}: {} checks, {lines} lines, {} KiB: parse {:.1} ms wall, {:.1} ms CPU; \
         format {:.1} ms wall (best of 5)",
        items - 1,
        text.len() / 1024,
        wall * 1e3,
        cpu * 1e3,
        fmt * 1e3
    );
}

fn main() {
    // An optional argument sets the number of checks (e.g. fewer under valgrind).
    let checks = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    measure("typical", &typical(checks));
    measure("dense", &dense(checks));
}
