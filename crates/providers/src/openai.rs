//! OpenAI and every provider that speaks its format at another base URL (groq, together_ai,
//! hosted_vllm, …; Azure differs only in addressing, see `azure`). The client's bytes are
//! forwarded with only `model` rewritten: no tree is built on this path.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::{splice, sse, ApiError};
use std::time::Duration;

use crate::catalogue::{Family, Provider};
use crate::errors::{openai_class, upstream_message};
use crate::provider::{AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest};
use crate::stream::StreamTranslator;

/// How sluice reaches one OpenAI-format deployment, resolved once at start.
pub struct OpenAi {
    pub provider: Provider,
    /// The upstream model name as a JSON string literal, ready to splice into bodies.
    pub upstream_model: Bytes,
    pub chat: Uri,
    pub completions: Uri,
    pub embeddings: Uri,
    /// `/responses`: OpenAI's Responses API.
    pub responses: Uri,
    /// `/rerank`: what OpenAI-compatible rerank servers (vLLM, Infinity, …) serve.
    pub rerank: Uri,
    /// `/images/generations`, `/moderations` and `/audio/speech`: forwarded as OpenAI and Azure
    /// serve them.
    pub images: Uri,
    /// `/images/edits` and `/images/variations`: the client's upload, with the form's `model`
    /// replaced.
    pub image_edits: Uri,
    pub image_variations: Uri,
    pub moderations: Uri,
    pub speech: Uri,
    /// `/audio/transcriptions` and `/audio/translations`: the client's upload, with the form's
    /// `model` replaced.
    pub transcriptions: Uri,
    pub translations: Uri,
    /// The deployment serves the Responses API itself (OpenAI, Azure): a `/v1/responses` call
    /// goes to it as the client sent it. Every other OpenAI-format server is sent chat.
    pub responses_native: bool,
    /// The routes this deployment's provider translates rather than forwards (Hugging Face's
    /// feature-extraction embeddings): the server calls them as it calls a translated
    /// provider; every other route is forwarded.
    pub translates: Option<Box<crate::catalogue::Translated>>,
    /// The credential header: `Authorization: Bearer …` (OpenAI and friends) or `api-key` (Azure).
    pub auth: Option<(HeaderName, HeaderValue)>,
    pub organization: Option<HeaderValue>,
    pub timeout: Duration,
    pub stream_timeout: Duration,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi")
            .field("provider", &self.provider.name)
            .field("chat", &self.chat)
            .field("auth", &self.auth.as_ref().map(|(name, _)| name.as_str()))
            .finish()
    }
}

impl OpenAi {
    /// An OpenAI-compatible deployment at `base` ([`resolve_base`]), with its key from
    /// `litellm_params`, else the provider's environment variables, else its placeholder.
    pub fn compatible(p: &Params<'_>, base: &str, env: Env<'_>) -> Result<Self, String> {
        let provider = p.model.provider;
        let uri = |e: Endpoint| -> Result<Uri, String> {
            url(base, e).parse::<Uri>().map_err(|e| {
                format!(
                    "model_list[{}].litellm_params.api_base: not a valid URL ({e}); write it like http://127.0.0.1:8090/",
                    p.index
                )
            })
        };
        let auth = resolve_key(&provider, p.api_key, env)
            .map(|k| p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {k}")))
            .transpose()?;
        let mut t = OpenAi::at(p, &p.model.upstream, uri, auth)?;
        t.responses_native = provider.name == "openai";
        t.organization = p.organization.and_then(|o| HeaderValue::from_str(o).ok());
        Ok(t)
    }

    /// A deployment of `p`'s provider that speaks OpenAI's format, each route at the URL `uri`
    /// gives it, with `auth` as its credential header: what OpenAI-compatible servers, Azure,
    /// Azure AI and Hugging Face have in common. It forwards every route (no translation), has
    /// no organization, and sends `/v1/responses` as chat: callers change what differs.
    pub fn at(
        p: &Params<'_>,
        upstream_model: &str,
        mut uri: impl FnMut(Endpoint) -> Result<Uri, String>,
        auth: Option<(HeaderName, HeaderValue)>,
    ) -> Result<Self, String> {
        Ok(OpenAi {
            provider: p.model.provider,
            upstream_model: splice::json_string(upstream_model),
            chat: uri(Endpoint::Chat)?,
            completions: uri(Endpoint::Completions)?,
            embeddings: uri(Endpoint::Embeddings)?,
            responses: uri(Endpoint::Responses)?,
            rerank: uri(Endpoint::Rerank)?,
            images: uri(Endpoint::Images)?,
            image_edits: uri(Endpoint::ImageEdits)?,
            image_variations: uri(Endpoint::ImageVariations)?,
            moderations: uri(Endpoint::Moderations)?,
            speech: uri(Endpoint::Speech)?,
            transcriptions: uri(Endpoint::Transcriptions)?,
            translations: uri(Endpoint::Translations)?,
            responses_native: false,
            translates: None,
            auth,
            organization: None,
            timeout: p.timeout,
            stream_timeout: p.stream_timeout,
        })
    }

    /// The provider that translates `endpoint`, when this deployment does not forward it.
    pub fn translator(&self, endpoint: Endpoint) -> Option<&crate::catalogue::Translated> {
        self.translates.as_deref().filter(|t| t.serves(endpoint))
    }

    pub fn uri(&self, endpoint: Endpoint) -> &Uri {
        match endpoint {
            Endpoint::Chat => &self.chat,
            Endpoint::Completions => &self.completions,
            Endpoint::Embeddings => &self.embeddings,
            Endpoint::Responses => &self.responses,
            Endpoint::Rerank => &self.rerank,
            Endpoint::Images => &self.images,
            Endpoint::ImageEdits => &self.image_edits,
            Endpoint::ImageVariations => &self.image_variations,
            Endpoint::Moderations => &self.moderations,
            Endpoint::Speech => &self.speech,
            Endpoint::Transcriptions => &self.transcriptions,
            Endpoint::Translations => &self.translations,
        }
    }

    /// An upload (`/audio/transcriptions`, `/images/edits`, …) as the client sent it, with the deployment's model
    /// name in place of the form's `model` value, on the form's own boundary.
    fn upload_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let span = call.model_span.clone().ok_or_else(|| {
            ApiError::bad_request("Missing required form field `model`: add it to the upload.").param("model")
        })?;
        let name: String = serde_json::from_slice(&self.upstream_model).unwrap_or_default();
        let body = splice::replace(call.body, span, bytes::Bytes::from(name));
        let content_type = sluice_wire::form::content_type_of(call.body)
            .and_then(|c| HeaderValue::from_str(&c).ok())
            .ok_or_else(|| ApiError::bad_request("Request body is not multipart/form-data."))?;
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, content_type);
        headers
            .insert(http::header::USER_AGENT, HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))));
        if let Some((name, value)) = &self.auth {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(org) = &self.organization {
            headers.insert(HeaderName::from_static("openai-organization"), org.clone());
        }
        Ok(UpstreamRequest {
            method: http::Method::POST,
            url: self.uri(call.endpoint).clone(),
            headers,
            body,
            token: None,
            aws: None,
            timeout: self.timeout,
        })
    }

    /// Where a stored response `id` lives upstream (`GET`/`DELETE {base}/responses/{id}`), with
    /// the deployment's credentials; `None` when the id cannot be part of a URL path.
    pub fn stored_response(&self, id: &str) -> Option<(Uri, http::HeaderMap)> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return None;
        }
        let base = self.responses.to_string();
        let url = match base.split_once('?') {
            Some((path, query)) => format!("{path}/{id}?{query}"),
            None => format!("{base}/{id}"),
        };
        let mut headers = http::HeaderMap::new();
        headers
            .insert(http::header::USER_AGENT, HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))));
        if let Some((name, value)) = &self.auth {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(org) = &self.organization {
            headers.insert(HeaderName::from_static("openai-organization"), org.clone());
        }
        Some((url.parse().ok()?, headers))
    }
}

impl ChatProvider for OpenAi {
    /// The client's bytes with `model` rewritten in place: three slices, nothing parsed.
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        if call.endpoint.is_upload() {
            return self.upload_request(call);
        }
        let body = match &call.model_span {
            Some(span) => splice::replace(call.body, span.clone(), self.upstream_model.clone()),
            None => insert_model(call.body, &self.upstream_model),
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
            .insert(http::header::USER_AGENT, HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))));
        if call.stream {
            headers.insert(http::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        if let Some((name, value)) = &self.auth {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(org) = &self.organization {
            headers.insert(HeaderName::from_static("openai-organization"), org.clone());
        }
        Ok(UpstreamRequest {
            method: http::Method::POST,
            url: self.uri(call.endpoint).clone(),
            headers,
            body,
            token: None,
            aws: None,
            timeout: if call.stream { self.stream_timeout } else { self.timeout },
        })
    }

    /// The answer is already OpenAI's; it only has to be a JSON object.
    fn parse_answer(&self, body: &[u8], _meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(crate::errors::malformed(
                &self.provider,
                "upstream returned a body that is not a JSON object",
                body,
            )),
        }
    }

    fn stream_translator(&self, _meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::OpenAi(sse::Parser::new(), None)
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        let (class, text) = openai_class(status, body);
        let api = ApiError::new(class.status(Some(status)), upstream_message(class, &self.provider, &text));
        match class.error_type() {
            Some(t) => api.kind(t),
            None => api,
        }
    }
}

/// `body` with `"model":<upstream_model>` added as its first field, for requests that sent none.
pub fn insert_model(body: &Bytes, upstream_model: &Bytes) -> [Bytes; 3] {
    let open = body.iter().position(|b| *b == b'{').map(|i| i + 1).unwrap_or(0);
    let rest = body.slice(open..);
    let needs_comma = rest.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'}');
    let mut field = Vec::with_capacity(upstream_model.len() + 10);
    field.extend_from_slice(b"\"model\":");
    field.extend_from_slice(upstream_model);
    if needs_comma {
        field.push(b',');
    }
    [body.slice(..open), Bytes::from(field), rest]
}

/// The base URL a deployment calls: its `api_base`, else the provider's env override, else the
/// provider's default. `None` when the provider needs an `api_base` and none is set.
pub fn resolve_base(
    provider: &Provider,
    api_base: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let configured = api_base.filter(|b| !b.is_empty()).map(str::to_string);
    let Family::OpenAiCompatible { default_base, base_env, base_path, .. } = provider.family else {
        return configured;
    };
    match configured.or_else(|| base_env.iter().find_map(|v| env(v))) {
        Some(base) => Some(with_path(&base, base_path)),
        None => default_base.map(str::to_string),
    }
}

/// `base` ending in `path`: added (before any query) unless it is there already.
fn with_path(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    let (root, query) = base.split_once('?').map_or((base, None), |(r, q)| (r, Some(q)));
    let root = root.trim_end_matches('/');
    let mut out = String::with_capacity(base.len() + path.len());
    out.push_str(root);
    if !root.ends_with(path) {
        out.push_str(path);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The key a deployment sends: its `api_key`, else the provider's env variable, else the
/// provider's placeholder for local servers.
pub fn resolve_key(provider: &Provider, api_key: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(k) = api_key {
        return Some(k.to_string());
    }
    let Family::OpenAiCompatible { key_env, default_key, .. } = provider.family else {
        return None;
    };
    key_env.iter().find_map(|v| env(v)).or_else(|| default_key.map(str::to_string))
}

/// `base` + the endpoint's path, joined as the OpenAI SDK joins them (one slash between).
pub fn url(base: &str, endpoint: Endpoint) -> String {
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let mut url = String::with_capacity(base.len() + 24);
    url.push_str(base.trim_end_matches('/'));
    url.push_str(endpoint.path());
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// `api_base` as LiteLLM reports it in `x-litellm-model-api-base`: without its query string.
pub fn display_base(base: &str) -> &str {
    base.split_once('?').map(|(b, _)| b).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_model_when_only_the_path_names_it() {
        let join = |p: [Bytes; 3]| p.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>();
        let m = splice::json_string("up");
        let out = join(insert_model(&Bytes::from_static(br#"{"messages":[]}"#), &m));
        assert_eq!(out, br#"{"model":"up","messages":[]}"#);
        let out = join(insert_model(&Bytes::from_static(b"{ }"), &m));
        assert_eq!(out, br#"{"model":"up" }"#);
    }
    use crate::catalogue::lookup;

    #[test]
    fn joins_like_the_sdk() {
        assert_eq!(url("http://127.0.0.1:8090/", Endpoint::Chat), "http://127.0.0.1:8090/chat/completions");
        assert_eq!(url("https://api.openai.com/v1", Endpoint::Embeddings), "https://api.openai.com/v1/embeddings");
        assert_eq!(url("http://h/v1?x=1", Endpoint::Completions), "http://h/v1/completions?x=1");
        assert_eq!(display_base("http://h/v1?key=secret"), "http://h/v1");
    }

    #[test]
    fn resolves_base_and_key() {
        let openai = lookup("openai").unwrap();
        let vllm = lookup("hosted_vllm").unwrap();
        let no_env = |_: &str| None;
        assert_eq!(resolve_base(&openai, None, no_env).as_deref(), Some("https://api.openai.com/v1"));
        assert_eq!(resolve_base(&vllm, None, no_env), None);
        let env = |v: &str| (v == "HOSTED_VLLM_API_BASE").then(|| "http://vllm:8000/v1".to_string());
        assert_eq!(resolve_base(&vllm, None, env).as_deref(), Some("http://vllm:8000/v1"));
        assert_eq!(resolve_key(&vllm, None, no_env).as_deref(), Some("fake-api-key"));
        assert_eq!(resolve_key(&openai, Some("k"), no_env).as_deref(), Some("k"));
    }
}
