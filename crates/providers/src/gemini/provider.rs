//! Gemini as a [`ChatProvider`]: Vertex AI (service-account OAuth) or Google AI Studio
//! (`x-goog-api-key`), addressed from `litellm_params` and the environment; chat, embeddings
//! (`:predict` on Vertex, `:batchEmbedContents` on AI Studio), image generation on Vertex's
//! Imagen models (`:predict`), and on Vertex speech (Cloud Text-to-Speech, `tts`).

use bytes::Bytes;
use http::{HeaderName, Uri};
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};
use std::sync::Arc;

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, TokenSource,
    TokenSources, UpstreamRequest,
};
use crate::stream::StreamTranslator;

/// Where Vertex runs when neither the deployment nor `VERTEXAI_LOCATION` says.
const DEFAULT_LOCATION: &str = "us-central1";

/// Where a `vertex_ai/` deployment runs and whose credential it calls with, read as LiteLLM
/// reads them: `litellm_params`, else the environment.
pub(crate) struct VertexPlace {
    /// A service-account key's path or JSON, or empty for Application Default Credentials.
    pub credentials: String,
    pub project: String,
    pub location: String,
}

impl VertexPlace {
    pub fn of(p: &Params<'_>, env: Env<'_>) -> Self {
        let credentials = p
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
        VertexPlace { credentials, project, location }
    }
}

pub struct Gemini {
    address: Address,
    /// Vertex's token source; AI Studio's key rides in the address's headers instead.
    token: Option<Arc<dyn TokenSource>>,
    /// Where embeddings go: Vertex's `predict` when a token source is set, else AI Studio's
    /// `batchEmbedContents`. Imagen's images are asked for at the same `predict`.
    embed_url: Uri,
    /// Vertex only: Cloud Text-to-Speech's `text:synthesize`, and the project it is billed to
    /// (`x-goog-user-project`).
    speech: Option<(Uri, Option<http::HeaderValue>)>,
    model: String,
    /// A Vertex Imagen model: it serves `/images/generations`.
    imagen: bool,
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
        let VertexPlace { credentials: source, project, location } = VertexPlace::of(p, env);
        let model = &p.model.upstream;
        let address = Address::new(
            p,
            super::vertex_url(p.api_base, &project, &location, model, false),
            super::vertex_url(p.api_base, &project, &location, model, true),
        )?;
        let embed_url = p.uri(super::vertex_url_for(p.api_base, &project, &location, model, "predict", false))?;
        let user_project = http::HeaderValue::from_str(&project).ok().filter(|_| !project.is_empty());
        Ok(Gemini {
            address,
            token: Some(tokens(&source)),
            embed_url,
            speech: Some((p.uri(super::tts::url(p.api_base))?, user_project)),
            model: model.clone(),
            imagen: super::imagen::is_imagen(model),
            drop_params: p.drop_params,
        })
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
        let embed_url = p.uri(super::gemini_url_for(p.api_base, model, "batchEmbedContents", false))?;
        Ok(Gemini {
            address,
            token: None,
            embed_url,
            speech: None,
            model: model.clone(),
            imagen: false,
            drop_params: p.drop_params,
        })
    }
}

impl ChatProvider for Gemini {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Embeddings)
            || (endpoint == Endpoint::Images && self.imagen)
            || (endpoint == Endpoint::Speech && self.speech.is_some())
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        if call.endpoint == Endpoint::Images {
            let request = parse_request(call.body)?;
            let body = super::imagen::request(&request, self.drop_params).map_err(|e| bad_param(e.param, e.message))?;
            let mut req = self.address.request(false, crate::provider::json_body(&body));
            req.url = self.embed_url.clone();
            req.token = self.token.clone();
            return Ok(req);
        }
        if let (Endpoint::Speech, Some((url, user_project))) = (call.endpoint, &self.speech) {
            let body = super::tts::request(&parse_request(call.body)?)?;
            let mut req = self.address.request(false, crate::provider::json_body(&body));
            req.url = url.clone();
            if let Some(project) = user_project {
                req.headers.insert(HeaderName::from_static("x-goog-user-project"), project.clone());
            }
            req.token = self.token.clone();
            return Ok(req);
        }
        if call.endpoint == Endpoint::Embeddings {
            let request = parse_request(call.body)?;
            let built = match self.token {
                Some(_) => super::embed::vertex_request(&request),
                None => super::embed::studio_request(&request, &self.model),
            };
            let (body, _) = built.map_err(|e| bad_param(e.param, e.message))?;
            let mut req = self.address.request(false, crate::provider::json_body(&body));
            req.url = self.embed_url.clone();
            req.token = self.token.clone();
            return Ok(req);
        }
        // Plain text chats skip the tree entirely (most traffic, and the seed's).
        let body = match super::fast::chat_request(call.body) {
            Some(pieces) => {
                let mut req = self.address.request(call.stream, Bytes::new());
                req.body = pieces;
                req.token = self.token.clone();
                return Ok(req);
            }
            None => {
                let request = parse_request(call.body)?;
                let opts = super::Options { drop_params: self.drop_params, ..Default::default() };
                let out = super::chat_request(&request, &opts).map_err(|e| bad_param(e.param, e.message))?;
                crate::provider::json_body(&out)
            }
        };
        let mut req = self.address.request(call.stream, body);
        req.token = self.token.clone();
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let malformed = |message: &str| crate::errors::malformed(&self.address.provider, message, body);
        match meta.endpoint {
            Endpoint::Images => super::imagen::response(&self.address.answer_json(body)?, meta.created)
                .map_err(|e| malformed(&e.message)),
            Endpoint::Embeddings => {
                let parsed = self.address.answer_json(body)?;
                let base64 = crate::embedding::wants_base64_in(meta.request);
                match self.token {
                    Some(_) => super::embed::vertex_response(&parsed, meta.model, base64),
                    None => super::embed::studio_response(&parsed, meta.model, base64),
                }
                .map_err(|e| malformed(&e.message))
            }
            // Chat, read in part: only what the translation uses is built.
            _ => {
                let parsed = super::response::read_answer(body)
                    .ok_or_else(|| malformed("upstream returned a body that is not JSON"))?;
                super::chat_response(&parsed, meta.model, meta.id, meta.created).map_err(|e| malformed(&e.message))
            }
        }
    }

    fn copies_texts_as_sent(&self) -> bool {
        true
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

    fn speech_in_json(&self) -> bool {
        true
    }

    fn speech_audio(&self, answer: &[u8], request: &[u8]) -> Result<(Bytes, &'static str), ApiError> {
        super::tts::audio(answer, request).map_err(|e| crate::errors::malformed(&self.address.provider, &e, answer))
    }
}
