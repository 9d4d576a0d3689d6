//! Bedrock as a [`ChatProvider`]: chat through Converse, embeddings through InvokeModel (Titan's
//! one text per call made as several exchanges, their answers joined), and an image model's
//! `/images/generations` through InvokeModel (`super::image`). Region and credentials come from
//! `litellm_params` and the AWS credential chain (`sluice_credentials::aws`: keys, environment,
//! web identity, shared files, ECS, EC2, assume-role), every request SigV4-signed over its exact
//! URL and body just before it goes out (or sent with a Bedrock API key as a bearer token).

use bytes::Bytes;
use http::Uri;
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;
use std::time::Duration;

use super::embed::{self, EmbedModel};
use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, AwsSigning, ChatCall, ChatProvider, Env, Headers, NextExchange,
    Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

#[derive(Debug)]
pub struct Bedrock {
    address: Address,
    /// `None` when a Bedrock API key rides in the address's headers instead.
    sigv4: Option<AwsSigning>,
    drop_params: bool,
    /// An image model's shape and its InvokeModel URL.
    image: Option<(super::image::ImageModel, Uri)>,
    /// The embedding model the id names, and its InvokeModel URL; `None` for a chat model.
    embedding: Option<(EmbedModel, Uri)>,
}

impl Bedrock {
    /// A missing region is the deployment's own failure (as in LiteLLM): its requests say what
    /// to set, the other deployments keep serving. Credentials are looked for when the first
    /// request is signed, so a role the platform gives later (or a file written later) serves.
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let path = p.path();
        let region = p
            .aws_region_name
            .map(str::to_string)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                format!("{path}.aws_region_name: missing; set it (or AWS_REGION) to the Bedrock region, e.g. us-east-1")
            })?;
        let id = super::model_id(&p.model.upstream);
        let mut address = Address::new(
            p,
            super::converse_url(p.api_base, &region, id, false),
            super::converse_url(p.api_base, &region, id, true),
        )?;
        let invoke = || p.uri(super::invoke_url(p.api_base, &region, id));
        let image = match super::image::image_model(id) {
            Some(model) => Some((model, invoke()?)),
            None => None,
        };
        let embedding = match EmbedModel::of(id) {
            Some(m) => Some((m, invoke()?)),
            None => None,
        };
        // A Bedrock API key is a bearer token; otherwise sign with AWS credentials.
        let bearer = p.api_key.map(str::to_string).or_else(|| env(super::BEARER_TOKEN_ENV));
        let sigv4 = match bearer {
            Some(k) => {
                address.headers.push(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {k}"))?);
                None
            }
            None => Some(AwsSigning { credentials: super::credentials(p, env, &region)?, region, service: "bedrock" }),
        };
        Ok(Bedrock { address, sigv4, drop_params: p.drop_params, image, embedding })
    }

    /// The InvokeModel request carrying one body, to be signed like a Converse one.
    fn invoke(&self, url: &Uri, body: &Value) -> UpstreamRequest {
        let mut req = self.address.request(false, crate::provider::json_body(body));
        req.url = url.clone();
        req.aws = self.sigv4.clone();
        req
    }

    /// The embedding model and the InvokeModel bodies of a client's embeddings request.
    fn embed_bodies(&self, request: &[u8]) -> Result<(EmbedModel, &Uri, Vec<Value>), ApiError> {
        let Some((model, url)) = &self.embedding else {
            return Err(ApiError::bad_request("this Bedrock model does not embed; use /v1/chat/completions"));
        };
        let request: Value = serde_json::from_slice(request)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
        Ok((*model, url, embed::invoke_bodies(*model, &request, self.drop_params)?))
    }
}

impl ChatProvider for Bedrock {
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Chat
            || (endpoint == Endpoint::Images && self.image.is_some())
            || (endpoint == Endpoint::Embeddings && self.embedding.is_some())
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        if let (Endpoint::Images, Some((model, url))) = (call.endpoint, &self.image) {
            let request = parse_request(call.body)?;
            let out =
                super::image::request(&request, *model, self.drop_params).map_err(|e| bad_param(e.param, e.message))?;
            return Ok(self.invoke(url, &out));
        }
        if call.endpoint == Endpoint::Embeddings {
            let (_, url, bodies) = self.embed_bodies(call.body)?;
            let first = bodies.first().ok_or_else(|| ApiError::bad_request("`input` is empty").param("input"))?;
            return Ok(self.invoke(url, first));
        }
        let request = parse_request(call.body)?;
        let opts = super::Options { drop_params: self.drop_params };
        let out = super::converse_request(&request, &opts).map_err(|e| bad_param(e.param, e.message))?;
        let mut req = self.address.request(call.stream, crate::provider::json_body(&out));
        // Signed by the server once the credentials are in hand (`UpstreamRequest::sign_aws`).
        req.aws = self.sigv4.clone();
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        if meta.endpoint == Endpoint::Embeddings {
            return self.parse_answers(&[Bytes::copy_from_slice(body)], meta);
        }
        if let (Endpoint::Images, Some((model, _))) = (meta.endpoint, &self.image) {
            let parsed = self.address.answer_json(body)?;
            return super::image::response(&parsed, *model, meta.created)
                .map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body));
        }
        let out = match super::response::read_answer(body) {
            Some(answer) => answer.into_openai(meta.model, meta.id, meta.created),
            None => super::converse_response(&self.address.answer_json(body)?, meta.model, meta.id, meta.created),
        };
        out.map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Bedrock(
            super::EventStreamDecoder::new(),
            super::StreamTranslator::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    /// Titan embeds one text per call: a request with several is several exchanges.
    fn in_exchanges(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Embeddings && self.embedding.as_ref().is_some_and(|(m, _)| m.one_text_per_call())
    }

    /// The call for the next text, until every text has had its own.
    fn next_exchange(
        &self,
        _answer: &[u8],
        request: &[u8],
        _stream: bool,
        made: u32,
    ) -> Result<Option<NextExchange>, ApiError> {
        let (_, url, bodies) = self.embed_bodies(request)?;
        Ok(bodies.get(made as usize).map(|body| NextExchange {
            request: self.invoke(url, body),
            after: Duration::ZERO,
            streams: false,
            keep_answer: true,
        }))
    }

    fn parse_answers(&self, answers: &[Bytes], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let Some((model, _)) = &self.embedding else {
            return self.parse_answer(answers.last().map_or(&[][..], |b| b.as_ref()), meta);
        };
        let parsed = answers.iter().map(|a| self.address.answer_json(a)).collect::<Result<Vec<_>, _>>()?;
        embed::answer(*model, &parsed, meta).map_err(|e| {
            crate::errors::malformed(&self.address.provider, &e, answers.last().map_or(&[][..], |b| b.as_ref()))
        })
    }

    fn map_error(&self, status: u16, headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, super::error(status, headers.get("x-amzn-errortype"), body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Bedrock deployment of `model` with a Bedrock API key (so nothing reads AWS credentials).
    fn bedrock(model: &str) -> Bedrock {
        let m = crate::catalogue::parse_model(model, None).unwrap();
        let p = Params {
            api_base: Some("http://127.0.0.1:9"),
            api_key: Some("bedrock-key"),
            aws_region_name: Some("us-east-1"),
            ..crate::provider::test_params(&m)
        };
        Bedrock::new(&p, &|_: &str| None).unwrap()
    }

    fn call(body: &Bytes, endpoint: Endpoint) -> ChatCall<'_> {
        ChatCall { endpoint, body, model_span: None, stream: false, now: 0 }
    }

    #[test]
    fn titan_is_one_invoke_call_per_text_and_the_answers_are_joined() {
        let b = bedrock("bedrock/invoke/amazon.titan-embed-text-v2:0");
        assert!(b.serves(Endpoint::Embeddings) && b.in_exchanges(Endpoint::Embeddings));
        assert!(!b.in_exchanges(Endpoint::Chat));
        let body = Bytes::from_static(br#"{"model":"g","input":["a","b"]}"#);
        let first = b.build_request(&call(&body, Endpoint::Embeddings)).unwrap();
        assert_eq!(first.url.to_string(), "http://127.0.0.1:9/model/amazon.titan-embed-text-v2%3A0/invoke");
        assert_eq!(&first.body[0][..], br#"{"inputText":"a"}"#);
        let next = b.next_exchange(b"{}", &body, false, 1).unwrap().unwrap();
        assert!(next.keep_answer && !next.streams);
        assert_eq!(&next.request.body[0][..], br#"{"inputText":"b"}"#);
        assert!(b.next_exchange(b"{}", &body, false, 2).unwrap().is_none());
        let answers = [
            Bytes::from_static(br#"{"embedding":[0.5],"inputTextTokenCount":1}"#),
            Bytes::from_static(br#"{"embedding":[1.0],"inputTextTokenCount":2}"#),
        ];
        let out = b.parse_answers(&answers, &crate::embedding::test_meta(&body)).unwrap();
        assert_eq!(
            (out["data"][1]["embedding"][0].as_f64(), out["usage"]["prompt_tokens"].as_u64()),
            (Some(1.0), Some(3))
        );
        assert!(b.parse_answers(&answers[..1], &crate::embedding::test_meta(&body)).is_ok());
        assert!(b.parse_answers(&[Bytes::from_static(b"nope")], &crate::embedding::test_meta(&body)).is_err());
    }

    #[test]
    fn cohere_is_one_call_and_chat_models_do_not_embed() {
        let b = bedrock("bedrock/cohere.embed-english-v3");
        assert!(b.serves(Endpoint::Embeddings) && !b.in_exchanges(Endpoint::Embeddings));
        let body = Bytes::from_static(br#"{"model":"g","input":["a","b"]}"#);
        let req = b.build_request(&call(&body, Endpoint::Embeddings)).unwrap();
        assert_eq!(req.url.path(), "/model/cohere.embed-english-v3/invoke");
        let chat = bedrock("bedrock/invoke/anthropic.claude-3-haiku-20240307-v1:0");
        assert!(!chat.serves(Endpoint::Embeddings));
        let body = Bytes::from_static(br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#);
        let req = chat.build_request(&call(&body, Endpoint::Chat)).unwrap();
        assert_eq!(req.url.path(), "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    }
}
