//! Sliding counters made of per-second buckets: a minute for quotas, shorter spans for the retry
//! budget.
//!
//! Upstream quotas are fixed windows that start whenever the provider likes; a gateway that keeps
//! at most N requests in *any* 60-second span can never push a provider's window over N, whatever
//! its alignment. That is why quotas are enforced with a sliding window rather than LiteLLM's
//! calendar-minute keys.

use crate::{Full, RateWindow};
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
    fn sum(&self, second: u64) -> u64 {
        self.buckets
            .iter()
            .map(|b| unpack(b.load(Ordering::Relaxed)))
            .filter(|(s, _)| *s + (SECONDS as u64) > second && *s <= second)
            .map(|(_, c)| c)
            .sum()
    }

    /// Seconds until the oldest bucket leaves the span (a hint: callers of these windows pick
    /// another deployment instead of waiting).
    fn full(&self, second: u64) -> Full {
        let oldest = self
            .buckets
            .iter()
            .map(|b| unpack(b.load(Ordering::Relaxed)))
            .filter(|(s, c)| *c > 0 && *s + (SECONDS as u64) > second && *s <= second)
            .map(|(s, _)| s)
            .min()
            .unwrap_or(second);
        Full { retry_after: (oldest + SECONDS as u64).saturating_sub(second).max(1) }
    }
}

/// `now` is seconds since the caller's epoch; the span is `SECONDS`, not always a minute.
impl<const SECONDS: usize> RateWindow for SlidingWindow<SECONDS> {
    /// Takes `n` if that keeps the window at or under `limit`. Two racing callers may both pass
    /// at the limit's edge: the overshoot is bounded by the concurrency.
    fn try_take(&self, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let used = self.sum(now);
        if used.saturating_add(n) > limit {
            return Err(self.full(now));
        }
        self.add(n, now);
        Ok(limit - used - n)
    }

    fn give_back(&self, n: u64, now: u64) {
        let slot = &self.buckets[(now % SECONDS as u64) as usize];
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            let (s, c) = unpack(v);
            (s == now).then(|| pack(s, c.saturating_sub(n)))
        });
    }

    fn check(&self, limit: u64, now: u64) -> Result<u64, Full> {
        let used = self.sum(now);
        if used >= limit {
            return Err(self.full(now));
        }
        Ok(limit - used)
    }

    fn add(&self, n: u64, now: u64) {
        let slot = &self.buckets[(now % SECONDS as u64) as usize];
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let (s, c) = unpack(cur);
            let next = if s == now { pack(now, c.saturating_add(n)) } else { pack(now, n) };
            match slot.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Events in the `SECONDS` seconds ending at `now` (inclusive).
    fn used(&self, now: u64) -> u64 {
        self.sum(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_over_sixty_seconds() {
        let w = MinuteWindow::default();
        w.add(5, 0);
        w.add(3, 30);
        assert_eq!(w.used(30), 8);
        assert_eq!(w.used(59), 8);
        assert_eq!(w.used(60), 3, "second 0 has left the window");
        assert_eq!(w.used(90), 0);
        w.add(1, 90);
        assert_eq!(w.used(90), 1, "a reused bucket starts from zero");
    }

    #[test]
    fn try_add_respects_the_limit() {
        let w = MinuteWindow::default();
        assert_eq!((0..15).filter(|_| w.try_take(1, 10, 7).is_ok()).count(), 10);
        assert_eq!(w.try_take(1, 10, 66), Err(Full { retry_after: 1 }));
        assert_eq!(w.try_take(1, 10, 67), Ok(9), "the window slid past second 7");
        w.give_back(1, 67);
        assert_eq!(w.check(10, 67), Ok(10));
    }
}
