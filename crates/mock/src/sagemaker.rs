//! A fake Amazon SageMaker runtime: `POST /endpoints/{name}/invocations` and
//! `/endpoints/{name}/invocations-response-stream`, which need a SigV4 `Authorization`. The
//! endpoint answers as its container would: a TGI container (`{"inputs", "parameters"}`) with
//! `[{"generated_text"}]`, a chat container (`{"messages"}`) with OpenAI's `chat.completion`, a
//! Hugging Face embedding container (`{"text_inputs": […]}`, as JumpStart's take) with
//! `{"embedding": [[…]]}`.
//! Streams are AWS event-stream messages (`:event-type: PayloadPart`) whose payloads carry the
//! container's SSE bytes, each event cut in two across parts, as the runtime relays them; the
//! endpoint `stream-error` ends its stream with a `ModelStreamError` exception message.
//! Errors are SageMaker's `{"ErrorCode", "Message"}` with `x-amzn-errortype`.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::bedrock::encode;
use crate::respond::{self, Resp};

pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " SageMaker endpoint."];
/// The endpoint whose stream fails mid-way.
pub const STREAM_ERROR: &str = "stream-error";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    pub endpoint: &'a str,
    pub stream: bool,
}

pub fn parse_path(path: &str) -> Option<Call<'_>> {
    let (endpoint, op) = path.strip_prefix("/endpoints/")?.split_once('/')?;
    if endpoint.is_empty() {
        return None;
    }
    match op {
        "invocations" => Some(Call { endpoint, stream: false }),
        "invocations-response-stream" => Some(Call { endpoint, stream: true }),
        _ => None,
    }
}

/// Which container the body speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Tgi,
    Chat,
    /// An embedding container asked for this many vectors.
    Embedding(usize),
}

pub fn container(body: &[u8]) -> Result<Container, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Failed to deserialize the JSON body: {e}"))?;
    if v.get("inputs").and_then(Value::as_str).is_some() {
        if v.get("parameters").and_then(|p| p.get("temperature")).and_then(Value::as_f64).is_some_and(|t| t <= 0.0) {
            return Err("Input validation error: `temperature` must be strictly positive".into());
        }
        return Ok(Container::Tgi);
    }
    if v.get("messages").and_then(Value::as_array).is_some() {
        return Ok(Container::Chat);
    }
    match v.get("text_inputs") {
        Some(Value::String(_)) => return Ok(Container::Embedding(1)),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            return Ok(Container::Embedding(items.len()))
        }
        _ => {}
    }
    Err("Input validation error: `inputs`, `messages` or `text_inputs` is required".into())
}

/// SageMaker's error style.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Resp {
    let mut r = respond::json(status, json!({ "ErrorCode": kind, "Message": message }).to_string());
    if let Ok(v) = HeaderValue::from_str(&format!("{kind}:http://internal.amazon.com/coral/com.amazonaws.sagemaker/")) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

pub fn body(c: Container) -> Bytes {
    let v = match c {
        Container::Tgi => json!([{ "generated_text": PIECES.concat() }]),
        Container::Chat => json!({ "id": "chatcmpl-sm", "object": "chat.completion", "created": 1_700_000_000,
            "model": "tgi", "choices": [{ "index": 0, "message": { "role": "assistant", "content": PIECES.concat() },
            "finish_reason": "stop" }], "usage": { "prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11 } }),
        Container::Embedding(n) => json!({ "embedding": crate::vectors::fake(n, 8) }),
    };
    Bytes::from(v.to_string())
}

fn part(bytes: &[u8]) -> Bytes {
    Bytes::from(encode(
        &[(":event-type", "PayloadPart"), (":content-type", "application/json"), (":message-type", "event")],
        bytes,
    ))
}

/// The container's SSE, each event split in two `PayloadPart`s.
pub fn stream_frames(c: Container, endpoint: &str) -> Vec<Bytes> {
    let mut events: Vec<String> = match c {
        Container::Tgi => {
            let mut e: Vec<String> = PIECES
                .iter()
                .map(|p| {
                    format!(
                        "data:{}\n\n",
                        json!({ "token": { "text": p, "special": false }, "generated_text": null, "details": null })
                    )
                })
                .collect();
            e.push(format!(
                "data:{}\n\n",
                json!({ "token": { "text": "</s>", "special": true }, "generated_text": PIECES.concat(),
                    "details": { "finish_reason": "eos_token", "generated_tokens": PIECES.len() + 1 } })
            ));
            e
        }
        // Embedding containers do not stream; the service refuses before this.
        Container::Embedding(_) => Vec::new(),
        Container::Chat => {
            let chunk = |delta: Value, finish: Option<&str>| {
                format!(
                    "data: {}\n\n",
                    json!({ "id": "chatcmpl-sm", "object": "chat.completion.chunk", "model": "tgi",
                    "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
                )
            };
            let mut e = vec![chunk(json!({ "role": "assistant", "content": "" }), None)];
            e.extend(PIECES.iter().map(|p| chunk(json!({ "content": p }), None)));
            e.push(chunk(json!({}), Some("stop")));
            e.push(format!(
                "data: {}\n\n",
                json!({ "id": "chatcmpl-sm", "object": "chat.completion.chunk", "model": "tgi",
                "choices": [], "usage": { "prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11 } })
            ));
            e.push("data: [DONE]\n\n".into());
            e
        }
    };
    let mut frames = Vec::with_capacity(events.len() * 2 + 1);
    if endpoint == STREAM_ERROR {
        events.truncate(2);
    }
    for e in &events {
        let (a, b) = e.as_bytes().split_at(e.len() / 2);
        frames.push(part(a));
        frames.push(part(b));
    }
    if endpoint == STREAM_ERROR {
        frames.push(Bytes::from(encode(
            &[
                (":exception-type", "ModelStreamError"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            json!({ "Message": "the model container crashed", "ErrorCode": "ModelStreamError" }).to_string().as_bytes(),
        )));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_containers() {
        assert_eq!(parse_path("/endpoints/e1/invocations"), Some(Call { endpoint: "e1", stream: false }));
        assert_eq!(
            parse_path("/endpoints/e1/invocations-response-stream"),
            Some(Call { endpoint: "e1", stream: true })
        );
        assert_eq!(parse_path("/endpoints//invocations"), None);
        assert_eq!(container(br#"{"inputs":"x","parameters":{}}"#), Ok(Container::Tgi));
        assert_eq!(container(br#"{"messages":[]}"#), Ok(Container::Chat));
        assert!(container(br#"{"inputs":"x","parameters":{"temperature":0}}"#).is_err());
        assert_eq!(container(br#"{"text_inputs":["a","b"]}"#), Ok(Container::Embedding(2)));
        let v: Value = serde_json::from_slice(&body(Container::Embedding(2))).unwrap();
        assert_eq!(v["embedding"].as_array().unwrap().len(), 2);
        assert_eq!(stream_frames(Container::Tgi, "e").len(), (PIECES.len() + 1) * 2);
    }
}
