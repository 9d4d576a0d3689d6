//! `adaptive-p2c`: sluice's own strategy, health-aware power of two choices.
//!
//! Each deployment has a cost: its expected time per request — decaying average latency plus
//! its recent error ratio times a one-second failure penalty (a failed call costs the client a
//! retry or an error) — multiplied by its calls in flight + 1, divided by the share of its rpm
//! quota still free and by its `weight`. Two distinct candidates are drawn with probability in
//! proportion to 1/cost², and the cheaper one gets the request. Drawing by cost keeps a slow or
//! failing deployment out of most pairs (plain uniform pairs would still hand the second-worst of
//! three a third of the traffic), while the random pair spreads load across deployments that are
//! alike instead of stampeding every replica onto the single best one. Deployments without
//! latency data yet look fast, so they get explored.
//! Use it when deployments differ in speed or reliability, or share quota with other clients;
//! simple-shuffle is as good when they are identical.

use crate::Deployment;
use rand::Rng;
use sluice_state::RateWindow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a failed call costs, in seconds of latency.
const FAILURE_PENALTY: f64 = 1.0;

pub(crate) fn choose<T>(c: &[&Arc<Deployment<T>>], second: u64, rng: &mut impl Rng) -> usize {
    let costs: Vec<f64> = c.iter().map(|d| cost(d, second)).collect();
    let weights: Vec<f64> = costs.iter().map(|k| 1.0 / (k * k)).collect();
    let a = draw(&weights, None, rng);
    let b = draw(&weights, Some(a), rng);
    if costs[a] <= costs[b] {
        a
    } else {
        b
    }
}

/// An index drawn in proportion to `weights`, never `skip`.
fn draw(weights: &[f64], skip: Option<usize>, rng: &mut impl Rng) -> usize {
    let total: f64 = weights.iter().enumerate().filter(|(i, _)| Some(*i) != skip).map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0.0..total.max(f64::MIN_POSITIVE));
    let mut last = 0;
    for (i, w) in weights.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        last = i;
        x -= w;
        if x < 0.0 {
            return i;
        }
    }
    last
}

pub(crate) fn cost<T>(d: &Deployment<T>, second: u64) -> f64 {
    let h = &d.health;
    // Unknown latency reads as 1 ms: cheap enough to be tried, not free.
    let latency = h.latency_ewma().unwrap_or(0.001).max(0.0001);
    let expected = latency + h.error_ratio() * FAILURE_PENALTY;
    let load = 1.0 + h.in_flight.load(Ordering::Relaxed) as f64;
    let used = d.rpm.map(|rpm| h.requests.used(second) as f64 / rpm.max(1.0)).unwrap_or(0.0).min(0.99);
    let weight = d.weight.filter(|w| *w > 0.0).unwrap_or(1.0);
    expected * load / (1.0 - used) / weight
}
