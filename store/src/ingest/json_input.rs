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
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Raw::Int(i),
            None => Raw::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(Value::String(s)) => Raw::Text(s),
        Some(v @ (Value::Array(_) | Value::Object(_))) => Raw::Nested(v),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RAW_BYTES)]).into_owned()
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
    b.push(
        pos,
        raw_of(&key),
        raw_of(&time),
        |i| raw_of(&fields[i]),
        extra,
        || lossy(raw),
    );
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
