//! Puts the generated records into a store: declares each component from the checked
//! rules, converts the generator's columns to the store's typed batches and writes them.

use mlc_engine::schema::{ComponentSchema, DataType};
use mlc_store::{Column as StoreColumn, Rows, Store, WriteOutcome};

use super::DemoError;
use super::data::{ColumnData, Table};

/// Records per write: one transaction each, big enough that SQLite's per-transaction
/// cost disappears, small enough to keep memory flat.
const BATCH_ROWS: usize = 50_000;

/// Declares `schema` in the store and writes all of `table` into it.
pub async fn store_table(
    store: &Store,
    schema: &ComponentSchema,
    table: &Table,
) -> Result<WriteOutcome, DemoError> {
    store.ensure_component(schema).await?;
    let mut total = WriteOutcome::default();
    let n = table.rows();
    let mut start = 0;
    while start < n {
        let end = (start + BATCH_ROWS).min(n);
        let rows = to_rows(schema, table, start..end)?;
        total.add(store.write_batch(schema, &rows, &[]).await?);
        start = end;
    }
    Ok(total)
}

/// The declared fields the store keeps as columns, in order: the key and time names are
/// stored as the key and time, and a name declared twice once.
fn stored_fields(schema: &ComponentSchema) -> Vec<(&str, DataType)> {
    let mut seen = vec![schema.key.as_str(), schema.time.as_str()];
    let mut out = Vec::new();
    for f in &schema.fields {
        if !seen.contains(&f.name.as_str()) {
            seen.push(f.name.as_str());
            out.push((f.name.as_str(), f.ty));
        }
    }
    out
}

/// Rows `range` of `table` as a store batch shaped for `schema`. A declared field the
/// generator does not produce is written as nulls; a type mismatch is an error, because
/// it means the example's declaration and the generator disagree.
pub fn to_rows(
    schema: &ComponentSchema,
    table: &Table,
    range: std::ops::Range<usize>,
) -> Result<Rows, DemoError> {
    let mismatch = |what: &str| {
        DemoError::Schema(format!(
            "component `{}`: {what}; the demo's generator and the rules' declaration disagree",
            schema.name
        ))
    };
    let len = range.len();
    let key = match table.column(&schema.key) {
        Some(ColumnData::Str(v)) => v[range.clone()].to_vec(),
        _ => return Err(mismatch(&format!("no string key column `{}`", schema.key))),
    };
    let time = match table.column(&schema.time) {
        Some(ColumnData::Timestamp(v)) => v[range.clone()].to_vec(),
        _ => return Err(mismatch(&format!("no time column `{}`", schema.time))),
    };
    let mut fields = Vec::new();
    for (name, ty) in stored_fields(schema) {
        let column = match (table.column(name), ty) {
            (None, ty) => nulls(ty, len),
            (Some(ColumnData::Int(v)), DataType::Int) => {
                StoreColumn::Int(v[range.clone()].to_vec())
            }
            (Some(ColumnData::Float(v)), DataType::Float) => {
                StoreColumn::Float(v[range.clone()].to_vec())
            }
            (Some(ColumnData::Str(v)), DataType::String) => {
                StoreColumn::Str(v[range.clone()].to_vec())
            }
            (Some(ColumnData::Timestamp(v)), DataType::Timestamp) => {
                StoreColumn::Timestamp(v[range.clone()].iter().map(|x| Some(*x)).collect())
            }
            (Some(_), ty) => {
                return Err(mismatch(&format!(
                    "field `{name}` is declared {} but generated otherwise",
                    ty.name()
                )));
            }
        };
        fields.push(column);
    }
    Ok(Rows {
        key,
        time,
        fields,
        extra: vec![None; len],
    })
}

fn nulls(ty: DataType, len: usize) -> StoreColumn {
    match ty {
        DataType::Int => StoreColumn::Int(vec![None; len]),
        DataType::Float => StoreColumn::Float(vec![None; len]),
        DataType::Bool => StoreColumn::Bool(vec![None; len]),
        DataType::String => StoreColumn::Str(vec![None; len]),
        DataType::Timestamp => StoreColumn::Timestamp(vec![None; len]),
    }
}
