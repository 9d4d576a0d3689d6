//! The Redis store (`type: redis`): entries every replica reads, through the one Redis
//! connection the replicas already share limits through (`sluice_state::remote::Remote`), and so
//! behind its circuit breaker: Redis away is a miss at once, never an error or a wait.

use crate::entry::Entry;
use bytes::Bytes;
use sluice_state::remote::Remote;
use std::sync::Arc;
use std::time::Duration;

/// Keys one `/cache/flushall` deletes per round trip.
const FLUSH_BATCH: usize = 500;

pub(crate) struct RedisStore {
    pub(crate) remote: Arc<Remote>,
}

impl RedisStore {
    fn key(&self, key: &str) -> String {
        self.remote.key("cache", key)
    }

    /// `None`: a miss, or Redis away.
    pub(crate) async fn get(&self, key: &str) -> Option<Entry> {
        let k = self.key(key);
        let bytes: Option<Vec<u8>> =
            self.remote.call(|mut conn| async move { redis::cmd("GET").arg(k).query_async(&mut conn).await }).await?;
        Entry::decode(Bytes::from(bytes?))
    }

    pub(crate) async fn put(&self, key: &str, entry: &Entry, ttl: Option<Duration>) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(&entry.encode()[..]);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
        }
        self.remote.call(|mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await.is_some()
    }

    /// How many of `keys` were there.
    pub(crate) async fn delete(&self, keys: &[String]) -> Option<u64> {
        if keys.is_empty() {
            return Some(0);
        }
        let mut cmd = redis::cmd("DEL");
        for k in keys {
            cmd.arg(self.key(k));
        }
        self.remote.call(|mut conn| async move { cmd.query_async(&mut conn).await }).await
    }

    /// Deletes every entry of this gateway's cache (its key prefix), a batch at a time.
    pub(crate) async fn flush(&self) -> Option<u64> {
        let pattern = self.key("*");
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let p = pattern.clone();
            let (next, keys): (u64, Vec<String>) = self
                .remote
                .call(|mut conn| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(p)
                        .arg("COUNT")
                        .arg(FLUSH_BATCH)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .remote
                    .call(|mut conn| async move { redis::cmd("UNLINK").arg(keys).query_async(&mut conn).await })
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Some(deleted);
            }
            cursor = next;
        }
    }

    pub(crate) async fn ping(&self) -> bool {
        self.remote
            .call(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .is_some()
    }

    /// Redis's `INFO`, as text.
    pub(crate) async fn info(&self) -> Option<String> {
        self.remote.call(|mut conn| async move { redis::cmd("INFO").query_async::<String>(&mut conn).await }).await
    }
}
