//! The in-process store (`type: local`): least recently used entries go first, bounded in
//! entries and in bytes, each entry dropped when its time to live is over.
//!
//! Sharded by key so that requests on different threads rarely meet on one lock (the request
//! path takes no global lock); each shard holds its part of both bounds.

use crate::entry::Entry;
use lru::LruCache;
use std::sync::Mutex;

const SHARDS: usize = 16;

struct Stored {
    entry: Entry,
    /// Unix milliseconds after which the entry is gone; `u64::MAX`: kept until evicted.
    expires_ms: u64,
}

struct Shard {
    entries: LruCache<String, Stored>,
    bytes: usize,
}

pub(crate) struct Local {
    shards: Box<[Mutex<Shard>]>,
    max_entries: usize,
    max_bytes: usize,
}

impl Local {
    /// At most `max_entries` entries and `max_bytes` bytes in all (each at least one per shard).
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Local {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard { entries: LruCache::unbounded(), bytes: 0 })).collect();
        Local { shards, max_entries: max_entries.div_ceil(SHARDS).max(1), max_bytes: max_bytes.div_ceil(SHARDS).max(1) }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        // The key ends in hex digits of a SHA-256: its last byte spreads keys evenly.
        let i = key.as_bytes().last().copied().unwrap_or(0) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &str, now_ms: u64) -> Option<Entry> {
        let mut shard = self.shard(key);
        match shard.entries.get(key) {
            Some(s) if s.expires_ms > now_ms => return Some(s.entry.clone()),
            Some(_) => {}
            None => return None,
        }
        if let Some(gone) = shard.entries.pop(key) {
            shard.bytes -= gone.entry.size() + key.len();
        }
        None
    }

    pub(crate) fn put(&self, key: String, entry: Entry, expires_ms: u64) {
        let size = entry.size() + key.len();
        if size > self.max_bytes {
            return;
        }
        let mut shard = self.shard(&key);
        if let Some(old) = shard.entries.put(key.clone(), Stored { entry, expires_ms }) {
            shard.bytes -= old.entry.size() + key.len();
        }
        shard.bytes += size;
        while shard.entries.len() > self.max_entries || shard.bytes > self.max_bytes {
            let Some((k, gone)) = shard.entries.pop_lru() else { break };
            shard.bytes -= gone.entry.size() + k.len();
        }
    }

    pub(crate) fn delete(&self, key: &str) -> bool {
        let mut shard = self.shard(key);
        match shard.entries.pop(key) {
            Some(gone) => {
                shard.bytes -= gone.entry.size() + key.len();
                true
            }
            None => false,
        }
    }

    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            let mut shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            shard.entries.clear();
            shard.bytes = 0;
        }
    }

    /// (entries, bytes) held now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (n + shard.entries.len(), b + shard.bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Shape;
    use bytes::Bytes;

    fn entry(n: usize) -> Entry {
        Entry { created_ms: 1, shape: Shape::Chat, answer: Bytes::from(vec![b'x'; n]) }
    }

    /// Keys that all land in one shard (same last byte).
    fn key(i: usize) -> String {
        format!("{i:08}a")
    }

    #[test]
    fn expired_entries_are_gone() {
        let l = Local::new(100, 1 << 20);
        l.put(key(1), entry(10), 1_000);
        assert!(l.get(&key(1), 999).is_some());
        assert!(l.get(&key(1), 1_000).is_none());
        assert_eq!(l.usage(), (0, 0));
    }

    #[test]
    fn the_least_recently_used_go_first_within_both_bounds() {
        // Two entries a shard.
        let l = Local::new(2 * SHARDS, 1 << 20);
        l.put(key(1), entry(10), u64::MAX);
        l.put(key(2), entry(10), u64::MAX);
        assert!(l.get(&key(1), 0).is_some());
        l.put(key(3), entry(10), u64::MAX);
        assert!(l.get(&key(2), 0).is_none(), "the least recently used went");
        assert!(l.get(&key(1), 0).is_some() && l.get(&key(3), 0).is_some());

        // 100 bytes a shard: the third 40-byte answer pushes the oldest out.
        let l = Local::new(1000, 100 * SHARDS);
        for i in 0..3 {
            l.put(key(i), entry(40 - 13 - 9), u64::MAX);
        }
        assert!(l.get(&key(0), 0).is_none());
        let (n, bytes) = l.usage();
        assert_eq!(n, 2);
        assert!(bytes <= 100);
        // One larger than a shard's share is not kept at all.
        l.put(key(9), entry(200), u64::MAX);
        assert!(l.get(&key(9), 0).is_none());
    }

    #[test]
    fn replacing_and_deleting_keep_the_count_right() {
        let l = Local::new(100, 1 << 20);
        l.put(key(1), entry(10), u64::MAX);
        l.put(key(1), entry(30), u64::MAX);
        assert_eq!(l.usage(), (1, entry(30).size() + key(1).len()));
        assert!(l.delete(&key(1)));
        assert!(!l.delete(&key(1)));
        assert_eq!(l.usage(), (0, 0));
    }
}
