//! What the router knows about each deployment right now: in-flight calls, recent outcomes,
//! latency, quota use, cooldown. Atomics, so recording an outcome never takes a shared lock.

use sluice_state::{Cooldown, DeploymentCooldown, QuotaWindow};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
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
    /// Recent latencies for latency-based-routing.
    latencies: Latencies,
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
            latencies: Latencies::default(),
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

    /// [`Health::cool`] with why (told to the other replicas when cooldowns are shared).
    pub fn cool_because(&self, now_ms: u64, d: Duration, reason: &str) {
        self.cooldown.cool_because(now_ms, d, reason);
    }

    /// From now on, tells the other replicas of this deployment's cooldowns, under `id`.
    pub fn share_cooldown(&self, remote: std::sync::Arc<sluice_state::remote::Remote>, id: &str) {
        self.cooldown.bind(remote, id);
    }

    /// A cooldown another replica started, with `left_ms` to run from `now_ms`.
    pub fn heard_cooldown(&self, now_ms: u64, left_ms: u64) {
        self.cooldown.heard(now_ms, left_ms);
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

    /// Keeps the latest `max_list` latencies (`max_list` is the router's, the same on every call).
    pub fn push_latency(&self, now_ms: u64, seconds: f64, max_list: usize) {
        self.latencies.push(now_ms, seconds, max_list);
    }

    /// Mean of the recent latencies younger than `ttl`; `None` without data.
    pub fn mean_latency(&self, now_ms: u64, ttl: Duration) -> Option<f64> {
        self.latencies.mean(now_ms, ttl)
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

/// The latest latencies of one deployment in a ring of atomics: latency-based routing records
/// one per success and reads them all at every pick, so a lock here would be taken by every
/// request to the deployment.
#[derive(Debug, Default)]
struct Latencies {
    /// Allocated at the first sample, `max_list` long.
    ring: OnceLock<Box<[Sample]>>,
    /// Samples pushed so far; the next goes at this modulo the ring's length.
    pushed: AtomicU64,
}

/// One latency: when (router ms; 0 while empty or being rewritten) and how long (f64 bits).
#[derive(Debug, Default)]
struct Sample {
    at_ms: AtomicU64,
    seconds: AtomicU64,
}

impl Latencies {
    fn push(&self, now_ms: u64, seconds: f64, max_list: usize) {
        let ring = self.ring.get_or_init(|| (0..max_list.max(1)).map(|_| Sample::default()).collect());
        let slot = &ring[(self.pushed.fetch_add(1, Ordering::Relaxed) % ring.len() as u64) as usize];
        // Emptied first: a reader that sees the same time before and after reading the latency
        // read a latency written with that time (router ms are never 0).
        slot.at_ms.store(0, Ordering::Release);
        slot.seconds.store(seconds.to_bits(), Ordering::Release);
        slot.at_ms.store(now_ms, Ordering::Release);
    }

    fn mean(&self, now_ms: u64, ttl: Duration) -> Option<f64> {
        let ring = self.ring.get()?;
        let ttl = ttl.as_millis() as u64;
        let (sum, n) = ring
            .iter()
            .filter_map(|s| {
                let at = s.at_ms.load(Ordering::Acquire);
                let seconds = f64::from_bits(s.seconds.load(Ordering::Acquire));
                (at != 0 && at == s.at_ms.load(Ordering::Acquire) && now_ms.saturating_sub(at) <= ttl)
                    .then_some(seconds)
            })
            .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
        (n > 0).then(|| sum / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_samples_within_the_ttl_make_the_mean() {
        let h = Health::default();
        assert_eq!(h.mean_latency(10, Duration::from_secs(1)), None);
        for (at, s) in [(1, 9.0), (2, 1.0), (3, 2.0), (4, 3.0)] {
            h.push_latency(at, s, 3);
        }
        assert_eq!(h.mean_latency(4, Duration::from_secs(1)), Some(2.0), "the first sample was pushed out");
        assert_eq!(h.mean_latency(1_003, Duration::from_secs(1)), Some(2.5), "the sample at 2 ms is too old");
        assert_eq!(h.mean_latency(5_000, Duration::from_secs(1)), None);
    }

    /// Writers racing on one deployment never leave a torn or lost slot behind: every mean is a
    /// mean of latencies that were pushed.
    #[test]
    fn racing_pushes_and_reads_see_only_pushed_latencies() {
        let h = std::sync::Arc::new(Health::default());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for j in 1..2000u64 {
                        h.push_latency(j, if i % 2 == 0 { 1.0 } else { 3.0 }, 10);
                        let m = h.mean_latency(j, Duration::from_secs(3600)).unwrap();
                        assert!((1.0..=3.0).contains(&m), "{m}");
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }
}
