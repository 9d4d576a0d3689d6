//! The open-loop scheduler: sends at fixed intended times (index / rate after the start) whatever
//! the server does. A send that finds the client at its in-flight cap is counted as a failure
//! rather than delayed, and latency is measured from the intended time, so a slow server cannot
//! hide its slowness by slowing the client down (no coordinated omission).

use std::time::Duration;

use tokio::time::Instant;

use crate::timer::Timer;

/// Intended send time of the send with global index `index` at `rate` per second.
#[inline]
pub fn intended(start: Instant, rate: f64, index: u64) -> Instant {
    start + Duration::from_secs_f64(index as f64 / rate)
}

/// How early a send may leave rather than wait for its intended time.
pub const EARLY: Duration = Duration::from_micros(50);

/// What a schedule did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sends {
    pub sent: u64,
    pub overloaded: u64,
}

/// The shape of one worker's share of the schedule: global indices `first`, `first + stride`, …
/// (with `stride` workers the shares interleave into one even stream), until the intended time
/// reaches `end` or the index reaches `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    pub rate: f64,
    pub first: u64,
    pub stride: u64,
    pub end: Option<Instant>,
    pub limit: Option<u64>,
    pub max_in_flight: usize,
}

impl Schedule {
    /// Runs the schedule, waiting with `timer`. `in_flight` reports the requests now in flight;
    /// `send(index, started)` must start one (spawn it) and return at once, `started` being the
    /// intended time, or the present for a send a little ahead of it; `overloaded(index)` records
    /// a send that the cap refused.
    pub async fn run(
        &self,
        timer: &mut Timer,
        in_flight: impl Fn() -> usize,
        mut send: impl FnMut(u64, Instant),
        mut overloaded: impl FnMut(u64),
    ) -> Sends {
        let mut done = Sends::default();
        let mut index = self.first;
        loop {
            if self.limit.is_some_and(|l| index >= l) {
                break;
            }
            let at = intended(self.start, self.rate, index);
            if self.end.is_some_and(|e| at >= e) {
                break;
            }
            // Past intended times return at once: a late scheduler catches up in a burst, and the
            // latencies (from `at`) show it. A send due within EARLY goes out now: waking the
            // event loop for it alone would cost more than the wait, and at high rates the loop
            // would spend itself on wake-ups. Its latency then counts from when it was sent.
            let mut now = Instant::now();
            if at > now + EARLY {
                timer.until(at).await;
                now = Instant::now();
            }
            if in_flight() >= self.max_in_flight {
                overloaded(index);
                done.overloaded += 1;
            } else {
                send(index, at.min(now));
                done.sent += 1;
            }
            index += self.stride;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use tokio::task::LocalSet;

    #[tokio::test(start_paused = true)]
    async fn intended_times_are_exact() {
        let t0 = Instant::now();
        assert_eq!(intended(t0, 1000.0, 0), t0);
        assert_eq!(intended(t0, 1000.0, 1), t0 + Duration::from_millis(1));
        assert_eq!(intended(t0, 1000.0, 1000), t0 + Duration::from_secs(1));
        assert_eq!(intended(t0, 3.0, 3), t0 + Duration::from_secs(1));
        assert_eq!(intended(t0, 0.5, 1), t0 + Duration::from_secs(2));
        // No drift after a long run: the millionth send at 1000/s is at exactly 1000 s.
        assert_eq!(intended(t0, 1000.0, 1_000_000), t0 + Duration::from_secs(1000));
    }

    /// The whole schedule in one worker: `rate` per second for `span`, at most `max_in_flight`.
    fn one_worker(start: Instant, rate: f64, span: Duration, max_in_flight: usize) -> Schedule {
        Schedule { start, rate, first: 0, stride: 1, end: Some(start + span), limit: None, max_in_flight }
    }

    /// Runs a schedule whose sends each take `service` and records their latencies from the
    /// intended time and the time they were really sent.
    async fn simulate(sched: Schedule, service: Duration) -> (Sends, Vec<(u64, Duration, Instant)>) {
        let local = LocalSet::new();
        let in_flight = Rc::new(Cell::new(0usize));
        let log = Rc::new(RefCell::new(Vec::new()));
        let sends = local
            .run_until({
                let in_flight = in_flight.clone();
                let log = log.clone();
                async move {
                    let sends = sched
                        .run(
                            &mut Timer::Coarse,
                            || in_flight.get(),
                            |index, at| {
                                in_flight.set(in_flight.get() + 1);
                                let in_flight = in_flight.clone();
                                let log = log.clone();
                                let sent = Instant::now();
                                tokio::task::spawn_local(async move {
                                    tokio::time::sleep(service).await;
                                    in_flight.set(in_flight.get() - 1);
                                    log.borrow_mut().push((index, at.elapsed(), sent));
                                });
                            },
                            |_| {},
                        )
                        .await;
                    while in_flight.get() > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    sends
                }
            })
            .await;
        let mut log = log.take();
        log.sort_by_key(|e| e.0);
        (sends, log)
    }

    #[tokio::test(start_paused = true)]
    async fn n_per_second_for_t_seconds() {
        let start = Instant::now();
        let sched = one_worker(start, 100.0, Duration::from_secs(2), 10_000);
        let (sends, log) = simulate(sched, Duration::from_millis(5)).await;
        assert_eq!(sends, Sends { sent: 200, overloaded: 0 });
        for (i, (index, latency, sent)) in log.iter().enumerate() {
            assert_eq!(*index, i as u64);
            // Sent exactly on time, and the latency is the service time.
            assert_eq!(*sent, start + Duration::from_millis(10 * i as u64));
            assert_eq!(*latency, Duration::from_millis(5));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sends_due_within_the_window_go_out_together_timed_from_their_send() {
        // 100,000/s: one send every 10 us. Time stands still (paused), so every wake-up sends the
        // ones due within EARLY at once, and those count from the moment they left.
        let start = Instant::now();
        let sched = one_worker(start, 100_000.0, Duration::from_millis(1), 10_000);
        let (sends, log) = simulate(sched, Duration::from_millis(5)).await;
        assert_eq!(sends.sent, 100);
        let every = Duration::from_micros(10);
        for (index, latency, sent) in &log {
            let at = start + every * *index as u32;
            assert!(*sent + EARLY >= at, "send {index} left more than {EARLY:?} early");
            // Never shorter than the service time: an early send is timed from when it left.
            assert!(*latency >= Duration::from_millis(5), "send {index}: {latency:?}");
        }
        // Far fewer wake-ups than sends: the ones within the window shared them.
        let mut times: Vec<_> = log.iter().map(|e| e.2).collect();
        times.dedup();
        assert!(times.len() <= 20, "{} distinct send times for 100 sends", times.len());
    }

    #[tokio::test(start_paused = true)]
    async fn workers_interleave_and_limit_caps_the_total() {
        let start = Instant::now();
        let mut all = Vec::new();
        for w in 0..3 {
            let sched = Schedule {
                first: w,
                stride: 3,
                limit: Some(25),
                ..one_worker(start, 10.0, Duration::from_secs(10), 10)
            };
            let (sends, log) = simulate(sched, Duration::from_millis(1)).await;
            assert!(sends.sent == 8 || sends.sent == 9);
            all.extend(log.into_iter().map(|e| e.0));
        }
        all.sort();
        assert_eq!(all, (0..25).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_measured_from_the_intended_time() {
        // The scheduler starts 1 s late (as if the client had stalled): the first ten sends go out
        // at once, and their latency includes the time they were overdue.
        let start = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        let sched = one_worker(start, 10.0, Duration::from_secs(2), 10_000);
        let (sends, log) = simulate(sched, Duration::from_millis(5)).await;
        assert_eq!(sends.sent, 20);
        assert_eq!(log[0].1, Duration::from_millis(1005));
        assert_eq!(log[5].1, Duration::from_millis(505));
        assert_eq!(log[10].1, Duration::from_millis(5));
        assert_eq!(log[19].1, Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_over_the_cap_are_refused_not_delayed() {
        let start = Instant::now();
        let sched = one_worker(start, 10.0, Duration::from_secs(1), 2);
        // Each send takes 1 s: the first two fill the cap, the other eight are refused.
        let (sends, log) = simulate(sched, Duration::from_secs(1)).await;
        assert_eq!(sends, Sends { sent: 2, overloaded: 8 });
        assert_eq!(log.len(), 2);
    }
}
