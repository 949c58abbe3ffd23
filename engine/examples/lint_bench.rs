//! The lint benchmark: a generated file of 2,000 checks (about 20,000 lines), loaded, parsed
//! and checked five times; prints each run and the best. Run with
//! `cargo run -p mlc-engine --release --example lint_bench` (bench/README.md).
#![allow(clippy::unwrap_used)] // benches fail loudly on purpose

use std::path::PathBuf;
use std::time::Instant;

use mlc_engine::check::{NoPlugins, compile};
use mlc_engine::load::{MemoryFs, load};

const COMPONENTS: &str = r#"
component inference {
  key request_id
  time ts
  fields {
    age: int
    income: float
    country: string
    score: float
    prediction: int
  }
}
component feedback {
  key request_id
  time ts
  fields { label: int, country: string }
}
"#;

fn main() {
    let mut text = String::from(COMPONENTS);
    for i in 0..2000 {
        text.push_str(&format!(
            "\n# check number {i}\ncheck c{i} {{\n  on inference join feedback using request_id\n  window {}d\n  delay 2d\n  \
             group by inference.country\n  where age between 18 and 120\n  expect recall(prediction, label) >= 0.9\n  \
             expect null_rate(income) < 5%\n  severity critical\n  labels {{ team: \"risk\" }}\n}}\n",
            1 + i % 30
        ));
    }
    let lines = text.lines().count();
    let fs = MemoryFs::new().with("big.mlc", text);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let loaded = load(&fs, &[PathBuf::from("big.mlc")]);
        let parsed = start.elapsed().as_secs_f64();
        let (program, diags) = compile(&loaded.files, &loaded.sources, &NoPlugins);
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "  load+parse {:.1} ms, check {:.1} ms",
            parsed * 1000.0,
            (elapsed - parsed) * 1000.0
        );
        assert!(diags.is_empty() && program.checks.len() == 2000);
        best = best.min(elapsed);
    }
    println!(
        "lint of 2,000 checks ({lines} lines): {:.1} ms (best of 5)",
        best * 1000.0
    );
}
