//! Waiting for the open loop's intended send times to the microsecond. tokio's timers round up to
//! the next millisecond, so a send would leave up to 1 ms after its intended time; latency is
//! measured from that time, so every answer would look up to 1 ms slower than it was, and a
//! gateway's added latency (a fraction of a millisecond) would drown in that noise. A Linux timerfd
//! wakes the event loop when the time comes instead.

use std::io;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

/// Waits until given instants.
pub enum Timer {
    /// A timerfd in the worker's event loop: wakes within microseconds of the time.
    #[cfg(target_os = "linux")]
    Precise(precise::TimerFd),
    /// tokio's timer wheel (millisecond steps); also what paused-time tests need.
    Coarse,
}

impl Timer {
    /// A precise timer where the system has one, else the coarse one.
    pub fn new() -> Timer {
        #[cfg(target_os = "linux")]
        if let Ok(fd) = precise::TimerFd::new() {
            return Timer::Precise(fd);
        }
        Timer::Coarse
    }

    /// Returns at `at` (at once if it has passed).
    pub async fn until(&mut self, at: Instant) {
        match self {
            #[cfg(target_os = "linux")]
            Timer::Precise(fd) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                // Should the timerfd fail, tokio's timer is a slower way to the same point.
                if fd.sleep(left).await.is_err() {
                    sleep_until(at).await;
                }
            }
            Timer::Coarse => sleep_until(at).await,
        }
    }
}

impl Default for Timer {
    fn default() -> Self {
        Timer::new()
    }
}

#[cfg(target_os = "linux")]
mod precise {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// A one-shot CLOCK_MONOTONIC timerfd registered with the worker's event loop.
    pub struct TimerFd {
        fd: AsyncFd<OwnedFd>,
    }

    impl TimerFd {
        pub fn new() -> io::Result<TimerFd> {
            // SAFETY: plain system call; the descriptor it returns is owned from here on.
            let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor nothing else owns.
            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an OwnedFd stays open and keeps its descriptor until the AsyncFd drops it.
            let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }?;
            Ok(TimerFd { fd })
        }

        /// Sleeps for `span`. Arming the timer resets its expiry count, so an expiry left
        /// unread by a wait that was dropped cannot end this one early.
        pub async fn sleep(&mut self, span: Duration) -> io::Result<()> {
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: span.as_secs() as libc::time_t,
                    tv_nsec: span.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: a valid timerfd and a valid itimerspec; the old value is not asked for.
            if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            loop {
                let mut ready = self.fd.readable().await?;
                let read = ready.try_io(|fd| {
                    let mut expiries = [0u8; 8];
                    // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                    let n = unsafe { libc::read(fd.as_raw_fd(), expiries.as_mut_ptr().cast(), expiries.len()) };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
                match read {
                    Ok(result) => return result,
                    // Readiness left over from an earlier expiry: wait for this one.
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How late `timer` wakes for a time `offset` ahead (never early).
    async fn lateness(timer: &mut Timer, offset: Duration) -> Duration {
        let at = Instant::now() + offset;
        timer.until(at).await;
        let now = Instant::now();
        assert!(now >= at, "woke {:?} early", at - now);
        now - at
    }

    #[tokio::test]
    async fn wakes_closer_to_the_time_than_tokios_millisecond_timer() {
        let mut precise = Timer::new();
        assert!(matches!(precise, Timer::Precise(_)), "Linux has timerfd");
        let mut coarse = Timer::Coarse;
        let (mut p, mut c) = (Vec::new(), Vec::new());
        // Alternating, so whatever else loads the machine weighs on both alike; the times are
        // spread over the millisecond, where tokio's rounding adds 0-1 ms.
        for i in 0..40u64 {
            let offset = Duration::from_micros(300 + i * 23);
            p.push(lateness(&mut precise, offset).await);
            c.push(lateness(&mut coarse, offset).await);
        }
        p.sort();
        c.sort();
        let (p50, c50) = (p[p.len() / 2], c[c.len() / 2]);
        assert!(p50 < c50, "median lateness: timerfd {p50:?}, tokio {c50:?}");
    }

    #[tokio::test]
    async fn a_dropped_wait_does_not_end_the_next_one_early() {
        let mut timer = Timer::new();
        // Armed for 1 ms, then dropped before it fires; its expiry is never read.
        let _ =
            tokio::time::timeout(Duration::from_micros(100), timer.until(Instant::now() + Duration::from_millis(1)))
                .await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        let at = Instant::now() + Duration::from_millis(20);
        timer.until(at).await;
        assert!(Instant::now() >= at);
    }

    #[tokio::test]
    async fn past_instants_return_at_once() {
        let mut timer = Timer::new();
        let t0 = Instant::now();
        timer.until(t0 - Duration::from_millis(5)).await;
        assert!(t0.elapsed() < Duration::from_millis(5));
    }
}
