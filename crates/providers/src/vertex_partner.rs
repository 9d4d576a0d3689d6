//! Vertex AI's partner models and Model Garden endpoints behind `vertex_ai/`, routed by model
//! name as LiteLLM routes them (`vertex_ai_partner_models`, `vertex_model_garden`):
//!
//! - Claude (`claude…`): Anthropic's Messages API at the model's `:rawPredict`
//!   (`:streamRawPredict` for streams) under `publishers/anthropic`, the body without `model` and
//!   with `anthropic_version: vertex-2023-10-16`. Requests, answers, streams and errors are the
//!   `anthropic` module's.
//! - Mistral and Codestral (`mistral…`, `codestral…`): OpenAI's chat at `publishers/mistralai`'s
//!   `:rawPredict`, `model` in the body without its `@version`; AI21's Jamba (`jamba…`) likewise
//!   under `publishers/ai21` (API `v1beta1`).
//! - Llama, DeepSeek, Qwen and gpt-oss (`meta/…`, `deepseek-ai/…`, `qwen…`, `openai/gpt-oss-…`):
//!   OpenAI's chat at the project's `endpoints/openapi/chat/completions`, the model in the body.
//! - A Model Garden deployment (`openai/{endpoint id}`): OpenAI's chat at
//!   `endpoints/{id}/chat/completions` with an empty `model`.
//!
//! Every one calls with the Google OAuth token Gemini on Vertex uses (the same `TokenSource`, so
//! deployments naming one key share one cache) and reads `vertex_project`, `vertex_location` and
//! `vertex_credentials` as Gemini does (`gemini::VertexPlace`).

use bytes::Bytes;
use serde_json::Value;
use sluice_wire::{splice, sse, ApiError};
use std::sync::Arc;

use crate::chunks::{restamped_answer, Restamped};
use crate::gemini::{vertex_resource_url, with_alt_sse, VertexPlace};
use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, TokenSource,
    TokenSources, UpstreamRequest,
};
use crate::stream::StreamTranslator;

/// The `anthropic_version` Claude on Vertex requires in the body (no header carries it there).
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Which door of Vertex a `vertex_ai/` model goes through when it is not Gemini's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partner {
    /// Claude: Anthropic's Messages API at `publishers/anthropic/models/{model}:rawPredict`.
    Anthropic,
    /// Mistral and Codestral: OpenAI's chat at `publishers/mistralai/models/{model}:rawPredict`.
    Mistral,
    /// AI21's Jamba: OpenAI's chat at `publishers/ai21/models/{model}:rawPredict` (`v1beta1`).
    Ai21,
    /// The OpenAI-compatible MaaS models at `endpoints/openapi/chat/completions`.
    OpenApi,
    /// A Model Garden deployment at `endpoints/{id}/chat/completions`.
    ModelGarden,
}

impl Partner {
    /// The partner serving `model` (the name after `vertex_ai/`), or `None` for Gemini's own
    /// models. LiteLLM's order: its partner prefixes first, the OpenAI-compatible families
    /// before Mistral, Jamba and Claude; then Model Garden's `openai/`.
    pub fn of(model: &str) -> Option<Partner> {
        const PREFIXES: [&str; 8] =
            ["meta/", "deepseek-ai", "mistral", "codestral", "jamba", "claude", "qwen", "openai/gpt-oss-"];
        if PREFIXES.iter().any(|p| model.starts_with(p)) {
            return Some(if ["llama", "deepseek-ai", "qwen", "openai/gpt-oss-"].iter().any(|f| model.contains(f)) {
                Partner::OpenApi
            } else if model.contains("mistral") || model.contains("codestral") {
                Partner::Mistral
            } else if model.contains("jamba") {
                Partner::Ai21
            } else if model.contains("claude") {
                Partner::Anthropic
            } else {
                // `meta/` models other than Llama are served at the same OpenAI-compatible door.
                Partner::OpenApi
            });
        }
        model.strip_prefix("openai/").filter(|id| !id.is_empty()).map(|_| Partner::ModelGarden)
    }

    /// The `model` an OpenAI-format partner is sent in the body: Mistral's without its
    /// `@version` (the path keeps it), a Model Garden endpoint's empty (the path names it).
    fn body_model(self, model: &str) -> &str {
        match self {
            Partner::Mistral => model.split('@').next().unwrap_or(model),
            Partner::ModelGarden if !endpoint_id(model).contains('/') => "",
            Partner::ModelGarden => endpoint_id(model),
            _ => model,
        }
    }
}

/// A Model Garden model's endpoint id: what follows `openai/`.
fn endpoint_id(model: &str) -> &str {
    model.strip_prefix("openai/").unwrap_or(model)
}

/// Where a partner model's call goes.
///
/// Without `api_base`: `https://{location}-aiplatform.googleapis.com/{version}/projects/
/// {project}/locations/{location}/…` (Gemini's hosts for `global` and the multi-regions), then
/// `publishers/{publisher}/models/{model}:rawPredict` (`:streamRawPredict` when streaming) or
/// `endpoints/{openapi|id}/chat/completions`.
///
/// With `api_base`, Gemini's rules place it (`gemini::vertex_url`): an empty path or a bare
/// `/v1`/`/v1beta1` gets the default path, any other path is taken to name the model already
/// (`:rawPredict` appended; `alt=sse` added to a stream's query, as LiteLLM's custom-proxy path
/// does) or, for the OpenAI-compatible doors, the OpenAI base (`/chat/completions` appended
/// unless it ends so). A Model Garden `api_base` is always that base, as in LiteLLM.
pub fn url(
    partner: Partner,
    api_base: Option<&str>,
    project: &str,
    location: &str,
    model: &str,
    stream: bool,
) -> String {
    let place = format!("projects/{project}/locations/{location}");
    let raw_predict = |publisher: &str, version: &str| {
        let verb = if stream { ":streamRawPredict" } else { ":rawPredict" };
        let resource = format!("{place}/publishers/{publisher}/models/{model}");
        let url = vertex_resource_url(api_base, location, version, &resource, verb);
        with_alt_sse(url, stream && api_base.is_some_and(|b| !b.trim().is_empty()))
    };
    let chat = |resource: &str, version: &str| {
        let base = api_base.map(|b| {
            let (path, query) = b.split_once('?').map_or((b, None), |(p, q)| (p, Some(q)));
            let path = path.trim_end_matches('/');
            let path = path.strip_suffix("/chat/completions").unwrap_or(path);
            match query {
                Some(q) => format!("{path}?{q}"),
                None => path.to_string(),
            }
        });
        vertex_resource_url(base.as_deref(), location, version, resource, "/chat/completions")
    };
    match partner {
        Partner::Anthropic => raw_predict("anthropic", "v1"),
        Partner::Mistral => raw_predict("mistralai", "v1"),
        Partner::Ai21 => raw_predict("ai21", "v1beta1"),
        Partner::OpenApi => chat(&format!("{place}/endpoints/openapi"), "v1beta1"),
        Partner::ModelGarden if endpoint_id(model).contains('/') => chat(&format!("{place}/endpoints/openapi"), "v1"),
        Partner::ModelGarden => match api_base.map(str::trim).filter(|b| !b.is_empty()) {
            Some(base) => {
                let (path, query) = base.split_once('?').map_or((base, None), |(p, q)| (p, Some(q)));
                let url = format!("{}/chat/completions", path.trim_end_matches('/'));
                match query {
                    Some(q) => format!("{url}?{q}"),
                    None => url,
                }
            }
            None => chat(&format!("{place}/endpoints/{}", endpoint_id(model)), "v1beta1"),
        },
    }
}

/// A `vertex_ai/` deployment of a partner model, as a [`ChatProvider`].
pub struct VertexPartner {
    partner: Partner,
    address: Address,
    token: Arc<dyn TokenSource>,
    /// The upstream model name: Claude's request names it (then drops it for Vertex).
    model: String,
    /// The body's `model` for the OpenAI-format partners, as a JSON string literal.
    body_model: Bytes,
    drop_params: bool,
}

impl std::fmt::Debug for VertexPartner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VertexPartner")
            .field("partner", &self.partner)
            .field("address", &self.address)
            .field("token", &"service account")
            .finish()
    }
}

impl VertexPartner {
    /// The deployment `p` names, whose model [`Partner::of`] placed; its key is read on first
    /// use, as Gemini's is.
    pub fn new(p: &Params<'_>, env: Env<'_>, tokens: TokenSources<'_>, partner: Partner) -> Result<Self, String> {
        let VertexPlace { credentials, project, location } = VertexPlace::of(p, env);
        let model = &p.model.upstream;
        let address = Address::new(
            p,
            url(partner, p.api_base, &project, &location, model, false),
            url(partner, p.api_base, &project, &location, model, true),
        )?;
        Ok(VertexPartner {
            partner,
            address,
            token: tokens(&credentials),
            model: model.clone(),
            body_model: splice::json_string(partner.body_model(model)),
            drop_params: p.drop_params,
        })
    }

    /// Claude's body: the Messages request LiteLLM's Anthropic translation makes, without
    /// `model` (the URL names it) and with Vertex's `anthropic_version`.
    fn anthropic_body(&self, call: &ChatCall<'_>) -> Result<Bytes, ApiError> {
        let request = parse_request(call.body)?;
        let opts = crate::anthropic::Options { drop_params: self.drop_params, ..Default::default() };
        let mut out =
            crate::anthropic::chat_request(&request, &self.model, &opts).map_err(|e| bad_param(e.param, e.message))?;
        if let Some(body) = out.as_object_mut() {
            body.remove("model");
            body.insert("anthropic_version".into(), ANTHROPIC_VERSION.into());
        }
        Ok(Bytes::from(out.to_string()))
    }

    /// The client's OpenAI body with the partner's `model`, forwarded as bytes; LiteLLM's Llama
    /// config renames `max_completion_tokens` to the `max_tokens` the MaaS endpoint reads, which
    /// takes a tree (only then).
    fn openai_body(&self, call: &ChatCall<'_>) -> Result<[Bytes; 3], ApiError> {
        let renames =
            self.partner == Partner::OpenApi && memchr::memmem::find(call.body, b"\"max_completion_tokens\"").is_some();
        if renames {
            let mut request = parse_request(call.body)?;
            if let Some(body) = request.as_object_mut() {
                if let Some(v) = body.remove("max_completion_tokens") {
                    body.entry("max_tokens").or_insert(v);
                }
                let model: Value = serde_json::from_slice(&self.body_model).unwrap_or_default();
                body.insert("model".into(), model);
            }
            return Ok([crate::provider::json_body(&request), Bytes::new(), Bytes::new()]);
        }
        Ok(match &call.model_span {
            Some(span) => splice::replace(call.body, span.clone(), self.body_model.clone()),
            None => crate::openai::insert_model(call.body, &self.body_model),
        })
    }
}

impl ChatProvider for VertexPartner {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let mut req = match self.partner {
            Partner::Anthropic => self.address.request(call.stream, self.anthropic_body(call)?),
            _ => {
                let mut req = self.address.request(call.stream, Bytes::new());
                req.body = self.openai_body(call)?;
                req
            }
        };
        req.token = Some(self.token.clone());
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let out = match self.partner {
            Partner::Anthropic => match crate::anthropic::read_answer(body) {
                Some(answer) => answer.into_openai(meta.model, meta.created),
                None => crate::anthropic::chat_response(&self.address.answer_json(body)?, meta.model, meta.created),
            }
            .map_err(|e| e.message),
            _ => restamped_answer(&self.address.answer_json(body)?, meta.model, meta.id, meta.created),
        };
        out.map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    /// Only Claude's body is translated; the others forward the client's bytes.
    fn copies_texts_as_sent(&self) -> bool {
        self.partner != Partner::Anthropic
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        match self.partner {
            Partner::Anthropic => StreamTranslator::Anthropic(
                sse::Parser::new(),
                crate::anthropic::ChatStream::new(meta.model, meta.created, meta.include_usage),
            ),
            _ => StreamTranslator::Restamped(
                sse::Parser::new(),
                Restamped::new(meta.model, meta.id, meta.created, meta.include_usage),
            ),
        }
    }

    /// Claude's errors are Anthropic's (Vertex's own, in Google's envelope, read by the same
    /// classifier: its `error.message` and the status); the others are classified as LiteLLM
    /// classifies every Vertex failure.
    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        let classified = match self.partner {
            Partner::Anthropic => crate::anthropic::error(status, body),
            _ => crate::gemini::error(status, body),
        };
        crate::errors::classified(&self.address.provider, classified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::parse_model;
    use crate::provider::test_params;

    struct NoToken;
    impl TokenSource for NoToken {
        fn token(
            &self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<http::HeaderValue, String>> + Send + '_>>
        {
            Box::pin(async { Err("no token in unit tests".to_string()) })
        }
    }

    fn build(model: &str, api_base: Option<&str>) -> VertexPartner {
        let m = parse_model(model, None).unwrap();
        let mut p = test_params(&m);
        p.api_base = api_base;
        p.vertex_project = Some("p");
        p.vertex_location = Some("us-east5");
        let partner = Partner::of(&m.upstream).expect("a partner model");
        let env = |_: &str| -> Option<String> { None };
        VertexPartner::new(&p, &env, &mut |_: &str| -> Arc<dyn TokenSource> { Arc::new(NoToken) }, partner).unwrap()
    }

    fn call(body: &Bytes, stream: bool) -> ChatCall<'_> {
        ChatCall {
            endpoint: sluice_wire::sniff::Endpoint::Chat,
            body,
            model_span: sluice_wire::sniff::model_span(body),
            stream,
            now: 0,
        }
    }

    fn body_of(req: &UpstreamRequest) -> Value {
        serde_json::from_slice(&req.body.concat()).unwrap()
    }

    #[test]
    fn models_route_to_their_partner_as_in_litellm() {
        for (model, partner) in [
            ("claude-3-5-sonnet@20240620", Some(Partner::Anthropic)),
            ("claude-sonnet-4@20250514", Some(Partner::Anthropic)),
            ("meta/llama3-405b-instruct-maas", Some(Partner::OpenApi)),
            ("meta/llama-4-scout-17b-16e-instruct-maas", Some(Partner::OpenApi)),
            ("deepseek-ai/deepseek-r1-0528-maas", Some(Partner::OpenApi)),
            ("qwen/qwen3-235b-a22b-instruct-2507-maas", Some(Partner::OpenApi)),
            ("openai/gpt-oss-120b-maas", Some(Partner::OpenApi)),
            ("mistral-large@2407", Some(Partner::Mistral)),
            ("codestral@2405", Some(Partner::Mistral)),
            ("jamba-1.5-large@001", Some(Partner::Ai21)),
            ("openai/5464397967697903616", Some(Partner::ModelGarden)),
            ("gemini-1.5-pro", None),
            ("text-embedding-004", None),
            ("imagen-3.0-generate-002", None),
            ("1234567890", None),
        ] {
            assert_eq!(Partner::of(model), partner, "{model}");
        }
    }

    #[test]
    fn urls_follow_each_partners_door() {
        let u = |partner, base: Option<&str>, model, stream| url(partner, base, "p", "us-east5", model, stream);
        let root = "https://us-east5-aiplatform.googleapis.com";
        assert_eq!(
            u(Partner::Anthropic, None, "claude-3-5-sonnet@20240620", false),
            format!("{root}/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620:rawPredict")
        );
        assert_eq!(
            u(Partner::Anthropic, None, "claude-3-5-sonnet@20240620", true),
            format!("{root}/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620:streamRawPredict")
        );
        assert_eq!(
            u(Partner::Mistral, None, "mistral-large@2407", true),
            format!("{root}/v1/projects/p/locations/us-east5/publishers/mistralai/models/mistral-large@2407:streamRawPredict")
        );
        assert_eq!(
            u(Partner::Ai21, None, "jamba-1.5-large@001", false),
            format!(
                "{root}/v1beta1/projects/p/locations/us-east5/publishers/ai21/models/jamba-1.5-large@001:rawPredict"
            )
        );
        let openapi = format!("{root}/v1beta1/projects/p/locations/us-east5/endpoints/openapi/chat/completions");
        assert_eq!(u(Partner::OpenApi, None, "meta/llama3-405b-instruct-maas", true), openapi);
        assert_eq!(
            u(Partner::ModelGarden, None, "openai/123", false),
            format!("{root}/v1beta1/projects/p/locations/us-east5/endpoints/123/chat/completions")
        );
        assert_eq!(
            url(Partner::Anthropic, None, "p", "global", "claude-x", false),
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/anthropic/models/claude-x:rawPredict"
        );
        // A custom api_base: the default path grafted onto a bare host or version, a model path
        // taken as it is; streams add `alt=sse` to a rawPredict's query.
        assert_eq!(
            u(Partner::Anthropic, Some("http://m:1/"), "claude-x", true),
            "http://m:1/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x:streamRawPredict?alt=sse"
        );
        assert_eq!(
            u(Partner::Mistral, Some("http://m:1/proxy/models/mistral-large?k=1"), "mistral-large", false),
            "http://m:1/proxy/models/mistral-large:rawPredict?k=1"
        );
        assert_eq!(
            u(Partner::OpenApi, Some("http://m:1/v1"), "meta/llama", false),
            "http://m:1/v1/projects/p/locations/us-east5/endpoints/openapi/chat/completions"
        );
        for base in ["http://m:1/proxy/openapi", "http://m:1/proxy/openapi/chat/completions/"] {
            assert_eq!(
                u(Partner::OpenApi, Some(base), "meta/llama", true),
                "http://m:1/proxy/openapi/chat/completions"
            );
        }
        assert_eq!(
            u(Partner::ModelGarden, Some("http://m:1/mg/"), "openai/123", false),
            "http://m:1/mg/chat/completions"
        );
    }

    #[test]
    fn claude_gets_anthropics_body_without_model_and_with_vertexs_version() {
        let d = build("vertex_ai/claude-3-5-sonnet@20240620", None);
        let body = Bytes::from_static(
            br#"{"model":"g","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"stream":true}"#,
        );
        let req = d.build_request(&call(&body, true)).unwrap();
        let v = body_of(&req);
        assert!(v.get("model").is_none(), "{v}");
        assert_eq!(v["anthropic_version"], ANTHROPIC_VERSION);
        assert_eq!(v["max_tokens"], crate::anthropic::DEFAULT_MAX_TOKENS);
        assert!(v["system"].to_string().contains("be brief"), "{v}");
        assert_eq!(v["messages"][0]["role"], "user");
        assert_eq!(v["stream"], true);
        assert!(req.url.to_string().ends_with("claude-3-5-sonnet@20240620:streamRawPredict"), "{}", req.url);
        assert!(req.token.is_some(), "the Google token rides on every call");
        assert!(req.headers.get("x-api-key").is_none() && req.headers.get("anthropic-version").is_none());
    }

    #[test]
    fn openai_format_partners_get_the_clients_bytes_with_their_model() {
        let body = Bytes::from_static(br#"{"model":"g","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#);
        let d = build("vertex_ai/mistral-large@2407", None);
        let req = d.build_request(&call(&body, false)).unwrap();
        assert_eq!(body_of(&req)["model"], "mistral-large");
        assert!(req.url.to_string().ends_with("/publishers/mistralai/models/mistral-large@2407:rawPredict"));
        let d = build("vertex_ai/meta/llama3-405b-instruct-maas", None);
        let req = d.build_request(&call(&body, false)).unwrap();
        assert_eq!(body_of(&req)["model"], "meta/llama3-405b-instruct-maas");
        assert_eq!(&req.body[0][..], br#"{"model":"#, "spliced, not rebuilt");
        // Llama reads `max_tokens`, not `max_completion_tokens`.
        let body = Bytes::from_static(br#"{"model":"g","messages":[],"max_completion_tokens":7}"#);
        let v = body_of(&d.build_request(&call(&body, false)).unwrap());
        assert_eq!((v["max_tokens"].as_u64(), v.get("max_completion_tokens")), (Some(7), None), "{v}");
        assert_eq!(v["model"], "meta/llama3-405b-instruct-maas");
        let d = build("vertex_ai/openai/5464397967697903616", None);
        assert_eq!(body_of(&d.build_request(&call(&body, false)).unwrap())["model"], "");
    }

    #[test]
    fn answers_and_streams_are_stamped_as_the_clients() {
        let meta = AnswerMeta {
            model: "grp",
            id: "chatcmpl-1",
            created: 9,
            include_usage: true,
            endpoint: sluice_wire::sniff::Endpoint::Chat,
            request: b"{}",
        };
        let d = build("vertex_ai/meta/llama3-405b-instruct-maas", None);
        let answer = br#"{"id":"x","model":"meta/llama3","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        let v = d.parse_answer(answer, &meta).unwrap();
        assert_eq!((v["model"].as_str(), v["id"].as_str()), (Some("grp"), Some("chatcmpl-1")));
        assert_eq!(v["usage"]["total_tokens"], 4);
        let mut t = d.stream_translator(&meta);
        t.push(b"data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n");
        let mut out = Vec::new();
        t.drain(&mut out).unwrap();
        t.finish(&mut out).unwrap();
        assert!(out.iter().all(|c| c["model"] == "grp" && c["id"] == "chatcmpl-1"), "{out:?}");
        assert_eq!(out.last().unwrap()["usage"]["total_tokens"], 4);
        assert_eq!(t.usage(), Some((3, 1)));

        let d = build("vertex_ai/claude-3-5-sonnet@20240620", None);
        let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":2}}"#;
        let v = d.parse_answer(answer, &meta).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
        assert_eq!(v["model"], "grp");
        assert!(d.parse_answer(b"not json", &meta).is_err());
    }

    #[test]
    fn errors_are_classified_with_litellms_vertex_tag() {
        struct NoHeaders;
        impl Headers for NoHeaders {
            fn get(&self, _: &str) -> Option<&str> {
                None
            }
        }
        let claude = build("vertex_ai/claude-3-5-sonnet@20240620", None);
        let e = claude.map_error(
            529,
            &NoHeaders,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.status, 500);
        assert_eq!(e.message, "litellm.InternalServerError: VertexAIException - Overloaded");
        let google = br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
        let e = claude.map_error(429, &NoHeaders, google);
        assert_eq!((e.status, e.message.as_str()), (429, "litellm.RateLimitError: VertexAIException - Quota exceeded"));
        let llama = build("vertex_ai/meta/llama3-405b-instruct-maas", None);
        let e =
            llama.map_error(400, &NoHeaders, br#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#);
        assert_eq!((e.status, e.message.as_str()), (400, "litellm.BadRequestError: VertexAIException - bad"));
    }

    #[test]
    fn the_bundled_prices_cover_the_partner_models() {
        for (model, input, output) in [
            ("claude-3-5-sonnet@20240620", 3e-6, 1.5e-5),
            ("meta/llama-3.1-405b-instruct-maas", 5e-6, 1.6e-5),
            ("mistral-large@2407", 2e-6, 6e-6),
        ] {
            let price = crate::pricing::lookup("vertex_ai", model).unwrap_or_else(|| panic!("{model} is priced"));
            assert_eq!((price.input_per_token, price.output_per_token), (input, output), "{model}");
        }
    }
}
