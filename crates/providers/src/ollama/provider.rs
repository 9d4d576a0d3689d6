//! Ollama as a [`ChatProvider`]: chat (`/api/chat` or `/api/generate`) and embeddings
//! (`/api/embed`), one deployment's addresses built once.

use http::{HeaderName, Uri};
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

use crate::ndjson;
use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

use super::TranslateError;

#[derive(Debug)]
pub struct Ollama {
    /// `/api/chat` for `ollama_chat/`, `/api/generate` for `ollama/`.
    address: Address,
    embed_url: Uri,
    chat_api: bool,
    model: String,
    drop_params: bool,
}

impl Ollama {
    /// `chat_api`: `ollama_chat/` (`/api/chat`) rather than `ollama/` (`/api/generate`).
    pub fn new(p: &Params<'_>, env: Env<'_>, chat_api: bool) -> Result<Self, String> {
        let base = super::base(p.api_base, env);
        let base = base.trim_end_matches('/');
        let path = if chat_api { "/api/chat" } else { "/api/generate" };
        // LiteLLM takes an api_base that already ends in the route as the route itself.
        let url = if base.ends_with(path) { base.to_string() } else { format!("{base}{path}") };
        let root = base.strip_suffix(path).unwrap_or(base);
        let mut address = Address::new(p, url.clone(), url)?;
        if let Some(key) = p.api_key.map(str::to_string).or_else(|| env("OLLAMA_API_KEY")) {
            address.headers.push(p.secret_header(HeaderName::from_static("authorization"), &format!("Bearer {key}"))?);
        }
        Ok(Ollama {
            address,
            embed_url: p.uri(format!("{root}/api/embed"))?,
            chat_api,
            model: p.model.upstream.clone(),
            drop_params: p.drop_params,
        })
    }

    fn refused(e: TranslateError) -> ApiError {
        bad_param(e.param, e.message)
    }
}

/// Whether an OpenAI request asks for tools (a generate call then prompts for a JSON call).
fn asks_for_tools(request: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Tools {
        #[serde(default)]
        tools: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        functions: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Tools>(request).is_ok_and(|t| t.tools.is_some() || t.functions.is_some())
}

impl ChatProvider for Ollama {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Embeddings)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        if call.endpoint == Endpoint::Embeddings {
            let (body, _) = super::embed_request(&request, &self.model).map_err(Self::refused)?;
            let mut req = self.address.request(false, crate::provider::json_body(&body));
            req.url = self.embed_url.clone();
            return Ok(req);
        }
        let body = match self.chat_api {
            true => super::chat_request(&request, &self.model, call.stream, self.drop_params),
            false => super::generate_request(&request, &self.model, call.stream, self.drop_params),
        }
        .map_err(Self::refused)?;
        Ok(self.address.request(call.stream, crate::provider::json_body(&body)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        let out = match meta.endpoint {
            Endpoint::Embeddings => {
                let base64 = crate::embedding::wants_base64_in(meta.request);
                super::embed_response(&parsed, meta.model, base64)
            }
            _ if self.chat_api => super::chat_response(&parsed, meta.model, meta.id, meta.created),
            _ => super::generate_response(&parsed, meta.model, meta.id, meta.created, asks_for_tools(meta.request)),
        };
        out.map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        let tools = !self.chat_api && asks_for_tools(meta.request);
        StreamTranslator::Ollama(
            ndjson::Reader::new(),
            super::StreamTranslator::new(meta.model, meta.id, meta.created, meta.include_usage, tools),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, super::error(status, body))
    }
}
