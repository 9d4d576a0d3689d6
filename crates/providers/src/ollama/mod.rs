//! Ollama through its native API, as LiteLLM calls it: `ollama/…` deployments chat through
//! `/api/generate` (the messages flattened into one prompt), `ollama_chat/…` through
//! `/api/chat`, and both embed through `/api/embed`. Streams are newline-delimited JSON
//! ([`crate::ndjson`]), translated line by line into OpenAI chunks ([`StreamTranslator`]).
//!
//! Nothing here does I/O: [`Ollama`] describes each request and reads the bytes that come back.
//! `api_base` defaults to `OLLAMA_API_BASE`, then `http://localhost:11434`; `api_key` (or
//! `OLLAMA_API_KEY`) is sent as a bearer token, for Ollama behind an authenticating proxy.

mod provider;
mod request;
mod response;
mod stream;

pub use provider::Ollama;
pub use request::{chat_request, embed_request, generate_request};
pub use response::{chat_response, embed_response, generate_response};
pub use stream::StreamTranslator;

use crate::errors::openai_class;

/// Where Ollama listens when neither the deployment nor `OLLAMA_API_BASE` says.
pub const DEFAULT_BASE: &str = "http://localhost:11434";

/// The base a deployment calls: `api_base`, else `OLLAMA_API_BASE`, else Ollama's default.
pub fn base(api_base: Option<&str>, env: crate::provider::Env<'_>) -> String {
    api_base
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .or_else(|| env("OLLAMA_API_BASE"))
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

/// A non-2xx answer (`{"error": "…"}`) classified as LiteLLM classifies an `OllamaError`: by
/// its status, with OpenAI's context-window and content-policy phrases.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let (class, text) = openai_class(status, body);
    (class.status(Some(status)), class.name(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_ollamas_text_and_litellms_class() {
        let (status, class, text) = error(404, br#"{"error":"model \"llama9\" not found, try pulling it first"}"#);
        assert_eq!((status, class), (404, "NotFoundError"));
        assert_eq!(text, "model \"llama9\" not found, try pulling it first");
        assert_eq!(error(500, b"").1, "InternalServerError");
        assert_eq!(error(429, br#"{"error":"busy"}"#).1, "RateLimitError");
    }

    #[test]
    fn the_base_comes_from_the_deployment_then_the_environment() {
        let none = |_: &str| None;
        assert_eq!(base(None, &none), "http://localhost:11434");
        let env = |k: &str| (k == "OLLAMA_API_BASE").then(|| "http://gpu:11434".to_string());
        assert_eq!(base(None, &env), "http://gpu:11434");
        assert_eq!(base(Some("http://x:1"), &env), "http://x:1");
    }
}
