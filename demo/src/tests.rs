//! Tests of the generator: determinism, and that every injected fault is in the data.

use super::data::ColumnData;
use super::generate::{DAY, DemoConfig, HOUR, generate};
use super::*;

fn small() -> DemoConfig {
    DemoConfig {
        requests_per_day: 1_500,
        ..DemoConfig::default()
    }
}

fn strs<'a>(d: &'a Dataset, table: &str, col: &str) -> &'a [Option<String>] {
    match d.table(table).and_then(|t| t.column(col)) {
        Some(ColumnData::Str(v)) => v,
        other => panic!("{table}.{col} is not a string column: {other:?}"),
    }
}
fn ints<'a>(d: &'a Dataset, table: &str, col: &str) -> &'a [Option<i64>] {
    match d.table(table).and_then(|t| t.column(col)) {
        Some(ColumnData::Int(v)) => v,
        other => panic!("{table}.{col} is not an int column: {other:?}"),
    }
}
fn floats<'a>(d: &'a Dataset, table: &str, col: &str) -> &'a [Option<f64>] {
    match d.table(table).and_then(|t| t.column(col)) {
        Some(ColumnData::Float(v)) => v,
        other => panic!("{table}.{col} is not a float column: {other:?}"),
    }
}
fn times<'a>(d: &'a Dataset, table: &str) -> &'a [i64] {
    d.table(table).map(|t| t.times()).unwrap_or(&[])
}

fn quantile(mut xs: Vec<f64>, q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let pos = q * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

/// Indices of inference rows in `[T - from_days, T - to_days)`.
fn rows_between(d: &Dataset, from_days: i64, to_days: i64) -> Vec<usize> {
    let t = d.config.at_us;
    times(d, "inference")
        .iter()
        .enumerate()
        .filter(|(_, x)| **x >= t - from_days * DAY && **x < t - to_days * DAY)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn same_seed_gives_the_same_records_and_another_seed_does_not() {
    let a = generate(&small());
    let b = generate(&small());
    assert_eq!(a, b);
    let c = generate(&DemoConfig { seed: 7, ..small() });
    assert_ne!(a.tables[0], c.tables[0]);
    let mut csv_a = Vec::new();
    let mut csv_b = Vec::new();
    for t in &a.tables {
        t.write_csv(&mut csv_a).unwrap();
    }
    for t in &b.tables {
        t.write_csv(&mut csv_b).unwrap();
    }
    assert_eq!(csv_a, csv_b);
}

#[test]
fn shapes_keys_and_times_are_sound() {
    let d = generate(&small());
    let t = d.config.at_us;
    assert_eq!(d.table("inference").unwrap().rows(), 35 * 1_500);
    for table in &d.tables {
        assert!(table.rows() > 0, "{} is empty", table.component);
        for c in &table.columns {
            assert_eq!(c.data.len(), table.rows(), "{}.{}", table.component, c.name);
        }
        assert!(
            table.times().iter().all(|x| *x < t),
            "{} has records at or after T",
            table.component
        );
        match table.column(table.key) {
            Some(ColumnData::Str(keys)) => assert!(keys.iter().all(Option::is_some)),
            other => panic!("{} key is not a string column: {other:?}", table.component),
        }
    }
    // Request ids are unique, and so are (component, key, time) everywhere.
    let mut ids: Vec<&str> = strs(&d, "inference", "request_id")
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 35 * 1_500);
    // Healthy freshness: requests and labels keep arriving until just before T.
    assert!(t - times(&d, "inference").iter().max().unwrap() < 10 * 60 * 1_000_000);
    assert!(t - times(&d, "feedback").iter().max().unwrap() < HOUR);
}

#[test]
fn the_embedded_examples_declare_every_expected_check() {
    let names = embedded::check_names();
    for e in faults::expectations() {
        assert!(
            names.contains(&e.check),
            "no check `{}` in examples/pipeline",
            e.check
        );
    }
    let quadrants: Vec<Quadrant> = FAULTS.iter().map(|f| f.quadrant).collect();
    for q in [
        Quadrant::StatelessSingle,
        Quadrant::StatelessCross,
        Quadrant::StatefulSingle,
        Quadrant::StatefulCross,
    ] {
        assert!(quadrants.contains(&q), "no fault in quadrant {q}");
    }
}

/// Every fault of FAULTS is asserted present in the generated data by its own probe.
#[test]
fn every_injected_fault_is_in_the_data() {
    let d = generate(&DemoConfig::default());
    for fault in FAULTS {
        let present = match fault.id {
            "negative_age" => negative_age(&d),
            "income_nulls" => income_nulls(&d),
            "failed_job" => failed_job(&d),
            "stale_features" => stale_features(&d),
            "offline_mismatch" => offline_mismatch(&d),
            "income_drift" => income_drift(&d),
            "mobile_latency" => mobile_latency(&d),
            "country_mix" => country_mix(&d),
            "recall_mx" => recall_mx(&d),
            "tenure_skew" => tenure_skew(&d),
            other => panic!("no probe for fault `{other}`: add one"),
        };
        assert!(present, "fault `{}` is not in the generated data", fault.id);
    }
}

fn negative_age(d: &Dataset) -> bool {
    let (age, device) = (ints(d, "inference", "age"), strs(d, "inference", "device"));
    let recent = rows_between(d, 2, 0);
    let recent_android: Vec<usize> = recent
        .iter()
        .copied()
        .filter(|i| device[*i].as_deref() == Some("android"))
        .collect();
    let n_bad = recent_android
        .iter()
        .filter(|i| age[**i] == Some(-1))
        .count();
    let share = n_bad as f64 / recent_android.len() as f64;
    let ts = times(d, "inference");
    let since = d.config.at_us - 2 * DAY;
    let elsewhere = (0..age.len())
        .filter(|i| !(ts[*i] >= since && device[*i].as_deref() == Some("android")))
        .any(|i| age[i].is_some_and(|a| a < 0));
    (0.03..0.07).contains(&share) && !elsewhere
}

fn null_rate(d: &Dataset, rows: &[usize], country: &str) -> f64 {
    let (income, c) = (
        floats(d, "inference", "income"),
        strs(d, "inference", "country"),
    );
    let sel: Vec<_> = rows
        .iter()
        .filter(|i| c[**i].as_deref() == Some(country))
        .collect();
    sel.iter().filter(|i| income[***i].is_none()).count() as f64 / sel.len() as f64
}

fn income_nulls(d: &Dataset) -> bool {
    let day0 = rows_between(d, 1, 0);
    let week_ago = rows_between(d, 8, 7);
    (0.2..0.4).contains(&null_rate(d, &day0, "DE"))
        && null_rate(d, &day0, "US") < 0.02
        && null_rate(d, &week_ago, "DE") < 0.02
}

fn failed_job(d: &Dataset) -> bool {
    let (job, status, ts) = (
        strs(d, "batch_jobs", "job"),
        strs(d, "batch_jobs", "status"),
        times(d, "batch_jobs"),
    );
    let failed: Vec<usize> = (0..job.len())
        .filter(|i| status[*i].as_deref() == Some("failed"))
        .collect();
    failed.len() == 1
        && job[failed[0]].as_deref() == Some("training_export")
        && ts[failed[0]] >= d.config.at_us - DAY
}

fn stale_features(d: &Dataset) -> bool {
    let age = d.config.at_us - times(d, "features").iter().max().copied().unwrap_or(0);
    (29 * HOUR..31 * HOUR).contains(&age)
}

fn offline_mismatch(d: &Dataset) -> bool {
    let online: std::collections::HashMap<&str, (f64, &str)> = {
        let (id, score, v) = (
            strs(d, "inference", "request_id"),
            floats(d, "inference", "score"),
            strs(d, "inference", "model_version"),
        );
        (0..id.len())
            .map(|i| {
                (
                    id[i].as_deref().unwrap(),
                    (score[i].unwrap(), v[i].as_deref().unwrap()),
                )
            })
            .collect()
    };
    let (id, off) = (
        strs(d, "offline_scores", "request_id"),
        floats(d, "offline_scores", "offline_score"),
    );
    let (mut v1, mut v2, mut v1_equal, mut v2_off) = (0, 0, 0, 0);
    for i in 0..id.len() {
        let (score, version) = online[id[i].as_deref().unwrap()];
        let diff = (off[i].unwrap() - score).abs();
        if version == "v2" {
            v2 += 1;
            v2_off += usize::from(diff >= 0.02);
        } else {
            v1 += 1;
            v1_equal += usize::from(diff == 0.0);
        }
    }
    v1 > 0 && v1 == v1_equal && v2 > 100 && v2 == v2_off
}

fn income_drift(d: &Dataset) -> bool {
    let income = floats(d, "inference", "income");
    let median = |rows: Vec<usize>| quantile(rows.iter().filter_map(|i| income[*i]).collect(), 0.5);
    let ratio = median(rows_between(d, 1, 0)) / median(rows_between(d, 8, 7));
    (1.4..1.8).contains(&ratio)
}

fn mobile_latency(d: &Dataset) -> bool {
    let (lat, device) = (
        floats(d, "inference", "latency_ms"),
        strs(d, "inference", "device"),
    );
    let p90 = |rows: Vec<usize>| {
        quantile(
            rows.iter()
                .filter(|i| matches!(device[**i].as_deref(), Some("ios" | "android")))
                .filter_map(|i| lat[*i])
                .collect(),
            0.9,
        )
    };
    p90(rows_between(d, 1, 0)) > 2.0 * p90(rows_between(d, 8, 7))
}

fn country_mix(d: &Dataset) -> bool {
    let c = strs(d, "inference", "country");
    let share = |rows: Vec<usize>| {
        rows.iter()
            .filter(|i| c[**i].as_deref() == Some("BR"))
            .count() as f64
            / rows.len() as f64
    };
    share(rows_between(d, 1, 0)) > 0.3 && share(rows_between(d, 8, 7)) < 0.15
}

fn recall(d: &Dataset, country: &str, from_days: i64, to_days: i64) -> f64 {
    let labels: std::collections::HashMap<&str, i64> = {
        let (id, label) = (
            strs(d, "feedback", "request_id"),
            ints(d, "feedback", "label"),
        );
        (0..id.len())
            .map(|i| (id[i].as_deref().unwrap(), label[i].unwrap()))
            .collect()
    };
    let (id, c, pred) = (
        strs(d, "inference", "request_id"),
        strs(d, "inference", "country"),
        ints(d, "inference", "prediction"),
    );
    let (mut tp, mut pos) = (0, 0);
    for i in rows_between(d, from_days, to_days) {
        if c[i].as_deref() != Some(country) {
            continue;
        }
        if labels.get(id[i].as_deref().unwrap()) == Some(&1) {
            pos += 1;
            tp += usize::from(pred[i] == Some(1));
        }
    }
    tp as f64 / pos as f64
}

fn recall_mx(d: &Dataset) -> bool {
    recall(d, "MX", 20, 2) < 0.5 && recall(d, "MX", 32, 21) > 0.85 && recall(d, "US", 32, 2) > 0.85
}

fn tenure_skew(d: &Dataset) -> bool {
    let med = |table: &str| {
        quantile(
            ints(d, table, "tenure_days")
                .iter()
                .flatten()
                .map(|x| *x as f64)
                .collect(),
            0.5,
        )
    };
    med("training") * 10.0 < med("inference")
}
