//! A rate window that replicas share through Redis, exact across them, without a round trip per
//! request in the common case.
//!
//! Requests (`take`) are admitted from a *lease*: units this replica took from the shared
//! window at once, with one Lua script (`window.lua`) that sums the last 60 seconds, grants about
//! `(limit - used) / (replicas × 4)` (at least the request's `n`, at most what is left) and
//! records the grant in the current second's bucket. Far from the limit one round trip serves
//! many requests; near it the leases shrink to one request each, so every request asks. The sum
//! of grants never exceeds the limit, and a replica admits only what it was granted: exact.
//! A lease lives for the caller's second it was taken in; what is left of it is given back
//! (with the next grant, or by [`WindowSharing`]'s background sync once it is stale), so another
//! replica can use it. A window Redis said is full refuses locally until the next second.
//!
//! Counts after the fact (`add`: tokens) are counted locally and pushed in the background,
//! which also reads back the shared total that `check` compares against the limit.
//!
//! Every take and count is also made in the local window, so that when Redis is away
//! (`Remote::call` says `None`, at once while the breaker is open) the replica goes on with its
//! [`share`](Remote::share) of the limit against what it counted itself; what it admitted then
//! is pushed to Redis once Redis answers, so the shared window holds it too.
//!
//! An unbound window (no Redis configured) is the in-process window and one more branch.

use super::Remote;
use crate::{Full, RateWindow};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The script every shared window runs (leases and syncs alike).
static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("window.lua")));

/// How often the background sync pushes counts, reads totals back and returns stale leases.
pub const SYNC_EVERY: Duration = Duration::from_millis(50);
/// A lease not used up by then is given back by the background sync (the fast path stops using
/// it when the caller's second changes, which is sooner or the same).
pub const LEASE_LIFE: Duration = Duration::from_secs(1);

/// Units one replica takes from Redis at a time: a quarter of its fair part of what is left,
/// `(limit - used) / (replicas × 4)`, so the replicas together hold at most about a quarter of
/// the room at once and leave the rest to whoever needs it; at least `n` (the request must pass
/// on its own), at most what is left; 0 when even `n` does not fit. The script applies the same
/// rule inside Redis, where `used` is exact.
pub fn lease_size(limit: u64, used: u64, replicas: u64, n: u64) -> u64 {
    let room = limit.saturating_sub(used);
    if room < n {
        return 0;
    }
    (room / (replicas.max(1) * 4)).max(n).min(room)
}

/// A rate window ([`RateWindow`]) that is `W` alone until [`bind`](SharedWindow::bind)ed to
/// Redis, and shared with every replica bound to the same name after.
#[derive(Debug, Default)]
pub struct SharedWindow<W> {
    local: W,
    bound: OnceLock<Arc<Bound>>,
}

/// The packed (caller's second + 1, amount) of a lease or a known-full mark; 0 is none.
fn pack(second: u64, v: u64) -> u64 {
    ((second + 1) << 32) | v.min(u32::MAX as u64)
}

fn unpack(p: u64) -> (u64, u64) {
    (p >> 32, p & u32::MAX as u64)
}

/// The Redis side of one bound window.
#[derive(Debug)]
pub(crate) struct Bound {
    sharing: Arc<WindowSharing>,
    key: String,
    /// Units of the current lease left: (caller's second it is good for, units).
    lease: AtomicU64,
    /// Where the lease was taken: the bucket (Redis's second) and when, for giving it back.
    taken: Mutex<Option<(u64, Instant)>>,
    /// One refill at a time: the others wait for it and use the lease it brings.
    refill: tokio::sync::Mutex<()>,
    /// Redis said the window is full: (caller's second, retry-after).
    full: AtomicU64,
    /// What the shared window held at the last answer (leases granted included).
    total: AtomicU64,
    /// Counted here and not yet pushed to Redis.
    pending: AtomicU64,
    /// `check` read this window since the last sync: the sync reads its total back.
    read: AtomicBool,
    /// The limit `check` compares against, and the retry-after Redis computed for it.
    check_limit: AtomicU64,
    check_retry: AtomicU64,
}

impl Bound {
    /// Takes `n` from the lease if it is this second's and holds enough; the units left.
    fn use_lease(&self, n: u64, now: u64) -> Option<u64> {
        let mut cur = self.lease.load(Ordering::Acquire);
        loop {
            let (stamp, units) = unpack(cur);
            if stamp != now + 1 || units < n {
                return None;
            }
            match self.lease.compare_exchange_weak(cur, pack(now, units - n), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(units - n),
                Err(seen) => cur = seen,
            }
        }
    }

    fn known_full(&self, now: u64) -> Option<Full> {
        let (stamp, retry) = unpack(self.full.load(Ordering::Acquire));
        (stamp == now + 1).then_some(Full { retry_after: retry.max(1) })
    }

    /// Empties the lease and says what to give back: (bucket, units), if any.
    fn surrender(&self) -> (u64, u64) {
        let (_, units) = unpack(self.lease.swap(0, Ordering::AcqRel));
        let taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner).take();
        match taken {
            Some((second, _)) if units > 0 => (second, units),
            _ => (0, 0),
        }
    }

    /// The lease to give back if it is older than `life` and no refill is running: (bucket, units).
    fn stale(&self, life: Duration) -> (u64, u64) {
        let Ok(_refill) = self.refill.try_lock() else { return (0, 0) };
        let old = matches!(
            *self.taken.lock().unwrap_or_else(PoisonError::into_inner),
            Some((_, at)) if at.elapsed() >= life
        );
        if old {
            self.surrender()
        } else {
            (0, 0)
        }
    }
}

impl<W: RateWindow> SharedWindow<W> {
    /// Shares this window through `sharing`'s Redis under `name` (stable across replicas: a key's
    /// token hash, a deployment's id, …). A window binds once; later calls are ignored.
    pub fn bind(&self, sharing: &Arc<WindowSharing>, name: &str) {
        if self.bound.get().is_some() {
            return;
        }
        // The local window must count from now on (an in-process `Window` counts only once
        // its limit was looked at), for the fallback when Redis is away.
        let _ = self.local.check(u64::MAX, 0);
        let bound = Arc::new(Bound {
            sharing: sharing.clone(),
            key: sharing.remote.key("window", name),
            lease: AtomicU64::new(0),
            taken: Mutex::new(None),
            refill: tokio::sync::Mutex::new(()),
            full: AtomicU64::new(0),
            total: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            read: AtomicBool::new(false),
            check_limit: AtomicU64::new(0),
            check_retry: AtomicU64::new(0),
        });
        if self.bound.set(bound.clone()).is_ok() {
            sharing.windows.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::downgrade(&bound));
        }
    }

    /// Whether this window is shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.bound.get().is_some()
    }

    /// The replica's share of the limit, counted here: Redis is away (or asked from a sync
    /// caller with no lease in hand). What passes is pushed to Redis once it answers.
    fn fallback(&self, b: &Bound, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let left = self.local.try_take(n, b.sharing.remote.share(limit), now)?;
        b.pending.fetch_add(n, Ordering::Relaxed);
        Ok(left)
    }

    fn leased(&self, b: &Bound, n: u64, now: u64) -> Option<u64> {
        let units = b.use_lease(n, now)?;
        self.local.add(n, now);
        Some(units)
    }

    /// The slow path: asks Redis for a lease (giving the old one's rest back in the same call).
    async fn refill(&self, b: &Bound, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let _one = b.refill.lock().await;
        // A refill that ran while this one waited may have brought enough for it too.
        if let Some(units) = self.leased(b, n, now) {
            return Ok(self.left(b, limit, units));
        }
        if let Some(full) = b.known_full(now) {
            return Err(full);
        }
        let (back_second, back) = b.surrender();
        let sharing = &b.sharing;
        let replicas = sharing.remote.replicas();
        sharing.round_trips.fetch_add(1, Ordering::Relaxed);
        let key = &b.key;
        let answer: Option<(i64, i64, i64, i64)> = sharing
            .remote
            .call(|mut c| async move {
                SCRIPT
                    .key(key)
                    .arg("lease")
                    .arg(back)
                    .arg(back_second)
                    .arg(limit)
                    .arg(n)
                    .arg(replicas)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        let Some((granted, used, second, retry)) = answer else {
            return self.fallback(b, n, limit, now);
        };
        let (granted, used) = (granted.max(0) as u64, used.max(0) as u64);
        b.total.store(used, Ordering::Relaxed);
        if granted < n {
            b.full.store(pack(now, retry.max(1) as u64), Ordering::Release);
            return Err(Full { retry_after: retry.max(1) as u64 });
        }
        *b.taken.lock().unwrap_or_else(PoisonError::into_inner) = Some((second.max(0) as u64, Instant::now()));
        b.lease.store(pack(now, granted - n), Ordering::Release);
        self.local.add(n, now);
        Ok(self.left(b, limit, granted - n))
    }

    /// What is left for the `x-ratelimit-remaining-*` headers: the room Redis saw after the last
    /// grant, and this replica's lease.
    fn left(&self, b: &Bound, limit: u64, lease: u64) -> u64 {
        limit.saturating_sub(b.total.load(Ordering::Relaxed)) + lease
    }
}

impl<W: RateWindow> RateWindow for SharedWindow<W> {
    /// From the lease when there is one; otherwise, a sync caller cannot wait for Redis, and gets
    /// the replica's share counted locally. Exact callers use [`take`](RateWindow::take).
    fn try_take(&self, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let Some(b) = self.bound.get() else { return self.local.try_take(n, limit, now) };
        if let Some(units) = self.leased(b, n, now) {
            return Ok(self.left(b, limit, units));
        }
        if let Some(full) = b.known_full(now) {
            return Err(full);
        }
        self.fallback(b, n, limit, now)
    }

    async fn take(&self, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let Some(b) = self.bound.get() else { return self.local.try_take(n, limit, now) };
        if let Some(units) = self.leased(b, n, now) {
            return Ok(self.left(b, limit, units));
        }
        if let Some(full) = b.known_full(now) {
            return Err(full);
        }
        if !b.sharing.remote.healthy() {
            // The background sync probes Redis; requests do not wait on the probe.
            return self.fallback(b, n, limit, now);
        }
        self.refill(b, n, limit, now).await
    }

    /// Back into the lease when it is still this second's (another request uses it); a lease
    /// already given back keeps the unit counted in Redis until its bucket leaves the window
    /// (refusing a little early, never admitting too much).
    fn give_back(&self, n: u64, now: u64) {
        self.local.give_back(n, now);
        let Some(b) = self.bound.get() else { return };
        let _ = b.lease.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
            let (stamp, units) = unpack(p);
            (stamp == now + 1).then(|| pack(now, units + n))
        });
    }

    /// Against the shared total the background sync last read (within [`SYNC_EVERY`]), plus
    /// what this replica counted since; the replica's share when Redis is away.
    fn check(&self, limit: u64, now: u64) -> Result<u64, Full> {
        let Some(b) = self.bound.get() else { return self.local.check(limit, now) };
        if !b.sharing.remote.healthy() {
            return self.local.check(b.sharing.remote.share(limit), now);
        }
        b.check_limit.store(limit, Ordering::Relaxed);
        b.read.store(true, Ordering::Relaxed);
        let used = b.total.load(Ordering::Relaxed) + b.pending.load(Ordering::Relaxed);
        if used >= limit {
            return Err(Full { retry_after: b.check_retry.load(Ordering::Relaxed).clamp(1, 60) });
        }
        Ok(limit - used)
    }

    fn add(&self, n: u64, now: u64) {
        self.local.add(n, now);
        if let Some(b) = self.bound.get() {
            b.pending.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The shared total as last known (leases count whole) while Redis answers; the local count
    /// when it does not. Reading marks the window for the background sync to refresh its total
    /// (a window that looks full to a strategy is skipped, so nothing else would ask again).
    fn used(&self, now: u64) -> u64 {
        match self.bound.get() {
            Some(b) if b.sharing.remote.healthy() => {
                if !b.read.load(Ordering::Relaxed) {
                    b.read.store(true, Ordering::Relaxed);
                }
                b.total.load(Ordering::Relaxed) + b.pending.load(Ordering::Relaxed)
            }
            _ => self.local.used(now),
        }
    }
}

/// The windows bound to one Redis, and their background sync: every [`SYNC_EVERY`] one
/// pipelined round trip pushes what each counted, returns stale leases and reads back the totals
/// `check` needs.
#[derive(Debug)]
pub struct WindowSharing {
    remote: Arc<Remote>,
    windows: Mutex<Vec<Weak<Bound>>>,
    /// Whether Redis has the script (a pipeline cannot load it on a miss as a single call does).
    loaded: AtomicBool,
    round_trips: AtomicU64,
}

impl WindowSharing {
    pub fn new(remote: Arc<Remote>) -> Arc<WindowSharing> {
        Arc::new(WindowSharing {
            remote,
            windows: Mutex::default(),
            loaded: AtomicBool::new(false),
            round_trips: AtomicU64::new(0),
        })
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Calls made to Redis for windows so far (leases and syncs), for tests and metrics.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Runs [`sync`](Self::sync) every [`SYNC_EVERY`] until the last `Arc` is dropped.
    pub fn spawn(self: &Arc<Self>) {
        super::every(SYNC_EVERY, self, |sharing| async move { sharing.sync(LEASE_LIFE).await });
    }

    /// One sync: gives back leases older than `stale`, pushes counts, reads totals; one round
    /// trip for all windows (none when there is nothing to do). Counts that could not be pushed
    /// (Redis away) are kept for the next sync.
    pub async fn sync(&self, stale: Duration) {
        let windows: Vec<Arc<Bound>> = {
            let mut list = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        let mut pipe = redis::pipe();
        if !self.loaded.load(Ordering::Relaxed) {
            pipe.cmd("SCRIPT").arg("LOAD").arg(include_str!("window.lua")).ignore();
        }
        let mut jobs = Vec::new();
        for b in windows {
            let (back_second, back) = b.stale(stale);
            let delta = b.pending.swap(0, Ordering::Relaxed);
            let read = b.read.swap(false, Ordering::Relaxed);
            if back == 0 && delta == 0 && !read {
                continue;
            }
            pipe.cmd("EVALSHA")
                .arg(SCRIPT.get_hash())
                .arg(1)
                .arg(&b.key)
                .arg("sync")
                .arg(back)
                .arg(back_second)
                .arg(b.check_limit.load(Ordering::Relaxed))
                .arg(delta);
            jobs.push((b, delta, read));
        }
        if jobs.is_empty() {
            if !self.remote.healthy() {
                // Nothing to push, but someone must find out when Redis is back.
                let _: Option<String> =
                    self.remote.call(|mut c| async move { redis::cmd("PING").query_async(&mut c).await }).await;
            }
            return;
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let answers: Option<Vec<(i64, i64, i64, i64)>> =
            self.remote.call(|mut c| async move { pipe.query_async(&mut c).await }).await;
        match answers {
            Some(answers) => {
                self.loaded.store(true, Ordering::Relaxed);
                for ((b, _, _), (_, used, _, retry)) in jobs.iter().zip(answers) {
                    b.total.store(used.max(0) as u64, Ordering::Relaxed);
                    b.check_retry.store(retry.max(0) as u64, Ordering::Relaxed);
                }
            }
            None => {
                // Redis may have restarted without the script; load it with the next sync.
                self.loaded.store(false, Ordering::Relaxed);
                for (b, delta, read) in jobs {
                    b.pending.fetch_add(delta, Ordering::Relaxed);
                    if read {
                        b.read.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lease_size;

    #[test]
    fn leases_are_a_quarter_of_a_fair_part_of_the_room() {
        // Far from the limit: one round trip serves many requests.
        assert_eq!(lease_size(10_000, 0, 4, 1), 625);
        assert_eq!(lease_size(10_000, 0, 1, 1), 2_500);
        assert_eq!(lease_size(10_000, 9_000, 4, 1), 62);
        // Near the limit every request asks for itself alone.
        assert_eq!(lease_size(30, 20, 4, 1), 1);
        assert_eq!(lease_size(30, 29, 4, 1), 1);
        // At least the request's n, at most what is left, nothing when n does not fit.
        assert_eq!(lease_size(100, 90, 4, 5), 5);
        assert_eq!(lease_size(100, 97, 4, 5), 0);
        assert_eq!(lease_size(100, 100, 4, 1), 0);
        assert_eq!(lease_size(100, 150, 4, 1), 0, "over the limit (a fallback's counts pushed back)");
        assert_eq!(lease_size(7, 0, 1, 7), 7);
        // No replica count (never heard of) counts as one.
        assert_eq!(lease_size(100, 0, 0, 1), 25);
    }
}
