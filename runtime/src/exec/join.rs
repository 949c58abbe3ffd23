//! Joins of a source (`A join B using k`): each row of the left side is paired with the
//! latest row of the right component of the same key, read before `T` at any time (labels
//! arrive late). Null keys never match; `left join` keeps the unmatched rows with nulls.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_buffer::BooleanBuffer;
use mlc_engine::eval::{Frame, SourceRows};
use mlc_engine::functions::EvalError;
use mlc_engine::plan::SourcePlan;

/// The right side of one join at one evaluation time: rows of the component indexed by key
/// (the latest row of each key the window needs, as the store returns them, or a backfill's
/// history read once for many times), each key matching its latest row with `time < before`.
#[derive(Debug, Clone)]
pub(crate) struct Right {
    pub(crate) history: Arc<KeyedHistory>,
    pub(crate) before: i64,
}

/// A component's rows in time order with, per key, a chain from its latest row back to its
/// earliest: "the latest row of key k before T" is a walk from the head, usually of one step.
/// The heads live in open-addressing tables of `(hash tag, row)` pairs hashed by the key's
/// text in the batch: no key is copied. There is one table per core, a key's table chosen by
/// the top bits of its hash, so that the tables are built side by side, each by one thread
/// walking the rows in time order and inserting those of its own keys.
///
/// A backfill looks up millions of keys in a table bigger than the CPU's caches, so each
/// lookup is a few cache misses: its slot, then its candidate row's key. A lookup reads no
/// time: the rows are in time order, so "before `T`" is "below the row where `T` starts".
/// [`KeyedHistory::lookup_all`] is a pipeline of prefetches (slots 32 keys ahead, keys 16
/// ahead), so that the misses of many keys overlap instead of following each other.
pub(crate) struct KeyedHistory {
    /// Unique in the process: names the column of rows' heads found in this history
    /// ([`KeyedHistory::heads_column`]).
    id: u64,
    batch: RecordBatch,
    keys: Keys,
    /// The rows' times, in order: the rows before `T` are the first
    /// [`KeyedHistory::cutoff`] rows.
    times: arrow_buffer::ScalarBuffer<i64>,
    hasher: foldhash::fast::FixedState,
    /// The tables, by the top `bits` bits of a key's hash.
    tables: Vec<Table>,
    bits: u32,
    /// Per row, the previous row of its key, or [`NONE`]. Atomic only so that the tables'
    /// threads can each write the rows of their own keys (relaxed: plain stores on x86).
    prev: Vec<AtomicU32>,
}

/// The keys of a [`KeyedHistory`]'s rows, where a lookup compares them.
///
/// A lookup in a table bigger than the caches is bound by its cache misses (and, on the
/// small pages of a VM, by the page walks of its TLB misses): its table slot, then its
/// candidate row's key. Keys of one width (request ids, UUIDs) are found from the row
/// number alone; others need their offset first, one more miss in the chain.
struct Keys {
    keys: arrow_array::StringArray,
    /// `(first, width)` when every row's key is `width` bytes long (no null key): row `r`'s
    /// key is `width` bytes from `first + r * width` of the keys' bytes.
    fixed: Option<(usize, usize)>,
}

impl Keys {
    fn new(keys: arrow_array::StringArray) -> Keys {
        let offsets = keys.value_offsets();
        let width = offsets.get(1).map_or(0, |&b| b - offsets[0]);
        let fixed = (keys.null_count() == 0
            && width > 0
            && offsets.windows(2).all(|o| o[1] - o[0] == width))
        .then(|| (offsets[0] as usize, width as usize));
        Keys { keys, fixed }
    }

    /// The key of row `r`.
    fn key(&self, r: usize) -> &[u8] {
        match self.fixed {
            Some((first, width)) => &self.keys.value_data()[first + r * width..][..width],
            None => self.keys.value(r).as_bytes(),
        }
    }

    /// Prefetches row `r`'s key: of a fixed width, both ends (a key may straddle two cache
    /// lines); else its offset is read (it may miss) and the key's first line prefetched.
    fn prefetch(&self, r: usize) {
        let data = self.keys.value_data();
        let at = match self.fixed {
            Some((first, width)) => {
                let at = first + r * width;
                prefetch(&data[at + width - 1]);
                at
            }
            None => self.keys.value_offsets()[r] as usize,
        };
        if let Some(b) = data.get(at) {
            prefetch(b);
        }
    }
}

/// One table of chain heads of a [`KeyedHistory`].
struct Table {
    /// `tag << 32 | row`, the tag being the hash's upper half; [`EMPTY`] is an empty slot
    /// (no row is `u32::MAX`: there are fewer rows). Not zero: a zeroed table of fresh pages
    /// would be read before it is written, mapping the kernel's shared zero page first and
    /// taking a second fault, with a TLB flush on every core, at the first write of each page.
    slots: Vec<u64>,
    mask: usize,
}

impl std::fmt::Debug for KeyedHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedHistory")
            .field("rows", &self.times.len())
            .field("tables", &self.tables.len())
            .finish()
    }
}

const NONE: u32 = u32::MAX;

/// An empty slot of [`KeyedHistory::slots`].
const EMPTY: u64 = u64::MAX;

/// Slots whose cache misses [`build_table`] overlaps.
const GROUP: usize = 32;

fn slot_row(slot: u64) -> u32 {
    slot as u32
}

fn slot_tag(slot: u64) -> u32 {
    (slot >> 32) as u32
}

/// The table of hash `h` among `1 << bits`.
fn table_of(h: u64, bits: u32) -> usize {
    match bits {
        0 => 0,
        b => (h >> (64 - b)) as usize,
    }
}

impl KeyedHistory {
    /// Indexes `batch` (rows in time order, as the store's scans return them) by its `key`
    /// column; rows with a null key are never matched.
    pub fn new(batch: RecordBatch, key: &str, time: &str) -> Result<KeyedHistory, EvalError> {
        // One table per core (rounded up to a power of two), one only below 65,536 rows.
        let cores = mlc_engine::eval::cores();
        let bits = match batch.num_rows() < 1 << 16 {
            true => 0,
            false => cores.clamp(1, 16).next_power_of_two().trailing_zeros(),
        };
        KeyedHistory::with_tables(batch, key, time, bits)
    }

    /// [`KeyedHistory::new`] with `1 << bits` tables.
    fn with_tables(
        batch: RecordBatch,
        key: &str,
        time: &str,
        bits: u32,
    ) -> Result<KeyedHistory, EvalError> {
        let n = batch.num_rows();
        if u32::try_from(n).map_or(true, |n| n == u32::MAX) {
            return Err(EvalError::Invalid(format!(
                "{n} rows are too many to join in one read"
            )));
        }
        let keys = batch
            .column_by_name(key)
            .and_then(|a| a.as_string_opt::<i32>())
            .ok_or_else(|| {
                EvalError::Invalid(format!("join key `{key}` was not fetched as strings"))
            })?
            .clone();
        let times = batch
            .column_by_name(time)
            .and_then(|a| a.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| EvalError::Invalid(format!("event time `{time}` was not fetched")))?
            .values()
            .clone();
        if times.windows(2).any(|w| w[1] < w[0]) {
            return Err(EvalError::Invalid(format!(
                "the rows of `{key}` were not read in time order"
            )));
        }
        let hasher = foldhash::fast::FixedState::with_seed(0x6d6c_6321);
        let pieces: Vec<std::ops::Range<usize>> = (0..n)
            .step_by(1 << 16)
            .map(|a| a..(a + (1 << 16)).min(n))
            .collect();
        let hashes: Vec<Vec<u64>> = mlc_engine::eval::par_map(&pieces, bits > 0, |r| {
            r.clone().map(|i| hasher.hash_one(keys.value(i))).collect()
        });
        // Rows with a null key go in no table (their hash, of "", would size one table for
        // all of them).
        let mut counts = vec![0usize; 1 << bits];
        for (i, h) in hashes.iter().flatten().enumerate() {
            if keys.is_valid(i) {
                counts[table_of(*h, bits)] += 1;
            }
        }
        let prev: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(NONE)).collect();
        let tables: Vec<usize> = (0..1usize << bits).collect();
        let tables = mlc_engine::eval::par_map(&tables, bits > 0, |&t| {
            build_table(t, bits, counts[t], &hashes, &keys, &prev)
        });
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(KeyedHistory {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            batch,
            keys: Keys::new(keys),
            times,
            hasher,
            tables,
            bits,
            prev,
        })
    }

    /// Indexes rows in any order (the latest row per key, as the store returns them): sorted
    /// by time first, then as [`KeyedHistory::new`].
    pub fn unordered(batch: RecordBatch, key: &str, time: &str) -> Result<KeyedHistory, EvalError> {
        let times = batch
            .column_by_name(time)
            .and_then(|a| a.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| EvalError::Invalid(format!("event time `{time}` was not fetched")))?;
        if times.values().windows(2).all(|w| w[0] <= w[1]) {
            return KeyedHistory::new(batch, key, time);
        }
        let t = times.values();
        let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
        order.sort_by_key(|&i| t[i as usize]);
        let sorted = arrow_select::take::take_record_batch(&batch, &UInt32Array::from(order))
            .map_err(|e| EvalError::Invalid(format!("join: {e}")))?;
        KeyedHistory::new(sorted, key, time)
    }

    /// The indexed rows.
    pub(crate) fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The name of a left side's column of [`KeyedHistory::heads`] in this history: a
    /// backfill looks its rows' keys up once, before its steps, each step then only walks
    /// back from the heads to its own time ([`join_source`]). Not an identifier, so no
    /// check can name it.
    pub(crate) fn heads_column(&self) -> String {
        format!("\u{1}heads of history {}", self.id)
    }

    /// For each of `keys`, the row of its latest time at all (null when none, or when the
    /// key is null): where [`KeyedHistory::walk`] starts for any time.
    pub(crate) fn heads(&self, keys: &arrow_array::StringArray) -> UInt32Array {
        self.lookup_all(keys, None)
    }

    /// For each of `heads` (of [`KeyedHistory::heads`]), its key's row with the latest time
    /// before `before`: what [`KeyedHistory::lookup_all`] gives for the keys.
    fn walk_heads(&self, heads: &UInt32Array, before: i64) -> UInt32Array {
        let cutoff = self.cutoff(before);
        // Most heads are before `T` already: kept as they are, with their validity; only
        // the others walk, and those that find no row become null.
        let mut lost: Vec<usize> = Vec::new();
        let out: Vec<u32> = heads
            .values()
            .iter()
            .enumerate()
            .map(|(i, &h)| match h < cutoff || heads.is_null(i) {
                true => h,
                false => self.walk(h, cutoff).unwrap_or_else(|| {
                    lost.push(i);
                    0
                }),
            })
            .collect();
        let nulls = match lost.is_empty() {
            true => heads.nulls().cloned(),
            false => {
                let mut found = arrow_buffer::BooleanBufferBuilder::new(heads.len());
                match heads.nulls() {
                    Some(n) => found.append_buffer(n.inner()),
                    None => found.append_n(heads.len(), true),
                }
                for i in lost {
                    found.set_bit(i, false);
                }
                Some(found.finish().into())
            }
        };
        UInt32Array::new(out.into(), nulls)
    }

    /// The head row of `key` (its latest row at all), probing `table` from `pos` whose slot
    /// is `s`.
    fn head(&self, table: &Table, key: &str, h: u64, mut pos: usize, mut s: u64) -> Option<u32> {
        let tag = (h >> 32) as u32;
        loop {
            if s == EMPTY {
                return None;
            }
            if slot_tag(s) == tag && self.keys.key(slot_row(s) as usize) == key.as_bytes() {
                return Some(slot_row(s));
            }
            pos = (pos + 1) & table.mask;
            s = table.slots[pos];
        }
    }

    /// How many rows have a time before `before`: the rows are in time order, so a row's
    /// time is before `before` exactly when its number is below this (a lookup then reads
    /// no time).
    fn cutoff(&self, before: i64) -> u32 {
        self.times.partition_point(|&t| t < before) as u32
    }

    /// From `head`, the row of the chain with the latest time before that of `cutoff`
    /// ([`KeyedHistory::cutoff`]): a key's earlier rows have lower numbers.
    fn walk(&self, mut i: u32, cutoff: u32) -> Option<u32> {
        while i >= cutoff {
            i = self.prev[i as usize].load(Ordering::Relaxed);
            if i == NONE {
                return None;
            }
        }
        Some(i)
    }

    /// The row of `key` with the latest time before `before`.
    #[cfg(test)]
    fn lookup(&self, key: &str, before: i64) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        let table = &self.tables[table_of(h, self.bits)];
        let pos = h as usize & table.mask;
        self.head(table, key, h, pos, table.slots[pos])
            .and_then(|i| self.walk(i, self.cutoff(before)))
    }

    /// For each of `keys`, its row with the latest time before `before`, or at all when
    /// `None` (null when none, or when the key is null).
    fn lookup_all(&self, keys: &arrow_array::StringArray, before: Option<i64>) -> UInt32Array {
        let n = keys.len();
        let cutoff = before.map(|b| self.cutoff(b));
        let mut out: Vec<u32> = Vec::with_capacity(n);
        let mut found = arrow_buffer::BooleanBufferBuilder::new(n);
        let place = |h: u64| {
            let table = &self.tables[table_of(h, self.bits)];
            (table, h as usize & table.mask)
        };
        // A pipeline: key `i + 2 * AHEAD`'s slot is prefetched, key `i + AHEAD`'s slot read
        // (in cache by then) and its candidate's key prefetched, and key `i` resolved from
        // what is now in cache. Prefetches do not wait for their lines, so many misses are
        // in flight at once.
        // The hashes and slots of the keys in flight, by key number modulo `RING`.
        let (mut hashes, mut slots) = ([0u64; RING], [EMPTY; RING]);
        for i in 0..n + 2 * AHEAD {
            if i < n {
                let h = self.hasher.hash_one(keys.value(i));
                hashes[i % RING] = h;
                let (table, pos) = place(h);
                prefetch(&table.slots[pos]);
            }
            if let Some(j) = i.checked_sub(AHEAD).filter(|&j| j < n) {
                let (table, pos) = place(hashes[j % RING]);
                let s = table.slots[pos];
                slots[j % RING] = s;
                if s != EMPTY {
                    self.keys.prefetch(slot_row(s) as usize);
                }
            }
            let Some(k) = i.checked_sub(2 * AHEAD) else {
                continue;
            };
            let row = match keys.is_null(k) {
                true => None,
                false => {
                    let h = hashes[k % RING];
                    let (table, pos) = place(h);
                    self.head(table, keys.value(k), h, pos, slots[k % RING])
                        .and_then(|r| cutoff.map_or(Some(r), |c| self.walk(r, c)))
                }
            };
            out.push(row.unwrap_or(0));
            found.append(row.is_some());
        }
        UInt32Array::new(out.into(), Some(found.finish().into()))
    }
}

/// How far ahead [`KeyedHistory::lookup_all`] prefetches (twice: slots, then keys).
const AHEAD: usize = 16;

/// The keys in flight in [`KeyedHistory::lookup_all`], by key number modulo this (more
/// than `2 * AHEAD`).
const RING: usize = 64;

/// Asks the CPU to start loading `x`'s cache line, without waiting for it.
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(x);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = x;
}

/// Table `t` of `1 << bits` (sized for its `count` rows, at most half full): the rows whose
/// hash (`hashes`, in pieces of consecutive rows) falls in it, inserted in row order, so that
/// each row's chain link (`prev`) points at the previous row of its key.
fn build_table(
    t: usize,
    bits: u32,
    count: usize,
    hashes: &[Vec<u64>],
    keys: &arrow_array::StringArray,
    prev: &[AtomicU32],
) -> Table {
    let size = (count * 2).next_power_of_two().max(16);
    let mut table = Table {
        slots: vec![EMPTY; size],
        mask: size - 1,
    };
    let mut i = 0usize;
    for piece in hashes {
        // In groups: a group's first slots are loaded before any insert, so that their
        // cache misses overlap. Rows go in in order: the chains stay right.
        for group in piece.chunks(GROUP) {
            let mut touch = 0u64;
            for &h in group {
                if table_of(h, bits) == t {
                    touch = touch.wrapping_add(table.slots[h as usize & table.mask]);
                }
            }
            std::hint::black_box(touch);
            for &h in group {
                if table_of(h, bits) == t && keys.is_valid(i) {
                    insert(&mut table, keys, prev, i as u32, h);
                }
                i += 1;
            }
        }
    }
    table
}

/// Makes row `i`, whose key hashes to `h`, the head of its key's chain in `table`.
fn insert(table: &mut Table, keys: &arrow_array::StringArray, prev: &[AtomicU32], i: u32, h: u64) {
    let k = keys.value(i as usize);
    let tag = (h >> 32) << 32;
    let mut pos = h as usize & table.mask;
    loop {
        let s = table.slots[pos];
        if s == EMPTY {
            table.slots[pos] = tag | u64::from(i);
            return;
        }
        if s & !0xffff_ffff == tag && keys.value(slot_row(s) as usize) == k {
            prev[i as usize].store(slot_row(s), Ordering::Relaxed);
            table.slots[pos] = tag | u64::from(i);
            return;
        }
        pos = (pos + 1) & table.mask;
    }
}

/// Builds the rows of a source from the first component's rows and, per join, the latest
/// row per key of the right component.
///
/// `right_columns`, by component name, restricts the columns taken from a right side to
/// those the checks use (its key and time need not be copied); a component it does not name
/// gives all its columns.
pub(crate) fn join_source(
    plan: &SourcePlan,
    first: RecordBatch,
    rights: &[Right],
    right_columns: Option<&HashMap<String, Vec<String>>>,
) -> Result<SourceRows, EvalError> {
    if plan.joins.is_empty() {
        return Ok(SourceRows::plain(Frame::new(vec![first])?));
    }
    let n = first.num_rows();
    let mut sources = vec![first];
    // Bitmaps, all rows set until a join clears them; `None` = every row.
    let mut kept: Option<BooleanBuffer> = None;
    let mut matched: Option<BooleanBuffer> = None;
    for (j, join) in plan.joins.iter().enumerate() {
        let right = rights.get(j).ok_or_else(|| {
            EvalError::Invalid(format!("the rows of join #{} were not fetched", j + 1))
        })?;
        let frame = Frame {
            sources: sources.clone(),
            rows: n,
        };
        let right_batch = &right.history.batch;
        // The heads a backfill found for these rows before its steps (their key then need
        // not be read), or a lookup now.
        let heads = (join.left_key.source == 0)
            .then(|| sources[0].column_by_name(&right.history.heads_column()))
            .flatten()
            .and_then(|c| c.as_any().downcast_ref::<UInt32Array>());
        let indices = match heads {
            Some(heads) => right.history.walk_heads(heads, right.before),
            None => {
                let left_key = frame.column(&join.left_key).ok_or_else(|| {
                    EvalError::Invalid(format!("join key `{}` was not fetched", join.left_key.name))
                })?;
                match_history(left_key, &right.history, right.before)?
            }
        };
        if let Some(hits) = indices.nulls().map(|v| v.inner()) {
            let and =
                |a: Option<BooleanBuffer>| Some(a.map_or_else(|| hits.clone(), |a| &a & hits));
            matched = and(matched);
            if !join.left {
                kept = and(kept);
            }
        }
        let wanted = plan
            .components
            .get(join.right)
            .and_then(|c| right_columns?.get(&c.name));
        let taken = take_nullable(right_batch, &indices, wanted.map(Vec::as_slice))?;
        // `components[right]` must land at its index: joins are listed in order.
        if sources.len() != join.right {
            return Err(EvalError::Invalid(format!(
                "join #{} reads component #{}, expected #{}",
                j + 1,
                join.right,
                sources.len()
            )));
        }
        sources.push(taken);
    }
    let kept = kept.filter(|k| k.count_set_bits() < n);
    Ok(SourceRows {
        frame: Frame::new(sources)?,
        kept: kept.map(BooleanArray::from),
        matched: Some(BooleanArray::from(
            matched.unwrap_or_else(|| BooleanBuffer::new_set(n)),
        )),
    })
}

/// The rows of `batch` at `indices` (of its columns in `only`, when given), a null index
/// giving a row of nulls. Every field becomes nullable: the store declares the time column
/// non-null, but an unmatched row has none.
fn take_nullable(
    batch: &RecordBatch,
    indices: &UInt32Array,
    only: Option<&[String]>,
) -> Result<RecordBatch, EvalError> {
    let schema = batch.schema();
    let picked: Vec<usize> = (0..batch.num_columns())
        .filter(|&i| only.is_none_or(|o| o.iter().any(|n| n == schema.field(i).name())))
        .collect();
    let columns = picked
        .iter()
        .map(|&i| arrow_select::take::take(batch.column(i).as_ref(), indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EvalError::Invalid(format!("join: {e}")))?;
    let fields: Vec<arrow_schema::Field> = picked
        .iter()
        .map(|&i| schema.field(i).clone().with_nullable(true))
        .collect();
    RecordBatch::try_new_with_options(
        std::sync::Arc::new(arrow_schema::Schema::new(fields)),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(indices.len())),
    )
    .map_err(|e| EvalError::Invalid(format!("join: {e}")))
}

/// For each left key, the index of its latest history row before `before`.
fn match_history(
    left: &ArrayRef,
    history: &KeyedHistory,
    before: i64,
) -> Result<UInt32Array, EvalError> {
    let l = left.as_string_opt::<i32>().ok_or_else(|| {
        EvalError::Invalid(format!(
            "join keys must be strings, found a {} column",
            left.data_type()
        ))
    })?;
    Ok(history.lookup_all(l, Some(before)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use mlc_engine::plan::{ColumnId, JoinPlan, SourceComponent};
    use mlc_engine::schema::DataType;

    use super::*;

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = cols
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            cols.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    fn plan(left: bool) -> SourcePlan {
        SourcePlan {
            components: vec![
                SourceComponent {
                    name: "inference".into(),
                    columns: vec!["id".into()],
                },
                SourceComponent {
                    name: "feedback".into(),
                    columns: vec!["id".into()],
                },
            ],
            joins: vec![JoinPlan {
                left,
                right: 1,
                left_key: ColumnId {
                    source: 0,
                    name: "id".into(),
                    ty: DataType::String,
                },
                right_key: "id".into(),
            }],
        }
    }

    fn inputs() -> (RecordBatch, RecordBatch) {
        let first = batch(vec![(
            "id",
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("b"),
                Some("c"),
            ])) as ArrayRef,
        )]);
        // The latest row per key, in no particular time order, as the store returns them.
        let right = batch(vec![
            (
                "id",
                Arc::new(StringArray::from(vec![Some("c"), Some("a"), None])) as ArrayRef,
            ),
            ("ts", Arc::new(Int64Array::from(vec![5, 2, 3]))),
            ("label", Arc::new(Int64Array::from(vec![1, 0, 1]))),
        ]);
        (first, right)
    }

    fn latest(right: RecordBatch) -> Right {
        Right {
            history: Arc::new(KeyedHistory::unordered(right, "id", "ts").unwrap()),
            before: 10,
        }
    }

    #[test]
    fn inner_join_drops_unmatched_and_null_keys() {
        let (first, right) = inputs();
        let rows = join_source(&plan(false), first, &[latest(right)], None).unwrap();
        let kept: Vec<_> = rows.kept.unwrap().iter().collect();
        assert_eq!(kept, vec![Some(true), Some(false), Some(false), Some(true)]);
        let labels = rows.frame.sources[1].column_by_name("label").unwrap();
        let labels = labels.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            vec![Some(0), None, None, Some(1)]
        );
    }

    #[test]
    fn unmatched_rows_get_nulls_even_in_columns_the_store_declares_non_null() {
        let (first, _) = inputs();
        let schema = Schema::new(vec![
            Field::new("id", arrow_schema::DataType::Utf8, true),
            Field::new("ts", arrow_schema::DataType::Int64, false),
        ]);
        let right = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("a")])) as ArrayRef,
                Arc::new(Int64Array::from(vec![7])),
            ],
        )
        .unwrap();
        let rows = join_source(&plan(true), first, &[latest(right)], None).unwrap();
        let ts = rows.frame.sources[1].column_by_name("ts").unwrap();
        assert_eq!(ts.null_count(), 3);
    }

    #[test]
    fn left_join_keeps_every_row_and_records_matches() {
        let (first, right) = inputs();
        let rows = join_source(&plan(true), first, &[latest(right)], None).unwrap();
        assert!(rows.kept.is_none());
        let matched: Vec<_> = rows.matched.unwrap().iter().collect();
        assert_eq!(
            matched,
            vec![Some(true), Some(false), Some(false), Some(true)]
        );
    }

    #[test]
    fn keyed_history_finds_the_latest_row_before_each_time() {
        // Time-ordered rows: a@1 (0), b@2 (1), a@5 (1), null@6, a@9 (0).
        let history = batch(vec![
            (
                "id",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                    Some("a"),
                ])) as ArrayRef,
            ),
            ("ts", Arc::new(Int64Array::from(vec![1, 2, 5, 6, 9]))),
            ("label", Arc::new(Int64Array::from(vec![0, 1, 1, 1, 0]))),
        ]);
        let h = KeyedHistory::new(history, "id", "ts").unwrap();
        assert_eq!(h.lookup("a", 1), None);
        assert_eq!(h.lookup("a", 2), Some(0));
        assert_eq!(h.lookup("a", 5), Some(0));
        assert_eq!(h.lookup("a", 6), Some(2));
        assert_eq!(h.lookup("a", 100), Some(4));
        assert_eq!(h.lookup("b", 100), Some(1));
        assert_eq!(h.lookup("c", 100), None);
        // Joined at T = 6: a gets its label of time 5; the null left key matches nothing.
        let (first, _) = inputs();
        let h = Arc::new(h);
        let rows = join_source(
            &plan(true),
            first,
            &[Right {
                history: h.clone(),
                before: 6,
            }],
            Some(&HashMap::from([(
                "feedback".to_string(),
                vec!["label".to_string()],
            )])),
        )
        .unwrap();
        // Only the column the checks use is taken from the right side.
        assert_eq!(rows.frame.sources[1].num_columns(), 1);
        let labels = rows.frame.sources[1].column_by_name("label").unwrap();
        let labels = labels.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            vec![Some(1), None, Some(1), None]
        );
    }

    /// Grouped lookups give, for every key, the row a plain scan finds: the last row of
    /// that key with time before T. Many keys repeat, some never appear, some are null, and
    /// the number of left keys is not a multiple of the group size.
    #[test]
    fn grouped_lookups_equal_a_plain_scan() {
        let mut x: u64 = 42;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        // Keys of many widths with nulls, then keys of one width without (found from the
        // row number alone).
        for fixed in [false, true] {
            let n = 3000;
            let key = |r: u64, of: u64| match fixed {
                false => format!("key-{}", r % of),
                true => format!("key-{:04}", r % of),
            };
            let keys: Vec<Option<String>> = (0..n)
                .map(|_| {
                    let r = next();
                    (fixed || r % 13 != 0).then(|| key(r, 700))
                })
                .collect();
            let times: Vec<i64> = (0..n as i64).map(|i| i / 3).collect();
            let history = batch(vec![
                ("id", Arc::new(StringArray::from(keys.clone())) as ArrayRef),
                ("ts", Arc::new(Int64Array::from(times.clone()))),
            ]);
            let indexes = [
                KeyedHistory::new(history.clone(), "id", "ts").unwrap(),
                // Tables built side by side, a key's table chosen by its hash.
                KeyedHistory::with_tables(history, "id", "ts", 2).unwrap(),
            ];
            assert_eq!(indexes[0].keys.fixed.is_some(), fixed);
            // Left keys of other widths too, and one left batch not a multiple of the
            // pipeline's depth.
            let left: Vec<Option<String>> = (0..1001)
                .map(|_| {
                    let r = next();
                    (r % 17 != 0).then(|| match r % 5 {
                        0 => format!("key-{}", r % 800),
                        _ => key(r, 800),
                    })
                })
                .collect();
            let left = StringArray::from(left);
            for (h, before) in indexes
                .iter()
                .flat_map(|h| [0, 1, 250, 999, 1000, 5000].map(|b| (h, b)))
            {
                let got = h.lookup_all(&left, Some(before));
                // Heads found once, walked back at each time, give the same.
                assert_eq!(h.walk_heads(&h.heads(&left), before), got);
                for (i, k) in left.iter().enumerate() {
                    let want = k.and_then(|k| {
                        (0..n)
                            .rev()
                            .find(|&j| keys[j].as_deref() == Some(k) && times[j] < before)
                            .map(|j| j as u32)
                    });
                    assert_eq!(
                        got.is_valid(i).then(|| got.value(i)),
                        want,
                        "key {k:?} before {before}"
                    );
                }
                // A few keys at a time (shorter than the pipeline) give the same.
                let few = h.lookup_all(&left.slice(3, 5), Some(before));
                assert_eq!(few, got.slice(3, 5));
            }
        }
    }

    /// Rows with a null key are in no table: they neither match nor size a table (their
    /// hash, of "", would put them all in one).
    #[test]
    fn null_keys_take_no_room_in_the_tables() {
        let keys: Vec<Option<String>> = (0..101_000)
            .map(|i| (i % 101 == 0).then(|| format!("key-{i}")))
            .collect();
        let times: Vec<i64> = (0..101_000).collect();
        let history = batch(vec![
            ("id", Arc::new(StringArray::from(keys)) as ArrayRef),
            ("ts", Arc::new(Int64Array::from(times))),
        ]);
        let h = KeyedHistory::with_tables(history, "id", "ts", 1).unwrap();
        let slots: usize = h.tables.iter().map(|t| t.slots.len()).sum();
        // 1,000 keys over 2 tables, each at most half full: 2 x 1,024 slots, give or take
        // the split.
        assert!(slots <= 4096, "{slots} slots for 1,000 keys");
        assert_eq!(h.lookup("key-0", 1), Some(0));
        assert_eq!(h.lookup("key-101", 101), None);
        assert_eq!(h.lookup("key-101", 102), Some(101));
    }

    #[test]
    fn keyed_history_refuses_rows_out_of_time_order() {
        let history = batch(vec![
            (
                "id",
                Arc::new(StringArray::from(vec![Some("a"), Some("b")])) as ArrayRef,
            ),
            ("ts", Arc::new(Int64Array::from(vec![5, 1]))),
        ]);
        let err = KeyedHistory::new(history, "id", "ts").unwrap_err();
        assert!(err.to_string().contains("time order"), "{err}");
    }
}
