//! Anthropic's Messages API (`POST /v1/messages`), translated both ways.
//!
//! Outbound (an OpenAI client calling an `anthropic/…` deployment): [`chat_request`] builds the
//! Messages request, [`chat_response`] and [`ChatStream`] turn the answer back into OpenAI's
//! `chat.completion` and chunk stream, [`headers`] and [`error`] address and classify the call.
//!
//! Inbound (an Anthropic client at the gateway's `/v1/messages` front door, routed to any
//! OpenAI-format deployment): [`messages_to_openai`], [`openai_to_messages`], [`MessagesStream`]
//! and [`error_body`].
//!
//! The choices are LiteLLM's (`llms/anthropic/chat/transformation.py`, its exception mapping and
//! its `/v1/messages` adapter), so a client sees the same fields, finish reasons, token counts
//! and error classes it saw behind LiteLLM. This path works on `serde_json::Value`: it is not the
//! hot OpenAI passthrough, and a tree makes the many optional shapes easy to get right.

mod messages_api;
mod provider;
mod request;
mod response;
mod stream;

use serde_json::{json, Value};

use crate::errors::ExceptionClass;

pub use messages_api::{messages_to_openai, openai_to_messages, MessagesStream};
pub use provider::Anthropic;
pub use request::chat_request;
pub use response::chat_response;
pub(crate) use response::read_answer;
pub use stream::ChatStream;

/// The `anthropic-version` LiteLLM sends upstream; Anthropic requires the header on every call.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// LiteLLM's fallback when neither the client nor the model map gives a `max_tokens`, which the
/// Messages API requires.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// How [`chat_request`] treats what Anthropic cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// LiteLLM's `drop_params`: remove OpenAI parameters Anthropic has no equivalent for instead
    /// of refusing the request.
    pub drop_params: bool,
    /// `max_tokens` to send when the client sends neither `max_tokens` nor
    /// `max_completion_tokens`.
    pub default_max_tokens: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { drop_params: false, default_max_tokens: DEFAULT_MAX_TOKENS }
    }
}

/// A request or response that cannot be translated. `param` names the offending field (as an
/// OpenAI error's `param` does) when there is one; `message` says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub param: Option<String>,
    pub message: String,
}

impl TranslateError {
    pub(crate) fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError { param: Some(param.into()), message: message.into() }
    }

    pub(crate) fn upstream(message: impl Into<String>) -> Self {
        TranslateError { param: None, message: message.into() }
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}

/// Where Anthropic lives when a deployment names no `api_base`.
pub const DEFAULT_BASE: &str = "https://api.anthropic.com";
/// Environment variables LiteLLM reads for the base URL, in order.
pub const BASE_ENV: [&str; 2] = ["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"];
/// The environment variable LiteLLM reads for the key.
pub const KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// The Messages endpoint for a deployment, as LiteLLM builds it: `api_base` (else the env
/// variables, else Anthropic), with `/v1/messages` appended unless it already ends so. A query
/// string (some proxies in front of Anthropic take one) stays at the end.
pub fn url(api_base: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
    let base = match api_base.filter(|b| !b.is_empty()) {
        Some(b) => b.to_string(),
        None => BASE_ENV.iter().find_map(|v| env(v)).unwrap_or_else(|| DEFAULT_BASE.to_string()),
    };
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base.as_str(), None),
    };
    let path = path.trim_end_matches('/');
    let mut url = if path.ends_with("/v1/messages") { path.to_string() } else { format!("{path}/v1/messages") };
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The headers an Anthropic call needs besides `content-type`: the key and the API version.
pub fn headers(api_key: &str, version: Option<&str>) -> Vec<(&'static str, String)> {
    let version = version.filter(|v| !v.trim().is_empty()).unwrap_or(DEFAULT_VERSION);
    vec![("x-api-key", api_key.to_string()), ("anthropic-version", version.to_string())]
}

/// Classifies an Anthropic error answer the way LiteLLM's exception mapping does, returning the
/// status to send the client, LiteLLM's exception class name, and the upstream's own message
/// (without the `litellm.<Class>: AnthropicException - ` prefix, which the caller adds).
///
/// LiteLLM checks the text first ("prompt is too long" → context window, "overloaded_error" →
/// internal server error, …) and the status second. A 529 (overloaded) becomes
/// `InternalServerError` with status **500**, as in LiteLLM, not 503: clients and dashboards
/// that watch for LiteLLM's statuses keep working, and every SDK retries a 500 just the same.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let kind = err.and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or("");
    let message = match err.and_then(|e| e.get("message")).and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => crate::errors::upstream_text(body),
    };
    let text = |s: &str| message.contains(s) || kind == s;
    let class = if text("prompt is too long") || text("prompt: length") {
        ExceptionClass::ContextWindowExceeded
    } else if text("overloaded_error") {
        ExceptionClass::InternalServer
    } else if text("Invalid API Key") {
        ExceptionClass::Authentication
    } else if text("content filtering policy") {
        ExceptionClass::ContentPolicyViolation
    } else {
        match (status, kind) {
            (401, _) | (_, "authentication_error") => ExceptionClass::Authentication,
            (403, _) | (_, "permission_error") => ExceptionClass::PermissionDenied,
            (400 | 413, _) | (_, "invalid_request_error" | "request_too_large") => ExceptionClass::BadRequest,
            (404, _) | (_, "not_found_error") => ExceptionClass::NotFound,
            (408, _) => ExceptionClass::Timeout,
            (429, _) | (_, "rate_limit_error") => ExceptionClass::RateLimit,
            (500 | 529, _) | (_, "api_error") => ExceptionClass::InternalServer,
            (503, _) => ExceptionClass::ServiceUnavailable,
            (s, _) => ExceptionClass::from_status(s),
        }
    };
    let out_status = match class {
        ExceptionClass::BadRequest | ExceptionClass::ContextWindowExceeded | ExceptionClass::ContentPolicyViolation => {
            400
        }
        ExceptionClass::Authentication => 401,
        ExceptionClass::PermissionDenied => 403,
        ExceptionClass::NotFound => 404,
        ExceptionClass::Timeout => 408,
        ExceptionClass::RateLimit => 429,
        ExceptionClass::InternalServer if status == 529 || !(500..=599).contains(&status) => 500,
        ExceptionClass::ServiceUnavailable => 503,
        other => other.status(Some(status)),
    };
    (out_status, class.name(), message)
}

/// The Anthropic `error.type` for an HTTP status, per Anthropic's error documentation.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        // A gateway's 503 means "nothing can serve this now": Anthropic clients know that
        // condition as `overloaded_error` and back off accordingly.
        503 | 529 => "overloaded_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "api_error",
    }
}

/// An Anthropic error body for the front door: `{"type":"error","error":{"type","message"}}`.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type(status), "message": message } })
}

/// The same error as a complete SSE frame (`event: error`), for a failure after a
/// `/v1/messages` stream has started; the Anthropic SDKs raise on it.
pub fn error_frame(status: u16, message: &str) -> String {
    sse_frame("error", &error_body(status, message))
}

/// One Anthropic SSE frame. The `event:` line is not optional: the Python SDK skips frames
/// without one.
pub(crate) fn sse_frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Anthropic `stop_reason` → OpenAI `finish_reason` (LiteLLM's map; formats.md §13).
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "pause_turn" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, absent, and anything newer than this table.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`, for the front door.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Token counts from an Anthropic `usage` object, with LiteLLM's arithmetic:
/// `prompt_tokens = input_tokens + cache_creation_input_tokens + cache_read_input_tokens`
/// (Anthropic's `input_tokens` counts only the uncached part of the prompt).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: Option<u64>,
    pub cache_creation: Option<u64>,
}

impl Usage {
    /// Overwrites the counts `usage` carries; a stream's `message_delta` repeats only some.
    pub fn update(&mut self, usage: &Value) {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(v) = n("input_tokens") {
            self.input = v;
        }
        if let Some(v) = n("output_tokens") {
            self.output = v;
        }
        if let Some(v) = n("cache_read_input_tokens") {
            self.cache_read = Some(v);
        }
        if let Some(v) = n("cache_creation_input_tokens") {
            self.cache_creation = Some(v);
        }
    }

    pub fn prompt_tokens(&self) -> u64 {
        self.input.saturating_add(self.cache_read.unwrap_or(0)).saturating_add(self.cache_creation.unwrap_or(0))
    }

    /// OpenAI's `usage` object. The cache counts also appear under LiteLLM's own top-level
    /// names, which its spend tracking and some clients read.
    pub fn to_openai(self) -> Value {
        // Built member by member: `json!` takes each value through serde's serializer.
        let prompt = self.prompt_tokens();
        let mut details = serde_json::Map::new();
        details.insert("cached_tokens".into(), self.cache_read.unwrap_or(0).into());
        let mut usage = serde_json::Map::new();
        usage.insert("prompt_tokens".into(), prompt.into());
        usage.insert("completion_tokens".into(), self.output.into());
        usage.insert("total_tokens".into(), prompt.saturating_add(self.output).into());
        if let Some(c) = self.cache_creation {
            details.insert("cache_creation_tokens".into(), c.into());
            usage.insert("cache_creation_input_tokens".into(), c.into());
        }
        if let Some(r) = self.cache_read {
            usage.insert("cache_read_input_tokens".into(), r.into());
        }
        usage.insert("prompt_tokens_details".into(), Value::Object(details));
        Value::Object(usage)
    }
}

/// An id for a message the gateway makes up, when the upstream's answer carries none.
pub(crate) fn fresh_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:016x}{:08x}", nanos as u64, n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_default_the_version() {
        assert_eq!(
            headers("sk-ant-x", None),
            vec![("x-api-key", "sk-ant-x".to_string()), ("anthropic-version", "2023-06-01".to_string())]
        );
        assert_eq!(headers("k", Some("2026-10-21"))[1].1, "2026-10-21");
        assert_eq!(headers("k", Some(""))[1].1, "2023-06-01");
    }

    #[test]
    fn urls_like_litellm() {
        let none = |_: &str| None;
        assert_eq!(url(None, none), "https://api.anthropic.com/v1/messages");
        assert_eq!(url(Some("http://127.0.0.1:8090/"), none), "http://127.0.0.1:8090/v1/messages");
        assert_eq!(url(Some("http://h/v1/messages"), none), "http://h/v1/messages");
        assert_eq!(url(Some("http://h/proxy?k=1"), none), "http://h/proxy/v1/messages?k=1");
        let env = |v: &str| (v == "ANTHROPIC_BASE_URL").then(|| "http://env".to_string());
        assert_eq!(url(None, env), "http://env/v1/messages");
        assert_eq!(url(Some(""), env), "http://env/v1/messages");
    }

    #[test]
    fn finish_reasons_round_trip_where_they_can() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("pause_turn", "length"),
            ("model_context_window_exceeded", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("something_new", "stop"),
        ] {
            assert_eq!(finish_reason(Some(stop)), finish, "{stop}");
        }
        assert_eq!(finish_reason(None), "stop");
        for finish in ["stop", "length", "tool_calls", "content_filter"] {
            assert_eq!(finish_reason(Some(stop_reason(Some(finish)))), finish);
        }
    }

    #[test]
    fn usage_adds_cache_tokens_to_the_prompt() {
        let mut u = Usage::default();
        u.update(&json!({"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}));
        assert_eq!(u.prompt_tokens(), 115);
        let o = u.to_openai();
        assert_eq!(o["total_tokens"], 118);
        assert_eq!(o["prompt_tokens_details"]["cached_tokens"], 100);
        assert_eq!(o["cache_creation_input_tokens"], 5);
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(fresh_id("msg_"), fresh_id("msg_"));
        assert!(fresh_id("msg_").starts_with("msg_"));
    }
}
