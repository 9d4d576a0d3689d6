//! Cohere through its v2 API, as LiteLLM calls it for `cohere_chat/…` (and `cohere/…`) chat
//! models: `/v2/chat` (SSE streams of typed events), `/v2/embed`, and `/v2/rerank` for the
//! gateway's `/rerank` routes. Nothing here does I/O.
//! `api_base` defaults to `COHERE_API_BASE`, then `https://api.cohere.com`; the key is
//! `api_key`, `COHERE_API_KEY` or `CO_API_KEY`, sent as a bearer token.

mod provider;
mod request;
mod rerank;
mod response;
mod stream;

pub use provider::Cohere;
pub use request::{chat_request, embed_request};
pub use rerank::{rerank_request, rerank_response, search_units};
pub use response::{chat_response, embed_response};
pub use stream::StreamTranslator;

use crate::errors::{upstream_text, ExceptionClass};

pub const DEFAULT_BASE: &str = "https://api.cohere.com";

/// The base a deployment calls: `api_base`, else `COHERE_API_BASE`, else Cohere's own.
pub fn base(api_base: Option<&str>, env: crate::provider::Env<'_>) -> String {
    api_base
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .or_else(|| env("COHERE_API_BASE"))
        .unwrap_or_else(|| DEFAULT_BASE.to_string())
}

/// A request or answer that cannot be translated; `param` names the OpenAI parameter at fault.
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

/// A non-2xx answer (`{"message": "…"}`) in LiteLLM's classes; a context that is too long is
/// `ContextWindowExceededError`, as LiteLLM's mapping finds it in the text.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| upstream_text(body));
    let lower = text.to_ascii_lowercase();
    let class = if status == 400 && (lower.contains("too many tokens") || lower.contains("context length")) {
        ExceptionClass::ContextWindowExceeded
    } else {
        ExceptionClass::from_status(status)
    };
    (class.status(Some(status)), class.name(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_cohere_message_field() {
        assert_eq!(
            error(401, br#"{"id":"x","message":"invalid api token"}"#),
            (401, "AuthenticationError", "invalid api token".into())
        );
        assert_eq!(error(429, br#"{"message":"slow down"}"#).1, "RateLimitError");
        assert_eq!(error(400, br#"{"message":"too many tokens: 9999"}"#).1, "ContextWindowExceededError");
    }
}
