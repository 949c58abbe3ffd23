//! The deterministic generator of the example pipeline's records (examples/pipeline),
//! with one fault injected per scenario of [`super::faults::FAULTS`].
//!
//! Everything is laid out relative to the evaluation time `T` (`DemoConfig::at_us`):
//! "day 0" is `[T - 1d, T)`, "day k" is `[T - (k+1)d, T - k d)`. No record has a time
//! at or after `T`: at `T` those would not exist yet.

use super::data::{Column, ColumnData, Table};
use super::rng::Rng;

pub const SECOND: i64 = 1_000_000;
pub const HOUR: i64 = 3_600 * SECOND;
pub const DAY: i64 = 24 * HOUR;

/// What to generate. [`DemoConfig::default`] is what `mlc demo` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    pub seed: u64,
    /// The evaluation time `T`, microseconds since the epoch; data ends just before it.
    pub at_us: i64,
    /// Days of serving history before `T` (at least [`MIN_DAYS`]).
    pub days: u32,
    /// Inference requests per day.
    pub requests_per_day: u32,
}

/// The 30-day recall window judged 2 days back needs 32 days, plus margin.
pub const MIN_DAYS: u32 = 33;

/// 2026-03-01T00:00:00Z, the default evaluation time of reproducible runs.
pub const DEFAULT_AT_US: i64 = 1_772_323_200 * SECOND;

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 42,
            at_us: DEFAULT_AT_US,
            days: 35,
            requests_per_day: 3_000,
        }
    }
}

/// All generated records: one table per component of examples/pipeline/components.mlc.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub config: DemoConfig,
    pub tables: Vec<Table>,
}

impl Dataset {
    pub fn table(&self, component: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.component == component)
    }
    pub fn total_rows(&self) -> usize {
        self.tables.iter().map(Table::rows).sum()
    }
}

pub const COUNTRIES: [&str; 5] = ["US", "DE", "MX", "BR", "FR"];
const COUNTRY_WEIGHTS: [f64; 5] = [40.0, 20.0, 15.0, 10.0, 15.0];
/// Fault `country_mix`: a campaign in Brazil on day 0 nearly quadruples its share.
const CAMPAIGN_WEIGHTS: [f64; 5] = [28.0, 14.0, 10.5, 37.0, 10.5];
pub const DEVICES: [&str; 3] = ["ios", "android", "web"];
const DEVICE_WEIGHTS: [f64; 3] = [35.0, 35.0, 30.0];
pub const DEFAULT_RATE: f64 = 0.06;
pub const JOBS: [&str; 3] = ["offline_rescore", "training_export", "feature_backfill"];
/// Customers whose features the feature pipeline snapshots every hour.
const FEATURE_CUSTOMERS: u32 = 40;

/// One request as the generator sees it, before it is split into components.
struct Request {
    time: i64,
    id: String,
    label: bool,
    score: f64,
    v2: bool,
}

struct InferenceColumns {
    request_id: Vec<Option<String>>,
    ts: Vec<i64>,
    customer_id: Vec<Option<String>>,
    age: Vec<Option<i64>>,
    income: Vec<Option<f64>>,
    tenure_days: Vec<Option<i64>>,
    country: Vec<Option<String>>,
    device: Vec<Option<String>>,
    latency_ms: Vec<Option<f64>>,
    score: Vec<Option<f64>>,
    prediction: Vec<Option<i64>>,
    model_version: Vec<Option<String>>,
}

/// Rounds to 6 decimals, so exported files stay readable and round-trip exactly.
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Generates every component's records for `config`.
pub fn generate(config: &DemoConfig) -> Dataset {
    let mut root = Rng::new(config.seed);
    let mut req_rng = root.fork(1);
    let mut label_rng = root.fork(2);
    let mut offline_rng = root.fork(3);
    let mut train_rng = root.fork(4);
    let mut job_rng = root.fork(5);
    let mut feat_rng = root.fork(6);

    let t = config.at_us;
    let days = i64::from(config.days.max(MIN_DAYS));
    let start = t - days * DAY;

    let n = (days as usize) * config.requests_per_day as usize;
    let mut inf = InferenceColumns {
        request_id: Vec::with_capacity(n),
        ts: Vec::with_capacity(n),
        customer_id: Vec::with_capacity(n),
        age: Vec::with_capacity(n),
        income: Vec::with_capacity(n),
        tenure_days: Vec::with_capacity(n),
        country: Vec::with_capacity(n),
        device: Vec::with_capacity(n),
        latency_ms: Vec::with_capacity(n),
        score: Vec::with_capacity(n),
        prediction: Vec::with_capacity(n),
        model_version: Vec::with_capacity(n),
    };
    let mut requests: Vec<Request> = Vec::with_capacity(n);
    let mut seq = 0u64;
    for d in (0..days).rev() {
        let day_start = t - (d + 1) * DAY;
        let mut times: Vec<i64> = (0..config.requests_per_day)
            .map(|_| day_start + req_rng.below(DAY as u64) as i64)
            .collect();
        times.sort_unstable();
        for time in times {
            seq += 1;
            let r = request(&mut req_rng, t, time, seq, &mut inf);
            requests.push(r);
        }
    }

    let feedback = feedback(&mut label_rng, t, &requests);
    let (offline, jobs) = nightly_jobs(&mut offline_rng, &mut job_rng, t, start, &requests);
    let training = training(&mut train_rng, t, days);
    let features = features(&mut feat_rng, t, start);

    let inference = Table {
        component: "inference",
        key: "request_id",
        time: "ts",
        columns: vec![
            Column {
                name: "request_id",
                data: ColumnData::Str(inf.request_id),
            },
            Column {
                name: "ts",
                data: ColumnData::Timestamp(inf.ts),
            },
            Column {
                name: "customer_id",
                data: ColumnData::Str(inf.customer_id),
            },
            Column {
                name: "age",
                data: ColumnData::Int(inf.age),
            },
            Column {
                name: "income",
                data: ColumnData::Float(inf.income),
            },
            Column {
                name: "tenure_days",
                data: ColumnData::Int(inf.tenure_days),
            },
            Column {
                name: "country",
                data: ColumnData::Str(inf.country),
            },
            Column {
                name: "device",
                data: ColumnData::Str(inf.device),
            },
            Column {
                name: "latency_ms",
                data: ColumnData::Float(inf.latency_ms),
            },
            Column {
                name: "score",
                data: ColumnData::Float(inf.score),
            },
            Column {
                name: "prediction",
                data: ColumnData::Int(inf.prediction),
            },
            Column {
                name: "model_version",
                data: ColumnData::Str(inf.model_version),
            },
        ],
    };
    Dataset {
        config: config.clone(),
        tables: vec![inference, feedback, offline, training, jobs, features],
    }
}

fn request(rng: &mut Rng, t: i64, time: i64, seq: u64, out: &mut InferenceColumns) -> Request {
    let day0 = time >= t - DAY;
    let country = rng.weighted(if day0 {
        &CAMPAIGN_WEIGHTS
    } else {
        &COUNTRY_WEIGHTS
    });
    let device = rng.weighted(&DEVICE_WEIGHTS);
    let label = rng.chance(DEFAULT_RATE);
    // Fault `recall_mx`: for the last 20 days the model misses most defaults in Mexico
    // (a new fraud pattern it never saw), pushing their scores down.
    let mx_degraded = COUNTRIES[country] == "MX" && time >= t - 20 * DAY;
    let score = if label {
        if mx_degraded {
            rng.normal(0.42, 0.15)
        } else {
            rng.normal(0.72, 0.12)
        }
    } else {
        rng.normal(0.2, 0.12)
    }
    .clamp(0.0, 1.0);
    let score = r6(score);
    // A canary of model v2 takes 30% of traffic for the last 12 days.
    let v2 = time >= t - 12 * DAY && rng.chance(0.3);

    let mut age = rng.normal(41.0, 12.0).clamp(18.0, 95.0).round() as i64;
    // Fault `negative_age`: Android app 5.1, released 2 days ago, sends -1 for a
    // missing age in 5% of requests.
    if DEVICES[device] == "android" && time >= t - 2 * DAY && rng.chance(0.05) {
        age = -1;
    }
    let mut income = Some(r2(rng.lognormal(48_000.0, 0.5)));
    // Fault `income_drift`: on day 0 the upstream service reports income in another
    // currency unit, 1.6 times larger.
    if day0 {
        income = income.map(|x| r2(x * 1.6));
    }
    // Fault `income_nulls`: the German income partner API fails for 30% of day 0's
    // requests; elsewhere 0.5% of incomes are missing, as usual.
    let null_p = if day0 && COUNTRIES[country] == "DE" {
        0.3
    } else {
        0.005
    };
    if rng.chance(null_p) {
        income = None;
    }
    let tenure = rng.exponential(700.0).floor() as i64;
    let mut latency = rng.lognormal(120.0, 0.35);
    if DEVICES[device] == "web" {
        latency *= 0.8;
    }
    // Fault `mobile_latency`: a new Android SDK on day 0 triples latency.
    if day0 && DEVICES[device] == "android" {
        latency *= 3.0;
    }

    let id = format!("r{seq:07}");
    out.request_id.push(Some(id.clone()));
    out.ts.push(time);
    out.customer_id
        .push(Some(format!("c{}", rng.below(20_000))));
    out.age.push(Some(age));
    out.income.push(income);
    out.tenure_days.push(Some(tenure));
    out.country.push(Some(COUNTRIES[country].to_string()));
    out.device.push(Some(DEVICES[device].to_string()));
    out.latency_ms.push(Some(r2(latency)));
    out.score.push(Some(score));
    out.prediction.push(Some(i64::from(score >= 0.5)));
    out.model_version
        .push(Some(if v2 { "v2" } else { "v1" }.to_string()));
    Request {
        time,
        id,
        label,
        score,
        v2,
    }
}

/// Labels arrive 1 hour to 5 days after the request, for 98% of requests; only those
/// that have arrived by `T` exist.
fn feedback(rng: &mut Rng, t: i64, requests: &[Request]) -> Table {
    let mut rows: Vec<(i64, &str, bool)> = Vec::with_capacity(requests.len());
    for r in requests {
        if !rng.chance(0.98) {
            continue;
        }
        let arrives = r.time + rng.range(HOUR as f64, (5 * DAY) as f64) as i64;
        if arrives < t {
            rows.push((arrives, &r.id, r.label));
        }
    }
    rows.sort_by_key(|(time, _, _)| *time);
    Table {
        component: "feedback",
        key: "request_id",
        time: "ts",
        columns: vec![
            Column {
                name: "request_id",
                data: ColumnData::Str(rows.iter().map(|r| Some(r.1.to_string())).collect()),
            },
            Column {
                name: "ts",
                data: ColumnData::Timestamp(rows.iter().map(|r| r.0).collect()),
            },
            Column {
                name: "label",
                data: ColumnData::Int(rows.iter().map(|r| Some(i64::from(r.2))).collect()),
            },
        ],
    }
}

/// Each night at 01:00 after a day ends (relative to `T`'s time of day), the batch job
/// re-scores that day's requests; then the training export and the feature backfill run.
/// Every run is logged in `batch_jobs`.
fn nightly_jobs(
    offline_rng: &mut Rng,
    job_rng: &mut Rng,
    t: i64,
    start: i64,
    requests: &[Request],
) -> (Table, Table) {
    let mut off_id = Vec::new();
    let mut off_ts = Vec::new();
    let mut off_score = Vec::new();
    let mut off_run = Vec::new();
    let (mut run_id, mut run_ts, mut job, mut status, mut written, mut duration) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );

    let mut day_start = start;
    let mut next = 0usize;
    while day_start + DAY + HOUR < t {
        let day_end = day_start + DAY;
        let run_name = super::data::rfc3339(day_start)
            .chars()
            .take(10)
            .collect::<String>();
        let rescore_at = day_end + HOUR;
        let mut count = 0i64;
        while next < requests.len() && requests[next].time < day_end {
            let r = &requests[next];
            next += 1;
            if r.time < day_start {
                continue;
            }
            // Fault `offline_mismatch`: the job loads a stale artifact for model v2, so
            // its scores drift from the online ones; v1 reproduces exactly.
            let offline = if r.v2 {
                let off = offline_rng.range(0.03, 0.15);
                r6(if r.score + off <= 1.0 {
                    r.score + off
                } else {
                    r.score - off
                })
            } else {
                r.score
            };
            off_id.push(Some(r.id.clone()));
            off_ts.push(rescore_at);
            off_score.push(Some(offline));
            off_run.push(Some(run_name.clone()));
            count += 1;
        }
        let runs = [
            (JOBS[0], rescore_at + 5 * 60 * SECOND, count),
            (
                JOBS[1],
                day_end + 2 * HOUR + 30 * 60 * SECOND,
                2_500 + job_rng.below(1_000) as i64,
            ),
            (JOBS[2], day_end + 3 * HOUR, i64::from(FEATURE_CUSTOMERS)),
        ];
        for (name, at, rows) in runs {
            if at >= t {
                continue;
            }
            // Fault `failed_job`: last night's training export failed.
            let failed = name == "training_export" && at >= t - DAY;
            run_id.push(Some(format!("{name}-{run_name}")));
            run_ts.push(at);
            job.push(Some(name.to_string()));
            status.push(Some(
                if failed { "failed" } else { "succeeded" }.to_string(),
            ));
            written.push(Some(if failed { 0 } else { rows }));
            duration.push(Some(r2(if failed {
                job_rng.range(5.0, 20.0)
            } else {
                job_rng.range(120.0, 600.0)
            })));
        }
        day_start = day_end;
    }
    let offline = Table {
        component: "offline_scores",
        key: "request_id",
        time: "ts",
        columns: vec![
            Column {
                name: "request_id",
                data: ColumnData::Str(off_id),
            },
            Column {
                name: "ts",
                data: ColumnData::Timestamp(off_ts),
            },
            Column {
                name: "offline_score",
                data: ColumnData::Float(off_score),
            },
            Column {
                name: "job_run",
                data: ColumnData::Str(off_run),
            },
        ],
    };
    let jobs = Table {
        component: "batch_jobs",
        key: "run_id",
        time: "ts",
        columns: vec![
            Column {
                name: "run_id",
                data: ColumnData::Str(run_id),
            },
            Column {
                name: "ts",
                data: ColumnData::Timestamp(run_ts),
            },
            Column {
                name: "job",
                data: ColumnData::Str(job),
            },
            Column {
                name: "status",
                data: ColumnData::Str(status),
            },
            Column {
                name: "rows_written",
                data: ColumnData::Int(written),
            },
            Column {
                name: "duration_s",
                data: ColumnData::Float(duration),
            },
        ],
    };
    (offline, jobs)
}

/// The training set, exported before the serving history starts. Same populations as
/// serving, except for fault `tenure_skew`: the export computed tenure in months.
fn training(rng: &mut Rng, t: i64, days: i64) -> Table {
    let n = 20_000usize;
    let from = t - (days + 30) * DAY;
    let span = 20 * DAY;
    let mut times: Vec<i64> = (0..n)
        .map(|_| from + rng.below(span as u64) as i64)
        .collect();
    times.sort_unstable();
    let mut cols = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (i, time) in times.into_iter().enumerate() {
        cols.0.push(Some(format!("t{i:06}")));
        cols.1.push(time);
        cols.2
            .push(Some(rng.normal(41.0, 12.0).clamp(18.0, 95.0).round() as i64));
        cols.3.push(Some(r2(rng.lognormal(48_000.0, 0.5))));
        cols.4
            .push(Some((rng.exponential(700.0) / 30.0).floor() as i64));
        cols.5
            .push(Some(COUNTRIES[rng.weighted(&COUNTRY_WEIGHTS)].to_string()));
        let device = DEVICES[rng.weighted(&DEVICE_WEIGHTS)].to_string();
        cols.6
            .push((Some(device), Some(i64::from(rng.chance(DEFAULT_RATE)))));
    }
    let (device, label): (Vec<_>, Vec<_>) = cols.6.into_iter().unzip();
    Table {
        component: "training",
        key: "row_id",
        time: "ts",
        columns: vec![
            Column {
                name: "row_id",
                data: ColumnData::Str(cols.0),
            },
            Column {
                name: "ts",
                data: ColumnData::Timestamp(cols.1),
            },
            Column {
                name: "age",
                data: ColumnData::Int(cols.2),
            },
            Column {
                name: "income",
                data: ColumnData::Float(cols.3),
            },
            Column {
                name: "tenure_days",
                data: ColumnData::Int(cols.4),
            },
            Column {
                name: "country",
                data: ColumnData::Str(cols.5),
            },
            Column {
                name: "device",
                data: ColumnData::Str(device),
            },
            Column {
                name: "label",
                data: ColumnData::Int(label),
            },
        ],
    }
}

/// Hourly snapshots of per-customer aggregates. Fault `stale_features`: the pipeline
/// stopped 30 hours before `T`.
fn features(rng: &mut Rng, t: i64, start: i64) -> Table {
    let stop = t - 30 * HOUR;
    let (mut id, mut ts, mut count, mut amount) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut hour = start;
    while hour < stop {
        for c in 0..FEATURE_CUSTOMERS {
            id.push(Some(format!("c{c}")));
            ts.push(hour + (5 * 60 + i64::from(c)) * SECOND);
            count.push(Some(rng.exponential(4.0).floor() as i64));
            amount.push(Some(r2(rng.lognormal(35.0, 0.6))));
        }
        hour += HOUR;
    }
    Table {
        component: "features",
        key: "customer_id",
        time: "ts",
        columns: vec![
            Column {
                name: "customer_id",
                data: ColumnData::Str(id),
            },
            Column {
                name: "ts",
                data: ColumnData::Timestamp(ts),
            },
            Column {
                name: "txn_count_7d",
                data: ColumnData::Int(count),
            },
            Column {
                name: "avg_amount_30d",
                data: ColumnData::Float(amount),
            },
        ],
    }
}
