//! Bedrock failures classified the way LiteLLM's Bedrock exception mapping does: the message text
//! first (context-window overflows hide inside `ValidationException`), then the AWS error type
//! (the `x-amzn-errortype` header, or `:exception-type` in a stream), then the HTTP status.
//! Like LiteLLM, a Bedrock 500 is reported as `ServiceUnavailableError` (503): both are retried
//! and cooled down alike, and clients that watched LiteLLM's statuses keep working.

use serde_json::Value;

use super::EventMessage;
use crate::errors::ExceptionClass;

/// Classifies a Bedrock error answer: returns the status to send the client, LiteLLM's exception
/// class name, and Bedrock's own message (without the `litellm.<Class>: BedrockException - `
/// prefix, which the caller adds). `error_type` is the `x-amzn-errortype` header as received
/// (`ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/` is fine).
pub fn error(status: u16, error_type: Option<&str>, body: &[u8]) -> (u16, &'static str, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(Value::as_str);
    let message = match field("message").or_else(|| field("Message")) {
        Some(m) => m.to_string(),
        None => crate::errors::upstream_text(body),
    };
    let kind = error_type.or_else(|| field("__type")).map(short_type).unwrap_or("");
    let class = classify(status, kind, &message);
    let out_status = match class {
        ExceptionClass::BadRequest | ExceptionClass::ContextWindowExceeded | ExceptionClass::ContentPolicyViolation => {
            400
        }
        ExceptionClass::Authentication => 401,
        ExceptionClass::PermissionDenied => 403,
        ExceptionClass::NotFound => 404,
        ExceptionClass::Timeout => 408,
        ExceptionClass::RateLimit => 429,
        ExceptionClass::ServiceUnavailable => 503,
        ExceptionClass::InternalServer if !(500..=599).contains(&status) => 500,
        other => other.status(Some(status)),
    };
    (out_status, class.name(), message)
}

/// The classification of an `exception` (or `error`) message inside a ConverseStream, which
/// arrives with HTTP 200 already sent; `None` for an ordinary event.
pub fn stream_exception(m: &EventMessage) -> Option<(u16, &'static str, String)> {
    match m.header(":message-type") {
        Some("exception") => {
            let kind = m.header(":exception-type").unwrap_or("");
            Some(error(500, Some(kind), &m.payload))
        }
        Some("error") => {
            let kind = m.header(":error-code").unwrap_or("");
            let message = m.header(":error-message").unwrap_or("the stream failed");
            let body = serde_json::json!({ "message": message }).to_string();
            Some(error(500, Some(kind), body.as_bytes()))
        }
        _ => None,
    }
}

/// `ns#ThrottlingException:http://…` → `ThrottlingException`.
fn short_type(t: &str) -> &str {
    let t = t.rsplit('#').next().unwrap_or(t);
    t.split(':').next().unwrap_or(t).trim()
}

fn classify(status: u16, kind: &str, message: &str) -> ExceptionClass {
    let lower = message.to_ascii_lowercase();
    let kind_l = kind.to_ascii_lowercase();
    let validation = kind_l.is_empty() || kind_l == "validationexception";
    if validation
        && status < 500
        && [
            "too long",
            "context length",
            "context window",
            "too many input tokens",
            "too many tokens",
            "expected maxlength",
            "prompt: length: 1..",
            "maximum context",
        ]
        .iter()
        .any(|s| lower.contains(s))
    {
        return ExceptionClass::ContextWindowExceeded;
    }
    if lower.contains("the security token included in the request is invalid") {
        return ExceptionClass::Authentication;
    }
    match kind_l.trim_end_matches("exception") {
        "throttling" | "servicequotaexceeded" | "modelnotready" | "toomanyrequests" => ExceptionClass::RateLimit,
        "accessdenied" => ExceptionClass::PermissionDenied,
        "unrecognizedclient"
        | "invalidsignature"
        | "incompletesignature"
        | "missingauthenticationtoken"
        | "expiredtoken" => ExceptionClass::Authentication,
        "resourcenotfound" => ExceptionClass::NotFound,
        "modeltimeout" => ExceptionClass::Timeout,
        "serviceunavailable" => ExceptionClass::ServiceUnavailable,
        // LiteLLM reports Bedrock's 500 (InternalServerException) as ServiceUnavailableError.
        "internalserver" => ExceptionClass::ServiceUnavailable,
        "modelerror" | "modelstreamerror" => ExceptionClass::InternalServer,
        "validation" => ExceptionClass::BadRequest,
        _ => match status {
            401 => ExceptionClass::Authentication,
            403 if lower.contains("missing authentication token") => ExceptionClass::Authentication,
            408 | 504 => ExceptionClass::Timeout,
            500 => ExceptionClass::ServiceUnavailable,
            424 => ExceptionClass::InternalServer,
            s => ExceptionClass::from_status(s),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_shortened() {
        assert_eq!(
            short_type("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "ThrottlingException"
        );
        assert_eq!(short_type("com.amazon.coral.service#UnrecognizedClientException"), "UnrecognizedClientException");
        assert_eq!(short_type("ValidationException"), "ValidationException");
    }
}
