//! OpenAI chat request → Bedrock Converse request (formats.md §6), following LiteLLM's
//! `AmazonConverseConfig`.
//!
//! Converse differs from OpenAI much as Anthropic does: `system` is top-level, sampling lives in
//! `inferenceConfig`, turns must alternate (tool results ride in a user turn), tool calls are
//! `toolUse` blocks with parsed input, and images travel as base64 bytes. The model id and
//! whether to stream are in the URL, not the body. Parameters Converse cannot honour are refused
//! by name unless `drop_params` is on, as LiteLLM's `UnsupportedParamsError` does; parameters it
//! does not know go to `additionalModelRequestFields`, where the model itself may take them
//! (`top_k`, `thinking`, …).

use crate::turns::Kind;
use serde_json::{json, Map, Value};

use super::{Options, TranslateError};

/// OpenAI parameters that change what the model does and that Converse cannot honour.
const UNSUPPORTED: &[&str] = &[
    "n",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "response_format",
    "modalities",
];

/// OpenAI parameters that are hints to OpenAI's own service or that the gateway consumes itself
/// (`stream` picks the URL): never sent, never an error.
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
    "verbosity",
];

/// Converse's own top-level fields a client may send as extra body parameters (LiteLLM passes
/// them through unchanged).
const CONVERSE_FIELDS: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
    "additionalModelResponseFieldPaths",
];

/// LiteLLM's thinking budgets for `reasoning_effort` (constants.py DEFAULT_REASONING_EFFORT_*),
/// sent the way Claude models on Bedrock take them.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

/// Builds the Converse body for `openai` (an OpenAI chat request).
pub fn converse_request(openai: &Value, opts: &Options) -> Result<Value, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::other("the request body must be a JSON object with `model` and `messages`"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::param("messages", "`messages` is required and must be an array of messages"))?;
    let (system, turns) = convert_messages(messages)?;
    if turns.is_empty() {
        return Err(TranslateError::param(
            "messages",
            "Bedrock needs at least one user or assistant message besides the system prompt; add a user message",
        ));
    }

    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let mut inference = Map::new();
    let mut additional = Map::new();
    let max_tokens = match req.get("max_completion_tokens").filter(|v| !v.is_null()) {
        Some(v) => Some(("max_completion_tokens", v)),
        None => req.get("max_tokens").filter(|v| !v.is_null()).map(|v| ("max_tokens", v)),
    };
    if let Some((name, v)) = max_tokens {
        let n = v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| TranslateError::param(name, format!("`{name}` must be a positive integer")))?;
        inference.insert("maxTokens".into(), n.into());
    }

    for (key, value) in req {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "messages" | "max_tokens" | "max_completion_tokens" | "tools" | "tool_choice" => {}
            "temperature" => {
                inference.insert("temperature".into(), number(key, value)?);
            }
            "top_p" => {
                inference.insert("topP".into(), number(key, value)?);
            }
            "stop" => {
                if let Some(stops) = stop_sequences(value)? {
                    inference.insert("stopSequences".into(), stops);
                }
            }
            "reasoning_effort" => {
                let effort = value.as_str().unwrap_or("");
                if let Some(budget) = thinking_budget(effort) {
                    additional.insert("thinking".into(), json!({ "type": "enabled", "budget_tokens": budget }));
                } else if effort != "none" {
                    return Err(TranslateError::param(
                        "reasoning_effort",
                        format!("reasoning_effort {value} is not one of minimal, low, medium, high, none"),
                    ));
                }
            }
            "additionalModelRequestFields" => {
                let fields = value.as_object().ok_or_else(|| {
                    TranslateError::param(key.as_str(), "`additionalModelRequestFields` must be a JSON object")
                })?;
                additional.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            k if CONVERSE_FIELDS.contains(&k) => {
                out.insert(key.clone(), value.clone());
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
            // Anything else is model-specific (`top_k`, `thinking`, …): the model gets it through
            // additionalModelRequestFields, as LiteLLM sends it.
            _ => {
                additional.insert(key.clone(), value.clone());
            }
        }
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if !additional.is_empty() {
        out.insert("additionalModelRequestFields".into(), Value::Object(additional));
    }

    match req.get("tools") {
        Some(Value::Array(tools)) if !tools.is_empty() => {
            let mut config = Map::new();
            config.insert("tools".into(), Value::Array(convert_tools(tools)?));
            // `none` has no Converse form: leaving toolChoice out means "auto".
            if let Some(choice) = req.get("tool_choice").filter(|v| !v.is_null()) {
                if let Some(c) = tool_choice(choice)? {
                    config.insert("toolChoice".into(), c);
                }
            }
            out.insert("toolConfig".into(), Value::Object(config));
        }
        Some(Value::Array(_) | Value::Null) | None => {}
        Some(_) => return Err(TranslateError::param("tools", "`tools` must be an array of function tools")),
    }
    Ok(Value::Object(out))
}

fn unsupported(param: &str, value: &Value) -> TranslateError {
    TranslateError::param(
        param,
        format!(
            "bedrock does not support parameters: ['{param}'] (got {param}={value}). To drop unsupported \
             parameters instead, set `litellm_settings.drop_params: true` (or `drop_params: true` on the \
             deployment), or remove `{param}` from the request."
        ),
    )
}

fn number(param: &str, value: &Value) -> Result<Value, TranslateError> {
    if value.is_number() {
        Ok(value.clone())
    } else {
        Err(TranslateError::param(param, format!("`{param}` must be a number")))
    }
}

fn stop_sequences(value: &Value) -> Result<Option<Value>, TranslateError> {
    let bad = || TranslateError::param("stop", "`stop` must be a string or a list of strings");
    let list: Vec<Value> = match value {
        Value::String(s) => vec![Value::from(s.as_str())],
        Value::Array(items) => {
            items.iter().map(|s| s.as_str().map(Value::from).ok_or_else(bad)).collect::<Result<_, _>>()?
        }
        _ => return Err(bad()),
    };
    // Bedrock rejects empty stop sequences; an empty one stops nothing anyway.
    let list: Vec<Value> = list.into_iter().filter(|s| s.as_str().is_some_and(|s| !s.is_empty())).collect();
    Ok((!list.is_empty()).then_some(Value::Array(list)))
}

fn convert_tools(tools: &[Value]) -> Result<Vec<Value>, TranslateError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
            if kind != "function" {
                return Err(TranslateError::param(
                    format!("tools[{i}].type"),
                    format!("Bedrock deployments take only function tools; tools[{i}] has type {kind:?}"),
                ));
            }
            let f = tool.get("function").ok_or_else(|| {
                TranslateError::param(
                    format!("tools[{i}]"),
                    format!("tools[{i}] needs a `function` object with a `name`"),
                )
            })?;
            let name = f.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
                TranslateError::param(
                    format!("tools[{i}].function.name"),
                    format!("tools[{i}].function needs a `name`"),
                )
            })?;
            let mut spec = Map::new();
            spec.insert("name".into(), name.into());
            if let Some(d) = f.get("description").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                spec.insert("description".into(), d.into());
            }
            // Converse requires a schema; a parameterless OpenAI function means "no input".
            let schema = match f.get("parameters") {
                Some(p) if p.is_object() => p.clone(),
                _ => json!({ "type": "object", "properties": {} }),
            };
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            Ok(json!({ "toolSpec": spec }))
        })
        .collect()
}

/// `None` for `"none"`, which Converse cannot express.
fn tool_choice(choice: &Value) -> Result<Option<Value>, TranslateError> {
    let bad = || {
        TranslateError::param(
            "tool_choice",
            format!(
                "tool_choice {choice} cannot be sent to Bedrock; use \"auto\", \"required\", \"none\" or \
                 {{\"type\":\"function\",\"function\":{{\"name\":…}}}}"
            ),
        )
    };
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(json!({ "auto": {} }))),
            "required" => Ok(Some(json!({ "any": {} }))),
            "none" => Ok(None),
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
            Ok(Some(json!({ "tool": { "name": name } })))
        }
        _ => Err(bad()),
    }
}

/// Splits `messages` into the system blocks and the alternating user/assistant turns.
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    crate::turns::split(
        messages,
        "Bedrock",
        |kind, m, i| match kind {
            Kind::System => text_blocks(m.get("content"), i),
            Kind::User => user_blocks(m.get("content"), i),
            Kind::Assistant => assistant_blocks(m, i),
            Kind::Tool => Ok(vec![tool_result(m, i)?]),
        },
        TranslateError::param,
    )
}

fn content_type_error(i: usize) -> TranslateError {
    TranslateError::param(
        format!("messages[{i}].content"),
        format!("messages[{i}].content must be a string or an array of content parts"),
    )
}

/// A text part as `{text}`, followed by a `cachePoint` when the client marked it with
/// `cache_control` (Bedrock's prompt-caching marker sits after the content it covers). Empty
/// text is dropped: Bedrock rejects blank text blocks.
fn push_text(out: &mut Vec<Value>, part: &Value) {
    let Some(text) = part.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return;
    };
    out.push(json!({ "text": text }));
    if part.get("cache_control").is_some_and(|c| !c.is_null()) {
        out.push(json!({ "cachePoint": { "type": "default" } }));
    }
}

/// System/developer content, or a tool result's parts: text only.
fn text_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => push_text(&mut out, p),
                    other => {
                        return Err(TranslateError::param(
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

fn user_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, TranslateError> {
    let Some(Value::Array(parts)) = content else {
        return text_blocks(content, i);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let param = |suffix: &str| format!("messages[{i}].content[{j}]{suffix}");
        match p.get("type").and_then(Value::as_str) {
            Some("text") => push_text(&mut out, p),
            Some("image_url") => {
                let url = match p.get("image_url") {
                    Some(Value::String(u)) => Some(u.as_str()),
                    Some(o) => o.get("url").and_then(Value::as_str),
                    None => None,
                }
                .ok_or_else(|| {
                    TranslateError::param(param(".image_url"), format!("{} needs image_url.url", param("")))
                })?;
                let (mime, data) = data_url(url, &param(".image_url.url"))?;
                let format = image_format(mime).ok_or_else(|| {
                    TranslateError::param(
                        param(".image_url.url"),
                        format!("Bedrock takes png, jpeg, gif or webp images, not {mime}"),
                    )
                })?;
                out.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            Some("file") => {
                let data = p.get("file").and_then(|f| f.get("file_data")).and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::param(
                        param(".file"),
                        format!("{}: Bedrock deployments take files as file.file_data data: URLs", param("")),
                    )
                })?;
                let (mime, bytes) = data_url(data, &param(".file.file_data"))?;
                let format = document_format(mime).ok_or_else(|| {
                    TranslateError::param(
                        param(".file.file_data"),
                        format!("Bedrock cannot read documents of type {mime}"),
                    )
                })?;
                // Converse requires a name (letters, digits, spaces, hyphens, parentheses,
                // brackets) unique within the request; the position makes one.
                let name = format!("document-{i}-{j}");
                out.push(json!({ "document": { "format": format, "name": name, "source": { "bytes": bytes } } }));
            }
            other => {
                return Err(TranslateError::param(
                    param(".type"),
                    format!(
                    "{} has type {other:?}, which Bedrock deployments do not take; send text, image_url or file parts",
                    param("")
                ),
                ))
            }
        }
    }
    Ok(out)
}

/// `data:<mime>;base64,<data>` → (mime, base64 data). Converse takes bytes only, and fetching
/// an `http(s)://` image is I/O this pure translation does not do.
fn data_url<'a>(url: &'a str, param: &str) -> Result<(&'a str, &'a str), TranslateError> {
    let parsed = url.strip_prefix("data:").and_then(|rest| {
        let (meta, data) = rest.split_once(',')?;
        let mime = meta.strip_suffix(";base64")?;
        (!mime.is_empty() && !data.is_empty()).then_some((mime, data))
    });
    parsed.ok_or_else(|| {
        TranslateError::param(
            param,
            "Bedrock deployments take images and files inline only: send a data:<media type>;base64,<data> URL",
        )
    })
}

fn image_format(mime: &str) -> Option<&'static str> {
    match mime.to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(mime: &str) -> Option<&'static str> {
    match mime.to_ascii_lowercase().as_str() {
        "application/pdf" => Some("pdf"),
        "text/csv" => Some("csv"),
        "application/msword" => Some("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("docx"),
        "application/vnd.ms-excel" => Some("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("xlsx"),
        "text/html" => Some("html"),
        "text/plain" => Some("txt"),
        "text/markdown" => Some("md"),
        _ => None,
    }
}

fn assistant_blocks(m: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    let mut out = match m.get("content") {
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => push_text(&mut out, p),
                    // A refusal the model gave earlier is still what it said.
                    Some("refusal") => {
                        if let Some(r) = p.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty()) {
                            out.push(json!({ "text": r }));
                        }
                    }
                    _ => {}
                }
            }
            out
        }
        other => text_blocks(other, i)?,
    };
    for call in crate::turns::tool_calls(m, i, "Bedrock", TranslateError::param)? {
        out.push(json!({ "toolUse": { "toolUseId": call.id, "name": call.name, "input": call.input } }));
    }
    Ok(out)
}

/// A tool message as a `toolResult` block. Content that is a JSON object goes as `{json}` so the
/// model sees structure; anything else as `{text}`.
fn tool_result(m: &Value, i: usize) -> Result<Value, TranslateError> {
    let id = m.get("tool_call_id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
        TranslateError::param(
            format!("messages[{i}].tool_call_id"),
            format!("messages[{i}] (role tool) needs the `tool_call_id` of the call it answers"),
        )
    })?;
    let content = match m.get("content") {
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => vec![json!({ "json": v })],
            _ => vec![json!({ "text": s })],
        },
        Some(Value::Array(_)) => {
            text_blocks(m.get("content"), i)?.into_iter().filter(|b| b.get("text").is_some()).collect()
        }
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(content_type_error(i)),
    };
    // Bedrock rejects a blank text block; an empty result is still a result.
    let content =
        if content.is_empty() || content == [json!({ "text": "" })] { vec![json!({ "text": "." })] } else { content };
    Ok(json!({ "toolResult": { "toolUseId": id, "content": content } }))
}
