//! Ollama's answers → OpenAI's: `/api/chat` and `/api/generate` bodies as `chat.completion`,
//! `/api/embed` as an embedding list. Usage is Ollama's `prompt_eval_count` / `eval_count`.

use serde_json::{json, Value};

use super::TranslateError;

/// OpenAI's `finish_reason` for Ollama's `done_reason`; tool calls win, as in LiteLLM.
pub(crate) fn finish_reason(done_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    if has_tool_calls {
        return "tool_calls";
    }
    match done_reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// `(prompt_tokens, completion_tokens)` from a final chunk or whole answer.
pub(crate) fn counts(v: &Value) -> (u64, u64) {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    (n("prompt_eval_count"), n("eval_count"))
}

pub(crate) fn usage_json((prompt, completion): (u64, u64)) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
}

/// Ollama's tool calls (arguments as an object) as OpenAI's (arguments as a JSON string, with an
/// id Ollama does not give: `call_<call id>_<n>`).
pub(crate) fn tool_calls(calls: &[Value], id_stem: &str, first: usize) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = c.get("function").unwrap_or(&Value::Null);
            let arguments = match f.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "{}".to_string(),
            };
            json!({
                "index": first + i,
                "id": format!("call_{id_stem}_{}", first + i),
                "type": "function",
                "function": { "name": f.get("name").and_then(Value::as_str).unwrap_or_default(), "arguments": arguments },
            })
        })
        .collect()
}

/// The call id's own part, for tool-call ids (`chatcmpl-abc` → `abc`).
pub(crate) fn id_stem(id: &str) -> &str {
    id.strip_prefix("chatcmpl-").unwrap_or(id)
}

fn completion(model: &str, id: &str, created: u64, message: Value, finish: &str, usage: (u64, u64)) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
        "usage": usage_json(usage),
    })
}

fn checked(v: &Value) -> Result<(), TranslateError> {
    if let Some(e) = v.get("error") {
        let text = e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string());
        return Err(TranslateError::other(format!("Ollama answered an error: {text}")));
    }
    if !v.is_object() {
        return Err(TranslateError::other("Ollama's answer is not a JSON object"));
    }
    Ok(())
}

/// An `/api/chat` answer.
pub fn chat_response(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, TranslateError> {
    checked(v)?;
    let msg = v.get("message").filter(|m| m.is_object()).ok_or_else(|| TranslateError::other("no `message`"))?;
    let content = msg.get("content").and_then(Value::as_str).filter(|s| !s.is_empty());
    let calls = msg.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut message = json!({ "role": "assistant", "content": content });
    if !calls.is_empty() {
        let mut calls = tool_calls(calls, id_stem(id), 0);
        for c in &mut calls {
            if let Some(o) = c.as_object_mut() {
                o.remove("index");
            }
        }
        message["tool_calls"] = calls.into();
    }
    if let Some(t) = msg.get("thinking").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        message["reasoning_content"] = t.into();
    }
    let finish = finish_reason(v.get("done_reason").and_then(Value::as_str), !calls.is_empty());
    Ok(completion(model, id, created, message, finish, counts(v)))
}

/// An `/api/generate` answer. When the request carried tools (`format: json` with LiteLLM's
/// function prompt), a JSON object with `name` and `arguments` is the model's tool call.
pub fn generate_response(v: &Value, model: &str, id: &str, created: u64, tools: bool) -> Result<Value, TranslateError> {
    checked(v)?;
    let text = v.get("response").and_then(Value::as_str).ok_or_else(|| TranslateError::other("no `response`"))?;
    let (message, finish) = match tools.then(|| function_call(text)).flatten() {
        Some(call) => {
            let mut calls = tool_calls(&[call], id_stem(id), 0);
            if let Some(o) = calls[0].as_object_mut() {
                o.remove("index");
            }
            (json!({ "role": "assistant", "content": null, "tool_calls": calls }), "tool_calls")
        }
        None => (
            json!({ "role": "assistant", "content": text }),
            finish_reason(v.get("done_reason").and_then(Value::as_str), false),
        ),
    };
    Ok(completion(model, id, created, message, finish, counts(v)))
}

/// A generated text that is a function call in LiteLLM's prompted format.
pub(crate) fn function_call(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    let name = v.get("name")?.as_str()?;
    let arguments = v.get("arguments")?;
    Some(json!({ "function": { "name": name, "arguments": arguments } }))
}

/// An `/api/embed` answer as OpenAI's embedding list; `base64` encodes each vector as OpenAI
/// does (little-endian f32s).
pub fn embed_response(v: &Value, model: &str, base64: bool) -> Result<Value, TranslateError> {
    checked(v)?;
    let vectors =
        v.get("embeddings").and_then(Value::as_array).ok_or_else(|| TranslateError::other("no `embeddings` array"))?;
    let data = crate::embedding::data(vectors, base64).map_err(TranslateError::other)?;
    let prompt = v.get("prompt_eval_count").and_then(Value::as_u64).unwrap_or(0);
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": prompt, "total_tokens": prompt },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_answer_with_tool_calls_and_thinking() {
        let v = json!({
            "model": "llama3", "created_at": "2024-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "", "thinking": "hmm",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 12,
        });
        let out = chat_response(&v, "group", "chatcmpl-abc", 5).unwrap();
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        assert_eq!(choice["message"]["reasoning_content"], "hmm");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["id"], "call_abc_0");
        assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert!(call.get("index").is_none());
        assert_eq!(out["usage"], json!({"prompt_tokens": 26, "completion_tokens": 12, "total_tokens": 38}));
        assert_eq!(out["model"], "group");
    }

    #[test]
    fn a_generate_answer_and_its_prompted_tool_call() {
        let v = json!({"response": "Hi there", "done": true, "done_reason": "length", "prompt_eval_count": 3, "eval_count": 2});
        let out = generate_response(&v, "g", "chatcmpl-1", 1, false).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi there");
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        let v = json!({"response": "{\"name\": \"f\", \"arguments\": {\"a\": 1}}", "done": true});
        let out = generate_response(&v, "g", "chatcmpl-1", 1, true).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
        // Without tools asked for, JSON text is just text.
        let out = generate_response(&v, "g", "chatcmpl-1", 1, false).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert!(generate_response(&json!({"error": "boom"}), "g", "c", 1, false).is_err());
        assert!(generate_response(&json!({"done": true}), "g", "c", 1, false).is_err());
    }

    #[test]
    fn embeddings_as_floats_or_openais_base64() {
        let v = json!({"model": "nomic", "embeddings": [[0.5, -1.0], [2.0, 0.25]], "prompt_eval_count": 4});
        let out = embed_response(&v, "group", false).unwrap();
        assert_eq!(out["data"][1], json!({"object": "embedding", "index": 1, "embedding": [2.0, 0.25]}));
        assert_eq!(out["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
        let out = embed_response(&v, "group", true).unwrap();
        use base64::Engine as _;
        let b =
            base64::engine::general_purpose::STANDARD.decode(out["data"][0]["embedding"].as_str().unwrap()).unwrap();
        let floats: Vec<f32> = b.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(floats, vec![0.5, -1.0]);
        assert!(embed_response(&json!({"embeddings": [["x"]]}), "g", true).is_err());
    }
}
