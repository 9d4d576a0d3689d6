//! A fake Ollama native API (`POST /api/chat`, `/api/generate`, `/api/embed`), answering as
//! Ollama's API reference documents: whole JSON bodies, or — `stream` defaults to true there —
//! newline-delimited JSON (`application/x-ndjson`) whose last line has `done: true`, the
//! `done_reason` and the token counts (`prompt_eval_count`, `eval_count`); errors as
//! `{"error": "…"}`.
//!
//! A chat offered tools whose last user message says "use the tool" calls the first tool (Ollama
//! sends a call whole, arguments as an object). A generate call with `format: "json"` whose
//! prompt says "use the tool" answers LiteLLM's prompted function-call JSON for the first
//! function the prompt lists. The model `missing` is not pulled: 404, as Ollama answers.

use bytes::Bytes;
use serde_json::{json, Value};

/// The pieces every plain answer is streamed in.
pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " Ollama."];
pub const PROMPT_TOKENS: u64 = 11;
pub const EVAL_TOKENS: u64 = 4;
/// The length of an embedding when the request names no `dimensions`.
pub const EMBEDDING_LENGTH: usize = 8;
/// The model name Ollama has not pulled.
pub const MISSING: &str = "missing";

/// Which native route was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Generate,
}

/// What the mock reads from a chat or generate request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub api: Api,
    pub model: String,
    pub stream: bool,
    /// The tool to call with `{"x": 1}`, when the request asks for one.
    pub tool: Option<String>,
}

fn json_body(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid character in request body: {e}"))?;
    if !v.is_object() {
        return Err("request body must be a JSON object".into());
    }
    Ok(v)
}

fn model_of(v: &Value) -> Result<String, String> {
    match v.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => Ok(m.to_string()),
        _ => Err("model is required".into()),
    }
}

/// Reads a chat or generate request, or says why Ollama would refuse it (a 400).
pub fn parse(api: Api, body: &[u8]) -> Result<Request, String> {
    let v = json_body(body)?;
    let model = model_of(&v)?;
    let stream = match v.get("stream") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("json: cannot unmarshal stream into Go struct field of type bool".into()),
    };
    if let Some(o) = v.get("options").filter(|o| !o.is_null() && !o.is_object()) {
        return Err(format!(
            "json: cannot unmarshal {o} into Go struct field .options of type map[string]interface {{}}"
        ));
    }
    let tool = match api {
        Api::Chat => {
            let messages = v.get("messages").and_then(Value::as_array).ok_or("messages is required")?;
            for m in messages {
                if !m.get("content").is_none_or(Value::is_string) {
                    return Err(
                        "json: cannot unmarshal array into Go struct field Message.messages.content of type string"
                            .into(),
                    );
                }
            }
            // Only a user's own last word asks for a call: after a tool result, the model answers.
            let last_user = messages
                .last()
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            v.get("tools")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(|t| t.get("function"))
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| last_user.contains("use the tool"))
                .map(str::to_string)
        }
        Api::Generate => {
            let prompt = v.get("prompt").and_then(Value::as_str).unwrap_or_default();
            let json_format = v.get("format").and_then(Value::as_str) == Some("json");
            (json_format && last_user_section(prompt).contains("use the tool"))
                .then(|| prompted_function(prompt))
                .flatten()
        }
    };
    Ok(Request { api, model, stream, tool })
}

/// The last `### User:` section of a LiteLLM prompt.
fn last_user_section(prompt: &str) -> &str {
    let Some((_, rest)) = prompt.rsplit_once("### User:\n") else { return "" };
    rest.split("\n\n###").next().unwrap_or(rest)
}

/// The first function LiteLLM's function-call prompt lists (one JSON object per line after
/// "available to you:").
fn prompted_function(prompt: &str) -> Option<String> {
    let (_, listed) = prompt.split_once("available to you:")?;
    listed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find_map(|f| f.get("name").and_then(Value::as_str).map(str::to_string))
}

fn created_at() -> &'static str {
    "2024-07-22T20:33:28.123648Z"
}

/// The whole answer.
pub fn body(req: &Request) -> Bytes {
    let mut v = last_line(req);
    let text: String = PIECES.concat();
    match (req.api, &req.tool) {
        (Api::Chat, Some(name)) => {
            v["message"] = json!({ "role": "assistant", "content": "",
                "tool_calls": [{ "function": { "name": name, "arguments": { "x": 1 } } }] })
        }
        (Api::Chat, None) => v["message"] = json!({ "role": "assistant", "content": text }),
        (Api::Generate, Some(name)) => {
            v["response"] = json!({ "name": name, "arguments": { "x": 1 } }).to_string().into()
        }
        (Api::Generate, None) => v["response"] = text.into(),
    }
    line(&v)
}

/// The stream's lines: one per piece (a tool call comes whole in one line), then the `done`
/// line with the counts.
pub fn stream_lines(req: &Request) -> Vec<Bytes> {
    let piece = |text: &str| {
        let mut v = json!({ "model": req.model, "created_at": created_at(), "done": false });
        match req.api {
            Api::Chat => v["message"] = json!({ "role": "assistant", "content": text }),
            Api::Generate => v["response"] = text.into(),
        }
        v
    };
    let mut lines = Vec::with_capacity(PIECES.len() + 1);
    match (&req.tool, req.api) {
        (Some(name), Api::Chat) => {
            let mut v = piece("");
            v["message"]["tool_calls"] = json!([{ "function": { "name": name, "arguments": { "x": 1 } } }]);
            lines.push(line(&v));
        }
        (Some(name), Api::Generate) => {
            let call = json!({ "name": name, "arguments": { "x": 1 } }).to_string();
            let (a, b) = call.split_at(call.len() / 2);
            lines.push(line(&piece(a)));
            lines.push(line(&piece(b)));
        }
        (None, _) => lines.extend(PIECES.iter().map(|p| line(&piece(p)))),
    }
    let mut last = last_line(req);
    match req.api {
        Api::Chat => last["message"] = json!({ "role": "assistant", "content": "" }),
        Api::Generate => last["response"] = "".into(),
    }
    lines.push(line(&last));
    lines
}

/// The line a stream fails with: Ollama reports an error mid-stream as a line of its own.
pub fn error_line(message: &str) -> Bytes {
    line(&json!({ "error": message }))
}

fn last_line(req: &Request) -> Value {
    let mut v = json!({
        "model": req.model,
        "created_at": created_at(),
        "done": true,
        "done_reason": "stop",
        "total_duration": 5_043_500_667u64,
        "load_duration": 5_025_959u64,
        "prompt_eval_count": PROMPT_TOKENS,
        "prompt_eval_duration": 325_953_000u64,
        "eval_count": EVAL_TOKENS,
        "eval_duration": 4_709_213_000u64,
    });
    if req.api == Api::Generate {
        v["context"] = json!([1, 2, 3]);
    }
    v
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// `/api/embed`: one vector per input (a string or an array of strings), `dimensions` long when
/// asked, and the input's token count. `Err` is the 400's message.
pub fn embed_body(body: &[u8]) -> Result<(String, Bytes), String> {
    let v = json_body(body)?;
    let model = model_of(&v)?;
    let inputs = match v.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or("json: cannot unmarshal number into Go value of type string"))
            .collect::<Result<Vec<_>, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("invalid input type".into()),
    };
    let length = match v.get("dimensions") {
        None | Some(Value::Null) => EMBEDDING_LENGTH,
        Some(d) => {
            d.as_u64().filter(|d| (1..=4096).contains(d)).ok_or("dimensions must be a positive integer")? as usize
        }
    };
    let embeddings: Vec<Vec<f64>> =
        (0..inputs.len()).map(|i| (0..length).map(|j| ((i + j) % 8) as f64 / 8.0 - 0.5).collect()).collect();
    let tokens: usize = inputs.iter().map(|s| s.split_whitespace().count().max(1)).sum();
    let answer = json!({
        "model": model,
        "embeddings": embeddings,
        "total_duration": 14_143_917u64,
        "load_duration": 1_019_500u64,
        "prompt_eval_count": tokens,
    });
    Ok((model, Bytes::from(answer.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(frames: &[Bytes]) -> Vec<Value> {
        frames.iter().map(|f| serde_json::from_slice(f).unwrap()).collect()
    }

    #[test]
    fn a_chat_stream_is_ndjson_ending_in_done_with_counts() {
        let req = parse(Api::Chat, br#"{"model":"llama3","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert!(req.stream, "Ollama streams unless told not to");
        let frames = stream_lines(&req);
        assert!(frames.iter().all(|f| f.ends_with(b"\n") && f.iter().filter(|b| **b == b'\n').count() == 1));
        let v = lines(&frames);
        let text: String = v.iter().filter_map(|l| l["message"]["content"].as_str()).collect();
        assert_eq!(text, PIECES.concat());
        let last = v.last().unwrap();
        assert_eq!((last["done"].as_bool(), last["eval_count"].as_u64()), (Some(true), Some(EVAL_TOKENS)));
    }

    #[test]
    fn tools_are_called_when_asked() {
        let req = parse(
            Api::Chat,
            br#"{"model":"m","stream":false,"messages":[{"role":"user","content":"use the tool"}],
                "tools":[{"type":"function","function":{"name":"get_weather"}}]}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&body(&req)).unwrap();
        assert_eq!(v["message"]["tool_calls"][0]["function"]["arguments"], json!({"x": 1}));
        let prompt = "### User:\nuse the tool\n\n### System:\nProduce JSON OUTPUT ONLY! ... available to you:\n{\"name\":\"f\",\"parameters\":{}}\n";
        let body_in = json!({"model": "m", "prompt": prompt, "format": "json", "stream": true}).to_string();
        let req = parse(Api::Generate, body_in.as_bytes()).unwrap();
        assert_eq!(req.tool.as_deref(), Some("f"));
        let after = prompt.replace("### System:", "### Assistant:\ncalled\n\n### User:\nsunny\n\n### System:");
        let body_in = json!({"model": "m", "prompt": after, "format": "json"}).to_string();
        assert_eq!(parse(Api::Generate, body_in.as_bytes()).unwrap().tool, None, "a tool result gets an answer");
        let text: String = lines(&stream_lines(&req)).iter().filter_map(|l| l["response"].as_str()).collect();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["name"], "f");
    }

    #[test]
    fn bad_requests_are_refused_as_ollama_does() {
        assert_eq!(parse(Api::Chat, br#"{"messages":[]}"#).unwrap_err(), "model is required");
        assert!(parse(Api::Chat, br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#).is_err());
        assert!(parse(Api::Generate, br#"{"model":"m","stream":"yes"}"#).is_err());
        assert!(embed_body(br#"{"model":"m","input":[1,2]}"#).is_err());
        let (_, b) = embed_body(br#"{"model":"m","input":["a b","c"],"dimensions":3}"#).unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
        assert_eq!(v["embeddings"][0].as_array().unwrap().len(), 3);
        assert_eq!(v["prompt_eval_count"], 3);
    }
}
