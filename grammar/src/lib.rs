//! mlc-grammar: the `.mlc` language from text to a spanned AST, the diagnostics type shared
//! by every compilation stage, and the canonical formatter behind `mlc fmt`.
//!
//! This crate knows nothing about metrics, types or storage.

pub mod ast;
pub mod diagnostic;
mod display;
pub mod fmt;
pub mod names;
mod parser;
pub mod render;
mod scan;

pub use diagnostic::{Code, Diagnostic, FileId, Level, Sources};
pub use fmt::{format, format_source};
pub use names::{KEYWORDS, is_keyword};
pub use render::render;

/// Parses one file. On a syntax error returns every diagnostic found (at least one).
pub fn parse(file: FileId, text: &str) -> Result<ast::File, Vec<Diagnostic>> {
    parser::parse_file(file, text)
}
