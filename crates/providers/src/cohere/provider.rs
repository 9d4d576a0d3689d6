//! Cohere as a [`ChatProvider`]: chat (`/v2/chat`), embeddings (`/v2/embed`) and rerank
//! (`/v2/rerank`).

use http::{HeaderName, Uri};
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

use super::TranslateError;

#[derive(Debug)]
pub struct Cohere {
    address: Address,
    embed_url: Uri,
    rerank_url: Uri,
    model: String,
    drop_params: bool,
}

impl Cohere {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let key = p
            .api_key
            .map(str::to_string)
            .or_else(|| env("COHERE_API_KEY"))
            .or_else(|| env("CO_API_KEY"))
            .ok_or_else(|| format!("{}.api_key: missing; set it (or COHERE_API_KEY) to a Cohere key", p.path()))?;
        let base = super::base(p.api_base, env);
        let base = base.trim_end_matches('/');
        // A base naming the chat route itself is taken as it is, as LiteLLM does.
        let root = base.strip_suffix("/v2/chat").or_else(|| base.strip_suffix("/v1/chat")).unwrap_or(base);
        let url = format!("{root}/v2/chat");
        let mut address = Address::new(p, url.clone(), url)?;
        address.headers.push(p.secret_header(HeaderName::from_static("authorization"), &format!("Bearer {key}"))?);
        Ok(Cohere {
            address,
            embed_url: p.uri(format!("{root}/v2/embed"))?,
            rerank_url: p.uri(format!("{root}/v2/rerank"))?,
            model: p.model.upstream.clone(),
            drop_params: p.drop_params,
        })
    }

    fn refused(e: TranslateError) -> ApiError {
        bad_param(e.param, e.message)
    }
}

impl ChatProvider for Cohere {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Embeddings | Endpoint::Rerank)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        if call.endpoint == Endpoint::Rerank {
            let body = super::rerank_request(&request, &self.model).map_err(Self::refused)?;
            let mut req = self.address.request(false, crate::provider::json_body(&body));
            req.url = self.rerank_url.clone();
            return Ok(req);
        }
        if call.endpoint == Endpoint::Embeddings {
            let (body, _) = super::embed_request(&request, &self.model).map_err(Self::refused)?;
            let mut req = self.address.request(false, crate::provider::json_body(&body));
            req.url = self.embed_url.clone();
            return Ok(req);
        }
        let body = super::chat_request(&request, &self.model, call.stream, self.drop_params).map_err(Self::refused)?;
        Ok(self.address.request(call.stream, crate::provider::json_body(&body)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        let out = match meta.endpoint {
            Endpoint::Embeddings => {
                super::embed_response(&parsed, meta.model, crate::embedding::wants_base64_in(meta.request))
            }
            Endpoint::Rerank => super::rerank_response(&parsed, meta.request),
            _ => super::chat_response(&parsed, meta.model, meta.id, meta.created),
        };
        out.map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Cohere(
            sse::Parser::new(),
            super::StreamTranslator::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, super::error(status, body))
    }
}
