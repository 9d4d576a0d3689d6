//! Fixed-window rate limits, counted the way slowapi (the `limits` library's memory storage) does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::latency::parse_duration;

/// `PATH_PREFIX=N/WINDOW`: at most N requests per window on paths starting with the prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitRule {
    pub prefix: String,
    pub limit: u64,
    pub window: Duration,
}

impl RateLimitRule {
    /// Parses `/path=10000/60s`; the window may also be `second`, `minute`, `hour` or `day`.
    pub fn parse(spec: &str) -> Result<RateLimitRule, String> {
        let (prefix, rate) =
            spec.rsplit_once('=').ok_or("expected PATH_PREFIX=N/WINDOW, e.g. /v1/projects/p=10000/60s")?;
        if !prefix.starts_with('/') {
            return Err(format!("path prefix {prefix:?} must start with '/'"));
        }
        let (n, window) = rate.split_once('/').ok_or("expected N/WINDOW after '=', e.g. 10000/60s")?;
        let limit: u64 = n.trim().parse().map_err(|_| format!("{n:?} is not a request count"))?;
        let window = match window.trim() {
            "second" => Duration::from_secs(1),
            "minute" => Duration::from_secs(60),
            "hour" => Duration::from_secs(3600),
            "day" => Duration::from_secs(86400),
            other => parse_duration(other)?,
        };
        if window.is_zero() || window.subsec_nanos() != 0 {
            return Err(format!("window {window:?} must be a whole number of seconds (slowapi counts in seconds)"));
        }
        if window > Duration::from_secs(30 * 86400) {
            return Err("window longer than 30 days".to_string());
        }
        Ok(RateLimitRule { prefix: prefix.to_string(), limit, window })
    }

    /// The 429 body exactly as slowapi words it: `Rate limit exceeded: 10000 per 1 minute`.
    pub fn exceeded_body(&self) -> String {
        let secs = self.window.as_secs();
        let (n, unit) = if secs % 86400 == 0 {
            (secs / 86400, "day")
        } else if secs % 3600 == 0 {
            (secs / 3600, "hour")
        } else if secs % 60 == 0 {
            (secs / 60, "minute")
        } else {
            (secs, "second")
        };
        serde_json::json!({ "error": format!("Rate limit exceeded: {} per {n} {unit}", self.limit) }).to_string()
    }
}

/// One rule's live counter.
///
/// As in `limits`' memory storage, a window opens on the first hit after the previous one expired
/// (not on clock boundaries), and every hit counts, rejected or not. The window start (ms since
/// `epoch`, wrapping u32) and the count share one atomic so the check is lock-free.
#[derive(Debug)]
pub struct Limiter {
    pub rule: RateLimitRule,
    /// Precomputed: the 429 body never changes.
    pub body: bytes::Bytes,
    window_ms: u32,
    epoch: Instant,
    state: AtomicU64,
}

impl Limiter {
    pub fn new(rule: RateLimitRule) -> Limiter {
        Limiter {
            body: bytes::Bytes::from(rule.exceeded_body()),
            window_ms: rule.window.as_millis() as u32,
            rule,
            epoch: Instant::now(),
            state: AtomicU64::new(0),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        path.starts_with(self.rule.prefix.as_str())
    }

    /// Counts a hit; true when it is within the limit.
    pub fn hit(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u32;
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let start = (cur >> 32) as u32;
            let count = cur as u32;
            let next = if count == 0 || now.wrapping_sub(start) >= self.window_ms {
                (u64::from(now) << 32) | 1
            } else {
                (cur & !0xffff_ffff) | u64::from(count.saturating_add(1))
            };
            match self.state.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return u64::from(next as u32) <= self.rule.limit,
                Err(actual) => cur = actual,
            }
        }
    }

    pub fn reset(&self) {
        self.state.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_slowapi() {
        let r = RateLimitRule::parse("/v1/projects/bad-adroit-crow-413218=10000/60s").unwrap();
        assert_eq!(r.exceeded_body(), r#"{"error":"Rate limit exceeded: 10000 per 1 minute"}"#);
        let r = RateLimitRule::parse("/x=600/10s").unwrap();
        assert!(r.exceeded_body().contains("600 per 10 second"));
        let r = RateLimitRule::parse("/x=5/hour").unwrap();
        assert!(r.exceeded_body().contains("5 per 1 hour"));
        assert!(RateLimitRule::parse("/x=5/1500ms").is_err());
        assert!(RateLimitRule::parse("x=5/1s").is_err());
        assert!(RateLimitRule::parse("/x=5").is_err());
    }

    #[test]
    fn counts_within_a_window() {
        let l = Limiter::new(RateLimitRule::parse("/x=3/60s").unwrap());
        assert!(l.hit() && l.hit() && l.hit());
        assert!(!l.hit());
        assert!(!l.hit());
        l.reset();
        assert!(l.hit());
    }
}
