//! The pool's idle HTTP/1 connections, per upstream, in shards kept by thread.
//!
//! One lock over every idle connection was taken twice by every proxied request (checkout and
//! return), by every runtime thread: a lock all cores contend for. Here each thread returns
//! connections to its own shard and checks out from it first, so the lock it takes is one no
//! other thread holds unless it is short of connections: it then takes one from another shard
//! before connecting, so a warm pool is reused whichever thread returned the connection.
//!
//! Within a shard each upstream's list is last in, first out: the most recently used connection
//! is the least likely to have been closed by the upstream's idle timeout.

use rustc_hash::FxHashMap;
use std::cell::Cell;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most shards: past this many cores, threads share shards.
const MAX_SHARDS: usize = 64;

/// Idle connections `C` by upstream `K`.
pub(super) struct Idle<K, C> {
    shards: Box<[Shard<K, C>]>,
    /// When the pool was made: sweeps are timed from it.
    born: Instant,
    /// Milliseconds after `born` when the next return sweeps every shard of connections past
    /// the idle timeout. Read without a lock on each return; only the sweeping thread writes it.
    next_sweep_ms: AtomicU64,
}

/// One thread's share, aligned so that two shards never share a cache line.
#[repr(align(128))]
struct Shard<K, C> {
    lists: Mutex<FxHashMap<K, Vec<(C, Instant)>>>,
    /// How many connections `lists` holds, readable without the lock: a thread short of
    /// connections skips the shards that have none instead of locking each.
    held: AtomicUsize,
}

impl<K: Eq + Hash, C> Idle<K, C> {
    /// As many shards as the machine has cores (the runtime's threads).
    pub(super) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_shards(cores.clamp(1, MAX_SHARDS))
    }

    fn with_shards(count: usize) -> Self {
        let shards = (0..count.max(1))
            .map(|_| Shard { lists: Mutex::new(FxHashMap::default()), held: AtomicUsize::new(0) })
            .collect();
        Idle { shards, born: Instant::now(), next_sweep_ms: AtomicU64::new(0) }
    }

    /// The most recently returned connection for `key` and when it was returned: from this
    /// thread's shard, else from another's.
    pub(super) fn pop(&self, key: &K) -> Option<(C, Instant)> {
        self.pop_from(home(), key)
    }

    fn pop_from(&self, home: usize, key: &K) -> Option<(C, Instant)> {
        let count = self.shards.len();
        (0..count).find_map(|i| {
            let shard = &self.shards[(home + i) % count];
            if i > 0 && shard.held.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut lists = shard.lock();
            let found = lists.get_mut(key)?.pop()?;
            shard.held.fetch_sub(1, Ordering::Relaxed);
            Some(found)
        })
    }

    /// Keeps `conn` for `key` in this thread's shard; every `sweep_every`, drops from all shards
    /// the connections idle for `timeout` or longer, and lets `also` sweep what else the pool
    /// holds.
    pub(super) fn put(
        &self,
        key: K,
        conn: C,
        now: Instant,
        timeout: Duration,
        sweep_every: Duration,
        also: impl FnOnce(),
    ) {
        self.put_into(home(), key, conn, now);
        let at = u64::try_from(now.saturating_duration_since(self.born).as_millis()).unwrap_or(u64::MAX);
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        let next = at.saturating_add(u64::try_from(sweep_every.as_millis()).unwrap_or(u64::MAX));
        // One thread sweeps; the others carry on.
        if at >= due && self.next_sweep_ms.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.sweep(now, timeout);
            also();
        }
    }

    fn put_into(&self, home: usize, key: K, conn: C, now: Instant) {
        let shard = &self.shards[home % self.shards.len()];
        shard.lock().entry(key).or_default().push((conn, now));
        shard.held.fetch_add(1, Ordering::Relaxed);
    }

    fn sweep(&self, now: Instant, timeout: Duration) {
        for shard in &self.shards {
            let mut lists = shard.lock();
            let mut held = 0;
            lists.retain(|_, list| {
                list.retain(|(_, since)| now.saturating_duration_since(*since) < timeout);
                held += list.len();
                !list.is_empty()
            });
            shard.held.store(held, Ordering::Relaxed);
        }
    }

    /// Connections held for `key` in all shards (tests).
    #[cfg(test)]
    pub(super) fn count(&self, key: &K) -> usize {
        self.shards.iter().map(|s| s.lock().get(key).map_or(0, Vec::len)).sum()
    }
}

impl<K, C> Shard<K, C> {
    /// A panic while a list was held leaves the lists as they were between two operations: the
    /// data is taken back rather than every later request failing on a poisoned lock.
    fn lock(&self) -> MutexGuard<'_, FxHashMap<K, Vec<(C, Instant)>>> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }
}

thread_local! {
    /// This thread's shard (modulo the shard count), given out in turn as threads first use a
    /// pool, so the runtime's threads spread over the shards.
    static HOME: Cell<Option<usize>> = const { Cell::new(None) };
}

fn home() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    HOME.with(|home| {
        home.get().unwrap_or_else(|| {
            let next = NEXT.fetch_add(1, Ordering::Relaxed);
            home.set(Some(next));
            next
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_most_recently_returned_connection_goes_out_first() {
        let idle = Idle::with_shards(4);
        let t = Instant::now();
        idle.put_into(1, "a", 1, t);
        idle.put_into(1, "a", 2, t);
        idle.put_into(1, "b", 3, t);
        assert_eq!(idle.pop_from(1, &"a").map(|c| c.0), Some(2));
        assert_eq!(idle.pop_from(1, &"a").map(|c| c.0), Some(1));
        assert_eq!(idle.pop_from(1, &"a"), None);
        assert_eq!(idle.count(&"b"), 1);
    }

    #[test]
    fn a_thread_out_of_connections_takes_one_from_another_shard() {
        let idle = Idle::with_shards(4);
        let t = Instant::now();
        idle.put_into(2, "a", 7, t);
        idle.put_into(3, "a", 8, t);
        assert_eq!(idle.pop_from(0, &"a").map(|c| c.0), Some(7), "the next shard along first");
        assert_eq!(idle.pop_from(1, &"a").map(|c| c.0), Some(8));
        assert_eq!(idle.pop_from(0, &"a"), None);
        // One returned on another thread is found here.
        let idle = std::sync::Arc::new(Idle::with_shards(4));
        let there = idle.clone();
        std::thread::spawn(move || there.put("a", 9, Instant::now(), MINUTE, MINUTE, || {})).join().unwrap();
        assert_eq!(idle.pop(&"a").map(|c| c.0), Some(9));
    }

    #[test]
    fn a_thread_does_not_wait_for_a_shard_another_thread_holds() {
        // With one lock for all connections, the checkout below would wait for the held shard
        // for as long as it is held.
        let idle = std::sync::Arc::new(Idle::with_shards(4));
        let held = idle.shards[0].lock();
        let (done, finished) = mpsc::channel();
        let other = idle.clone();
        std::thread::spawn(move || {
            other.put_into(1, "a", 1, Instant::now());
            let _ = done.send(other.pop_from(1, &"a").map(|c| c.0));
        });
        assert_eq!(finished.recv_timeout(Duration::from_secs(10)), Ok(Some(1)));
        drop(held);
    }

    #[test]
    fn connections_past_the_idle_timeout_are_swept_from_every_shard() {
        let idle = Idle::with_shards(2);
        let t = Instant::now();
        idle.put_into(0, "a", 1, t);
        idle.put_into(1, "b", 2, t);
        let later = t + MINUTE;
        let mut swept_h2 = 0;
        idle.put_into(0, "c", 3, later);
        idle.put("c", 4, later, MINUTE, MINUTE, || swept_h2 += 1);
        assert_eq!((idle.count(&"a"), idle.count(&"b"), idle.count(&"c")), (0, 0, 2));
        assert_eq!(swept_h2, 1);
        // Not due again within `sweep_every`.
        idle.put_into(0, "d", 5, t);
        idle.put("c", 6, later + MINUTE / 2, MINUTE, MINUTE, || swept_h2 += 1);
        assert_eq!((idle.count(&"d"), swept_h2), (1, 1));
        assert_eq!(idle.shards.iter().map(|s| s.held.load(Ordering::Relaxed)).sum::<usize>(), 4);
    }
}
