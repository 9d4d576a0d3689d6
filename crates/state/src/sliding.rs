//! Sliding counters made of per-second buckets: a minute for quotas, shorter spans for the retry
//! budget.
//!
//! Upstream quotas are fixed windows that start whenever the provider likes; a gateway that keeps
//! at most N requests in *any* 60-second span can never push a provider's window over N, whatever
//! its alignment. That is why quotas are enforced with a sliding window rather than LiteLLM's
//! calendar-minute keys.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts events over the last `SECONDS` seconds. Lock-free: each bucket packs (second, count).
#[derive(Debug)]
pub struct SlidingWindow<const SECONDS: usize> {
    buckets: [AtomicU64; SECONDS],
}

/// Counts events over the last 60 seconds.
pub type MinuteWindow = SlidingWindow<60>;

impl<const SECONDS: usize> Default for SlidingWindow<SECONDS> {
    fn default() -> Self {
        SlidingWindow { buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

fn pack(second: u64, count: u64) -> u64 {
    (second << 24) | count.min((1 << 24) - 1)
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> 24, v & ((1 << 24) - 1))
}

impl<const SECONDS: usize> SlidingWindow<SECONDS> {
    /// Adds `n` at `second` (seconds since the router's epoch).
    pub fn add(&self, second: u64, n: u64) {
        let slot = &self.buckets[(second % SECONDS as u64) as usize];
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let (s, c) = unpack(cur);
            let next = if s == second { pack(second, c.saturating_add(n)) } else { pack(second, n) };
            match slot.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Events in the `SECONDS` seconds ending at `second` (inclusive).
    pub fn sum(&self, second: u64) -> u64 {
        self.buckets
            .iter()
            .map(|b| unpack(b.load(Ordering::Relaxed)))
            .filter(|(s, _)| *s + (SECONDS as u64) > second && *s <= second)
            .map(|(_, c)| c)
            .sum()
    }

    /// Adds one if that keeps the window at or under `limit`; says whether it did. Two racing
    /// callers may both pass at the limit's edge: the overshoot is bounded by the concurrency.
    pub fn try_add(&self, second: u64, limit: u64) -> bool {
        if self.sum(second) >= limit {
            return false;
        }
        self.add(second, 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_over_sixty_seconds() {
        let w = MinuteWindow::default();
        w.add(0, 5);
        w.add(30, 3);
        assert_eq!(w.sum(30), 8);
        assert_eq!(w.sum(59), 8);
        assert_eq!(w.sum(60), 3, "second 0 has left the window");
        assert_eq!(w.sum(90), 0);
        w.add(90, 1);
        assert_eq!(w.sum(90), 1, "a reused bucket starts from zero");
    }

    #[test]
    fn try_add_respects_the_limit() {
        let w = MinuteWindow::default();
        assert_eq!((0..15).filter(|_| w.try_add(7, 10)).count(), 10);
        assert!(!w.try_add(66, 10));
        assert!(w.try_add(67, 10), "the window slid past second 7");
    }
}
