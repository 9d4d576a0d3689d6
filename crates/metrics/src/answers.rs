//! The answer cache: LiteLLM's `litellm_cache_hits_metric`, `litellm_cache_misses_metric` and
//! `litellm_cached_tokens_metric` (per model and caller, recorded per request through the
//! thread-local caches like every per-request series), and sluice's gauges of what the
//! in-process store holds (`sluice_cache_entries`, `sluice_cache_bytes`) and of the writes Redis
//! did not take (`sluice_cache_failed_writes`), set at scrape time.

use crate::cache::with_caches;
use crate::caller::{cache_key, labels as caller_labels, Caller};
use crate::families::Counters;
use crate::labels::CacheLabels;
use crate::Shared;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// One label set's three counters.
pub(crate) struct CacheHandles {
    hits: Counter,
    misses: Counter,
    tokens: Counter,
}

#[derive(Debug, Default)]
pub(crate) struct CacheFamilies {
    pub(crate) hits: Counters<CacheLabels>,
    pub(crate) misses: Counters<CacheLabels>,
    pub(crate) tokens: Counters<CacheLabels>,
}

impl CacheFamilies {
    pub(crate) fn register(r: &mut Registry) -> CacheFamilies {
        let f = CacheFamilies::default();
        r.register("litellm_cache_hits_metric", "Total number of LiteLLM cache hits", f.hits.clone());
        r.register("litellm_cache_misses_metric", "Total number of LiteLLM cache misses", f.misses.clone());
        r.register("litellm_cached_tokens_metric", "Total tokens served from LiteLLM cache", f.tokens.clone());
        f
    }
}

/// What the answer cache holds, set just before a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheState {
    pub entries: u64,
    pub bytes: u64,
    pub failed_writes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct CacheGauges {
    entries: Gauge,
    bytes: Gauge,
    failed_writes: Gauge,
}

impl CacheGauges {
    pub(crate) fn register(r: &mut Registry) -> CacheGauges {
        let g = CacheGauges::default();
        r.register("sluice_cache_entries", "Answers the cache holds in this process", g.entries.clone());
        r.register("sluice_cache_bytes", "Bytes of the answers the cache holds in this process", g.bytes.clone());
        r.register(
            "sluice_cache_failed_writes",
            "Answers not kept because the cache's Redis did not take them (away or too slow), since the start",
            g.failed_writes.clone(),
        );
        g
    }

    pub(crate) fn set(&self, s: &CacheState) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.entries.set(clamp(s.entries));
        self.bytes.set(clamp(s.bytes));
        self.failed_writes.set(clamp(s.failed_writes));
    }
}

/// One request's lookup: a hit (with the tokens its answer spared) or a miss.
pub(crate) fn record(
    shared: &Shared,
    model: &str,
    model_id: &str,
    end_user: &str,
    caller: Option<&Caller>,
    hit: bool,
    tokens: u64,
) {
    let apply = |h: &CacheHandles| match hit {
        true => {
            h.hits.inc();
            h.tokens.inc_by(tokens);
        }
        false => {
            h.misses.inc();
        }
    };
    let make = || {
        let c = caller_labels(caller);
        let labels = CacheLabels {
            model: model.to_owned(),
            hashed_api_key: c.hashed_api_key.clone(),
            api_key_alias: c.api_key_alias.clone(),
            team: c.team.clone(),
            team_alias: c.team_alias.clone(),
            end_user: end_user.to_owned(),
            user: c.user.clone(),
            model_id: model_id.to_owned(),
        };
        let f = &shared.cache;
        CacheHandles {
            hits: f.hits.get_or_create_owned(&labels),
            misses: f.misses.get_or_create_owned(&labels),
            tokens: f.tokens.get_or_create_owned(&labels),
        }
    };
    let num = cache_key(caller, 0);
    let strs = [model, model_id, end_user];
    if with_caches(&shared.owner, |c| apply(c.answers.get_or_insert_with(num, &strs, &make))).is_none() {
        apply(&make());
    }
}
