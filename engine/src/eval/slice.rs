//! `group by`: splits the rows of a frame into slices of equal key values, null being a
//! value of its own, ordered by key so results come out in a stable order.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::{Array, UInt32Array};

use super::Frame;
use super::column::Col;
use super::scalar::compare_values;
use crate::functions::EvalError;
use crate::plan::ColumnId;
use crate::value::Value;

/// The rows of one slice.
#[derive(Debug, Clone)]
pub struct Slice {
    /// One value per `group by` column; empty without `group by`.
    pub key: Vec<Value>,
    /// Row indices into the frame; `None` means every row (no `group by`).
    pub rows: Option<UInt32Array>,
    pub len: usize,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

#[derive(Hash, PartialEq, Eq)]
enum Part<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    /// A string of at most 15 bytes, packed with its length: hashed and compared as an
    /// integer (slice keys are mostly short: countries, versions, segments).
    Short(u128),
    Str(&'a str),
}

fn str_part(s: &str) -> Part<'_> {
    let b = s.as_bytes();
    if b.len() < 16 {
        let mut packed = [0u8; 16];
        packed[..b.len()].copy_from_slice(b);
        packed[15] = b.len() as u8;
        Part::Short(u128::from_le_bytes(packed))
    } else {
        Part::Str(s)
    }
}

fn part(col: &Col, i: usize) -> Part<'_> {
    if col.is_null_at(i) {
        return Part::Null;
    }
    match col {
        Col::Int(a) | Col::Timestamp(a) => Part::Int(a.value(i)),
        Col::Float(a) => {
            let v = a.value(i);
            // -0.0 and 0.0 are one slice, as are all NaNs.
            let v = if v == 0.0 {
                0.0
            } else if v.is_nan() {
                f64::NAN
            } else {
                v
            };
            Part::Float(v.to_bits())
        }
        Col::Bool(a) => Part::Bool(a.value(i)),
        Col::Str(_) => col.str_at(i).map_or(Part::Null, str_part),
        Col::Lit(_) => Part::Null,
    }
}

/// A `group by` found more distinct keys than it was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManySlices;

/// Splits `frame` by the values of `group_by`. Without `group by` there is exactly one slice,
/// even when there are no rows, so a check on an empty window still gives a result.
pub fn slices(frame: &Frame, group_by: &[ColumnId]) -> Result<Vec<Slice>, EvalError> {
    Ok(slices_at_most(frame, group_by, usize::MAX)?.unwrap_or_default())
}

/// [`slices`], giving up with [`TooManySlices`] at the first key past `max` distinct keys:
/// memory then holds at most `max` keys however many distinct values the rows have (the row
/// codes, 4 bytes a row, are all that grows with the rows).
pub(crate) fn slices_at_most(
    frame: &Frame,
    group_by: &[ColumnId],
    max: usize,
) -> Result<Result<Vec<Slice>, TooManySlices>, EvalError> {
    if group_by.is_empty() {
        return Ok(Ok(vec![Slice {
            key: Vec::new(),
            rows: None,
            len: frame.rows,
        }]));
    }
    let cols = group_by
        .iter()
        .map(|id| {
            let a = frame.column(id).ok_or_else(|| {
                EvalError::Invalid(format!("group by column `{}` was not fetched", id.name))
            })?;
            Col::from_array(a)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each column's values are coded to small integers first, so a multi-column key is
    // hashed as a few integers instead of as strings.
    let mut codes: Vec<Vec<u32>> = Vec::with_capacity(cols.len());
    let mut firsts: Vec<Vec<usize>> = Vec::with_capacity(cols.len());
    for col in &cols {
        // Every distinct value of one column is at least one slice.
        if let Col::Str(a) = col
            && let Some(strings) = a.as_string_opt::<i32>()
        {
            let Some((c, first_rows)) = code_utf8(strings, max) else {
                return Ok(Err(TooManySlices));
            };
            codes.push(c);
            firsts.push(first_rows);
            continue;
        }
        let mut dict: FastMap<Part<'_>, u32> = FastMap::default();
        let mut first_rows = Vec::new();
        let mut c = Vec::with_capacity(frame.rows);
        for i in 0..frame.rows {
            let next = dict.len() as u32;
            let code = *dict.entry(part(col, i)).or_insert_with(|| {
                first_rows.push(i);
                next
            });
            if first_rows.len() > max {
                return Ok(Err(TooManySlices));
            }
            c.push(code);
        }
        codes.push(c);
        firsts.push(first_rows);
    }
    let mut members: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    if let [only] = codes.as_slice() {
        // One column: its codes, given in order of first appearance, are the slots.
        members = (0..firsts[0].len() as u32)
            .map(|c| (vec![c], Vec::new()))
            .collect();
        for (i, &c) in only.iter().enumerate() {
            members[c as usize].1.push(i as u32);
        }
    } else {
        let mut groups: FastMap<Vec<u32>, usize> = FastMap::default();
        let mut key = Vec::with_capacity(cols.len());
        for i in 0..frame.rows {
            key.clear();
            key.extend(codes.iter().map(|c| c[i]));
            let slot = match groups.get(&key) {
                Some(s) => *s,
                None => {
                    if members.len() == max {
                        return Ok(Err(TooManySlices));
                    }
                    groups.insert(key.clone(), members.len());
                    members.push((key.clone(), Vec::new()));
                    members.len() - 1
                }
            };
            members[slot].1.push(i as u32);
        }
    }
    let mut out: Vec<Slice> = members
        .into_iter()
        .map(|(codes_of_key, rows)| {
            let key = codes_of_key
                .iter()
                .zip(&cols)
                .zip(&firsts)
                .map(|((code, col), first)| col.value_at(first[*code as usize]))
                .collect();
            Slice {
                key,
                len: rows.len(),
                rows: Some(UInt32Array::from(rows)),
            }
        })
        .collect();
    out.sort_by(|a, b| compare_keys(&a.key, &b.key));
    Ok(Ok(out))
}

/// The string `bytes[from..to]` (shorter than 16 bytes) as `str_part` packs it: the bytes,
/// zero-padded, with the length in the last byte. Where 16 bytes can be read at once, one
/// load and a mask do it.
#[inline]
pub(crate) fn packed_short(bytes: &[u8], from: usize, to: usize) -> u128 {
    let len = to - from;
    let mut packed = [0u8; 16];
    if from + 16 <= bytes.len() {
        packed.copy_from_slice(&bytes[from..from + 16]);
        let mask = match len {
            0 => 0,
            _ => u128::MAX >> (128 - 8 * len),
        };
        (u128::from_le_bytes(packed) & mask) | ((len as u128) << 120)
    } else {
        packed[..len].copy_from_slice(&bytes[from..to]);
        packed[15] = len as u8;
        u128::from_le_bytes(packed)
    }
}

/// The codes of a string column, in order of first appearance, and the first row of each.
/// Strings of at most 15 bytes (most slice keys) are packed into an integer and found in a
/// small open-addressing table, read straight from the column's buffers; null and longer
/// strings go through a general map. Codes agree with [`part`]'s: one per distinct value.
/// `None` at the first value past `max` distinct ones.
fn code_utf8(a: &arrow_array::StringArray, max: usize) -> Option<(Vec<u32>, Vec<usize>)> {
    const EMPTY: u32 = u32::MAX;
    let n = a.len();
    let offsets = a.value_offsets();
    let bytes = a.value_data();
    let nulls = a.nulls();
    let mut codes = Vec::with_capacity(n);
    let mut firsts: Vec<usize> = Vec::new();
    let mut others: FastMap<Part<'_>, u32> = FastMap::default();
    let mut bits = 4u32;
    let mut table: Vec<(u128, u32)> = vec![(0, EMPTY); 1 << bits];
    let mut shorts = 0usize;
    let slot = |k: u128, bits: u32| -> usize {
        let h =
            ((k as u64) ^ ((k >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> (64 - bits)) as usize
    };
    for i in 0..n {
        if nulls.is_some_and(|b| b.is_null(i)) {
            let next = firsts.len() as u32;
            codes.push(*others.entry(Part::Null).or_insert_with(|| {
                firsts.push(i);
                next
            }));
            if firsts.len() > max {
                return None;
            }
            continue;
        }
        let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
        let len = to - from;
        if len >= 16 {
            let next = firsts.len() as u32;
            codes.push(*others.entry(Part::Str(a.value(i))).or_insert_with(|| {
                firsts.push(i);
                next
            }));
            if firsts.len() > max {
                return None;
            }
            continue;
        }
        let k = packed_short(bytes, from, to);
        let mask = (1usize << bits) - 1;
        let mut at = slot(k, bits);
        loop {
            let (key, code) = table[at];
            if code == EMPTY {
                let code = firsts.len() as u32;
                if firsts.len() == max {
                    return None;
                }
                firsts.push(i);
                table[at] = (k, code);
                codes.push(code);
                shorts += 1;
                if shorts * 2 > table.len() {
                    bits += 1;
                    let mut bigger = vec![(0, EMPTY); 1 << bits];
                    let mask = (1usize << bits) - 1;
                    for &(key, code) in table.iter().filter(|e| e.1 != EMPTY) {
                        let mut at = slot(key, bits);
                        while bigger[at].1 != EMPTY {
                            at = (at + 1) & mask;
                        }
                        bigger[at] = (key, code);
                    }
                    table = bigger;
                }
                break;
            }
            if key == k {
                codes.push(code);
                break;
            }
            at = (at + 1) & mask;
        }
    }
    Some((codes, firsts))
}

/// Orders slice keys value by value, nulls last.
pub(crate) fn compare_keys(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (x, y) in a.iter().zip(b) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => compare_values(x, y).unwrap_or(Ordering::Equal),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// A key usable in hash maps, to pair a current slice with the baseline slice of the same
/// values.
pub fn key_string(key: &[Value]) -> String {
    serde_json::to_string(key).unwrap_or_default()
}
