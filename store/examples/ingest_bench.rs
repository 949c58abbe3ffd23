//! Benchmark driver for `bench/ingest/run.py`: ingests the peers' `inference` file into a store
//! and times window reads, printing one `RESULT {json}` line per measurement.
//!
//! ```text
//! ingest_bench ingest DB_URL FILE [BATCH_ROWS]
//! ingest_bench read DB_URL START END REPS      (RFC 3339 bounds)
//! ```
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::time::Instant;

use futures::StreamExt;
use mlc_store::ingest::{Format, IngestOptions, Input, ingest, parse_timestamp_us};
use mlc_store::{ComponentSchema, DataType, FieldSchema, Store};

fn schema() -> ComponentSchema {
    let f = |n: &str, ty| FieldSchema { name: n.into(), ty };
    let mut fields = vec![
        f("model_version", DataType::String),
        f("country", DataType::String),
        f("age", DataType::Int),
        f("income", DataType::Float),
    ];
    for i in 0..8 {
        fields.push(f(&format!("f{i}"), DataType::Float));
    }
    fields.push(f("score", DataType::Float));
    fields.push(f("prediction", DataType::Int));
    ComponentSchema {
        name: "inference".into(),
        key: "request_id".into(),
        time: "ts".into(),
        fields,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: ingest_bench ingest DB FILE [BATCH_ROWS] | read DB START END REPS [COLUMN,...]";
    match args.get(1).map(String::as_str) {
        Some("ingest") if args.len() >= 4 => {
            let store = Store::open(&args[2]).await?;
            let opts = IngestOptions {
                batch_rows: args.get(4).map_or(Ok(50_000), |s| s.parse())?,
                ..IngestOptions::default()
            };
            let path = std::path::PathBuf::from(&args[3]);
            let format = Format::from_path(&path).ok_or("unknown file extension")?;
            let t = Instant::now();
            let r = ingest(&store, &schema(), Input::Path(path), format, &opts, None).await?;
            let secs = t.elapsed().as_secs_f64();
            store.close().await;
            let rows = r.accepted + r.duplicates + r.quarantined;
            println!(
                "RESULT {{\"backend\":\"{}\",\"rows\":{rows},\"accepted\":{},\"duplicates\":{},\"quarantined\":{},\"secs\":{secs:.3},\"rows_per_s\":{:.0}}}",
                store.backend(),
                r.accepted,
                r.duplicates,
                r.quarantined,
                rows as f64 / secs
            );
            if let Some(e) = r.error {
                return Err(e.into());
            }
        }
        Some("read") if args.len() >= 6 => {
            let store = Store::open(&args[2]).await?;
            let start = parse_timestamp_us(&args[3])?;
            let end = parse_timestamp_us(&args[4])?;
            let reps: usize = args[5].parse()?;
            let cols: Vec<String> = match args.get(6) {
                Some(list) => list.split(',').map(str::to_string).collect(),
                None => ["age", "income", "f0", "score"].map(String::from).to_vec(),
            };
            let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
            // `scan`: the bounded stream; `scan_batches`: collected, as evaluation reads.
            for mode in ["scan", "scan_batches"] {
                let mut times = Vec::new();
                let mut rows = 0;
                for _ in 0..reps {
                    let t = Instant::now();
                    rows = 0;
                    if mode == "scan" {
                        let mut s = store.scan("inference", &cols, Some(start), end).await?;
                        while let Some(b) = s.next().await {
                            rows += b?.num_rows();
                        }
                    } else {
                        let batches = store
                            .scan_batches("inference", &cols, Some(start), end)
                            .await?;
                        rows = batches.iter().map(|b| b.num_rows()).sum();
                    }
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                times.sort_by(f64::total_cmp);
                println!(
                    "RESULT {{\"backend\":\"{}\",\"mode\":\"{mode}\",\"columns\":{},\"rows\":{rows},\"median_ms\":{:.1},\"min_ms\":{:.1}}}",
                    store.backend(),
                    cols.len(),
                    times[times.len() / 2],
                    times[0]
                );
            }
            store.close().await;
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
