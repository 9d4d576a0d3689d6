//! The database's health as LiteLLM's dashboards read it: the spend updates waiting in memory
//! (`litellm_in_memory_spend_update_queue_size` and its daily twin), the Redis buffers LiteLLM
//! can put in front of the database (always empty here: sluice writes spend straight to it), the
//! user and team counts; and sluice's own `sluice_database_up` and dropped spend-log rows. Set at
//! scrape time from the writer's counts, so the request path records nothing here.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What the scrape reports, read from the spend writer and the registry just before it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatabaseState {
    /// Whether a database is configured at all: without one, `sluice_database_up` is 0 and the
    /// queues are empty.
    pub configured: bool,
    pub up: bool,
    /// Keys, users, teams… whose spend waits to be written.
    pub pending_spend: u64,
    /// Spend-log rows waiting (each carries its daily aggregates' update).
    pub pending_logs: u64,
    /// Spend-log rows dropped since the start (the buffer was full while the database was down).
    pub dropped_logs: u64,
    pub users: u64,
    pub teams: u64,
}

#[derive(Debug, Default)]
pub(crate) struct DatabaseFamilies {
    spend_queue: Gauge,
    daily_queue: Gauge,
    redis_spend_queue: Gauge,
    redis_daily_queue: Gauge,
    users: Gauge,
    teams: Gauge,
    up: Gauge,
    dropped_logs: Counter,
}

impl DatabaseFamilies {
    pub(crate) fn register(r: &mut Registry) -> DatabaseFamilies {
        let f = DatabaseFamilies::default();
        r.register(
            "litellm_in_memory_spend_update_queue_size",
            "Spenders (keys, users, teams, ...) whose spend waits in memory to be written to the database",
            f.spend_queue.clone(),
        );
        r.register(
            "litellm_in_memory_daily_spend_update_queue_size",
            "Spend-log rows (each with its daily aggregates' update) waiting in memory to be written",
            f.daily_queue.clone(),
        );
        r.register(
            "litellm_redis_spend_update_queue_size",
            "Spend updates buffered in Redis: always 0, sluice writes spend straight to the database",
            f.redis_spend_queue.clone(),
        );
        r.register(
            "litellm_redis_daily_spend_update_queue_size",
            "Daily spend updates buffered in Redis: always 0, sluice writes them straight to the database",
            f.redis_daily_queue.clone(),
        );
        r.register("litellm_total_users", "Internal users known to the proxy", f.users.clone());
        r.register("litellm_teams_count", "Teams known to the proxy", f.teams.clone());
        r.register(
            "sluice_database_up",
            "Whether the database answers (1) or spend waits in memory for it (0; also 0 without a database)",
            f.up.clone(),
        );
        r.register(
            "sluice_spend_logs_dropped",
            "Spend-log rows dropped because the in-memory buffer was full while the database was down",
            f.dropped_logs.clone(),
        );
        f
    }

    pub(crate) fn set(&self, s: &DatabaseState) {
        let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.spend_queue.set(g(s.pending_spend));
        self.daily_queue.set(g(s.pending_logs));
        self.users.set(g(s.users));
        self.teams.set(g(s.teams));
        self.up.set(i64::from(s.configured && s.up));
        // The writer keeps the total; the counter catches up with it.
        let seen = self.dropped_logs.get();
        if s.dropped_logs > seen {
            self.dropped_logs.inc_by(s.dropped_logs - seen);
        }
    }
}
