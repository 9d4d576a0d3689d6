//! The fake Bedrock Converse API end to end: authentication, bodies, tool calls, binary
//! event streams (decoded here with their CRCs checked), model triggers and the stats counter.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_mock::MockConfig;

const SIGV4: (&str, &str) = (
    "authorization",
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/bedrock/aws4_request, \
     SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00",
);
const TEXT: &str = "Hello from the fake Bedrock endpoint.";

fn converse(text: &str) -> String {
    json!({"messages": [{"role": "user", "content": [{"text": text}]}], "inferenceConfig": {"maxTokens": 100}})
        .to_string()
}

fn tool_request() -> String {
    json!({
        "messages": [{"role": "user", "content": [{"text": "Please use the tool now."}]}],
        "toolConfig": {"tools": [
            {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}},
            {"toolSpec": {"name": "other", "inputSchema": {"json": {}}}}
        ]},
    })
    .to_string()
}

fn path(model: &str, stream: bool) -> String {
    format!("/model/{model}/{}", if stream { "converse-stream" } else { "converse" })
}

async fn send(addr: std::net::SocketAddr, model: &str, stream: bool, body: &str) -> Reply {
    call(addr, Method::POST, &path(model, stream), &[SIGV4], body).await
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// (headers, payload) per event-stream message; `Err` at the first frame whose CRC is wrong.
type Frame = (Vec<(String, String)>, Vec<u8>);

fn frames(bytes: &[u8]) -> Result<Vec<Frame>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let be = |b: &[u8]| u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        let (total, hlen) = (be(&rest[0..]), be(&rest[4..]));
        assert_eq!(be(&rest[8..]) as u32, crc32(&rest[..8]), "prelude CRC");
        let frame = &rest[..total];
        if be(&frame[total - 4..]) as u32 != crc32(&frame[..total - 4]) {
            return Err(format!("bad message CRC in frame {}", out.len()));
        }
        let mut h = &frame[12..12 + hlen];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).unwrap();
            assert_eq!(h[1 + n], 7, "string header");
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = String::from_utf8(h[4 + n..4 + n + len].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        out.push((headers, frame[12 + hlen..total - 4].to_vec()));
        rest = &rest[total..];
    }
    Ok(out)
}

fn header<'a>(f: &'a Frame, name: &str) -> Option<&'a str> {
    f.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// (event type, payload JSON) for each frame of a complete, well-formed event stream.
fn events(r: &Reply) -> Vec<(String, Value)> {
    assert_eq!(r.header("content-type"), Some("application/vnd.amazon.eventstream"));
    let body = r.body.clone().expect("complete body");
    frames(&body)
        .unwrap()
        .iter()
        .map(|f| {
            let kind = header(f, ":event-type").or(header(f, ":exception-type")).unwrap().to_string();
            let ct = header(f, ":content-type");
            assert_eq!(ct, Some("application/json"));
            (kind, serde_json::from_slice(&f.1).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn requires_a_signature_or_api_key() {
    let addr = start(MockConfig::bare()).await;
    let body = converse("hi");
    for headers in [vec![], vec![("authorization", "Bearer ")], vec![("authorization", "Basic eDp5")]] {
        let r = call(addr, Method::POST, &path("m", false), &headers, &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(r.json(), json!({"message": "Missing Authentication Token"}));
        assert!(r.header("x-amzn-errortype").unwrap().starts_with("MissingAuthenticationTokenException"));
    }
    let r = call(addr, Method::POST, &path("m", false), &[("authorization", "Bearer ABSK-key")], &body).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(addr, Method::GET, &path("m", false), &[SIGV4], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = send(addr, "m", false, "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header("x-amzn-errortype").unwrap().starts_with("ValidationException:"));
    assert!(r.json()["message"].as_str().unwrap().contains("Malformed input request"));
    assert_eq!(send(addr, "m", false, "{}").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(send(addr, "m", false, &body).await.status, StatusCode::OK);
    // InvokeModel serves image models only: a chat model there is Bedrock's invalid identifier.
    let r = call(addr, Method::POST, "/model/m/invoke", &[SIGV4], &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header("x-amzn-errortype").unwrap().starts_with("ValidationException:"));
    let r = call(addr, Method::POST, "/model/m/invoke", &[], &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(addr, Method::POST, "/model/m/other", &[SIGV4], &body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn image_models_answer_through_invoke() {
    let addr = start(MockConfig::bare()).await;
    let titan = r#"{"taskType":"TEXT_IMAGE","textToImageParams":{"text":"a cat"},"imageGenerationConfig":{"numberOfImages":2}}"#;
    let r = call(addr, Method::POST, "/model/amazon.titan-image-generator-v2%3A0/invoke", &[SIGV4], titan).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["images"].as_array().unwrap().len(), 2);
    let r =
        call(addr, Method::POST, "/model/stability.sd3-large-v1%3A0/invoke", &[SIGV4], r#"{"prompt":"a cat"}"#).await;
    assert_eq!(r.json()["images"].as_array().unwrap().len(), 1);
    let r =
        call(addr, Method::POST, "/model/amazon.nova-canvas-v1%3A0/invoke", &[SIGV4], r#"{"taskType":"INPAINTING"}"#)
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(addr, Method::POST, "/model/error-503/invoke", &[SIGV4], titan).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.header("x-amzn-errortype").unwrap().starts_with("ServiceUnavailableException:"));
}

#[tokio::test]
async fn answers_like_converse() {
    let addr = start(MockConfig::bare()).await;
    let r = send(addr, "anthropic.claude-3-5-sonnet-20240620-v1%3A0", false, &converse("hi")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-amzn-requestid").is_some());
    let v = r.json();
    assert_eq!(v["output"]["message"]["role"], "assistant");
    assert_eq!(v["output"]["message"]["content"], json!([{"text": TEXT}]));
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"], json!({"inputTokens": 37, "outputTokens": 8, "totalTokens": 45}));

    let v = send(addr, "m", false, &tool_request()).await.json();
    let block = &v["output"]["message"]["content"][0]["toolUse"];
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"x": 1}));
    assert!(block["toolUseId"].as_str().unwrap().starts_with("tooluse_"));
    assert_eq!(v["stopReason"], "tool_use");
}

#[tokio::test]
async fn streams_binary_event_frames() {
    let addr = start(MockConfig::bare()).await;
    let r = send(addr, "m", true, &converse("hi")).await;
    assert_eq!(r.status, StatusCode::OK);
    let ev = events(&r);
    let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"messageStart"));
    assert_eq!(&kinds[kinds.len() - 3..], ["contentBlockStop", "messageStop", "metadata"]);
    assert!(kinds.iter().filter(|k| **k == "contentBlockDelta").count() > 1);
    let text: String = ev
        .iter()
        .filter(|(k, _)| k == "contentBlockDelta")
        .map(|(_, v)| v["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, TEXT);
    assert_eq!(ev[ev.len() - 2].1["stopReason"], "end_turn");
    assert_eq!(ev[ev.len() - 1].1["usage"]["totalTokens"], 45);

    let ev = events(&send(addr, "m", true, &tool_request()).await);
    let start = ev.iter().find(|(k, _)| k == "contentBlockStart").unwrap();
    assert_eq!(start.1["start"]["toolUse"]["name"], "get_weather");
    let input: String = ev
        .iter()
        .filter(|(k, _)| k == "contentBlockDelta")
        .map(|(_, v)| v["delta"]["toolUse"]["input"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&input).unwrap(), json!({"x": 1}));
    assert_eq!(ev[ev.len() - 2].1["stopReason"], "tool_use");
}

#[tokio::test]
async fn triggers_and_stats() {
    let addr = start(MockConfig::bare()).await;
    let body = converse("hi");
    for model in ["error-429", "429"] {
        let r = send(addr, model, false, &body).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{model}");
        assert!(r.header("x-amzn-errortype").unwrap().starts_with("ThrottlingException:"));
        assert_eq!(r.json()["message"], "Too many requests, please wait before trying again.");
    }
    let r = send(addr, "error-503", true, &body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.header("x-amzn-errortype").unwrap().starts_with("ServiceUnavailableException:"));
    let r = send(addr, "retry-after-2", false, &body).await;
    assert_eq!(r.header("retry-after"), Some("2"));

    // stream-error: a delta, then an exception frame, then the end of the body.
    let r = send(addr, "stream-error", true, &body).await;
    let fs = frames(&r.body.clone().unwrap()).unwrap();
    let last = fs.last().unwrap();
    assert_eq!(header(last, ":message-type"), Some("exception"));
    assert_eq!(header(last, ":exception-type"), Some("serviceUnavailableException"));
    assert!(serde_json::from_slice::<Value>(&last.1).unwrap()["message"].is_string());
    assert_eq!(fs.iter().filter(|f| header(f, ":event-type") == Some("contentBlockDelta")).count(), 1);
    assert_eq!(send(addr, "stream-error", false, &body).await.status, StatusCode::OK);

    let r = send(addr, "stream-reset", true, &body).await;
    assert!(r.body.is_err(), "the body must break off");
    let r = send(addr, "stream-garbage", true, &body).await;
    let err = frames(&r.body.clone().unwrap()).unwrap_err();
    assert!(err.contains("frame 1"), "{err}");

    let s = stats(addr).await;
    assert_eq!(s["by_route"]["bedrock"], 8);
    // error-429, 429, error-503, retry-after, stream-error, stream-reset, stream-garbage.
    assert_eq!(s["injected_errors"], 7);
}
