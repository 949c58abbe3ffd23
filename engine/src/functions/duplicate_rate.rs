//! `duplicate_rate(x)`: the fraction of non-null values whose value occurs more than once.

use std::any::Any;
use std::hash::BuildHasher;

use arrow_array::{Array, ArrayRef};

use super::common::{Cat, arity, same, sig, undefined, value};
use super::{
    Accumulator, ArgType, EvalError, Example, Function, FunctionKind, Outcome, Param, ReturnType,
    Side, Signature,
};

pub struct DuplicateRate;

impl Function for DuplicateRate {
    fn name(&self) -> &'static str {
        "duplicate_rate"
    }
    fn summary(&self) -> &'static str {
        "The fraction of non-null values whose value occurs more than once."
    }
    fn signature(&self) -> Signature {
        sig(
            FunctionKind::Aggregate,
            &[Param {
                name: "x",
                ty: ArgType::Any,
            }],
            ReturnType::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[Example {
            source: "expect duplicate_rate(request_id) == 0",
            description: "no request id is reported twice",
        }]
    }
    fn accumulator(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(DupAcc {
            batches: Vec::new(),
        }))
    }
}

/// Keeps the batches (cheap reference-counted arrays) rather than a map of every value: the
/// typical column is mostly unique ids, where inserting a million owned keys into a hash map
/// costs several times more than hashing each value once and sorting the hashes.
struct DupAcc {
    batches: Vec<ArrayRef>,
}

impl Accumulator for DupAcc {
    fn update(&mut self, _side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        arity("duplicate_rate", args, 1)?;
        Cat::new("duplicate_rate", &args[0])?;
        if !args[0].is_empty() {
            self.batches.push(args[0].clone());
        }
        Ok(())
    }
    fn merge(&mut self, other: &dyn Accumulator) -> Result<(), EvalError> {
        self.batches.extend(
            same::<Self>("duplicate_rate", other)?
                .batches
                .iter()
                .cloned(),
        );
        Ok(())
    }
    fn finalize(&self) -> Result<Outcome, EvalError> {
        let cats = self
            .batches
            .iter()
            .map(|b| Cat::new("duplicate_rate", b))
            .collect::<Result<Vec<_>, _>>()?;
        let hasher = foldhash::fast::FixedState::with_seed(0x6d6c_6321);
        let mut rows: Vec<(u64, u32, u32)> = Vec::new();
        for (b, (cat, arr)) in cats.iter().zip(&self.batches).enumerate() {
            for i in 0..arr.len() {
                if let Some(h) = hash_at(&hasher, cat, i) {
                    rows.push((h, b as u32, i as u32));
                }
            }
        }
        if rows.is_empty() {
            return undefined("no non-null values");
        }
        rows.sort_unstable();
        let mut duplicated = 0u64;
        let mut start = 0;
        while start < rows.len() {
            let mut end = start + 1;
            while end < rows.len() && rows[end].0 == rows[start].0 {
                end += 1;
            }
            duplicated += duplicated_in_run(&cats, &rows[start..end]);
            start = end;
        }
        value(duplicated as f64 / rows.len() as f64)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

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

/// How many rows of a run of equal hashes have a value that occurs more than once. Equal
/// hashes almost always mean equal values; genuine collisions are grouped exactly.
fn duplicated_in_run(cats: &[Cat<'_>], run: &[(u64, u32, u32)]) -> u64 {
    if run.len() == 1 {
        return 0;
    }
    let first = (run[0].1, run[0].2);
    if run.iter().all(|r| equal(cats, first, (r.1, r.2))) {
        return run.len() as u64;
    }
    let mut groups: Vec<((u32, u32), u64)> = Vec::new();
    for r in run {
        let pos = (r.1, r.2);
        match groups.iter_mut().find(|(g, _)| equal(cats, *g, pos)) {
            Some((_, n)) => *n += 1,
            None => groups.push((pos, 1)),
        }
    }
    groups.iter().map(|(_, n)| *n).filter(|n| *n > 1).sum()
}
