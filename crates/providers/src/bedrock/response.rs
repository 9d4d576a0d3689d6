//! Converse response → OpenAI `chat.completion`, as LiteLLM builds it: text blocks joined into
//! `content`, `toolUse` blocks as `tool_calls`, reasoning as `reasoning_content`, `stopReason`
//! mapped per formats.md §13, and usage with cache tokens counted into the prompt.

use serde_json::{json, Value};

use super::{finish_reason, TranslateError, Usage};

/// Translates a Converse response body (already parsed) into a `chat.completion` that names
/// `model` (the client's model name). Converse answers carry no id, so the caller supplies one.
pub fn converse_response(resp: &Value, model: &str, id: &str, created: u64) -> Result<Value, TranslateError> {
    let blocks = resp
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::other("Bedrock returned a response without output.message.content"))?;
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut has_reasoning = false;
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            has_text = true;
            text.push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            let input = tu.get("input").cloned().unwrap_or_else(|| json!({}));
            tool_calls.push(json!({
                "id": tu.get("toolUseId").and_then(Value::as_str).unwrap_or(""),
                "type": "function",
                "function": {
                    "name": tu.get("name").and_then(Value::as_str).unwrap_or(""),
                    "arguments": input.to_string(),
                },
            }));
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(t) = r.get("reasoningText").and_then(|t| t.get("text")).and_then(Value::as_str) {
                has_reasoning = true;
                reasoning.push_str(t);
            }
        }
        // Images, citations, guard content and newer block types have no OpenAI equivalent.
    }
    let mut message = json!({
        "role": "assistant",
        "content": if has_text { Value::from(text) } else { Value::Null },
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if has_reasoning {
        message["reasoning_content"] = reasoning.into();
    }
    let usage = resp.get("usage").map(Usage::from_json).unwrap_or_default();
    Ok(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(resp.get("stopReason").and_then(Value::as_str)),
        }],
        "usage": usage.to_openai(),
    }))
}
