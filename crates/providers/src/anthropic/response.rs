//! Anthropic Messages response → OpenAI `chat.completion`, as LiteLLM builds it: text blocks
//! joined into `content`, `tool_use` blocks as `tool_calls`, thinking as `reasoning_content`,
//! `stop_reason` mapped per formats.md §13, and usage with cache tokens counted into the prompt.

use serde_json::{json, Value};

use super::{finish_reason, TranslateError, Usage};

/// Translates a Messages API response body (already parsed) into a `chat.completion` that
/// names `model` (the client's model name) and `created`.
pub fn chat_response(msg: &Value, model: &str, created: u64) -> Result<Value, TranslateError> {
    let blocks = msg
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::upstream("Anthropic returned a response without a `content` array"))?;
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                has_text = true;
                text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            Some("tool_use") => tool_calls.push(tool_call(block)),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            // Server-tool results and future block types have no OpenAI equivalent.
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if has_text { Value::from(text) } else { Value::Null },
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !thinking_blocks.is_empty() {
        message["reasoning_content"] = reasoning.into();
        message["thinking_blocks"] = Value::Array(thinking_blocks);
    }
    let mut usage = Usage::default();
    if let Some(u) = msg.get("usage") {
        usage.update(u);
    }
    let id = msg
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| super::fresh_id("chatcmpl-"), str::to_string);
    Ok(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(msg.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": usage.to_openai(),
    }))
}

/// A `tool_use` block as an OpenAI tool call: the id is kept (the client sends it back as
/// `tool_call_id`, which becomes `tool_use_id` again), the input re-encoded as a JSON string.
fn tool_call(block: &Value) -> Value {
    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
    json!({
        "id": block.get("id").and_then(Value::as_str).unwrap_or(""),
        "type": "function",
        "function": {
            "name": block.get("name").and_then(Value::as_str).unwrap_or(""),
            "arguments": input.to_string(),
        },
    })
}
