//! JSON lines input: one object per line (`null` or a missing member is null; members that
//! are not declared are kept as they came). A whole JSON array of objects is accepted too.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::{BatchBuilder, Ctx, Raw};

/// Quarantined raw text is cut to this many bytes: a record that is refused for its size must
/// not be stored whole.
const MAX_RAW_BYTES: usize = 64 << 10;

#[allow(clippy::enum_variant_names)] // `Line::Line` reads as "a line was read".
enum Line {
    Eof,
    Line,
    /// The line was longer than the limit; it was skipped up to its end. Holds its length.
    TooLong(usize),
}

/// Reads one line into `buf` (without the newline), never holding more than `max` bytes.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if !any {
                Line::Eof
            } else if total > max {
                Line::TooLong(total)
            } else {
                Line::Line
            });
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(p) => (p, true),
            None => (chunk.len(), false),
        };
        total += take;
        if total <= max {
            buf.extend_from_slice(&chunk[..take]);
        } else if buf.len() < MAX_RAW_BYTES {
            let room = MAX_RAW_BYTES - buf.len();
            buf.extend_from_slice(&chunk[..take.min(room)]);
        }
        r.consume(if done { take + 1 } else { take });
        if done {
            return Ok(if total > max {
                Line::TooLong(total)
            } else {
                Line::Line
            });
        }
    }
}

fn raw_of(v: &Option<Value>) -> Raw<'_> {
    match v {
        None => Raw::Missing,
        Some(Value::Null) => Raw::Null,
        Some(Value::Bool(b)) => Raw::Bool(*b),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Raw::Int(i),
            (None, Some(u)) => Raw::U64(u),
            (None, None) => Raw::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(Value::String(s)) => Raw::Text(s),
        Some(v @ (Value::Array(_) | Value::Object(_))) => Raw::Nested(v),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RAW_BYTES)]).into_owned()
}

/// Beyond 2^53 an `f64` no longer holds every integer: such a number is echoed by its text.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// The literal text of a number too large for its `f64` to echo it (`1e400` aside, which is
/// not valid JSON to serde_json), found in the record's raw text.
fn literal_of<'r>(v: &Option<Value>, raw: &'r [u8], name: &str) -> Option<&'r str> {
    match v {
        Some(Value::Number(n)) if !n.is_i64() && !n.is_u64() => {
            if n.as_f64().is_some_and(|f| f.abs() < EXACT_F64) {
                None
            } else {
                member_literal(raw, name)
            }
        }
        _ => None,
    }
}

fn push_object(b: &mut BatchBuilder, pos: u64, mut obj: Map<String, Value>, raw: &[u8]) {
    let key = obj.remove(b.key_name());
    let time = obj.remove(b.time_name());
    let fields: Vec<Option<Value>> = b.field_names().iter().map(|n| obj.remove(n)).collect();
    let extra = if obj.is_empty() {
        None
    } else {
        Some(Value::Object(obj).to_string())
    };
    let key_text = literal_of(&key, raw, b.key_name());
    let time_text = literal_of(&time, raw, b.time_name());
    let texts: Vec<Option<&str>> = fields
        .iter()
        .zip(b.field_names())
        .map(|(v, n)| literal_of(v, raw, n))
        .collect();
    b.push(
        pos,
        raw_or(&key, key_text),
        raw_or(&time, time_text),
        |i| raw_or(&fields[i], texts[i]),
        extra,
        || lossy(raw),
    );
}

fn raw_or<'a>(v: &'a Option<Value>, text: Option<&'a str>) -> Raw<'a> {
    text.map_or_else(|| raw_of(v), Raw::NumText)
}

/// The text of the last top-level member `name` of the JSON object in `raw` (the last one is
/// the one serde_json keeps), when `raw` is one well-formed object.
fn member_literal<'r>(raw: &'r [u8], name: &str) -> Option<&'r str> {
    let s = std::str::from_utf8(raw).ok()?;
    let b = s.as_bytes();
    let ws = |mut i: usize| {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    // The index after the string starting at `i` (a quote).
    let string_end = |mut i: usize| -> Option<usize> {
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
    };
    let value_end = |mut i: usize| -> Option<usize> {
        match *b.get(i)? {
            b'"' => string_end(i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *b.get(i)? {
                        b'"' => {
                            i = string_end(i)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {
                while b
                    .get(i)
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    i += 1;
                }
                Some(i)
            }
        }
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut found = None;
    if b.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(i)?;
        let key: String = serde_json::from_str(&s[i..key_end]).ok()?;
        i = ws(key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(i + 1);
        let end = value_end(i)?;
        if key == name {
            found = Some(&s[i..end]);
        }
        i = ws(end);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return found,
            _ => return None,
        }
    }
}

fn push_value(b: &mut BatchBuilder, pos: u64, v: Value, raw: &[u8]) {
    match v {
        Value::Object(obj) => push_object(b, pos, obj, raw),
        other => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            b.reject(
                pos,
                lossy(raw),
                format!("expected a JSON object, got {kind}"),
            );
        }
    }
}

pub(crate) fn read(
    reader: Box<dyn Read>,
    b: &mut BatchBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let mut r = BufReader::with_capacity(1 << 16, reader);
    let max = ctx.opts.max_line_bytes;
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        let got = read_line(&mut r, &mut buf, max)
            .map_err(|e| format!("{}: read error after line {line_no}: {e}", b.source))?;
        line_no += 1;
        match got {
            Line::Eof => break,
            Line::TooLong(n) => {
                let reason = format!(
                    "the line is {n} bytes long, over the {} MiB limit; the raw record is cut",
                    max >> 20
                );
                b.reject(line_no, lossy(&buf), reason);
            }
            Line::Line => {
                // A byte order mark (Windows editors write one) is not part of the record.
                if line_no == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(..3);
                }
                let text = buf.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                if text[0] == b'[' && b.records == 0 {
                    return read_array(&mut r, b, ctx, std::mem::take(&mut buf), line_no);
                }
                match serde_json::from_slice::<Value>(text) {
                    Ok(v) => push_value(b, line_no, v, text),
                    Err(e) => {
                        let reason = if std::str::from_utf8(text).is_err() {
                            "not valid UTF-8".to_string()
                        } else {
                            format!("not valid JSON: {e}")
                        };
                        b.reject(line_no, lossy(text), reason);
                    }
                }
            }
        }
        if !ctx.flush_if_full(b) {
            return Ok(());
        }
    }
    ctx.flush(b);
    Ok(())
}

/// A JSON array of objects (a request body, or a `.json` file): read whole, within the line
/// limit, then stored element by element (positions are element numbers).
fn read_array(
    r: &mut impl BufRead,
    b: &mut BatchBuilder,
    ctx: &mut Ctx<'_>,
    mut text: Vec<u8>,
    first_line: u64,
) -> Result<(), String> {
    let max = ctx.opts.max_line_bytes;
    let mut limited = r.take((max.saturating_sub(text.len()) + 1) as u64);
    text.push(b'\n');
    limited
        .read_to_end(&mut text)
        .map_err(|e| format!("{}: read error: {e}", b.source))?;
    if text.len() > max {
        return Err(format!(
            "{}: the JSON array starting at line {first_line} is over the {} MiB limit; send JSON lines (one object per line) instead",
            b.source,
            max >> 20
        ));
    }
    let items: Vec<Value> = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: the JSON array starting at line {first_line} is not valid JSON: {e}",
            b.source
        )
    })?;
    b.unit = "element";
    for (i, v) in items.into_iter().enumerate() {
        let raw = v.to_string();
        push_value(b, i as u64 + 1, v, raw.as_bytes());
        if !ctx.flush_if_full(b) {
            return Ok(());
        }
    }
    ctx.flush(b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::member_literal;

    #[test]
    fn member_literal_finds_the_last_top_level_member() {
        let raw = br#"{"a": {"n": 1, "s": "x\"}"}, "n" : 1e400 , "b":[1,{"n":2}], "n":99999999999999999999}"#;
        assert_eq!(member_literal(raw, "n"), Some("99999999999999999999"));
        assert_eq!(member_literal(raw, "a"), Some(r#"{"n": 1, "s": "x\"}"}"#));
        assert_eq!(member_literal(raw, "b"), Some(r#"[1,{"n":2}]"#));
        assert_eq!(member_literal(raw, "zz"), None);
        assert_eq!(
            member_literal(br#"{"\u006e": -2e300}"#, "n"),
            Some("-2e300")
        );
        assert_eq!(member_literal(b"[1]", "n"), None);
        assert_eq!(member_literal(br#"{"n": 1"#, "n"), None);
    }
}
