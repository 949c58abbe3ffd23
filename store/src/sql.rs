//! SQL shared by both backends: naming and quoting of component tables and columns, schema
//! validation and evolution rules, and the builders that turn fetched rows into Arrow batches.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema, SchemaRef};
use mlc_engine::schema::{ComponentSchema, DataType, FieldSchema};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// The column holding each record's undeclared fields as a JSON object.
pub(crate) const EXTRA_COLUMN: &str = "__mlc_extra";

/// Postgres truncates identifiers longer than this; refusing them keeps both backends alike.
const MAX_IDENT_BYTES: usize = 63;

pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(crate) fn table_name(component: &str) -> String {
    format!("mlc_c_{component}")
}

/// The declared fields that get a column of their own: all but those named like the key or
/// the time (those are stored once, as the key and time columns), first declaration wins.
pub(crate) fn stored_fields(schema: &ComponentSchema) -> impl Iterator<Item = &FieldSchema> {
    let mut seen: Vec<&str> = vec![schema.key.as_str(), schema.time.as_str()];
    schema.fields.iter().filter(move |f| {
        if seen.contains(&f.name.as_str()) {
            false
        } else {
            seen.push(f.name.as_str());
            true
        }
    })
}

/// One physical column of a component table, as remembered in `mlc_components.columns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredColumn {
    pub name: String,
    pub ty: DataType,
}

/// The quoted columns a batch of [`crate::Rows`] is written to, in its order: the key, the
/// time, the stored fields, then the extra column.
pub(crate) fn row_columns(schema: &ComponentSchema) -> Vec<String> {
    let mut names = vec![quote(&schema.key), quote(&schema.time)];
    names.extend(stored_fields(schema).map(|f| quote(&f.name)));
    names.push(quote(EXTRA_COLUMN));
    names
}

/// Every column a schema needs: key, time, then the stored fields.
pub(crate) fn needed_columns(schema: &ComponentSchema) -> Vec<StoredColumn> {
    let mut cols = vec![
        StoredColumn {
            name: schema.key.clone(),
            ty: DataType::String,
        },
        StoredColumn {
            name: schema.time.clone(),
            ty: DataType::Timestamp,
        },
    ];
    cols.extend(stored_fields(schema).map(|f| StoredColumn {
        name: f.name.clone(),
        ty: f.ty,
    }));
    cols
}

/// Refuses declarations storage cannot represent, with the fix.
pub(crate) fn validate_schema(schema: &ComponentSchema) -> Result<()> {
    let c = &schema.name;
    if schema.key == schema.time {
        return Err(StoreError::SchemaConflict(format!(
            "component `{c}`: the key and the time are both `{}`; they must be two columns",
            schema.key
        )));
    }
    if table_name(c).len() > MAX_IDENT_BYTES {
        return Err(StoreError::SchemaConflict(format!(
            "component name `{c}` is too long to store (at most {} bytes); use a shorter name",
            MAX_IDENT_BYTES - table_name("").len()
        )));
    }
    for col in needed_columns(schema) {
        if col.name == EXTRA_COLUMN {
            return Err(StoreError::SchemaConflict(format!(
                "component `{c}`: `{EXTRA_COLUMN}` is reserved by the store; rename the field"
            )));
        }
        if col.name.len() > MAX_IDENT_BYTES {
            return Err(StoreError::SchemaConflict(format!(
                "component `{c}`: column name `{}` is too long to store (at most {MAX_IDENT_BYTES} bytes); use a shorter name",
                col.name
            )));
        }
    }
    for f in &schema.fields {
        if f.name == schema.key && f.ty != DataType::String {
            return Err(StoreError::SchemaConflict(format!(
                "component `{c}`: the key `{}` is a string column but is declared `{}` in fields; declare it `string` or remove it from fields",
                f.name,
                f.ty.name()
            )));
        }
        if f.name == schema.time && f.ty != DataType::Timestamp {
            return Err(StoreError::SchemaConflict(format!(
                "component `{c}`: the time `{}` is a timestamp column but is declared `{}` in fields; declare it `timestamp` or remove it from fields",
                f.name,
                f.ty.name()
            )));
        }
    }
    Ok(())
}

/// What changes a new declaration asks of an existing table: the columns to add, or an error
/// naming the conflict and what to do about it.
pub(crate) fn evolve(
    old_schema: &ComponentSchema,
    stored: &[StoredColumn],
    new: &ComponentSchema,
) -> Result<Vec<StoredColumn>> {
    let c = &new.name;
    if old_schema.key != new.key {
        return Err(StoreError::SchemaConflict(format!(
            "component `{c}`: the key changed from `{}` to `{}`, but stored records are keyed by `{}`; keep `key {}`, or declare a new component for the new key",
            old_schema.key, new.key, old_schema.key, old_schema.key
        )));
    }
    if old_schema.time != new.time {
        return Err(StoreError::SchemaConflict(format!(
            "component `{c}`: the time changed from `{}` to `{}`, but stored records are timed by `{}`; keep `time {}`, or declare a new component",
            old_schema.time, new.time, old_schema.time, old_schema.time
        )));
    }
    let mut added = Vec::new();
    for col in needed_columns(new) {
        match stored.iter().find(|s| s.name == col.name) {
            Some(s) if s.ty != col.ty => {
                return Err(StoreError::SchemaConflict(format!(
                    "component `{c}`: field `{}` is stored as `{}` but is now declared `{}`; stored values are never converted. Keep `{}: {}`, or declare the new values under a new field name (e.g. `{}_{}: {}`)",
                    col.name,
                    s.ty.name(),
                    col.ty.name(),
                    col.name,
                    s.ty.name(),
                    col.name,
                    col.ty.name(),
                    col.ty.name()
                )));
            }
            Some(_) => {}
            None => added.push(col),
        }
    }
    Ok(added)
}

/// A validated read: which table, which columns in which order, and the Arrow schema of the
/// batches it returns.
#[derive(Debug, Clone)]
pub(crate) struct ReadPlan {
    pub table: String,
    pub time: String,
    pub columns: Vec<(String, DataType)>,
    pub arrow: SchemaRef,
    /// Per column: read only for which rows are null, so its values may be left as zeros
    /// (see [`crate::Store::scan_batches_nulls_only`]).
    pub nulls_only: Vec<bool>,
}

impl ReadPlan {
    pub fn new(schema: &ComponentSchema, columns: &[&str]) -> Result<ReadPlan> {
        let mut cols = Vec::with_capacity(columns.len());
        let mut fields = Vec::with_capacity(columns.len());
        for name in columns {
            let ty = schema
                .column_type(name)
                .ok_or_else(|| StoreError::UnknownColumn {
                    component: schema.name.clone(),
                    column: name.to_string(),
                })?;
            let nullable = *name != schema.time;
            fields.push(Field::new(*name, arrow_type(ty), nullable));
            cols.push((name.to_string(), ty));
        }
        Ok(ReadPlan {
            table: table_name(&schema.name),
            time: schema.time.clone(),
            nulls_only: vec![false; cols.len()],
            columns: cols,
            arrow: Arc::new(Schema::new(fields)),
        })
    }

    /// Marks the columns named in `names` as read only for their nulls.
    pub fn with_nulls_only(mut self, names: &[&str]) -> ReadPlan {
        for (flag, (name, _)) in self.nulls_only.iter_mut().zip(&self.columns) {
            *flag = names.contains(&name.as_str());
        }
        self
    }

    /// `"a", "b"`, or a constant when no column is asked for (a count of rows).
    pub fn select_list(&self) -> String {
        if self.columns.is_empty() {
            return "1".to_string();
        }
        self.columns
            .iter()
            .map(|(n, _)| quote(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn builders(&self, capacity: usize) -> Vec<ColumnBuilder> {
        self.columns
            .iter()
            .map(|(_, ty)| ColumnBuilder::new(*ty, capacity))
            .collect()
    }

    pub fn finish(&self, builders: &mut [ColumnBuilder], rows: usize) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(ColumnBuilder::finish).collect();
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.arrow.clone(), arrays, &options)
            .map_err(|e| StoreError::Ingest(format!("internal error building a batch: {e}")))
    }
}

/// The batches a reader task sends through `rx`, as a [`crate::BatchStream`]: the reader
/// stays as far ahead of the consumer as the channel holds.
pub(crate) fn receiver_stream(
    rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
) -> crate::BatchStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

pub(crate) fn arrow_type(ty: DataType) -> ArrowType {
    match ty {
        DataType::Int | DataType::Timestamp => ArrowType::Int64,
        DataType::Float => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::String => ArrowType::Utf8,
    }
}

/// An Arrow builder for one read column.
pub(crate) enum ColumnBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
}

impl ColumnBuilder {
    fn new(ty: DataType, capacity: usize) -> ColumnBuilder {
        match ty {
            DataType::Int | DataType::Timestamp => {
                ColumnBuilder::Int(Int64Builder::with_capacity(capacity))
            }
            DataType::Float => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            DataType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            DataType::String => {
                ColumnBuilder::Str(StringBuilder::with_capacity(capacity, capacity * 8))
            }
        }
    }
    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// Parses `mlc_components` rows back.
pub(crate) fn decode_schema(
    name: &str,
    schema: &str,
    columns: &str,
) -> Result<(ComponentSchema, Vec<StoredColumn>)> {
    let corrupt = |e: serde_json::Error| StoreError::CorruptSchema {
        component: name.to_string(),
        reason: e.to_string(),
    };
    Ok((
        serde_json::from_str(schema).map_err(corrupt)?,
        serde_json::from_str(columns).map_err(corrupt)?,
    ))
}

pub(crate) fn encode_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Ingest(format!("internal error: {e}")))
}

pub(crate) fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// The store's migrations, `(version, name, sql)` in order, as sqlx applies them on open.
pub(crate) fn migrator(migrations: &[(i64, &str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    name.to_string().into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
