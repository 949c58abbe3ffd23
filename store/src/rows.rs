//! Records on their way into the store: coerced, typed and columnar, one batch at a time.

use crate::error::{Result, StoreError};
use crate::sql::stored_fields;
use mlc_engine::schema::{ComponentSchema, DataType};

/// One typed column of a batch being written.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
    /// Microseconds since the epoch.
    Timestamp(Vec<Option<i64>>),
}

impl Column {
    pub fn new(ty: DataType, capacity: usize) -> Column {
        match ty {
            DataType::Int => Column::Int(Vec::with_capacity(capacity)),
            DataType::Float => Column::Float(Vec::with_capacity(capacity)),
            DataType::Bool => Column::Bool(Vec::with_capacity(capacity)),
            DataType::String => Column::Str(Vec::with_capacity(capacity)),
            DataType::Timestamp => Column::Timestamp(Vec::with_capacity(capacity)),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
            Column::Timestamp(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn data_type(&self) -> DataType {
        match self {
            Column::Int(_) => DataType::Int,
            Column::Float(_) => DataType::Float,
            Column::Bool(_) => DataType::Bool,
            Column::Str(_) => DataType::String,
            Column::Timestamp(_) => DataType::Timestamp,
        }
    }
}

/// A batch of records of one component, ready to store. `fields` follows the component's
/// stored fields: its declared fields in order, less any named like the key or the time.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub key: Vec<Option<String>>,
    /// Microseconds since the epoch.
    pub time: Vec<i64>,
    pub fields: Vec<Column>,
    /// The undeclared fields of each record as a JSON object, `None` when it had none.
    pub extra: Vec<Option<String>>,
}

impl Rows {
    /// An empty batch shaped for `schema`.
    pub fn new(schema: &ComponentSchema, capacity: usize) -> Rows {
        Rows {
            key: Vec::with_capacity(capacity),
            time: Vec::with_capacity(capacity),
            fields: stored_fields(schema)
                .map(|f| Column::new(f.ty, capacity))
                .collect(),
            extra: Vec::with_capacity(capacity),
        }
    }
    pub fn len(&self) -> usize {
        self.time.len()
    }
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// Refuses a batch whose columns do not match the schema, so that a caller's mistake
    /// becomes an error rather than misplaced data.
    pub(crate) fn check_shape(&self, schema: &ComponentSchema) -> Result<()> {
        let n = self.len();
        let fields: Vec<_> = stored_fields(schema).collect();
        let ok = self.key.len() == n
            && self.extra.len() == n
            && self.fields.len() == fields.len()
            && self
                .fields
                .iter()
                .zip(&fields)
                .all(|(c, f)| c.len() == n && c.data_type() == f.ty);
        if ok {
            Ok(())
        } else {
            Err(StoreError::Ingest(format!(
                "internal error: a batch for `{}` does not match its schema",
                schema.name
            )))
        }
    }
}
