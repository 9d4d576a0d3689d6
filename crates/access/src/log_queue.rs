//! Spend-log rows on their way from the request path to the writer: a few plain vectors behind
//! uncontended locks, which the writer takes whole by swapping in an empty one.
//!
//! A channel moved every row twice (into its blocks, then out into the writer's batch) and the
//! writer's drain moved a tick's worth (thousands of rows) in one go on a runtime thread, where
//! every request in flight waited for it. Here a request pushes its row onto its thread's shard,
//! and the writer's share is a swap per shard, whatever the number of rows.

use sluice_store::SpendLogRecord;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Shards, so that runtime threads pushing at once rarely meet on one lock.
const SHARDS: usize = 8;
/// Rows one shard holds between two drains, at most; past it rows are dropped and counted.
/// The writer drains five times a second, so a shard has room for ~160,000 requests per second.
pub const SHARD_CAPACITY: usize = 32_768;

/// One shard on its own cache lines, so that two threads' pushes do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<Vec<SpendLogRecord>>);

impl Shard {
    /// A poisoned lock still holds whole rows: a push is one `Vec::push`.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpendLogRecord>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
pub struct LogQueue {
    shards: [Shard; SHARDS],
}

/// Which shard this thread pushes to: threads take them in turn as they first log.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

impl LogQueue {
    /// Queues `row`; false (the row dropped) when this thread's shard is full.
    #[must_use]
    pub fn push(&self, row: SpendLogRecord) -> bool {
        let mut shard = self.shards[shard_index()].lock();
        if shard.len() >= SHARD_CAPACITY {
            return false;
        }
        shard.push(row);
        true
    }

    /// Moves every queued row into `into`, oldest first within each shard. A shard's rows are
    /// swapped out whole when `into` is empty (the usual case: no row is copied), and the shard
    /// gets an empty buffer with as much room as it just held, so that the pushes until the
    /// next drain do not grow it step by step (each step a copy of every row, on a request's
    /// time). The buffer is allocated outside the lock.
    pub fn drain_into(&self, into: &mut Vec<SpendLogRecord>) {
        for shard in &self.shards {
            let held = shard.lock().len();
            if held == 0 {
                continue;
            }
            let fresh = Vec::with_capacity(held);
            let mut rows = std::mem::replace(&mut *shard.lock(), fresh);
            if into.is_empty() {
                *into = rows;
            } else {
                into.append(&mut rows);
            }
        }
    }

    /// Rows waiting, for tests and the writer's decisions (takes each shard's lock).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> SpendLogRecord {
        SpendLogRecord { request_id: id.into(), ..Default::default() }
    }

    fn ids(rows: &[SpendLogRecord]) -> Vec<&str> {
        rows.iter().map(|r| r.request_id.as_str()).collect()
    }

    /// A drain takes the rows without copying them (the vector itself moves) and leaves the shard
    /// a buffer with the room it needed; a second drain into a non-empty batch appends after
    /// what is there.
    #[test]
    fn drains_swap_whole_shards_and_keep_order() {
        let q = LogQueue::default();
        assert!(q.push(row("a")));
        assert!(q.push(row("b")));
        let first_row = {
            let shard = q.shards[shard_index()].lock();
            shard.as_ptr()
        };
        let mut batch = Vec::new();
        q.drain_into(&mut batch);
        assert_eq!(ids(&batch), ["a", "b"]);
        assert_eq!(batch.as_ptr(), first_row, "the shard's vector itself, not a copy");
        assert!(q.is_empty());
        assert!(q.shards[shard_index()].lock().capacity() >= 2, "room for as many rows again");

        assert!(q.push(row("c")));
        q.drain_into(&mut batch);
        assert_eq!(ids(&batch), ["a", "b", "c"]);
    }

    /// A full shard refuses the row, so the caller can count it.
    #[test]
    fn a_full_shard_gives_the_row_back() {
        let q = LogQueue::default();
        for i in 0..SHARD_CAPACITY {
            assert!(q.push(row(&i.to_string())));
        }
        assert!(!q.push(row("over")));
        let mut batch = Vec::new();
        q.drain_into(&mut batch);
        assert_eq!(batch.len(), SHARD_CAPACITY);
        assert!(q.push(row("after")));
    }

    /// Rows pushed from many threads all arrive, once.
    #[test]
    fn rows_from_many_threads_all_arrive() {
        let q = std::sync::Arc::new(LogQueue::default());
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        assert!(q.push(row(&format!("{t}-{i}"))));
                    }
                })
            })
            .collect();
        let mut batch = Vec::new();
        for t in threads {
            q.drain_into(&mut batch);
            t.join().unwrap();
        }
        q.drain_into(&mut batch);
        let mut got: Vec<String> = batch.into_iter().map(|r| r.request_id).collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 12_000);
    }
}
