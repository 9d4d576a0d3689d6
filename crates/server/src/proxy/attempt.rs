//! One attempt at a request on the deployment the router chose: the [`Call`] the router drives
//! through retries and fallbacks.

use super::answer::{UpstreamHead, UpstreamHeaders};
use super::body::ChainBody;
use super::controls::{self, Simulated};
use super::headers::{self, Facts, Outcome};
use super::relay::{OpenAiStage, Relay, Stage, Step, UsageNeeds};
use super::{mock, read_upstream, upstream, ReadError};
use crate::app::{App, OpenAiTarget, Target, TargetKind};
use crate::exchange::{Lines, Reply};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use sluice_providers::{ChatCall, ChatProvider};
use sluice_router::{Attempt, Call, ErrorKind, Failed, Failure, FailureEffect};
use sluice_wire::controls::Controls;
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::{splice, ApiError};
use std::time::{Duration, Instant};

/// An upstream failure as the client will see it, with the upstream's headers when it answered.
pub struct CallError {
    pub api: ApiError,
    pub upstream_headers: Option<UpstreamHeaders>,
}

pub struct UpstreamCall<'a> {
    pub app: &'a App,
    pub endpoint: Endpoint,
    pub body: &'a Bytes,
    pub view: &'a sniff::RequestView<'a>,
    pub client_model: &'a str,
    /// The name the router was asked for: `client_model`, or with its provider's prefix when a
    /// provider wildcard takes it bare (`crate::wildcard::routed`). A wildcard fills its model
    /// template with it.
    pub routed_model: &'a str,
    /// What metrics name the client's model by: `client_model`, or for a wildcard's unpriced
    /// names the pattern (`crate::wildcard`), so callers cannot mint series.
    pub label_model: &'a str,
    /// The target a wildcard deployment built for `client_model`, for the current attempt.
    pub concrete: Option<std::sync::Arc<Target>>,
    /// The client's model name as a JSON string literal, spliced into answers.
    pub client_model_json: Bytes,
    /// The original body of an Anthropic-format request (the `/v1/messages` front door): sent to
    /// Anthropic deployments as it is, with only `model` rewritten.
    pub native_anthropic: Option<&'a Bytes>,
    /// What the request knows; fixed while the router tries deployments.
    pub facts: &'a Facts,
    /// What the attempts produce.
    pub outcome: &'a mut Outcome,
    pub clock: UpstreamClock,
    /// The credentials the attempt's request carried, kept out of its error answer.
    pub sent_secrets: crate::redact::SentSecrets,
    /// The request's own controls, when it carries any (testing switches, timeout).
    pub controls: Option<&'a Controls>,
    /// The per-attempt timeout the request asked for (`timeout`, `x-litellm-timeout`), in place
    /// of the deployment's.
    pub timeout: Option<Duration>,
    /// What a `{model, messages}` fallback sends instead of the request's body.
    pub alternates: &'a [Alternate<'a>],
    /// A `/v1/responses` call's own state: what a deployment that speaks only chat needs.
    pub responses: Option<&'a super::responses::Prepared>,
}

/// The body a fallback model group gets in place of the request's (its own `messages`).
pub struct Alternate<'a> {
    pub group: &'a str,
    pub body: &'a Bytes,
    pub view: sniff::RequestView<'a>,
}

/// When the current attempt's request went upstream and its answer was read: set by the
/// attempt's client side ([`UpstreamCall::send`], [`UpstreamCall::read_answer`]) and added to the
/// outcome's upstream time once, as the attempt ends, so that no path adds it by hand.
#[derive(Default)]
pub struct UpstreamClock {
    sent: Option<Instant>,
    answered: Option<Instant>,
}

impl UpstreamClock {
    /// The time from sending to the answer (or to now, for an answer not read whole: a stream's
    /// first frame, a failure), once per attempt.
    fn settle(&mut self) -> Duration {
        match self.sent.take() {
            Some(sent) => self.answered.take().unwrap_or_else(Instant::now).saturating_duration_since(sent),
            None => Duration::ZERO,
        }
    }
}

/// W3C Trace Context for the upstream: the attempt's span as its parent, the caller's
/// `tracestate` passed on.
fn propagate(trace: &sluice_export::trace::TraceContext, span: &sluice_export::trace::SpanId, headers: &mut HeaderMap) {
    static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
    static TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");
    if let Ok(v) = HeaderValue::from_bytes(&trace.traceparent(span)) {
        headers.insert(&TRACEPARENT, v);
    }
    match trace.state.as_deref().map(HeaderValue::from_str) {
        Some(Ok(v)) => {
            headers.insert(&TRACESTATE, v);
        }
        _ => {
            headers.remove(&TRACESTATE);
        }
    }
}

/// LiteLLM's exception class of an attempt's failure.
fn failure_class(failure: &Failure) -> &'static str {
    match failure.kind {
        ErrorKind::Connection => "APIConnectionError",
        ErrorKind::ContextWindowExceeded => "ContextWindowExceededError",
        ErrorKind::ContentPolicyViolation => "ContentPolicyViolationError",
        _ => sluice_metrics::exception_class_for_status(failure.status.unwrap_or(500)),
    }
}

fn fail(failure: Failure, api: ApiError) -> Failed<CallError> {
    Failed { failure, error: CallError { api, upstream_headers: None } }
}

impl Call<Target> for UpstreamCall<'_> {
    type Output = Reply;
    type Error = CallError;

    async fn call(&mut self, attempt: &Attempt<Target>, depth: u32) -> Result<Reply, Failed<CallError>> {
        let asked = (self.body, self.view);
        if let Some(alt) = self.alternates.iter().find(|a| depth > 0 && a.group == attempt.deployment.model_name) {
            (self.body, self.view) = (alt.body, &alt.view);
        }
        // A traced request's attempt is a span: its id goes upstream (`send`), its outcome into
        // the bill's record.
        let began =
            self.facts.trace().map(|_| (sluice_export::trace::new_span_id(), sluice_export::trace::unix_nanos()));
        self.outcome.attempt_span = began;
        // Boxed: the attempt's state (the upstream exchange, the stream's start) is the largest
        // in the request's chain of calls, and each caller above (the router's retries and
        // fallbacks, the handler, the task) would hold it inline and copy it whole as it starts.
        let result = Box::pin(self.attempt(attempt, depth)).await;
        self.settle_clock();
        (self.body, self.view) = asked;
        if let (Some(charge), Err(f)) = (&self.facts.charge, &result) {
            let (status, class) = (f.failure.status.unwrap_or(f.error.api.status), failure_class(&f.failure));
            charge.attempt_failed_as(status, class);
            if let Some((span_id, _)) = began {
                charge.attempt_failed(&span_id, status, class);
            }
        }
        result
    }

    fn annotate(&mut self, error: &mut CallError, note: &str) {
        error.api.message.push_str(note);
    }

    fn failed(&mut self, attempt: &Attempt<Target>, failure: &Failure, effect: FailureEffect) {
        let status = failure.status.unwrap_or(500);
        // Outage alerts count timeouts and server errors (only with alerting on).
        if let Some(alerts) = self.app.access.alerts.get() {
            let target = self.target_of(attempt);
            let served = &target.served;
            // LiteLLM names the deployment by its `litellm_params.model`, provider prefix and all
            // (a failure's path: the name is built only here).
            let provider = served.provider.as_deref().unwrap_or("");
            let model = match served.model.strip_prefix(provider).and_then(|m| m.strip_prefix('/')) {
                Some(_) => served.model.to_string(),
                None if provider.is_empty() => served.model.to_string(),
                None => format!("{provider}/{}", served.model),
            };
            alerts.attempt_failed(&sluice_export::alerting::outage::FailedAttempt {
                deployment_id: served.model_id.as_deref().unwrap_or(&served.model),
                model: &model,
                provider,
                api_base: served.api_base.as_deref(),
                region: target.region.as_deref(),
                status: match failure.kind {
                    ErrorKind::Timeout => 408,
                    _ => status,
                },
            });
        }
        let Some(m) = &self.target_of(attempt).metrics else { return };
        m.attempt_failed(self.label_model, self.facts.caller(), status, failure_class(failure), attempt.elapsed());
        if let FailureEffect::CooledDown(_) = effect {
            m.cooled_down(status);
        }
    }
}

impl UpstreamCall<'_> {
    /// The target the current attempt calls: the deployment's own, or the one its wildcard
    /// built for the requested name.
    pub(super) fn target_of<'t>(&'t self, attempt: &'t Attempt<Target>) -> &'t Target {
        self.concrete.as_deref().unwrap_or(&attempt.deployment.target)
    }

    pub(super) async fn attempt(&mut self, attempt: &Attempt<Target>, depth: u32) -> Result<Reply, Failed<CallError>> {
        let deployment = &attempt.deployment;
        // A branch on the kind only: ordinary deployments reach their target as before.
        let concrete = match &deployment.target.kind {
            TargetKind::Wildcard(w) => {
                Some(w.target(self.routed_model).map_err(|api| fail(Failure::status(api.status, None), api))?)
            }
            _ => None,
        };
        self.concrete = concrete.clone();
        let target = concrete.as_deref().unwrap_or(&deployment.target);
        // Through chat, the chat attempt below does the bookkeeping (once).
        if self.endpoint == Endpoint::Responses && super::responses::through_chat(self.responses, target) {
            return Box::pin(self.responses_via_chat(attempt, depth)).await;
        }
        self.outcome.model_id = Some(target.id_header.clone());
        self.outcome.api_base = target.api_base_header.clone();
        self.outcome.deployment = target.metrics.clone();
        if let Some(c) = &self.facts.charge {
            c.serving(&target.served, target.metrics.as_ref());
            if let Some((span_id, start)) = self.outcome.attempt_span {
                c.attempt_began(span_id, start, &target.served);
            }
        }
        if let Some(m) = &target.metrics {
            m.attempt_started(self.label_model, self.facts.caller());
        }
        if let Some(c) = self.controls {
            // `mock_timeout` waits what a real call would: the request's timeout, else the
            // deployment's own (an OpenAI-format one's is at hand).
            let timeout = match &target.kind {
                TargetKind::OpenAi(t) => {
                    self.timeout.or(Some(if self.view.stream { t.stream_timeout } else { t.timeout }))
                }
                _ => self.timeout,
            };
            if let Some(s) = controls::simulate(c, timeout, &target.provider, &deployment.model_name, depth) {
                return Box::pin(self.simulated(s, &target.provider)).await;
            }
        }
        match &target.kind {
            TargetKind::Unsupported => Err(fail(
                Failure::status(400, None),
                ApiError::bad_request(format!(
                    "provider {} is not implemented in sluice{} (model group \"{}\", deployment {}). Route this model group to a provider sluice serves.",
                    target.provider.name,
                    sluice_providers::catalogue::not_served(target.provider.name)
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default(),
                    deployment.model_name,
                    deployment.id
                )),
            )),
            TargetKind::Misconfigured(why) => Err(fail(Failure::status(500, None), ApiError::new(500, why.clone()))),
            TargetKind::Mock(text) => self.mock_answer(text, None),
            TargetKind::OpenAi(t) => match (t.translator(self.endpoint), super::responses::pinned(self.app, self.responses, deployment)) {
                // A route the deployment's provider translates (Hugging Face's embeddings).
                (Some(tr), _) => Box::pin(self.forward_translated(attempt, tr)).await,
                // A previous response's deployment holds its conversation: it serves the next turn.
                (None, Some(pin)) => match &pin.target.kind {
                    TargetKind::OpenAi(pt) => self.forward(attempt, pt, &pin.target.provider, depth, &pin.id).await,
                    _ => self.forward(attempt, t, &target.provider, depth, &deployment.id).await,
                },
                (None, None) => self.forward(attempt, t, &target.provider, depth, &deployment.id).await,
            },
            // Boxed, as the rarer branches above are: an async call's state is as large as its largest
            // branch, and the whole state is copied when the call starts, so the translated call's
            // larger state would be copied on every OpenAI-format request too.
            TargetKind::Translated(t) => Box::pin(self.forward_translated(attempt, t)).await,
            // A wildcard's targets are concrete deployments: this arm is never reached.
            TargetKind::Wildcard(_) => Err(fail(
                Failure::status(400, None),
                ApiError::bad_request(format!("model={} matches no deployment", self.client_model)),
            )),
        }
    }

    /// An answer made here with `text` as the model's (LiteLLM's `mock_response`), billed for
    /// `usage` when given.
    // The router's failure type, as every attempt returns it.
    #[allow(clippy::result_large_err)]
    fn mock_answer(&mut self, text: &str, usage: Option<sniff::Usage>) -> Result<Reply, Failed<CallError>> {
        let call_id = self.facts.call_id.to_str().unwrap_or("mock").to_string();
        let result = if self.view.stream {
            mock::stream(self.endpoint, self.client_model, text, &call_id, self.view.include_usage)
                .map(|b| (b, "text/event-stream"))
        } else {
            mock::complete(self.endpoint, self.client_model, text, &call_id).map(|b| (b, "application/json"))
        };
        let (bytes, content_type) = result.map_err(|e| fail(Failure::status(400, None), e))?;
        self.settle(usage);
        let mut reply = Reply::whole(StatusCode::OK, content_type, [bytes, Bytes::new(), Bytes::new()]);
        reply.lines = self.finish(None);
        Ok(reply)
    }

    /// What a request's testing switch made of this attempt.
    async fn simulated(
        &mut self,
        s: Simulated,
        provider: &sluice_providers::Provider,
    ) -> Result<Reply, Failed<CallError>> {
        match s {
            // Billed as LiteLLM bills a mock answer: its fixed usage at the deployment's prices.
            Simulated::Answer(text) => self.mock_answer(&text, Some(mock::usage_counts())).map_err(|mut f| {
                // A mock answer the endpoint cannot take (embeddings) is the request's fault.
                f.failure.simulated = true;
                f
            }),
            Simulated::TimeOut(after) => {
                tokio::time::sleep(after).await;
                Err(controls::timed_out(provider, after))
            }
            Simulated::Fail(f) => Err(f),
        }
    }

    /// The upstream's headers and ours for the answer, as lines; the durations reported count
    /// this attempt's upstream time.
    pub(super) fn finish(&mut self, upstream: Option<&UpstreamHeaders>) -> Lines {
        self.settle_clock();
        headers::lines(self.facts, self.outcome, upstream, None)
    }

    /// The one place upstream time goes into the outcome.
    pub(super) fn settle_clock(&mut self) {
        self.outcome.upstream += self.clock.settle();
    }

    /// Sends `req` within `timeout`; a refused connection or a timeout becomes the router's
    /// failure and LiteLLM's error. Returns the answer and when the request was sent, which
    /// starts the attempt's [`UpstreamClock`].
    pub(super) async fn send(
        &mut self,
        provider: &sluice_providers::Provider,
        req: http::Request<ChainBody>,
        timeout: Duration,
    ) -> Result<(UpstreamHead, super::pool::UpstreamBody, Instant), Failed<CallError>> {
        let mut req = req;
        if let (Some(trace), Some((span, _))) = (self.facts.trace(), &self.outcome.attempt_span) {
            propagate(trace, span, req.headers_mut());
        }
        self.sent_secrets = crate::redact::SentSecrets::of(req.headers());
        let sent = Instant::now();
        self.clock = UpstreamClock { sent: Some(sent), answered: None };
        self.outcome.first_sent.get_or_insert(sent);
        let result = tokio::time::timeout_at((sent + timeout).into(), self.app.client.fetch(req)).await;
        let resp = match result {
            Err(_) => return Err(fail(Failure::timeout(), upstream::timeout_error(provider, timeout))),
            Ok(Err(e)) => {
                let failure = if e.is_connect() { Failure::unreachable() } else { Failure::connection() };
                return Err(fail(failure, upstream::transport_error(provider, &e)));
            }
            Ok(Ok(r)) => r,
        };
        Ok((resp.head, resp.body, sent))
    }

    /// Reads an answer's whole body by `deadline`, stopping the attempt's [`UpstreamClock`] when
    /// it is in (or has failed); returns that instant with the body.
    pub(super) async fn read_answer(
        &mut self,
        body: super::pool::UpstreamBody,
        deadline: Instant,
        limit: usize,
    ) -> Result<Bytes, ReadError> {
        let read = read_upstream(body, deadline, limit).await;
        self.clock.answered = Some(Instant::now());
        read
    }

    /// When the answer read by [`read_answer`](Self::read_answer) was in.
    fn answered(&self) -> Instant {
        self.clock.answered.unwrap_or_else(Instant::now)
    }

    /// Reads a stream's first frame before answering (a failure up to there is still an HTTP
    /// error the router can retry), records the success, and answers with the SSE body.
    pub(super) async fn start_stream<S: Stage>(
        &mut self,
        attempt: &Attempt<Target>,
        upstream_headers: &UpstreamHeaders,
        relay: Relay<S>,
    ) -> Result<Reply, Failed<CallError>> {
        let mut relay = relay.redacting(self.sent_secrets.clone());
        let first = match relay.step().await {
            Step::Failed(e) => return Err(fail(Failure::status(e.status, None), e)),
            Step::Data(b) => Some(b),
            Step::End => None,
        };
        // The stream's first frame is the answer the upstream time runs to.
        self.clock.answered = Some(Instant::now());
        if let Some(c) = &self.facts.charge {
            c.first_frame();
        }
        self.app.router.load().record_success(attempt, None);
        if let Some(m) = &self.target_of(attempt).metrics {
            let ttft = attempt.elapsed();
            m.attempt_succeeded(self.label_model, self.facts.caller(), ttft, Some(ttft), None);
        }
        let mut h = HeaderMap::with_capacity(2);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let mut reply = Reply::stream(StatusCode::OK, h, super::relay::sse_body(first, relay));
        reply.lines = self.finish(Some(upstream_headers));
        Ok(reply)
    }

    async fn forward(
        &mut self,
        attempt: &Attempt<Target>,
        t: &OpenAiTarget,
        provider: &sluice_providers::Provider,
        depth: u32,
        // The deployment a Response's id names (`proxy::responses`).
        wrap_id: &str,
    ) -> Result<Reply, Failed<CallError>> {
        // The OpenAI provider builds the request as every provider does: the client's bytes with
        // only `model` spliced in (three slices, nothing parsed), and its headers.
        let call = ChatCall {
            endpoint: self.endpoint,
            body: self.body,
            model_span: self.view.model_span.clone(),
            stream: self.view.stream,
            now: super::translate::now_unix(),
        };
        let built = t.build_request(&call).map_err(|api| fail(Failure::status(api.status, None), api))?;
        let timeout = self.timeout.unwrap_or(built.timeout);
        let req = super::translate::to_http(built, None);
        let (up, incoming, sent) = self.send(provider, req, timeout).await?;
        let remaining_requests = header_f64(&up.headers, headers::RATELIMIT_REMAINING_REQUESTS.as_str());
        let remaining_tokens = header_f64(&up.headers, headers::RATELIMIT_REMAINING_TOKENS.as_str());
        if remaining_requests.is_some() || remaining_tokens.is_some() {
            self.app.router.load().record_remaining(
                &attempt.deployment,
                sent.into(),
                remaining_requests,
                remaining_tokens,
            );
            if let Some(m) = &self.target_of(attempt).metrics {
                m.remaining(self.facts.caller(), remaining_requests, remaining_tokens);
            }
        }
        // After a fallback the answer keeps the model that served it, as LiteLLM does.
        let restamp = (depth == 0).then(|| self.client_model_json.clone());

        if !up.status.is_success() {
            let body = self.read_answer(incoming, sent + timeout, 1024 * 1024).await.unwrap_or_default();
            let body = self.sent_secrets.redact(body);
            let status = up.status.as_u16();
            let retry_after = retry_after(&up.headers);
            let (mut api, kind) = upstream::status_error(provider, status, &body);
            if let Some(ra) = up.headers.get_str("retry-after") {
                api = api.header("retry-after", ra);
            }
            let mut failure = Failure::status(status, retry_after);
            if let Some(k) = kind {
                failure.kind = k;
            }
            return Err(Failed { failure, error: CallError { api, upstream_headers: Some(up.headers) } });
        }

        if self.endpoint == Endpoint::Speech {
            return Ok(self.relay_audio(attempt, up, incoming));
        }
        if self.view.stream && self.endpoint == Endpoint::Responses {
            let stage = super::responses_relay::ResponsesStage::new(
                *provider,
                restamp.unwrap_or_default(),
                wrap_id.to_string(),
                attempt.deployment.target.metrics.clone().map(|m| (m, self.client_model.to_string())),
                self.facts.charge.clone(),
            );
            let relay = Relay::new(incoming, stage, *provider, t.stream_timeout);
            return self.start_stream(attempt, &up.headers, relay).await;
        }
        if self.view.stream {
            let needs = || UsageNeeds {
                request: self.body.clone(),
                upstream_model: String::from_utf8_lossy(&t.upstream_model).trim_matches('"').to_string(),
            };
            let usage = self.view.include_usage.then(needs);
            // A priced stream is billed for what it generated even when nobody asked for usage,
            // and its tokens are counted for the metrics.
            let priced = self.facts.charge.as_ref().is_some_and(|c| c.priced());
            let counted = priced || self.target_of(attempt).metrics.is_some();
            let bill_needs = (!self.view.include_usage && counted).then(needs);
            let stamp = restamp.unwrap_or_default();
            let mut stage = OpenAiStage::new(*provider, self.endpoint, stamp, usage)
                .with_metrics(self.target_of(attempt).metrics.clone(), self.label_model)
                .with_charge(self.facts.charge.clone(), bill_needs);
            // The `/v1/messages` front door: the chunks become Anthropic's events in the relay.
            let front_door = self.native_anthropic.is_some();
            if front_door {
                stage = stage.into_messages(self.client_model);
            }
            let relay = Relay::new(incoming, stage, *provider, self.timeout.unwrap_or(t.stream_timeout));
            let mut reply = self.start_stream(attempt, &up.headers, relay).await?;
            reply.anthropic_native = front_door;
            return Ok(reply);
        }

        let body = match self.read_answer(incoming, sent + timeout, 256 * 1024 * 1024).await {
            Ok(b) => b,
            Err(ReadError::Timeout) => {
                return Err(fail(Failure::timeout(), upstream::timeout_error(provider, timeout)));
            }
            Err(ReadError::Broken) => {
                let api = ApiError::new(
                    500,
                    sluice_providers::errors::upstream_message(
                        sluice_providers::ExceptionClass::ApiConnection,
                        provider,
                        "Connection error: the upstream connection broke while sending its answer.",
                    ),
                );
                return Err(fail(Failure::connection(), api));
            }
        };
        // One clock read serves the upstream time, the router's record and the metrics.
        let done = self.answered();
        // A Response is read once for its id, model and usage (`proxy::responses`).
        let responses = match self.endpoint {
            Endpoint::Responses => sluice_wire::text::utf8(&body).and_then(sluice_wire::responses::spans),
            _ => None,
        };
        let answer = match &responses {
            // Its id is wrapped before it is logged (below).
            Some(s) => Ok(sniff::ResponseView { model_span: s.model.clone(), usage: s.usage, id_span: None }),
            None => sniff::response(&body),
        };
        let answer = match answer {
            Ok(a) => a,
            // A transcription in `text`, `srt` or `vtt` is plain text, passed on as it is.
            Err(_) if self.endpoint.is_upload() => sniff::ResponseView::default(),
            Err(_) => {
                let api =
                    upstream::malformed_error(provider, "upstream returned a body that is not a JSON object", &body);
                return Err(fail(Failure::status(500, None), api));
            }
        };
        // Counts an upstream reports are clamped before they reach quotas and metrics (and
        // flagged where they are billed).
        let max = sluice_access::charge::MAX_TOKENS;
        let total = answer.usage.map(|u| u.total_tokens.min(2 * max));
        self.app.router.load().record_success_at(attempt, done.into(), total);
        if let Some(m) = &self.target_of(attempt).metrics {
            let usage = answer.usage.map(|u| sluice_metrics::Usage {
                prompt_tokens: u.prompt_tokens.min(max),
                completion_tokens: u.completion_tokens.min(max),
            });
            m.attempt_succeeded(self.label_model, self.facts.caller(), attempt.elapsed_at(done.into()), None, usage);
        }
        if let Some(c) = &self.facts.charge {
            match &responses {
                // A Response's id as the client gets it, wrapped to name this deployment.
                Some(s) => {
                    let wrap = super::responses::IdWrap { provider: provider.name, deployment: wrap_id };
                    if let Some(id) = s.id.as_ref().and_then(|span| super::responses::wrapped_id(&body, span, &wrap)) {
                        c.answered_as(&id);
                    }
                }
                None => {
                    if let Some(id) = answer.id(&body) {
                        c.answered_as(&id);
                    }
                }
            }
            c.answered_with(&body);
        }
        let price = self.target_of(attempt).served.price;
        match self.endpoint {
            Endpoint::Transcriptions | Endpoint::Translations => self.settle_transcription(&body, price.as_ref()),
            // A rerank server that answers in Cohere's shape reports the search units it billed.
            Endpoint::Rerank if price.is_some_and(|p| p.units.input_per_query > 0.0) => {
                let units = serde_json::from_slice(&body).map_or(0.0, |v| search_unit_cost(&v, price.as_ref()));
                self.settle_with(answer.usage, units)
            }
            _ => self.settle_with(answer.usage, unit_cost(self.endpoint, self.body, self.view, price.as_ref())),
        }
        let out = match (answer.model_span, restamp) {
            // A Response's id is wrapped to name this deployment too (`proxy::responses`).
            (_, stamp) if self.endpoint == Endpoint::Responses => {
                let spans = responses.unwrap_or_default();
                let wrap = super::responses::IdWrap { provider: provider.name, deployment: wrap_id };
                [super::responses::restamp(&body, &spans, &wrap, stamp.as_deref()), Bytes::new(), Bytes::new()]
            }
            (Some(span), Some(stamp)) => splice::replace(&body, span, stamp),
            _ => [body, Bytes::new(), Bytes::new()],
        };
        let status = StatusCode::from_u16(up.status.as_u16()).unwrap_or(StatusCode::OK);
        let content_type = match self.endpoint {
            e if e.is_upload() && !out[0].starts_with(b"{") => "text/plain; charset=utf-8",
            _ => "application/json",
        };
        let mut reply = Reply::whole(status, content_type, out);
        reply.lines = self.finish(Some(&up.headers));
        Ok(reply)
    }
}

impl UpstreamCall<'_> {
    /// A successful `/audio/speech` answer: the upstream's audio bytes go to the client as they
    /// come, with its content type, never buffered whole. Billed as it starts (by the characters
    /// asked for, which the answer does not change).
    pub(super) fn relay_audio(
        &mut self,
        attempt: &Attempt<Target>,
        up: UpstreamHead,
        incoming: super::pool::UpstreamBody,
    ) -> Reply {
        self.audio_succeeded(attempt);
        let mut h = HeaderMap::with_capacity(1);
        let content_type = up.headers.get_str("content-type").and_then(|v| HeaderValue::from_str(v).ok());
        h.insert(header::CONTENT_TYPE, content_type.unwrap_or(HeaderValue::from_static("application/octet-stream")));
        let status = StatusCode::from_u16(up.status.as_u16()).unwrap_or(StatusCode::OK);
        let mut reply = Reply::stream(status, h, axum::body::Body::new(incoming));
        reply.lines = self.finish(Some(&up.headers));
        reply
    }

    /// An audio answer's success: the router, the metrics and the bill (by the route's units:
    /// characters spoken, seconds transcribed).
    fn audio_succeeded(&mut self, attempt: &Attempt<Target>) {
        self.clock.answered = Some(Instant::now());
        self.app.router.load().record_success(attempt, None);
        if let Some(m) = &self.target_of(attempt).metrics {
            m.attempt_succeeded(self.label_model, self.facts.caller(), attempt.elapsed(), None, None);
        }
        let units = unit_cost(self.endpoint, self.body, self.view, self.target_of(attempt).served.price.as_ref());
        self.settle_with(None, units);
    }

    /// Speech a provider answered inside JSON (Google's `audioContent`), decoded whole: sent
    /// with its content type and billed as [`relay_audio`](Self::relay_audio) bills.
    pub(super) fn whole_audio(
        &mut self,
        attempt: &Attempt<Target>,
        up: &UpstreamHead,
        audio: Bytes,
        content_type: &'static str,
    ) -> Reply {
        self.audio_succeeded(attempt);
        let mut reply = Reply::whole(StatusCode::OK, content_type, [audio, Bytes::new(), Bytes::new()]);
        reply.lines = self.finish(Some(&up.headers));
        reply
    }

    /// Bills a transcription by the seconds of audio its answer reports (`verbose_json`'s
    /// `duration`) at the deployment's `input_cost_per_second`, as LiteLLM does; an answer in
    /// another format reports none and costs 0.
    pub(super) fn settle_transcription(&mut self, answer: &[u8], price: Option<&sluice_providers::pricing::Price>) {
        let Some(c) = &self.facts.charge else { return };
        let seconds = sluice_wire::units::audio_seconds(answer);
        if seconds.is_none() && price.is_some_and(|p| p.input_per_second > 0.0) {
            tracing::debug!("transcription answer has no duration (response_format is not verbose_json): billed 0");
        }
        let cost = price.map_or(0.0, |p| p.input_per_second * seconds.unwrap_or(0.0));
        self.outcome.cost = Some(c.settle_untimed(Default::default(), cost));
    }

    /// Bills a translated image answer for the `made` images it holds (at most what
    /// [`unit_cost`] bounds), of the size the request asked for.
    pub(super) fn settle_images(
        &mut self,
        usage: Option<sniff::Usage>,
        made: u64,
        price: Option<&sluice_providers::pricing::Price>,
    ) {
        let ask = image_ask(self.endpoint, self.body, self.view);
        let units = price.map(|p| p.units).filter(|u| u.any()).map_or(0.0, |u| u.images(made, ask.pixels));
        self.settle_with(usage, units);
    }

    /// Bills a finished non-streamed answer; its cost goes out as `x-litellm-response-cost`.
    pub(super) fn settle(&mut self, usage: Option<sniff::Usage>) {
        self.settle_with(usage, 0.0);
    }

    /// [`settle`](Self::settle), plus what the request's own units cost (images, characters
    /// spoken: [`unit_cost`]).
    pub(super) fn settle_with(&mut self, usage: Option<sniff::Usage>, units: f64) {
        if let Some(c) = &self.facts.charge {
            let usage = sluice_access::charge::token_usage(&usage.unwrap_or_default());
            self.outcome.cost = Some(c.settle_with(usage, units));
        }
    }
}

/// What a request to an endpoint billed by units costs at `price`, besides its tokens, as
/// LiteLLM bills it: `n` images of the asked size (generated, edited or varied), the characters
/// of the text spoken.
/// Moderations cost nothing, and the token endpoints have no units.
fn unit_cost(
    endpoint: Endpoint,
    body: &[u8],
    view: &sniff::RequestView<'_>,
    price: Option<&sluice_providers::pricing::Price>,
) -> f64 {
    let Some(units) = price.map(|p| p.units).filter(|u| u.any()) else { return 0.0 };
    match endpoint {
        Endpoint::Images | Endpoint::ImageEdits | Endpoint::ImageVariations => {
            let ask = image_ask(endpoint, body, view);
            units.images(ask.n, ask.pixels)
        }
        Endpoint::Speech => units.speech(view.input.map_or(0, sluice_wire::units::characters)),
        _ => 0.0,
    }
}

/// What an image request asks for: an upload's form, read by the sniffer, or a JSON body's
/// `n` and `size`.
fn image_ask(endpoint: Endpoint, body: &[u8], view: &sniff::RequestView<'_>) -> sluice_wire::units::ImageAsk {
    match view.images {
        Some(ask) if endpoint.is_upload() => ask,
        _ => sluice_wire::units::images(body),
    }
}

/// What a rerank answer costs by the search units it reports (`meta.billed_units.search_units`,
/// Cohere's shape) at the deployment's `input_cost_per_query`, as LiteLLM's
/// `calculate_rerank_cost` bills it; an answer that reports none costs 0 by them.
pub(super) fn search_unit_cost(answer: &serde_json::Value, price: Option<&sluice_providers::pricing::Price>) -> f64 {
    price.map_or(0.0, |p| p.units.queries(sluice_providers::cohere::search_units(answer)))
}

/// A numeric upstream header; `None` when absent, unreadable or not finite (`NaN`, `inf`).
fn header_f64(h: &UpstreamHeaders, name: &str) -> Option<f64> {
    let text = h.get_str(name)?.trim();
    // Rate-limit counts are whole numbers, read on every answer: summing the digits costs a
    // tenth of the general float parser (15 digits stay exact in an f64).
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(text.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64);
    }
    text.parse().ok().filter(|x: &f64| x.is_finite())
}

/// The longest wait an upstream's `retry-after` can impose: the longest cooldown it can put a
/// deployment in. A provider asking for more is clamped (and logged) rather than trusted, since
/// the value becomes a deadline and the header is outside input.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds, at most [`MAX_RETRY_AFTER`]; HTTP dates,
/// negative and non-numeric values are ignored.
pub(super) fn retry_after(h: &UpstreamHeaders) -> Option<Duration> {
    let (seconds, name) = match header_f64(h, "retry-after-ms") {
        Some(ms) => (ms / 1000.0, "retry-after-ms"),
        None => (header_f64(h, "retry-after")?, "retry-after"),
    };
    if seconds < 0.0 {
        return None;
    }
    if seconds > MAX_RETRY_AFTER.as_secs_f64() {
        tracing::warn!(
            header = name,
            value = seconds,
            "upstream asked to wait longer than {} s; waiting {} s instead",
            MAX_RETRY_AFTER.as_secs(),
            MAX_RETRY_AFTER.as_secs()
        );
        return Some(MAX_RETRY_AFTER);
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> UpstreamHeaders {
        UpstreamHeaders::Map(
            pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v))).collect(),
        )
    }

    #[test]
    fn header_numbers_read_whole_and_fractional_forms() {
        let h = headers(&[
            ("a", "9999"),
            ("b", " 42 "),
            ("c", "1.5"),
            ("d", "999999999999999"),
            ("e", "12345678901234567890"),
            ("f", "-3"),
            ("g", "1e3"),
            ("h", ""),
            ("i", "x1"),
            ("j", "0"),
        ]);
        let read = |n: &str| header_f64(&h, n);
        assert_eq!(read("a"), Some(9999.0));
        assert_eq!(read("b"), Some(42.0));
        assert_eq!(read("c"), Some(1.5));
        assert_eq!(read("d"), Some(999_999_999_999_999.0));
        assert_eq!(read("e"), Some(12_345_678_901_234_567_890.0));
        assert_eq!(read("f"), Some(-3.0));
        assert_eq!(read("g"), Some(1000.0));
        assert_eq!(read("h"), None);
        assert_eq!(read("i"), None);
        assert_eq!(read("j"), Some(0.0));
        assert_eq!(read("missing"), None);
    }

    #[test]
    fn retry_after_prefers_milliseconds_and_ignores_dates() {
        let ms = headers(&[("retry-after-ms", "1500"), ("retry-after", "9")]);
        assert_eq!(retry_after(&ms), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&headers(&[("retry-after", "2")])), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
    }

    #[test]
    fn retry_after_is_clamped_to_its_maximum() {
        for huge in ["1e30", "99999999999999999999", "18446744073709551615", "1e308", "3601"] {
            assert_eq!(retry_after(&headers(&[("retry-after", huge)])), Some(MAX_RETRY_AFTER), "{huge}");
        }
        let ms = headers(&[("retry-after-ms", "18446744073709551615000")]);
        assert_eq!(retry_after(&ms), Some(MAX_RETRY_AFTER));
        for odd in ["inf", "-inf", "NaN", "infinity", "-0.5"] {
            assert_eq!(retry_after(&headers(&[("retry-after", odd)])), None, "{odd}");
            assert_eq!(retry_after(&headers(&[("retry-after-ms", odd)])), None, "{odd}");
        }
    }

    proptest::proptest! {
        /// Whatever an upstream writes in the headers, reading them never panics, and a wait
        /// comes out bounded.
        #[test]
        fn any_retry_after_header_is_bounded(value in crate::test_numbers::text(), ms in proptest::bool::ANY) {
            let name = if ms { "retry-after-ms" } else { "retry-after" };
            let Ok(v) = http::HeaderValue::from_str(&value) else { return Ok(()) };
            let h = UpstreamHeaders::Map([(http::HeaderName::from_static(name), v.clone())].into_iter().collect());
            if let Some(d) = retry_after(&h) {
                proptest::prop_assert!(d <= MAX_RETRY_AFTER);
            }
            let h = UpstreamHeaders::Map(
                [(http::HeaderName::from_static("x-ratelimit-remaining-tokens"), v)].into_iter().collect(),
            );
            if let Some(x) = header_f64(&h, "x-ratelimit-remaining-tokens") {
                proptest::prop_assert!(x.is_finite());
            }
        }
    }
}
