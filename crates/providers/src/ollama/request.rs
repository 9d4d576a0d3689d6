//! OpenAI requests → Ollama's native API, following LiteLLM's `OllamaConfig` (`ollama/`,
//! `/api/generate`, the chat flattened into one prompt), `OllamaChatConfig` (`ollama_chat/`,
//! `/api/chat`) and its embedding handler (`/api/embed`).
//!
//! Sampling parameters go into Ollama's `options` under its own names (`max_tokens` is
//! `num_predict`, `frequency_penalty` is `repeat_penalty`); parameters Ollama cannot honour are
//! refused by name unless `drop_params` is on, as LiteLLM's `UnsupportedParamsError` does.

use serde_json::{json, Map, Value};

use super::TranslateError;

/// OpenAI parameters that are hints to OpenAI's own service or that the gateway consumes
/// itself: never sent, never an error.
const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "store",
    "metadata",
    "service_tier",
    "user",
    "parallel_tool_calls",
    "prompt_cache_key",
    "safety_identifier",
    "tool_choice",
];

/// Ollama's own top-level request fields a client may send as extra body parameters.
const NATIVE_FIELDS: &[&str] = &["keep_alive", "options", "think", "raw", "suffix", "template", "context"];

/// The body of an `/api/chat` call (`ollama_chat/`).
pub fn chat_request(openai: &Value, model: &str, stream: bool, drop_params: bool) -> Result<Value, TranslateError> {
    let req = object(openai)?;
    let messages = messages(req)?;
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let converted = messages.iter().enumerate().map(|(i, m)| chat_message(m, i)).collect::<Result<Vec<_>, _>>()?;
    out.insert("messages".into(), Value::Array(converted));
    out.insert("stream".into(), stream.into());
    let mut options = Map::new();
    for (key, value) in req {
        if value.is_null() || key == "messages" {
            continue;
        }
        if key == "tools" {
            out.insert("tools".into(), tools(value)?);
            continue;
        }
        common_param(key, value, &mut out, &mut options, drop_params)?;
    }
    merge_options(&mut out, options);
    Ok(Value::Object(out))
}

/// The body of an `/api/generate` call (`ollama/`): the messages flattened into one prompt the
/// way LiteLLM's `ollama_pt` does. With tools, the model is asked for a JSON function call
/// (LiteLLM's `function_call_prompt`), answered as a tool call by [`super::generate_response`].
pub fn generate_request(openai: &Value, model: &str, stream: bool, drop_params: bool) -> Result<Value, TranslateError> {
    let req = object(openai)?;
    let mut messages = messages(req)?.clone();
    let mut out = Map::new();
    let mut options = Map::new();
    for (key, value) in req {
        if value.is_null() || key == "messages" {
            continue;
        }
        if key == "tools" || key == "functions" {
            add_function_prompt(&mut messages, &function_call_prompt(&tools(value)?));
            out.insert("format".into(), "json".into());
            continue;
        }
        common_param(key, value, &mut out, &mut options, drop_params)?;
    }
    let (prompt, images) = prompt(model, &messages)?;
    out.insert("model".into(), model.into());
    out.insert("prompt".into(), prompt.into());
    if !images.is_empty() {
        out.insert("images".into(), images.into());
    }
    out.insert("stream".into(), stream.into());
    merge_options(&mut out, options);
    Ok(Value::Object(out))
}

/// The body of an `/api/embed` call, and whether the client asked for base64 vectors (Ollama
/// answers floats; the gateway encodes them as OpenAI does).
pub fn embed_request(openai: &Value, model: &str) -> Result<(Value, bool), TranslateError> {
    let req = object(openai)?;
    let input = match req.get("input") {
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => items.clone(),
        Some(Value::Array(items)) if !items.is_empty() => {
            return Err(TranslateError::param(
                "input",
                "Ollama embeds text only: send `input` as a string or an array of strings, not token ids",
            ))
        }
        _ => {
            return Err(TranslateError::param("input", "`input` is required: a string or a non-empty array of strings"))
        }
    };
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("input".into(), input.into());
    if let Some(d) = req.get("dimensions").filter(|v| !v.is_null()) {
        let n = d
            .as_u64()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(|| TranslateError::param("dimensions", "`dimensions` must be a positive integer"))?;
        out.insert("dimensions".into(), n.into());
    }
    for key in ["keep_alive", "truncate", "options"] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    let base64 = crate::embedding::wants_base64(req).map_err(|e| TranslateError::param("encoding_format", e))?;
    Ok((Value::Object(out), base64))
}

fn object(openai: &Value) -> Result<&Map<String, Value>, TranslateError> {
    openai
        .as_object()
        .ok_or_else(|| TranslateError::other("the request body must be a JSON object with `model` and `messages`"))
}

fn messages(req: &Map<String, Value>) -> Result<&Vec<Value>, TranslateError> {
    req.get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::param("messages", "`messages` is required and must be a non-empty array"))
}

/// A parameter both APIs take the same way; anything else is refused unless `drop_params`.
fn common_param(
    key: &str,
    value: &Value,
    out: &mut Map<String, Value>,
    options: &mut Map<String, Value>,
    drop_params: bool,
) -> Result<(), TranslateError> {
    match key {
        "max_tokens" | "max_completion_tokens" => {
            let n = value
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| TranslateError::param(key, format!("`{key}` must be a positive integer")))?;
            options.insert("num_predict".into(), n.into());
        }
        "temperature" | "top_p" | "seed" => {
            options.insert(key.into(), number(key, value)?);
        }
        "frequency_penalty" => {
            options.insert("repeat_penalty".into(), number(key, value)?);
        }
        "stop" => {
            let stops = match value {
                Value::String(s) => vec![Value::String(s.clone())],
                Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
                _ => return Err(TranslateError::param("stop", "`stop` must be a string or an array of strings")),
            };
            options.insert("stop".into(), stops.into());
        }
        "response_format" => {
            if let Some(format) = response_format(value)? {
                out.insert("format".into(), format);
            }
        }
        "reasoning_effort" => {
            let think = match value.as_str() {
                Some("none") => json!(false),
                Some(level @ ("low" | "medium" | "high")) => json!(level),
                Some("minimal") => json!(true),
                _ => {
                    return Err(TranslateError::param(
                        "reasoning_effort",
                        format!("reasoning_effort {value} is not one of minimal, low, medium, high, none"),
                    ))
                }
            };
            out.insert("think".into(), think);
        }
        k if NATIVE_FIELDS.contains(&k) => {
            out.insert(k.into(), value.clone());
        }
        k if IGNORED.contains(&k) => {}
        _ if drop_params => {}
        k => {
            return Err(TranslateError::param(
                k,
                format!(
                    "ollama does not support parameters: ['{k}']. To drop unsupported parameters, set \
                     `litellm_settings: {{drop_params: true}}` or the deployment's `drop_params: true`"
                ),
            ))
        }
    }
    Ok(())
}

/// Options the client sent itself win over the ones mapped from OpenAI parameters.
fn merge_options(out: &mut Map<String, Value>, mapped: Map<String, Value>) {
    if mapped.is_empty() {
        return;
    }
    let mut options = mapped;
    if let Some(Value::Object(own)) = out.remove("options") {
        options.extend(own);
    }
    out.insert("options".into(), Value::Object(options));
}

fn number(key: &str, value: &Value) -> Result<Value, TranslateError> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        _ => Err(TranslateError::param(key, format!("`{key}` must be a number"))),
    }
}

/// `json_object` asks for JSON; `json_schema` passes its schema as Ollama's structured output.
fn response_format(value: &Value) -> Result<Option<Value>, TranslateError> {
    match value.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some("json".into())),
        Some("json_schema") => value
            .get("json_schema")
            .and_then(|s| s.get("schema"))
            .filter(|s| s.is_object())
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                TranslateError::param("response_format", "`response_format.json_schema.schema` is required")
            }),
        _ => Err(TranslateError::param(
            "response_format",
            "`response_format.type` must be one of \"text\", \"json_object\", \"json_schema\"",
        )),
    }
}

/// OpenAI's tool list is Ollama's (`{type: function, function: {name, description, parameters}}`);
/// legacy `functions` are wrapped into it.
fn tools(value: &Value) -> Result<Value, TranslateError> {
    let list = value.as_array().ok_or_else(|| TranslateError::param("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let function = t.get("function").unwrap_or(t);
        if function.get("name").and_then(Value::as_str).is_none() {
            return Err(TranslateError::param(
                format!("tools[{i}].function.name").as_str(),
                format!("tools[{i}] needs `function.name`"),
            ));
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(Value::Array(out))
}

/// One OpenAI message as Ollama's: text content, images as base64, tool calls with parsed
/// arguments.
fn chat_message(m: &Value, i: usize) -> Result<Value, TranslateError> {
    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
        TranslateError::param(&format!("messages[{i}].role"), format!("messages[{i}] needs a `role`"))
    })?;
    let role = match role {
        "developer" => "system",
        "function" => "tool",
        r @ ("system" | "user" | "assistant" | "tool") => r,
        other => {
            return Err(TranslateError::param(
                &format!("messages[{i}].role"),
                format!("messages[{i}] has role {other:?}; use system, developer, user, assistant or tool"),
            ))
        }
    };
    let mut images = Vec::new();
    let content = content_text(m.get("content"), &mut images, i)?;
    let mut out = json!({ "role": role, "content": content });
    if !images.is_empty() {
        out["images"] = images.into();
    }
    if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
        let mut converted = Vec::with_capacity(calls.len());
        for (j, c) in calls.iter().enumerate() {
            let f = c.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
            let arguments = match f.get("arguments") {
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|_| {
                    TranslateError::param(
                        &format!("messages[{i}].tool_calls[{j}].function.arguments"),
                        "tool call arguments must be a JSON object encoded as a string",
                    )
                })?,
                Some(v @ Value::Object(_)) => v.clone(),
                _ => json!({}),
            };
            converted.push(json!({ "function": { "name": name, "arguments": arguments } }));
        }
        if !converted.is_empty() {
            out["tool_calls"] = converted.into();
        }
    }
    if role == "tool" {
        if let Some(name) = m.get("name").and_then(Value::as_str) {
            out["tool_name"] = name.into();
        }
    }
    Ok(out)
}

/// A message's text, with the images of a content-part list collected as Ollama takes them
/// (base64, without a data URL's prefix).
fn content_text(content: Option<&Value>, images: &mut Vec<Value>, i: usize) -> Result<String, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(p.get("text").and_then(Value::as_str).unwrap_or_default()),
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        images.push(image_base64(url, i)?.into());
                    }
                    _ => {
                        return Err(TranslateError::param(
                            &format!("messages[{i}].content"),
                            "Ollama takes text and image_url content parts only",
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(TranslateError::param(
            &format!("messages[{i}].content"),
            "`content` must be a string or an array of content parts",
        )),
    }
}

fn image_base64(url: &str, i: usize) -> Result<String, TranslateError> {
    match url.split_once(";base64,") {
        Some((head, data)) if head.starts_with("data:") => Ok(data.to_string()),
        _ => Err(TranslateError::param(
            &format!("messages[{i}].content"),
            "Ollama deployments take images as base64 data URLs (data:image/png;base64,…); the gateway does not \
             fetch image URLs",
        )),
    }
}

/// LiteLLM's `ollama_pt`: consecutive user and tool messages merged under `### User:`, system
/// messages under `### System:`, assistant turns (with their tool calls) under `### Assistant:`;
/// models named `…instruct…` get the instruct template instead.
fn prompt(model: &str, messages: &[Value]) -> Result<(String, Vec<Value>), TranslateError> {
    let mut images = Vec::new();
    let mut prompt = String::new();
    if model.contains("instruct") {
        for (i, m) in messages.iter().enumerate() {
            let text = content_text(m.get("content"), &mut images, i)?;
            let pre = match m.get("role").and_then(Value::as_str) {
                Some("system" | "developer") => "### System:\n",
                Some("assistant") => "### Response:\n",
                _ => "### User:\n",
            };
            prompt.push_str(pre);
            prompt.push_str(&text);
            prompt.push('\n');
        }
        prompt.push_str("### Response:");
        return Ok((prompt, images));
    }
    let role = |i: usize| messages.get(i).and_then(|m| m.get("role")).and_then(Value::as_str).unwrap_or("user");
    let mut i = 0;
    while i < messages.len() {
        let start = i;
        let mut user = String::new();
        while i < messages.len() && matches!(role(i), "user" | "tool" | "function") {
            user.push_str(&content_text(messages[i].get("content"), &mut images, i)?);
            i += 1;
        }
        if !user.is_empty() {
            prompt.push_str(&format!("### User:\n{user}\n\n"));
        }
        let mut system = String::new();
        while i < messages.len() && matches!(role(i), "system" | "developer") {
            system.push_str(&content_text(messages[i].get("content"), &mut images, i)?);
            i += 1;
        }
        if !system.is_empty() {
            prompt.push_str(&format!("### System:\n{system}\n\n"));
        }
        let mut assistant = String::new();
        while i < messages.len() && role(i) == "assistant" {
            assistant.push_str(&content_text(messages[i].get("content"), &mut images, i)?);
            if let Some(calls) = messages[i].get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty()) {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        let f = c.get("function").unwrap_or(&Value::Null);
                        let args = f
                            .get("arguments")
                            .and_then(Value::as_str)
                            .and_then(|s| serde_json::from_str::<Value>(s).ok())
                            .unwrap_or_else(|| json!({}));
                        json!({ "id": c.get("id"), "type": "function", "function": { "name": f.get("name"), "arguments": args } })
                    })
                    .collect();
                let pretty = serde_json::to_string_pretty(&calls).unwrap_or_default();
                assistant.push_str(&format!("Tool Calls: {pretty}"));
            }
            i += 1;
        }
        if !assistant.is_empty() {
            prompt.push_str(&format!("### Assistant:\n{assistant}\n\n"));
        }
        if i == start {
            return Err(TranslateError::param(
                &format!("messages[{i}].role"),
                format!("messages[{i}] has a role Ollama prompts cannot hold; use system, user, assistant or tool"),
            ));
        }
    }
    Ok((prompt, images))
}

/// LiteLLM's `function_call_prompt`: the tools described to a model that has no tool API.
fn function_call_prompt(tools: &Value) -> String {
    let mut prompt = String::from(
        "Produce JSON OUTPUT ONLY! Adhere to this format {\"name\": \"function_name\", \"arguments\":{\"argument_name\": \"argument_value\"}} The following functions are available to you:",
    );
    for f in tools.as_array().into_iter().flatten().filter_map(|t| t.get("function")) {
        prompt.push_str(&format!("\n{f}\n"));
    }
    prompt
}

/// As LiteLLM does: appended to every system message, or sent as one when there is none.
fn add_function_prompt(messages: &mut Vec<Value>, prompt: &str) {
    let mut added = false;
    for m in messages.iter_mut() {
        if matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer")) {
            if let Some(Value::String(s)) = m.get_mut("content") {
                s.push(' ');
                s.push_str(prompt);
                added = true;
            }
        }
    }
    if !added {
        messages.push(json!({ "role": "system", "content": prompt }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_maps_sampling_into_options_and_keeps_tools_native() {
        let req = json!({
            "model": "group",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what is "}, {"type": "text", "text": "this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "look", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            ],
            "max_tokens": 50, "temperature": 0.2, "stop": "END", "frequency_penalty": 1.1, "seed": 7,
            "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
            "tool_choice": "auto", "response_format": {"type": "json_object"}, "stream_options": {"include_usage": true},
            "keep_alive": "5m",
        });
        let out = chat_request(&req, "llama3", true, false).unwrap();
        assert_eq!(out["model"], "llama3");
        assert_eq!(out["stream"], true);
        assert_eq!(out["keep_alive"], "5m");
        assert_eq!(out["format"], "json");
        assert_eq!(
            out["options"],
            json!({"num_predict": 50, "temperature": 0.2, "stop": ["END"], "repeat_penalty": 1.1, "seed": 7})
        );
        let m = &out["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(m[1], json!({"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]}));
        assert_eq!(m[2]["tool_calls"], json!([{"function": {"name": "look", "arguments": {"x": 1}}}]));
        assert_eq!(m[3], json!({"role": "tool", "content": "a cat"}));
        assert_eq!(out["tools"][0]["function"]["name"], "look");
    }

    #[test]
    fn unsupported_params_are_refused_by_name_unless_dropped() {
        let req = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}});
        let e = chat_request(&req, "m", false, false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("logit_bias"));
        assert!(e.message.contains("drop_params"), "{}", e.message);
        let out = chat_request(&req, "m", false, true).unwrap();
        assert!(out.get("logit_bias").is_none() && out.get("options").is_none());
        let bad = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1});
        assert_eq!(chat_request(&bad, "m", false, true).unwrap_err().param.as_deref(), Some("max_tokens"));
        let url = json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]}]});
        assert!(chat_request(&url, "m", false, false).unwrap_err().message.contains("base64 data URLs"));
    }

    #[test]
    fn generate_flattens_the_chat_into_litellms_prompt() {
        let req = json!({
            "model": "g",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "one"},
                {"role": "user", "content": "two"},
                {"role": "assistant", "content": "reply"},
                {"role": "user", "content": "three"},
            ],
            "max_completion_tokens": 9,
        });
        let out = generate_request(&req, "llama3", false, false).unwrap();
        assert_eq!(
            out["prompt"],
            "### System:\nsys\n\n### User:\nonetwo\n\n### Assistant:\nreply\n\n### User:\nthree\n\n"
        );
        assert_eq!(out["options"], json!({"num_predict": 9}));
        assert_eq!(out["stream"], false);
        assert!(out.get("messages").is_none());
        let instruct = generate_request(&req, "mistral-instruct", false, false).unwrap();
        assert!(instruct["prompt"].as_str().unwrap().ends_with("### User:\nthree\n### Response:"));
    }

    #[test]
    fn generate_with_tools_asks_for_a_json_function_call() {
        let req = json!({
            "model": "g",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        });
        let out = generate_request(&req, "llama3", false, false).unwrap();
        assert_eq!(out["format"], "json");
        let prompt = out["prompt"].as_str().unwrap();
        assert!(prompt.starts_with("### User:\nweather?\n\n### System:\nProduce JSON OUTPUT ONLY!"), "{prompt}");
        assert!(prompt.contains("\"name\":\"get_weather\""), "{prompt}");
    }

    #[test]
    fn embed_takes_strings_dimensions_and_an_encoding_format() {
        let (out, b64) =
            embed_request(&json!({"model": "g", "input": "hi", "dimensions": 8, "encoding_format": "base64"}), "nomic")
                .unwrap();
        assert_eq!(out, json!({"model": "nomic", "input": ["hi"], "dimensions": 8}));
        assert!(b64);
        let (out, b64) = embed_request(&json!({"model": "g", "input": ["a", "b"]}), "nomic").unwrap();
        assert_eq!(out["input"], json!(["a", "b"]));
        assert!(!b64);
        assert_eq!(embed_request(&json!({"input": [[1, 2]]}), "nomic").unwrap_err().param.as_deref(), Some("input"));
        assert_eq!(
            embed_request(&json!({"input": "x", "encoding_format": "int8"}), "nomic").unwrap_err().param.as_deref(),
            Some("encoding_format")
        );
        assert_eq!(
            embed_request(&json!({"input": "x", "dimensions": 0}), "n").unwrap_err().param.as_deref(),
            Some("dimensions")
        );
    }
}
