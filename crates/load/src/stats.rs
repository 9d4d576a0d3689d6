//! What a worker counts while it runs: per-endpoint HDR histograms and counters, failures grouped
//! by (endpoint, status, message), and the per-second interval that feeds the live line and the
//! report. Each worker owns its own copy (no locks on the hot path); they are merged at the end.

use std::collections::HashMap;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds.
pub type Hist = Histogram<u64>;

/// Largest latency kept exactly: one hour (longer ones are clamped, and a request has timed out
/// long before that anyway).
const MAX_US: u64 = 3_600_000_000;

/// A histogram for totals: 3 significant figures (0.1 %).
pub fn total_hist() -> Hist {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// A histogram for one second of one worker: 2 significant figures (1 %) is plenty for a chart
/// and keeps the per-second message that crosses threads small.
pub fn interval_hist() -> Hist {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("static histogram bounds are valid")
}

/// Records `us` microseconds (0 is kept as 1: the histogram's lowest value).
#[inline]
pub fn record(h: &mut Hist, us: u64) {
    h.saturating_record(us.max(1));
}

/// Value at percentile `p` (0..=100), in milliseconds; 0 when nothing was recorded.
pub fn percentile_ms(h: &Hist, p: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_percentile(p) as f64 / 1000.0
}

/// Counts for one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub requests: u64,
    pub failures: u64,
    /// Response body bytes of every request that got a response.
    pub bytes: u64,
    pub latency: Hist,
    /// Time to first token of streamed answers.
    pub ttft: Hist,
    /// Content-bearing SSE chunks over all streamed answers.
    pub tokens: u64,
    /// Sum over streams (with 2+ content chunks) of their chunks and of the time from first to
    /// last chunk: tokens/s = stream_tokens / stream_secs.
    pub stream_tokens: u64,
    pub stream_secs: f64,
}

impl Default for EndpointStats {
    fn default() -> Self {
        EndpointStats {
            requests: 0,
            failures: 0,
            bytes: 0,
            latency: total_hist(),
            ttft: total_hist(),
            tokens: 0,
            stream_tokens: 0,
            stream_secs: 0.0,
        }
    }
}

impl EndpointStats {
    pub fn merge(&mut self, other: &EndpointStats) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.bytes += other.bytes;
        self.latency.add(&other.latency).expect("histograms share bounds");
        self.ttft.add(&other.ttft).expect("histograms share bounds");
        self.tokens += other.tokens;
        self.stream_tokens += other.stream_tokens;
        self.stream_secs += other.stream_secs;
    }
}

/// How failures are grouped in the failures table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureKey {
    pub endpoint: usize,
    /// HTTP status; 0 when there was no response (connection error, timeout, client overloaded).
    pub status: u16,
    pub message: String,
}

/// One second (or the last part of one) of one worker.
#[derive(Debug, Clone)]
pub struct Interval {
    pub requests: u64,
    pub failures: u64,
    pub latency: Hist,
}

impl Default for Interval {
    fn default() -> Self {
        Interval { requests: 0, failures: 0, latency: interval_hist() }
    }
}

impl Interval {
    pub fn merge(&mut self, other: &Interval) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.latency.add(&other.latency).expect("histograms share bounds");
    }
}

/// Everything one worker counted.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    pub endpoints: Vec<EndpointStats>,
    pub failures: HashMap<FailureKey, u64>,
    pub interval: Interval,
}

impl WorkerStats {
    pub fn new(endpoints: usize) -> WorkerStats {
        WorkerStats {
            endpoints: (0..endpoints).map(|_| EndpointStats::default()).collect(),
            failures: HashMap::new(),
            interval: Interval::default(),
        }
    }

    /// A 2xx answer read to its end.
    #[inline]
    pub fn success(&mut self, endpoint: usize, latency_us: u64, bytes: u64) {
        let e = &mut self.endpoints[endpoint];
        e.requests += 1;
        e.bytes += bytes;
        record(&mut e.latency, latency_us);
        self.interval.requests += 1;
        record(&mut self.interval.latency, latency_us);
    }

    /// A failed request; `latency_us` is `None` when it was never sent (client overloaded).
    pub fn failure(&mut self, endpoint: usize, latency_us: Option<u64>, bytes: u64, status: u16, message: String) {
        let e = &mut self.endpoints[endpoint];
        e.requests += 1;
        e.failures += 1;
        e.bytes += bytes;
        self.interval.requests += 1;
        self.interval.failures += 1;
        if let Some(us) = latency_us {
            record(&mut e.latency, us);
            record(&mut self.interval.latency, us);
        }
        let key = FailureKey { endpoint, status, message };
        *self.failures.entry(key).or_insert(0) += 1;
    }

    /// Streaming figures of one successful stream.
    pub fn stream(&mut self, endpoint: usize, s: &crate::sse::StreamFigures) {
        let e = &mut self.endpoints[endpoint];
        if let Some(ttft) = s.ttft_us {
            record(&mut e.ttft, ttft);
        }
        e.tokens += s.chunks;
        if s.chunks >= 2 && s.span_secs > 0.0 {
            e.stream_tokens += s.chunks;
            e.stream_secs += s.span_secs;
        }
    }

    /// Hands over the current second and starts a new one.
    pub fn take_interval(&mut self) -> Interval {
        std::mem::take(&mut self.interval)
    }

    pub fn merge(&mut self, other: &WorkerStats) {
        for (a, b) in self.endpoints.iter_mut().zip(&other.endpoints) {
            a.merge(b);
        }
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_insert(0) += v;
        }
        self.interval.merge(&other.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_1_to_1000() {
        let mut h = total_hist();
        for v in 1..=1000u64 {
            record(&mut h, v * 1000); // 1..=1000 ms
        }
        let within = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 1e-9;
        assert!(within(percentile_ms(&h, 50.0), 500.0), "{}", percentile_ms(&h, 50.0));
        assert!(within(percentile_ms(&h, 90.0), 900.0));
        assert!(within(percentile_ms(&h, 99.0), 990.0), "{}", percentile_ms(&h, 99.0));
        assert!(within(percentile_ms(&h, 100.0), 1000.0));
        assert!((h.mean() / 1000.0 - 500.5).abs() < 0.5);

        // Small values are exact.
        let mut h = total_hist();
        for v in 1..=1000u64 {
            record(&mut h, v);
        }
        assert_eq!(h.value_at_percentile(50.0), 500);
        assert_eq!(h.value_at_percentile(99.0), 990);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 1000);
    }

    #[test]
    fn empty_and_zero() {
        let h = total_hist();
        assert_eq!(percentile_ms(&h, 99.0), 0.0);
        let mut h = total_hist();
        record(&mut h, 0);
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn merging_workers_adds_counts_and_failures() {
        let mut a = WorkerStats::new(2);
        let mut b = WorkerStats::new(2);
        a.success(0, 1000, 10);
        b.success(0, 3000, 10);
        b.failure(1, Some(500), 0, 500, "boom".into());
        b.failure(1, Some(500), 0, 500, "boom".into());
        a.failure(1, None, 0, 0, "client overloaded".into());
        a.merge(&b);
        assert_eq!(a.endpoints[0].requests, 2);
        assert_eq!(a.endpoints[0].bytes, 20);
        assert_eq!(a.endpoints[1].requests, 3);
        assert_eq!(a.endpoints[1].failures, 3);
        // The overloaded send has no latency.
        assert_eq!(a.endpoints[1].latency.len(), 2);
        let boom = FailureKey { endpoint: 1, status: 500, message: "boom".into() };
        assert_eq!(a.failures[&boom], 2);
        assert_eq!(a.failures.len(), 2);
        let i = a.take_interval();
        assert_eq!((i.requests, i.failures), (5, 3));
        assert_eq!(a.interval.requests, 0);
    }
}
