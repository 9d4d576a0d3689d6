//! The fake Anthropic Messages API end to end: headers, bodies, tool calls, typed event
//! streams, model triggers and the stats counter.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_mock::MockConfig;

const KEY: (&str, &str) = ("x-api-key", "sk-ant-test");
const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

fn messages(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 100, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

fn tool_request(stream: bool) -> String {
    json!({
        "model": "claude-test", "max_tokens": 100, "stream": stream,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}, {"name": "other", "input_schema": {}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Please use the tool now."}]}],
    })
    .to_string()
}

async fn send(addr: std::net::SocketAddr, body: &str) -> Reply {
    call(addr, Method::POST, "/v1/messages", &[KEY, VERSION], body).await
}

/// (event name, data) for each frame; every frame must have both lines, and they must agree.
fn events(r: &Reply) -> Vec<(String, Value)> {
    r.text()
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (event, data) = f
                .strip_prefix("event: ")
                .and_then(|f| f.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not an Anthropic frame: {f:?}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], event, "{f}");
            (event.to_string(), data)
        })
        .collect()
}

#[tokio::test]
async fn requires_key_and_version() {
    let addr = start(MockConfig::bare()).await;
    let body = messages("claude-test", false);
    for headers in
        [vec![], vec![VERSION], vec![KEY], vec![("authorization", "Bearer ")], vec![("x-api-key", ""), VERSION]]
    {
        let r = call(addr, Method::POST, "/v1/messages", &headers, &body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("header is required"));
    }
    let r = call(addr, Method::POST, "/v1/messages", &[("authorization", "Bearer tok"), VERSION], &body).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(addr, Method::GET, "/v1/messages", &[KEY, VERSION], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = send(addr, "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn answers_with_a_message() {
    let addr = start(MockConfig::bare()).await;
    let r = send(addr, &messages("claude-3-5-sonnet-20241022", false)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hello from the fake Anthropic endpoint."}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["output_tokens"], 9);
}

#[tokio::test]
async fn calls_the_first_tool_when_asked() {
    let addr = start(MockConfig::bare()).await;
    let v = send(addr, &tool_request(false)).await.json();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"x": 1}));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
}

#[tokio::test]
async fn streams_typed_events() {
    let addr = start(MockConfig::bare()).await;
    let r = send(addr, &messages("claude-test", true)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let ev = events(&r);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"]);
    assert!(names[3..names.len() - 3].iter().all(|n| *n == "content_block_delta"));
    assert_eq!(ev[0].1["message"]["model"], "claude-test");
    assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 12);
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "Hello from the fake Anthropic endpoint.");
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 9);

    let ev = events(&send(addr, &tool_request(true)).await);
    assert_eq!(ev[1].1["content_block"]["type"], "tool_use");
    assert_eq!(ev[1].1["content_block"]["name"], "get_weather");
    let input: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&input).unwrap(), json!({"x": 1}));
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn model_triggers() {
    let addr = start(MockConfig::bare()).await;
    let r = send(addr, &messages("error-529", false)).await;
    assert_eq!(r.status.as_u16(), 529);
    let v = r.json();
    assert_eq!(v["error"], json!({"type": "overloaded_error", "message": "Overloaded"}));
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));

    for model in ["error-429", "429"] {
        let r = send(addr, &messages(model, false)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{model}");
        assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    }
    let r = send(addr, &messages("anthropic/error-400", false)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");

    let r = send(addr, &messages("retry-after-2", false)).await;
    assert_eq!(r.header("retry-after"), Some("2"));

    // stream-error: a delta, then `event: error`, then the end of the body.
    let ev = events(&send(addr, &messages("stream-error", true)).await);
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert_eq!(ev.iter().filter(|(n, _)| n == "content_block_delta").count(), 1);
    assert!(!ev.iter().any(|(n, _)| n == "message_stop"));
    // Without streaming the same model answers normally.
    assert_eq!(send(addr, &messages("stream-error", false)).await.status, StatusCode::OK);

    let r = send(addr, &messages("stream-reset", true)).await;
    assert!(r.body.is_err(), "the body must break off");

    let s = stats(addr).await;
    assert_eq!(s["by_route"]["anthropic"], 8);
    // error-529, error-429, 429, error-400, retry-after, stream-error, stream-reset.
    assert_eq!(s["injected_errors"], 7);
}
