//! What the demo injects and what the example checks must say about it: one entry per
//! fault (the check and slice that must fail) and the results that must stay healthy.
//! `mlc demo` prints this table against the actual results, and tests assert it.

use std::fmt;

/// The four kinds of post-deployment problems (docs/demo.md#the-pipeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quadrant {
    StatelessSingle,
    StatelessCross,
    StatefulSingle,
    StatefulCross,
}

impl fmt::Display for Quadrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quadrant::StatelessSingle => "stateless, single component",
            Quadrant::StatelessCross => "stateless, cross component",
            Quadrant::StatefulSingle => "stateful, single component",
            Quadrant::StatefulCross => "stateful, cross component",
        })
    }
}

/// One result of one check: the slice (a `group by` value) or the `each` column it is
/// about, if any, and the status it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub check: &'static str,
    /// `(column, value)` of a `group by` slice.
    pub slice: Option<(&'static str, &'static str)>,
    /// The column of an `each` fan-out.
    pub column: Option<&'static str>,
    /// `"pass"` or `"fail"`, as in result JSON.
    pub status: &'static str,
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.check)?;
        if let Some((k, v)) = self.slice {
            write!(f, " {{{k}: \"{v}\"}}")?;
        }
        if let Some(c) = self.column {
            write!(f, " [{c}]")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub id: &'static str,
    pub quadrant: Quadrant,
    /// What went wrong, as the on-call engineer would put it.
    pub story: &'static str,
    pub caught_by: Expectation,
}

const fn fails(
    check: &'static str,
    slice: Option<(&'static str, &'static str)>,
    column: Option<&'static str>,
) -> Expectation {
    Expectation {
        check,
        slice,
        column,
        status: "fail",
    }
}

const fn passes(
    check: &'static str,
    slice: Option<(&'static str, &'static str)>,
    column: Option<&'static str>,
) -> Expectation {
    Expectation {
        check,
        slice,
        column,
        status: "pass",
    }
}

/// Every injected fault, in the order the demo reports them.
pub const FAULTS: &[Fault] = &[
    Fault {
        id: "negative_age",
        quadrant: Quadrant::StatelessSingle,
        story: "Android app 5.1 (2 days ago) sends age -1 when the age is unknown",
        caught_by: fails("age_in_range", Some(("device", "android")), None),
    },
    Fault {
        id: "income_nulls",
        quadrant: Quadrant::StatelessSingle,
        story: "the German income partner API fails for 30% of today's requests",
        caught_by: fails("income_null_rate", Some(("country", "DE")), None),
    },
    Fault {
        id: "failed_job",
        quadrant: Quadrant::StatelessSingle,
        story: "last night's training export failed",
        caught_by: fails("batch_jobs_succeed", Some(("job", "training_export")), None),
    },
    Fault {
        id: "stale_features",
        quadrant: Quadrant::StatelessSingle,
        story: "the hourly feature pipeline stopped 30 hours ago",
        caught_by: fails("features_fresh", None, None),
    },
    Fault {
        id: "offline_mismatch",
        quadrant: Quadrant::StatelessCross,
        story: "the nightly re-scoring job loads a stale artifact for model v2",
        caught_by: fails(
            "online_matches_offline",
            Some(("model_version", "v2")),
            None,
        ),
    },
    Fault {
        id: "income_drift",
        quadrant: Quadrant::StatefulSingle,
        story: "upstream started reporting income in another unit today (x1.6)",
        caught_by: fails("feature_drift_wow", None, Some("income")),
    },
    Fault {
        id: "mobile_latency",
        quadrant: Quadrant::StatefulSingle,
        story: "a new Android SDK triples request latency today",
        caught_by: fails("mobile_latency_p90", None, None),
    },
    Fault {
        id: "country_mix",
        quadrant: Quadrant::StatefulSingle,
        story: "a marketing campaign in Brazil nearly quadruples its share of traffic today",
        caught_by: fails("country_mix_wow", None, None),
    },
    Fault {
        id: "recall_mx",
        quadrant: Quadrant::StatefulCross,
        story: "for 20 days the model misses most defaults in Mexico (labels arrive days late)",
        caught_by: fails("recall_slo", Some(("country", "MX")), None),
    },
    Fault {
        id: "tenure_skew",
        quadrant: Quadrant::StatefulCross,
        story: "the training export computed tenure in months, serving uses days",
        caught_by: fails("train_serve_skew", None, Some("tenure_days")),
    },
];

/// Results that must pass: the same checks on the slices and columns that are fine,
/// and the checks that watch healthy parts of the pipeline.
pub const HEALTHY: &[Expectation] = &[
    passes("age_in_range", Some(("device", "ios")), None),
    passes("age_in_range", Some(("device", "web")), None),
    passes("income_null_rate", Some(("country", "US")), None),
    passes("income_null_rate", Some(("country", "MX")), None),
    passes("income_null_rate", Some(("country", "BR")), None),
    passes("income_null_rate", Some(("country", "FR")), None),
    passes("request_ids_unique", None, None),
    passes("batch_jobs_succeed", Some(("job", "offline_rescore")), None),
    passes(
        "batch_jobs_succeed",
        Some(("job", "feature_backfill")),
        None,
    ),
    passes("inference_fresh", None, None),
    passes("feedback_fresh", None, None),
    passes(
        "online_matches_offline",
        Some(("model_version", "v1")),
        None,
    ),
    passes("label_coverage", None, None),
    passes("feature_drift_wow", None, Some("age")),
    passes("feature_drift_wow", None, Some("tenure_days")),
    passes("score_stability", None, None),
    passes("recall_slo", Some(("country", "US")), None),
    passes("recall_slo", Some(("country", "DE")), None),
    passes("recall_slo", Some(("country", "BR")), None),
    passes("recall_slo", Some(("country", "FR")), None),
    passes("precision_slo", Some(("model_version", "v1")), None),
    passes("precision_slo", Some(("model_version", "v2")), None),
    passes("train_serve_skew", None, Some("age")),
];

/// Every expectation: the faults' first, then the healthy ones.
pub fn expectations() -> impl Iterator<Item = &'static Expectation> {
    FAULTS.iter().map(|f| &f.caught_by).chain(HEALTHY.iter())
}
