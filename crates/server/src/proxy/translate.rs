//! Calls to providers that speak another format (Gemini, Anthropic, Bedrock): the deployment's
//! provider builds the request and reads the answer ([`ChatProvider`]); this module sends it and
//! relays the stream. Nothing here knows which provider it is talking to.
//!
//! Unlike the OpenAI passthrough these calls build JSON trees: translation needs them, and these
//! providers' latencies dwarf the cost.

use super::answer::UpstreamHeaders;
use super::relay::Step;
use super::upstream;
use super::{read_upstream, ReadError};
use crate::app::Target;
use axum::response::Response;
use bytes::{BufMut, BytesMut};
use http::{header, HeaderValue};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_providers::errors::{auth_failed, malformed};
use sluice_providers::{anthropic, AnswerMeta, ChatCall, ChatProvider, StreamTranslator, Translated, UpstreamRequest};
use sluice_router::{Attempt, Failed, Failure};
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;
use std::time::{Duration, Instant};

use super::attempt::{CallError, NativeAnthropic, UpstreamCall};

impl sluice_providers::provider::Headers for UpstreamHeaders {
    fn get(&self, name: &str) -> Option<&str> {
        self.get_str(name)
    }
}

fn fail(failure: Failure, api: ApiError) -> Failed<CallError> {
    Failed { failure, error: CallError { api, upstream_headers: None } }
}

/// A request the provider refused to build: its status (a 400) is the failure's.
fn refused(api: ApiError) -> Failed<CallError> {
    fail(Failure::status(api.status, None), api)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The provider's request description as an HTTP request, with `authorization` when a token
/// was fetched for it.
fn to_http(req: UpstreamRequest, token: Option<HeaderValue>) -> http::Request<super::body::ChainBody> {
    let mut out = http::Request::new(super::body::ChainBody::new(req.body));
    *out.method_mut() = http::Method::POST;
    *out.uri_mut() = req.url;
    let h = out.headers_mut();
    for (name, value) in req.headers {
        h.insert(name, value);
    }
    if let Some(token) = token {
        h.insert(header::AUTHORIZATION, token);
    }
    out
}

impl UpstreamCall<'_> {
    pub(super) async fn forward_translated(
        &mut self,
        attempt: &Attempt<Target>,
        t: &Translated,
    ) -> Result<Response, Failed<CallError>> {
        let provider = &attempt.deployment.target.provider;
        if self.endpoint != Endpoint::Chat {
            return Err(refused(ApiError::bad_request(format!(
                "{} is not supported for provider {} yet; use /chat/completions with this model group",
                self.endpoint.route(),
                provider.name
            ))));
        }
        let stream = self.view.stream;
        // The front door's own format reaching a provider that speaks it: bytes forwarded.
        if let Some(native) = self.native_anthropic.and_then(|body| t.native_messages(body, stream)) {
            return self.forward_native(attempt, t, native).await;
        }
        let call = ChatCall {
            endpoint: self.endpoint,
            body: self.body,
            model_span: self.view.model_span.clone(),
            stream,
            now: now_unix(),
        };
        let built = t.build_request(&call).map_err(refused)?;
        let timeout = built.timeout;
        let sent = Instant::now();
        let token = match &built.token {
            None => None,
            Some(source) => match source.token().await {
                Ok(token) => Some(token),
                Err(message) => {
                    self.meta.upstream += sent.elapsed();
                    return Err(fail(Failure::status(401, None), auth_failed(provider, &message)));
                }
            },
        };
        let (up, incoming, _) = self.send(provider, to_http(built, token), timeout).await?;
        let created = now_unix();
        let id = format!("chatcmpl-{}", self.meta.call_id.to_str().unwrap_or("sluice"));
        let meta = AnswerMeta { model: self.client_model, id: &id, created, include_usage: self.view.include_usage };

        if !up.status.is_success() {
            let body = read_upstream(incoming, sent + timeout, 1024 * 1024).await.unwrap_or_default();
            self.meta.upstream += sent.elapsed();
            let api = t.map_error(up.status.as_u16(), &up.headers, &body);
            let failure = Failure::status(api.status, super::attempt::retry_after(&up.headers));
            return Err(Failed { failure, error: CallError { api, upstream_headers: Some(up.headers) } });
        }

        // A `/v1/messages` client gets Anthropic's shapes straight from the provider's
        // translation: one translation per chunk, no OpenAI text in between.
        let front_door = self.native_anthropic.is_some();
        if stream {
            let out = match front_door {
                true => Out::Messages(anthropic::MessagesStream::new(self.client_model)),
                false => Out::OpenAi,
            };
            let relay = TranslatedRelay {
                upstream: incoming,
                tr: t.stream_translator(&meta),
                out,
                metrics: attempt.deployment.target.metrics.clone().map(|m| (m, self.client_model.to_string())),
                idle: timeout,
                ended: false,
                sent_any: false,
                provider: *provider,
                charge: self.meta.charge.clone(),
            };
            let mut resp = self.start_stream(attempt, sent, &up.headers, relay).await?;
            if front_door {
                resp.extensions_mut().insert(NativeAnthropic);
            }
            return Ok(resp);
        }

        let body = match read_upstream(incoming, sent + timeout, 256 * 1024 * 1024).await {
            Ok(b) => b,
            Err(ReadError::Timeout) => {
                self.meta.upstream += sent.elapsed();
                return Err(fail(Failure::timeout(), upstream::timeout_error(provider, timeout)));
            }
            Err(ReadError::Broken) => {
                self.meta.upstream += sent.elapsed();
                return Err(fail(
                    Failure::connection(),
                    malformed(provider, "the upstream connection broke while sending its answer", b""),
                ));
            }
        };
        self.meta.upstream += sent.elapsed();
        let out = t.parse_answer(&body, &meta).map_err(|api| fail(Failure::status(500, None), api))?;
        let usage = sluice_providers::provider::usage(&out);
        self.app.router.record_success(attempt, usage.map(|(p, c)| p + c));
        if let Some(m) = &attempt.deployment.target.metrics {
            let usage = usage.map(|(p, c)| sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
            m.attempt_succeeded(self.client_model, self.meta.caller(), attempt.elapsed(), None, usage);
        }
        self.settle(out.get("usage").and_then(sluice_wire::sniff::Usage::from_value));
        let (status, body) = match front_door {
            false => (http::StatusCode::OK, out),
            // The upstream answered: a translation that fails is ours, not the deployment's.
            true => match anthropic::openai_to_messages(&out, self.client_model) {
                Ok(msg) => (http::StatusCode::OK, msg),
                Err(e) => (http::StatusCode::INTERNAL_SERVER_ERROR, anthropic::error_body(500, &e.message)),
            },
        };
        let mut resp = Response::new(axum::body::Body::from(body.to_string()));
        *resp.status_mut() = status;
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.meta.finish(Some(&up.headers), &mut resp);
        if front_door {
            resp.extensions_mut().insert(NativeAnthropic);
        }
        Ok(resp)
    }

    /// The front door meeting a provider that speaks its format: the client's own request goes
    /// upstream untouched but for `model`, and the answer (or event stream) comes back as it is.
    async fn forward_native(
        &mut self,
        attempt: &Attempt<Target>,
        t: &Translated,
        req: UpstreamRequest,
    ) -> Result<Response, Failed<CallError>> {
        let provider = &attempt.deployment.target.provider;
        let timeout = req.timeout;
        let (up, incoming, sent) = self.send(provider, to_http(req, None), timeout).await?;
        self.meta.upstream += sent.elapsed();
        if !up.status.is_success() {
            let body = read_upstream(incoming, sent + timeout, 1024 * 1024).await.unwrap_or_default();
            let api = t.map_error(up.status.as_u16(), &up.headers, &body);
            let failure = Failure::status(api.status, super::attempt::retry_after(&up.headers));
            return Err(Failed { failure, error: CallError { api, upstream_headers: Some(up.headers) } });
        }
        self.app.router.record_success(attempt, None);
        if let Some(m) = &attempt.deployment.target.metrics {
            let ttft = attempt.elapsed();
            m.attempt_succeeded(self.client_model, self.meta.caller(), ttft, self.view.stream.then_some(ttft), None);
        }
        let mut resp = Response::new(axum::body::Body::new(incoming));
        *resp.status_mut() = up.status;
        let h = resp.headers_mut();
        if let Some(ct) = up.headers.get("content-type").and_then(|v| HeaderValue::from_bytes(v).ok()) {
            h.insert(header::CONTENT_TYPE, ct);
        }
        self.meta.finish(Some(&up.headers), &mut resp);
        resp.extensions_mut().insert(NativeAnthropic);
        Ok(resp)
    }
}

/// The shape a translated stream leaves in.
enum Out {
    /// OpenAI chunks as SSE `data:` frames, ended by `[DONE]`.
    OpenAi,
    /// Anthropic's events, for the `/v1/messages` front door.
    Messages(anthropic::MessagesStream),
}

impl Out {
    fn frames(&mut self, chunks: Vec<Value>) -> BytesMut {
        let mut out = BytesMut::new();
        match self {
            Out::OpenAi => {
                for c in chunks {
                    out.put_slice(b"data: ");
                    out.put_slice(c.to_string().as_bytes());
                    out.put_slice(b"\n\n");
                }
            }
            Out::Messages(m) => {
                for c in chunks {
                    for f in m.on_chunk(&c) {
                        out.put_slice(f.as_bytes());
                    }
                }
            }
        }
        out
    }

    /// The stream's closing frames.
    fn end(&mut self, out: &mut BytesMut) {
        match self {
            Out::OpenAi => out.put_slice(b"data: [DONE]\n\n"),
            Out::Messages(m) => {
                for f in m.finish() {
                    out.put_slice(f.as_bytes());
                }
            }
        }
    }

    /// An error after the stream started, in the stream's own format.
    fn error(&self, e: &ApiError, out: &mut BytesMut) {
        match self {
            Out::OpenAi => out.put_slice(e.to_sse_frame().as_bytes()),
            Out::Messages(_) => out.put_slice(anthropic::error_frame(500, &e.message).as_bytes()),
        }
    }
}

struct TranslatedRelay {
    upstream: super::pool::UpstreamBody,
    tr: StreamTranslator,
    out: Out,
    /// Where the stream's token usage is recorded at its end, with the requested model.
    metrics: Option<(sluice_metrics::DeploymentMetrics, String)>,
    idle: Duration,
    ended: bool,
    sent_any: bool,
    provider: sluice_providers::Provider,
    /// Billed with the stream's usage when it ends, or with what it had reported if dropped.
    charge: Option<std::sync::Arc<crate::access::charge::Charge>>,
}

impl Drop for TranslatedRelay {
    /// A stream the client left part-way is billed for what was reported so far; one that failed
    /// before its first frame is not (the router may retry it elsewhere).
    fn drop(&mut self) {
        if self.sent_any {
            self.bill();
        }
    }
}

impl super::relay::Stepper for TranslatedRelay {
    fn step(&mut self) -> impl std::future::Future<Output = Step> + Send {
        TranslatedRelay::step(self)
    }
}

impl TranslatedRelay {
    async fn step(&mut self) -> Step {
        if self.ended {
            return Step::End;
        }
        let mut chunks = Vec::new();
        loop {
            if let Err(message) = self.tr.drain(&mut chunks) {
                return self.fail(chunks, malformed(&self.provider, "upstream stream failed", message.as_bytes()));
            }
            if !chunks.is_empty() {
                self.sent_any = true;
                return Step::Data(self.out.frames(chunks).freeze());
            }
            match tokio::time::timeout(self.idle, self.upstream.frame()).await {
                Err(_) => return self.fail(chunks, upstream::timeout_error(&self.provider, self.idle)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.tr.push(&data);
                    }
                }
                Ok(Some(Err(_))) => {
                    let e = ApiError::new(
                        500,
                        sluice_providers::errors::upstream_message(
                            sluice_providers::ExceptionClass::ApiConnection,
                            &self.provider,
                            "Connection error: the upstream connection broke mid-stream.",
                        ),
                    );
                    return self.fail(chunks, e);
                }
                Ok(None) => {
                    if let Err(message) = self.tr.finish(&mut chunks) {
                        return self
                            .fail(chunks, malformed(&self.provider, "upstream stream failed", message.as_bytes()));
                    }
                    self.ended = true;
                    self.sent_any = true;
                    if let (Some((m, model)), Some((p, c))) = (&self.metrics, self.tr.usage()) {
                        let caller = self.charge.as_ref().and_then(|c| c.caller());
                        m.stream_usage(model, caller, sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
                    }
                    self.bill();
                    let mut out = self.out.frames(chunks);
                    self.out.end(&mut out);
                    return Step::Data(out.freeze());
                }
            }
        }
    }

    fn bill(&mut self) {
        if let Some(c) = self.charge.take() {
            let (prompt_tokens, completion_tokens) = self.tr.usage().unwrap_or((0, 0));
            c.settle(sluice_providers::pricing::TokenUsage { prompt_tokens, completion_tokens, ..Default::default() });
        }
    }

    fn fail(&mut self, chunks: Vec<Value>, e: ApiError) -> Step {
        self.ended = true;
        if !self.sent_any && chunks.is_empty() {
            return Step::Failed(e);
        }
        let mut out = self.out.frames(chunks);
        self.out.error(&e, &mut out);
        Step::Data(out.freeze())
    }
}
