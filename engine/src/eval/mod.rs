//! Evaluation of checked plans over in-memory columns: row expressions over Arrow arrays,
//! `group by` slices, aggregates fed through accumulators, and the verdict of each `expect`.
//!
//! Pure: the executor in `mlc-runtime` fetches and joins the rows, then hands them here as
//! a [`Frame`].

pub mod agg;
pub mod check;
pub mod column;
pub mod row;
pub mod scalar;
pub mod slice;
pub mod state;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};

pub use agg::{ExpectOutcome, Status};
pub use check::{CheckInput, Outcome, SourceRows, cores, evaluate_check, par_map};
pub use row::parse_time;
pub(crate) use row::{eval_row, predicate_mask};
pub use slice::{Slice, slices};
pub use state::{CheckState, Conclusion};

use crate::functions::EvalError;
use crate::plan::ColumnId;

/// The rows of a source: one batch per component of the source (the first component, then
/// each joined component), all with the same number of rows, row `i` of each belonging
/// together.
#[derive(Debug, Clone)]
pub struct Frame {
    pub sources: Vec<RecordBatch>,
    pub rows: usize,
}

impl Frame {
    /// Checks that every batch has the same number of rows.
    pub fn new(sources: Vec<RecordBatch>) -> Result<Frame, EvalError> {
        let rows = sources.first().map_or(0, RecordBatch::num_rows);
        if let Some(bad) = sources.iter().find(|b| b.num_rows() != rows) {
            return Err(EvalError::Invalid(format!(
                "joined columns are misaligned: {} rows beside {rows}",
                bad.num_rows()
            )));
        }
        Ok(Frame { sources, rows })
    }

    /// A column by component index and name. A frame with a single batch (a baseline
    /// component read with the same column names) answers by name alone.
    pub fn column(&self, id: &ColumnId) -> Option<&ArrayRef> {
        if let Some(c) = self
            .sources
            .get(id.source)
            .and_then(|b| b.column_by_name(&id.name))
        {
            return Some(c);
        }
        match self.sources.as_slice() {
            [only] => only.column_by_name(&id.name),
            _ => None,
        }
    }

    /// The same rows with only the columns in `keep` (by component index and name; a frame
    /// with a single batch keeps by name alone, as [`Frame::column`] finds). Columns are
    /// shared, not copied; a component left without columns keeps its row count.
    pub(crate) fn project(&self, keep: &[ColumnId]) -> Result<Frame, EvalError> {
        let single = self.sources.len() == 1;
        let sources = self
            .sources
            .iter()
            .enumerate()
            .map(|(s, b)| {
                let idx: Vec<usize> = b
                    .schema()
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| {
                        keep.iter()
                            .any(|k| (single || k.source == s) && k.name == *f.name())
                    })
                    .map(|(i, _)| i)
                    .collect();
                b.project(&idx).map_err(arrow_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frame {
            sources,
            rows: self.rows,
        })
    }

    /// The rows where `mask` is true.
    pub fn filter(&self, mask: &BooleanArray) -> Result<Frame, EvalError> {
        // The predicate (its selected runs or indices) is built once for every component.
        let predicate = arrow_select::filter::FilterBuilder::new(mask)
            .optimize()
            .build();
        let sources = self
            .sources
            .iter()
            .map(|b| predicate.filter_record_batch(b).map_err(arrow_error))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = predicate.count();
        Ok(Frame { sources, rows })
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &UInt32Array) -> Result<Frame, EvalError> {
        let sources = self
            .sources
            .iter()
            .map(|b| arrow_select::take::take_record_batch(b, indices).map_err(arrow_error))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frame {
            sources,
            rows: indices.len(),
        })
    }
}

/// Arrow's errors here mean a bug in how the executor assembled its columns; they are
/// reported on the check rather than aborting the whole evaluation.
pub(crate) fn arrow_error(e: arrow_schema::ArrowError) -> EvalError {
    EvalError::Invalid(format!("internal column error: {e}"))
}

#[cfg(test)]
mod tests;
