//! A fake Anthropic Messages API (`POST /v1/messages`): real Anthropic response bodies, error
//! envelopes and typed event streams (`event:` lines, `ping`, mid-stream `error`), so the
//! gateway's Anthropic translation is tested against the shapes it will meet, not OpenAI's.
//!
//! It answers with fixed text, or — when the request offers tools and the last user turn says
//! "use the tool" — with a call to the first tool, so an agent loop can be driven end to end.
//! Model names trigger failures as on the OpenAI routes, plus `stream-error` (a mid-stream
//! `event: error`, which only Anthropic streams have).

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::respond::{self, hex_id, Resp};

/// The text of every plain answer.
pub const TEXT: &str = "Hello from the fake Anthropic endpoint.";
/// The pieces `TEXT` is streamed in.
const PIECES: [&str; 5] = ["Hello", " from the", " fake", " Anthropic", " endpoint."];
/// The input every tool call gets, streamed in these pieces.
const TOOL_INPUT: [&str; 2] = ["{\"x\":", " 1}"];

pub const INPUT_TOKENS: u64 = 12;
pub const OUTPUT_TOKENS: u64 = 9;

/// The model name that makes a stream fail after its first delta with `event: error`.
pub const STREAM_ERROR: &str = "stream-error";

/// What the mock reads from a Messages request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub model: String,
    pub stream: bool,
    /// The tool to call, when the request asks for one.
    pub tool: Option<String>,
}

/// Anthropic takes the key as `x-api-key` (what its SDKs send) or, for OAuth clients, a bearer
/// token; every call must name an `anthropic-version`. Like the other fakes, any non-empty
/// credential is accepted. `Err` is the message for the 401.
pub fn check_headers(headers: &HeaderMap) -> Result<(), &'static str> {
    let non_empty = |name| headers.get(name).is_some_and(|v: &HeaderValue| !v.as_bytes().trim_ascii().is_empty());
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| &v[7..]))
        .is_some_and(|t| !t.trim().is_empty());
    if !non_empty("x-api-key") && !bearer {
        return Err("x-api-key header is required");
    }
    if !non_empty("anthropic-version") {
        return Err("anthropic-version header is required");
    }
    Ok(())
}

/// A `count_tokens` request: `model` and `messages` as in a Messages request, no `max_tokens`.
pub fn parse_for_count(body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    v.get("model").and_then(Value::as_str).ok_or("model: Field required")?;
    v.get("messages").and_then(Value::as_array).ok_or("messages: Field required")?;
    Ok(())
}

/// Reads the request, or says why it is not a Messages request.
pub fn parse(body: &[u8]) -> Result<Request, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let model = v.get("model").and_then(Value::as_str).ok_or("model: Field required")?.to_string();
    read(&v, model)
}

/// A request to Claude on Vertex AI, whose path names the model (`vertex_partner` checks what
/// that door wants besides).
pub fn parse_for_vertex(body: &[u8], model: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    read(&v, model.to_string())
}

fn read(v: &Value, model: String) -> Result<Request, String> {
    let messages = v.get("messages").and_then(Value::as_array).ok_or("messages: Field required")?;
    let tool = v
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .filter(|_| last_user_text(messages).contains("use the tool"))
        .map(str::to_string);
    Ok(Request { model, stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false), tool })
}

fn last_user_text(messages: &[Value]) -> String {
    let Some(last) = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user")) else {
        return String::new();
    };
    match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

fn id(prefix: &str) -> String {
    let hex = hex_id();
    // hex_id is ASCII hex by construction.
    format!("{prefix}{}", std::str::from_utf8(&hex[..24]).unwrap_or("0"))
}

fn usage(output: u64, model: &str) -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cache_read(model),
    })
}

/// `cached-<n>` in the model name (`claude-cached-100`): the usage reports `n` prompt tokens read
/// from the cache besides the uncached input, as a call on a cached prompt does — how a gateway
/// test sees that cache reads are billed at their own price, whole or streamed.
fn cache_read(model: &str) -> u64 {
    let digits = model.split("cached-").nth(1).unwrap_or_default();
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().unwrap_or(0)
}

/// The non-stream answer.
pub fn body(req: &Request) -> Bytes {
    let (content, stop) = match &req.tool {
        Some(name) => {
            (json!([{ "type": "tool_use", "id": id("toolu_"), "name": name, "input": { "x": 1 } }]), "tool_use")
        }
        None => (json!([{ "type": "text", "text": TEXT }]), "end_turn"),
    };
    let msg = json!({
        "id": id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(OUTPUT_TOKENS, &req.model),
    });
    Bytes::from(msg.to_string())
}

fn frame(event: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// A whole event stream: message_start, the block (start, ping, deltas, stop), message_delta,
/// message_stop. With `fail`, the stream ends after the first delta with an `error` event, as
/// Anthropic's do when it is overloaded mid-answer.
pub fn stream_frames(req: &Request, fail: bool) -> Vec<Bytes> {
    let mut frames = Vec::with_capacity(12);
    frames.push(frame(
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": id("msg_"), "type": "message", "role": "assistant", "model": req.model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(1, &req.model),
            },
        }),
    ));
    let (block, deltas, stop): (Value, Vec<Value>, &str) = match &req.tool {
        Some(name) => (
            json!({ "type": "tool_use", "id": id("toolu_"), "name": name, "input": {} }),
            TOOL_INPUT.iter().map(|p| json!({ "type": "input_json_delta", "partial_json": p })).collect(),
            "tool_use",
        ),
        None => (
            json!({ "type": "text", "text": "" }),
            PIECES.iter().map(|p| json!({ "type": "text_delta", "text": p })).collect(),
            "end_turn",
        ),
    };
    frames.push(frame(
        "content_block_start",
        json!({ "type": "content_block_start", "index": 0, "content_block": block }),
    ));
    frames.push(frame("ping", json!({ "type": "ping" })));
    for delta in deltas {
        frames.push(frame("content_block_delta", json!({ "type": "content_block_delta", "index": 0, "delta": delta })));
        if fail {
            frames.push(frame(
                "error",
                json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
            ));
            return frames;
        }
    }
    frames.push(frame("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })));
    frames.push(frame(
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop, "stop_sequence": null },
            "usage": { "output_tokens": OUTPUT_TOKENS },
        }),
    ));
    frames.push(frame("message_stop", json!({ "type": "message_stop" })));
    frames
}

/// Anthropic's error `type` for a status (docs.claude.com/en/api/errors).
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Anthropic's envelope: `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn error(status: StatusCode, message: &str) -> Resp {
    let body = json!({
        "type": "error",
        "error": { "type": error_type(status), "message": message },
        "request_id": id("req_"),
    });
    respond::json(status, body.to_string())
}

/// The answer for an `error-<code>` model: Anthropic's own wording where it has one.
pub fn error_for_code(status: StatusCode) -> Resp {
    match status.as_u16() {
        529 => error(status, "Overloaded"),
        code => error(status, &format!("mock error {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        assert_eq!(check_headers(&h), Err("x-api-key header is required"));
        h.insert("x-api-key", "sk-ant-test".parse().unwrap());
        assert_eq!(check_headers(&h), Err("anthropic-version header is required"));
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        assert_eq!(check_headers(&h), Ok(()));
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer tok".parse().unwrap());
        h.insert("anthropic-version", "2026-10-21".parse().unwrap());
        assert_eq!(check_headers(&h), Ok(()));
        h.insert(AUTHORIZATION, "Bearer  ".parse().unwrap());
        assert!(check_headers(&h).is_err());
    }

    #[test]
    fn parses_tool_requests() {
        let r = parse(br#"{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(r, Request { model: "claude".into(), stream: false, tool: None });
        let body = br#"{"model":"c","stream":true,"tools":[{"name":"f","input_schema":{}},{"name":"g"}],
            "messages":[{"role":"user","content":"no"},{"role":"assistant","content":"ok"},
                        {"role":"user","content":[{"type":"text","text":"please use the tool"}]}]}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.tool.as_deref(), Some("f"));
        assert!(r.stream);
        // Asking without offering tools gets text.
        let r = parse(br#"{"model":"c","messages":[{"role":"user","content":"use the tool"}]}"#).unwrap();
        assert_eq!(r.tool, None);
        assert!(parse(b"{").is_err());
        assert!(parse(br#"{"messages":[]}"#).is_err());
    }

    #[test]
    fn streams_are_well_formed() {
        let req = Request { model: "c".into(), stream: true, tool: None };
        let frames = stream_frames(&req, false);
        let events: Vec<String> = frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).unwrap();
                let (event, data) = s.strip_prefix("event: ").unwrap().split_once("\ndata: ").unwrap();
                let v: Value = serde_json::from_str(data.trim_end()).unwrap();
                assert_eq!(v["type"], event);
                event.to_string()
            })
            .collect();
        assert_eq!(events.first().map(String::as_str), Some("message_start"));
        assert_eq!(events.last().map(String::as_str), Some("message_stop"));
        assert_eq!(events.iter().filter(|e| *e == "content_block_delta").count(), PIECES.len());
        assert_eq!(PIECES.concat(), TEXT);
        let failing = stream_frames(&req, true);
        assert!(std::str::from_utf8(failing.last().unwrap()).unwrap().starts_with("event: error\n"));
        assert_eq!(TOOL_INPUT.concat(), r#"{"x": 1}"#);
    }
}
