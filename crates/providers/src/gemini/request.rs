//! OpenAI chat request → Gemini `GenerateContentRequest` (formats.md §2.3, §2.6).
//!
//! Output keys are lowerCamelCase, the spelling Google documents; Google's parsers accept it on
//! Vertex and AI Studio alike.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{schema, Options, TranslateError};

/// OpenAI parameters that carry nothing Gemini needs, or only gateway bookkeeping: accepted and
/// not forwarded (LiteLLM drops `user` too; Vertex `labels` would be the nearest thing).
const IGNORED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "prompt_cache_key",
    "safety_identifier",
];

/// OpenAI parameters Gemini has no equivalent for: refused unless `drop_params`.
const UNSUPPORTED: &[&str] = &["logit_bias", "prediction", "audio", "verbosity"];

pub fn chat_request(openai: &Value, opts: &Options) -> Result<Value, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::other("The request body must be a JSON object with `model` and `messages`."))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::param("messages", "`messages` must be a list of chat messages."))?;
    let (system, contents) = convert_messages(messages, opts)?;

    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }

    let mut gen = Map::new();
    let mut tools: Vec<Value> = Vec::new();
    let mut declarations: Vec<Value> = Vec::new();
    let mut tool_config: Option<Value> = None;
    for (key, value) in req {
        if value.is_null() || IGNORED.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "temperature" => set_number(&mut gen, "temperature", key, value)?,
            "top_p" => set_number(&mut gen, "topP", key, value)?,
            "top_k" => set_number(&mut gen, "topK", key, value)?,
            "presence_penalty" => set_number(&mut gen, "presencePenalty", key, value)?,
            "frequency_penalty" => set_number(&mut gen, "frequencyPenalty", key, value)?,
            "max_tokens" if !has(req, "max_completion_tokens") => set_integer(&mut gen, "maxOutputTokens", key, value)?,
            "max_completion_tokens" => set_integer(&mut gen, "maxOutputTokens", key, value)?,
            "max_tokens" => {}
            "n" => set_integer(&mut gen, "candidateCount", key, value)?,
            "seed" => set_integer(&mut gen, "seed", key, value)?,
            "top_logprobs" => set_integer(&mut gen, "logprobs", key, value)?,
            "logprobs" => {
                let b =
                    value.as_bool().ok_or_else(|| TranslateError::param(key, "`logprobs` must be true or false."))?;
                gen.insert("responseLogprobs".into(), Value::Bool(b));
            }
            "stop" => {
                let stops = match value {
                    Value::String(s) => vec![Value::String(s.clone())],
                    Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
                    _ => return Err(TranslateError::param(key, "`stop` must be a string or a list of strings.")),
                };
                if !stops.is_empty() {
                    gen.insert("stopSequences".into(), Value::Array(stops));
                }
            }
            "response_format" => response_format(value, &mut gen)?,
            "tools" => tools_param(value, &mut declarations, &mut tools)?,
            "functions" => functions_param(value, &mut declarations)?,
            "tool_choice" => tool_config = tool_choice(value)?,
            "function_call" if !has(req, "tool_choice") => tool_config = function_call(value)?,
            "function_call" => {}
            "reasoning_effort" => {
                gen.insert("thinkingConfig".into(), thinking(value)?);
            }
            "modalities" => {
                let list = value.as_array().filter(|a| a.iter().all(Value::is_string)).ok_or_else(|| {
                    TranslateError::param(key, "`modalities` must be a list such as [\"text\", \"image\"].")
                })?;
                let upper = list.iter().filter_map(Value::as_str).map(|m| Value::String(m.to_ascii_uppercase()));
                gen.insert("responseModalities".into(), Value::Array(upper.collect()));
            }
            "web_search_options" => tools.push(json!({ "googleSearch": {} })),
            // LiteLLM passes its own `safety_settings` through to Gemini.
            "safety_settings" => {
                out.insert("safetySettings".into(), value.clone());
            }
            k if UNSUPPORTED.contains(&k) && !opts.drop_params => {
                return Err(TranslateError::param(
                    k,
                    format!(
                        "Gemini does not support the parameter `{k}`. Remove it, or set `drop_params: true` \
                         (in litellm_settings or the deployment's litellm_params) to have it dropped."
                    ),
                ));
            }
            // Anything else is not an OpenAI chat parameter (gateway or LiteLLM extras such as
            // `mock_response`, `tags`, `caching`): not Gemini's business.
            _ => {}
        }
    }
    if !declarations.is_empty() {
        tools.insert(0, json!({ "functionDeclarations": declarations }));
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_config {
        out.insert("toolConfig".into(), json!({ "functionCallingConfig": tc }));
    }
    if !gen.is_empty() {
        out.insert("generationConfig".into(), Value::Object(gen));
    }
    Ok(Value::Object(out))
}

fn has(req: &Map<String, Value>, key: &str) -> bool {
    req.get(key).is_some_and(|v| !v.is_null())
}

fn set_number(gen: &mut Map<String, Value>, to: &str, key: &str, value: &Value) -> Result<(), TranslateError> {
    if !value.is_number() {
        return Err(TranslateError::param(key, format!("`{key}` must be a number.")));
    }
    gen.insert(to.into(), value.clone());
    Ok(())
}

fn set_integer(gen: &mut Map<String, Value>, to: &str, key: &str, value: &Value) -> Result<(), TranslateError> {
    // 100.0 is an integer to Python clients; keep it one here too.
    let n = value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
        .ok_or_else(|| TranslateError::param(key, format!("`{key}` must be an integer.")))?;
    gen.insert(to.into(), Value::from(n));
    Ok(())
}

/// The contents and the system instruction's parts.
fn convert_messages(messages: &[Value], opts: &Options) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // tool_call id → function name, from the assistant turns seen so far: Gemini's
    // functionResponse names the function, OpenAI's tool message only the call id.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let at = |what: &str| format!("messages[{i}]{what}");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::param("messages", format!("{} must be a string.", at(".role"))))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let parts = text_parts(content, &at(".content"))?;
                if opts.system_in_user_turn {
                    push(&mut contents, "user", parts);
                } else {
                    system.extend(parts);
                }
            }
            "user" => push(&mut contents, "user", user_parts(content, &at(".content"))?),
            "assistant" => {
                let mut parts = text_parts(content, &at(".content"))?;
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for (j, call) in calls.iter().enumerate() {
                        let f = call.get("function").unwrap_or(&Value::Null);
                        let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                            TranslateError::param(
                                "messages",
                                format!("{} must be a string.", at(&format!(".tool_calls[{j}].function.name"))),
                            )
                        })?;
                        let args = arguments(f.get("arguments"), &at(&format!(".tool_calls[{j}].function.arguments")))?;
                        if let Some(id) = call.get("id").and_then(Value::as_str) {
                            call_names.insert(id.to_string(), name.to_string());
                        }
                        parts.push(json!({ "functionCall": { "name": name, "args": args } }));
                    }
                } else if let Some(f) = m.get("function_call").filter(|f| f.is_object()) {
                    let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                    let args = arguments(f.get("arguments"), &at(".function_call.arguments"))?;
                    parts.push(json!({ "functionCall": { "name": name, "args": args } }));
                }
                push(&mut contents, "model", parts);
            }
            "tool" | "function" => {
                let name = match (role, m.get("tool_call_id").and_then(Value::as_str)) {
                    ("tool", Some(id)) => call_names
                        .get(id)
                        .cloned()
                        .or_else(|| m.get("name").and_then(Value::as_str).map(str::to_string))
                        .ok_or_else(|| {
                            TranslateError::param(
                                "messages",
                                format!(
                                    "{} {id:?} matches no tool_calls id of an earlier assistant message; Gemini needs the function's name. Send the assistant message with its tool_calls before the tool result.",
                                    at(".tool_call_id")
                                ),
                            )
                        })?,
                    _ => m.get("name").and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                        TranslateError::param("messages", format!("{} needs a `tool_call_id` (or a `name`).", at("")))
                    })?,
                };
                let text = joined_text(content, &at(".content"))?;
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({ "content": text }),
                };
                push(
                    &mut contents,
                    "user",
                    vec![json!({ "functionResponse": { "name": name, "response": response } })],
                );
            }
            other => {
                return Err(TranslateError::param(
                    "messages",
                    format!(
                        "{} {other:?} is not a chat role; use system, developer, user, assistant or tool.",
                        at(".role")
                    ),
                ))
            }
        }
    }
    if contents.is_empty() {
        if system.is_empty() {
            return Err(TranslateError::param(
                "messages",
                "`messages` must contain at least one message with content.",
            ));
        }
        // Gemini refuses a request without contents; a system-only prompt becomes the user turn.
        contents.push(("user", std::mem::take(&mut system)));
    }
    let contents = contents.into_iter().map(|(role, parts)| json!({ "role": role, "parts": parts })).collect();
    Ok((system, contents))
}

/// Appends to the last turn when it has the same role: Gemini wants user and model turns to
/// alternate, and tool results are user turns.
fn push(contents: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some((r, p)) if *r == role => p.extend(parts),
        _ => contents.push((role, parts)),
    }
}

fn arguments(args: Option<&Value>, at: &str) -> Result<Value, TranslateError> {
    match args {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(TranslateError::param("messages", format!("{at} must be a JSON object encoded as a string."))),
        },
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(TranslateError::param("messages", format!("{at} must be a JSON object encoded as a string."))),
    }
}

/// Text-only content (system, assistant): a string or a list of text parts. Empty text is
/// left out; Gemini rejects an empty `text` part.
fn text_parts(content: &Value, at: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({ "text": s })]),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") | Some("refusal") => {
                        let t = p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str).unwrap_or_default();
                        if !t.is_empty() {
                            out.push(json!({ "text": t }));
                        }
                    }
                    other => {
                        return Err(TranslateError::param(
                            "messages",
                            format!("{at}[{k}]: a part of type {other:?} is not allowed here; only text parts are."),
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(TranslateError::param("messages", format!("{at} must be a string or a list of content parts."))),
    }
}

fn joined_text(content: &Value, at: &str) -> Result<String, TranslateError> {
    Ok(text_parts(content, at)?.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""))
}

fn user_parts(content: &Value, at: &str) -> Result<Vec<Value>, TranslateError> {
    let Value::Array(parts) = content else {
        return text_parts(content, at);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (k, p) in parts.iter().enumerate() {
        let at = format!("{at}[{k}]");
        match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = p.get("text").and_then(Value::as_str).unwrap_or_default();
                if !t.is_empty() {
                    out.push(json!({ "text": t }));
                }
            }
            Some("image_url") => {
                let image = p.get("image_url").unwrap_or(&Value::Null);
                let (url, format) = match image {
                    Value::String(u) => (u.as_str(), None),
                    v => (
                        v.get("url").and_then(Value::as_str).unwrap_or_default(),
                        v.get("format").and_then(Value::as_str),
                    ),
                };
                out.push(media(url, format, &format!("{at}.image_url.url"))?);
            }
            Some("input_audio") => {
                let a = p.get("input_audio").unwrap_or(&Value::Null);
                let data = a.get("data").and_then(Value::as_str).unwrap_or_default();
                let format = a.get("format").and_then(Value::as_str).unwrap_or("wav");
                out.push(json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }));
            }
            Some("file") => {
                let f = p.get("file").unwrap_or(&Value::Null);
                let format = f.get("format").and_then(Value::as_str);
                let url = f.get("file_data").or_else(|| f.get("file_id")).and_then(Value::as_str).unwrap_or_default();
                out.push(media(url, format, &format!("{at}.file"))?);
            }
            other => {
                return Err(TranslateError::param(
                    "messages",
                    format!("{at}: content parts of type {other:?} are not supported for Gemini; use text, image_url, input_audio or file."),
                ))
            }
        }
    }
    Ok(out)
}

/// An image or file reference: a base64 `data:` URL is sent inline, a `gs://` or `http(s)://`
/// URL by reference (Gemini fetches it), with the MIME type from `format`, the extension, or
/// `image/jpeg`.
fn media(url: &str, format: Option<&str>, at: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').ok_or_else(|| {
            TranslateError::param("messages", format!("{at}: a data: URL needs a ',' before its data."))
        })?;
        let Some(mime) = header.strip_suffix(";base64") else {
            return Err(TranslateError::param(
                "messages",
                format!("{at}: data: URLs must be base64 (data:<mime>;base64,<data>)."),
            ));
        };
        let mime = format.filter(|f| !f.is_empty()).unwrap_or(if mime.is_empty() { "image/jpeg" } else { mime });
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("gs://") || lower.starts_with("https://") || lower.starts_with("http://") {
        let mime = format
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| mime_from_extension(url).to_string());
        return Ok(json!({ "fileData": { "mimeType": mime, "fileUri": url } }));
    }
    Err(TranslateError::param(
        "messages",
        format!("{at} must be a data: URL (base64), an https:// URL or a gs:// URI."),
    ))
}

fn mime_from_extension(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "mpeg" => "video/mpeg",
        "mpg" => "video/mpg",
        "webm" => "video/webm",
        "wmv" => "video/wmv",
        "flv" => "video/flv",
        "3gp" | "3gpp" => "video/3gpp",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "m4a" => "audio/m4a",
        _ => "image/jpeg",
    }
}

fn declaration(f: &Value, at: &str) -> Result<Value, TranslateError> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::param("tools", format!("{at}.name must be a string.")))?;
    let mut d = json!({ "name": name });
    if let Some(desc) = f.get("description").and_then(Value::as_str) {
        d["description"] = Value::String(desc.to_string());
    }
    if let Some(p) = f.get("parameters").filter(|p| !schema::is_empty_object(p)) {
        d["parameters"] = schema::clean(p);
    }
    Ok(d)
}

fn tools_param(value: &Value, declarations: &mut Vec<Value>, tools: &mut Vec<Value>) -> Result<(), TranslateError> {
    let list = value.as_array().ok_or_else(|| TranslateError::param("tools", "`tools` must be a list."))?;
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {
                let f = t.get("function").unwrap_or(&Value::Null);
                declarations.push(declaration(f, &format!("tools[{i}].function"))?);
            }
            // Gemini's own tools (`{"googleSearch": {}}`, `{"codeExecution": {}}`, …), as LiteLLM
            // lets clients pass them.
            None if t.as_object().is_some_and(|o| o.len() == 1) => tools.push(t.clone()),
            other => {
                return Err(TranslateError::param(
                    "tools",
                    format!("tools[{i}]: tools of type {other:?} are not supported for Gemini; use type \"function\"."),
                ))
            }
        }
    }
    Ok(())
}

fn functions_param(value: &Value, declarations: &mut Vec<Value>) -> Result<(), TranslateError> {
    let list = value.as_array().ok_or_else(|| TranslateError::param("functions", "`functions` must be a list."))?;
    for (i, f) in list.iter().enumerate() {
        declarations.push(
            declaration(f, &format!("functions[{i}]"))
                .map_err(|e| TranslateError { param: Some("functions".into()), ..e })?,
        );
    }
    Ok(())
}

fn tool_choice(value: &Value) -> Result<Option<Value>, TranslateError> {
    let bad = || {
        TranslateError::param(
            "tool_choice",
            "`tool_choice` must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}.",
        )
    };
    Ok(Some(match value {
        Value::String(s) => match s.as_str() {
            "none" => json!({ "mode": "NONE" }),
            "auto" => json!({ "mode": "AUTO" }),
            "required" | "any" => json!({ "mode": "ANY" }),
            _ => return Err(bad()),
        },
        Value::Object(_) => {
            let name = value.pointer("/function/name").and_then(Value::as_str).ok_or_else(bad)?;
            json!({ "mode": "ANY", "allowedFunctionNames": [name] })
        }
        _ => return Err(bad()),
    }))
}

fn function_call(value: &Value) -> Result<Option<Value>, TranslateError> {
    Ok(Some(match value {
        Value::String(s) if s == "none" => json!({ "mode": "NONE" }),
        Value::String(s) if s == "auto" => json!({ "mode": "AUTO" }),
        Value::Object(o) if o.get("name").is_some_and(Value::is_string) => {
            json!({ "mode": "ANY", "allowedFunctionNames": [o["name"]] })
        }
        _ => {
            return Err(TranslateError::param(
                "function_call",
                "`function_call` must be \"none\", \"auto\" or {\"name\": …}.",
            ))
        }
    }))
}

fn response_format(value: &Value, gen: &mut Map<String, Value>) -> Result<(), TranslateError> {
    match value.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            gen.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            gen.insert("responseMimeType".into(), "application/json".into());
            if let Some(s) = value.pointer("/json_schema/schema").filter(|s| s.is_object()) {
                gen.insert("responseSchema".into(), schema::clean(s));
            }
        }
        _ => {
            return Err(TranslateError::param(
                "response_format",
                "`response_format.type` must be \"text\", \"json_object\" or \"json_schema\".",
            ))
        }
    }
    Ok(())
}

/// `reasoning_effort` → a thinking budget, with LiteLLM's budgets per level.
fn thinking(value: &Value) -> Result<Value, TranslateError> {
    let budget = match value.as_str() {
        Some("none" | "disable") => return Ok(json!({ "thinkingBudget": 0 })),
        Some("minimal") => 128,
        Some("low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        _ => {
            return Err(TranslateError::param(
                "reasoning_effort",
                "`reasoning_effort` must be one of none, minimal, low, medium, high.",
            ))
        }
    };
    Ok(json!({ "thinkingBudget": budget, "includeThoughts": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(v: Value) -> Result<Value, TranslateError> {
        chat_request(&v, &Options::default())
    }

    #[test]
    fn merges_same_role_turns_and_folds_system_when_asked() {
        let req = json!({"messages": [
            {"role": "system", "content": "A"},
            {"role": "user", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "y"}]},
            {"role": "assistant", "content": "z"}
        ]});
        let out = tr(req.clone()).unwrap();
        assert_eq!(out["systemInstruction"], json!({"parts": [{"text": "A"}]}));
        assert_eq!(out["contents"][0], json!({"role": "user", "parts": [{"text": "x"}, {"text": "y"}]}));
        assert_eq!(out["contents"][1]["role"], "model");
        let folded = chat_request(&req, &Options { system_in_user_turn: true, ..Options::default() }).unwrap();
        assert!(folded.get("systemInstruction").is_none());
        assert_eq!(folded["contents"][0]["parts"], json!([{"text": "A"}, {"text": "x"}, {"text": "y"}]));
    }

    #[test]
    fn system_only_becomes_the_user_turn() {
        let out = tr(json!({"messages": [{"role": "system", "content": "hi"}]})).unwrap();
        assert_eq!(out["contents"], json!([{"role": "user", "parts": [{"text": "hi"}]}]));
        assert!(out.get("systemInstruction").is_none());
        assert_eq!(tr(json!({"messages": []})).unwrap_err().param.as_deref(), Some("messages"));
    }

    #[test]
    fn unsupported_params_name_themselves_unless_dropped() {
        let req = json!({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 2}, "user": "u"});
        let e = tr(req.clone()).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("logit_bias"));
        assert!(e.message.contains("drop_params"), "{}", e.message);
        let out = chat_request(&req, &Options { drop_params: true, ..Options::default() }).unwrap();
        assert!(out.get("generationConfig").is_none());
    }

    #[test]
    fn bad_values_name_the_param() {
        let m = json!([{"role": "user", "content": "x"}]);
        for (k, v) in [
            ("temperature", json!("hot")),
            ("max_tokens", json!(1.5)),
            ("stop", json!(3)),
            ("tool_choice", json!("sometimes")),
            ("response_format", json!({"type": "yaml"})),
        ] {
            let e = tr(json!({"messages": m, k: v})).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(k));
        }
        let e = tr(json!({"messages": [{"role": "wizard", "content": "x"}]})).unwrap_err();
        assert!(e.message.contains("messages[0].role"), "{}", e.message);
    }

    #[test]
    fn unknown_tool_call_id_is_a_clear_400() {
        let e = tr(json!({"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "{}"}]})).unwrap_err();
        assert!(e.message.contains("call_9"), "{}", e.message);
    }

    #[test]
    fn media_kinds() {
        assert_eq!(
            media("gs://b/a.PNG", None, "x").unwrap(),
            json!({"fileData": {"mimeType": "image/png", "fileUri": "gs://b/a.PNG"}})
        );
        assert_eq!(media("https://h/v.mp4?sig=1", None, "x").unwrap()["fileData"]["mimeType"], "video/mp4");
        assert_eq!(media("https://h/noext", None, "x").unwrap()["fileData"]["mimeType"], "image/jpeg");
        assert_eq!(
            media("https://h/a.bin", Some("application/pdf"), "x").unwrap()["fileData"]["mimeType"],
            "application/pdf"
        );
        assert!(media("data:image/png,abc", None, "x").is_err());
        assert!(media("ftp://x", None, "x").is_err());
    }
}
