//! `adaptive-p2c`: sluice's own strategy. Health-aware power of two choices.
//!
//! Draw two candidates at random (by `weight` when set) and send the request to the one with the
//! lower cost, where cost grows with the deployment's decaying average latency, its in-flight
//! calls, its recent error ratio and how much of its quota the last minute used. Two random
//! choices avoid the herd behaviour of always picking the global best (every replica piling onto
//! the same deployment) while still steering most traffic away from slow, failing or nearly
//! exhausted deployments; deployments without latency data yet look fast, so they get explored.
//! Use it when deployments differ in speed or reliability, or share quota with other clients;
//! simple-shuffle is as good when they are identical.

use crate::Deployment;
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) fn choose<T>(c: &[&Arc<Deployment<T>>], second: u64, rng: &mut impl Rng) -> usize {
    let a = rng.gen_range(0..c.len());
    let mut b = rng.gen_range(0..c.len() - 1);
    if b >= a {
        b += 1;
    }
    if cost(c[a], second) <= cost(c[b], second) {
        a
    } else {
        b
    }
}

pub(crate) fn cost<T>(d: &Deployment<T>, second: u64) -> f64 {
    let h = &d.health;
    // Unknown latency reads as 1 ms: cheap enough to be tried, not free.
    let latency = h.latency_ewma().unwrap_or(0.001).max(0.0001);
    let load = 1.0 + h.in_flight.load(Ordering::Relaxed) as f64;
    let reliability = (1.0 - h.error_ratio().min(0.95)).powi(2);
    let used = d.rpm.map(|rpm| h.requests.sum(second) as f64 / rpm.max(1.0)).unwrap_or(0.0).min(0.99);
    let weight = d.weight.filter(|w| *w > 0.0).unwrap_or(1.0);
    latency * load / reliability / (1.0 - used) / weight
}
