//! Anthropic's typed event stream → OpenAI `chat.completion.chunk`s (formats.md §3.4, §10.3).
//!
//! Anthropic numbers content blocks across text and tool calls; OpenAI numbers tool calls alone,
//! so the translator keeps its own tool-call counter and a map from block index to it. The
//! finish chunk comes from `message_delta`; usage (input from `message_start`, output from
//! `message_delta`) goes into the trailing `choices: []` chunk when the client asked for it.

use serde_json::{json, Value};

use super::{finish_reason, TranslateError, Usage};

/// Translates one Anthropic stream into OpenAI chunks. Feed every SSE event to
/// [`ChatStream::on_event`] in order, then call [`ChatStream::finish`] once the upstream ends.
#[derive(Debug)]
pub struct ChatStream {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Usage,
    started: bool,
    /// Block index → OpenAI tool-call index, for tool_use blocks seen so far.
    tool_blocks: Vec<(u64, usize)>,
    next_tool: usize,
    finish_sent: bool,
    done: bool,
}

impl ChatStream {
    /// `model` is the client's model name (chunks carry it); `include_usage` is the client's
    /// `stream_options.include_usage`.
    pub fn new(model: &str, created: u64, include_usage: bool) -> Self {
        ChatStream {
            id: String::new(),
            model: model.to_string(),
            created,
            include_usage,
            usage: Usage::default(),
            started: false,
            tool_blocks: Vec::new(),
            next_tool: 0,
            finish_sent: false,
            done: false,
        }
    }

    /// One SSE event: `name` is its `event:` line (if any), `data` its `data:` payload. Returns
    /// the chunk JSON strings to send, in order (often none). An upstream `error` event, or data
    /// that is not JSON, is an `Err`: the stream cannot go on.
    pub fn on_event_values(&mut self, name: Option<&str>, data: &[u8]) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Ok(Vec::new());
        }
        let trimmed = data.trim_ascii();
        if trimmed.is_empty() {
            // `ping` and other keep-alives may come without a payload.
            return match name {
                Some("error") => Err(TranslateError::upstream("Anthropic stream error with an empty payload")),
                _ => Ok(Vec::new()),
            };
        }
        let event: Value = serde_json::from_slice(trimmed)
            .map_err(|e| TranslateError::upstream(format!("Anthropic sent a stream event that is not JSON ({e})")))?;
        let kind = event.get("type").and_then(Value::as_str).or(name).unwrap_or("");
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                let msg = event.get("message").unwrap_or(&Value::Null);
                if let Some(id) = msg.get("id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                if let Some(u) = msg.get("usage") {
                    self.usage.update(u);
                }
                self.start(&mut out);
            }
            "content_block_start" => {
                self.start(&mut out);
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = event.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({ "content": t }), None));
                        }
                    }
                    Some("tool_use") => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        self.tool_blocks.push((index, tool));
                        let delta = json!({ "tool_calls": [{
                            "index": tool,
                            "id": block.get("id").and_then(Value::as_str).unwrap_or(""),
                            "type": "function",
                            "function": {
                                "name": block.get("name").and_then(Value::as_str).unwrap_or(""),
                                "arguments": "",
                            },
                        }]});
                        out.push(self.chunk(delta, None));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.start(&mut out);
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = event.get("delta").unwrap_or(&Value::Null);
                let field = |k: &str| delta.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = field("text") {
                            out.push(self.chunk(json!({ "content": t }), None));
                        }
                    }
                    Some("input_json_delta") => {
                        let tool = self.tool_blocks.iter().find(|(b, _)| *b == index).map(|(_, t)| *t);
                        if let (Some(tool), Some(part)) = (tool, field("partial_json")) {
                            let delta = json!({ "tool_calls": [{ "index": tool, "function": { "arguments": part } }] });
                            out.push(self.chunk(delta, None));
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = field("thinking") {
                            out.push(self.chunk(json!({ "reasoning_content": t }), None));
                        }
                    }
                    // signature_delta, citations_delta: nothing an OpenAI client can use.
                    _ => {}
                }
            }
            "message_delta" => {
                self.start(&mut out);
                if let Some(u) = event.get("usage") {
                    self.usage.update(u);
                }
                let stop = event.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str);
                if !self.finish_sent {
                    self.finish_sent = true;
                    out.push(self.chunk(json!({}), Some(finish_reason(stop))));
                }
            }
            "message_stop" => {}
            "error" => {
                let err = event.get("error").unwrap_or(&Value::Null);
                let etype = err.get("type").and_then(Value::as_str).unwrap_or("api_error");
                let message = err.get("message").and_then(Value::as_str).unwrap_or("the stream failed");
                self.done = true;
                return Err(TranslateError::upstream(format!("Anthropic stream error ({etype}): {message}")));
            }
            // ping, content_block_stop, and event types newer than this code.
            _ => {}
        }
        Ok(out)
    }

    /// What to send once the upstream stream has ended: the finish chunk if `message_delta`
    /// never came, then the usage chunk when `include_usage`. Later calls return nothing.
    pub fn finish_values(&mut self) -> Vec<Value> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        if !self.finish_sent {
            self.start(&mut out);
            self.finish_sent = true;
            out.push(self.chunk(json!({}), Some("stop")));
        }
        if self.include_usage {
            let mut c = self.envelope();
            c["choices"] = json!([]);
            c["usage"] = self.usage.to_openai();
            out.push(c);
        }
        out
    }

    /// [`Self::on_event_values`] as JSON text, one chunk per string.
    pub fn on_event(&mut self, name: Option<&str>, data: &[u8]) -> Result<Vec<String>, TranslateError> {
        Ok(self.on_event_values(name, data)?.iter().map(Value::to_string).collect())
    }

    /// [`Self::finish_values`] as JSON text.
    pub fn finish(&mut self) -> Vec<String> {
        self.finish_values().iter().map(Value::to_string).collect()
    }

    /// `(prompt_tokens, completion_tokens)` once `message_start` has reported the input, counting
    /// cache reads and writes into the prompt as LiteLLM does.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.started.then(|| (self.usage.prompt_tokens(), self.usage.output))
    }

    /// OpenAI's `usage` object with the cache counts, once `message_start` has reported.
    pub fn usage_object(&self) -> Option<Value> {
        self.started.then(|| self.usage.to_openai())
    }

    /// The first chunk carries the role, as OpenAI's streams do.
    fn start(&mut self, out: &mut Vec<Value>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = super::fresh_id("chatcmpl-");
        }
        out.push(self.chunk(json!({ "role": "assistant", "content": "" }), None));
    }

    fn envelope(&self) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        })
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut c = self.envelope();
        c["choices"] = json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]);
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        c
    }
}
