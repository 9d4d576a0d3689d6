//! One finished model call in LiteLLM's `StandardLoggingPayload` shape (its `logging_spec`): the
//! JSON object every LiteLLM logging callback receives, so a collector built for LiteLLM reads
//! sluice's records unchanged.
//!
//! The strings a deployment serves with are shared (`Arc<str>`) rather than copied per record.
//! `messages` and `response` are slices of the bodies the request path already holds, written out
//! as the JSON they are (`crate::content`): no copy and no tree on the request path.

use serde::Serialize;
use std::sync::Arc;

/// What a record's `error_str` is under `redact_messages_in_exceptions`: LiteLLM's word for
/// what it redacts. Spans leave the exception's message out instead.
pub const REDACTED: &str = "redacted-by-litellm";

/// The most of an error message a record carries: enough to read, not a whole body.
pub const MAX_ERROR_STR: usize = 2_048;

/// `message`, cut to at most [`MAX_ERROR_STR`] bytes (on a character's boundary).
pub fn bounded_error(message: &str) -> String {
    let mut end = message.len().min(MAX_ERROR_STR);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// Whether the call succeeded: LiteLLM's `StandardLoggingPayloadStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failure,
}

/// `StandardLoggingPayload`. Field names are LiteLLM's, camelCase ones included.
#[derive(Debug, Serialize)]
pub struct LogRecord {
    /// sluice's id of the call (the `x-litellm-call-id` it answered with).
    pub id: String,
    /// The call id the client sent, else [`id`](Self::id).
    pub trace_id: String,
    pub call_type: &'static str,
    /// USD; 0 for a failure.
    pub response_cost: f64,
    pub status: Status,
    pub total_tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Unix seconds.
    #[serde(rename = "startTime")]
    pub start_time: f64,
    #[serde(rename = "endTime")]
    pub end_time: f64,
    /// When the answer began: a stream's first frame; for a whole answer its end (as LiteLLM).
    #[serde(rename = "completionStartTime")]
    pub completion_start_time: f64,
    /// Seconds from start to end.
    pub response_time: f64,
    /// The deployment's model (`litellm_params.model`).
    pub model: Arc<str>,
    pub model_id: Option<Arc<str>>,
    /// The model name the client asked for.
    pub model_group: Option<Arc<str>>,
    pub custom_llm_provider: Option<Arc<str>>,
    pub api_base: Option<Arc<str>>,
    pub metadata: Metadata,
    pub request_tags: Vec<String>,
    pub end_user: Option<String>,
    pub error_str: Option<String>,
    pub error_information: Option<ErrorInformation>,
    // Always the same values: part of the shape LiteLLM's readers expect.
    pub cache_hit: bool,
    pub cache_key: Option<()>,
    pub saved_cache_cost: f64,
    pub requester_ip_address: Option<()>,
    /// The request's messages (or prompt, or input) as it sent them, unless
    /// `turn_off_message_logging` (or too large to keep: [`crate::content`]).
    pub messages: Option<crate::content::Content>,
    /// The answer as the upstream gave it, for whole answers, on the same terms.
    pub response: Option<crate::content::Content>,
    pub model_parameters: Empty,
    pub hidden_params: HiddenParams,
    /// The calling key's or team's own Langfuse project (`metadata.logging`), resolved when the
    /// key loaded; not part of the payload.
    #[serde(skip)]
    pub langfuse: Option<Arc<crate::langfuse::OwnProject>>,
    /// The call's trace, when an OpenTelemetry sink runs ([`crate::otel`]); not part of
    /// LiteLLM's payload.
    #[serde(skip)]
    pub trace: Option<Box<crate::trace::Trace>>,
    /// What the request said for Langfuse (`metadata.trace_id`, `langfuse_*` headers, ...), as
    /// it sent it, for the Langfuse sinks to read ([`crate::request_metadata`]).
    #[serde(skip)]
    pub request_metadata: Option<Box<crate::request_metadata::Carried>>,
}

impl LogRecord {
    /// A request that failed before any deployment was tried (its key, its body, a limit), as
    /// LiteLLM logs its proxy-only errors to the failure callbacks: no model, no cost.
    #[allow(clippy::too_many_arguments)]
    pub fn refused(
        id: String,
        call_type: &'static str,
        start_time: f64,
        end_time: f64,
        error: ErrorInformation,
        error_str: String,
        model_group: Option<Arc<str>>,
        trace: Option<Box<crate::trace::Trace>>,
    ) -> LogRecord {
        LogRecord {
            trace_id: id.clone(),
            id,
            call_type,
            response_cost: 0.0,
            status: Status::Failure,
            total_tokens: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            start_time,
            end_time,
            completion_start_time: end_time,
            response_time: (end_time - start_time).max(0.0),
            model: "".into(),
            model_id: None,
            model_group,
            custom_llm_provider: None,
            api_base: None,
            metadata: Metadata::default(),
            request_tags: Vec::new(),
            end_user: None,
            error_str: Some(error_str),
            error_information: Some(error),
            cache_hit: false,
            cache_key: None,
            saved_cache_cost: 0.0,
            requester_ip_address: None,
            messages: None,
            response: None,
            model_parameters: Empty {},
            hidden_params: HiddenParams::default(),
            langfuse: None,
            trace,
            request_metadata: None,
        }
    }
}

/// `{}`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Empty {}

/// `StandardLoggingMetadata`: who called. Never the key itself, only its hash.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    pub user_api_key_hash: Option<Arc<str>>,
    pub user_api_key_alias: Option<String>,
    pub user_api_key_org_id: Option<String>,
    pub user_api_key_team_id: Option<String>,
    pub user_api_key_team_alias: Option<String>,
    pub user_api_key_user_id: Option<String>,
    pub user_api_key_end_user_id: Option<String>,
    pub spend_logs_metadata: Option<()>,
    pub requester_ip_address: Option<()>,
    pub requester_metadata: Option<()>,
}

/// `StandardLoggingPayloadErrorInformation`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInformation {
    /// The HTTP status, as text (LiteLLM's `"429"`).
    pub error_code: String,
    /// LiteLLM's exception class (`RateLimitError`, …).
    pub error_class: &'static str,
    pub llm_provider: Option<Arc<str>>,
}

/// `StandardLoggingHiddenParams`: the deployment again, as LiteLLM repeats it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HiddenParams {
    pub model_id: Option<Arc<str>>,
    pub api_base: Option<Arc<str>>,
    /// LiteLLM writes the cost here as text; written so when serialised (no string per record).
    #[serde(serialize_with = "float_as_text")]
    pub response_cost: Option<f64>,
    pub litellm_model_name: Option<Arc<str>>,
    pub cache_key: Option<()>,
    pub additional_headers: Option<()>,
}

fn float_as_text<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Unix microseconds as the float seconds LiteLLM writes.
pub fn unix_seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// A record for the crate's tests.
#[cfg(test)]
pub(crate) use tests::sample;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> LogRecord {
        LogRecord {
            id: "call-1".into(),
            trace_id: "call-1".into(),
            call_type: "acompletion",
            response_cost: 0.5,
            status: Status::Success,
            total_tokens: 3,
            prompt_tokens: 1,
            completion_tokens: 2,
            start_time: 1.5,
            end_time: 2.0,
            completion_start_time: 2.0,
            response_time: 0.5,
            model: "openai/gpt-4o".into(),
            model_id: Some("m1".into()),
            model_group: Some("gpt-4o".into()),
            custom_llm_provider: Some("openai".into()),
            api_base: None,
            metadata: Metadata { user_api_key_hash: Some("abc".into()), ..Default::default() },
            request_tags: vec!["t".into()],
            end_user: None,
            error_str: None,
            error_information: None,
            cache_hit: false,
            cache_key: None,
            saved_cache_cost: 0.0,
            requester_ip_address: None,
            messages: None,
            response: None,
            model_parameters: Empty {},
            hidden_params: HiddenParams::default(),
            trace: None,
            langfuse: None,
            request_metadata: None,
        }
    }

    /// The names a LiteLLM collector reads, with LiteLLM's spelling and JSON types.
    #[test]
    fn serialises_in_litellm_shape() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["status"], "success");
        assert_eq!(v["startTime"], 1.5);
        assert_eq!(v["completionStartTime"], 2.0);
        assert_eq!(v["metadata"]["user_api_key_hash"], "abc");
        assert!(v["messages"].is_null() && v["response"].is_null());
        assert_eq!(v["model_parameters"], serde_json::json!({}));
        assert_eq!(v["request_tags"], serde_json::json!(["t"]));
        let priced =
            LogRecord { hidden_params: HiddenParams { response_cost: Some(0.25), ..Default::default() }, ..sample() };
        assert_eq!(serde_json::to_value(priced).unwrap()["hidden_params"]["response_cost"], "0.25");
        let failed = LogRecord {
            status: Status::Failure,
            error_information: Some(ErrorInformation {
                error_code: "429".into(),
                error_class: "RateLimitError",
                llm_provider: None,
            }),
            ..sample()
        };
        let v = serde_json::to_value(failed).unwrap();
        assert_eq!(v["status"], "failure");
        assert_eq!(v["error_information"]["error_code"], "429");
    }
}
