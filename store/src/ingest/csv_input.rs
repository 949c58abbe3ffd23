//! CSV input: a header row names the columns; an empty field is null; columns that are not
//! declared are kept as text in the record's undeclared fields.

use std::io::Read;

use csv::ByteRecord;

use super::{BatchBuilder, Ctx, Raw};

/// Fails the read once a line grows past `max` bytes, so that a file that is one huge line
/// (or binary garbage without newlines) cannot make the CSV reader buffer it all.
struct LineLimit<R> {
    inner: R,
    max: usize,
    run: usize,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(p) => self.run = n - p - 1,
            None => self.run += n,
        }
        if self.run > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                LineTooLong(self.max),
            ));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct LineTooLong(usize);

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a line is longer than {} MiB; this is not a CSV file of records (is it binary, or missing its line breaks?)",
            self.0 >> 20
        )
    }
}

impl std::error::Error for LineTooLong {}

fn describe(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => match io.get_ref() {
            Some(inner) => inner.to_string(),
            None => format!("read error: {io}"),
        },
        _ => e.to_string(),
    }
}

/// The record as it came, re-encoded as one CSV line.
fn raw_line(rec: &ByteRecord) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_byte_record(rec);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

pub(crate) fn read(
    reader: Box<dyn Read>,
    b: &mut BatchBuilder,
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let limited = LineLimit {
        inner: reader,
        max: ctx.opts.max_line_bytes,
        run: 0,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(limited);
    let header = rdr
        .byte_headers()
        .map_err(|e| format!("{}: cannot read the CSV header: {}", b.source, describe(&e)))?
        .clone();
    let mut names = Vec::with_capacity(header.len());
    for (i, h) in header.iter().enumerate() {
        let h = if i == 0 {
            h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
        } else {
            h
        };
        let name = std::str::from_utf8(h).map_err(|_| {
            format!(
                "{}: the CSV header is not valid UTF-8 (column {}); is this a CSV file?",
                b.source,
                i + 1
            )
        })?;
        names.push(name.trim().to_string());
    }
    let find = |n: &str| names.iter().position(|h| h == n);
    let (key_name, time_name) = (b.key_name().to_string(), b.time_name().to_string());
    let shown = || {
        let mut s = names
            .iter()
            .take(20)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > 20 {
            s.push_str(", …");
        }
        s
    };
    let key_idx = find(&key_name).ok_or_else(|| {
        format!(
            "{}: the CSV header has no column `{key_name}` (the key of component `{}`); it has {}",
            b.source,
            b.component,
            shown()
        )
    })?;
    let time_idx = find(&time_name).ok_or_else(|| {
        format!(
            "{}: the CSV header has no column `{time_name}` (the time of component `{}`); it has {}",
            b.source,
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
    // A repeated header name is kept once, by its first column.
    let extra_idx: Vec<usize> = (0..names.len())
        .filter(|&i| !used[i] && find(&names[i]) == Some(i))
        .collect();

    let mut rec = ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // What was read before the bad spot is whole records: store it, so that the
                // error can say exactly where the stored part ends.
                ctx.flush(b);
                return Err(format!(
                    "{}: stopped at line {}: {}; the records before it were stored",
                    b.source,
                    rdr.position().line(),
                    describe(&e)
                ));
            }
        }
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() != names.len() {
            let reason = format!(
                "the row has {} fields but the header has {}",
                rec.len(),
                names.len()
            );
            b.reject(line, raw_line(&rec), reason);
        } else if std::str::from_utf8(rec.as_slice()).is_err() {
            let bad = (0..rec.len())
                .find(|&i| std::str::from_utf8(&rec[i]).is_err())
                .map_or("?", |i| names[i].as_str());
            let reason = format!("field `{bad}` is not valid UTF-8");
            b.reject(line, raw_line(&rec), reason);
        } else {
            let text = |i: usize| -> Raw<'_> {
                match std::str::from_utf8(&rec[i]) {
                    Ok("") => Raw::Null,
                    Ok(s) => Raw::Text(s),
                    Err(_) => Raw::Null,
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
                || raw_line(&rec),
            );
        }
        if !ctx.flush_if_full(b) {
            return Ok(());
        }
    }
    ctx.flush(b);
    Ok(())
}
