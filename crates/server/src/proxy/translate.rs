//! Calls to providers that speak another format (Gemini, Anthropic, Bedrock, Ollama, Cohere,
//! Voyage, …), on the routes each serves (chat, embeddings, rerank, images): the deployment's provider builds the request and reads
//! the answer ([`ChatProvider`]); this module sends it and relays the stream, and follows a call
//! the provider makes in several exchanges (Replicate's predictions, Bedrock Titan's
//! embeddings). A completion to a provider that only chats is made through its chat
//! ([`text_completion`]), converted both ways here, once for every provider. Nothing here knows
//! which provider it is talking to.
//!
//! Unlike the OpenAI passthrough these calls build JSON trees: translation needs them, and these
//! providers' latencies dwarf the cost.

use super::answer::UpstreamHeaders;
use super::relay::{Relay, Stage};
use super::upstream;
use super::ReadError;
use crate::app::Target;
use crate::errors::Flavour;
use crate::exchange::Reply;
use bytes::{BufMut, BytesMut};
use http::{header, HeaderValue};
use serde_json::Value;
use sluice_providers::errors::{auth_failed, malformed};
use sluice_providers::{
    anthropic, text_completion, AnswerMeta, ChatCall, ChatProvider, StreamTranslator, Translated, UpstreamRequest,
};
use sluice_router::{Attempt, Failed, Failure};
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;
use std::time::Instant;

use super::attempt::{CallError, UpstreamCall};

/// The upstream's headers as a provider's error mapping reads them.
struct ErrorHeaders<'a>(&'a UpstreamHeaders);

impl sluice_providers::provider::Headers for ErrorHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get_str(name)
    }
}

fn fail(failure: Failure, api: ApiError) -> Failed<CallError> {
    Failed { failure, error: CallError { api, upstream_headers: None } }
}

/// A request the provider refused to build: its status (a 400) is the failure's.
fn refused(api: ApiError) -> Failed<CallError> {
    fail(Failure::status(api.status, None), api)
}

/// The most exchanges one call may take (a poll a second for ten minutes).
const MAX_EXCHANGES: u32 = 600;

pub(super) fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The provider's request description as an HTTP request, with `authorization` when a token
/// was fetched for it.
pub(super) fn to_http(req: UpstreamRequest, token: Option<HeaderValue>) -> http::Request<super::body::ChainBody> {
    let mut out = http::Request::new(super::body::ChainBody::new(req.body));
    *out.method_mut() = req.method;
    *out.uri_mut() = req.url;
    *out.headers_mut() = req.headers;
    if let Some(token) = token {
        out.headers_mut().insert(header::AUTHORIZATION, token);
    }
    out
}

impl UpstreamCall<'_> {
    pub(super) async fn forward_translated(
        &mut self,
        attempt: &Attempt<Target>,
        t: &Translated,
    ) -> Result<Reply, Failed<CallError>> {
        let provider = self.target_of(attempt).provider;
        let provider = &provider;
        // A completion to a provider that only chats is made through its chat API: the request,
        // answer and stream converted here, around the provider's own chat translation.
        let through_chat = text_completion::through_chat(t, self.endpoint);
        if !t.serves(self.endpoint) && !through_chat {
            let served: Vec<&str> = [
                Endpoint::Chat,
                Endpoint::Completions,
                Endpoint::Embeddings,
                Endpoint::Rerank,
                Endpoint::Images,
                Endpoint::Speech,
                Endpoint::Transcriptions,
            ]
            .into_iter()
            .filter(|e| t.serves(*e) || text_completion::through_chat(t, *e))
            .map(Endpoint::route)
            .collect();
            return Err(refused(ApiError::bad_request(format!(
                "{} is not supported for provider {} yet; use {} with this model group",
                self.endpoint.route(),
                provider.name,
                served.join(" or ")
            ))));
        }
        let stream = self.view.stream;
        // The front door's own format reaching a provider that speaks it: bytes forwarded.
        if let Some(native) = self.native_anthropic.and_then(|body| t.native_messages(body, stream)) {
            return self.forward_native(attempt, t, native).await;
        }
        // What the provider is asked: the client's call, or the chat a completion is made through.
        let (endpoint, body, model_span) = match through_chat {
            false => (self.endpoint, self.body.clone(), self.view.model_span.clone()),
            true => {
                let drop_params = self.target_of(attempt).drop_params;
                let chat = text_completion::chat_request(self.body, provider.name, drop_params).map_err(refused)?;
                // Where the chat's `model` is, for providers that splice in their own.
                let span = sluice_wire::sniff::request(&chat, Endpoint::Chat).ok().and_then(|v| v.model_span);
                (Endpoint::Chat, chat, span)
            }
        };
        let call = ChatCall { endpoint, body: &body, model_span, stream, now: now_unix() };
        let built = t.build_request(&call).map_err(refused)?;
        let timeout = self.timeout.unwrap_or(built.timeout);
        let sent = Instant::now();
        let (up, incoming) = self.exchange(provider, built, timeout).await?;
        let created = now_unix();
        let prefix = if through_chat { "cmpl" } else { "chatcmpl" };
        let id = format!("{prefix}-{}", self.facts.call_id.to_str().unwrap_or("sluice"));
        let meta = AnswerMeta {
            model: self.client_model,
            id: &id,
            created,
            include_usage: self.view.include_usage,
            endpoint,
            request: &body,
        };
        // The id the client sees is the one made here, streamed or not: the spend log's too.
        if let Some(c) = &self.facts.charge {
            c.answered_as(&id);
        }

        if !up.status.is_success() {
            return Err(self.upstream_failure(t, up, incoming, sent + timeout).await);
        }
        // Speech comes back as audio: the answer's own bytes, or decoded from its JSON.
        if self.endpoint == Endpoint::Speech {
            if !t.speech_in_json() {
                return Ok(self.relay_audio(attempt, up, incoming));
            }
            let answer = self.read_whole(provider, incoming, sent + timeout, timeout).await?;
            let (audio, content_type) =
                t.speech_audio(&answer, self.body).map_err(|api| fail(Failure::status(500, None), api))?;
            return Ok(self.whole_audio(attempt, &up, audio, content_type));
        }
        // A call in several exchanges (Replicate's predictions, Bedrock Titan's one text per
        // call) goes on until the provider has its last answer: a stream to relay, or the whole
        // answers already read.
        let (up, incoming, whole) = match t.in_exchanges(endpoint) {
            true => self.follow_exchanges(t, provider, &body, stream, up, incoming, sent + timeout, timeout).await?,
            false => (up, Some(incoming), None),
        };

        // A `/v1/messages` client gets Anthropic's shapes straight from the provider's
        // translation: one translation per chunk, no OpenAI text in between.
        let front_door = self.native_anthropic.is_some();
        if stream {
            let Some(incoming) = incoming else {
                let what = "the provider finished the call without a stream to relay";
                return Err(fail(Failure::status(500, None), malformed(provider, what, b"")));
            };
            let out = match (front_door, through_chat) {
                (true, _) => Out::Messages(anthropic::MessagesStream::new(self.client_model)),
                (false, true) => Out::TextCompletion,
                (false, false) => Out::OpenAi,
            };
            let stage = TranslatedStage {
                tr: t.stream_translator(&meta),
                out,
                metrics: attempt.deployment.target.metrics.clone().map(|m| (m, self.label_model.to_string())),
                sent_any: false,
                provider: *provider,
                charge: self.facts.charge.clone(),
                estimate: (endpoint == Endpoint::Chat).then(|| Estimate {
                    request: body.clone(),
                    model: self.target_of(attempt).served.model.clone(),
                    generated: String::new(),
                }),
            };
            let relay = Relay::new(incoming, stage, *provider, timeout);
            let mut reply = self.start_stream(attempt, &up.headers, relay).await?;
            reply.anthropic_native = front_door;
            return Ok(reply);
        }

        let out = match (whole, incoming) {
            (Some(answers), _) => t.parse_answers(&answers, &meta),
            (None, Some(incoming)) => {
                let body = self.read_whole(provider, incoming, sent + timeout, timeout).await?;
                t.parse_answer(&body, &meta)
            }
            (None, None) => return Err(fail(Failure::status(500, None), malformed(provider, "no answer", b""))),
        };
        let mut out = out.map_err(|api| fail(Failure::status(500, None), api))?;
        if endpoint == Endpoint::Chat {
            let model = &self.target_of(attempt).served.model;
            let reported = sluice_providers::provider::usage(&out);
            // Only an answer lacking a side of its usage is tokenized (its text read only then).
            if reported.is_none_or(|(p, c)| p == 0 || c == 0) {
                let text = sluice_providers::tokens::answer_text(&out);
                if let Some(filled) = sluice_providers::tokens::fill_chat_usage(reported, &body, model, &text) {
                    sluice_providers::tokens::set_usage(&mut out["usage"], filled);
                }
            }
        }
        if through_chat {
            out = text_completion::answer(&out, &id);
        }
        let usage = sluice_providers::provider::usage(&out);
        self.app.router.load().record_success(attempt, usage.map(|(p, c)| p + c));
        if let Some(m) = &self.target_of(attempt).metrics {
            let usage = usage.map(|(p, c)| sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
            m.attempt_succeeded(self.label_model, self.facts.caller(), attempt.elapsed(), None, usage);
        }
        let (status, body) = match front_door {
            false => (http::StatusCode::OK, bytes::Bytes::from(sluice_wire::compact::to_vec(&out))),
            // The upstream answered: a translation that fails is ours, not the deployment's.
            true => match anthropic::openai_to_messages(&out, self.client_model) {
                Ok(msg) => (http::StatusCode::OK, bytes::Bytes::from(sluice_wire::compact::to_vec(&msg))),
                Err(e) => (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    bytes::Bytes::from(anthropic::error_body(500, &e.message).to_string()),
                ),
            },
        };
        let usage = out.get("usage").and_then(sluice_wire::sniff::Usage::from_value);
        let price = self.target_of(attempt).served.price;
        if self.endpoint.makes_images() {
            // Billed for the images that came back (a filtered one is not made), at the asked size.
            let made = out.get("data").and_then(Value::as_array).map_or(0, |d| d.len() as u64);
            self.settle_images(usage, made, price.as_ref());
        } else if self.endpoint.is_upload() {
            // Billed per second of the audio the answer reports (OpenAI's shape: an upload is
            // never the `/v1/messages` front door), as an OpenAI transcription is.
            self.settle_transcription(&body, price.as_ref());
        } else if self.endpoint == Endpoint::Rerank {
            // Cohere bills a rerank by search units, not tokens (`meta.billed_units`).
            self.settle_with(usage, super::attempt::search_unit_cost(&out, price.as_ref()));
        } else {
            self.settle(usage);
        }
        let body = [body, bytes::Bytes::new(), bytes::Bytes::new()];
        let mut reply = Reply::whole(status, "application/json", body);
        reply.lines = self.finish(Some(&up.headers));
        reply.anthropic_native = front_door;
        Ok(reply)
    }

    /// The exchanges after the first of a call that takes several: each answer read whole and
    /// handed to the provider with `request` (the body it built the call from), which says what
    /// comes next, until it has its last answer — the
    /// one whose stream is relayed, or a whole one (returned read, with the answers before it,
    /// for a provider that joins them). The sequence is bounded by
    /// `deadline` (the attempt's timeout from the first send) and [`MAX_EXCHANGES`].
    #[allow(clippy::too_many_arguments)]
    async fn follow_exchanges(
        &mut self,
        t: &Translated,
        provider: &sluice_providers::Provider,
        request: &[u8],
        stream: bool,
        mut up: super::answer::UpstreamHead,
        mut incoming: super::pool::UpstreamBody,
        deadline: Instant,
        timeout: std::time::Duration,
    ) -> Result<
        (super::answer::UpstreamHead, Option<super::pool::UpstreamBody>, Option<Vec<bytes::Bytes>>),
        Failed<CallError>,
    > {
        let mut made = 1;
        // The answers the provider keeps (and the last), in order: at most MAX_EXCHANGES.
        let mut answers = Vec::new();
        loop {
            let answer = self.read_whole(provider, incoming, deadline, timeout).await?;
            let Some(next) = t.next_exchange(&answer, request, stream, made).map_err(refused)? else {
                answers.push(answer);
                return Ok((up, None, Some(answers)));
            };
            if next.keep_answer {
                answers.push(answer);
            }
            if made >= MAX_EXCHANGES || Instant::now() + next.after >= deadline {
                return Err(fail(Failure::timeout(), upstream::timeout_error(provider, timeout)));
            }
            tokio::time::sleep(next.after).await;
            let left = deadline.saturating_duration_since(Instant::now());
            let (u, i) = self.exchange(provider, next.request, left).await?;
            made += 1;
            if !u.status.is_success() {
                return Err(self.upstream_failure(t, u, i, deadline).await);
            }
            if next.streams {
                return Ok((u, Some(i), None));
            }
            (up, incoming) = (u, i);
        }
    }

    /// Signs the request (SigV4) or fetches its token when it needs one, and sends it.
    async fn exchange(
        &mut self,
        provider: &sluice_providers::Provider,
        mut built: UpstreamRequest,
        timeout: std::time::Duration,
    ) -> Result<(super::answer::UpstreamHead, super::pool::UpstreamBody), Failed<CallError>> {
        if let Err(message) = built.sign_aws(now_unix()).await {
            return Err(fail(Failure::status(401, None), auth_failed(provider, &message)));
        }
        let token = match &built.token {
            None => None,
            Some(source) => match source.token().await {
                Ok(token) => Some(token),
                Err(message) => {
                    return Err(fail(Failure::status(401, None), auth_failed(provider, &message)));
                }
            },
        };
        let (up, incoming, _) = self.send(provider, to_http(built, token), timeout).await?;
        Ok((up, incoming))
    }

    /// A non-2xx answer as the provider classifies it.
    async fn upstream_failure(
        &mut self,
        t: &Translated,
        up: super::answer::UpstreamHead,
        incoming: super::pool::UpstreamBody,
        deadline: Instant,
    ) -> Failed<CallError> {
        let body = self.read_answer(incoming, deadline, 1024 * 1024).await.unwrap_or_default();
        let body = self.sent_secrets.redact(body);
        let api = t.map_error(up.status.as_u16(), &ErrorHeaders(&up.headers), &body);
        let failure = Failure::status(api.status, super::attempt::retry_after(&up.headers));
        Failed { failure, error: CallError { api, upstream_headers: Some(up.headers) } }
    }

    /// A successful answer's whole body, by `deadline`.
    async fn read_whole(
        &mut self,
        provider: &sluice_providers::Provider,
        incoming: super::pool::UpstreamBody,
        deadline: Instant,
        timeout: std::time::Duration,
    ) -> Result<bytes::Bytes, Failed<CallError>> {
        match self.read_answer(incoming, deadline, 256 * 1024 * 1024).await {
            Ok(b) => Ok(b),
            Err(ReadError::Timeout) => Err(fail(Failure::timeout(), upstream::timeout_error(provider, timeout))),
            Err(ReadError::Broken) => Err(fail(
                Failure::connection(),
                malformed(provider, "the upstream connection broke while sending its answer", b""),
            )),
        }
    }

    /// The front door meeting a provider that speaks its format: the client's own request goes
    /// upstream untouched but for `model`, and the answer (or event stream) comes back as it is.
    async fn forward_native(
        &mut self,
        attempt: &Attempt<Target>,
        t: &Translated,
        req: UpstreamRequest,
    ) -> Result<Reply, Failed<CallError>> {
        let provider = self.target_of(attempt).provider;
        let provider = &provider;
        let timeout = self.timeout.unwrap_or(req.timeout);
        let (up, incoming, sent) = self.send(provider, to_http(req, None), timeout).await?;
        if !up.status.is_success() {
            return Err(self.upstream_failure(t, up, incoming, sent + timeout).await);
        }
        self.app.router.load().record_success(attempt, None);
        if let Some(m) = &self.target_of(attempt).metrics {
            let ttft = attempt.elapsed();
            m.attempt_succeeded(self.label_model, self.facts.caller(), ttft, self.view.stream.then_some(ttft), None);
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

/// The shape a translated stream leaves in.
enum Out {
    /// OpenAI chunks as SSE `data:` frames, ended by `[DONE]`.
    OpenAi,
    /// The chat chunks of a completion made through chat, as text-completion chunks in SSE
    /// `data:` frames, ended by `[DONE]`.
    TextCompletion,
    /// Anthropic's events, for the `/v1/messages` front door.
    Messages(anthropic::MessagesStream),
}

impl Out {
    fn frames(&mut self, chunks: Vec<Value>, out: &mut BytesMut) {
        match self {
            Out::OpenAi => {
                for c in chunks {
                    out.put_slice(b"data: ");
                    sluice_wire::compact::write(out, &c);
                    out.put_slice(b"\n\n");
                }
            }
            Out::TextCompletion => {
                for c in chunks.iter().filter_map(text_completion::chunk) {
                    out.put_slice(b"data: ");
                    sluice_wire::compact::write(out, &c);
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
    }

    /// The stream's closing frames.
    fn end(&mut self, out: &mut BytesMut) {
        match self {
            Out::OpenAi | Out::TextCompletion => out.put_slice(b"data: [DONE]\n\n"),
            Out::Messages(m) => {
                for f in m.finish() {
                    out.put_slice(f.as_bytes());
                }
            }
        }
    }

    /// The format of an error frame after the stream started.
    fn flavour(&self) -> Flavour {
        match self {
            Out::OpenAi | Out::TextCompletion => Flavour::OpenAi,
            Out::Messages(_) => Flavour::Anthropic,
        }
    }
}

/// A provider's stream translated into the client's format: the relay's [`Stage`] for it.
struct TranslatedStage {
    tr: StreamTranslator,
    out: Out,
    /// Where the stream's token usage is recorded at its end, with the requested model.
    metrics: Option<(sluice_metrics::DeploymentMetrics, String)>,
    /// Frames of the translation have gone to the client.
    sent_any: bool,
    provider: sluice_providers::Provider,
    /// Billed with the stream's usage when it ends, or with what it had reported if abandoned.
    charge: Option<std::sync::Arc<sluice_access::charge::Charge>>,
    /// What a chat stream's usage is estimated from when the provider leaves a side of it out.
    estimate: Option<Estimate>,
}

/// The request and the text generated so far, for LiteLLM's usage estimate of a stream
/// ([`sluice_providers::tokens::fill_chat_usage`]); tokenized only if the stream ends without both counts.
struct Estimate {
    request: bytes::Bytes,
    model: std::sync::Arc<str>,
    generated: String,
}

impl Stage for TranslatedStage {
    fn push(&mut self, bytes: &[u8]) {
        self.tr.push(bytes);
    }

    fn frames(&mut self, out: &mut BytesMut) -> Result<bool, ApiError> {
        let mut chunks = Vec::new();
        let drained = self.tr.drain(&mut chunks);
        self.sent_any |= !chunks.is_empty();
        self.note_finish(&chunks);
        self.gather(&chunks);
        self.out.frames(chunks, out);
        drained
            .map(|()| false)
            .map_err(|message| malformed(&self.provider, "upstream stream failed", message.as_bytes()))
    }

    fn end(&mut self, out: &mut BytesMut, _frames_sent: bool) -> Result<(), ApiError> {
        let mut chunks = Vec::new();
        let finished = self.tr.finish(&mut chunks);
        self.note_finish(&chunks);
        self.gather(&chunks);
        let usage = self.usage();
        // The usage chunk the client asked for carries the estimate when the provider left a
        // side of it out.
        if let (Some(u), true) = (&usage, self.estimate.is_some()) {
            let (p, c) = (u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0));
            if let Some(last) = chunks.iter_mut().rev().find(|c| c.get("usage").is_some_and(Value::is_object)) {
                sluice_providers::tokens::set_usage(&mut last["usage"], (p, c));
            }
        }
        self.out.frames(chunks, out);
        if let Err(message) = finished {
            return Err(malformed(&self.provider, "upstream stream failed", message.as_bytes()));
        }
        self.sent_any = true;
        let counts = usage
            .as_ref()
            .map(|u| (u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0)));
        if let (Some((m, model)), Some((p, c))) = (&self.metrics, counts) {
            let caller = self.charge.as_ref().and_then(|c| c.caller());
            m.stream_usage(model, caller, sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
        }
        self.settle(usage);
        self.out.end(out);
        Ok(())
    }

    /// A stream the client left part-way is billed for what was reported so far.
    fn abandoned(&mut self) {
        if self.sent_any {
            self.bill();
        }
    }

    fn flavour(&self) -> Flavour {
        self.out.flavour()
    }
}

impl TranslatedStage {
    /// The translated chunks' finish reason, for the trace (looked for only in a traced call).
    fn note_finish(&self, chunks: &[Value]) {
        let Some(c) = self.charge.as_ref().filter(|c| c.trace().is_some()) else { return };
        let choices = chunks.iter().filter_map(|chunk| chunk.get("choices")?.as_array()).flatten();
        for reason in choices.filter_map(|choice| choice.get("finish_reason")).filter(|r| r.is_string()) {
            c.finished_with(&reason.to_string());
        }
    }

    fn bill(&mut self) {
        if self.charge.is_some() {
            let usage = self.usage();
            self.settle(usage);
        }
    }

    /// Bills `usage` whole, so cache reads and writes and reasoning tokens are priced as such
    /// (one small object, once per stream).
    fn settle(&mut self, usage: Option<Value>) {
        if let Some(c) = self.charge.take() {
            let usage = usage.and_then(|u| sluice_wire::sniff::Usage::from_value(&u));
            c.settle(sluice_access::charge::token_usage(&usage.unwrap_or_default()));
        }
    }

    /// The text each chunk generated, kept for the estimate (chat streams only).
    fn gather(&mut self, chunks: &[Value]) {
        let Some(e) = &mut self.estimate else { return };
        let choices = chunks.iter().filter_map(|chunk| chunk.get("choices")?.as_array()).flatten();
        for delta in choices.filter_map(|choice| choice.get("delta")) {
            sluice_providers::tokens::push_generated(&mut e.generated, delta);
        }
    }

    /// The usage the provider reported, with LiteLLM's estimate for a side it left out.
    fn usage(&self) -> Option<Value> {
        let reported = self.tr.usage_object();
        let Some(e) = &self.estimate else { return reported };
        let counts = reported
            .as_ref()
            .map(|u| (u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0)));
        match sluice_providers::tokens::fill_chat_usage(counts, &e.request, &e.model, &e.generated) {
            None => reported,
            Some(filled) => {
                let mut u = reported.unwrap_or_else(|| serde_json::json!({}));
                sluice_providers::tokens::set_usage(&mut u, filled);
                Some(u)
            }
        }
    }
}
