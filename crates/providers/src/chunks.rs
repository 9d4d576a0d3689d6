//! OpenAI `chat.completion.chunk`s for the providers whose streams carry plain pieces of text
//! (and, for some, whole tool calls and a usage line): Cloudflare Workers AI and the
//! text-generation servers. Each provider reads its own frames and tells a [`ChunkWriter`] what
//! they held; the writer opens with the assistant role, closes with one finish chunk and, when
//! the client asked (`stream_options.include_usage`), a `choices: []` chunk with the usage.

use serde_json::{json, Value};

#[derive(Debug)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Option<(u64, u64)>,
    tool_calls: usize,
    started: bool,
    finish_sent: bool,
    done: bool,
}

impl ChunkWriter {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        ChunkWriter {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            usage: None,
            tool_calls: 0,
            started: false,
            finish_sent: false,
            done: false,
        }
    }

    /// A piece of the answer's text; empty pieces send nothing (but open the stream).
    pub fn text(&mut self, out: &mut Vec<Value>, text: &str) {
        self.start(out);
        if !text.is_empty() && !self.finish_sent {
            out.push(self.chunk(json!({ "content": text }), None));
        }
    }

    /// One whole tool call, numbered in the order the calls came.
    pub fn tool_call(&mut self, out: &mut Vec<Value>, id: &str, name: &str, arguments: &str) {
        self.start(out);
        if self.finish_sent {
            return;
        }
        let index = self.tool_calls;
        self.tool_calls += 1;
        let d = json!({ "tool_calls": [{
            "index": index, "id": id, "type": "function", "function": { "name": name, "arguments": arguments },
        }]});
        out.push(self.chunk(d, None));
    }

    /// The token counts, when the provider reports them (the last report wins).
    pub fn set_usage(&mut self, prompt: u64, completion: u64) {
        self.usage = Some((prompt, completion));
    }

    /// The finish chunk, once: `stop` becomes `tool_calls` when calls were sent.
    pub fn finish(&mut self, out: &mut Vec<Value>, reason: &str) {
        self.start(out);
        if self.finish_sent {
            return;
        }
        self.finish_sent = true;
        let reason = if reason == "stop" && self.tool_calls > 0 { "tool_calls" } else { reason };
        out.push(self.chunk(json!({}), Some(reason)));
    }

    /// The end of the upstream's body: the finish chunk if none was sent, then the usage chunk
    /// when asked for.
    pub fn finish_values(&mut self) -> Vec<Value> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        self.finish(&mut out, "stop");
        if self.include_usage {
            let mut c = self.envelope();
            c["choices"] = json!([]);
            c["usage"] = usage_json(self.usage.unwrap_or_default());
            out.push(c);
        }
        out
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    pub fn usage_object(&self) -> Option<Value> {
        self.usage.map(usage_json)
    }

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
        c
    }
}

/// OpenAI's `usage` object for `(prompt, completion)`.
pub fn usage_json((p, c): (u64, u64)) -> Value {
    json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
}

/// A whole `chat.completion` with one choice.
pub fn completion(
    model: &str,
    id: &str,
    created: u64,
    message: Value,
    finish_reason: &str,
    usage: Option<(u64, u64)>,
) -> Value {
    one_choice(model, id, created, message, finish_reason, usage.map(usage_json))
}

/// A whole `chat.completion` with one choice and the `usage` object given (none when `None`),
/// built without `json!`'s trip through serde's serializer per value: the answer readers that
/// skip the upstream's tree (Anthropic's, Bedrock's) build theirs here.
pub(crate) fn one_choice(
    model: &str,
    id: &str,
    created: u64,
    message: Value,
    finish_reason: &str,
    usage: Option<Value>,
) -> Value {
    let choice = object([
        ("index", 0.into()),
        ("message", message),
        ("logprobs", Value::Null),
        ("finish_reason", finish_reason.into()),
    ]);
    let mut answer = object([
        ("id", id.into()),
        ("object", "chat.completion".into()),
        ("created", created.into()),
        ("model", model.into()),
        ("choices", Value::Array(vec![choice])),
    ]);
    if let (Some(usage), Value::Object(members)) = (usage, &mut answer) {
        members.insert("usage".into(), usage);
    }
    answer
}

/// An object of `members`, built without `json!`'s trip through serde's serializer per value.
pub(crate) fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    Value::Object(members.into_iter().map(|(name, v)| (name.to_string(), v)).collect())
}

/// A stream event's data as JSON: `None` for a blank event or `[DONE]`; an error naming `who`
/// (the upstream, as a person reads it) when it is not JSON.
pub(crate) fn frame(data: &[u8], who: &str) -> Result<Option<Value>, String> {
    let data = data.trim_ascii();
    if data.is_empty() || data == b"[DONE]" {
        return Ok(None);
    }
    serde_json::from_slice(data).map(Some).map_err(|_| format!("{who} sent a stream event that is not JSON"))
}

/// An OpenAI-format answer from a server behind another provider's door (a SageMaker chat
/// container, a Vertex AI partner model), stamped with the gateway's id, model and time.
pub fn restamped_answer(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    let choices = v.get("choices").and_then(Value::as_array).ok_or("no `choices` list")?;
    Ok(stamped("chat.completion", id, created, model, Value::Array(choices.clone()), v))
}

/// A whole OpenAI answer (`object`: `chat.completion` or `text_completion`) of `choices`,
/// carrying the `usage` object of the upstream's answer `upstream` when it has one.
pub(crate) fn stamped(object: &str, id: &str, created: u64, model: &str, choices: Value, upstream: &Value) -> Value {
    let mut out = json!({ "id": id, "object": object, "created": created, "model": model, "choices": choices });
    if let Some(u) = upstream.get("usage").filter(|u| u.is_object()) {
        out["usage"] = u.clone();
    }
    out
}

/// The SSE events of an OpenAI-format stream from such a server: its chunks re-stamped as
/// [`restamped_answer`] stamps an answer; its usage (in a chunk of its own, or the last one)
/// kept for the bill and sent in one closing chunk when the client asked.
#[derive(Debug)]
pub struct Restamped {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Option<(u64, u64)>,
    done: bool,
}

impl Restamped {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Restamped { id: id.into(), model: model.into(), created, include_usage, usage: None, done: false }
    }

    /// One event's data; an `error` object or text that is not JSON ends the stream.
    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = frame(data, "the upstream")? else {
            return Ok(());
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string));
        }
        self.on_chunk(&v, out);
        Ok(())
    }

    /// One chunk already parsed (and checked for the server's own error shape).
    pub fn on_chunk(&mut self, v: &Value, out: &mut Vec<Value>) {
        if let Some(u) = crate::provider::usage(v).filter(|_| v["usage"].is_object()) {
            self.usage = Some(u);
        }
        if let Some(choices) = v.get("choices").and_then(Value::as_array).filter(|c| !c.is_empty()) {
            let mut c = self.envelope();
            c["choices"] = Value::Array(choices.clone());
            out.push(c);
        }
    }

    /// The usage chunk, once, when the client asked for it.
    pub fn finish_values(&mut self) -> Vec<Value> {
        if std::mem::replace(&mut self.done, true) || !self.include_usage {
            return Vec::new();
        }
        let mut c = self.envelope();
        c["choices"] = json!([]);
        c["usage"] = usage_json(self.usage.unwrap_or_default());
        vec![c]
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    pub fn usage_object(&self) -> Option<Value> {
        self.usage.map(usage_json)
    }

    fn envelope(&self) -> Value {
        json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model })
    }
}

/// A tool call's id when the provider gives none: unique within the answer, in OpenAI's shape.
pub fn call_id(answer_id: &str, index: usize) -> String {
    let tail: String = answer_id.chars().rev().take(16).collect::<Vec<_>>().into_iter().rev().collect();
    format!("call_{}_{index}", tail.trim_start_matches("chatcmpl-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_opens_once_finishes_once_and_reports_usage_when_asked() {
        let mut w = ChunkWriter::new("m", "chatcmpl-1", 7, true);
        let mut out = Vec::new();
        w.text(&mut out, "He");
        w.text(&mut out, "");
        w.text(&mut out, "llo");
        w.set_usage(3, 2);
        w.finish(&mut out, "length");
        out.extend(w.finish_values());
        out.extend(w.finish_values());
        assert_eq!(out.len(), 5, "{out:?}");
        assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(out[3]["choices"][0]["finish_reason"], "length");
        assert_eq!(out[4]["choices"], json!([]));
        assert_eq!(out[4]["usage"]["total_tokens"], 5);
    }

    #[test]
    fn tool_calls_are_numbered_and_turn_stop_into_tool_calls() {
        let mut w = ChunkWriter::new("m", "chatcmpl-1", 7, false);
        let mut out = Vec::new();
        w.tool_call(&mut out, "a", "f", "{}");
        w.tool_call(&mut out, "b", "g", "{\"x\":1}");
        out.extend(w.finish_values());
        assert_eq!(out[2]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
        assert_eq!(out.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
        assert!(out.iter().all(|c| c.get("usage").is_none()));
    }
}
