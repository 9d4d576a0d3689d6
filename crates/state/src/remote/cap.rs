//! In-flight caps shared through Redis (`max_parallel_requests` of a key, user or team): the
//! requests in flight on one spender, counted over every replica.
//!
//! The count is a hash, `prefix + "inflight:" + kind:id`, with one field per replica holding
//! that replica's requests in flight. Entering runs a script that sums the fields of the live
//! replicas (dropping those of replicas gone from the heartbeat's set, so a replica that died
//! does not hold its slots forever) and takes a slot if the sum is under the cap; leaving takes
//! it back. This costs a round trip per request, paid only by spenders that set such a cap (not
//! the common case): an in-flight count cannot be leased locally without giving up exactness.

use super::Remote;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// KEYS: the hash, the live replicas. ARGV: me, the cap. Returns {1 entered | 0 full, count}.
const ENTER: &str = concat!(
    live_sum_lua!(),
    r"
local n = live_sum(KEYS[1], KEYS[2], ARGV[1])
if n >= tonumber(ARGV[2]) then return {0, n} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return {1, n + 1}
"
);

/// KEYS: the hash. ARGV: me, how many leave.
const LEAVE: &str = r"
if redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2])) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
";

/// One spender's shared in-flight count, as this replica takes part in it.
#[derive(Debug)]
pub struct SharedCap {
    remote: Arc<Remote>,
    key: String,
    /// Slots left here whose leaving has not reached Redis yet (it was away): sent with the next
    /// enter or leave.
    owed: AtomicU64,
}

/// What entering said.
#[derive(Debug)]
pub enum Entered {
    /// A slot is held until the [`CapSlot`] is dropped.
    Yes(CapSlot),
    /// The cap is reached; `current` are in flight over all replicas.
    Full { current: u64 },
}

impl SharedCap {
    pub fn new(remote: Arc<Remote>, kind: &str, id: &str) -> Arc<SharedCap> {
        let key = remote.key("inflight", &format!("{kind}:{id}"));
        Arc::new(SharedCap { remote, key, owed: AtomicU64::new(0) })
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Enters under `limit` over all replicas; `None` when Redis is away (the caller falls back
    /// to its own count against [`Remote::share`]).
    pub async fn enter(self: &Arc<Self>, limit: u64) -> Option<Entered> {
        self.settle().await;
        let script = redis::Script::new(ENTER);
        let mut call = script.prepare_invoke();
        call.key(&self.key).key(self.remote.key("replicas", "live")).arg(self.remote.replica()).arg(limit);
        let (ok, current): (u8, u64) =
            self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await?;
        Some(match ok {
            1 => Entered::Yes(CapSlot { cap: self.clone() }),
            _ => Entered::Full { current },
        })
    }

    /// How many are in flight over all replicas (the live ones); `None` when Redis is away.
    pub async fn current(&self) -> Option<u64> {
        let key = self.key.clone();
        let counts: Vec<i64> = self
            .remote
            .call(|mut conn| async move { redis::cmd("HVALS").arg(key).query_async(&mut conn).await })
            .await?;
        Some(counts.into_iter().map(|n| n.max(0) as u64).sum())
    }

    /// Sends the leaves owed.
    async fn settle(&self) {
        let owed = self.owed.swap(0, Ordering::AcqRel);
        if owed == 0 {
            return;
        }
        let script = redis::Script::new(LEAVE);
        let mut call = script.prepare_invoke();
        call.key(&self.key).arg(self.remote.replica()).arg(owed);
        let done: Option<i64> = self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        if done.is_none() {
            self.owed.fetch_add(owed, Ordering::AcqRel);
        }
    }
}

/// A slot in a shared cap, given back (in the background) when dropped.
#[derive(Debug)]
pub struct CapSlot {
    cap: Arc<SharedCap>,
}

impl Drop for CapSlot {
    fn drop(&mut self) {
        self.cap.owed.fetch_add(1, Ordering::AcqRel);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let cap = self.cap.clone();
            rt.spawn(async move { cap.settle().await });
        }
    }
}
