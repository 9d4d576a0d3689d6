//! A fake Cohere v2 API (`POST /v2/chat`, `/v2/embed`, `/v2/rerank`), answering in the shapes
//! Cohere's API reference documents: chat answers with `message.content` parts, `finish_reason`
//! and `usage` (`billed_units` and `tokens`); streams as SSE whose events carry a `type`
//! (`message-start`, `content-start`, `content-delta`, `content-end`, `tool-plan-delta`,
//! `tool-call-start`, `tool-call-delta`, `tool-call-end`, `message-end`); errors as
//! `{"id", "message"}`. Every call needs a bearer key.
//!
//! A chat offered tools whose last message is the user's saying "use the tool" calls the first
//! tool with `{"x": 1}`.

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use serde_json::{json, Value};

/// The pieces every plain answer is streamed in.
pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " Cohere."];
pub const INPUT_TOKENS: u64 = 13;
pub const OUTPUT_TOKENS: u64 = 5;
pub const EMBEDDING_LENGTH: usize = 8;

/// What the mock reads from a chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub model: String,
    pub stream: bool,
    pub tool: Option<String>,
}

/// Cohere refuses a call without `Authorization: Bearer <key>`.
pub fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| &v[7..]))
        .is_some_and(|t| !t.trim().is_empty())
}

pub fn error_body(message: &str) -> String {
    json!({ "id": "00000000-0000-0000-0000-000000000000", "message": message }).to_string()
}

fn object(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid request: invalid json: {e}"))?;
    if !v.is_object() {
        return Err("invalid request: body must be a JSON object".into());
    }
    Ok(v)
}

fn model(v: &Value) -> Result<String, String> {
    v.get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "invalid request: model is required".into())
}

pub fn parse_chat(body: &[u8]) -> Result<Request, String> {
    let v = object(body)?;
    let model = model(&v)?;
    let messages = v.get("messages").and_then(Value::as_array).ok_or("invalid request: messages is required")?;
    for m in messages {
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "user" | "assistant" | "tool") => {}
            _ => return Err("invalid request: message role must be one of system, user, assistant, tool".into()),
        }
        if m.get("role").and_then(Value::as_str) == Some("tool") && m.get("tool_call_id").is_none() {
            return Err("invalid request: tool messages need a tool_call_id".into());
        }
    }
    let last = messages.last();
    let asks = last.is_some_and(|m| {
        m.get("role").and_then(Value::as_str) == Some("user")
            && m.get("content").and_then(Value::as_str).is_some_and(|c| c.contains("use the tool"))
    });
    let tool = v
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .filter(|_| asks)
        .map(str::to_string);
    Ok(Request { model, stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false), tool })
}

fn usage() -> Value {
    json!({
        "billed_units": { "input_tokens": INPUT_TOKENS - 8, "output_tokens": OUTPUT_TOKENS },
        "tokens": { "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS },
    })
}

pub fn chat_body(req: &Request) -> Bytes {
    let (message, finish) = match &req.tool {
        Some(name) => (
            json!({ "role": "assistant", "tool_plan": "I will call the tool.", "tool_calls": [{
                "id": format!("{name}_0"), "type": "function", "function": { "name": name, "arguments": "{\"x\": 1}" } }] }),
            "TOOL_CALL",
        ),
        None => (json!({ "role": "assistant", "content": [{ "type": "text", "text": PIECES.concat() }] }), "COMPLETE"),
    };
    let v = json!({ "id": "c0ffee00-0000-4000-8000-000000000000", "message": message, "finish_reason": finish, "usage": usage() });
    Bytes::from(v.to_string())
}

fn event(v: Value) -> Bytes {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    Bytes::from(format!("event: {kind}\ndata: {v}\n\n"))
}

pub fn stream_frames(req: &Request) -> Vec<Bytes> {
    let mut frames = vec![event(json!({ "type": "message-start", "id": "c0ffee00-0000-4000-8000-000000000000",
        "delta": { "message": { "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": [] } } }))];
    let finish = match &req.tool {
        Some(name) => {
            frames.push(event(
                json!({ "type": "tool-plan-delta", "delta": { "message": { "tool_plan": "I will call the tool." } } }),
            ));
            frames.push(event(json!({ "type": "tool-call-start", "index": 0, "delta": { "message": { "tool_calls": {
                "id": format!("{name}_0"), "type": "function", "function": { "name": name, "arguments": "" } } } } })));
            for piece in ["{\"x\":", " 1}"] {
                frames.push(event(json!({ "type": "tool-call-delta", "index": 0,
                    "delta": { "message": { "tool_calls": { "function": { "arguments": piece } } } } })));
            }
            frames.push(event(json!({ "type": "tool-call-end", "index": 0 })));
            "TOOL_CALL"
        }
        None => {
            frames.push(event(json!({ "type": "content-start", "index": 0,
                "delta": { "message": { "content": { "type": "text", "text": "" } } } })));
            for piece in PIECES {
                frames.push(event(json!({ "type": "content-delta", "index": 0,
                    "delta": { "message": { "content": { "text": piece } } } })));
            }
            frames.push(event(json!({ "type": "content-end", "index": 0 })));
            "COMPLETE"
        }
    };
    frames.push(event(json!({ "type": "message-end", "delta": { "finish_reason": finish, "usage": usage() } })));
    frames
}

/// `/v2/embed`: `texts` and an `input_type` are required (for v3+ models, as Cohere's are);
/// `embedding_types` picks the answer's keys; `output_dimension` the length.
pub fn embed_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    model(&v)?;
    let texts = v.get("texts").and_then(Value::as_array).ok_or("invalid request: texts is required")?;
    if texts.iter().any(|t| !t.is_string()) {
        return Err("invalid request: texts must be strings".into());
    }
    v.get("input_type")
        .and_then(Value::as_str)
        .ok_or("invalid request: input_type is required for embed models v3 and higher")?;
    let length = match v.get("output_dimension") {
        None | Some(Value::Null) => EMBEDDING_LENGTH,
        Some(d) => d
            .as_u64()
            .filter(|d| (1..=4096).contains(d))
            .ok_or("invalid request: output_dimension must be a positive integer")? as usize,
    };
    let vectors: Vec<Vec<f64>> =
        (0..texts.len()).map(|i| (0..length).map(|j| ((i + j) % 8) as f64 / 8.0 - 0.5).collect()).collect();
    let mut embeddings = serde_json::Map::new();
    let types = v.get("embedding_types").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![json!("float")]);
    for t in types {
        match t.as_str() {
            Some("float") => {
                embeddings.insert("float".into(), json!(vectors));
            }
            _ => return Err(format!("invalid request: embedding type {t} is not supported by the mock")),
        }
    }
    let words: usize = texts.iter().filter_map(Value::as_str).map(|s| s.split_whitespace().count().max(1)).sum();
    Ok(Bytes::from(
        json!({
            "id": "e0000000-0000-4000-8000-000000000000",
            "embeddings": embeddings,
            "texts": texts,
            "meta": { "api_version": { "version": "2" }, "billed_units": { "input_tokens": words } },
            "response_type": "embeddings_by_type",
        })
        .to_string(),
    ))
}

/// `/v2/rerank`: each document scored by the words it shares with the query, best first;
/// one search unit per 100 documents.
pub fn rerank_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    model(&v)?;
    let (texts, scored) = ranked(&v)?;
    let results: Vec<Value> = scored.iter().map(|(i, s)| json!({ "index": i, "relevance_score": s })).collect();
    Ok(Bytes::from(
        json!({
            "id": "r0000000-0000-4000-8000-000000000000",
            "results": results,
            "meta": { "api_version": { "version": "2" }, "billed_units": { "search_units": texts.len().div_ceil(100).max(1) } },
        })
        .to_string(),
    ))
}

/// `/rerank` and `/v1/rerank` as an OpenAI-compatible server answers them (vLLM's shape:
/// `results` with each `document`, and `usage.total_tokens`).
pub fn compatible_rerank_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    let model = model(&v)?;
    let (texts, scored) = ranked(&v)?;
    let results: Vec<Value> = scored
        .iter()
        .map(|(i, s)| json!({ "index": i, "document": { "text": texts[*i] }, "relevance_score": s }))
        .collect();
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    Ok(Bytes::from(
        json!({ "id": "rerank-0", "model": model, "usage": { "total_tokens": tokens }, "results": results })
            .to_string(),
    ))
}

/// A document's index and its score.
type Scored = Vec<(usize, f64)>;

/// The documents and their (index, score) pairs, best first, cut to `top_n`.
fn ranked(v: &Value) -> Result<(Vec<&str>, Scored), String> {
    let query = v.get("query").and_then(Value::as_str).ok_or("invalid request: query is required")?;
    let docs = v.get("documents").and_then(Value::as_array).ok_or("invalid request: documents is required")?;
    let texts: Vec<&str> = docs
        .iter()
        .map(|d| d.as_str().ok_or("invalid request: documents must be strings"))
        .collect::<Result<_, _>>()?;
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut scored: Vec<(usize, f64)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let shared = t.split_whitespace().filter(|w| words.contains(&w.to_lowercase())).count();
            (i, (shared as f64 + 1.0) / (words.len() as f64 + 2.0))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(n) = v.get("top_n").and_then(Value::as_u64) {
        scored.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    Ok((texts, scored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_streams_typed_events_and_calls_tools_when_asked() {
        let req =
            parse_chat(br#"{"model":"command-r","stream":true,"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let frames = stream_frames(&req);
        let text: String = frames
            .iter()
            .filter_map(|f| std::str::from_utf8(f).ok())
            .filter_map(|f| f.split_once("data: ").map(|(_, d)| d.trim().to_string()))
            .filter_map(|d| serde_json::from_str::<Value>(&d).ok())
            .filter_map(|v| v["delta"]["message"]["content"]["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text, PIECES.concat());
        assert!(frames.last().unwrap().starts_with(b"event: message-end\n"));
        let req = parse_chat(br#"{"model":"m","messages":[{"role":"user","content":"use the tool"}],"tools":[{"type":"function","function":{"name":"w"}}]}"#).unwrap();
        let v: Value = serde_json::from_slice(&chat_body(&req)).unwrap();
        assert_eq!(v["finish_reason"], "TOOL_CALL");
        assert!(parse_chat(br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#).is_err());
    }

    #[test]
    fn embed_and_rerank() {
        assert!(embed_body(br#"{"model":"e","texts":["a"]}"#).unwrap_err().contains("input_type"));
        let v: Value = serde_json::from_slice(
            &embed_body(br#"{"model":"e","texts":["a b"],"input_type":"search_query","output_dimension":2}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["embeddings"]["float"], json!([[-0.5, -0.375]]));
        let v: Value = serde_json::from_slice(
            &rerank_body(br#"{"model":"r","query":"red cat","documents":["blue dog","a red cat"],"top_n":1}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["results"].as_array().unwrap().len(), 1);
        assert_eq!(v["results"][0]["index"], 1);
        assert_eq!(v["meta"]["billed_units"]["search_units"], 1);
        let v: Value = serde_json::from_slice(
            &compatible_rerank_body(br#"{"model":"r","query":"red cat","documents":["blue dog","a red cat"]}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v["results"][0]["document"]["text"], "a red cat");
        assert_eq!(v["usage"]["total_tokens"], 5);
    }
}
