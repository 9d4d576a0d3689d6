//! LiteLLM-compatible Prometheus metrics for sluice.
//!
//! sluice exports the metric names, types, label names and histogram buckets that LiteLLM's
//! `prometheus` callback exports (reference/litellm.md §5), in the same Prometheus text format,
//! so Grafana dashboards and alerts built for LiteLLM keep working when sluice replaces it. It
//! adds one metric of its own, `sluice_overhead_seconds`: the time a request spent in sluice
//! rather than waiting on an upstream.
//!
//! Recording is built for the request path: it takes no lock and allocates nothing once a label
//! set has been seen on a thread. Deployment-level series are resolved once in
//! [`Metrics::deployment`]; series whose labels are only known per request (requested model,
//! status, end user, the virtual key's [`Caller`], …) are resolved once per thread and kept in a
//! thread-local cache (see `cache`), and histograms are plain atomics (see `histogram`);
//! `tests/no_alloc.rs` checks that steady-state recording makes no allocation.
//!
//! The key, team and user labels come from a [`Caller`] handle that the server makes once per
//! key identity ([`Metrics::caller`]) and passes with each record; the caches key on its id, so
//! six label strings cost one number per lookup.
//!
//! What recording costs is measured by the `#[ignore]`d test in `tests/cost.rs`
//! (`cargo test -p sluice-metrics --release --test cost -- --ignored --nocapture`); the figures
//! are in bench/README.md.
//!
//! [`Pulse`] is apart from the Prometheus registry: the admin UI's live figures (the last
//! minute's requests, failures and latency percentiles; today's requests and spend per key and
//! model group), kept whether or not the `prometheus` callback is on, as cheaply.
//!
//! The crate knows nothing of HTTP: the server serves [`Metrics::render`] at `GET /metrics` with
//! [`Metrics::content_type`].

mod answers;
mod budget;
mod cache;
mod callbacks;
mod caller;
mod database;
mod deployment;
mod families;
mod histogram;
mod labels;
pub mod pulse;
mod redis;
mod request;
mod text;

use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

pub use answers::CacheState;
pub use callbacks::CallbackMetrics;
pub use caller::{Caller, CallerLabels};
pub use database::DatabaseState;
pub use deployment::{DeploymentLabels, DeploymentMetrics};
pub use histogram::{DEFAULT_BUCKETS, LATENCY_BUCKETS, OVERHEAD_BUCKETS};
pub use pulse::Pulse;
pub use request::{RequestRecord, Usage};

use cache::Owner;
use families::Families;

/// What deployments and the request path share: the families and this registry's cache identity.
#[derive(Debug)]
pub(crate) struct Shared {
    families: Families,
    /// The answer cache's per-request counters.
    cache: answers::CacheFamilies,
    owner: Owner,
}

/// The registry of every metric sluice exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    shared: Arc<Shared>,
    /// Only when the gateway shares state through Redis.
    redis: Option<redis::RedisFamilies>,
    callbacks: callbacks::CallbackFamilies,
    database: database::DatabaseFamilies,
    cache: answers::CacheGauges,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Metrics::build(false)
    }

    /// [`Metrics::new`] with sluice's Redis families (`sluice_redis_up`, `sluice_redis_replicas`,
    /// `sluice_redis_failed_calls_total`), for a gateway that shares state through Redis.
    pub fn with_redis() -> Arc<Metrics> {
        Metrics::build(true)
    }

    fn build(with_redis: bool) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let families = Families::register(&mut registry);
        let redis = with_redis.then(|| redis::RedisFamilies::register(&mut registry));
        let callbacks = callbacks::CallbackFamilies::register(&mut registry);
        let database = database::DatabaseFamilies::register(&mut registry);
        let cache_families = answers::CacheFamilies::register(&mut registry);
        let cache = answers::CacheGauges::register(&mut registry);
        Arc::new(Metrics {
            registry,
            shared: Arc::new(Shared { families, cache: cache_families, owner: Owner::new() }),
            redis,
            callbacks,
            database,
            cache,
        })
    }

    /// The delivery failures and dropped records of the logging callback `callback_name`
    /// (`litellm_callback_logging_failures_metric`, `sluice_callback_dropped_records`): call once
    /// per callback when it is built; counting on the handle is then one atomic add.
    pub fn callback(&self, callback_name: &str) -> CallbackMetrics {
        self.callbacks.series(callback_name)
    }

    /// The Redis connection's state, set just before a scrape: whether it answers, the live
    /// replicas it counts, and its failed calls since the start. Nothing without
    /// [`Metrics::with_redis`].
    pub fn redis_state(&self, up: bool, replicas: u64, failures: u64) {
        if let Some(r) = &self.redis {
            r.set(up, replicas, failures);
        }
    }

    /// The database's health and the registry's counts, set just before a scrape.
    pub fn database_state(&self, state: &DatabaseState) {
        self.database.set(state);
    }

    /// What the answer cache holds, set just before a scrape.
    pub fn cache_state(&self, state: &CacheState) {
        self.cache.set(state);
    }

    /// One request's answer-cache lookup: `litellm_cache_hits_metric` (and the `tokens` its
    /// answer spared, `litellm_cached_tokens_metric`) or `litellm_cache_misses_metric`.
    pub fn cache_lookup(
        &self,
        model: &str,
        model_id: &str,
        end_user: &str,
        caller: Option<&Caller>,
        hit: bool,
        tokens: u64,
    ) {
        answers::record(&self.shared, model, model_id, end_user, caller, hit, tokens);
    }

    /// The scrape body: Prometheus text format 0.0.4, `# HELP`/`# TYPE` per family, counters as
    /// `<name>_total`, histograms as `_bucket`/`_sum`/`_count`.
    pub fn render(&self) -> String {
        text::render(&self.registry)
    }

    /// `Content-Type` for [`render`](Self::render)'s body (the one Python's client sends).
    pub fn content_type() -> &'static str {
        prometheus_text::CONTENT_TYPE
    }

    /// Handles for one deployment; call once per deployment at start-up. Exports
    /// `litellm_deployment_state` 0 and, when set, the tpm/rpm limit gauges right away.
    pub fn deployment(&self, d: &DeploymentLabels) -> DeploymentMetrics {
        DeploymentMetrics { inner: Arc::new(deployment::Deployment::new(self.shared.clone(), d)) }
    }

    /// One finished client request (after retries and fallbacks).
    pub fn request_finished(&self, r: &RequestRecord<'_>) {
        request::record(&self.shared, r);
    }

    /// Adds `r.spend` to `litellm_spend_metric` for a request already recorded with
    /// [`request_finished`](Self::request_finished) (a stream, billed when it ends). Only
    /// `spend` and the labels of `r` are read.
    pub fn request_spend(&self, r: &RequestRecord<'_>) {
        request::spend(&self.shared, r);
    }

    /// A fallback from `requested_model` to `fallback_model` was tried for `caller` after an
    /// error with `exception_status` / `exception_class`.
    pub fn fallback(
        &self,
        requested_model: &str,
        fallback_model: &str,
        caller: Option<&Caller>,
        succeeded: bool,
        exception_status: u16,
        exception_class: &str,
    ) {
        request::fallback(
            &self.shared,
            requested_model,
            fallback_model,
            caller,
            succeeded,
            exception_status,
            exception_class,
        );
    }

    /// A handle on one virtual key's labels, to pass with every record of its requests. Make it
    /// once per key identity and keep it; make a new one when the key's alias, team or user
    /// changes. `labels.hashed_api_key` is exported as given: pass the stored hash, never the
    /// key itself.
    pub fn caller(&self, labels: &CallerLabels) -> Caller {
        Caller::new(labels)
    }

    /// `caller`'s key budget, set as LiteLLM's `_set_key_budget_metrics` sets it:
    /// `litellm_remaining_api_key_budget_metric` is `remaining` (`max_budget - spend`), or +Inf
    /// when `None` (LiteLLM's `_safe_get_remaining_budget` without a max budget);
    /// `litellm_api_key_max_budget_metric` only moves with a max budget, and
    /// `litellm_api_key_budget_remaining_hours_metric` (hours to the next budget reset) only when
    /// the key has a reset date.
    pub fn key_budget(
        &self,
        caller: &Caller,
        max_budget: Option<f64>,
        remaining: Option<f64>,
        remaining_hours: Option<f64>,
    ) {
        budget::key(&self.shared, caller, budget::Budget { max_budget, remaining, remaining_hours });
    }

    /// A team's budget, as [`key_budget`](Self::key_budget) for a key:
    /// `litellm_remaining_team_budget_metric`, `litellm_team_max_budget_metric`,
    /// `litellm_team_budget_remaining_hours_metric`.
    pub fn team_budget(
        &self,
        team: &str,
        team_alias: &str,
        max_budget: Option<f64>,
        remaining: Option<f64>,
        remaining_hours: Option<f64>,
    ) {
        budget::team(&self.shared, team, team_alias, budget::Budget { max_budget, remaining, remaining_hours });
    }

    /// A user's budget, as [`key_budget`](Self::key_budget) for a key:
    /// `litellm_remaining_user_budget_metric`, `litellm_user_max_budget_metric`,
    /// `litellm_user_budget_remaining_hours_metric`.
    pub fn user_budget(
        &self,
        user: &str,
        max_budget: Option<f64>,
        remaining: Option<f64>,
        remaining_hours: Option<f64>,
    ) {
        budget::user(&self.shared, user, budget::Budget { max_budget, remaining, remaining_hours });
    }
}

/// LiteLLM's exception class for an HTTP status (`litellm/exceptions.py`), for failures whose
/// class the caller does not know.
pub fn exception_class_for_status(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        500 => "InternalServerError",
        502 => "BadGatewayError",
        503 => "ServiceUnavailableError",
        _ => "APIError",
    }
}

/// `code` in decimal, written into `buf`: label values need the text, and formatting on the
/// stack keeps the hot path free of allocation.
pub(crate) fn status_str(code: u16, buf: &mut [u8; 5]) -> &str {
    let mut n = code;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_families_only_when_shared_and_set_at_scrape() {
        assert!(!Metrics::new().render().contains("sluice_redis"));
        let m = Metrics::with_redis();
        m.redis_state(true, 4, 0);
        let text = m.render();
        for line in ["sluice_redis_up 1\n", "sluice_redis_replicas 4\n", "sluice_redis_failed_calls_total 0\n"] {
            assert!(text.contains(line), "{line} in {text}");
        }
        m.redis_state(false, 4, 3);
        m.redis_state(false, 4, 5);
        let text = m.render();
        assert!(text.contains("sluice_redis_up 0\n") && text.contains("sluice_redis_failed_calls_total 5\n"), "{text}");
    }

    #[test]
    fn callback_failures_are_counted_under_litellm_name() {
        let m = Metrics::new();
        let c = m.callback("generic_api");
        c.failed();
        c.failed();
        c.dropped(3);
        let text = m.render();
        for line in [
            "litellm_callback_logging_failures_metric_total{callback_name=\"generic_api\"} 2\n",
            "sluice_callback_dropped_records_total{callback_name=\"generic_api\"} 3\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn status_codes_format() {
        let mut buf = [0u8; 5];
        assert_eq!(status_str(0, &mut buf), "0");
        assert_eq!(status_str(429, &mut buf), "429");
        assert_eq!(status_str(u16::MAX, &mut buf), "65535");
    }
}
