//! CSV input: a header row names the columns; an empty field is null; columns that are not
//! declared are kept as text in the record's undeclared fields.
//!
//! Records are read line by line (a line ends with LF or CRLF; line numbers count physical
//! lines, so they are what an editor shows) and split by RFC 4180's rules, as leniently as the
//! `csv` crate: a field in double quotes may hold commas, doubled quotes (`""`) and line
//! breaks. A quoted field that runs over a line end is legitimate, but it is also what a
//! missing closing quote looks like, and reading on would merge every record after it into one
//! field. So a record that runs over lines stops the input, with an error naming the line its
//! quote opened on, when it
//!
//! - is still open at the end of the input,
//! - runs more than [`IngestOptions::max_multiline_bytes`] (1 MiB) past its first line,
//! - would take in a line that reads as a record of its own (the header's number of fields,
//!   with a valid time in the time column),
//! - ends with another number of fields than the header, or with text right after a closing
//!   quote (`"DE"x`): the quotes were paired wrongly.
//!
//! Memory holds one record, bounded by the line limit plus that bound.
//!
//! [`IngestOptions::max_multiline_bytes`]: super::IngestOptions::max_multiline_bytes

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use super::{BatchBuilder, Ctx, Raw, clip, parse_timestamp_us};

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the field's end, or the first of a doubled quote.
    QuoteInQuoted,
}

/// One record's fields: their bytes one after the other, and where each ends.
struct Fields {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    state: State,
    /// Text came right after a closing quote (`"DE"x`, read as `DEx`).
    text_after_quote: bool,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            bytes: Vec::with_capacity(1024),
            ends: Vec::with_capacity(32),
            state: State::StartField,
            text_after_quote: false,
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.state = State::StartField;
        self.text_after_quote = false;
    }

    /// Splits one line (without its line break) into the record's fields. True when the record
    /// ends with it; false when the line ends inside a quoted field.
    fn feed(&mut self, line: &[u8]) -> bool {
        if self.state == State::StartField && !line.contains(&b'"') {
            for (i, part) in line.split(|&c| c == b',').enumerate() {
                if i > 0 {
                    self.ends.push(self.bytes.len());
                }
                self.bytes.extend_from_slice(part);
            }
            self.state = State::Unquoted;
            return true;
        }
        let mut st = self.state;
        for &c in line {
            st = match (st, c) {
                (State::StartField, b'"') => State::Quoted,
                (State::StartField | State::Unquoted | State::QuoteInQuoted, b',') => {
                    self.ends.push(self.bytes.len());
                    State::StartField
                }
                (State::StartField | State::Unquoted, _) => {
                    self.bytes.push(c);
                    State::Unquoted
                }
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::Quoted, _) => {
                    self.bytes.push(c);
                    State::Quoted
                }
                (State::QuoteInQuoted, b'"') => {
                    self.bytes.push(b'"');
                    State::Quoted
                }
                (State::QuoteInQuoted, _) => {
                    self.text_after_quote = true;
                    self.bytes.push(c);
                    State::Unquoted
                }
            };
        }
        self.state = st;
        st != State::Quoted
    }

    /// Ends the last field (the record is complete).
    fn finish(&mut self) {
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// Why the input stopped.
enum Stop {
    Io(std::io::Error),
    /// A line over the line limit.
    LineTooLong,
    /// A quoted field opened on line `opened` and never closed properly.
    OpenQuote {
        opened: u64,
        why: String,
    },
}

/// `line` without a CR before its line break, and whether it had one.
fn strip_cr(line: &[u8]) -> (&[u8], bool) {
    match line.strip_suffix(b"\r") {
        Some(l) => (l, true),
        None => (line, false),
    }
}

struct Records<R> {
    r: BufReader<R>,
    /// The number of the last line read (1-based).
    line_no: u64,
    /// The current record's first line.
    first: u64,
    /// The current record as it came (its lines and the line breaks between them).
    raw: Vec<u8>,
    fields: Fields,
    max_line: usize,
    max_multiline: usize,
}

impl<R: Read> Records<R> {
    /// Appends the next line (without its `\n`) to `raw`; false at the end of the input. A
    /// line over `max` bytes is an error as soon as `max + 1` bytes of it are read.
    fn read_line(&mut self, max: usize) -> Result<bool, Stop> {
        let limit = (max as u64).saturating_add(1);
        let got = (&mut self.r)
            .take(limit)
            .read_until(b'\n', &mut self.raw)
            .map_err(Stop::Io)?;
        if got == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.raw.last() == Some(&b'\n') {
            self.raw.pop();
        } else if got as u64 == limit {
            return Err(Stop::LineTooLong);
        }
        Ok(true)
    }

    /// Reads the next record into `fields` and `raw` (empty lines between records are
    /// skipped); false at the end of the input. `own_record(line)` says whether a line read
    /// alone is a record of its own: a quoted field must not run over one.
    fn next(&mut self, own_record: &mut dyn FnMut(&[u8]) -> bool) -> Result<bool, Stop> {
        self.fields.clear();
        loop {
            self.raw.clear();
            if !self.read_line(self.max_line)? {
                return Ok(false);
            }
            if self.line_no == 1 && self.raw.starts_with(BOM) {
                self.raw.drain(..BOM.len());
            }
            if !strip_cr(&self.raw).0.is_empty() {
                break;
            }
        }
        self.first = self.line_no;
        let first_len = self.raw.len();
        let mut start = 0;
        loop {
            let (line, cr) = strip_cr(&self.raw[start..]);
            if start > 0 && own_record(line) {
                return Err(Stop::OpenQuote {
                    opened: self.first,
                    why: format!(
                        "would take in line {}, which reads as a record of its own",
                        self.line_no
                    ),
                });
            }
            if self.fields.feed(line) {
                if cr {
                    self.raw.pop();
                }
                self.fields.finish();
                return Ok(true);
            }
            // The line break is part of the quoted field.
            if cr {
                self.fields.bytes.push(b'\r');
            }
            self.fields.bytes.push(b'\n');
            self.raw.push(b'\n');
            start = self.raw.len();
            let budget = self
                .max_multiline
                .saturating_sub(start - first_len)
                .min(self.max_line);
            match self.read_line(budget) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Stop::OpenQuote {
                        opened: self.first,
                        why: format!(
                            "is still open at the end of the input (line {})",
                            self.line_no
                        ),
                    });
                }
                Err(Stop::LineTooLong) => {
                    return Err(Stop::OpenQuote {
                        opened: self.first,
                        why: format!(
                            "is still open at line {}, over {} past its line (a quoted field may run over line ends, but not that far)",
                            self.line_no,
                            bytes(self.max_multiline)
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// The error that stops the input, with where it stopped and what was stored. `in_header`:
/// it stopped reading the header, so nothing was stored.
fn stop_message(src: &str, stop: Stop, line_no: u64, max_line: usize, in_header: bool) -> String {
    let what = if in_header {
        "cannot read the CSV header: "
    } else {
        ""
    };
    let stored = if in_header {
        ""
    } else {
        "; the records before it were stored"
    };
    match stop {
        Stop::Io(e) => {
            format!("{src}: {what}stopped at line {line_no}: read error: {e}{stored}")
        }
        Stop::LineTooLong => format!(
            "{src}: {what}stopped at line {line_no}: a line is longer than {}; this is not a CSV file of records (is it binary, or missing its line breaks?){stored}",
            bytes(max_line)
        ),
        Stop::OpenQuote { opened, why } => {
            let stored = if in_header {
                String::new()
            } else {
                format!(", so the records before line {opened} were stored and none from it on")
            };
            format!(
                "{src}: {what}stopped at line {opened}: a quoted field opens on this line and {why}. A closing quote is missing, and reading on would merge the lines after it into one field{stored}. Close the quote (a quote inside a quoted field is written twice: \"\") and run the file again (records already stored count as duplicates)"
            )
        }
    }
}

pub(crate) fn read(
    reader: Box<dyn Read>,
    b: &mut BatchBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let max_line = ctx.opts.max_line_bytes;
    let mut recs = Records {
        r: BufReader::with_capacity(1 << 16, reader),
        line_no: 0,
        first: 0,
        raw: Vec::with_capacity(1024),
        fields: Fields::new(),
        max_line,
        max_multiline: ctx.opts.max_multiline_bytes,
    };
    let src = b.source.clone();
    match recs.next(&mut |_| false) {
        // An empty input (no bytes, or only blank lines): zero records, not an error.
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(stop) => return Err(stop_message(&src, stop, recs.line_no, max_line, true)),
    }
    let header = &recs.fields;
    let mut names = Vec::with_capacity(header.len());
    for i in 0..header.len() {
        let name = std::str::from_utf8(header.get(i)).map_err(|_| {
            format!(
                "{src}: the CSV header is not valid UTF-8 (column {}); is this a CSV file?",
                i + 1
            )
        })?;
        names.push(name.trim().to_string());
    }
    // Each name's column. A name given twice is refused: which copy holds the values is a
    // guess. Columns without a name (trailing commas) are not compared; the first is kept.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (j, n) in names.iter().enumerate() {
        if let Some(&i) = index.get(n.as_str()) {
            if !n.is_empty() {
                return Err(format!(
                    "{src}: the CSV header names column `{}` twice, as columns {} and {}; rename or remove one of them",
                    clip(n),
                    i + 1,
                    j + 1
                ));
            }
        } else {
            index.insert(n, j);
        }
    }
    let find = |n: &str| index.get(n).copied();
    let (key_name, time_name) = (b.key_name().to_string(), b.time_name().to_string());
    let shown = || {
        let mut s = names
            .iter()
            .take(20)
            .map(|n| format!("`{}`", clip(n)))
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > 20 {
            s.push_str(&format!(", … ({} columns)", names.len()));
        }
        s
    };
    let key_idx = find(&key_name).ok_or_else(|| {
        format!(
            "{src}: the CSV header has no column `{key_name}` (the key of component `{}`); it has {}",
            b.component,
            shown()
        )
    })?;
    let time_idx = find(&time_name).ok_or_else(|| {
        format!(
            "{src}: the CSV header has no column `{time_name}` (the time of component `{}`); it has {}",
            b.component,
            shown()
        )
    })?;
    let field_idx: Vec<Option<usize>> = b.field_names().iter().map(|n| find(n)).collect();
    let mut used = vec![false; names.len()];
    used[key_idx] = true;
    used[time_idx] = true;
    for i in field_idx.iter().flatten() {
        used[*i] = true;
    }
    let extra_idx: Vec<usize> = (0..names.len())
        .filter(|&i| !used[i] && find(&names[i]) == Some(i))
        .collect();

    // A line read alone that has the header's fields and a valid time is a record: a quoted
    // field running over it is a missing closing quote.
    let n_cols = names.len();
    let mut alone = Fields::new();
    let mut own_record = |line: &[u8]| {
        alone.clear();
        alone.feed(line);
        alone.finish();
        alone.len() == n_cols
            && std::str::from_utf8(alone.get(time_idx))
                .is_ok_and(|t| !t.trim().is_empty() && parse_timestamp_us(t).is_ok())
    };
    loop {
        match recs.next(&mut own_record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(stop) => {
                // What was read before the bad spot is whole records: store it, so that the
                // error can say exactly where the stored part ends.
                ctx.flush(b);
                return Err(stop_message(&src, stop, recs.line_no, max_line, false));
            }
        }
        let rec = &recs.fields;
        let line = recs.first;
        if recs.line_no > line {
            // The record ran over line ends in a quoted field: it must come out whole.
            let why = if rec.len() != n_cols {
                Some(format!(
                    "runs to line {}, making a record of {} fields where the header has {n_cols}",
                    recs.line_no,
                    rec.len()
                ))
            } else if rec.text_after_quote {
                Some(format!(
                    "closes by line {} with text right after a closing quote",
                    recs.line_no
                ))
            } else {
                None
            };
            if let Some(why) = why {
                ctx.flush(b);
                let stop = Stop::OpenQuote { opened: line, why };
                return Err(stop_message(&src, stop, recs.line_no, max_line, false));
            }
        }
        let raw = || String::from_utf8_lossy(&recs.raw).into_owned();
        let utf8 = std::str::from_utf8(&rec.bytes);
        if rec.len() != n_cols {
            let reason = format!(
                "the row has {} fields but the header has {n_cols}",
                rec.len()
            );
            b.reject(line, raw(), reason);
        } else if utf8.is_err() {
            let bad = (0..rec.len())
                .find(|&i| std::str::from_utf8(rec.get(i)).is_err())
                .map_or_else(|| "?".to_string(), |i| clip(&names[i]));
            let reason = format!("field `{bad}` is not valid UTF-8");
            b.reject(line, raw(), reason);
        } else if let Ok(all) = utf8 {
            // Validated once for the whole record: fields end at separators and quotes, which
            // are ASCII, so every field boundary is a character boundary.
            let text = |i: usize| -> Raw<'_> {
                let start = if i == 0 { 0 } else { rec.ends[i - 1] };
                match all.get(start..rec.ends[i]) {
                    Some("") | None => Raw::Null,
                    Some(s) => Raw::Text(s),
                }
            };
            let extra = if extra_idx.is_empty() {
                None
            } else {
                let mut m = serde_json::Map::with_capacity(extra_idx.len());
                for &i in &extra_idx {
                    let v = match text(i) {
                        Raw::Text(s) => serde_json::Value::String(s.to_string()),
                        _ => serde_json::Value::Null,
                    };
                    m.insert(names[i].clone(), v);
                }
                Some(serde_json::Value::Object(m).to_string())
            };
            b.push(
                line,
                text(key_idx),
                text(time_idx),
                |f| field_idx[f].map_or(Raw::Missing, text),
                extra,
                raw,
            );
        }
        if !ctx.flush_if_full(b) {
            return Ok(());
        }
    }
    ctx.flush(b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(lines: &[&str]) -> (Vec<String>, bool, bool) {
        let mut f = Fields::new();
        let mut done = false;
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                f.bytes.push(b'\n');
            }
            done = f.feed(l.as_bytes());
        }
        f.finish();
        let fields = (0..f.len())
            .map(|i| String::from_utf8(f.get(i).to_vec()).unwrap_or_default())
            .collect();
        (fields, done, f.text_after_quote)
    }

    #[test]
    fn fields_split_like_rfc_4180() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(split(&["a,b,,c"]), (s(&["a", "b", "", "c"]), true, false));
        assert_eq!(split(&[""]), (s(&[""]), true, false));
        assert_eq!(split(&["a,"]), (s(&["a", ""]), true, false));
        assert_eq!(
            split(&[r#""a,b","say ""hi""",c"#]),
            (s(&["a,b", r#"say "hi""#, "c"]), true, false)
        );
        // A quote inside an unquoted field is a character like any other.
        assert_eq!(split(&[r#"ab"c,d"#]), (s(&[r#"ab"c"#, "d"]), true, false));
        // Text after a closing quote is kept, and flagged.
        assert_eq!(split(&[r#""DE"x,y"#]), (s(&["DEx", "y"]), true, true));
        // A quoted field over two lines.
        assert_eq!(
            split(&[r#"a,"one"#, r#"two",b"#]),
            (s(&["a", "one\ntwo", "b"]), true, false)
        );
        assert!(!split(&[r#"a,"open"#]).1, "the record goes on");
        assert!(!split(&[r#"a,"x"""#]).1, "a doubled quote does not close");
    }
}
