//! Relaying an upstream SSE stream to the client frame by frame.
//!
//! Each upstream event is re-framed as `data: <json>\n\n` with `model` re-stamped to the name the
//! client asked for. The stream always ends cleanly: on upstream EOF (with or without `[DONE]`)
//! the relay adds a `finish_reason` chunk if none came, the usage chunk if the client asked for
//! one and the upstream sent none (counting tokens itself), then `data: [DONE]`. An upstream
//! failure mid-stream becomes one error frame, then the stream ends.

use super::pool::UpstreamBody;
use super::upstream;
use crate::errors::{self, Flavour};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use sluice_providers::Provider;
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::{sse, ApiError};
use std::time::Duration;

/// What the relay needs to count tokens when the upstream reports no usage.
pub struct UsageNeeds {
    pub request: Bytes,
    pub upstream_model: String,
}

/// One stage of the relay: an upstream's stream bytes in, the client's SSE frames out. The
/// OpenAI passthrough ([`OpenAiStage`]) re-stamps and forwards frames; a provider that speaks
/// another format plugs in its translator. The relay around it reads the upstream against the
/// idle timeout and turns a broken, silent or failed upstream into an HTTP error (before the
/// first frame) or one error frame (after).
pub trait Stage: Send + 'static {
    /// Bytes from the upstream, as they come.
    fn push(&mut self, bytes: &[u8]);
    /// Writes the frames what was pushed completes; `Ok(true)` when they end the stream. An
    /// error ends the stream with that error after whatever frames were written.
    fn frames(&mut self, out: &mut BytesMut) -> Result<bool, ApiError>;
    /// The upstream ended (`frames_sent`: the client has had frames already): writes the
    /// closing frames, and records and bills the stream's usage.
    fn end(&mut self, out: &mut BytesMut, frames_sent: bool) -> Result<(), ApiError>;
    /// The client left after frames went out: bills what was generated up to then.
    fn abandoned(&mut self);
    /// The format of an error frame once the stream has started.
    fn flavour(&self) -> Flavour {
        Flavour::OpenAi
    }
}

/// Relays an upstream stream through its [`Stage`].
pub struct Relay<S: Stage> {
    upstream: UpstreamBody,
    stage: S,
    provider: Provider,
    idle_timeout: Duration,
    frames_sent: bool,
    ended: bool,
    /// What the upstream call sent that its error frames must not echo to the client.
    secrets: crate::redact::SentSecrets,
}

/// The OpenAI passthrough: each upstream event is re-framed with `model` re-stamped; the clean
/// end adds a finish chunk, usage and `[DONE]` as owed (see the module's doc).
pub struct OpenAiStage {
    parser: sse::Parser,
    provider: Provider,
    endpoint: Endpoint,
    /// The client's model name as a JSON string literal.
    client_model: Bytes,
    /// `Some` while the client wants usage and the upstream has not sent any.
    usage: Option<UsageNeeds>,
    generated: String,
    id: Option<String>,
    created: Option<String>,
    finished: bool,
    /// Where the stream's token usage is recorded once known, with the requested model name.
    metrics: Option<(sluice_metrics::DeploymentMetrics, String)>,
    /// Usage the upstream reported in the stream.
    reported: Option<sniff::Usage>,
    /// Whom to bill when the stream ends (or is abandoned).
    charge: Option<std::sync::Arc<sluice_access::charge::Charge>>,
    /// What counting the tokens takes when the bill needs it and the client did not ask for usage.
    bill_needs: Option<UsageNeeds>,
    /// Set for the `/v1/messages` front door: each chunk goes straight into Anthropic's events
    /// instead of out as an OpenAI frame (one translation, no OpenAI text in between).
    messages: Option<sluice_providers::anthropic::MessagesStream>,
}

/// The client's SSE body: `first` (read before answering, so that a failure up to there could
/// still be an HTTP status), then whatever `relay` produces; a later failure is one error frame.
pub fn sse_body<S: Stage>(first: Option<Bytes>, relay: Relay<S>) -> axum::body::Body {
    let frames = futures_util::stream::unfold((first, relay), |(first, mut relay)| async move {
        if let Some(b) = first {
            return Some((Ok::<_, std::convert::Infallible>(http_body::Frame::data(b)), (None, relay)));
        }
        match relay.step().await {
            Step::Data(b) => Some((Ok(http_body::Frame::data(b)), (None, relay))),
            Step::Failed(e) => {
                let frame = errors::sse_frame(&e, relay.stage.flavour());
                Some((Ok(http_body::Frame::data(frame)), (None, relay)))
            }
            Step::End => None,
        }
    });
    axum::body::Body::new(http_body_util::StreamBody::new(frames))
}

/// One step of the relay: bytes for the client, or an error before anything was sent.
pub enum Step {
    Data(Bytes),
    /// Failure before the first frame: the client still gets a proper HTTP error status.
    Failed(ApiError),
    End,
}

impl<S: Stage> Relay<S> {
    pub fn new(upstream: UpstreamBody, stage: S, provider: Provider, idle_timeout: Duration) -> Self {
        Relay { upstream, stage, provider, idle_timeout, frames_sent: false, ended: false, secrets: Default::default() }
    }

    /// The credentials the upstream call sent, kept out of the stream's last frames: an error
    /// chunk or frame may quote what the upstream said, and some echo the key they were sent.
    pub fn redacting(mut self, secrets: crate::redact::SentSecrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Reads upstream until it has something to send (all frames from one read go out together).
    pub async fn step(&mut self) -> Step {
        if self.ended {
            return Step::End;
        }
        let mut out = BytesMut::new();
        loop {
            match self.stage.frames(&mut out) {
                Ok(true) => {
                    self.ended = true;
                    return self.emit(out);
                }
                Ok(false) => {}
                Err(e) => return self.fail(out, e),
            }
            if !out.is_empty() {
                return self.emit(out);
            }
            match tokio::time::timeout(self.idle_timeout, self.upstream.frame()).await {
                Err(_) => return self.fail(out, upstream::timeout_error(&self.provider, self.idle_timeout)),
                Ok(None) => {
                    return match self.stage.end(&mut out, self.frames_sent) {
                        Ok(()) => {
                            self.ended = true;
                            self.emit(out)
                        }
                        Err(e) => self.fail(out, e),
                    };
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
                    return self.fail(out, e);
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.stage.push(&data);
                    }
                }
            }
        }
    }

    fn fail(&mut self, mut out: BytesMut, mut e: ApiError) -> Step {
        self.ended = true;
        e.message = self.secrets.redact_text(e.message);
        if !self.frames_sent && out.is_empty() {
            return Step::Failed(e);
        }
        out.put_slice(&errors::sse_frame(&e, self.stage.flavour()));
        self.emit(out)
    }

    fn emit(&mut self, mut out: BytesMut) -> Step {
        if out.is_empty() {
            self.ended = true;
            return Step::End;
        }
        // The last frames are where an error ends a stream: only they are searched, once.
        if self.ended {
            out = self.secrets.redact_frames(out);
        }
        self.frames_sent = true;
        Step::Data(out.freeze())
    }
}

impl<S: Stage> Drop for Relay<S> {
    /// A stream the client left part-way is billed for what it generated so far; one that failed
    /// before its first frame is not (the router may retry it elsewhere).
    fn drop(&mut self) {
        if self.frames_sent {
            self.stage.abandoned();
        }
    }
}

impl Stage for OpenAiStage {
    fn push(&mut self, bytes: &[u8]) {
        self.parser.push(bytes);
    }

    fn frames(&mut self, out: &mut BytesMut) -> Result<bool, ApiError> {
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => {
                    if self.on_event(event, out) {
                        return Ok(true);
                    }
                }
                Ok(None) => return Ok(false),
                Err(sse::LineTooLong) => {
                    return Err(upstream::malformed_error(&self.provider, "upstream sent an SSE line over 16 MB", b""))
                }
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut, frames_sent: bool) -> Result<(), ApiError> {
        if let Some(event) = self.parser.finish() {
            if self.on_event(event, out) {
                return Ok(());
            }
        }
        if !frames_sent && out.is_empty() {
            return Err(upstream::malformed_error(
                &self.provider,
                "upstream ended the stream without sending any event",
                b"",
            ));
        }
        self.finish(out);
        Ok(())
    }

    fn abandoned(&mut self) {
        if self.charge.is_some() {
            let (prompt, completion) = self.usage_so_far();
            self.bill(prompt, completion);
        }
    }

    fn flavour(&self) -> Flavour {
        match self.messages {
            Some(_) => Flavour::Anthropic,
            None => Flavour::OpenAi,
        }
    }
}

impl OpenAiStage {
    pub fn new(provider: Provider, endpoint: Endpoint, client_model: Bytes, usage: Option<UsageNeeds>) -> Self {
        OpenAiStage {
            parser: sse::Parser::new(),
            provider,
            endpoint,
            client_model,
            usage,
            generated: String::new(),
            id: None,
            created: None,
            finished: false,
            metrics: None,
            reported: None,
            charge: None,
            bill_needs: None,
            messages: None,
        }
    }

    /// Writes Anthropic's Messages events for the client's `model` instead of OpenAI frames.
    pub fn into_messages(mut self, model: &str) -> Self {
        self.messages = Some(sluice_providers::anthropic::MessagesStream::new(model));
        self
    }

    /// One chunk out: an OpenAI frame with `model` spliced at `span`, or the Anthropic events
    /// it completes.
    fn put_chunk(&mut self, out: &mut BytesMut, json: &str, span: Option<std::ops::Range<usize>>, stamp: bool) {
        match &mut self.messages {
            None => {
                let model: &[u8] = if stamp { &self.client_model } else { b"" };
                out.put_slice(&sluice_wire::splice::sse_frame(json, span, model));
            }
            Some(m) => {
                if let Ok(chunk) = serde_json::from_str::<serde_json::Value>(json) {
                    for frame in m.on_chunk(&chunk) {
                        out.put_slice(frame.as_bytes());
                    }
                }
            }
        }
    }

    /// Bills the stream's usage to `charge` when it ends; `needs` lets it count tokens itself
    /// when neither the upstream nor the client's own usage chunk provides them.
    pub fn with_charge(
        mut self,
        charge: Option<std::sync::Arc<sluice_access::charge::Charge>>,
        needs: Option<UsageNeeds>,
    ) -> Self {
        self.charge = charge;
        self.bill_needs = needs;
        self
    }

    fn bill(&mut self, prompt: u64, completion: u64) {
        if let Some(c) = self.charge.take() {
            c.settle(sluice_providers::pricing::TokenUsage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                ..Default::default()
            });
        }
    }

    /// Usage for the bill now: reported, else counted from what was generated so far.
    fn usage_so_far(&self) -> (u64, u64) {
        if let Some(u) = &self.reported {
            return (u.prompt_tokens, u.completion_tokens);
        }
        match self.usage.as_ref().or(self.bill_needs.as_ref()) {
            Some(needs) => count_usage(self.endpoint, needs, &self.generated),
            None => (0, 0),
        }
    }

    /// Records the stream's token usage in Prometheus when it ends.
    pub fn with_metrics(mut self, metrics: Option<sluice_metrics::DeploymentMetrics>, requested_model: &str) -> Self {
        self.metrics = metrics.map(|m| (m, requested_model.to_string()));
        self
    }

    fn record_usage(&mut self, prompt: u64, completion: u64) {
        if let Some((m, model)) = &self.metrics {
            let caller = self.charge.as_ref().and_then(|c| c.caller());
            m.stream_usage(
                model,
                caller,
                sluice_metrics::Usage { prompt_tokens: prompt, completion_tokens: completion },
            );
        }
    }

    /// Handles one event; returns true when the stream is over.
    fn on_event(&mut self, event: sse::Event, out: &mut BytesMut) -> bool {
        if event.is_done() {
            self.finish(out);
            return true;
        }
        let Ok(json) = std::str::from_utf8(&event.data) else {
            let e = upstream::malformed_error(
                &self.provider,
                "upstream sent a stream frame that is not UTF-8",
                &event.data,
            );
            self.error_frame(out, e);
            return true;
        };
        let Some(chunk) = sniff::chunk(json) else {
            let e =
                upstream::malformed_error(&self.provider, "upstream sent a stream frame that is not JSON", &event.data);
            self.error_frame(out, e);
            return true;
        };
        if chunk.is_error {
            self.put_chunk(out, json, None, false);
            return true;
        }
        // Azure's opening content-filter chunk has an empty id: take the first real one.
        if self.id.is_none() && chunk.id.is_some_and(|id| id != "\"\"") {
            self.id = chunk.id.map(str::to_string);
            self.created = chunk.created.map(str::to_string);
            // The spend log's response id: the first real chunk id, once per stream.
            if let (Some(c), Some(id)) = (&self.charge, chunk.id.and_then(sniff::string_value)) {
                c.answered_as(&id);
            }
        }
        if let Some(raw) = chunk.usage {
            self.usage = None;
            self.bill_needs = None;
            self.reported = serde_json::from_str(raw).ok();
        }
        if chunk.finished {
            self.finished = true;
            // The trace's `gen_ai.response.finish_reasons` (kept only for a traced call).
            if let (Some(c), Some(reason)) = (&self.charge, chunk.finish_reason) {
                c.finished_with(reason);
            }
        }
        if self.usage.is_some() || self.bill_needs.is_some() {
            for t in &chunk.text {
                self.generated.push_str(t);
            }
        }
        self.put_chunk(out, json, chunk.model_span.clone(), true);
        false
    }

    /// The clean end: a finish chunk if none came, usage if owed, then `[DONE]`.
    fn finish(&mut self, out: &mut BytesMut) {
        if !self.finished {
            let choice = match self.endpoint {
                Endpoint::Completions => r#"{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}"#,
                _ => r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}"#,
            };
            let json = self.synthetic_chunk(&format!("\"choices\":[{choice}]"));
            self.put_chunk(out, &json, None, false);
            self.finished = true;
        }
        // The answer's text, when it was gathered (for counting), goes to the logging record.
        if let (Some(c), true) = (&self.charge, self.usage.is_some() || self.bill_needs.is_some()) {
            c.streamed(&self.generated);
        }
        if let Some(u) = self.reported.take() {
            self.record_usage(u.prompt_tokens, u.completion_tokens);
            if let Some(c) = self.charge.take() {
                c.settle(sluice_access::charge::token_usage(&u));
            }
        }
        if self.charge.is_some() && self.usage.is_none() {
            // Neither the upstream nor the client's usage chunk: counted here, for the bill and
            // the token metrics alike (as LiteLLM counts a stream's tokens itself).
            let (prompt, completion) = self.usage_so_far();
            if self.bill_needs.is_some() {
                self.record_usage(prompt, completion);
            }
            self.bill(prompt, completion);
        }
        if let Some(needs) = self.usage.take() {
            let (prompt, completion) = count_usage(self.endpoint, &needs, &self.generated);
            self.record_usage(prompt, completion);
            self.bill(prompt, completion);
            let json = self.synthetic_chunk(&format!(
                "\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}}}",
                prompt + completion
            ));
            self.put_chunk(out, &json, None, false);
        }
        match &mut self.messages {
            None => out.put_slice(b"data: [DONE]\n\n"),
            Some(m) => {
                for frame in m.finish() {
                    out.put_slice(frame.as_bytes());
                }
            }
        }
    }

    fn synthetic_chunk(&self, rest: &str) -> String {
        let object = match self.endpoint {
            Endpoint::Completions => "text_completion",
            _ => "chat.completion.chunk",
        };
        let id = self.id.clone().unwrap_or_else(|| "\"chatcmpl-sluice\"".into());
        let created = self.created.clone().unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .to_string()
        });
        let model = String::from_utf8_lossy(&self.client_model);
        format!("{{\"id\":{id},\"object\":\"{object}\",\"created\":{created},\"model\":{model},{rest}}}")
    }

    /// Ends the stream with `e` (the relay ends it on the `true` the caller returns).
    fn error_frame(&mut self, out: &mut BytesMut, e: ApiError) {
        out.put_slice(&errors::sse_frame(&e, self.flavour()));
    }
}

fn count_usage(endpoint: Endpoint, needs: &UsageNeeds, generated: &str) -> (u64, u64) {
    let bpe = sluice_providers::tokens::encoding_for(&needs.upstream_model);
    let prompt = match sniff::request(&needs.request, endpoint) {
        Ok(view) => match endpoint {
            Endpoint::Chat => view.messages.map(|m| sluice_providers::tokens::count_messages(bpe, m)).unwrap_or(0),
            _ => view.prompt.map(|p| sluice_providers::tokens::count_prompt(bpe, p)).unwrap_or(0),
        },
        Err(_) => 0,
    };
    (prompt, sluice_providers::tokens::count_text(bpe, generated))
}
