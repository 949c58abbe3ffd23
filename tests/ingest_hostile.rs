//! A hostile-input corpus for `mlc ingest`: open quotes, CRLF, byte order marks, ragged rows,
//! repeated columns, huge headers and fields, non-finite and out-of-range numbers, empty files
//! and binary garbage, in CSV, JSON lines and Parquet. For every file the real binary runs
//! against SQLite and PostgreSQL, and the test asserts the exit code, the counts it prints,
//! exactly which records were stored (key and `country`, so that a record merged into another's
//! field cannot pass), how many were quarantined and where, and that no message echoes more
//! than a few KiB of input.
//!
//! Big inputs are generated here; the small Parquet files are in `tests/hostile/` (made by
//! `tests/hostile/make_parquet.py`). To run the corpus against another build of `mlc` (to see
//! it fail without a fix), set `MLC_TEST_BIN` to that binary.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

mod common;

use common::{drop_schema, garbage, pg_url};
use mlc_store::{ComponentSchema, DataType, FieldSchema, Store};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn mlc_bin() -> String {
    std::env::var("MLC_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mlc").to_string())
}

const HEADER: &str = "request_id,ts,score,n,flag,country\n";
const T0: i64 = 1_772_323_200;

/// One CSV row of the corpus's component: key `k`, time T0 + i.
fn row(k: &str, i: i64, country: &str) -> String {
    format!("{k},{},0.5,{i},true,{country}\n", T0 + i)
}

fn rows(keys: &[&str]) -> String {
    keys.iter()
        .enumerate()
        .map(|(i, k)| row(k, i as i64, "DE"))
        .collect()
}

fn jrow(k: &str, i: i64) -> String {
    format!(
        "{{\"request_id\":\"{k}\",\"ts\":{},\"score\":0.5,\"n\":{i},\"flag\":true,\"country\":\"DE\"}}\n",
        T0 + i
    )
}

/// One input file and what `mlc ingest` must make of it.
struct Case {
    file: String,
    data: Input,
    exit: i32,
    /// Every record stored afterwards: key and `country`.
    stored: Vec<(String, String)>,
    /// The lines (or rows) of the quarantined records, in order.
    quarantined: Vec<u64>,
    /// False for garbage, whose quarantined records are only counted: the output's count
    /// must match the store's.
    exact: bool,
    /// Text the output (stdout and stderr) must hold.
    says: Vec<String>,
}

enum Input {
    Bytes(Vec<u8>),
    /// A file written by a function (big inputs, written once).
    Written(Box<dyn Fn(&Path)>),
    Fixture(&'static str),
}

fn case(file: &str, data: impl Into<Vec<u8>>, exit: i32) -> Case {
    Case {
        file: file.to_string(),
        data: Input::Bytes(data.into()),
        exit,
        stored: Vec::new(),
        quarantined: Vec::new(),
        exact: true,
        says: Vec::new(),
    }
}

impl Case {
    fn stores(mut self, keys: &[&str]) -> Case {
        self.stored = keys
            .iter()
            .map(|k| (k.to_string(), "DE".to_string()))
            .collect();
        self
    }
    fn stores_with(mut self, pairs: &[(&str, &str)]) -> Case {
        self.stored = pairs
            .iter()
            .map(|(k, c)| (k.to_string(), c.to_string()))
            .collect();
        self
    }
    fn quarantines(mut self, lines: &[u64]) -> Case {
        self.quarantined = lines.to_vec();
        self
    }
    fn says(mut self, text: &str) -> Case {
        self.says.push(text.to_string());
        self
    }
}

fn schema(name: &str) -> ComponentSchema {
    let f = |n: &str, ty| FieldSchema { name: n.into(), ty };
    ComponentSchema {
        name: name.into(),
        key: "request_id".into(),
        time: "ts".into(),
        fields: vec![
            f("score", DataType::Float),
            f("n", DataType::Int),
            f("flag", DataType::Bool),
            f("country", DataType::String),
        ],
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The stored records of a component (key and country), straight from its table.
fn stored_rows(url: &str, pg_schema: Option<&str>, component: &str) -> Vec<(String, String)> {
    use sqlx::Connection;
    let q =
        |table: String| format!("SELECT request_id, country FROM {table} ORDER BY ts, request_id");
    let rows: Vec<(Option<String>, Option<String>)> = rt().block_on(async {
        match pg_schema {
            Some(s) => {
                let mut c = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
                sqlx::query_as(sqlx::AssertSqlSafe(q(format!("\"{s}\".mlc_c_{component}"))))
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
            }
            None => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_as(sqlx::AssertSqlSafe(q(format!("mlc_c_{component}"))))
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
            }
        }
    });
    rows.into_iter()
        .map(|(k, c)| (k.unwrap_or_default(), c.unwrap_or_default()))
        .collect()
}

fn shorten(s: &str) -> String {
    if s.len() > 400 {
        let cut = (0..=400).rev().find(|&i| s.is_char_boundary(i)).unwrap();
        format!("{}… ({} bytes)", &s[..cut], s.len())
    } else {
        s.to_string()
    }
}

/// Runs every case against a fresh SQLite file and a fresh PostgreSQL schema, each case into a
/// component of its own.
fn run(tag: &str, cases: Vec<Case>) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for c in &cases {
        let path: PathBuf = match &c.data {
            Input::Bytes(b) => {
                let p = dir.path().join(&c.file);
                std::fs::write(&p, b).unwrap();
                p
            }
            Input::Written(f) => {
                let p = dir.path().join(&c.file);
                f(&p);
                p
            }
            Input::Fixture(name) => {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile")).join(name)
            }
        };
        files.push(path);
    }
    let pg_schema = format!(
        "mlc_hostile_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let backends = [
        (format!("sqlite://{}/store.db", dir.path().display()), None),
        (
            format!("{}?schema={pg_schema}", pg_url()),
            Some(pg_schema.as_str()),
        ),
    ];
    let mut failures = Vec::new();
    for (url, pg) in &backends {
        rt().block_on(async {
            let s = Store::open(url).await.unwrap();
            for i in 0..cases.len() {
                s.ensure_component(&schema(&format!("c{i}"))).await.unwrap();
            }
            s.close().await;
        });
        for (i, (c, path)) in cases.iter().zip(&files).enumerate() {
            let component = format!("c{i}");
            let out = Command::new(mlc_bin())
                .args(["ingest", &component])
                .arg(path)
                .env("MLC_DB", url)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let (so, se) = (
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            );
            let all = format!("{so}{se}");
            let quarantined = rt().block_on(async {
                let s = Store::open(url).await.unwrap();
                let q = s.quarantined(&component, 1_000_000).await.unwrap();
                s.close().await;
                q
            });
            let stored = stored_rows(url, *pg, &component);
            let mut problems = Vec::new();
            if out.status.code() != Some(c.exit) {
                problems.push(format!("exit {:?}, expected {}", out.status.code(), c.exit));
            }
            if all.contains("panicked") {
                problems.push("it panicked".into());
            }
            let counts = format!(
                "{} accepted, 0 duplicates, {} quarantined",
                c.stored.len(),
                if c.exact {
                    c.quarantined.len()
                } else {
                    quarantined.len()
                }
            );
            if !so.contains(&counts) {
                problems.push(format!("the output does not say `{counts}`"));
            }
            let mut want = c.stored.clone();
            want.sort();
            let mut got = stored.clone();
            got.sort();
            if got != want {
                let show: Vec<(String, String)> =
                    got.iter().map(|(k, v)| (shorten(k), shorten(v))).collect();
                problems.push(format!("stored {show:?}, expected {want:?}"));
            }
            let mut lines: Vec<u64> = quarantined
                .iter()
                .map(|q| {
                    q.source
                        .rsplit(' ')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                })
                .collect();
            lines.sort();
            if c.exact && lines != c.quarantined {
                problems.push(format!(
                    "quarantined at {lines:?}, expected {:?}",
                    c.quarantined
                ));
            }
            for s in &c.says {
                if !all.contains(s.as_str()) {
                    problems.push(format!("the output does not say `{s}`"));
                }
            }
            if all.len() > 8 << 10 {
                problems.push(format!(
                    "{} bytes of output: an echoed value is not capped",
                    all.len()
                ));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{} on {}:\n  {}\n  --- stdout:\n{}\n  --- stderr:\n{}",
                    c.file,
                    if pg.is_some() { "PostgreSQL" } else { "SQLite" },
                    problems.join("\n  "),
                    shorten(&so),
                    shorten(&se)
                ));
            }
        }
        if let Some(s) = pg {
            drop_schema(s);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        2 * cases.len(),
        failures.join("\n\n")
    );
}

/// Writes `head`, then `n` rows made by `line(i)`, then `tail`, through a buffer.
fn written(head: String, n: usize, line: fn(usize) -> String, tail: String) -> Input {
    Input::Written(Box::new(move |p: &Path| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
        w.write_all(head.as_bytes()).unwrap();
        for i in 0..n {
            w.write_all(line(i).as_bytes()).unwrap();
        }
        w.write_all(tail.as_bytes()).unwrap();
    }))
}

#[test]
fn hostile_csv() {
    let open_quote = format!(
        "{HEADER}{}{}{}{}",
        row("k0", 0, "DE"),
        row("k1", 1, "\"DE"),
        row("k2", 2, "DE"),
        row("k3", 3, "DE")
    );
    let mut cases = vec![
        // The file: k1's quote never closes. Today's csv reading stored k0 and k1 with
        // k2 and k3 inside k1's country, and exited 0.
        case("open_quote.csv", open_quote.clone(), 1)
            .stores(&["k0"])
            .says("stopped at line 3: a quoted field opens on this line")
            .says("would take in line 4, which reads as a record of its own")
            .says("the records before line 3 were stored"),
        // The same at the very end: nothing left to take in, the end of the input comes first.
        case(
            "open_quote_last.csv",
            format!("{HEADER}{}{}", rows(&["k0", "k1"]), row("k2", 2, "\"DE")),
            1,
        )
        .stores(&["k0", "k1"])
        .says("stopped at line 4: a quoted field opens on this line and is still open at the end of the input (line 4)"),
        // An open quote followed by lines that are not records (prose, no commas), then the end.
        case(
            "open_quote_prose.csv",
            format!(
                "{HEADER}{}{}some words\nmore words\n",
                rows(&["k0"]),
                row("k1", 1, "\"DE")
            ),
            1,
        )
        .stores(&["k0"])
        .says("stopped at line 3")
        .says("is still open at the end of the input (line 5)"),
        // A quote that "closes" on a later line, making a record of the wrong width.
        case(
            "misquoted.csv",
            format!(
                "{HEADER}{}{}free text, with, commas\nend\",x\n{}",
                rows(&["k0"]),
                row("k1", 1, "\"DE"),
                row("k5", 5, "DE")
            ),
            1,
        )
        .stores(&["k0"])
        .says("stopped at line 3")
        .says("runs to line 5, making a record of 7 fields where the header has 6"),
        // Text right after the closing quote on a later line: quotes paired wrongly.
        case(
            "misquoted_tail.csv",
            format!(
                "{HEADER}{}{}words\nend\"x\n",
                rows(&["k0"]),
                row("k1", 1, "\"DE"),
            ),
            1,
        )
        .stores(&["k0"])
        .says("closes by line 5 with text right after a closing quote"),
        // Legitimate quoting: commas, doubled quotes and line breaks (LF and CRLF) inside quotes.
        case(
            "quoted_ok.csv",
            format!(
                "{HEADER}{}{}{}{}",
                row("k0", 0, "\"D,E\""),
                row("k1", 1, "\"say \"\"hi\"\"\""),
                row("k2", 2, "\"two\nlines\""),
                row("k3", 3, "\"crlf\r\ninside\"")
            ),
            0,
        )
        .stores_with(&[
            ("k0", "D,E"),
            ("k1", "say \"hi\""),
            ("k2", "two\nlines"),
            ("k3", "crlf\r\ninside"),
        ]),
        // CRLF line ends (Python's csv module, Excel): quarantine names the right lines.
        case(
            "crlf.csv",
            format!(
                "{HEADER}{}{}k2,{},0.5,x,true,DE\n{}",
                row("k0", 0, "DE"),
                row("k1", 1, "DE"),
                T0 + 2,
                row("k3", 3, "DE")
            )
            .replace('\n', "\r\n"),
            1,
        )
        .stores(&["k0", "k1", "k3"])
        .quarantines(&[4])
        .says("crlf.csv line 4: field `n`: expected int, got \"x\""),
        // CRLF with blank lines between records: still physical line numbers.
        case(
            "crlf_blank.csv",
            format!("{HEADER}\n{}\nk9,{T0},0.5,1,true\n", rows(&["k0"])).replace('\n', "\r\n"),
            1,
        )
        .stores(&["k0"])
        .quarantines(&[5]),
        // A byte order mark before the header.
        case(
            "bom.csv",
            format!("\u{feff}{HEADER}{}", rows(&["k0", "k1"])),
            0,
        )
        .stores(&["k0", "k1"]),
        // Ragged rows: too few and too many fields, quarantined; the rest stored.
        case(
            "ragged.csv",
            format!(
                "{HEADER}{}k1,{},0.5\nk2,{},0.5,2,true,DE,extra\n{}",
                row("k0", 0, "DE"),
                T0 + 1,
                T0 + 2,
                row("k3", 3, "DE")
            ),
            1,
        )
        .stores(&["k0", "k3"])
        .quarantines(&[3, 4])
        .says("line 3: the row has 3 fields but the header has 6")
        .says("line 4: the row has 7 fields but the header has 6"),
        // A repeated column: which copy holds the values is a guess, so the file is refused.
        case(
            "repeated_column.csv",
            format!(
                "request_id,ts,country,score,country\nk0,{T0},DE,0.5,FR\n"
            ),
            1,
        )
        .says("the CSV header names column `country` twice, as columns 3 and 5"),
        // Empty inputs are zero records, not an error; so is a header without rows.
        case("empty.csv", "", 0).says("0 quarantined (no records in it)"),
        case("blank.csv", "\n\r\n\n", 0),
        case("bom_only.csv", "\u{feff}", 0),
        case("header_only.csv", HEADER, 0),
        // Non-finite floats are refused, in every spelling.
        case(
            "nonfinite.csv",
            format!(
                "{HEADER}{}{}",
                row("k0", 0, "DE"),
                ["inf", "-inf", "Infinity", "NaN", "1e400"]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("x{i},{},{v},1,true,DE\n", T0 + 1 + i as i64))
                    .collect::<String>()
            ),
            1,
        )
        .stores(&["k0"])
        .quarantines(&[3, 4, 5, 6, 7])
        .says("line 3: field `score`: got \"inf\", which is infinite")
        .says("line 6: field `score`: got \"NaN\"; NaN cannot be stored"),
        // An int out of range is echoed as written.
        case(
            "big_int.csv",
            format!(
                "{HEADER}k0,{T0},0.5,99999999999999999999,true,DE\nk1,{},0.5,9223372036854775808,true,DE\n",
                T0 + 1
            ),
            1,
        )
        .quarantines(&[2, 3])
        .says("got \"99999999999999999999\", out of the int range")
        .says("got \"9223372036854775808\", out of the int range"),
        // A NUL byte in text.
        case(
            "nul.csv",
            format!("{HEADER}{}k1,{},0.5,1,true,D\0E\n", rows(&["k0"]), T0 + 1),
            1,
        )
        .stores(&["k0"])
        .quarantines(&[3]),
        // Binary garbage, alone and after a valid header.
        case("garbage.csv", garbage(1 << 20, 7), 1),
        {
            let mut g = HEADER.as_bytes().to_vec();
            g.extend(garbage(1 << 20, 8));
            let mut c = case("garbage_rows.csv", g, 1);
            c.exact = false;
            c
        },
    ];
    // Big inputs. A 200,000-row file with an open quote on line 4: today it stored 3 records
    // and put the other 199,997 into one field.
    cases.push(Case {
        file: "open_quote_big.csv".into(),
        data: written(
            format!("{HEADER}{}{}", rows(&["k0", "k1"]), row("k2", 2, "\"DE")),
            200_000,
            |i| row(&format!("r{i}"), 10 + i as i64, "DE"),
            String::new(),
        ),
        exit: 1,
        stored: vec![("k0".into(), "DE".into()), ("k1".into(), "DE".into())],
        quarantined: vec![],
        exact: true,
        says: vec!["stopped at line 4".into(), "would take in line 5".into()],
    });
    // An open quote followed by 2 MiB of prose: the field stops growing at 1 MiB.
    cases.push(Case {
        file: "open_quote_prose_big.csv".into(),
        data: written(
            format!("{HEADER}{}{}", rows(&["k0"]), row("k1", 1, "\"DE")),
            40_000,
            |_| "just some words without any commas in them at all\n".into(),
            row("k9", 9, "DE"),
        ),
        exit: 1,
        stored: vec![("k0".into(), "DE".into())],
        quarantined: vec![],
        exact: true,
        says: vec![
            "stopped at line 3".into(),
            "over 1 MiB past its line".into(),
        ],
    });
    // A quoted field of many lines just under 1 MiB is fine.
    cases.push(Case {
        file: "multiline_big_ok.csv".into(),
        data: written(
            format!("{HEADER}{}k1,{},0.5,1,true,\"", rows(&["k0"]), T0 + 1),
            15_000,
            |_| "a line of a long note, with commas\n".into(),
            format!("end\"\n{}", row("k2", 2, "DE")),
        ),
        exit: 0,
        stored: vec![
            ("k0".into(), "DE".into()),
            (
                "k1".into(),
                format!(
                    "{}end",
                    "a line of a long note, with commas\n".repeat(15_000)
                ),
            ),
            ("k2".into(), "DE".into()),
        ],
        quarantined: vec![],
        exact: true,
        says: vec![],
    });
    // A 2 MiB field on one line, quoted or not, is within the line limit.
    cases.push(Case {
        file: "huge_field.csv".into(),
        data: written(
            format!("{HEADER}{}k1,{},0.5,1,true,\"", rows(&["k0"]), T0 + 1),
            1,
            |_| "y".repeat(2 << 20),
            format!("\"\n{}", row("k2", 2, "DE")),
        ),
        exit: 0,
        stored: vec![
            ("k0".into(), "DE".into()),
            ("k1".into(), "y".repeat(2 << 20)),
            ("k2".into(), "DE".into()),
        ],
        quarantined: vec![],
        exact: true,
        says: vec![],
    });
    // A 16 MiB header without a line break: refused, and not echoed whole.
    cases.push(Case {
        file: "huge_header.csv".into(),
        data: written(String::new(), 16, |_| "h".repeat(1 << 20), String::new()),
        exit: 1,
        stored: vec![],
        quarantined: vec![],
        exact: true,
        says: vec![
            "the CSV header has no column `request_id`".into(),
            "… (16777216 bytes)`".into(),
        ],
    });
    // A 16 MiB value in an int field: quarantined, the reason capped.
    cases.push(Case {
        file: "huge_value.csv".into(),
        data: written(
            format!("{HEADER}k0,{T0},0.5,"),
            16,
            |_| "9".repeat(1 << 20),
            ",true,DE\n".into(),
        ),
        exit: 1,
        stored: vec![],
        quarantined: vec![2],
        exact: true,
        says: vec!["… (16777216 bytes), out of the int range".into()],
    });
    run("csv", cases);
}

#[test]
fn hostile_json_lines() {
    let cases = vec![
        // A byte order mark before the first line.
        case(
            "bom.jsonl",
            format!("\u{feff}{}{}", jrow("j0", 0), jrow("j1", 1)),
            0,
        )
        .stores(&["j0", "j1"]),
        case("bom_only.jsonl", "\u{feff}", 0),
        case("empty.jsonl", "", 0).says("0 quarantined (no records in it)"),
        // CRLF lines, with a bad record on line 3.
        case(
            "crlf.jsonl",
            format!(
                "{}{}{{\"request_id\":\"j2\",\"ts\":{T0},\"n\":\"x\"}}\n{}",
                jrow("j0", 0),
                jrow("j1", 1),
                jrow("j3", 3)
            )
            .replace('\n', "\r\n"),
            1,
        )
        .stores(&["j0", "j1", "j3"])
        .quarantines(&[3])
        .says("crlf.jsonl line 3: field `n`: expected int, got \"x\""),
        // An unterminated string stays on its line: that line is quarantined, nothing merged.
        case(
            "open_string.jsonl",
            format!(
                "{}{{\"request_id\":\"j1\",\"ts\":{},\"country\":\"DE\n{}",
                jrow("j0", 0),
                T0 + 1,
                jrow("j2", 2)
            ),
            1,
        )
        .stores(&["j0", "j2"])
        .quarantines(&[2])
        .says("line 2: not valid JSON"),
        // Lines that are not objects.
        case(
            "not_objects.jsonl",
            format!("{}[1,2]\n\"text\"\n42\n", jrow("j0", 0)),
            1,
        )
        .stores(&["j0"])
        .quarantines(&[2, 3, 4])
        .says("line 2: expected a JSON object, got an array"),
        // Ints out of range are echoed as written, not as a rounded float.
        case(
            "big_int.jsonl",
            format!(
                "{{\"request_id\":\"j0\",\"ts\":{T0},\"n\":99999999999999999999}}\n{{\"request_id\":\"j1\",\"ts\":{},\"n\":12345678901234567890}}\n{{\"request_id\":\"j2\",\"ts\":{},\"n\":-1.5e300}}\n",
                T0 + 1,
                T0 + 2
            ),
            1,
        )
        .quarantines(&[1, 2, 3])
        .says("got 99999999999999999999, out of the int range")
        .says("got 12345678901234567890, over the largest int")
        .says("got -1.5e300, out of the int range"),
        // Non-finite floats: as text (JSON has no literal for them) or beyond the range.
        case(
            "nonfinite.jsonl",
            format!(
                "{}{{\"request_id\":\"j1\",\"ts\":{},\"score\":\"inf\"}}\n{{\"request_id\":\"j2\",\"ts\":{},\"score\":\"NaN\"}}\n{{\"request_id\":\"j3\",\"ts\":{},\"score\":1e400}}\n",
                jrow("j0", 0),
                T0 + 1,
                T0 + 2,
                T0 + 3
            ),
            1,
        )
        .stores(&["j0"])
        .quarantines(&[2, 3, 4])
        .says("line 2: field `score`: got \"inf\", which is infinite"),
        // A huge string in an int field: the reason is capped.
        case(
            "huge_value.jsonl",
            format!(
                "{{\"request_id\":\"j0\",\"ts\":{T0},\"n\":\"{}\"}}\n",
                "z".repeat(1 << 20)
            ),
            1,
        )
        .quarantines(&[1])
        .says("… (1048576 bytes)"),
        case("garbage.jsonl", garbage(1 << 20, 9), 1),
    ];
    let mut cases = cases;
    // Garbage lines are quarantined one by one: count them.
    let g = garbage(1 << 20, 9);
    let lines = g
        .split(|&c| c == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as u64;
    let last = cases.last_mut().unwrap();
    let mut n = 0u64;
    last.quarantined = g
        .split(|&c| c == b'\n')
        .filter_map(|l| {
            n += 1;
            (!l.trim_ascii().is_empty()).then_some(n)
        })
        .collect();
    assert_eq!(last.quarantined.len() as u64, lines);
    run("jsonl", cases);
}

#[test]
fn hostile_parquet() {
    let cases = vec![
        // inf, -inf and NaN in a float column; a UInt64 column read as ints.
        Case {
            file: "nonfinite.parquet".into(),
            data: Input::Fixture("nonfinite.parquet"),
            exit: 1,
            stored: vec![("p0".into(), String::new())],
            quarantined: vec![2, 3, 4],
            exact: true,
            says: vec![
                "row 2: field `score`: got inf, which is infinite".into(),
                "row 4: field `score`: got NaN; NaN cannot be stored".into(),
            ],
        },
        // A UInt64 above the int range is echoed exactly.
        Case {
            file: "u64.parquet".into(),
            data: Input::Fixture("u64.parquet"),
            exit: 1,
            stored: vec![("u0".into(), "DE".into())],
            quarantined: vec![2],
            exact: true,
            says: vec!["got 18446744073709551615, over the largest int".into()],
        },
        // A table of no rows is zero records; a file of no bytes is not a Parquet file.
        Case {
            file: "no_rows.parquet".into(),
            data: Input::Fixture("no_rows.parquet"),
            exit: 0,
            stored: vec![],
            quarantined: vec![],
            exact: true,
            says: vec![],
        },
        case("empty.parquet", "", 1).says("the file is empty (0 bytes)"),
        case("garbage.parquet", garbage(1 << 16, 10), 1).says("not a readable Parquet file"),
    ];
    run("parquet", cases);
}
