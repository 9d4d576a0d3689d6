//! The answer cache: LiteLLM's response caching (`litellm_settings.cache`, `cache_params`), so a
//! repeated request is answered without paying an upstream again.
//!
//! The server asks [`Cache::lookup`] once it knows the model group and the request's own
//! `cache` controls; that makes the [`Lookup`] (the key, [`key`], a hash of the body's bytes,
//! and what the request allows: read, write, ttl, `s-maxage`). A hit ([`Cache::get`]) is an
//! [`Entry`]: the whole answer, replayed as it is or as a stream ([`replay`]). A miss goes
//! upstream; a whole answer is kept with [`Cache::put`], a stream through a [`tee::Tee`] that
//! assembles it as it passes ([`assemble`]) and keeps it once it ended whole.
//!
//! Where entries live: in process (`local`: LRU, bounded in entries and bytes) or in Redis
//! (`remote`: every replica reads what one kept, optionally in front of it an in-process copy
//! for `default_in_memory_ttl`). Redis is reached through the replicas' one connection and its
//! circuit breaker: Redis away is a miss at once, and a write that cannot go is dropped.
//!
//! The cache knows nothing of HTTP routes, keys or billing: the server decides what a hit costs
//! and how it is logged.

pub mod assemble;
mod canonical;
pub mod entry;
pub mod key;
mod local;
mod remote;
pub mod replay;
pub mod semantic;
pub mod tee;

use bytes::Bytes;
pub use entry::Entry;
pub use key::Shape;
use sluice_state::remote::Remote;
use sluice_wire::controls::CacheControls;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// LiteLLM's in-memory cache keeps an answer ten minutes unless told otherwise.
pub const DEFAULT_LOCAL_TTL: Duration = Duration::from_secs(600);

/// Where entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In this process (`type: local`).
    Local,
    /// In Redis, shared by every replica (`type: redis`).
    Redis,
}

/// What the config asked for (bounded where it was read).
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    /// `cache_params.ttl`: how long an answer is kept unless the request says otherwise.
    pub ttl: Option<Duration>,
    /// `default_in_memory_ttl`: the in-process default (local), or how long a Redis entry is
    /// also kept in process (redis; none when unset).
    pub in_memory_ttl: Option<Duration>,
    /// `default_in_redis_ttl`: the Redis default when `ttl` is unset (none: kept until Redis
    /// evicts it, as LiteLLM does).
    pub redis_ttl: Option<Duration>,
    /// `namespace`: prefixed to every key.
    pub namespace: Option<String>,
    /// The call types answered from the cache (`supported_call_types`).
    pub shapes: Vec<Shape>,
    /// `mode: default_on` (every request) or `default_off` (only a request with
    /// `cache: {"use-cache": true}`).
    pub default_on: bool,
    /// In-process bounds.
    pub max_entries: usize,
    pub max_bytes: usize,
    /// The largest answer kept, in bytes.
    pub max_item_bytes: usize,
    /// `similarity_threshold` of a semantic cache (`type: redis-semantic`).
    pub similarity_threshold: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backend: Backend::Local,
            ttl: None,
            in_memory_ttl: None,
            redis_ttl: None,
            namespace: None,
            shapes: vec![Shape::Chat, Shape::Completion, Shape::Embedding, Shape::Responses, Shape::Rerank],
            default_on: true,
            max_entries: 10_000,
            max_bytes: 256 << 20,
            max_item_bytes: 4 << 20,
            similarity_threshold: None,
        }
    }
}

/// What the cache has done since start, for `/metrics` and `/cache/ping`.
#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub writes: AtomicU64,
    /// Writes Redis did not take (away, or too slow).
    pub failed_writes: AtomicU64,
}

/// One request's business with the cache.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The key's digest and namespace: its text ([`Lookup::key`]) is written only when it is
    /// shown or sent to Redis, not on every lookup.
    digest: key::Id,
    namespace: Option<Box<str>>,
    /// What the in-process store files the answer under.
    id: key::Id,
    pub shape: Shape,
    read: bool,
    write: bool,
    ttl: Option<Duration>,
    max_age: Option<Duration>,
    /// Only an entry that carries `usage` will do (a stream asking for it, replayed).
    needs_usage: bool,
    /// Where a semantic cache compares prompts: the namespace, the shape and the model group
    /// (empty for the other caches).
    pub scope: String,
}

impl Lookup {
    /// The key as the client sees it in `x-litellm-cache-key`.
    pub fn key(&self) -> String {
        key::text(self.namespace.as_deref(), &self.digest)
    }

    /// Only an answer that reports its usage will do: a streamed request asking for
    /// `include_usage` cannot be replayed from a stream kept without it.
    pub fn needing_usage(mut self) -> Lookup {
        self.needs_usage = true;
        self
    }

    /// Whether the answer, once made, is to be kept.
    pub fn writes(&self) -> bool {
        self.write
    }

    /// Whether a kept answer may be used (not `no-cache`).
    pub fn reads(&self) -> bool {
        self.read
    }

    /// Whether `e`, found under this lookup's key, will do at `now_ms`: the same call type, young
    /// enough for `s-maxage`, and with its usage when the request needs it.
    fn accepts(&self, e: &Entry, now_ms: u64) -> bool {
        e.shape == self.shape
            && self.max_age.is_none_or(|max| e.age_ms(now_ms) <= max.as_millis() as u64)
            && (!self.needs_usage || e.has_usage())
    }
}

pub struct Cache {
    settings: Settings,
    /// The in-process store: all of a local cache, or a Redis cache's front copy.
    local: Option<local::Local>,
    redis: Option<remote::RedisStore>,
    semantic: Option<semantic::Semantic>,
    pub stats: Stats,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("backend", &self.settings.backend).finish()
    }
}

impl Cache {
    /// A Redis cache needs the replicas' Redis connection.
    pub fn new(settings: Settings, remote: Option<Arc<Remote>>) -> Result<Arc<Cache>, String> {
        let redis = match (settings.backend, remote) {
            (Backend::Redis, Some(remote)) => Some(remote::RedisStore { remote }),
            (Backend::Redis, None) => return Err("a Redis cache needs a Redis to keep answers in".into()),
            (Backend::Local, _) => None,
        };
        let local = match settings.backend {
            Backend::Local => true,
            Backend::Redis => settings.in_memory_ttl.is_some(),
        };
        let local = local.then(|| local::Local::new(settings.max_entries, settings.max_bytes));
        let semantic = match (settings.similarity_threshold, &redis) {
            (Some(t), Some(r)) => Some(semantic::Semantic::new(t, settings.max_entries, r.remote.clone())),
            (Some(_), None) => {
                return Err("a semantic cache keeps its vectors in Redis: use type: redis-semantic".into())
            }
            (None, _) => None,
        };
        Ok(Arc::new(Cache { settings, local, redis, semantic, stats: Stats::default() }))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the cache does for a request of `shape` to `model_group` with `body` (its controls
    /// removed or not: the key ignores them) and its `cache` controls. `None`: the cache has
    /// nothing to do with it (a call type not cached, `default_off` without `use-cache`, both
    /// `no-cache` and `no-store`).
    pub fn lookup(
        &self,
        shape: Shape,
        model_group: &str,
        body: &[u8],
        controls: Option<&CacheControls>,
    ) -> Option<Lookup> {
        if !self.settings.shapes.contains(&shape) {
            return None;
        }
        let none = CacheControls::default();
        let c = controls.unwrap_or(&none);
        if !self.settings.default_on && !c.use_cache {
            return None;
        }
        let (read, write) = (!c.no_cache, !c.no_store);
        if !read && !write {
            return None;
        }
        let namespace = c.namespace.as_deref().or(self.settings.namespace.as_deref());
        let digest = key::digest(shape, model_group, body)?;
        let id = key::id(namespace, &digest);
        let ttl = c.ttl.or(self.settings.ttl).or(match self.settings.backend {
            Backend::Local => Some(self.settings.in_memory_ttl.unwrap_or(DEFAULT_LOCAL_TTL)),
            Backend::Redis => self.settings.redis_ttl,
        });
        // Only a semantic cache compares prompts within a scope: no string for the others.
        let scope = match self.semantic {
            Some(_) => format!("{}|{}|{model_group}", namespace.unwrap_or(""), shape.name()),
            None => String::new(),
        };
        let namespace = namespace.map(Box::from);
        Some(Lookup { digest, namespace, id, shape, read, write, ttl, max_age: c.s_maxage, needs_usage: false, scope })
    }

    /// The semantic cache, when this is one.
    pub fn semantic(&self) -> Option<&semantic::Semantic> {
        self.semantic.as_ref()
    }

    /// The kept answer for `lookup`, if there is one it may use. Counts the hit or the miss.
    pub async fn get(&self, lookup: &Lookup) -> Option<Entry> {
        self.counted(lookup, None).await
    }

    /// Whether every lookup is answered in this process (a local cache that is not semantic):
    /// then [`get_here`](Self::get_here) does what [`get`](Self::get) does, without a future.
    pub fn answers_here(&self) -> bool {
        self.redis.is_none() && self.semantic.is_none()
    }

    /// [`get`](Self::get) for a cache that [`answers_here`](Self::answers_here): the request path
    /// asks it on every request, and a future to hold (and box) for a lookup that never waits was
    /// an allocation on each. `None` too from a cache that does not answer here.
    pub fn get_here(&self, lookup: &Lookup) -> Option<Entry> {
        if !lookup.read || !self.answers_here() {
            return None;
        }
        let found = self.find_here(lookup, Some(lookup.id), entry::now_ms()).flatten();
        let counter = if found.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// What the in-process store holds for `id`, if `lookup` may use it.
    fn find_here(&self, lookup: &Lookup, id: Option<key::Id>, now: u64) -> Option<Option<Entry>> {
        let e = self.local.as_ref().zip(id.as_ref()).and_then(|(l, id)| l.get(id, now))?;
        Some(lookup.accepts(&e, now).then_some(e))
    }

    /// A lookup that found nothing without asking the store (a semantic cache with no prompt
    /// close enough): counted as a miss.
    pub fn missed(&self) -> Option<Entry> {
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// [`get`](Self::get) of the answer kept under `key` (a semantic hit's: another prompt's),
    /// within what `lookup` allows.
    pub async fn get_as(&self, lookup: &Lookup, key: &str) -> Option<Entry> {
        self.counted(lookup, Some(key)).await
    }

    /// The answer kept under `other` (a key's text), or under the lookup's own key.
    async fn counted(&self, lookup: &Lookup, other: Option<&str>) -> Option<Entry> {
        if !lookup.read {
            return None;
        }
        let found = self.find(lookup, other).await;
        let counter = if found.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    async fn find(&self, lookup: &Lookup, other: Option<&str>) -> Option<Entry> {
        let now = entry::now_ms();
        let id = match other {
            None => Some(lookup.id),
            Some(key) => key::parse(key).map(|(ns, digest)| key::id(ns, &digest)),
        };
        if let Some(here) = self.find_here(lookup, id, now) {
            return here;
        }
        let redis = self.redis.as_ref()?;
        let e = match other {
            Some(key) => redis.get(key).await?,
            None => redis.get(&lookup.key()).await?,
        };
        if let (Some(local), Some(ttl), Some(id)) = (&self.local, self.settings.in_memory_ttl, id) {
            local.put(id, e.clone(), now.saturating_add(ttl.as_millis() as u64));
        }
        lookup.accepts(&e, now).then_some(e)
    }

    /// Keeps `answer` (the whole answer the client got) for `lookup`, unless the request said
    /// `no-store` or it is larger than an entry may be. A Redis write goes in the background.
    pub fn put(self: &Arc<Self>, lookup: &Lookup, answer: Bytes) {
        if !lookup.write || answer.len() > self.settings.max_item_bytes {
            return;
        }
        let now = entry::now_ms();
        let entry = Entry { created_ms: now, shape: lookup.shape, answer };
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        let local_ttl = match self.settings.backend {
            Backend::Local => lookup.ttl,
            // The front copy lives no longer than the Redis entry.
            Backend::Redis => match (self.settings.in_memory_ttl, lookup.ttl) {
                (Some(m), Some(t)) => Some(m.min(t)),
                (m, _) => m,
            },
        };
        if self.redis.is_some() {
            let (cache, key, ttl, entry) = (self.clone(), lookup.key(), lookup.ttl, entry.clone());
            tokio::spawn(async move {
                if let Some(redis) = &cache.redis {
                    if !redis.put(&key, &entry, ttl).await {
                        cache.stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Moved, not cloned, when nothing else keeps it: a clone of a fresh answer's `Bytes`
        // allocates its shared count.
        if let Some(local) = &self.local {
            let expires = local_ttl.map_or(u64::MAX, |t| now.saturating_add(t.as_millis() as u64));
            local.put(lookup.id, entry, expires);
        }
    }

    /// `/cache/delete`: how many of `keys` were kept (here, or in Redis).
    pub async fn delete(&self, keys: &[String]) -> Result<u64, String> {
        let mut here = 0;
        if let Some(local) = &self.local {
            let ids = keys.iter().filter_map(|k| key::parse(k)).map(|(ns, digest)| key::id(ns, &digest));
            here = ids.filter(|id| local.delete(id)).count() as u64;
        }
        match &self.redis {
            Some(redis) => redis.delete(keys).await.map(|n| n.max(here)).ok_or_else(unreachable),
            None => Ok(here),
        }
    }

    /// `/cache/flushall`: every entry gone.
    pub async fn flush(&self) -> Result<(), String> {
        if let Some(local) = &self.local {
            local.clear();
        }
        match &self.redis {
            Some(redis) => redis.flush().await.map(drop).ok_or_else(unreachable),
            None => Ok(()),
        }
    }

    /// `/cache/ping`: whether the store answers.
    pub async fn ping(&self) -> Result<(), String> {
        match &self.redis {
            Some(redis) if !redis.ping().await => Err(unreachable()),
            _ => Ok(()),
        }
    }

    /// `/cache/redis/info`: Redis's `INFO`, when the cache is in Redis.
    pub async fn redis_info(&self) -> Option<Result<String, String>> {
        let redis = self.redis.as_ref()?;
        Some(redis.info().await.ok_or_else(unreachable))
    }

    /// (entries, bytes) kept in process.
    pub fn usage(&self) -> (usize, usize) {
        self.local.as_ref().map_or((0, 0), local::Local::usage)
    }
}

fn unreachable() -> String {
    "the cache's Redis did not answer; check that it is running and reachable (sluice_redis_up in /metrics)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

    fn controls(json: &str) -> CacheControls {
        let body = format!(r#"{{"model":"m","messages":[],"cache":{json}}}"#);
        let view = sluice_wire::sniff::request(body.as_bytes(), sluice_wire::sniff::Endpoint::Chat).unwrap();
        view.controls.unwrap().cache.unwrap()
    }

    #[tokio::test]
    async fn a_kept_answer_is_found_within_what_the_request_allows() {
        let cache = Cache::new(Settings::default(), None).unwrap();
        let l = cache.lookup(Shape::Chat, "m", BODY, None).unwrap();
        assert!(cache.get(&l).await.is_none());
        cache.put(&l, Bytes::from_static(b"{\"answer\":1}"));
        assert_eq!(&cache.get(&l).await.unwrap().answer[..], b"{\"answer\":1}");
        assert_eq!((cache.stats.hits.load(Ordering::Relaxed), cache.stats.misses.load(Ordering::Relaxed)), (1, 1));

        // no-cache: not read, but written; no-store: read, not written.
        let skip = cache.lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"no-cache": true}"#))).unwrap();
        assert!(cache.get(&skip).await.is_none() && skip.writes());
        let keep_not = cache.lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"no-store": true}"#))).unwrap();
        assert!(cache.get(&keep_not).await.is_some() && !keep_not.writes());
        assert!(cache
            .lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"no-store":true,"no-cache":true}"#)))
            .is_none());

        // A namespace is a cache of its own.
        let ns = cache.lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"namespace": "a"}"#))).unwrap();
        assert!(ns.key().starts_with("a:") && cache.get(&ns).await.is_none());
        cache.put(&ns, Bytes::from_static(b"{\"answer\":2}"));
        assert_eq!(&cache.get(&ns).await.unwrap().answer[..], b"{\"answer\":2}");
        assert_eq!(&cache.get(&l).await.unwrap().answer[..], b"{\"answer\":1}");
        // Found by its key's text too (a semantic hit's way), and deleted by it.
        assert_eq!(&cache.get_as(&l, &ns.key()).await.unwrap().answer[..], b"{\"answer\":2}");
        assert!(cache.get_as(&l, "not-a-key").await.is_none());
        assert_eq!(cache.delete(&[ns.key(), "not-a-key".into(), format!("b:{}", l.key())]).await, Ok(1));
        assert!(cache.get(&ns).await.is_none() && cache.get(&l).await.is_some());
    }

    #[tokio::test]
    async fn s_maxage_refuses_older_entries_and_ttl_ends_them() {
        let cache = Cache::new(Settings::default(), None).unwrap();
        let short = cache.lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"ttl": 1}"#))).unwrap();
        cache.put(&short, Bytes::from_static(b"{}"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let young = cache.lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"s-maxage": 0}"#))).unwrap();
        assert!(cache.get(&young).await.is_none(), "an entry older than the request accepts is refused");
        let any = cache.lookup(Shape::Chat, "m", BODY, None).unwrap();
        assert!(cache.get(&any).await.is_some());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(cache.get(&any).await.is_none(), "past its ttl");
    }

    #[tokio::test]
    async fn only_the_configured_calls_and_mode_use_the_cache() {
        let settings = Settings { shapes: vec![Shape::Embedding], default_on: false, ..Settings::default() };
        let cache = Cache::new(settings, None).unwrap();
        assert!(cache.lookup(Shape::Chat, "m", BODY, Some(&controls(r#"{"use-cache": true}"#))).is_none());
        assert!(cache.lookup(Shape::Embedding, "m", BODY, None).is_none());
        assert!(cache.lookup(Shape::Embedding, "m", BODY, Some(&controls(r#"{"use-cache": true}"#))).is_some());
        // An answer without usage does not do for a request that needs it.
        let plain = cache.lookup(Shape::Embedding, "x", BODY, Some(&controls(r#"{"use-cache": true}"#))).unwrap();
        cache.put(&plain, Bytes::from_static(b"{\"data\":[]}"));
        assert!(cache.get(&plain).await.is_some());
        assert!(cache.get(&plain.clone().needing_usage()).await.is_none());
        // An entry of another shape under the same key is not this request's.
        let l = cache.lookup(Shape::Embedding, "m", BODY, Some(&controls(r#"{"use-cache": true}"#))).unwrap();
        let other = Lookup { shape: Shape::Chat, ..l.clone() };
        cache.put(&other, Bytes::from_static(b"{}"));
        assert!(cache.get(&l).await.is_none());
    }

    #[test]
    fn a_redis_cache_needs_redis() {
        assert!(Cache::new(Settings { backend: Backend::Redis, ..Settings::default() }, None).is_err());
    }
}
