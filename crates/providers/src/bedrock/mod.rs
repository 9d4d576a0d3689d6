//! AWS Bedrock (`bedrock/…` deployments): chat through the Converse API — the pure translation
//! between the OpenAI chat API the gateway speaks and Bedrock's `/model/{id}/converse` and
//! `/model/{id}/converse-stream` (formats.md §6) —, embeddings through InvokeModel
//! (`/model/{id}/invoke`, [`embed`]), plus what it takes to address and authenticate the call.
//!
//! Nothing here does I/O. The server builds the URL ([`converse_url`]), the body
//! ([`converse_request`]), signs the serialized body ([`sign`], AWS SigV4 for service `bedrock`)
//! or sends a Bedrock API key as `Authorization: Bearer`, and translates back what comes:
//! [`converse_response`] for a JSON answer, [`EventStreamDecoder`] + [`StreamTranslator`] for the
//! binary `application/vnd.amazon.eventstream` a stream answers with (it is not SSE), and
//! [`error`] for a failure. The choices follow LiteLLM's Bedrock Converse handler so a client
//! moved from LiteLLM sees the same fields, finish reasons, token counts and error classes.
//!
//! Bedrock's image models (Titan, Nova Canvas, Stability) answer `/images/generations` through
//! InvokeModel (`image`).

pub mod embed;
mod errors;
mod eventstream;
pub mod image;
mod provider;
mod request;
mod response;
mod stream;

pub use errors::{error, stream_exception};
pub use eventstream::{encode_event, EventMessage, EventStreamDecoder};
pub use provider::Bedrock;
pub use request::converse_request;
pub use response::converse_response;
pub use sluice_sigv4::Credentials;
pub use stream::StreamTranslator;

use serde_json::Value;

/// The content type of a ConverseStream answer: AWS's binary event-stream framing.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The environment variable holding a Bedrock API key (sent as `Authorization: Bearer <key>`
/// instead of a SigV4 signature).
pub const BEARER_TOKEN_ENV: &str = "AWS_BEARER_TOKEN_BEDROCK";

/// A deployment's AWS credentials: its `aws_*` settings, then the AWS credential chain (read
/// through `env`). Keys and role settings that cannot work together stop the deployment here.
pub fn credentials(
    p: &crate::provider::Params<'_>,
    env: crate::provider::Env<'_>,
    region: &str,
) -> Result<std::sync::Arc<sluice_credentials::aws::AwsCredentials>, String> {
    let path = p.path();
    let keys = match (p.aws_access_key_id, p.aws_secret_access_key) {
        (Some(id), Some(secret)) => Some(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: p.aws_session_token.map(str::to_string),
        }),
        (None, None) => None,
        _ => {
            return Err(format!("{path}: aws_access_key_id and aws_secret_access_key go together; set both, or neither to use the AWS credential chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, web identity, ECS, EC2)"))
        }
    };
    if p.aws_web_identity_token.is_some() && p.aws_role_name.is_none() {
        return Err(format!("{path}.aws_web_identity_token: set aws_role_name, the role to assume with it"));
    }
    let settings = sluice_credentials::aws::Settings {
        keys,
        profile: p.aws_profile_name.map(str::to_string),
        role_arn: p.aws_role_name.map(str::to_string),
        session_name: p.aws_session_name.map(str::to_string),
        web_identity_token: p.aws_web_identity_token.map(str::to_string),
        sts_endpoint: p.aws_sts_endpoint.map(str::to_string),
        region: Some(region.to_string()),
    };
    Ok(sluice_credentials::aws::shared(settings, sluice_credentials::Env::capture(env)))
}

/// How strictly a request is translated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// LiteLLM's `drop_params`: OpenAI parameters Converse has no equivalent for are dropped
    /// instead of refused with a 400.
    pub drop_params: bool,
}

/// A request or response that cannot be translated. `param` names the offending OpenAI parameter
/// when there is one, so the server can answer an OpenAI-shaped 400 with `param` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub param: Option<String>,
    pub message: String,
}

impl TranslateError {
    pub(crate) fn param(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError { param: Some(param.into()), message: message.into() }
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        TranslateError { param: None, message: message.into() }
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}

impl From<crate::images::Refused> for TranslateError {
    fn from(r: crate::images::Refused) -> Self {
        TranslateError { param: r.param, message: r.message }
    }
}

/// The upstream model id a deployment's model names: LiteLLM accepts `bedrock/converse/<id>` and
/// `bedrock/invoke/<id>` to pick Bedrock's route, and the route marker is not part of the id.
/// Whatever the marker, chat goes through Converse, embeddings and images through InvokeModel.
pub fn model_id(upstream_model: &str) -> &str {
    ["converse/", "invoke/"].iter().find_map(|m| upstream_model.strip_prefix(m)).unwrap_or(upstream_model)
}

/// The Converse endpoint: `https://bedrock-runtime.{region}.amazonaws.com/model/{id}/converse`
/// (`/converse-stream` for a stream), or `api_base` with the same path appended (LiteLLM's rule
/// for a custom endpoint: VPC endpoints, proxies, the mock). The model id is percent-encoded with
/// no safe characters, as LiteLLM does (`quote(model_id, safe="")`): ids contain `:` and ARNs
/// contain `/`, neither of which may stay literal in the path.
pub fn converse_url(api_base: Option<&str>, region: &str, model_id: &str, stream: bool) -> String {
    let base = match api_base.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
    };
    let op = if stream { "converse-stream" } else { "converse" };
    format!("{base}/model/{}/{op}", sluice_sigv4::uri_encode(model_id, false))
}

/// InvokeModel's endpoint (embedding and image models): `{runtime endpoint}/model/{id}/invoke`,
/// or `api_base` with the same path, the id percent-encoded as for Converse ([`converse_url`]).
pub fn invoke_url(api_base: Option<&str>, region: &str, model_id: &str) -> String {
    let converse = converse_url(api_base, region, model_id, false);
    match converse.strip_suffix("/converse") {
        Some(base) => format!("{base}/invoke"),
        None => converse,
    }
}

/// Signs a Bedrock request with AWS SigV4 (`sluice_sigv4`), for service `bedrock` as LiteLLM
/// signs it. `url` is the full URL (the model id already percent-encoded, as [`converse_url`]
/// builds it), `body` the exact bytes sent. Returns the headers to add: `authorization`,
/// `x-amz-date`, `x-amz-content-sha256`, and `x-amz-security-token` for temporary credentials.
pub fn sign(
    method: &str,
    url: &str,
    body: &[u8],
    region: &str,
    creds: &Credentials,
    unix_time: u64,
) -> Result<Vec<(&'static str, String)>, String> {
    sluice_sigv4::sign("bedrock", sluice_sigv4::PathRule::EncodeTwice, method, url, &[], body, region, creds, unix_time)
}

/// Bedrock `stopReason` → OpenAI `finish_reason` (formats.md §13).
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        // end_turn, stop_sequence, absent, and anything newer than this table.
        _ => "stop",
    }
}

/// Token counts from a Converse `usage` object, with LiteLLM's arithmetic: cache reads and
/// writes are reported apart from `inputTokens`, and LiteLLM counts them into `prompt_tokens`;
/// `total_tokens` is Bedrock's `totalTokens` when it sends one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    /// Bedrock's own total, which LiteLLM reports as is.
    pub total: Option<u64>,
}

impl Usage {
    pub fn from_json(usage: &Value) -> Usage {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64);
        Usage {
            input: n("inputTokens").unwrap_or(0),
            output: n("outputTokens").unwrap_or(0),
            cache_read: n("cacheReadInputTokens"),
            cache_write: n("cacheWriteInputTokens"),
            total: n("totalTokens"),
        }
    }

    pub fn prompt_tokens(&self) -> u64 {
        self.input.saturating_add(self.cache_read.unwrap_or(0)).saturating_add(self.cache_write.unwrap_or(0))
    }

    /// OpenAI's `usage` object; the cache counts also under LiteLLM's top-level names, which its
    /// spend tracking and some clients read.
    pub fn to_openai(self) -> Value {
        let prompt = self.prompt_tokens();
        // Built as a map, not with `json!`, which goes through serde's serializer per value.
        let mut details = serde_json::Map::new();
        details.insert("cached_tokens".into(), self.cache_read.unwrap_or(0).into());
        let mut usage = serde_json::Map::new();
        usage.insert("prompt_tokens".into(), prompt.into());
        usage.insert("completion_tokens".into(), self.output.into());
        usage.insert("total_tokens".into(), self.total.unwrap_or(prompt.saturating_add(self.output)).into());
        usage.insert("prompt_tokens_details".into(), Value::Object(details));
        if let Some(w) = self.cache_write {
            usage.insert("cache_creation_input_tokens".into(), w.into());
        }
        if let Some(r) = self.cache_read {
            usage.insert("cache_read_input_tokens".into(), r.into());
        }
        Value::Object(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_encode_the_model_id() {
        assert_eq!(
            converse_url(None, "us-east-1", "anthropic.claude-3-5-sonnet-20240620-v1:0", false),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        assert_eq!(
            converse_url(Some("http://127.0.0.1:8090/"), "eu-west-1", "arn:aws:bedrock:eu-west-1:1:x/y", true),
            "http://127.0.0.1:8090/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ax%2Fy/converse-stream"
        );
        assert_eq!(
            converse_url(Some(""), "r", "m", true),
            "https://bedrock-runtime.r.amazonaws.com/model/m/converse-stream"
        );
        assert_eq!(model_id("converse/us.amazon.nova-pro-v1:0"), "us.amazon.nova-pro-v1:0");
        assert_eq!(model_id("amazon.nova-pro-v1:0"), "amazon.nova-pro-v1:0");
        assert_eq!(model_id("invoke/amazon.titan-embed-text-v2:0"), "amazon.titan-embed-text-v2:0");
        assert_eq!(model_id("invoke/anthropic.claude-3-haiku-20240307-v1:0"), "anthropic.claude-3-haiku-20240307-v1:0");
    }

    #[test]
    fn finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("tool_use", "tool_calls"),
            ("max_tokens", "length"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
            ("something_new", "stop"),
        ] {
            assert_eq!(finish_reason(Some(stop)), finish, "{stop}");
        }
        assert_eq!(finish_reason(None), "stop");
    }

    #[test]
    fn usage_counts_cache_into_the_prompt() {
        let u = Usage::from_json(&json!({"inputTokens": 10, "outputTokens": 3, "totalTokens": 118,
            "cacheReadInputTokens": 100, "cacheWriteInputTokens": 5}));
        assert_eq!(u.prompt_tokens(), 115);
        let o = u.to_openai();
        assert_eq!(o["total_tokens"], 118);
        assert_eq!(o["prompt_tokens_details"]["cached_tokens"], 100);
        assert_eq!(o["cache_creation_input_tokens"], 5);
        assert_eq!(o["cache_read_input_tokens"], 100);
    }
}
