//! OpenAI's Responses API: `POST /v1/responses` answered whole or as its event stream (with
//! usage in `response.completed`), and `GET`/`DELETE /v1/responses/{id}`. The mock keeps no
//! state: a `GET` answers a completed Response with the asked id, so a test sees which id
//! reached the upstream; `previous_response_id` is echoed the same way.
//!
//! When the request offers function tools and its input says "use the tool", the answer is a
//! call to the first tool, as the other fake providers do.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::openai::STREAM_SENTENCE;
use crate::respond::{hex_id, sse_frame};

/// What the mock reads from a Responses request.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub model: String,
    pub stream: bool,
    previous_response_id: Value,
    /// The function to call, when asked to.
    tool: Option<String>,
}

const USAGE_IN: u64 = 9;
const USAGE_OUT: u64 = 12;

pub fn parse(body: &[u8]) -> Result<Request, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?;
    let model = v.get("model").and_then(Value::as_str).ok_or("field required: model")?.to_string();
    let says = |needle: &str| v.get("input").is_some_and(|i| i.to_string().contains(needle));
    let tool = v
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.iter().find(|t| t["type"] == "function"))
        .and_then(|t| t["name"].as_str())
        .filter(|_| says("use the tool"))
        .map(str::to_string);
    Ok(Request {
        model,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        previous_response_id: v.get("previous_response_id").cloned().unwrap_or(Value::Null),
        tool,
    })
}

fn id(prefix: &str) -> String {
    format!("{prefix}{}", String::from_utf8_lossy(&hex_id()))
}

fn response(id: &str, model: &str, status: &str, output: Vec<Value>, previous: &Value, usage: bool) -> Value {
    json!({
        "id": id, "object": "response", "created_at": 1_741_476_542u64, "status": status,
        "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
        "model": model, "output": output, "parallel_tool_calls": true, "previous_response_id": previous,
        "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "truncation": "disabled", "user": null, "metadata": {},
        "usage": if usage { json!({"input_tokens": USAGE_IN, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": USAGE_OUT, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": USAGE_IN + USAGE_OUT}) } else { Value::Null },
    })
}

fn message(id: &str, text: &str) -> Value {
    json!({"type": "message", "id": id, "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn call(id: &str, name: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": format!("call_{}", &id[3..15]), "name": name,
        "arguments": "{\"x\":1}", "status": "completed"})
}

/// The whole answer.
pub fn body(req: &Request) -> Bytes {
    let output = match &req.tool {
        Some(name) => call(&id("fc_"), name),
        None => message(&id("msg_"), STREAM_SENTENCE),
    };
    let r = response(&id("resp_"), &req.model, "completed", vec![output], &req.previous_response_id, true);
    Bytes::from(r.to_string())
}

/// `GET /v1/responses/{id}`: a completed Response with that id.
pub fn stored(response_id: &str) -> Bytes {
    let r =
        response(response_id, "gpt-4o", "completed", vec![message("msg_stored", STREAM_SENTENCE)], &Value::Null, true);
    Bytes::from(r.to_string())
}

/// `DELETE /v1/responses/{id}`.
pub fn deleted(response_id: &str) -> Bytes {
    Bytes::from(json!({"id": response_id, "object": "response", "deleted": true}).to_string())
}

/// The event stream: `response.created`, `response.in_progress`, the item's events (the text
/// word by word, or the call's arguments), `response.completed` with usage.
pub fn stream_frames(req: &Request) -> Vec<Bytes> {
    let resp_id = id("resp_");
    let mut seq = 0u64;
    let mut frames = Vec::new();
    let mut emit = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(seq);
        seq += 1;
        let mut f = format!("event: {kind}\n").into_bytes();
        f.extend_from_slice(&sse_frame(v.to_string().as_bytes()));
        frames.push(Bytes::from(f));
    };
    let prev = &req.previous_response_id;
    emit("response.created", json!({"response": response(&resp_id, &req.model, "in_progress", vec![], prev, false)}));
    emit(
        "response.in_progress",
        json!({"response": response(&resp_id, &req.model, "in_progress", vec![], prev, false)}),
    );
    let done = match &req.tool {
        Some(name) => {
            let item = call(&id("fc_"), name);
            let item_id = item["id"].clone();
            let mut added = item.clone();
            added["arguments"] = json!("");
            added["status"] = json!("in_progress");
            emit("response.output_item.added", json!({"output_index": 0, "item": added}));
            for piece in ["{\"x\"", ":1}"] {
                emit(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": 0, "delta": piece}),
                );
            }
            emit(
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": 0, "arguments": "{\"x\":1}"}),
            );
            item
        }
        None => {
            let msg_id = id("msg_");
            let item = message(&msg_id, STREAM_SENTENCE);
            let mut added = item.clone();
            added["content"] = json!([]);
            added["status"] = json!("in_progress");
            emit("response.output_item.added", json!({"output_index": 0, "item": added}));
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            emit(
                "response.content_part.added",
                json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": part}),
            );
            for (i, word) in STREAM_SENTENCE.split(' ').enumerate() {
                let delta = if i == 0 { word.to_string() } else { format!(" {word}") };
                emit(
                    "response.output_text.delta",
                    json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": delta, "logprobs": []}),
                );
            }
            emit(
                "response.output_text.done",
                json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "text": STREAM_SENTENCE, "logprobs": []}),
            );
            let part = json!({"type": "output_text", "text": STREAM_SENTENCE, "annotations": []});
            emit(
                "response.content_part.done",
                json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": part}),
            );
            item
        }
    };
    emit("response.output_item.done", json!({"output_index": 0, "item": done.clone()}));
    emit(
        "response.completed",
        json!({"response": response(&resp_id, &req.model, "completed", vec![done], prev, true)}),
    );
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_whole_and_streamed_with_usage() {
        let req = parse(br#"{"model":"gpt-4o","input":"hi","previous_response_id":"resp_up"}"#).unwrap();
        let v: Value = serde_json::from_slice(&body(&req)).unwrap();
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["previous_response_id"], "resp_up");
        assert_eq!(v["output"][0]["content"][0]["text"], STREAM_SENTENCE);
        assert_eq!(v["usage"]["total_tokens"], 21);
        let frames = stream_frames(&req);
        let last = std::str::from_utf8(frames.last().unwrap()).unwrap();
        assert!(last.starts_with("event: response.completed\ndata: "), "{last}");
        assert!(last.contains("\"output_tokens\":12"), "{last}");
        let tool = parse(br#"{"model":"m","input":"use the tool","tools":[{"type":"function","name":"f"}]}"#).unwrap();
        let v: Value = serde_json::from_slice(&body(&tool)).unwrap();
        assert_eq!(v["output"][0]["name"], "f");
        assert!(parse(b"{").is_err());
    }
}
