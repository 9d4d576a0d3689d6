//! What a caller can see and what it cannot erase, end to end (real `sluice` and `sluice mock`
//! processes): `/metrics` behind `require_auth_for_metrics_endpoint`, spend-log rows that a
//! repeated client call id cannot merge, and spend recorded for calls whose client hung up.

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A gateway in front of the mock with priced deployments (so spend is never zero), spend
/// written every 0.2 s, and `extra_litellm` / `extra_general` added to those sections.
fn priced_config(extra_litellm: &str, extra_general: &str) -> String {
    let mut models = String::new();
    for (name, upstream) in [("fake", "fake"), ("slow", "sleep-1000"), ("slow-stream", "slow-stream-200")] {
        models.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{upstream}\n      api_base: {{MOCK}}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n"
        ));
    }
    format!(
        "model_list:\n{models}litellm_settings:\n  callbacks: [\"prometheus\"]\n{extra_litellm}general_settings:\n  master_key: sk-1234\n  proxy_batch_write_at: 0.2\n{extra_general}"
    )
}

/// `request` with one more header.
fn with_header(mut request: Vec<u8>, name: &str, value: &str) -> Vec<u8> {
    let at = request.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let line = format!("{name}: {value}\r\n");
    request.splice(at..at, line.into_bytes());
    request
}

/// A new virtual key: (raw key, its hash).
fn new_key(addr: SocketAddr) -> (String, String) {
    let r = post(addr, "/key/generate", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    (v["key"].as_str().unwrap().to_string(), v["token"].as_str().unwrap().to_string())
}

/// The spend-log rows matching `query` once there are at least `n` (waiting for the batch write).
fn rows(addr: SocketAddr, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(addr, &format!("/spend/logs?summarize=false&{query}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = r.json().as_array().unwrap().clone();
        if rows.len() >= n {
            return rows;
        }
        assert!(Instant::now() < deadline, "{} of {n} rows for {query} after 15 s", rows.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn key_spend(addr: SocketAddr, key: &str) -> f64 {
    let r = get(addr, &format!("/key/info?key={key}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["info"]["spend"].as_f64().unwrap()
}

#[test]
fn metrics_are_public_by_default_and_need_a_valid_key_when_asked() {
    let m = mock(&[]);
    let open = gateway(&priced_config("", ""), Some(&m));
    let r = request(open.addr, "GET", "/metrics", None, b"");
    assert_eq!(r.status, 200, "LiteLLM's default: public");
    drop(open);

    for (litellm, general) in
        [("  require_auth_for_metrics_endpoint: true\n", ""), ("", "  require_auth_for_metrics_endpoint: true\n")]
    {
        let g = gateway(&priced_config(litellm, general), Some(&m));
        // A request with a virtual key, so the scrape would name its hash.
        let (key, token) = new_key(g.addr);
        let r = request(g.addr, "POST", "/chat/completions", Some(&key), chat_for("fake", false).as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());

        for refused in [None, Some("sk-not-a-key-at-all-0000"), Some("not-even-sk")] {
            let r = request(g.addr, "GET", "/metrics", refused, b"");
            assert_eq!(r.status, 401, "{refused:?}: {}", r.text());
            let text: String = serde_json::from_slice(&r.body).expect("a JSON string, as LiteLLM answers");
            assert!(text.starts_with("Unauthorized access to metrics endpoint: "), "{text}");
            assert!(!r.text().contains(&token[..16]), "a refused scrape shows no series");
        }
        let r = request(g.addr, "GET", "/metrics", Some("sk-1234"), b"");
        assert_eq!(r.status, 200);
        assert!(r.text().contains(&token), "the master key reads the series");
        let r = request(g.addr, "GET", "/metrics", Some(&key), b"");
        assert_eq!(r.status, 200, "a valid virtual key may scrape, as in LiteLLM");

        // A blocked key may not.
        assert_eq!(post(g.addr, "/key/block", &format!(r#"{{"key":"{key}"}}"#)).status, 200);
        let r = request(g.addr, "GET", "/metrics", Some(&key), b"");
        assert_eq!(r.status, 401, "{}", r.text());
    }
}

#[test]
fn a_repeated_client_call_id_cannot_erase_spend_log_rows() {
    let m = mock(&[]);
    let g = gateway(&priced_config("", ""), Some(&m));
    let call_id = format!("client-chosen-{}", std::process::id());
    for _ in 0..20 {
        let req = with_header(
            build("POST", "/chat/completions", Some("sk-1234"), chat_for("fake", false).as_bytes()),
            "x-litellm-call-id",
            &call_id,
        );
        let r = raw(g.addr, &req);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-litellm-call-id"), Some(call_id.as_str()), "the client's id comes back");
    }
    let logged = rows(g.addr, &format!("request_id={call_id}"), 20);
    assert_eq!(logged.len(), 20, "one row per request");
    let mut ids: Vec<&str> = logged.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each row has an id of its own: {ids:?}");
    assert!(!ids.contains(&call_id.as_str()), "the client's id is not a row's identity");
    for r in &logged {
        assert_eq!(r["client_call_id"], Value::String(call_id.clone()), "{r}");
        assert!(r["spend"].as_f64().unwrap() > 0.0, "{r}");
    }
    // A row is still found by its own id.
    let own = rows(g.addr, &format!("request_id={}", ids[0]), 1);
    assert_eq!(own.len(), 1);
}

/// Sends `request`, waits `wait`, and hangs up.
fn send_and_hang_up(addr: SocketAddr, request: &[u8], wait: Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request).unwrap();
    std::thread::sleep(wait);
    drop(s);
}

#[test]
fn a_client_that_hangs_up_before_the_answer_is_still_billed() {
    let m = mock(&[]);
    let g = gateway(&priced_config("", ""), Some(&m));
    let (key, token) = new_key(g.addr);
    let body = chat_for("slow", false);
    let chunked = format!(
        "POST /chat/completions HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let anthropic = r#"{"model":"slow","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#;
    let paths = [
        ("sluice's own HTTP/1.1 path", build("POST", "/chat/completions", Some(&key), body.as_bytes())),
        ("hyper's path (a chunked body)", chunked.into_bytes()),
        ("the Anthropic front door", build("POST", "/v1/messages", Some(&key), anthropic.as_bytes())),
    ];
    let mut unbilled = Vec::new();
    for (n, (path, request)) in paths.iter().enumerate() {
        // The mock answers after 1 s; the client leaves after 0.2 s.
        send_and_hang_up(g.addr, request, Duration::from_millis(200));
        let deadline = Instant::now() + Duration::from_secs(6);
        let logged = loop {
            let logged = get(g.addr, &format!("/spend/logs?summarize=false&api_key={token}")).json();
            let logged = logged.as_array().unwrap().clone();
            if logged.len() > n || Instant::now() > deadline {
                break logged;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if logged.len() <= n {
            unbilled.push(*path);
            continue;
        }
        let row = &logged[0];
        assert_eq!(row["status"], "success", "{path}: {row}");
        assert!(row["completion_tokens"].as_i64().unwrap() > 0, "{path}: billed for the answer given: {row}");
        assert!(row["spend"].as_f64().unwrap() > 0.0, "{path}: {row}");
    }
    assert!(unbilled.is_empty(), "no spend-log row for a call whose client hung up on {unbilled:?}");
    let logged: f64 = rows(g.addr, &format!("api_key={token}"), 3).iter().map(|r| r["spend"].as_f64().unwrap()).sum();
    assert!((key_spend(g.addr, &key) - logged).abs() < 1e-12, "the key's spend rose by what was logged");
}

#[test]
fn a_stream_cut_by_its_client_is_billed_for_what_was_generated() {
    let m = mock(&[]);
    let g = gateway(&priced_config("", ""), Some(&m));
    // The whole stream, for comparison.
    let whole = post(g.addr, "/chat/completions", &chat_for("slow-stream", true));
    assert_eq!(whole.status, 200);
    let all_text = stream_text(&sse_data(&whole.body));
    assert!(all_text.split_whitespace().count() >= 5, "{all_text}");

    let (key, token) = new_key(g.addr);
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&build("POST", "/chat/completions", Some(&key), chat_for("slow-stream", true).as_bytes())).unwrap();
    // Read until the first content chunk, then hang up.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"content\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let logged = rows(g.addr, &format!("api_key={token}"), 1);
    let row = &logged[0];
    let completion = row["completion_tokens"].as_i64().unwrap();
    assert!(completion > 0, "billed for the chunks generated: {row}");
    assert!(row["spend"].as_f64().unwrap() > 0.0, "{row}");
    assert!(key_spend(g.addr, &key) > 0.0);
    // Less than the whole answer: the upstream stream was stopped when the client left.
    let full = rows(g.addr, "", 2)
        .into_iter()
        .find(|r| r["api_key"] != Value::String(token.clone()))
        .expect("the whole stream's row");
    assert!(completion < full["completion_tokens"].as_i64().unwrap(), "cut: {row}, whole: {full}");
}

#[test]
fn a_call_whose_client_left_is_billed_even_when_sigterm_follows() {
    let m = mock(&[]);
    let db = std::env::temp_dir().join(format!("sluice-authz-sigterm-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let config = priced_config("", &format!("  database_url: sqlite://{}\n", db.display()));
    let mut g = gateway(&config, Some(&m));
    let (key, token) = new_key(g.addr);
    let request = build("POST", "/chat/completions", Some(&key), chat_for("slow", false).as_bytes());
    send_and_hang_up(g.addr, &request, Duration::from_millis(200));
    // SIGTERM while the call runs on (the mock answers 1 s after it was sent): the gateway waits
    // for it, bills it, and writes the spend before it exits.
    let killed = std::process::Command::new("kill").args(["-TERM", &g.pid().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while g.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the gateway did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Started again on the same database: the row and the key's spend were written.
    let again = gateway(&config, Some(&m));
    let logged = rows(again.addr, &format!("api_key={token}"), 1);
    let spend = logged[0]["spend"].as_f64().unwrap();
    assert!(spend > 0.0, "{}", logged[0]);
    assert!((key_spend(again.addr, &key) - spend).abs() < 1e-12);
    drop(again);
    let _ = std::fs::remove_file(&db);
}
