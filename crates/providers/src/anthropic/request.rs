//! OpenAI chat request → Anthropic Messages request, following LiteLLM's
//! `AnthropicConfig.transform_request` (formats.md §3.6).
//!
//! Anthropic differs from OpenAI in ways a client never has to think about behind LiteLLM:
//! `system` is a top-level field, `max_tokens` is mandatory, turns must alternate between user
//! and assistant (tool results ride in a user turn), tool calls are content blocks with parsed
//! `input`, and images name their source. Parameters Anthropic has no equivalent for are refused
//! by name unless `drop_params` is on, as LiteLLM's `UnsupportedParamsError` does.

use crate::turns::Kind;
use serde_json::{json, Map, Value};

use super::{Options, TranslateError};

/// OpenAI parameters that change what the model does and that Anthropic cannot honour: refused
/// (or dropped with `drop_params`) rather than silently ignored.
const UNSUPPORTED: &[&str] = &[
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "response_format",
    "modalities",
    "n",
];

/// OpenAI parameters that are hints to OpenAI's own service (storage, billing tier, caching
/// keys) or that the gateway consumes itself: never sent to Anthropic, never an error.
const IGNORED: &[&str] = &[
    "stream_options",
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "parallel_tool_calls",
];

/// LiteLLM's thinking budgets for `reasoning_effort` (constants.py DEFAULT_REASONING_EFFORT_*).
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

/// Builds the Messages API body for `openai` (an OpenAI chat request), addressed to
/// `upstream_model`. `stream` is carried over; the gateway decides how to read the answer.
pub fn chat_request(openai: &Value, upstream_model: &str, opts: &Options) -> Result<Value, TranslateError> {
    let req = openai.as_object().ok_or_else(|| {
        TranslateError::upstream("the request body must be a JSON object with `model` and `messages`")
    })?;
    let mut out = Map::new();
    out.insert("model".into(), upstream_model.into());

    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::new("messages", "`messages` is required and must be an array of messages"))?;
    let (system, turns) = convert_messages(messages)?;
    if turns.is_empty() {
        return Err(TranslateError::new(
            "messages",
            "Anthropic needs at least one user or assistant message besides the system prompt; add a user message",
        ));
    }
    out.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let max_tokens = match req.get("max_completion_tokens").filter(|v| !v.is_null()) {
        Some(v) => Some(("max_completion_tokens", v)),
        None => req.get("max_tokens").filter(|v| !v.is_null()).map(|v| ("max_tokens", v)),
    };
    let max_tokens = match max_tokens {
        Some((name, v)) => v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| TranslateError::new(name, format!("`{name}` must be a positive integer")))?,
        None => u64::from(opts.default_max_tokens),
    };
    out.insert("max_tokens".into(), max_tokens.into());

    for (key, value) in req {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" | "messages" | "max_tokens" | "max_completion_tokens" | "tools" | "tool_choice" => {}
            "temperature" | "top_p" | "top_k" => {
                out.insert(key.clone(), value.clone());
            }
            "stream" => {
                if value.as_bool() == Some(true) {
                    out.insert("stream".into(), true.into());
                }
            }
            "stop" => {
                if let Some(stops) = stop_sequences(value, opts)? {
                    out.insert("stop_sequences".into(), stops);
                }
            }
            "user" => {
                if let Some(user) = value.as_str().filter(|u| !u.is_empty()) {
                    out.insert("metadata".into(), json!({ "user_id": user }));
                }
            }
            "reasoning_effort" => {
                let effort = value.as_str().unwrap_or("");
                if let Some(budget) = thinking_budget(effort) {
                    out.insert("thinking".into(), json!({ "type": "enabled", "budget_tokens": budget }));
                } else if effort != "none" {
                    return Err(TranslateError::new(
                        "reasoning_effort",
                        format!("reasoning_effort {value} is not one of minimal, low, medium, high, none"),
                    ));
                }
            }
            // Harmless values of otherwise unsupported parameters.
            "n" if value.as_u64() == Some(1) => {}
            "logprobs" if value.as_bool() == Some(false) => {}
            "response_format" if value.get("type").and_then(Value::as_str) == Some("text") => {}
            "modalities" if value.as_array().is_some_and(|m| m.iter().all(|x| x == "text")) => {}
            k if UNSUPPORTED.contains(&k) => {
                if !opts.drop_params {
                    return Err(unsupported(k, value));
                }
            }
            k if IGNORED.contains(&k) => {}
            // Anything else is a provider-specific parameter (`thinking`, `top_k`,
            // `mcp_servers`, …): LiteLLM passes those through untouched, and so do we.
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }

    let tools = match req.get("tools") {
        Some(Value::Array(tools)) if !tools.is_empty() => Some(convert_tools(tools)?),
        Some(Value::Array(_) | Value::Null) | None => None,
        Some(_) => return Err(TranslateError::new("tools", "`tools` must be an array of function tools")),
    };
    let parallel = req.get("parallel_tool_calls").and_then(Value::as_bool);
    if let Some(tools) = tools {
        out.insert("tools".into(), Value::Array(tools));
        let mut choice = match req.get("tool_choice").filter(|v| !v.is_null()) {
            Some(c) => Some(tool_choice(c)?),
            None => None,
        };
        if parallel == Some(false) {
            // Anthropic carries this flag on tool_choice; OpenAI's default choice is auto.
            let c = choice.get_or_insert_with(|| json!({ "type": "auto" }));
            if c["type"] != "none" {
                c["disable_parallel_tool_use"] = true.into();
            }
        }
        if let Some(c) = choice {
            out.insert("tool_choice".into(), c);
        }
    }
    Ok(Value::Object(out))
}

fn unsupported(param: &str, value: &Value) -> TranslateError {
    TranslateError::new(
        param,
        format!(
            "anthropic does not support parameters: ['{param}'] (got {param}={value}). To drop unsupported \
             parameters instead, set `litellm_settings.drop_params: true` (or `drop_params: true` on the \
             deployment), or remove `{param}` from the request."
        ),
    )
}

fn stop_sequences(value: &Value, opts: &Options) -> Result<Option<Value>, TranslateError> {
    let list: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|s| {
                s.as_str().ok_or_else(|| TranslateError::new("stop", "`stop` must be a string or a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(TranslateError::new("stop", "`stop` must be a string or a list of strings")),
    };
    let mut kept = Vec::with_capacity(list.len());
    for s in list {
        // Anthropic rejects whitespace-only stop sequences; LiteLLM drops them under drop_params.
        if s.trim().is_empty() {
            if opts.drop_params {
                continue;
            }
            return Err(TranslateError::new(
                "stop",
                format!(
                    "Anthropic does not accept empty or whitespace-only stop sequences (got {}); remove it or set \
                     drop_params: true",
                    Value::from(s)
                ),
            ));
        }
        kept.push(Value::from(s));
    }
    Ok((!kept.is_empty()).then_some(Value::Array(kept)))
}

fn convert_tools(tools: &[Value]) -> Result<Vec<Value>, TranslateError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let param = || format!("tools[{i}]");
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
            if kind != "function" {
                return Err(TranslateError::new(
                    format!("{}.type", param()),
                    format!("Anthropic deployments take only function tools; tools[{i}] has type {kind:?}"),
                ));
            }
            let f = tool.get("function").ok_or_else(|| {
                TranslateError::new(param(), format!("tools[{i}] needs a `function` object with a `name`"))
            })?;
            let name = f.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
                TranslateError::new(format!("{}.function.name", param()), format!("tools[{i}].function needs a `name`"))
            })?;
            let mut out = Map::new();
            out.insert("name".into(), name.into());
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                out.insert("description".into(), d.into());
            }
            // Anthropic requires a schema; a parameterless OpenAI function means "no input".
            let schema = match f.get("parameters") {
                Some(p) if p.is_object() => p.clone(),
                _ => json!({ "type": "object", "properties": {} }),
            };
            out.insert("input_schema".into(), schema);
            if let Some(cc) = tool.get("cache_control").or_else(|| f.get("cache_control")) {
                out.insert("cache_control".into(), cc.clone());
            }
            Ok(Value::Object(out))
        })
        .collect()
}

fn tool_choice(choice: &Value) -> Result<Value, TranslateError> {
    let bad = || {
        TranslateError::new(
            "tool_choice",
            format!(
                "tool_choice {choice} cannot be sent to Anthropic; use \"auto\", \"required\", \"none\" or \
                 {{\"type\":\"function\",\"function\":{{\"name\":…}}}}"
            ),
        )
    };
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({ "type": "auto" })),
            "required" => Ok(json!({ "type": "any" })),
            "none" => Ok(json!({ "type": "none" })),
            _ => Err(bad()),
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(bad)?;
            Ok(json!({ "type": "tool", "name": name }))
        }
        _ => Err(bad()),
    }
}

/// Splits `messages` into the system blocks and the alternating user/assistant turns.
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    crate::turns::split(
        messages,
        "Anthropic",
        |kind, m, i| match kind {
            Kind::System => text_blocks(m.get("content"), i),
            Kind::User => user_blocks(m.get("content"), i),
            Kind::Assistant => assistant_blocks(m, i),
            Kind::Tool => Ok(vec![tool_result(m, i)?]),
        },
        TranslateError::new,
    )
}

/// System/developer content, or a tool result's parts: text only.
fn text_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "type": "text", "text": s })]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(b) = text_block(p) {
                            out.push(b);
                        }
                    }
                    other => {
                        return Err(TranslateError::new(
                            format!("messages[{i}].content[{j}].type"),
                            format!("messages[{i}].content[{j}] must be a text part here, not {other:?}"),
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(content_type_error(i)),
    }
}

fn content_type_error(i: usize) -> TranslateError {
    TranslateError::new(
        format!("messages[{i}].content"),
        format!("messages[{i}].content must be a string or an array of content parts"),
    )
}

/// A text part as an Anthropic text block, keeping `cache_control` (prompt caching markers are
/// why clients send parts at all). Empty text is dropped: Anthropic rejects empty text blocks.
fn text_block(part: &Value) -> Option<Value> {
    let text = part.get("text").and_then(Value::as_str).filter(|t| !t.is_empty())?;
    let mut b = json!({ "type": "text", "text": text });
    if let Some(cc) = part.get("cache_control") {
        b["cache_control"] = cc.clone();
    }
    Some(b)
}

fn user_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, TranslateError> {
    let Some(Value::Array(parts)) = content else {
        return text_blocks(content, i);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let param = |suffix: &str| format!("messages[{i}].content[{j}]{suffix}");
        match p.get("type").and_then(Value::as_str) {
            Some("text") => out.extend(text_block(p)),
            Some("image_url") => {
                let url = match p.get("image_url") {
                    Some(Value::String(u)) => Some(u.as_str()),
                    Some(o) => o.get("url").and_then(Value::as_str),
                    None => None,
                }
                .ok_or_else(|| TranslateError::new(param(".image_url"), format!("{} needs image_url.url", param(""))))?;
                let source = media_source(url, &param(".image_url.url"))?;
                let mut b = json!({ "type": "image", "source": source });
                if let Some(cc) = p.get("cache_control") {
                    b["cache_control"] = cc.clone();
                }
                out.push(b);
            }
            Some("file") => {
                let data = p.get("file").and_then(|f| f.get("file_data")).and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::new(
                        param(".file"),
                        format!("{}: Anthropic deployments take files as file.file_data data: URLs (PDF)", param("")),
                    )
                })?;
                let source = media_source(data, &param(".file.file_data"))?;
                out.push(json!({ "type": "document", "source": source }));
            }
            other => {
                return Err(TranslateError::new(
                    param(".type"),
                    format!(
                        "{} has type {other:?}, which Anthropic deployments do not take; send text, image_url or file parts",
                        param("")
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// `data:<mime>;base64,<data>` → a base64 source; `http(s)://…` → a url source.
fn media_source(url: &str, param: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').unwrap_or((rest, ""));
        let media_type =
            meta.strip_suffix(";base64").filter(|m| !m.is_empty() && !data.is_empty()).ok_or_else(|| {
                TranslateError::new(param, "a data: URL must look like data:<media type>;base64,<data> for Anthropic")
            })?;
        return Ok(json!({ "type": "base64", "media_type": media_type, "data": data }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "url", "url": url }));
    }
    Err(TranslateError::new(param, "an image or file URL must be an http(s):// URL or a base64 data: URL"))
}

fn assistant_blocks(m: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    let mut out = match m.get("content") {
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => out.extend(text_block(p)),
                    // A refusal the model gave earlier is still what it said.
                    Some("refusal") => {
                        if let Some(r) = p.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty()) {
                            out.push(json!({ "type": "text", "text": r }));
                        }
                    }
                    _ => {}
                }
            }
            out
        }
        other => text_blocks(other, i)?,
    };
    for call in crate::turns::tool_calls(m, i, "Anthropic", TranslateError::new)? {
        out.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": call.input }));
    }
    Ok(out)
}

fn tool_result(m: &Value, i: usize) -> Result<Value, TranslateError> {
    let id = m.get("tool_call_id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
        TranslateError::new(
            format!("messages[{i}].tool_call_id"),
            format!("messages[{i}] (role tool) needs the `tool_call_id` of the call it answers"),
        )
    })?;
    let content = match m.get("content") {
        Some(Value::String(s)) => Value::from(s.as_str()),
        Some(Value::Array(_)) => Value::Array(text_blocks(m.get("content"), i)?),
        None | Some(Value::Null) => Value::from(""),
        Some(_) => return Err(content_type_error(i)),
    };
    Ok(json!({ "type": "tool_result", "tool_use_id": id, "content": content }))
}
