//! A cooldown's deadline in one atomic.

use crate::Cooldown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The end of a cooldown in the caller's milliseconds (0: never cooled).
#[derive(Debug, Default)]
pub struct CooledUntil(AtomicU64);

impl Cooldown for CooledUntil {
    fn cool(&self, now_ms: u64, duration: Duration) {
        let until = now_ms.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        // The later deadline wins (LiteLLM keeps the first, possibly shorter, one: its issue #40130).
        self.0.fetch_max(until, Ordering::Relaxed);
    }

    fn left(&self, now_ms: u64) -> u64 {
        self.0.load(Ordering::Relaxed).saturating_sub(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The router reads its milliseconds from tokio's clock; a paused clock makes expiry exact.
    #[tokio::test(start_paused = true)]
    async fn a_cooldown_expires_on_the_paused_clock() {
        let epoch = tokio::time::Instant::now();
        let ms = || epoch.elapsed().as_millis() as u64 + 1;
        let c = CooledUntil::default();
        assert!(!c.cooling(ms()), "never cooled");
        c.cool(ms(), Duration::from_secs(5));
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(c.cooling(ms()));
        assert_eq!(c.left(ms()), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!c.cooling(ms()), "expired at exactly five seconds");
        assert_eq!(c.left(ms()), 0);
    }

    #[test]
    fn re_cooling_keeps_the_later_deadline() {
        let c = CooledUntil::default();
        c.cool(1_000, Duration::from_secs(60));
        c.cool(2_000, Duration::from_secs(1));
        assert_eq!(c.left(2_000), 59_000, "a shorter cooldown does not cut a longer one short");
        c.cool(2_000, Duration::from_secs(120));
        assert_eq!(c.left(2_000), 120_000);
        c.cool(0, Duration::MAX);
        assert!(c.cooling(u64::MAX - 1), "a huge duration saturates instead of wrapping");
    }
}
