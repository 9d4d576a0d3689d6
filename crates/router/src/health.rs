//! What the router knows about each deployment right now: in-flight calls, recent outcomes,
//! latency, quota use, cooldown. Atomics, so recording an outcome never takes a shared lock.

use sluice_state::{Cooldown, DeploymentCooldown, QuotaWindow};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Milliseconds and seconds on the router's own monotonic clock (tokio's, so tests can pause it).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock { epoch: tokio::time::Instant::now() }
    }

    /// Never 0, so 0 can mean "unset" in the atomics below.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    pub fn second(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    pub fn minute(&self) -> u64 {
        self.second() / 60
    }

    /// The clock's readings at `t`, for a step that uses several of them: one read of the
    /// system clock instead of one per use.
    pub fn at(&self, t: tokio::time::Instant) -> Now {
        let since = t.saturating_duration_since(self.epoch);
        Now { ms: since.as_millis() as u64 + 1, second: since.as_secs() }
    }
}

/// The [`Clock`]'s readings at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// As [`Clock::now_ms`].
    pub ms: u64,
    /// As [`Clock::second`].
    pub second: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

fn load_f64(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Ordering::Relaxed))
}

fn store_f64(a: &AtomicU64, v: f64) {
    a.store(v.to_bits(), Ordering::Relaxed)
}

#[derive(Debug)]
pub struct Health {
    pub in_flight: AtomicU32,
    /// Until when the deployment is out of rotation, in router ms.
    cooldown: DeploymentCooldown,
    /// LiteLLM's per-minute success/failure counters (the >50% rule).
    minute: AtomicU64,
    minute_ok: AtomicU64,
    minute_failed: AtomicU64,
    /// Legacy `allowed_fails` mode: failures since `legacy_since` (ms), reset after cooldown_time.
    legacy_fails: AtomicU64,
    legacy_since: AtomicU64,
    /// Requests and tokens sent in the last minute, for rpm/tpm.
    pub requests: QuotaWindow,
    pub tokens: QuotaWindow,
    /// Exponentially decaying averages for adaptive-p2c: latency in seconds, error ratio.
    latency_ewma: AtomicU64,
    error_ewma: AtomicU64,
    /// Recent latencies for latency-based-routing: (router ms, seconds). Only that strategy
    /// touches this lock, and only per deployment.
    latencies: Mutex<VecDeque<(u64, f64)>>,
    /// From `x-ratelimit-remaining-*` headers (NaN = unknown), with when they were seen.
    remaining_requests: AtomicU64,
    remaining_tokens: AtomicU64,
    remaining_at: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            in_flight: AtomicU32::new(0),
            cooldown: DeploymentCooldown::default(),
            minute: AtomicU64::new(0),
            minute_ok: AtomicU64::new(0),
            minute_failed: AtomicU64::new(0),
            legacy_fails: AtomicU64::new(0),
            legacy_since: AtomicU64::new(0),
            requests: QuotaWindow::default(),
            tokens: QuotaWindow::default(),
            latency_ewma: AtomicU64::new(f64::NAN.to_bits()),
            error_ewma: AtomicU64::new(0f64.to_bits()),
            latencies: Mutex::new(VecDeque::new()),
            remaining_requests: AtomicU64::new(f64::NAN.to_bits()),
            remaining_tokens: AtomicU64::new(f64::NAN.to_bits()),
            remaining_at: AtomicU64::new(0),
        }
    }
}

/// Weight of the newest sample in the decaying averages.
const EWMA_ALPHA: f64 = 0.2;
/// Provider quota headers older than this are not trusted.
const REMAINING_TTL_MS: u64 = 60_000;

impl Health {
    pub fn cooling(&self, now_ms: u64) -> bool {
        self.cooldown.cooling(now_ms)
    }

    /// Milliseconds of cooldown left.
    pub fn cooldown_left(&self, now_ms: u64) -> u64 {
        self.cooldown.left(now_ms)
    }

    /// Starts (or extends) a cooldown. Re-cooling keeps the later deadline, never the earlier
    /// (LiteLLM keeps the first, possibly shorter, one: its issue #40130).
    pub fn cool(&self, now_ms: u64, d: Duration) {
        self.cooldown.cool(now_ms, d);
    }

    fn roll_minute(&self, minute: u64) {
        let cur = self.minute.load(Ordering::Relaxed);
        if cur != minute && self.minute.compare_exchange(cur, minute, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.minute_ok.store(0, Ordering::Relaxed);
            self.minute_failed.store(0, Ordering::Relaxed);
        }
    }

    pub fn record_ok(&self, minute: u64, latency: Duration) {
        self.roll_minute(minute);
        self.minute_ok.fetch_add(1, Ordering::Relaxed);
        let s = latency.as_secs_f64();
        let prev = load_f64(&self.latency_ewma);
        store_f64(&self.latency_ewma, if prev.is_nan() { s } else { prev + EWMA_ALPHA * (s - prev) });
        let e = load_f64(&self.error_ewma);
        store_f64(&self.error_ewma, e * (1.0 - EWMA_ALPHA));
    }

    /// Counts a failure; returns (failures, total) for the current minute, this one included.
    pub fn record_failed(&self, minute: u64) -> (u64, u64) {
        self.roll_minute(minute);
        let failed = self.minute_failed.fetch_add(1, Ordering::Relaxed) + 1;
        let ok = self.minute_ok.load(Ordering::Relaxed);
        let e = load_f64(&self.error_ewma);
        store_f64(&self.error_ewma, e + EWMA_ALPHA * (1.0 - e));
        (failed, failed + ok)
    }

    /// Legacy mode: failures within the last `ttl`, counting this one.
    pub fn legacy_failure(&self, now_ms: u64, ttl: Duration) -> u64 {
        let since = self.legacy_since.load(Ordering::Relaxed);
        if since == 0 || now_ms >= since.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)) {
            self.legacy_since.store(now_ms, Ordering::Relaxed);
            self.legacy_fails.store(1, Ordering::Relaxed);
            return 1;
        }
        self.legacy_fails.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn latency_ewma(&self) -> Option<f64> {
        let v = load_f64(&self.latency_ewma);
        (!v.is_nan()).then_some(v)
    }

    pub fn error_ratio(&self) -> f64 {
        load_f64(&self.error_ewma)
    }

    pub fn push_latency(&self, now_ms: u64, seconds: f64, max_list: usize) {
        let mut l = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        l.push_back((now_ms, seconds));
        while l.len() > max_list.max(1) {
            l.pop_front();
        }
    }

    /// Mean of the recent latencies younger than `ttl`; `None` without data.
    pub fn mean_latency(&self, now_ms: u64, ttl: Duration) -> Option<f64> {
        let l = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = ttl.as_millis() as u64;
        let (sum, n) = l
            .iter()
            .filter(|(t, _)| now_ms.saturating_sub(*t) <= ttl)
            .fold((0.0, 0usize), |(s, n), (_, x)| (s + x, n + 1));
        (n > 0).then(|| sum / n as f64)
    }

    pub fn set_remaining(&self, now_ms: u64, requests: Option<f64>, tokens: Option<f64>) {
        if let Some(r) = requests {
            store_f64(&self.remaining_requests, r);
        }
        if let Some(t) = tokens {
            store_f64(&self.remaining_tokens, t);
        }
        if requests.is_some() || tokens.is_some() {
            self.remaining_at.store(now_ms, Ordering::Relaxed);
        }
    }

    /// The provider said, recently, that this deployment has no requests or tokens left.
    pub fn provider_exhausted(&self, now_ms: u64) -> bool {
        let at = self.remaining_at.load(Ordering::Relaxed);
        if at == 0 || now_ms.saturating_sub(at) > REMAINING_TTL_MS {
            return false;
        }
        let r = load_f64(&self.remaining_requests);
        let t = load_f64(&self.remaining_tokens);
        (!r.is_nan() && r <= 0.0) || (!t.is_nan() && t <= 0.0)
    }
}
