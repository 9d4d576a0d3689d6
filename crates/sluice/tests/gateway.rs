//! The gateway end to end: real `sluice` in front of a real `sluice mock`, the seed's payload and
//! configs, streaming, the info routes and the command line.

mod common;
use common::*;
use std::process::Command;

/// The seed locustfile's payload: a UUID and a sentence, repeated 150 times (~16 KB).
fn seed_payload(stream: bool) -> String {
    let content =
        "3f8a6a52-8a58-4c1e-9a62-1f2b7c7d9e11 This is a test there will be no cache hits and we'll fill up the context"
            .repeat(150);
    format!(
        r#"{{"model":"fake-openai-endpoint","messages":[{{"role":"user","content":"{content}"}}],"user":"my-new-end-user-1","stream":{stream}}}"#
    )
}

#[test]
fn seed_payload_round_trip_with_litellm_headers() {
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let body = seed_payload(false);
    assert!(body.len() > 15_000);
    let r = post(g.addr, "/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "fake-openai-endpoint", "model re-stamped to the name the client asked for");
    assert_eq!(v["choices"][0]["message"]["content"], "\n\nHello there, how may I assist you today?");
    assert_eq!(v["usage"]["total_tokens"], 21);
    for h in [
        "x-litellm-call-id",
        "x-litellm-model-id",
        "x-litellm-model-api-base",
        "x-litellm-attempted-retries",
        "x-litellm-response-duration-ms",
        "x-litellm-overhead-duration-ms",
        "llm_provider-openai-processing-ms",
    ] {
        assert!(r.header(h).is_some(), "missing {h}");
    }
    assert_eq!(r.header("x-litellm-model-api-base"), Some(format!("http://{}/", m.addr).as_str()));
    assert_eq!(r.header("x-litellm-model-id").unwrap().len(), 64, "LiteLLM's deterministic sha256 id");
    // Both spellings of the route.
    assert_eq!(post(g.addr, "/v1/chat/completions", &body).status, 200);
}

#[test]
fn streams_end_cleanly_even_when_the_upstream_never_says_done() {
    let m = mock(&["--seed-compat"]);
    let g = gateway(&config(""), Some(&m));
    let r = post(g.addr, "/chat/completions", &seed_payload(true));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{}", r.text());
    let chunks: Vec<serde_json::Value> =
        frames[..frames.len() - 1].iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["model"] == "fake-openai-endpoint"));
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop", "a finish chunk is added");
    assert!(chunks.iter().all(|c| c.get("usage").is_none_or(|u| u.is_null())), "no usage unless asked");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(text.contains("fixed OpenAI endpoint"), "{text}");

    let asked =
        seed_payload(true).replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    let r = post(g.addr, "/chat/completions", &asked);
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let usage: serde_json::Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    let prompt = usage["usage"]["prompt_tokens"].as_u64().unwrap();
    let completion = usage["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(prompt > 3000, "counted the seed prompt: {prompt}");
    assert!((10..=16).contains(&completion), "counted the 11 words: {completion}");
    assert_eq!(usage["usage"]["total_tokens"].as_u64().unwrap(), prompt + completion);
}

/// A stream whose upstream reports no usage, from an unpriced deployment, to a client that did not
/// ask for usage: its tokens still reach the token metrics, counted by the gateway.
#[test]
fn a_streams_tokens_are_counted_for_the_metrics_when_nobody_reports_them() {
    let m = mock(&["--seed-compat"]);
    let cfg = "model_list:\n  - model_name: fake-openai-endpoint\n    litellm_params:\n      model: openai/fake\n      api_base: {MOCK}\nlitellm_settings:\n  callbacks: [\"prometheus\"]\ngeneral_settings:\n  master_key: sk-1234\n";
    let g = gateway(cfg, Some(&m));
    let r = post(g.addr, "/chat/completions", &seed_payload(true));
    assert_eq!(r.status, 200);
    assert!(sse_data(&r.body).iter().all(|f| !f.contains("\"usage\":{")), "no usage unless asked");
    let sum = |metrics: &str, name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l.contains("fake-openai-endpoint"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // Settled as the stream ends, just after its last bytes: give the metrics a moment.
    let mut metrics = get(g.addr, "/metrics").text();
    for _ in 0..50 {
        if sum(&metrics, "litellm_input_tokens_metric_total") > 0.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        metrics = get(g.addr, "/metrics").text();
    }
    let input = sum(&metrics, "litellm_input_tokens_metric_total");
    assert!(input > 3000.0, "the seed prompt counted: {metrics}");
    let output = sum(&metrics, "litellm_output_tokens_metric_total");
    assert!((10.0..=16.0).contains(&output), "the 11 words counted: {output}");
}

#[test]
fn upstream_usage_is_relayed_not_recounted() {
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let body = CHAT.replace("\"messages\"", "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\"");
    let frames = sse_data(&post(g.addr, "/chat/completions", &body).body);
    let usages: Vec<_> = frames.iter().filter(|f| f.contains("\"usage\":{")).collect();
    assert_eq!(usages.len(), 1, "exactly one usage chunk: {frames:?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(frames.iter().filter(|f| *f == "[DONE]").count(), 1);
}

#[test]
fn completions_embeddings_and_path_models() {
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let r = post(g.addr, "/v1/completions", r#"{"model":"fake-openai-endpoint","prompt":"Say hi"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "fake-openai-endpoint");
    let r =
        post(g.addr, "/embeddings", r#"{"model":"fake-openai-endpoint","input":["a","b"],"encoding_format":"base64"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["data"][0]["embedding"].is_string(), "base64 passes through untouched");
    // Azure- and engines-style routes take the model from the path, even without one in the body.
    let chat = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    for (path, body) in [
        ("/openai/deployments/fake-openai-endpoint/chat/completions", chat),
        ("/engines/fake-openai-endpoint/chat/completions", chat),
        ("/v1/openai/deployments/fake-openai-endpoint/completions", r#"{"prompt":"hi"}"#),
        ("/v1/engines/fake-openai-endpoint/embeddings", r#"{"input":["a"]}"#),
    ] {
        let r = post(g.addr, path, body);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json()["model"], "fake-openai-endpoint", "{path}");
    }
}

#[test]
fn info_and_health_routes() {
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let v = get(g.addr, "/v1/models").json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(&ids[..3], ["fake-openai-endpoint", "passthrough", "refused"]);
    assert_eq!(v["data"][0]["owned_by"], "openai");
    assert_eq!(v["data"][0]["created"], 1677610602);
    assert_eq!(get(g.addr, "/models/fake-openai-endpoint").json()["id"], "fake-openai-endpoint");
    assert_eq!(get(g.addr, "/models/nope").status, 404);
    let info = get(g.addr, "/model/info");
    assert!(!info.text().contains("fake-key"), "secrets are stripped from /model/info");
    let info = info.json();
    assert_eq!(info["data"][0]["model_name"], "fake-openai-endpoint");
    assert_eq!(info["data"][0]["model_info"]["id"].as_str().unwrap().len(), 64);
    let r = request(g.addr, "GET", "/health/readiness", None, b"");
    assert_eq!(r.json()["status"], "healthy");
    assert_eq!(request(g.addr, "GET", "/", None, b"").status, 200);
    assert_eq!(request(g.addr, "GET", "/no/such/route", None, b"").status, 404);
    assert_eq!(request(g.addr, "GET", "/models", None, b"").status, 401, "model lists need a key");
}

#[test]
fn mock_response_needs_no_upstream() {
    let g = gateway(
        "model_list:\n  - model_name: demo\n    litellm_params:\n      model: openai/gpt-4o\n      mock_response: Hello from sluice\n",
        None,
    );
    let r = request(
        g.addr,
        "POST",
        "/chat/completions",
        None,
        br#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "Hello from sluice");
    let r = request(g.addr, "POST", "/chat/completions", None, br#"{"model":"demo","stream":true,"messages":[]}"#);
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert!(g.stderr().contains("NO MASTER KEY IS SET"), "an open gateway warns loudly");
}

#[test]
fn check_validates_configs_and_names_the_fix() {
    let dir = std::env::temp_dir().join(format!("sluice-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_base: 'http://127.0.0.1:1/'}\nlitellm_settings:\n  callbacks: [\"lunary\"]\n").unwrap();
    let out = Command::new(BIN).args(["check", "--config", good.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("m -> openai/x"), "{stdout}");
    assert!(stdout.contains("lunary"), "ignored settings are listed: {stdout}");

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, timeout: soon}\n")
        .unwrap();
    for args in [vec!["check", "--config"], vec!["--config"]] {
        let mut a = args.clone();
        a.push(bad.to_str().unwrap());
        let out = Command::new(BIN).args(&a).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{a:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("model_list[0].litellm_params.timeout: expected a number, got \"soon\""), "{stderr}");
    }

    // A provider sluice does not know loads, as in LiteLLM: the deployment answers its own
    // requests with the fix, `check` names it, and `check --strict` fails on it.
    let typo = dir.join("typo.yaml");
    std::fs::write(&typo, "model_list:\n  - model_name: m\n    litellm_params: {model: vertexai/gemini-pro}\n")
        .unwrap();
    let out = Command::new(BIN).args(["check", "--config", typo.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "model_list[0].litellm_params.model: unknown provider \"vertexai\" (did you mean \"vertex_ai\"?)"
        ),
        "{stdout}"
    );
    let out = Command::new(BIN).args(["check", "--strict", "--config", typo.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));

    // A LiteLLM prefix sluice knows but does not serve loads too, and `check` says why.
    let unserved = dir.join("unserved.yaml");
    std::fs::write(
        &unserved,
        "model_list:\n  - model_name: m\n    litellm_params: {model: snowflake/mistral-large2}\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["check", "--config", unserved.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cannot serve: provider snowflake is not implemented in sluice"), "{stdout}");
    assert!(stdout.contains("provider snowflake is not implemented in sluice: Snowflake Cortex"), "{stdout}");
    let out = Command::new(BIN).args(["check", "--strict", "--config", unserved.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn environment_variables_configure_serving() {
    let dir = std::env::temp_dir().join(format!("sluice-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.yaml");
    std::fs::write(
        &cfg,
        "model_list:\n  - model_name: demo\n    litellm_params: {model: openai/x, mock_response: hi}\n",
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("CONFIG_FILE_PATH", &cfg)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LITELLM_MASTER_KEY", "sk-env-master")
        .env("DATABASE_URL", "sqlite::memory:")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line);
    if read.is_err() || line.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sluice did not start: {read:?}");
    }
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = request(addr, "POST", "/chat/completions", Some("sk-env-master"), br#"{"model":"demo","messages":[]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(addr, "POST", "/chat/completions", Some("sk-1234"), b"{}").status, 401);
    let _ = child.kill();
    let _ = child.wait();
}

/// A kept-alive chat request, as the SDKs send them.
fn keep_alive_chat(body: &str) -> Vec<u8> {
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-1234\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body.as_bytes()].concat()
}

#[test]
fn one_connection_carries_proxied_calls_other_routes_and_pipelined_requests() {
    use std::io::Write;
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let mut s = connect(g.addr);
    let chat = keep_alive_chat(&seed_payload(false));
    s.write_all(&chat).unwrap();
    let (status, head) = read_one_response(&mut s);
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("\r\ndate: "), "a date header, as hyper sent: {head}");
    // Two requests in one write: both answered, in order.
    s.write_all(&[chat.clone(), chat.clone()].concat()).unwrap();
    for _ in 0..2 {
        assert_eq!(read_one_response(&mut s).0, 200);
    }
    // A route served by the router (hyper from here on), then a proxied call again.
    s.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_one_response(&mut s).0, 200);
    s.write_all(&chat).unwrap();
    assert_eq!(read_one_response(&mut s).0, 200);
}

#[test]
fn chunked_and_expect_continue_requests_are_served() {
    use std::io::{Read, Write};
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let body = seed_payload(false);
    let (first, second) = body.split_at(body.len() / 2);
    let chunked = format!(
        "POST /chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-1234\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let r = raw(g.addr, chunked.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "fake-openai-endpoint");

    let mut s = connect(g.addr);
    let head = format!(
        "POST /chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-1234\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    assert_eq!(read_one_response(&mut s).0, 200);
}

#[test]
fn streams_are_chunked_on_kept_alive_connections() {
    use std::io::{Read, Write};
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let mut s = connect(g.addr);
    s.write_all(&keep_alive_chat(&seed_payload(true))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"\r\n0\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the stream's last chunk: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200 ok\r\n"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(text.contains("data: [done]"), "{text}");
    // The connection is still good for the next request.
    s.write_all(&keep_alive_chat(&seed_payload(false))).unwrap();
    assert_eq!(read_one_response(&mut s).0, 200);
}

#[test]
fn answers_carry_the_same_headers_whoever_writes_their_head() {
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let names = |r: &Response| {
        let mut names: Vec<String> = r
            .headers
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !["date", "content-length", "transfer-encoding", "connection"].contains(&n.as_str()))
            .collect();
        names.sort();
        names
    };
    for (model, stream) in [("fake-openai-endpoint", false), ("fake-openai-endpoint", true), ("error-503", false)] {
        let body = chat_for(model, stream);
        // A Content-Length body: served by listen/direct.rs.
        let direct = raw(g.addr, &build("POST", "/chat/completions", Some("sk-1234"), body.as_bytes()));
        // A chunked body: handed to hyper.
        let chunked = format!(
            "POST /chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-1234\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        let hyper = raw(g.addr, chunked.as_bytes());
        assert_eq!(direct.status, hyper.status, "{model} stream={stream}");
        assert_eq!(names(&direct), names(&hyper), "{model} stream={stream}");
        assert!(names(&direct).iter().any(|n| n.starts_with("llm_provider-")), "{model}: {:?}", names(&direct));
        assert_eq!(direct.header("x-litellm-attempted-retries"), hyper.header("x-litellm-attempted-retries"));
    }
}

#[test]
fn shutdown_answers_the_request_in_flight_and_closes_idle_connections() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let m = mock(&[]);
    let mut g = gateway(&config(""), Some(&m));
    // An idle kept-alive connection, after one answered request.
    let mut idle = connect(g.addr);
    idle.write_all(&keep_alive_chat(&seed_payload(false))).unwrap();
    assert_eq!(read_one_response(&mut idle).0, 200);
    // A request still waiting on its upstream (the deployment's 1 s timeout ends it).
    let mut busy = connect(g.addr);
    let slow = chat_for("sleep-3000", false);
    let head = format!(
        "POST /chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-1234\r\nContent-Length: {}\r\n\r\n",
        slow.len()
    );
    busy.write_all(&[head.as_bytes(), slow.as_bytes()].concat()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill").args(["-TERM", &g.pid().to_string()]).status().unwrap();
    assert!(kill.success());
    let mut byte = [0u8; 1];
    assert_eq!(idle.read(&mut byte).unwrap(), 0, "the idle connection is closed");
    assert!(signalled.elapsed() < Duration::from_millis(500), "closed at once: {:?}", signalled.elapsed());
    let (status, head) = read_one_response(&mut busy);
    assert!(status >= 400, "the request in flight still gets its answer: {head}");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the gateway did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    }
}
