//! Compares evaluation results (the result JSON of docs/evaluation.md#results) with what the demo
//! expects of them ([`super::faults`]), and prints the summary `mlc demo` ends with.

use std::io::{self, Write};

use serde_json::Value as Json;

use super::faults::{Expectation, FAULTS, HEALTHY, Quadrant};

/// How one expectation turned out.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub expectation: Expectation,
    /// The status of the matching result, `None` when no result matched.
    pub actual: Option<String>,
    /// The result's message, when one matched.
    pub message: Option<String>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.actual.as_deref() == Some(self.expectation.status)
    }
}

/// Whether `result` is the one `e` is about: same check, slice and `each` column.
pub fn matches(e: &Expectation, result: &Json) -> bool {
    if result.get("check").and_then(Json::as_str) != Some(e.check) {
        return false;
    }
    let slice_ok = match (e.slice, result.get("slice")) {
        (None, None) => true,
        (None, Some(s)) => s.as_object().is_none_or(|o| o.is_empty()),
        (Some((k, v)), Some(s)) => s
            .as_object()
            .is_some_and(|o| o.len() == 1 && o.get(k).and_then(Json::as_str) == Some(v)),
        (Some(_), None) => false,
    };
    let column = result.get("column").and_then(Json::as_str);
    slice_ok && column == e.column
}

/// One verdict per expectation, faults first.
pub fn judge(results: &[Json]) -> Vec<Verdict> {
    super::faults::expectations()
        .map(|e| {
            let found = results.iter().find(|r| matches(e, r));
            Verdict {
                expectation: *e,
                actual: found
                    .and_then(|r| r.get("status"))
                    .and_then(Json::as_str)
                    .map(str::to_string),
                message: found
                    .and_then(|r| r.get("message"))
                    .and_then(Json::as_str)
                    .map(str::to_string),
            }
        })
        .collect()
}

/// `check {slice} [column]` of a result, as the summary shows it.
pub fn result_label(result: &Json) -> String {
    let mut label = result
        .get("check")
        .and_then(Json::as_str)
        .unwrap_or("?")
        .to_string();
    if let Some(slice) = result
        .get("slice")
        .and_then(Json::as_object)
        .filter(|o| !o.is_empty())
    {
        let parts: Vec<String> = slice.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        label.push_str(&format!(" {{{}}}", parts.join(", ")));
    }
    if let Some(c) = result.get("column").and_then(Json::as_str) {
        label.push_str(&format!(" [{c}]"));
    }
    label
}

fn status(result: &Json) -> &str {
    result.get("status").and_then(Json::as_str).unwrap_or("?")
}

/// Prints the results grouped by status (failures with their messages), then which
/// injected fault each failure is, then the healthy results that did not pass, if any.
/// Returns whether every expectation held.
pub fn print_summary(
    out: &mut dyn Write,
    results: &[Json],
    verdicts: &[Verdict],
) -> io::Result<bool> {
    let count = |s: &str| results.iter().filter(|r| status(r) == s).count();
    writeln!(
        out,
        "{} results: {} failed, {} passed, {} insufficient, {} error\n",
        results.len(),
        count("fail"),
        count("pass"),
        count("insufficient"),
        count("error"),
    )?;
    for wanted in ["fail", "error", "insufficient"] {
        let these: Vec<&Json> = results.iter().filter(|r| status(r) == wanted).collect();
        if these.is_empty() {
            continue;
        }
        writeln!(
            out,
            "{}:",
            match wanted {
                "fail" => "FAILED",
                "error" => "ERRORS",
                _ => "INSUFFICIENT DATA",
            }
        )?;
        for r in these {
            let severity = r.get("severity").and_then(Json::as_str).unwrap_or("");
            writeln!(out, "  {:<44} {severity}", result_label(r))?;
            if let Some(m) = r.get("message").and_then(Json::as_str) {
                writeln!(out, "      {m}")?;
            }
        }
        writeln!(out)?;
    }

    writeln!(out, "Injected faults, and the result that caught each:")?;
    for quadrant in [
        Quadrant::StatelessSingle,
        Quadrant::StatelessCross,
        Quadrant::StatefulSingle,
        Quadrant::StatefulCross,
    ] {
        writeln!(out, "  {quadrant}")?;
        for (fault, verdict) in FAULTS
            .iter()
            .zip(verdicts)
            .filter(|(f, _)| f.quadrant == quadrant)
        {
            let mark = if verdict.holds() {
                "caught "
            } else {
                "MISSED "
            };
            writeln!(out, "    {mark} {:<17} {}", fault.id, fault.story)?;
            writeln!(
                out,
                "             -> {} is {}",
                verdict.expectation,
                verdict.actual.as_deref().unwrap_or("missing")
            )?;
        }
    }
    let caught = verdicts[..FAULTS.len()]
        .iter()
        .filter(|v| v.holds())
        .count();
    let healthy = &verdicts[FAULTS.len()..];
    let healthy_ok = healthy.iter().filter(|v| v.holds()).count();
    writeln!(
        out,
        "\n{caught} of {} faults caught; {healthy_ok} of {} healthy results passed.",
        FAULTS.len(),
        HEALTHY.len()
    )?;
    for v in healthy.iter().filter(|v| !v.holds()) {
        writeln!(
            out,
            "  unexpected: {} is {} (expected {})",
            v.expectation,
            v.actual.as_deref().unwrap_or("missing"),
            v.expectation.status
        )?;
    }
    Ok(caught == FAULTS.len() && healthy_ok == healthy.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matching_uses_check_slice_and_column() {
        let e = Expectation {
            check: "c",
            slice: Some(("country", "DE")),
            column: None,
            status: "fail",
        };
        assert!(matches(
            &e,
            &json!({"check": "c", "slice": {"country": "DE"}, "column": null})
        ));
        assert!(!matches(
            &e,
            &json!({"check": "c", "slice": {"country": "US"}, "column": null})
        ));
        assert!(!matches(
            &e,
            &json!({"check": "d", "slice": {"country": "DE"}, "column": null})
        ));
        let e = Expectation {
            check: "c",
            slice: None,
            column: Some("income"),
            status: "fail",
        };
        assert!(matches(
            &e,
            &json!({"check": "c", "slice": {}, "column": "income"})
        ));
        assert!(!matches(
            &e,
            &json!({"check": "c", "slice": {}, "column": "age"})
        ));
        assert!(!matches(
            &e,
            &json!({"check": "c", "slice": {"a": "b"}, "column": "income"})
        ));
    }

    /// Results that satisfy every expectation, as the executor would produce them.
    fn perfect() -> Vec<Json> {
        super::super::faults::expectations()
            .map(|e| {
                let slice = match e.slice {
                    Some((k, v)) => json!({ k: v }),
                    None => json!({}),
                };
                json!({"check": e.check, "slice": slice, "column": e.column,
                       "status": e.status, "severity": "warning", "message": "m"})
            })
            .collect()
    }

    #[test]
    fn all_expectations_met_is_reported_as_such() {
        let results = perfect();
        let verdicts = judge(&results);
        assert!(verdicts.iter().all(Verdict::holds));
        let mut out = Vec::new();
        assert!(print_summary(&mut out, &results, &verdicts).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("10 of 10 faults caught"), "{text}");
        assert!(!text.contains("MISSED"));
    }

    #[test]
    fn a_missed_fault_and_a_false_alarm_are_reported() {
        let mut results = perfect();
        results[0]["status"] = json!("pass"); // the first fault goes unnoticed
        let last = results.len() - 1;
        results[last]["status"] = json!("fail"); // and a healthy result fails
        let verdicts = judge(&results);
        let mut out = Vec::new();
        assert!(!print_summary(&mut out, &results, &verdicts).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("MISSED"), "{text}");
        assert!(text.contains("9 of 10 faults caught"), "{text}");
        assert!(
            text.contains("unexpected: train_serve_skew [age] is fail"),
            "{text}"
        );
    }
}
