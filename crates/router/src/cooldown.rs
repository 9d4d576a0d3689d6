//! LiteLLM's cooldown rules (reference §4.3), applied when an attempt fails.

use crate::failure::{ErrorKind, Failure};
use crate::settings::{FAILURE_THRESHOLD, FAILURE_THRESHOLD_MIN_REQUESTS, SINGLE_DEPLOYMENT_TRAFFIC_THRESHOLD};
use crate::{Deployment, FailureEffect, Group, Router};

pub(crate) fn on_failure<T>(router: &Router<T>, group: &Group<T>, d: &Deployment<T>, f: &Failure) -> FailureEffect {
    let (failed, total) = d.health.record_failed(router.clock.minute());
    let s = &router.settings;
    let multi = group.deployments.len() > 1;
    if s.disable_cooldowns || !status_can_cool(f, multi) {
        return FailureEffect::None;
    }
    // A wildcard deployment serves whatever names callers send: a 404 is about the name asked
    // for (a model the provider does not have), not the deployment, and must not take every
    // other name it serves out of rotation.
    if group.pattern.is_some() && f.status == Some(404) {
        return FailureEffect::None;
    }
    // Priority: the deployment's own cooldown_time, then the upstream's Retry-After, then the
    // router default. Zero means "never cool this one".
    let duration = d.cooldown_time.or(f.retry_after).unwrap_or(s.cooldown_time);
    if duration.is_zero() {
        return FailureEffect::None;
    }
    let cool = if s.allowed_fails.is_some() || s.allowed_fails_policy.is_some() {
        // Legacy mode: cool once failures within cooldown_time exceed the allowed count.
        let allowed = s.allowed_fails_policy.as_ref().and_then(|p| p.get(f.kind)).or(s.allowed_fails).unwrap_or(3);
        d.health.legacy_failure(router.clock.now_ms(), s.cooldown_time) > allowed as u64
    } else {
        // 1. A 429 in a group with somewhere else to go cools at once; so does a deployment
        //    nothing could connect to (sluice's rule: LiteLLM never cools connection errors).
        let rate_limited = (f.status == Some(429) || f.unreachable) && multi;
        // 2. Everything failing under real traffic cools even a lone deployment.
        let all_failing = failed == total && total >= SINGLE_DEPLOYMENT_TRAFFIC_THRESHOLD;
        // 3. More than half failing this minute, with enough requests to judge.
        let mostly_failing =
            multi && total >= FAILURE_THRESHOLD_MIN_REQUESTS && (failed as f64 / total as f64) > FAILURE_THRESHOLD;
        // 4. A failure retrying cannot fix (401, 404).
        rate_limited || all_failing || mostly_failing || !f.is_retryable_status()
    };
    if !cool {
        return FailureEffect::None;
    }
    d.health.cool_because(router.clock.now_ms(), duration, &reason(f));
    FailureEffect::CooledDown(duration)
}

/// Why a deployment was cooled, as the other replicas and Redis record it: the upstream's
/// status and LiteLLM's exception class (e.g. `429 RateLimit`, `unreachable Connection`).
fn reason(f: &Failure) -> String {
    match (f.status, f.unreachable) {
        (Some(s), _) => format!("{s} {:?}", f.kind),
        (None, true) => format!("unreachable {:?}", f.kind),
        (None, false) => format!("{:?}", f.kind),
    }
}

/// `_is_cooldown_required`: connection errors never; of the 4xx only 429, 401, 408 and 404;
/// 5xx and failures without a status always. Except in sluice: a deployment nothing could
/// connect to, in a group with others to take its traffic (retries would otherwise keep landing
/// on it, and each that does is a client's error).
fn status_can_cool(f: &Failure, multi: bool) -> bool {
    if f.kind == ErrorKind::Connection {
        return f.unreachable && multi;
    }
    match f.status {
        Some(s) if (400..500).contains(&s) => matches!(s, 429 | 401 | 408 | 404),
        _ => true,
    }
}
