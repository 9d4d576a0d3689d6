//! A Responses request as a chat-completions request: `instructions` and `input` become
//! `messages` (after the stored conversation of a `previous_response_id`), function tools and
//! their calls keep their shapes' meaning, `max_output_tokens` becomes `max_tokens`,
//! `reasoning.effort` becomes `reasoning_effort` (each provider maps it to its own thinking
//! setting), `text.format` becomes `response_format`.

use serde_json::{json, Map, Value};

use super::unsupported;
use crate::ApiError;

/// The chat request, and the turn's own messages (the input, translated) for the conversation
/// a later `previous_response_id` continues.
#[derive(Debug)]
pub struct ChatRequest {
    pub body: Value,
    pub input_messages: Vec<Value>,
}

/// Translates `req` (a Responses request object) into a chat request that continues `history`
/// (the chat messages of the conversation so far, oldest first).
pub fn to_chat(req: &Value, history: &[Value]) -> Result<ChatRequest, ApiError> {
    let obj = req
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Request body must be a JSON object with `model` and `input`."))?;
    if obj.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported("`background: true`", "background"));
    }
    let input_messages = match obj.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items_to_messages(items)?,
        Some(_) => {
            return Err(ApiError::bad_request("input: expected a string or a list of input items.").param("input"))
        }
    };
    let mut messages = Vec::with_capacity(history.len() + input_messages.len() + 1);
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(_) => return Err(ApiError::bad_request("instructions: expected a string.").param("instructions")),
    }
    messages.extend(history.iter().cloned());
    messages.extend(input_messages.iter().cloned());
    if messages.is_empty() {
        return Err(ApiError::bad_request("Missing required field `input`.").param("input"));
    }

    let mut body = Map::new();
    if let Some(m) = obj.get("model") {
        body.insert("model".into(), m.clone());
    }
    body.insert("messages".into(), Value::Array(messages));
    for key in ["temperature", "top_p", "user", "parallel_tool_calls", "top_logprobs", "seed"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = obj.get("max_output_tokens").filter(|v| !v.is_null()) {
        body.insert("max_tokens".into(), v.clone());
    }
    if let Some(effort) = obj.get("reasoning").and_then(|r| r.get("effort")).filter(|v| !v.is_null()) {
        body.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        let tools = tools.as_array().ok_or_else(|| ApiError::bad_request("tools: expected a list.").param("tools"))?;
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools.iter().map(tool).collect::<Result<_, _>>()?));
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        body.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(format) = obj.get("text").and_then(|t| t.get("format")).filter(|v| !v.is_null()) {
        if let Some(f) = response_format(format)? {
            body.insert("response_format".into(), f);
        }
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        body.insert("stream".into(), Value::Bool(true));
        // The closing `response.completed` event carries usage.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(ChatRequest { body: Value::Object(body), input_messages })
}

/// Input items as chat messages: consecutive function calls join one assistant message.
fn items_to_messages(items: &[Value]) -> Result<Vec<Value>, ApiError> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let param = || format!("input[{i}]");
        let kind = item.get("type").and_then(Value::as_str);
        match kind {
            None | Some("message") => out.push(message(item, i)?),
            Some("function_call") => {
                let call_id = str_field(item, "call_id").ok_or_else(|| missing(i, "call_id"))?;
                let name = str_field(item, "name").ok_or_else(|| missing(i, "name"))?;
                let arguments = str_field(item, "arguments").unwrap_or("{}");
                let call =
                    json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
                match out.last_mut() {
                    Some(last) if last["role"] == "assistant" && last.get("tool_calls").is_some() => {
                        if let Some(calls) = last["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                    }
                    _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            Some("function_call_output") => {
                let call_id = str_field(item, "call_id").ok_or_else(|| missing(i, "call_id"))?;
                let content = match item.get("output") {
                    Some(Value::String(s)) => Value::String(s.clone()),
                    Some(Value::Array(parts)) => {
                        Value::Array(parts.iter().map(|p| content_part(p, i)).collect::<Result<_, _>>()?)
                    }
                    _ => return Err(missing(i, "output")),
                };
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
            }
            // The model's own reasoning from an earlier turn: chat has no place for it.
            Some("reasoning") => {}
            Some(other) => return Err(unsupported(format!("input item type `{other}`"), &param())),
        }
    }
    Ok(out)
}

fn message(item: &Value, i: usize) -> Result<Value, ApiError> {
    let role = match item.get("role").and_then(Value::as_str) {
        Some("user") => "user",
        Some("assistant") => "assistant",
        // Chat-only providers know `system`; OpenAI treats `developer` as the same.
        Some("system" | "developer") => "system",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "input[{i}].role: `{other}` is not one of user, assistant, system, developer."
            ))
            .param(format!("input[{i}].role")))
        }
        None => return Err(missing(i, "role")),
    };
    let content = match item.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) if role == "assistant" || role == "system" => {
            // Chat takes these as plain text.
            let mut text = String::new();
            for p in parts {
                match p.get("text").and_then(Value::as_str) {
                    Some(t) => text.push_str(t),
                    None if p.get("type").and_then(Value::as_str) == Some("refusal") => {
                        text.push_str(p.get("refusal").and_then(Value::as_str).unwrap_or(""))
                    }
                    None => {
                        return Err(unsupported(
                            "a non-text part in an assistant or system message",
                            &format!("input[{i}].content"),
                        ))
                    }
                }
            }
            Value::String(text)
        }
        Some(Value::Array(parts)) => Value::Array(parts.iter().map(|p| content_part(p, i)).collect::<Result<_, _>>()?),
        _ => return Err(missing(i, "content")),
    };
    Ok(json!({"role": role, "content": content}))
}

/// An `input_text`, `input_image` or `input_file` part as chat's content part.
fn content_part(part: &Value, i: usize) -> Result<Value, ApiError> {
    let param = format!("input[{i}].content");
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")}))
        }
        Some("input_image") => {
            let url = str_field(part, "image_url")
                .ok_or_else(|| unsupported("an `input_image` without `image_url` (a file_id)", &param))?;
            let mut image = json!({"url": url});
            if let Some(d) = part.get("detail").filter(|d| !d.is_null()) {
                image["detail"] = d.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            let mut file = Map::new();
            for key in ["file_data", "file_id", "filename"] {
                if let Some(v) = part.get(key).filter(|v| !v.is_null()) {
                    file.insert(key.into(), v.clone());
                }
            }
            Ok(json!({"type": "file", "file": file}))
        }
        Some(other) => Err(unsupported(format!("content part type `{other}`"), &param)),
        None => Err(ApiError::bad_request(format!("{param}: each part needs a `type`.")).param(param)),
    }
}

/// A Responses function tool (`{"type":"function","name",…}`) as chat's
/// (`{"type":"function","function":{"name",…}}`).
fn tool(t: &Value) -> Result<Value, ApiError> {
    match t.get("type").and_then(Value::as_str) {
        Some("function") => {
            let name = str_field(t, "name")
                .ok_or_else(|| ApiError::bad_request("tools: each function tool needs a `name`.").param("tools"))?;
            let mut function = Map::new();
            function.insert("name".into(), Value::String(name.to_string()));
            for key in ["description", "parameters", "strict"] {
                if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                    function.insert(key.into(), v.clone());
                }
            }
            Ok(json!({"type": "function", "function": function}))
        }
        Some(other) => Err(unsupported(format!("the built-in tool `{other}`"), "tools")),
        None => Err(ApiError::bad_request("tools: each tool needs a `type`.").param("tools")),
    }
}

fn tool_choice(c: &Value) -> Result<Value, ApiError> {
    match c {
        Value::String(_) => Ok(c.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request("tool_choice: a function choice needs a `name`.").param("tool_choice")
            })?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(unsupported("this `tool_choice`", "tool_choice")),
    }
}

fn response_format(f: &Value) -> Result<Option<Value>, ApiError> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") | None => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(v) = f.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(unsupported(format!("text.format type `{other}`"), "text.format")),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn missing(i: usize, field: &str) -> ApiError {
    ApiError::bad_request(format!("input[{i}]: missing `{field}`.")).param(format!("input[{i}].{field}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_string_input_with_instructions() {
        let req = json!({"model": "m", "instructions": "be brief", "input": "hi", "max_output_tokens": 50,
            "reasoning": {"effort": "low"}, "stream": true, "store": true, "temperature": 0.2});
        let out = to_chat(&req, &[json!({"role": "user", "content": "before"})]).unwrap();
        assert_eq!(
            out.body,
            json!({"model": "m", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "before"},
                {"role": "user", "content": "hi"}],
                "max_tokens": 50, "reasoning_effort": "low", "temperature": 0.2,
                "stream": true, "stream_options": {"include_usage": true}})
        );
        assert_eq!(out.input_messages, vec![json!({"role": "user", "content": "hi"})]);
    }

    #[test]
    fn items_tools_and_calls() {
        let req = json!({"model": "m", "input": [
            {"role": "developer", "content": "sys"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]}],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}}});
        let out = to_chat(&req, &[]).unwrap().body;
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m[0], json!({"role": "system", "content": "sys"}));
        assert_eq!(
            m[1]["content"][1],
            json!({"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}})
        );
        assert_eq!(m[2]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(m[2]["tool_calls"][0]["function"]["name"], "get_weather");
        assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"}));
        assert_eq!(m[4], json!({"role": "assistant", "content": "It is sunny."}));
        assert_eq!(
            out["tools"][0],
            json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": true}})
        );
        assert_eq!(out["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
        assert_eq!(out["response_format"]["json_schema"]["name"], "w");
    }

    /// Any JSON value, a few levels deep, with the key names a Responses request uses.
    pub(crate) fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("type"),
            Just("role"),
            Just("content"),
            Just("text"),
            Just("call_id"),
            Just("name"),
            Just("arguments"),
            Just("output"),
            Just("image_url"),
            Just("input"),
            Just("tools"),
            Just("tool_choice"),
            Just("instructions"),
            Just("reasoning"),
            Just("effort"),
            Just("format"),
            Just("choices"),
            Just("delta"),
            Just("tool_calls"),
            Just("index"),
            Just("function"),
            Just("finish_reason"),
            Just("usage"),
            Just("message"),
            Just("x"),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop_oneof![
                Just("message"),
                Just("function_call"),
                Just("function_call_output"),
                Just("user"),
                Just("assistant"),
                Just("input_text"),
                Just("input_image"),
                Just("function"),
                Just("x")
            ]
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a client sends, translating it never panics: it is a chat request or a 400.
        #[test]
        fn any_request_translates_or_is_a_400(req in any_json(), history in proptest::collection::vec(any_json(), 0..3)) {
            if let Err(e) = to_chat(&req, &history) {
                proptest::prop_assert_eq!(e.status, 400);
            }
        }
    }

    #[test]
    fn what_chat_cannot_carry_is_a_400_naming_the_field() {
        for (req, param) in [
            (json!({"input": "x", "tools": [{"type": "web_search"}]}), "tools"),
            (json!({"input": [{"type": "item_reference", "id": "x"}]}), "input[0]"),
            (json!({"input": [{"role": "robot", "content": "x"}]}), "input[0].role"),
            (json!({"input": [{"type": "function_call", "name": "f"}]}), "input[0].call_id"),
            (json!({"input": 5}), "input"),
            (json!({}), "input"),
            (json!({"input": "x", "background": true}), "background"),
            (json!({"input": "x", "instructions": 3}), "instructions"),
        ] {
            let e = to_chat(&req, &[]).unwrap_err();
            assert_eq!(e.status, 400, "{req}");
            assert_eq!(e.param.as_deref(), Some(param), "{req}: {}", e.message);
        }
    }
}
