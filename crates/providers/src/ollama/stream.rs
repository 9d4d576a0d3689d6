//! Ollama's NDJSON stream lines → OpenAI `chat.completion.chunk`s.
//!
//! `/api/chat` lines carry `message` (content, thinking, whole tool calls); `/api/generate`
//! lines carry `response` text. The last line has `done: true`, the `done_reason` and the token
//! counts; its usage goes into the trailing `choices: []` chunk when the client asked for it,
//! which is why that chunk is sent from [`StreamTranslator::finish_values`]. A line with `error`
//! ends the stream. A generate stream asked for a prompted tool call is held until its end, as
//! LiteLLM does, since only the whole text tells a call from an answer.

use serde_json::{json, Value};

use super::response::{counts, finish_reason, function_call, id_stem, tool_calls, usage_json};

#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// A generate stream whose text may be a prompted tool call: held whole.
    held: Option<String>,
    usage: Option<(u64, u64)>,
    tool_calls: usize,
    started: bool,
    finish_sent: bool,
    done: bool,
}

impl StreamTranslator {
    /// `tools`: a generate stream that asked for a prompted function call.
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool, tools: bool) -> Self {
        StreamTranslator {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            held: tools.then(String::new),
            usage: None,
            tool_calls: 0,
            started: false,
            finish_sent: false,
            done: false,
        }
    }

    /// One NDJSON line. An `error` line, or one that is not JSON, is an `Err`: the stream ends.
    pub fn on_line(&mut self, line: &[u8]) -> Result<Vec<Value>, String> {
        if self.done {
            return Ok(Vec::new());
        }
        let v: Value =
            serde_json::from_slice(line).map_err(|_| "Ollama sent a stream line that is not JSON".to_string())?;
        if let Some(e) = v.get("error") {
            self.done = true;
            return Err(format!("Ollama stream error: {}", e.as_str().map(str::to_string).unwrap_or(e.to_string())));
        }
        let mut out = Vec::new();
        self.start(&mut out);
        if let Some(msg) = v.get("message") {
            if let Some(t) = msg.get("thinking").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                out.push(self.chunk(json!({ "reasoning_content": t }), None));
            }
            if let Some(t) = msg.get("content").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                out.push(self.chunk(json!({ "content": t }), None));
            }
            if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty()) {
                let converted = tool_calls(calls, id_stem(&self.id), self.tool_calls);
                self.tool_calls += converted.len();
                out.push(self.chunk(json!({ "tool_calls": converted }), None));
            }
        } else if let Some(t) = v.get("response").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            match &mut self.held {
                Some(held) => held.push_str(t),
                None => out.push(self.chunk(json!({ "content": t }), None)),
            }
        }
        if v.get("done").and_then(Value::as_bool) == Some(true) {
            self.usage = Some(counts(&v));
            self.release_held(&mut out);
            if !self.finish_sent {
                self.finish_sent = true;
                let reason = finish_reason(v.get("done_reason").and_then(Value::as_str), self.tool_calls > 0);
                out.push(self.chunk(json!({}), Some(reason)));
            }
        }
        Ok(out)
    }

    /// What to send once the upstream body has ended: the finish chunk if no `done` line came,
    /// then the usage chunk when `include_usage`. A stream that ended in an error sends nothing.
    pub fn finish_values(&mut self) -> Vec<Value> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        self.start(&mut out);
        self.release_held(&mut out);
        if !self.finish_sent {
            self.finish_sent = true;
            out.push(self.chunk(json!({}), Some(finish_reason(None, self.tool_calls > 0))));
        }
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

    /// The held text of a prompted tool call, as a call or as text.
    fn release_held(&mut self, out: &mut Vec<Value>) {
        let Some(text) = self.held.take() else { return };
        match function_call(&text) {
            Some(call) => {
                let converted = tool_calls(&[call], id_stem(&self.id), self.tool_calls);
                self.tool_calls += 1;
                out.push(self.chunk(json!({ "tool_calls": converted }), None));
            }
            None if !text.is_empty() => out.push(self.chunk(json!({ "content": text }), None)),
            None => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut StreamTranslator, lines: &[&str]) -> Vec<Value> {
        let mut out = Vec::new();
        for l in lines {
            out.extend(t.on_line(l.as_bytes()).unwrap());
        }
        out.extend(t.finish_values());
        out
    }

    #[test]
    fn a_chat_stream_becomes_role_text_finish_and_usage() {
        let mut t = StreamTranslator::new("group", "chatcmpl-x", 1, true, false);
        let out = run(
            &mut t,
            &[
                r#"{"model":"llama3","message":{"role":"assistant","content":"Hel"},"done":false}"#,
                r#"{"model":"llama3","message":{"role":"assistant","content":"lo"},"done":false}"#,
                r#"{"model":"llama3","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":2}"#,
            ],
        );
        assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(out[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(out[4]["choices"], json!([]));
        assert_eq!(out[4]["usage"]["total_tokens"], 9);
        assert_eq!(out.len(), 5);
        assert_eq!(t.usage(), Some((7, 2)));
    }

    #[test]
    fn chat_tool_calls_are_numbered_and_finish_as_tool_calls() {
        let mut t = StreamTranslator::new("g", "chatcmpl-x", 1, false, false);
        let out = run(
            &mut t,
            &[
                r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"a","arguments":{"x":1}}}]},"done":false}"#,
                r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"b","arguments":{}}}]},"done":false}"#,
                r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}"#,
            ],
        );
        let calls: Vec<&Value> = out.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
        assert_eq!(calls[0]["index"], 0);
        assert_eq!(calls[0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(calls[1]["index"], 1);
        assert_eq!(calls[1]["id"], "call_x_1");
        assert_eq!(out.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
        assert!(out.iter().all(|c| c.get("usage").is_none()), "no usage fields without include_usage");
    }

    #[test]
    fn a_generate_stream_with_a_prompted_tool_call_is_held_until_done() {
        let mut t = StreamTranslator::new("g", "chatcmpl-x", 1, false, true);
        let out = run(
            &mut t,
            &[
                r#"{"response":"{\"name\": \"f\", ","done":false}"#,
                r#"{"response":"\"arguments\": {}}","done":false}"#,
                r#"{"response":"","done":true,"prompt_eval_count":1,"eval_count":1}"#,
            ],
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(out[2]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn an_error_line_ends_the_stream_and_a_cut_stream_still_finishes() {
        let mut t = StreamTranslator::new("g", "c", 1, true, false);
        t.on_line(br#"{"response":"a","done":false}"#).unwrap();
        assert!(t.on_line(br#"{"error":"model crashed"}"#).unwrap_err().contains("model crashed"));
        assert!(t.finish_values().is_empty());
        let mut t = StreamTranslator::new("g", "c", 1, false, false);
        assert!(t.on_line(b"{nope").is_err());
        let mut t = StreamTranslator::new("g", "c", 1, false, false);
        t.on_line(br#"{"response":"a","done":false}"#).unwrap();
        let end = t.finish_values();
        assert_eq!(end.last().unwrap()["choices"][0]["finish_reason"], "stop");
    }
}
