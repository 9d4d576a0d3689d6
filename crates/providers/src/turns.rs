//! Turning OpenAI's message list into the alternating user/assistant turns that Anthropic's
//! Messages API and Bedrock's Converse both require, with system messages lifted out. The
//! providers differ only in how each message becomes content blocks, which they pass in.

use serde_json::{json, Value};

/// What kind of OpenAI message a block builder is asked to convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `system` and `developer`: their blocks go to the top-level system prompt.
    System,
    User,
    Assistant,
    /// A tool result: sent in a user turn.
    Tool,
}

/// Splits `messages` into (system blocks, turns). `blocks` converts one message; `error` builds
/// the provider's error from (param, message). `provider` names the provider in messages.
pub(crate) fn split<E>(
    messages: &[Value],
    provider: &str,
    mut blocks: impl FnMut(Kind, &Value, usize) -> Result<Vec<Value>, E>,
    error: impl Fn(String, String) -> E,
) -> Result<(Vec<Value>, Vec<Value>), E> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| error(format!("messages[{i}].role"), format!("messages[{i}] needs a `role`")))?;
        let (role, kind) = match role {
            "system" | "developer" => {
                system.extend(blocks(Kind::System, m, i)?);
                continue;
            }
            "user" => ("user", Kind::User),
            "assistant" => ("assistant", Kind::Assistant),
            "tool" => ("user", Kind::Tool),
            other => {
                return Err(error(
                    format!("messages[{i}].role"),
                    format!(
                        "messages[{i}] has role {other:?}, which {provider} deployments do not take; use system, \
                         developer, user, assistant or tool"
                    ),
                ))
            }
        };
        let content = blocks(kind, m, i)?;
        if content.is_empty() {
            // An assistant turn with neither text nor tool calls carries nothing these APIs can
            // represent (they reject empty content); dropping it keeps the conversation sendable.
            if role == "assistant" {
                continue;
            }
            return Err(error(
                format!("messages[{i}].content"),
                format!("messages[{i}] has no content; {provider} rejects empty messages"),
            ));
        }
        // Turns must alternate: consecutive messages of one role (a tool result followed by the
        // user's next question, say) become one turn.
        match turns.last_mut() {
            Some((last, c)) if *last == role => c.extend(content),
            _ => turns.push((role, content)),
        }
    }
    let turns = turns.into_iter().map(|(role, content)| json!({ "role": role, "content": content })).collect();
    Ok((system, turns))
}

/// One tool call of an assistant message, read and checked.
pub(crate) struct ToolCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The arguments as a JSON object (OpenAI sends them as a string).
    pub input: Value,
}

/// The assistant message's `tool_calls`, each with an id, a name and JSON-object arguments.
pub(crate) fn tool_calls<'a, E>(
    m: &'a Value,
    i: usize,
    provider: &str,
    error: impl Fn(String, String) -> E,
) -> Result<Vec<ToolCall<'a>>, E> {
    let Some(calls) = m.get("tool_calls").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(calls.len());
    for (j, call) in calls.iter().enumerate() {
        let param = |s: &str| format!("messages[{i}].tool_calls[{j}]{s}");
        let f = call.get("function").ok_or_else(|| error(param(".function"), "a tool call needs `function`".into()))?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        let id = call.get("id").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || id.is_empty() {
            return Err(error(param(""), format!("{} needs an `id` and a `function.name`", param(""))));
        }
        let input = match f.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(s)) if s.trim().is_empty() => json!({}),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|e| {
                error(
                    param(".function.arguments"),
                    format!(
                        "{} is not valid JSON ({e}); {provider} needs the tool input as a JSON object",
                        param(".function.arguments")
                    ),
                )
            })?,
            Some(v) => v.clone(),
        };
        out.push(ToolCall { id, name, input });
    }
    Ok(out)
}
