//! Unit tests of the builtins' behaviour outside the numeric reference values: scalar
//! functions, null and NaN handling, argument errors, and merge rules.

// `&[x.clone()]` reads better than `std::slice::from_ref(&x)` in these short calls.
#![allow(clippy::cloned_ref_to_slice_refs)]

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};

use super::{Outcome, Side, lookup};
use crate::value::Value;

fn scalar(name: &str, args: &[Value]) -> Value {
    lookup(name).unwrap().call_scalar(args).unwrap()
}

fn floats(v: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}

fn ints(v: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn bools(v: &[Option<bool>]) -> ArrayRef {
    Arc::new(BooleanArray::from(v.to_vec()))
}

fn times(v: &[i64]) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v.to_vec()))
}

/// Runs an aggregate over current (and baseline) batches.
fn agg(name: &str, current: &[ArrayRef], baseline: &[ArrayRef]) -> Outcome {
    let mut acc = lookup(name).unwrap().accumulator().unwrap();
    acc.update(Side::Current, current).unwrap();
    if !baseline.is_empty() {
        acc.update(Side::Baseline, baseline).unwrap();
    }
    acc.finalize().unwrap()
}

fn value(o: Outcome) -> Value {
    match o {
        Outcome::Value(v) => v,
        Outcome::Undefined(r) => panic!("undefined: {r}"),
    }
}

#[test]
fn scalar_functions_follow_sql_null_rules() {
    assert_eq!(scalar("abs", &[Value::Int(-3)]), Value::Int(3));
    assert_eq!(scalar("abs", &[Value::Float(-2.5)]), Value::Float(2.5));
    assert_eq!(
        scalar("abs", &[Value::Duration(-60.0)]),
        Value::Duration(60.0)
    );
    assert_eq!(
        scalar("abs", &[Value::Int(i64::MIN)]),
        Value::Float(9.223372036854776e18)
    );
    assert_eq!(scalar("abs", &[Value::Null]), Value::Null);
    assert_eq!(
        scalar("ln", &[Value::Float(std::f64::consts::E)]),
        Value::Float(1.0)
    );
    assert_eq!(scalar("ln", &[Value::Int(0)]), Value::Null);
    assert_eq!(scalar("ln", &[Value::Float(-1.0)]), Value::Null);
    assert_eq!(scalar("exp", &[Value::Int(0)]), Value::Float(1.0));
    assert_eq!(scalar("exp", &[Value::Float(1000.0)]), Value::Null);
    assert_eq!(scalar("sqrt", &[Value::Int(9)]), Value::Float(3.0));
    assert_eq!(scalar("sqrt", &[Value::Float(-4.0)]), Value::Null);
    assert_eq!(scalar("sqrt", &[Value::Null]), Value::Null);
}

#[test]
fn least_greatest_and_coalesce() {
    let args = [Value::Int(3), Value::Null, Value::Int(-1), Value::Int(7)];
    assert_eq!(scalar("least", &args), Value::Int(-1));
    assert_eq!(scalar("greatest", &args), Value::Int(7));
    assert_eq!(
        scalar("least", &[Value::Int(2), Value::Float(1.5)]),
        Value::Float(1.5)
    );
    assert_eq!(
        scalar("greatest", &[Value::Int(2), Value::Float(1.5)]),
        Value::Float(2.0)
    );
    assert_eq!(
        scalar("least", &[Value::Duration(60.0), Value::Duration(30.0)]),
        Value::Duration(30.0)
    );
    assert_eq!(scalar("least", &[Value::Null, Value::Null]), Value::Null);
    assert_eq!(
        scalar(
            "coalesce",
            &[Value::Null, Value::Str("a".into()), Value::Int(1)]
        ),
        { Value::Str("a".into()) }
    );
    assert_eq!(scalar("coalesce", &[Value::Null]), Value::Null);
    assert!(
        lookup("ln")
            .unwrap()
            .call_scalar(&[Value::Str("x".into())])
            .is_err()
    );
    assert!(lookup("abs").unwrap().call_scalar(&[]).is_err());
    assert!(
        lookup("mean")
            .unwrap()
            .call_scalar(&[Value::Int(1)])
            .is_err()
    );
}

#[test]
fn nan_counts_as_missing() {
    let x = floats(&[Some(1.0), Some(f64::NAN), None, Some(3.0)]);
    assert_eq!(value(agg("mean", &[x.clone()], &[])), Value::Float(2.0));
    assert_eq!(
        value(agg("null_rate", &[x.clone()], &[])),
        Value::Float(0.5)
    );
    assert_eq!(value(agg("max", &[x], &[])), Value::Float(3.0));
}

#[test]
fn min_max_keep_the_column_type() {
    let x = ints(&[Some(4), None, Some(-2)]);
    assert_eq!(value(agg("min", &[x.clone()], &[])), Value::Int(-2));
    assert_eq!(value(agg("max", &[x.clone()], &[])), Value::Int(4));
    assert_eq!(value(agg("sum", &[x], &[])), Value::Float(2.0));
}

#[test]
fn sum_of_large_ints_is_exact() {
    let big = 1i64 << 60;
    let x = ints(&[Some(big), Some(big), Some(-big), Some(1)]);
    assert_eq!(value(agg("sum", &[x], &[])), Value::Float((big + 1) as f64));
}

#[test]
fn count_takes_the_time_column_or_a_predicate() {
    let t = times(&[1, 2, 3]);
    let p = bools(&[Some(true), None, Some(false)]);
    assert_eq!(value(agg("count", &[t.clone()], &[])), Value::Float(3.0));
    assert_eq!(value(agg("count", &[p.clone(), t], &[])), Value::Float(1.0));
    assert_eq!(value(agg("rate", &[p], &[])), Value::Float(1.0 / 3.0));
    let mut acc = lookup("count").unwrap().accumulator().unwrap();
    let err = acc.update(Side::Current, &[]).unwrap_err();
    assert!(err.to_string().contains("event-time column"), "{err}");
}

#[test]
fn all_and_any_treat_null_as_false() {
    let p = bools(&[Some(true), None]);
    assert_eq!(value(agg("all", &[p.clone()], &[])), Value::Bool(false));
    assert_eq!(value(agg("any", &[p], &[])), Value::Bool(true));
    let none = bools(&[]);
    assert_eq!(value(agg("all", &[none.clone()], &[])), Value::Bool(true));
    assert_eq!(value(agg("any", &[none], &[])), Value::Bool(false));
}

#[test]
fn quantile_validates_q() {
    let x = floats(&[Some(1.0), Some(2.0)]);
    let mut acc = lookup("quantile").unwrap().accumulator().unwrap();
    let err = acc.update(Side::Current, &[x.clone(), floats(&[Some(1.5), Some(1.5)])]);
    assert!(err.unwrap_err().to_string().contains("between 0 and 1"));
    let mut a = lookup("quantile").unwrap().accumulator().unwrap();
    a.update(Side::Current, &[x.clone(), floats(&[Some(0.5), Some(0.5)])])
        .unwrap();
    let mut b = lookup("quantile").unwrap().accumulator().unwrap();
    b.update(Side::Current, &[x, floats(&[Some(0.9), Some(0.9)])])
        .unwrap();
    assert!(a.merge(b.as_ref()).is_err());
}

#[test]
fn latest_prefers_the_later_row_and_merged_state_on_ties() {
    let x = strs(&[Some("a"), Some("b"), Some("c")]);
    assert_eq!(
        value(agg("latest", &[x, times(&[5, 5, 4])], &[])),
        Value::Str("b".into())
    );
    let f = lookup("latest").unwrap();
    let mut a = f.accumulator().unwrap();
    a.update(Side::Current, &[ints(&[Some(1)]), times(&[10])])
        .unwrap();
    let mut b = f.accumulator().unwrap();
    b.update(Side::Current, &[ints(&[Some(2)]), times(&[10])])
        .unwrap();
    a.merge(b.as_ref()).unwrap();
    assert_eq!(value(a.finalize().unwrap()), Value::Int(2));
}

#[test]
fn wrong_argument_types_are_errors_that_name_the_function() {
    let mut acc = lookup("mean").unwrap().accumulator().unwrap();
    let err = acc
        .update(Side::Current, &[strs(&[Some("x")])])
        .unwrap_err();
    assert!(
        err.to_string().starts_with("mean: expected a numeric"),
        "{err}"
    );
    let mut acc = lookup("recall").unwrap().accumulator().unwrap();
    let err = acc.update(Side::Current, &[floats(&[Some(1.0)]), ints(&[Some(1)])]);
    assert!(err.unwrap_err().to_string().contains("label column"));
    let mut acc = lookup("recall").unwrap().accumulator().unwrap();
    assert!(acc.update(Side::Current, &[ints(&[Some(1)])]).is_err());
}

#[test]
fn merging_different_aggregates_is_an_error() {
    let mut a = lookup("mean").unwrap().accumulator().unwrap();
    let b = lookup("sum").unwrap().accumulator().unwrap();
    assert!(a.merge(b.as_ref()).is_err());
}

#[test]
fn psi_refuses_numeric_against_categorical() {
    let mut acc = lookup("psi").unwrap().accumulator().unwrap();
    acc.update(Side::Current, &[floats(&[Some(1.0)])]).unwrap();
    acc.update(Side::Baseline, &[strs(&[Some("a")])]).unwrap();
    assert!(acc.finalize().is_err());
}

#[test]
fn two_sample_functions_see_both_sides() {
    let cur = floats(&[Some(1.0), Some(2.0), Some(3.0)]);
    let base = floats(&[Some(11.0), Some(12.0), Some(13.0)]);
    let ks = value(agg("ks", &[cur.clone()], &[base.clone()]));
    assert_eq!(ks.field("statistic"), Some(&Value::Float(1.0)));
    assert_eq!(
        value(agg("wasserstein", &[cur.clone()], &[base])),
        Value::Float(10.0)
    );
    assert!(matches!(agg("ks", &[cur], &[]), Outcome::Undefined(_)));
}

#[test]
fn classification_on_bool_columns() {
    let pred = bools(&[Some(true), Some(true), Some(false), None]);
    let label = bools(&[Some(true), Some(false), Some(true), Some(true)]);
    assert_eq!(
        value(agg("precision", &[pred.clone(), label.clone()], &[])),
        Value::Float(0.5)
    );
    assert_eq!(
        value(agg("recall", &[pred.clone(), label.clone()], &[])),
        Value::Float(0.5)
    );
    assert_eq!(
        value(agg("accuracy", &[pred, label], &[])),
        Value::Float(1.0 / 3.0)
    );
}

#[test]
fn undefined_metrics_say_why() {
    let pred = ints(&[Some(0), Some(1)]);
    let label = ints(&[Some(0), Some(0)]);
    match agg("recall", &[pred, label], &[]) {
        Outcome::Undefined(r) => assert!(r.contains("no positive labels"), "{r}"),
        other => panic!("{other:?}"),
    }
    match agg("stddev", &[floats(&[Some(1.0)])], &[]) {
        Outcome::Undefined(r) => assert!(r.contains("at least 2 values"), "{r}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn duplicate_rate_across_batches_and_signed_zero() {
    let f = lookup("duplicate_rate").unwrap();
    let mut a = f.accumulator().unwrap();
    a.update(
        Side::Current,
        &[strs(&[Some("a"), Some("b"), Some("a"), None])],
    )
    .unwrap();
    let mut b = f.accumulator().unwrap();
    b.update(Side::Current, &[strs(&[Some("c"), Some("b")])])
        .unwrap();
    a.merge(b.as_ref()).unwrap();
    assert_eq!(value(a.finalize().unwrap()), Value::Float(0.8));
    let x = floats(&[Some(-0.0), Some(0.0), Some(1.0)]);
    assert_eq!(
        value(agg("duplicate_rate", &[x], &[])),
        Value::Float(2.0 / 3.0)
    );
    let x = bools(&[Some(true), None, Some(false), Some(true)]);
    assert_eq!(
        value(agg("duplicate_rate", &[x], &[])),
        Value::Float(2.0 / 3.0)
    );
}
