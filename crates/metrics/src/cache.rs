//! Per-thread caches from per-request label values to resolved metric handles.
//!
//! prometheus-client's `Family::get_or_create` takes the family's `RwLock` and needs an owned
//! label set (a dozen `String`s) for every lookup. On the request path that would be a lock all
//! threads share plus a dozen allocations per metric per request. Instead each thread keeps a map
//! from the few values that vary per request (model, status, route, end user, the caller's id, …)
//! to the handles
//! (`Arc`-backed counters and histograms) that `get_or_create` returned the first time. A hit
//! hashes borrowed `&str`s and compares them: no lock (the `RefCell` is thread-local) and no
//! allocation. A miss falls back to `get_or_create` once per thread per label set.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use prometheus_client::metrics::counter::Counter;

use crate::answers::CacheHandles;
use crate::budget::BudgetHandles;
use crate::deployment::{AttemptHandles, KeyedHandles};
use crate::request::RequestHandles;

/// Entries one thread keeps per cache before it starts over. Client-chosen values (`user`, the
/// User-Agent) could otherwise grow it without bound; starting over only costs re-resolving the
/// live label sets through `get_or_create`.
const MAX_ENTRIES: usize = 4096;

/// Identifies one `Metrics` instance in the thread-local caches, so two registries in the same
/// process (tests, or a reload) never hand each other's series out. `alive` lets a thread drop
/// the caches of a registry that is gone.
#[derive(Debug)]
pub(crate) struct Owner {
    id: u64,
    alive: Arc<()>,
}

impl Owner {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Owner { id: NEXT.fetch_add(1, Ordering::Relaxed), alive: Arc::new(()) }
    }
}

/// The caches one thread holds for one `Metrics`.
pub(crate) struct ThreadCaches {
    owner: u64,
    alive: Weak<()>,
    pub(crate) requests: LabelCache<RequestHandles>,
    pub(crate) attempts: LabelCache<AttemptHandles>,
    /// Per (deployment, caller) for callers other than none.
    pub(crate) keyed: LabelCache<KeyedHandles>,
    pub(crate) failures: LabelCache<Counter>,
    pub(crate) fallbacks: LabelCache<Counter>,
    pub(crate) budgets: LabelCache<BudgetHandles>,
    pub(crate) answers: LabelCache<CacheHandles>,
}

thread_local! {
    static CACHES: RefCell<Vec<ThreadCaches>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's caches for `owner`. `None` when the thread-local is unusable (the
/// thread is being torn down, or `f` re-entered): the caller then resolves handles directly.
pub(crate) fn with_caches<R>(owner: &Owner, f: impl FnOnce(&mut ThreadCaches) -> R) -> Option<R> {
    CACHES
        .try_with(|cell| {
            let mut all = cell.try_borrow_mut().ok()?;
            let i = match all.iter().position(|c| c.owner == owner.id) {
                Some(i) => i,
                None => {
                    all.retain(|c| c.alive.strong_count() > 0);
                    all.push(ThreadCaches {
                        owner: owner.id,
                        alive: Arc::downgrade(&owner.alive),
                        requests: LabelCache::default(),
                        attempts: LabelCache::default(),
                        keyed: LabelCache::default(),
                        failures: LabelCache::default(),
                        fallbacks: LabelCache::default(),
                        budgets: LabelCache::default(),
                        answers: LabelCache::default(),
                    });
                    all.len() - 1
                }
            };
            Some(f(&mut all[i]))
        })
        .ok()
        .flatten()
}

/// A map keyed by a number (a caller id and a deployment, status, … packed by
/// [`cache_key`](crate::caller::cache_key)) plus a list of strings, looked up with borrowed `&str`s.
///
/// std's `HashMap` can only be queried by a `Borrow` of its key type, and a tuple of `String`s
/// does not borrow as a tuple of `&str`s. So the map is keyed by the key's hash and each slot
/// holds the (rarely more than one) entries with that hash, compared field by field.
pub(crate) struct LabelCache<V> {
    hasher: foldhash::quality::RandomState,
    slots: HashMap<u64, Vec<Entry<V>>, BuildHasherDefault<PassThrough>>,
    len: usize,
}

struct Entry<V> {
    num: u128,
    strs: Box<[Box<str>]>,
    value: V,
}

impl<V> Default for LabelCache<V> {
    fn default() -> Self {
        LabelCache {
            // Randomly seeded: the strings come from clients, so the hash must not be predictable.
            // foldhash rather than std's SipHash, a measurable share of a request here
            // (the cache holds at most `MAX_ENTRIES`, which also bounds what collisions can cost).
            hasher: foldhash::quality::RandomState::default(),
            slots: HashMap::default(),
            len: 0,
        }
    }
}

impl<V> LabelCache<V> {
    /// The value cached for (`num`, `strs`), made by `make` on the first lookup.
    pub(crate) fn get_or_insert_with(&mut self, num: u128, strs: &[&str], make: impl FnOnce() -> V) -> &V {
        let hash = self.hasher.hash_one((num, strs));
        let found = self.slots.get(&hash).and_then(|slot| {
            slot.iter().position(|e| {
                e.num == num && e.strs.len() == strs.len() && e.strs.iter().zip(strs).all(|(a, b)| same(a, b))
            })
        });
        if let Some(i) = found {
            return &self.slots[&hash][i].value;
        }
        if self.len >= MAX_ENTRIES {
            self.slots.clear();
            self.len = 0;
        }
        let slot = self.slots.entry(hash).or_default();
        slot.push(Entry { num, strs: strs.iter().map(|s| Box::from(*s)).collect(), value: make() });
        self.len += 1;
        &slot[slot.len() - 1].value
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

/// String equality without a call into libc: these labels are short (a model name, a route, a
/// User-Agent), where `memcmp`'s call and dispatch cost more than the comparison and dominated a
/// cache hit in profiles.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        // `chunks_exact(8)` yields 8-byte slices, so the conversions cannot fail.
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        if x != y {
            return false;
        }
    }
    ca.remainder().iter().zip(cb.remainder()).all(|(x, y)| x == y)
}

/// The slot map's keys are already foldhash outputs; hashing them again would be wasted work.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else in for correctness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_return_the_first_value() {
        let mut c = LabelCache::default();
        let mut made = 0;
        for _ in 0..3 {
            let v = *c.get_or_insert_with(7, &["a", "b"], || {
                made += 1;
                made
            });
            assert_eq!(v, 1);
        }
        assert_eq!(made, 1);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn keys_differ_by_number_and_by_string_boundaries() {
        let mut c = LabelCache::default();
        assert_eq!(*c.get_or_insert_with(1, &["ab", "c"], || 1), 1);
        assert_eq!(*c.get_or_insert_with(1, &["a", "bc"], || 2), 2);
        assert_eq!(*c.get_or_insert_with(2, &["ab", "c"], || 3), 3);
        assert_eq!(*c.get_or_insert_with(1, &["ab", "c"], || 9), 1);
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("", ""));
        assert!(same("python-requests/2.32", "python-requests/2.32"));
        assert!(!same("python-requests/2.32", "python-requests/2.31"));
        assert!(!same("abcdefgh1", "abcdefgh2"));
        assert!(!same("abcdefgX", "abcdefgh"));
        assert!(!same("abc", "abcd"));
    }

    #[test]
    fn starts_over_when_full() {
        let mut c = LabelCache::default();
        for i in 0..(MAX_ENTRIES as u128 + 10) {
            c.get_or_insert_with(i, &[], || i);
        }
        assert!(c.len() <= MAX_ENTRIES);
        assert_eq!(*c.get_or_insert_with(MAX_ENTRIES as u128 + 9, &[], || 0), MAX_ENTRIES as u128 + 9);
    }
}
