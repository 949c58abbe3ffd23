//! Renders diagnostics as text, `rustc` style, with codespan-reporting: the code and
//! message, `--> file:line:col`, the source line with the span underlined, and the help.
//!
//! Without color the output is plain and deterministic, which is what the snapshot tests
//! and `mlc lint`'s output when piped rely on.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Chars, Config, Styles, StylesWriter, termcolor::Ansi};

use crate::diagnostic::{Diagnostic, Level, Sources};

/// Renders every diagnostic, in order, each followed by a blank line.
pub fn render(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let mut files = SimpleFiles::new();
    for f in &sources.files {
        files.add(f.name.as_str(), f.text.as_str());
    }
    // ASCII art (`-->`, `|`) as rustc prints it: it survives every terminal, log
    // viewer and CI page, and snapshots stay plain text.
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let styles = Styles::default();
    let mut out = String::new();
    for d in diags {
        let cs_diag = to_codespan(d, sources);
        let rendered = if color {
            let mut ansi = Ansi::new(Vec::new());
            let mut writer = StylesWriter::new(&mut ansi, &styles);
            let ok = term::emit_to_write_style(&mut writer, &config, &files, &cs_diag).is_ok();
            ok.then(|| String::from_utf8_lossy(&ansi.into_inner()).into_owned())
        } else {
            let mut s = String::new();
            term::emit_to_string(&mut s, &config, &files, &cs_diag)
                .ok()
                .map(|_| s)
        };
        // A span outside its file (a stale diagnostic) must still say something useful.
        out.push_str(&rendered.unwrap_or_else(|| plain_fallback(d, sources)));
    }
    out
}

fn clamp(d: &crate::diagnostic::Label, sources: &Sources) -> std::ops::Range<usize> {
    let len = sources.get(d.file).map_or(0, |f| f.text.len());
    let r = d.span.range();
    r.start.min(len)..r.end.min(len).max(r.start.min(len))
}

fn to_codespan(d: &Diagnostic, sources: &Sources) -> cs::Diagnostic<usize> {
    let severity = match d.level {
        Level::Error => cs::Severity::Error,
        Level::Warning => cs::Severity::Warning,
    };
    let mut labels = vec![
        cs::Label::primary(d.primary.file.0 as usize, clamp(&d.primary, sources))
            .with_message(d.primary.message.clone()),
    ];
    for s in &d.secondary {
        labels.push(
            cs::Label::secondary(s.file.0 as usize, clamp(s, sources))
                .with_message(s.message.clone()),
        );
    }
    let notes = d.help.iter().map(|h| format!("help: {h}")).collect();
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

fn plain_fallback(d: &Diagnostic, sources: &Sources) -> String {
    let name = sources
        .get(d.primary.file)
        .map_or("<unknown>", |f| f.name.as_str());
    let (line, col) = sources.line_col(d.primary.file, d.primary.span.start);
    let level = if d.is_error() { "error" } else { "warning" };
    let mut s = format!(
        "{level}[{}]: {}\n --> {name}:{line}:{col}\n",
        d.code.as_str(),
        d.message
    );
    if let Some(h) = &d.help {
        s.push_str(&format!("  = help: {h}\n"));
    }
    s.push('\n');
    s
}
