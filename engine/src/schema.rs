//! Column types and component schemas: what a `component` declaration means once checked,
//! shared by the checker, the store and the executor.

use serde::{Deserialize, Serialize};

/// The type of a stored column or of a row-level expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Int,
    Float,
    Bool,
    String,
    /// Microseconds since the Unix epoch, UTC.
    Timestamp,
}

impl DataType {
    pub fn name(self) -> &'static str {
        match self {
            DataType::Int => "int",
            DataType::Float => "float",
            DataType::Bool => "bool",
            DataType::String => "string",
            DataType::Timestamp => "timestamp",
        }
    }
    pub(crate) fn is_numeric(self) -> bool {
        matches!(self, DataType::Int | DataType::Float)
    }
    /// `categorical(C)` takes string and bool fields.
    pub(crate) fn is_categorical(self) -> bool {
        matches!(self, DataType::String | DataType::Bool)
    }
}

impl From<mlc_grammar::ast::FieldType> for DataType {
    fn from(t: mlc_grammar::ast::FieldType) -> Self {
        use mlc_grammar::ast::FieldType as F;
        match t {
            F::Int => DataType::Int,
            F::Float => DataType::Float,
            F::Bool => DataType::Bool,
            F::String => DataType::String,
            F::Timestamp => DataType::Timestamp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub name: String,
    pub ty: DataType,
}

/// A checked component declaration. The key is a string column and the time a timestamp
/// column; neither is listed in `fields` unless the user declared it there as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSchema {
    pub name: String,
    pub key: String,
    pub time: String,
    pub fields: Vec<FieldSchema>,
}

impl ComponentSchema {
    /// The type of a column of this component: the key, the time, or a declared field.
    pub fn column_type(&self, column: &str) -> Option<DataType> {
        if column == self.key {
            return Some(DataType::String);
        }
        if column == self.time {
            return Some(DataType::Timestamp);
        }
        self.fields.iter().find(|f| f.name == column).map(|f| f.ty)
    }
    /// Every column name a check may use: key, time, then the fields in declared order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        [self.key.as_str(), self.time.as_str()]
            .into_iter()
            .chain(self.fields.iter().map(|f| f.name.as_str()))
            .filter({
                let mut seen = Vec::new();
                move |n: &&str| {
                    if seen.contains(n) {
                        false
                    } else {
                        seen.push(*n);
                        true
                    }
                }
            })
    }
}
