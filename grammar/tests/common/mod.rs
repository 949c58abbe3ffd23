//! Helpers shared by the grammar's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mlc_grammar::ast::File;

/// The AST as text with every span replaced by `_`, so two parses of differently laid
/// out text compare equal when they mean the same.
pub fn erase_spans(file: &File) -> String {
    let debug = format!("{:?}", file.items);
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(i) = rest.find("Span { start: ") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        out.push('_');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The comments' texts, sorted: formatting may move a comment written inside an
/// expression after it, but never drops or changes one.
pub fn comment_texts(file: &File) -> Vec<String> {
    let mut v: Vec<String> = file.comments.iter().map(|c| c.text.clone()).collect();
    v.sort();
    v
}

/// Every `*.mlc` file under `dir`, recursively, skipping build output and VCS folders.
pub fn mlc_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | "node_modules")
                    && !name.starts_with('.')
                {
                    stack.push(path);
                }
            } else if name.ends_with(".mlc") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
