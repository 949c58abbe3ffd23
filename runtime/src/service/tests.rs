//! Tests of the service's mechanics on a real listener with the scripted backend: auth,
//! ingest errors, scheduling and skipped overlaps, reload (watch and HTTP), alerts to a real
//! local receiver with retries. End-to-end tests over the real store and executor live in
//! the workspace's `tests/service_*.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value as Json;
use tokio::sync::oneshot;

use super::testkit::FakeBackend;
use super::*;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), ServiceError>>,
    client: reqwest::Client,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    async fn get_json(&self, path: &str) -> Json {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    /// `mlc_rules_last_reload_successful` as a sample (its HELP text says "1 after a
    /// successful reload", so a substring search would always find a 1).
    async fn reload_successful(&self) -> Option<bool> {
        let m = self.metrics().await;
        m.lines()
            .find_map(|l| l.strip_prefix("mlc_rules_last_reload_successful "))
            .map(|v| v == "1")
    }
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }
}

fn layer(dir: &Path) -> ConfigLayer {
    ConfigLayer {
        checks: Some(vec![dir.to_path_buf()]),
        listen: Some("127.0.0.1:0".into()),
        debounce_ms: Some(200),
        notify_backoff_ms: Some(100),
        ..Default::default()
    }
}

async fn start(layer: ConfigLayer, backend: Arc<FakeBackend>) -> Running {
    start_with(ServiceConfig::resolve(layer, None).unwrap(), backend).await
}

async fn start_with(config: ServiceConfig, backend: Arc<FakeBackend>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(serve_on(listener, config, backend, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "service did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        addr,
        stop: Some(tx),
        done,
        client,
    }
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, secs: u64, mut f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local alert receiver: records every POSTed body; answers 500 to the first
/// `fail_first` requests.
struct Receiver {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Json>>>,
    hits: Arc<AtomicUsize>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (bodies.clone(), hits.clone());
    let handler = post(move |axum::Json(body): axum::Json<Json>| {
        let (b, h) = (b.clone(), h.clone());
        async move {
            if h.fetch_add(1, Ordering::SeqCst) < fail_first {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            b.lock().unwrap().push(body);
            StatusCode::OK
        }
    });
    let app = Router::new()
        .route("/api/v2/alerts", handler.clone())
        .route("/hook", handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { addr, bodies, hits }
}

fn alerts_with_status(r: &Receiver, status: &str) -> Vec<Json> {
    r.bodies
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        // Alertmanager payloads say "resolved" by an endsAt that is not in the future.
        .filter(|a| {
            let ends: jiff::Timestamp = a["endsAt"].as_str().unwrap().parse().unwrap();
            (status == "resolved") == (ends <= jiff::Timestamp::now())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_except_for_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.token = Some("s3cret".into());
    let svc = start(l, Arc::new(FakeBackend::default())).await;
    for path in ["/v1/checks", "/v1/results", "/", "/v1/openapi.json"] {
        let r = svc.client.get(svc.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: Json = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("Bearer"));
        let r = svc
            .client
            .get(svc.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = svc
            .client
            .get(svc.url(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        // RFC 7235: the scheme is case-insensitive.
        for scheme in ["bearer", "BEARER"] {
            let r = svc
                .client
                .get(svc.url(path))
                .header("authorization", format!("{scheme} s3cret"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{scheme} on {path}");
        }
    }
    let r = svc
        .client
        .post(svc.url("/v1/ingest/inference"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for path in ["/healthz", "/metrics"] {
        assert_eq!(
            svc.client.get(svc.url(path)).send().await.unwrap().status(),
            200
        );
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reports_quarantine_and_refuses_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.max_body_bytes = Some(1000);
    let backend = Arc::new(FakeBackend::default());
    let svc = start(l, backend.clone()).await;
    let url = svc.url("/v1/ingest/inference");
    let r = svc
        .client
        .post(&url)
        .body("{\"ts\": 1}\n{\"x\": 2}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["quarantined"], 1);
    assert_eq!(body["reasons"][0], "request line 2: missing time `ts`");

    let r = svc
        .client
        .post(&url)
        .body("{\"ts\": 1}\n{oops\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("line 2: malformed JSON"),
        "{body}"
    );

    let big = format!("[{}]", vec!["{\"ts\": 1}"; 200].join(","));
    let r = svc.client.post(&url).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("1000 bytes"),
        "{body}"
    );

    let r = svc
        .client
        .post(svc.url("/v1/ingest/nope"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("inference"),
        "{body}"
    );

    let m = svc.metrics().await;
    assert!(
        m.contains("mlc_ingested_records_total{component=\"inference\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mlc_quarantined_records_total{component=\"inference\"} 1"),
        "{m}"
    );
    assert_eq!(backend.ingested.lock().unwrap().len(), 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_alerts_honour_for_fire_resolve_and_survive_retries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 1 for 2\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5), ("US", "pass", 0.95)]);
    let am = receiver(2).await;
    let mut l = layer(dir.path());
    l.alertmanager = Some(vec![format!("http://{}", am.addr)]);
    let svc = start(l, backend.clone()).await;

    eventually("first failing evaluation", 5, async || {
        svc.get_json("/v1/checks").await["checks"][0]["alerts"][0]["state"] == "pending"
    })
    .await;
    assert!(alerts_with_status(&am, "firing").is_empty());
    eventually("firing alert delivered after retries", 10, async || {
        !alerts_with_status(&am, "firing").is_empty()
    })
    .await;
    // `for 2` needs two more one-second slots after the first failing one: the evaluation
    // that fired (endsAt is four minutes after it) is two seconds after the streak began.
    let first = &alerts_with_status(&am, "firing")[0];
    let time = |k: &str| {
        first[k]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let fired_at = time("endsAt") - jiff::SignedDuration::from_secs(240);
    assert_eq!(
        fired_at.duration_since(time("startsAt")),
        jiff::SignedDuration::from_secs(2),
        "{first}"
    );
    assert!(
        am.hits.load(Ordering::SeqCst) >= 3,
        "the first two attempts were refused"
    );
    let firing = alerts_with_status(&am, "firing");
    assert_eq!(firing[0]["labels"]["alertname"], "slo");
    assert_eq!(firing[0]["labels"]["country"], "DE");
    assert_eq!(firing[0]["labels"]["team"], "ml");
    assert!(firing.iter().all(|a| a["labels"]["country"] == "DE"));

    let m = svc.metrics().await;
    assert!(
        m.contains(
            "mlc_check_status{check=\"slo\",slice=\"country=DE\",column=\"\",status=\"fail\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "mlc_check_value{check=\"slo\",slice=\"country=US\",column=\"\",value=\"mean(x)\"} 0.95"
        ),
        "{m}"
    );
    assert!(
        m.contains("mlc_evaluation_duration_seconds_count{check=\"slo\"}"),
        "{m}"
    );

    backend.set("slo", &[("DE", "pass", 0.9), ("US", "pass", 0.95)]);
    eventually("resolved alert delivered", 10, async || {
        !alerts_with_status(&am, "resolved").is_empty()
    })
    .await;
    // Every stored result carries the rules version.
    assert!(
        backend
            .stored
            .lock()
            .unwrap()
            .iter()
            .all(|r| r["rules_version"].is_string())
    );
    let page = svc
        .get_json("/v1/results?check=slo&status=fail&limit=1")
        .await;
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slow every 1 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slow", &[("", "pass", 1.0)]);
    *backend.eval_delay.lock().unwrap() = Duration::from_millis(2500);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("a skipped slot", 8, async || {
        svc.metrics()
            .await
            .contains("mlc_evaluations_skipped_total{check=\"slow\"}")
    })
    .await;
    // /metrics keeps answering while the evaluation sleeps.
    let t = Instant::now();
    svc.metrics().await;
    assert!(t.elapsed() < Duration::from_millis(500));
    let evals = backend.evaluations.lock().unwrap().clone();
    for (_, at) in &evals {
        assert_eq!(at % 1_000_000, 0, "slots are aligned to whole seconds");
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_is_all_or_nothing_and_keeps_unchanged_state() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("a.mlc");
    std::fs::write(
        &rules,
        "check keep every 1 for 3600\ncheck gone every 1 for 0\n",
    )
    .unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("keep", &[("DE", "fail", 0.1)]);
    backend.set("gone", &[("", "fail", 0.2)]);
    backend.set("new", &[("", "pass", 0.3)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("both checks evaluated", 5, async || {
        let m = svc.metrics().await;
        m.contains("check=\"keep\"") && m.contains("check=\"gone\"")
    })
    .await;
    let pending_since = svc.get_json("/v1/checks").await["checks"][0]["alerts"][0].clone();
    assert_eq!(pending_since["state"], "pending");

    // An invalid edit keeps the old rules running and flips the metric.
    std::fs::write(&rules, "check keep every 1 for 3600\nINVALID\n").unwrap();
    eventually("refused reload exposed", 10, async || {
        svc.reload_successful().await == Some(false)
    })
    .await;
    let checks = svc.get_json("/v1/checks").await;
    assert_eq!(checks["reload"]["successful"], false);
    assert!(
        checks["reload"]["error"]["diagnostics"][0]
            .as_str()
            .unwrap()
            .contains("INVALID")
    );
    assert_eq!(
        checks["checks"].as_array().unwrap().len(),
        2,
        "old rules still loaded"
    );
    let r = svc.client.post(svc.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 422);

    // A valid edit: `gone` removed, `new` added, `keep` unchanged.
    std::fs::write(
        &rules,
        "check keep every 1 for 3600\ncheck new every 1 for 0\n",
    )
    .unwrap();
    eventually("valid edit picked up", 10, async || {
        let c = svc.get_json("/v1/checks").await;
        c["reload"]["successful"] == true
            && c["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "new")
    })
    .await;
    let m = svc.metrics().await;
    assert_eq!(svc.reload_successful().await, Some(true));
    assert!(!m.contains("mlc_check_status{check=\"gone\""), "{m}");
    let checks = svc.get_json("/v1/checks").await;
    let keep = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "keep")
        .unwrap()
        .clone();
    assert_eq!(keep["alerts"][0]["state"], "pending");
    assert_eq!(
        keep["alerts"][0]["active_since_us"],
        pending_since["active_since_us"]
    );

    let r: Json = svc
        .client
        .post(svc.url("/-/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["successful"], true);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 1 for 3600\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("pending", 5, async || {
        svc.get_json("/v1/checks").await["checks"][0]["alerts"][0]["state"] == "pending"
    })
    .await;
    let before =
        svc.get_json("/v1/checks").await["checks"][0]["alerts"][0]["active_since_us"].clone();
    svc.stop().await;
    let svc = start(layer(dir.path()), backend.clone()).await;
    let after = svc.get_json("/v1/checks").await["checks"][0]["alerts"][0].clone();
    assert_eq!(after["state"], "pending");
    assert_eq!(after["active_since_us"], before);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_now_dashboard_and_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 3600 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5), ("US", "pass", 0.9)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    for at in ["2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z"] {
        let r: Json = svc
            .client
            .post(svc.url(&format!("/v1/evaluate?check=slo&at={at}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["results"].as_array().unwrap().len(), 2);
    }
    let r = svc
        .client
        .post(svc.url("/v1/evaluate?check=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let html = svc
        .client
        .get(svc.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h2 id=\"slo\">slo</h2>"));
    assert!(html.contains("country=DE"));
    assert_eq!(html.matches("<svg").count(), 2);
    let r = svc
        .client
        .get(svc.url("/v1/results?status=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = svc.client.get(svc.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Json = r.json().await.unwrap();
    assert!(body["error"].is_string());
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_transitions_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 1 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "fail", 0.5)]);
    let hook = receiver(0).await;
    let mut l = layer(dir.path());
    l.webhook = Some(vec![format!("http://{}/hook", hook.addr)]);
    let svc = start(l, backend.clone()).await;
    eventually("firing webhook", 5, async || {
        !hook.bodies.lock().unwrap().is_empty()
    })
    .await;
    // Several more failing evaluations: no re-sends to webhooks.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    backend.set("slo", &[("DE", "pass", 0.9)]);
    eventually("resolved webhook", 5, async || {
        hook.bodies.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[0]["alerts"][0]["status"], "firing");
    assert_eq!(bodies[0]["alerts"][0]["labels"]["country"], "DE");
    assert_eq!(bodies[1]["status"], "resolved");
    svc.stop().await;
}

/// A FIFO named `*.mlc` blocks whoever opens it for reading. The scripted backend reads rule
/// files with a plain `read_to_string`, so here the reload's own time limit is what keeps
/// the service answering (the real backend refuses FIFOs outright: `tests/service_api.rs`).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_blocks_is_refused_and_releases_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.watch = Some(false);
    let mut config = ServiceConfig::resolve(l, None).unwrap();
    config.reload_timeout = Duration::from_millis(500);
    let svc = start_with(config, Arc::new(FakeBackend::default())).await;
    let fifo = dir.path().join("b.mlc");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = match client.post(svc.url("/-/reload")).send().await {
        Ok(r) => r,
        Err(e) => {
            // Release the blocked reader so that the test ends rather than hangs.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
            panic!("POST /-/reload did not answer: {e}");
        }
    };
    assert_eq!(r.status(), 422);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let body: Json = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("longer than"),
        "{body}"
    );
    assert!(svc.reload_successful().await == Some(false));
    // The gate is free: the next reload runs (and blocks on the FIFO again, and is refused).
    let r = client.post(svc.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    // Let the blocked readers go: a writer opening the FIFO releases every reader waiting
    // on it (once: with no reader left, opening it again would block this test).
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    std::fs::remove_file(&fifo).unwrap();
    let r = client.post(svc.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(svc.reload_successful().await, Some(true));
    tokio::time::timeout(Duration::from_secs(10), svc.stop())
        .await
        .expect("shutdown completes");
}

/// Reads what the server sends until it closes the connection (or `limit` passes).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

/// Reads one response: returns its head, reads its body (by `content-length`).
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; length];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut body))
        .await
        .expect("the body in time")
        .unwrap();
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.header_timeout_secs = Some(1);
    let svc = start(l, Arc::new(FakeBackend::default())).await;

    // A header trickled a byte at a time is cut off at the deadline, not kept alive by
    // each byte.
    let mut slow = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
    let t = Instant::now();
    for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter() {
        if slow.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "a partial header kept the connection open");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // A connection that sends nothing is closed too.
    let mut idle = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
    let t = Instant::now();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(closed && t.elapsed() < Duration::from_secs(3));

    // Keep-alive works: the clock restarts after each response, two requests on one
    // connection, each within the limit, are both answered; then the idle connection closes.
    let mut ka = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut ka).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    let (_, closed) = read_until_closed(&mut ka, Duration::from_secs(5)).await;
    assert!(closed);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_the_connection_is_closed() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check a every 3600 for 0\n").unwrap();
    let mut l = layer(dir.path());
    l.header_timeout_secs = Some(1);
    l.body_timeout_secs = Some(2);
    let backend = Arc::new(FakeBackend::default());
    let svc = start(l, backend.clone()).await;

    let mut slow = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
    slow.write_all(
        b"POST /v1/ingest/inference HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ts\": 1",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let (text, closed) = read_until_closed(&mut slow, Duration::from_secs(6)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("--body-timeout-secs"), "{text}");
    assert!(closed, "the connection stays open after a body timeout");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // `Expect: 100-continue`: the body comes after the interim response; the time the
    // client takes then is the body's (2 s here), not the header's (1 s).
    let mut cont = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
    let body = b"{\"ts\": 1}\n";
    cont.write_all(
        format!(
            "POST /v1/ingest/inference HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let head = read_head(&mut cont).await;
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    cont.write_all(body).await.unwrap();
    let head = read_head(&mut cont).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(backend.ingested.lock().unwrap().len(), 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_is_evaluated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.mlc"),
        "check six_hours every 21600 for 0\ncheck hourly every 3600 for 0\n",
    )
    .unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("six_hours", &[("", "pass", 1.0)]);
    backend.set("hourly", &[("", "pass", 1.0)]);
    let started = scheduler::now_us();
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("a first evaluation of each check", 10, async || {
        backend.evaluations.lock().unwrap().len() == 2
    })
    .await;
    let evals = backend.evaluations.lock().unwrap().clone();
    for (check, every) in [("six_hours", 21_600_000_000i64), ("hourly", 3_600_000_000)] {
        let at = evals.iter().find(|(c, _)| c == check).unwrap().1;
        // At the check's current slot: aligned, at or before now, after the previous one.
        assert_eq!(at % every, 0, "{check}");
        assert!(at <= scheduler::now_us() && at > started - every, "{check}");
    }
    eventually("last runs shown", 5, async || {
        svc.get_json("/v1/checks").await["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["last_run"].is_object())
    })
    .await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_at_another_time_is_stored_but_drives_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 3600 for 60\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "pass", 0.9)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("the start evaluation", 10, async || {
        svc.get_json("/v1/checks").await["checks"][0]["last_run"].is_object()
    })
    .await;
    backend.set("slo", &[("DE", "fail", 0.1)]);
    let post = async |q: &str| {
        let r = svc
            .client
            .post(svc.url(&format!("/v1/evaluate?check=slo{q}")))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Json>().await.unwrap())
    };
    // Epoch milliseconds given as seconds (the year 58,000), and the future: refused.
    for at in ["1772323200000", "1e19"] {
        let (status, body) = post(&format!("&at={at}")).await;
        assert_eq!(status, 400, "{at}: {body}");
        assert!(body["error"].is_string());
    }
    let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let (status, body) = post(&format!("&at={ahead}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("future"), "{body}");
    let stored_before = backend.stored.lock().unwrap().len();

    // A past time: evaluated, stored and returned, but alerts, /metrics and the last run
    // are those of the live evaluations.
    let (status, body) = post("&at=2026-03-01T00:00:00Z").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"], false);
    assert_eq!(body["results"][0]["status"], "fail");
    assert_eq!(backend.stored.lock().unwrap().len(), stored_before + 1);
    let checks = svc.get_json("/v1/checks").await;
    assert_eq!(
        checks["checks"][0]["alerts"],
        serde_json::json!([]),
        "{checks}"
    );
    assert_ne!(
        checks["checks"][0]["last_run"]["at"],
        "2026-03-01T00:00:00Z"
    );
    let m = svc.metrics().await;
    assert!(
        m.contains(
            "mlc_check_status{check=\"slo\",slice=\"country=DE\",column=\"\",status=\"pass\"} 1"
        ),
        "{m}"
    );

    // Now: the live state follows.
    let (status, body) = post("").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"], true);
    let checks = svc.get_json("/v1/checks").await;
    assert_eq!(
        checks["checks"][0]["alerts"][0]["state"], "pending",
        "{checks}"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_or_removed_checks_folder_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("a.mlc"), "check one every 3600 for 0\n").unwrap();
    let svc = start(layer(&rules), Arc::new(FakeBackend::default())).await;
    let names = async || -> Vec<String> {
        svc.get_json("/v1/checks").await["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names().await, ["one"]);

    // Swapped by renames, as deploy tools do.
    let new = dir.path().join("rules.new");
    std::fs::create_dir(&new).unwrap();
    std::fs::write(new.join("a.mlc"), "check two every 3600 for 0\n").unwrap();
    std::fs::rename(&rules, dir.path().join("rules.old")).unwrap();
    std::fs::rename(&new, &rules).unwrap();
    eventually("the swapped-in folder loaded", 10, async || {
        names().await == ["two"]
    })
    .await;
    // And its edits are watched (the old watch followed `rules.old`).
    std::fs::write(rules.join("a.mlc"), "check three every 3600 for 0\n").unwrap();
    eventually("an edit in the new folder loaded", 10, async || {
        names().await == ["three"]
    })
    .await;

    // Gone: the metric and the reload status say so; the last rules keep running.
    std::fs::rename(&rules, dir.path().join("rules.gone")).unwrap();
    eventually("the missing folder reported", 10, async || {
        svc.reload_successful().await == Some(false)
    })
    .await;
    assert_eq!(names().await, ["three"]);
    // Deleted and created afresh.
    std::fs::remove_dir_all(dir.path().join("rules.gone")).unwrap();
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("b.mlc"), "check four every 3600 for 0\n").unwrap();
    eventually("the recreated folder loaded", 10, async || {
        names().await == ["four"] && svc.reload_successful().await == Some(true)
    })
    .await;
    std::fs::write(rules.join("b.mlc"), "check five every 3600 for 0\n").unwrap();
    eventually("an edit in the recreated folder loaded", 10, async || {
        names().await == ["five"]
    })
    .await;
    svc.stop().await;
}

/// A panic elsewhere while the rules lock was held poisons it; a reload must still install
/// the new rules (it once skipped them silently, reporting success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_rules_lock_does_not_stop_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check first every 60 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    let config = ServiceConfig::resolve(layer(dir.path()), None).unwrap();
    let app = App::new(config, backend);
    app.reload().await.unwrap();
    let poison = app.clone();
    let _ = std::thread::spawn(move || {
        let _held = poison.rules.write().unwrap();
        panic!("poison the rules lock");
    })
    .join();
    assert!(app.rules.is_poisoned());
    std::fs::write(dir.path().join("a.mlc"), "check second every 60 for 0\n").unwrap();
    app.reload().await.unwrap();
    let names: Vec<String> = app
        .rules()
        .unwrap()
        .checks
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["second"]);
}

/// `mlc_evaluation_errors_total` of `check`, 0 before the first.
fn evaluation_errors(metrics: &str, check: &str) -> u64 {
    let prefix = format!("mlc_evaluation_errors_total{{check=\"{check}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// `POST /v1/evaluate?check=` answers by what went wrong: a check the rules lack is 404 and
/// nothing is evaluated or counted; an evaluation that fails as a whole is 200 with the
/// error under `errors`, counted and kept as the last run; results that could not be stored
/// are still returned (200), counted and kept as the last run's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_answers_an_unknown_check_a_failed_evaluation_and_a_failed_store_apart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mlc"), "check slo every 3600 for 0\n").unwrap();
    let backend = Arc::new(FakeBackend::default());
    backend.set("slo", &[("DE", "pass", 0.9), ("US", "pass", 0.8)]);
    let svc = start(layer(dir.path()), backend.clone()).await;
    eventually("the start evaluation", 10, async || {
        svc.get_json("/v1/checks").await["checks"][0]["last_run"].is_object()
    })
    .await;
    let post = async |check: &str| {
        let r = svc
            .client
            .post(svc.url(&format!("/v1/evaluate?check={check}")))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Json>().await.unwrap())
    };
    let last_error =
        async || svc.get_json("/v1/checks").await["checks"][0]["last_run"]["error"].clone();
    let errors_before = evaluation_errors(&svc.metrics().await, "slo");
    let evaluated_before = backend.evaluations.lock().unwrap().len();

    let (status, body) = post("nope").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"], "no check named `nope`; GET /v1/checks lists them",
        "{body}"
    );
    assert_eq!(backend.evaluations.lock().unwrap().len(), evaluated_before);
    assert_eq!(evaluation_errors(&svc.metrics().await, "nope"), 0);

    *backend.eval_error.lock().unwrap() = Some("the store is gone".into());
    let (status, body) = post("slo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"]["slo"], "the store is gone", "{body}");
    assert_eq!(body["results"], serde_json::json!([]), "{body}");
    assert_eq!(last_error().await, "the store is gone");
    assert_eq!(
        evaluation_errors(&svc.metrics().await, "slo"),
        errors_before + 1
    );

    *backend.eval_error.lock().unwrap() = None;
    *backend.store_error.lock().unwrap() = Some("disk full".into());
    let (status, body) = post("slo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], serde_json::json!({}), "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(last_error().await, "results not stored: disk full");
    assert_eq!(
        evaluation_errors(&svc.metrics().await, "slo"),
        errors_before + 2
    );
    svc.stop().await;
}

/// Before the first rules load (the service loads them before it listens, so only a
/// router over a fresh `App` sees this), an evaluation is refused with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluating_before_any_rules_load_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServiceConfig::resolve(layer(dir.path()), None).unwrap();
    let backend = Arc::new(FakeBackend::default());
    let app = App::new(config, backend.clone());
    assert_eq!(
        app.run_evaluation("slo", 0, true).await,
        Err(EvaluateError::NoRules)
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, http::router(app)).await });
    let client = reqwest::Client::new();
    for path in ["/v1/evaluate?check=slo", "/v1/evaluate"] {
        let r = client
            .post(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
        let body: Json = r.json().await.unwrap();
        assert_eq!(body["error"], "no rules are loaded yet", "{path}");
    }
    assert!(backend.evaluations.lock().unwrap().is_empty());
    server.abort();
}
