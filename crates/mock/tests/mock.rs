//! End-to-end tests: a real mock on an ephemeral port, driven by a plain hyper client.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use http::{Method, StatusCode};
use sluice_mock::{Latency, MockConfig, RateLimitRule, STREAM_SENTENCE};
use tokio::io::AsyncWriteExt;

const CHAT: &str = r#"{"messages":[{"role":"user","content":"hi"}],"model":"fake-openai-endpoint"}"#;

fn chat(model: &str, stream: bool) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"stream":{stream}}}"#)
}

fn vertex_path(project: &str, verb: &str) -> String {
    format!("/v1/projects/{project}/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001:{verb}")
}

const BEARER: (&str, &str) = ("authorization", "Bearer ya29.test");

#[tokio::test]
async fn chat_non_stream_is_the_seed_body() {
    let addr = start(MockConfig::bare()).await;
    for path in [
        "/chat/completions",
        "/v1/chat/completions",
        "/openai/deployments/fake-openai-endpoint/chat/completions",
        "/engines/fake-openai-endpoint/chat/completions",
    ] {
        let r = post(addr, path, CHAT).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("openai-processing-ms"), Some("1"));
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("9999"));
        let v = r.json();
        assert_eq!(v["model"], "fake-openai-endpoint");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["created"], 1677652288);
        assert_eq!(v["system_fingerprint"], "fp_44709d6fcb");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"], serde_json::json!({"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}));
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }
}

#[tokio::test]
async fn chat_stream_ends_with_finish_usage_and_done() {
    let addr = start(MockConfig::bare()).await;
    let body = r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#;
    let r = post(addr, "/v1/chat/completions", body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let frames = r.sse();
    assert_eq!(frames.len(), 11 + 3);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = frames[..13].iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    let text: String = chunks[..11].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, STREAM_SENTENCE);
    assert_eq!(chunks[11]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[12]["usage"]["total_tokens"], 21);

    // Without include_usage: no usage chunk.
    let r = post(addr, "/chat/completions", &chat("m", true)).await;
    assert_eq!(r.sse().len(), 11 + 2);
}

#[tokio::test]
async fn seed_compat_stream_just_stops() {
    let cfg = MockConfig { seed_compat: true, ..MockConfig::bare() };
    let addr = start(cfg).await;
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
    let frames = post(addr, "/chat/completions", body).await.sse();
    assert_eq!(frames.len(), 11);
    for f in &frames {
        let v: serde_json::Value = serde_json::from_str(f).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        assert!(v["choices"][0].get("finish_reason").is_none());
        assert!(v.get("usage").is_none());
    }
}

#[tokio::test]
async fn completions_and_models() {
    let addr = start(MockConfig::bare()).await;
    let r = post(addr, "/v1/completions", r#"{"model":"m","prompt":"hi"}"#).await;
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["total_tokens"], 26);
    let frames = post(addr, "/completions", r#"{"model":"m","prompt":"hi","stream":true}"#).await.sse();
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let first: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(first["choices"][0]["text"], "Hello");

    for path in ["/models", "/v1/models"] {
        let v = get(addr, path).await.json();
        assert_eq!(v["object"], "list");
        assert!(!v["data"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let addr = start(MockConfig::bare()).await;
    let r = post(addr, "/v1/embeddings", r#"{"model":"e","input":["a","b"]}"#).await;
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"], serde_json::json!({"prompt_tokens":5,"total_tokens":5}));
    let floats: Vec<f32> =
        v["data"][0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(floats.len(), 400);

    let r = post(addr, "/embeddings", r#"{"model":"e","input":"a","encoding_format":"base64"}"#).await;
    let v = r.json();
    let raw = base64::engine::general_purpose::STANDARD.decode(v["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let decoded: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(decoded, floats);
}

#[tokio::test]
async fn rate_limit_fixed_window() {
    let cfg = MockConfig {
        rate_limits: vec![RateLimitRule::parse("/v1/projects/limited=5/2s").unwrap()],
        ..MockConfig::bare()
    };
    let addr = start(cfg).await;
    let path = vertex_path("limited", "generateContent");
    let mut c = Client::connect(addr).await;
    for i in 0..5 {
        let r = c.send(Method::POST, &path, &[BEARER], "{}").await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
    }
    let r = c.send(Method::POST, &path, &[BEARER], "{}").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text(), r#"{"error":"Rate limit exceeded: 5 per 2 second"}"#);
    assert!(r.header("retry-after").is_none());
    // Other routes are not limited.
    let other = vertex_path("free", "generateContent");
    assert_eq!(c.send(Method::POST, &other, &[BEARER], "{}").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = c.send(Method::POST, &path, &[BEARER], "{}").await;
    assert_eq!(r.status, StatusCode::OK, "a new window opens");
    assert_eq!(stats(addr).await["rate_limited"], 1);
}

#[tokio::test]
async fn default_config_limits_the_seed_route() {
    let cfg = MockConfig::default();
    assert_eq!(cfg.rate_limits[0].prefix, "/v1/projects/bad-adroit-crow-413218");
    assert_eq!(cfg.rate_limits[0].limit, 10000);
    assert_eq!(cfg.rate_limits[0].window, Duration::from_secs(60));
}

#[tokio::test]
async fn fail_every_nth() {
    let cfg = MockConfig { fail_every: 3, ..MockConfig::bare() };
    let addr = start(cfg).await;
    let mut c = Client::connect(addr).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(c.send(Method::POST, "/chat/completions", &[], CHAT).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
    let r = c.send(Method::POST, "/chat/completions", &[], CHAT).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c.send(Method::POST, "/chat/completions", &[], CHAT).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c.send(Method::POST, "/chat/completions", &[], CHAT).await;
    assert_eq!(r.json()["error"]["message"], "Simulated error for every 3rd request");
    assert_eq!(stats(addr).await["injected_errors"], 3);
}

#[tokio::test]
async fn fail_percent_hundred_always_fails() {
    let cfg = MockConfig { fail_percent: 100.0, ..MockConfig::bare() };
    let addr = start(cfg).await;
    let r = post(addr, "/chat/completions", CHAT).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn model_triggers() {
    let addr = start(MockConfig::bare()).await;

    let r = post(addr, "/chat/completions", &chat("429", false)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text(), r#"{"detail":"Too many requests"}"#);

    for code in [503u16, 400, 401, 500] {
        let r = post(addr, "/chat/completions", &chat(&format!("error-{code}"), false)).await;
        assert_eq!(r.status.as_u16(), code);
        assert_eq!(
            r.json(),
            serde_json::json!({"error":{"message":format!("mock error {code}"),"type":"mock_error","param":null,"code":code.to_string()}})
        );
    }

    let r = post(addr, "/chat/completions", &chat("garbage", false)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "this is not json");

    let t = Instant::now();
    let r = post(addr, "/chat/completions", &chat("sleep-150", false)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(150));

    let r = post(addr, "/chat/completions", &chat("stream-garbage", true)).await;
    let frames = r.sse();
    assert_eq!(frames.len(), 2);
    assert!(serde_json::from_str::<serde_json::Value>(&frames[0]).is_ok());
    assert_eq!(frames[1], "{not json");

    let r = post(addr, "/chat/completions", &chat("stream-reset", true)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_err(), "the body must break off: {:?}", r.body);

    let t = Instant::now();
    let r = post(addr, "/chat/completions", &chat("slow-stream-20", true)).await;
    assert_eq!(r.sse().len(), 13);
    assert!(t.elapsed() >= Duration::from_millis(20 * 12));

    let r = post(addr, "/chat/completions", &chat("retry-after-3", false)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");

    // 429, four error-N, garbage, stream-garbage, stream-reset, retry-after.
    assert_eq!(stats(addr).await["injected_errors"], 9);
}

#[tokio::test]
async fn vertex_and_gemini() {
    let addr = start(MockConfig::bare()).await;
    let path = vertex_path("adroit-crow-413218", "generateContent");

    let r = post(addr, &path, "{}").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(r.json()["error"]["code"], 401);

    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let r = call(addr, Method::POST, &path, &[BEARER], body).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["candidates"][0]["content"]["role"], "model");
    assert!(v["candidates"][0]["content"]["parts"][0]["text"].is_string());
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        v["usageMetadata"],
        serde_json::json!({"promptTokenCount":5,"candidatesTokenCount":51,"totalTokenCount":56})
    );

    let stream = vertex_path("p", "streamGenerateContent") + "?alt=sse";
    let r = call(addr, Method::POST, &stream, &[BEARER], body).await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let frames: Vec<serde_json::Value> = r.sse().iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    assert!(frames.len() >= 2);
    assert!(frames[0]["candidates"][0].get("finishReason").is_none());
    let last = frames.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 56);

    let v1beta1 = "/v1beta1/projects/p/locations/l/publishers/google/models/g:generateContent";
    assert_eq!(call(addr, Method::POST, v1beta1, &[BEARER], body).await.status, StatusCode::OK);

    let studio = "/v1beta/models/gemini-2.0-flash:generateContent";
    assert_eq!(post(addr, studio, body).await.status, StatusCode::UNAUTHORIZED);
    let r = call(addr, Method::POST, studio, &[("x-goog-api-key", "k")], body).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(
        addr,
        Method::POST,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        &[("x-goog-api-key", "k")],
        body,
    )
    .await;
    assert!(r.sse().len() >= 2);

    // Triggers work on the model in the path too, with Google's envelope.
    let r =
        call(addr, Method::POST, "/v1beta/models/error-503:generateContent", &[("x-goog-api-key", "k")], body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");

    let r = call(addr, Method::POST, &path, &[BEARER], "not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let s = stats(addr).await;
    assert_eq!(s["by_route"]["vertex"], 5);
    assert_eq!(s["by_route"]["gemini"], 4);
}

fn jwt(header: &str, claims: &str) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.{}", e.encode(header), e.encode(claims), e.encode("signature"))
}

#[tokio::test]
async fn token_endpoint() {
    let addr = start(MockConfig::bare()).await;
    let form = |assertion: &str| {
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}")
    };
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    let good = jwt(
        r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
        r#"{"iss":"sa@p.iam.gserviceaccount.com","scope":"https://www.googleapis.com/auth/cloud-platform","aud":"https://oauth2.googleapis.com/token","iat":1,"exp":3601}"#,
    );
    for n in 1..=2 {
        let r = call(addr, Method::POST, "/token", &ct, &form(&good)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json(),
            serde_json::json!({"access_token":format!("mock-access-token-{n}"),"expires_in":3599,"token_type":"Bearer"})
        );
    }
    for bad in ["not-a-jwt", "a.b.c", &jwt("{}", "not json")] {
        let r = call(addr, Method::POST, "/token", &ct, &form(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json()["error"], "invalid_grant");
    }
    assert_eq!(stats(addr).await["by_route"]["token"], 5);
}

#[tokio::test]
async fn errors_and_unknown_routes() {
    let addr = start(MockConfig::bare()).await;
    let r = post(addr, "/nope", "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.text(), r#"{"detail":"Not Found"}"#);

    let r = post(addr, "/chat/completions", "this is not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["detail"].as_str().unwrap().starts_with("Invalid JSON body"));

    let r = post(addr, "/chat/completions", r#"{"model":"m","#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = post(addr, "/embeddings", r#"{"model":"m","input":[]}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = get(addr, "/chat/completions").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // Invalid UTF-8 in a skipped string is not the mock's business; in the model it is a 400.
    let r = post(addr, "/chat/completions", "{\"model\":\"\u{0}\"}").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn latency_applies() {
    let cfg = MockConfig { latency: Latency::parse("120ms").unwrap(), ..MockConfig::bare() };
    let addr = start(cfg).await;
    let t = Instant::now();
    assert_eq!(post(addr, "/chat/completions", CHAT).await.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn h2c_works() {
    let addr = start(MockConfig::bare()).await;
    let r = call_h2(addr, "/v1/chat/completions", CHAT).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["model"], "fake-openai-endpoint");
    let r = call_h2(addr, "/v1/chat/completions", &chat("m", true)).await;
    assert_eq!(r.sse().last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn stats_count_and_cancellation() {
    let addr = start(MockConfig::bare()).await;
    post(addr, "/chat/completions", CHAT).await;
    post(addr, "/v1/embeddings", r#"{"input":"x"}"#).await;
    post(addr, "/v1/completions", r#"{"prompt":"x"}"#).await;
    post(addr, "/nope", "").await;

    // A client that gives up while the mock is still sleeping.
    let body = chat("sleep-400", false);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats(addr).await["in_flight"], 1);
    drop(tcp);

    // A stream the client abandons mid-way.
    let body = chat("slow-stream-100", true);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("POST /chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    tcp.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(tcp);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = stats(addr).await;
    assert_eq!(s["requests"], 6);
    assert_eq!(s["by_route"]["chat"], 3);
    assert_eq!(s["by_route"]["embeddings"], 1);
    assert_eq!(s["by_route"]["completions"], 1);
    assert_eq!(s["by_route"]["not_found"], 1);
    assert_eq!(s["cancelled"], 2);
    assert_eq!(s["in_flight"], 0);

    let r = post(addr, "/mock/reset", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let s = stats(addr).await;
    assert_eq!(s["requests"], 0);
    assert_eq!(s["cancelled"], 0);
}

#[tokio::test]
async fn stream_reset_delivers_two_chunks_first() {
    use http_body_util::BodyExt;
    let addr = start(MockConfig::bare()).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = request(Method::POST, "/chat/completions", &[], &chat("stream-reset", true));
    let mut body = sender.send_request(req).await.unwrap().into_body();
    let mut data = Vec::new();
    let err = loop {
        match body.frame().await {
            Some(Ok(f)) => data.extend_from_slice(&f.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("the stream ended cleanly"),
        }
    };
    // Either an incomplete chunked body or a reset, depending on timing: both are what a
    // provider dying mid-stream looks like.
    assert!(err.is_incomplete_message() || std::error::Error::source(&err).is_some(), "{err:?}");
    let text = String::from_utf8(data).unwrap();
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
}
