//! The generated records, column by column, and their CSV and JSON-lines forms.

use std::io::{self, Write};

/// The values of one column; `None` is null. Timestamps are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
    Timestamp(Vec<i64>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Str(v) => v.len(),
            ColumnData::Timestamp(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub data: ColumnData,
}

/// The records of one component, as columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub component: &'static str,
    pub key: &'static str,
    pub time: &'static str,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map(|c| c.data.len()).unwrap_or(0)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.data)
    }

    /// The event times, which every table has under its `time` name.
    pub fn times(&self) -> &[i64] {
        match self.column(self.time) {
            Some(ColumnData::Timestamp(t)) => t,
            _ => &[],
        }
    }

    /// CSV with a header row: an empty field is null, timestamps are RFC 3339 in UTC,
    /// floats in their shortest form that reads back to the same value.
    pub fn write_csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let header: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        writeln!(out, "{}", header.join(","))?;
        let mut line = String::new();
        for row in 0..self.rows() {
            line.clear();
            for (i, col) in self.columns.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                push_cell(&mut line, &col.data, row, Format::Csv);
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// One JSON object per line; a null field is written as `null`.
    pub fn write_json_lines(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut line = String::new();
        for row in 0..self.rows() {
            line.clear();
            line.push('{');
            for (i, col) in self.columns.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&serde_json::Value::from(col.name).to_string());
                line.push(':');
                push_cell(&mut line, &col.data, row, Format::Json);
            }
            line.push('}');
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
}

fn push_cell(line: &mut String, data: &ColumnData, row: usize, format: Format) {
    use std::fmt::Write as _;
    let null = if format == Format::Json { "null" } else { "" };
    // Writing to a String cannot fail, so the results of write! are ignored below.
    match data {
        ColumnData::Int(v) => match v.get(row).copied().flatten() {
            Some(x) => {
                let _ = write!(line, "{x}");
            }
            None => line.push_str(null),
        },
        ColumnData::Float(v) => match v.get(row).copied().flatten() {
            Some(x) if x.is_finite() => {
                let _ = write!(line, "{x:?}");
            }
            _ => line.push_str(null),
        },
        ColumnData::Str(v) => match v.get(row).and_then(|s| s.as_deref()) {
            Some(s) => match format {
                Format::Json => line.push_str(&serde_json::Value::from(s).to_string()),
                Format::Csv if s.contains([',', '"', '\n', '\r']) || s.is_empty() => {
                    line.push('"');
                    line.push_str(&s.replace('"', "\"\""));
                    line.push('"');
                }
                Format::Csv => line.push_str(s),
            },
            None => line.push_str(null),
        },
        ColumnData::Timestamp(v) => match v.get(row) {
            Some(us) => {
                let text = rfc3339(*us);
                if format == Format::Json {
                    line.push('"');
                    line.push_str(&text);
                    line.push('"');
                } else {
                    line.push_str(&text);
                }
            }
            None => line.push_str(null),
        },
    }
}

/// RFC 3339 in UTC (`2026-03-01T00:00:00Z`, with a fraction only when there is one).
pub fn rfc3339(us: i64) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(t) => t.to_string(),
        // Out of jiff's range: the generator never produces such times.
        Err(_) => us.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            component: "t",
            key: "id",
            time: "ts",
            columns: vec![
                Column {
                    name: "id",
                    data: ColumnData::Str(vec![Some("a".into()), Some("b,c".into())]),
                },
                Column {
                    name: "ts",
                    data: ColumnData::Timestamp(vec![0, 1_500_000]),
                },
                Column {
                    name: "n",
                    data: ColumnData::Int(vec![Some(-3), None]),
                },
                Column {
                    name: "x",
                    data: ColumnData::Float(vec![Some(0.1), Some(2.0)]),
                },
            ],
        }
    }

    #[test]
    fn csv_quotes_and_nulls() {
        let mut out = Vec::new();
        table().write_csv(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,ts,n,x\na,1970-01-01T00:00:00Z,-3,0.1\n\"b,c\",1970-01-01T00:00:01.5Z,,2.0\n"
        );
    }

    #[test]
    fn json_lines_use_null() {
        let mut out = Vec::new();
        table().write_json_lines(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[1]["n"], serde_json::Value::Null);
        assert_eq!(lines[1]["id"], "b,c");
        assert_eq!(lines[0]["x"], 0.1);
    }
}
