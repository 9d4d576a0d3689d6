//! The semantic cache (`type: redis-semantic`): a request whose prompt is close enough to one
//! answered before gets that answer. Closeness is the cosine of the prompts' embeddings (made by
//! the embedding deployment the config names; the server calls it), at least
//! `similarity_threshold`.
//!
//! LiteLLM keeps the vectors in a Redis Stack search index. Debian's Redis has no vector module,
//! so here the index is in process — an exact cosine scan over normalised vectors, bounded in
//! entries — and Redis holds what the replicas share: every vector, in one sorted set ordered by
//! a sequence number, and every answer, under its exact key like any cached answer. Each replica
//! reads the vectors the others added since its last look (at most every
//! [`SYNC_EVERY`]), so an answer one replica kept is found by all within that time.

use bytes::Bytes;
use sluice_state::remote::Remote;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How stale this replica's view of the shared vectors may be.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);

/// The most dimensions a vector may have (the largest embedding models have 4,096).
pub const MAX_DIMS: usize = 8_192;

/// Vectors read per round trip when catching up.
const SYNC_BATCH: usize = 1_000;

/// Adds a vector: its sequence number, the set trimmed to the newest ARGV[2].
const ADD: &str = r"
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
return seq
";

struct Vector {
    seq: u64,
    scope: String,
    key: String,
    unit: Box<[f32]>,
}

#[derive(Default)]
struct Index {
    /// Oldest first: evicted from the front.
    vectors: VecDeque<Vector>,
    held: HashSet<u64>,
    /// The highest sequence number read from Redis.
    read_to: u64,
}

pub struct Semantic {
    threshold: f32,
    max_entries: usize,
    remote: Arc<Remote>,
    /// Read by every lookup at once (a scan); written only to add or evict.
    index: RwLock<Index>,
    last_sync_ms: AtomicU64,
    /// Numbers for vectors kept while Redis is away, counting down from the top: never one a
    /// shared vector has.
    local_seq: AtomicU64,
    set_key: String,
    seq_key: String,
}

/// A hit: the exact key of the answer to give, and how close its prompt was.
#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    pub key: String,
    pub similarity: f32,
}

impl Semantic {
    pub fn new(threshold: f64, max_entries: usize, remote: Arc<Remote>) -> Semantic {
        Semantic {
            threshold: threshold as f32,
            max_entries: max_entries.max(1),
            set_key: remote.key("semantic", "vectors"),
            seq_key: remote.key("semantic", "seq"),
            remote,
            index: RwLock::default(),
            last_sync_ms: AtomicU64::new(0),
            local_seq: AtomicU64::new(u64::MAX),
        }
    }

    fn index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The closest kept prompt in `scope` to `vector`, when it is at least the threshold.
    pub async fn find(&self, scope: &str, vector: &[f32]) -> Option<Near> {
        self.sync().await;
        let unit = unit(vector)?;
        let index = self.read();
        let best = index
            .vectors
            .iter()
            .filter(|v| v.scope == scope && v.unit.len() == unit.len())
            .map(|v| (v, dot(&v.unit, &unit)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (best.1 >= self.threshold).then(|| Near { key: best.0.key.clone(), similarity: best.1 })
    }

    /// Keeps `vector` as the prompt of the answer kept under `key`, here and for every replica.
    pub async fn add(&self, scope: &str, key: &str, vector: &[f32]) {
        let Some(unit) = unit(vector) else { return };
        let member = encode(scope, key, &unit);
        let script = redis::Script::new(ADD);
        let mut call = script.prepare_invoke();
        call.key(&self.set_key).key(&self.seq_key).arg(&member[..]).arg(self.max_entries);
        let seq: Option<u64> = self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        // Redis away: kept here alone, under a number no shared vector has.
        let seq = seq.unwrap_or_else(|| self.local_seq.fetch_sub(1, Ordering::Relaxed));
        self.insert(Vector { seq, scope: scope.to_string(), key: key.to_string(), unit });
    }

    fn insert(&self, v: Vector) {
        let mut index = self.index();
        if !index.held.insert(v.seq) {
            return;
        }
        index.vectors.push_back(v);
        while index.vectors.len() > self.max_entries {
            if let Some(old) = index.vectors.pop_front() {
                index.held.remove(&old.seq);
            }
        }
    }

    /// Reads the vectors other replicas added since the last read, at most every
    /// [`SYNC_EVERY`].
    async fn sync(&self) {
        let now = crate::entry::now_ms();
        let last = self.last_sync_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SYNC_EVERY.as_millis() as u64
            || self.last_sync_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err()
        {
            return;
        }
        loop {
            let from = self.read().read_to;
            let key = self.set_key.clone();
            let page: Option<Vec<(Vec<u8>, u64)>> = self
                .remote
                .call(|mut conn| async move {
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(key)
                        .arg(format!("({from}"))
                        .arg("+inf")
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(SYNC_BATCH)
                        .query_async(&mut conn)
                        .await
                })
                .await;
            let Some(page) = page else { return };
            let n = page.len();
            for (member, seq) in page {
                if let Some((scope, key, unit)) = decode(&member) {
                    self.insert(Vector { seq, scope, key, unit });
                }
                let mut index = self.index();
                index.read_to = index.read_to.max(seq);
            }
            if n < SYNC_BATCH {
                return;
            }
        }
    }

    /// Vectors held in process.
    pub fn len(&self) -> usize {
        self.read().vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `v` scaled to length 1; `None` for a vector that is empty, too long, not finite or zero.
fn unit(v: &[f32]) -> Option<Box<[f32]>> {
    if v.is_empty() || v.len() > MAX_DIMS || !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| v.iter().map(|x| x / norm).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `scope`, `key` and the vector as one member: two lengths (u16, little-endian), the two
/// strings, then the floats (f32, little-endian).
fn encode(scope: &str, key: &str, unit: &[f32]) -> Bytes {
    let mut out = Vec::with_capacity(4 + scope.len() + key.len() + unit.len() * 4);
    for s in [scope, key] {
        out.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&s.as_bytes()[..s.len().min(u16::MAX as usize)]);
    }
    for x in unit {
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

/// The member's parts; `None` for bytes this build did not write.
fn decode(bytes: &[u8]) -> Option<(String, String, Box<[f32]>)> {
    let mut at = 0;
    let mut text = || -> Option<String> {
        let len = u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(bytes.get(at + 2..at + 2 + len)?).ok()?.to_string();
        at += 2 + len;
        Some(s)
    };
    let scope = text()?;
    let key = text()?;
    let floats = bytes.get(at..)?;
    if floats.len() % 4 != 0 {
        return None;
    }
    let v: Vec<f32> = floats.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Some((scope, key, unit(&v)?))
}

/// The semantic cache's memory by scope, for tests.
#[cfg(test)]
fn scopes(s: &Semantic) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for v in &s.read().vectors {
        *out.entry(v.scope.clone()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn members_round_trip() {
        let u = unit(&[3.0, 4.0]).unwrap();
        let (scope, key, back) = decode(&encode("ns|gpt", "k1", &u)).unwrap();
        assert_eq!((scope.as_str(), key.as_str()), ("ns|gpt", "k1"));
        assert_eq!(&back[..], &[0.6, 0.8]);
    }

    #[test]
    fn only_usable_vectors_are_kept() {
        assert!(unit(&[]).is_none());
        assert!(unit(&[0.0, 0.0]).is_none());
        assert!(unit(&[f32::NAN, 1.0]).is_none());
        assert!(unit(&vec![1.0; MAX_DIMS + 1]).is_none());
    }

    proptest! {
        #[test]
        fn foreign_members_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&bytes);
        }
    }

    /// A Remote on a port nothing listens on: every call fails at once, as with Redis away.
    async fn away() -> Arc<Remote> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = sluice_state::remote::RemoteConfig {
            url: format!("redis://127.0.0.1:{port}"),
            prefix: "t:".into(),
            op_timeout: Duration::from_millis(50),
        };
        Remote::connect(&config).await.unwrap()
    }

    #[tokio::test]
    async fn the_closest_prompt_in_scope_above_the_threshold_is_found() {
        let s = Semantic::new(0.9, 3, away().await);
        s.add("a", "k-x", &[1.0, 0.0, 0.0]).await;
        s.add("a", "k-y", &[0.0, 1.0, 0.0]).await;
        s.add("b", "k-z", &[1.0, 0.0, 0.0]).await;
        let near = s.find("a", &[0.95, 0.1, 0.0]).await.unwrap();
        assert_eq!(near.key, "k-x");
        assert!(near.similarity > 0.99);
        assert!(s.find("a", &[0.7, 0.7, 0.0]).await.is_none(), "0.707 is below 0.9");
        assert!(s.find("c", &[1.0, 0.0, 0.0]).await.is_none(), "another scope's prompts are not this one's");
        assert!(s.find("a", &[1.0, 0.0]).await.is_none(), "another model's dimensions");
        // Bounded: the oldest goes first.
        s.add("a", "k-w", &[0.0, 0.0, 1.0]).await;
        assert_eq!(s.len(), 3);
        assert_eq!(scopes(&s).get("a"), Some(&2));
        assert!(s.find("a", &[1.0, 0.0, 0.0]).await.is_none(), "k-x was evicted");
    }
}
