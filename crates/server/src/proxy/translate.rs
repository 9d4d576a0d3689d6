//! Calls to providers that speak another format (Vertex/Gemini, Anthropic): the OpenAI request is
//! parsed, translated, sent, and the answer (or stream) translated back.
//!
//! Unlike the OpenAI passthrough this builds JSON trees: translation needs them, and these
//! providers' latencies dwarf the cost.

use super::relay::Stage;
use super::upstream;
use super::ReadError;
use crate::app::{Dialect, TranslatedTarget, UpstreamAuth};
use crate::exchange::Reply;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue};
use sluice_providers::{anthropic, bedrock, gemini};
use sluice_router::{Attempt, Failed, Failure};
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};
use std::time::Instant;

use super::attempt::{CallError, UpstreamCall};
use crate::app::Target;

/// A provider's stream decoder and translator, behind one face: bytes in, OpenAI chunks out.
enum StreamTr {
    Gemini(sse::Parser, gemini::StreamTranslator),
    Anthropic(sse::Parser, anthropic::ChatStream),
    /// Bedrock streams are AWS's binary event-stream framing, not SSE.
    Bedrock(bedrock::EventStreamDecoder, bedrock::StreamTranslator),
}

impl StreamTr {
    fn push(&mut self, bytes: &[u8]) {
        match self {
            StreamTr::Gemini(p, _) | StreamTr::Anthropic(p, _) => p.push(bytes),
            StreamTr::Bedrock(d, _) => d.push(bytes),
        }
    }

    /// Every chunk the buffered bytes complete.
    fn drain(&mut self, out: &mut Vec<String>) -> Result<(), String> {
        match self {
            StreamTr::Gemini(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| "an SSE line over 16 MB".to_string())? {
                    out.extend(t.on_event(&e.data).map_err(|e| e.message)?);
                }
            }
            StreamTr::Anthropic(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| "an SSE line over 16 MB".to_string())? {
                    out.extend(t.on_event(e.name.as_deref(), &e.data).map_err(|e| e.message)?);
                }
            }
            StreamTr::Bedrock(d, t) => {
                while let Some(m) = d.next_message()? {
                    out.extend(t.on_message(&m).map_err(|e| e.message)?);
                }
            }
        }
        Ok(())
    }

    /// Token usage, once the provider has reported it.
    fn usage(&self) -> Option<(u64, u64)> {
        match self {
            StreamTr::Gemini(_, t) => t.usage(),
            StreamTr::Anthropic(_, t) => t.usage(),
            StreamTr::Bedrock(_, t) => t.usage(),
        }
    }

    /// End of the upstream body: whatever is left, then the closing chunks.
    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), String> {
        match self {
            StreamTr::Gemini(p, t) => {
                if let Some(e) = p.finish() {
                    out.extend(t.on_event(&e.data).map_err(|e| e.message)?);
                }
                out.extend(t.finish());
            }
            StreamTr::Anthropic(p, t) => {
                if let Some(e) = p.finish() {
                    out.extend(t.on_event(e.name.as_deref(), &e.data).map_err(|e| e.message)?);
                }
                out.extend(t.finish());
            }
            StreamTr::Bedrock(d, t) => {
                if d.pending() > 0 {
                    return Err("the upstream cut the event stream off mid-message".into());
                }
                out.extend(t.finish());
            }
        }
        Ok(())
    }
}

fn bad_param(e_param: Option<String>, message: String) -> Failed<CallError> {
    let mut api = ApiError::bad_request(message);
    if let Some(p) = e_param {
        api = api.param(p);
    }
    Failed { failure: Failure::status(400, None), error: CallError { api, upstream_headers: None } }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl UpstreamCall<'_> {
    pub(super) async fn forward_translated(
        &mut self,
        attempt: &Attempt<Target>,
        t: &TranslatedTarget,
    ) -> Result<Reply, Failed<CallError>> {
        let provider = &attempt.deployment.target.provider;
        if self.endpoint != Endpoint::Chat {
            return Err(bad_param(
                None,
                format!(
                    "{} is not supported for provider {} yet; use /chat/completions with this model group",
                    self.endpoint.route(),
                    provider.name
                ),
            ));
        }
        if let (Dialect::Anthropic, Some(native)) = (t.dialect, self.native_anthropic) {
            return self.forward_native_anthropic(attempt, t, native).await;
        }
        let stream = self.view.stream;
        // Plain text chats to Gemini skip the tree entirely (most traffic, and the seed's).
        let fast = match t.dialect {
            Dialect::Gemini => gemini::fast::chat_request(self.body),
            _ => None,
        };
        let upstream_body = match fast {
            Some(body) => Bytes::from(body),
            None => Bytes::from(
                self.translate_request(t).map_err(|(param, message)| bad_param(param, message))?.to_string(),
            ),
        };
        let url = if stream { &t.stream_url } else { &t.url };
        let mut req = http::Request::new(super::body::ChainBody::full(upstream_body.clone()));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = url.clone();
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &t.static_headers {
            h.insert(name.clone(), value.clone());
        }
        let sent = Instant::now();
        match &t.auth {
            UpstreamAuth::None => {}
            UpstreamAuth::SigV4 { credentials, region } => {
                // Signed over the exact URL and body bytes sent.
                let signed = bedrock::sign("POST", &url.to_string(), &upstream_body, region, credentials, now_unix())
                    .map_err(|e| bad_param(None, format!("cannot sign the Bedrock request: {e}")))?;
                for (name, value) in signed {
                    if let Ok(mut v) = HeaderValue::from_str(&value) {
                        v.set_sensitive(name == "authorization" || name == "x-amz-security-token");
                        h.insert(http::HeaderName::from_static(name), v);
                    }
                }
            }
            UpstreamAuth::Vertex(source) => match source.token(&self.app.client).await {
                Ok(token) => {
                    h.insert(header::AUTHORIZATION, token);
                }
                Err(message) => {
                    let api = ApiError::new(401, format!("litellm.AuthenticationError: VertexAIException - {message}"))
                        .kind("auth_error");
                    return Err(Failed {
                        failure: Failure::status(401, None),
                        error: CallError { api, upstream_headers: None },
                    });
                }
            },
        }

        let timeout = if stream { t.stream_timeout } else { t.timeout };
        let (up, incoming, _) = self.send(provider, req, timeout).await?;
        let created = now_unix();
        let id = format!("chatcmpl-{}", self.facts.call_id.to_str().unwrap_or("sluice"));

        if !up.status.is_success() {
            let body = self.read_answer(incoming, sent + timeout, 1024 * 1024).await.unwrap_or_default();
            let status = up.status.as_u16();
            let (out_status, class, message) = match t.dialect {
                Dialect::Gemini => gemini::error(status, &body),
                Dialect::Anthropic => anthropic::error(status, &body),
                Dialect::Bedrock => {
                    let kind = up.headers.get_str("x-amzn-errortype");
                    bedrock::error(status, kind, &body)
                }
            };
            let tag = sluice_providers::errors::exception_tag(provider);
            let mut api = ApiError::new(out_status, format!("litellm.{class}: {tag} - {message}"));
            if out_status == 429 {
                api = api.kind("throttling_error");
            }
            let failure = Failure::status(out_status, super::attempt::retry_after(&up.headers));
            return Err(Failed { failure, error: CallError { api, upstream_headers: Some(up.headers) } });
        }

        if stream {
            let usage = self.view.include_usage;
            let model = self.client_model;
            let tr = match t.dialect {
                Dialect::Gemini => {
                    StreamTr::Gemini(sse::Parser::new(), gemini::StreamTranslator::new(model, &id, created, usage))
                }
                Dialect::Anthropic => {
                    StreamTr::Anthropic(sse::Parser::new(), anthropic::ChatStream::new(model, created, usage))
                }
                Dialect::Bedrock => StreamTr::Bedrock(
                    bedrock::EventStreamDecoder::new(),
                    bedrock::StreamTranslator::new(model, &id, created, usage),
                ),
            };
            let stage = TranslatedStage {
                tr,
                metrics: attempt.deployment.target.metrics.clone().map(|m| (m, self.client_model.to_string())),
                sent_any: false,
                provider: *provider,
                charge: self.facts.charge.clone(),
            };
            let relay = super::relay::Relay::new(incoming, stage, *provider, t.stream_timeout);
            return self.start_stream(attempt, &up.headers, relay).await;
        }

        let body = match self.read_answer(incoming, sent + timeout, 256 * 1024 * 1024).await {
            Ok(b) => b,
            Err(ReadError::Timeout) => {
                return Err(fail(Failure::timeout(), upstream::timeout_error(provider, timeout)));
            }
            Err(ReadError::Broken) => {
                return Err(fail(
                    Failure::connection(),
                    upstream::malformed_error(provider, "the upstream connection broke while sending its answer", b""),
                ));
            }
        };
        let parsed: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            fail(
                Failure::status(500, None),
                upstream::malformed_error(provider, "upstream returned a body that is not JSON", &body),
            )
        })?;
        let out = match t.dialect {
            Dialect::Gemini => gemini::chat_response(&parsed, self.client_model, &id, created).map_err(|e| e.message),
            Dialect::Anthropic => anthropic::chat_response(&parsed, self.client_model, created).map_err(|e| e.message),
            Dialect::Bedrock => {
                bedrock::converse_response(&parsed, self.client_model, &id, created).map_err(|e| e.message)
            }
        }
        .map_err(|message| fail(Failure::status(500, None), upstream::malformed_error(provider, &message, &body)))?;
        let usage = out
            .get("usage")
            .map(|u| (u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0)));
        self.app.router.record_success(attempt, usage.map(|(p, c)| p + c));
        if let Some(m) = &attempt.deployment.target.metrics {
            let usage = usage.map(|(p, c)| sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
            m.attempt_succeeded(self.client_model, self.facts.caller(), attempt.elapsed(), None, usage);
        }
        self.settle(out.get("usage").and_then(sluice_wire::sniff::Usage::from_value));
        let body = [Bytes::from(out.to_string()), Bytes::new(), Bytes::new()];
        let mut reply = Reply::whole(http::StatusCode::OK, "application/json", body);
        reply.lines = self.finish(Some(&up.headers));
        Ok(reply)
    }
}

impl UpstreamCall<'_> {
    /// The OpenAI request as the provider's request, through the full translator.
    /// Errors are (parameter, message) for a 400.
    fn translate_request(&self, t: &TranslatedTarget) -> Result<serde_json::Value, (Option<String>, String)> {
        let request: serde_json::Value =
            serde_json::from_slice(self.body).map_err(|e| (None, format!("Request body is not valid JSON: {e}")))?;
        match t.dialect {
            Dialect::Gemini => {
                gemini::chat_request(&request, &gemini::Options { drop_params: t.drop_params, ..Default::default() })
                    .map_err(|e| (e.param, e.message))
            }
            Dialect::Bedrock => bedrock::converse_request(&request, &bedrock::Options { drop_params: t.drop_params })
                .map_err(|e| (e.param, e.message)),
            Dialect::Anthropic => anthropic::chat_request(
                &request,
                &t.upstream_model,
                &anthropic::Options { drop_params: t.drop_params, ..Default::default() },
            )
            .map_err(|e| (e.param, e.message)),
        }
    }
}

fn fail(failure: Failure, api: ApiError) -> Failed<CallError> {
    Failed { failure, error: CallError { api, upstream_headers: None } }
}

/// A provider's stream translated into OpenAI chunks: the relay's [`Stage`] for it.
struct TranslatedStage {
    tr: StreamTr,
    /// Where the stream's token usage is recorded at its end, with the requested model.
    metrics: Option<(sluice_metrics::DeploymentMetrics, String)>,
    /// Frames of the translation have gone to the client.
    sent_any: bool,
    provider: sluice_providers::Provider,
    /// Billed with the stream's usage when it ends, or with what it had reported if dropped.
    charge: Option<std::sync::Arc<crate::access::charge::Charge>>,
}

impl Stage for TranslatedStage {
    fn push(&mut self, bytes: &[u8]) {
        self.tr.push(bytes);
    }

    fn frames(&mut self, out: &mut BytesMut) -> Result<bool, ApiError> {
        let mut chunks = Vec::new();
        let drained = self.tr.drain(&mut chunks);
        put_frames(out, &chunks);
        if let Err(message) = drained {
            return Err(upstream::malformed_error(&self.provider, "upstream stream failed", message.as_bytes()));
        }
        self.sent_any |= !chunks.is_empty();
        Ok(false)
    }

    fn end(&mut self, out: &mut BytesMut, _frames_sent: bool) -> Result<(), ApiError> {
        let mut chunks = Vec::new();
        let finished = self.tr.finish(&mut chunks);
        put_frames(out, &chunks);
        if let Err(message) = finished {
            return Err(upstream::malformed_error(&self.provider, "upstream stream failed", message.as_bytes()));
        }
        self.sent_any = true;
        if let (Some((m, model)), Some((p, c))) = (&self.metrics, self.tr.usage()) {
            let caller = self.charge.as_ref().and_then(|c| c.caller());
            m.stream_usage(model, caller, sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
        }
        self.bill();
        out.put_slice(b"data: [DONE]\n\n");
        Ok(())
    }

    /// A stream the client left part-way is billed for what was reported so far.
    fn abandoned(&mut self) {
        if self.sent_any {
            self.bill();
        }
    }
}

impl TranslatedStage {
    fn bill(&mut self) {
        if let Some(c) = self.charge.take() {
            let (prompt_tokens, completion_tokens) = self.tr.usage().unwrap_or((0, 0));
            c.settle(sluice_providers::pricing::TokenUsage { prompt_tokens, completion_tokens, ..Default::default() });
        }
    }
}

/// OpenAI chunks as SSE `data:` frames.
fn put_frames(out: &mut BytesMut, chunks: &[String]) {
    for c in chunks {
        out.put_slice(b"data: ");
        out.put_slice(c.as_bytes());
        out.put_slice(b"\n\n");
    }
}

impl UpstreamCall<'_> {
    /// The front door meeting an Anthropic deployment: the client's own Messages request goes
    /// upstream untouched but for `model`, and the answer (or event stream) comes back as it is.
    async fn forward_native_anthropic(
        &mut self,
        attempt: &Attempt<Target>,
        t: &TranslatedTarget,
        native: &Bytes,
    ) -> Result<Reply, Failed<CallError>> {
        let provider = &attempt.deployment.target.provider;
        let upstream_model = sluice_wire::splice::json_string(&t.upstream_model);
        let parts = match sluice_wire::sniff::model_span(native) {
            Some(span) => sluice_wire::splice::replace(native, span, upstream_model),
            None => super::insert_model(native, &upstream_model),
        };
        let mut req = http::Request::new(super::body::ChainBody::new(parts));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = t.url.clone();
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &t.static_headers {
            h.insert(name.clone(), value.clone());
        }
        let timeout = if self.view.stream { t.stream_timeout } else { t.timeout };
        let (up, incoming, sent) = self.send(provider, req, timeout).await?;
        if !up.status.is_success() {
            let body = self.read_answer(incoming, sent + timeout, 1024 * 1024).await.unwrap_or_default();
            let (status, class, message) = anthropic::error(up.status.as_u16(), &body);
            let tag = sluice_providers::errors::exception_tag(provider);
            let api = ApiError::new(status, format!("litellm.{class}: {tag} - {message}"));
            let failure = Failure::status(status, super::attempt::retry_after(&up.headers));
            return Err(Failed { failure, error: CallError { api, upstream_headers: Some(up.headers) } });
        }
        self.app.router.record_success(attempt, None);
        if let Some(m) = &attempt.deployment.target.metrics {
            let ttft = attempt.elapsed();
            m.attempt_succeeded(self.client_model, self.facts.caller(), ttft, self.view.stream.then_some(ttft), None);
        }
        let mut h = http::HeaderMap::new();
        if let Some(ct) = up.headers.get("content-type").and_then(|v| HeaderValue::from_bytes(v).ok()) {
            h.insert(header::CONTENT_TYPE, ct);
        }
        let mut reply = Reply::stream(up.status, h, axum::body::Body::new(incoming));
        reply.lines = self.finish(Some(&up.headers));
        reply.anthropic_native = true;
        Ok(reply)
    }
}
