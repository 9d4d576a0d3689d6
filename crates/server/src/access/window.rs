//! Lock-free counters for rate limits: LiteLLM's fixed 60-second windows that start at the first
//! request (reference §3.5), and an in-flight count for `max_parallel_requests`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

pub const WINDOW_SECS: u64 = 60;

/// Seconds since this process started counting (fits 32 bits for 136 years).
pub fn now_secs() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs()
}

/// One window, packed in one atomic: the window's start (high 32 bits, process seconds) and the
/// amount used in it (low 32 bits), so a roll-over and an increment can never interleave.
#[derive(Debug, Default)]
pub struct Window(AtomicU64);

const COUNT_MASK: u64 = u32::MAX as u64;

/// A refused take: how many seconds until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub retry_after: u64,
}

impl Window {
    fn split(v: u64) -> (u64, u64) {
        (v >> 32, v & COUNT_MASK)
    }

    /// Takes `n` if that keeps the window at or under `limit`; returns what is left.
    pub fn try_take(&self, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (start, used) = Self::split(cur);
            let fresh = cur == 0 || now >= start + WINDOW_SECS;
            let (start, used) = if fresh { (now, 0) } else { (start, used) };
            if used.saturating_add(n) > limit {
                return Err(Full { retry_after: (start + WINDOW_SECS).saturating_sub(now).max(1) });
            }
            let next = (start << 32) | used.saturating_add(n).min(COUNT_MASK);
            match self.0.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(limit - used - n),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Returns `n` taken by [`try_take`](Self::try_take) for a request refused further on.
    pub fn give_back(&self, n: u64) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
            let (start, used) = Self::split(v);
            Some((start << 32) | used.saturating_sub(n))
        });
    }

    /// Whether the window still has room (for token limits, checked before and counted after).
    pub fn check(&self, limit: u64, now: u64) -> Result<u64, Full> {
        let used = self.used(now);
        let (start, _) = Self::split(self.0.load(Ordering::Relaxed));
        if used >= limit {
            return Err(Full { retry_after: (start + WINDOW_SECS).saturating_sub(now).max(1) });
        }
        Ok(limit - used)
    }

    /// Counts `n` after the fact, whatever the limit.
    pub fn add(&self, n: u64, now: u64) {
        let _ = self.try_take(n, u64::MAX >> 1, now);
    }

    pub fn used(&self, now: u64) -> u64 {
        let cur = self.0.load(Ordering::Relaxed);
        let (start, used) = Self::split(cur);
        if cur == 0 || now >= start + WINDOW_SECS {
            0
        } else {
            used
        }
    }

    /// Process-seconds at which the current window ends.
    pub fn resets_at(&self, now: u64) -> u64 {
        let cur = self.0.load(Ordering::Relaxed);
        let (start, _) = Self::split(cur);
        if cur == 0 || now >= start + WINDOW_SECS {
            now + WINDOW_SECS
        } else {
            start + WINDOW_SECS
        }
    }
}

/// Requests in flight; a [`Slot`] gives its place back when dropped.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU64);

impl InFlight {
    pub fn try_enter(self: &std::sync::Arc<Self>, limit: u64) -> Option<Slot> {
        let prev = self.0.fetch_add(1, Ordering::AcqRel);
        if prev >= limit {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.clone()))
    }

    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Slot(std::sync::Arc<InFlight>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fixed_window_starts_at_first_request_and_resets_after_a_minute() {
        let w = Window::default();
        assert_eq!(w.try_take(1, 3, 100), Ok(2));
        assert_eq!(w.try_take(1, 3, 110), Ok(1));
        assert_eq!(w.try_take(1, 3, 159), Ok(0));
        assert_eq!(w.try_take(1, 3, 159), Err(Full { retry_after: 1 }));
        assert_eq!(w.try_take(1, 3, 130), Err(Full { retry_after: 30 }));
        // The window began at 100, so it ends at 160, not 60 s after the last request.
        assert_eq!(w.try_take(1, 3, 160), Ok(2));
        assert_eq!(w.used(160), 1);
        assert_eq!(w.used(220), 0);
    }

    #[test]
    fn token_windows_check_before_and_count_after() {
        let w = Window::default();
        assert_eq!(w.check(100, 5), Ok(100));
        w.add(150, 5);
        assert_eq!(w.check(100, 6), Err(Full { retry_after: 59 }));
        assert!(w.check(100, 65).is_ok());
    }

    #[test]
    fn concurrent_takes_never_exceed_the_limit() {
        let w = Arc::new(Window::default());
        let ok = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (w, ok) = (w.clone(), ok.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        if w.try_take(1, 500, 7).is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::Relaxed), 500);
    }

    #[test]
    fn slots_are_given_back_on_drop() {
        let f = Arc::new(InFlight::default());
        let a = f.try_enter(2).unwrap();
        let _b = f.try_enter(2).unwrap();
        assert!(f.try_enter(2).is_none());
        drop(a);
        assert!(f.try_enter(2).is_some());
    }
}
