//! Cohere v2 answers → OpenAI's: `/v2/chat` as `chat.completion`, `/v2/embed` as an embedding
//! list. Usage is Cohere's `usage.tokens` (billed units when tokens are missing).

use serde_json::{json, Value};

use super::TranslateError;

/// OpenAI's `finish_reason` for Cohere's.
pub(crate) fn finish_reason(cohere: Option<&str>) -> &'static str {
    match cohere {
        Some("MAX_TOKENS") => "length",
        Some("TOOL_CALL") => "tool_calls",
        _ => "stop",
    }
}

/// `(prompt_tokens, completion_tokens)` from a v2 `usage` object.
pub(crate) fn counts(usage: Option<&Value>) -> (u64, u64) {
    let Some(u) = usage else { return (0, 0) };
    let pick = |k: &str| {
        u.get("tokens")
            .and_then(|t| t.get(k))
            .or_else(|| u.get("billed_units").and_then(|b| b.get(k)))
            .and_then(Value::as_f64)
            .map(|n| n.max(0.0) as u64)
            .unwrap_or(0)
    };
    (pick("input_tokens"), pick("output_tokens"))
}

pub(crate) fn usage_json((p, c): (u64, u64)) -> Value {
    json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
}

/// A `/v2/chat` answer.
pub fn chat_response(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, TranslateError> {
    let msg = v.get("message").filter(|m| m.is_object()).ok_or_else(|| TranslateError::other("no `message`"))?;
    let text: String = msg
        .get("content")
        .and_then(Value::as_array)
        .map(|parts| parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    let mut message = json!({ "role": "assistant", "content": (!text.is_empty()).then_some(text) });
    let calls: Vec<Value> = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    let f = c.get("function").unwrap_or(&Value::Null);
                    json!({
                        "id": c.get("id").and_then(Value::as_str).unwrap_or_default(),
                        "type": "function",
                        "function": {
                            "name": f.get("name").and_then(Value::as_str).unwrap_or_default(),
                            "arguments": f.get("arguments").and_then(Value::as_str).unwrap_or("{}"),
                        },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let has_calls = !calls.is_empty();
    if has_calls {
        message["tool_calls"] = calls.into();
    }
    let finish = match finish_reason(v.get("finish_reason").and_then(Value::as_str)) {
        "stop" if has_calls => "tool_calls",
        f => f,
    };
    let usage = counts(v.get("usage"));
    Ok(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
        "usage": usage_json(usage),
    }))
}

/// A `/v2/embed` answer (`embeddings.float`) as OpenAI's embedding list.
pub fn embed_response(v: &Value, model: &str, base64: bool) -> Result<Value, TranslateError> {
    let vectors = v
        .get("embeddings")
        .and_then(|e| e.get("float").or(Some(e)))
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::other("no `embeddings.float` array"))?;
    let data = crate::embedding::data(vectors, base64).map_err(TranslateError::other)?;
    let prompt = v
        .get("meta")
        .and_then(|m| m.get("billed_units"))
        .and_then(|b| b.get("input_tokens"))
        .and_then(Value::as_f64)
        .map(|n| n.max(0.0) as u64)
        .unwrap_or(0);
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
    fn a_chat_answer_with_text_or_tool_calls() {
        let v = json!({
            "id": "x", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
            "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2}, "tokens": {"input_tokens": 70, "output_tokens": 2}},
        });
        let out = chat_response(&v, "group", "chatcmpl-1", 1).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi");
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(out["usage"]["prompt_tokens"], 70, "tokens, not billed units");
        let v = json!({
            "finish_reason": "TOOL_CALL",
            "message": {"role": "assistant", "tool_plan": "I will look",
                "tool_calls": [{"id": "w_1", "type": "function", "function": {"name": "w", "arguments": "{\"a\":1}"}}]},
        });
        let out = chat_response(&v, "g", "c", 1).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["id"], "w_1");
        assert!(chat_response(&json!({"id": "x"}), "g", "c", 1).is_err());
    }

    #[test]
    fn an_embed_answer() {
        let v = json!({"embeddings": {"float": [[0.5], [1.0]]}, "meta": {"billed_units": {"input_tokens": 4}}});
        let out = embed_response(&v, "g", false).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([1.0]));
        assert_eq!(out["usage"]["prompt_tokens"], 4);
        assert_eq!(embed_response(&v, "g", true).unwrap()["data"][0]["embedding"], "AAAAPw==");
    }
}
