//! End-to-end tests of `mlc serve`: the real binary on an ephemeral loopback port, over a
//! real SQLite store: ingest over HTTP then results via the API, `/metrics` parsed as
//! Prometheus text, auth, reload of real rules, alerts to a local Alertmanager, SIGTERM.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

const RULES: &str = r#"
component inference {
  key request_id
  time ts
  fields {
    age: int
    country: string
    score: float
  }
}

check ages_valid {
  on inference
  window 1d
  every 1h
  expect all(age >= 0)
  severity critical
  description "Ages are never negative"
  labels { team: "risk" }
}

check mean_score {
  on inference
  window 1d
  every 1h
  group by country
  expect mean(score) < 0.5
}
"#;

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

struct Server {
    child: Child,
    addr: SocketAddr,
    client: reqwest::blocking::Client,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let addr = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_mlc"))
            .arg("serve")
            .arg("--checks")
            .arg(dir.join("rules"))
            .arg("--db")
            .arg(format!("sqlite://{}", dir.join("mlc.db").display()))
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--debounce-ms", "200", "--notify-backoff-ms", "100"])
            .args(extra)
            .current_dir(dir)
            .env_remove("MLC_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("serve.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let client = reqwest::blocking::Client::new();
        let server = Server {
            child,
            addr,
            client,
            _dir: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server
            .client
            .get(server.url("/healthz"))
            .send()
            .map(|r| r.status())
            .ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(
                Instant::now() < deadline,
                "mlc serve did not come up: {}",
                std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn post(&self, path: &str, body: &str) -> (u16, Json) {
        let r = self
            .client
            .post(self.url(path))
            .body(body.to_string())
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }

    fn get(&self, path: &str) -> Json {
        self.client
            .get(self.url(path))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    fn metrics(&self) -> Scrape {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        Scrape::parse(&text)
    }

    fn sigterm(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 3339 for now plus `secs` (negative: in the past).
fn now_plus(secs: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs)).to_string()
}

/// Waits for the start evaluation of every check (`mlc serve` evaluates each once at start),
/// so that it cannot land after what a test does next.
fn wait_for_start_evaluations(server: &Server) {
    wait_for("the start evaluation of every check", 20, || {
        server.get("/v1/checks")["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["last_run"].is_object())
    });
}

fn setup(rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/model.mlc"), rules).unwrap();
    dir
}

/// One parsed exposition: samples and the HELP text per metric family.
///
/// A strict parser of the Prometheus text format written for the test: the `prometheus-parse`
/// crate drops labels whose values contain `=` (such as `slice="country=DE"`), which is valid
/// exposition text, so it cannot be used to check what we serve.
struct Scrape {
    samples: Vec<Sample>,
    docs: HashMap<String, String>,
}

struct Sample {
    metric: String,
    labels: HashMap<String, String>,
    value: f64,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut docs = HashMap::new();
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                docs.insert(name.to_string(), help.to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line has a kind");
                assert!(
                    [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "unknown",
                        "info",
                        "stateset"
                    ]
                    .contains(&kind),
                    "bad TYPE line {line:?}"
                );
                typed.insert(name.to_string());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let name_end = line.find(['{', ' ']).expect("sample has a value");
            let metric = line[..name_end].to_string();
            let mut labels = HashMap::new();
            let mut rest = &line[name_end..];
            if let Some(body) = rest.strip_prefix('{') {
                let mut chars = body.char_indices().peekable();
                let mut end = None;
                loop {
                    // key
                    let mut key = String::new();
                    while let Some(&(i, c)) = chars.peek() {
                        if c == '}' {
                            end = Some(i);
                            break;
                        }
                        chars.next();
                        if c == '=' {
                            break;
                        }
                        if c != ',' {
                            key.push(c);
                        }
                    }
                    if end.is_some() {
                        break;
                    }
                    assert_eq!(
                        chars.next().map(|(_, c)| c),
                        Some('"'),
                        "label value of {line:?}"
                    );
                    let mut value = String::new();
                    loop {
                        match chars.next().expect("closing quote").1 {
                            '\\' => match chars.next().expect("escape").1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.insert(key, value);
                }
                let end = end.expect("labels close with }");
                rest = &body[end + 1..];
            }
            let value: f64 = rest
                .split_whitespace()
                .next()
                .expect("a value")
                .parse()
                .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
            samples.push(Sample {
                metric,
                labels,
                value,
            });
        }
        for s in &samples {
            let family = ["_bucket", "_sum", "_count", "_total", "_created", "_info"]
                .iter()
                .find_map(|suffix| s.metric.strip_suffix(suffix))
                .unwrap_or(&s.metric);
            assert!(
                typed.contains(family) || typed.contains(&s.metric),
                "no TYPE line for {}",
                s.metric
            );
        }
        Scrape { samples, docs }
    }
}

fn gauge(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn ingest_over_http_then_results_and_metrics() {
    let dir = setup(RULES);
    let server = Server::start(dir.path(), &[]);
    wait_for_start_evaluations(&server);
    let body = [
        json!({"request_id": "a", "ts": now_plus(-3 * 3600), "age": 30, "country": "DE", "score": 0.7}),
        json!({"request_id": "b", "ts": now_plus(-2 * 3600), "age": -1, "country": "DE", "score": 0.9}),
        json!({"request_id": "c", "ts": now_plus(-3600), "age": 40, "country": "US", "score": 0.1}),
        json!({"request_id": "d", "ts": "not a time", "age": 1, "country": "US", "score": 0.1}),
    ]
    .iter()
    .map(Json::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, report) = server.post("/v1/ingest/inference", &body);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 3, "{report}");
    assert_eq!(report["quarantined"], 1);
    let reason = report["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("line 4") && reason.contains("ts"),
        "{reason}"
    );

    // Re-sending is idempotent.
    let (_, again) = server.post("/v1/ingest/inference", &body);
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["duplicates"], 3);

    // At a given time: stored and returned, but /metrics (like alerts) only follows live
    // evaluations.
    let at = now_plus(-1800);
    let (status, eval) = server.post(&format!("/v1/evaluate?at={at}"), "");
    assert_eq!(status, 200, "{eval}");
    assert_eq!(eval["live"], false);
    let results = eval["results"].as_array().unwrap();
    let ages = results.iter().find(|r| r["check"] == "ages_valid").unwrap();
    assert_eq!(ages["status"], "fail");
    assert_eq!(ages["rows"], 2 + 1);
    assert!(ages["rules_version"].as_str().unwrap().contains("sha256:"));
    let de = results
        .iter()
        .find(|r| r["check"] == "mean_score" && r["slice"]["country"] == "DE")
        .unwrap();
    assert_eq!(de["status"], "fail");
    let slice_de = [
        ("check", "mean_score"),
        ("slice", "country=DE"),
        ("status", "fail"),
    ];
    assert_eq!(
        gauge(&server.metrics(), "mlc_check_status", &slice_de),
        None
    );

    // Now: a live evaluation.
    let (status, eval) = server.post("/v1/evaluate", "");
    assert_eq!(status, 200, "{eval}");
    assert_eq!(eval["live"], true);

    let page = server.get("/v1/results?check=mean_score&status=fail");
    let stored = page["results"].as_array().unwrap();
    assert_eq!(stored.len(), 2, "{page}");
    assert!(
        stored
            .iter()
            .all(|r| r["slice"] == json!({"country": "DE"}))
    );
    let page = server.get("/v1/results?limit=1");
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    let page = server.get(&format!("/v1/results?since={}", now_plus(3600)));
    assert!(page["results"].as_array().unwrap().is_empty());

    let m = server.metrics();
    assert_eq!(gauge(&m, "mlc_check_status", &slice_de), Some(1.0));
    let pass_us = [
        ("check", "mean_score"),
        ("slice", "country=US"),
        ("status", "pass"),
    ];
    assert_eq!(gauge(&m, "mlc_check_status", &pass_us), Some(1.0));
    let value = gauge(
        &m,
        "mlc_check_value",
        &[
            ("check", "mean_score"),
            ("slice", "country=DE"),
            ("value", "mean(score)"),
        ],
    )
    .unwrap();
    assert!((value - 0.8).abs() < 1e-9, "{value}");
    assert_eq!(
        gauge(
            &m,
            "mlc_ingested_records_total",
            &[("component", "inference")]
        ),
        Some(3.0)
    );
    assert_eq!(
        gauge(
            &m,
            "mlc_quarantined_records_total",
            &[("component", "inference")]
        ),
        // The bad record was sent twice and quarantined each time (the re-send is not a
        // duplicate: it was never stored).
        Some(2.0)
    );
    assert_eq!(
        gauge(&m, "mlc_rules_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(
        m.samples
            .iter()
            .any(|s| s.metric.starts_with("mlc_evaluation_duration_seconds"))
    );
    for name in [
        "mlc_check_status",
        "mlc_check_value",
        "mlc_evaluation_duration_seconds",
    ] {
        assert!(m.docs.contains_key(name), "HELP missing for {name}");
    }

    let checks = server.get("/v1/checks");
    assert!(
        checks["rules_version"]
            .as_str()
            .unwrap()
            .contains("sha256:")
    );
    assert_eq!(checks["checks"].as_array().unwrap().len(), 2);

    let html = server
        .client
        .get(server.url("/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("mean_score") && html.contains("<svg"));

    let status = server.sigterm();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
}

#[test]
fn token_is_required_except_on_health_and_metrics() {
    let dir = setup(RULES);
    let server = Server::start(dir.path(), &["--token", "t0ken"]);
    let r = server.client.get(server.url("/v1/checks")).send().unwrap();
    assert_eq!(r.status(), 401);
    let body: Json = r.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let r = server
        .client
        .post(server.url("/v1/ingest/inference"))
        .body("[]")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = server
        .client
        .get(server.url("/v1/checks"))
        .bearer_auth("t0ken")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // The scheme is case-insensitive (RFC 7235); the token is not.
    for (header, status) in [
        ("bearer t0ken", 200),
        ("BEARER t0ken", 200),
        ("bearer T0KEN", 401),
    ] {
        let r = server
            .client
            .get(server.url("/v1/checks"))
            .header("authorization", header)
            .send()
            .unwrap();
        assert_eq!(r.status(), status, "{header}");
    }
    assert_eq!(
        server
            .client
            .get(server.url("/metrics"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn malformed_and_oversized_bodies_are_refused_with_json_errors() {
    let dir = setup(RULES);
    let server = Server::start(dir.path(), &["--max-body-bytes", "2048"]);
    let (status, body) = server.post("/v1/ingest/inference", "{\"request_id\": \"a\"}\n{nope");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("line 2"), "{body}");
    let big = "x".repeat(4096);
    let (status, body) = server.post("/v1/ingest/inference", &big);
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("2048"), "{body}");
    let (status, body) = server.post("/v1/ingest/nope", "[]");
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("inference"),
        "{body}"
    );
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reload_picks_up_valid_edits_and_refuses_invalid_ones() {
    let dir = setup(RULES);
    let server = Server::start(dir.path(), &[]);
    let file: PathBuf = dir.path().join("rules/model.mlc");
    let names = |s: &Server| -> Vec<String> {
        s.get("/v1/checks")["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&server), ["ages_valid", "mean_score"]);

    // An invalid edit: the old rules keep running, the metric flips, the error is shown.
    std::fs::write(
        &file,
        RULES.replace("mean(score) < 0.5", "mean(scor) < 0.5"),
    )
    .unwrap();
    wait_for("refused reload", 15, || {
        gauge(&server.metrics(), "mlc_rules_last_reload_successful", &[]) == Some(0.0)
    });
    let checks = server.get("/v1/checks");
    assert_eq!(checks["reload"]["successful"], false);
    let diags = checks["reload"]["error"]["diagnostics"].to_string();
    assert!(diags.contains("scor"), "{diags}");
    assert_eq!(names(&server), ["ages_valid", "mean_score"]);

    // A valid edit removing a check and adding one is picked up without restart.
    let edited = RULES.replace("check mean_score", "check mean_score_v2");
    std::fs::write(&file, edited).unwrap();
    wait_for("valid reload", 15, || {
        names(&server) == ["ages_valid", "mean_score_v2"]
    });
    assert_eq!(
        gauge(&server.metrics(), "mlc_rules_last_reload_successful", &[]),
        Some(1.0)
    );

    // POST /-/reload answers with the version, or 422 with diagnostics.
    let (status, body) = server.post("/-/reload", "");
    assert_eq!(status, 200, "{body}");
    std::fs::write(dir.path().join("rules/broken.mlc"), "check {").unwrap();
    let (status, body) = server.post("/-/reload", "");
    assert_eq!(status, 422, "{body}");
    assert!(!body["diagnostics"].as_array().unwrap().is_empty());
}

/// A local Alertmanager stand-in that refuses the first `fail_first` posts.
fn receiver(fail_first: usize) -> (SocketAddr, Arc<Mutex<Vec<Json>>>) {
    use axum::http::StatusCode;
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let app = axum::Router::new().route(
                "/api/v2/alerts",
                axum::routing::post(move |axum::Json(body): axum::Json<Json>| {
                    let (seen, hits) = (seen.clone(), hits.clone());
                    async move {
                        if hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail_first {
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        seen.lock().unwrap().push(body);
                        StatusCode::OK
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), bodies)
}

#[test]
fn alerts_reach_alertmanager_after_retries_and_resolve() {
    let dir = setup(RULES);
    let (am, bodies) = receiver(2);
    let server = Server::start(dir.path(), &["--alertmanager", &format!("http://{am}")]);
    wait_for_start_evaluations(&server);
    let bad =
        json!({"request_id": "x", "ts": now_plus(-3600), "age": -5, "country": "DE", "score": 0.1});
    server.post("/v1/ingest/inference", &bad.to_string());
    // An evaluation at a given time drives no alert.
    let (status, eval) = server.post(
        &format!("/v1/evaluate?check=ages_valid&at={}", now_plus(-60)),
        "",
    );
    assert_eq!(status, 200, "{eval}");
    assert_eq!(eval["results"][0]["status"], "fail");
    assert_eq!(server.get("/v1/checks")["checks"][0]["alerts"], json!([]));
    // A live one does.
    let (_, eval) = server.post("/v1/evaluate?check=ages_valid", "");
    assert_eq!(eval["results"][0]["status"], "fail");
    let fired_at = eval["at"].as_str().unwrap().to_string();
    wait_for("firing alert", 15, || !bodies.lock().unwrap().is_empty());
    let alert = bodies.lock().unwrap()[0][0].clone();
    assert_eq!(alert["labels"]["alertname"], "ages_valid");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["team"], "risk");
    assert_eq!(
        alert["annotations"]["description"],
        "Ages are never negative"
    );
    assert_eq!(alert["startsAt"], fired_at.as_str());

    // The check is relaxed so that it passes: the alert (kept across the reload) resolves.
    std::fs::write(
        dir.path().join("rules/model.mlc"),
        RULES.replace("all(age >= 0)", "all(age >= -10)"),
    )
    .unwrap();
    let version = server.get("/v1/checks")["rules_version"].clone();
    wait_for("the relaxed rules", 15, || {
        server.get("/v1/checks")["rules_version"] != version
    });
    let (_, eval) = server.post("/v1/evaluate?check=ages_valid", "");
    assert_eq!(eval["results"][0]["status"], "pass", "{eval}");
    let resolved_at = eval["at"].as_str().unwrap().to_string();
    wait_for("resolved alert", 15, || {
        bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .any(|a| {
                a["labels"]["alertname"] == "ages_valid" && a["endsAt"] == resolved_at.as_str()
            })
    });
}

/// Replacing a plugin's `.wasm` with a broken file is refused like an invalid rule: the old
/// rules, with the old plugin, keep running, and the failure is exposed.
#[test]
fn a_broken_plugin_file_keeps_the_old_plugin_running() {
    let rules = format!(
        "{RULES}\nplugin wat_mean from \"mean.wasm\" {{ memory 16MiB, timeout 1s }}\n\n\
         check plugin_mean {{\n  on inference\n  window 1d\n  every 1h\n  expect wat_mean(score) < 0.5\n}}\n"
    );
    let dir = setup(&rules);
    let wasm = dir.path().join("rules/mean.wasm");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/mean_wat/mean.wasm"),
        &wasm,
    )
    .unwrap();
    let server = Server::start(dir.path(), &[]);
    let body = [
        json!({"request_id": "a", "ts": "2026-03-01T10:00:00Z", "age": 30, "country": "DE", "score": 0.2}),
        json!({"request_id": "b", "ts": "2026-03-01T11:00:00Z", "age": 31, "country": "US", "score": 0.4}),
    ]
    .iter()
    .map(Json::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, report) = server.post("/v1/ingest/inference", &body);
    assert_eq!(status, 200, "{report}");

    let evaluate = |s: &Server| -> String {
        let (status, out) = s.post("/v1/evaluate?check=plugin_mean&at=2026-03-01T12:00:00Z", "");
        assert_eq!(status, 200, "{out}");
        let results = out["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 1, "{out}");
        results[0]["status"].as_str().unwrap().to_string()
    };
    assert_eq!(evaluate(&server), "pass");

    std::fs::write(&wasm, b"\0asm this is not a module").unwrap();
    wait_for("refused reload", 15, || {
        gauge(&server.metrics(), "mlc_rules_last_reload_successful", &[]) == Some(0.0)
    });
    let checks = server.get("/v1/checks");
    assert_eq!(checks["reload"]["successful"], false, "{checks}");
    assert!(checks.to_string().contains("mean.wasm"), "{checks}");
    // The old plugin is still the one evaluated.
    assert_eq!(evaluate(&server), "pass");
}

/// A FIFO named `*.mlc` used to block the rules' read for good: `POST /-/reload` hung,
/// SIGHUP did nothing, SIGTERM never exited and `mlc lint` hung. It is refused with a
/// diagnostic instead.
#[cfg(unix)]
#[test]
fn a_fifo_in_the_rules_folder_is_refused_and_blocks_nothing() {
    let dir = setup(RULES);
    let server = Server::start(dir.path(), &["--no-watch"]);
    let fifo = dir.path().join("rules/pipe.mlc");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = client.post(server.url("/-/reload")).send().unwrap();
    assert_eq!(r.status(), 422);
    let body: Json = r.json().unwrap();
    assert!(body.to_string().contains("FIFO"), "{body}");
    assert_eq!(
        gauge(&server.metrics(), "mlc_rules_last_reload_successful", &[]),
        Some(0.0)
    );

    // `mlc lint` says the same, and exits.
    let mut lint = Command::new(env!("CARGO_BIN_EXE_mlc"))
        .arg("lint")
        .arg(dir.path().join("rules"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = lint.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = lint.kill();
            panic!("mlc lint hangs on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut lint.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FIFO"), "{stderr}");

    // Once it is gone, SIGHUP reloads.
    std::fs::remove_file(&fifo).unwrap();
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("reload after SIGHUP", 15, || {
        gauge(&server.metrics(), "mlc_rules_last_reload_successful", &[]) == Some(1.0)
    });
    let status = server.sigterm();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
}

/// A client sending a header slowly (or not at all) is disconnected after
/// `--header-timeout-secs`; one sending a body slowly gets 408 after `--body-timeout-secs`.
#[test]
fn slow_clients_are_disconnected() {
    use std::io::{Read, Write};
    let dir = setup(RULES);
    let server = Server::start(
        dir.path(),
        &["--header-timeout-secs", "1", "--body-timeout-secs", "2"],
    );
    let closed_within = |stream: &mut std::net::TcpStream, limit: Duration| -> (bool, String) {
        stream.set_read_timeout(Some(limit)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return (true, String::from_utf8_lossy(&got).into()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return (true, String::from_utf8_lossy(&got).into());
                }
                Err(_) => return (false, String::from_utf8_lossy(&got).into()),
            }
        }
    };

    let mut partial = std::net::TcpStream::connect(server.addr).unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let (closed, _) = closed_within(&mut partial, Duration::from_secs(5));
    assert!(closed, "a partial header held the connection");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    let mut slow_body = std::net::TcpStream::connect(server.addr).unwrap();
    slow_body
        .write_all(b"POST /v1/ingest/inference HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n[")
        .unwrap();
    let t = Instant::now();
    let (closed, text) = closed_within(&mut slow_body, Duration::from_secs(6));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(closed, "a slow body held the connection");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // The service still answers.
    let r = server.client.get(server.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
}

/// Checks with a long `every` show results at once: each is evaluated at start. The log says
/// where the dashboard is.
#[test]
fn every_check_is_evaluated_at_start_and_the_dashboard_url_is_logged() {
    let dir = setup(&RULES.replace("every 1h", "every 6h"));
    let server = Server::start(dir.path(), &[]);
    wait_for_start_evaluations(&server);
    let checks = server.get("/v1/checks");
    for c in checks["checks"].as_array().unwrap() {
        let at: jiff::Timestamp = c["last_run"]["at"].as_str().unwrap().parse().unwrap();
        assert_eq!(at.as_second() % (6 * 3600), 0, "at its current slot: {c}");
        assert!(at <= jiff::Timestamp::now(), "{c}");
    }
    let stored = server.get("/v1/results?check=ages_valid");
    assert_eq!(stored["results"].as_array().unwrap().len(), 1, "{stored}");
    // No data yet is no evidence of failure: not an `error` (an unknown component), no alert.
    assert_eq!(stored["results"][0]["status"], "insufficient", "{stored}");
    assert_eq!(checks["checks"][0]["alerts"], json!([]), "{checks}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains(&format!("http://{}/", server.addr)),
        "no dashboard URL in the log:\n{log}"
    );
}

/// `at=1772323200000` (epoch milliseconds given as seconds: the year 58,000) used to be
/// evaluated, stored with an `at` that is not RFC 3339 and sorted first for good, and left
/// an alert pending for good.
#[test]
fn evaluation_times_out_of_range_are_refused() {
    let dir = setup(RULES);
    let server = Server::start(dir.path(), &[]);
    wait_for_start_evaluations(&server);
    let before = server.get("/v1/results?limit=1000")["results"]
        .as_array()
        .unwrap()
        .len();
    for at in ["1772323200000", "1e19", &now_plus(3600)] {
        let (status, body) = server.post(&format!("/v1/evaluate?at={at}"), "");
        assert_eq!(status, 400, "{at}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let after = server.get("/v1/results?limit=1000")["results"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "nothing stored");
    assert_eq!(server.get("/v1/checks")["checks"][0]["alerts"], json!([]));
}
