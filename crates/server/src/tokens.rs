//! Counting tokens when an upstream reports no usage, the way LiteLLM does: tiktoken, o200k for
//! OpenAI's newer models and cl100k for everything else, plus the cookbook's per-message overhead.
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
    fn picks_encoding_by_model() {
        assert!(std::ptr::eq(encoding_for("gpt-4o-mini"), tiktoken_rs::o200k_base_singleton()));
        assert!(std::ptr::eq(encoding_for("openai/fake"), tiktoken_rs::cl100k_base_singleton()));
    }
}
