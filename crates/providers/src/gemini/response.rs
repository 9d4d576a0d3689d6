//! Gemini `GenerateContentResponse` → OpenAI `chat.completion` (formats.md §2.4, §2.6).

use serde::Deserialize;
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

/// What of a Gemini answer [`chat_response`] reads, and nothing else: safety ratings, citations
/// and the model version (most of a short answer's bytes) are skipped without being built.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Read {
    candidates: Option<Vec<ReadCandidate>>,
    usage_metadata: Option<Value>,
    prompt_feedback: Option<Value>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadCandidate {
    content: Option<Value>,
    finish_reason: Option<Value>,
    index: Option<Value>,
    logprobs_result: Option<Value>,
}

/// `body` as the tree [`chat_response`] reads: only its members when the answer has the usual
/// shape, else the whole tree. `None` when it is not JSON.
pub(crate) fn read_answer(body: &[u8]) -> Option<Value> {
    let Ok(read) = serde_json::from_slice::<Read>(body) else {
        return serde_json::from_slice(body).ok();
    };
    let mut out = serde_json::Map::new();
    let put = |map: &mut serde_json::Map<String, Value>, name: &str, v: Option<Value>| {
        if let Some(v) = v {
            map.insert(name.to_string(), v);
        }
    };
    if let Some(candidates) = read.candidates {
        let list = candidates
            .into_iter()
            .map(|c| {
                let mut m = serde_json::Map::new();
                put(&mut m, "content", c.content);
                put(&mut m, "finishReason", c.finish_reason);
                put(&mut m, "index", c.index);
                put(&mut m, "logprobsResult", c.logprobs_result);
                Value::Object(m)
            })
            .collect();
        out.insert("candidates".into(), Value::Array(list));
    }
    put(&mut out, "usageMetadata", read.usage_metadata);
    put(&mut out, "promptFeedback", read.prompt_feedback);
    put(&mut out, "error", read.error);
    Some(Value::Object(out))
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
    fn an_answer_read_in_part_translates_as_the_whole_tree_does() {
        let rating =
            json!({"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE", "probabilityScore": 0.05});
        for answer in [
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP",
                "safetyRatings": [rating, rating], "avgLogprobs": -0.1}],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
                "modelVersion": "gemini-1.5-pro"}),
            json!({"candidates": [{"index": 1, "content": {"parts": [{"text": "a", "thought": true}, {"functionCall": {"name": "f", "args": {"x": 1}}}]},
                "finishReason": null, "logprobsResult": {"chosenCandidates": [{"token": "a", "logProbability": -1.0}]}}]}),
            json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}),
            json!({"candidates": null, "error": {"message": "boom"}}),
            json!({"candidates": {"not": "a list"}}),
            json!({"candidates": [{"content": null, "finishReason": "MAX_TOKENS"}]}),
            json!([1, 2]),
        ] {
            let body = serde_json::to_vec(&answer).unwrap();
            let whole = chat_response(&answer, "m", "i", 1).map_err(|e| e.message);
            let read = chat_response(&read_answer(&body).unwrap(), "m", "i", 1).map_err(|e| e.message);
            assert_eq!(read, whole, "{answer}");
        }
        assert!(read_answer(b"{not json").is_none());
        // Safety ratings are not built.
        let body = serde_json::to_vec(&json!({"candidates": [{"safetyRatings": [rating]}]})).unwrap();
        assert_eq!(read_answer(&body).unwrap(), json!({"candidates": [{}]}));
    }

    #[test]
    fn upstream_error_object_is_an_error() {
        let e = chat_response(&json!({"error": {"code": 500, "message": "boom"}}), "m", "i", 1).unwrap_err();
        assert!(e.message.contains("boom"));
        assert!(chat_response(&json!([1]), "m", "i", 1).is_err());
    }
}
