//! The accumulator shared by `distinct` and `duplicate_rate`: keeps the batches and, at the
//! end, counts rows per value hash, checking values for equality only against the first row
//! of their hash. Once the states of the process hold more than [`values_limit`] bytes of
//! values, a state over a column that looks like ids keeps one 64-bit code (the hash) per
//! value instead, and asks for the rows a second
//! time ([`Accumulator::needs_second_read`]) only when a code repeats, keeping the values of
//! those rows alone to group them exactly (docs/evaluation.md#streaming).
//!
//! A state over ids that has been concluded keeps its hashes sorted, and slides
//! ([`Accumulator::retract`], [`Accumulator::merge`]) by merging the hashes of the rows that
//! come into them and taking out those of the rows that go, rather than sorting them all
//! again (`mlc serve`'s window, docs/evaluation.md#panes).

use std::any::Any;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{Array, ArrayRef, BooleanArray};

use super::common::{Cat, FastMap, arity, same};
use super::{Accumulator, EvalError, Outcome, Side};

/// The default most bytes of values the `distinct` and `duplicate_rate` states of the process
/// hold together, with their hashes, before those over ids keep 64-bit codes instead: 10M
/// 21-character ids (about 250 MB, 330 MB with their hashes) stay values, read once; 50M are
/// codes (400 MB instead of 1.25 GB).
pub const DEFAULT_VALUES_LIMIT: usize = 512 << 20;

static VALUES_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_VALUES_LIMIT);

/// Bytes of the batches (with their hashes) held by the [`HashedAcc`]s of the process in
/// [`State::Values`], each batch counted once however many states share it (a pane and the
/// window merged from it).
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Sets the most bytes of values the `distinct` and `duplicate_rate` states hold together
/// before those over ids keep 64-bit codes (`MLC_DISTINCT_VALUES_BYTES`); the results are
/// the same either way.
pub fn set_values_limit(bytes: usize) {
    VALUES_LIMIT.store(bytes, Ordering::Relaxed);
}

/// See [`set_values_limit`].
pub fn values_limit() -> usize {
    VALUES_LIMIT.load(Ordering::Relaxed)
}

/// Keeps the batches (cheap reference-counted arrays) rather than a map of owned values: the
/// typical column is mostly unique ids, where a million owned string keys cost seconds.
pub(crate) struct HashedAcc {
    pub(crate) name: &'static str,
    state: State,
    /// Codes replace the values once the states of the process hold more than this many
    /// bytes of values ([`values_limit`]).
    limit: usize,
    /// Turns (distinct values, non-null values, values seen more than once) into the result.
    pub(crate) finish: fn(u64, u64, u64) -> Result<Outcome, EvalError>,
}

/// One non-empty batch fed, with its rows hashed as they were fed (on the threads that feed
/// the rows, while the next rows are read), so that concluding sorts them without hashing.
/// Shared by the states that hold it (a pane and the window merged from it), and counted in
/// [`HELD`] while one does.
pub(crate) struct Part {
    array: ArrayRef,
    hashes: RowHashes,
    bytes: usize,
}

impl Part {
    fn new(array: ArrayRef, hashes: RowHashes) -> Arc<Part> {
        let bytes = array.get_array_memory_size() + hashes.bytes();
        HELD.fetch_add(bytes, Ordering::Relaxed);
        Arc::new(Part {
            array,
            hashes,
            bytes,
        })
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        HELD.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

enum State {
    /// The parts fed, their bytes, and from how many bytes on the values are next looked at
    /// to decide whether codes should replace them.
    Values {
        parts: Vec<Arc<Part>>,
        bytes: usize,
        next_look: usize,
        /// Kept from the first conclusion of a column of ids ([`Accumulator::prepare`]).
        sorted: Option<Sorted>,
    },
    /// One code (the value's hash) per non-null value fed.
    Codes(Codes),
    /// The codes sorted and counted: how many values have a code of their own, how many
    /// values there are, and per code seen more than once how many of its rows the second
    /// read has still to give; `again` holds those rows' values as it gives them. `asked`:
    /// whether the caller asked for (and so makes) the second read.
    Settled {
        once: u64,
        total: u64,
        repeated: FastMap<u64, u64>,
        again: Vec<ArrayRef>,
        extra: bool,
        asked: bool,
    },
}

/// The hashes of every row with a value of a state's parts, sorted, and (once counted) how
/// many occur once and how many times each other one occurs ([`walk`]).
struct Sorted {
    hashes: Vec<u64>,
    walked: Option<(u64, FastMap<u64, u64>)>,
}

impl HashedAcc {
    pub(crate) fn boxed(
        name: &'static str,
        finish: fn(u64, u64, u64) -> Result<Outcome, EvalError>,
    ) -> Box<dyn Accumulator> {
        Box::new(HashedAcc::with_limit(name, finish, values_limit()))
    }

    fn with_limit(
        name: &'static str,
        finish: fn(u64, u64, u64) -> Result<Outcome, EvalError>,
        limit: usize,
    ) -> HashedAcc {
        HashedAcc {
            name,
            state: State::Values {
                parts: Vec::new(),
                bytes: 0,
                next_look: 0,
                sorted: None,
            },
            limit,
            finish,
        }
    }

    /// Replaces kept values by codes once the states of the process hold more than the
    /// limit, if they look like ids (a column of few values stays as values: its codes would
    /// all repeat, and the second read would keep every value again; it is looked at again
    /// when its values have doubled).
    fn maybe_compact(&mut self) {
        let State::Values {
            parts,
            bytes,
            next_look,
            ..
        } = &mut self.state
        else {
            return;
        };
        if *bytes < *next_look || HELD.load(Ordering::Relaxed) <= self.limit {
            return;
        }
        let arrays = arrays_of(parts);
        let Ok(cats) = cats_of(self.name, &arrays) else {
            return;
        };
        if sample_all_distinct(&cats, &arrays, &hasher()) {
            self.keep_codes();
        } else {
            *next_look = bytes.saturating_mul(2).max(1 << 20);
        }
    }

    /// Hashes the kept values into codes (nothing happens past [`State::Values`]); the parts
    /// go (and leave [`HELD`] once no other state holds them).
    fn keep_codes(&mut self) {
        if let State::Values { parts, .. } = &self.state {
            let mut codes = Codes::default();
            for p in parts {
                for &code in &p.hashes.hashes {
                    codes.push(code);
                }
            }
            self.state = State::Codes(codes);
        }
    }

    /// Sorts and counts the codes (once).
    fn settle(&mut self) {
        let State::Codes(codes) = &mut self.state else {
            return;
        };
        let codes = std::mem::take(codes);
        let total = codes.len;
        let (once, repeated) = codes.count();
        self.state = State::Settled {
            once,
            total,
            repeated,
            again: Vec::new(),
            extra: false,
            asked: false,
        };
    }
}

fn hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x6d6c_6321)
}

fn cats_of<'a>(name: &'static str, batches: &'a [ArrayRef]) -> Result<Vec<Cat<'a>>, EvalError> {
    batches.iter().map(|b| Cat::new(name, b)).collect()
}

fn arrays_of(parts: &[Arc<Part>]) -> Vec<ArrayRef> {
    parts.iter().map(|p| p.array.clone()).collect()
}

/// The hashes of the rows with a value of `parts`, sorted.
fn sorted_hashes(parts: &[Arc<Part>]) -> Vec<u64> {
    let mut all: Vec<u64> = parts
        .iter()
        .flat_map(|p| p.hashes.hashes.iter().copied())
        .collect();
    all.sort_unstable();
    all
}

fn hashes_of(parts: &[Arc<Part>]) -> Vec<&RowHashes> {
    parts.iter().map(|p| &p.hashes).collect()
}

/// Whether a state of `rows` non-null rows over `cats` is counted by sorting its hashes
/// (a column of ids) rather than in a map of its distinct values.
fn ids(cats: &[Cat<'_>], arrays: &[ArrayRef], rows: usize) -> bool {
    rows > MAP_LIMIT && sample_all_distinct(cats, arrays, &hasher())
}

/// Codes in [`BUCKETS`] buckets by their top bits, each bucket a list of blocks of at most
/// [`BLOCK`] codes: growing never copies codes nor holds twice their room (as one vector
/// doubling would, 800 MB for 50M codes at the copy), a block a bucket at most is not full,
/// and each bucket is sorted and counted on its own, the buckets spread over the cores.
#[derive(Default)]
pub(crate) struct Codes {
    buckets: Vec<Vec<Vec<u64>>>,
    len: u64,
}

const BUCKETS: usize = 256;
const BLOCK: usize = 16 << 10;

impl Codes {
    fn push(&mut self, code: u64) {
        if self.buckets.is_empty() {
            self.buckets.resize_with(BUCKETS, Vec::new);
        }
        let bucket = &mut self.buckets[(code >> 56) as usize];
        match bucket.last_mut() {
            Some(block) if block.len() < block.capacity() => block.push(code),
            _ => {
                // Blocks grow with the bucket, up to BLOCK: a few codes take little room.
                let held: usize = bucket.iter().map(Vec::len).sum();
                let mut block = Vec::with_capacity(held.clamp(16, BLOCK));
                block.push(code);
                bucket.push(block);
            }
        }
        self.len += 1;
    }

    fn push_all(&mut self, cat: &Cat<'_>, len: usize) {
        let h = hasher();
        for i in 0..len {
            if let Some(code) = hash_at(&h, cat, i) {
                self.push(code);
            }
        }
    }

    fn extend(&mut self, other: &Codes) {
        for bucket in &other.buckets {
            for block in bucket {
                for &code in block {
                    self.push(code);
                }
            }
        }
    }

    /// How many codes occur once, and how many times each other code occurs.
    fn count(self) -> (u64, FastMap<u64, u64>) {
        let buckets = self.buckets;
        let indices: Vec<usize> = (0..buckets.len()).collect();
        let per_bucket =
            crate::eval::check::par_map(&indices, self.len >= PARALLEL_ROWS as u64, |&b| {
                let mut codes: Vec<u64> = Vec::with_capacity(buckets[b].iter().map(Vec::len).sum());
                for block in &buckets[b] {
                    codes.extend_from_slice(block);
                }
                codes.sort_unstable();
                walk(&codes)
            });
        add_walks(per_bucket)
    }
}

impl Accumulator for HashedAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn held_bytes(&self) -> usize {
        match &self.state {
            // A part shared by several states counts a share in each.
            State::Values { parts, sorted, .. } => {
                parts
                    .iter()
                    .map(|p| p.bytes / Arc::strong_count(p).max(1))
                    .sum::<usize>()
                    + sorted.as_ref().map_or(0, |s| {
                        s.hashes.capacity() * 8 + s.walked.as_ref().map_or(0, |w| w.1.len() * 16)
                    })
            }
            State::Codes(codes) => usize::try_from(codes.len).unwrap_or(usize::MAX) * 8,
            State::Settled {
                repeated, again, ..
            } => {
                repeated.len() * 16
                    + again
                        .iter()
                        .map(|a| a.get_array_memory_size())
                        .sum::<usize>()
            }
        }
    }
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        let cat = Cat::new(self.name, &args[0])?;
        if args[0].is_empty() {
            return Ok(());
        }
        match &mut self.state {
            State::Values {
                parts,
                bytes,
                sorted,
                ..
            } => {
                let h = RowHashes::of(&hasher(), &cat, args[0].len());
                let part = Part::new(args[0].clone(), h);
                *bytes += part.bytes;
                parts.push(part);
                *sorted = None;
            }
            State::Codes(codes) => {
                codes.push_all(&cat, args[0].len());
                return Ok(());
            }
            State::Settled { .. } => return Err(concluded(self.name)),
        }
        self.maybe_compact();
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        let other = same::<Self>(self.name, other)?;
        match &other.state {
            State::Values { parts: theirs, .. } => match &mut self.state {
                State::Values {
                    parts,
                    bytes,
                    sorted,
                    ..
                } => {
                    parts.extend(theirs.iter().cloned());
                    *bytes += theirs.iter().map(|p| p.bytes).sum::<usize>();
                    if let Some(s) = sorted {
                        merge_sorted(&mut s.hashes, &sorted_hashes(theirs));
                        s.walked = None;
                    }
                    self.maybe_compact();
                }
                State::Codes(codes) => {
                    for p in theirs {
                        for &code in &p.hashes.hashes {
                            codes.push(code);
                        }
                    }
                }
                State::Settled { .. } => return Err(concluded(self.name)),
            },
            State::Codes(theirs) => {
                self.keep_codes();
                match &mut self.state {
                    State::Codes(codes) => codes.extend(theirs),
                    _ => return Err(concluded(self.name)),
                }
            }
            State::Settled { .. } => return Err(concluded(self.name)),
        }
        Ok(())
    }
    /// Takes out the parts of `other` (the very parts, shared with it), and their hashes out
    /// of the sorted ones if this state keeps them. Not in codes.
    fn retract(&mut self, other: &dyn Accumulator) -> bool {
        let Some(other) = other.as_any().downcast_ref::<Self>() else {
            return false;
        };
        let (
            State::Values {
                parts,
                bytes,
                sorted,
                ..
            },
            State::Values { parts: theirs, .. },
        ) = (&mut self.state, &other.state)
        else {
            return false;
        };
        let mut going: FastMap<usize, usize> = FastMap::default();
        for p in theirs {
            *going.entry(Arc::as_ptr(p) as usize).or_default() += 1;
        }
        let before = parts.len();
        parts.retain(|p| match going.get_mut(&(Arc::as_ptr(p) as usize)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        });
        if before - parts.len() != theirs.len() {
            return false;
        }
        *bytes -= theirs.iter().map(|p| p.bytes).sum::<usize>();
        if let Some(s) = sorted {
            if !remove_sorted(&mut s.hashes, &sorted_hashes(theirs)) {
                return false;
            }
            s.walked = None;
        }
        true
    }
    fn can_retract(&self) -> bool {
        true
    }
    /// Codes are counted; a column of ids in values has its hashes sorted (kept, for a state
    /// that slides on) and counted.
    fn prepare(&mut self) {
        self.settle();
        let State::Values { parts, sorted, .. } = &mut self.state else {
            return;
        };
        let rows: usize = parts.iter().map(|p| p.hashes.hashes.len()).sum();
        let threads = if rows >= PARALLEL_ROWS {
            crate::eval::cores().min(8)
        } else {
            1
        };
        match sorted {
            Some(s) => {
                if s.walked.is_none() {
                    s.walked = Some(walk_in(&s.hashes, threads));
                }
            }
            None => {
                let arrays = arrays_of(parts);
                let Ok(cats) = cats_of(self.name, &arrays) else {
                    return;
                };
                if ids(&cats, &arrays, rows) {
                    let (hashes, walked) = count_hashes(&hashes_of(parts), threads);
                    *sorted = Some(Sorted {
                        hashes,
                        walked: Some(walked),
                    });
                }
            }
        }
    }
    fn may_need_second_read(&self) -> bool {
        true
    }
    fn needs_second_read(&mut self) -> bool {
        self.settle();
        match &mut self.state {
            State::Settled {
                repeated, asked, ..
            } => {
                *asked = true;
                !repeated.is_empty()
            }
            _ => false,
        }
    }
    fn update_again(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        let State::Settled {
            repeated,
            again,
            extra,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        if repeated.is_empty() {
            return Ok(());
        }
        arity(self.name, args, 1)?;
        let cat = Cat::new(self.name, &args[0])?;
        let h = hasher();
        let mut keep = Vec::with_capacity(args[0].len());
        for i in 0..args[0].len() {
            let mine = hash_at(&h, &cat, i).and_then(|code| repeated.get_mut(&code));
            keep.push(match mine {
                Some(0) => {
                    *extra = true;
                    false
                }
                Some(left) => {
                    *left -= 1;
                    true
                }
                None => false,
            });
        }
        let keep = BooleanArray::from(keep);
        if keep.true_count() > 0 {
            let rows = arrow_select::filter::filter(args[0].as_ref(), &keep)
                .map_err(|e| EvalError::Invalid(e.to_string()))?;
            again.push(rows);
        }
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        match &self.state {
            State::Values { parts, sorted, .. } => {
                let arrays = arrays_of(parts);
                let cats = cats_of(self.name, &arrays)?;
                let hashes = hashes_of(parts);
                let (distinct, total, duplicated) = match sorted {
                    Some(Sorted {
                        walked: Some((once, repeated)),
                        ..
                    }) => {
                        let total = hashes.iter().map(|h| h.hashes.len() as u64).sum();
                        group_repeats(&cats, &hashes, total, *once, repeated, threads_for(total))
                    }
                    _ => {
                        let rows: usize = hashes.iter().map(|h| h.hashes.len()).sum();
                        let counts = if ids(&cats, &arrays, rows) {
                            None
                        } else {
                            by_map(&cats, &hashes)
                        };
                        counts.unwrap_or_else(|| by_sort(&cats, &hashes))
                    }
                };
                (self.finish)(distinct, total, duplicated)
            }
            State::Codes(_) => Err(EvalError::Invalid(format!(
                "internal error: {} was concluded before its codes were counted",
                self.name
            ))),
            State::Settled {
                once,
                total,
                repeated,
                again,
                extra,
                asked,
            } => {
                if repeated.is_empty() {
                    return (self.finish)(*once, *total, 0);
                }
                if !asked {
                    return Err(EvalError::Invalid(format!(
                        "internal error: {} keeps 64-bit codes, and some repeat, but its rows \
                         were not read a second time to compare their values",
                        self.name
                    )));
                }
                if *extra || repeated.values().any(|&left| left > 0) {
                    return Err(EvalError::Invalid(format!(
                        "{}: the window's rows changed between its two reads (rows were \
                         ingested into it during the evaluation); the next evaluation counts \
                         them",
                        self.name
                    )));
                }
                let cats = cats_of(self.name, again)?;
                let h = hasher();
                let mut places: Vec<(u64, u32, u32)> = Vec::new();
                for (b, (cat, arr)) in cats.iter().zip(again).enumerate() {
                    for i in 0..arr.len() {
                        if let Some(code) = hash_at(&h, cat, i) {
                            places.push((code, b as u32, i as u32));
                        }
                    }
                }
                let (groups, duplicated) = sorted_runs(&cats, &mut places);
                (self.finish)(once + groups, *total, duplicated)
            }
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn concluded(name: &str) -> EvalError {
    EvalError::Invalid(format!(
        "internal error: {name} was fed rows after its codes were counted"
    ))
}

/// Merges the sorted `more` into the sorted `into`, in place from the back when `into` has
/// the room (each run of `into` moved once, as a block, its start found by galloping back
/// from the last, so that the search stays where the moves are), else into a vector with
/// some room to spare for the next merge.
fn merge_sorted(into: &mut Vec<u64>, more: &[u64]) {
    if more.is_empty() {
        return;
    }
    let n = into.len();
    if into.capacity() < n + more.len() {
        let mut out = Vec::with_capacity((n + more.len()) + (n + more.len()) / 16);
        let (mut i, mut j) = (0, 0);
        while i < n && j < more.len() {
            if into[i] <= more[j] {
                out.push(into[i]);
                i += 1;
            } else {
                out.push(more[j]);
                j += 1;
            }
        }
        out.extend_from_slice(&into[i..]);
        out.extend_from_slice(&more[j..]);
        *into = out;
        return;
    }
    into.resize(n + more.len(), 0);
    // `end`: the end of the part of `into` not yet moved; each value of `more`, from the
    // last, goes after the values of `into` not above it.
    let mut end = n;
    for (j, &v) in more.iter().enumerate().rev() {
        let at = gallop_back(&into[..end], v);
        into.copy_within(at..end, at + j + 1);
        into[at + j] = v;
        end = at;
    }
}

/// Takes the sorted `less` out of the sorted `from`, one occurrence per value of `less`;
/// false (`from` then unusable) when one is missing.
fn remove_sorted(from: &mut Vec<u64>, less: &[u64]) -> bool {
    if less.is_empty() {
        return true;
    }
    // Values before `read` are settled; those kept are before `write`.
    let (mut read, mut write) = (0, 0);
    for &v in less {
        let at = read + gallop(&from[read..], v);
        if at == from.len() || from[at] != v {
            return false;
        }
        from.copy_within(read..at, write);
        write += at - read;
        read = at + 1;
    }
    let n = from.len();
    from.copy_within(read..n, write);
    from.truncate(write + (n - read));
    true
}

/// In the sorted `s`, how many values are not above `v` (`partition_point(|x| x <= v)`),
/// searched from the end in steps that double.
fn gallop_back(s: &[u64], v: u64) -> usize {
    // Every value of `s[hi..]` is above `v`.
    let (mut hi, mut step) = (s.len(), 1);
    while hi > 0 {
        let probe = hi.saturating_sub(step);
        if s[probe] <= v {
            return probe + 1 + s[probe + 1..hi].partition_point(|&x| x <= v);
        }
        hi = probe;
        step *= 2;
    }
    0
}

/// In the sorted `s`, how many values are below `v` (`partition_point(|x| x < v)`), searched
/// from the start in steps that double.
fn gallop(s: &[u64], v: u64) -> usize {
    // Every value of `s[..lo]` is below `v`.
    let (mut lo, mut step) = (0, 1);
    while lo < s.len() {
        let probe = (lo + step - 1).min(s.len() - 1);
        if s[probe] >= v {
            return lo + s[lo..probe].partition_point(|&x| x < v);
        }
        lo = probe + 1;
        step *= 2;
    }
    s.len()
}

/// [`walk`] of a sorted slice on `threads`, cut where the value changes.
fn walk_in(sorted: &[u64], threads: usize) -> (u64, FastMap<u64, u64>) {
    let pieces = if threads > 1 { threads * 4 } else { 1 };
    let mut cuts = vec![0];
    for k in 1..pieces {
        let mut at = (sorted.len() * k / pieces).max(*cuts.last().unwrap_or(&0));
        while at > 0 && at < sorted.len() && sorted[at] == sorted[at - 1] {
            at += 1;
        }
        cuts.push(at);
    }
    cuts.push(sorted.len());
    let ranges: Vec<std::ops::Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
    add_walks(crate::eval::check::par_map(&ranges, threads > 1, |r| {
        walk(&sorted[r.clone()])
    }))
}

fn threads_for(rows: u64) -> usize {
    if rows >= PARALLEL_ROWS as u64 {
        crate::eval::cores().min(8)
    } else {
        1
    }
}

/// Sorted hashes walked in order: how many occur once, and how many times each other hash
/// occurs.
fn walk(sorted: &[u64]) -> (u64, FastMap<u64, u64>) {
    let mut once = 0u64;
    let mut repeated: FastMap<u64, u64> = FastMap::default();
    for run in sorted.chunk_by(|a, b| a == b) {
        if run.len() == 1 {
            once += 1;
        } else {
            repeated.insert(run[0], run.len() as u64);
        }
    }
    (once, repeated)
}

/// The [`walk`]s of buckets that share no hash, added up.
fn add_walks(walks: Vec<(u64, FastMap<u64, u64>)>) -> (u64, FastMap<u64, u64>) {
    let mut once = 0;
    let mut repeated = FastMap::default();
    for (o, r) in walks {
        once += o;
        repeated.extend(r);
    }
    (once, repeated)
}

/// Few distinct values (categories): one map entry per distinct hash, holding the first row
/// with it and how many rows share its value. Keys are plain u64s, so no value is copied; a
/// row whose hash is taken by a different value (a genuine collision) is set aside and
/// grouped exactly. Gives up (`None`) past [`MAP_LIMIT`] distinct hashes, where sorting wins.
fn by_map(cats: &[Cat<'_>], hashes: &[&RowHashes]) -> Option<(u64, u64, u64)> {
    let mut first: FastMap<u64, ((u32, u32), u64)> = FastMap::default();
    let mut collided: Vec<(u64, u32, u32)> = Vec::new();
    let mut total = 0u64;
    for (b, rows) in hashes.iter().enumerate() {
        for (i, h) in rows.iter() {
            total += 1;
            let pos = (b as u32, i as u32);
            match first.entry(h) {
                Entry::Vacant(e) => {
                    e.insert((pos, 1));
                }
                Entry::Occupied(mut e) => {
                    if equal(cats, e.get().0, pos) {
                        e.get_mut().1 += 1;
                    } else {
                        collided.push((h, pos.0, pos.1));
                    }
                }
            }
            if first.len() > MAP_LIMIT {
                return None;
            }
        }
    }
    let (groups, dup) = sorted_runs(cats, &mut collided);
    let distinct = first.len() as u64 + groups;
    let duplicated = dup
        + first
            .values()
            .map(|(_, n)| *n)
            .filter(|n| *n > 1)
            .sum::<u64>();
    Some((distinct, total, duplicated))
}

/// Whether [`SAMPLE`] rows spread evenly over the column hold no non-null value twice, which
/// is how a column of ids looks and almost never how a column of at most [`MAP_LIMIT`]
/// distinct values does (4,096 draws from 65,536 values repeat one with probability
/// 1 - e^-128): such a column goes straight to [`by_sort`] instead of filling the map to its
/// limit first. Either path is exact; this only picks the faster.
fn sample_all_distinct(cats: &[Cat<'_>], batches: &[ArrayRef], hasher: &impl BuildHasher) -> bool {
    let rows: usize = batches.iter().map(|b| b.len()).sum();
    let stride = (rows / SAMPLE).max(1);
    let mut seen: FastMap<u64, (u32, u32)> = FastMap::default();
    seen.reserve(SAMPLE);
    // `next` is the next sampled row, counted over all batches.
    let (mut next, mut offset) = (0usize, 0usize);
    for (b, (cat, arr)) in cats.iter().zip(batches).enumerate() {
        while next < offset + arr.len() {
            let i = next - offset;
            next += stride;
            let Some(h) = hash_at(hasher, cat, i) else {
                continue;
            };
            let pos = (b as u32, i as u32);
            match seen.entry(h) {
                Entry::Vacant(e) => {
                    e.insert(pos);
                }
                Entry::Occupied(e) => {
                    if equal(cats, *e.get(), pos) {
                        return false;
                    }
                }
            }
        }
        offset += arr.len();
    }
    true
}

const SAMPLE: usize = 4096;

/// Mostly distinct values (ids): sort the rows' hashes (8 bytes a row). A hash seen once is
/// one distinct value. Only the rows whose hash repeats are found again, with their place,
/// and grouped by value exactly ([`sorted_runs`]), so a column of distinct ids is never
/// compared value by value.
fn by_sort(cats: &[Cat<'_>], hashes: &[&RowHashes]) -> (u64, u64, u64) {
    let rows: usize = hashes.iter().map(|h| h.hashes.len()).sum();
    let parts = if rows >= PARALLEL_ROWS {
        crate::eval::cores().min(8)
    } else {
        1
    };
    by_sort_in(cats, hashes, parts)
}

/// [`by_sort`] on `parts` threads.
fn by_sort_in(cats: &[Cat<'_>], hashes: &[&RowHashes], parts: usize) -> (u64, u64, u64) {
    let total = hashes.iter().map(|h| h.hashes.len() as u64).sum();
    let (_, (once, repeated)) = count_hashes(hashes, parts);
    group_repeats(cats, hashes, total, once, &repeated, parts)
}

/// (distinct values, `total`, values seen more than once) from the count of the hashes of
/// the rows with a value: `once` occur once, `repeated` more often. The rows of the repeated
/// hashes are found again and grouped by value exactly.
fn group_repeats(
    cats: &[Cat<'_>],
    hashes: &[&RowHashes],
    total: u64,
    once: u64,
    repeated: &FastMap<u64, u64>,
    parts: usize,
) -> (u64, u64, u64) {
    if repeated.is_empty() {
        return (once, total, 0);
    }
    // The rows of the repeated hashes, batch by batch on the cores; most rows are passed
    // over by a bit of a small filter, without a map lookup.
    let mut filter = vec![0u64; FILTER_BITS / 64];
    for h in repeated.keys() {
        let bit = (*h as usize) % FILTER_BITS;
        filter[bit / 64] |= 1 << (bit % 64);
    }
    let filter = &filter;
    let batches: Vec<usize> = (0..hashes.len()).collect();
    let found = crate::eval::check::par_map(&batches, parts > 1, |&b| {
        hashes[b]
            .iter()
            .filter(|&(_, h)| {
                let bit = (h as usize) % FILTER_BITS;
                filter[bit / 64] & (1 << (bit % 64)) != 0 && repeated.contains_key(&h)
            })
            .map(|(i, h)| (h, b as u32, i as u32))
            .collect::<Vec<_>>()
    });
    let mut places: Vec<(u64, u32, u32)> = found.into_iter().flatten().collect();
    let (groups, duplicated) = sorted_runs(cats, &mut places);
    (once + groups, total, duplicated)
}

/// Bits of the filter that passes over rows whose hash does not repeat.
const FILTER_BITS: usize = 1 << 20;

/// Below this many rows the hashes are sorted on one thread.
const PARALLEL_ROWS: usize = 1 << 20;

/// The hashes sorted; how many of them occur once, and how many times each other hash
/// occurs. The hashes are put in 256 buckets by their top byte (each of `parts` threads a run of the
/// batches, into its own share of each bucket), then each bucket is sorted and counted on its
/// own, the buckets spread over the cores: a bucket of 10M hashes fits in the cache, where
/// the whole does not.
fn count_hashes(hashes: &[&RowHashes], parts: usize) -> (Vec<u64>, (u64, FastMap<u64, u64>)) {
    let total: usize = hashes.iter().map(|h| h.hashes.len()).sum();
    // Runs of whole batches of about as many hashes, one per thread.
    let share = total.div_ceil(parts.max(1)).max(1);
    let mut runs: Vec<&[&RowHashes]> = Vec::new();
    let (mut from, mut acc) = (0, 0);
    for (b, h) in hashes.iter().enumerate() {
        acc += h.hashes.len();
        if acc >= share {
            runs.push(&hashes[from..=b]);
            (from, acc) = (b + 1, 0);
        }
    }
    if from < hashes.len() {
        runs.push(&hashes[from..]);
    }
    let parallel = parts > 1 && total >= PARALLEL_ROWS;
    let counts: Vec<[usize; BUCKETS]> = crate::eval::check::par_map(&runs, parallel, |run| {
        let mut n = [0usize; BUCKETS];
        for h in run.iter().flat_map(|r| r.hashes.iter()) {
            n[(h >> 56) as usize] += 1;
        }
        n
    });
    // One buffer, cut bucket by bucket and, within a bucket, run by run; with room to
    // spare for a state that slides on to merge more hashes in place (zeroed by the
    // allocator, so its pages are not touched until used).
    let mut sorted: Vec<u64> = vec![0u64; total + total / 16];
    sorted.truncate(total);
    let mut shares: Vec<Vec<&mut [u64]>> = runs.iter().map(|_| Vec::new()).collect();
    let mut buckets: Vec<std::ops::Range<usize>> = Vec::with_capacity(BUCKETS);
    let mut rest: &mut [u64] = &mut sorted;
    let mut at = 0;
    for b in 0..BUCKETS {
        let start = at;
        for (r, n) in counts.iter().enumerate() {
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n[b]);
            shares[r].push(mine);
            rest = tail;
            at += n[b];
        }
        buckets.push(start..at);
    }
    let work: Vec<(&[&RowHashes], Shares<'_>)> = runs
        .iter()
        .zip(shares)
        .map(|(run, s)| (*run, std::sync::Mutex::new(s)))
        .collect();
    crate::eval::check::par_map(&work, parallel, |(run, shares)| {
        let mut shares = shares
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = vec![0usize; BUCKETS];
        for &h in run.iter().flat_map(|r| r.hashes.iter()) {
            let b = (h >> 56) as usize;
            shares[b][next[b]] = h;
            next[b] += 1;
        }
    });
    drop(work);
    let mut rest: &mut [u64] = &mut sorted;
    let mut cells = Vec::with_capacity(BUCKETS);
    for range in &buckets {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        cells.push(std::sync::Mutex::new(mine));
        rest = tail;
    }
    let got = crate::eval::check::par_map(&cells, parallel, |cell| {
        let mut bucket = cell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bucket.sort_unstable();
        walk(&bucket)
    });
    drop(cells);
    (sorted, add_walks(got))
}

/// One thread's share of each bucket, in bucket order.
type Shares<'a> = std::sync::Mutex<Vec<&'a mut [u64]>>;

/// The hash ([`hash_at`]) of each row of a batch that has a value, in row order, and the rows
/// (ascending) that have none.
#[derive(Clone, Default)]
pub(crate) struct RowHashes {
    hashes: Vec<u64>,
    nulls: Vec<u32>,
}

impl RowHashes {
    fn of(hasher: &impl BuildHasher, cat: &Cat<'_>, len: usize) -> RowHashes {
        let (mut hashes, mut nulls) = (Vec::with_capacity(len), Vec::new());
        for i in 0..len {
            match hash_at(hasher, cat, i) {
                Some(h) => hashes.push(h),
                None => nulls.push(i as u32),
            }
        }
        RowHashes { hashes, nulls }
    }

    fn bytes(&self) -> usize {
        self.hashes.capacity() * 8 + self.nulls.capacity() * 4
    }

    /// (row, hash) of each row with a value, in row order.
    fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let mut nulls = self.nulls.iter().peekable();
        let mut row = 0usize;
        self.hashes.iter().map(move |&h| {
            while nulls.next_if(|&&n| n as usize == row).is_some() {
                row += 1;
            }
            row += 1;
            (row - 1, h)
        })
    }
}

/// Sorts rows by hash and sums [`run_groups`] over the runs of equal hashes.
fn sorted_runs(cats: &[Cat<'_>], rows: &mut [(u64, u32, u32)]) -> (u64, u64) {
    rows.sort_unstable();
    let (mut distinct, mut duplicated) = (0u64, 0u64);
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end].0 == rows[start].0 {
            end += 1;
        }
        let (groups, dup) = run_groups(cats, &rows[start..end]);
        distinct += groups;
        duplicated += dup;
        start = end;
    }
    (distinct, duplicated)
}

const MAP_LIMIT: usize = 1 << 16;

fn hash_at(h: &impl BuildHasher, cat: &Cat<'_>, i: usize) -> Option<u64> {
    match cat {
        Cat::Num(n) if n.is_int() => n.get_int(i).map(|v| h.hash_one(v)),
        // -0.0 and 0.0 are the same value.
        Cat::Num(n) => n
            .get(i)
            .map(|v| h.hash_one(if v == 0.0 { 0 } else { v.to_bits() })),
        Cat::Bool(b) => b.is_valid(i).then(|| h.hash_one(b.value(i))),
        Cat::Str(s) => s.get(i).map(|v| h.hash_one(v)),
    }
}

fn equal(cats: &[Cat<'_>], a: (u32, u32), b: (u32, u32)) -> bool {
    let (ca, cb) = (&cats[a.0 as usize], &cats[b.0 as usize]);
    let (i, j) = (a.1 as usize, b.1 as usize);
    match (ca, cb) {
        (Cat::Num(x), Cat::Num(y)) if x.is_int() && y.is_int() => x.get_int(i) == y.get_int(j),
        (Cat::Num(x), Cat::Num(y)) => x.get(i) == y.get(j),
        (Cat::Str(x), Cat::Str(y)) => x.get(i) == y.get(j),
        (Cat::Bool(x), Cat::Bool(y)) => (x.is_valid(i), x.value(i)) == (y.is_valid(j), y.value(j)),
        _ => false,
    }
}

/// The distinct values in a run of equal hashes, and how many of its rows have a value that
/// occurs more than once. Equal hashes almost always mean equal values; genuine collisions
/// are grouped exactly.
fn run_groups(cats: &[Cat<'_>], run: &[(u64, u32, u32)]) -> (u64, u64) {
    if run.len() == 1 {
        return (1, 0);
    }
    let first = (run[0].1, run[0].2);
    if run.iter().all(|r| equal(cats, first, (r.1, r.2))) {
        return (1, run.len() as u64);
    }
    let mut groups: Vec<((u32, u32), u64)> = Vec::new();
    for r in run {
        let pos = (r.1, r.2);
        match groups.iter_mut().find(|(g, _)| equal(cats, *g, pos)) {
            Some((_, n)) => *n += 1,
            None => groups.push((pos, 1)),
        }
    }
    let dup = groups.iter().map(|(_, n)| *n).filter(|n| *n > 1).sum();
    (groups.len() as u64, dup)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, StringArray};

    use super::{Cat, RowHashes, by_map, by_sort, run_groups};

    fn hashed(
        h: &impl std::hash::BuildHasher,
        cats: &[Cat<'_>],
        batches: &[ArrayRef],
    ) -> Vec<RowHashes> {
        cats.iter()
            .zip(batches)
            .map(|(c, b)| RowHashes::of(h, c, b.len()))
            .collect()
    }

    fn refs(h: &[RowHashes]) -> Vec<&RowHashes> {
        h.iter().collect()
    }

    #[test]
    fn row_hashes_keep_each_row_with_a_value_in_its_place() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            None,
            Some("a"),
            None,
            None,
            Some("b"),
            Some("c"),
            None,
        ]));
        let cat = Cat::new("t", &a).unwrap();
        let h = foldhash::fast::FixedState::with_seed(1);
        let rows: Vec<usize> = RowHashes::of(&h, &cat, a.len())
            .iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(rows, vec![1, 4, 5]);
        let hashes: Vec<u64> = RowHashes::of(&h, &cat, a.len())
            .iter()
            .map(|(_, x)| x)
            .collect();
        let want: Vec<u64> = [1, 4, 5]
            .iter()
            .map(|&i| super::hash_at(&h, &cat, i).unwrap())
            .collect();
        assert_eq!(hashes, want);
    }
    use crate::functions::{Accumulator, Outcome, Side, lookup};
    use crate::value::Value;

    #[test]
    fn colliding_hashes_are_grouped_by_value() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a", "c"]));
        let cats = vec![Cat::new("t", &a).unwrap()];
        // Pretend every value hashed to 5.
        let run: Vec<(u64, u32, u32)> = (0..4).map(|i| (5, 0, i)).collect();
        assert_eq!(run_groups(&cats, &run), (3, 2));
        assert_eq!(run_groups(&cats, &[(5, 0, 0), (5, 0, 2)]), (1, 2));
        assert_eq!(run_groups(&cats, &[(5, 0, 1)]), (1, 0));
    }

    /// A hasher with 997 possible outputs: nearly every value shares its hash with others.
    #[derive(Default)]
    struct Coarse(u64);
    impl std::hash::Hasher for Coarse {
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(*b));
            }
        }
        fn finish(&self) -> u64 {
            self.0 % 997
        }
    }
    struct CoarseState;
    impl std::hash::BuildHasher for CoarseState {
        type Hasher = Coarse;
        fn build_hasher(&self) -> Coarse {
            Coarse::default()
        }
    }

    fn exact(v: &[Option<String>]) -> (u64, u64, u64) {
        let mut counts = std::collections::HashMap::new();
        for x in v.iter().flatten() {
            *counts.entry(x.clone()).or_insert(0u64) += 1;
        }
        let total: u64 = counts.values().sum();
        let dup: u64 = counts.values().filter(|c| **c > 1).sum();
        (counts.len() as u64, total, dup)
    }

    #[test]
    fn colliding_hashes_in_the_sort_path_are_grouped_exactly() {
        // 20k distinct strings over two batches, some repeated, with nulls, under a hasher of
        // 997 outputs: every hash repeats, so every row takes the exact grouping.
        let v: Vec<Option<String>> = (0..30_000)
            .map(|i| match i % 11 {
                0 => None,
                3 => Some(format!("id-{}", i / 3)),
                _ => Some(format!("id-{}", i % 20_000)),
            })
            .collect();
        let a: ArrayRef = Arc::new(StringArray::from(v[..12_345].to_vec()));
        let b: ArrayRef = Arc::new(StringArray::from(v[12_345..].to_vec()));
        let batches = vec![a.clone(), b.clone()];
        let cats = vec![Cat::new("t", &a).unwrap(), Cat::new("t", &b).unwrap()];
        let coarse = hashed(&CoarseState, &cats, &batches);
        let fine = hashed(&foldhash::fast::FixedState::with_seed(3), &cats, &batches);
        assert_eq!(by_sort(&cats, &refs(&coarse)), exact(&v));
        // Hashed and sorted in parts (ranges that cut a batch, and parts with no rows): the
        // same counts, equal hashes met across parts.
        for parts in [2, 3, 7, 64] {
            assert_eq!(
                super::by_sort_in(&cats, &refs(&coarse), parts),
                exact(&v),
                "{parts} parts"
            );
            assert_eq!(
                super::by_sort_in(&cats, &refs(&fine), parts),
                exact(&v),
                "{parts} parts"
            );
        }
        assert_eq!(by_sort(&cats, &refs(&fine)), exact(&v));
    }

    #[test]
    fn a_column_of_ids_skips_the_map_and_still_finds_a_late_repeat() {
        // 100k distinct ids, then one id again at the end: the sample sees no repeat, so the
        // sort path runs, and it must still count the repeated pair.
        let mut v: Vec<Option<String>> = (0..100_000).map(|i| Some(format!("r{i:07}"))).collect();
        let h = foldhash::fast::FixedState::with_seed(9);
        let a: ArrayRef = Arc::new(StringArray::from(v.clone()));
        let cats = vec![Cat::new("t", &a).unwrap()];
        assert!(super::sample_all_distinct(
            &cats,
            std::slice::from_ref(&a),
            &h
        ));
        v.push(Some("r0000042".to_string()));
        v.push(None);
        let a: ArrayRef = Arc::new(StringArray::from(v.clone()));
        let mut acc = lookup("duplicate_rate").unwrap().accumulator().unwrap();
        acc.update(Side::Current, std::slice::from_ref(&a)).unwrap();
        let (_, total, dup) = exact(&v);
        assert_eq!((total, dup), (100_001, 2));
        assert_eq!(
            acc.finalize().unwrap(),
            Outcome::Value(Value::Float(2.0 / 100_001.0))
        );
        // A column of few values is not taken for ids.
        let few: ArrayRef = Arc::new(StringArray::from(
            (0..100_000)
                .map(|i| format!("c{}", i % 5000))
                .collect::<Vec<_>>(),
        ));
        let cats = vec![Cat::new("t", &few).unwrap()];
        assert!(!super::sample_all_distinct(
            &cats,
            std::slice::from_ref(&few),
            &h
        ));
    }

    fn dup_rate(limit: usize) -> super::HashedAcc {
        super::HashedAcc::with_limit(
            "duplicate_rate",
            |distinct, total, dup| {
                Ok(Outcome::Value(Value::Str(format!(
                    "{distinct} {total} {dup}"
                ))))
            },
            limit,
        )
    }

    fn counts(v: &[Option<String>]) -> Outcome {
        let (d, t, dup) = exact(v);
        Outcome::Value(Value::Str(format!("{d} {t} {dup}")))
    }

    fn arrays(v: &[Option<String>], cuts: &[usize]) -> Vec<ArrayRef> {
        let mut out = Vec::new();
        let mut lo = 0;
        for &hi in cuts.iter().chain([&v.len()]) {
            out.push(Arc::new(StringArray::from(v[lo..hi].to_vec())) as ArrayRef);
            lo = hi;
        }
        out
    }

    /// Runs an accumulator over `batches` as the evaluator does: update, the second read if
    /// asked (the same batches in reverse order), prepare, finalize.
    fn run(mut acc: super::HashedAcc, batches: &[ArrayRef]) -> (Outcome, bool) {
        for b in batches {
            acc.update(Side::Current, std::slice::from_ref(b)).unwrap();
        }
        let again = acc.needs_second_read();
        if again {
            for b in batches.iter().rev() {
                acc.update_again(Side::Current, std::slice::from_ref(b))
                    .unwrap();
            }
        }
        acc.prepare();
        (acc.finalize().unwrap(), again)
    }

    #[test]
    fn codes_and_a_second_read_count_as_the_values_do() {
        // Ids, some repeated (within a batch and across batches), with nulls.
        let v: Vec<Option<String>> = (0..50_000)
            .map(|i| match i % 13 {
                0 => None,
                5 => Some(format!("id-{}", i / 7)),
                _ => Some(format!("id-{i}")),
            })
            .collect();
        let batches = arrays(&v, &[1, 999, 20_000, 20_001, 37_000]);
        let want = counts(&v);
        // Kept as values: no second read.
        assert_eq!(run(dup_rate(usize::MAX), &batches), (want.clone(), false));
        // Codes from the first byte, or after a few batches: a second read, same counts.
        for limit in [0, 1] {
            assert_eq!(
                run(dup_rate(limit), &batches),
                (want.clone(), true),
                "{limit}"
            );
        }
        // Past the limit after some batches: codes or values, as the sample of the values
        // kept then decides, the same counts.
        assert_eq!(run(dup_rate(100_000), &batches).0, want);
        // Distinct ids: codes and no second read.
        let ids: Vec<Option<String>> = (0..30_000).map(|i| Some(format!("r{i}"))).collect();
        assert_eq!(
            run(dup_rate(0), &arrays(&ids, &[7, 10_000])),
            (counts(&ids), false)
        );
        // A column of few values stays as values past the limit (its codes would all repeat).
        let few: Vec<Option<String>> = (0..30_000).map(|i| Some(format!("c{}", i % 40))).collect();
        let mut acc = dup_rate(1);
        for b in arrays(&few, &[10_000, 20_000]) {
            acc.update(Side::Current, &[b]).unwrap();
        }
        assert!(matches!(acc.state, super::State::Values { .. }));
        assert_eq!(run(acc, &[]), (counts(&few), false));
    }

    #[test]
    fn states_in_values_and_in_codes_merge_either_way() {
        let v: Vec<Option<String>> = (0..40_000)
            .map(|i| (i % 17 != 0).then(|| format!("k{}", i % 31_000)))
            .collect();
        let batches = arrays(&v, &[10_000, 25_000]);
        let want = counts(&v);
        for (a_limit, b_limit) in [(0, usize::MAX), (usize::MAX, 0), (0, 0), (1, usize::MAX)] {
            let mut c = dup_rate(a_limit);
            c.update(Side::Current, std::slice::from_ref(&batches[0]))
                .unwrap();
            let mut d = dup_rate(b_limit);
            for x in &batches[1..] {
                d.update(Side::Current, std::slice::from_ref(x)).unwrap();
            }
            c.merge(&d).unwrap();
            if c.needs_second_read() {
                for x in &batches {
                    c.update_again(Side::Current, std::slice::from_ref(x))
                        .unwrap();
                }
            }
            c.prepare();
            assert_eq!(c.finalize().unwrap(), want, "{a_limit} {b_limit}");
        }
    }

    #[test]
    fn rows_that_change_between_the_reads_or_a_missing_second_read_are_errors() {
        let v: Vec<Option<String>> = (0..1000).map(|i| Some(format!("x{}", i % 900))).collect();
        let batches = arrays(&v, &[500]);
        // A row more in the second read.
        let mut acc = dup_rate(0);
        for b in &batches {
            acc.update(Side::Current, std::slice::from_ref(b)).unwrap();
        }
        assert!(acc.needs_second_read());
        for b in &batches {
            acc.update_again(Side::Current, std::slice::from_ref(b))
                .unwrap();
        }
        let extra: ArrayRef = Arc::new(StringArray::from(vec!["x1"]));
        acc.update_again(Side::Current, &[extra]).unwrap();
        acc.prepare();
        let e = acc.finalize().unwrap_err().to_string();
        assert!(e.contains("changed between its two reads"), "{e}");
        // A row fewer.
        let mut acc = dup_rate(0);
        for b in &batches {
            acc.update(Side::Current, std::slice::from_ref(b)).unwrap();
        }
        assert!(acc.needs_second_read());
        acc.update_again(Side::Current, std::slice::from_ref(&batches[0]))
            .unwrap();
        let e = acc.finalize().unwrap_err().to_string();
        assert!(e.contains("changed between its two reads"), "{e}");
        // No second read at all.
        let mut acc = dup_rate(0);
        for b in &batches {
            acc.update(Side::Current, std::slice::from_ref(b)).unwrap();
        }
        acc.prepare();
        let e = acc.finalize().unwrap_err().to_string();
        assert!(e.contains("not read a second time"), "{e}");
    }

    #[test]
    fn sorted_hashes_merge_and_lose_values_as_a_fresh_sort_gives() {
        // Many equal values, runs at both ends, empty sides.
        let mut next = crate::functions::common::draws(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let n = next(200) as usize;
            let m = next(60) as usize;
            let span = [3, 50, 1 << 40][round % 3];
            let mut base: Vec<u64> = (0..n).map(|_| next(span)).collect();
            let mut more: Vec<u64> = (0..m).map(|_| next(span)).collect();
            base.sort_unstable();
            more.sort_unstable();
            let mut want: Vec<u64> = base.iter().chain(&more).copied().collect();
            want.sort_unstable();
            // With and without room to merge in place.
            for room in [false, true] {
                let mut got = base.clone();
                if room {
                    got.reserve(more.len());
                } else {
                    got.shrink_to_fit();
                }
                super::merge_sorted(&mut got, &more);
                assert_eq!(got, want, "round {round}, room {room}");
                // Taking `more` out again gives `base`.
                assert!(super::remove_sorted(&mut got, &more), "round {round}");
                assert_eq!(got, base, "round {round}");
            }
            // A value not held: refused.
            if let Some(&v) = more.first()
                && !base.contains(&v)
            {
                let mut got = base.clone();
                assert!(!super::remove_sorted(&mut got, &[v]), "round {round}");
            }
            for &v in more.iter().chain(&base).chain(&[0, u64::MAX]) {
                assert_eq!(
                    super::gallop_back(&want, v),
                    want.partition_point(|&x| x <= v)
                );
                assert_eq!(super::gallop(&want, v), want.partition_point(|&x| x < v));
            }
            // Walked in pieces on several threads: as one walk.
            assert_eq!(
                super::walk_in(&want, 3),
                super::walk(&want),
                "round {round}"
            );
        }
    }

    #[test]
    fn a_window_of_ids_slides_to_what_merging_its_panes_gives() {
        // Panes of ids (past the map's limit together), some repeated within and across
        // panes, with nulls, each pane fed in two batches.
        let pane = |p: usize| -> Vec<Option<String>> {
            (0..30_000usize)
                .map(|i| match i % 101 {
                    0 => None,
                    7 => Some(format!("id-{}", (i * 13 + p) % 50_000)),
                    _ => Some(format!("id-{p}-{i}")),
                })
                .collect()
        };
        let values: Vec<Vec<Option<String>>> = (0..6).map(pane).collect();
        let state_of = |v: &[Option<String>]| {
            let mut acc = dup_rate(usize::MAX);
            for b in arrays(v, &[v.len() / 3]) {
                acc.update(Side::Current, &[b]).unwrap();
            }
            acc
        };
        let mut panes: Vec<super::HashedAcc> = values.iter().map(|v| state_of(v)).collect();
        let counts_of = |held: &[&[Option<String>]]| {
            let all: Vec<Option<String>> = held.iter().flat_map(|v| v.iter().cloned()).collect();
            counts(&all)
        };
        let sorted_len = |acc: &super::HashedAcc| match &acc.state {
            super::State::Values {
                sorted: Some(s), ..
            } => Some(s.hashes.len()),
            _ => None,
        };
        let mut window = dup_rate(usize::MAX);
        for p in &panes[..4] {
            window.merge(p).unwrap();
        }
        window.prepare();
        let held: Vec<&[Option<String>]> = values[..4].iter().map(|v| v.as_slice()).collect();
        assert_eq!(window.finalize().unwrap(), counts_of(&held));
        let kept = sorted_len(&window).expect("ids keep their hashes sorted");

        // Pane 0 leaves, pane 4 joins, and pane 2 gains rows (a late write): as
        // `CheckState::slide` does, the window takes out the pane that left and merges the
        // rows that came.
        assert!(window.retract(&panes[0]));
        window.merge(&panes[4]).unwrap();
        let late: Vec<Option<String>> = (0..500)
            .map(|i| Some(format!("id-1-{}", i * 40)))
            .chain((0..300).map(|i| Some(format!("late-{i}"))))
            .collect();
        let delta = state_of(&late);
        panes[2].merge(&delta).unwrap();
        window.merge(&delta).unwrap();
        window.prepare();
        let grown: Vec<Option<String>> = values[2].iter().chain(&late).cloned().collect();
        let held: Vec<&[Option<String>]> = vec![&values[1], &grown, &values[3], &values[4]];
        let want = counts_of(&held);
        assert_eq!(window.finalize().unwrap(), want);
        // Slid, not sorted afresh: the hashes kept lost pane 0's and gained the others'.
        let (n0, n4) = (
            values[0].iter().flatten().count(),
            values[4].iter().flatten().count(),
        );
        assert_eq!(sorted_len(&window), Some(kept - n0 + n4 + late.len()));
        // The same as merging the panes afresh.
        let mut fresh = dup_rate(usize::MAX);
        for p in &panes[1..5] {
            fresh.merge(p).unwrap();
        }
        fresh.prepare();
        assert_eq!(fresh.finalize().unwrap(), want);

        // A pane it does not hold: refused (the caller rebuilds the window).
        assert!(!window.retract(&panes[5]));
        // A state in codes cannot take rows out.
        let mut codes = dup_rate(0);
        codes.merge(&panes[1]).unwrap();
        assert!(!codes.retract(&panes[1]));
    }

    #[test]
    fn map_and_sort_paths_agree() {
        // 100k ints where every third value repeats: past the map's limit of distinct hashes.
        let v: Vec<Option<i64>> = (0..100_000i64)
            .map(|i| {
                if i % 7 == 0 {
                    None
                } else {
                    Some(if i % 3 == 0 { i / 3 } else { i * 10 })
                }
            })
            .collect();
        let a: ArrayRef = Arc::new(arrow_array::Int64Array::from(v.clone()));
        let cats = vec![Cat::new("t", &a).unwrap()];
        let h = foldhash::fast::FixedState::with_seed(1);
        let all = hashed(&h, &cats, std::slice::from_ref(&a));
        let sorted = by_sort(&cats, &refs(&all));
        assert_eq!(by_map(&cats, &refs(&all)), None);
        let small = a.slice(0, 5000);
        let small_cats = vec![Cat::new("t", &small).unwrap()];
        let few = hashed(&h, &small_cats, std::slice::from_ref(&small));
        assert_eq!(
            by_map(&small_cats, &refs(&few)),
            Some(by_sort(&small_cats, &refs(&few)))
        );
        let mut counts = std::collections::HashMap::new();
        for x in v.iter().flatten() {
            *counts.entry(*x).or_insert(0u64) += 1;
        }
        let total: u64 = counts.values().sum();
        let dup: u64 = counts.values().filter(|c| **c > 1).sum();
        assert_eq!(sorted, (counts.len() as u64, total, dup));
        let mut acc = lookup("distinct").unwrap().accumulator().unwrap();
        acc.update(Side::Current, &[a]).unwrap();
        assert_eq!(
            acc.finalize().unwrap(),
            Outcome::Value(Value::Float(counts.len() as f64))
        );
    }
}
