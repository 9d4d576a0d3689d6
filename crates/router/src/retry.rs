//! Whether to retry a failed attempt, how often, and how long to wait first (reference §4.5).

use crate::failure::{ErrorKind, Failure};
use crate::settings::{Settings, INITIAL_RETRY_DELAY, JITTER, MAX_RETRY_DELAY};
use rand::Rng;
use std::time::Duration;

/// How many retries this failure gets: its `retry_policy` entry, else the `num_retries` of the
/// deployment that failed (LiteLLM adopts the count its exception carries), else the request's
/// `num_retries`, else the router's.
pub(crate) fn allowed(s: &Settings, f: &Failure, deployment: Option<u32>, request: Option<u32>) -> u32 {
    s.retry_policy.as_ref().and_then(|p| p.get(f.kind)).or(deployment).or(request).unwrap_or(s.num_retries)
}

/// What a group offers when deciding about a retry.
pub(crate) struct GroupView {
    pub all: usize,
    pub healthy: usize,
    pub has_context_window_fallbacks: bool,
    pub has_content_policy_fallbacks: bool,
    pub has_regular_fallbacks: bool,
}

/// LiteLLM's `should_retry_this_error`: errors a retry cannot fix, or that a fallback handles
/// better, go straight to the caller.
pub(crate) fn should_retry(f: &Failure, g: &GroupView) -> bool {
    match f.kind {
        ErrorKind::ContextWindowExceeded if g.has_context_window_fallbacks => return false,
        ErrorKind::ContentPolicyViolation if g.has_content_policy_fallbacks => return false,
        ErrorKind::NotFound => return false,
        ErrorKind::RateLimit if g.healthy == 0 && g.has_regular_fallbacks => return false,
        ErrorKind::Authentication if g.all <= 1 => return false,
        _ => {}
    }
    let auth = matches!(f.kind, ErrorKind::Authentication | ErrorKind::PermissionDenied);
    auth || f.is_retryable_status()
}

/// The sleep before retry number `attempt` (0-based): none when another healthy deployment can
/// take it; otherwise the upstream's Retry-After (when 0 < it ≤ 60 s), else exponential backoff
/// from 0.5 s capped at 8 s, jittered down by up to a quarter, never below `retry_after`.
pub(crate) fn sleep_before(s: &Settings, f: &Failure, attempt: u32, g: &GroupView, rng: &mut impl Rng) -> Duration {
    if g.all > 1 && g.healthy > 0 {
        return Duration::ZERO;
    }
    if let Some(ra) = f.retry_after.filter(|d| !d.is_zero() && *d <= Duration::from_secs(60)) {
        return ra;
    }
    let base = (INITIAL_RETRY_DELAY * 2f64.powi(attempt as i32)).min(MAX_RETRY_DELAY);
    let jittered = base * (1.0 - (1.0 - JITTER) * rng.gen::<f64>());
    Duration::from_secs_f64(jittered).max(s.retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn view(all: usize, healthy: usize) -> GroupView {
        GroupView {
            all,
            healthy,
            has_context_window_fallbacks: false,
            has_content_policy_fallbacks: false,
            has_regular_fallbacks: false,
        }
    }

    #[test]
    fn retries_only_what_a_retry_can_fix() {
        let g = view(2, 1);
        assert!(should_retry(&Failure::status(500, None), &g));
        assert!(should_retry(&Failure::status(429, None), &g));
        assert!(should_retry(&Failure::timeout(), &g));
        assert!(should_retry(&Failure::connection(), &g));
        assert!(!should_retry(&Failure::status(400, None), &g));
        assert!(!should_retry(&Failure::status(404, None), &g));
        assert!(should_retry(&Failure::status(401, None), &g), "another deployment may hold a valid key");
        assert!(!should_retry(&Failure::status(401, None), &view(1, 1)));
        let mut g = view(2, 0);
        g.has_regular_fallbacks = true;
        assert!(!should_retry(&Failure::status(429, None), &g), "straight to the fallback");
    }

    #[test]
    fn policy_overrides_num_retries() {
        let mut s = Settings::default();
        assert_eq!(allowed(&s, &Failure::status(429, None), None, None), 2);
        assert_eq!(allowed(&s, &Failure::status(429, None), None, Some(0)), 0, "the request's own count");
        assert_eq!(allowed(&s, &Failure::status(429, None), Some(4), Some(0)), 4, "the deployment's wins");
        s.retry_policy = Some(crate::PerKind([(ErrorKind::RateLimit, 5)].into_iter().collect()));
        assert_eq!(allowed(&s, &Failure::status(429, None), Some(4), Some(0)), 5);
        assert_eq!(allowed(&s, &Failure::status(500, None), None, None), 2);
    }

    #[test]
    fn sleeps_like_litellm() {
        let s = Settings::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let f = Failure::status(500, None);
        assert_eq!(sleep_before(&s, &f, 0, &view(2, 1), &mut rng), Duration::ZERO);
        for attempt in 0..6 {
            let d = sleep_before(&s, &f, attempt, &view(1, 1), &mut rng).as_secs_f64();
            let base = (0.5 * 2f64.powi(attempt as i32)).min(8.0);
            assert!(d <= base && d >= base * 0.75, "attempt {attempt}: {d}");
        }
        let ra = Failure::status(429, Some(Duration::from_secs(7)));
        assert_eq!(sleep_before(&s, &ra, 0, &view(1, 1), &mut rng), Duration::from_secs(7));
        let ra = Failure::status(429, Some(Duration::from_secs(120)));
        assert!(sleep_before(&s, &ra, 0, &view(1, 1), &mut rng) < Duration::from_secs(1));
        let floor = Settings { retry_after: Duration::from_secs(3), ..Settings::default() };
        assert_eq!(sleep_before(&floor, &f, 0, &view(1, 1), &mut rng), Duration::from_secs(3));
    }
}
