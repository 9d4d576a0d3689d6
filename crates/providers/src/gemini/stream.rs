//! `:streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk`s (formats.md §2.5, §10.2).
//!
//! Every Gemini event is a whole `GenerateContentResponse` whose text parts are deltas and whose
//! function calls arrive complete; the stream ends at EOF without `[DONE]`. The translator keeps
//! just enough per candidate to emit what OpenAI clients assemble: `role` on the first chunk,
//! tool-call indexes that count up, one `finish_reason`, then the usage chunk.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::response::{read_parts, tool_calls};
use super::{finish_reason, usage, TranslateError};

#[derive(Debug, Default)]
struct Choice {
    /// The chunk with `role: "assistant"` has gone out.
    started: bool,
    /// Tool calls sent so far: the next call's `index`.
    calls: usize,
    finished: bool,
}

/// One stream's translation state. Feed it each SSE event's `data` in order, then call
/// [`StreamTranslator::finish`] at EOF.
#[derive(Debug)]
pub struct StreamTranslator {
    model: String,
    id: String,
    created: u64,
    include_usage: bool,
    choices: BTreeMap<usize, Choice>,
    usage: Option<(Value, u64, u64)>,
    done: bool,
}

impl StreamTranslator {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        StreamTranslator {
            model: model.to_string(),
            id: id.to_string(),
            created,
            include_usage,
            choices: BTreeMap::new(),
            usage: None,
            done: false,
        }
    }

    /// The OpenAI chunks (JSON text, without the `data: ` framing) for one Gemini event. An
    /// event that is not JSON, or Google's `{"error": …}` sent mid-stream, is an error: the
    /// server should end the stream with an error event.
    pub fn on_event_values(&mut self, data: &[u8]) -> Result<Vec<Value>, TranslateError> {
        let trimmed = data.trim_ascii();
        if trimmed.is_empty() || trimmed == b"[DONE]" {
            return Ok(Vec::new());
        }
        let event: Value = serde_json::from_slice(trimmed).map_err(|e| {
            TranslateError::other(format!(
                "Gemini sent a stream event that is not valid JSON ({e}); the stream was cut."
            ))
        })?;
        if let Some(e) = event.get("error") {
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("no message");
            return Err(TranslateError::other(format!("Gemini reported an error mid-stream: {msg}")));
        }
        if let Some(u) = event.get("usageMetadata").and_then(usage) {
            self.usage = Some(u);
        }
        let mut out = Vec::new();
        let candidates = event.get("candidates").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        if candidates.is_empty() && event.pointer("/promptFeedback/blockReason").is_some() {
            let st = self.choices.entry(0).or_default();
            if !st.finished {
                let delta = if st.started { json!({}) } else { json!({ "role": "assistant", "content": null }) };
                st.started = true;
                st.finished = true;
                out.push(self.chunk(0, delta, Some("content_filter")));
            }
            return Ok(out);
        }
        for (pos, c) in candidates.iter().enumerate() {
            let index = c.get("index").and_then(Value::as_u64).map_or(pos, |i| i as usize);
            let parts = read_parts(c);
            let st = self.choices.entry(index).or_default();
            if st.finished {
                continue;
            }
            let mut delta = serde_json::Map::new();
            if !st.started {
                delta.insert("role".into(), "assistant".into());
            }
            if !parts.text.is_empty() {
                delta.insert("content".into(), Value::String(parts.text.clone()));
            }
            if !parts.thoughts.is_empty() {
                delta.insert("reasoning_content".into(), Value::String(parts.thoughts.clone()));
            }
            if !parts.calls.is_empty() {
                delta.insert("tool_calls".into(), Value::Array(tool_calls(&parts, &self.id, index, st.calls, true)));
                st.calls += parts.calls.len();
            }
            let reason = c.get("finishReason").and_then(Value::as_str);
            let has_content = delta.len() > usize::from(!st.started);
            let (had_calls, first) = (st.calls > 0, !st.started);
            st.started = true;
            if reason.is_some() {
                st.finished = true;
            }
            if has_content || (first && reason.is_none()) {
                out.push(self.chunk(index, Value::Object(delta), None));
            } else if first {
                // Nothing but a finish reason in the very first event: role and finish together.
                out.push(self.chunk(index, Value::Object(delta), Some(finish_reason(reason, had_calls))));
                continue;
            }
            if reason.is_some() {
                out.push(self.chunk(index, json!({}), Some(finish_reason(reason, had_calls))));
            }
        }
        Ok(out)
    }

    /// At EOF: a finish chunk for every choice Gemini left open (`stop`, or `tool_calls` if it
    /// made calls), then the usage chunk when the client asked for it and Gemini reported usage.
    /// Calling it again yields nothing.
    pub fn finish_values(&mut self) -> Vec<Value> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        if self.choices.is_empty() {
            self.choices.insert(0, Choice::default());
        }
        let open: Vec<(usize, bool, bool)> =
            self.choices.iter().filter(|(_, c)| !c.finished).map(|(i, c)| (*i, c.started, c.calls > 0)).collect();
        for (index, started, had_calls) in open {
            let delta = if started { json!({}) } else { json!({ "role": "assistant", "content": "" }) };
            out.push(self.chunk(index, delta, Some(finish_reason(None, had_calls))));
            if let Some(c) = self.choices.get_mut(&index) {
                c.finished = true;
            }
        }
        if self.include_usage {
            if let Some((u, _, _)) = &self.usage {
                out.push(json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": u,
                }));
            }
        }
        out
    }

    /// [`Self::on_event_values`] as JSON text, one chunk per string.
    pub fn on_event(&mut self, data: &[u8]) -> Result<Vec<String>, TranslateError> {
        Ok(self.on_event_values(data)?.iter().map(Value::to_string).collect())
    }

    /// [`Self::finish_values`] as JSON text.
    pub fn finish(&mut self) -> Vec<String> {
        self.finish_values().iter().map(Value::to_string).collect()
    }

    /// (prompt_tokens, completion_tokens) from the last `usageMetadata` seen; `None` when Gemini
    /// sent none (the server then counts tokens itself).
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage.as_ref().map(|(_, p, c)| (*p, *c))
    }

    /// OpenAI's `usage` object from the last `usageMetadata` (cached and reasoning counts
    /// included).
    pub fn usage_object(&self) -> Option<Value> {
        self.usage.as_ref().map(|(u, _, _)| u.clone())
    }

    fn chunk(&self, index: usize, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": index, "delta": delta, "finish_reason": finish }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn garbage_and_errors_are_errors() {
        let mut t = StreamTranslator::new("m", "i", 1, false);
        assert!(t.on_event(b"{not json").is_err());
        assert!(t.on_event(br#"{"error":{"code":429,"message":"quota"}}"#).unwrap_err().message.contains("quota"));
        assert!(t.on_event(b"  \r\n").unwrap().is_empty());
    }

    #[test]
    fn blocked_prompt_in_stream() {
        let mut t = StreamTranslator::new("m", "i", 1, true);
        let out = t.on_event(br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}"#).unwrap();
        assert_eq!(out.len(), 1);
        let c = v(&out[0]);
        assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(c["choices"][0]["delta"]["role"], "assistant");
        let end = t.finish();
        assert_eq!(end.len(), 1, "only the usage chunk");
        assert_eq!(v(&end[0])["usage"]["prompt_tokens"], 4);
        assert!(t.finish().is_empty());
    }

    #[test]
    fn eof_without_finish_reason_closes_the_choice() {
        let mut t = StreamTranslator::new("m", "i", 1, true);
        t.on_event(br#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#).unwrap();
        let end = t.finish();
        assert_eq!(end.len(), 1, "no usage was reported, so no usage chunk");
        assert_eq!(v(&end[0])["choices"][0]["finish_reason"], "stop");
        assert_eq!(t.usage(), None);
    }

    #[test]
    fn finish_only_first_event() {
        let mut t = StreamTranslator::new("m", "i", 1, false);
        let out = t.on_event(br#"{"candidates":[{"finishReason":"SAFETY"}]}"#).unwrap();
        assert_eq!(out.len(), 1);
        let c = v(&out[0]);
        assert_eq!(c["choices"][0]["delta"], json!({"role": "assistant"}));
        assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
        assert!(t.finish().is_empty());
    }
}
