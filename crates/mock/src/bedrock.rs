//! A fake AWS Bedrock Converse API (`POST /model/{modelId}/converse` and `/converse-stream`;
//! InvokeModel's `/model/{modelId}/invoke` for embedding models is `bedrock_invoke`), so
//! a gateway's Bedrock path can be tested end to end without AWS: the shapes of formats.md §6,
//! AWS's error style (`{"message"}` plus an `x-amzn-errortype` header), and ConverseStream's
//! binary `application/vnd.amazon.eventstream` frames with real CRCs.
//!
//! Any SigV4 `Authorization` (or a Bedrock API key as a bearer token) is accepted without checking
//! the signature: the gateway's signing is tested against AWS's vectors in `sluice-providers`,
//! and here the point is what a gateway does with the answers. It answers with fixed text, or —
//! when the request offers tools and the last user turn says "use the tool" — with a call to the
//! first tool. Model names trigger failures as on the other routes, plus `stream-error` (an
//! exception frame after the first delta). The frame encoder here is written independently of
//! the gateway's decoder, so the two check each other.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{MockBody, StreamEnd};
use crate::respond::{self, hex_id, Resp};
use crate::stats::RequestGuard;
use crate::triggers::Trigger;

/// The text of every plain answer.
pub const TEXT: &str = "Hello from the fake Bedrock endpoint.";
/// The pieces `TEXT` is streamed in.
const PIECES: [&str; 5] = ["Hello", " from the", " fake", " Bedrock", " endpoint."];
/// The input every tool call gets, streamed in these pieces.
const TOOL_INPUT: [&str; 2] = ["{\"x\":", " 1}"];

/// The seed fake's Converse usage (formats.md §11): 37 in, 8 out.
pub const INPUT_TOKENS: u64 = 37;
pub const OUTPUT_TOKENS: u64 = 8;

/// The model name that makes a stream fail after its first delta with an exception frame.
pub const STREAM_ERROR: &str = "stream-error";

pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// A Converse call named by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// The model id as it appears in the path (percent-encoded).
    pub model: &'a str,
    pub stream: bool,
    /// InvokeModel (`/invoke`) rather than Converse.
    pub invoke: bool,
}

/// `/model/{modelId}/converse`, `/model/{modelId}/converse-stream` or `/model/{modelId}/invoke`.
pub fn parse_path(path: &str) -> Option<Call<'_>> {
    let (model, op) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    let (stream, invoke) = match op {
        "converse" => (false, false),
        "converse-stream" => (true, false),
        "invoke" => (false, true),
        _ => return None,
    };
    (!model.is_empty() && !model.contains('/')).then_some(Call { model, stream, invoke })
}

/// The model id of a call's path, decoded.
pub fn model_of(call: Call<'_>) -> String {
    percent_decode(call.model)
}

/// A SigV4 signature or a Bedrock API key (bearer token); anything else is what AWS answers an
/// unsigned request with.
pub fn authorised(headers: &HeaderMap) -> bool {
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 Credential=") {
        return !rest.trim().is_empty();
    }
    auth.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) && !auth[7..].trim().is_empty()
}

/// What the mock reads from a Converse request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The decoded model id from the path.
    pub model: String,
    pub stream: bool,
    /// The tool to call, when the request asks for one.
    pub tool: Option<String>,
}

impl Request {
    pub fn stream_error(&self) -> bool {
        self.stream && self.model.rsplit('/').next() == Some(STREAM_ERROR)
    }
}

/// Reads the request, or says why it is not a Converse request (Bedrock's 400 wording).
pub fn parse(call: Call<'_>, body: &[u8]) -> Result<Request, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Malformed input request: {e}"))?;
    let messages = v.get("messages").and_then(Value::as_array).ok_or(
        "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be null",
    )?;
    let tool = v
        .pointer("/toolConfig/tools/0/toolSpec/name")
        .and_then(Value::as_str)
        .filter(|_| last_user_text(messages).contains("use the tool"))
        .map(str::to_string);
    Ok(Request { model: percent_decode(call.model), stream: call.stream, tool })
}

fn last_user_text(messages: &[Value]) -> String {
    let Some(last) = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user")) else {
        return String::new();
    };
    let blocks = last.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn tool_use_id() -> String {
    let hex = hex_id();
    // hex_id is ASCII hex by construction.
    format!("tooluse_{}", std::str::from_utf8(&hex[..22]).unwrap_or("0"))
}

fn usage() -> Value {
    json!({ "inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS, "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS })
}

/// The non-stream answer.
pub fn body(req: &Request) -> Bytes {
    let (content, stop) = match &req.tool {
        Some(name) => {
            (json!([{ "toolUse": { "toolUseId": tool_use_id(), "name": name, "input": { "x": 1 } } }]), "tool_use")
        }
        None => (json!([{ "text": TEXT }]), "end_turn"),
    };
    let resp = json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": stop,
        "usage": usage(),
        "metrics": { "latencyMs": 1 },
    });
    Bytes::from(resp.to_string())
}

fn event(kind: &str, payload: Value) -> Bytes {
    Bytes::from(encode(
        &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        payload.to_string().as_bytes(),
    ))
}

fn exception(kind: &str, message: &str) -> Bytes {
    Bytes::from(encode(
        &[(":exception-type", kind), (":content-type", "application/json"), (":message-type", "exception")],
        json!({ "message": message }).to_string().as_bytes(),
    ))
}

/// A whole ConverseStream: messageStart, (contentBlockStart for a tool,) the deltas,
/// contentBlockStop, messageStop, metadata. With `fail`, the stream ends after the first delta
/// with an exception frame, as Bedrock's do when the model fails mid-answer.
pub fn stream_frames(req: &Request, fail: bool) -> Vec<Bytes> {
    let mut frames = Vec::with_capacity(10);
    // Bedrock pads some events with a `p` field of varying length; clients must ignore it.
    frames.push(event("messageStart", json!({ "p": "abcdefghijkl", "role": "assistant" })));
    let (deltas, stop): (Vec<Value>, &str) = match &req.tool {
        Some(name) => {
            frames.push(event(
                "contentBlockStart",
                json!({ "contentBlockIndex": 0, "start": { "toolUse": { "toolUseId": tool_use_id(), "name": name } } }),
            ));
            (TOOL_INPUT.iter().map(|p| json!({ "toolUse": { "input": p } })).collect(), "tool_use")
        }
        None => (PIECES.iter().map(|p| json!({ "text": p })).collect(), "end_turn"),
    };
    for delta in deltas {
        frames.push(event("contentBlockDelta", json!({ "contentBlockIndex": 0, "delta": delta })));
        if fail {
            frames.push(exception(
                "serviceUnavailableException",
                "Bedrock is unable to process your request (mock stream-error).",
            ));
            return frames;
        }
    }
    frames.push(event("contentBlockStop", json!({ "contentBlockIndex": 0 })));
    frames.push(event("messageStop", json!({ "stopReason": stop })));
    frames.push(event("metadata", json!({ "usage": usage(), "metrics": { "latencyMs": 1 } })));
    frames
}

/// Cuts a stream short the way a stream trigger asks: `stream-garbage` sends one good frame and
/// then one whose checksum is wrong; `stream-reset` breaks the connection after two frames.
pub fn misbehave(mut frames: Vec<Bytes>, trigger: Trigger) -> (Vec<Bytes>, StreamEnd) {
    match trigger {
        Trigger::StreamGarbage => {
            frames.truncate(1);
            let mut bad = encode(&[(":event-type", "contentBlockDelta"), (":message-type", "event")], b"{}");
            let n = bad.len();
            bad[n - 1] ^= 0xFF;
            frames.push(Bytes::from(bad));
            (frames, StreamEnd::Eof)
        }
        Trigger::StreamReset => {
            frames.truncate(2);
            (frames, StreamEnd::Reset)
        }
        _ => (frames, StreamEnd::Eof),
    }
}

/// A paced event-stream response.
pub fn stream(frames: Vec<Bytes>, gap: Duration, end: StreamEnd, guard: RequestGuard) -> Resp {
    let mut r = Response::new(MockBody::stream(frames, gap, end, Some(guard)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    request_id(r)
}

pub fn ok(req: &Request) -> Resp {
    request_id(respond::json(StatusCode::OK, body(req)))
}

fn request_id(mut r: Resp) -> Resp {
    let id = hex_id();
    if let Ok(v) = HeaderValue::from_bytes(&id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

/// AWS's error style: `{"message"}` with the exception name in `x-amzn-errortype` (in the
/// `Name:namespace` form AWS sends, which clients must cut at the colon).
pub fn error(status: StatusCode, kind: &str, message: &str) -> Resp {
    let mut r = respond::json(status, json!({ "message": message }).to_string());
    let value = format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    request_id(r)
}

/// The Bedrock exception for a status (Bedrock runtime API reference).
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        s if s < 500 => "ValidationException",
        _ => "InternalServerException",
    }
}

/// The answer for an `error-<code>` model (and `429`): Bedrock's own wording where it has one.
pub fn error_for_code(status: StatusCode) -> Resp {
    let message = match status.as_u16() {
        429 => "Too many requests, please wait before trying again.".to_string(),
        403 => "You don't have access to the model with the specified model ID.".to_string(),
        code => format!("mock error {code}"),
    };
    error(status, error_type(status), &message)
}

/// 403 for a request with neither a signature nor an API key, as AWS answers it.
pub fn missing_auth() -> Resp {
    error(StatusCode::FORBIDDEN, "MissingAuthenticationTokenException", "Missing Authentication Token")
}

/// The answer once the knobs have had their say: an error for error triggers, else the stream or
/// the JSON answer. Finishes `guard` for everything but a stream, whose body holds it.
pub fn answer(req: &Request, trigger: Trigger, gap: Duration, mut guard: RequestGuard) -> Resp {
    let resp = match triggered(trigger) {
        Some(resp) => resp,
        None if req.stream => {
            let (frames, end) = misbehave(stream_frames(req, req.stream_error()), trigger);
            return stream(frames, gap, end, guard);
        }
        None => ok(req),
    };
    guard.finish();
    resp
}

/// An InvokeModel call's answer (an embedding model's, `bedrock_invoke`) once the knobs have had
/// their say.
pub fn invoke_answer(model: &str, body: &[u8], trigger: Trigger) -> Resp {
    triggered(trigger).unwrap_or_else(|| {
        let answer = match crate::image_models::makes_images(model) {
            true => crate::image_models::invoke_body(model, body).map(Bytes::from),
            false => crate::bedrock_invoke::body(model, body),
        };
        match answer {
            Ok(b) => request_id(respond::json(StatusCode::OK, b)),
            Err(e) => error(StatusCode::BAD_REQUEST, "ValidationException", &e),
        }
    })
}

/// The answer a failure trigger asks for; `None` for an answer as usual.
fn triggered(trigger: Trigger) -> Option<Resp> {
    Some(match trigger {
        Trigger::TooManyRequests => error_for_code(StatusCode::TOO_MANY_REQUESTS),
        Trigger::Error(code) => error_for_code(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)),
        Trigger::Garbage => respond::garbage(),
        Trigger::RetryAfter(secs) => respond::with_retry_after(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                &format!("Too many requests, please wait before trying again (mock: retry after {secs}s)."),
            ),
            secs,
        ),
        _ => return None,
    })
}

/// One event-stream message with string headers. Kept apart from the gateway's encoder on
/// purpose (see the module comment).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let c = crc32(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let c = crc32(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out
}

/// CRC-32/IEEE, bit by bit: frames are few and small, and the simplest form is easiest to trust.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/model/anthropic.claude-v2%3A1/converse"),
            Some(Call { model: "anthropic.claude-v2%3A1", stream: false, invoke: false })
        );
        assert_eq!(parse_path("/model/m/converse-stream"), Some(Call { model: "m", stream: true, invoke: false }));
        assert_eq!(parse_path("/model//converse"), None);
        assert_eq!(parse_path("/model/m%3A0/invoke"), Some(Call { model: "m%3A0", stream: false, invoke: true }));
        assert_eq!(parse_path("/model/m/invoke-with-response-stream"), None);
        assert_eq!(parse_path("/model/a/b/converse"), None);
        assert_eq!(percent_decode("arn%3Aaws%2Fx%zz%4"), "arn:aws/x%zz%4");
    }

    #[test]
    fn auth() {
        let mut h = HeaderMap::new();
        assert!(!authorised(&h));
        h.insert(AUTHORIZATION, "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=ab".parse().unwrap());
        assert!(authorised(&h));
        h.insert(AUTHORIZATION, "Bearer ABSKQmVkcm9ja0FQSUtleQ==".parse().unwrap());
        assert!(authorised(&h));
        h.insert(AUTHORIZATION, "Bearer  ".parse().unwrap());
        assert!(!authorised(&h));
        h.insert(AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
        assert!(!authorised(&h));
    }

    #[test]
    fn parses_tool_requests() {
        let call = Call { model: "m%3A0", stream: false, invoke: false };
        let r = parse(call, br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#).unwrap();
        assert_eq!(r, Request { model: "m:0".into(), stream: false, tool: None });
        let body = br#"{"toolConfig":{"tools":[{"toolSpec":{"name":"f"}},{"toolSpec":{"name":"g"}}]},
            "messages":[{"role":"user","content":[{"text":"please use the tool"}]}]}"#;
        assert_eq!(parse(call, body).unwrap().tool.as_deref(), Some("f"));
        assert!(parse(call, b"{").is_err());
        assert!(parse(call, b"{}").is_err());
    }

    #[test]
    fn frames_are_well_formed() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let req = Request { model: "m".into(), stream: true, tool: None };
        let frames = stream_frames(&req, false);
        assert_eq!(frames.len(), 1 + PIECES.len() + 3);
        for f in &frames {
            let total = u32::from_be_bytes(f[0..4].try_into().unwrap()) as usize;
            assert_eq!(total, f.len());
            assert_eq!(u32::from_be_bytes(f[8..12].try_into().unwrap()), crc32(&f[..8]));
            assert_eq!(u32::from_be_bytes(f[total - 4..].try_into().unwrap()), crc32(&f[..total - 4]));
        }
        assert_eq!(PIECES.concat(), TEXT);
        assert_eq!(TOOL_INPUT.concat(), r#"{"x": 1}"#);
        assert_eq!(stream_frames(&req, true).len(), 3);
    }
}
