//! Cohere v2 chat stream events → OpenAI `chat.completion.chunk`s.
//!
//! Each SSE event's JSON names its `type`: `content-delta` carries text, `tool-call-start` a
//! call's id and name, `tool-call-delta` pieces of its arguments, `message-end` the finish reason
//! and usage (sent in the trailing `choices: []` chunk when the client asked for it, from
//! [`StreamTranslator::finish_values`]). Cohere numbers tool calls itself (`index`), as OpenAI does.

use serde_json::{json, Value};

use super::response::{counts, finish_reason, usage_json};

#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Option<(u64, u64)>,
    tool_calls: bool,
    started: bool,
    finish_sent: bool,
    done: bool,
}

impl StreamTranslator {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        StreamTranslator {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            usage: None,
            tool_calls: false,
            started: false,
            finish_sent: false,
            done: false,
        }
    }

    /// One SSE event's data. Data that is not JSON is an `Err`: the stream ends.
    pub fn on_event_values(&mut self, data: &[u8]) -> Result<Vec<Value>, String> {
        if self.done || data.trim_ascii().is_empty() {
            return Ok(Vec::new());
        }
        let v: Value =
            serde_json::from_slice(data).map_err(|_| "Cohere sent a stream event that is not JSON".to_string())?;
        let mut out = Vec::new();
        let delta = v.get("delta").and_then(|d| d.get("message"));
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message-start" => self.start(&mut out),
            "content-delta" => {
                self.start(&mut out);
                let text = delta.and_then(|m| m.get("content")).and_then(|c| c.get("text")).and_then(Value::as_str);
                if let Some(t) = text.filter(|t| !t.is_empty()) {
                    out.push(self.chunk(json!({ "content": t }), None));
                }
            }
            "tool-call-start" => {
                self.start(&mut out);
                self.tool_calls = true;
                let call = delta.and_then(|m| m.get("tool_calls")).unwrap_or(&Value::Null);
                let f = call.get("function").unwrap_or(&Value::Null);
                let d = json!({ "tool_calls": [{
                    "index": index,
                    "id": call.get("id").and_then(Value::as_str).unwrap_or_default(),
                    "type": "function",
                    "function": {
                        "name": f.get("name").and_then(Value::as_str).unwrap_or_default(),
                        "arguments": f.get("arguments").and_then(Value::as_str).unwrap_or_default(),
                    },
                }]});
                out.push(self.chunk(d, None));
            }
            "tool-call-delta" => {
                self.start(&mut out);
                let args = delta
                    .and_then(|m| m.get("tool_calls"))
                    .and_then(|c| c.get("function"))
                    .and_then(|f| f.get("arguments"))
                    .and_then(Value::as_str);
                if let Some(a) = args.filter(|a| !a.is_empty()) {
                    let d = json!({ "tool_calls": [{ "index": index, "function": { "arguments": a } }] });
                    out.push(self.chunk(d, None));
                }
            }
            "message-end" => {
                self.start(&mut out);
                let end = v.get("delta").unwrap_or(&Value::Null);
                self.usage = Some(counts(end.get("usage")));
                if !self.finish_sent {
                    self.finish_sent = true;
                    let reason = match finish_reason(end.get("finish_reason").and_then(Value::as_str)) {
                        "stop" if self.tool_calls => "tool_calls",
                        r => r,
                    };
                    out.push(self.chunk(json!({}), Some(reason)));
                }
            }
            // content-start/end, tool-plan-delta, tool-call-end, citations, and newer types.
            _ => {}
        }
        Ok(out)
    }

    /// The finish chunk if `message-end` never came, then the usage chunk when asked for.
    pub fn finish_values(&mut self) -> Vec<Value> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        self.start(&mut out);
        if !self.finish_sent {
            self.finish_sent = true;
            out.push(self.chunk(json!({}), Some(if self.tool_calls { "tool_calls" } else { "stop" })));
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

    #[test]
    fn text_and_tool_call_streams() {
        let mut t = StreamTranslator::new("g", "c", 1, true);
        let mut out = Vec::new();
        for e in [
            r#"{"type":"message-start","id":"x","delta":{"message":{"role":"assistant"}}}"#,
            r#"{"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}"#,
            r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hi"}}}}"#,
            r#"{"type":"content-end","index":0}"#,
            r#"{"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"tokens":{"input_tokens":3,"output_tokens":1}}}}"#,
        ] {
            out.extend(t.on_event_values(e.as_bytes()).unwrap());
        }
        out.extend(t.finish_values());
        assert_eq!(out[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(out[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(out[3]["usage"]["total_tokens"], 4);
        let mut t = StreamTranslator::new("g", "c", 1, false);
        let mut out = Vec::new();
        for e in [
            r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will"}}}"#,
            r#"{"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"w_1","type":"function","function":{"name":"w","arguments":""}}}}}"#,
            r#"{"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\"x\":"}}}}}"#,
            r#"{"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":" 1}"}}}}}"#,
            r#"{"type":"tool-call-end","index":0}"#,
            r#"{"type":"message-end","delta":{"finish_reason":"TOOL_CALL"}}"#,
        ] {
            out.extend(t.on_event_values(e.as_bytes()).unwrap());
        }
        let args: String = out
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        assert_eq!(args, "{\"x\": 1}");
        assert_eq!(out[1]["choices"][0]["delta"]["tool_calls"][0]["id"], "w_1");
        assert_eq!(out.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
        assert!(t.on_event_values(b"{bad").is_err() || t.finish_values().is_empty());
    }
}
