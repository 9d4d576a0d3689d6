//! The in-process store (`type: local`): least recently used entries go first, bounded in
//! entries and in bytes, each entry dropped when its time to live is over.
//!
//! Sharded by key so that requests on different threads rarely meet on one lock (the request
//! path takes no global lock); each shard holds its part of both bounds.
//!
//! An entry is filed under the 32 bytes of its key's digest ([`crate::key::id`]), not the key's
//! text: with every request a miss, each one puts an entry and evicts another, and a `String`
//! and a list node of their own per entry were allocations, hashing and frees on every request.
//! Here a shard's entries lie in one vector of slots, linked into recency order by index; a table
//! of indices finds them, hashed by the id's own first bytes (a BLAKE3 output is already uniform,
//! and no caller can choose it).
//!
//! A slot given up goes on a free list and the next entry put takes it; a full store evicts
//! before it inserts, so the new entry lands in the slot just emptied. With every request a miss
//! the slots are then evicted and refilled in the order of the vector: what a put touches is the
//! memory the last one did or the next slot along, where a store of 100,000 entries is otherwise
//! far from every cache (moving the last slot into a hole, as a dense vector must, touched that
//! slot's two neighbours and its table entry, all cold). Nothing is allocated per entry once the
//! vector has grown.

use crate::entry::Entry;
use crate::key::{Id, Shape};
use bytes::Bytes;
use hashbrown::HashTable;
use std::sync::Mutex;

const SHARDS: usize = 16;

/// No neighbour: the end of the recency list (or of the free list).
const NONE: u32 = u32::MAX;

/// What an entry costs the byte bound beyond its answer: its id.
const ID_BYTES: usize = std::mem::size_of::<Id>();

struct Slot {
    id: Id,
    /// The neighbours in recency order: `newer` was used more recently, `older` less. A free
    /// slot's `older` is the next free one.
    newer: u32,
    older: u32,
    /// Unix milliseconds after which the entry is gone; `u64::MAX`: kept until evicted.
    expires_ms: u64,
    entry: Entry,
}

/// What a free slot holds: nothing to free.
fn vacant() -> Entry {
    Entry { created_ms: 0, shape: Shape::Chat, answer: Bytes::new() }
}

struct Shard {
    /// Indices into `slots` of the entries held, hashed by [`hash`] of the slot's id.
    table: HashTable<u32>,
    slots: Vec<Slot>,
    /// The most and the least recently used (`NONE` when empty).
    newest: u32,
    oldest: u32,
    /// The first free slot (`NONE`: none, the vector grows).
    free: u32,
    /// Entries held (the slots less the free ones) and their bytes.
    held: usize,
    bytes: usize,
}

/// The table's hash of an id: its first eight bytes. The shard is chosen by its last byte, so
/// the entries of one shard still spread over all of its table.
fn hash(id: &Id) -> u64 {
    u64::from_le_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]])
}

fn cost(entry: &Entry) -> usize {
    entry.size() + ID_BYTES
}

/// Entries taken out under a shard's lock, dropped (their answers freed) once it is let go: one
/// without an allocation, as every evicting put has, more in a vector.
#[derive(Default)]
struct Gone {
    first: Option<Entry>,
    more: Vec<Entry>,
}

impl Gone {
    fn push(&mut self, entry: Entry) {
        match self.first {
            None => self.first = Some(entry),
            Some(_) => self.more.push(entry),
        }
    }
}

impl Shard {
    fn empty() -> Shard {
        Shard { table: HashTable::new(), slots: Vec::new(), newest: NONE, oldest: NONE, free: NONE, held: 0, bytes: 0 }
    }

    fn find(&self, id: &Id) -> Option<u32> {
        self.table.find(hash(id), |&i| self.slots[i as usize].id == *id).copied()
    }

    /// Takes slot `i` out of the recency list.
    fn unlink(&mut self, i: u32) {
        let (newer, older) = (self.slots[i as usize].newer, self.slots[i as usize].older);
        match newer {
            NONE => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
    }

    /// Puts slot `i` (not in the list) at the most recent end.
    fn link_newest(&mut self, i: u32) {
        let old_newest = self.newest;
        let slot = &mut self.slots[i as usize];
        slot.newer = NONE;
        slot.older = old_newest;
        match old_newest {
            NONE => self.oldest = i,
            n => self.slots[n as usize].newer = i,
        }
        self.newest = i;
    }

    fn touch(&mut self, i: u32) {
        if self.newest != i {
            self.unlink(i);
            self.link_newest(i);
        }
    }

    /// Files `entry` under `id` (not held yet) in a free slot, or a new one.
    fn insert(&mut self, id: Id, entry: Entry, expires_ms: u64) {
        self.bytes += cost(&entry);
        self.held += 1;
        let i = match self.free {
            NONE => {
                self.slots.push(Slot { id, newer: NONE, older: NONE, expires_ms, entry });
                (self.slots.len() - 1) as u32
            }
            i => {
                let slot = &mut self.slots[i as usize];
                self.free = slot.older;
                *slot = Slot { id, newer: NONE, older: NONE, expires_ms, entry };
                i
            }
        };
        let slots = &self.slots;
        self.table.insert_unique(hash(&id), i, |&j| hash(&slots[j as usize].id));
        self.link_newest(i);
    }

    /// Takes slot `i` out of the table and the list, puts it on the free list, and hands its
    /// entry back to be dropped once the lock is let go.
    fn remove(&mut self, i: u32) -> Entry {
        let id = self.slots[i as usize].id;
        if let Ok(found) = self.table.find_entry(hash(&id), |&j| j == i) {
            found.remove();
        }
        self.unlink(i);
        let free = self.free;
        let slot = &mut self.slots[i as usize];
        slot.older = free;
        slot.newer = NONE;
        let gone = std::mem::replace(&mut slot.entry, vacant());
        self.free = i;
        self.held -= 1;
        self.bytes -= cost(&gone);
        gone
    }

    /// Evicts the least recently used while `more` entries of `bytes` would not fit.
    fn make_room(&mut self, limits: (usize, usize), more: usize, bytes: usize, gone: &mut Gone) {
        let (max_entries, max_bytes) = limits;
        while (self.held + more > max_entries || self.bytes + bytes > max_bytes) && self.oldest != NONE {
            let oldest = self.oldest;
            gone.push(self.remove(oldest));
        }
    }
}

pub(crate) struct Local {
    shards: Box<[Mutex<Shard>]>,
    max_entries: usize,
    max_bytes: usize,
}

impl Local {
    /// At most `max_entries` entries and `max_bytes` bytes in all (each at least one per shard).
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Local {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::empty())).collect();
        // Indices are u32 with one value kept for "none".
        let max_entries = max_entries.div_ceil(SHARDS).clamp(1, (NONE - 1) as usize);
        Local { shards, max_entries, max_bytes: max_bytes.div_ceil(SHARDS).max(1) }
    }

    fn shard(&self, id: &Id) -> std::sync::MutexGuard<'_, Shard> {
        let i = id[id.len() - 1] as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, id: &Id, now_ms: u64) -> Option<Entry> {
        let mut shard = self.shard(id);
        let i = shard.find(id)?;
        if shard.slots[i as usize].expires_ms > now_ms {
            shard.touch(i);
            return Some(shard.slots[i as usize].entry.clone());
        }
        let gone = shard.remove(i);
        drop(shard);
        drop(gone);
        None
    }

    pub(crate) fn put(&self, id: Id, entry: Entry, expires_ms: u64) {
        let size = cost(&entry);
        if size > self.max_bytes {
            return;
        }
        let limits = (self.max_entries, self.max_bytes);
        let mut gone = Gone::default();
        let mut shard = self.shard(&id);
        let s = &mut *shard;
        match s.find(&id) {
            Some(i) => {
                s.bytes = s.bytes - cost(&s.slots[i as usize].entry) + size;
                let slot = &mut s.slots[i as usize];
                slot.expires_ms = expires_ms;
                gone.push(std::mem::replace(&mut slot.entry, entry));
                s.touch(i);
                // Newest now, so never its own victim.
                s.make_room(limits, 0, 0, &mut gone);
            }
            None => {
                // Room first, so that the entry takes the slot an eviction just gave up.
                s.make_room(limits, 1, size, &mut gone);
                s.insert(id, entry, expires_ms);
            }
        }
        drop(shard);
        drop(gone);
    }

    pub(crate) fn delete(&self, id: &Id) -> bool {
        let mut shard = self.shard(id);
        let Some(i) = shard.find(id) else { return false };
        let gone = shard.remove(i);
        drop(shard);
        drop(gone);
        true
    }

    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            let gone =
                std::mem::replace(&mut *s.lock().unwrap_or_else(std::sync::PoisonError::into_inner), Shard::empty());
            drop(gone);
        }
    }

    /// (entries, bytes) held now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (n + shard.held, b + shard.bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Shape;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn entry(n: usize) -> Entry {
        Entry { created_ms: 1, shape: Shape::Chat, answer: Bytes::from(vec![b'x'; n]) }
    }

    /// Ids that all land in one shard (same last byte), and in the table by their first bytes.
    fn key(i: usize) -> Id {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        id[31] = b'a';
        id
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

        // 200 bytes a shard: the third 80-byte entry pushes the oldest out.
        let l = Local::new(1000, 200 * SHARDS);
        let answer = 80 - ID_BYTES - entry(0).size();
        for i in 0..3 {
            l.put(key(i), entry(answer), u64::MAX);
        }
        assert!(l.get(&key(0), 0).is_none());
        assert_eq!(l.usage(), (2, 160));
        // One larger than a shard's share is not kept at all.
        l.put(key(9), entry(300), u64::MAX);
        assert!(l.get(&key(9), 0).is_none());
        // One that needs the room of both others evicts both.
        l.put(key(10), entry(200 - ID_BYTES - entry(0).size()), u64::MAX);
        assert_eq!(l.usage(), (1, 200));
        assert!(l.get(&key(10), 0).is_some());
    }

    #[test]
    fn replacing_and_deleting_keep_the_count_right() {
        let l = Local::new(100, 1 << 20);
        l.put(key(1), entry(10), u64::MAX);
        l.put(key(1), entry(30), u64::MAX);
        assert_eq!(l.usage(), (1, entry(30).size() + ID_BYTES));
        assert_eq!(l.get(&key(1), 0).unwrap().answer.len(), 30);
        assert!(l.delete(&key(1)));
        assert!(!l.delete(&key(1)));
        assert_eq!(l.usage(), (0, 0));
        l.put(key(2), entry(10), u64::MAX);
        l.clear();
        assert_eq!(l.usage(), (0, 0));
        assert!(l.get(&key(2), 0).is_none());
    }

    /// What the store must do, kept the slow and obvious way: entries from the most to the least
    /// recently used.
    #[derive(Default)]
    struct Model {
        order: Vec<(usize, usize, u64)>,
    }

    impl Model {
        fn get(&mut self, k: usize, now: u64) -> Option<usize> {
            let at = self.order.iter().position(|e| e.0 == k)?;
            let e = self.order.remove(at);
            if e.2 <= now {
                return None;
            }
            self.order.insert(0, e);
            Some(e.1)
        }

        fn put(&mut self, k: usize, len: usize, expires: u64, max_entries: usize, max_bytes: usize) {
            let cost = |len: usize| entry(len).size() + ID_BYTES;
            if cost(len) > max_bytes {
                return;
            }
            self.order.retain(|e| e.0 != k);
            self.order.insert(0, (k, len, expires));
            while self.order.len() > max_entries || self.order.iter().map(|e| cost(e.1)).sum::<usize>() > max_bytes {
                self.order.pop();
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Get(usize),
        Put(usize, usize, bool),
        Delete(usize),
        Tick,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..12).prop_map(Op::Get),
            4 => (0usize..12, 0usize..60, any::<bool>()).prop_map(|(k, n, short)| Op::Put(k, n, short)),
            1 => (0usize..12).prop_map(Op::Delete),
            1 => Just(Op::Tick),
        ]
    }

    proptest! {
        /// Any run of gets, puts (some with a short life), deletes and time passing: the store
        /// answers as the obvious list would, and its counts are that list's. A slot freed and
        /// taken again (by the next put, or one after a delete) must keep every link, the free
        /// list and the table right.
        #[test]
        fn the_store_keeps_recency_order_and_both_bounds(
            ops in proptest::collection::vec(op(), 1..200),
            max_entries in 1usize..8,
            max_bytes in 60usize..400,
        ) {
            let l = Local::new(max_entries * SHARDS, max_bytes * SHARDS);
            let mut model = Model::default();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Get(k) => {
                        let got = l.get(&key(k), now).map(|e| e.answer.len());
                        prop_assert_eq!(got, model.get(k, now), "get {}", k);
                    }
                    Op::Put(k, n, short) => {
                        let expires = if short { now + 2 } else { u64::MAX };
                        l.put(key(k), entry(n), expires);
                        model.put(k, n, expires, max_entries, max_bytes);
                    }
                    Op::Delete(k) => {
                        let was = model.order.iter().any(|e| e.0 == k);
                        model.order.retain(|e| e.0 != k);
                        prop_assert_eq!(l.delete(&key(k)), was);
                    }
                    Op::Tick => now += 1,
                }
                let bytes = model.order.iter().map(|e| entry(e.1).size() + ID_BYTES).sum::<usize>();
                prop_assert_eq!(l.usage(), (model.order.len(), bytes));
            }
            // The order itself: read oldest first from the model, each must still be there.
            let shard = l.shard(&key(0));
            let mut walked = Vec::new();
            let mut at = shard.newest;
            while at != NONE {
                walked.push(shard.slots[at as usize].id);
                at = shard.slots[at as usize].older;
            }
            let want: Vec<Id> = model.order.iter().map(|e| key(e.0)).collect();
            prop_assert_eq!(walked, want);
        }
    }
}
