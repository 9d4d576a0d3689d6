//! The one place an [`ApiError`] takes the shape a client sees: the JSON envelope of a refused
//! request, or the SSE frame that ends a stream already under way, in OpenAI's format or
//! Anthropic's (the `/v1/messages` front door). Every route renders its errors through here, so
//! the envelope, its content type and the error's own headers cannot drift apart between paths.

use crate::exchange::{Lines, Reply};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use sluice_wire::ApiError;

/// Whose error format a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `{"error":{"message","type","param","code"}}`, as LiteLLM renders it.
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`, as Anthropic's Messages API does.
    Anthropic,
}

/// An [`ApiError`] as an axum response (the management and model-list routes).
pub struct ErrorResponse(pub ApiError);

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        ErrorResponse(e)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// The error's JSON body.
pub fn json(e: &ApiError, flavour: Flavour) -> Bytes {
    match flavour {
        Flavour::OpenAi => Bytes::from(e.to_json()),
        Flavour::Anthropic => Bytes::from(sluice_providers::anthropic::error_body(e.status, &e.message).to_string()),
    }
}

/// The frame that ends a stream whose status (200) has gone out already.
pub fn sse_frame(e: &ApiError, flavour: Flavour) -> Bytes {
    match flavour {
        Flavour::OpenAi => Bytes::from(e.to_sse_frame()),
        Flavour::Anthropic => Bytes::from(sluice_providers::anthropic::error_frame(e.status, &e.message)),
    }
}

/// The reply to a refused request: the JSON envelope with the error's status and its headers
/// (`retry-after`, `connection: close`).
pub fn reply(e: &ApiError, flavour: Flavour) -> Reply {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut reply = Reply::whole(status, "application/json", [json(e, flavour), Bytes::new(), Bytes::new()]);
    // The Anthropic envelope has no place for them; LiteLLM's front door sends none either.
    if flavour == Flavour::OpenAi {
        for (name, value) in &e.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                reply.headers.insert(*name, v);
            }
        }
    }
    reply
}

/// [`reply`] in OpenAI's format, with `lines` (the call's `x-litellm-*` headers) added.
pub fn reply_with(e: &ApiError, lines: Lines) -> Reply {
    let mut reply = reply(e, Flavour::OpenAi);
    reply.lines = lines;
    reply
}

/// [`reply`] in OpenAI's format, as an axum response.
pub fn error_response(e: &ApiError) -> Response {
    reply(e, Flavour::OpenAi).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ReplyBody;

    /// One error of each class a client can meet, as LiteLLM names them.
    fn every_class() -> Vec<ApiError> {
        vec![
            ApiError::bad_request("Missing required field `model`.").param("model"),
            ApiError::new(401, "Authentication Error, No api key passed in.").kind("auth_error"),
            ApiError::new(403, "key not allowed").kind("key_model_access_denied"),
            ApiError::new(404, "The model `x` does not exist.").kind("not_found_error"),
            ApiError::new(408, "The request body was not received within 5 seconds.").kind("timeout"),
            ApiError::new(413, "Request size is too large.").kind("bad_request_error"),
            ApiError::new(429, "rate limited").header("retry-after", "7"),
            ApiError::new(500, "litellm.APIConnectionError: OpenAIException - Connection error."),
            ApiError::new(503, "no deployment"),
        ]
    }

    fn body(reply: &Reply) -> serde_json::Value {
        let ReplyBody::Whole(parts) = &reply.body else { panic!("an error's body is whole") };
        serde_json::from_slice(&parts.concat()).unwrap()
    }

    #[test]
    fn the_openai_envelope_carries_status_class_and_headers() {
        for e in every_class() {
            let reply = reply(&e, Flavour::OpenAi);
            assert_eq!(reply.status.as_u16(), e.status);
            assert_eq!(reply.headers["content-type"], "application/json");
            let v = body(&reply);
            assert_eq!(v["error"]["message"], e.message.as_str());
            assert_eq!(v["error"]["type"], e.kind.as_deref().unwrap_or("None"));
            assert_eq!(v["error"]["param"], e.param.as_deref().unwrap_or("None"));
            assert_eq!(v["error"]["code"], e.status.to_string());
            for (name, value) in &e.headers {
                assert_eq!(reply.headers[*name], value.as_str());
            }
            // The hyper adapter gives the same.
            let resp: Response = reply.into();
            assert_eq!(resp.status().as_u16(), e.status);
        }
    }

    #[test]
    fn the_anthropic_envelope_names_the_error_type() {
        for e in every_class() {
            let reply = reply(&e, Flavour::Anthropic);
            assert_eq!(reply.status.as_u16(), e.status);
            let v = body(&reply);
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["message"], e.message.as_str());
            assert_eq!(v["error"]["type"], sluice_providers::anthropic::error_type(e.status), "{v}");
            assert!(reply.headers.get("retry-after").is_none());
        }
    }

    #[test]
    fn sse_frames_end_a_stream_in_either_format() {
        for e in every_class() {
            let frame = sse_frame(&e, Flavour::OpenAi);
            let text = std::str::from_utf8(&frame).unwrap();
            let data = text.strip_prefix("data: ").and_then(|t| t.strip_suffix("\n\n")).expect(text);
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["error"]["code"], e.status.to_string());
            assert_eq!(v["error"]["message"], e.message.as_str());

            let frame = sse_frame(&e, Flavour::Anthropic);
            let text = std::str::from_utf8(&frame).unwrap();
            assert!(text.starts_with("event: error\n"), "{text:?}");
            assert!(text.ends_with("\n\n"), "{text:?}");
            let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect(text);
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["message"], e.message.as_str());
        }
    }
}
