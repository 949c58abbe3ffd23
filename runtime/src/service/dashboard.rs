//! `GET /`: a single self-contained HTML page with every check's status per slice and an
//! inline SVG plot of each slice's metric history (from the stored results, so the history
//! survives restarts). No scripts, no external assets.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value as Json;

use super::backend::ResultsQuery;
use super::metrics::{column_label, slice_label};
use super::{App, rfc3339};

/// Points plotted per slice.
const HISTORY: u64 = 500;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn color(status: &str) -> &'static str {
    match status {
        "pass" => "#2e7d32",
        "fail" => "#c62828",
        "insufficient" => "#9e9e9e",
        _ => "#ef6c00",
    }
}

/// The first numeric value of a result's first expect: the metric the plot follows.
fn plotted_value(result: &Json) -> Option<(String, f64)> {
    let expects = result.get("expects")?.as_array()?;
    expects.iter().find_map(|e| {
        let values = e.get("values")?.as_object()?;
        values
            .iter()
            .find_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
    })
}

fn at_us(result: &Json) -> Option<i64> {
    result
        .get("at")
        .and_then(Json::as_str)?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_microsecond())
}

/// A small line plot of `(time, value, status)` points, oldest first.
fn svg(points: &[(i64, f64, String)]) -> String {
    let (w, h, pad) = (360.0, 80.0, 4.0);
    if points.is_empty() {
        return "<em>no values yet</em>".into();
    }
    let (t0, t1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if (hi - lo).abs() < 1e-12 {
        lo -= 1.0;
        hi += 1.0;
    }
    let x = |t: i64| {
        if t1 > t0 {
            pad + (t as f64 - t0) / (t1 - t0) * (w - 2.0 * pad)
        } else {
            w / 2.0
        }
    };
    let y = |v: f64| h - pad - (v - lo) / (hi - lo) * (h - 2.0 * pad);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">\
         <rect width=\"{w}\" height=\"{h}\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
    );
    let path: Vec<String> = points
        .iter()
        .map(|(t, v, _)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"{}\"/>",
        path.join(" ")
    );
    for (t, v, status) in points {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{}\"><title>{} {} = {}</title></circle>",
            x(*t),
            y(*v),
            color(status),
            esc(&rfc3339(*t)),
            esc(status),
            v
        );
    }
    let _ = write!(
        out,
        "<text x=\"{pad}\" y=\"12\" font-size=\"10\" fill=\"#555\">{}</text>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"10\" fill=\"#555\">{}</text></svg>",
        fmt_num(hi),
        h - pad - 1.0,
        fmt_num(lo)
    );
    out
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

pub async fn render(app: &App) -> String {
    let rules = app.rules();
    let mut body = String::new();
    let version = rules
        .as_ref()
        .map(|r| r.version.clone())
        .unwrap_or_default();
    let reload = app.reload_status();
    let _ = write!(
        body,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mlc</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
         td,th{{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:middle}}\
         .s{{color:#fff;padding:2px 6px;border-radius:3px;font-size:90%}}pre{{background:#fee;padding:8px}}</style>\
         </head><body><h1>mlc</h1><p>rules <code>{}</code></p>",
        esc(&version)
    );
    if let Some(err) = &reload.error {
        let _ = write!(
            body,
            "<h2>Last reload refused ({})</h2><p>{}; the previous rules keep running.</p><pre>{}</pre>",
            esc(&reload.at),
            esc(&err.message),
            esc(&err.diagnostics.join("\n"))
        );
    }
    for check in rules.iter().flat_map(|r| r.checks.iter()) {
        let _ = write!(
            body,
            "<h2 id=\"{0}\">{0}</h2><p>{1} &middot; every {2}s &middot; severity {3}{4}</p>",
            esc(&check.name),
            esc(&check.file),
            check.every_secs,
            esc(&check.severity),
            check
                .description
                .as_deref()
                .map(|d| format!(" &middot; {}", esc(d)))
                .unwrap_or_default()
        );
        let history = app
            .backend()
            .query_results(ResultsQuery {
                check: Some(check.name.clone()),
                limit: HISTORY,
                ..Default::default()
            })
            .await;
        let history: Vec<Json> = match history {
            Ok(h) => h.into_iter().map(|d| d.value).collect(),
            Err(e) => {
                let _ = write!(body, "<p>history unavailable: {}</p>", esc(&e));
                continue;
            }
        };
        // Newest first from the store; group per (slice, column), plot oldest first.
        let mut series: BTreeMap<(String, String), Vec<&Json>> = BTreeMap::new();
        for r in &history {
            series
                .entry((slice_label(r.get("slice")), column_label(r.get("column"))))
                .or_default()
                .push(r);
        }
        if series.is_empty() {
            body.push_str("<p><em>not evaluated yet</em></p>");
            continue;
        }
        body.push_str(
            "<table><tr><th>slice</th><th>column</th><th>status</th><th>message</th><th>history</th></tr>",
        );
        for ((slice, column), rows) in &series {
            let latest = rows[0];
            let status = latest
                .get("status")
                .and_then(Json::as_str)
                .unwrap_or("error");
            let message = latest.get("message").and_then(Json::as_str).unwrap_or("");
            let mut points: Vec<(i64, f64, String)> = rows
                .iter()
                .filter_map(|r| {
                    let (_, v) = plotted_value(r)?;
                    let s = r
                        .get("status")
                        .and_then(Json::as_str)
                        .unwrap_or("error")
                        .to_string();
                    Some((at_us(r)?, v, s))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            let metric = plotted_value(latest).map(|(k, _)| k).unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td><span class=\"s\" style=\"background:{}\">{}</span></td>\
                 <td>{}</td><td><div>{}</div>{}</td></tr>",
                if slice.is_empty() {
                    "(all)".to_string()
                } else {
                    esc(slice)
                },
                esc(column),
                color(status),
                esc(status),
                esc(message),
                esc(&metric),
                svg(&points)
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</body></html>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_one_marker_per_point_and_escapes_text() {
        let s = svg(&[(0, 1.0, "pass".into()), (60, 0.5, "fail".into())]);
        assert_eq!(s.matches("<circle").count(), 2);
        assert!(s.contains("#c62828"));
        assert_eq!(esc("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
