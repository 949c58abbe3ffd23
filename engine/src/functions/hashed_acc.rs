//! The accumulator shared by `distinct` and `duplicate_rate`: keeps the batches and, at the
//! end, counts rows per value hash, checking values for equality only against the first row
//! of their hash.

use std::any::Any;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use arrow_array::{Array, ArrayRef};

use super::common::{Cat, FastMap, arity, same};
use super::{Accumulator, EvalError, Outcome, Side};

/// Keeps the batches (cheap reference-counted arrays) rather than a map of owned values: the
/// typical column is mostly unique ids, where a million owned string keys cost seconds.
pub(crate) struct HashedAcc {
    pub(crate) name: &'static str,
    pub(crate) batches: Vec<ArrayRef>,
    /// Turns (distinct values, non-null values, values seen more than once) into the result.
    pub(crate) finish: fn(u64, u64, u64) -> Result<Outcome, EvalError>,
}

impl Accumulator for HashedAcc {
    fn keeps_values(&self) -> bool {
        true
    }
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity(self.name, args, 1)?;
        Cat::new(self.name, &args[0])?;
        if !args[0].is_empty() {
            self.batches.push(args[0].clone());
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.batches
            .extend(same::<Self>(self.name, other)?.batches.iter().cloned());
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        let cats = self
            .batches
            .iter()
            .map(|b| Cat::new(self.name, b))
            .collect::<Result<Vec<_>, _>>()?;
        let hasher = foldhash::fast::FixedState::with_seed(0x6d6c_6321);
        let rows: usize = self.batches.iter().map(|b| b.len()).sum();
        let ids = rows > MAP_LIMIT && sample_all_distinct(&cats, &self.batches, &hasher);
        let counts = if ids {
            None
        } else {
            by_map(&cats, &self.batches, &hasher)
        };
        let (distinct, total, duplicated) =
            counts.unwrap_or_else(|| by_sort(&cats, &self.batches, &hasher));
        (self.finish)(distinct, total, duplicated)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Few distinct values (categories): one map entry per distinct hash, holding the first row
/// with it and how many rows share its value. Keys are plain u64s, so no value is copied; a
/// row whose hash is taken by a different value (a genuine collision) is set aside and
/// grouped exactly. Gives up (`None`) past [`MAP_LIMIT`] distinct hashes, where sorting wins.
fn by_map(
    cats: &[Cat<'_>],
    batches: &[ArrayRef],
    hasher: &impl BuildHasher,
) -> Option<(u64, u64, u64)> {
    let mut first: FastMap<u64, ((u32, u32), u64)> = FastMap::default();
    let mut collided: Vec<(u64, u32, u32)> = Vec::new();
    let mut total = 0u64;
    for (b, (cat, arr)) in cats.iter().zip(batches).enumerate() {
        for i in 0..arr.len() {
            let Some(h) = hash_at(hasher, cat, i) else {
                continue;
            };
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

/// Mostly distinct values (ids): hash every row and sort the hashes (8 bytes a row, sized
/// once). A hash seen once is one distinct value. Only the rows whose hash repeats are hashed
/// again with their place, and grouped by value exactly ([`sorted_runs`]), so a column of
/// distinct ids is never compared value by value.
fn by_sort(
    cats: &[Cat<'_>],
    batches: &[ArrayRef],
    hasher: &(impl BuildHasher + Sync),
) -> (u64, u64, u64) {
    let rows: usize = batches.iter().map(|b| b.len()).sum();
    let parts = if rows >= PARALLEL_ROWS {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    } else {
        1
    };
    by_sort_in(cats, batches, hasher, parts)
}

/// [`by_sort`] with the rows hashed and sorted in `parts` ranges, side by side.
fn by_sort_in(
    cats: &[Cat<'_>],
    batches: &[ArrayRef],
    hasher: &(impl BuildHasher + Sync),
    parts: usize,
) -> (u64, u64, u64) {
    let parts = sorted_hashes(cats, batches, hasher, parts);
    let total = parts.iter().map(|p| p.len() as u64).sum();
    // The parts walked together in hash order: a hash met once in all of them is one value.
    let mut once = 0u64;
    let mut repeated: FastMap<u64, ()> = FastMap::default();
    let mut at = vec![0usize; parts.len()];
    while let Some(h) = parts
        .iter()
        .zip(&at)
        .filter_map(|(p, &i)| p.get(i).copied())
        .min()
    {
        let mut n = 0usize;
        for (p, i) in parts.iter().zip(at.iter_mut()) {
            while p.get(*i) == Some(&h) {
                *i += 1;
                n += 1;
            }
        }
        if n == 1 {
            once += 1;
        } else {
            repeated.insert(h, ());
        }
    }
    drop(parts);
    if repeated.is_empty() {
        return (once, total, 0);
    }
    let mut places: Vec<(u64, u32, u32)> = Vec::new();
    for (b, (cat, arr)) in cats.iter().zip(batches).enumerate() {
        for i in 0..arr.len() {
            if let Some(h) = hash_at(hasher, cat, i)
                && repeated.contains_key(&h)
            {
                places.push((h, b as u32, i as u32));
            }
        }
    }
    let (groups, duplicated) = sorted_runs(cats, &mut places);
    (once + groups, total, duplicated)
}

/// Below this many rows the hashes are computed and sorted on one thread.
const PARALLEL_ROWS: usize = 1 << 20;

/// The hashes of every non-null row in `parts` ranges of rows, each hashed and sorted on its
/// own thread (one per core over [`PARALLEL_ROWS`] rows). Hashing and sorting 10M ids is most
/// of `duplicate_rate`'s time; split, both cores do it.
fn sorted_hashes(
    cats: &[Cat<'_>],
    batches: &[ArrayRef],
    hasher: &(impl BuildHasher + Sync),
    parts: usize,
) -> Vec<Vec<u64>> {
    let rows: usize = batches.iter().map(|b| b.len()).sum();
    let parts = parts.max(1);
    let share = rows.div_ceil(parts).max(1);
    let ranges: Vec<(usize, usize)> = (0..parts)
        .map(|t| (t * share, ((t + 1) * share).min(rows)))
        .filter(|(lo, hi)| lo < hi)
        .collect();
    crate::eval::check::par_map(&ranges, ranges.len() > 1, |&(lo, hi)| {
        let mut hashes: Vec<u64> = Vec::with_capacity(hi - lo);
        // `offset`: the first row of batch `b` in the numbering over all batches.
        let mut offset = 0usize;
        for (cat, arr) in cats.iter().zip(batches) {
            let (from, to) = (lo.max(offset), hi.min(offset + arr.len()));
            for i in from..to {
                if let Some(h) = hash_at(hasher, cat, i - offset) {
                    hashes.push(h);
                }
            }
            offset += arr.len();
        }
        hashes.sort_unstable();
        hashes
    })
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

    use super::{Cat, by_map, by_sort, run_groups};
    use crate::functions::{Outcome, Side, lookup};
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
        assert_eq!(by_sort(&cats, &batches, &CoarseState), exact(&v));
        // Hashed and sorted in parts (ranges that cut a batch, and parts with no rows): the
        // same counts, equal hashes met across parts.
        for parts in [2, 3, 7, 64] {
            assert_eq!(
                super::by_sort_in(&cats, &batches, &CoarseState, parts),
                exact(&v),
                "{parts} parts"
            );
            assert_eq!(
                super::by_sort_in(
                    &cats,
                    &batches,
                    &foldhash::fast::FixedState::with_seed(3),
                    parts
                ),
                exact(&v),
                "{parts} parts"
            );
        }
        assert_eq!(
            by_sort(&cats, &batches, &foldhash::fast::FixedState::with_seed(3)),
            exact(&v)
        );
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
        let sorted = by_sort(&cats, std::slice::from_ref(&a), &h);
        assert_eq!(by_map(&cats, std::slice::from_ref(&a), &h), None);
        let small = a.slice(0, 5000);
        let small_cats = vec![Cat::new("t", &small).unwrap()];
        assert_eq!(
            by_map(&small_cats, std::slice::from_ref(&small), &h),
            Some(by_sort(&small_cats, std::slice::from_ref(&small), &h))
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
