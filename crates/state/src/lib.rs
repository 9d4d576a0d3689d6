//! What replicas of sluice must agree on within a second — rate windows, in-flight counts,
//! cooldowns and budget counters — behind one trait, [`SharedState`], so that where the numbers
//! live (this process's memory today, Redis later) is one type chosen in one place.
//!
//! Callers name the counters through [`SharedState`]'s associated types and use them only
//! through the traits below ([`RateWindow`], [`InFlightCount`], [`Cooldown`],
//! [`BudgetCounter`]): the in-process types have no methods of their own, so another
//! implementation is a drop-in. Dispatch is static (associated types, no boxes): the request
//! path pays nothing for the indirection.
//!
//! [`InProcess`] is the implementation: lock-free atomics, each counter one cache line or a
//! lazily allocated ring of per-second buckets.

pub mod cooldown;
pub mod counter;
pub mod remote;
pub mod sliding;
pub mod window;

use std::sync::Arc;
use std::time::Duration;

pub use cooldown::{CooledUntil, SharedCooldown};
pub use counter::AtomicF64;
pub use remote::window::{SharedWindow, WindowSharing};
pub use sliding::{MinuteWindow, SlidingWindow};
pub use window::{now_secs, Full, InFlight, Slot, Window, WINDOW_SECS};

/// A count over the last 60 seconds, in per-second buckets (`now` is a second on the caller's
/// clock, e.g. [`now_secs`]).
pub trait RateWindow: Default + Send + Sync {
    /// Takes `n` if that keeps the last 60 seconds at or under `limit`; returns what is left.
    fn try_take(&self, n: u64, limit: u64, now: u64) -> Result<u64, Full>;
    /// Returns `n` taken at `now` by [`try_take`](Self::try_take), for a request refused further on.
    fn give_back(&self, n: u64, now: u64);
    /// Whether the window still has room (checked before, counted after: token limits);
    /// returns what is left.
    fn check(&self, limit: u64, now: u64) -> Result<u64, Full>;
    /// Counts `n` after the fact, whatever the limit.
    fn add(&self, n: u64, now: u64);
    /// What the last 60 seconds hold.
    fn used(&self, now: u64) -> u64;
    /// [`try_take`](Self::try_take) for callers that may wait: a window shared through Redis
    /// may need to ask it (near the limit, or once its lease is spent). In-process windows are
    /// ready at once, at the cost of `try_take`.
    fn take(&self, n: u64, limit: u64, now: u64) -> impl std::future::Future<Output = Result<u64, Full>> + Send {
        std::future::ready(self.try_take(n, limit, now))
    }
}

/// Requests in flight under a limit: entering gives a slot, and dropping the slot leaves.
pub trait InFlightCount: Default + Send + Sync + Sized {
    /// A place taken; given back when dropped, whatever way the request ends.
    type Slot: Send + Sync + std::fmt::Debug;
    /// Enters if fewer than `limit` are in; `None` when full.
    fn try_enter(self: &Arc<Self>, limit: u64) -> Option<Self::Slot>;
    /// How many are in now.
    fn current(&self) -> u64;
}

/// Until when a deployment is kept out of rotation, in milliseconds on the caller's clock.
pub trait Cooldown: Default + Send + Sync {
    /// Cools for `duration` from `now_ms`. Re-cooling keeps the later deadline, never the earlier.
    fn cool(&self, now_ms: u64, duration: Duration);
    /// Milliseconds of cooldown left at `now_ms` (0: not cooling).
    fn left(&self, now_ms: u64) -> u64;
    fn cooling(&self, now_ms: u64) -> bool {
        self.left(now_ms) > 0
    }
}

/// A spend in USD that requests add to and a budget period resets.
pub trait BudgetCounter: Default + Send + Sync {
    fn add(&self, usd: f64);
    fn read(&self) -> f64;
    /// Sets the counter (a reload from the database; 0 when a budget period ends).
    fn reset_to(&self, usd: f64);
}

/// Everything replicas share, as one family of types: an implementation picks all four.
pub trait SharedState: Send + Sync + 'static {
    /// Exact windows for the limits callers are promised (keys, users, teams: rpm and tpm).
    type Limit: RateWindow;
    /// Windows for deployment quotas: cheaper, and allowed to overshoot by the requests racing
    /// at the limit's edge (an upstream's own limit catches those).
    type Quota: RateWindow;
    type InFlight: InFlightCount;
    type Cooldown: Cooldown;
    type Budget: BudgetCounter;
}

/// This process's memory: what one replica alone agrees with.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl SharedState for InProcess {
    type Limit = Window;
    type Quota = MinuteWindow;
    type InFlight = InFlight;
    type Cooldown = CooledUntil;
    type Budget = AtomicF64;
}

/// The in-process counters, with rate windows that can be bound to Redis
/// ([`SharedWindow::bind`](remote::window::SharedWindow::bind)) once it is configured: until
/// then each window is the in-process one behind one more branch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replicated;

impl SharedState for Replicated {
    type Limit = remote::window::SharedWindow<Window>;
    type Quota = remote::window::SharedWindow<MinuteWindow>;
    type InFlight = InFlight;
    // In-process until bound to Redis (`SharedCooldown::bind`), then told to every replica.
    type Cooldown = SharedCooldown;
    type Budget = AtomicF64;
}

/// The implementation this build shares state through; nothing that uses the aliases below
/// changes with it.
pub type Shared = Replicated;

/// The shared types, by job.
pub type LimitWindow = <Shared as SharedState>::Limit;
pub type QuotaWindow = <Shared as SharedState>::Quota;
pub type InFlightCounter = <Shared as SharedState>::InFlight;
pub type InFlightSlot = <<Shared as SharedState>::InFlight as InFlightCount>::Slot;
pub type DeploymentCooldown = <Shared as SharedState>::Cooldown;
pub type SpendCounter = <Shared as SharedState>::Budget;
