//! Parquet input: columns are matched to the declaration by name; typed Parquet values are
//! coerced like any other input (integers to floats, timestamps to microseconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType as ArrowType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

use super::{BatchBuilder, Ctx, Raw, clip};

fn supported(t: &ArrowType) -> bool {
    matches!(
        t,
        ArrowType::Null
            | ArrowType::Boolean
            | ArrowType::Int8
            | ArrowType::Int16
            | ArrowType::Int32
            | ArrowType::Int64
            | ArrowType::UInt8
            | ArrowType::UInt16
            | ArrowType::UInt32
            | ArrowType::UInt64
            | ArrowType::Float32
            | ArrowType::Float64
            | ArrowType::Utf8
            | ArrowType::LargeUtf8
            | ArrowType::Utf8View
            | ArrowType::Timestamp(_, _)
    )
}

fn raw_at(a: &ArrayRef, i: usize) -> Raw<'_> {
    if a.is_null(i) {
        return Raw::Null;
    }
    match a.data_type() {
        ArrowType::Boolean => Raw::Bool(a.as_boolean().value(i)),
        ArrowType::Int8 => Raw::Int(a.as_primitive::<Int8Type>().value(i).into()),
        ArrowType::Int16 => Raw::Int(a.as_primitive::<Int16Type>().value(i).into()),
        ArrowType::Int32 => Raw::Int(a.as_primitive::<Int32Type>().value(i).into()),
        ArrowType::Int64 => Raw::Int(a.as_primitive::<Int64Type>().value(i)),
        ArrowType::UInt8 => Raw::Int(a.as_primitive::<UInt8Type>().value(i).into()),
        ArrowType::UInt16 => Raw::Int(a.as_primitive::<UInt16Type>().value(i).into()),
        ArrowType::UInt32 => Raw::Int(a.as_primitive::<UInt32Type>().value(i).into()),
        ArrowType::UInt64 => {
            let v = a.as_primitive::<UInt64Type>().value(i);
            i64::try_from(v).map_or(Raw::U64(v), Raw::Int)
        }
        ArrowType::Float32 => Raw::Float(a.as_primitive::<Float32Type>().value(i).into()),
        ArrowType::Float64 => Raw::Float(a.as_primitive::<Float64Type>().value(i)),
        ArrowType::Utf8 => Raw::Text(a.as_string::<i32>().value(i)),
        ArrowType::LargeUtf8 => Raw::Text(a.as_string::<i64>().value(i)),
        ArrowType::Utf8View => Raw::Text(a.as_string_view().value(i)),
        ArrowType::Timestamp(unit, _) => Raw::TsUs(match unit {
            TimeUnit::Second => a
                .as_primitive::<TimestampSecondType>()
                .value(i)
                .saturating_mul(1_000_000),
            TimeUnit::Millisecond => a
                .as_primitive::<TimestampMillisecondType>()
                .value(i)
                .saturating_mul(1_000),
            TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
            TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i) / 1_000,
        }),
        _ => Raw::Null,
    }
}

fn json_of(raw: Raw<'_>) -> Value {
    match raw {
        Raw::Missing | Raw::Null => Value::Null,
        Raw::Text(s) => Value::String(s.to_string()),
        Raw::Int(i) => Value::from(i),
        Raw::U64(u) => Value::from(u),
        Raw::NumText(s) => Value::String(s.to_string()),
        Raw::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Raw::Bool(b) => Value::Bool(b),
        Raw::TsUs(t) => jiff::Timestamp::from_microsecond(t)
            .map_or(Value::from(t), |ts| Value::String(ts.to_string())),
        Raw::Nested(v) => v.clone(),
    }
}

pub(crate) fn read(
    file: std::fs::File,
    b: &mut BatchBuilder,
    ctx: &mut Ctx<'_>,
    bytes_read: &Arc<AtomicU64>,
) -> Result<(), String> {
    let src = b.source.clone();
    if file.metadata().is_ok_and(|m| m.len() == 0) {
        return Err(format!(
            "{src}: the file is empty (0 bytes), so it is not a Parquet file: even a table of no rows has a footer; was the file cut short while being written?"
        ));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("{src}: not a readable Parquet file: {e}"))?;
    let total_rows = builder.metadata().file_metadata().num_rows().max(1) as u64;
    let file_bytes = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.compressed_size().max(0) as u64)
        .sum::<u64>();
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for f in schema.fields() {
        if !supported(f.data_type()) {
            return Err(format!(
                "{src}: column `{}` has Parquet type {}, which mlc cannot read; use integers, floats, booleans, strings or timestamps",
                clip(f.name()),
                f.data_type()
            ));
        }
    }
    let find = |n: &str| names.iter().position(|h| h == n);
    let key_idx = find(b.key_name()).ok_or_else(|| {
        format!(
            "{src}: the Parquet file has no column `{}` (the key of component `{}`)",
            b.key_name(),
            b.component
        )
    })?;
    let time_idx = find(b.time_name()).ok_or_else(|| {
        format!(
            "{src}: the Parquet file has no column `{}` (the time of component `{}`)",
            b.time_name(),
            b.component
        )
    })?;
    let field_idx: Vec<Option<usize>> = b.field_names().iter().map(|n| find(n)).collect();
    let mut used = vec![false; names.len()];
    used[key_idx] = true;
    used[time_idx] = true;
    for i in field_idx.iter().flatten() {
        used[*i] = true;
    }
    let extra_idx: Vec<usize> = (0..names.len()).filter(|&i| !used[i]).collect();
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| format!("{src}: {e}"))?;
    b.unit = "row";
    let mut row_no = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| format!("{src}: stopped after row {row_no}: {e}"))?;
        let cols = batch.columns();
        for i in 0..batch.num_rows() {
            row_no += 1;
            let extra = if extra_idx.is_empty() {
                None
            } else {
                let m: Map<String, Value> = extra_idx
                    .iter()
                    .map(|&c| (names[c].clone(), json_of(raw_at(&cols[c], i))))
                    .collect();
                Some(Value::Object(m).to_string())
            };
            let raw = || {
                let m: Map<String, Value> = (0..cols.len())
                    .map(|c| (names[c].clone(), json_of(raw_at(&cols[c], i))))
                    .collect();
                Value::Object(m).to_string()
            };
            b.push(
                row_no,
                raw_at(&cols[key_idx], i),
                raw_at(&cols[time_idx], i),
                |f| field_idx[f].map_or(Raw::Missing, |c| raw_at(&cols[c], i)),
                extra,
                raw,
            );
            if !ctx.flush_if_full(b) {
                return Ok(());
            }
        }
        bytes_read.store(file_bytes * row_no / total_rows, Ordering::Relaxed);
    }
    ctx.flush(b);
    Ok(())
}
