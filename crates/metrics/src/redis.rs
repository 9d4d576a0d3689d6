//! sluice's own gauges for the Redis that replicas share limits and cooldowns through (LiteLLM
//! has no family for it: its `prometheus_system` service metrics time each call instead). Set at
//! scrape time from the connection's state, so the request path records nothing here.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Default)]
pub(crate) struct RedisFamilies {
    up: Gauge,
    replicas: Gauge,
    failed: Counter,
}

impl RedisFamilies {
    pub(crate) fn register(r: &mut Registry) -> RedisFamilies {
        let f = RedisFamilies::default();
        r.register(
            "sluice_redis_up",
            "Whether Redis answers (1) or this replica counts limits alone, on its share of each (0)",
            f.up.clone(),
        );
        r.register(
            "sluice_redis_replicas",
            "Live replicas sharing state through Redis, as last counted",
            f.replicas.clone(),
        );
        r.register(
            "sluice_redis_failed_calls",
            "Calls to Redis that failed or timed out (each opens the circuit breaker for a second)",
            f.failed.clone(),
        );
        f
    }

    pub(crate) fn set(&self, up: bool, replicas: u64, failures: u64) {
        self.up.set(i64::from(up));
        self.replicas.set(i64::try_from(replicas).unwrap_or(i64::MAX));
        // The connection keeps the total; the counter catches up with it.
        let seen = self.failed.get();
        if failures > seen {
            self.failed.inc_by(failures - seen);
        }
    }
}
