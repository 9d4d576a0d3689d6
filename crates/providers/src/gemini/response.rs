//! Gemini `GenerateContentResponse` → OpenAI `chat.completion` (formats.md §2.4, §2.6).

use serde_json::{json, Value};

use super::{finish_reason, tool_call_id, usage, TranslateError};

/// What one candidate's parts say, split the way OpenAI splits a message.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub text: String,
    /// Text of `thought: true` parts (thinking models), which LiteLLM reports as
    /// `reasoning_content`.
    pub thoughts: String,
    /// (Gemini's own call id if it sent one, name, args object).
    pub calls: Vec<(Option<String>, String, Value)>,
}

pub(crate) fn read_parts(candidate: &Value) -> Parts {
    let mut out = Parts::default();
    let Some(parts) = candidate.pointer("/content/parts").and_then(Value::as_array) else {
        return out;
    };
    for p in parts {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                out.thoughts.push_str(t);
            } else {
                out.text.push_str(t);
            }
        } else if let Some(f) = p.get("functionCall") {
            let name = f.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let args = f.get("args").cloned().filter(|a| !a.is_null()).unwrap_or_else(|| json!({}));
            let id = f.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            out.calls.push((id, name, args));
        }
    }
    out
}

/// OpenAI `tool_calls` entries; `index` is included for stream deltas.
pub(crate) fn tool_calls(
    parts: &Parts,
    response_id: &str,
    choice: usize,
    first: usize,
    with_index: bool,
) -> Vec<Value> {
    parts
        .calls
        .iter()
        .enumerate()
        .map(|(k, (gid, name, args))| {
            let n = first + k;
            let id = gid.clone().unwrap_or_else(|| tool_call_id(response_id, choice, n));
            let mut call = json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": args.to_string() }
            });
            if with_index {
                call["index"] = n.into();
            }
            call
        })
        .collect()
}

/// OpenAI `logprobs.content` from Gemini's `logprobsResult`, or null.
fn logprobs(candidate: &Value) -> Value {
    let Some(chosen) = candidate.pointer("/logprobsResult/chosenCandidates").and_then(Value::as_array) else {
        return Value::Null;
    };
    let top = candidate.pointer("/logprobsResult/topCandidates").and_then(Value::as_array);
    let entry = |c: &Value| json!({ "token": c.get("token").cloned().unwrap_or_default(), "logprob": c.get("logProbability").cloned().unwrap_or(json!(0.0)) });
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = entry(c);
            let alts = top
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .map(|a| a.iter().map(entry).collect())
                .unwrap_or_default();
            e["top_logprobs"] = Value::Array(alts);
            e
        })
        .collect();
    json!({ "content": content })
}

pub fn chat_response(gemini: &Value, model: &str, id: &str, created: u64) -> Result<Value, TranslateError> {
    let obj = gemini
        .as_object()
        .ok_or_else(|| TranslateError::other("Gemini returned a response that is not a JSON object."))?;
    if let Some(e) = obj.get("error") {
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("no message");
        return Err(TranslateError::other(format!("Gemini returned an error: {msg}")));
    }
    let candidates = obj.get("candidates").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    if candidates.is_empty() {
        // A prompt Gemini blocked comes back with no candidates at all.
        let blocked = gemini.pointer("/promptFeedback/blockReason").is_some();
        choices.push(json!({
            "index": 0,
            "message": { "role": "assistant", "content": null },
            "logprobs": null,
            "finish_reason": if blocked { "content_filter" } else { "stop" },
        }));
    }
    for (pos, c) in candidates.iter().enumerate() {
        let index = c.get("index").and_then(Value::as_u64).map_or(pos, |i| i as usize);
        let parts = read_parts(c);
        let mut message = json!({
            "role": "assistant",
            "content": if parts.text.is_empty() { Value::Null } else { Value::String(parts.text.clone()) },
        });
        if !parts.thoughts.is_empty() {
            message["reasoning_content"] = Value::String(parts.thoughts.clone());
        }
        if !parts.calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls(&parts, id, index, 0, false));
        }
        let reason = finish_reason(c.get("finishReason").and_then(Value::as_str), !parts.calls.is_empty());
        choices.push(json!({ "index": index, "message": message, "logprobs": logprobs(c), "finish_reason": reason }));
    }
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let Some((u, _, _)) = obj.get("usageMetadata").and_then(usage) {
        out["usage"] = u;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_map() {
        let c = json!({"logprobsResult": {
            "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
            "topCandidates": [{"candidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "Yo", "logProbability": -2.0}]}]
        }});
        let l = logprobs(&c);
        assert_eq!(l["content"][0]["token"], "Hi");
        assert_eq!(l["content"][0]["top_logprobs"][1]["logprob"], -2.0);
        assert_eq!(logprobs(&json!({})), Value::Null);
    }

    #[test]
    fn upstream_error_object_is_an_error() {
        let e = chat_response(&json!({"error": {"code": 500, "message": "boom"}}), "m", "i", 1).unwrap_err();
        assert!(e.message.contains("boom"));
        assert!(chat_response(&json!([1]), "m", "i", 1).is_err());
    }
}
