//! The one pooled upstream client and how its failures become LiteLLM's errors.

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use sluice_providers::errors::{upstream_message, upstream_text};
use sluice_providers::{ExceptionClass, Provider};
use sluice_router::ErrorKind;
use sluice_wire::ApiError;
use std::time::Duration;

pub use super::pool::Client;

/// Keep-alive pooled client for every upstream: plain HTTP and TLS (HTTP/2 where offered).
pub fn client(connect_timeout: Duration) -> Client {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    Client::new(connector(http, rustls_config()), Duration::from_secs(90))
}

/// TCP by `http`, TLS by `tls` for https URLs, HTTP/2 offered by ALPN beside HTTP/1.1.
pub(super) fn connector(http: HttpConnector, tls: rustls::ClientConfig) -> HttpsConnector<HttpConnector> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

pub(super) fn rustls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The upstream could not be reached or answered too slowly.
pub fn transport_error(provider: &Provider, err: &super::pool::Error) -> ApiError {
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
