//! Upstream failures classified the way LiteLLM classifies them, so clients (and, later, the
//! router's cooldown and retry rules) see the same exception classes and statuses.

use crate::catalogue::Provider;
use sluice_wire::ApiError;

/// LiteLLM's exception classes (litellm/exceptions.py) and the status each is reported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionClass {
    BadRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    Timeout,
    Conflict,
    UnprocessableEntity,
    RateLimit,
    InternalServer,
    ApiConnection,
    BadGateway,
    ServiceUnavailable,
    ContextWindowExceeded,
    ContentPolicyViolation,
}

impl ExceptionClass {
    /// The class LiteLLM raises for an upstream HTTP status.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => ExceptionClass::BadRequest,
            401 => ExceptionClass::Authentication,
            403 => ExceptionClass::PermissionDenied,
            404 => ExceptionClass::NotFound,
            408 => ExceptionClass::Timeout,
            409 => ExceptionClass::Conflict,
            422 => ExceptionClass::UnprocessableEntity,
            429 => ExceptionClass::RateLimit,
            502 => ExceptionClass::BadGateway,
            503 => ExceptionClass::ServiceUnavailable,
            s if (400..500).contains(&s) => ExceptionClass::BadRequest,
            _ => ExceptionClass::InternalServer,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ExceptionClass::BadRequest => "BadRequestError",
            ExceptionClass::Authentication => "AuthenticationError",
            ExceptionClass::PermissionDenied => "PermissionDeniedError",
            ExceptionClass::NotFound => "NotFoundError",
            ExceptionClass::Timeout => "Timeout",
            ExceptionClass::Conflict => "ConflictError",
            ExceptionClass::UnprocessableEntity => "UnprocessableEntityError",
            ExceptionClass::RateLimit => "RateLimitError",
            ExceptionClass::InternalServer => "InternalServerError",
            ExceptionClass::ApiConnection => "APIConnectionError",
            ExceptionClass::BadGateway => "BadGatewayError",
            ExceptionClass::ServiceUnavailable => "ServiceUnavailableError",
            ExceptionClass::ContextWindowExceeded => "ContextWindowExceededError",
            ExceptionClass::ContentPolicyViolation => "ContentPolicyViolationError",
        }
    }

    /// The `type` field LiteLLM puts in the error body for this class.
    pub fn error_type(self) -> Option<&'static str> {
        match self {
            ExceptionClass::RateLimit => Some("throttling_error"),
            ExceptionClass::BadRequest
            | ExceptionClass::UnprocessableEntity
            | ExceptionClass::ContextWindowExceeded
            | ExceptionClass::ContentPolicyViolation => Some("invalid_request_error"),
            ExceptionClass::Authentication => Some("auth_error"),
            ExceptionClass::NotFound => Some("not_found_error"),
            ExceptionClass::Timeout => Some("timeout"),
            _ => None,
        }
    }

    /// The status sent to the client.
    pub fn status(self, upstream_status: Option<u16>) -> u16 {
        match self {
            ExceptionClass::ApiConnection => 500,
            ExceptionClass::Timeout => 408,
            _ => upstream_status.unwrap_or(500),
        }
    }
}

/// The `<Provider>Exception` tag LiteLLM puts before an upstream's message.
pub fn exception_tag(provider: &Provider) -> String {
    match provider.name {
        "openai" | "text-completion-openai" | "custom_openai" | "openai_like" => "OpenAIException".to_string(),
        "vertex_ai" | "vertex_ai_beta" => "VertexAIException".to_string(),
        "anthropic" => "AnthropicException".to_string(),
        "ollama" | "ollama_chat" => "OllamaException".to_string(),
        "cohere" | "cohere_chat" => "CohereException".to_string(),
        "azure_text" => "AzureException".to_string(),
        name => {
            let mut chars = name.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or_default();
            format!("{first}{}Exception", chars.as_str())
        }
    }
}

/// The message LiteLLM shows for an upstream failure: `litellm.<Class>: <Provider>Exception - <text>`.
pub fn upstream_message(class: ExceptionClass, provider: &Provider, text: &str) -> String {
    format!("litellm.{}: {} - {}", class.name(), exception_tag(provider), text)
}

/// The human part of an upstream error body: the `error.message` of an OpenAI envelope, the
/// `detail` of a FastAPI error, a string `error`, or the body itself (cut to a readable length).
pub fn upstream_text(body: &[u8]) -> String {
    if let Some(message) = sluice_wire::sniff::error_message(body) {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "upstream returned an empty body".to_string();
    }
    truncate(text, 2000)
}

/// A 2xx upstream answer that is not what the provider's format promises.
pub fn malformed(provider: &Provider, what: &str, body: &[u8]) -> ApiError {
    let tag = exception_tag(provider);
    if body.is_empty() {
        return ApiError::new(500, format!("litellm.APIError: {tag} - {what}"));
    }
    let preview = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    ApiError::new(500, format!("litellm.APIError: {tag} - {what}: {preview}"))
}

/// A provider's own classification of an error answer — `(status, class name, text)` — as the
/// error the client sees. A 429 carries LiteLLM's `throttling_error` type.
pub fn classified(provider: &Provider, (status, class, text): (u16, &str, String)) -> ApiError {
    let api = ApiError::new(status, format!("litellm.{class}: {} - {text}", exception_tag(provider)));
    if status == 429 {
        return api.kind("throttling_error");
    }
    api
}

/// A credential the provider needs could not be obtained (Vertex's token exchange).
pub fn auth_failed(provider: &Provider, text: &str) -> ApiError {
    ApiError::new(401, upstream_message(ExceptionClass::Authentication, provider, text)).kind("auth_error")
}

/// A non-2xx answer from an OpenAI-format upstream, with the class LiteLLM's exception mapping
/// gives it: the body's text decides context-window and content-policy 400s, the status the rest.
pub fn openai_class(status: u16, body: &[u8]) -> (ExceptionClass, String) {
    let text = upstream_text(body);
    let class = match status {
        400 if is_context_window(&text, body) => ExceptionClass::ContextWindowExceeded,
        400 if is_content_policy(&text, body) => ExceptionClass::ContentPolicyViolation,
        s => ExceptionClass::from_status(s),
    };
    (class, text)
}

/// An error body in OpenAI's shape (or a plain `{"error": "…"}`, `{"detail"}`), classified as
/// LiteLLM classifies OpenAI's and tagged with `provider`'s exception name.
pub fn openai_shaped(provider: &Provider, status: u16, body: &[u8]) -> ApiError {
    let (class, text) = openai_class(status, body);
    classified(provider, (class.status(Some(status)), class.name(), text))
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

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::lookup;

    #[test]
    fn classes_match_litellm() {
        assert_eq!(ExceptionClass::from_status(429).name(), "RateLimitError");
        assert_eq!(ExceptionClass::from_status(404).name(), "NotFoundError");
        assert_eq!(ExceptionClass::from_status(418).name(), "BadRequestError");
        assert_eq!(ExceptionClass::from_status(599).name(), "InternalServerError");
        assert_eq!(ExceptionClass::ApiConnection.status(None), 500);
        assert_eq!(ExceptionClass::Timeout.status(None), 408);
    }

    #[test]
    fn messages_name_provider_and_upstream_text() {
        let openai = lookup("openai").unwrap();
        let groq = lookup("groq").unwrap();
        assert_eq!(
            upstream_message(ExceptionClass::RateLimit, &openai, "slow down"),
            "litellm.RateLimitError: OpenAIException - slow down"
        );
        assert_eq!(exception_tag(&groq), "GroqException");
        assert_eq!(upstream_text(br#"{"error":{"message":"nope","type":"x"}}"#), "nope");
        assert_eq!(upstream_text(br#"{"detail":"Too many requests"}"#), "Too many requests");
        assert_eq!(
            upstream_text(br#"{"error":"Rate limit exceeded: 10 per 1 minute"}"#),
            "Rate limit exceeded: 10 per 1 minute"
        );
        assert_eq!(upstream_text(b"  plain text "), "plain text");
        assert_eq!(upstream_text(b""), "upstream returned an empty body");
    }
}
