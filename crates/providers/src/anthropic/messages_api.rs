//! The gateway's Anthropic front door (`POST /v1/messages`): an Anthropic client's request
//! becomes an OpenAI chat request (so it can be routed to any OpenAI-format deployment), and the
//! OpenAI answer — whole or streamed — becomes an Anthropic message or event stream.
//!
//! This mirrors LiteLLM's `/v1/messages` adapter for non-Anthropic models. The stream side
//! writes every event with its `event:` line, in the order the Anthropic SDKs expect
//! (message_start, then each block's start/deltas/stop, then message_delta and message_stop),
//! because the Python SDK ignores events without a name.

use serde_json::{json, Map, Value};

use super::{sse_frame, stop_reason, TranslateError};

/// An Anthropic Messages request → an OpenAI chat request. `model` is carried over as given;
/// the caller routes on it. Streams ask the upstream for usage so `message_delta` can report it.
pub fn messages_to_openai(req: &Value) -> Result<Value, TranslateError> {
    let req = req.as_object().ok_or_else(|| {
        TranslateError::upstream("the request body must be a JSON object with model, messages and max_tokens")
    })?;
    let mut out = Map::new();
    if let Some(m) = req.get("model") {
        out.insert("model".into(), m.clone());
    }
    let mut messages = Vec::new();
    match req.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => messages.push(json!({ "role": "system", "content": s })),
        Some(Value::Array(blocks)) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect();
            match texts.as_slice() {
                [] => {}
                [one] => messages.push(json!({ "role": "system", "content": one })),
                many => {
                    let parts: Vec<Value> = many.iter().map(|t| json!({ "type": "text", "text": t })).collect();
                    messages.push(json!({ "role": "system", "content": parts }));
                }
            }
        }
        Some(_) => return Err(TranslateError::new("system", "`system` must be a string or an array of text blocks")),
    }
    let input = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::new("messages", "`messages` is required and must be an array"))?;
    for (i, m) in input.iter().enumerate() {
        convert_message(m, i, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));

    let max_tokens = req.get("max_tokens").and_then(Value::as_u64).ok_or_else(|| {
        TranslateError::new("max_tokens", "`max_tokens` is required by the Messages API and must be a positive integer")
    })?;
    out.insert("max_tokens".into(), max_tokens.into());
    for key in ["temperature", "top_p"] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stops) = req.get("stop_sequences").and_then(Value::as_array).filter(|s| !s.is_empty()) {
        out.insert("stop".into(), Value::Array(stops.clone()));
    }
    if let Some(user) = req.get("metadata").and_then(|m| m.get("user_id")).and_then(Value::as_str) {
        out.insert("user".into(), user.into());
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        out.insert("tools".into(), Value::Array(convert_tools(tools)?));
        if let Some(choice) = req.get("tool_choice").filter(|c| !c.is_null()) {
            let disable_parallel = choice.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true);
            let c = match choice.get("type").and_then(Value::as_str) {
                Some("auto") => Value::from("auto"),
                Some("any") => Value::from("required"),
                Some("none") => Value::from("none"),
                Some("tool") => {
                    let name = choice.get("name").and_then(Value::as_str).unwrap_or("");
                    json!({ "type": "function", "function": { "name": name } })
                }
                _ => {
                    return Err(TranslateError::new(
                        "tool_choice",
                        "tool_choice.type must be one of auto, any, tool, none",
                    ))
                }
            };
            out.insert("tool_choice".into(), c);
            if disable_parallel {
                out.insert("parallel_tool_calls".into(), false.into());
            }
        }
    }
    // `top_k`, `thinking` and `service_tier` have no OpenAI-format equivalent every upstream
    // accepts (OpenAI itself rejects `top_k`), so they are not forwarded.
    Ok(Value::Object(out))
}

fn convert_tools(tools: &[Value]) -> Result<Vec<Value>, TranslateError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // Anthropic's server tools (web_search_…, bash_…, text_editor_…) run inside Anthropic
            // and cannot be offered to another provider's model.
            if let Some(kind) = t.get("type").and_then(Value::as_str).filter(|k| *k != "custom") {
                return Err(TranslateError::new(
                    format!("tools[{i}].type"),
                    format!("tools[{i}] is Anthropic's server tool {kind:?}, which only Anthropic models can run"),
                ));
            }
            let name =
                t.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
                    TranslateError::new(format!("tools[{i}].name"), format!("tools[{i}] needs a `name`"))
                })?;
            let mut f = json!({ "name": name });
            if let Some(d) = t.get("description").and_then(Value::as_str) {
                f["description"] = d.into();
            }
            f["parameters"] =
                t.get("input_schema").cloned().unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            Ok(json!({ "type": "function", "function": f }))
        })
        .collect()
}

/// One Anthropic message → one or more OpenAI messages. A user turn's `tool_result` blocks
/// become `tool` messages, placed before the turn's other content (Anthropic puts results
/// first, and OpenAI wants tool answers right after the assistant's calls).
fn convert_message(m: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("");
    let content = m.get("content");
    let blocks = match content {
        Some(Value::String(s)) => {
            return match role {
                "user" | "assistant" => {
                    out.push(json!({ "role": role, "content": s }));
                    Ok(())
                }
                _ => Err(bad_role(i, role)),
            }
        }
        Some(Value::Array(b)) => b,
        _ => {
            return Err(TranslateError::new(
                format!("messages.{i}.content"),
                format!("messages.{i}.content must be a string or an array of content blocks"),
            ))
        }
    };
    match role {
        "user" => {
            let mut parts = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => parts
                        .push(json!({ "type": "text", "text": b.get("text").and_then(Value::as_str).unwrap_or("") })),
                    Some("image") => parts.push(json!({
                        "type": "image_url",
                        "image_url": { "url": source_url(b.get("source"), i, j)? },
                    })),
                    Some("document") => parts.push(json!({
                        "type": "file",
                        "file": { "file_data": source_url(b.get("source"), i, j)? },
                    })),
                    Some("tool_result") => out.push(json!({
                        "role": "tool",
                        "tool_call_id": b.get("tool_use_id").and_then(Value::as_str).unwrap_or(""),
                        "content": tool_result_text(b.get("content")),
                    })),
                    other => {
                        return Err(TranslateError::new(
                            format!("messages.{i}.content.{j}.type"),
                            format!("messages.{i}.content.{j} has type {other:?}, which this gateway cannot forward"),
                        ))
                    }
                }
            }
            if !parts.is_empty() {
                // A lone text block reads most naturally (and most portably) as a string.
                let content = match parts.as_slice() {
                    [p] if p["type"] == "text" => p["text"].clone(),
                    _ => Value::Array(parts),
                };
                out.push(json!({ "role": "user", "content": content }));
            }
        }
        "assistant" => {
            let mut text = String::new();
            let mut calls = Vec::new();
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
                    Some("tool_use") => calls.push(json!({
                        "id": b.get("id").and_then(Value::as_str).unwrap_or(""),
                        "type": "function",
                        "function": {
                            "name": b.get("name").and_then(Value::as_str).unwrap_or(""),
                            "arguments": b.get("input").cloned().unwrap_or_else(|| json!({})).to_string(),
                        },
                    })),
                    // Thinking blocks are Anthropic's to verify (they are signed); another
                    // provider cannot use them.
                    _ => {}
                }
            }
            let mut msg = json!({ "role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { text.into() } });
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
        _ => return Err(bad_role(i, role)),
    }
    Ok(())
}

fn bad_role(i: usize, role: &str) -> TranslateError {
    TranslateError::new(
        format!("messages.{i}.role"),
        format!(
            "messages.{i}.role is {role:?}; the Messages API takes \"user\" or \"assistant\" (system goes in `system`)"
        ),
    )
}

fn source_url(source: Option<&Value>, i: usize, j: usize) -> Result<String, TranslateError> {
    let s = source.unwrap_or(&Value::Null);
    let field = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
    match field("type") {
        "base64" => Ok(format!("data:{};base64,{}", field("media_type"), field("data"))),
        "url" => Ok(field("url").to_string()),
        other => Err(TranslateError::new(
            format!("messages.{i}.content.{j}.source.type"),
            format!("source type {other:?} cannot be forwarded; send a base64 or url source"),
        )),
    }
}

/// A tool_result's content: a string, or text blocks joined (other blocks have no place in an
/// OpenAI tool message).
fn tool_result_text(content: Option<&Value>) -> Value {
    match content {
        Some(Value::String(s)) => s.as_str().into(),
        Some(Value::Array(blocks)) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect();
            texts.concat().into()
        }
        _ => "".into(),
    }
}

/// The id an Anthropic client sees: `msg_` and the upstream's id without OpenAI's prefix, so
/// a support request can still be matched to the upstream's logs.
fn message_id(openai_id: Option<&str>) -> String {
    match openai_id.map(|id| id.strip_prefix("chatcmpl-").unwrap_or(id)).filter(|id| !id.is_empty()) {
        Some(id) if id.starts_with("msg_") => id.to_string(),
        Some(id) => format!("msg_{id}"),
        None => super::fresh_id("msg_"),
    }
}

/// Anthropic's usage from OpenAI's: `input_tokens` excludes cached prompt tokens there, which
/// are reported as `cache_read_input_tokens` (the inverse of what [`super::chat_response`] does).
fn anthropic_usage(usage: Option<&Value>) -> Value {
    let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
    let cached = usage
        .and_then(|u| u.get("prompt_tokens_details"))
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let creation = n("cache_creation_input_tokens");
    json!({
        "input_tokens": n("prompt_tokens").saturating_sub(cached.saturating_add(creation)),
        "output_tokens": n("completion_tokens"),
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": cached,
    })
}

/// An OpenAI `chat.completion` → an Anthropic message naming `model` (the client's name).
pub fn openai_to_messages(resp: &Value, model: &str) -> Result<Value, TranslateError> {
    let choice = resp
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| TranslateError::upstream("the upstream returned a chat completion without choices"))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        content.push(json!({ "type": "text", "text": text }));
    }
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            let f = call.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).unwrap_or("");
            let input = parse_arguments(f.get("arguments"), name)?;
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| super::fresh_id("toolu_"), str::to_string);
            content.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
        }
    }
    Ok(json!({
        "id": message_id(resp.get("id").and_then(Value::as_str)),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": anthropic_usage(resp.get("usage")),
    }))
}

fn parse_arguments(args: Option<&Value>, name: &str) -> Result<Value, TranslateError> {
    match args {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
            TranslateError::upstream(format!(
                "the upstream model called tool {name:?} with arguments that are not JSON ({e}); Anthropic clients need a JSON object"
            ))
        }),
        Some(v) => Ok(v.clone()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// A tool_use block for this OpenAI tool-call index.
    Tool(u64),
}

/// OpenAI chunks → Anthropic SSE frames. Feed each parsed chunk to [`MessagesStream::on_chunk`],
/// then call [`MessagesStream::finish`] when the upstream ends (`[DONE]` or EOF); both return
/// complete frames (`event: …\ndata: …\n\n`) to write in order.
#[derive(Debug)]
pub struct MessagesStream {
    model: String,
    id: Option<String>,
    started: bool,
    /// The block being written and its Anthropic index.
    open: Option<(u64, Block)>,
    next_index: u64,
    /// OpenAI tool-call index → Anthropic block index.
    tools: Vec<(u64, u64)>,
    finish: Option<String>,
    usage: Option<Value>,
    done: bool,
}

impl MessagesStream {
    /// `model` is the client's model name, which `message_start` reports.
    pub fn new(model: &str) -> Self {
        MessagesStream {
            model: model.to_string(),
            id: None,
            started: false,
            open: None,
            next_index: 0,
            tools: Vec::new(),
            finish: None,
            usage: None,
            done: false,
        }
    }

    pub fn on_chunk(&mut self, chunk: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if self.id.is_none() {
            self.id = chunk.get("id").and_then(Value::as_str).map(|s| message_id(Some(s)));
        }
        // An OpenAI mid-stream error (`data: {"error":{…}}`) ends the Anthropic stream the way
        // Anthropic ends one: an `error` event, after which the SDK raises.
        if let Some(err) = chunk.get("error") {
            self.start(&mut out);
            let message = err.get("message").and_then(Value::as_str).unwrap_or("the upstream stream failed");
            out.push(super::error_frame(500, message));
            self.done = true;
            return out;
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else {
            return out;
        };
        self.start(&mut out);
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            let index = self.open_block(Block::Text, &mut out, |_| json!({ "type": "text", "text": "" }));
            out.push(block_delta(index, json!({ "type": "text_delta", "text": text })));
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                self.tool_delta(call, &mut out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_string());
        }
        out
    }

    /// Closes the open block and the message: `message_delta` with the stop reason and the
    /// usage the upstream reported, then `message_stop`. Later calls return nothing.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.start(&mut out);
        self.close(&mut out);
        self.done = true;
        let usage = anthropic_usage(self.usage.as_ref());
        let mut delta_usage = json!({ "output_tokens": usage["output_tokens"] });
        if self.usage.is_some() {
            // The input count is only known at the end of an OpenAI stream; newer Anthropic
            // streams repeat it here too, and the SDKs take it from either place.
            delta_usage["input_tokens"] = usage["input_tokens"].clone();
            delta_usage["cache_creation_input_tokens"] = usage["cache_creation_input_tokens"].clone();
            delta_usage["cache_read_input_tokens"] = usage["cache_read_input_tokens"].clone();
        }
        out.push(sse_frame(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null },
                "usage": delta_usage,
            }),
        ));
        out.push(sse_frame("message_stop", &json!({ "type": "message_stop" })));
        out
    }

    fn start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = self.id.get_or_insert_with(|| super::fresh_id("msg_")).clone();
        out.push(sse_frame(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": { "input_tokens": 0, "output_tokens": 0 },
                },
            }),
        ));
    }

    fn tool_delta(&mut self, call: &Value, out: &mut Vec<String>) {
        let tool = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let f = call.get("function").unwrap_or(&Value::Null);
        let known = self.tools.iter().find(|(t, _)| *t == tool).map(|(_, b)| *b);
        let index = match known {
            Some(b) => b,
            None => {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| super::fresh_id("toolu_"), str::to_string);
                let name = f.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                let b = self.open_block(
                    Block::Tool(tool),
                    out,
                    |_| json!({ "type": "tool_use", "id": id, "name": name, "input": {} }),
                );
                self.tools.push((tool, b));
                b
            }
        };
        if let Some(args) = f.get("arguments").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            out.push(block_delta(index, json!({ "type": "input_json_delta", "partial_json": args })));
        }
    }

    /// The index of the open block of `kind`, opening it (and closing any other) if needed.
    fn open_block(&mut self, kind: Block, out: &mut Vec<String>, block: impl FnOnce(u64) -> Value) -> u64 {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push(sse_frame(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": index, "content_block": block(index) }),
        ));
        self.open = Some((index, kind));
        index
    }

    fn close(&mut self, out: &mut Vec<String>) {
        if let Some((index, _)) = self.open.take() {
            out.push(sse_frame("content_block_stop", &json!({ "type": "content_block_stop", "index": index })));
        }
    }
}

fn block_delta(index: u64, delta: Value) -> String {
    sse_frame("content_block_delta", &json!({ "type": "content_block_delta", "index": index, "delta": delta }))
}
