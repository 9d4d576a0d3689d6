//! Building responses: JSON, SSE, and the error envelopes of each provider family.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

use crate::body::{MockBody, StreamEnd};
use crate::stats::RequestGuard;

pub type Resp = Response<MockBody>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(MockBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

pub fn sse(frames: Vec<Bytes>, gap: Duration, end: StreamEnd, guard: RequestGuard) -> Resp {
    let mut r = Response::new(MockBody::stream(frames, gap, end, Some(guard)));
    r.headers_mut().insert(CONTENT_TYPE, EVENT_STREAM);
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Audio bytes in `frames`, as OpenAI's `/v1/audio/speech` streams them.
pub fn audio(frames: Vec<Bytes>, gap: Duration, guard: RequestGuard) -> Resp {
    let mut r = Response::new(MockBody::stream(frames, gap, StreamEnd::Eof, Some(guard)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    r
}

/// Newline-delimited JSON, as Ollama streams.
pub fn ndjson(frames: Vec<Bytes>, gap: Duration, end: StreamEnd, guard: RequestGuard) -> Resp {
    let mut r = Response::new(MockBody::stream(frames, gap, end, Some(guard)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    r
}

/// Ollama's error shape: `{"error": "…"}`.
pub fn ollama_error(status: StatusCode, message: &str) -> Resp {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// The headers OpenAI sends on every answer; gateways forward or read them, so the mock sends
/// plausible values.
pub fn openai_headers(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.insert("openai-processing-ms", HeaderValue::from_static("1"));
    h.insert("x-ratelimit-limit-requests", HeaderValue::from_static("10000"));
    h.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("9999"));
    h.insert("x-ratelimit-limit-tokens", HeaderValue::from_static("1000000"));
    h.insert("x-ratelimit-remaining-tokens", HeaderValue::from_static("999990"));
    r
}

/// FastAPI's error shape, which LiteLLM's fake uses for 404s, 429s and validation errors.
pub fn detail(status: StatusCode, message: &str) -> Resp {
    json(status, serde_json::json!({ "detail": message }).to_string())
}

pub fn not_found() -> Resp {
    json(StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#)
}

pub fn method_not_allowed() -> Resp {
    json(StatusCode::METHOD_NOT_ALLOWED, r#"{"detail":"Method Not Allowed"}"#)
}

/// OpenAI's envelope: `{"error":{"message","type","param","code"}}`.
pub fn openai_error(status: StatusCode, message: &str, kind: &str, code: &str) -> Resp {
    let body = serde_json::json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    json(status, body.to_string())
}

/// Google's envelope: `{"error":{"code","message","status"}}`.
pub fn google_error(status: StatusCode, message: &str) -> Resp {
    let body = serde_json::json!({
        "error": { "code": status.as_u16(), "message": message, "status": google_status(status) }
    });
    json(status, body.to_string())
}

/// google.rpc.Code names for the HTTP statuses Google maps them to.
fn google_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

pub fn with_retry_after(mut r: Resp, secs: u64) -> Resp {
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// A 200 that claims to be JSON and is not: what a broken proxy in front of a provider returns.
pub fn garbage() -> Resp {
    json(StatusCode::OK, "this is not json")
}

/// `data: <json>\n\n`
pub fn sse_frame(json: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(json.len() + 8);
    v.extend_from_slice(b"data: ");
    v.extend_from_slice(json);
    v.extend_from_slice(b"\n\n");
    Bytes::from(v)
}

/// Appends `s` as a JSON string literal; the common case (nothing to escape) is a plain copy.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json never fails on a str.
        out.extend_from_slice(serde_json::to_string(s).unwrap_or_default().as_bytes());
    }
}

/// An id in the shape OpenAI uses after its prefix: 32 lowercase hex digits.
pub fn hex_id() -> [u8; 32] {
    let mut buf = [0u8; 32];
    uuid::Uuid::new_v4().simple().encode_lower(&mut buf);
    buf
}
