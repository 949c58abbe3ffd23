//! Joins of a source (`A join B using k`): each row of the left side is paired with the
//! latest row of the right component of the same key, read before `T` at any time (labels
//! arrive late). Null keys never match; `left join` keeps the unmatched rows with nulls.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_schema::DataType as ArrowType;
use mlc_engine::eval::{Frame, SourceRows};
use mlc_engine::functions::EvalError;
use mlc_engine::plan::SourcePlan;

/// The right side of one join at one evaluation time.
#[derive(Debug, Clone)]
pub enum Right {
    /// The latest row per key before `T`, as the store returns it.
    Latest(RecordBatch),
    /// Every row of the component up to some horizon, read once for many evaluation times
    /// (backfill): each key matches its latest row with `time < before`.
    History {
        history: Arc<KeyedHistory>,
        before: i64,
    },
}

/// A component's rows in time order with, per key, a chain from its latest row back to its
/// earliest: "the latest row of key k before T" is a walk from the head, usually of one step.
/// The heads live in a table of row numbers hashed by the key's text in the batch: no key
/// is copied.
pub struct KeyedHistory {
    batch: RecordBatch,
    keys: arrow_array::StringArray,
    times: arrow_buffer::ScalarBuffer<i64>,
    hasher: foldhash::fast::FixedState,
    head: hashbrown::HashTable<u32>,
    prev: Vec<u32>,
}

impl std::fmt::Debug for KeyedHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedHistory")
            .field("rows", &self.times.len())
            .field("keys", &self.head.len())
            .finish()
    }
}

const NONE: u32 = u32::MAX;

impl KeyedHistory {
    /// Indexes `batch` (rows in time order, as the store's scans return them) by its `key`
    /// column; rows with a null key are never matched.
    pub fn new(batch: RecordBatch, key: &str, time: &str) -> Result<KeyedHistory, EvalError> {
        let n = batch.num_rows();
        if u32::try_from(n).is_err() {
            return Err(EvalError::Invalid(format!(
                "{n} rows are too many to join in one read"
            )));
        }
        let keys = batch
            .column_by_name(key)
            .and_then(|a| a.as_string_opt::<i32>())
            .ok_or_else(|| {
                EvalError::Invalid(format!("join key `{key}` was not fetched as strings"))
            })?;
        let times = batch
            .column_by_name(time)
            .and_then(|a| a.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| EvalError::Invalid(format!("event time `{time}` was not fetched")))?;
        let hasher = foldhash::fast::FixedState::with_seed(0x6d6c_6321);
        let mut head: hashbrown::HashTable<u32> = hashbrown::HashTable::with_capacity(n);
        let mut prev = vec![NONE; n];
        let mut last = i64::MIN;
        for (i, k) in keys.iter().enumerate() {
            let t = times.value(i);
            if t < last {
                return Err(EvalError::Invalid(format!(
                    "the rows of `{key}` were not read in time order"
                )));
            }
            last = t;
            if let Some(k) = k {
                let i = i as u32;
                let h = hasher.hash_one(k);
                match head.find_mut(h, |&j| keys.value(j as usize) == k) {
                    Some(slot) => prev[i as usize] = std::mem::replace(slot, i),
                    None => {
                        head.insert_unique(h, i, |&j| hasher.hash_one(keys.value(j as usize)));
                    }
                }
            }
        }
        Ok(KeyedHistory {
            keys: keys.clone(),
            times: times.values().clone(),
            batch,
            hasher,
            head,
            prev,
        })
    }

    /// The row of `key` with the latest time before `before`.
    fn lookup(&self, key: &str, before: i64) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        let mut i = *self.head.find(h, |&j| self.keys.value(j as usize) == key)?;
        while self.times[i as usize] >= before {
            i = self.prev[i as usize];
            if i == NONE {
                return None;
            }
        }
        Some(i)
    }
}

/// Builds the rows of a source from the first component's rows and, per join, the latest
/// row per key of the right component.
pub fn join_source(
    plan: &SourcePlan,
    first: RecordBatch,
    rights: &[Right],
) -> Result<SourceRows, EvalError> {
    if plan.joins.is_empty() {
        return Ok(SourceRows::plain(Frame::new(vec![first])?));
    }
    let n = first.num_rows();
    let mut sources = vec![first];
    let mut kept = vec![true; n];
    let mut matched = vec![true; n];
    for (j, join) in plan.joins.iter().enumerate() {
        let right = rights.get(j).ok_or_else(|| {
            EvalError::Invalid(format!("the rows of join #{} were not fetched", j + 1))
        })?;
        let frame = Frame {
            sources: sources.clone(),
            rows: n,
        };
        let left_key = frame.column(&join.left_key).ok_or_else(|| {
            EvalError::Invalid(format!("join key `{}` was not fetched", join.left_key.name))
        })?;
        let (right, indices) = match right {
            Right::Latest(right) => {
                let right_key = right.column_by_name(&join.right_key).ok_or_else(|| {
                    EvalError::Invalid(format!("join key `{}` was not fetched", join.right_key))
                })?;
                (right, match_keys(left_key, right_key)?)
            }
            Right::History { history, before } => {
                (&history.batch, match_history(left_key, history, *before)?)
            }
        };
        for (i, m) in matched.iter_mut().enumerate() {
            let hit = indices.is_valid(i);
            *m &= hit;
            if !join.left {
                kept[i] &= hit;
            }
        }
        let taken = take_nullable(right, &indices)?;
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
    let all_kept = kept.iter().all(|k| *k);
    Ok(SourceRows {
        frame: Frame::new(sources)?,
        kept: (!all_kept).then(|| BooleanArray::from(kept)),
        matched: Some(BooleanArray::from(matched)),
    })
}

/// The rows of `batch` at `indices`, a null index giving a row of nulls. Every field becomes
/// nullable: the store declares the time column non-null, but an unmatched row has none.
fn take_nullable(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch, EvalError> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EvalError::Invalid(format!("join: {e}")))?;
    let fields: Vec<arrow_schema::Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    RecordBatch::try_new(
        std::sync::Arc::new(arrow_schema::Schema::new(fields)),
        columns,
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
    Ok(l.iter()
        .map(|k| k.and_then(|k| history.lookup(k, before)))
        .collect())
}

/// For each left key, the index of the right row with the same key (null when none, or when
/// the left key is null).
fn match_keys(left: &ArrayRef, right: &ArrayRef) -> Result<UInt32Array, EvalError> {
    let strings = |a: &ArrayRef| -> Result<Vec<Option<String>>, EvalError> {
        Ok(match a.data_type() {
            ArrowType::Utf8 => a
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect(),
            ArrowType::LargeUtf8 => a
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect(),
            ArrowType::Utf8View => a
                .as_string_view()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect(),
            other => {
                return Err(EvalError::Invalid(format!(
                    "join keys must be strings, found a {other} column"
                )));
            }
        })
    };
    // Borrowing the right side's strings keeps the map free of copies (the store reads keys
    // as Utf8); other string layouts are copied first.
    let owned;
    let r: Vec<Option<&str>> = match right.as_string_opt::<i32>() {
        Some(r) => r.iter().collect(),
        None => {
            owned = strings(right)?;
            owned.iter().map(|k| k.as_deref()).collect()
        }
    };
    let mut index: HashMap<&str, u32> = HashMap::with_capacity(r.len());
    for (i, k) in r.iter().enumerate() {
        if let Some(k) = k {
            // The store returns one row per key; should it return more, the last one wins.
            index.insert(k, i as u32);
        }
    }
    let l = left.as_string_opt::<i32>();
    if let Some(l) = l {
        return Ok(l
            .iter()
            .map(|k| k.and_then(|k| index.get(k).copied()))
            .collect());
    }
    let l = strings(left)?;
    Ok(l.iter()
        .map(|k| k.as_deref().and_then(|k| index.get(k).copied()))
        .collect())
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
        let right = batch(vec![
            (
                "id",
                Arc::new(StringArray::from(vec![Some("c"), Some("a"), None])) as ArrayRef,
            ),
            ("label", Arc::new(Int64Array::from(vec![1, 0, 1]))),
        ]);
        (first, right)
    }

    #[test]
    fn inner_join_drops_unmatched_and_null_keys() {
        let (first, right) = inputs();
        let rows = join_source(&plan(false), first, &[Right::Latest(right)]).unwrap();
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
        let rows = join_source(&plan(true), first, &[Right::Latest(right)]).unwrap();
        let ts = rows.frame.sources[1].column_by_name("ts").unwrap();
        assert_eq!(ts.null_count(), 3);
    }

    #[test]
    fn left_join_keeps_every_row_and_records_matches() {
        let (first, right) = inputs();
        let rows = join_source(&plan(true), first, &[Right::Latest(right)]).unwrap();
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
            &[Right::History {
                history: h.clone(),
                before: 6,
            }],
        )
        .unwrap();
        let labels = rows.frame.sources[1].column_by_name("label").unwrap();
        let labels = labels.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            vec![Some(1), None, Some(1), None]
        );
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
