//! A chat completion as a Response object, echoing the request's settings as OpenAI does.

use serde_json::{json, Map, Value};

/// One Responses call served through chat: what its Response object repeats from the request,
/// and its ids.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The Response's id (`resp_…`); item ids are derived from it.
    pub id: String,
    /// The model name the client asked for.
    pub model: String,
    pub created_at: u64,
    /// The request's settings echoed in every Response object.
    echo: Map<String, Value>,
}

/// Makes a field's default value.
type MakeDefault = fn() -> Value;

/// The request fields a Response repeats, with OpenAI's defaults for those not sent.
const ECHOED: [(&str, MakeDefault); 13] = [
    ("instructions", || Value::Null),
    ("max_output_tokens", || Value::Null),
    ("metadata", || json!({})),
    ("parallel_tool_calls", || Value::Bool(true)),
    ("previous_response_id", || Value::Null),
    ("reasoning", || json!({"effort": null, "summary": null})),
    ("store", || Value::Bool(true)),
    ("temperature", || json!(1.0)),
    ("text", || json!({"format": {"type": "text"}})),
    ("tool_choice", || json!("auto")),
    ("tools", || json!([])),
    ("top_p", || json!(1.0)),
    ("user", || Value::Null),
];

impl Turn {
    pub fn new(req: &Value, id: String, model: &str, created_at: u64) -> Turn {
        let mut echo = Map::new();
        for (key, default) in ECHOED {
            let v = req.get(key).filter(|v| !v.is_null()).cloned().unwrap_or_else(default);
            echo.insert(key.into(), v);
        }
        echo.insert("truncation".into(), json!("disabled"));
        Turn { id, model: model.to_string(), created_at, echo }
    }

    /// The id of output item `index` of kind `prefix` (`msg`, `fc`, `rs`).
    pub fn item_id(&self, prefix: &str, index: usize) -> String {
        let tail = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{tail}_{index}")
    }

    /// The Response object with `status`, `output` items and `usage` (chat's, as Responses'
    /// names it).
    pub fn response(&self, status: &str, output: Vec<Value>, usage: Option<&Value>, incomplete: Option<&str>) -> Value {
        let mut r = Map::new();
        r.insert("id".into(), json!(self.id));
        r.insert("object".into(), json!("response"));
        r.insert("created_at".into(), json!(self.created_at));
        r.insert("status".into(), json!(status));
        r.insert("error".into(), Value::Null);
        r.insert("incomplete_details".into(), incomplete.map_or(Value::Null, |reason| json!({"reason": reason})));
        r.insert("model".into(), json!(self.model));
        r.insert("output".into(), Value::Array(output));
        r.extend(self.echo.clone());
        r.insert("usage".into(), usage.map_or(Value::Null, responses_usage));
        Value::Object(r)
    }

    /// A whole chat completion as a Response.
    pub fn answer(&self, chat: &Value) -> Value {
        let choice = &chat["choices"][0];
        let message = &choice["message"];
        let mut output = Vec::new();
        if let Some(reasoning) = message.get("reasoning_content").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            output.push(self.reasoning_item(output.len(), reasoning));
        }
        if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            output.push(self.message_item(output.len(), text, "completed"));
        }
        for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let f = &call["function"];
            output.push(self.call_item(
                output.len(),
                call["id"].as_str().unwrap_or(""),
                f["name"].as_str().unwrap_or(""),
                f["arguments"].as_str().unwrap_or(""),
                "completed",
            ));
        }
        let (status, incomplete) = status_of(choice.get("finish_reason").and_then(Value::as_str));
        self.response(status, output, chat.get("usage").filter(|u| u.is_object()), incomplete)
    }

    pub(super) fn message_item(&self, index: usize, text: &str, status: &str) -> Value {
        let content = match status {
            "in_progress" => json!([]),
            _ => json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]),
        };
        json!({"type": "message", "id": self.item_id("msg", index), "status": status, "role": "assistant", "content": content})
    }

    pub(super) fn call_item(&self, index: usize, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
        json!({"type": "function_call", "id": self.item_id("fc", index), "call_id": call_id, "name": name,
            "arguments": arguments, "status": status})
    }

    pub(super) fn reasoning_item(&self, index: usize, text: &str) -> Value {
        json!({"type": "reasoning", "id": self.item_id("rs", index), "summary": [{"type": "summary_text", "text": text}]})
    }
}

/// A Response's status for chat's `finish_reason`, and why it is incomplete.
pub(super) fn status_of(finish_reason: Option<&str>) -> (&'static str, Option<&'static str>) {
    match finish_reason {
        Some("length") => ("incomplete", Some("max_output_tokens")),
        Some("content_filter") => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// Chat's usage object in the Responses API's names.
pub(super) fn responses_usage(u: &Value) -> Value {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let input = n(&u["prompt_tokens"]);
    let output = n(&u["completion_tokens"]);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n(&u["prompt_tokens_details"]["cached_tokens"])},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n(&u["completion_tokens_details"]["reasoning_tokens"])},
        "total_tokens": u.get("total_tokens").and_then(Value::as_u64).unwrap_or(input + output),
    })
}

/// A Response's output items as the chat messages that continue its conversation.
pub fn output_messages(response: &Value) -> Vec<Value> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in response["output"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    text.push_str(part["text"].as_str().unwrap_or(""));
                }
            }
            Some("function_call") => calls.push(json!({"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}})),
            _ => {}
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Vec::new();
    }
    let mut m =
        json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    vec![m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_answer_becomes_a_response() {
        let req = json!({"model": "m", "input": "x", "instructions": "be brief", "tools": [{"type": "function", "name": "f"}]});
        let turn = Turn::new(&req, "resp_abc".into(), "my-model", 7);
        let chat = json!({"choices": [{"message": {"role": "assistant", "content": "Hi", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
        let r = turn.answer(&chat);
        assert_eq!(r["id"], "resp_abc");
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["model"], "my-model");
        assert_eq!(r["instructions"], "be brief");
        assert_eq!(r["output"][0]["content"][0]["text"], "Hi");
        assert_eq!(r["output"][0]["id"], "msg_abc_0");
        assert_eq!(r["output"][1]["type"], "function_call");
        assert_eq!(r["output"][1]["call_id"], "call_1");
        assert_eq!(r["usage"]["input_tokens"], 3);
        assert_eq!(r["usage"]["output_tokens"], 4);
        assert_eq!(r["usage"]["total_tokens"], 7);
        let back = output_messages(&r);
        assert_eq!(back[0]["content"], "Hi");
        assert_eq!(back[0]["tool_calls"][0]["function"]["name"], "f");

        let cut = json!({"choices": [{"message": {"content": "Hel"}, "finish_reason": "length"}]});
        let r = turn.answer(&cut);
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(r["usage"], Value::Null);
    }
}
