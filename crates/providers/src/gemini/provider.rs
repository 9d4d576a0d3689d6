//! Gemini as a [`ChatProvider`]: Vertex AI (service-account OAuth) or Google AI Studio
//! (`x-goog-api-key`), addressed from `litellm_params` and the environment.

use bytes::Bytes;
use http::HeaderName;
use serde_json::Value;
use sluice_wire::{sse, ApiError};
use std::sync::Arc;

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, TokenSource,
    TokenSources, UpstreamRequest,
};
use crate::stream::StreamTranslator;

/// Where Vertex runs when neither the deployment nor `VERTEXAI_LOCATION` says.
const DEFAULT_LOCATION: &str = "us-central1";

pub struct Gemini {
    address: Address,
    /// Vertex's token source; AI Studio's key rides in the address's headers instead.
    token: Option<Arc<dyn TokenSource>>,
    drop_params: bool,
}

impl std::fmt::Debug for Gemini {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gemini")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "service account"))
            .finish()
    }
}

impl Gemini {
    /// Vertex AI. The key is read on first use, as LiteLLM does: a config naming a key that is
    /// not there yet still loads, and requests say what is missing.
    pub fn vertex(p: &Params<'_>, env: Env<'_>, tokens: TokenSources<'_>) -> Result<Self, String> {
        let source = p
            .vertex_credentials
            .map(str::to_string)
            .or_else(|| env("GOOGLE_APPLICATION_CREDENTIALS"))
            .unwrap_or_default();
        let project = p.vertex_project.map(str::to_string).or_else(|| env("VERTEXAI_PROJECT")).unwrap_or_default();
        let location = p
            .vertex_location
            .map(str::to_string)
            .or_else(|| env("VERTEXAI_LOCATION"))
            .unwrap_or_else(|| DEFAULT_LOCATION.into());
        let model = &p.model.upstream;
        let address = Address::new(
            p,
            super::vertex_url(p.api_base, &project, &location, model, false),
            super::vertex_url(p.api_base, &project, &location, model, true),
        )?;
        Ok(Gemini { address, token: Some(tokens(&source)), drop_params: p.drop_params })
    }

    /// Google AI Studio's Gemini API, with its key from `api_key` or `GEMINI_API_KEY`.
    pub fn studio(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let key = p.api_key.map(str::to_string).or_else(|| env("GEMINI_API_KEY")).ok_or_else(|| {
            format!("{}.api_key: missing; set it (or GEMINI_API_KEY) to a Google AI Studio key", p.path())
        })?;
        let model = &p.model.upstream;
        let mut address =
            Address::new(p, super::gemini_url(p.api_base, model, false), super::gemini_url(p.api_base, model, true))?;
        address.headers.push(p.secret_header(HeaderName::from_static("x-goog-api-key"), &key)?);
        Ok(Gemini { address, token: None, drop_params: p.drop_params })
    }
}

impl ChatProvider for Gemini {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        // Plain text chats skip the tree entirely (most traffic, and the seed's).
        let body = match super::fast::chat_request(call.body) {
            Some(body) => Bytes::from(body),
            None => {
                let request = parse_request(call.body)?;
                let opts = super::Options { drop_params: self.drop_params, ..Default::default() };
                let out = super::chat_request(&request, &opts).map_err(|e| bad_param(e.param, e.message))?;
                Bytes::from(out.to_string())
            }
        };
        let mut req = self.address.request(call.stream, body);
        req.token = self.token.clone();
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        super::chat_response(&parsed, meta.model, meta.id, meta.created)
            .map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Gemini(
            sse::Parser::new(),
            super::StreamTranslator::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, super::error(status, body))
    }
}
