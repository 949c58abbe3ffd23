//! One column of a segment read, assembled in its final buffers.
//!
//! A whole segment's blob is read with SQLite's incremental blob I/O straight into the
//! column's buffers: no blob copy in SQLite's heap, no per-segment array, no concatenation.
//! The other parts of a read (rows read from the row table, segments cut by the window) arrive
//! as arrays and are appended. A column read only for its nulls (`nulls_only`) keeps its
//! validity and skips its values: the finished array has the declared type, its validity, and
//! zeros for values, all sharing one zeroed buffer (see [`Zeros`]).

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, new_empty_array,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use mlc_engine::schema::DataType;
use rusqlite::blob::Blob;

use crate::segments::{LAYOUT, tag};
use crate::sql::arrow_type;

/// Zeros shared by every values-skipped column of one read: one allocation, never written
/// after it is made, so its pages are never copied (the kernel maps its zero page when read).
#[derive(Clone, Debug)]
pub(crate) struct Zeros(Buffer);

impl Zeros {
    /// Enough zeros for any column of `rows` rows (8 bytes a row, plus one offset).
    pub(crate) fn new(rows: usize) -> Zeros {
        Zeros(Buffer::from_vec(vec![0u64; rows.saturating_add(1)]))
    }

    fn take(&self, bytes: usize) -> Buffer {
        self.0.slice_with_length(0, bytes)
    }
}

enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(BooleanBufferBuilder),
    Str {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    /// Only the validity is kept.
    Skipped,
}

/// Builds one column from its parts in read order.
pub(crate) struct ColumnAssembler {
    ty: DataType,
    len: usize,
    /// The rows the caller expects in all, for sizing the text buffer.
    rows: usize,
    /// `None` while every row so far is valid.
    validity: Option<BooleanBufferBuilder>,
    values: Values,
    scratch: Vec<u8>,
    offsets_scratch: Vec<u32>,
}

impl ColumnAssembler {
    /// An empty column of type `ty` with room for `rows` rows; `nulls_only` skips the values.
    pub(crate) fn new(ty: DataType, rows: usize, nulls_only: bool) -> ColumnAssembler {
        let values = match ty {
            _ if nulls_only => Values::Skipped,
            DataType::Int | DataType::Timestamp => Values::Int(Vec::with_capacity(rows)),
            DataType::Float => Values::Float(Vec::with_capacity(rows)),
            DataType::Bool => Values::Bool(BooleanBufferBuilder::new(rows)),
            DataType::String => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Values::Str {
                    offsets,
                    data: Vec::new(),
                }
            }
        };
        ColumnAssembler {
            ty,
            len: 0,
            rows,
            validity: None,
            values,
            scratch: Vec::new(),
            offsets_scratch: Vec::new(),
        }
    }

    fn validity_mut(&mut self, capacity: usize) -> &mut BooleanBufferBuilder {
        let len = self.len;
        self.validity.get_or_insert_with(|| {
            let mut b = BooleanBufferBuilder::new(capacity.max(len));
            b.append_n(len, true);
            b
        })
    }

    /// Appends the segment blob `blob` holds (layout 1, see segments.rs) and returns its row
    /// count, or `None` when it is not a well-formed blob of this column's type (the caller
    /// reads the rows instead). The column is unusable after `None`.
    pub(crate) fn append_blob(&mut self, blob: &Blob<'_>) -> rusqlite::Result<Option<usize>> {
        let total = blob.len();
        let mut head = [0u8; 7];
        if total < head.len() {
            return Ok(None);
        }
        blob.read_at_exact(&mut head, 0)?;
        if head[0] != LAYOUT || head[1] != tag(self.ty) {
            return Ok(None);
        }
        let n = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let bits = n.div_ceil(8);
        let mut pos = head.len();
        match head[6] {
            0 => {
                if let Some(v) = &mut self.validity {
                    v.append_n(n, true);
                }
            }
            1 => {
                if total < pos + bits {
                    return Ok(None);
                }
                let mut bitmap = std::mem::take(&mut self.scratch);
                bitmap.resize(bits, 0);
                blob.read_at_exact(&mut bitmap, pos)?;
                self.validity_mut(n).append_packed_range(0..n, &bitmap);
                self.scratch = bitmap;
                pos += bits;
            }
            _ => return Ok(None),
        }
        let ok = match &mut self.values {
            Values::Int(v) => total == pos + n * 8 && read_words(blob, v, n, pos, i64::from_le)?,
            Values::Float(v) => {
                total == pos + n * 8
                    && read_words(blob, v, n, pos, |x: f64| {
                        f64::from_bits(u64::from_le(x.to_bits()))
                    })?
            }
            Values::Bool(b) => {
                if total != pos + bits {
                    return Ok(None);
                }
                self.scratch.resize(bits, 0);
                blob.read_at_exact(&mut self.scratch, pos)?;
                b.append_packed_range(0..n, &self.scratch);
                true
            }
            Values::Str { offsets, data } => {
                let Some(region) = (n + 1).checked_mul(4) else {
                    return Ok(None);
                };
                if total < pos + region {
                    return Ok(None);
                }
                let raw = &mut self.offsets_scratch;
                raw.clear();
                raw.resize(n + 1, 0);
                blob.read_at_exact(bytemuck::cast_slice_mut(raw.as_mut_slice()), pos)?;
                let base = data.len();
                let mut last = 0u32;
                for (i, o) in raw.iter_mut().enumerate() {
                    *o = u32::from_le(*o);
                    if *o < last || (i == 0 && *o != 0) {
                        return Ok(None);
                    }
                    last = *o;
                }
                let bytes = last as usize;
                let Ok(end) = i32::try_from(base + bytes) else {
                    return Ok(None);
                };
                if total != pos + region + bytes || end < 0 {
                    return Ok(None);
                }
                // `base + o <= end`, which fits an i32.
                offsets.extend(raw[1..].iter().map(|&o| (base + o as usize) as i32));
                if data.capacity() - base < bytes {
                    // Room for the rows still to come at this blob's bytes a row, and an
                    // eighth more: growing by doubling would copy the text read so far and
                    // touch up to twice its size in fresh pages (room never written costs
                    // no memory). At least doubling, should later rows be longer; never
                    // past what i32 offsets can address (`end` fits, checked above).
                    let later = self.rows.saturating_sub(self.len + n);
                    let more = (bytes / n.max(1) + 1).saturating_mul(later);
                    let more = bytes.saturating_add(more.saturating_add(more / 8));
                    data.reserve_exact(more.max(base).min(i32::MAX as usize - base));
                }
                data.resize(base + bytes, 0);
                blob.read_at_exact(&mut data[base..], pos + region)?;
                true
            }
            Values::Skipped => match self.ty {
                DataType::Int | DataType::Timestamp | DataType::Float => total == pos + n * 8,
                DataType::Bool => total == pos + bits,
                DataType::String => {
                    let region = (n + 1) * 4;
                    if total < pos + region {
                        return Ok(None);
                    }
                    let mut last = [0u8; 4];
                    blob.read_at_exact(&mut last, pos + n * 4)?;
                    total == pos + region + u32::from_le_bytes(last) as usize
                }
            },
        };
        if !ok {
            return Ok(None);
        }
        self.len += n;
        Ok(Some(n))
    }

    /// Appends an array of this column's Arrow type (rows read from the row table, or a
    /// segment cut by the window); `false` when its type is another.
    pub(crate) fn append_array(&mut self, a: &dyn Array) -> bool {
        let n = a.len();
        match a.nulls().filter(|nb| nb.null_count() > 0) {
            Some(nb) => self.validity_mut(n).append_buffer(nb.inner()),
            None => {
                if let Some(v) = &mut self.validity {
                    v.append_n(n, true);
                }
            }
        }
        let any = a.as_any();
        let ok = match &mut self.values {
            Values::Int(v) => any
                .downcast_ref::<Int64Array>()
                .map(|x| v.extend_from_slice(x.values()))
                .is_some(),
            Values::Float(v) => any
                .downcast_ref::<Float64Array>()
                .map(|x| v.extend_from_slice(x.values()))
                .is_some(),
            Values::Bool(b) => any
                .downcast_ref::<BooleanArray>()
                .map(|x| b.append_buffer(x.values()))
                .is_some(),
            Values::Str { offsets, data } => match any.downcast_ref::<StringArray>() {
                Some(x) => {
                    let offs = x.value_offsets();
                    let (first, last) = (offs[0] as usize, offs[n] as usize);
                    let base = data.len();
                    match i32::try_from(base + (last - first)) {
                        Ok(_) => {
                            offsets.extend(
                                offs[1..]
                                    .iter()
                                    .map(|&o| (base + (o as usize - first)) as i32),
                            );
                            data.extend_from_slice(&x.values().as_slice()[first..last]);
                            true
                        }
                        Err(_) => false,
                    }
                }
                None => false,
            },
            Values::Skipped => a.data_type() == &arrow_type(self.ty),
        };
        if ok {
            self.len += n;
        }
        ok
    }

    /// The column; `None` when the assembled buffers do not form a valid array (text that is
    /// not UTF-8, which the store never writes).
    pub(crate) fn finish(self, zeros: &Zeros) -> Option<ArrayRef> {
        let n = self.len;
        let nulls = self.validity.map(|mut b| NullBuffer::new(b.finish()));
        if n == 0 {
            return Some(new_empty_array(&arrow_type(self.ty)));
        }
        Some(match self.values {
            Values::Int(v) => Arc::new(Int64Array::try_new(ScalarBuffer::from(v), nulls).ok()?),
            Values::Float(v) => Arc::new(Float64Array::try_new(ScalarBuffer::from(v), nulls).ok()?),
            Values::Bool(mut b) => Arc::new(BooleanArray::new(b.finish(), nulls)),
            Values::Str { offsets, data } => Arc::new(
                StringArray::try_new(
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    Buffer::from_vec(data),
                    nulls,
                )
                .ok()?,
            ),
            Values::Skipped => match self.ty {
                DataType::Int | DataType::Timestamp => Arc::new(
                    Int64Array::try_new(ScalarBuffer::new(zeros.take(n * 8), 0, n), nulls).ok()?,
                ),
                DataType::Float => Arc::new(
                    Float64Array::try_new(ScalarBuffer::new(zeros.take(n * 8), 0, n), nulls)
                        .ok()?,
                ),
                DataType::Bool => Arc::new(BooleanArray::new(
                    arrow_buffer::BooleanBuffer::new(zeros.take(n.div_ceil(8)), 0, n),
                    nulls,
                )),
                DataType::String => Arc::new(
                    StringArray::try_new(
                        OffsetBuffer::new(ScalarBuffer::new(zeros.take((n + 1) * 4), 0, n + 1)),
                        Buffer::from_vec(Vec::<u8>::new()),
                        nulls,
                    )
                    .ok()?,
                ),
            },
        })
    }
}

/// Reads `n` 8-byte little-endian words at `pos` of `blob` onto the end of `v`, straight into
/// its buffer, then puts them in native byte order with `from_le` (nothing on little-endian).
fn read_words<T: bytemuck::Pod + Default>(
    blob: &Blob<'_>,
    v: &mut Vec<T>,
    n: usize,
    pos: usize,
    from_le: impl Fn(T) -> T,
) -> rusqlite::Result<bool> {
    let old = v.len();
    v.resize(old + n, T::default());
    blob.read_at_exact(bytemuck::cast_slice_mut(&mut v[old..]), pos)?;
    if cfg!(target_endian = "big") {
        for x in &mut v[old..] {
            *x = from_le(*x);
        }
    }
    Ok(true)
}
