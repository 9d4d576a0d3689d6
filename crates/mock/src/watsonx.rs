//! A fake IBM watsonx.ai: IBM Cloud IAM's token endpoint (`POST /identity/token`, the API-key
//! grant as a form, answered `{"access_token", "expires_in", "token_type"}`; the key `bad-key` is
//! refused with IAM's `errorCode`/`errorMessage`) and the chat API (`POST /ml/v1/text/chat`,
//! `/ml/v1/text/chat_stream`, and the same under `/ml/v1/deployments/{id}/text/`), which needs a
//! `version` query, a bearer token this IAM issued (or a `ZenApiKey`), and — but for a
//! deployment — `model_id` with `project_id` or `space_id`. Answers are OpenAI-shaped under
//! watsonx's ids (`model_id`, `created_at`); streams are SSE chunks whose last carries the usage;
//! errors are `{"errors": [{"code", "message"}], "trace", "status_code"}`. Embeddings
//! (`/ml/v1/text/embeddings`, `/ml/v1/deployments/{id}/text/embeddings`) take `{"inputs",
//! "model_id", "project_id"}` and answer `{"model_id", "results": [{"embedding"}], "created_at",
//! "input_token_count"}`.
//!
//! A chat offered tools whose last message is the user's saying "use the tool" calls the first
//! tool with `{"x": 1}`.

use bytes::Bytes;
use serde_json::{json, Value};

pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " watsonx.ai."];
pub const PROMPT_TOKENS: u64 = 12;
pub const COMPLETION_TOKENS: u64 = 6;
/// What this IAM hands out: `wx-iam-<n>`.
pub const TOKEN_PREFIX: &str = "wx-iam-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// `Some(id)` for `/ml/v1/deployments/{id}/text/…`.
    pub deployment: Option<&'a str>,
    pub stream: bool,
    /// `…/text/embeddings`.
    pub embed: bool,
}

pub fn parse_path(path: &str) -> Option<Call<'_>> {
    let (deployment, route) = match path.strip_prefix("/ml/v1/deployments/") {
        Some(rest) => {
            let (id, route) = rest.split_once("/text/")?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            (Some(id), route)
        }
        None => (None, path.strip_prefix("/ml/v1/text/")?),
    };
    match route {
        "chat" => Some(Call { deployment, stream: false, embed: false }),
        "chat_stream" => Some(Call { deployment, stream: true, embed: false }),
        "embeddings" => Some(Call { deployment, stream: false, embed: true }),
        _ => None,
    }
}

pub fn error_body(status: u16, code: &str, message: &str) -> String {
    json!({ "errors": [{ "code": code, "message": message }], "trace": "0123456789abcdef", "status_code": status })
        .to_string()
}

/// The IAM grant: the token to issue for the form, or IAM's refusal.
pub fn iam(form: &[u8], n: u64) -> Result<String, String> {
    let form = String::from_utf8_lossy(form);
    let field = |k: &str| form.split('&').find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')));
    let grant = field("grant_type").map(|g| g.replace("%3A", ":"));
    if grant.as_deref() != Some("urn:ibm:params:oauth:grant-type:apikey") {
        return Err(json!({ "errorCode": "BXNIM0103E", "errorMessage": "Grant type is not supported." }).to_string());
    }
    match field("apikey") {
        None | Some("") | Some("bad-key") => Err(json!({ "errorCode": "BXNIM0415E",
            "errorMessage": "Provided API key could not be found." })
        .to_string()),
        Some(_) => Ok(json!({ "access_token": format!("{TOKEN_PREFIX}{n}"), "refresh_token": "not_supported",
            "token_type": "Bearer", "expires_in": 3600, "expiration": 1_700_003_600 })
        .to_string()),
    }
}

/// Whether the `Authorization` value is one this IAM issued (or a Cloud Pak `ZenApiKey`).
pub fn authorised(authorization: Option<&str>, issued: u64) -> bool {
    let Some(auth) = authorization else { return false };
    if auth.strip_prefix("ZenApiKey ").is_some_and(|k| !k.trim().is_empty()) {
        return true;
    }
    auth.strip_prefix("Bearer ")
        .and_then(|t| t.strip_prefix(TOKEN_PREFIX))
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n >= 1 && n <= issued)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub model: String,
    pub tool: Option<String>,
}

type Refusal = (u16, &'static str, String);

fn bad(m: &str) -> Refusal {
    (400, "json_validation_error", m.to_string())
}

/// The body of a call with its `version` query, or the refusal.
fn versioned(query: Option<&str>, body: &[u8]) -> Result<Value, Refusal> {
    if !query.unwrap_or_default().split('&').any(|p| p.starts_with("version=") && p.len() > 8) {
        return Err((400, "missing_version", "Missing query parameter 'version'".into()));
    }
    serde_json::from_slice(body).map_err(|e| bad(&format!("Json document validation error: {e}")))
}

/// The model a call is for: the deployment's, else `model_id` with a project or space.
fn model_of(call: Call<'_>, v: &Value) -> Result<String, Refusal> {
    match call.deployment {
        Some(id) => {
            if v.get("model_id").is_some() || v.get("project_id").is_some() {
                return Err(bad("a deployment's call takes no model_id or project_id"));
            }
            Ok(id.to_string())
        }
        None => {
            let model = v.get("model_id").and_then(Value::as_str).ok_or_else(|| bad("'model_id' is required"))?;
            if v.get("project_id").is_none() && v.get("space_id").is_none() {
                return Err(bad("Either 'project_id' or 'space_id' must be specified"));
            }
            Ok(model.to_string())
        }
    }
}

/// Checks an embeddings request; the model and the inputs.
pub fn parse_embed(call: Call<'_>, query: Option<&str>, body: &[u8]) -> Result<(String, Vec<String>), Refusal> {
    let v = versioned(query, body)?;
    let inputs = v
        .get("inputs")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| bad("'inputs' is required: an array of strings"))?;
    Ok((model_of(call, &v)?, inputs))
}

/// The embeddings answer: one fake vector per input, the inputs' words as the token count.
pub fn embed_body(model: &str, inputs: &[String]) -> Bytes {
    let results: Vec<Value> =
        crate::vectors::fake(inputs.len(), 8).into_iter().map(|e| json!({ "embedding": e })).collect();
    let v = json!({ "model_id": model, "results": results, "created_at": "2024-11-20T10:00:00.000Z",
        "input_token_count": crate::vectors::words(inputs) });
    Bytes::from(v.to_string())
}

/// Checks a chat request as watsonx.ai would; `(status, code, message)` of its refusal.
pub fn parse(call: Call<'_>, query: Option<&str>, body: &[u8]) -> Result<Request, Refusal> {
    let v = versioned(query, body)?;
    let messages = v.get("messages").and_then(Value::as_array).ok_or_else(|| bad("'messages' is required"))?;
    let model = model_of(call, &v)?;
    if v.get("tools").is_some_and(|t| t.to_string().contains("additionalProperties")) {
        return Err(bad("tools: 'additionalProperties' is not allowed"));
    }
    let asks = messages.last().is_some_and(|m| {
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
    Ok(Request { model, tool })
}

fn usage() -> Value {
    json!({ "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS })
}

fn tool_calls(name: &str) -> Value {
    json!([{ "id": "chatcmpl-tool-0a1b2c", "type": "function", "function": { "name": name, "arguments": "{\"x\": 1}" } }])
}

pub fn body(req: &Request) -> Bytes {
    let (message, finish) = match &req.tool {
        Some(name) => (json!({ "role": "assistant", "tool_calls": tool_calls(name) }), "tool_calls"),
        None => (json!({ "role": "assistant", "content": PIECES.concat() }), "stop"),
    };
    let v = json!({ "id": "chat-0a1b2c3d", "model_id": req.model, "model": req.model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "created": 1_700_000_000, "model_version": "1.1.0", "created_at": "2024-11-20T10:00:00.000Z", "usage": usage() });
    Bytes::from(v.to_string())
}

pub fn stream_frames(req: &Request) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Option<&str>, usage: Option<Value>| {
        let mut v = json!({ "id": "chat-0a1b2c3d", "model_id": req.model, "model": req.model,
            "choices": [{ "index": 0, "finish_reason": finish, "delta": delta }],
            "created": 1_700_000_000, "model_version": "1.1.0", "created_at": "2024-11-20T10:00:00.000Z" });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        Bytes::from(format!("id: 1\nevent: message\ndata: {v}\n\n"))
    };
    let mut frames = vec![chunk(json!({ "role": "assistant", "content": "" }), None, None)];
    let finish = match &req.tool {
        Some(name) => {
            let mut calls = tool_calls(name);
            calls[0]["index"] = 0.into();
            frames.push(chunk(json!({ "tool_calls": calls }), None, None));
            "tool_calls"
        }
        None => {
            frames.extend(PIECES.iter().map(|p| chunk(json!({ "content": p }), None, None)));
            "stop"
        }
    };
    frames.push(chunk(json!({}), Some(finish), Some(usage())));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_grants_and_tokens() {
        assert_eq!(parse_path("/ml/v1/text/chat"), Some(Call { deployment: None, stream: false, embed: false }));
        assert_eq!(
            parse_path("/ml/v1/deployments/d1/text/chat_stream"),
            Some(Call { deployment: Some("d1"), stream: true, embed: false })
        );
        assert_eq!(parse_path("/ml/v1/text/embeddings"), Some(Call { deployment: None, stream: false, embed: true }));
        assert_eq!(parse_path("/ml/v1/text/generation"), None);
        let ok = iam(b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=k", 1).unwrap();
        assert!(ok.contains("wx-iam-1"));
        assert!(iam(b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=bad-key", 1)
            .unwrap_err()
            .contains("BXNIM0415E"));
        assert!(authorised(Some("Bearer wx-iam-1"), 1));
        assert!(!authorised(Some("Bearer wx-iam-2"), 1));
        assert!(authorised(Some("ZenApiKey abc"), 0));
        assert!(!authorised(None, 5));
    }

    #[test]
    fn chats_need_a_version_and_a_scope() {
        let call = Call { deployment: None, stream: false, embed: false };
        let body = br#"{"model_id":"ibm/granite","project_id":"p","messages":[{"role":"user","content":"hi"}]}"#;
        assert!(parse(call, Some("version=2024-03-13"), body).is_ok());
        assert_eq!(parse(call, None, body).unwrap_err().1, "missing_version");
        assert!(parse(call, Some("version=2024-03-13"), br#"{"model_id":"m","messages":[]}"#).is_err());
    }

    #[test]
    fn embeddings_need_inputs_and_count_their_words() {
        let call = Call { deployment: None, stream: false, embed: true };
        let body = br#"{"model_id":"ibm/slate","project_id":"p","inputs":["a b","c"]}"#;
        let (model, inputs) = parse_embed(call, Some("version=2024-03-13"), body).unwrap();
        let v: Value = serde_json::from_slice(&embed_body(&model, &inputs)).unwrap();
        assert_eq!((v["results"].as_array().unwrap().len(), v["input_token_count"].as_u64()), (2, Some(3)));
        assert!(parse_embed(call, Some("version=1"), br#"{"model_id":"m","project_id":"p","inputs":"x"}"#).is_err());
        assert!(parse_embed(call, None, body).is_err());
    }
}
