//! OpenAI requests → Cohere's v2 API, following LiteLLM's `CohereV2ChatConfig` and its Cohere
//! embedding handler: chat (`/v2/chat`) keeps OpenAI's message and tool shapes, with sampling
//! under Cohere's names (`top_p` is `p`, `stop` is `stop_sequences`); embeddings (`/v2/embed`)
//! send `texts` with an `input_type` (LiteLLM's default, `search_document`).

use serde_json::{json, Map, Value};

use super::TranslateError;

/// OpenAI parameters that are hints to OpenAI's own service or that the gateway consumes
/// itself: never sent, never an error.
const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "store",
    "metadata",
    "service_tier",
    "user",
    "parallel_tool_calls",
    "prompt_cache_key",
    "safety_identifier",
];

/// Cohere's own chat fields a client may send as extra body parameters.
const NATIVE_FIELDS: &[&str] =
    &["k", "documents", "citation_options", "safety_mode", "strict_tools", "logprobs", "thinking", "priority"];

/// The body of a `/v2/chat` call.
pub fn chat_request(openai: &Value, model: &str, stream: bool, drop_params: bool) -> Result<Value, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::other("the request body must be a JSON object with `model` and `messages`"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::param("messages", "`messages` is required and must be a non-empty array"))?;
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let converted = messages.iter().enumerate().map(|(i, m)| message(m, i)).collect::<Result<Vec<_>, _>>()?;
    out.insert("messages".into(), converted.into());
    out.insert("stream".into(), stream.into());
    for (key, value) in req {
        if value.is_null() || key == "messages" {
            continue;
        }
        match key.as_str() {
            "max_tokens" | "max_completion_tokens" => {
                let n = value
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| TranslateError::param(key, format!("`{key}` must be a positive integer")))?;
                out.insert("max_tokens".into(), n.into());
            }
            "temperature" | "seed" | "frequency_penalty" | "presence_penalty" => {
                out.insert(key.clone(), number(key, value)?);
            }
            "top_p" => {
                out.insert("p".into(), number(key, value)?);
            }
            "n" if value.as_u64() == Some(1) => {}
            "stop" => {
                let stops = match value {
                    Value::String(s) => vec![Value::String(s.clone())],
                    Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
                    _ => return Err(TranslateError::param("stop", "`stop` must be a string or an array of strings")),
                };
                out.insert("stop_sequences".into(), stops.into());
            }
            "tools" => {
                out.insert("tools".into(), tools(value)?);
            }
            "tool_choice" => match value.as_str() {
                Some("auto") => {}
                Some("none") => {
                    out.insert("tool_choice".into(), "NONE".into());
                }
                Some("required") => {
                    out.insert("tool_choice".into(), "REQUIRED".into());
                }
                _ if drop_params => {}
                _ => {
                    return Err(TranslateError::param(
                        "tool_choice",
                        "Cohere takes tool_choice \"auto\", \"none\" or \"required\", not a named tool",
                    ))
                }
            },
            "response_format" => match value.get("type").and_then(Value::as_str) {
                Some("text") => {}
                Some("json_object") => {
                    out.insert("response_format".into(), json!({ "type": "json_object" }));
                }
                Some("json_schema") => {
                    let schema = value.get("json_schema").and_then(|s| s.get("schema")).cloned().ok_or_else(|| {
                        TranslateError::param("response_format", "`response_format.json_schema.schema` is required")
                    })?;
                    out.insert("response_format".into(), json!({ "type": "json_object", "json_schema": schema }));
                }
                _ => {
                    return Err(TranslateError::param(
                        "response_format",
                        "`response_format.type` must be one of \"text\", \"json_object\", \"json_schema\"",
                    ))
                }
            },
            k if NATIVE_FIELDS.contains(&k) => {
                out.insert(k.into(), value.clone());
            }
            k if IGNORED.contains(&k) || drop_params => {}
            k => {
                return Err(TranslateError::param(
                    k,
                    format!(
                        "cohere does not support parameters: ['{k}']. To drop unsupported parameters, set \
                         `litellm_settings: {{drop_params: true}}` or the deployment's `drop_params: true`"
                    ),
                ))
            }
        }
    }
    Ok(Value::Object(out))
}

/// The body of a `/v2/embed` call, and whether the client asked for base64 vectors (requested
/// as floats and encoded by the gateway, as OpenAI answers).
pub fn embed_request(openai: &Value, model: &str) -> Result<(Value, bool), TranslateError> {
    let req = openai.as_object().ok_or_else(|| TranslateError::other("the request body must be a JSON object"))?;
    let texts = match req.get("input") {
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => items.clone(),
        _ => {
            return Err(TranslateError::param(
                "input",
                "`input` is required: a string or a non-empty array of strings (Cohere embeds text, not token ids)",
            ))
        }
    };
    let input_type = match req.get("input_type") {
        None | Some(Value::Null) => "search_document".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(TranslateError::param("input_type", "`input_type` must be a string")),
    };
    let mut out = json!({ "model": model, "texts": texts, "input_type": input_type, "embedding_types": ["float"] });
    if let Some(d) = req.get("dimensions").filter(|v| !v.is_null()) {
        let n = d
            .as_u64()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(|| TranslateError::param("dimensions", "`dimensions` must be a positive integer"))?;
        out["output_dimension"] = n.into();
    }
    if let Some(t) = req.get("truncate").filter(|v| !v.is_null()) {
        out["truncate"] = t.clone();
    }
    let base64 = crate::embedding::wants_base64(req).map_err(|e| TranslateError::param("encoding_format", e))?;
    Ok((out, base64))
}

fn number(key: &str, value: &Value) -> Result<Value, TranslateError> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        _ => Err(TranslateError::param(key, format!("`{key}` must be a number"))),
    }
}

/// OpenAI's tools are Cohere v2's; legacy `functions` are wrapped into them.
fn tools(value: &Value) -> Result<Value, TranslateError> {
    let list = value.as_array().ok_or_else(|| TranslateError::param("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let function = t.get("function").unwrap_or(t);
        if function.get("name").and_then(Value::as_str).is_none() {
            return Err(TranslateError::param(
                &format!("tools[{i}].function.name"),
                format!("tools[{i}] needs `function.name`"),
            ));
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(Value::Array(out))
}

/// One OpenAI message as Cohere's: text parts kept (images as Cohere's `image_url` parts),
/// tool calls and results as OpenAI has them.
fn message(m: &Value, i: usize) -> Result<Value, TranslateError> {
    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
        TranslateError::param(&format!("messages[{i}].role"), format!("messages[{i}] needs a `role`"))
    })?;
    let role = match role {
        "developer" => "system",
        r @ ("system" | "user" | "assistant" | "tool") => r,
        other => {
            return Err(TranslateError::param(
                &format!("messages[{i}].role"),
                format!("messages[{i}] has role {other:?}; use system, developer, user, assistant or tool"),
            ))
        }
    };
    let mut out = json!({ "role": role });
    match m.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out["content"] = s.clone().into(),
        Some(Value::Array(parts)) => {
            let mut converted = Vec::with_capacity(parts.len());
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => converted.push(json!({ "type": "text", "text": p.get("text") })),
                    Some("image_url") => {
                        converted.push(json!({ "type": "image_url", "image_url": p.get("image_url") }))
                    }
                    _ => {
                        return Err(TranslateError::param(
                            &format!("messages[{i}].content"),
                            "Cohere takes text and image_url content parts only",
                        ))
                    }
                }
            }
            out["content"] = converted.into();
        }
        Some(_) => {
            return Err(TranslateError::param(
                &format!("messages[{i}].content"),
                "`content` must be a string or an array of content parts",
            ))
        }
    }
    if let Some(calls) = m.get("tool_calls").filter(|c| c.as_array().is_some_and(|a| !a.is_empty())) {
        out["tool_calls"] = calls.clone();
        // Cohere wants a plan or content beside the calls; LiteLLM sends what the model gave.
        if out.get("content").is_none() {
            out["tool_plan"] = "".into();
        }
    }
    if role == "tool" {
        let id = m.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
            TranslateError::param(&format!("messages[{i}].tool_call_id"), "a tool message needs `tool_call_id`")
        })?;
        out["tool_call_id"] = id.into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_renames_sampling_and_keeps_tools() {
        let req = json!({
            "model": "g",
            "messages": [
                {"role": "developer", "content": "brief"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "w", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
            "top_p": 0.5, "stop": "END", "max_tokens": 9, "tool_choice": "required", "seed": 3,
            "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
        });
        let out = chat_request(&req, "command-r", true, false).unwrap();
        assert_eq!(out["p"], 0.5);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["max_tokens"], 9);
        assert_eq!(out["tool_choice"], "REQUIRED");
        assert_eq!(out["messages"][0], json!({"role": "system", "content": "brief"}));
        assert_eq!(out["messages"][2]["tool_calls"][0]["id"], "c1");
        assert_eq!(out["messages"][3], json!({"role": "tool", "content": "sunny", "tool_call_id": "c1"}));
        assert_eq!(out["stream"], true);
        let bad = json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "logit_bias": {}});
        assert_eq!(chat_request(&bad, "m", false, false).unwrap_err().param.as_deref(), Some("logit_bias"));
        assert!(chat_request(&bad, "m", false, true).unwrap().get("logit_bias").is_none());
    }

    #[test]
    fn embed_sends_texts_with_an_input_type() {
        let (out, b64) = embed_request(&json!({"input": ["a"], "dimensions": 256}), "embed-v4.0").unwrap();
        assert_eq!(
            out,
            json!({"model": "embed-v4.0", "texts": ["a"], "input_type": "search_document",
                "embedding_types": ["float"], "output_dimension": 256})
        );
        assert!(!b64);
        let (out, b64) =
            embed_request(&json!({"input": "q", "input_type": "search_query", "encoding_format": "base64"}), "e")
                .unwrap();
        assert_eq!(out["input_type"], "search_query");
        assert!(b64);
        assert!(embed_request(&json!({"input": [[1]]}), "e").is_err());
    }
}
