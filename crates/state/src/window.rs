//! Lock-free counters for rate limits: a sliding 60-second window for `rpm_limit`/`tpm_limit`
//! (keys, users, teams, key × model), and an in-flight count for `max_parallel_requests`.
//!
//! LiteLLM counts in fixed 60-second windows that start at the first request (reference §3.5),
//! which lets a client put twice the limit into one minute: the limit at the end of one window
//! and again at the start of the next. A sliding window holds in every 60-second span, wherever
//! it starts, at most the limit.

use crate::{InFlightCount, RateWindow};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

pub const WINDOW_SECS: u64 = 60;

/// Seconds since this process started counting (fits 32 bits for 136 years).
pub fn now_secs() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs()
}

/// One bucket per second of the window, and one more: an event counted at second `s` happened
/// somewhere in `[s, s + 1)`, so covering every span of 60 seconds that ends during second `now`
/// takes the seconds `now - 60 ..= now`.
const BUCKETS: usize = WINDOW_SECS as usize + 1;

const COUNT_MASK: u64 = u32::MAX as u64;

/// A bucket packed in one atomic: its second (high 32 bits) and the amount counted in it (low
/// 32 bits), so a bucket's reuse for a new second and an increment never interleave.
fn split(v: u64) -> (u64, u64) {
    (v >> 32, v & COUNT_MASK)
}

fn pack(second: u64, count: u64) -> u64 {
    (second << 32) | count.min(COUNT_MASK)
}

/// Counts over the last 60 seconds in per-second buckets. The buckets are allocated the first
/// time a limit is checked, so keys, users and teams without rate limits carry one pointer.
#[derive(Debug, Default)]
pub struct Window(OnceLock<Box<[AtomicU64; BUCKETS]>>);

/// A refused take: how many seconds until enough of the window has slid out for it to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub retry_after: u64,
}

impl Window {
    fn buckets(&self) -> &[AtomicU64; BUCKETS] {
        self.0.get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))))
    }

    fn in_window(second: u64, now: u64) -> bool {
        // A bucket stamped after `now` comes from a caller whose clock read was a moment later:
        // it counts (counting too much refuses early, never lets too much through).
        second + WINDOW_SECS >= now
    }

    fn sum(buckets: &[AtomicU64; BUCKETS], now: u64) -> u64 {
        buckets
            .iter()
            .map(|b| split(b.load(Ordering::Acquire)))
            .filter(|(s, c)| *c > 0 && Self::in_window(*s, now))
            .map(|(_, c)| c)
            .sum()
    }

    /// Seconds until the window holds at most `limit - n`: the oldest seconds leave first. At most
    /// 60, as LiteLLM's: clients (the OpenAI SDKs among them) ignore a longer `retry-after`, and
    /// one that comes back a second early is only refused once more.
    fn retry_after(buckets: &[AtomicU64; BUCKETS], n: u64, limit: u64, now: u64) -> Full {
        let mut used = Self::sum(buckets, now);
        for second in now.saturating_sub(WINDOW_SECS)..=now {
            let (s, c) = split(buckets[second as usize % BUCKETS].load(Ordering::Acquire));
            if s == second {
                used = used.saturating_sub(c);
            }
            if used.saturating_add(n) <= limit {
                // Bucket `second` is out of the window once `now` passes `second + 60`.
                return Full { retry_after: (second + WINDOW_SECS + 1).saturating_sub(now).clamp(1, WINDOW_SECS) };
            }
        }
        Full { retry_after: WINDOW_SECS }
    }

    /// Adds `n` to the bucket of `now` if `accept(amount in the rest of the window, amount in
    /// this bucket)`; returns the second the bucket is stamped with, or `None` if not accepted.
    fn add_if(buckets: &[AtomicU64; BUCKETS], n: u64, now: u64, accept: impl Fn(u64, u64) -> bool) -> Option<u64> {
        let slot = &buckets[now as usize % BUCKETS];
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            let (stamp, count) = split(cur);
            // The slot last held a second a whole window ago (or never): it starts again from 0.
            // One stamped later than `now` (a caller that read the clock much later) is kept.
            let (second, mine) = if stamp < now { (now, 0) } else { (stamp, count) };
            let others = Self::sum(buckets, now).saturating_sub(mine);
            if !accept(others, mine) {
                return None;
            }
            match slot.compare_exchange_weak(
                cur,
                pack(second, mine.saturating_add(n)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(second),
                Err(seen) => cur = seen,
            }
        }
    }
}

impl RateWindow for Window {
    /// Takes `n` if that keeps the last 60 seconds at or under `limit`; returns what is left.
    fn try_take(&self, n: u64, limit: u64, now: u64) -> Result<u64, Full> {
        let buckets = self.buckets();
        // Takes in the same second are exact: they race on one bucket, whose compare-and-swap
        // sees the others' takes. At a second's boundary two callers may each add to their own
        // bucket unseen by the other; the look afterwards finds the pair over the limit and the
        // one that sees it gives its take back, so the window never holds more than `limit`.
        let Some(second) =
            Self::add_if(buckets, n, now, |others, mine| others.saturating_add(mine).saturating_add(n) <= limit)
        else {
            return Err(Self::retry_after(buckets, n, limit, now));
        };
        let used = Self::sum(buckets, now);
        if used > limit {
            self.give_back(n, second);
            return Err(Self::retry_after(buckets, n, limit, now));
        }
        Ok(limit - used)
    }

    /// Returns `n` taken at `now` by [`try_take`](Self::try_take), for a request refused further on.
    fn give_back(&self, n: u64, now: u64) {
        let Some(buckets) = self.0.get() else { return };
        let _ = buckets[now as usize % BUCKETS].fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            let (second, count) = split(v);
            (second == now).then(|| pack(second, count.saturating_sub(n)))
        });
    }

    /// Whether the window still has room (for token limits, checked before and counted after);
    /// returns what is left.
    fn check(&self, limit: u64, now: u64) -> Result<u64, Full> {
        let buckets = self.buckets();
        let used = Self::sum(buckets, now);
        if used >= limit {
            return Err(Self::retry_after(buckets, 1, limit, now));
        }
        Ok(limit - used)
    }

    /// Counts `n` after the fact, whatever the limit. Only a window whose limit was checked
    /// counts: nothing reads the others.
    fn add(&self, n: u64, now: u64) {
        if let Some(buckets) = self.0.get() {
            Self::add_if(buckets, n, now, |_, _| true);
        }
    }

    /// What the last 60 seconds hold.
    fn used(&self, now: u64) -> u64 {
        self.0.get().map(|b| Self::sum(b, now)).unwrap_or(0)
    }
}

/// Requests in flight; a [`Slot`] gives its place back when dropped.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU64);

impl InFlightCount for InFlight {
    type Slot = Slot;

    fn try_enter(self: &std::sync::Arc<Self>, limit: u64) -> Option<Slot> {
        let prev = self.0.fetch_add(1, Ordering::AcqRel);
        if prev >= limit {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.clone()))
    }

    fn current(&self) -> u64 {
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

    /// The clock here is the test's: each take says what second it is.
    #[test]
    fn a_minute_slides_instead_of_restarting() {
        let w = Window::default();
        assert_eq!(w.try_take(1, 3, 100), Ok(2));
        assert_eq!(w.try_take(1, 3, 130), Ok(1));
        assert_eq!(w.try_take(1, 3, 159), Ok(0));
        // Full until the take at second 100 has left every 60-second span ending now.
        assert_eq!(w.try_take(1, 3, 159), Err(Full { retry_after: 2 }));
        assert_eq!(w.try_take(1, 3, 160), Err(Full { retry_after: 1 }));
        assert_eq!(w.try_take(1, 3, 161), Ok(0));
        // A fixed window would start afresh here; the sliding one still holds 130, 159 and 161.
        assert_eq!(w.try_take(1, 3, 165), Err(Full { retry_after: 26 }));
        assert_eq!(w.used(165), 3);
        assert_eq!(w.try_take(1, 3, 191), Ok(0));
        assert_eq!(w.used(300), 0);
        // A take in the window's first second leaves it 61 s later; retry-after says 60 at most.
        let w = Window::default();
        assert_eq!(w.try_take(1, 1, 500), Ok(0));
        assert_eq!(w.try_take(1, 1, 500), Err(Full { retry_after: 60 }));
    }

    /// Admitted times, as a client would see them (fractions of a second included), of a run of
    /// attempts at `times`.
    fn admitted(w: &Window, limit: u64, times: impl Iterator<Item = f64>) -> Vec<f64> {
        times.filter(|t| w.try_take(1, limit, *t as u64).is_ok()).collect()
    }

    fn most_in_any_minute(admitted: &[f64]) -> usize {
        (0..admitted.len())
            .map(|i| admitted[..=i].iter().filter(|&&x| x > admitted[i] - 60.0).count())
            .max()
            .unwrap_or(0)
    }

    /// The property the fixed windows lacked: whatever the pattern of requests (bursts after
    /// quiet spells, at fractions of a second), no 60-second span, wherever it starts, holds
    /// more than the limit.
    #[test]
    fn no_sixty_second_span_holds_more_than_the_limit() {
        let limit = 10;
        // Bursts of quick attempts after pauses of 5 to 15 s, for an hour: a pseudo-random but
        // fixed schedule.
        let mut seed: u64 = 0x5eed;
        let mut t = 0.0f64;
        let times = std::iter::from_fn(|| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (seed >> 33) as f64 / (1u64 << 31) as f64;
            t += if r < 0.7 { 0.05 + r * 0.6 } else { 5.0 + (r - 0.7) * 33.0 };
            (t < 3600.0).then_some(t)
        });
        let burst = admitted(&Window::default(), limit, times);
        assert!(most_in_any_minute(&burst) as u64 <= limit, "{} in one minute", most_in_any_minute(&burst));

        // Not stricter than it must be by more than the one second its buckets are wide: a
        // client trying every 0.37 s for ten minutes gets the limit once per 61 s at the least.
        let steady = admitted(&Window::default(), limit, (0..1622).map(|i| i as f64 * 0.37));
        assert!(most_in_any_minute(&steady) as u64 <= limit);
        assert!(steady.len() >= 90, "only {} admitted", steady.len());
    }

    #[test]
    fn token_windows_check_before_and_count_after() {
        let w = Window::default();
        assert_eq!(w.check(100, 5), Ok(100));
        w.add(150, 5);
        assert_eq!(w.check(100, 6), Err(Full { retry_after: 60 }));
        assert_eq!(w.check(100, 65), Err(Full { retry_after: 1 }));
        assert!(w.check(100, 66).is_ok());
    }

    #[test]
    fn unchecked_windows_stay_unallocated() {
        let w = Window::default();
        w.add(10, 1);
        assert!(w.0.get().is_none());
        assert_eq!(w.used(1), 0);
    }

    #[test]
    fn given_back_takes_leave_room() {
        let w = Window::default();
        assert_eq!(w.try_take(1, 2, 9), Ok(1));
        assert_eq!(w.try_take(1, 2, 9), Ok(0));
        w.give_back(1, 9);
        assert_eq!(w.try_take(1, 2, 9), Ok(0));
    }

    #[test]
    fn concurrent_takes_never_exceed_the_limit() {
        let w = Arc::new(Window::default());
        let ok = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (w, ok) = (w.clone(), ok.clone());
                std::thread::spawn(move || {
                    for j in 0..1000u64 {
                        // Threads straddle a second's boundary, as callers do.
                        let now = 7 + (i + j) % 2;
                        if w.try_take(1, 500, now).is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let ok = ok.load(Ordering::Relaxed);
        assert!(ok <= 500, "{ok} taken");
        assert_eq!(w.used(8), ok);
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

    /// Eight threads race for three places: never more than three are in at once, every
    /// refusal is a full count, and every place comes back.
    #[test]
    fn racing_entries_never_exceed_the_limit() {
        let f = Arc::new(InFlight::default());
        let most = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (f, most) = (f.clone(), most.clone());
                std::thread::spawn(move || {
                    let mut entered = 0;
                    for _ in 0..2000 {
                        if let Some(slot) = f.try_enter(3) {
                            entered += 1;
                            most.fetch_max(f.current(), Ordering::Relaxed);
                            std::hint::black_box(&slot);
                        }
                    }
                    entered
                })
            })
            .collect();
        let entered: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(entered > 0);
        assert!(most.load(Ordering::Relaxed) <= 3, "{} in at once", most.load(Ordering::Relaxed));
        assert_eq!(f.current(), 0, "every slot given back");
    }

    /// The edges of the span: a take at second `s` still counts at `s + 60` and is gone at
    /// `s + 61` (a bucket covers a whole second, so it counts until every 60-second span that may
    /// hold it has ended).
    #[test]
    fn a_take_leaves_the_window_after_sixty_one_seconds() {
        let w = Window::default();
        assert_eq!(w.try_take(2, 2, 10), Ok(0));
        assert_eq!(w.used(70), 2);
        assert_eq!(w.try_take(1, 2, 70), Err(Full { retry_after: 1 }));
        assert_eq!(w.used(71), 0);
        assert_eq!(w.try_take(2, 2, 71), Ok(0));
        // A take larger than the limit never fits, and says so with the longest wait.
        assert_eq!(Window::default().try_take(3, 2, 0), Err(Full { retry_after: WINDOW_SECS }));
    }
}
