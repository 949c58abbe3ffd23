//! Unit tests of evaluation with hand-built plans and a test accumulator, so they do not
//! depend on the builtin registry (except the test of aggregates that share their state,
//! which is about the builtins that do).

use std::any::Any;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use mlc_grammar::ast::{BinaryOp, Severity};

use super::*;
use crate::functions::{Accumulator, EvalError, Outcome as AccOutcome, Side};
use crate::plan::*;
use crate::schema::DataType;
use crate::value::Value;

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

fn col(name: &str, ty: DataType) -> RowExpr {
    RowExpr {
        kind: RowExprKind::Column(cid(name, ty)),
        ty: Some(ty),
    }
}
fn cid(name: &str, ty: DataType) -> ColumnId {
    ColumnId {
        source: 0,
        name: name.into(),
        ty,
    }
}
fn lit(v: Value) -> RowExpr {
    let ty = match &v {
        Value::Int(_) => Some(DataType::Int),
        Value::Float(_) => Some(DataType::Float),
        Value::Str(_) => Some(DataType::String),
        Value::Bool(_) => Some(DataType::Bool),
        _ => None,
    };
    RowExpr {
        kind: RowExprKind::Literal(v),
        ty,
    }
}
fn bin(op: BinaryOp, l: RowExpr, r: RowExpr) -> RowExpr {
    RowExpr {
        kind: RowExprKind::Binary {
            op,
            lhs: Box::new(l),
            rhs: Box::new(r),
        },
        ty: Some(DataType::Bool),
    }
}

fn frame() -> Frame {
    Frame::new(vec![batch(vec![
        (
            "ts",
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])) as ArrayRef,
        ),
        (
            "age",
            Arc::new(Int64Array::from(vec![
                Some(30),
                None,
                Some(-1),
                Some(50),
                Some(20),
            ])),
        ),
        (
            "score",
            Arc::new(Float64Array::from(vec![0.5, 0.25, 1.0, 0.75, 0.0])),
        ),
        (
            "country",
            Arc::new(StringArray::from(vec![
                Some("DE"),
                Some("US"),
                None,
                Some("DE"),
                None,
            ])),
        ),
    ])])
    .unwrap()
}

fn bools(a: &ArrayRef) -> Vec<Option<bool>> {
    a.as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn comparisons_propagate_null_and_filters_treat_it_as_false() {
    let f = frame();
    let e = bin(BinaryOp::Ge, col("age", DataType::Int), lit(Value::Int(0)));
    let out = eval_row(&e, &f, None).unwrap();
    assert_eq!(
        bools(&out),
        vec![Some(true), None, Some(false), Some(true), Some(true)]
    );
    let mask = predicate_mask(&e, &f, None).unwrap();
    assert_eq!(
        mask.iter().collect::<Vec<_>>(),
        vec![Some(true), Some(false), Some(false), Some(true), Some(true)]
    );
}

#[test]
fn and_or_are_three_valued() {
    let f = frame();
    let null_age = bin(BinaryOp::Ge, col("age", DataType::Int), lit(Value::Int(0)));
    let f_or = bin(BinaryOp::Or, null_age.clone(), lit(Value::Bool(true)));
    assert_eq!(bools(&eval_row(&f_or, &f, None).unwrap())[1], Some(true));
    let f_and = bin(BinaryOp::And, null_age.clone(), lit(Value::Bool(false)));
    assert_eq!(bools(&eval_row(&f_and, &f, None).unwrap())[1], Some(false));
    let f_and_t = bin(BinaryOp::And, null_age, lit(Value::Bool(true)));
    assert_eq!(bools(&eval_row(&f_and_t, &f, None).unwrap())[1], None);
}

#[test]
fn int_and_float_mix_in_arithmetic_and_division_by_zero_is_null() {
    let f = frame();
    let e = RowExpr {
        kind: RowExprKind::Binary {
            op: BinaryOp::Div,
            lhs: Box::new(col("age", DataType::Int)),
            rhs: Box::new(col("score", DataType::Float)),
        },
        ty: Some(DataType::Float),
    };
    let out = eval_row(&e, &f, None).unwrap();
    let out = out.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(
        out.iter().collect::<Vec<_>>(),
        vec![Some(60.0), None, Some(-1.0), Some(50.0 / 0.75), None]
    );
}

#[test]
fn time_columns_compare_with_rfc3339_strings() {
    let f = Frame::new(vec![batch(vec![(
        "ts",
        Arc::new(Int64Array::from(vec![
            1_772_323_200_000_000,
            1_772_323_200_000_001,
        ])) as ArrayRef,
    )])])
    .unwrap();
    let e = bin(
        BinaryOp::Gt,
        col("ts", DataType::Timestamp),
        lit(Value::Str("2026-03-01T00:00:00Z".into())),
    );
    assert_eq!(
        bools(&eval_row(&e, &f, None).unwrap()),
        vec![Some(false), Some(true)]
    );
}

#[test]
fn in_list_and_between_and_within() {
    let f = frame();
    let inl = RowExpr {
        kind: RowExprKind::InList {
            operand: Box::new(col("country", DataType::String)),
            list: vec![lit(Value::Str("DE".into())), lit(Value::Str("FR".into()))],
            negated: true,
        },
        ty: Some(DataType::Bool),
    };
    assert_eq!(
        bools(&eval_row(&inl, &f, None).unwrap()),
        vec![Some(false), Some(true), None, Some(false), None]
    );
    let btw = RowExpr {
        kind: RowExprKind::Between {
            operand: Box::new(col("score", DataType::Float)),
            low: Box::new(lit(Value::Float(0.25))),
            high: Box::new(lit(Value::Int(1))),
        },
        ty: Some(DataType::Bool),
    };
    assert_eq!(
        bools(&eval_row(&btw, &f, None).unwrap()),
        vec![Some(true), Some(true), Some(true), Some(true), Some(false)]
    );
    // 10% of 1.0 is 0.1: 0.75 is too far, 1.0 is exact.
    let win = RowExpr {
        kind: RowExprKind::Within {
            operand: Box::new(col("score", DataType::Float)),
            tolerance: Box::new(lit(Value::Float(0.1))),
            target: Box::new(lit(Value::Float(1.0))),
            relative: true,
        },
        ty: Some(DataType::Bool),
    };
    assert_eq!(
        bools(&eval_row(&win, &f, None).unwrap()),
        vec![
            Some(false),
            Some(false),
            Some(true),
            Some(false),
            Some(false)
        ]
    );
}

/// `x in [...]` over strings compares literals of at most 15 bytes as packed integers: it
/// answers as plain string equality at every length (the empty string, a trailing NUL, either
/// side of the 15-byte limit, multi-byte UTF-8), with the last values of the buffer (where no
/// 16 bytes can be loaded at once) and nulls, negated or not.
#[test]
fn string_in_list_is_exact_at_every_length() {
    let words = [
        "",
        "a",
        "a\0",
        "US",
        "abcdefghijklmn",
        "abcdefghijklmno",
        "abcdefghijklmnop",
        "abcdefghijklmnoq",
        "ü✓",
    ];
    let rows: Vec<Option<&str>> = (0..97)
        .map(|i| (i % 13 != 5).then_some(words[(i * 7) % words.len()]))
        .chain(words.iter().map(|w| Some(*w)))
        .collect();
    let f = Frame::new(vec![batch(vec![(
        "country",
        Arc::new(StringArray::from(rows.clone())) as ArrayRef,
    )])])
    .unwrap();
    let lists: [&[&str]; 5] = [
        &["US"],
        &["", "a"],
        &["a\0", "abcdefghijklmno"],
        &["abcdefghijklmnop", "abcdefghijklmn", "ü✓"],
        &["abcdefghijklmnoq", "b", "U"],
    ];
    for list in lists {
        for negated in [false, true] {
            let e = RowExpr {
                kind: RowExprKind::InList {
                    operand: Box::new(col("country", DataType::String)),
                    list: list.iter().map(|w| lit(Value::Str((*w).into()))).collect(),
                    negated,
                },
                ty: Some(DataType::Bool),
            };
            let want: Vec<Option<bool>> = rows
                .iter()
                .map(|r| r.map(|v| list.contains(&v) != negated))
                .collect();
            assert_eq!(
                bools(&eval_row(&e, &f, None).unwrap()),
                want,
                "{list:?} negated {negated}"
            );
        }
    }
}

#[test]
fn null_is_a_slice_of_its_own_and_comes_last() {
    let f = frame();
    let s = slices(&f, &[cid("country", DataType::String)]).unwrap();
    let keys: Vec<_> = s.iter().map(|s| (s.key.clone(), s.len)).collect();
    assert_eq!(
        keys,
        vec![
            (vec![Value::Str("DE".into())], 2),
            (vec![Value::Str("US".into())], 1),
            (vec![Value::Null], 2)
        ]
    );
}

/// Short strings are grouped as packed integers, longer ones as text: strings that differ
/// only in length or a trailing NUL, the empty string and null, and strings either side of
/// the 15-byte limit each get a slice of their own, also in two-column keys.
#[test]
fn string_slices_are_exact_at_every_length() {
    let words = [
        Some(""),
        None,
        Some("a"),
        Some("a\0"),
        Some("abcdefghijklmno"),
        Some("abcdefghijklmnop"),
        Some("abcdefghijklmnoq"),
        Some("abcdefghijklmn"),
        Some("ü✓"),
    ];
    let n = 200;
    let a: Vec<Option<&str>> = (0..n)
        .map(|i| words[(i * 7 + i / 3) % words.len()])
        .collect();
    let b: Vec<Option<i64>> = (0..n)
        .map(|i| (i % 4 != 3).then_some((i % 3) as i64))
        .collect();
    let f = Frame::new(vec![batch(vec![
        ("s", Arc::new(StringArray::from(a.clone())) as ArrayRef),
        ("n", Arc::new(Int64Array::from(b.clone()))),
    ])])
    .unwrap();
    let value = |s: Option<&str>| s.map_or(Value::Null, |s| Value::Str(s.into()));
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    for by in [vec!["s"], vec!["s", "n"]] {
        let ids: Vec<ColumnId> = by
            .iter()
            .map(|c| {
                cid(
                    c,
                    if *c == "s" {
                        DataType::String
                    } else {
                        DataType::Int
                    },
                )
            })
            .collect();
        let got: Vec<(Vec<Value>, Vec<u32>)> = slices(&f, &ids)
            .unwrap()
            .into_iter()
            .map(|s| (s.key, s.rows.unwrap().values().to_vec()))
            .collect();
        let mut want: Vec<(Vec<Value>, Vec<u32>)> = Vec::new();
        for i in 0..n {
            let mut key = vec![value(a[i])];
            if by.len() == 2 {
                key.push(int(b[i]));
            }
            match want.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(i as u32),
                None => want.push((key, vec![i as u32])),
            }
        }
        want.sort_by(|x, y| slice::compare_keys(&x.0, &y.0));
        assert_eq!(got, want, "group by {by:?}");
    }
}

/// The packed-string path (Utf8 columns) and the general path (here LargeUtf8) give the same
/// slices, over enough distinct keys to grow the packed table several times, on a sliced
/// column whose last values end at the very end of the buffer.
#[test]
fn packed_string_slices_equal_the_general_path() {
    let n = 5_000;
    let words: Vec<Option<String>> = (0..n)
        .map(|i| match i % 11 {
            0 => None,
            1 => Some(format!("a-long-key-of-many-bytes-{}", i % 7)),
            _ => Some(format!("k{}", (i * 31) % 700)),
        })
        .collect();
    let utf8 = StringArray::from(words.clone()).slice(3, n - 3);
    let large = arrow_array::LargeStringArray::from(words).slice(3, n - 3);
    let ids = [cid("s", DataType::String)];
    let by = |a: ArrayRef| -> Vec<(Vec<Value>, Vec<u32>)> {
        let f = Frame::new(vec![batch(vec![("s", a)])]).unwrap();
        slices(&f, &ids)
            .unwrap()
            .into_iter()
            .map(|s| (s.key, s.rows.unwrap().values().to_vec()))
            .collect()
    };
    let got = by(Arc::new(utf8));
    assert_eq!(got.len(), 700 + 7 + 1);
    assert_eq!(got, by(Arc::new(large)));
}

/// The slice limit is exact on every grouping path (packed short strings, long strings,
/// nulls, integers, two-column keys): as many slices as allowed pass with every slice, one
/// more distinct key is refused.
#[test]
fn the_slice_limit_is_exact_on_every_path() {
    let n = 3_000;
    let short: Vec<Option<String>> = (0..n)
        .map(|i| (i % 13 != 0).then(|| format!("k{}", i % 97)))
        .collect();
    let long: Vec<Option<String>> = (0..n)
        .map(|i| Some(format!("a-request-id-of-many-bytes-{}", i % 211)))
        .collect();
    let ints: Vec<Option<i64>> = (0..n)
        .map(|i| (i % 7 != 0).then_some((i % 50) as i64))
        .collect();
    let f = Frame::new(vec![batch(vec![
        ("s", Arc::new(StringArray::from(short)) as ArrayRef),
        ("l", Arc::new(StringArray::from(long))),
        ("n", Arc::new(Int64Array::from(ints))),
        (
            "ls",
            Arc::new(arrow_array::LargeStringArray::from(
                (0..n)
                    .map(|i| Some(format!("v{}", i % 31)))
                    .collect::<Vec<_>>(),
            )),
        ),
    ])])
    .unwrap();
    let s = cid("s", DataType::String);
    let l = cid("l", DataType::String);
    let i = cid("n", DataType::Int);
    let ls = cid("ls", DataType::String);
    for by in [
        vec![s.clone()],
        vec![l],
        vec![i.clone()],
        vec![ls],
        vec![s, i],
    ] {
        let all = slices(&f, &by).unwrap();
        let distinct = all.len();
        assert!(distinct > 30, "{by:?}");
        let at_limit = slice::slices_at_most(&f, &by, distinct).unwrap().unwrap();
        assert_eq!(at_limit.len(), distinct);
        assert!(
            matches!(
                slice::slices_at_most(&f, &by, distinct - 1).unwrap(),
                Err(slice::TooManySlices)
            ),
            "{by:?}"
        );
        assert!(matches!(
            slice::slices_at_most(&f, &by, 1).unwrap(),
            Err(slice::TooManySlices)
        ));
    }
}

/// A check past `max_series` is one error that names the `group by`, the limit and the fix;
/// `each` columns divide the limit among themselves.
#[test]
fn a_check_past_the_series_limit_is_one_error() {
    let rows = SourceRows::plain(frame());
    let eval =
        |plan: &CheckPlan, max_series: usize| evaluate_plain(plan, &rows, &sum_acc, max_series);
    // `frame()` has 3 countries: DE, US and null.
    let plan = sum_plan(40.0, 1);
    assert_eq!(eval(&plan, 3).unwrap().len(), 3);
    let err = eval(&plan, 2).unwrap_err().to_string();
    for part in [
        "group by country",
        "more than 2 slices",
        "--max-series-per-check",
        "max_series_per_check",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let mut each = plan.clone();
    each.each = Some(EachPlan {
        var: "c".into(),
        columns: vec![cid("age", DataType::Int), cid("age", DataType::Int)],
    });
    assert_eq!(eval(&each, 6).unwrap().len(), 6);
    let err = eval(&each, 5).unwrap_err().to_string();
    assert!(
        err.contains("for each of 2 columns") && err.contains("limit of 5 results"),
        "{err}"
    );
}

/// Sums its first argument; undefined on no values, like `mean`.
struct SumAcc {
    n: usize,
    sum: f64,
    sides: Vec<Side>,
}
impl Accumulator for SumAcc {
    fn update(&mut self, side: Side, args: &[ArrayRef]) -> Result<(), EvalError> {
        self.sides.push(side);
        let a = args[0].as_any().downcast_ref::<Int64Array>().unwrap();
        for v in a.iter().flatten() {
            self.n += 1;
            self.sum += v as f64;
        }
        Ok(())
    }
    fn merge(&mut self, _: &dyn Accumulator) -> Result<(), EvalError> {
        Ok(())
    }
    fn finalize(&self) -> Result<AccOutcome, EvalError> {
        if self.n == 0 {
            return Ok(AccOutcome::Undefined("no values".into()));
        }
        Ok(AccOutcome::Value(Value::Float(self.sum)))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn sum_plan(expect_ge: f64, min_rows: u64) -> CheckPlan {
    let call = AggregateCall {
        // Not a builtin: the tests' factory supplies its accumulator, as the host does a
        // plugin's.
        function: FunctionRef::Plugin("testsum".into()),
        args: vec![col("age", DataType::Int)],
        rows: RowSet::Current,
        text: "testsum(age)".into(),
    };
    CheckPlan {
        name: "c".into(),
        file: "f.mlc".into(),
        origin: Origin::default(),
        source: SourcePlan {
            components: vec![],
            joins: vec![],
        },
        window_secs: None,
        delay_secs: 0,
        every_secs: 60,
        baseline: None,
        filter: None,
        group_by: vec![cid("country", DataType::String)],
        each: None,
        min_rows,
        aggregates: vec![call],
        expects: vec![ExpectPlan {
            text: format!("testsum(age) >= {expect_ge}"),
            expr: AggExpr::Binary {
                op: BinaryOp::Ge,
                lhs: Box::new(AggExpr::Aggregate(0)),
                rhs: Box::new(AggExpr::Literal(Value::Float(expect_ge))),
            },
            origin: Origin::default(),
        }],
        severity: Severity::Warning,
        for_secs: 0,
        description: None,
        labels: vec![],
    }
}

/// `plan` over `rows` (no baseline), its aggregates made by `make`, at most `max_series`
/// results.
fn evaluate_plain(
    plan: &CheckPlan,
    rows: &SourceRows,
    make: &check::AccFactory<'_>,
    max_series: usize,
) -> Result<Vec<Outcome>, EvalError> {
    let input = CheckInput {
        current: rows,
        baseline: None,
        time: cid("ts", DataType::Timestamp),
        baseline_time: None,
        event_age_secs: None,
        max_series,
    };
    evaluate_check(plan, &input, make)
}

/// `plan` over `f` (no baseline), its aggregates made by `make`.
fn run_with(plan: &CheckPlan, f: Frame, make: &check::AccFactory<'_>) -> Vec<Outcome> {
    evaluate_plain(plan, &SourceRows::plain(f), make, check::DEFAULT_MAX_SERIES).unwrap()
}

/// A [`SumAcc`] for every aggregate.
fn sum_acc(_: &AggregateCall) -> Result<Box<dyn Accumulator>, String> {
    Ok(Box::new(SumAcc {
        n: 0,
        sum: 0.0,
        sides: vec![],
    }))
}

fn run(plan: &CheckPlan, f: Frame) -> Vec<Outcome> {
    run_with(plan, f, &sum_acc)
}

#[test]
fn each_slice_gets_its_verdict_and_undefined_is_insufficient() {
    let out = run(&sum_plan(40.0, 1), frame());
    let got: Vec<_> = out
        .iter()
        .map(|o| (o.slice.clone(), o.status, o.rows))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                vec![("country".to_string(), Value::Str("DE".into()))],
                Status::Pass,
                2
            ),
            // US has one row whose age is null: the sum is undefined, never a pass.
            (
                vec![("country".to_string(), Value::Str("US".into()))],
                Status::Insufficient,
                1
            ),
            (vec![("country".to_string(), Value::Null)], Status::Fail, 2),
        ]
    );
    assert_eq!(
        out[0].expects[0].explanation,
        "testsum(age) = 80, expected >= 40"
    );
    assert_eq!(
        out[2].expects[0].values,
        vec![("testsum(age)".to_string(), Value::Float(19.0))]
    );
    assert!(
        out[1].expects[0]
            .explanation
            .contains("undefined: no values"),
        "{:?}",
        out[1]
    );
}

#[test]
fn min_rows_makes_small_slices_insufficient() {
    let out = run(&sum_plan(0.0, 2), frame());
    let statuses: Vec<_> = out.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        vec![Status::Pass, Status::Insufficient, Status::Pass]
    );
    assert_eq!(
        out[1].expects[0].explanation,
        "only 1 row, fewer than min_rows 2"
    );
}

#[test]
fn where_filters_before_slicing() {
    let mut plan = sum_plan(0.0, 1);
    plan.filter = Some(bin(
        BinaryOp::Gt,
        col("age", DataType::Int),
        lit(Value::Int(25)),
    ));
    let out = run(&plan, frame());
    let got: Vec<_> = out.iter().map(|o| (o.slice[0].1.clone(), o.rows)).collect();
    assert_eq!(got, vec![(Value::Str("DE".into()), 2)]);
}

#[test]
fn status_combines_fail_over_error_over_insufficient() {
    assert_eq!(
        Status::combine([Status::Pass, Status::Insufficient]),
        Status::Insufficient
    );
    assert_eq!(
        Status::combine([Status::Error, Status::Insufficient]),
        Status::Error
    );
    assert_eq!(Status::combine([Status::Error, Status::Fail]), Status::Fail);
    assert_eq!(Status::combine([]), Status::Pass);
}

#[test]
fn numbers_read_well_in_messages() {
    assert_eq!(agg::format_number(5120.0), "5,120");
    assert_eq!(agg::format_number(0.83), "0.83");
    assert_eq!(agg::format_number(0.833333333), "0.8333");
    assert_eq!(agg::format_number(0.000012344), "0.00001234");
    assert_eq!(agg::format_duration(7500.0), "2h 5m");
    let _ = Arc::new(BooleanArray::from(vec![true])).len();
    let _ = ArrowType::Null;
}

/// A plan over `frame` grouped by `group` with one `>= 0` expect per `(function, args)`.
fn metrics_plan(calls: &[(&str, &[&str])], group: &str) -> CheckPlan {
    let mut plan = sum_plan(0.0, 1);
    plan.group_by = vec![cid(group, DataType::String)];
    plan.aggregates = calls
        .iter()
        .map(|(f, args)| AggregateCall {
            function: FunctionRef::Builtin(crate::functions::lookup(f).unwrap()),
            args: args.iter().map(|a| col(a, DataType::Int)).collect(),
            rows: RowSet::Current,
            text: format!("{f}({})", args.join(", ")),
        })
        .collect();
    plan.expects = plan
        .aggregates
        .iter()
        .enumerate()
        .map(|(i, a)| ExpectPlan {
            text: format!("{} >= 0", a.text),
            expr: AggExpr::Binary {
                op: BinaryOp::Ge,
                lhs: Box::new(AggExpr::Aggregate(i)),
                rhs: Box::new(AggExpr::Literal(Value::Float(0.0))),
            },
            origin: Origin::default(),
        })
        .collect();
    plan
}

fn run_builtins(plan: &CheckPlan, f: Frame) -> Vec<Outcome> {
    run_with(plan, f, &check::builtin_accumulator)
}

/// `accuracy`, `precision`, `recall`, `f1` and `fpr` of the same arguments share one
/// confusion matrix per slice: each gives exactly what it gives alone, the same functions
/// over other arguments keep their own, and when the shared state cannot be built each
/// error names its own function.
#[test]
fn aggregates_sharing_their_state_equal_each_alone() {
    let n = 400;
    let pred: Vec<Option<i64>> = (0..n)
        .map(|i| (i % 7 != 0).then_some((i * 3 % 5 < 2) as i64))
        .collect();
    let label: Vec<Option<i64>> = (0..n)
        .map(|i| (i % 11 != 0).then_some((i % 3 == 0) as i64))
        .collect();
    let country: Vec<Option<&str>> = (0..n)
        .map(|i| ["DE", "US", "FR"].get(i % 4).copied())
        .collect();
    let f = || {
        Frame::new(vec![batch(vec![
            (
                "ts",
                Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())) as ArrayRef,
            ),
            ("pred", Arc::new(Int64Array::from(pred.clone()))),
            ("label", Arc::new(Int64Array::from(label.clone()))),
            ("country", Arc::new(StringArray::from(country.clone()))),
        ])])
        .unwrap()
    };
    let calls: &[(&str, &[&str])] = &[
        ("accuracy", &["pred", "label"]),
        ("precision", &["pred", "label"]),
        ("precision", &["label", "pred"]),
        ("recall", &["pred", "label"]),
        ("f1", &["pred", "label"]),
        ("fpr", &["pred", "label"]),
        ("recall", &["label", "pred"]),
    ];
    let together = run_builtins(&metrics_plan(calls, "country"), f());
    assert_eq!(together.len(), 4, "three countries and null");
    for (i, call) in calls.iter().enumerate() {
        let alone = run_builtins(&metrics_plan(&[*call], "country"), f());
        for (t, a) in together.iter().zip(&alone) {
            assert_eq!(t.slice, a.slice);
            assert_eq!(
                t.expects[i].values, a.expects[0].values,
                "{call:?} in {:?}",
                t.slice
            );
            assert_eq!(t.expects[i].status, a.expects[0].status);
        }
    }
    // Swapped arguments are other states: precision(label, pred) is recall(pred, label).
    for t in &together {
        assert_eq!(t.expects[2].values[0].1, t.expects[3].values[0].1);
        assert_ne!(t.expects[1].values[0].1, t.expects[2].values[0].1);
    }
    // A label column of strings: no state can be built, and each error names its function.
    let bad = Frame::new(vec![batch(vec![
        ("ts", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ("pred", Arc::new(Int64Array::from(vec![1, 0]))),
        ("label", Arc::new(StringArray::from(vec!["a", "b"]))),
        ("country", Arc::new(StringArray::from(vec!["DE", "DE"]))),
    ])])
    .unwrap();
    let out = run_builtins(&metrics_plan(&calls[..2], "country"), bad);
    for (e, name) in out[0].expects.iter().zip(["accuracy", "precision"]) {
        assert_eq!(e.status, Status::Error, "{e:?}");
        assert!(e.explanation.contains(name), "{e:?}");
        assert!(
            !e.explanation.contains(if name == "accuracy" {
                "precision"
            } else {
                "accuracy"
            }),
            "{e:?}"
        );
    }
}

/// The slices of an inner join's kept rows, cut from the slices of all rows, are those of
/// the filtered rows: same keys in the same order, same rows (in the filtered numbering), a
/// key left without rows gone; without `group by`, one slice of every kept row.
#[test]
fn kept_slices_equal_the_slices_of_the_kept_rows() {
    let f = frame();
    let masks = [
        vec![true, true, true, true, true],
        vec![true, false, true, false, true],
        vec![false, true, false, true, false],
        vec![false, false, false, false, false],
        vec![true, true, false, true, false],
    ];
    let by_country = [cid("country", DataType::String)];
    for mask in masks {
        let kept = BooleanArray::from(mask.clone());
        for group_by in [&by_country[..], &[]] {
            let want = slices(&f.filter(&kept).unwrap(), group_by).unwrap();
            let got = check::kept_slices(slices(&f, group_by).unwrap(), &kept);
            let view = |s: &[Slice]| -> Vec<(Vec<Value>, usize, Option<Vec<u32>>)> {
                s.iter()
                    .map(|s| {
                        let rows = s.rows.as_ref().map(|r| r.values().to_vec());
                        (s.key.clone(), s.len, rows)
                    })
                    .collect()
            };
            assert_eq!(
                view(&got),
                view(&want),
                "mask {mask:?}, group by {group_by:?}"
            );
        }
    }
}
