//! The example pipeline's rule files, compiled into the binary so that `mlc demo` runs
//! from any directory; `mlc demo --checks DIR` reads edited copies from disk instead.

/// `(file name, text)` of every file of examples/pipeline, in sorted order.
pub const FILES: &[(&str, &str)] = &[
    (
        "components.mlc",
        include_str!("../../examples/pipeline/components.mlc"),
    ),
    (
        "consistency.mlc",
        include_str!("../../examples/pipeline/consistency.mlc"),
    ),
    (
        "drift.mlc",
        include_str!("../../examples/pipeline/drift.mlc"),
    ),
    (
        "quality.mlc",
        include_str!("../../examples/pipeline/quality.mlc"),
    ),
    (
        "validity.mlc",
        include_str!("../../examples/pipeline/validity.mlc"),
    ),
];

/// Names of the checks declared in the embedded files (`check NAME {`), for tests and
/// for telling a user which checks the demo runs.
pub fn check_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    for (_, text) in FILES {
        for line in text.lines() {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix("check ")
                && let Some(name) = rest.split_whitespace().next()
            {
                names.push(name);
            }
        }
    }
    names
}
