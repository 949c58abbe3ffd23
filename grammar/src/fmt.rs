//! `mlc fmt`: prints a parsed file in canonical form, keeping every comment beside the
//! line it was written next to.
//!
//! The printer walks the AST and emits one output line per "unit" (an item header, a
//! clause, a field, a record, a closing brace), each tied to the source span it came
//! from. Comments are placed by those spans: a comment that started before a unit is
//! printed on its own line above it, a comment on the same source line after a unit
//! stays trailing. A single blank line the author left between lines inside a block is
//! kept; items are always separated by exactly one blank line. Canonical form is a
//! fixed point, so formatting twice gives the same text.

use crate::ast::*;
use crate::diagnostic::{Diagnostic, FileId};
use crate::display::write_str_lit;
use crate::names::quote_key;
use crate::scan::{self, TokKind, Token};

const INDENT: &str = "  ";

/// Parses and formats `text`; syntax errors are returned as diagnostics.
pub fn format_source(file: FileId, text: &str) -> Result<String, Vec<Diagnostic>> {
    let parsed = crate::parse(file, text)?;
    Ok(format(&parsed, text))
}

/// Prints `file` (parsed from `text`) in canonical form. `text` is needed to place
/// comments and to keep the blank lines the author left inside blocks.
pub fn format(file: &File, text: &str) -> String {
    let tokens = scan::tokenize(text);
    let mut p = Printer {
        text,
        tokens: &tokens,
        comments: &file.comments,
        next: 0,
        lines: Vec::with_capacity(text.len() / 24),
        blank: Blank::Never,
    };
    let mut prev_import = false;
    for (i, item) in file.items.iter().enumerate() {
        let is_import = matches!(item, Item::Import(_));
        p.blank = if i == 0 {
            Blank::Never
        } else if is_import && prev_import {
            Blank::Auto
        } else {
            Blank::Force
        };
        p.item(item);
        prev_import = is_import;
    }
    // Comments after the last item.
    if p.next < p.comments.len() {
        if !file.items.is_empty() {
            p.blank = Blank::Force;
        }
        p.flush_before(usize::MAX, 0);
    }
    render_lines(&p.lines, text.len())
}

/// One output line: code (indented), with an optional trailing comment.
struct Line {
    indent: usize,
    code: String,
    kind: LineKind,
    trailing: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum LineKind {
    Code,
    Comment,
    Blank,
}

/// Joins the lines, aligning trailing comments within each run of consecutive code
/// lines at the same indentation (as gofmt does), two spaces after the longest code.
fn render_lines(lines: &[Line], capacity: usize) -> String {
    let mut out = String::with_capacity(capacity + capacity / 8);
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if line.kind != LineKind::Code {
            if line.kind == LineKind::Comment {
                out.push_str(&INDENT.repeat(line.indent));
                out.push_str(&line.code);
            }
            out.push('\n');
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len() && lines[j].kind == LineKind::Code && lines[j].indent == line.indent {
            j += 1;
        }
        let width = lines[i..j]
            .iter()
            .filter(|l| l.trailing.is_some())
            .map(|l| l.code.chars().count())
            .max()
            .unwrap_or(0);
        for l in &lines[i..j] {
            out.push_str(&INDENT.repeat(l.indent));
            out.push_str(&l.code);
            if let Some(c) = &l.trailing {
                let pad = width - l.code.chars().count() + 2;
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            }
            out.push('\n');
        }
        i = j;
    }
    out
}

/// Whether the next line gets a blank line before it.
#[derive(Clone, Copy, PartialEq)]
enum Blank {
    Never,
    Force,
    /// As the author wrote it: one blank line if the source had at least one.
    Auto,
}

struct Printer<'a> {
    text: &'a str,
    tokens: &'a [Token],
    comments: &'a [Comment],
    /// Index of the first comment not printed yet.
    next: usize,
    lines: Vec<Line>,
    blank: Blank,
}

impl Printer<'_> {
    /// True when the source has an empty line right before `pos`.
    fn blank_in_source_before(&self, pos: usize) -> bool {
        let before = self.text.get(..pos.min(self.text.len())).unwrap_or("");
        let ws = before.len() - before.trim_end_matches([' ', '\t', '\r', '\n']).len();
        before[before.len() - ws..].matches('\n').count() >= 2
    }

    fn start_line(&mut self, src_start: usize) {
        let blank = match self.blank {
            Blank::Never => false,
            Blank::Force => true,
            Blank::Auto => self.blank_in_source_before(src_start),
        };
        self.blank = Blank::Auto;
        if blank {
            self.push(0, String::new(), LineKind::Blank);
        }
    }

    fn push(&mut self, indent: usize, code: String, kind: LineKind) {
        self.lines.push(Line {
            indent,
            code,
            kind,
            trailing: None,
        });
    }

    /// Prints, each on its own line, the comments that start before `pos`.
    fn flush_before(&mut self, pos: usize, indent: usize) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start as usize >= pos {
                break;
            }
            self.next += 1;
            self.start_line(c.span.start as usize);
            self.push(indent, c.text.trim_end().to_string(), LineKind::Comment);
        }
    }

    /// One output line for the source range `start..end`.
    fn unit(&mut self, indent: usize, line: &str, start: usize, end: usize) {
        self.flush_before(start, indent);
        self.start_line(start);
        self.push(indent, line.to_string(), LineKind::Code);
        // Comments written inside the unit (e.g. within a multi-line expression) cannot
        // stay where they were; they go on their own lines right after it.
        let inner_from = self.next;
        while self
            .comments
            .get(self.next)
            .is_some_and(|c| (c.span.start as usize) < end)
        {
            self.next += 1;
        }
        let inner_to = self.next;
        if let Some(c) = self.comments.get(self.next)
            && self.trails(end, c.span.start as usize)
        {
            if let Some(l) = self.lines.last_mut() {
                l.trailing = Some(c.text.trim_end().to_string());
            }
            self.next += 1;
        }
        // After a line that opens a block, they belong to the block.
        let opens_block = line.ends_with(['{', '[']);
        let inner_indent = if opens_block { indent + 1 } else { indent };
        // After a one-line item they stand between items, where a blank line separates
        // them from it (as formatting the output again would put one).
        if indent == 0 && !opens_block && inner_to > inner_from {
            self.push(0, String::new(), LineKind::Blank);
        }
        for c in &self.comments[inner_from..inner_to] {
            self.lines.push(Line {
                indent: inner_indent,
                code: c.text.trim_end().to_string(),
                kind: LineKind::Comment,
                trailing: None,
            });
        }
    }

    /// Whether a comment at `comment` trails the unit that ended at `end`: it is on the
    /// same source line, and no other unit starts in between (only an opening bracket or
    /// a comma may), so it belongs to this line rather than to a later one.
    fn trails(&self, end: usize, comment: usize) -> bool {
        if self.text.get(end..comment).is_none_or(|s| s.contains('\n')) {
            return false;
        }
        let idx = self.tokens.partition_point(|t| t.start < end);
        self.tokens[idx..]
            .iter()
            .take_while(|t| t.start < comment)
            .all(|t| t.kind == TokKind::Punct && matches!(t.text(self.text), "{" | "[" | "(" | ","))
    }

    /// Prints the `}` (or `]`) at `close_pos`, after the comments still inside the block.
    fn close(&mut self, inner_indent: usize, indent: usize, close: &str, close_pos: usize) {
        self.flush_before(close_pos, inner_indent);
        self.blank = Blank::Never;
        self.unit(indent, close, close_pos, close_pos + 1);
    }

    /// The first token after `from` whose text is `want` (a keyword or a bracket).
    fn find(&self, from: usize, want: &str) -> Option<usize> {
        let idx = self.tokens.partition_point(|t| t.start < from);
        self.tokens[idx..]
            .iter()
            .find(|t| t.kind != TokKind::Comment && t.text(self.text) == want)
            .map(|t| t.start)
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Import(i) => {
                let line = format!("import {}", str_lit(&i.path.value));
                self.unit(0, &line, i.span.start as usize, i.span.end as usize);
            }
            Item::Component(c) => self.component(c),
            Item::Plugin(pl) => self.plugin(pl),
            Item::Check(c) => self.check(c),
            Item::Test(t) => self.test(t),
        }
    }

    fn component(&mut self, c: &Component) {
        let start = c.span.start as usize;
        self.unit(
            0,
            &format!("component {} {{", c.name),
            start,
            c.name.span.end as usize,
        );
        self.blank = Blank::Never;
        let (ks, ke) = (c.key.span.start as usize, c.key.span.end as usize);
        let key_kw = self.find(start, "key").filter(|k| *k < ks).unwrap_or(ks);
        self.unit(1, &format!("key {}", c.key), key_kw, ke);
        let (ts, te) = (c.time.span.start as usize, c.time.span.end as usize);
        let time_kw = self.find(ke, "time").filter(|k| *k < ts).unwrap_or(ts);
        self.unit(1, &format!("time {}", c.time), time_kw, te);
        let end = c.span.end as usize;
        if let Some(fields_kw) = self.find(te, "fields").filter(|f| *f < end) {
            let brace = self.find(fields_kw, "{").unwrap_or(fields_kw);
            self.unit(1, "fields {", fields_kw, brace + 1);
            self.blank = Blank::Never;
            let mut last = brace + 1;
            for f in &c.fields {
                let line = format!("{}: {}", f.name, f.ty.keyword());
                self.unit(2, &line, f.span.start as usize, f.span.end as usize);
                last = f.span.end as usize;
            }
            let close = self.find(last, "}").unwrap_or(last);
            self.close(2, 1, "}", close);
        }
        self.close(1, 0, "}", end.saturating_sub(1));
    }

    fn plugin(&mut self, pl: &Plugin) {
        let mut line = format!("plugin {} from {}", pl.name, str_lit(&pl.path.value));
        if !pl.options.is_empty() {
            let opts: Vec<String> = pl
                .options
                .iter()
                .map(|o| format!("{} {}", o.name, option_value(&o.value)))
                .collect();
            line.push_str(&format!(" {{ {} }}", opts.join(", ")));
        }
        self.unit(0, &line, pl.span.start as usize, pl.span.end as usize);
    }

    fn check(&mut self, c: &Check) {
        self.unit(
            0,
            &format!("check {} {{", c.name),
            c.span.start as usize,
            c.name.span.end as usize,
        );
        self.blank = Blank::Never;
        for clause in &c.clauses {
            let line = clause_text(&clause.kind);
            self.unit(
                1,
                &line,
                clause.span.start as usize,
                clause.span.end as usize,
            );
        }
        self.close(1, 0, "}", (c.span.end as usize).saturating_sub(1));
    }

    fn test(&mut self, t: &Test) {
        self.unit(
            0,
            &format!("test {} {{", t.name),
            t.span.start as usize,
            t.name.span.end as usize,
        );
        self.blank = Blank::Never;
        let at_kw = self
            .find(t.name.span.end as usize, "at")
            .unwrap_or(t.at.span.start as usize);
        self.unit(
            1,
            &format!("at {}", str_lit(&t.at.value)),
            at_kw,
            t.at.span.end as usize,
        );
        // Rows and asserts may be interleaved; print them in source order.
        let mut rows = t.rows.iter().peekable();
        let mut asserts = t.asserts.iter().peekable();
        loop {
            let take_rows = match (rows.peek(), asserts.peek()) {
                (Some(r), Some(a)) => r.span.start < a.span.start,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_rows {
                if let Some(r) = rows.next() {
                    self.rows(r);
                }
            } else if let Some(a) = asserts.next() {
                let mut line = format!("assert {} {}", a.check, expected(a.expected));
                if let Some(slice) = &a.slice {
                    line.push_str(" for ");
                    line.push_str(&record(slice));
                }
                self.unit(1, &line, a.span.start as usize, a.span.end as usize);
            }
        }
        self.close(1, 0, "}", (t.span.end as usize).saturating_sub(1));
    }

    fn rows(&mut self, r: &Rows) {
        let start = r.span.start as usize;
        match &r.source {
            RowsSource::File(path) => {
                let line = format!("rows {} from {}", r.component, str_lit(&path.value));
                self.unit(1, &line, start, r.span.end as usize);
            }
            RowsSource::Inline(records) if records.is_empty() => {
                self.unit(
                    1,
                    &format!("rows {} []", r.component),
                    start,
                    r.span.end as usize,
                );
            }
            RowsSource::Inline(records) => {
                let bracket = self.find(r.component.span.end as usize, "[");
                let header_end = bracket.map_or(r.component.span.end as usize, |b| b + 1);
                self.unit(1, &format!("rows {} [", r.component), start, header_end);
                self.blank = Blank::Never;
                for rec in records {
                    // The comma after a record belongs to its line, so a comment after
                    // it is still trailing.
                    let end = rec.span.end as usize;
                    let end = match self.find(end, ",") {
                        Some(c) if self.text.get(end..c).is_some_and(|s| s.trim().is_empty()) => {
                            c + 1
                        }
                        _ => end,
                    };
                    let line = format!("{},", record(rec));
                    self.unit(2, &line, rec.span.start as usize, end);
                }
                self.close(2, 1, "]", (r.span.end as usize).saturating_sub(1));
            }
        }
    }
}

fn str_lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing into a String cannot fail.
    let _ = write_str_lit(&mut out, s);
    out
}

fn option_value(v: &OptionValue) -> String {
    match v {
        OptionValue::Duration(d) => d.to_string(),
        OptionValue::Size { text, .. } => text.clone(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Str(s) => str_lit(s),
    }
}

fn expected(e: Expected) -> &'static str {
    match e {
        Expected::Passes => "passes",
        Expected::Fails => "fails",
        Expected::Insufficient => "is insufficient",
        Expected::Error => "is error",
    }
}

fn record(r: &Record) -> String {
    if r.fields.is_empty() {
        return "{}".to_string();
    }
    let fields: Vec<String> = r
        .fields
        .iter()
        .map(|f| format!("{}: {}", quote_key(&f.name.name), f.value))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

fn columns(cols: &[ColumnRef]) -> String {
    cols.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A clause on one line, keyword first.
fn clause_text(kind: &ClauseKind) -> String {
    match kind {
        ClauseKind::On(src) => {
            let mut s = format!("on {}", src.first);
            for j in &src.joins {
                let left = if j.left { "left " } else { "" };
                s.push_str(&format!(" {left}join {} using {}", j.component, j.using));
            }
            s
        }
        ClauseKind::Window(d) => format!("window {d}"),
        ClauseKind::Delay(d) => format!("delay {d}"),
        ClauseKind::Every(d) => format!("every {d}"),
        ClauseKind::Baseline(b) => match b {
            Baseline::Component(c) => format!("baseline {c}"),
            Baseline::Offset(d) => format!("baseline offset {d}"),
            Baseline::Range { from, to } => {
                format!(
                    "baseline from {} to {}",
                    str_lit(&from.value),
                    str_lit(&to.value)
                )
            }
        },
        ClauseKind::Where(e) => format!("where {e}"),
        ClauseKind::GroupBy(cols) => format!("group by {}", columns(cols)),
        ClauseKind::Each { var, list } => {
            let list = match list {
                EachList::Columns(cols) => format!("[{}]", columns(cols)),
                EachList::Numeric(c) => format!("numeric({c})"),
                EachList::Categorical(c) => format!("categorical({c})"),
            };
            format!("each {var} in {list}")
        }
        ClauseKind::MinRows { value, .. } => format!("min_rows {value}"),
        ClauseKind::Expect(e) => format!("expect {e}"),
        ClauseKind::Severity { level, .. } => format!("severity {}", level.keyword()),
        ClauseKind::For(d) => format!("for {d}"),
        ClauseKind::Description(s) => format!("description {}", str_lit(&s.value)),
        ClauseKind::Labels(labels) => {
            let items: Vec<String> = labels
                .iter()
                .map(|l| format!("{}: {}", quote_key(&l.key.name), str_lit(&l.value.value)))
                .collect();
            if items.is_empty() {
                "labels {}".to_string()
            } else {
                format!("labels {{ {} }}", items.join(", "))
            }
        }
    }
}
