//! The error envelope: `{"error":{"message","type","param","code"}}`, as LiteLLM renders it.
//!
//! LiteLLM always sends `code` as the HTTP status in a string, and often the literal string
//! `"None"` for `type` and `param`; clients that parse LiteLLM errors key off those strings, so
//! sluice reproduces them rather than "fixing" them.

use serde::Serialize;

/// An error as the client sees it: an HTTP status and the OpenAI-shaped body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// The `type` field. `None` renders as the string `"None"`, like LiteLLM.
    pub kind: Option<String>,
    /// The `param` field. `None` renders as the string `"None"`, like LiteLLM.
    pub param: Option<String>,
    /// Extra headers to send with the error (e.g. `retry-after`).
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: &'a str,
    code: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind: None, param: None, headers: Vec::new() }
    }

    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A 400 for a request the client must change before sending again.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message).kind("invalid_request_error")
    }

    /// The JSON body, `{"error":{...}}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Envelope { error: self.body() }).expect("error envelope serialises")
    }

    /// The body of an SSE error frame sent after a stream has started (status already 200).
    pub fn to_sse_frame(&self) -> String {
        format!("data: {}\n\n", self.to_json())
    }

    fn body(&self) -> Body<'_> {
        Body {
            message: &self.message,
            kind: self.kind.as_deref().unwrap_or("None"),
            param: self.param.as_deref().unwrap_or("None"),
            code: self.status.to_string(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_litellm_envelope_with_string_code_and_none_strings() {
        let e = ApiError::new(429, "slow down");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["message"], "slow down");
        assert_eq!(v["error"]["type"], "None");
        assert_eq!(v["error"]["param"], "None");
        assert_eq!(v["error"]["code"], "429");
    }

    #[test]
    fn escapes_messages() {
        let e = ApiError::bad_request("bad \"quote\"\n").param("model");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["message"], "bad \"quote\"\n");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert!(e.to_sse_frame().starts_with("data: {\"error\""));
        assert!(e.to_sse_frame().ends_with("\n\n"));
    }
}
