//! The figures of a finished run, in one serialisable shape that the terminal tables, the CSV
//! and JSON files and the HTML report all read from; and the per-second timeline they chart.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{Mode, Plan};
use crate::stats::{interval_hist, percentile_ms, EndpointStats, Hist, Interval, WorkerStats};

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub avg: f64,
    pub p50: f64,
    pub p66: f64,
    pub p75: f64,
    pub p80: f64,
    pub p90: f64,
    pub p95: f64,
    pub p98: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(h: &Hist) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let p = |q| percentile_ms(h, q);
        Latency {
            min: h.min() as f64 / 1000.0,
            avg: h.mean() / 1000.0,
            p50: p(50.0),
            p66: p(66.0),
            p75: p(75.0),
            p80: p(80.0),
            p90: p(90.0),
            p95: p(95.0),
            p98: p(98.0),
            p99: p(99.0),
            p999: p(99.9),
            p9999: p(99.99),
            max: h.max() as f64 / 1000.0,
        }
    }
}

/// Streaming figures of one endpoint.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamSummary {
    pub streams: u64,
    pub ttft_ms: Latency,
    /// Content chunks per second while streaming (first to last chunk), over all streams.
    pub tokens_per_s: f64,
    /// Content chunks received in all.
    pub output_tokens: u64,
}

/// One row of the stats table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointSummary {
    pub method: String,
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub failures_per_s: f64,
    pub avg_content_bytes: f64,
    pub latency_ms: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSummary>,
}

/// One row of the failures table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureSummary {
    pub method: String,
    pub name: String,
    /// 0 when no response came back.
    pub status: u16,
    pub message: String,
    pub count: u64,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// Seconds since the start at the beginning of this second.
    pub t: u64,
    /// Users running (closed loop) or requests in flight (open loop) at its end.
    pub users: u64,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub failures_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The locust CSV percentiles (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100), in ms.
    #[serde(skip)]
    pub percentiles_ms: [f64; 11],
    pub total_requests: u64,
    pub total_failures: u64,
    pub total_p50_ms: f64,
    pub total_avg_ms: f64,
    pub total_min_ms: f64,
    pub total_max_ms: f64,
}

/// The percentiles of locust's CSV files.
pub const CSV_PERCENTILES: [f64; 11] = [50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.9, 99.99, 100.0];

/// One bar of the latency histogram.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bin {
    pub from_ms: f64,
    pub to_ms: f64,
    pub count: u64,
}

/// Everything about a finished run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub host: String,
    /// "users" (closed loop) or "rate" (open loop).
    pub mode: String,
    pub users: Option<u32>,
    pub rate: Option<f64>,
    pub threads: usize,
    pub stream: bool,
    /// Unix time of the start, in seconds.
    pub started_unix: u64,
    pub duration_s: f64,
    /// Requests still in flight at the end (not counted anywhere else).
    pub unfinished: u64,
    pub endpoints: Vec<EndpointSummary>,
    pub aggregated: EndpointSummary,
    pub failures: Vec<FailureSummary>,
    pub timeline: Vec<Point>,
    pub histogram: Vec<Bin>,
}

impl Summary {
    pub fn build(
        plan: &Plan,
        stats: &WorkerStats,
        started_unix: u64,
        duration_s: f64,
        unfinished: u64,
        timeline: Vec<Point>,
    ) -> Summary {
        let secs = duration_s.max(1e-9);
        let row = |method: &str, name: &str, e: &EndpointStats| EndpointSummary {
            method: method.to_string(),
            name: name.to_string(),
            requests: e.requests,
            failures: e.failures,
            rps: e.requests as f64 / secs,
            failures_per_s: e.failures as f64 / secs,
            avg_content_bytes: if e.requests > 0 { e.bytes as f64 / e.requests as f64 } else { 0.0 },
            latency_ms: Latency::of(&e.latency),
            stream: (plan.stream && !e.ttft.is_empty()).then(|| StreamSummary {
                streams: e.ttft.len(),
                ttft_ms: Latency::of(&e.ttft),
                tokens_per_s: if e.stream_secs > 0.0 { e.stream_tokens as f64 / e.stream_secs } else { 0.0 },
                output_tokens: e.tokens,
            }),
        };
        let endpoints: Vec<EndpointSummary> =
            plan.endpoints.iter().zip(&stats.endpoints).map(|(ep, e)| row(ep.method.as_str(), &ep.name, e)).collect();
        let mut all = EndpointStats::default();
        for e in &stats.endpoints {
            all.merge(e);
        }
        let aggregated = row("", "Aggregated", &all);
        let histogram = bins(&all.latency, 40);

        let mut failures: Vec<FailureSummary> = stats
            .failures
            .iter()
            .map(|(k, &count)| FailureSummary {
                method: plan.endpoints[k.endpoint].method.to_string(),
                name: plan.endpoints[k.endpoint].name.clone(),
                status: k.status,
                message: k.message.clone(),
                count,
            })
            .collect();
        failures.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.status.cmp(&b.status))
                .then_with(|| a.message.cmp(&b.message))
        });

        let (mode, users, rate) = match plan.mode {
            Mode::Users { users, .. } => ("users", Some(users), None),
            Mode::Rate { rate, .. } => ("rate", None, Some(rate)),
        };
        Summary {
            host: plan.target.url.clone(),
            mode: mode.into(),
            users,
            rate,
            threads: plan.threads,
            stream: plan.stream,
            started_unix,
            duration_s,
            unfinished,
            endpoints,
            aggregated,
            failures,
            timeline,
            histogram,
        }
    }

    pub fn total_failures(&self) -> u64 {
        self.aggregated.failures
    }
}

/// About `n` log-spaced bars from the fastest to the slowest request.
pub fn bins(h: &Hist, n: usize) -> Vec<Bin> {
    if h.is_empty() {
        return Vec::new();
    }
    let lo = h.min().max(1);
    let hi = h.max().max(lo) + 1;
    let ratio = (hi as f64 / lo as f64).powf(1.0 / n as f64);
    // Edges, strictly increasing, from the fastest to just past the slowest.
    let mut edges = vec![lo];
    for i in 1..n {
        let e = (lo as f64 * ratio.powi(i as i32)).ceil() as u64;
        if e > *edges.last().expect("non-empty") && e < hi {
            edges.push(e);
        }
    }
    edges.push(hi);
    let last = edges.len() - 2;
    let mut counts = vec![0u64; last + 1];
    // Each recorded value goes to exactly one bar (HDR buckets may straddle bar edges, so
    // counting ranges would count some twice).
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to()).min(hi - 1);
        let at = edges.partition_point(|&e| e <= value).saturating_sub(1);
        counts[at.min(last)] += v.count_at_value();
    }
    edges
        .windows(2)
        .zip(counts)
        .map(|(w, count)| Bin { from_ms: w[0] as f64 / 1000.0, to_ms: w[1] as f64 / 1000.0, count })
        .collect()
}

/// Gathers the workers' seconds into one timeline; a second is complete once every worker has
/// reported it.
pub struct Timeline {
    workers: usize,
    pending: BTreeMap<u64, (Interval, usize, u64)>,
    next: u64,
    points: Vec<Point>,
    total: Hist,
    total_requests: u64,
    total_failures: u64,
}

impl Timeline {
    pub fn new(workers: usize) -> Timeline {
        Timeline {
            workers,
            pending: BTreeMap::new(),
            next: 0,
            points: Vec::new(),
            total: interval_hist(),
            total_requests: 0,
            total_failures: 0,
        }
    }

    /// One worker's second. `users`: users running now (closed loop), else None and the
    /// in-flight counts of the workers are summed instead.
    pub fn add(&mut self, second: u64, interval: &Interval, in_flight: usize, users: Option<u64>) {
        if second < self.next {
            // A late report for a second already closed: fold it into the totals only.
            self.total_requests += interval.requests;
            self.total_failures += interval.failures;
            return;
        }
        let entry = self.pending.entry(second).or_insert_with(|| (Interval::default(), 0, 0));
        entry.0.merge(interval);
        entry.1 += 1;
        entry.2 += in_flight as u64;
        self.close_complete(users);
    }

    /// A worker's last, partial second: it stays open, to be closed by [`Timeline::finish`]
    /// with its true length.
    pub fn add_last(&mut self, second: u64, interval: &Interval) {
        if second < self.next {
            self.total_requests += interval.requests;
            self.total_failures += interval.failures;
            return;
        }
        let entry = self.pending.entry(second).or_insert_with(|| (Interval::default(), 0, 0));
        entry.0.merge(interval);
    }

    fn close_complete(&mut self, users: Option<u64>) {
        while let Some((_, reports, _)) = self.pending.get(&self.next) {
            if *reports < self.workers {
                break;
            }
            let (iv, _, inflight) = self.pending.remove(&self.next).expect("just seen");
            let s = self.next;
            self.close(s, &iv, users.unwrap_or(inflight), 1.0);
        }
    }

    /// Closes every second still open; the last one lasted `elapsed - its start` seconds.
    pub fn finish(mut self, elapsed: f64, users: Option<u64>) -> Vec<Point> {
        let pending = std::mem::take(&mut self.pending);
        for (second, (iv, _, inflight)) in pending {
            let len = (elapsed - second as f64).clamp(0.0, 1.0);
            // A sliver at the very end would show a meaningless rate; its requests still count
            // in the totals.
            if len < 0.2 && iv.requests == 0 {
                continue;
            }
            self.close(second, &iv, users.unwrap_or(inflight), len.max(0.2));
        }
        self.points
    }

    /// The last complete second, for the live line.
    pub fn latest(&self) -> Option<&Point> {
        self.points.last()
    }

    pub fn total_requests(&self) -> u64 {
        self.total_requests
    }

    pub fn total_failures(&self) -> u64 {
        self.total_failures
    }

    fn close(&mut self, second: u64, iv: &Interval, users: u64, len: f64) {
        self.next = second + 1;
        self.total_requests += iv.requests;
        self.total_failures += iv.failures;
        self.total.add(&iv.latency).expect("histograms share bounds");
        let ms = |v: u64| v as f64 / 1000.0;
        self.points.push(Point {
            t: second,
            users,
            requests: iv.requests,
            failures: iv.failures,
            rps: iv.requests as f64 / len,
            failures_per_s: iv.failures as f64 / len,
            p50_ms: percentile_ms(&iv.latency, 50.0),
            p90_ms: percentile_ms(&iv.latency, 90.0),
            p99_ms: percentile_ms(&iv.latency, 99.0),
            max_ms: if iv.latency.is_empty() { 0.0 } else { ms(iv.latency.max()) },
            percentiles_ms: CSV_PERCENTILES.map(|q| percentile_ms(&iv.latency, q)),
            total_requests: self.total_requests,
            total_failures: self.total_failures,
            total_p50_ms: percentile_ms(&self.total, 50.0),
            total_avg_ms: if self.total.is_empty() { 0.0 } else { self.total.mean() / 1000.0 },
            total_min_ms: if self.total.is_empty() { 0.0 } else { ms(self.total.min()) },
            total_max_ms: if self.total.is_empty() { 0.0 } else { ms(self.total.max()) },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{record, total_hist};

    #[test]
    fn histogram_bins_cover_every_request() {
        let mut h = total_hist();
        for v in 1..=10_000u64 {
            record(&mut h, v * 10);
        }
        let b = bins(&h, 40);
        assert!(b.len() <= 40 && b.len() > 20, "{}", b.len());
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 10_000);
        for w in b.windows(2) {
            assert_eq!(w[0].to_ms, w[1].from_ms);
        }
        assert!(bins(&total_hist(), 40).is_empty());
    }

    #[test]
    fn timeline_waits_for_every_worker() {
        let mut t = Timeline::new(2);
        let mut iv = Interval { requests: 10, failures: 1, ..Default::default() };
        record(&mut iv.latency, 2000);
        t.add(0, &iv, 3, None);
        assert!(t.latest().is_none());
        t.add(0, &iv, 4, None);
        let p = t.latest().unwrap().clone();
        assert_eq!((p.t, p.requests, p.failures, p.users), (0, 20, 2, 7));
        assert_eq!(p.rps, 20.0);
        assert!((p.p50_ms - 2.0).abs() < 0.05);
        t.add(1, &iv, 0, None);
        t.add(1, &iv, 0, None);
        let points = t.finish(1.5, Some(5));
        assert_eq!(points.len(), 2);
        // Second 1 closed when both workers reported it; the last part came after.
        assert_eq!(points[1].requests, 20);
        assert_eq!(points[1].rps, 20.0);

        let mut t = Timeline::new(1);
        t.add(0, &iv, 0, None);
        t.add_last(1, &iv);
        let points = t.finish(1.5, Some(5));
        // The last half second: 10 requests in 0.5 s.
        assert_eq!(points[1].requests, 10);
        assert_eq!(points[1].rps, 20.0);
        assert_eq!(points[1].users, 5);
        assert_eq!(points[1].total_requests, 20);
    }
}

/// A small finished run for the tests of the tables and files.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::args::LoadArgs;
    use crate::stats::record;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    pub fn summary() -> Summary {
        let args = Cli::try_parse_from([
            "load",
            "--host",
            "http://127.0.0.1:4000",
            "--endpoint",
            "20:POST:chat/completions",
            "--endpoint",
            "40:GET:health/readiness",
        ])
        .unwrap()
        .load;
        let plan = Plan::from_args(&args).unwrap();
        let mut w = WorkerStats::new(2);
        for v in 1..=1000u64 {
            w.success(0, v * 1000, 100);
        }
        w.success(1, 300, 2);
        w.failure(0, Some(5000), 10, 500, "server exploded".into());
        w.failure(1, Some(100), 0, 0, "connection refused".into());
        let mut timeline = Timeline::new(1);
        for s in 0..3 {
            let mut iv = Interval { requests: 300 + s, failures: s, ..Default::default() };
            record(&mut iv.latency, 1000 * (s + 1));
            timeline.add(s, &iv, 0, Some(10));
        }
        Summary::build(&plan, &w, 1_700_000_000, 3.0, 0, timeline.finish(3.0, Some(10)))
    }
}
