//! [`PluginAccumulator`]: a plugin's aggregate state seen through the engine's
//! [`Accumulator`] trait, so the executor runs plugins exactly like builtins.

use std::any::Any;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType as ArrowType;
use mlc_engine::functions::{Accumulator, EvalError, Outcome, Side};
use mlc_engine::value::Value;

use crate::host::{SharedSandbox, chunk_rows, eval_error, poisoned_lock};

/// One aggregate state (a handle) inside a plugin's sandbox.
pub(crate) struct PluginAccumulator {
    sandbox: SharedSandbox,
    handle: i32,
    n_args: usize,
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
        }
    }
}

/// Writes `array[offset..offset + out.len() / 8]` into `out` as little-endian f64, NaN for
/// null.
fn convert(array: &dyn Array, offset: usize, out: &mut [u8]) -> Result<(), String> {
    let len = out.len() / 8;
    let slots = out.chunks_exact_mut(8);
    match array.data_type() {
        ArrowType::Float64 => {
            let values = &array.as_primitive::<Float64Type>().values()[offset..offset + len];
            for (dst, v) in slots.zip(values) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        ArrowType::Int64 => {
            let values = &array.as_primitive::<Int64Type>().values()[offset..offset + len];
            for (dst, v) in slots.zip(values) {
                dst.copy_from_slice(&(*v as f64).to_le_bytes());
            }
        }
        ArrowType::Boolean => {
            let values = array.as_boolean();
            for (i, dst) in slots.enumerate() {
                let v = if values.value(offset + i) {
                    1.0f64
                } else {
                    0.0
                };
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        ArrowType::Null => {
            for dst in slots {
                dst.copy_from_slice(&f64::NAN.to_le_bytes());
            }
        }
        other => {
            return Err(format!(
                "plugin arguments must be int, float or bool columns, not {other}"
            ));
        }
    }
    if let Some(nulls) = array.logical_nulls()
        && nulls.null_count() > 0
    {
        for i in 0..len {
            if nulls.is_null(offset + i) {
                out[i * 8..i * 8 + 8].copy_from_slice(&f64::NAN.to_le_bytes());
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
        let capacity = chunk.min(rows);
        let mut offset = 0;
        while offset < rows {
            let len = chunk.min(rows - offset);
            sandbox
                .update_with(self.handle, self.n_args, len, capacity, |col, bytes| {
                    convert(args[col].as_ref(), offset, bytes)
                })
                .map_err(eval_error)?;
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
        sandbox.merge(self.handle, other.handle).map_err(eval_error)
    }

    fn finalize(&self) -> Result<Outcome, EvalError> {
        let mut sandbox = self.sandbox.lock().map_err(|_| poisoned_lock())?;
        match sandbox.finalize(self.handle).map_err(eval_error)? {
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
