//! IBM watsonx.ai (`watsonx/`), as LiteLLM's `IBMWatsonXChatConfig` calls it: chat at
//! `{url}/ml/v1/text/chat?version=…` (`/text/chat_stream` for streams; a `deployment/<id>` model
//! at `/ml/v1/deployments/<id>/text/…`), the body OpenAI's chat with `model_id` and the project
//! (`project_id`) or deployment space (`space_id`) added. Embeddings, as LiteLLM's
//! `IBMWatsonXEmbeddingConfig`: `{"inputs": [...], "model_id", "project_id"}` to
//! `/ml/v1/text/embeddings?version=…` (`/ml/v1/deployments/<id>/text/embeddings`), answered
//! `{"results": [{"embedding"}], "input_token_count"}`, the count being the usage.
//!
//! Where things come from, as LiteLLM reads them: the URL from `api_base`, else `WATSONX_API_BASE`,
//! `WATSONX_URL`, `WX_URL`, `WML_URL`; the project from `project_id`, else `WATSONX_PROJECT_ID`,
//! `WX_PROJECT_ID`, `PROJECT_ID`; the space from `space_id`, else `WATSONX_DEPLOYMENT_SPACE_ID`,
//! `WATSONX_SPACE_ID`, `WX_SPACE_ID`, `SPACE_ID`; `api_version` (default `2024-03-13`). The
//! credential: a bearer token in `WATSONX_TOKEN`, else a Cloud Pak `ZenApiKey` in
//! `WATSONX_ZENAPIKEY`, else an IBM Cloud API key (`api_key`, else `WATSONX_APIKEY`,
//! `WATSONX_API_KEY`, `WX_API_KEY`) exchanged at IAM (`WATSONX_IAM_URL`, else IBM's) for a token
//! cached until shortly before it expires and shared by every deployment with that key
//! (`sluice_credentials::ibm`).

use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::chunks::{restamped_answer, Restamped};
use crate::errors::ExceptionClass;
use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, TokenSource,
    UpstreamRequest,
};
use crate::stream::StreamTranslator;

pub const DEFAULT_API_VERSION: &str = "2024-03-13";
pub const BASE_ENV: &[&str] = &["WATSONX_API_BASE", "WATSONX_URL", "WX_URL", "WML_URL"];
const KEY_ENV: &[&str] = &["WATSONX_APIKEY", "WATSONX_API_KEY", "WX_API_KEY"];
const PROJECT_ENV: &[&str] = &["WATSONX_PROJECT_ID", "WX_PROJECT_ID", "PROJECT_ID"];
const SPACE_ENV: &[&str] = &["WATSONX_DEPLOYMENT_SPACE_ID", "WATSONX_SPACE_ID", "WX_SPACE_ID", "SPACE_ID"];

/// Chat parameters watsonx.ai's chat takes under OpenAI's names.
const PASSED: &[&str] = &[
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "seed",
    "n",
    "logprobs",
    "top_logprobs",
    "response_format",
    "reasoning_effort",
    "time_limit",
];

const IGNORED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "store",
    "metadata",
    "service_tier",
    "user",
    "parallel_tool_calls",
];

/// Where the deployment's chats go and what they carry besides the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A foundation model in a project or a deployment space: `model_id` and the scope go in the body.
    Model { model_id: String, scope: (&'static str, String) },
    /// `deployment/<id>`: the deployment names the model and its space.
    Deployment,
}

/// The IAM token as the request's `Authorization`.
struct IamBearer(Arc<sluice_credentials::ibm::IamToken>);

impl TokenSource for IamBearer {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<HeaderValue, String>> + Send + '_>> {
        Box::pin(async move { self.0.get().await })
    }
}

pub struct Watsonx {
    address: Address,
    /// `…/text/embeddings?version=…`, with the address's headers.
    embed_url: http::Uri,
    target: Target,
    iam: Option<Arc<dyn TokenSource>>,
    drop_params: bool,
}

impl std::fmt::Debug for Watsonx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watsonx")
            .field("address", &self.address)
            .field("embed_url", &self.embed_url)
            .field("target", &self.target)
            .field("iam", &self.iam.is_some())
            .finish()
    }
}

/// The URL a deployment calls: `api_base`, else the first watsonx URL variable set.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> Option<String> {
    api_base.filter(|b| !b.is_empty()).map(str::to_string).or_else(|| BASE_ENV.iter().find_map(|n| env(n)))
}

impl Watsonx {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let path = p.path();
        let first = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
        let base = base(p.api_base, env).ok_or_else(|| {
            format!("{path}.api_base: missing; set it (or WATSONX_URL) to your watsonx.ai URL, e.g. https://us-south.ml.cloud.ibm.com")
        })?;
        let base = base.trim_end_matches('/');
        let model = &p.model.upstream;
        let (target, prefix) = match model.strip_prefix("deployment/") {
            Some(id) if !id.is_empty() => (Target::Deployment, format!("{base}/ml/v1/deployments/{id}/text")),
            _ => {
                let project = p.project_id.map(str::to_string).or_else(|| first(PROJECT_ENV));
                let space = p.space_id.map(str::to_string).or_else(|| first(SPACE_ENV));
                let scope = match (project, space) {
                    (Some(project), _) => ("project_id", project),
                    (None, Some(space)) => ("space_id", space),
                    (None, None) => {
                        return Err(format!(
                            "{path}.project_id: missing; set project_id or space_id (or WATSONX_PROJECT_ID / \
                             WATSONX_DEPLOYMENT_SPACE_ID) for watsonx.ai"
                        ))
                    }
                };
                (Target::Model { model_id: model.clone(), scope }, format!("{base}/ml/v1/text"))
            }
        };
        let version = p.api_version.unwrap_or(DEFAULT_API_VERSION);
        let mut address = Address::new(
            p,
            format!("{prefix}/chat?version={version}"),
            format!("{prefix}/chat_stream?version={version}"),
        )?;
        address.headers.push((http::header::ACCEPT, HeaderValue::from_static("application/json")));
        let auth = HeaderName::from_static("authorization");
        let mut iam = None;
        if let Some(token) = env("WATSONX_TOKEN").filter(|t| !t.is_empty()) {
            address.headers.push(p.secret_header(auth, &format!("Bearer {token}"))?);
        } else if let Some(zen) = env("WATSONX_ZENAPIKEY").filter(|t| !t.is_empty()) {
            address.headers.push(p.secret_header(auth, &format!("ZenApiKey {zen}"))?);
        } else {
            let key = p.api_key.map(str::to_string).or_else(|| first(KEY_ENV)).ok_or_else(|| {
                format!(
                    "{path}.api_key: missing; set it (or WATSONX_APIKEY) to an IBM Cloud API key, or set WATSONX_TOKEN"
                )
            })?;
            let url =
                first(&["WATSONX_IAM_URL"]).unwrap_or_else(|| sluice_credentials::ibm::DEFAULT_IAM_URL.to_string());
            let source: Arc<dyn TokenSource> = Arc::new(IamBearer(sluice_credentials::ibm::shared(&key, &url)));
            iam = Some(source);
        }
        let embed_url = p.uri(format!("{prefix}/embeddings?version={version}"))?;
        Ok(Watsonx { address, embed_url, target, iam, drop_params: p.drop_params })
    }
}

/// A tool's JSON schema without `additionalProperties` and `strict`, which watsonx.ai refuses
/// (LiteLLM strips them too).
fn clean_schema(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("additionalProperties");
            m.remove("strict");
            m.values_mut().for_each(clean_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(clean_schema),
        _ => {}
    }
}

/// The `/text/chat` body for an OpenAI chat request.
pub fn chat_request(openai: &Value, target: &Target, drop_params: bool) -> Result<Value, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let messages = req.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(|| {
        bad_param(Some("messages".into()), "`messages` is required and must be a non-empty array".into())
    })?;
    let mut out = Map::new();
    if let Target::Model { model_id, scope: (name, id) } = target {
        out.insert("model_id".into(), model_id.clone().into());
        out.insert((*name).into(), id.clone().into());
    }
    out.insert("messages".into(), Value::Array(messages.clone()));
    for (key, value) in req {
        match key.as_str() {
            _ if value.is_null() => {}
            "max_completion_tokens" => {
                out.insert("max_tokens".into(), value.clone());
            }
            "tools" => {
                let mut tools = value.clone();
                clean_schema(&mut tools);
                out.insert("tools".into(), tools);
            }
            "tool_choice" => match value.as_str() {
                Some("auto" | "none" | "required") => {
                    out.insert("tool_choice_option".into(), value.clone());
                }
                _ => {
                    out.insert("tool_choice".into(), value.clone());
                }
            },
            k if PASSED.contains(&k) => {
                out.insert(k.into(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            _ if drop_params => {}
            k => return Err(crate::textgen::unsupported("watsonx", k)),
        }
    }
    Ok(Value::Object(out))
}

/// The `/text/embeddings` body for an OpenAI embeddings request.
pub fn embed_request(openai: &Value, target: &Target, drop_params: bool) -> Result<Value, ApiError> {
    let (_, texts) = crate::embedding::checked(openai, "watsonx", "watsonx.ai", drop_params)?;
    let mut out = json!({ "inputs": texts });
    if let Target::Model { model_id, scope: (name, id) } = target {
        out["model_id"] = model_id.clone().into();
        out[*name] = id.clone().into();
    }
    Ok(out)
}

/// `{"results": [{"embedding": [...]}], "input_token_count": n}` as OpenAI's list.
pub fn embed_response(v: &Value, meta: &AnswerMeta<'_>) -> Result<Value, String> {
    let results = v.get("results").and_then(Value::as_array).ok_or("no `results` array")?;
    let vectors: Vec<Value> = results.iter().map(|r| r.get("embedding").cloned().unwrap_or(Value::Null)).collect();
    let tokens = v.get("input_token_count").and_then(Value::as_f64).map_or(0, |n| n.max(0.0) as u64);
    crate::embedding::answer(&vectors, meta, tokens)
}

/// `/text/chat_stream` events: OpenAI's chunks under watsonx's ids, re-stamped; the usage (in
/// the last event) kept for the bill and sent in its own chunk when the client asked.
#[derive(Debug)]
pub struct Stream(Restamped);

impl Stream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Stream(Restamped::new(model, id, created, include_usage))
    }

    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = crate::chunks::frame(data, "watsonx.ai")? else {
            return Ok(());
        };
        if let Some(text) = errors_text(&v) {
            return Err(text);
        }
        self.0.on_chunk(&v, out);
        Ok(())
    }

    pub fn finish_values(&mut self) -> Vec<Value> {
        self.0.finish_values()
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.0.usage()
    }

    pub fn usage_object(&self) -> Option<Value> {
        self.0.usage_object()
    }
}

/// watsonx.ai's `errors` list (`[{"code", "message"}]`), joined.
fn errors_text(v: &Value) -> Option<String> {
    let errors = v.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty())?;
    let texts: Vec<String> = errors
        .iter()
        .map(|e| match (e.get("code").and_then(Value::as_str), e.get("message").and_then(Value::as_str)) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (None, Some(m)) => m.to_string(),
            _ => e.to_string(),
        })
        .collect();
    Some(texts.join("; "))
}

/// A non-2xx answer: its `errors` (or the body's text), classified by status.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| errors_text(&v))
        .unwrap_or_else(|| crate::errors::upstream_text(body));
    let class = ExceptionClass::from_status(status);
    (class.status(Some(status)), class.name(), text)
}

impl ChatProvider for Watsonx {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Embeddings)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let mut req = match call.endpoint {
            Endpoint::Embeddings => {
                let body = embed_request(&request, &self.target, self.drop_params)?;
                let mut req = self.address.request(false, crate::provider::json_body(&body));
                req.url = self.embed_url.clone();
                req
            }
            _ => {
                let body = chat_request(&request, &self.target, self.drop_params)?;
                self.address.request(call.stream, crate::provider::json_body(&body))
            }
        };
        req.token = self.iam.clone();
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        match meta.endpoint {
            Endpoint::Embeddings => embed_response(&parsed, meta),
            _ => restamped_answer(&parsed, meta.model, meta.id, meta.created),
        }
        .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Watsonx(
            sse::Parser::new(),
            Stream::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, error(status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Target {
        Target::Model { model_id: "ibm/granite-3-8b-instruct".into(), scope: ("project_id", "p1".into()) }
    }

    #[test]
    fn a_request_carries_the_model_and_project_and_watsonxs_tool_choice() {
        let req = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 9,
            "tool_choice": "auto", "user": "u", "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "f", "strict": true,
                "parameters": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}}}]});
        let out = chat_request(&req, &model(), false).unwrap();
        assert_eq!(out["model_id"], "ibm/granite-3-8b-instruct");
        assert_eq!(out["project_id"], "p1");
        assert_eq!(out["max_tokens"], 9);
        assert_eq!(out["tool_choice_option"], "auto");
        assert_eq!(
            out["tools"][0]["function"],
            json!({"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}})
        );
        assert!(out.get("user").is_none() && out.get("stream_options").is_none());
        let named = json!({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "function", "function": {"name": "f"}}});
        assert_eq!(
            chat_request(&named, &Target::Deployment, false).unwrap(),
            json!({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "function", "function": {"name": "f"}}})
        );
        let bad = json!({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {}});
        assert!(chat_request(&bad, &model(), false).unwrap_err().message.contains("['logit_bias']"));
        assert!(chat_request(&bad, &model(), true).is_ok());
    }

    #[test]
    fn answers_and_streams_are_restamped() {
        let v = json!({"id": "chat-9", "model_id": "ibm/granite", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}});
        let out = restamped_answer(&v, "g", "chatcmpl-1", 2).unwrap();
        assert_eq!((out["id"].as_str(), out["model"].as_str()), (Some("chatcmpl-1"), Some("g")));
        assert_eq!(out["usage"]["total_tokens"], 5);
        let mut s = Stream::new("g", "chatcmpl-1", 2, true);
        let mut out = Vec::new();
        s.on_event(br#"{"id":"chat-9","model_id":"ibm/granite","choices":[{"index":0,"finish_reason":null,"delta":{"role":"assistant","content":"Hi"}}]}"#, &mut out).unwrap();
        s.on_event(br#"{"id":"chat-9","choices":[{"index":0,"finish_reason":"stop","delta":{}}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}"#, &mut out).unwrap();
        out.extend(s.finish_values());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["model"], "g");
        assert!(out[1].get("usage").is_none());
        assert_eq!(out[2]["usage"]["total_tokens"], 5);
        assert_eq!(s.usage(), Some((4, 1)));
        let e = s
            .on_event(br#"{"errors":[{"code":"token_quota_reached","message":"quota"}],"status_code":429}"#, &mut out)
            .unwrap_err();
        assert_eq!(e, "token_quota_reached: quota");
    }

    #[test]
    fn embeddings_send_inputs_with_the_model_and_count_input_tokens() {
        let req = json!({"model": "g", "input": "hi", "encoding_format": "base64"});
        assert_eq!(
            embed_request(&req, &model(), false).unwrap(),
            json!({"inputs": ["hi"], "model_id": "ibm/granite-3-8b-instruct", "project_id": "p1"})
        );
        assert_eq!(embed_request(&req, &Target::Deployment, false).unwrap(), json!({"inputs": ["hi"]}));
        assert!(embed_request(&json!({"input": [1]}), &model(), false).is_err());
        assert!(embed_request(&json!({"input": "x", "dimensions": 3}), &model(), false).is_err());
        let v = json!({"model_id": "ibm/slate", "results": [{"embedding": [0.5]}, {"embedding": [1.0]}],
            "created_at": "2024-11-20T10:00:00.000Z", "input_token_count": 7});
        let meta = crate::embedding::test_meta(br#"{"input":["a","b"]}"#);
        let out = embed_response(&v, &meta).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([1.0]));
        assert_eq!(out["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
        assert!(embed_response(&json!({}), &meta).is_err());
    }

    #[test]
    fn errors_read_watsonxs_list() {
        let body = br#"{"errors":[{"code":"authentication_token_expired","message":"Failed to authenticate the request due to an expired token"}],"trace":"x","status_code":401}"#;
        let (status, class, text) = error(401, body);
        assert_eq!((status, class), (401, "AuthenticationError"));
        assert!(text.starts_with("authentication_token_expired: Failed"));
    }
}
