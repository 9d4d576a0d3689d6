//! In-flight caps shared through Redis (`max_parallel_requests` of a key, user or team): the
//! requests in flight on one spender, counted over every replica.
//!
//! The count is a hash, `prefix + "inflight:" + kind:id`, with one field per replica holding
//! that replica's requests in flight. Entering runs a script that sums the fields of the live
//! replicas (dropping those of replicas gone from the heartbeat's set, so a replica that died
//! does not hold its slots forever) and takes a slot if the sum is under the cap; leaving takes
//! it back. This costs a round trip per request, paid only by spenders that set such a cap (not
//! the common case): an in-flight count cannot be leased locally without giving up exactness.
//!
//! A call that gets no answer in time may or may not have run in Redis: sending its change again
//! could take a slot back twice (the cap overshot), not sending it could keep a slot forever. So
//! after such a call the replica's field is repaired: set to the slots this replica holds, once
//! no other call of its own on the cap is in flight (they hold a shared turn, the repair an
//! exclusive one; in the common case nothing waits).

use super::Remote;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// KEYS: the hash. ARGV: me, the slots this replica holds.
const REPAIR: &str = r"
if tonumber(ARGV[2]) > 0 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
";

/// One spender's shared in-flight count, as this replica takes part in it.
#[derive(Debug)]
pub struct SharedCap {
    remote: Arc<Remote>,
    key: String,
    /// Slots this replica was given, ever (counted once Redis said so).
    entered: AtomicU64,
    /// Slots this replica gave back, ever (counted when dropped).
    left: AtomicU64,
    /// Of `left`, those Redis has been sent (or a repair accounted for).
    left_sent: AtomicU64,
    /// A call got no answer: the field must be repaired before the next change.
    unsure: AtomicBool,
    /// Shared by every enter and leave; exclusive for a repair.
    turn: tokio::sync::RwLock<()>,
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
        Arc::new(SharedCap {
            remote,
            key,
            entered: AtomicU64::new(0),
            left: AtomicU64::new(0),
            left_sent: AtomicU64::new(0),
            unsure: AtomicBool::new(false),
            turn: tokio::sync::RwLock::new(()),
        })
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Enters under `limit` over all replicas; `None` when Redis is away (the caller falls back
    /// to its own count against [`Remote::share`]).
    pub async fn enter(self: &Arc<Self>, limit: u64) -> Option<Entered> {
        self.repair_if_unsure().await?;
        let _turn = self.turn.read().await;
        self.send_leaves().await;
        let script = redis::Script::new(ENTER);
        let mut call = script.prepare_invoke();
        call.key(&self.key).key(self.remote.key("replicas", "live")).arg(self.remote.replica()).arg(limit);
        let answer: Option<(u8, u64)> =
            self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        let Some((ok, current)) = answer else {
            self.unsure.store(true, Ordering::Release);
            return None;
        };
        Some(match ok {
            1 => {
                self.entered.fetch_add(1, Ordering::AcqRel);
                Entered::Yes(CapSlot { cap: self.clone() })
            }
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

    /// Sends the leaves not yet sent (each claimed by one call only). Called within a turn.
    async fn send_leaves(&self) {
        let left = self.left.load(Ordering::Acquire);
        let owed = left.saturating_sub(self.left_sent.fetch_max(left, Ordering::AcqRel));
        if owed == 0 {
            return;
        }
        let script = redis::Script::new(LEAVE);
        let mut call = script.prepare_invoke();
        call.key(&self.key).arg(self.remote.replica()).arg(owed);
        let done: Option<i64> = self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        if done.is_none() {
            self.unsure.store(true, Ordering::Release);
        }
    }

    /// Gives slots back: sends the leaves, repairing the field first if a call went unanswered.
    async fn settle(&self) {
        if self.repair_if_unsure().await.is_none() {
            return;
        }
        let _turn = self.turn.read().await;
        self.send_leaves().await;
    }

    /// After a call that got no answer: sets this replica's field to the slots it holds, alone
    /// (no enter or leave of its own in flight). `None`: Redis is still away (the field stays
    /// unsure, and the caller falls back as for any call Redis did not answer).
    async fn repair_if_unsure(&self) -> Option<()> {
        if !self.unsure.load(Ordering::Acquire) {
            return Some(());
        }
        let _alone = self.turn.write().await;
        if !self.unsure.load(Ordering::Acquire) {
            return Some(());
        }
        // No enter can be counted while this turn is held; a slot dropped after `left` is read
        // is sent as a leave after the repair.
        let left = self.left.load(Ordering::Acquire);
        let held = self.entered.load(Ordering::Acquire).saturating_sub(left);
        let script = redis::Script::new(REPAIR);
        let mut call = script.prepare_invoke();
        call.key(&self.key).arg(self.remote.replica()).arg(held);
        let done: Option<i64> = self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        done?;
        self.left_sent.fetch_max(left, Ordering::AcqRel);
        self.unsure.store(false, Ordering::Release);
        Some(())
    }
}

/// A slot in a shared cap, given back (in the background) when dropped.
#[derive(Debug)]
pub struct CapSlot {
    cap: Arc<SharedCap>,
}

impl Drop for CapSlot {
    fn drop(&mut self) {
        self.cap.left.fetch_add(1, Ordering::AcqRel);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let cap = self.cap.clone();
            rt.spawn(async move { cap.settle().await });
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against the real Redis on 127.0.0.1:6379, with an answer "lost" by hand: the call ran in
    //! Redis, and the replica marks the field unsure as it does when a call times out.
    use super::*;
    use crate::remote::{RemoteConfig, DEFAULT_OP_TIMEOUT};

    async fn cap(test: &str) -> Arc<SharedCap> {
        let cfg = RemoteConfig {
            url: "redis://127.0.0.1:6379".into(),
            prefix: format!("sluice-test:cap-{test}:{}:", std::process::id()),
            op_timeout: DEFAULT_OP_TIMEOUT,
        };
        let remote = Remote::connect(&cfg).await.unwrap();
        remote.heartbeat().await;
        SharedCap::new(remote, "key", "k")
    }

    async fn slot(cap: &Arc<SharedCap>) -> CapSlot {
        match cap.enter(100).await {
            Some(Entered::Yes(slot)) => slot,
            other => panic!("not entered: {other:?}"),
        }
    }

    /// A leave that ran but whose answer never came is not sent again: the count stays the
    /// slots held (sent again, one slot would be given back twice and the cap overshot).
    #[tokio::test]
    async fn a_leave_without_an_answer_is_not_given_back_twice() {
        let cap = cap("leave").await;
        let (a, _b) = (slot(&cap).await, slot(&cap).await);
        std::mem::forget(a); // its leave is sent by hand below
        cap.left.fetch_add(1, Ordering::AcqRel);
        cap.send_leaves().await;
        cap.unsure.store(true, Ordering::Release);
        let _c = slot(&cap).await;
        assert_eq!(cap.current().await, Some(2), "two slots held: _b and _c");
    }

    /// An enter that ran but whose answer never came does not keep its slot forever: the next
    /// call sets the count back to the slots held.
    #[tokio::test]
    async fn an_enter_without_an_answer_does_not_keep_its_slot() {
        let cap = cap("enter").await;
        let a = slot(&cap).await;
        let key = cap.key.clone();
        let me = cap.remote.replica().to_string();
        let _: Option<i64> = cap
            .remote
            .call(|mut c| async move { redis::cmd("HINCRBY").arg(key).arg(me).arg(1).query_async(&mut c).await })
            .await;
        cap.unsure.store(true, Ordering::Release);
        assert_eq!(cap.current().await, Some(2));
        drop(a);
        cap.settle().await;
        assert_eq!(cap.current().await, Some(0), "no slot held");
    }
}
