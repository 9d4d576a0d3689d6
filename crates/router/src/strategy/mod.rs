//! Picking one deployment among a group's candidates.
//!
//! Candidates are the group's deployments not cooling down, minus those the pre-call checks or a
//! quota-keeping strategy rule out; the strategy then chooses among them.

mod p2c;

use crate::settings::Strategy;
use crate::{Ctx, Deployment, Group, NoDeployment, Router};
use rand::Rng;
use sluice_state::RateWindow;
use std::sync::Arc;

/// LiteLLM prices unknown models at $5 + $5 per token for cost-based routing, so they look
/// expensive rather than free.
const UNKNOWN_COST: f64 = 10.0;

pub(crate) fn select<T>(
    router: &Router<T>,
    group: &Group<T>,
    ctx: &Ctx,
    rng: &mut impl Rng,
    at: crate::health::Now,
) -> Result<Arc<Deployment<T>>, NoDeployment> {
    let (now, second) = (at.ms, at.second);
    let s = &router.settings;

    let mut candidates: Vec<&Arc<Deployment<T>>> =
        group.deployments.iter().filter(|d| !d.health.cooling(now)).filter(|d| within_quota(d, ctx, second)).collect();
    if s.enable_tag_filtering && crate::tags::retain(&mut candidates, ctx.tags, s.tag_filtering_match_any).is_err() {
        // Refused for its tags only if they pick none of the group's deployments, cooling or
        // not; else the ones they pick are cooling down or over quota (a 429, as without tags).
        let mut all: Vec<&Arc<Deployment<T>>> = group.deployments.iter().collect();
        if crate::tags::retain(&mut all, ctx.tags, s.tag_filtering_match_any).is_err() {
            let mut refused = router.no_deployment(group);
            refused.tags = Some(ctx.tags.to_vec());
            return Err(refused);
        }
        candidates.clear();
    }
    if let Some(region) = ctx.region {
        // Refused for its region only if no deployment of the group is there, cooling or not;
        // else the ones there are cooling down or over quota (a 429, as without a region).
        if !group.deployments.iter().any(|d| d.region == Some(region)) {
            let mut refused = router.no_deployment(group);
            refused.region = Some(region);
            return Err(refused);
        }
        crate::region::retain(&mut candidates, region);
    }
    if s.enable_pre_call_checks {
        if let Some(tokens) = ctx.input_tokens {
            candidates.retain(|d| d.max_input_tokens.is_none_or(|max| tokens <= max));
        }
        if let Some(best) = candidates.iter().filter_map(|d| d.order).reduce(f64::min) {
            candidates.retain(|d| d.order.is_none_or(|o| o <= best));
        }
    }
    if s.strategy == Strategy::AdaptiveP2c {
        // Skip deployments whose provider just said their quota is spent, unless that is all.
        if candidates.iter().any(|d| !d.health.provider_exhausted(now)) {
            candidates.retain(|d| !d.health.provider_exhausted(now));
        }
    }
    if candidates.is_empty() {
        return Err(router.no_deployment(group));
    }
    if candidates.len() == 1 {
        return Ok(candidates[0].clone());
    }
    let i = match &s.strategy {
        Strategy::SimpleShuffle => weighted(&candidates, rng),
        Strategy::LeastBusy => {
            lowest(&candidates, rng, |d| d.health.in_flight.load(std::sync::atomic::Ordering::Relaxed) as f64)
        }
        Strategy::LatencyBased { ttl, buffer, .. } => {
            let lat: Vec<f64> = candidates.iter().map(|d| d.health.mean_latency(now, *ttl).unwrap_or(0.0)).collect();
            let best = lat.iter().copied().fold(f64::INFINITY, f64::min);
            let near: Vec<usize> = (0..lat.len()).filter(|&i| lat[i] <= best * (1.0 + buffer) + f64::EPSILON).collect();
            near[rng.gen_range(0..near.len())]
        }
        Strategy::UsageBased | Strategy::UsageBasedV2 => {
            lowest(&candidates, rng, |d| d.health.tokens.used(second) as f64)
        }
        Strategy::CostBased => lowest(&candidates, rng, |d| d.cost_per_token.unwrap_or(UNKNOWN_COST)),
        Strategy::AdaptiveP2c => p2c::choose(&candidates, second, rng),
    };
    Ok(candidates[i].clone())
}

/// Under its rpm and tpm for the sliding minute, counting this request.
fn within_quota<T>(d: &Deployment<T>, ctx: &Ctx, second: u64) -> bool {
    let rpm_ok = d.rpm.is_none_or(|rpm| (d.health.requests.used(second) as f64) < rpm);
    let tpm_ok = d.tpm.is_none_or(|tpm| (d.health.tokens.used(second) + ctx.input_tokens.unwrap_or(0)) as f64 <= tpm);
    rpm_ok && tpm_ok
}

/// LiteLLM's simple-shuffle: the *first* candidate decides the field (`weight`, else `rpm`, else
/// `tpm`); candidates lacking it weigh 0; no field at all means uniform.
fn weighted<T>(c: &[&Arc<Deployment<T>>], rng: &mut impl Rng) -> usize {
    let field: fn(&Deployment<T>) -> Option<f64> = if c[0].weight.is_some() {
        |d| d.weight
    } else if c[0].rpm.is_some() {
        |d| d.rpm
    } else if c[0].tpm.is_some() {
        |d| d.tpm
    } else {
        return rng.gen_range(0..c.len());
    };
    let w = |d: &Deployment<T>| field(d).filter(|w| w.is_finite() && *w > 0.0).unwrap_or(0.0);
    let total: f64 = c.iter().map(|d| w(d)).sum();
    if total <= 0.0 {
        return rng.gen_range(0..c.len());
    }
    let mut x = rng.gen_range(0.0..total);
    for (i, d) in c.iter().enumerate() {
        x -= w(d);
        if x < 0.0 {
            return i;
        }
    }
    c.len() - 1
}

/// The candidate with the lowest `key`, ties broken at random.
fn lowest<T>(c: &[&Arc<Deployment<T>>], rng: &mut impl Rng, key: impl Fn(&Deployment<T>) -> f64) -> usize {
    let keys: Vec<f64> = c.iter().map(|d| key(d)).collect();
    let best = keys.iter().copied().fold(f64::INFINITY, f64::min);
    let ties: Vec<usize> = (0..keys.len()).filter(|&i| keys[i] <= best).collect();
    ties[rng.gen_range(0..ties.len())]
}

#[cfg(test)]
mod tests;
