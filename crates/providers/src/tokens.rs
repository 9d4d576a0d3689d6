//! Counting tokens when an upstream reports no usage, the way LiteLLM does: tiktoken, o200k for
//! OpenAI's newer models and cl100k for everything else, plus the cookbook's per-message overhead.
//! The one estimator: the server's stream relays and `/v1/messages/count_tokens`, translated chat
//! answers and the embeddings of providers that count nothing (`embedding::estimated_tokens`)
//! all count here.
//!
//! A chat answer whose provider reported no usage (Triton; Workers AI, Replicate and Azure's text
//! completions at times) or only one side of it (TGI's generated tokens without the prompt's) is
//! given LiteLLM's stand-in ([`fill_chat_usage`]): the missing side counted here, so the answer's
//! `usage`, the bill and the budgets see the call. Providers that report both are never
//! tokenized.
//!
//! The BPE tables are built on first use, not at start-up: each costs tens of megabytes of
//! resident memory, and most deployments report usage themselves so the tables are never needed.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use tiktoken_rs::CoreBPE;

/// The encoding LiteLLM would use for `model`.
pub fn encoding_for(model: &str) -> &'static CoreBPE {
    let m = model.rsplit('/').next().unwrap_or(model);
    let o200k =
        ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"].iter().any(|p| m.starts_with(p));
    if o200k {
        tiktoken_rs::o200k_base_singleton()
    } else {
        tiktoken_rs::cl100k_base_singleton()
    }
}

pub fn count_text(bpe: &CoreBPE, text: &str) -> u64 {
    bpe.encode_with_special_tokens(text).len() as u64
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// Prompt tokens of a chat `messages` array: 3 per message, +1 with a name, 3 to prime the reply.
pub fn count_messages(bpe: &CoreBPE, messages: &str) -> u64 {
    let Ok(list) = serde_json::from_str::<Vec<Message<'_>>>(messages) else {
        return count_text(bpe, messages);
    };
    let mut total = 3;
    for m in list {
        total += 3;
        if let Some(r) = m.role {
            total += count_text(bpe, &r);
        }
        if let Some(n) = m.name {
            total += 1 + count_text(bpe, &n);
        }
        if let Some(c) = m.content {
            total += count_content(bpe, c);
        }
    }
    total
}

fn count_content(bpe: &CoreBPE, content: &RawValue) -> u64 {
    if let Ok(s) = serde_json::from_str::<Cow<'_, str>>(content.get()) {
        return count_text(bpe, &s);
    }
    if let Ok(parts) = serde_json::from_str::<Vec<Part<'_>>>(content.get()) {
        return parts.iter().filter_map(|p| p.text.as_deref()).map(|t| count_text(bpe, t)).sum();
    }
    0
}

/// Prompt tokens of a completions `prompt` (a string or a list of strings).
pub fn count_prompt(bpe: &CoreBPE, prompt: &str) -> u64 {
    if let Ok(s) = serde_json::from_str::<Cow<'_, str>>(prompt) {
        return count_text(bpe, &s);
    }
    if let Ok(list) = serde_json::from_str::<Vec<Cow<'_, str>>>(prompt) {
        return list.iter().map(|s| count_text(bpe, s)).sum();
    }
    0
}

/// The usage LiteLLM gives a chat answer whose provider left a side of it out (0 or absent):
/// the prompt as the request's `messages` with the cookbook's overhead (`token_counter`), the
/// completion as the answer's `generated` text, each on `model`'s encoding. `None` when the
/// provider reported both sides, so nothing is tokenized.
pub fn fill_chat_usage(
    reported: Option<(u64, u64)>,
    request: &[u8],
    model: &str,
    generated: &str,
) -> Option<(u64, u64)> {
    let (prompt, completion) = reported.unwrap_or((0, 0));
    if prompt > 0 && completion > 0 {
        return None;
    }
    let bpe = encoding_for(model);
    let prompt = match prompt {
        0 => sluice_wire::sniff::request(request, sluice_wire::sniff::Endpoint::Chat)
            .ok()
            .and_then(|view| view.messages)
            .map_or(0, |m| count_messages(bpe, m)),
        p => p,
    };
    let completion = match completion {
        0 => count_text(bpe, generated),
        c => c,
    };
    Some((prompt, completion))
}

/// The text a chat answer generated, as counted for its estimate: each choice's content and its
/// tool calls' names and arguments.
pub fn answer_text(answer: &serde_json::Value) -> String {
    let mut text = String::new();
    for choice in answer.get("choices").and_then(serde_json::Value::as_array).into_iter().flatten() {
        if let Some(message) = choice.get("message") {
            push_generated(&mut text, message);
        }
    }
    text
}

/// Appends what a chat message or a stream chunk's `delta` generated to `text`.
pub fn push_generated(text: &mut String, message: &serde_json::Value) {
    if let Some(content) = message.get("content").and_then(serde_json::Value::as_str) {
        text.push_str(content);
    }
    for call in message.get("tool_calls").and_then(serde_json::Value::as_array).into_iter().flatten() {
        let f = &call["function"];
        for part in [&f["name"], &f["arguments"]] {
            if let Some(s) = part.as_str() {
                text.push_str(s);
            }
        }
    }
}

/// Sets `usage`'s three counts to `(prompt, completion)`, keeping any other member it has.
pub fn set_usage(usage: &mut serde_json::Value, (prompt, completion): (u64, u64)) {
    if !usage.is_object() {
        *usage = serde_json::json!({});
    }
    usage["prompt_tokens"] = prompt.into();
    usage["completion_tokens"] = completion.into();
    usage["total_tokens"] = (prompt + completion).into();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_the_cookbook() {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        // 3 priming + 3 per message + "user" (1) + "Hello world" (2)
        assert_eq!(count_messages(bpe, r#"[{"role":"user","content":"Hello world"}]"#), 9);
        assert_eq!(count_messages(bpe, r#"[{"role":"user","content":[{"type":"text","text":"Hello world"}]}]"#), 9);
        assert_eq!(count_prompt(bpe, r#"["Hello world","Hello"]"#), 3);
    }

    #[test]
    fn fills_only_the_side_the_provider_left_out() {
        let req = br#"{"model":"m","messages":[{"role":"user","content":"Hello world"}]}"#;
        // Nothing reported (Triton): both counted, the prompt as `token_counter` counts it.
        assert_eq!(fill_chat_usage(None, req, "triton/m", "Hello world"), Some((9, 2)));
        // TGI without `prefill`: its generated count kept, the prompt counted.
        assert_eq!(fill_chat_usage(Some((0, 7)), req, "predibase/m", "Hello world"), Some((9, 7)));
        // Both reported: nothing is tokenized.
        assert_eq!(fill_chat_usage(Some((3, 4)), req, "m", "Hello world"), None);
        // A body that is not a chat request counts no prompt rather than failing the answer.
        assert_eq!(fill_chat_usage(None, b"not json", "m", ""), Some((0, 0)));
    }

    #[test]
    fn the_generated_text_includes_tool_calls() {
        let answer = serde_json::json!({"choices": [{"message": {"content": "Hi", "tool_calls": [
            {"function": {"name": "f", "arguments": "{}"}}]}}]});
        assert_eq!(answer_text(&answer), "Hif{}");
        let mut usage = serde_json::json!({"prompt_tokens": 0, "completion_tokens_details": {"reasoning_tokens": 0}});
        set_usage(&mut usage, (2, 3));
        assert_eq!(usage["total_tokens"], 5);
        assert!(usage.get("completion_tokens_details").is_some());
    }

    #[test]
    fn picks_encoding_by_model() {
        assert!(std::ptr::eq(encoding_for("gpt-4o-mini"), tiktoken_rs::o200k_base_singleton()));
        assert!(std::ptr::eq(encoding_for("openai/fake"), tiktoken_rs::cl100k_base_singleton()));
    }
}
