//! What an operator sees: the access log (text and JSON, on and off), JSON for every line with
//! `--json_logs`, `/openapi.json` and `/docs`, and `sluice health` for container probes.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
model_list:
  - model_name: demo
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "hello"
  - model_name: hidden-upstream
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-upstream-secret-value
      api_base: http://10.1.2.3:9999/v1
general_settings:
  master_key: sk-1234
"#;

fn config_file(text: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sluice-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("config-{n}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn start(config: &str, extra: &[&str]) -> Proc {
    let path = config_file(config);
    let mut args = vec!["--config", path.as_str(), "--host", "127.0.0.1", "--port", "0", "--num_workers", "2"];
    args.extend_from_slice(extra);
    spawn(&args, "ops")
}

/// Stops the gateway with SIGTERM and returns everything it wrote to stderr.
fn stop(mut g: Proc) -> String {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(g.pid() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = g.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "SIGTERM is a clean stop, not {status:?}: {}", g.stderr());
    g.stderr()
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// A key with an alias, made through the management API.
fn key_with_alias(g: &Proc, alias: &str) -> String {
    let r = post(g.addr, "/key/generate", &format!(r#"{{"key_alias":"{alias}"}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// A chat request with a chunked body: not served by the direct HTTP/1.1 path, so hyper's.
fn chunked_chat(g: &Proc, key: &str) -> Response {
    let body = chat("demo");
    let req = format!(
        "POST /chat/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    raw(g.addr, req.as_bytes())
}

fn access_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v| v["target"] == "sluice::access")
        .collect()
}

#[test]
fn json_logs_make_every_line_json_with_one_access_line_per_request() {
    let g = start(CONFIG, &["--json_logs"]);
    let key = key_with_alias(&g, "ci-alias");
    let direct = request(g.addr, "POST", "/v1/chat/completions", Some(&key), chat("demo").as_bytes());
    assert_eq!(direct.status, 200, "{}", direct.text());
    let through_hyper = chunked_chat(&g, &key);
    assert_eq!(through_hyper.status, 200, "{}", through_hyper.text());
    let denied = request(g.addr, "POST", "/v1/chat/completions", Some("sk-wrong"), chat("demo").as_bytes());
    assert_eq!(denied.status, 401);
    let health = request(g.addr, "GET", "/health/liveliness", None, b"");
    assert_eq!(health.status, 200);
    let info = request(g.addr, "GET", &format!("/key/info?key={key}"), Some("sk-1234"), b"");
    assert_eq!(info.status, 200, "{}", info.text());
    let stderr = stop(g);

    // Every line parses, the start and shutdown lines included.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for needle in ["sluice starting", "ready: serving", "shutdown: SIGTERM", "shutdown: drained", "shutdown complete"] {
        assert!(messages.iter().any(|m| m.contains(needle)), "no {needle:?} line in {messages:#?}");
    }

    let access = access_lines(&stderr);
    let paths: Vec<(&str, &str, u64)> = access
        .iter()
        .map(|a| (a["method"].as_str().unwrap(), a["path"].as_str().unwrap(), a["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/key/generate", 200),
            ("POST", "/v1/chat/completions", 200),
            ("POST", "/chat/completions", 200),
            ("POST", "/v1/chat/completions", 401),
            ("GET", "/health/liveliness", 200),
            ("GET", "/key/info", 200),
        ],
        "{access:#?}"
    );
    for (line, response) in [(&access[1], &direct), (&access[2], &through_hyper)] {
        assert_eq!(line["model"], "demo", "{line}");
        assert_eq!(line["key_alias"], "ci-alias", "{line}");
        assert_eq!(line["call_id"].as_str(), response.header("x-litellm-call-id"), "{line}");
        assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        assert_eq!(line["level"], "INFO");
    }
    assert_eq!(access[3]["key_alias"], "-", "a refused key has no alias: {}", access[3]);
    // The key itself never reaches the log: not from the header, not from /key/info's query.
    assert!(!stderr.contains(&key), "the key is in the log");
    assert!(!stderr.contains("sk-wrong"), "a presented key is in the log");
}

#[test]
fn text_logs_have_the_access_line_and_the_setting_turns_it_off() {
    let g = start(CONFIG, &[]);
    assert_eq!(post(g.addr, "/v1/chat/completions", &chat("demo")).status, 200);
    assert_eq!(request(g.addr, "GET", "/no/such/route", None, b"").status, 404);
    let huge_model = "m".repeat(100_000);
    assert_eq!(post(g.addr, "/v1/chat/completions", &chat(&huge_model)).status, 400);
    let stderr = stop(g);
    let access: Vec<&str> = stderr.lines().filter(|l| l.contains("sluice::access")).collect();
    assert_eq!(access.len(), 3, "{stderr}");
    assert!(access[0].contains("\"POST /v1/chat/completions\" 200"), "{}", access[0]);
    assert!(access[0].contains("model=\"demo\""), "{}", access[0]);
    assert!(access[1].contains("\"GET /no/such/route\" 404"), "{}", access[1]);
    assert!(access[2].contains("\"POST /v1/chat/completions\" 400"), "{}", access[2]);
    assert!(access[2].len() < 1024, "a client's model name must not make a huge line: {} bytes", access[2].len());

    let off = format!("{CONFIG}sluice_settings:\n  access_log: false\n");
    let g = start(&off, &[]);
    assert_eq!(post(g.addr, "/v1/chat/completions", &chat("demo")).status, 200);
    assert_eq!(request(g.addr, "GET", "/health/liveliness", None, b"").status, 200);
    let stderr = stop(g);
    assert!(!stderr.contains("sluice::access"), "access lines with access_log: false: {stderr}");
    assert!(stderr.contains("ready: serving"), "{stderr}");
}

#[test]
fn json_logs_from_the_config_or_the_environment_and_for_a_refused_config() {
    let from_config = start(&format!("{CONFIG}litellm_settings:\n  json_logs: true\n"), &[]);
    assert_eq!(post(from_config.addr, "/v1/chat/completions", &chat("demo")).status, 200);
    assert_eq!(access_lines(&stop(from_config)).len(), 1);

    let bad = config_file("general_settings:\n  master_key: sk-1\nmodel_list: 5\n");
    for (args, env) in [(vec!["--json_logs"], None), (vec![], Some(("JSON_LOGS", "True")))] {
        let mut cmd = Command::new(BIN);
        cmd.args(["--config", bad.as_str(), "--port", "0"]).args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<serde_json::Value> =
            stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
        assert!(
            lines.iter().any(|l| l["level"] == "ERROR"
                && l["message"].as_str().is_some_and(|m| m.contains("invalid config") && m.contains("model_list"))),
            "{stderr}"
        );
    }
}

#[test]
fn openapi_and_docs_are_served_without_secrets_or_upstreams() {
    let g = start(CONFIG, &[]);
    let doc = request(g.addr, "GET", "/openapi.json", None, b"");
    assert_eq!(doc.status, 200, "public, as LiteLLM's: {}", doc.text());
    let text = doc.text();
    let v = doc.json();
    assert_eq!(v["openapi"], "3.1.0");
    for (path, method) in [
        ("/v1/chat/completions", "post"),
        ("/chat/completions", "post"),
        ("/v1/messages", "post"),
        ("/key/generate", "post"),
        ("/health/readiness", "get"),
        ("/v1/models/{id}", "get"),
    ] {
        assert!(v["paths"][path][method].is_object(), "{method} {path} missing");
    }
    for secret in ["sk-1234", "sk-upstream-secret-value", "10.1.2.3", "hidden-upstream"] {
        assert!(!text.contains(secret), "the description reveals {secret}");
    }
    let page = request(g.addr, "GET", "/docs", None, b"");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let html = page.text().to_ascii_lowercase();
    assert!(html.contains("openapi.json"));
    assert!(!html.contains("https://") && !html.contains("http://"), "the page loads something from elsewhere");
}

#[test]
fn the_health_probe_exits_zero_only_when_the_gateway_answers() {
    let g = start(CONFIG, &[]);
    let url = format!("http://{}/health/liveliness", g.addr);
    let ok = Command::new(BIN).args(["health", "--url", &url]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // The image's HEALTHCHECK names no URL: the port comes from PORT, as the gateway's does.
    let by_port = Command::new(BIN).arg("health").env("PORT", g.addr.port().to_string()).output().unwrap();
    assert!(by_port.status.success(), "{}", String::from_utf8_lossy(&by_port.stderr));
    let not_found = Command::new(BIN).args(["health", "--url", &format!("http://{}/nope", g.addr)]).output().unwrap();
    assert_eq!(not_found.status.code(), Some(1));
    drop(g);
    // Nothing listens there now.
    let gone = Command::new(BIN).args(["health", "--url", &url, "--timeout", "2"]).output().unwrap();
    assert_eq!(gone.status.code(), Some(1));
    // A server that accepts and never answers is bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let started = Instant::now();
    let hung = Command::new(BIN).args(["health", "--url", &silent_url, "--timeout", "1"]).output().unwrap();
    assert_eq!(hung.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// At the most verbose level (`--detailed_debug`), with logging callbacks and OpenTelemetry
/// running, no prompt, no answer and no secret reaches a log line: not the master key, not a
/// virtual key, not the upstream's key (issue #22: "no secret or prompt in any log at any
/// level").
#[test]
fn the_most_verbose_logs_carry_no_prompt_and_no_secret() {
    let config = format!(
        "{CONFIG}litellm_settings:\n  callbacks: [\"otel\"]\nenvironment_variables:\n  OTEL_EXPORTER: console\n"
    );
    // `--detailed_debug` (debug everywhere), and `RUST_LOG=trace`: every crate's every line,
    // hyper's and the database driver's included.
    for (args, vars) in [(vec!["--detailed_debug"], vec![]), (vec![], vec![("RUST_LOG", "trace")])] {
        let path = config_file(&config);
        let mut all = vec!["--config", path.as_str(), "--host", "127.0.0.1", "--port", "0", "--num_workers", "2"];
        all.extend_from_slice(&args);
        let g = spawn_with(&all, "verbose", &vars);
        let key = key_with_alias(&g, "verbose-alias");
        let marker = "PROMPT-MARKER-4f1c";
        let body = format!(r#"{{"model":"demo","messages":[{{"role":"user","content":"{marker}"}}]}}"#);
        let r = request(g.addr, "POST", "/v1/chat/completions", Some(&key), body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        let call_id = r.header("x-litellm-call-id").unwrap().to_string();
        let refused = request(g.addr, "POST", "/v1/chat/completions", Some("sk-not-a-key-9d2e"), body.as_bytes());
        assert_eq!(refused.status, 401);
        // The console exporter writes each span to stdout as one OTLP/JSON object; the
        // request's span says its model, without the prompt or the key.
        let deadline = Instant::now() + Duration::from_secs(10);
        let spans = loop {
            let spans: Vec<serde_json::Value> =
                g.stdout_lines().iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
            if spans.iter().any(|s| s.to_string().contains(&call_id)) || Instant::now() > deadline {
                break spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = g.stdout_lines().join("\n");
        let span = spans.iter().find(|s| s.to_string().contains(&call_id)).unwrap_or_else(|| panic!("{stdout}"));
        assert_eq!(span["traceId"].as_str().map(str::len), Some(32), "{span}");
        let attribute = |name: &str| {
            span["attributes"].as_array().unwrap().iter().find(|a| a["key"] == name).map(|a| a["value"].clone())
        };
        assert_eq!(attribute("gen_ai.request.model"), Some(serde_json::json!({"stringValue": "demo"})), "{span}");
        let stderr = stop(g);
        assert!(stderr.lines().count() > 20, "the verbose level logs: {stderr}");
        for secret in [marker, key.as_str(), "sk-1234", "sk-upstream-secret-value", "sk-not-a-key-9d2e", "hello"] {
            assert!(!stderr.contains(secret), "{secret:?} in the logs ({args:?} {vars:?}):\n{stderr}");
            assert!(!stdout.contains(secret), "{secret:?} in the console spans ({args:?} {vars:?}):\n{stdout}");
        }
    }
}

/// `LITELLM_LOG` sets the level as LiteLLM names them (`ERROR`, `DEBUG`, ...); `RUST_LOG` wins
/// over it.
#[test]
fn litellm_log_sets_the_level_and_rust_log_wins() {
    let path = config_file(CONFIG);
    let args = ["--config", path.as_str(), "--host", "127.0.0.1", "--port", "0", "--num_workers", "2"];
    let run = |vars: &[(&str, &str)]| {
        let g = spawn_with(&args, "levels", vars);
        let r = request(g.addr, "POST", "/v1/chat/completions", Some("sk-1234"), chat("demo").as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        stop(g)
    };
    let levels = |log: &str| {
        let mut seen: Vec<&str> = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
            .into_iter()
            .filter(|level| log.lines().any(|l| l.split_whitespace().nth(1) == Some(*level)))
            .collect();
        seen.dedup();
        seen
    };
    let errors_only = run(&[("LITELLM_LOG", "ERROR")]);
    assert!(levels(&errors_only).iter().all(|l| *l == "ERROR"), "{errors_only}");
    assert!(!errors_only.contains("/v1/chat/completions"), "the access line is INFO: {errors_only}");
    let debug = run(&[("LITELLM_LOG", "DEBUG")]);
    assert!(levels(&debug).contains(&"DEBUG"), "{debug}");
    assert!(debug.contains("/v1/chat/completions"), "{debug}");
    let default = run(&[]);
    assert!(levels(&default).contains(&"INFO") && !levels(&default).contains(&"DEBUG"), "{default}");
    let rust_log = run(&[("LITELLM_LOG", "DEBUG"), ("RUST_LOG", "warn")]);
    assert!(levels(&rust_log).iter().all(|l| *l == "WARN" || *l == "ERROR"), "{rust_log}");
}
