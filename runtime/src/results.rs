//! Check results as users see them: the JSON object of docs/evaluation.md#results (field names and
//! order are a contract), the human message, and the table and JUnit renderings of
//! `mlc check`.

use std::fmt::Write as _;

use mlc_engine::eval::agg::{format_number, group_thousands};
use mlc_engine::eval::check::rows_text;
use mlc_engine::eval::{ExpectOutcome, Outcome, Status};
use mlc_engine::plan::CheckPlan;
use mlc_engine::value::Value;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JSON object whose members keep the order they were written in (serde_json's own map
/// sorts them, and result order is part of the contract).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ordered(pub Vec<(String, serde_json::Value)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Ordered {
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// `[start, end)` of the current rows; `start` is null without `window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowJson {
    pub start: Option<String>,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectJson {
    pub expr: String,
    pub status: String,
    pub values: Ordered,
    /// Why the expect is `insufficient` or `error` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One result, exactly as docs/evaluation.md#results describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: String,
    pub file: String,
    pub status: String,
    pub severity: String,
    pub at: String,
    pub window: WindowJson,
    pub slice: Ordered,
    pub column: Option<String>,
    pub rows: u64,
    pub baseline_rows: Option<u64>,
    /// For joined sources; null otherwise.
    pub coverage: Option<f64>,
    pub expects: Vec<ExpectJson>,
    pub message: String,
    pub rules_version: String,
}

/// Where and when a check was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub at_us: i64,
    pub window_start_us: Option<i64>,
    pub window_end_us: i64,
}

/// RFC 3339 in UTC, e.g. `2026-03-01T00:00:00Z`.
pub fn time_text(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us).map_or_else(|_| format!("{us}us"), |t| t.to_string())
}

/// A value as result JSON shows it: numbers as numbers (durations in seconds), times as
/// RFC 3339 text.
pub(crate) fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) | Value::Duration(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Str(s) => s.clone().into(),
        Value::Timestamp(us) => time_text(*us).into(),
        Value::Struct(fields) => serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
    }
}

impl CheckResult {
    /// Builds the result of one evaluated (slice, column).
    pub(crate) fn from_outcome(
        plan: &CheckPlan,
        outcome: &Outcome,
        timing: Timing,
        rules_version: &str,
    ) -> CheckResult {
        CheckResult {
            check: plan.name.clone(),
            file: plan.file.clone(),
            status: outcome.status.as_str().to_string(),
            severity: plan.severity.keyword().to_string(),
            at: time_text(timing.at_us),
            window: WindowJson {
                start: timing.window_start_us.map(time_text),
                end: time_text(timing.window_end_us),
            },
            slice: Ordered(
                outcome
                    .slice
                    .iter()
                    .map(|(k, v)| (k.clone(), value_json(v)))
                    .collect(),
            ),
            column: outcome.column.clone(),
            rows: outcome.rows,
            baseline_rows: outcome.baseline_rows,
            coverage: outcome.coverage,
            expects: outcome.expects.iter().map(expect_json).collect(),
            message: message(outcome),
            rules_version: rules_version.to_string(),
        }
    }

    /// A result for a check that could not be evaluated at all (its rows could not be read,
    /// its `where` failed): every expect is `error` with the reason.
    pub fn error(
        plan: &CheckPlan,
        reason: &str,
        timing: Timing,
        rules_version: &str,
    ) -> CheckResult {
        let outcome = Outcome {
            slice: Vec::new(),
            column: None,
            status: Status::Error,
            rows: 0,
            baseline_rows: None,
            coverage: None,
            expects: plan
                .expects
                .iter()
                .map(|e| ExpectOutcome {
                    text: e.text.clone(),
                    status: Status::Error,
                    values: Vec::new(),
                    explanation: reason.to_string(),
                })
                .collect(),
        };
        let mut r = CheckResult::from_outcome(plan, &outcome, timing, rules_version);
        r.message = format!("error: {reason}");
        r
    }

    pub fn status(&self) -> Status {
        match self.status.as_str() {
            "pass" => Status::Pass,
            "fail" => Status::Fail,
            "insufficient" => Status::Insufficient,
            _ => Status::Error,
        }
    }

    /// `fail` or `error` at severity warning or critical: what makes `mlc check` exit 1.
    pub fn is_alarming(&self) -> bool {
        matches!(self.status(), Status::Fail | Status::Error) && self.severity != "info"
    }

    /// `country=DE`, `column=age`: how a result is named in tables and test reports.
    pub(crate) fn slice_text(&self) -> String {
        let mut parts: Vec<String> = self
            .slice
            .0
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        if let Some(c) = &self.column {
            parts.push(format!("column={c}"));
        }
        parts.join(" ")
    }

    /// One line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn expect_json(e: &ExpectOutcome) -> ExpectJson {
    ExpectJson {
        expr: e.text.clone(),
        status: e.status.as_str().to_string(),
        values: Ordered(
            e.values
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
        reason: matches!(e.status, Status::Insufficient | Status::Error)
            .then(|| e.explanation.clone()),
    }
}

/// What a person reads first: the expects that did not pass (or all, when all pass), then
/// the rows they were judged on and, for joined sources, how many rows found their match.
/// E.g. `recall(prediction, label) = 0.83, expected >= 0.9 over 5,120 rows, 91% labelled`.
pub fn message(o: &Outcome) -> String {
    let worst: Vec<&ExpectOutcome> = o.expects.iter().filter(|e| e.status == o.status).collect();
    let shown = if worst.is_empty() {
        o.expects.iter().collect()
    } else {
        worst
    };
    let mut texts: Vec<String> = Vec::new();
    for e in shown {
        if !texts.contains(&e.explanation) {
            texts.push(e.explanation.clone());
        }
    }
    let mut msg = texts.join("; ");
    // A `min_rows` verdict already says how many rows there were.
    if !msg.starts_with("only ") {
        let _ = write!(msg, " over {}", rows_text(o.rows));
        if let Some(b) = o.baseline_rows {
            let _ = write!(msg, " (baseline {})", rows_text(b));
        }
    }
    if let Some(c) = o.coverage {
        let _ = write!(
            msg,
            ", {}% labelled",
            format_number((c * 1000.0).round() / 10.0)
        );
    }
    msg
}

/// The table `mlc check` prints for people: one line per result, the message below
/// results that did not pass.
pub fn render_table(results: &[CheckResult]) -> String {
    let mut out = String::new();
    let name_w = results
        .iter()
        .map(|r| r.check.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let slice_w = results
        .iter()
        .map(|r| r.slice_text().len())
        .max()
        .unwrap_or(5)
        .clamp(5, 40);
    let _ = writeln!(
        out,
        "{:<12} {:<name_w$} {:<slice_w$} {:>9}  MESSAGE",
        "STATUS", "CHECK", "SLICE", "ROWS"
    );
    for r in results {
        let status = format!(
            "{} {}",
            r.status.to_uppercase(),
            if r.severity == "critical" && r.is_alarming() {
                "!"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "{:<12} {:<name_w$} {:<slice_w$} {:>9}  {}",
            status.trim_end(),
            r.check,
            r.slice_text(),
            group_thousands(r.rows as i64),
            r.message
        );
    }
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        out,
        "\n{} results: {} pass, {} fail, {} insufficient, {} error",
        results.len(),
        count("pass"),
        count("fail"),
        count("insufficient"),
        count("error")
    );
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// JUnit XML for CI: one test suite per check, one test case per result; `fail` is a
/// failure, `error` an error, `insufficient` a skipped case.
pub fn render_junit(results: &[CheckResult]) -> String {
    let mut suites: Vec<(&str, Vec<&CheckResult>)> = Vec::new();
    for r in results {
        match suites.iter_mut().find(|(n, _)| *n == r.check) {
            Some((_, v)) => v.push(r),
            None => suites.push((&r.check, vec![r])),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total = |s: &str| results.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        out,
        "<testsuites name=\"mlc check\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        results.len(),
        total("fail"),
        total("error"),
        total("insufficient")
    );
    for (name, rs) in suites {
        let count = |s: &str| rs.iter().filter(|r| r.status == s).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            xml_escape(name),
            rs.len(),
            count("fail"),
            count("error"),
            count("insufficient")
        );
        for r in rs {
            let case = if r.slice_text().is_empty() {
                r.check.clone()
            } else {
                format!("{} [{}]", r.check, r.slice_text())
            };
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\"",
                xml_escape(&case),
                xml_escape(&r.file)
            );
            let body = match r.status.as_str() {
                "fail" => Some(format!(
                    "<failure message=\"{}\" type=\"{}\"/>",
                    xml_escape(&r.message),
                    r.severity
                )),
                "error" => Some(format!("<error message=\"{}\"/>", xml_escape(&r.message))),
                "insufficient" => {
                    Some(format!("<skipped message=\"{}\"/>", xml_escape(&r.message)))
                }
                _ => None,
            };
            match body {
                Some(b) => {
                    let _ = writeln!(out, ">\n      {b}\n    </testcase>");
                }
                None => {
                    let _ = writeln!(out, "/>");
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The row stored for a result (`mlc backfill`, the service).
pub fn stored(result: &CheckResult, at_us: i64) -> mlc_store::StoredResult {
    mlc_store::StoredResult {
        check: result.check.clone(),
        at_us,
        status: result.status.clone(),
        rules_version: result.rules_version.clone(),
        slice: serde_json::to_string(&result.slice).unwrap_or_else(|_| "{}".into()),
        column: result.column.clone(),
        json: result.to_json_line(),
    }
}

/// The summary `mlc backfill` prints: per check and slice, how the evaluations came out
/// and when it first and last failed, i.e. when it would have fired.
pub fn render_backfill(results: &[CheckResult], evaluations: usize) -> String {
    struct Row<'a> {
        check: &'a str,
        slice: String,
        counts: [usize; 4],
        first_fail: Option<&'a str>,
        last_fail: Option<&'a str>,
    }
    let mut rows: Vec<Row<'_>> = Vec::new();
    for r in results {
        let slice = r.slice_text();
        let idx = match rows
            .iter()
            .position(|x| x.check == r.check && x.slice == slice)
        {
            Some(i) => i,
            None => {
                rows.push(Row {
                    check: &r.check,
                    slice,
                    counts: [0; 4],
                    first_fail: None,
                    last_fail: None,
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[idx];
        let i = match r.status.as_str() {
            "pass" => 0,
            "fail" => 1,
            "insufficient" => 2,
            _ => 3,
        };
        row.counts[i] += 1;
        if i == 1 {
            row.first_fail.get_or_insert(&r.at);
            row.last_fail = Some(&r.at);
        }
    }
    let name_w = rows.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
    let slice_w = rows
        .iter()
        .map(|r| r.slice.len())
        .max()
        .unwrap_or(5)
        .clamp(5, 40);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<name_w$} {:<slice_w$} {:>6} {:>6} {:>6} {:>6}  {:<20} {:<20}",
        "CHECK", "SLICE", "PASS", "FAIL", "INSUFF", "ERROR", "FIRST FAIL", "LAST FAIL"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<name_w$} {:<slice_w$} {:>6} {:>6} {:>6} {:>6}  {:<20} {:<20}",
            r.check,
            r.slice,
            r.counts[0],
            r.counts[1],
            r.counts[2],
            r.counts[3],
            r.first_fail.unwrap_or("-"),
            r.last_fail.unwrap_or("-")
        );
    }
    let _ = writeln!(
        out,
        "\n{evaluations} evaluation times, {} results",
        results.len()
    );
    out
}
