//! Metrics of one deployment (one `model_list` entry): its upstream calls, health and limits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::cache::{same, with_caches};
use crate::caller::{cache_key, labels as caller_labels, Caller};
use crate::families::FloatGauge;
use crate::histogram::AtomicHistogram;
use crate::labels::*;
use crate::{status_str, Shared, Usage};

/// What identifies a deployment in every metric that carries deployment labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentLabels {
    /// The group clients ask for: the entry's `model_name`.
    pub model_group: String,
    /// The entry's `litellm_params.model`, e.g. `openai/fake`.
    pub litellm_model_name: String,
    /// `model_info.id` (LiteLLM generates one when the config has none).
    pub model_id: String,
    pub api_base: String,
    /// Provider family, e.g. `openai`, `vertex_ai`.
    pub api_provider: String,
    /// Exported as `litellm_deployment_tpm_limit` when set.
    pub tpm_limit: Option<f64>,
    /// Exported as `litellm_deployment_rpm_limit` when set.
    pub rpm_limit: Option<f64>,
}

/// `litellm_deployment_state` values.
const HEALTHY: i64 = 0;
const PARTIAL_OUTAGE: i64 = 1;
const COMPLETE_OUTAGE: i64 = 2;

/// Handles for one deployment, resolved once; cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct DeploymentMetrics {
    pub(crate) inner: Arc<Deployment>,
}

#[derive(Debug)]
pub(crate) struct Deployment {
    shared: Arc<Shared>,
    /// Distinguishes this deployment in the per-thread caches.
    pub(crate) key: u64,
    model_group: String,
    pub(crate) litellm_model_name: String,
    pub(crate) model_id: String,
    api_base: String,
    pub(crate) api_provider: String,
    state: Gauge,
    // Resolved on first use rather than at start-up, so a scrape shows no series (e.g. a
    // "remaining requests: 0" gauge) for things that have not happened.
    /// Calls without a caller whose requested model is this deployment's own group: the common
    /// case without virtual keys, so it skips even the thread-local lookup.
    own_attempts: OnceLock<AttemptHandles>,
    /// The series keyed by deployment and caller alone, for calls without a caller; those with
    /// one find theirs in the thread-local cache.
    own_keyed: KeyedHandles,
}

/// The series of one (deployment, caller), each resolved on first use.
#[derive(Debug, Default)]
pub(crate) struct KeyedHandles {
    per_output_token: OnceLock<AtomicHistogram>,
    overhead: OnceLock<AtomicHistogram>,
    remaining_requests: OnceLock<FloatGauge>,
    remaining_tokens: OnceLock<FloatGauge>,
    key_remaining_requests: OnceLock<FloatGauge>,
    key_remaining_tokens: OnceLock<FloatGauge>,
}

/// The series one upstream call touches, for one (deployment, caller, requested model). The success-side
/// ones are resolved on first success so that a model that only ever fails exports no empty
/// latency histograms (LiteLLM exports none either).
#[derive(Debug)]
pub(crate) struct AttemptHandles {
    total: Counter,
    succeeded: OnceLock<SuccessHandles>,
    /// Streams only.
    ttft: OnceLock<AtomicHistogram>,
}

#[derive(Debug)]
struct SuccessHandles {
    success: Counter,
    api_latency: AtomicHistogram,
    total_tokens: Counter,
    input_tokens: Counter,
    output_tokens: Counter,
}

impl Deployment {
    pub(crate) fn new(shared: Arc<Shared>, d: &DeploymentLabels) -> Deployment {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = DeploymentIdLabels {
            litellm_model_name: d.litellm_model_name.clone(),
            model_id: d.model_id.clone(),
            api_base: d.api_base.clone(),
            api_provider: d.api_provider.clone(),
        };
        let f = &shared.families;
        let state = f.state.get_or_create_owned(&id);
        state.set(HEALTHY);
        if let Some(tpm) = d.tpm_limit {
            f.tpm_limit.get_or_create(&id).set(tpm);
        }
        if let Some(rpm) = d.rpm_limit {
            f.rpm_limit.get_or_create(&id).set(rpm);
        }
        Deployment {
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            model_group: d.model_group.clone(),
            litellm_model_name: d.litellm_model_name.clone(),
            model_id: d.model_id.clone(),
            api_base: d.api_base.clone(),
            api_provider: d.api_provider.clone(),
            state,
            own_attempts: OnceLock::new(),
            own_keyed: KeyedHandles::default(),
            shared,
        }
    }

    fn group_labels(&self, caller: Option<&Caller>) -> DeploymentGroupLabels {
        let c = caller_labels(caller);
        DeploymentGroupLabels {
            model_group: self.model_group.clone(),
            api_provider: self.api_provider.clone(),
            api_base: self.api_base.clone(),
            litellm_model_name: self.litellm_model_name.clone(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            model_id: self.model_id.clone(),
        }
    }

    fn request_labels(&self, requested_model: &str, caller: Option<&Caller>) -> DeploymentRequestLabels {
        let c = caller_labels(caller);
        DeploymentRequestLabels {
            requested_model: requested_model.to_owned(),
            litellm_model_name: self.litellm_model_name.clone(),
            model_id: self.model_id.clone(),
            api_base: self.api_base.clone(),
            api_provider: self.api_provider.clone(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            team: c.team.clone(),
            team_alias: c.team_alias.clone(),
            ..Default::default()
        }
    }

    fn resolve_attempt(&self, requested_model: &str, caller: Option<&Caller>) -> AttemptHandles {
        let labels = self.request_labels(requested_model, caller);
        AttemptHandles {
            total: self.shared.families.deployment_total.get_or_create_owned(&labels),
            succeeded: OnceLock::new(),
            ttft: OnceLock::new(),
        }
    }

    fn api_labels(&self, requested_model: &str, caller: Option<&Caller>) -> ApiLatencyLabels {
        let c = caller_labels(caller);
        ApiLatencyLabels {
            model: self.litellm_model_name.clone(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            team: c.team.clone(),
            team_alias: c.team_alias.clone(),
            requested_model: requested_model.to_owned(),
            // Attempt records do not carry the request's `user` field; only request-level series
            // have it.
            end_user: String::new(),
            user: c.user.clone(),
            model_id: self.model_id.clone(),
        }
    }

    fn resolve_success(&self, requested_model: &str, caller: Option<&Caller>) -> SuccessHandles {
        let f = &self.shared.families;
        let c = caller_labels(caller);
        let tokens = TokenLabels {
            end_user: String::new(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            model: self.litellm_model_name.clone(),
            team: c.team.clone(),
            team_alias: c.team_alias.clone(),
            user: c.user.clone(),
            user_email: c.user_email.clone(),
            requested_model: requested_model.to_owned(),
            model_id: self.model_id.clone(),
        };
        SuccessHandles {
            success: f.deployment_success.get_or_create_owned(&self.request_labels(requested_model, caller)),
            api_latency: f.api_latency.get_or_create_owned(&self.api_labels(requested_model, caller)),
            total_tokens: f.total_tokens.get_or_create_owned(&tokens),
            input_tokens: f.input_tokens.get_or_create_owned(&tokens),
            output_tokens: f.output_tokens.get_or_create_owned(&tokens),
        }
    }

    /// Runs `f` on the handles for (`requested_model`, `caller`), borrowing them where they are
    /// cached: cloning would bump shared `Arc` counts, a cache line every request thread would
    /// fight over.
    fn with_attempt(&self, requested_model: &str, caller: Option<&Caller>, f: impl Fn(&AttemptHandles)) {
        if caller.is_none() && same(requested_model, &self.model_group) {
            return f(self.own_attempts.get_or_init(|| self.resolve_attempt(requested_model, None)));
        }
        let make = || self.resolve_attempt(requested_model, caller);
        let num = cache_key(caller, self.key);
        let cached =
            with_caches(&self.shared.owner, |c| f(c.attempts.get_or_insert_with(num, &[requested_model], &make)));
        if cached.is_none() {
            f(&make());
        }
    }

    /// Runs `f` on the (deployment, `caller`) handles.
    pub(crate) fn with_keyed(&self, caller: Option<&Caller>, f: impl Fn(&KeyedHandles)) {
        if caller.is_none() {
            return f(&self.own_keyed);
        }
        let num = cache_key(caller, self.key);
        let cached =
            with_caches(&self.shared.owner, |c| f(c.keyed.get_or_insert_with(num, &[], KeyedHandles::default)));
        if cached.is_none() {
            // Fresh handles resolve to the same series through the family.
            f(&KeyedHandles::default());
        }
    }

    /// `litellm_overhead_latency_metric` for this deployment and `caller`.
    pub(crate) fn overhead<'a>(&self, h: &'a KeyedHandles, caller: Option<&Caller>) -> &'a AtomicHistogram {
        h.overhead.get_or_init(|| self.shared.families.overhead_latency.get_or_create_owned(&self.group_labels(caller)))
    }

    fn key_model_labels(&self, caller: &Caller) -> KeyModelLabels {
        let c = caller.labels();
        KeyModelLabels {
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            model: self.model_group.clone(),
            model_id: self.model_id.clone(),
        }
    }
}

impl DeploymentMetrics {
    /// An upstream call started (`litellm_deployment_total_requests`). `caller` is the virtual
    /// key the request came with; `None` leaves the key labels empty.
    pub fn attempt_started(&self, requested_model: &str, caller: Option<&Caller>) {
        self.inner.with_attempt(requested_model, caller, |h| {
            h.total.inc();
        });
    }

    /// The upstream call succeeded. `ttft` is `Some` for streams only, as in LiteLLM; token
    /// counters move only when `usage` is known.
    pub fn attempt_succeeded(
        &self,
        requested_model: &str,
        caller: Option<&Caller>,
        latency: Duration,
        ttft: Option<Duration>,
        usage: Option<Usage>,
    ) {
        let d = &*self.inner;
        let secs = latency.as_secs_f64();
        d.with_attempt(requested_model, caller, |h| {
            let s = h.succeeded.get_or_init(|| d.resolve_success(requested_model, caller));
            s.success.inc();
            s.api_latency.observe(secs);
            if let Some(t) = ttft {
                h.ttft
                    .get_or_init(|| d.shared.families.ttft.get_or_create_owned(&d.api_labels(requested_model, caller)))
                    .observe(t.as_secs_f64());
            }
            if let Some(u) = usage {
                s.input_tokens.inc_by(u.prompt_tokens);
                s.output_tokens.inc_by(u.completion_tokens);
                s.total_tokens.inc_by(u.prompt_tokens.saturating_add(u.completion_tokens));
            }
        });
        if let Some(u) = usage.filter(|u| u.completion_tokens > 0) {
            d.with_keyed(caller, |k| {
                let per_token = k.per_output_token.get_or_init(|| {
                    let c = caller_labels(caller);
                    d.shared.families.per_output_token.get_or_create_owned(&PerTokenLabels {
                        litellm_model_name: d.litellm_model_name.clone(),
                        model_id: d.model_id.clone(),
                        api_base: d.api_base.clone(),
                        api_provider: d.api_provider.clone(),
                        hashed_api_key: c.hashed_api_key.clone(),
                        api_key_alias: c.api_key_alias.clone(),
                        team: c.team.clone(),
                        team_alias: c.team_alias.clone(),
                    })
                });
                per_token.observe(secs / u.completion_tokens as f64);
            });
        }
        // Skip the store when already healthy: a load is shared, a store takes the cache line.
        if d.state.get() != HEALTHY {
            d.state.set(HEALTHY);
        }
    }

    /// Token usage known only when a stream ends (its success was recorded at the first chunk).
    pub fn stream_usage(&self, requested_model: &str, caller: Option<&Caller>, usage: Usage) {
        let d = &*self.inner;
        d.with_attempt(requested_model, caller, |h| {
            let s = h.succeeded.get_or_init(|| d.resolve_success(requested_model, caller));
            s.input_tokens.inc_by(usage.prompt_tokens);
            s.output_tokens.inc_by(usage.completion_tokens);
            s.total_tokens.inc_by(usage.prompt_tokens.saturating_add(usage.completion_tokens));
        });
    }

    /// The upstream call failed. `latency` is accepted for symmetry; LiteLLM records no latency
    /// for failed calls and neither does sluice.
    pub fn attempt_failed(
        &self,
        requested_model: &str,
        caller: Option<&Caller>,
        exception_status: u16,
        exception_class: &str,
        latency: Duration,
    ) {
        let _ = latency;
        let d = &*self.inner;
        let mut buf = [0u8; 5];
        let status = status_str(exception_status, &mut buf);
        let make = || {
            let c = caller_labels(caller);
            d.shared.families.deployment_failure.get_or_create_owned(&DeploymentFailureLabels {
                requested_model: requested_model.to_owned(),
                litellm_model_name: d.litellm_model_name.clone(),
                model_id: d.model_id.clone(),
                api_base: d.api_base.clone(),
                api_provider: d.api_provider.clone(),
                hashed_api_key: c.hashed_api_key.clone(),
                api_key_alias: c.api_key_alias.clone(),
                team: c.team.clone(),
                team_alias: c.team_alias.clone(),
                exception_status: status.to_owned(),
                exception_class: exception_class.to_owned(),
                ..Default::default()
            })
        };
        let num = cache_key(caller, d.key << 16 | u64::from(exception_status));
        let cached = with_caches(&d.shared.owner, |c| {
            c.failures.get_or_insert_with(num, &[requested_model, exception_class], &make).inc();
        });
        if cached.is_none() {
            make().inc();
        }
        // Healthy → partial outage; a cooled-down deployment stays in complete outage.
        let _ = d.state.inner().compare_exchange(HEALTHY, PARTIAL_OUTAGE, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The router cooled the deployment down after an error with `exception_status`.
    pub fn cooled_down(&self, exception_status: u16) {
        let d = &*self.inner;
        let mut buf = [0u8; 5];
        // Rare (once per cooldown), so the family lookup is affordable here.
        d.shared
            .families
            .cooled_down
            .get_or_create(&CooldownLabels {
                litellm_model_name: d.model_group.clone(),
                model_id: d.model_id.clone(),
                api_base: d.api_base.clone(),
                api_provider: d.api_provider.clone(),
                exception_status: status_str(exception_status, &mut buf).to_owned(),
            })
            .inc();
        d.state.set(COMPLETE_OUTAGE);
    }

    /// The cooldown ended or the deployment is otherwise healthy again.
    pub fn healthy(&self) {
        self.inner.state.set(HEALTHY);
    }

    /// Values of the upstream's `x-ratelimit-remaining-requests` / `-tokens` headers, seen on a
    /// call made for `caller` (LiteLLM labels these with the key that made the call).
    pub fn remaining(&self, caller: Option<&Caller>, requests: Option<f64>, tokens: Option<f64>) {
        let d = &*self.inner;
        d.with_keyed(caller, |k| {
            if let Some(v) = requests {
                k.remaining_requests
                    .get_or_init(|| d.shared.families.remaining_requests.get_or_create_owned(&d.group_labels(caller)))
                    .set(v);
            }
            if let Some(v) = tokens {
                k.remaining_tokens
                    .get_or_init(|| d.shared.families.remaining_tokens.get_or_create_owned(&d.group_labels(caller)))
                    .set(v);
            }
        });
    }

    /// What is left of `caller`'s own rpm / tpm limit for this deployment's model group
    /// (`litellm_remaining_api_key_requests_for_model` / `_tokens_for_model`); call it when the
    /// key has such a limit. `None` leaves a gauge as it is.
    pub fn key_remaining(&self, caller: &Caller, requests: Option<f64>, tokens: Option<f64>) {
        let d = &*self.inner;
        d.with_keyed(Some(caller), |k| {
            if let Some(v) = requests {
                k.key_remaining_requests
                    .get_or_init(|| {
                        d.shared.families.key_remaining_requests.get_or_create_owned(&d.key_model_labels(caller))
                    })
                    .set(v);
            }
            if let Some(v) = tokens {
                k.key_remaining_tokens
                    .get_or_init(|| {
                        d.shared.families.key_remaining_tokens.get_or_create_owned(&d.key_model_labels(caller))
                    })
                    .set(v);
            }
        });
    }

    /// The current `litellm_deployment_state` value: 0 healthy, 1 partial, 2 complete outage.
    pub fn state(&self) -> i64 {
        self.inner.state.get()
    }
}
