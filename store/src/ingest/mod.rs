//! Ingest: CSV, JSON lines and Parquet records into a component, coerced to its declared types,
//! with quarantine for records that do not fit and deduplication on key and time.
//!
//! Parsing runs on a blocking thread and hands bounded batches to the writer through a channel
//! of one, so memory stays bounded by the batch size whatever the file size, and parsing the
//! next batch overlaps writing the previous one. Each batch (its records and its quarantined
//! records) is written in one transaction: a crash leaves whole batches only, and re-running
//! the same input stores the rest, the stored part counting as duplicates.

mod coerce;
mod csv_input;
mod json_input;
mod parquet_input;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mlc_engine::schema::ComponentSchema;
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::rows::Rows;
use crate::{QuarantinedRecord, Store, WriteOutcome};

pub use coerce::parse_timestamp_us;
pub(crate) use coerce::{BatchBuilder, Raw};

/// The most characters of an input value a message or a quarantine reason echoes: a 50 MB
/// header or field must not come back whole on a terminal.
const ECHO_CHARS: usize = 80;

/// The first [`ECHO_CHARS`] characters of `s`, its control characters escaped.
fn echo_prefix(s: &str) -> (String, bool) {
    let cut = s.char_indices().nth(ECHO_CHARS).map_or(s.len(), |(i, _)| i);
    let mut out = String::with_capacity(cut);
    for c in s[..cut].chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    (out, cut < s.len())
}

/// An input value as a message echoes it (a column name, a number): whole when short, else
/// its first 80 characters, `…` and its length in bytes.
pub(crate) fn clip(s: &str) -> String {
    match echo_prefix(s) {
        (t, false) => t,
        (t, true) => format!("{t}… ({} bytes)", s.len()),
    }
}

/// An input text value as a message echoes it: [`clip`]ped, in double quotes.
pub(crate) fn quoted(s: &str) -> String {
    let cut = s.char_indices().nth(ECHO_CHARS).map_or(s.len(), |(i, _)| i);
    if cut == s.len() {
        format!("{s:?}")
    } else {
        format!("{:?}… ({} bytes)", &s[..cut], s.len())
    }
}

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line (a JSON array of objects is also accepted).
    Jsonl,
    Parquet,
}

impl Format {
    /// The format a file name's extension says, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            _ => Err(format!("unknown format `{s}`: use csv, jsonl or parquet")),
        }
    }
}

/// Where records come from.
#[derive(Debug, Clone)]
pub enum Input {
    Path(PathBuf),
    Stdin,
    /// A request body (the service's `POST /v1/ingest`), JSON lines or a JSON array.
    Bytes(Arc<[u8]>),
}

impl Input {
    /// `-` is standard input; anything else a file path.
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }
    fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Stdin => "-".into(),
            Input::Bytes(_) => "request".into(),
        }
    }
}

/// Tuning of one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Records per batch (one transaction each).
    pub batch_rows: usize,
    /// A CSV or JSON line longer than this is refused (CSV: the input stops with an error;
    /// JSON lines: that line is quarantined, truncated), so one huge line cannot exhaust memory.
    pub max_line_bytes: usize,
    /// A CSV record may run over line ends inside a quoted field (legitimate CSV), by at most
    /// this many bytes past its first line: a quote that is never closed stops the input
    /// there with an error naming the line it opened on, instead of taking in the rest of the
    /// file as one field.
    pub max_multiline_bytes: usize,
    /// How many quarantine reasons the report keeps.
    pub max_reasons: usize,
    /// Build the column segments of the new rows at the end ([`Store::seal`]). `mlc serve`
    /// turns this off and seals on a timer instead, to keep small batches quick.
    pub seal: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            batch_rows: 50_000,
            max_line_bytes: 64 << 20,
            max_multiline_bytes: 1 << 20,
            max_reasons: 5,
            seal: true,
        }
    }
}

/// How far an ingest has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_read: u64,
    /// The input's size when known (a file).
    pub total_bytes: Option<u64>,
    /// Records read (stored, duplicate or quarantined).
    pub records: u64,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// What an ingest did. `error` is set when the input stopped early (unreadable file, a
/// header without the time column, a CSV line over the limit): the counts then cover the
/// batches stored before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// The first few quarantine reasons, each with where the record was.
    pub reasons: Vec<String>,
    pub error: Option<String>,
}

impl IngestReport {
    /// True when every record was stored (or was already) and the input was read to its end.
    pub fn complete(&self) -> bool {
        self.quarantined == 0 && self.error.is_none()
    }
    pub fn add(&mut self, other: &IngestReport, max_reasons: usize) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
        for r in &other.reasons {
            if self.reasons.len() < max_reasons {
                self.reasons.push(r.clone());
            }
        }
        if self.error.is_none() {
            self.error.clone_from(&other.error);
        }
    }
}

/// A batch handed from the parser to the writer.
pub(crate) type Batch = (Rows, Vec<QuarantinedRecord>);

/// The parser's side: input, its counters, and the batch sink.
pub(crate) struct Ctx<'a> {
    pub opts: &'a IngestOptions,
    pub emit: &'a mut dyn FnMut(Batch) -> bool,
}

impl Ctx<'_> {
    /// Hands the batch over when full; false when the writer has gone (stop reading).
    pub fn flush_if_full(&mut self, b: &mut BatchBuilder) -> bool {
        if b.len() >= self.opts.batch_rows {
            (self.emit)(b.take())
        } else {
            true
        }
    }
    pub fn flush(&mut self, b: &mut BatchBuilder) -> bool {
        if b.len() > 0 {
            (self.emit)(b.take())
        } else {
            true
        }
    }
}

/// Counts the bytes read, for progress.
pub(crate) struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(input: &Input, count: Arc<AtomicU64>) -> std::result::Result<Box<dyn Read>, String> {
    let inner: Box<dyn Read> = match input {
        Input::Path(p) => Box::new(
            std::fs::File::open(p).map_err(|e| format!("cannot open `{}`: {e}", p.display()))?,
        ),
        Input::Stdin => Box::new(std::io::stdin().lock()),
        Input::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
    };
    Ok(Box::new(Counting {
        inner: std::io::BufReader::with_capacity(1 << 20, inner),
        count,
    }))
}

/// Reads `input` and stores its records into the component `schema` (declared, or extended,
/// in the store first). Fails only on store errors; input errors end up in the report.
pub async fn ingest(
    store: &Store,
    schema: &ComponentSchema,
    input: Input,
    format: Format,
    opts: &IngestOptions,
    progress: Option<ProgressFn>,
) -> Result<IngestReport> {
    store.ensure_component(schema).await?;
    let total_bytes = match &input {
        Input::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        Input::Bytes(b) => Some(b.len() as u64),
        Input::Stdin => None,
    };
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(1);
    let parser = {
        let schema = schema.clone();
        let opts = opts.clone();
        let bytes_read = bytes_read.clone();
        let source = input.name();
        tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
            let mut emit = |batch: Batch| tx.blocking_send(batch).is_ok();
            let mut ctx = Ctx {
                opts: &opts,
                emit: &mut emit,
            };
            let mut builder = BatchBuilder::new(&schema, &source, opts.batch_rows.min(1 << 16));
            match format {
                Format::Parquet => {
                    let file = match &input {
                        Input::Path(p) => std::fs::File::open(p)
                            .map_err(|e| format!("cannot open `{}`: {e}", p.display()))?,
                        _ => {
                            return Err(
                                "Parquet cannot be read from standard input or a request body (it needs random access): give a file path, or send CSV or JSON lines".into(),
                            );
                        }
                    };
                    parquet_input::read(file, &mut builder, &mut ctx, &bytes_read)
                }
                Format::Csv => {
                    let reader = open(&input, bytes_read)?;
                    csv_input::read(reader, &mut builder, &mut ctx)
                }
                Format::Jsonl => {
                    let reader = open(&input, bytes_read)?;
                    json_input::read(reader, &mut builder, &mut ctx)
                }
            }
        })
    };
    let mut report = IngestReport::default();
    let mut records = 0;
    let mut outcome = WriteOutcome::default();
    let mut expect_duplicates = false;
    // Segments built from the parsed rows as they are stored; `seal` below picks up the rest.
    let inline = if opts.seal {
        store.ingest_seal(schema)?
    } else {
        None
    };
    while let Some((rows, quarantine)) = rx.recv().await {
        for q in &quarantine {
            if report.reasons.len() < opts.max_reasons {
                report.reasons.push(format!("{}: {}", q.source, q.reason));
            }
        }
        let n = rows.len() + quarantine.len();
        let written = store
            .write_ingest_batch(schema, rows, quarantine, expect_duplicates, inline.as_ref())
            .await?;
        // A batch with duplicates (a re-run file, a resumed one) is likely followed by more.
        expect_duplicates = written.duplicates > 0;
        records += n as u64;
        outcome.add(written);
        if let Some(p) = &progress {
            p(Progress {
                bytes_read: bytes_read.load(Ordering::Relaxed),
                total_bytes,
                records,
            });
        }
    }
    if opts.seal && outcome.accepted > 0 {
        store.seal(&schema.name).await?;
    }
    report.accepted = outcome.accepted;
    report.duplicates = outcome.duplicates;
    report.quarantined = outcome.quarantined;
    match parser.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.error = Some(e),
        Err(join) => {
            return Err(StoreError::Ingest(format!(
                "internal error: the input reader stopped: {join}"
            )));
        }
    }
    Ok(report)
}
