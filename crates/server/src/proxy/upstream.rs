//! The one pooled upstream client (`sluice_http`) and how its failures become LiteLLM's errors.

use sluice_providers::errors::upstream_message;
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
/// policy), which picks the fallback list. The classing is the OpenAI provider's
/// ([`sluice_providers::errors::openai_class`]).
pub fn status_error(provider: &Provider, status: u16, body: &[u8]) -> (ApiError, Option<ErrorKind>) {
    let (class, text) = sluice_providers::errors::openai_class(status, body);
    let kind = match class {
        ExceptionClass::ContextWindowExceeded => Some(ErrorKind::ContextWindowExceeded),
        ExceptionClass::ContentPolicyViolation => Some(ErrorKind::ContentPolicyViolation),
        _ => None,
    };
    let mut e = ApiError::new(class.status(Some(status)), upstream_message(class, provider, &text));
    if let Some(t) = class.error_type() {
        e = e.kind(t);
    }
    (e, kind)
}

/// A 2xx upstream answer that is not what the provider's format promises.
pub use sluice_providers::errors::malformed as malformed_error;
