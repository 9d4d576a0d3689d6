//! A request's own controls end to end (real `sluice` and `sluice mock` processes): `fallbacks`
//! in the body (checked against the key's models), `num_retries`, `timeout` and the
//! `x-litellm-timeout` header, a deployment's own `num_retries`, LiteLLM's testing switches
//! (`mock_response`, `mock_testing_fallbacks`, `mock_testing_rate_limit_error`, `mock_timeout`),
//! and that none of these fields reaches the upstream.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config(db: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: primary
    litellm_params: {{model: openai/error-503, api_base: "{{MOCK}}"}}
  - model_name: backup
    litellm_params: {{model: openai/fake, api_base: "{{MOCK}}", input_cost_per_token: 0.001, output_cost_per_token: 0.002}}
  - model_name: other
    litellm_params: {{model: openai/fake, api_base: "{{MOCK}}"}}
  - model_name: slow
    litellm_params: {{model: openai/sleep-3000, api_base: "{{MOCK}}"}}
  - model_name: stubborn
    litellm_params: {{model: openai/error-503, api_base: "{{MOCK}}", num_retries: 1}}
router_settings:
  num_retries: 0
  retry_after: 0
  fallbacks: [{{"primary": ["other"]}}]
general_settings:
  master_key: sk-1234
  database_url: sqlite://{db}
"#
    )
}

fn start() -> (Proc, Proc) {
    let m = mock(&[]);
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = std::env::temp_dir().join(format!("sluice-controls-{}-{n}.db", std::process::id()));
    let g = gateway(&config(db.to_str().unwrap()), Some(&m));
    (m, g)
}

fn chats(m: &Proc) -> u64 {
    mock_stats(m)["by_route"]["chat"].as_u64().unwrap_or(0)
}

fn body(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

#[test]
fn body_fallbacks_replace_the_configured_ones_and_are_checked_against_the_key() {
    let (m, g) = start();
    // The configured fallback would be `other`; the request's own list names `backup`.
    let r = post(g.addr, "/chat/completions", &body("primary", r#","fallbacks":["backup"]"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert!(r.header("x-litellm-model-id").is_some());

    // `{model, messages}` entries work the same way.
    let r = post(
        g.addr,
        "/chat/completions",
        &body("primary", r#","fallbacks":[{"model":"backup","messages":[{"role":"user","content":"other words"}]}]"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // An unknown fallback is refused before any attempt.
    let before = chats(&m);
    let r = post(g.addr, "/chat/completions", &body("primary", r#","fallbacks":["nope"]"#));
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("fallbacks: no model named `nope`"), "{}", r.text());
    assert_eq!(chats(&m), before, "nothing was sent upstream");

    // A key limited to `primary` may not fall back to `backup`: LiteLLM's 401.
    let k = post(g.addr, "/key/generate", r#"{"models":["primary"]}"#);
    assert_eq!(k.status, 200, "{}", k.text());
    let key = k.json()["key"].as_str().unwrap().to_string();
    let r = request(
        g.addr,
        "POST",
        "/chat/completions",
        Some(&key),
        body("primary", r#","fallbacks":["backup"]"#).as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let msg = r.error_message();
    assert!(msg.contains("key not allowed to access model") && msg.contains("Tried to access backup"), "{msg}");
    assert_eq!(chats(&m), before, "refused before the first attempt");

    // Malformed controls get the envelope and a 400, never a 5xx.
    for (extra, param) in [
        (r#","fallbacks":"backup""#, "fallbacks"),
        (r#","num_retries":-1"#, "num_retries"),
        (r#","timeout":0"#, "timeout"),
        (r#","mock_testing_fallbacks":"yes""#, "mock_testing_fallbacks"),
        (r#","mock_response":{"x":1}"#, "mock_response"),
    ] {
        let r = post(g.addr, "/chat/completions", &body("backup", extra));
        assert_eq!(r.status, 400, "{extra}: {}", r.text());
        r.error_message();
        assert_eq!(r.json()["error"]["param"], param);
    }
}

#[test]
fn num_retries_from_the_request_and_from_the_deployment() {
    let (m, g) = start();
    let before = chats(&m);
    let r = post(g.addr, "/chat/completions", &body("primary", r#","num_retries":2,"disable_fallbacks":true"#));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(chats(&m) - before, 3, "one try and the two retries the request asked for");
    assert_eq!(r.header("x-litellm-attempted-retries"), Some("2"));
    assert_eq!(r.header("x-litellm-max-retries"), Some("2"));
    assert!(r.header("x-litellm-attempted-fallbacks").is_none(), "disable_fallbacks");

    // The deployment's own `num_retries: 1` applies though the router says 0.
    let before = chats(&m);
    let r = post(g.addr, "/chat/completions", &body("stubborn", ""));
    assert_eq!(r.status, 503);
    assert_eq!(chats(&m) - before, 2);
}

#[test]
fn timeout_and_the_timeout_header_bound_each_attempt() {
    let (_m, g) = start();
    let t = Instant::now();
    let r = post(g.addr, "/chat/completions", &body("slow", r#","timeout":0.3"#));
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.error_message().contains("timed out after 0.3 seconds"), "{}", r.text());
    assert!(t.elapsed() < Duration::from_millis(2_500), "the deployment's 3 s answer was not awaited");

    let req = build("POST", "/chat/completions", Some("sk-1234"), body("slow", r#","timeout":30"#).as_bytes());
    let at = req.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut with = req.clone();
    with.splice(at..at, b"x-litellm-timeout: 0.2\r\n".iter().copied());
    let t = Instant::now();
    let r = raw(g.addr, &with);
    assert_eq!(r.status, 408, "the header wins over the body: {}", r.text());
    assert!(t.elapsed() < Duration::from_millis(2_500));
    let mut bad = req;
    bad.splice(at..at, b"x-litellm-timeout: soon\r\n".iter().copied());
    let r = raw(g.addr, &bad);
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("x-litellm-timeout"));
}

#[test]
fn testing_switches_answer_or_fail_without_the_upstream() {
    let (m, g) = start();
    let before = chats(&m);
    // mock_response: an answer with that text, billed with LiteLLM's mock usage.
    let r = post(g.addr, "/chat/completions", &body("backup", r#","mock_response":"It's simple to use!""#));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "It's simple to use!");
    assert_eq!(v["model"], "backup");
    assert_eq!(v["usage"]["total_tokens"], 30);
    let cost: f64 = r.header("x-litellm-response-cost").unwrap().parse().unwrap();
    assert!((cost - (10.0 * 0.001 + 20.0 * 0.002)).abs() < 1e-9, "billed {cost}");
    // Streamed.
    let r = post(g.addr, "/chat/completions", &body("backup", r#","stream":true,"mock_response":"a b c""#));
    assert_eq!(r.status, 200);
    assert_eq!(stream_text(&sse_data(&r.body)), "a b c");
    // An exception name fails as that exception.
    let r = post(g.addr, "/chat/completions", &body("backup", r#","mock_response":"litellm.RateLimitError""#));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.error_message().starts_with("litellm.RateLimitError"), "{}", r.text());
    // Embeddings cannot be mocked: the request's fault, a 400.
    let r = post(g.addr, "/embeddings", r#"{"model":"backup","input":"x","mock_response":"hi"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("mock_response answers chat and completion requests only"));
    // mock_testing_rate_limit_error: the requested model answers 429.
    let r = post(g.addr, "/chat/completions", &body("backup", r#","mock_testing_rate_limit_error":true"#));
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(chats(&m), before, "none of these reached the upstream");

    // mock_testing_fallbacks: the requested model fails, its configured fallback answers; the
    // deployment is not cooled, so the next plain request still reaches it.
    let r =
        post(g.addr, "/chat/completions", &body("backup", r#","mock_testing_fallbacks":true,"fallbacks":["other"]"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(chats(&m) - before, 1, "only the fallback was called");
    let r = post(g.addr, "/chat/completions", &body("backup", ""));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-litellm-attempted-fallbacks").is_none());

    // mock_timeout: the attempt waits its timeout and fails as a timeout.
    let t = Instant::now();
    let r = post(g.addr, "/chat/completions", &body("backup", r#","mock_timeout":true,"timeout":0.2"#));
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(t.elapsed() >= Duration::from_millis(200));
}

/// A one-shot upstream that records the body it was sent and answers a fixed completion.
fn capturing_upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bodies = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
                }
            };
            if let Some(b) = body {
                bodies.lock().unwrap().push(b);
            }
            let answer = r#"{"id":"x","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (addr, seen)
}

#[test]
fn the_gateways_fields_never_reach_the_upstream() {
    let (up, seen) = capturing_upstream();
    let g = gateway(
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/up, api_base: \"http://{up}/\"}}\n  - model_name: n\n    litellm_params: {{model: openai/up, api_base: \"http://{up}/\"}}\ngeneral_settings:\n  master_key: sk-1234\n"
        ),
        None,
    );
    let r = post(
        g.addr,
        "/chat/completions",
        r#"{"fallbacks":["n"],"model":"m","num_retries":1,"messages":[{"role":"user","content":"keep \"fallbacks\" here"}],"timeout":20,"temperature":0.5,"disable_fallbacks":false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let sent: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"model": "up", "messages": [{"role": "user", "content": "keep \"fallbacks\" here"}], "temperature": 0.5}),
        "{}",
        bodies[0]
    );

    // A body without controls goes as sent, whitespace and all, with only `model` rewritten.
    let plain = r#"{ "model" : "m",  "messages":[{"role":"user","content":"x"}] ,"temperature": 1.50 }"#;
    let r = post(g.addr, "/chat/completions", plain);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(seen.lock().unwrap().last().unwrap(), &plain.replace(r#""m""#, r#""up""#));

    // A `{model, messages}` fallback sends its own messages to its model.
    let r = post(
        g.addr,
        "/chat/completions",
        r#"{"model":"m","messages":[{"role":"user","content":"first"}],"mock_testing_fallbacks":true,"fallbacks":[{"model":"n","messages":[{"role":"user","content":"second"}]}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3, "the requested model was never called: {bodies:?}");
    let sent: serde_json::Value = serde_json::from_str(&bodies[2]).unwrap();
    assert_eq!(sent, serde_json::json!({"model": "up", "messages": [{"role": "user", "content": "second"}]}));
}
