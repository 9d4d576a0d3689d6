//! Amazon SageMaker endpoints, as LiteLLM calls them: `InvokeEndpoint` at
//! `https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint}/invocations` and
//! `InvokeEndpointWithResponseStream` at `…/invocations-response-stream`, SigV4-signed for
//! service `sagemaker` with the deployment's AWS credentials (the same chain as Bedrock's:
//! `aws_*` settings, environment, web identity, profiles, ECS, EC2, assume-role). An `api_base`
//! takes the place of the runtime host (a VPC endpoint, a proxy).
//!
//! Two shapes, as LiteLLM's two prefixes:
//! - `sagemaker/`: a Hugging Face TGI container — the chat as one prompt in `inputs`, sampling in
//!   `parameters` ([`crate::textgen::tgi_request`]), answered `[{"generated_text"}]` (or
//!   JumpStart's `generation`);
//! - `sagemaker_chat/`: a container serving OpenAI's chat (TGI's Messages API, vLLM, LMI): the
//!   request as the client sent it (`model` set to the endpoint), the answer OpenAI's.
//!
//! `sagemaker/` embeds as LiteLLM's SageMaker handler does, for Hugging Face (JumpStart) embedding
//! containers: `{"text_inputs": [...]}` with `CustomAttributes: accept_eula=true`, answered
//! `{"embedding": [[...]]}` (or TEI's bare list of vectors). The containers count no tokens: the
//! usage is LiteLLM's estimate, the inputs' `cl100k_base` tokens.
//!
//! A stream arrives in AWS's event-stream framing: each `PayloadPart` event carries the
//! container's own SSE bytes (cut anywhere), which are read as TGI's events or OpenAI's chunks;
//! an `exception` message (`ModelStreamError`, `InternalStreamFailure`) ends the stream with its
//! message.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::{splice, sse, ApiError};

use crate::bedrock::{EventMessage, EventStreamDecoder};
use crate::chunks::{restamped_answer, usage_json, Restamped};
use crate::provider::{
    parse_request, Address, AnswerMeta, AwsSigning, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;
use crate::textgen::{self, TgiStream};

/// Which container API the endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `sagemaker/`: TGI's `inputs`/`parameters`.
    Tgi,
    /// `sagemaker_chat/`: OpenAI's chat.
    Chat,
}

#[derive(Debug)]
pub struct SageMaker {
    address: Address,
    sigv4: AwsSigning,
    shape: Shape,
    upstream_model: Bytes,
    drop_params: bool,
}

/// The runtime URL for `endpoint`: `api_base` (without a trailing slash) or the region's host.
pub fn url(api_base: Option<&str>, region: &str, endpoint: &str, stream: bool) -> String {
    let base = match api_base.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => format!("https://runtime.sagemaker.{region}.amazonaws.com"),
    };
    let op = if stream { "invocations-response-stream" } else { "invocations" };
    format!("{base}/endpoints/{}/{op}", sluice_sigv4::uri_encode(endpoint, false))
}

impl SageMaker {
    pub fn new(p: &Params<'_>, env: Env<'_>, shape: Shape) -> Result<Self, String> {
        let path = p.path();
        let region = p
            .aws_region_name
            .map(str::to_string)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                format!(
                    "{path}.aws_region_name: missing; set it (or AWS_REGION) to the endpoint's region, e.g. us-west-2"
                )
            })?;
        let endpoint = &p.model.upstream;
        let address =
            Address::new(p, url(p.api_base, &region, endpoint, false), url(p.api_base, &region, endpoint, true))?;
        let credentials = crate::bedrock::credentials(p, env, &region)?;
        Ok(SageMaker {
            address,
            sigv4: AwsSigning { credentials, region, service: "sagemaker" },
            shape,
            upstream_model: splice::json_string(endpoint),
            drop_params: p.drop_params,
        })
    }
}

/// The HF embedding container's body for an OpenAI embeddings request.
pub fn embed_request(openai: &Value, drop_params: bool) -> Result<Value, ApiError> {
    let (_, texts) = crate::embedding::checked(openai, "sagemaker", "a SageMaker embedding endpoint", drop_params)?;
    Ok(json!({ "text_inputs": texts }))
}

/// `{"embedding": [[...]]}` (or a bare list of vectors) as OpenAI's list, the tokens estimated.
pub fn embed_response(v: &Value, meta: &AnswerMeta<'_>) -> Result<Value, String> {
    let vectors = match v {
        Value::Array(vectors) => vectors,
        v => v.get("embedding").and_then(Value::as_array).ok_or("no `embedding` list")?,
    };
    let texts = crate::embedding::texts_in(meta.request);
    crate::embedding::answer(vectors, meta, crate::embedding::estimated_tokens(texts.iter().map(String::as_str)))
}

/// What the container streams inside the event-stream's `PayloadPart`s.
#[derive(Debug)]
enum Inner {
    Tgi(TgiStream),
    /// OpenAI's chunks, re-stamped, their usage kept.
    Chat(Restamped),
}

/// Event-stream messages → the container's SSE → OpenAI chunks.
#[derive(Debug)]
pub struct Stream {
    sse: sse::Parser,
    inner: Inner,
    done: bool,
}

impl Stream {
    pub fn new(shape: Shape, model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        let inner = match shape {
            Shape::Tgi => Inner::Tgi(TgiStream::new(model, id, created, include_usage)),
            Shape::Chat => Inner::Chat(Restamped::new(model, id, created, include_usage)),
        };
        Stream { sse: sse::Parser::new(), inner, done: false }
    }

    pub fn on_message(&mut self, m: &EventMessage, out: &mut Vec<Value>) -> Result<(), String> {
        match m.header(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" | "error" => {
                let kind = m.header(":exception-type").or_else(|| m.header(":error-code")).unwrap_or("error");
                let parsed: Option<Value> = serde_json::from_slice(&m.payload).ok();
                let message = parsed
                    .as_ref()
                    .and_then(|v| v.get("Message").or_else(|| v.get("message")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| crate::errors::upstream_text(&m.payload));
                return Err(format!("SageMaker stream error ({kind}): {message}"));
            }
            _ => return Ok(()),
        }
        if m.header(":event-type") != Some("PayloadPart") {
            return Ok(());
        }
        self.sse.push(&m.payload);
        while let Some(e) = self.sse.next_event().map_err(|_| "an SSE line over 16 MB".to_string())? {
            self.on_event(&e.data, out)?;
        }
        Ok(())
    }

    fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        match &mut self.inner {
            Inner::Tgi(t) => t.on_event(data, out),
            Inner::Chat(r) => r.on_event(data, out),
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Value>) -> Result<(), String> {
        if let Some(e) = self.sse.finish() {
            self.on_event(&e.data, out)?;
        }
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        match &mut self.inner {
            Inner::Tgi(t) => out.extend(t.finish_values()),
            Inner::Chat(r) => out.extend(r.finish_values()),
        }
        Ok(())
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        match &self.inner {
            Inner::Tgi(t) => t.usage(),
            Inner::Chat(r) => r.usage(),
        }
    }

    pub fn usage_object(&self) -> Option<Value> {
        self.usage().map(usage_json)
    }
}

impl ChatProvider for SageMaker {
    /// Embeddings on `sagemaker/` only: LiteLLM's `sagemaker_chat/` has none.
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Chat || (endpoint == Endpoint::Embeddings && self.shape == Shape::Tgi)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let mut req = match self.shape {
            Shape::Tgi if call.endpoint == Endpoint::Embeddings => {
                let body = embed_request(&parse_request(call.body)?, self.drop_params)?;
                let mut req = self.address.request(false, crate::provider::json_body(&body));
                req.headers.insert(
                    HeaderName::from_static("x-amzn-sagemaker-custom-attributes"),
                    HeaderValue::from_static("accept_eula=true"),
                );
                req
            }
            Shape::Tgi => {
                let request = parse_request(call.body)?;
                let body = textgen::tgi_request(&request, "sagemaker", Map::new(), &[], call.stream, self.drop_params)?;
                self.address.request(call.stream, crate::provider::json_body(&body))
            }
            // The client's bytes, with the endpoint's name as `model`.
            Shape::Chat => {
                let mut req = self.address.request(call.stream, Bytes::new());
                req.body = match &call.model_span {
                    Some(span) => splice::replace(call.body, span.clone(), self.upstream_model.clone()),
                    None => crate::openai::insert_model(call.body, &self.upstream_model),
                };
                req
            }
        };
        // Signed by the server once the credentials are in hand (`UpstreamRequest::sign_aws`).
        req.aws = Some(self.sigv4.clone());
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        match self.shape {
            _ if meta.endpoint == Endpoint::Embeddings => embed_response(&parsed, meta),
            Shape::Tgi => textgen::tgi_response(&parsed, meta.model, meta.id, meta.created),
            Shape::Chat => restamped_answer(&parsed, meta.model, meta.id, meta.created),
        }
        .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::SageMaker(
            EventStreamDecoder::new(),
            Stream::new(self.shape, meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    /// SageMaker's runtime errors (`{"ErrorCode", "Message"}` with `x-amzn-errortype`) are AWS's,
    /// classified as Bedrock's are.
    fn map_error(&self, status: u16, headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(
            &self.address.provider,
            crate::bedrock::error(status, headers.get("x-amzn-errortype"), body),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bedrock::encode_event;

    #[test]
    fn urls_are_the_runtimes() {
        assert_eq!(
            url(None, "us-west-2", "my-endpoint", false),
            "https://runtime.sagemaker.us-west-2.amazonaws.com/endpoints/my-endpoint/invocations"
        );
        assert_eq!(
            url(Some("http://127.0.0.1:9/"), "x", "e", true),
            "http://127.0.0.1:9/endpoints/e/invocations-response-stream"
        );
    }

    fn part(bytes: &[u8]) -> EventMessage {
        EventMessage {
            headers: vec![(":event-type".into(), "PayloadPart".into()), (":message-type".into(), "event".into())],
            payload: bytes.to_vec(),
        }
    }

    #[test]
    fn tgi_events_cut_across_payload_parts() {
        let mut s = Stream::new(Shape::Tgi, "g", "c", 1, true);
        let mut out = Vec::new();
        let sse = concat!(
            "data:{\"token\":{\"text\":\"He\",\"special\":false},\"generated_text\":null,\"details\":null}\n\n",
            "data:{\"token\":{\"text\":\"llo\",\"special\":false},\"generated_text\":\"Hello\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2}}\n\n"
        );
        for piece in sse.as_bytes().chunks(17) {
            s.on_message(&part(piece), &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert!(out.iter().any(|c| c["choices"][0]["finish_reason"] == "length"));
        assert_eq!(s.usage(), Some((0, 2)));
    }

    #[test]
    fn chat_chunks_are_restamped_and_exceptions_end_the_stream() {
        let mut s = Stream::new(Shape::Chat, "g", "chatcmpl-1", 1, true);
        let mut out = Vec::new();
        s.on_message(&part(b"data: {\"id\":\"x\",\"model\":\"tgi\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"), &mut out).unwrap();
        s.finish(&mut out).unwrap();
        assert_eq!(out[0]["model"], "g");
        assert_eq!(out[0]["id"], "chatcmpl-1");
        assert_eq!(out.last().unwrap()["usage"]["total_tokens"], 4);
        let frame = encode_event(
            &[(":message-type", "exception"), (":exception-type", "ModelStreamError")],
            br#"{"Message":"model crashed"}"#,
        );
        let mut d = EventStreamDecoder::new();
        d.push(&frame);
        let m = d.next_message().unwrap().unwrap();
        let e = Stream::new(Shape::Chat, "g", "c", 1, false).on_message(&m, &mut out).unwrap_err();
        assert_eq!(e, "SageMaker stream error (ModelStreamError): model crashed");
    }

    #[test]
    fn embeddings_send_text_inputs_and_estimate_tokens() {
        let req = json!({"model": "g", "input": ["hello world", "hi"], "encoding_format": "float"});
        assert_eq!(embed_request(&req, false).unwrap(), json!({"text_inputs": ["hello world", "hi"]}));
        assert!(embed_request(&json!({"input": "x", "dimensions": 2}), false).is_err());
        let body = req.to_string();
        let meta = crate::embedding::test_meta(body.as_bytes());
        let out = embed_response(&json!({"embedding": [[0.5], [1.0]]}), &meta).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([1.0]));
        assert_eq!(out["usage"]["prompt_tokens"], 3, "cl100k: hello world = 2, hi = 1");
        let out = embed_response(&json!([[0.5], [1.0]]), &meta).unwrap();
        assert_eq!(out["data"].as_array().unwrap().len(), 2, "TEI's bare list");
        assert!(embed_response(&json!({"generated_text": "x"}), &meta).is_err());
    }

    #[test]
    fn a_tgi_request_sets_stream_in_the_body() {
        let req =
            json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0});
        let out = textgen::tgi_request(&req, "sagemaker", Map::new(), &[], true, false).unwrap();
        assert_eq!(
            out,
            json!({"inputs": "hi", "parameters": {"max_new_tokens": 3, "temperature": 0.01}, "stream": true})
        );
    }
}
