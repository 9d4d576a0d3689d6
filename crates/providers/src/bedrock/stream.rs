//! ConverseStream events → OpenAI `chat.completion.chunk`s.
//!
//! Bedrock numbers content blocks across text and tool calls (`contentBlockIndex`); OpenAI
//! numbers tool calls alone, so the translator keeps a map from block index to tool-call index.
//! The finish chunk comes from `messageStop`; usage arrives after it in `metadata` and goes into
//! the trailing `choices: []` chunk when the client asked for it, which is why that chunk is
//! sent from [`StreamTranslator::finish`].

use serde_json::{json, Value};

use super::{finish_reason, EventMessage, TranslateError, Usage};

/// Translates one ConverseStream into OpenAI chunks. Feed every decoded event-stream message to
/// [`StreamTranslator::on_message`] in order, then call [`StreamTranslator::finish`] once the
/// upstream ends.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Option<Usage>,
    started: bool,
    /// Content block index → OpenAI tool-call index, for toolUse blocks seen so far.
    tool_blocks: Vec<(u64, usize)>,
    finish_sent: bool,
    done: bool,
}

impl StreamTranslator {
    /// `model` is the client's model name and `id` the completion id the chunks carry (Converse
    /// has none); `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        StreamTranslator {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            usage: None,
            started: false,
            tool_blocks: Vec::new(),
            finish_sent: false,
            done: false,
        }
    }

    /// One event-stream message. Returns the chunk JSON strings to send, in order (often none).
    /// An exception or error message, or an event whose payload is not JSON, is an `Err`: the
    /// stream cannot go on (see [`super::stream_exception`] to classify it).
    pub fn on_message_values(&mut self, m: &EventMessage) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Ok(Vec::new());
        }
        match m.header(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" | "error" => {
                self.done = true;
                let (_, _, message) = super::stream_exception(m).unwrap_or((500, "", String::new()));
                let kind = m.header(":exception-type").or_else(|| m.header(":error-code")).unwrap_or("error");
                return Err(TranslateError::other(format!("Bedrock stream error ({kind}): {message}")));
            }
            // A message type newer than this code carries nothing we know how to send.
            _ => return Ok(Vec::new()),
        }
        let payload = m.payload.trim_ascii();
        let event: Value = if payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(payload)
                .map_err(|e| TranslateError::other(format!("Bedrock sent a stream event that is not JSON ({e})")))?
        };
        let mut out = Vec::new();
        match m.header(":event-type").unwrap_or("") {
            "messageStart" => self.start(&mut out),
            "contentBlockStart" => {
                self.start(&mut out);
                let index = event.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
                if let Some(tu) = event.get("start").and_then(|s| s.get("toolUse")) {
                    let tool = self.tool_index(index);
                    let delta = json!({ "tool_calls": [{
                        "index": tool,
                        "id": tu.get("toolUseId").and_then(Value::as_str).unwrap_or(""),
                        "type": "function",
                        "function": { "name": tu.get("name").and_then(Value::as_str).unwrap_or(""), "arguments": "" },
                    }]});
                    out.push(self.chunk(delta, None));
                }
            }
            "contentBlockDelta" => {
                self.start(&mut out);
                let index = event.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
                let delta = event.get("delta").unwrap_or(&Value::Null);
                let non_empty =
                    |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
                if let Some(t) = non_empty(delta.get("text")) {
                    out.push(self.chunk(json!({ "content": t }), None));
                } else if let Some(tu) = delta.get("toolUse") {
                    if let Some(part) = non_empty(tu.get("input")) {
                        let tool = self.tool_index(index);
                        let d = json!({ "tool_calls": [{ "index": tool, "function": { "arguments": part } }] });
                        out.push(self.chunk(d, None));
                    }
                } else if let Some(r) = delta.get("reasoningContent") {
                    if let Some(t) = non_empty(r.get("text")) {
                        out.push(self.chunk(json!({ "reasoning_content": t }), None));
                    }
                }
            }
            "messageStop" => {
                self.start(&mut out);
                if !self.finish_sent {
                    self.finish_sent = true;
                    let stop = event.get("stopReason").and_then(Value::as_str);
                    out.push(self.chunk(json!({}), Some(finish_reason(stop))));
                }
            }
            "metadata" => {
                if let Some(u) = event.get("usage") {
                    self.usage = Some(Usage::from_json(u));
                }
            }
            // contentBlockStop, and event types newer than this code.
            _ => {}
        }
        Ok(out)
    }

    /// What to send once the upstream stream has ended: the finish chunk if `messageStop` never
    /// came, then the usage chunk when `include_usage`. Later calls return nothing; so does a
    /// stream that ended in an exception (the server reports that error instead).
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
            c["usage"] = self.usage.unwrap_or_default().to_openai();
            out.push(c);
        }
        out
    }

    /// [`Self::on_message_values`] as JSON text, one chunk per string.
    pub fn on_message(&mut self, m: &EventMessage) -> Result<Vec<String>, TranslateError> {
        Ok(self.on_message_values(m)?.iter().map(Value::to_string).collect())
    }

    /// [`Self::finish_values`] as JSON text.
    pub fn finish(&mut self) -> Vec<String> {
        self.finish_values().iter().map(Value::to_string).collect()
    }

    /// `(prompt_tokens, completion_tokens)` once `metadata` has reported usage, counting cache
    /// reads and writes into the prompt as LiteLLM does.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage.map(|u| (u.prompt_tokens(), u.output))
    }

    /// OpenAI's `usage` object with the cache counts, once `metadata` has reported.
    pub fn usage_object(&self) -> Option<Value> {
        self.usage.map(|u| u.to_openai())
    }

    fn tool_index(&mut self, block: u64) -> usize {
        if let Some((_, t)) = self.tool_blocks.iter().find(|(b, _)| *b == block) {
            return *t;
        }
        let t = self.tool_blocks.len();
        self.tool_blocks.push((block, t));
        t
    }

    /// The first chunk carries the role, as OpenAI's streams do.
    fn start(&mut self, out: &mut Vec<Value>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(self.chunk(json!({ "role": "assistant", "content": "" }), None));
    }

    fn envelope(&self) -> Value {
        json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model })
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
