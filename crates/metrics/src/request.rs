//! Metrics of one client request as a whole, after retries and fallbacks.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::cache::with_caches;
use crate::caller::{cache_key, labels as caller_labels, Caller};
use crate::deployment::DeploymentMetrics;
use crate::families::FloatCounter;
use crate::histogram::AtomicHistogram;
use crate::labels::*;
use crate::{status_str, Shared};

/// Token usage reported by the upstream (or counted by sluice when it reports none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One finished client request.
#[derive(Clone, Copy, Debug)]
pub struct RequestRecord<'a> {
    /// The `model` the client asked for.
    pub requested_model: &'a str,
    /// The route as LiteLLM names it, e.g. `/chat/completions`.
    pub route: &'a str,
    /// The HTTP status the client got.
    pub status: u16,
    /// LiteLLM's exception class for a failure (e.g. `RateLimitError`); `None` derives it from
    /// `status` with [`exception_class_for_status`](crate::exception_class_for_status).
    pub exception_class: Option<&'a str>,
    /// Time from receiving the request to finishing the response.
    pub total: Duration,
    /// Part of `total` spent waiting on upstreams (all attempts).
    pub upstream: Duration,
    /// From the request's arrival to the start of its first upstream call (LiteLLM's
    /// `litellm_request_queue_time_seconds`); `None` when no upstream was called.
    pub queue: Option<Duration>,
    /// The deployment that answered (or the last one tried), when any was picked.
    pub deployment: Option<&'a DeploymentMetrics>,
    /// The request's `user` field, or empty.
    pub end_user: &'a str,
    /// The client's `User-Agent`, or empty.
    pub user_agent: &'a str,
    /// The virtual key the request came with; `None` (master key, no auth) leaves the key, team
    /// and user labels empty.
    pub caller: Option<&'a Caller>,
    /// What the request cost in USD; above 0 it is added to `litellm_spend_metric`.
    pub spend: f64,
}

/// The series one finished request touches.
#[derive(Debug)]
pub(crate) struct RequestHandles {
    total: Counter,
    /// Only for failed requests.
    failed: Option<Counter>,
    /// Only for successful requests: LiteLLM observes the total latency on success only.
    latency: Option<AtomicHistogram>,
    /// `litellm_request_queue_time_seconds`, on success as the total latency.
    queue: Option<AtomicHistogram>,
    /// `litellm_requests_metric` (deprecated), counted on success.
    requests: Option<Counter>,
    /// `litellm_llm_api_failed_requests_metric` (deprecated), counted on failure.
    llm_failed: Option<Counter>,
    overhead: AtomicHistogram,
    /// Resolved on the first request of this label set that cost something, so free traffic
    /// exports no zero spend series.
    spend: OnceLock<FloatCounter>,
}

fn resolve(shared: &Shared, r: &RequestRecord<'_>, status: &str, class: &str) -> RequestHandles {
    let f = &shared.families;
    let (model, model_id, provider) = match r.deployment {
        Some(d) => (d.inner.litellm_model_name.as_str(), d.inner.model_id.as_str(), d.inner.api_provider.as_str()),
        None => ("", "", ""),
    };
    let failed = r.status >= 400;
    let c = caller_labels(r.caller);
    let latency_labels = RequestLatencyLabels {
        end_user: r.end_user.to_owned(),
        hashed_api_key: c.hashed_api_key.clone(),
        api_key_alias: c.api_key_alias.clone(),
        requested_model: r.requested_model.to_owned(),
        team: c.team.clone(),
        team_alias: c.team_alias.clone(),
        user: c.user.clone(),
        model: model.to_owned(),
        model_id: model_id.to_owned(),
    };
    RequestHandles {
        total: f.proxy_requests.get_or_create_owned(&ProxyRequestLabels {
            end_user: r.end_user.to_owned(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            requested_model: r.requested_model.to_owned(),
            team: c.team.clone(),
            team_alias: c.team_alias.clone(),
            user: c.user.clone(),
            status_code: status.to_owned(),
            user_email: c.user_email.clone(),
            route: r.route.to_owned(),
            user_agent: r.user_agent.to_owned(),
            model_id: model_id.to_owned(),
            ..Default::default()
        }),
        failed: failed.then(|| {
            f.proxy_failures.get_or_create_owned(&ProxyFailureLabels {
                end_user: r.end_user.to_owned(),
                hashed_api_key: c.hashed_api_key.clone(),
                api_key_alias: c.api_key_alias.clone(),
                requested_model: r.requested_model.to_owned(),
                team: c.team.clone(),
                team_alias: c.team_alias.clone(),
                user: c.user.clone(),
                user_email: c.user_email.clone(),
                exception_status: status.to_owned(),
                exception_class: class.to_owned(),
                route: r.route.to_owned(),
                user_agent: r.user_agent.to_owned(),
                model_id: model_id.to_owned(),
                ..Default::default()
            })
        }),
        latency: (!failed).then(|| f.request_latency.get_or_create_owned(&latency_labels)),
        queue: (!failed).then(|| f.queue_time.get_or_create_owned(&latency_labels)),
        requests: (!failed).then(|| f.requests.get_or_create_owned(&spend_labels(r))),
        llm_failed: failed.then(|| {
            f.llm_api_failed.get_or_create_owned(&LlmApiFailedLabels {
                end_user: r.end_user.to_owned(),
                hashed_api_key: c.hashed_api_key.clone(),
                api_key_alias: c.api_key_alias.clone(),
                model: model.to_owned(),
                team: c.team.clone(),
                team_alias: c.team_alias.clone(),
                user: c.user.clone(),
                model_id: model_id.to_owned(),
            })
        }),
        overhead: f
            .sluice_overhead
            .get_or_create_owned(&OverheadLabels { route: r.route.to_owned(), api_provider: provider.to_owned() }),
        spend: OnceLock::new(),
    }
}

fn spend_labels(r: &RequestRecord<'_>) -> SpendLabels {
    let c = caller_labels(r.caller);
    let (model, model_id) = match r.deployment {
        Some(d) => (d.inner.litellm_model_name.as_str(), d.inner.model_id.as_str()),
        None => ("", ""),
    };
    SpendLabels {
        end_user: r.end_user.to_owned(),
        hashed_api_key: c.hashed_api_key.clone(),
        api_key_alias: c.api_key_alias.clone(),
        model: model.to_owned(),
        team: c.team.clone(),
        team_alias: c.team_alias.clone(),
        user: c.user.clone(),
        user_email: c.user_email.clone(),
        user_agent: r.user_agent.to_owned(),
        model_id: model_id.to_owned(),
        ..Default::default()
    }
}

pub(crate) fn record(shared: &Shared, r: &RequestRecord<'_>) {
    let mut buf = [0u8; 5];
    let status = status_str(r.status, &mut buf);
    let failed = r.status >= 400;
    let class =
        if failed { r.exception_class.unwrap_or_else(|| crate::exception_class_for_status(r.status)) } else { "" };
    let overhead = r.total.saturating_sub(r.upstream).as_secs_f64();
    let total = r.total.as_secs_f64();
    let apply = |h: &RequestHandles| {
        h.total.inc();
        if let Some(c) = &h.failed {
            c.inc();
        }
        if let Some(l) = &h.latency {
            l.observe(total);
        }
        if let (Some(q), Some(queue)) = (&h.queue, r.queue) {
            q.observe(queue.as_secs_f64());
        }
        if let Some(c) = &h.requests {
            c.inc();
        }
        if let Some(c) = &h.llm_failed {
            c.inc();
        }
        h.overhead.observe(overhead);
        // `> 0.0` also keeps NaN out of the counter.
        if r.spend > 0.0 {
            h.spend.get_or_init(|| shared.families.spend.get_or_create_owned(&spend_labels(r))).inc_by(r.spend);
        }
    };
    let make = || resolve(shared, r, status, class);
    let dep_key = r.deployment.map_or(0, |d| d.inner.key);
    let num = cache_key(r.caller, dep_key << 16 | u64::from(r.status));
    let strs = [r.requested_model, r.route, r.end_user, r.user_agent, class];
    let cached = with_caches(&shared.owner, |c| {
        apply(c.requests.get_or_insert_with(num, &strs, &make));
    });
    if cached.is_none() {
        apply(&make());
    }
    if let (Some(d), false) = (r.deployment, failed) {
        d.inner.with_keyed(r.caller, |k| d.inner.overhead(k, r.caller).observe(overhead));
    }
}

/// Adds `r.spend` to `litellm_spend_metric` alone: for a request billed after its record was
/// made (a stream's cost is known when it ends), through the same cached series.
pub(crate) fn spend(shared: &Shared, r: &RequestRecord<'_>) {
    if r.spend <= 0.0 || !r.spend.is_finite() {
        return;
    }
    let add = |h: &RequestHandles| {
        h.spend.get_or_init(|| shared.families.spend.get_or_create_owned(&spend_labels(r))).inc_by(r.spend);
    };
    let mut buf = [0u8; 5];
    let status = status_str(r.status, &mut buf);
    let make = || resolve(shared, r, status, "");
    let dep_key = r.deployment.map_or(0, |d| d.inner.key);
    let num = cache_key(r.caller, dep_key << 16 | u64::from(r.status));
    let strs = [r.requested_model, r.route, r.end_user, r.user_agent, ""];
    if with_caches(&shared.owner, |c| add(c.requests.get_or_insert_with(num, &strs, &make))).is_none() {
        add(&make());
    }
}

/// `litellm_deployment_successful_fallbacks` / `litellm_deployment_failed_fallbacks`.
pub(crate) fn fallback(
    shared: &Shared,
    requested_model: &str,
    fallback_model: &str,
    caller: Option<&Caller>,
    succeeded: bool,
    exception_status: u16,
    exception_class: &str,
) {
    let mut buf = [0u8; 5];
    let status = status_str(exception_status, &mut buf);
    let make = || {
        let family = if succeeded { &shared.families.fallback_ok } else { &shared.families.fallback_failed };
        let c = caller_labels(caller);
        family.get_or_create_owned(&FallbackLabels {
            requested_model: requested_model.to_owned(),
            fallback_model: fallback_model.to_owned(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            team: c.team.clone(),
            team_alias: c.team_alias.clone(),
            exception_status: status.to_owned(),
            exception_class: exception_class.to_owned(),
            ..Default::default()
        })
    };
    let num = cache_key(caller, u64::from(succeeded) << 16 | u64::from(exception_status));
    let strs = [requested_model, fallback_model, exception_class];
    let cached = with_caches(&shared.owner, |c| {
        c.fallbacks.get_or_insert_with(num, &strs, &make).inc();
    });
    if cached.is_none() {
        make().inc();
    }
}
