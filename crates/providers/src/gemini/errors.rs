//! Google's error answers (`{"error":{"code","message","status"}}`, formats.md §2.7) classified
//! as LiteLLM classifies Vertex/Gemini failures.

use serde_json::Value;

use crate::errors::{upstream_text, ExceptionClass};

/// (HTTP status for the client, LiteLLM exception class name, the message to show).
///
/// The status passes through (429 stays 429 so SDK retries work); the message is Google's
/// `error.message`, or the body's text when it is not Google's shape. Two messages are
/// reclassified the way LiteLLM does: an over-long prompt is a `ContextWindowExceededError`
/// (so context-window fallbacks fire) and a blocked answer a `ContentPolicyViolationError`.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let google = parsed.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
    // A 200 carrying an error envelope (it happens mid-stream) is classified by its own code.
    let status = match (status, google.and_then(|e| e.get("code")).and_then(Value::as_u64)) {
        (s, Some(code)) if !(400..600).contains(&s) && (400..600).contains(&code) => code as u16,
        (s, _) => s,
    };
    let text = upstream_text(body);
    let lower = text.to_ascii_lowercase();
    let class = if (lower.contains("exceeds the maximum number of tokens")
        || lower.contains("request payload size exceeds")
        || (lower.contains("input token count") && lower.contains("exceeds")))
        && (400..500).contains(&status)
    {
        ExceptionClass::ContextWindowExceeded
    } else if lower.contains("the response was blocked") || lower.contains("output blocked") {
        ExceptionClass::ContentPolicyViolation
    } else {
        match (status, google.and_then(|e| e.get("status")).and_then(Value::as_str)) {
            // Some proxies answer quota errors with a generic status.
            (s, Some("RESOURCE_EXHAUSTED")) if !(400..500).contains(&s) || s == 400 => ExceptionClass::RateLimit,
            (s, _) => ExceptionClass::from_status(s),
        }
    };
    let out_status = match class {
        ExceptionClass::ContextWindowExceeded | ExceptionClass::ContentPolicyViolation => 400,
        ExceptionClass::RateLimit => 429,
        c => c.status(Some(status)),
    };
    let out_status = if (100..600).contains(&out_status) { out_status } else { 500 };
    (out_status, class.name(), text)
}
