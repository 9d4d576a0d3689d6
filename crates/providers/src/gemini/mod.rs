//! Google Gemini, through Vertex AI (`vertex_ai/…`, OAuth bearer tokens) and Google AI Studio
//! (`gemini/…`, `x-goog-api-key`): the pure translation between the OpenAI chat API the gateway
//! speaks and Gemini's `generateContent` / `streamGenerateContent?alt=sse`; and Vertex's Imagen
//! models behind `/images/generations` (`imagen`).
//!
//! Nothing here does I/O. The server picks the URL ([`vertex_url`], [`gemini_url`]), translates
//! the body ([`chat_request`]), and translates back what comes ([`chat_response`],
//! [`StreamTranslator`], [`error`]). The choices follow LiteLLM's (`formats.md` §2), so a client
//! moved from LiteLLM sees the same answers.

mod embed;
mod errors;
pub mod fast;
pub mod imagen;
mod provider;
mod request;
mod response;
mod schema;
mod stream;
mod tts;
mod url;

pub use errors::error;
pub use provider::Gemini;
pub(crate) use provider::VertexPlace;
pub use request::chat_request;
pub use response::chat_response;
pub use stream::StreamTranslator;
pub use url::{gemini_url, gemini_url_for, vertex_url, vertex_url_for};
pub(crate) use url::{vertex_resource_url, with_alt_sse};

/// How strictly a request is translated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// LiteLLM's `drop_params`: OpenAI parameters Gemini has no equivalent for are dropped instead
    /// of refused with a 400.
    pub drop_params: bool,
    /// Fold system/developer text into the first user turn instead of `systemInstruction`, for
    /// models without system-instruction support (LiteLLM decides this per model from its model
    /// map; `gemini-1.0-pro*` lacks it). Off by default.
    pub system_in_user_turn: bool,
}

/// A request or response that cannot be translated. `param` names the offending OpenAI parameter
/// when there is one, so the server can answer an OpenAI-shaped 400 with `param` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub param: Option<String>,
    pub message: String,
}

impl TranslateError {
    pub(crate) fn param(param: &str, message: impl Into<String>) -> Self {
        TranslateError { param: Some(param.to_string()), message: message.into() }
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        TranslateError { param: None, message: message.into() }
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}

impl From<crate::images::Refused> for TranslateError {
    fn from(r: crate::images::Refused) -> Self {
        TranslateError { param: r.param, message: r.message }
    }
}

/// OpenAI `finish_reason` for a Gemini `finishReason` (formats.md §13). Tool calls win over
/// whatever Gemini says, because Gemini reports `STOP` for a turn that ends in function calls.
pub(crate) fn finish_reason(gemini: Option<&str>, has_tool_calls: bool) -> &'static str {
    if has_tool_calls {
        return "tool_calls";
    }
    match gemini {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "OTHER" | "LANGUAGE"
            | "MODEL_ARMOR",
        ) => "content_filter",
        Some(r) if r.starts_with("IMAGE_") => "content_filter",
        // STOP, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, TOO_MANY_TOOL_CALLS, unknown.
        _ => "stop",
    }
}

/// A tool-call id for a Gemini `functionCall` that carries none. Derived from the response id
/// and the call's position so that a replayed response gets the same ids, while two responses
/// (two different `id`s) never share one — the id is how a later `tool` message finds its
/// function name again.
pub(crate) fn tool_call_id(response_id: &str, choice: usize, call: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut out = String::with_capacity(29);
    out.push_str("call_");
    for salt in 0u8..2 {
        let mut h = std::hash::DefaultHasher::new();
        (salt, response_id, choice, call).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish())[..12]);
    }
    out
}

/// OpenAI `usage` from Gemini `usageMetadata`, and the (prompt, completion) pair the gateway
/// meters. `None` when the metadata has no counts at all.
pub(crate) fn usage(meta: &serde_json::Value) -> Option<(serde_json::Value, u64, u64)> {
    let n = |k: &str| meta.get(k).and_then(serde_json::Value::as_u64);
    let prompt = n("promptTokenCount");
    let candidates = n("candidatesTokenCount");
    let total = n("totalTokenCount");
    if prompt.is_none() && candidates.is_none() && total.is_none() {
        return None;
    }
    let (prompt, candidates) = (prompt.unwrap_or(0), candidates.unwrap_or(0));
    let thoughts = n("thoughtsTokenCount");
    let tool_use = n("toolUsePromptTokenCount").unwrap_or(0);
    // Some models count thoughts inside candidatesTokenCount, others only in the total; LiteLLM
    // tells them apart by whether the parts without thoughts already add up to the total.
    // Counts are the upstream's: they saturate rather than overflow (the bill clamps them).
    let inclusive = total == Some(prompt.saturating_add(candidates).saturating_add(tool_use));
    let completion = candidates.saturating_add(if inclusive { 0 } else { thoughts.unwrap_or(0) });
    let total = total.unwrap_or(prompt.saturating_add(completion));
    let mut u = serde_json::json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total });
    if let Some(cached) = n("cachedContentTokenCount") {
        u["prompt_tokens_details"] = serde_json::json!({ "cached_tokens": cached });
    }
    if let Some(t) = thoughts {
        u["completion_tokens_details"] = serde_json::json!({ "reasoning_tokens": t });
    }
    Some((u, prompt, completion))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_follow_the_table() {
        assert_eq!(finish_reason(Some("STOP"), false), "stop");
        assert_eq!(finish_reason(Some("STOP"), true), "tool_calls");
        assert_eq!(finish_reason(Some("MAX_TOKENS"), false), "length");
        assert_eq!(finish_reason(Some("SAFETY"), false), "content_filter");
        assert_eq!(finish_reason(Some("IMAGE_SAFETY"), false), "content_filter");
        assert_eq!(finish_reason(Some("MALFORMED_FUNCTION_CALL"), false), "stop");
        assert_eq!(finish_reason(Some("SOMETHING_NEW"), false), "stop");
        assert_eq!(finish_reason(None, false), "stop");
    }

    #[test]
    fn tool_call_ids_are_stable_and_distinct() {
        let a = tool_call_id("chatcmpl-1", 0, 0);
        assert_eq!(a, tool_call_id("chatcmpl-1", 0, 0));
        assert_ne!(a, tool_call_id("chatcmpl-1", 0, 1));
        assert_ne!(a, tool_call_id("chatcmpl-2", 0, 0));
        assert!(a.starts_with("call_") && a.len() == 29, "{a}");
    }

    #[test]
    fn usage_counts_thoughts_once() {
        // Thoughts outside candidatesTokenCount: total = prompt + candidates + thoughts.
        let (u, p, c) = usage(&serde_json::json!({"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":7,"totalTokenCount":22})).unwrap();
        assert_eq!((p, c), (10, 12));
        assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 7);
        // Thoughts already inside candidatesTokenCount.
        let (_, _, c) = usage(&serde_json::json!({"promptTokenCount":10,"candidatesTokenCount":12,"thoughtsTokenCount":7,"totalTokenCount":22})).unwrap();
        assert_eq!(c, 12);
        assert!(usage(&serde_json::json!({})).is_none());
    }
}
