//! Column segments: a read accelerator beside each component's row table (SQLite file stores).
//!
//! Reading a row table decodes every value of every row (SQLite's record format): about 45 ns
//! a value, most of the time of a check over a large window. A segment holds the rows of one
//! fixed range of rowids (`k * S + 1 ..= (k + 1) * S`, `S` rows of rowid space, 65,536 by
//! default) column by column, one blob per column, so a read copies a column's values instead
//! of decoding rows.
//!
//! - A range of rowids up to the largest is complete: rowids are allocated upwards, so no
//!   later insert can land in it. Sealing builds segments for the ranges no segment covers,
//!   leaving a tail shorter than `S` for later. `mlc ingest` seals at the end of
//!   its input, `mlc serve` every minute. Unsealed rows (the tail, or a range whose segment
//!   was dropped) are read from the row table, so a read sees every row either way.
//! - Rows are only ever inserted (a re-sent record is skipped, never updated). Deleting rows
//!   (prune) drops the segments that may hold them and bumps the table's generation in the same
//!   transaction; adding a column does the same. A segment built from rows read before a bump
//!   is not stored (the generation is compared in the transaction that stores it), so a
//!   segment never holds a row the table does not.
//! - The row table stays the truth: a segment whose blob is missing or fails to decode is read
//!   from the rows instead.
//!
//! Layout 1 of a column blob: `[1, tag, n: u32 LE, has_nulls: u8]`, then when `has_nulls`
//! the validity bitmap (`(n + 7) / 8` bytes, least significant bit first, 1 = valid), then
//! the values: tag 1 (int, timestamp) and 2 (float) `n` 8-byte little-endian values; tag 3
//! (bool) a bitmap like the validity one; tag 4 (string) `n + 1` u32 LE offsets from 0, then
//! the UTF-8 bytes.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use mlc_engine::schema::DataType;

/// Rows of rowid space per segment, unless the URL's `segment_rows=N` says otherwise (0: none).
pub(crate) const DEFAULT_SEGMENT_ROWS: i64 = 65_536;

pub(crate) const LAYOUT: u8 = 1;

pub(crate) fn tag(ty: DataType) -> u8 {
    match ty {
        DataType::Int | DataType::Timestamp => 1,
        DataType::Float => 2,
        DataType::Bool => 3,
        DataType::String => 4,
    }
}

fn bitmap(buf: &BooleanBuffer) -> Buffer {
    buf.sliced()
}

/// Encodes one column read from the row table (an Int64, Float64, Boolean or Utf8 array of the
/// declared type `ty`). `None` when it does not fit the layout (over 4 GiB of text).
pub(crate) fn encode(array: &dyn Array, ty: DataType) -> Option<Vec<u8>> {
    let n = array.len();
    let n32 = u32::try_from(n).ok()?;
    let mut out = Vec::with_capacity(8 + n * 8 + n / 8 + 8);
    out.push(LAYOUT);
    out.push(tag(ty));
    out.extend_from_slice(&n32.to_le_bytes());
    match array.nulls().filter(|nb| nb.null_count() > 0) {
        Some(nb) => {
            out.push(1);
            out.extend_from_slice(bitmap(nb.inner()).as_slice());
        }
        None => out.push(0),
    }
    match ty {
        DataType::Int | DataType::Timestamp => {
            let a = array.as_any().downcast_ref::<Int64Array>()?;
            for v in a.values().iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        DataType::Float => {
            let a = array.as_any().downcast_ref::<Float64Array>()?;
            for v in a.values().iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        DataType::Bool => {
            let a = array.as_any().downcast_ref::<BooleanArray>()?;
            out.extend_from_slice(bitmap(a.values()).as_slice());
        }
        DataType::String => {
            let a = array.as_any().downcast_ref::<StringArray>()?;
            let offsets = a.value_offsets();
            let base = offsets[0];
            for &o in offsets {
                out.extend_from_slice(&u32::try_from(o - base).ok()?.to_le_bytes());
            }
            let end = usize::try_from(offsets[n]).ok()?;
            out.extend_from_slice(&a.values().as_slice()[usize::try_from(base).ok()?..end]);
        }
    }
    Some(out)
}

/// Splits `len` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if rest.len() < len {
        return None;
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Some(head)
}

/// Decodes a column blob of the declared type `ty`; `None` when it is not a well-formed blob
/// of that type (the caller reads the rows instead).
pub(crate) fn decode(bytes: &[u8], ty: DataType) -> Option<ArrayRef> {
    let mut rest = bytes;
    let head = take(&mut rest, 7)?;
    if head[0] != LAYOUT || head[1] != tag(ty) {
        return None;
    }
    let n = u32::from_le_bytes(head[2..6].try_into().ok()?) as usize;
    let bits = n.div_ceil(8);
    let nulls = match head[6] {
        0 => None,
        1 => Some(NullBuffer::new(BooleanBuffer::new(
            Buffer::from(take(&mut rest, bits)?),
            0,
            n,
        ))),
        _ => return None,
    };
    let array: ArrayRef = match ty {
        DataType::Int | DataType::Timestamp => {
            let raw = take(&mut rest, n.checked_mul(8)?)?;
            let values: Vec<i64> = raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            Arc::new(Int64Array::try_new(ScalarBuffer::from(values), nulls).ok()?)
        }
        DataType::Float => {
            let raw = take(&mut rest, n.checked_mul(8)?)?;
            let values: Vec<f64> = raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            Arc::new(Float64Array::try_new(ScalarBuffer::from(values), nulls).ok()?)
        }
        DataType::Bool => {
            let values = BooleanBuffer::new(Buffer::from(take(&mut rest, bits)?), 0, n);
            Arc::new(BooleanArray::new(values, nulls))
        }
        DataType::String => {
            let raw = take(&mut rest, n.checked_add(1)?.checked_mul(4)?)?;
            let mut offsets = Vec::with_capacity(n + 1);
            let mut last = 0i32;
            for c in raw.chunks_exact(4) {
                let o = i32::try_from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).ok()?;
                if o < last {
                    return None;
                }
                offsets.push(o);
                last = o;
            }
            if offsets.first() != Some(&0) {
                return None;
            }
            let data = take(&mut rest, usize::try_from(last).ok()?)?;
            // Offsets checked monotonic from 0; try_new checks them against the data and the
            // data as UTF-8.
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            Arc::new(StringArray::try_new(offsets, Buffer::from(data), nulls).ok()?)
        }
    };
    if !rest.is_empty() {
        return None;
    }
    Some(array)
}

/// A sealed segment as the read path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub first_rowid: i64,
    pub last_rowid: i64,
    pub row_count: i64,
    pub min_time: i64,
    pub max_time: i64,
}

/// One piece of a read, in rowid order: a segment, or a rowid range read from the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    Segment(SegmentInfo),
    /// Rows with `lo <= rowid < hi`.
    Rows {
        lo: i64,
        hi: i64,
    },
}

/// How to read `[start, end)` of a table whose rowids span `[lo_id, hi_id]`, given its sealed
/// `segments` (sorted by first rowid, disjoint): the segments whose times overlap the range,
/// and the rowid ranges no segment covers. `None` when segments would not help: the
/// uncovered ranges span more than half the table, or the overlapping segments hold over
/// four times the rows they are estimated to have in range (records ingested far out of
/// time order; the estimate takes a segment's times as spread evenly).
pub(crate) fn pieces(
    segments: &[SegmentInfo],
    lo_id: i64,
    hi_id: i64,
    start: i64,
    end: i64,
) -> Option<Vec<Piece>> {
    let mut in_range = 0f64;
    let mut out = Vec::new();
    let mut next = lo_id; // the first rowid not yet accounted for
    let mut uncovered = 0i64;
    let mut segment_rows = 0i64;
    for s in segments {
        if s.last_rowid < lo_id || s.first_rowid > hi_id {
            continue;
        }
        if s.first_rowid > next {
            out.push(Piece::Rows {
                lo: next,
                hi: s.first_rowid,
            });
            uncovered += s.first_rowid - next;
        }
        if s.max_time >= start && s.min_time < end {
            out.push(Piece::Segment(*s));
            segment_rows += s.row_count;
            let spread = (s.max_time as f64 - s.min_time as f64) + 1.0;
            let overlap = ((s.max_time as f64).min(end as f64 - 1.0)
                - (s.min_time as f64).max(start as f64))
                + 1.0;
            in_range += s.row_count as f64 * (overlap / spread).clamp(0.0, 1.0);
        }
        next = next.max(s.last_rowid.saturating_add(1));
    }
    if next <= hi_id {
        out.push(Piece::Rows {
            lo: next,
            hi: hi_id.saturating_add(1),
        });
        uncovered += hi_id - next + 1;
    }
    let span = hi_id.saturating_sub(lo_id).saturating_add(1);
    if uncovered.saturating_mul(2) > span || segment_rows as f64 > in_range * 4.0 + 65_536.0 {
        return None;
    }
    Some(out)
}

/// Times that cut `[start, end)` into slices of about `rows_per_slice` rows each, estimated
/// from the sealed `segments` (a segment's rows taken as spread evenly over its times, as
/// [`pieces`] does): the interior cut points, ascending, none when the range fits one slice.
/// Rows no segment covers yet (the unsealed tail, less than a segment) are not counted; an
/// estimate off by those only makes a slice that much larger.
/// Also gives the estimated rows of the range.
pub(crate) fn time_cuts_of(
    segments: &[SegmentInfo],
    start: i64,
    end: i64,
    rows_per_slice: u64,
) -> (f64, Vec<i64>) {
    let overlapping: Vec<&SegmentInfo> = segments
        .iter()
        .filter(|s| s.max_time >= start && s.min_time < end && s.row_count > 0)
        .collect();
    // Estimated rows with `start <= time < t`.
    let below = |t: i64| -> f64 {
        overlapping
            .iter()
            .map(|s| {
                let lo = s.min_time.max(start) as f64;
                let hi = (s.max_time as f64).min(t as f64 - 1.0);
                let spread = (s.max_time as f64 - s.min_time as f64) + 1.0;
                s.row_count as f64 * ((hi - lo + 1.0) / spread).clamp(0.0, 1.0)
            })
            .sum()
    };
    let total = below(end);
    let slices = (total / rows_per_slice.max(1) as f64).ceil();
    if slices.is_nan() || slices <= 1.0 {
        return (total, Vec::new());
    }
    let lowest = overlapping
        .iter()
        .map(|s| s.min_time)
        .min()
        .unwrap_or(start)
        .max(start);
    let mut cuts: Vec<i64> = Vec::new();
    for j in 1..slices as u64 {
        let target = total * j as f64 / slices;
        // The smallest t with `below(t) >= target`, by bisection over the times.
        let (mut lo, mut hi) = (cuts.last().copied().unwrap_or(lowest), end);
        while i128::from(hi) - i128::from(lo) > 1 {
            let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
            if below(mid) >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        if hi < end && cuts.last().is_none_or(|&c| hi > c) && hi > start {
            cuts.push(hi);
        }
    }
    let slice_rows = total / slices;
    (
        total,
        on_boundaries(&overlapping, cuts, (start, end), &below, slice_rows),
    )
}

/// `cuts` moved each to the nearest time no segment straddles (a segment's first time, where
/// every segment starting earlier has ended), if one lies within half a slice (`slice_rows`
/// estimated rows) of it. A cut inside a segment makes both slices read that segment, with
/// all its columns, and filter it by time; at such a boundary each slice reads whole
/// segments. Rows ingested in time order give segments that meet there; others keep their cuts.
fn on_boundaries(
    segments: &[&SegmentInfo],
    cuts: Vec<i64>,
    (start, end): (i64, i64),
    below: &dyn Fn(i64) -> f64,
    slice_rows: f64,
) -> Vec<i64> {
    let mut starts: Vec<(i64, i64)> = segments.iter().map(|s| (s.min_time, s.max_time)).collect();
    starts.sort_unstable();
    let mut clean: Vec<i64> = Vec::new();
    let mut ended = i64::MIN;
    for (i, &(min, max)) in starts.iter().enumerate() {
        if i > 0 && ended < min && min > start && min < end {
            clean.push(min);
        }
        ended = ended.max(max);
    }
    let mut out: Vec<i64> = Vec::with_capacity(cuts.len());
    for c in cuts {
        let i = clean.partition_point(|&t| t < c);
        let nearest = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| clean.get(j).copied())
            .min_by_key(|&t| t.abs_diff(c));
        let moved = nearest
            .filter(|&t| (below(t) - below(c)).abs() <= slice_rows / 2.0)
            .unwrap_or(c);
        // Cuts stay ascending and inside the range, as they came.
        if out.last().is_none_or(|&l| moved > l) {
            out.push(moved);
        }
    }
    out
}

/// The rows of `batch` whose time (column `time_col`, or the separately decoded `times`) is in
/// `[start, end)`; the batch itself when all are.
pub(crate) fn filter_time(
    batch: RecordBatch,
    times: &Int64Array,
    start: i64,
    end: i64,
) -> Option<RecordBatch> {
    let keep: BooleanArray = times
        .values()
        .iter()
        .map(|&t| Some(t >= start && t < end))
        .collect();
    if keep.true_count() == batch.num_rows() {
        return Some(batch);
    }
    arrow_select::filter::filter_record_batch(&batch, &keep).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(array: ArrayRef, ty: DataType) {
        let bytes = encode(array.as_ref(), ty).unwrap();
        let back = decode(&bytes, ty).unwrap();
        assert_eq!(back.as_ref(), array.as_ref());
        // Any truncation or a wrong type is refused, never misread.
        for cut in [0, 1, 6, bytes.len() / 2, bytes.len() - 1] {
            if cut < bytes.len() {
                assert!(decode(&bytes[..cut], ty).is_none(), "cut at {cut} decoded");
            }
        }
        let other = if ty == DataType::Float {
            DataType::Int
        } else {
            DataType::Float
        };
        assert!(decode(&bytes, other).is_none());
    }

    #[test]
    fn every_type_round_trips_with_and_without_nulls() {
        round_trip(
            Arc::new(Int64Array::from(vec![
                Some(1),
                None,
                Some(i64::MIN),
                Some(i64::MAX),
            ])),
            DataType::Int,
        );
        round_trip(
            Arc::new(Int64Array::from(vec![5, 6, 7])),
            DataType::Timestamp,
        );
        round_trip(
            Arc::new(Float64Array::from(vec![
                Some(f64::INFINITY),
                None,
                Some(-0.0),
                Some(1e-300),
            ])),
            DataType::Float,
        );
        let nan = encode(&Float64Array::from(vec![f64::NAN]), DataType::Float).unwrap();
        let back = decode(&nan, DataType::Float).unwrap();
        let back = back.as_any().downcast_ref::<Float64Array>().unwrap();
        assert!(back.value(0).is_nan());
        round_trip(
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
                Some(true),
                Some(false),
                Some(true),
                Some(true),
                Some(false),
            ])),
            DataType::Bool,
        );
        round_trip(
            Arc::new(StringArray::from(vec![
                Some("a\tb\n"),
                None,
                Some(""),
                Some("Zürich ✓"),
            ])),
            DataType::String,
        );
        round_trip(
            Arc::new(StringArray::from(Vec::<Option<&str>>::new())),
            DataType::String,
        );
        // A slice (offset into its buffers) encodes as the values it shows.
        let sliced = StringArray::from(vec!["x", "yy", "zzz"]).slice(1, 2);
        round_trip(Arc::new(sliced), DataType::String);
        let sliced = BooleanArray::from(vec![Some(true), None, Some(false)]).slice(1, 2);
        round_trip(Arc::new(sliced), DataType::Bool);
    }

    #[test]
    fn bad_string_offsets_and_utf8_are_refused() {
        let mut bytes = encode(&StringArray::from(vec!["ab", "c"]), DataType::String).unwrap();
        let good = decode(&bytes, DataType::String);
        assert!(good.is_some());
        // The data is the last 3 bytes: make it invalid UTF-8.
        let len = bytes.len();
        bytes[len - 1] = 0xff;
        assert!(decode(&bytes, DataType::String).is_none());
        // Offsets going backwards.
        let mut bytes = encode(&StringArray::from(vec!["ab", "c"]), DataType::String).unwrap();
        bytes[7 + 4] = 3; // offsets [0, 2, 3] become [0, 3, 1]
        bytes[7 + 8] = 1;
        assert!(decode(&bytes, DataType::String).is_none());
    }

    fn seg(first: i64, last: i64, min_time: i64, max_time: i64) -> SegmentInfo {
        SegmentInfo {
            first_rowid: first,
            last_rowid: last,
            row_count: last - first + 1,
            min_time,
            max_time,
        }
    }

    #[test]
    fn pieces_cover_every_rowid_once() {
        let segs = [seg(1, 10, 0, 9), seg(11, 20, 10, 19), seg(31, 40, 30, 39)];
        // The whole range: all segments, the gap 21..31 and the tail 41..=45.
        assert_eq!(
            pieces(&segs, 1, 45, 0, 100).unwrap(),
            vec![
                Piece::Segment(segs[0]),
                Piece::Segment(segs[1]),
                Piece::Rows { lo: 21, hi: 31 },
                Piece::Segment(segs[2]),
                Piece::Rows { lo: 41, hi: 46 },
            ]
        );
        // A narrow time range skips segments outside it, never the uncovered ranges.
        assert_eq!(
            pieces(&segs, 1, 45, 12, 14).unwrap(),
            vec![
                Piece::Segment(segs[1]),
                Piece::Rows { lo: 21, hi: 31 },
                Piece::Rows { lo: 41, hi: 46 },
            ]
        );
        // Rows before the first segment (a pruned table starts later) are not invented.
        assert_eq!(
            pieces(&segs[1..], 15, 40, 0, 100).unwrap(),
            vec![
                Piece::Segment(segs[1]),
                Piece::Rows { lo: 21, hi: 31 },
                Piece::Segment(segs[2]),
            ]
        );
        // Mostly uncovered: not worth it.
        assert!(pieces(&segs[..1], 1, 100, 0, 100).is_none());
        // Segments whose times span far more than the range (out-of-order ingest): no.
        let wide: Vec<SegmentInfo> = (0..20)
            .map(|k| SegmentInfo {
                row_count: 100_000,
                ..seg(k * 100_000 + 1, (k + 1) * 100_000, 0, 1_000_000)
            })
            .collect();
        assert!(pieces(&wide, 1, 2_000_000, 0, 1_000).is_none());
        assert!(pieces(&wide, 1, 2_000_000, 0, 1_000_000).is_some());
        // No segments at all.
        assert!(pieces(&[], 1, 100, 0, 100).is_none());
    }

    #[test]
    fn time_cuts_split_the_estimated_rows_evenly() {
        let cuts_of = |s: &[SegmentInfo], a, b, n| time_cuts_of(s, a, b, n).1;
        assert_eq!(time_cuts_of(&[seg(1, 1000, 0, 999)], 0, 500, 10).0, 500.0);
        // 100 segments of 1,000 rows, one row per time unit: times 0..100_000.
        let segs: Vec<SegmentInfo> = (0..100)
            .map(|i| seg(i * 1000 + 1, i * 1000 + 1000, i * 1000, i * 1000 + 999))
            .collect();
        assert!(cuts_of(&segs, 0, 100_000, 100_000).is_empty());
        assert!(cuts_of(&segs, i64::MIN, 100_000, 200_000).is_empty());
        assert_eq!(
            cuts_of(&segs, 0, 100_000, 25_000),
            vec![25_000, 50_000, 75_000]
        );
        // An open start counts from the first segment; a range inside the rows.
        assert_eq!(
            cuts_of(&segs, i64::MIN, 40_000, 10_000),
            vec![10_000, 20_000, 30_000]
        );
        // Cut at the segment boundary nearest 20_500: both slices read whole segments.
        assert_eq!(cuts_of(&segs, 10_500, 30_500, 10_000), vec![20_000]);
        // A slice larger than the rows, past the rows, no segments: one slice.
        assert!(cuts_of(&segs, 200_000, 300_000, 10).is_empty());
        assert!(cuts_of(&[], 0, 100, 1).is_empty());
        // A segment whose times straddle the boundaries near the cut (rows out of order):
        // the cut moves to the nearest boundary no segment straddles, or stays where none is
        // within half a slice.
        let mut mixed = segs.clone();
        mixed[24].max_time = 25_500;
        assert_eq!(
            cuts_of(&mixed, 0, 100_000, 25_000),
            vec![26_000, 50_000, 75_000]
        );
        let wide: Vec<SegmentInfo> = (0..100)
            .map(|i| seg(i * 1000 + 1, i * 1000 + 1000, i * 1000, i * 1000 + 1999))
            .collect();
        // Every segment overlaps the next: no boundary is clean, the cuts stay as estimated.
        assert_eq!(
            cuts_of(&wide, 0, 100_000, 25_000),
            vec![25_375, 50_250, 75_125]
        );
        // Rows crowded at one time: cuts never repeat and stay inside the range.
        let crowded = [seg(1, 100_000, 5, 5), seg(100_001, 100_010, 6, 16)];
        let cuts = cuts_of(&crowded, 0, 20, 1_000);
        assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
        assert!(cuts.iter().all(|&c| c > 0 && c < 20), "{cuts:?}");
    }
}
