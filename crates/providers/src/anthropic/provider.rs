//! Anthropic as a [`ChatProvider`], and the native passthrough its own clients get at the
//! `/v1/messages` front door.

use bytes::Bytes;
use http::HeaderName;
use serde_json::Value;
use sluice_wire::{sse, ApiError};

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

#[derive(Debug)]
pub struct Anthropic {
    address: Address,
    upstream_model: String,
    /// The upstream model as a JSON string literal, spliced into native Messages requests.
    upstream_model_json: Bytes,
    drop_params: bool,
}

impl Anthropic {
    /// Missing credentials are the deployment's own failure: its requests say what to set.
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let key = p.api_key.map(str::to_string).or_else(|| env(super::KEY_ENV)).ok_or_else(|| {
            format!("{}.api_key: missing; set it (or ANTHROPIC_API_KEY) to an Anthropic key", p.path())
        })?;
        let url = super::url(p.api_base, env);
        let mut address = Address::new(p, url.clone(), url)?;
        for (name, value) in super::headers(&key, p.api_version) {
            if name == "x-api-key" {
                address.headers.push(p.secret_header(HeaderName::from_static("x-api-key"), &value)?);
            } else if let Ok(v) = http::HeaderValue::from_str(&value) {
                address.headers.push((HeaderName::from_static(name), v));
            }
        }
        Ok(Anthropic {
            address,
            upstream_model: p.model.upstream.clone(),
            upstream_model_json: sluice_wire::splice::json_string(&p.model.upstream),
            drop_params: p.drop_params,
        })
    }

    /// The client's own Messages request, sent as it is but for `model`.
    pub fn native_request(&self, body: &Bytes, stream: bool) -> UpstreamRequest {
        let mut req = self.address.request(stream, Bytes::new());
        req.body = match sluice_wire::sniff::model_span(body) {
            Some(span) => sluice_wire::splice::replace(body, span, self.upstream_model_json.clone()),
            None => crate::openai::insert_model(body, &self.upstream_model_json),
        };
        req
    }
}

impl ChatProvider for Anthropic {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let opts = super::Options { drop_params: self.drop_params, ..Default::default() };
        let out =
            super::chat_request(&request, &self.upstream_model, &opts).map_err(|e| bad_param(e.param, e.message))?;
        Ok(self.address.request(call.stream, crate::provider::json_body(&out)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let out = match super::read_answer(body) {
            Some(answer) => answer.into_openai(meta.model, meta.created),
            None => super::chat_response(&self.address.answer_json(body)?, meta.model, meta.created),
        };
        out.map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Anthropic(
            sse::Parser::new(),
            super::ChatStream::new(meta.model, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, super::error(status, body))
    }
}
