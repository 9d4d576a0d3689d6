//! The one pooled upstream client (`sluice_http`) and how its failures become LiteLLM's errors.

use sluice_providers::errors::{upstream_message, upstream_text};
use sluice_providers::{ExceptionClass, Provider};
use sluice_router::ErrorKind;
use sluice_wire::ApiError;
use std::time::Duration;

pub use sluice_http::client;
pub use sluice_http::pool::Client;

/// The upstream could not be reached or answered too slowly.
pub fn transport_error(provider: &Provider, err: &sluice_http::pool::Error) -> ApiError {
    let class = ExceptionClass::ApiConnection;
    let detail = if err.is_connect() {
        "Connection error: the upstream refused or did not accept the connection. Check the deployment's api_base and that the server is up.".to_string()
    } else if let Some(what) = err.malformed_answer() {
        format!("Connection error: the upstream's answer is not valid HTTP ({what}). Check that the deployment's api_base is the provider's API.")
    } else {
        "Connection error: the upstream closed the connection before answering.".to_string()
    };
    ApiError::new(class.status(None), upstream_message(class, provider, &detail))
}

pub fn timeout_error(provider: &Provider, after: Duration) -> ApiError {
    let class = ExceptionClass::Timeout;
    ApiError::new(
        class.status(None),
        upstream_message(
            class,
            provider,
            &format!(
                "Request timed out after {} seconds waiting for the upstream. Raise litellm_params.timeout (or stream_timeout) if the model needs longer.",
                after.as_secs_f64()
            ),
        ),
    )
    .kind("timeout")
}

/// A non-2xx upstream answer, passed through with its status inside LiteLLM's envelope, and the
/// router's class for it when the body says more than the status (context window, content
/// policy), which picks the fallback list.
pub fn status_error(provider: &Provider, status: u16, body: &[u8]) -> (ApiError, Option<ErrorKind>) {
    let text = upstream_text(body);
    let (class, kind) = match status {
        400 if is_context_window(&text, body) => {
            (ExceptionClass::ContextWindowExceeded, Some(ErrorKind::ContextWindowExceeded))
        }
        400 if is_content_policy(&text, body) => {
            (ExceptionClass::ContentPolicyViolation, Some(ErrorKind::ContentPolicyViolation))
        }
        s => (ExceptionClass::from_status(s), None),
    };
    let mut e = ApiError::new(class.status(Some(status)), upstream_message(class, provider, &text));
    if let Some(t) = class.error_type() {
        e = e.kind(t);
    }
    (e, kind)
}

/// LiteLLM's exception mapping looks for these phrases in OpenAI-format error bodies.
fn is_context_window(text: &str, body: &[u8]) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("maximum context length")
        || t.contains("context length") && t.contains("exceed")
        || contains(body, b"context_length_exceeded")
}

fn is_content_policy(text: &str, body: &[u8]) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("content management policy")
        || t.contains("content policy")
        || contains(body, b"content_policy_violation")
        || contains(body, b"content_filter")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A 2xx upstream answer that is not what the OpenAI format promises.
pub fn malformed_error(provider: &Provider, what: &str, body: &[u8]) -> ApiError {
    let tag = sluice_providers::errors::exception_tag(provider);
    if body.is_empty() {
        return ApiError::new(500, format!("litellm.APIError: {tag} - {what}"));
    }
    let preview = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    ApiError::new(500, format!("litellm.APIError: {tag} - {what}: {preview}"))
}
