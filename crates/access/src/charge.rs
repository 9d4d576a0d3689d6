//! Settling a request: its usage priced, added to every ledger it belongs to (key, user, team,
//! end user) and to the token windows, and a spend-log row queued — once per request, whether the
//! response ended normally or the client walked away from a stream. A failed call gets its
//! spend-log row (status `failure`, nothing billed) from [`Charge::failed`]. The logging
//! callbacks get their record of the call here too: a success when it is settled, a failure from
//! [`Charge::failed`].

use super::admit::Admission;
use super::Access;
use sluice_export::record::unix_seconds;
use sluice_export::Status;
use sluice_providers::pricing::{Price, TokenUsage};
use sluice_state::RateWindow;
use sluice_store::{SpendLogRecord, Spender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the deployment that served contributes to a spend-log row and the price. Built once per
/// deployment; every row it serves shares these strings instead of copying them.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub model: Arc<str>,
    /// The deployment's `model_name`.
    pub model_group: Arc<str>,
    /// The optional fields are `None` rather than empty, as the row stores them.
    pub model_id: Option<Arc<str>>,
    pub provider: Option<Arc<str>>,
    pub api_base: Option<Arc<str>>,
    pub price: Option<Price>,
    /// How long this deployment's answers are, for the cost estimates of requests in flight.
    pub answer: super::reserve::AnswerLength,
}

impl Served {
    pub fn new(
        model: &str,
        model_group: &str,
        model_id: &str,
        provider: &str,
        api_base: &str,
        price: Option<Price>,
    ) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| Arc::from(s));
        Served {
            model: model.into(),
            model_group: model_group.into(),
            model_id: non_empty(model_id),
            provider: non_empty(provider),
            api_base: non_empty(api_base),
            price,
            answer: Default::default(),
        }
    }
}

/// The most tokens one request is billed for, per count (prompt, completion, cache reads and
/// writes): ten times the largest context window any provider offers. A larger count is an
/// upstream's mistake (or `u64::MAX`); it is clamped and flagged rather than billed as reported.
pub const MAX_TOKENS: u64 = 100_000_000;

/// `usage` with each count at most [`MAX_TOKENS`], and whether any had to be clamped.
pub fn bounded(usage: TokenUsage) -> (TokenUsage, bool) {
    let clamp = |n: u64| n.min(MAX_TOKENS);
    let out = TokenUsage {
        prompt_tokens: clamp(usage.prompt_tokens),
        completion_tokens: clamp(usage.completion_tokens),
        cached_prompt_tokens: clamp(usage.cached_prompt_tokens),
        cache_creation_tokens: clamp(usage.cache_creation_tokens),
        reasoning_tokens: clamp(usage.reasoning_tokens),
    };
    (out, out != usage)
}

/// An upstream's reported usage as the price table counts it.
pub fn token_usage(u: &sluice_wire::sniff::Usage) -> TokenUsage {
    TokenUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_prompt_tokens: u.cached_tokens,
        cache_creation_tokens: u.cache_creation_input_tokens,
        reasoning_tokens: u.reasoning_tokens,
    }
}

/// The longest answer id a spend-log row keeps (OpenAI's are under 40 bytes).
pub const MAX_RESPONSE_ID: usize = 256;

/// The most tags one spend-log row carries, each at most [`MAX_TAG`] bytes.
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG: usize = 256;

/// The row's tags: the request's, then the key's and the team's (`metadata.tags`), each once,
/// bounded in count and size (the request's are bounded where they are read).
fn row_tags(
    request: &[String],
    key: Option<&serde_json::Map<String, serde_json::Value>>,
    team: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Vec<String> {
    fn stored(m: Option<&serde_json::Map<String, serde_json::Value>>) -> impl Iterator<Item = &str> {
        m.and_then(|m| m.get("tags")).and_then(|t| t.as_array()).into_iter().flatten().filter_map(|t| t.as_str())
    }
    let mut out: Vec<String> = Vec::new();
    for tag in request.iter().map(String::as_str).chain(stored(key)).chain(stored(team)) {
        if out.len() == MAX_TAGS {
            break;
        }
        if tag.len() <= MAX_TAG && !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

/// The ids a request's spend-log row carries, and its place in a trace.
#[derive(Default)]
pub struct LogIds {
    /// The row's identity: sluice's own, unique per request.
    pub request_id: String,
    /// The `x-litellm-call-id` the client sent, if it sent one.
    pub client_call_id: Option<String>,
    /// The request's own tags (`metadata.tags` or `tags`; `proxy::tags`), logged with the key's
    /// and the team's.
    pub tags: Vec<String>,
    /// The request's trace, while an OpenTelemetry sink runs: its record carries the trace and
    /// the spans of its attempts ([`Charge::attempt_began`]).
    pub trace: Option<sluice_export::trace::TraceContext>,
    /// The request's messages (prompt, input) for its logging record, when the callbacks keep
    /// content (`sluice_export::Callbacks::content`).
    pub messages: Option<sluice_export::content::Content>,
    /// What the request said for Langfuse (its `metadata` and `langfuse_*` headers), kept as sent
    /// when a sink reads it.
    pub request_metadata: Option<Box<sluice_export::request_metadata::Carried>>,
}

/// A request's bill, settled once.
pub struct Charge {
    access: Arc<Access>,
    admission: Admission,
    api_key: Arc<str>,
    model_group: String,
    ids: LogIds,
    call_type: &'static str,
    /// The request's `user` field: the spend log's `end_user`, as LiteLLM logs it whether or not
    /// the end user is tracked, and the `end_user` label of the spend metric.
    end_user: Option<Box<str>>,
    started: chrono::DateTime<chrono::Utc>,
    served: Mutex<Option<(Arc<Served>, Option<sluice_metrics::DeploymentMetrics>)>>,
    /// The id of the answer billed (the provider's `chatcmpl-…`): the last attempt's to answer.
    response_id: Mutex<Option<Box<str>>>,
    settled: AtomicBool,
    /// Whether the logging callbacks have had this call's record (one per call, success or
    /// failure).
    logged: AtomicBool,
    /// Whether this call's spend-log row is written (one per call, success or failure,
    /// whichever comes first).
    spend_logged: AtomicBool,
    /// Labels of `litellm_spend_metric` the request record also has (only with metrics on).
    labels: Option<MetricLabels>,
    /// The upstream attempts so far, for the trace (only while one is kept: `ids.trace`).
    attempts: Mutex<Vec<sluice_export::trace::AttemptSpan>>,
    /// The last failed attempt's status and LiteLLM exception class: what the call's failure is
    /// when it fails with that status (a refused connection is an `APIConnectionError`, though
    /// the client's status, 500, alone would say `InternalServerError`).
    last_attempt_failure: Mutex<Option<(u16, &'static str)>>,
    /// When a stream's first frame came (Unix microseconds; 0 until then): the record's
    /// `completionStartTime`. Set only while logging callbacks run.
    first_frame: std::sync::atomic::AtomicI64,
    /// What the request said for Langfuse, taken by the logging record.
    request_metadata: Mutex<Option<Box<sluice_export::request_metadata::Carried>>>,
    /// How the answer ended, for the trace (only while one is kept: `ids.trace`).
    finish: Mutex<sluice_export::trace::Finish>,
    /// The prompt and the answer for the logging record, taken by it.
    content: Mutex<(Option<sluice_export::content::Content>, Option<sluice_export::content::Content>)>,
    /// The call's place among the requests in flight, while hanging requests are watched
    /// (alerting's `llm_requests_hanging`); dropped with the charge, when the call is over.
    _in_flight: Option<sluice_export::alerting::Tracked>,
    /// When the call started, for `llm_too_slow`: read only with alerting on (the clock is
    /// not read for a request otherwise).
    began: Option<std::time::Instant>,
    /// The answer cache's key for this call, and whether the answer came from it.
    cache: std::sync::OnceLock<(Box<str>, bool)>,
}

/// What the request's metrics record is labelled with, so its spend lands on the same series.
#[derive(Debug, Default, Clone)]
pub struct MetricLabels {
    pub route: &'static str,
    pub user_agent: String,
    /// The `requested_model` label when it is not the model group the request named: a name a
    /// wildcard serves that the price table does not know is labelled by the pattern, so
    /// callers cannot mint series.
    pub requested_model: Option<String>,
}

impl Charge {
    pub fn new(
        access: Arc<Access>,
        admission: Admission,
        model_group: &str,
        mut ids: LogIds,
        call_type: &'static str,
        end_user: Option<&str>,
        labels: Option<MetricLabels>,
    ) -> Arc<Charge> {
        let api_key = match &admission.key {
            Some(k) => k.record.token.as_str().into(),
            None => access.master_hash.clone(),
        };
        let alerting = access.alerts.get();
        let in_flight = alerting.and_then(|a| a.track(model_group));
        let began = alerting.map(|_| std::time::Instant::now());
        Arc::new(Charge {
            access,
            admission,
            api_key,
            model_group: model_group.to_string(),
            call_type,
            end_user: end_user.map(Into::into),
            started: chrono::Utc::now(),
            served: Mutex::new(None),
            response_id: Mutex::new(None),
            settled: AtomicBool::new(false),
            logged: AtomicBool::new(false),
            spend_logged: AtomicBool::new(false),
            labels,
            attempts: Mutex::new(Vec::new()),
            last_attempt_failure: Mutex::new(None),
            first_frame: std::sync::atomic::AtomicI64::new(0),
            finish: Mutex::new(Default::default()),
            request_metadata: Mutex::new(ids.request_metadata.take()),
            content: Mutex::new((ids.messages.take(), None)),
            ids,
            _in_flight: in_flight,
            began,
            cache: std::sync::OnceLock::new(),
        })
    }

    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The model the client asked for.
    pub fn model_group(&self) -> &str {
        &self.model_group
    }

    /// The calling key's metrics labels.
    pub fn caller(&self) -> Option<&sluice_metrics::Caller> {
        self.admission.key.as_ref()?.caller.as_ref()
    }

    /// The deployment now answering (set on every attempt; the last one is billed).
    pub fn serving(&self, served: &Arc<Served>, metrics: Option<&sluice_metrics::DeploymentMetrics>) {
        *self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((served.clone(), metrics.cloned()));
    }

    /// The request's trace, when one is kept.
    pub fn trace(&self) -> Option<&sluice_export::trace::TraceContext> {
        self.ids.trace.as_ref()
    }

    /// An upstream attempt began on `served` (kept only while the request is traced): open until
    /// it fails ([`attempt_failed`](Self::attempt_failed)) or the call's record closes it.
    pub fn attempt_began(&self, span_id: sluice_export::trace::SpanId, start_unix_nanos: u64, served: &Served) {
        if self.ids.trace.is_none() {
            return;
        }
        self.attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(
            sluice_export::trace::AttemptSpan {
                span_id,
                start_unix_nanos,
                end_unix_nanos: 0,
                model: served.model.clone(),
                model_id: served.model_id.clone(),
                model_group: served.model_group.clone(),
                provider: served.provider.clone(),
                api_base: served.api_base.clone(),
                status: 0,
                error_class: None,
            },
        );
    }

    /// An upstream attempt failed with `status` and LiteLLM's exception `class`: the call's own
    /// failure, if it ends with that status, is of that class. Taken on failures only.
    pub fn attempt_failed_as(&self, status: u16, class: &'static str) {
        *self.last_attempt_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((status, class));
    }

    /// The attempt with span `span_id` failed now, with `status` and LiteLLM's exception class.
    pub fn attempt_failed(&self, span_id: &sluice_export::trace::SpanId, status: u16, class: &'static str) {
        let mut attempts = self.attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = attempts.iter_mut().rev().find(|a| a.span_id == *span_id) {
            (a.end_unix_nanos, a.status, a.error_class) = (sluice_export::trace::unix_nanos(), status, Some(class));
        }
    }

    /// The id of the answer now coming back (a later attempt's replaces an earlier one's): the
    /// spend log's `response_id`. Ids are bounded: one longer than [`MAX_RESPONSE_ID`] bytes is
    /// not an id any client looks up, and is not kept.
    pub fn answered_as(&self, id: &str) {
        if id.len() <= MAX_RESPONSE_ID && !self.settled.load(Ordering::Acquire) {
            *self.response_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id.into());
        }
    }

    /// A stream's first frame is in: the logging record's `completionStartTime` (the time to
    /// the first token).
    pub fn first_frame(&self) {
        if self.access.logging.get().is_some() {
            self.first_frame.store(chrono::Utc::now().timestamp_micros(), Ordering::Relaxed);
        }
    }

    /// The answer as the upstream gave it, for the logging record (when its callbacks keep
    /// content; a whole answer only).
    /// When the call is traced and the answer is not kept as content, it is held for the trace
    /// alone (a reference to the same bytes, bounded as content is), whose sink reads its finish
    /// reasons off the request path.
    pub fn answered_with(&self, body: &bytes::Bytes) {
        if let Some(content) = self.access.logging.get().and_then(|c| c.content(body, self.own_langfuse().is_some())) {
            self.content.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = Some(content);
        } else if self.ids.trace.is_some() {
            if let Some(answer) = sluice_export::content::Content::hold(body) {
                *self.finish.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    sluice_export::trace::Finish::Answer(answer);
            }
        }
    }

    /// A stream's chunk finished with `raw` (its `finish_reason`, as JSON): the trace's finish
    /// reason, the last chunk's winning. Nothing is kept unless the call is traced.
    pub fn finished_with(&self, raw: &str) {
        if self.ids.trace.is_none() {
            return;
        }
        if let Some(reason) = sluice_export::trace::finish_reason(raw) {
            *self.finish.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                sluice_export::trace::Finish::Streamed(reason);
        }
    }

    /// A stream's answer, as the text its chunks carried, for the logging record (when its
    /// callbacks keep content): LiteLLM logs a stream as the whole answer it assembled.
    pub fn streamed(&self, text: &str) {
        let own_project = self.own_langfuse().is_some();
        let Some(callbacks) = self.access.logging.get().filter(|c| c.keeps_content(own_project)) else { return };
        let answer = serde_json::json!({
            "object": "chat.completion",
            "model": self.model_group,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        });
        let Ok(json) = serde_json::to_vec(&answer) else { return };
        if let Some(content) = callbacks.content(&bytes::Bytes::from(json), own_project) {
            self.content.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = Some(content);
        }
    }

    /// The answer cache answered this call from `key` (`hit`; the call is then billed
    /// nothing, as it reached no deployment): the spend log's `cache_hit` and `cache_key` (as
    /// LiteLLM, a miss logs neither), the logging record's `cache_hit`.
    pub fn cached(&self, key: &str, hit: bool) {
        let _ = self.cache.set((key.into(), hit));
    }

    fn cache_hit(&self) -> bool {
        self.cache.get().is_some_and(|(_, hit)| *hit)
    }

    /// Whether a price is known, i.e. whether counting tokens ourselves would change the bill.
    pub fn priced(&self) -> bool {
        self.served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(s, _)| s.price.is_some())
    }

    /// Bills `usage` (the first call wins) and returns the cost in USD.
    pub fn settle(&self, usage: TokenUsage) -> f64 {
        self.settle_with(usage, 0.0)
    }

    /// [`settle`](Self::settle), plus a fixed cost in USD (a pass-through endpoint's
    /// `cost_per_request`; bounded where it is configured, and ignored unless finite and
    /// positive).
    pub fn settle_with(&self, usage: TokenUsage, fixed_cost: f64) -> f64 {
        self.settle_by(usage, fixed_cost, Priced::Timed)
    }

    /// [`settle`](Self::settle) for a completed batch's tokens, at the deployment's batch prices
    /// (LiteLLM's `batch_cost_calculator`: [`sluice_providers::pricing::Price::batch_cost`]).
    pub fn settle_batch(&self, usage: TokenUsage) -> f64 {
        self.settle_by(usage, 0.0, Priced::Batch)
    }

    /// [`settle_with`](Self::settle_with), with the per-second prices not applied to the call's
    /// time: for a route whose seconds are the audio's (transcriptions), which the caller bills
    /// in `fixed_cost`.
    pub fn settle_untimed(&self, usage: TokenUsage, fixed_cost: f64) -> f64 {
        self.settle_by(usage, fixed_cost, Priced::Untimed)
    }

    fn settle_by(&self, usage: TokenUsage, fixed_cost: f64, priced: Priced) -> f64 {
        if self.settled.swap(true, Ordering::AcqRel) {
            return 0.0;
        }
        let (served, deployment) =
            self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default();
        let served = &*served;
        let reported = usage;
        let (usage, clamped) = bounded(usage);
        if clamped {
            tracing::warn!(
                request_id = %self.ids.request_id,
                model = %served.model,
                prompt_tokens = reported.prompt_tokens,
                completion_tokens = reported.completion_tokens,
                "upstream reported more than {MAX_TOKENS} tokens for one request; billed as {MAX_TOKENS}"
            );
        }
        let fixed = if fixed_cost.is_finite() && fixed_cost > 0.0 { fixed_cost } else { 0.0 };
        let cost = served
            .price
            .map(|p| match priced {
                Priced::Batch => p.batch_cost(&usage),
                // How long the call took, read only for a deployment priced by time.
                Priced::Timed if p.per_second() => {
                    p.cost_of_call(&usage, (chrono::Utc::now() - self.started).num_milliseconds() as f64 / 1000.0)
                }
                Priced::Timed | Priced::Untimed => p.cost(&usage),
            })
            .unwrap_or(0.0)
            + fixed;
        let a = &self.admission;
        let tokens = usage.prompt_tokens + usage.completion_tokens;
        let now = sluice_state::now_secs();
        let model = Some(self.model_group.as_str());
        let charge = |spender: Spender, live: &Arc<super::registry::Live>, per_model: bool| {
            live.tokens.add(tokens, now);
            if cost > 0.0 && live.ledger.charge(cost, per_model.then_some(model).flatten()) {
                self.access.writer.dirty(spender, live);
            }
            // Shared budgets: the same cost to the totals in Redis (sent in the background).
            if cost > 0.0 {
                if let Some(s) = live.shared.spend.get() {
                    s.charge(cost);
                }
                if per_model {
                    let models = live.shared.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(s) = models.get(&self.model_group) {
                        s.charge(cost);
                    }
                }
            }
        };
        if let Some(k) = &a.key {
            charge(Spender::Key(k.record.token.clone()), &k.live, true);
            if let Some(w) =
                k.live.per_model.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&self.model_group)
            {
                w.1.add(tokens, now);
            }
        }
        if let Some(u) = &a.user {
            charge(Spender::User(u.record.user_id.clone()), &u.live, true);
        }
        if let Some(t) = &a.team {
            charge(Spender::Team(t.record.team_id.clone()), &t.live, true);
        }
        if let Some(o) = &a.organization {
            charge(Spender::Organization(o.record.record.organization_id.clone()), &o.live, true);
        }
        if let Some(m) = &a.member {
            let r = &m.record.record;
            charge(Spender::TeamMember(r.user_id.clone(), r.team_id.clone()), &m.live, false);
        }
        if let Some(e) = &a.end_user {
            charge(Spender::EndUser(e.record.user_id.clone()), &e.live, false);
        }
        if let Some(g) = &self.access.global_budget {
            charge(Spender::User(super::PROXY_BUDGET_ID.into()), &g.live, false);
        }
        self.access.pulse.spend(cost, &self.model_group, a.key.as_ref().map(|k| k.record.token.as_str()));
        // The estimate stops counting only now that the cost is in the ledgers: at no moment
        // does a budget see neither.
        a.reservation.release();
        if let Some(alerts) = self.access.alerts.get() {
            if cost > 0.0 {
                super::alerts::budgets(alerts, a);
            }
            if let Some(began) = self.began {
                super::alerts::slow(alerts, began.elapsed(), &self.model_group, served, a);
            }
        }
        if served.price.is_some() {
            served.answer.observe(usage.completion_tokens);
        }
        if self.spend_row_due() {
            let metadata = if clamped { usage_clamped(&reported) } else { serde_json::Map::new() };
            self.access.writer.log(self.spend_row(served, &usage, cost, "success", metadata));
        }
        if let Some(callbacks) = self.logging_for(Status::Success) {
            callbacks.log(self.log_record(callbacks, served, Status::Success, &usage, cost, None));
        }
        if let (Some(m), Some(labels), true) = (&self.access.metrics, &self.labels, cost > 0.0) {
            m.request_spend(&sluice_metrics::RequestRecord {
                requested_model: labels.requested_model.as_deref().unwrap_or(&self.model_group),
                route: labels.route,
                status: 200,
                exception_class: None,
                total: std::time::Duration::ZERO,
                upstream: std::time::Duration::ZERO,
                queue: None,
                deployment: deployment.as_ref(),
                end_user: self.end_user.as_deref().unwrap_or(""),
                user_agent: &labels.user_agent,
                caller: self.caller(),
                spend: cost,
            });
        }
        if let Some(m) = &self.access.metrics {
            let remaining = |max: Option<f64>, live: &super::registry::Live| max.map(|b| b - live.ledger.spend());
            let hours = |reset: Option<i64>| {
                reset.map(|t| ((t - chrono::Utc::now().timestamp_millis()) as f64 / 3.6e6).max(0.0))
            };
            if let Some(k) = &a.key {
                if let Some(caller) = &k.caller {
                    let max = k.record.max_budget;
                    m.key_budget(caller, max, remaining(max, &k.live), hours(k.live.ledger.reset_at_ms()));
                }
            }
            if let Some(t) = &a.team {
                let max = t.record.max_budget;
                let alias = t.record.team_alias.as_deref().unwrap_or("");
                let left = remaining(max, &t.live);
                m.team_budget(&t.record.team_id, alias, max, left, hours(t.live.ledger.reset_at_ms()));
            }
            if let Some(u) = &a.user {
                let max = u.record.max_budget;
                m.user_budget(&u.record.user_id, max, remaining(max, &u.live), hours(u.live.ledger.reset_at_ms()));
            }
        }
        cost
    }
}

/// Why a call failed, for its logging record.
pub struct Failure<'a> {
    pub status: u16,
    /// LiteLLM's exception class (`RateLimitError`, …).
    pub class: &'static str,
    pub message: &'a str,
}

pub use sluice_export::record::{bounded_error, MAX_ERROR_STR};

impl Charge {
    /// The call failed with nothing billed: a spend-log row with status `failure` and LiteLLM's
    /// `error_information` is written (as LiteLLM's failure hook does), and the logging callbacks
    /// that take failures get its record. A call has at most one row and one record, whichever
    /// of this and a settle comes first.
    pub fn failed(&self, failure: &Failure<'_>) {
        let last = *self.last_attempt_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let classed;
        let failure = match last {
            Some((status, class)) if status == failure.status && class != failure.class => {
                classed = Failure { class, ..*failure };
                &classed
            }
            _ => failure,
        };
        if let Some(alerts) = self.access.alerts.get().filter(|_| !self.settled.load(Ordering::Acquire)) {
            let (served, _) =
                self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default();
            super::alerts::failed(alerts, failure, &self.model_group, &served, &self.admission);
        }
        // A call already settled has its success row; `spend_row_due` then keeps it the only one.
        let row = !self.settled.load(Ordering::Acquire) && self.spend_row_due();
        let callbacks = self.logging_for(Status::Failure);
        if !row && callbacks.is_none() {
            return;
        }
        let (served, _) =
            self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default();
        if row {
            let metadata = failure_metadata(failure, &served);
            self.access.writer.log(self.spend_row(&served, &TokenUsage::default(), 0.0, "failure", metadata));
        }
        if let Some(callbacks) = callbacks {
            callbacks.log(self.log_record(
                callbacks,
                &served,
                Status::Failure,
                &TokenUsage::default(),
                0.0,
                Some(failure),
            ));
        }
    }

    /// Whether this call's spend-log row is still to be written, and is written now: spend logs
    /// are kept (a store, `disable_spend_logs` off) and no row of this call went yet.
    fn spend_row_due(&self) -> bool {
        self.access.store().is_some()
            && !self.access.settings.disable_spend_logs
            && !self.spend_logged.swap(true, Ordering::AcqRel)
    }

    /// This call's spend-log row, as LiteLLM writes it for a success or a failure: `served` is
    /// the deployment that answered (or last tried), `usage` and `cost` what it is billed.
    fn spend_row(
        &self,
        served: &Served,
        usage: &TokenUsage,
        cost: f64,
        status: &'static str,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> SpendLogRecord {
        let a = &self.admission;
        let end_user = match &a.end_user {
            Some(e) => Some(e.record.user_id.clone()),
            None => self.end_user.as_deref().map(str::to_string),
        };
        // The group the request named is nearly always the deployment's own name: share it.
        let model_group = if *served.model_group == *self.model_group {
            served.model_group.clone()
        } else {
            self.model_group.as_str().into()
        };
        SpendLogRecord {
            request_id: self.ids.request_id.clone(),
            client_call_id: self.ids.client_call_id.clone(),
            call_type: self.call_type.into(),
            api_key: self.api_key.clone(),
            spend: cost,
            total_tokens: (usage.prompt_tokens + usage.completion_tokens) as i64,
            prompt_tokens: usage.prompt_tokens as i64,
            completion_tokens: usage.completion_tokens as i64,
            start_time: self.started,
            end_time: chrono::Utc::now(),
            // A call that failed before any deployment was tried is logged under the model it
            // asked for, as LiteLLM logs it.
            model: match served.model.is_empty() {
                true => self.model_group.as_str().into(),
                false => served.model.clone(),
            },
            model_id: served.model_id.clone(),
            model_group: Some(model_group),
            custom_llm_provider: served.provider.clone(),
            api_base: served.api_base.clone(),
            user: a.key.as_ref().and_then(|k| k.record.user_id.clone()),
            team_id: a.key.as_ref().and_then(|k| k.record.team_id.clone()),
            end_user,
            metadata,
            request_tags: row_tags(
                &self.ids.tags,
                a.key.as_ref().map(|k| &k.record.metadata),
                a.team.as_ref().map(|t| &t.record.metadata),
            ),
            status: status.into(),
            response_id: self
                .response_id
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_deref()
                .map(String::from),
            cache_read_input_tokens: usage.cached_prompt_tokens as i64,
            cache_creation_input_tokens: usage.cache_creation_tokens as i64,
            cache_hit: self.cache_hit(),
            cache_key: self.cache.get().map(|(k, _)| k.to_string()),
        }
    }

    /// The callbacks to hand a record with `status` to, if any takes one (every record, or this
    /// one for its key's or team's own project) and this call has not had its record yet.
    fn logging_for(&self, status: Status) -> Option<&sluice_export::Callbacks> {
        let callbacks = self.access.logging.get()?;
        let own = || callbacks.takes_own_projects() && self.own_langfuse().is_some_and(|o| o.events.wants(status));
        if !callbacks.wants(status) && !own() {
            return None;
        }
        match self.logged.swap(true, Ordering::AcqRel) {
            true => None,
            false => Some(callbacks),
        }
    }

    /// The Langfuse project of this call's key, else of its team (`metadata.logging`, resolved
    /// when they loaded).
    fn own_langfuse(&self) -> Option<&Arc<sluice_export::langfuse::OwnProject>> {
        let a = &self.admission;
        super::own_logging::OwnLogging::of_call(a.key.as_ref().map(|k| &k.logging), a.team.as_ref().map(|t| &t.logging))
    }

    /// This call in LiteLLM's `StandardLoggingPayload` shape. The key appears only as its hash.
    fn log_record(
        &self,
        callbacks: &sluice_export::Callbacks,
        served: &Served,
        status: Status,
        usage: &TokenUsage,
        cost: f64,
        failure: Option<&Failure<'_>>,
    ) -> sluice_export::LogRecord {
        let a = &self.admission;
        let key = a.key.as_ref().map(|k| &k.record);
        let end = chrono::Utc::now();
        let start_time = unix_seconds(self.started.timestamp_micros());
        let end_time = unix_seconds(end.timestamp_micros());
        let end_user = match &a.end_user {
            Some(e) => Some(e.record.user_id.clone()),
            None => self.end_user.as_deref().map(str::to_string),
        };
        let model_group: Arc<str> = match *served.model_group == *self.model_group {
            true => served.model_group.clone(),
            false => self.model_group.as_str().into(),
        };
        let error_str = failure.map(|f| callbacks.error_str(f.message));
        let trace = self.ids.trace.as_ref().map(|context| {
            let now = sluice_export::trace::unix_nanos();
            let http_status = failure.map_or(200, |f| f.status);
            let mut attempts =
                std::mem::take(&mut *self.attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            // The attempt still open is the one that answered: it ends with the call.
            for a in attempts.iter_mut().filter(|a| a.end_unix_nanos == 0) {
                (a.end_unix_nanos, a.status, a.error_class) = (now, http_status, failure.map(|f| f.class));
            }
            Box::new(sluice_export::trace::Trace {
                context: context.clone(),
                end_unix_nanos: now,
                http_status,
                response_id: self.response_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
                attempts,
                finish: std::mem::take(&mut *self.finish.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
            })
        });
        let (messages, response) =
            std::mem::take(&mut *self.content.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let request_metadata = self.request_metadata.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        sluice_export::LogRecord {
            trace,
            request_metadata,
            messages,
            response,
            id: self.ids.request_id.clone(),
            trace_id: self.ids.client_call_id.clone().unwrap_or_else(|| self.ids.request_id.clone()),
            call_type: self.call_type,
            response_cost: cost,
            status,
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            start_time,
            end_time,
            completion_start_time: match self.first_frame.load(Ordering::Relaxed) {
                0 => end_time,
                at => unix_seconds(at),
            },
            response_time: (end_time - start_time).max(0.0),
            model: served.model.clone(),
            model_id: served.model_id.clone(),
            model_group: Some(model_group),
            custom_llm_provider: served.provider.clone(),
            api_base: served.api_base.clone(),
            metadata: sluice_export::Metadata {
                user_api_key_hash: (!self.api_key.is_empty()).then(|| self.api_key.clone()),
                user_api_key_alias: key.and_then(|k| k.key_alias.clone()),
                user_api_key_org_id: a.organization.as_ref().map(|o| o.record.record.organization_id.clone()),
                user_api_key_team_id: key.and_then(|k| k.team_id.clone()),
                user_api_key_team_alias: a.team.as_ref().and_then(|t| t.record.team_alias.clone()),
                user_api_key_user_id: key.and_then(|k| k.user_id.clone()),
                user_api_key_end_user_id: end_user.clone(),
                ..Default::default()
            },
            request_tags: row_tags(
                &self.ids.tags,
                key.map(|k| &k.metadata),
                a.team.as_ref().map(|t| &t.record.metadata),
            ),
            end_user,
            error_str,
            error_information: failure.map(|f| sluice_export::ErrorInformation {
                error_code: f.status.to_string(),
                error_class: f.class,
                llm_provider: served.provider.clone(),
            }),
            cache_hit: self.cache_hit(),
            cache_key: None,
            saved_cache_cost: 0.0,
            requester_ip_address: None,
            model_parameters: sluice_export::record::Empty {},
            hidden_params: sluice_export::record::HiddenParams {
                model_id: served.model_id.clone(),
                api_base: served.api_base.clone(),
                response_cost: Some(cost),
                litellm_model_name: Some(served.model.clone()),
                cache_key: None,
                additional_headers: None,
            },
            langfuse: self.own_langfuse().cloned(),
        }
    }
}

/// The spend-log metadata of a failed request: LiteLLM's `error_information` (the status as
/// text, the exception class, the provider or `""`, the message the client got, bounded to
/// [`MAX_ERROR_STR`] bytes, and an empty `traceback`: sluice has no Python stack to show).
fn failure_metadata(failure: &Failure<'_>, served: &Served) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "error_information".into(),
        serde_json::json!({
            "error_code": failure.status.to_string(),
            "error_class": failure.class,
            "llm_provider": served.provider.as_deref().unwrap_or(""),
            "error_message": bounded_error(failure.message),
            "traceback": "",
        }),
    );
    m
}

/// The spend-log metadata of a request whose usage was clamped: the flag and what the upstream
/// actually reported.
fn usage_clamped(reported: &TokenUsage) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("usage_clamped".into(), serde_json::Value::Bool(true));
    m.insert(
        "reported_usage".into(),
        serde_json::json!({
            "prompt_tokens": reported.prompt_tokens,
            "completion_tokens": reported.completion_tokens,
            "cached_tokens": reported.cached_prompt_tokens,
            "cache_creation_input_tokens": reported.cache_creation_tokens,
        }),
    );
    m
}

/// Which of a deployment's prices a settled call is billed at.
#[derive(Clone, Copy)]
enum Priced {
    /// Its token prices, plus its per-second prices for the call's time.
    Timed,
    /// Its token prices alone (a route whose seconds are billed otherwise).
    Untimed,
    /// Its batch prices, for a completed batch's tokens.
    Batch,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request's tags come first, then the key's and the team's; each once, bounded.
    #[test]
    fn row_tags_merge_request_key_and_team_tags() {
        let meta = |v: serde_json::Value| v.as_object().unwrap().clone();
        let key = meta(serde_json::json!({"tags": ["k", "shared", 7]}));
        let team = meta(serde_json::json!({"tags": ["t", "shared"], "other": 1}));
        let request = vec!["r".to_string(), "shared".to_string()];
        assert_eq!(row_tags(&request, Some(&key), Some(&team)), ["r", "shared", "k", "t"]);
        assert!(row_tags(&[], None, Some(&meta(serde_json::json!({"tags": "x"})))).is_empty());
        let many: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(row_tags(&many, Some(&key), None).len(), MAX_TAGS);
        assert!(row_tags(&["x".repeat(MAX_TAG + 1)], None, None).is_empty());
    }

    /// Keeps what the logging callbacks were given.
    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<serde_json::Value>>>);

    impl sluice_export::Sink for Collected {
        async fn send(&self, batch: &[Arc<sluice_export::LogRecord>]) -> Result<(), String> {
            let mut got = self.0.lock().unwrap();
            got.extend(batch.iter().map(|r| serde_json::to_value(&**r).unwrap()));
            Ok(())
        }
    }

    /// An access whose logging callback takes `events`, and what that callback receives.
    fn logged(events: sluice_export::Events) -> (Arc<super::super::Access>, Collected) {
        let access = super::super::Access::new(Some("sk-raw-master"), super::super::AccessSettings::for_tests(), None);
        let collected = Collected::default();
        let mut callbacks = sluice_export::Callbacks::default();
        let batching = sluice_export::Batching { max_wait: std::time::Duration::from_millis(1), ..Default::default() };
        callbacks.add("test", events, sluice_export::queue::spawn("test", collected.clone(), batching, None));
        let _ = access.logging.set(Arc::new(callbacks));
        (access, collected)
    }

    async fn charge(access: &Arc<super::super::Access>, id: &str) -> Arc<Charge> {
        let admission = access.admit_shared(&super::super::Identity::Master, "gpt-4o", Some("u-1"), 0.0).await.unwrap();
        let ids = LogIds {
            request_id: id.into(),
            client_call_id: Some(format!("client-{id}")),
            tags: vec!["t".into()],
            ..Default::default()
        };
        let c = Charge::new(access.clone(), admission, "gpt-4o", ids, "acompletion", Some("u-1"), None);
        let price = sluice_providers::pricing::lookup("openai", "gpt-4o");
        c.serving(&Arc::new(Served::new("gpt-4o", "gpt-4o", "m1", "openai", "http://up", price)), None);
        c
    }

    async fn wait_for(collected: &Collected, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            if collected.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // A moment more, for any record that should not be there.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        collected.0.lock().unwrap().clone()
    }

    /// A settled call is logged once, as a success with its cost and tokens; a failure gets its
    /// error; neither carries the raw key, only its hash.
    #[tokio::test]
    async fn each_call_is_logged_once_with_its_outcome() {
        let both = sluice_export::Events { success: true, failure: true };
        let (access, collected) = logged(both);
        let ok = charge(&access, "r-ok").await;
        let cost = ok.settle(TokenUsage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() });
        ok.failed(&Failure { status: 500, class: "InternalServerError", message: "late" });
        let bad = charge(&access, "r-bad").await;
        bad.failed(&Failure { status: 429, class: "RateLimitError", message: "slow down" });
        let got = wait_for(&collected, 2).await;
        assert_eq!(got.len(), 2, "{got:?}");
        let (success, failure) = (&got[0], &got[1]);
        assert_eq!(success["id"], "r-ok");
        assert_eq!(success["trace_id"], "client-r-ok");
        assert_eq!(success["status"], "success");
        assert_eq!(success["response_cost"], cost);
        assert!(cost > 0.0);
        assert_eq!((success["prompt_tokens"].as_u64(), success["total_tokens"].as_u64()), (Some(10), Some(15)));
        assert_eq!(success["model_group"], "gpt-4o");
        assert_eq!(success["api_base"], "http://up");
        assert_eq!(success["end_user"], "u-1");
        assert_eq!(success["request_tags"], serde_json::json!(["t"]));
        assert_eq!(success["metadata"]["user_api_key_hash"], *access.master_hash);
        assert_eq!(failure["status"], "failure");
        assert_eq!(failure["response_cost"], 0.0);
        assert_eq!(failure["error_str"], "slow down");
        assert_eq!(failure["error_information"]["error_code"], "429");
        assert_eq!(failure["error_information"]["error_class"], "RateLimitError");
        assert!(!serde_json::to_string(&got).unwrap().contains("sk-raw-master"));
    }

    /// An access layer over a fresh SQLite store (spend logs kept unless `disabled`), whose
    /// queued rows the test reads.
    async fn with_store(name: &str, disabled: bool) -> Arc<super::super::Access> {
        let dir = std::env::temp_dir().join(format!("sluice_charge_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = sluice_store::Store::open(&format!("sqlite://{}", dir.join("c.db").display()), 1).await.unwrap();
        let settings =
            super::super::AccessSettings { disable_spend_logs: disabled, ..super::super::AccessSettings::for_tests() };
        let access = super::super::Access::new(Some("sk-raw-master"), settings, None);
        access.attach(store);
        access
    }

    /// A failed call writes exactly one spend-log row, status `failure`, nothing billed, its
    /// deployment, start and tags, and LiteLLM's `error_information`; a second failure of the
    /// same call adds nothing. A settled call writes only its success row, even when a failure
    /// is reported after it.
    #[tokio::test]
    async fn a_failed_call_writes_one_failure_row_and_a_success_only_its_own() {
        let access = with_store("rows", false).await;
        let bad = charge(&access, "r-bad").await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        bad.failed(&Failure { status: 429, class: "RateLimitError", message: "litellm.RateLimitError: slow down" });
        bad.failed(&Failure { status: 500, class: "InternalServerError", message: "again" });
        let ok = charge(&access, "r-ok").await;
        let cost = ok.settle(TokenUsage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() });
        ok.failed(&Failure { status: 500, class: "InternalServerError", message: "late" });
        let rows = access.writer.take_queued_logs();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let failure = rows.iter().find(|r| r.request_id == "r-bad").expect("the failure's row");
        assert_eq!(failure.status, "failure");
        assert_eq!((failure.spend, failure.total_tokens, failure.prompt_tokens), (0.0, 0, 0));
        assert_eq!((&*failure.model, failure.model_id.as_deref()), ("gpt-4o", Some("m1")));
        assert_eq!(failure.model_group.as_deref(), Some("gpt-4o"));
        assert_eq!(failure.custom_llm_provider.as_deref(), Some("openai"));
        assert_eq!(failure.api_base.as_deref(), Some("http://up"));
        assert_eq!(failure.end_user.as_deref(), Some("u-1"));
        assert_eq!(failure.request_tags, ["t"]);
        assert_eq!(failure.client_call_id.as_deref(), Some("client-r-bad"));
        assert_eq!(&*failure.api_key, &*access.master_hash);
        assert!(failure.end_time - failure.start_time >= chrono::Duration::milliseconds(20), "started at the request");
        assert_eq!(
            failure.metadata["error_information"],
            serde_json::json!({
                "error_code": "429",
                "error_class": "RateLimitError",
                "llm_provider": "openai",
                "error_message": "litellm.RateLimitError: slow down",
                "traceback": "",
            })
        );
        let success = rows.iter().find(|r| r.request_id == "r-ok").expect("the success's row");
        assert_eq!(success.status, "success");
        assert_eq!((success.spend, success.total_tokens), (cost, 15));
        assert!(!success.metadata.contains_key("error_information"));
        assert!(!format!("{rows:?}").contains("sk-raw-master"));
    }

    /// The failure row's message is bounded on a character boundary; with `disable_spend_logs`
    /// a failure writes no row.
    #[tokio::test]
    async fn failure_rows_are_bounded_and_follow_disable_spend_logs() {
        let access = with_store("bounded", false).await;
        let bad = charge(&access, "r-long").await;
        bad.failed(&Failure { status: 500, class: "InternalServerError", message: &"é".repeat(MAX_ERROR_STR) });
        let rows = access.writer.take_queued_logs();
        let message = rows[0].metadata["error_information"]["error_message"].as_str().unwrap();
        assert!(message.len() <= MAX_ERROR_STR && message.len() >= MAX_ERROR_STR - 1, "{}", message.len());

        let off = with_store("disabled", true).await;
        charge(&off, "r-off").await.failed(&Failure { status: 500, class: "InternalServerError", message: "x" });
        assert!(off.writer.take_queued_logs().is_empty());
    }

    /// A call that fails with its last attempt's status is of that attempt's class (a refused
    /// connection: `APIConnectionError`, not the 500's `InternalServerError`); another status
    /// keeps the class it came with.
    #[tokio::test]
    async fn a_failure_takes_its_last_attempts_class() {
        let access = with_store("classes", false).await;
        let dead = charge(&access, "r-dead").await;
        dead.attempt_failed_as(429, "RateLimitError");
        dead.attempt_failed_as(500, "APIConnectionError");
        dead.failed(&Failure { status: 500, class: "InternalServerError", message: "litellm.APIConnectionError: x" });
        let other = charge(&access, "r-other").await;
        other.attempt_failed_as(500, "APIConnectionError");
        other.failed(&Failure { status: 408, class: "Timeout", message: "litellm.Timeout: y" });
        let rows = access.writer.take_queued_logs();
        let class = |id: &str| {
            let row = rows.iter().find(|r| r.request_id == id).expect("its row");
            row.metadata["error_information"]["error_class"].clone()
        };
        assert_eq!(class("r-dead"), "APIConnectionError");
        assert_eq!(class("r-other"), "Timeout");
    }

    /// `success_callback` alone: failures build no record at all.
    #[tokio::test]
    async fn a_success_only_callback_gets_no_failures() {
        let (access, collected) = logged(sluice_export::Events { success: true, failure: false });
        let bad = charge(&access, "r-bad").await;
        bad.failed(&Failure { status: 500, class: "InternalServerError", message: &"x".repeat(10_000) });
        let ok = charge(&access, "r-ok").await;
        ok.settle(TokenUsage { prompt_tokens: 1, completion_tokens: 1, ..Default::default() });
        let got = wait_for(&collected, 1).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], "r-ok");
    }

    /// A long error message is cut to [`MAX_ERROR_STR`] bytes, on a character boundary.
    #[tokio::test]
    async fn error_strings_are_bounded() {
        let (access, collected) = logged(sluice_export::Events { success: false, failure: true });
        let bad = charge(&access, "r-bad").await;
        bad.failed(&Failure { status: 500, class: "InternalServerError", message: &"é".repeat(MAX_ERROR_STR) });
        let got = wait_for(&collected, 1).await;
        let e = got[0]["error_str"].as_str().unwrap();
        assert!(e.len() <= MAX_ERROR_STR && e.len() >= MAX_ERROR_STR - 1, "{}", e.len());
    }

    /// Keeps what alerting was told.
    #[derive(Clone, Default)]
    struct Told(Arc<Mutex<Vec<(sluice_export::alerting::AlertType, String)>>>);

    impl sluice_export::alerting::AlertSink for Told {
        async fn post(
            &self,
            kind: sluice_export::alerting::AlertType,
            text: &str,
        ) -> sluice_export::alerting::Delivery {
            self.0.lock().unwrap().push((kind, text.to_string()));
            sluice_export::alerting::Delivery::Sent
        }
    }

    /// With alerting on, a call is tracked while in flight, a call slower than the threshold is
    /// told as `llm_too_slow` and a failed one as `llm_exceptions`; with it off, nothing is.
    #[tokio::test(start_paused = true)]
    async fn slow_and_failed_calls_are_told_only_with_alerting_on() {
        use sluice_export::alerting::{self, AlertType, AlertTypes};
        let quiet = super::super::Access::new(Some("sk-raw-master"), super::super::AccessSettings::for_tests(), None);
        let c = charge(&quiet, "r-off").await;
        assert!(c._in_flight.is_none() && c.began.is_none(), "nothing read or kept with alerting off");

        let access = super::super::Access::new(Some("sk-raw-master"), super::super::AccessSettings::for_tests(), None);
        let told = Told::default();
        let setup = alerting::Setup {
            types: AlertTypes::all(),
            threshold: std::time::Duration::ZERO,
            pacing: alerting::Pacing::default(),
            metrics: None,
            proxy_base_url: None,
            outage: Default::default(),
        };
        let (alerts, _drain) = alerting::spawn(told.clone(), setup);
        let _ = access.alerts.set(alerts.clone());
        let in_flight = alerts.in_flight().unwrap().clone();
        let ok = charge(&access, "r-ok").await;
        assert_eq!(in_flight.len(), 1);
        ok.settle(TokenUsage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() });
        drop(ok);
        assert!(in_flight.is_empty(), "the call is over");
        let bad = charge(&access, "r-bad").await;
        bad.failed(&Failure { status: 503, class: "ServiceUnavailableError", message: "upstream down" });
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let got = told.0.lock().unwrap().clone();
        let slow = got.iter().find(|(k, _)| *k == AlertType::LlmTooSlow).expect("slow call told");
        assert!(
            slow.1.contains("Alerting threshold: 0s`\nRequest Model: `gpt-4o`\nAPI Base: `http://up`"),
            "{}",
            slow.1
        );
        let failed = got.iter().find(|(k, _)| *k == AlertType::LlmExceptions).expect("failure told");
        assert!(failed.1.contains("LLM API call failed: `upstream down`"), "{}", failed.1);
        assert!(failed.1.contains("Exception: `503 ServiceUnavailableError`"), "{}", failed.1);
        assert!(!format!("{got:?}").contains("sk-raw-master"));
    }

    /// A record's id and the host of its own Langfuse project, if any.
    type Routed = (String, Option<String>);

    /// Keeps where each record it was given goes.
    #[derive(Clone, Default)]
    struct Hosts(Arc<Mutex<Vec<Routed>>>);

    impl sluice_export::Sink for Hosts {
        async fn send(&self, batch: &[Arc<sluice_export::LogRecord>]) -> Result<(), String> {
            let mut got = self.0.lock().unwrap();
            got.extend(batch.iter().map(|r| (r.id.clone(), r.langfuse.as_ref().map(|o| o.project.host().to_string()))));
            Ok(())
        }
    }

    /// With only the `langfuse` sink running and no configured project, a call is recorded when
    /// its key (or else its team) has a project of its own for its outcome, and carries that
    /// project; other calls build no record.
    #[tokio::test]
    async fn own_projects_ride_on_the_record_of_their_calls() {
        let access = super::super::Access::new(Some("sk-raw-master"), super::super::AccessSettings::for_tests(), None);
        let hosts = Hosts::default();
        let mut callbacks = sluice_export::Callbacks::default();
        let batching = sluice_export::Batching { max_wait: std::time::Duration::from_millis(1), ..Default::default() };
        callbacks
            .add_langfuse(Default::default(), sluice_export::queue::spawn("langfuse", hosts.clone(), batching, None));
        let _ = access.logging.set(Arc::new(callbacks));
        let logging = |host: &str, kind: &str| {
            serde_json::json!({"logging": [{"callback_name": "langfuse", "callback_type": kind, "callback_vars": {
                "langfuse_public_key": "pk", "langfuse_secret_key": "sk", "langfuse_host": host}}]})
            .as_object()
            .unwrap()
            .clone()
        };
        let r = &access.registry;
        r.put_team(
            sluice_store::TeamRecord {
                team_id: "t".into(),
                metadata: logging("http://team", "success"),
                ..Default::default()
            },
            false,
        );
        let key = |token: &str, metadata: serde_json::Map<String, serde_json::Value>| {
            let record = sluice_store::KeyRecord {
                token: token.into(),
                team_id: Some("t".into()),
                metadata,
                ..Default::default()
            };
            super::super::Identity::Key(r.put_key(record, false))
        };
        let own = key("k-own", logging("http://key", "success_and_failure"));
        let team = key("k-team", Default::default());
        let none = key("k-none", serde_json::json!({"logging": []}).as_object().unwrap().clone());
        let call = |identity: super::super::Identity, id: &'static str| {
            let access = access.clone();
            async move {
                let admission = access.admit_shared(&identity, "gpt-4o", None, 0.0).await.unwrap();
                let ids = LogIds { request_id: id.into(), ..Default::default() };
                let c = Charge::new(access.clone(), admission, "gpt-4o", ids, "acompletion", None, None);
                c.serving(&Arc::new(Served::new("gpt-4o", "gpt-4o", "m1", "openai", "", None)), None);
                c
            }
        };
        let usage = TokenUsage { prompt_tokens: 1, completion_tokens: 1, ..Default::default() };
        call(own.clone(), "own-ok").await.settle(usage);
        call(own, "own-bad").await.failed(&Failure { status: 500, class: "InternalServerError", message: "x" });
        call(team.clone(), "team-ok").await.settle(usage);
        // The team's project takes successes only.
        call(team, "team-bad").await.failed(&Failure { status: 500, class: "InternalServerError", message: "x" });
        // `logging: []` on the key: not its team's project.
        call(none, "none-ok").await.settle(usage);
        for _ in 0..200 {
            if hosts.0.lock().unwrap().len() >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let got = hosts.0.lock().unwrap().clone();
        let host = |h: &str| Some(h.to_string());
        assert_eq!(
            got,
            [
                ("own-ok".to_string(), host("http://key")),
                ("own-bad".to_string(), host("http://key")),
                ("team-ok".to_string(), host("http://team")),
            ]
        );
    }

    #[test]
    fn u64_max_tokens_are_billed_as_the_bound_and_flagged() {
        let huge = TokenUsage {
            prompt_tokens: u64::MAX,
            completion_tokens: u64::MAX,
            cached_prompt_tokens: u64::MAX,
            cache_creation_tokens: 0,
            reasoning_tokens: u64::MAX,
        };
        let (usage, clamped) = bounded(huge);
        assert!(clamped);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (MAX_TOKENS, MAX_TOKENS));
        let fine = TokenUsage { prompt_tokens: 9, completion_tokens: 12, ..Default::default() };
        assert_eq!(bounded(fine), (fine, false));
        let meta = usage_clamped(&huge);
        assert_eq!(meta["usage_clamped"], true);
        assert_eq!(meta["reported_usage"]["prompt_tokens"], u64::MAX);
    }

    proptest::proptest! {
        /// Whatever an upstream answers as its usage (read by the same parser the proxy uses),
        /// the bill is finite and at most what the bound allows.
        #[test]
        fn any_reported_usage_bills_a_bounded_amount(
            prompt in crate::test_numbers::text(),
            completion in crate::test_numbers::text(),
            cached in crate::test_numbers::text(),
        ) {
            let body = format!(
                r#"{{"model":"m","usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"prompt_tokens_details":{{"cached_tokens":{cached}}}}}}}"#
            );
            let Ok(answer) = sluice_wire::sniff::response(body.as_bytes()) else { return Ok(()) };
            let (usage, _) = bounded(token_usage(&answer.usage.unwrap_or_default()));
            let price = sluice_providers::pricing::lookup("openai", "gpt-4o").unwrap();
            let cost = price.cost(&usage);
            let most = MAX_TOKENS as f64 * (price.input_per_token + price.output_per_token)
                + MAX_TOKENS as f64 * price.cache_read_per_token.unwrap_or(0.0);
            proptest::prop_assert!(cost.is_finite() && (0.0..=most).contains(&cost), "{cost}");
            proptest::prop_assert!(usage.prompt_tokens + usage.completion_tokens <= 2 * MAX_TOKENS);
        }
    }
}
