//! A fake Cloudflare Workers AI (`POST /client/v4/accounts/{account}/ai/run/{model}`), answering
//! as Cloudflare's API documents: `{"result": {"response", "usage"}, "success", "errors",
//! "messages"}`; with `stream: true`, SSE events `{"response": "<piece>"}`, then one carrying the
//! `usage`, then `[DONE]`; errors as `{"result": null, "success": false, "errors": [{"code",
//! "message"}]}`. Every call needs a bearer token.
//!
//! The embedding models (`@cf/baai/…`) take `{"text": "…" | […]}` and answer `{"result":
//! {"shape": [n, d], "data": [[…]], "pooling": "cls"}, …}`, with no token counts.
//!
//! A chat offered tools whose last message is the user's saying "use the tool" calls the first
//! tool with `{"x": 1}`, in Workers AI's own shape (`{"name", "arguments"}`).

use bytes::Bytes;
use serde_json::{json, Value};

/// The pieces every plain answer is streamed in.
pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " Workers AI."];
pub const PROMPT_TOKENS: u64 = 9;
pub const COMPLETION_TOKENS: u64 = 4;

/// The model named by a run path (`/client/v4/accounts/{account}/ai/run/@cf/meta/llama-3`).
pub fn parse_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/client/v4/accounts/")?;
    let (account, model) = rest.split_once("/ai/run/")?;
    (!account.is_empty() && !account.contains('/') && !model.is_empty()).then_some(model)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub stream: bool,
    pub tool: Option<String>,
}

pub fn error_body(code: u32, message: &str) -> String {
    json!({ "result": null, "success": false, "errors": [{ "code": code, "message": message }], "messages": [] })
        .to_string()
}

/// Reads a chat request, or says why Workers AI would refuse it (a 400).
pub fn parse(body: &[u8]) -> Result<Request, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Type: malformed JSON: {e}"))?;
    let messages = v.get("messages").and_then(Value::as_array).ok_or("Type: required property 'messages' missing")?;
    if v.get("model").is_some() {
        return Err("Type: additional property 'model' not allowed".into());
    }
    let stream = match v.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("Type: 'stream' must be a boolean".into()),
    };
    let asks = messages.last().is_some_and(|m| {
        m.get("role").and_then(Value::as_str) == Some("user")
            && m.get("content").and_then(Value::as_str).is_some_and(|c| c.contains("use the tool"))
    });
    let tool = v
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.get("function").or(Some(t)))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .filter(|_| asks)
        .map(str::to_string);
    Ok(Request { stream, tool })
}

/// The embedding dimension answered.
pub const EMBEDDING_LENGTH: usize = 8;

/// Whether a model is one of Workers AI's text-embedding models (the BAAI family).
pub fn is_embedding_model(model: &str) -> bool {
    model.starts_with("@cf/baai/")
}

/// An embedding model's answer, or the 400's message.
pub fn embed_body(body: &[u8]) -> Result<Bytes, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Type: malformed JSON: {e}"))?;
    let count = match v.get("text") {
        Some(Value::String(_)) => 1,
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => items.len(),
        Some(_) => return Err("Type: 'text' must be a string or an array of strings".into()),
        None => return Err("Type: required property 'text' missing".into()),
    };
    let result = json!({ "shape": [count, EMBEDDING_LENGTH], "data": crate::vectors::fake(count, EMBEDDING_LENGTH),
        "pooling": "cls" });
    Ok(Bytes::from(json!({ "result": result, "success": true, "errors": [], "messages": [] }).to_string()))
}

fn usage() -> Value {
    json!({ "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS })
}

pub fn body(req: &Request) -> Bytes {
    let result = match &req.tool {
        Some(name) => {
            json!({ "response": null, "tool_calls": [{ "name": name, "arguments": { "x": 1 } }], "usage": usage() })
        }
        None => json!({ "response": PIECES.concat(), "usage": usage() }),
    };
    Bytes::from(json!({ "result": result, "success": true, "errors": [], "messages": [] }).to_string())
}

fn frame(v: Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub fn stream_frames(req: &Request) -> Vec<Bytes> {
    let mut frames: Vec<Bytes> = match &req.tool {
        Some(name) => vec![frame(json!({ "response": "", "tool_calls": [{ "name": name, "arguments": { "x": 1 } }] }))],
        None => PIECES.iter().map(|p| frame(json!({ "response": p, "p": "abcdef" }))).collect(),
    };
    frames.push(frame(json!({ "response": "", "usage": usage() })));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_run_path_and_the_request() {
        assert_eq!(parse_path("/client/v4/accounts/a1/ai/run/@cf/meta/llama-3-8b"), Some("@cf/meta/llama-3-8b"));
        assert_eq!(parse_path("/client/v4/accounts//ai/run/x"), None);
        assert_eq!(parse_path("/v1/chat/completions"), None);
        let r = parse(br#"{"messages":[{"role":"user","content":"please use the tool"}],"tools":[{"type":"function","function":{"name":"f"}}],"stream":true}"#).unwrap();
        assert_eq!(r, Request { stream: true, tool: Some("f".into()) });
        assert!(parse(br#"{"model":"x","messages":[]}"#).is_err());
        assert!(parse(b"{").is_err());
    }

    #[test]
    fn embedding_models_answer_result_data() {
        assert!(is_embedding_model("@cf/baai/bge-base-en-v1.5") && !is_embedding_model("@cf/meta/llama-3"));
        let v: Value = serde_json::from_slice(&embed_body(br#"{"text":["a","b"]}"#).unwrap()).unwrap();
        assert_eq!(v["result"]["shape"], json!([2, EMBEDDING_LENGTH]));
        assert_eq!(v["result"]["data"].as_array().unwrap().len(), 2);
        assert!(embed_body(br#"{"messages":[]}"#).is_err());
    }

    #[test]
    fn a_stream_ends_with_usage_and_done() {
        let frames = stream_frames(&Request { stream: true, tool: None });
        assert_eq!(frames.len(), PIECES.len() + 2);
        assert!(String::from_utf8_lossy(&frames[PIECES.len()]).contains("\"usage\""));
    }
}
