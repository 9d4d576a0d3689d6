//! The circuit breaker in front of Redis: after a failure, calls are refused at once for a
//! while instead of each request waiting out a timeout of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the breaker stays open after a failure before one call probes Redis again.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

/// Closed (calls go through) or open until an instant; an open breaker lets one probe through
/// once that instant has passed, and the probe's outcome closes or re-opens it.
#[derive(Debug)]
pub struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` until which calls are refused; 0 when closed.
    open_until_ms: AtomicU64,
    /// Failures since the start, for the metric and logs.
    failures: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { epoch: Instant::now(), open_until_ms: AtomicU64::new(0), failures: AtomicU64::new(0) }
    }
}

impl Breaker {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Whether a call may go now. While open, the first caller after the deadline is let
    /// through as the probe (the deadline moves on, so the others keep waiting for its result).
    pub fn allow(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= until
            && self
                .open_until_ms
                .compare_exchange(until, now + OPEN_FOR.as_millis() as u64, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// A call failed (an error or its timeout): open, or stay open for another period.
    /// Returns whether this failure opened a closed breaker (for a log line, once per outage).
    pub fn failed(&self) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let until = self.now_ms() + OPEN_FOR.as_millis() as u64;
        self.open_until_ms.swap(until, Ordering::Relaxed) == 0
    }

    /// A call succeeded: close. Returns whether it was open (Redis is back).
    pub fn succeeded(&self) -> bool {
        self.open_until_ms.swap(0, Ordering::Relaxed) != 0
    }

    /// Whether calls are being refused: Redis is away, and every replica counts on its own.
    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Relaxed) != 0
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_opens_for_a_while_then_one_probe_goes_through() {
        let b = Breaker::default();
        assert!(b.allow() && !b.is_open());
        assert!(b.failed(), "the first failure opens it");
        assert!(!b.failed(), "a second failure while open is not a new outage");
        assert!(b.is_open());
        assert!(!b.allow(), "open: refused at once");
        // Past the deadline: exactly one probe.
        b.open_until_ms.store(1, Ordering::Relaxed);
        assert!(b.allow());
        assert!(!b.allow(), "the others wait for the probe");
        assert!(b.succeeded(), "the probe closes it");
        assert!(b.allow() && !b.is_open());
        assert_eq!(b.failures(), 2);
    }
}
