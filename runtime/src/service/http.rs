//! The HTTP API (docs/operations.md#the-http-api) on axum: routes, bearer-token auth, JSON errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[cfg(test)]
use super::backend::Record;
use super::backend::{IngestError, ResultDoc, ResultsQuery};
use super::scheduler::now_us;
use super::{App, EvaluateError, rfc3339};

/// An error answered as `{"error": "..."}` with a status code.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    extra: Option<(&'static str, Json)>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            extra: None,
        }
    }
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    /// 503 before the first rules are loaded.
    fn no_rules() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no rules are loaded yet")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let (Some((k, v)), Json::Object(map)) = (self.extra, &mut body) {
            map.insert(k.to_string(), v);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_body_bytes;
    let protected = Router::new()
        .route("/", get(dashboard))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/ingest/{component}", post(ingest))
        .route("/v1/checks", get(checks))
        .route("/v1/results", get(results))
        .route("/v1/evaluate", post(evaluate))
        .route("/-/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(app.clone(), body_deadline))
        .with_state(app)
}

/// Gives each request's body `body_timeout` to arrive, counted from when its header has. A
/// body still arriving then ends in an error for whoever reads it, and the request is answered
/// 408 with `Connection: close`, so a client trickling a body cannot hold a connection.
async fn body_deadline(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let limit = app.config.body_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let expired = Arc::new(AtomicBool::new(false));
    let flag = expired.clone();
    let request = request.map(move |body| {
        let stream = body.into_data_stream();
        Body::from_stream(futures::stream::unfold(Some(stream), move |state| {
            let flag = flag.clone();
            async move {
                let mut stream = state?;
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(item)) => Some((item, Some(stream))),
                    Ok(None) => None,
                    Err(_) => {
                        flag.store(true, Ordering::Release);
                        let e = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the request body did not arrive in time",
                        );
                        Some((Err(axum::Error::new(e)), None))
                    }
                }
            }
        }))
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    tracing::debug!("request body timed out; closing the connection");
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {} s: send it faster, in smaller batches, \
             or raise --body-timeout-secs",
            limit.as_secs()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Compares in time independent of where the first difference is, so the token cannot be
/// guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer TOKEN` header. The scheme's name is
/// case-insensitive (RFC 7235 section 2.1: `bearer`, `BEARER` and `Bearer` are one scheme);
/// the token is compared exactly.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn require_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = app.config.token.as_deref() else {
        return next.run(request).await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    match given {
        Some(g) if same_secret(g.as_bytes(), token.as_bytes()) => next.run(request).await,
        Some(_) => {
            let mut resp =
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid bearer token").into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
        None => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs `Authorization: Bearer TOKEN` (the token given to \
                 `mlc serve --token` or MLC_TOKEN)",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see GET /v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint; see GET /v1/openapi.json",
    )
}

async fn healthz() -> axum::Json<Json> {
    axum::Json(json!({"status": "ok"}))
}

async fn metrics(State(app): State<Arc<App>>) -> ApiResult<Response> {
    let text = app
        .metrics
        .render()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

async fn dashboard(State(app): State<Arc<App>>) -> Html<String> {
    Html(super::dashboard::render(&app).await)
}

/// A body is a JSON array of objects, or JSON lines (one object per line; blank lines are
/// skipped). Anything else is refused as a whole, with where it went wrong. Returns the
/// number of records. Validation does not build the records (the store parses them again
/// as it coerces them), so it stays cheap at high ingest rates.
pub(crate) fn validate_body(body: &[u8]) -> Result<usize, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err("empty body: send a JSON array of records or JSON lines".into()),
        Some(b'[') => serde_json::from_slice::<Vec<ObjectOnly>>(body)
            .map(|v| v.len())
            .map_err(|e| format!("malformed JSON array of records: {e}")),
        Some(_) => {
            let mut n = 0;
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                serde_json::from_slice::<ObjectOnly>(line)
                    .map_err(|e| format!("line {}: malformed JSON record: {e}", i + 1))?;
                n += 1;
            }
            Ok(n)
        }
    }
}

/// Accepts any JSON object without building it; anything else is an error that names what
/// was found.
struct ObjectOnly;

impl<'de> serde::Deserialize<'de> for ObjectOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ObjectOnly;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object (one record)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ObjectOnly, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(ObjectOnly)
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses a body into records (the scripted test backend needs them as maps).
#[cfg(test)]
pub(crate) fn parse_records(body: &[u8]) -> Result<Vec<Record>, String> {
    validate_body(body)?;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return serde_json::from_slice(body).map_err(|e| format!("malformed JSON array: {e}"));
    }
    body.split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| serde_json::from_slice(l).map_err(|e| format!("malformed JSON: {e}")))
        .collect()
}

async fn ingest(
    State(app): State<Arc<App>>,
    Path(component): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<Json>> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!(
                    "body larger than the limit of {} bytes: send smaller batches (or raise \
                     --max-body-bytes)",
                    app.config.max_body_bytes
                ),
            )
        } else {
            ApiError::new(status, format!("cannot read the body: {rejection}"))
        }
    })?;
    let rules = app.rules().ok_or_else(ApiError::no_rules)?;
    if !rules.components.contains(&component) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown component `{component}`; the loaded rules declare: {}",
                rules.components.join(", ")
            ),
        ));
    }
    // Parsing a large body is CPU work; keep it off the threads that answer /metrics.
    let body: Arc<[u8]> = Arc::from(body.as_ref());
    let checked = body.clone();
    let received = tokio::task::spawn_blocking(move || validate_body(&checked))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::bad_request)?;
    let report = app
        .backend()
        .ingest(&rules, &component, body, received)
        .await
        .map_err(|e| match e {
            IngestError::UnknownComponent(c) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("unknown component `{c}`"))
            }
            IngestError::Store(msg) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the batch was not stored (nothing of it was kept; retry it): {msg}"),
            ),
        })?;
    let labels = super::metrics::ComponentLabels {
        component: component.clone(),
    };
    app.metrics
        .ingested
        .get_or_create(&labels)
        .inc_by(report.accepted);
    app.metrics
        .quarantined
        .get_or_create(&labels)
        .inc_by(report.quarantined);
    app.metrics
        .duplicates
        .get_or_create(&labels)
        .inc_by(report.duplicates);
    Ok(axum::Json(json!({
        "component": component,
        "received": received,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "quarantined": report.quarantined,
        "reasons": report.reasons,
    })))
}

async fn checks(State(app): State<Arc<App>>) -> axum::Json<Json> {
    let rules = app.rules();
    let checks: Vec<Json> = rules
        .iter()
        .flat_map(|r| r.checks.iter())
        .map(|c| {
            let last = app.last_run(&c.name);
            let labels: serde_json::Map<String, Json> = c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            let mut counts = serde_json::Map::new();
            for r in last.iter().flat_map(|l| l.results.iter()) {
                let s = r
                    .get("status")
                    .and_then(Json::as_str)
                    .unwrap_or("error")
                    .to_string();
                let n = counts.get(&s).and_then(Json::as_u64).unwrap_or(0) + 1;
                counts.insert(s, json!(n));
            }
            json!({
                "name": c.name,
                "file": c.file,
                "every_secs": c.every_secs,
                "for_secs": c.for_secs,
                "severity": c.severity,
                "description": c.description,
                "labels": labels,
                "next_run": app.next_run_us(&c.name).map(rfc3339),
                "last_run": last.as_ref().map(|l| json!({
                    "at": rfc3339(l.at_us),
                    "duration_secs": l.duration_secs,
                    "error": l.error,
                    "statuses": counts,
                })),
                "alerts": app.alerts_of(&c.name),
            })
        })
        .collect();
    axum::Json(json!({
        "rules_version": rules.as_ref().map(|r| r.version.clone()),
        "reload": app.reload_status(),
        "checks": checks,
    }))
}

#[derive(Debug, Deserialize)]
struct ResultsParams {
    check: Option<String>,
    since: Option<String>,
    status: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

/// A time in a query (`at`, `since`): the forms of every command's `--at`, one parser for all
/// (`crate::time`), 400 with the reason for anything else or out of range.
pub fn parse_time(text: &str) -> Result<i64, String> {
    crate::time::parse_time(text, now_us())
}

const MAX_PAGE: u64 = 1000;

async fn results(
    State(app): State<Arc<App>>,
    params: Result<Query<ResultsParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    if let Some(s) = &p.status
        && !super::metrics::STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "invalid status `{s}`: one of pass, fail, insufficient, error"
        )));
    }
    let since_us = p
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let limit = p.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = p.offset.unwrap_or(0);
    let query = ResultsQuery {
        check: p.check.clone(),
        since_us,
        status: p.status.clone(),
        limit: limit + 1,
        offset,
    };
    let mut rows = app
        .backend()
        .query_results(query)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        json!(offset + limit)
    } else {
        Json::Null
    };
    Ok(json_with_results(
        &rows,
        &[
            ("limit", json!(limit)),
            ("offset", json!(offset)),
            ("next_offset", next),
        ],
    ))
}

/// How far ahead of the clock `POST /v1/evaluate?at=` may ask for: a little clock skew
/// between the caller and the service, no more (records of the future are not in yet).
pub(crate) const EVALUATE_MAX_AHEAD_US: i64 = 5 * 60 * 1_000_000;

/// Refuses an evaluation time more than [`EVALUATE_MAX_AHEAD_US`] ahead of `now_us`.
fn not_ahead(text: &str, at_us: i64, now_us: i64) -> Result<(), String> {
    if at_us <= now_us.saturating_add(EVALUATE_MAX_AHEAD_US) {
        return Ok(());
    }
    let shown: String = text.chars().take(64).collect();
    Err(format!(
        "`at` {shown} ({}) is in the future: an evaluation time may be at most 5 minutes ahead \
         of now ({}); leave `at` out to evaluate now",
        rfc3339(at_us),
        rfc3339(now_us)
    ))
}

#[derive(Debug, Deserialize)]
struct EvaluateParams {
    check: Option<String>,
    at: Option<String>,
}

async fn evaluate(
    State(app): State<Arc<App>>,
    params: Result<Query<EvaluateParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    // Only an evaluation at the current time drives the live state (alerts, /metrics, last
    // run); one at a given time is a look at that time, stored and returned.
    let (at_us, live) = match p.at.as_deref() {
        Some(t) => {
            let at_us = parse_time(t).map_err(ApiError::bad_request)?;
            not_ahead(t, at_us, now_us()).map_err(ApiError::bad_request)?;
            (at_us, false)
        }
        None => (now_us(), true),
    };
    let names: Vec<String> = match &p.check {
        Some(name) => vec![name.clone()],
        None => app
            .rules()
            .ok_or_else(ApiError::no_rules)?
            .checks
            .iter()
            .map(|c| c.name.clone())
            .collect(),
    };
    let mut all = Vec::new();
    let mut errors = serde_json::Map::new();
    for name in names {
        let _inflight = app.inflight_guard();
        match app.run_evaluation(&name, at_us, live).await {
            Ok(results) => all.extend(results),
            // The one check asked for: no rules, or no such check, is the answer itself. A
            // check of all that a reload removed meanwhile is listed with the other errors.
            Err(EvaluateError::NoRules) if p.check.is_some() => return Err(ApiError::no_rules()),
            Err(EvaluateError::UnknownCheck(check)) if p.check.is_some() => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no check named `{check}`; GET /v1/checks lists them"),
                ));
            }
            Err(e) => {
                errors.insert(name, Json::String(e.to_string()));
            }
        }
    }
    Ok(json_with_results(
        &all,
        &[
            ("at", json!(rfc3339(at_us))),
            ("live", json!(live)),
            ("errors", Json::Object(errors)),
        ],
    ))
}

/// `{"results": [...], other fields}` with each result's text as produced, so the field
/// order of docs/evaluation.md#results survives (serde_json's `Value` would sort the keys).
fn json_with_results(results: &[ResultDoc], fields: &[(&str, Json)]) -> Response {
    let total: usize = results.iter().map(|r| r.text.len() + 1).sum();
    let mut body = String::with_capacity(total + 128);
    body.push_str("{\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&r.text);
    }
    body.push(']');
    for (k, v) in fields {
        body.push_str(&format!(",{}:{}", Json::String((*k).to_string()), v));
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn reload(State(app): State<Arc<App>>) -> ApiResult<axum::Json<Json>> {
    match app.reload().await {
        Ok(set) => Ok(axum::Json(json!({
            "successful": true,
            "rules_version": set.version,
            "checks": set.checks.len(),
        }))),
        Err(e) => Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("{}; the previous rules keep running", e.message),
            extra: Some(("diagnostics", json!(e.diagnostics))),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_arrays_or_json_lines() {
        let r = parse_records(b"[{\"a\":1},{\"a\":2}]").unwrap();
        assert_eq!(r.len(), 2);
        let r = parse_records(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap();
        assert_eq!(r.len(), 2);
        assert!(parse_records(b"  ").unwrap_err().contains("empty body"));
        assert_eq!(validate_body(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap(), 2);
        assert_eq!(
            validate_body(b" [{\"a\":1},{\"a\":{\"b\":[1]}}]").unwrap(),
            2
        );
        let e = parse_records(b"{\"a\":1}\n{\"a\":\n").unwrap_err();
        assert!(e.starts_with("line 2: malformed JSON"), "{e}");
        let e = parse_records(b"[{\"a\":1}, 3]").unwrap_err();
        assert!(e.contains("expected a JSON object"), "{e}");
        let e = parse_records(b"{\"a\":1}\n[1]").unwrap_err();
        assert!(
            e.starts_with("line 2:") && e.contains("expected a JSON object"),
            "{e}"
        );
    }

    #[test]
    fn times_are_rfc3339_or_epoch_seconds() {
        assert_eq!(parse_time("60").unwrap(), 60_000_000);
        assert_eq!(parse_time("1970-01-01T00:01:00Z").unwrap(), 60_000_000);
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        // The forms of every command's --at, from the one shared parser.
        assert_eq!(parse_time("2026-03-01").unwrap(), 1_772_323_200_000_000);
        assert_eq!(
            parse_time("2026-03-01T01:00:00+01:00").unwrap(),
            1_772_323_200_000_000
        );
        let hour_ago = parse_time("now-1h").unwrap();
        assert!((now_us() - 3_600_000_000 - hour_ago).abs() < 60_000_000);
        assert!(
            parse_time("1772323200000")
                .unwrap_err()
                .contains("milliseconds")
        );
        assert!(parse_time("1e19").is_err());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in [
            "Bearer t0k",
            "bearer t0k",
            "BEARER t0k",
            "bEaReR   t0k ",
            "Bearer\tt0k",
        ] {
            assert_eq!(bearer_credentials(header), Some("t0k"), "{header:?}");
        }
        assert_eq!(bearer_credentials("Basic dTpw"), None);
        assert_eq!(bearer_credentials("Bearer"), None);
        assert_eq!(bearer_credentials("Bearert0k"), None);
    }

    #[test]
    fn evaluation_times_may_not_run_ahead_of_the_clock() {
        let now = 1_772_323_200_000_000;
        assert!(not_ahead("x", now, now).is_ok());
        assert!(not_ahead("x", now - 86_400_000_000, now).is_ok());
        assert!(not_ahead("x", now + EVALUATE_MAX_AHEAD_US, now).is_ok());
        let e = not_ahead("now+1h", now + 3_600_000_000, now).unwrap_err();
        assert!(e.contains("now+1h") && e.contains("future"), "{e}");
        assert!(
            not_ahead("x", i64::MAX, i64::MAX - 1).is_ok(),
            "no overflow"
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
