//! [`PluginAccumulator`]: a plugin's aggregate state seen through the engine's
//! [`Accumulator`] trait, so the executor runs plugins exactly like builtins.

use std::any::Any;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType as ArrowType;
use mlc_engine::functions::{Accumulator, EvalError, Outcome, Side};
use mlc_engine::value::Value;

use crate::host::{SharedSandbox, chunk_rows, poisoned_lock};

/// One aggregate state (a handle) inside a plugin's sandbox.
pub struct PluginAccumulator {
    sandbox: SharedSandbox,
    handle: i32,
    n_args: usize,
    /// Reused conversion buffers, one per argument, of at most one chunk of values.
    buffers: Vec<Vec<f64>>,
}

impl std::fmt::Debug for PluginAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginAccumulator")
            .field("handle", &self.handle)
            .finish()
    }
}

impl PluginAccumulator {
    pub(crate) fn new(sandbox: SharedSandbox, handle: i32, n_args: usize) -> PluginAccumulator {
        PluginAccumulator {
            sandbox,
            handle,
            n_args,
            buffers: vec![Vec::new(); n_args],
        }
    }
}

/// Appends `array[offset..offset + len]` to `out` as f64, NaN for null.
fn convert(array: &dyn Array, offset: usize, len: usize, out: &mut Vec<f64>) -> Result<(), String> {
    out.clear();
    let nulls = array.logical_nulls();
    let is_null = |i: usize| nulls.as_ref().is_some_and(|n| n.is_null(i));
    match array.data_type() {
        ArrowType::Float64 => {
            let values = array.as_primitive::<Float64Type>().values();
            out.extend_from_slice(&values[offset..offset + len]);
        }
        ArrowType::Int64 => {
            let values = array.as_primitive::<Int64Type>().values();
            out.extend(values[offset..offset + len].iter().map(|&v| v as f64));
        }
        ArrowType::Boolean => {
            let values = array.as_boolean();
            out.extend((offset..offset + len).map(|i| if values.value(i) { 1.0 } else { 0.0 }));
        }
        ArrowType::Null => out.resize(len, f64::NAN),
        other => {
            return Err(format!(
                "plugin arguments must be int, float or bool columns, not {other}"
            ));
        }
    }
    if nulls.is_some() {
        for (i, v) in out.iter_mut().enumerate() {
            if is_null(offset + i) {
                *v = f64::NAN;
            }
        }
    }
    Ok(())
}

impl Accumulator for PluginAccumulator {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        if args.len() != self.n_args {
            return Err(EvalError::Invalid(format!(
                "a plugin that takes {} arguments was given {}",
                self.n_args,
                args.len()
            )));
        }
        let rows = args.first().map_or(0, |a| a.len());
        if args.iter().any(|a| a.len() != rows) {
            return Err(EvalError::Invalid(
                "plugin argument columns differ in length".into(),
            ));
        }
        let mut sandbox = self.sandbox.lock().map_err(|_| poisoned_lock())?;
        let chunk = chunk_rows(sandbox.limits.memory_bytes, self.n_args);
        let mut offset = 0;
        while offset < rows {
            let len = chunk.min(rows - offset);
            for (array, buffer) in args.iter().zip(self.buffers.iter_mut()) {
                convert(array.as_ref(), offset, len, buffer)
                    .map_err(|e| EvalError::Invalid(format!("plugin `{}`: {e}", sandbox.name)))?;
            }
            let columns: Vec<&[f64]> = self.buffers.iter().map(Vec::as_slice).collect();
            sandbox
                .update(self.handle, &columns)
                .map_err(EvalError::Invalid)?;
            offset += len;
        }
        Ok(())
    }

    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let other = other
            .as_any()
            .downcast_ref::<PluginAccumulator>()
            .ok_or_else(|| {
                EvalError::Invalid("a plugin state can only merge with the same plugin's".into())
            })?;
        if !std::sync::Arc::ptr_eq(&self.sandbox, &other.sandbox) {
            return Err(EvalError::Invalid(
                "plugin states from different sessions cannot be merged; make both \
                 accumulators from one PluginSession"
                    .into(),
            ));
        }
        let mut sandbox = self.sandbox.lock().map_err(|_| poisoned_lock())?;
        sandbox
            .merge(self.handle, other.handle)
            .map_err(EvalError::Invalid)
    }

    fn finalize(&self) -> Result<Outcome, EvalError> {
        let mut sandbox = self.sandbox.lock().map_err(|_| poisoned_lock())?;
        match sandbox.finalize(self.handle).map_err(EvalError::Invalid)? {
            Ok(value) => Ok(Outcome::Value(Value::Float(value))),
            Err(reason) => Ok(Outcome::Undefined(reason)),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PluginAccumulator {
    fn drop(&mut self) {
        if let Ok(mut sandbox) = self.sandbox.lock() {
            sandbox.free_state(self.handle);
        }
    }
}
