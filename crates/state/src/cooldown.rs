//! A cooldown's deadline in one atomic ([`CooledUntil`]), and the deployment cooldown every
//! replica honours ([`SharedCooldown`]): the same atomic, told to the other replicas through
//! Redis when it is bound to a [`Remote`].

use crate::remote::{cooldowns, Remote};
use crate::Cooldown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The end of a cooldown in the caller's milliseconds (0: never cooled).
#[derive(Debug, Default)]
pub struct CooledUntil(AtomicU64);

impl CooledUntil {
    /// Cools for `duration` from `now_ms`; whether that moved the deadline later (a cooldown
    /// already running longer is left as it is).
    pub fn extend(&self, now_ms: u64, duration: Duration) -> bool {
        let until = now_ms.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        // The later deadline wins (LiteLLM keeps the first, possibly shorter, one: its issue #40130).
        self.0.fetch_max(until, Ordering::Relaxed) < until
    }
}

impl Cooldown for CooledUntil {
    fn cool(&self, now_ms: u64, duration: Duration) {
        self.extend(now_ms, duration);
    }

    fn left(&self, now_ms: u64) -> u64 {
        self.0.load(Ordering::Relaxed).saturating_sub(now_ms)
    }
}

/// A deployment's cooldown as every replica sees it. Reading it is one atomic load, as
/// [`CooledUntil`]; unbound it is exactly that. Bound to a [`Remote`] ([`SharedCooldown::bind`]),
/// a cooldown that starts or lengthens here is also written to Redis and published in the
/// background (never awaited by the caller), and the other replicas' listener
/// ([`cooldowns::listen`]) applies it to theirs with [`SharedCooldown::heard`].
#[derive(Debug, Default)]
pub struct SharedCooldown {
    local: CooledUntil,
    bound: OnceLock<Bound>,
}

#[derive(Debug)]
struct Bound {
    remote: Arc<Remote>,
    /// The deployment's id: the same on every replica given the same config.
    id: String,
}

impl SharedCooldown {
    /// Tells the other replicas of each cooldown from now on, under `id`. The first binding
    /// stays; a second is ignored.
    pub fn bind(&self, remote: Arc<Remote>, id: impl Into<String>) {
        let _ = self.bound.set(Bound { remote, id: id.into() });
    }

    /// [`Cooldown::cool`] with why, for the other replicas and whoever reads Redis.
    pub fn cool_because(&self, now_ms: u64, duration: Duration, reason: &str) {
        if !self.local.extend(now_ms, duration) {
            return;
        }
        if let Some(b) = self.bound.get() {
            cooldowns::publish(&b.remote, &b.id, duration, reason);
        }
    }

    /// A cooldown another replica started, `left_ms` from `now_ms` on this replica's clock:
    /// applied here only, never published again.
    pub fn heard(&self, now_ms: u64, left_ms: u64) {
        self.local.extend(now_ms, Duration::from_millis(left_ms));
    }
}

impl Cooldown for SharedCooldown {
    fn cool(&self, now_ms: u64, duration: Duration) {
        self.cool_because(now_ms, duration, "");
    }

    fn left(&self, now_ms: u64) -> u64 {
        self.local.left(now_ms)
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

    #[test]
    fn extend_says_whether_the_deadline_moved() {
        let c = CooledUntil::default();
        assert!(c.extend(1_000, Duration::from_secs(10)));
        assert!(!c.extend(2_000, Duration::from_secs(5)), "inside the running cooldown");
        assert!(c.extend(2_000, Duration::from_secs(20)));
        assert_eq!(c.left(2_000), 20_000);
    }

    /// Unbound, a shared cooldown is a local one: cooling works without Redis or a runtime.
    #[test]
    fn an_unbound_shared_cooldown_cools_locally() {
        let c = SharedCooldown::default();
        c.cool_because(1_000, Duration::from_secs(5), "429");
        assert_eq!(c.left(1_000), 5_000);
        c.heard(2_000, 10_000);
        assert_eq!(c.left(2_000), 10_000, "a longer cooldown heard from another replica wins");
        c.heard(2_000, 1_000);
        assert_eq!(c.left(2_000), 10_000);
    }
}
