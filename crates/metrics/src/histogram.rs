//! A histogram whose `observe` is a handful of relaxed atomic operations.
//!
//! prometheus-client's own `Histogram` keeps its state behind a `Mutex`, so every observation on
//! the request path would take a lock that all request threads contend for. This one keeps one
//! `AtomicU64` per bucket plus the sum (as `f64` bits), which is what the hot path can afford.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// LiteLLM's `LATENCY_BUCKETS` (seconds), without the implicit `+Inf`; every LiteLLM latency
/// histogram uses them, so dashboards' `histogram_quantile` queries see the same boundaries.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0,
    7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0,
];

/// Python `prometheus_client`'s default buckets, which LiteLLM leaves on
/// `litellm_deployment_latency_per_output_token`.
pub const DEFAULT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Buckets for `sluice_overhead_seconds`. The gateway's own overhead is normally well under a
/// millisecond, where `LATENCY_BUCKETS` (first bound 5 ms) would put every sample in one bucket.
pub const OVERHEAD_BUCKETS: &[f64] =
    &[0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A cumulative histogram with fixed bounds. Clones share the same counts.
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bounds: &'static [f64],
    /// One slot per bound plus the overflow (`+Inf`) slot; not cumulative.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    /// `bounds` must be sorted ascending and finite; `+Inf` is implicit.
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram { inner: Arc::new(Inner { bounds, counts, sum_bits: AtomicU64::new(0f64.to_bits()) }) }
    }

    pub fn observe(&self, v: f64) {
        let inner = &*self.inner;
        // Prometheus buckets are `le` (less than or equal): the first bound >= v takes it.
        let i = inner.bounds.partition_point(|b| *b < v);
        inner.counts[i].fetch_add(1, Ordering::Relaxed);
        // There is no atomic f64 add; a CAS loop is still lock-free and almost never retries.
        let _ = inner
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
    }

    /// (sum, count, per-bucket counts) as they are at this instant.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let inner = &*self.inner;
        let mut buckets = Vec::with_capacity(inner.counts.len());
        let mut count = 0;
        for (i, slot) in inner.counts.iter().enumerate() {
            let n = slot.load(Ordering::Relaxed);
            count += n;
            let bound = inner.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        let sum = f64::from_bits(inner.sum_bits.load(Ordering::Relaxed));
        (sum, count, buckets)
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // `count` is the sum of the buckets read here, not a separate counter, so the `+Inf`
        // bucket always equals `_count` even while observations race with the scrape.
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_le_buckets() {
        let h = AtomicHistogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.0);
        h.observe(1.5);
        h.observe(99.0);
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 4);
        assert_eq!(sum, 102.0);
        assert_eq!(buckets, vec![(1.0, 2), (2.0, 1), (f64::INFINITY, 1)]);
    }

    #[test]
    fn clones_share_counts() {
        let h = AtomicHistogram::new(LATENCY_BUCKETS);
        h.clone().observe(0.001);
        assert_eq!(h.snapshot().1, 1);
    }
}
