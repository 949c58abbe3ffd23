//! Coercion of input values to declared types, and the batch builder that routes each record
//! either into the typed batch or into quarantine with its reason.

use mlc_engine::schema::{ComponentSchema, DataType};

use super::{clip, quoted};
use crate::QuarantinedRecord;
use crate::rows::{Column, Rows};
use crate::sql::stored_fields;

/// A value as an input format gives it, before coercion.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// The field is absent from the record (JSON) or from the header (CSV).
    Missing,
    Null,
    Text(&'a str),
    Int(i64),
    /// An integer above `i64::MAX` (a JSON number, a Parquet `UInt64`), kept exact so that a
    /// refusal echoes it as it was given.
    U64(u64),
    Float(f64),
    /// A JSON number given by its literal text: one whose `f64` value no longer holds every
    /// integer (beyond 2^53), so that a refusal echoes what the input said, not a rounding.
    NumText(&'a str),
    Bool(bool),
    /// A typed timestamp (Parquet), microseconds since the epoch.
    TsUs(i64),
    /// A JSON array or object.
    Nested(&'a serde_json::Value),
}

enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

fn show(raw: &Raw<'_>) -> String {
    match raw {
        Raw::Missing => "nothing".into(),
        Raw::Null => "null".into(),
        Raw::Text(s) => quoted(s),
        Raw::Int(i) => i.to_string(),
        Raw::U64(u) => u.to_string(),
        Raw::Float(f) => f.to_string(),
        Raw::NumText(s) => clip(s),
        Raw::Bool(b) => b.to_string(),
        Raw::TsUs(t) => format!("timestamp {t}µs"),
        Raw::Nested(v) if v.is_array() => "an array".into(),
        Raw::Nested(_) => "an object".into(),
    }
}

fn text_has_nul(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        Err("contains a NUL byte, which the store cannot keep".into())
    } else {
        Ok(())
    }
}

/// Parses a timestamp: RFC 3339 with any offset (stored as UTC), or Unix epoch seconds as an
/// integer or a decimal number.
pub fn parse_timestamp_us(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return secs
            .checked_mul(1_000_000)
            .ok_or_else(|| format!("epoch seconds {t} out of range"));
    }
    if t.bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && let Ok(secs) = t.parse::<f64>()
    {
        return epoch_float(secs);
    }
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => Ok(ts.as_microsecond()),
        Err(_) => Err(format!(
            "{} is not a timestamp: use RFC 3339 with an offset (2026-03-01T12:00:00Z, 2026-03-01T13:00:00+01:00) or epoch seconds",
            quoted(t)
        )),
    }
}

fn epoch_float(secs: f64) -> Result<i64, String> {
    let us = (secs * 1e6).round();
    // Within jiff's range (years -9999..9999) so that every stored time can be printed back.
    if us.is_finite() && us.abs() < 253_402_300_800e6 {
        Ok(us as i64)
    } else {
        Err(format!("epoch seconds {secs} out of range"))
    }
}

fn coerce(ty: DataType, raw: Raw<'_>) -> Result<Cell, String> {
    let wrong = |raw: &Raw<'_>| Err(format!("expected {}, got {}", ty.name(), show(raw)));
    match (ty, raw) {
        (_, Raw::Missing | Raw::Null) => Ok(Cell::Null),
        (DataType::Int, Raw::Int(i)) => Ok(Cell::Int(i)),
        (DataType::Int, Raw::U64(_)) => Err(format!(
            "expected int, got {}, over the largest int ({})",
            show(&raw),
            i64::MAX
        )),
        (DataType::Int, Raw::Float(f)) => {
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                Ok(Cell::Int(f as i64))
            } else {
                wrong(&raw)
            }
        }
        (DataType::Int, Raw::Text(s) | Raw::NumText(s)) => {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(i) => Ok(Cell::Int(i)),
                Err(_) => match t.parse::<f64>() {
                    Ok(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Cell::Int(f as i64)),
                    Ok(f) if f.fract() == 0.0 || f.is_infinite() => Err(format!(
                        "expected int, got {}, out of the int range ({} to {})",
                        show(&raw),
                        i64::MIN,
                        i64::MAX
                    )),
                    _ => wrong(&raw),
                },
            }
        }
        (DataType::Float, Raw::Float(f)) => finite(f, &raw),
        (DataType::Float, Raw::Int(i)) => Ok(Cell::Float(i as f64)),
        (DataType::Float, Raw::U64(u)) => Ok(Cell::Float(u as f64)),
        (DataType::Float, Raw::Text(s) | Raw::NumText(s)) => match s.trim().parse::<f64>() {
            Ok(f) => finite(f, &raw),
            Err(_) => wrong(&raw),
        },
        (DataType::Bool, Raw::Bool(b)) => Ok(Cell::Bool(b)),
        (DataType::Bool, Raw::Int(0)) => Ok(Cell::Bool(false)),
        (DataType::Bool, Raw::Int(1)) => Ok(Cell::Bool(true)),
        (DataType::Bool, Raw::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Ok(Cell::Bool(true)),
            "false" | "f" | "0" => Ok(Cell::Bool(false)),
            _ => wrong(&raw),
        },
        (DataType::String, Raw::Text(s)) => {
            text_has_nul(s)?;
            Ok(Cell::Str(s.to_string()))
        }
        // Scalars written without quotes (`"country": 44`) are still text to a string field.
        (DataType::String, Raw::Int(i)) => Ok(Cell::Str(i.to_string())),
        (DataType::String, Raw::U64(u)) => Ok(Cell::Str(u.to_string())),
        (DataType::String, Raw::Float(f)) => Ok(Cell::Str(f.to_string())),
        (DataType::String, Raw::NumText(s)) => Ok(Cell::Str(s.to_string())),
        (DataType::String, Raw::Bool(b)) => Ok(Cell::Str(b.to_string())),
        (DataType::Timestamp, Raw::TsUs(t)) => Ok(Cell::Int(t)),
        (DataType::Timestamp, Raw::Int(secs)) => secs
            .checked_mul(1_000_000)
            .map(Cell::Int)
            .ok_or_else(|| format!("epoch seconds {secs} out of range")),
        (DataType::Timestamp, Raw::U64(secs)) => Err(format!("epoch seconds {secs} out of range")),
        (DataType::Timestamp, Raw::Float(f)) => epoch_float(f).map(Cell::Int),
        (DataType::Timestamp, Raw::Text(s)) => parse_timestamp_us(s).map(Cell::Int),
        (DataType::Timestamp, Raw::NumText(s)) => parse_timestamp_us(s)
            .map(Cell::Int)
            .map_err(|_| format!("epoch seconds {} out of range", clip(s))),
        _ => wrong(&raw),
    }
}

fn finite(f: f64, raw: &Raw<'_>) -> Result<Cell, String> {
    // SQLite turns NaN into NULL, so NaN would come back as a missing value on one backend
    // and a number on the other; an infinity stores, but turns every sum, mean and quantile
    // over it into inf or NaN. Refusing both keeps the backends alike and loses nothing
    // silently: the record is quarantined with this reason.
    if f.is_nan() {
        Err(format!(
            "got {}; NaN cannot be stored, write an empty field or null for a missing value",
            show(raw)
        ))
    } else if f.is_infinite() {
        Err(format!(
            "got {}, which is infinite (or beyond the float range); only finite numbers are stored: write an empty field or null for a missing value",
            show(raw)
        ))
    } else {
        Ok(Cell::Float(f))
    }
}

/// Accumulates records into a typed batch and quarantined records, for one component.
pub(crate) struct BatchBuilder {
    pub component: String,
    pub source: String,
    key_name: String,
    time_name: String,
    field_names: Vec<String>,
    field_types: Vec<DataType>,
    /// How positions are named in quarantine sources: `line` (CSV, JSON lines) or `row`.
    pub unit: &'static str,
    pub rows: Rows,
    pub quarantine: Vec<QuarantinedRecord>,
    /// Records seen so far in this input.
    pub records: u64,
    cells: Vec<Cell>,
    received_at_us: i64,
}

impl BatchBuilder {
    pub fn new(schema: &ComponentSchema, source: &str, capacity: usize) -> BatchBuilder {
        let fields: Vec<_> = stored_fields(schema).collect();
        BatchBuilder {
            component: schema.name.clone(),
            source: source.to_string(),
            key_name: schema.key.clone(),
            time_name: schema.time.clone(),
            field_names: fields.iter().map(|f| f.name.clone()).collect(),
            field_types: fields.iter().map(|f| f.ty).collect(),
            unit: "line",
            rows: Rows::new(schema, capacity),
            quarantine: Vec::new(),
            records: 0,
            cells: Vec::with_capacity(fields.len()),
            received_at_us: crate::sql::now_us(),
        }
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    pub fn time_name(&self) -> &str {
        &self.time_name
    }

    /// Names of the stored fields, in `Rows::fields` order.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    pub fn len(&self) -> usize {
        self.rows.len() + self.quarantine.len()
    }

    /// Takes the batch built so far, leaving an empty one.
    pub fn take(&mut self) -> (Rows, Vec<QuarantinedRecord>) {
        let cap = self.rows.len();
        let mut fresh = Rows {
            key: Vec::with_capacity(cap),
            time: Vec::with_capacity(cap),
            fields: self
                .field_types
                .iter()
                .map(|t| Column::new(*t, cap))
                .collect(),
            extra: Vec::with_capacity(cap),
        };
        std::mem::swap(&mut fresh, &mut self.rows);
        (fresh, std::mem::take(&mut self.quarantine))
    }

    /// Puts a record in quarantine. `pos` locates it in the input (line or row number).
    pub fn reject(&mut self, pos: u64, mut raw: String, reason: String) {
        self.records += 1;
        // PostgreSQL text cannot hold NUL; a visible replacement keeps both backends alike.
        if raw.contains('\0') {
            raw = raw.replace('\0', "\u{fffd}");
        }
        self.quarantine.push(QuarantinedRecord {
            component: self.component.clone(),
            received_at_us: self.received_at_us,
            source: format!("{} {} {pos}", self.source, self.unit),
            raw,
            reason,
        });
    }

    /// Coerces one record; `field(i)` gives the raw value of stored field `i`. A record with
    /// any value that does not fit goes to quarantine whole, with every reason.
    pub fn push<'a>(
        &mut self,
        pos: u64,
        key: Raw<'a>,
        time: Raw<'a>,
        mut field: impl FnMut(usize) -> Raw<'a>,
        extra: Option<String>,
        raw: impl FnOnce() -> String,
    ) {
        let mut reasons: Vec<String> = Vec::new();
        let key = match key {
            Raw::Missing | Raw::Null => None,
            Raw::Text(s) => match text_has_nul(s) {
                Ok(()) => Some(s.to_string()),
                Err(e) => {
                    reasons.push(format!("key `{}`: {e}", self.key_name));
                    None
                }
            },
            Raw::Int(i) => Some(i.to_string()),
            Raw::U64(u) => Some(u.to_string()),
            other => {
                reasons.push(format!(
                    "key `{}`: expected a string, got {}",
                    self.key_name,
                    show(&other)
                ));
                None
            }
        };
        let time = match coerce(DataType::Timestamp, time) {
            Ok(Cell::Int(t)) => Some(t),
            Ok(_) => {
                reasons.push(format!("missing time `{}`", self.time_name));
                None
            }
            Err(e) => {
                reasons.push(format!("time `{}`: {e}", self.time_name));
                None
            }
        };
        self.cells.clear();
        for (i, ty) in self.field_types.iter().enumerate() {
            match coerce(*ty, field(i)) {
                Ok(c) => self.cells.push(c),
                Err(e) => {
                    reasons.push(format!("field `{}`: {e}", self.field_names[i]));
                    self.cells.push(Cell::Null);
                }
            }
        }
        let time = match (time, reasons.is_empty()) {
            (Some(t), true) => t,
            _ => {
                let raw = raw();
                self.reject(pos, raw, reasons.join("; "));
                return;
            }
        };
        self.records += 1;
        self.rows.key.push(key);
        self.rows.time.push(time);
        self.rows.extra.push(extra);
        for (col, cell) in self.rows.fields.iter_mut().zip(self.cells.drain(..)) {
            match (col, cell) {
                (Column::Int(v) | Column::Timestamp(v), Cell::Int(x)) => v.push(Some(x)),
                (Column::Int(v) | Column::Timestamp(v), _) => v.push(None),
                (Column::Float(v), Cell::Float(x)) => v.push(Some(x)),
                (Column::Float(v), _) => v.push(None),
                (Column::Bool(v), Cell::Bool(x)) => v.push(Some(x)),
                (Column::Bool(v), _) => v.push(None),
                (Column::Str(v), Cell::Str(x)) => v.push(Some(x)),
                (Column::Str(v), _) => v.push(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_accepted_form() {
        let z = parse_timestamp_us("2026-03-01T00:00:00Z").unwrap();
        assert_eq!(z, 1_772_323_200_000_000);
        assert_eq!(parse_timestamp_us("2026-03-01T01:00:00+01:00").unwrap(), z);
        assert_eq!(parse_timestamp_us("2026-02-28T19:00:00-05:00").unwrap(), z);
        assert_eq!(parse_timestamp_us("1772323200").unwrap(), z);
        assert_eq!(parse_timestamp_us("1772323200.5").unwrap(), z + 500_000);
        assert_eq!(
            parse_timestamp_us("2026-03-01T00:00:00.123456Z").unwrap(),
            z + 123_456
        );
        assert!(parse_timestamp_us("2026-03-01 00:00:00").is_err());
        assert!(parse_timestamp_us("yesterday").is_err());
        assert!(parse_timestamp_us("1e300").is_err());
    }

    #[test]
    fn coercions_accept_and_refuse() {
        assert!(matches!(
            coerce(DataType::Int, Raw::Text("42")),
            Ok(Cell::Int(42))
        ));
        assert!(matches!(
            coerce(DataType::Int, Raw::Text("42.0")),
            Ok(Cell::Int(42))
        ));
        assert!(coerce(DataType::Int, Raw::Text("42.5")).is_err());
        assert!(coerce(DataType::Int, Raw::Bool(true)).is_err());
        assert!(matches!(
            coerce(DataType::Float, Raw::Int(3)),
            Ok(Cell::Float(_))
        ));
        assert!(coerce(DataType::Float, Raw::Text("NaN")).is_err());
        for v in ["inf", "-inf", "Infinity", "1e400"] {
            assert!(coerce(DataType::Float, Raw::Text(v)).is_err(), "{v}");
        }
        assert!(coerce(DataType::Float, Raw::Float(f64::INFINITY)).is_err());
        let err = |r| coerce(DataType::Int, r).err().unwrap_or_default();
        assert!(err(Raw::U64(u64::MAX)).contains("got 18446744073709551615,"));
        assert!(err(Raw::NumText("1e20")).contains("got 1e20, out of the int range"));
        assert!(err(Raw::Text("99999999999999999999")).contains("\"99999999999999999999\""));
        let long = "7".repeat(1000);
        assert!(err(Raw::Text(&long)).len() < 300, "the echo is capped");
        assert!(matches!(
            coerce(DataType::Bool, Raw::Text("TRUE")),
            Ok(Cell::Bool(true))
        ));
        assert!(coerce(DataType::Bool, Raw::Text("maybe")).is_err());
        assert!(matches!(
            coerce(DataType::String, Raw::Int(7)),
            Ok(Cell::Str(_))
        ));
        assert!(coerce(DataType::String, Raw::Text("a\0b")).is_err());
        assert!(matches!(coerce(DataType::Int, Raw::Null), Ok(Cell::Null)));
    }
}
