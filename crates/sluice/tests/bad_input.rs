//! Every kind of bad input the gateway must answer (never crash, hang or leak on): malformed,
//! mistyped or oversized requests, unknown models, misbehaving upstreams, slow clients.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn setup() -> (Proc, Proc) {
    let m = mock(&[]);
    let g = gateway(&config("  max_request_size_mb: 0.05"), Some(&m));
    (m, g)
}

#[test]
fn malformed_and_mistyped_requests_get_400_envelopes() {
    let (_m, g) = setup();
    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "not a valid JSON object"),
        (b"", "empty"),
        (b"{\"model\":\"fake-openai-endpoint\",\"messages\":[\"\xff\xfe\"]}", "not valid UTF-8"),
        (br#"{"model":"fake-openai-endpoint","messages":"hello"}"#, "messages: expected a list"),
        (br#"{"model":"fake-openai-endpoint","messages":[],"stream":"yes"}"#, "stream: expected true or false"),
        (br#"{"model":42,"messages":[]}"#, "model: expected a string"),
        (br#"{"messages":[]}"#, "Missing required field `model`"),
        (br#"[1,2,3]"#, "JSON object"),
    ];
    for (body, needle) in cases {
        let r = request(g.addr, "POST", "/v1/chat/completions", Some("sk-1234"), body);
        assert_eq!(r.status, 400, "{}", r.text());
        let msg = r.error_message();
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
        assert!(r.header("x-litellm-call-id").is_some());
    }
}

#[test]
fn unknown_model_names_the_models_the_caller_may_use() {
    let (_m, g) = setup();
    let r = post(g.addr, "/chat/completions", &chat_for("gpt-17", false));
    assert_eq!(r.status, 400);
    let msg = r.error_message();
    assert!(msg.contains("Invalid model name passed in model=gpt-17"), "{msg}");
    assert!(msg.contains("fake-openai-endpoint") && msg.contains("passthrough"), "{msg}");
}

#[test]
fn oversized_bodies_get_413() {
    let (_m, g) = setup();
    let big = format!(
        r#"{{"model":"fake-openai-endpoint","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(100_000)
    );
    let r = post(g.addr, "/chat/completions", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error_message().contains("max_request_size_mb"));
}

#[test]
fn auth_failures_get_litellm_401s() {
    let (_m, g) = setup();
    let r = request(g.addr, "POST", "/chat/completions", None, CHAT.as_bytes());
    assert_eq!(r.status, 401);
    assert_eq!(r.error_message(), "Authentication Error, No api key passed in.");
    let r = request(g.addr, "POST", "/chat/completions", Some("sk-wrong-key-0000"), CHAT.as_bytes());
    assert_eq!(r.status, 401);
    assert!(r.error_message().contains("Invalid proxy server token passed"));
    assert!(!r.text().contains("sk-wrong-key-0000"), "the presented key is never echoed whole");
    // Public routes need no key.
    let r = request(g.addr, "GET", "/health/liveliness", None, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "\"I'm alive!\""));
}

#[test]
fn upstream_failures_map_to_litellm_statuses() {
    let (_m, g) = setup();
    let cases = [
        ("error-400", 400, "litellm.BadRequestError: OpenAIException - mock error 400"),
        ("error-404", 404, "litellm.NotFoundError: OpenAIException - mock error 404"),
        ("error-503", 503, "litellm.ServiceUnavailableError: OpenAIException - mock error 503"),
        ("429", 429, "litellm.RateLimitError: OpenAIException - Too many requests"),
        ("garbage", 500, "not a JSON object"),
        ("sleep-3000", 408, "litellm.Timeout"),
        ("refused", 500, "litellm.APIConnectionError"),
        ("gemini-vision", 401, "vertex_credentials"),
        ("replicate-model", 500, "REPLICATE_API_KEY"),
    ];
    for (model, status, needle) in cases {
        let started = Instant::now();
        let r = post(g.addr, "/chat/completions", &chat_for(model, false));
        assert_eq!(r.status, status, "{model}: {}", r.text());
        let msg = r.error_message();
        assert!(msg.contains(needle), "{model}: {needle:?} not in {msg:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{model} took {:?}", started.elapsed());
    }
    let r = post(g.addr, "/chat/completions", &chat_for("retry-after-7", false));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"), "upstream Retry-After reaches the client");
}

#[test]
fn broken_streams_end_with_an_error_frame() {
    let (_m, g) = setup();
    for model in ["stream-garbage", "stream-reset"] {
        let r = post(g.addr, "/chat/completions", &chat_for(model, true));
        assert_eq!(r.status, 200, "{model}: headers were already sent");
        let frames = sse_data(&r.body);
        let last = frames.last().unwrap_or_else(|| panic!("{model}: no frames in {}", r.text()));
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        assert!(v["error"]["message"].as_str().is_some(), "{model}: last frame is not an error: {last}");
        assert!(!frames.iter().any(|f| f == "[DONE]"), "{model}: a broken stream is not reported as complete");
        assert!(frames.len() >= 2, "{model}: the good chunks before the failure were relayed");
    }
    // A stream that fails before its first frame is a plain HTTP error.
    let r = post(g.addr, "/chat/completions", &chat_for("error-503", true));
    assert_eq!(r.status, 503);
    r.error_message();
}

#[test]
fn half_sent_bodies_time_out_and_free_the_connection() {
    let (_m, g) = setup();
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.write_all(b"POST /chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-1234\r\nContent-Length: 500\r\n\r\n{\"model\":").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn half_sent_headers_are_cut_off() {
    let (_m, g) = setup();
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.write_all(b"POST /chat/completions HTTP/1.1\r\nHost: t\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(started.elapsed() < Duration::from_secs(5), "connection held for {:?}", started.elapsed());
}

/// A stream's client that hangs up is noticed at the next write. Before an answer, a hang-up
/// cannot be told from a half-close (the client shut down its sending side and waits): that
/// request runs to its end and is billed (`faults.rs`).
#[test]
fn a_client_that_hangs_up_cancels_its_upstream_call() {
    let (m, g) = setup();
    let before = mock_stats(&m)["cancelled"].as_u64().unwrap();
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.write_all(&build("POST", "/chat/completions", Some("sk-1234"), chat_for("slow-stream-300", true).as_bytes()))
        .unwrap();
    let mut first = [0u8; 64];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read(&mut first).unwrap();
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = mock_stats(&m)["cancelled"].as_u64().unwrap();
        if now > before {
            break;
        }
        assert!(Instant::now() < deadline, "upstream call was not cancelled");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn floods_of_bad_requests_neither_crash_nor_leak() {
    let (_m, g) = setup();
    let bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        br#"{"model":"nope","messages":[]}"#.to_vec(),
        br#"{"model":"fake-openai-endpoint","messages":"x"}"#.to_vec(),
        chat_for("error-503", false).into_bytes(),
        chat_for("garbage", false).into_bytes(),
        chat_for("stream-reset", true).into_bytes(),
        CHAT.as_bytes().to_vec(),
    ];
    let round = |n: usize| {
        for i in 0..n {
            let r = request(g.addr, "POST", "/chat/completions", Some("sk-1234"), &bodies[i % bodies.len()]);
            assert!(r.status >= 200, "got a response");
        }
    };
    round(300);
    let warm = rss_kib(g.pid());
    round(1500);
    let after = rss_kib(g.pid());
    assert!(after < warm + 8 * 1024, "RSS grew from {warm} KiB to {after} KiB over 1500 bad requests");
    assert!(!g.stderr().contains("panicked"), "{}", g.stderr());
}

#[test]
fn a_refused_request_whose_body_arrives_late_keeps_the_connection_usable() {
    let (_m, g) = setup();
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = chat_for("fake-openai-endpoint", false);
    // Headers first, the body a moment later (as many clients send them): the key is refused
    // before the body is read, and the connection must still serve the next request.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-not-a-real-key-0000\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(body.as_bytes()).unwrap();
    let (status, head) = read_one_response(&mut s);
    assert_eq!(status, 401);
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
    s.write_all(&build("POST", "/v1/chat/completions", Some("sk-1234"), body.as_bytes())).unwrap();
    let (status, _) = read_one_response(&mut s);
    assert_eq!(status, 200);
}

#[test]
fn an_answer_that_leaves_the_body_unread_says_the_connection_closes() {
    let (_m, g) = setup();
    // Over the 0.05 MB limit (a 413 before the body is read), and over the 64 KB a refused
    // request's body is drained to keep its connection (a 401 that leaves it unread): either
    // way the connection cannot carry another request, and a client must be told so, or it
    // keeps the connection in its pool and its next request fails with no answer at all.
    let big = format!(
        r#"{{"model":"fake-openai-endpoint","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(100_000)
    );
    for (key, expected) in [("sk-1234", 413), ("sk-not-a-real-key-0000", 401)] {
        let mut s = TcpStream::connect(g.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            big.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // The gateway may answer and close before all of it is taken.
        let _ = s.write_all(big.as_bytes());
        let (status, head) = read_one_response(&mut s);
        assert_eq!(status, expected, "{head}");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "{key}: {head}");
    }
}
