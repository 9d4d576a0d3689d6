//! A sink's queue and the task that drains it: the request path hands a record over with one
//! `try_send` (no lock, no wait; a full queue drops the record and counts it), and a background
//! task takes up to [`Batching::max_records`] at a time, or what came within
//! [`Batching::max_wait`] of the first, and gives the batch to the sink.
//!
//! Once a batch has its first record, the task sleeps until the batch is due: the request that
//! fills it wakes the task ([`Fill`]), the others do not. Woken by every record, the task would
//! cost each request a wake-up, a poll and a timer registered and cancelled.
//!
//! While the sink is sending, records wait in the queue, at most [`Batching::capacity`] of them: a
//! collector that is slow or down costs dropped records, never memory or a request's time.

use crate::record::LogRecord;
use sluice_metrics::CallbackMetrics;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where a batch goes.
pub trait Sink: Send + Sync + 'static {
    /// Delivers `batch` (oldest first); an error says why, without secrets.
    fn send(&self, batch: &[Arc<LogRecord>]) -> impl Future<Output = Result<(), String>> + Send;
}

/// How a sink's queue is bounded and drained.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Records waiting, at most; more are dropped.
    pub capacity: usize,
    /// Records in one delivery, at most.
    pub max_records: usize,
    /// How long a record waits for others to join its batch, at most.
    pub max_wait: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { capacity: 10_000, max_records: 100, max_wait: Duration::from_secs(1) }
    }
}

/// What a queue counts, for logs, tests and the metrics.
#[derive(Debug, Default)]
pub struct Counts {
    pub dropped: AtomicU64,
    pub failed_batches: AtomicU64,
    pub delivered: AtomicU64,
}

/// The request path's end of one sink's queue.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: mpsc::Sender<Arc<LogRecord>>,
    counts: Arc<Counts>,
    metrics: Option<CallbackMetrics>,
    fill: Arc<Fill>,
}

/// How the request that completes a batch wakes the draining task, which otherwise sleeps until
/// the batch's time is up.
#[derive(Debug, Default)]
struct Fill {
    /// Records in the channel, not yet taken by the task.
    waiting: AtomicUsize,
    /// The count of waiting records that completes the batch being filled (0: no batch is).
    wanted: AtomicUsize,
    full: tokio::sync::Notify,
}

impl Fill {
    /// One more record is waiting; the one that brings the count to what the batch wants wakes
    /// the task. A wake that comes too early only makes the task look again.
    fn added(&self) {
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        if waiting == self.wanted.load(Ordering::SeqCst) {
            self.full.notify_one();
        }
    }

    fn taken(&self, n: usize) {
        self.waiting.fetch_sub(n, Ordering::SeqCst);
    }
}

impl Queue {
    /// Hands `record` to the sink's task; a full queue (or a stopped task) drops it and counts it.
    pub fn push(&self, record: Arc<LogRecord>) {
        match self.tx.try_send(record) {
            Ok(()) => self.fill.added(),
            Err(_) => {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = &self.metrics {
                    m.dropped(1);
                }
            }
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// The handle that ends a sink's task: [`Drain::finish`].
#[derive(Debug)]
pub struct Drain {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drain {
    /// Closes the queue (later records are dropped), lets the task deliver what is queued, and
    /// waits for it; true when it finished within `limit`.
    pub async fn finish(self, limit: Duration) -> bool {
        self.stop.notify_one();
        tokio::time::timeout(limit, self.task).await.is_ok()
    }
}

/// Starts the task that drains a new queue into `sink`, named `name` in logs. Call from within a
/// Tokio runtime. The task ends when told to ([`Drain::finish`]) or once every [`Queue`] clone
/// is dropped, after delivering what was queued.
pub fn spawn<S: Sink>(
    name: &'static str,
    sink: S,
    batching: Batching,
    metrics: Option<CallbackMetrics>,
) -> (Queue, Drain) {
    let (tx, rx) = mpsc::channel(batching.capacity.max(1));
    let counts = Arc::new(Counts::default());
    let fill = Arc::new(Fill::default());
    let queue = Queue { tx, counts: counts.clone(), metrics: metrics.clone(), fill: fill.clone() };
    let stop = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(drain(name, Incoming { rx, fill }, sink, batching, counts, metrics, stop.clone()));
    (queue, Drain { stop, task })
}

/// The task's end of the queue.
struct Incoming {
    rx: mpsc::Receiver<Arc<LogRecord>>,
    fill: Arc<Fill>,
}

async fn drain<S: Sink>(
    name: &'static str,
    mut incoming: Incoming,
    sink: S,
    batching: Batching,
    counts: Arc<Counts>,
    metrics: Option<CallbackMetrics>,
    stop: Arc<tokio::sync::Notify>,
) {
    let max = batching.max_records.max(1);
    let mut batch = Vec::with_capacity(max);
    // A collector that is down fails every batch, several a second under load: the first
    // failure and drop are logged at once, then at most one line each per `WARN_EVERY`, with the
    // counts since the last.
    let mut failures = Throttled::default();
    let mut drops = Throttled::default();
    let mut dropped_seen = 0;
    loop {
        let open = tokio::select! {
            open = next_batch(&mut incoming, &mut batch, max, batching.max_wait) => open,
            // Closed, a receive no longer waits: the loop delivers what is left, then ends.
            () = stop.notified() => {
                incoming.rx.close();
                true
            }
        };
        if !batch.is_empty() {
            match sink.send(&batch).await {
                Ok(()) => {
                    counts.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(why) => {
                    counts.failed_batches.fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = &metrics {
                        m.failed();
                    }
                    if let Some(batches) = failures.note(1) {
                        tracing::warn!(callback = name, batches, "logging callback could not deliver: {why}");
                    }
                }
            }
            batch.clear();
        }
        let dropped = counts.dropped.load(Ordering::Relaxed);
        if let Some(records) = drops.note(dropped - dropped_seen) {
            tracing::warn!(
                callback = name,
                records,
                "logging callback's queue was full (its collector slow or down); records dropped"
            );
        }
        dropped_seen = dropped;
        if !open {
            return;
        }
    }
}

/// How often a sink's failures (or drops) are logged, at most, while they go on.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Events counted between two log lines.
#[derive(Default)]
struct Throttled {
    last: Option<tokio::time::Instant>,
    pending: u64,
}

impl Throttled {
    /// Counts `n` more; the count to log (and reset) when a line is due.
    fn note(&mut self, n: u64) -> Option<u64> {
        self.pending += n;
        let now = tokio::time::Instant::now();
        let due = self.pending > 0 && self.last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        due.then(|| {
            self.last = Some(now);
            std::mem::take(&mut self.pending)
        })
    }
}

/// Fills `batch` with up to `max` records: waits for the first, then until `max` are waiting or
/// `max_wait` has passed since the first. False once the queue is closed (every sender gone)
/// and empty.
async fn next_batch(incoming: &mut Incoming, batch: &mut Vec<Arc<LogRecord>>, max: usize, max_wait: Duration) -> bool {
    let Incoming { rx, fill } = incoming;
    let first = rx.recv_many(batch, max).await;
    fill.taken(first);
    if first == 0 {
        return false;
    }
    let deadline = tokio::time::Instant::now() + max_wait;
    let due = tokio::time::sleep_until(deadline);
    tokio::pin!(due);
    loop {
        // What is there now; a closed queue (at shutdown) is not waited on.
        let mut taken = 0;
        let open = loop {
            if batch.len() == max {
                break true;
            }
            match rx.try_recv() {
                Ok(record) => {
                    batch.push(record);
                    taken += 1;
                }
                Err(mpsc::error::TryRecvError::Empty) => break true,
                Err(mpsc::error::TryRecvError::Disconnected) => break false,
            }
        };
        fill.taken(taken);
        let short = max - batch.len();
        if !open || short == 0 || tokio::time::Instant::now() >= deadline {
            return open;
        }
        fill.wanted.store(short, Ordering::SeqCst);
        // A record taken between its sender's send and its count leaves `waiting` behind for a
        // moment (wrapped below zero): a pass that found nothing yields rather than spin.
        if fill.waiting.load(Ordering::SeqCst) < short {
            tokio::select! {
                () = fill.full.notified() => {}
                () = &mut due => {}
            }
        } else if taken == 0 {
            tokio::task::yield_now().await;
        }
        fill.wanted.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use std::sync::Mutex;

    /// Records each batch's size; fails while told to.
    #[derive(Clone, Default)]
    struct Recorder {
        batches: Arc<Mutex<Vec<usize>>>,
        fail: Arc<std::sync::atomic::AtomicBool>,
        /// Held by a test to keep the sink from finishing a send.
        gate: Arc<tokio::sync::Mutex<()>>,
    }

    impl Sink for Recorder {
        async fn send(&self, batch: &[Arc<LogRecord>]) -> Result<(), String> {
            let _open = self.gate.lock().await;
            self.batches.lock().unwrap().push(batch.len());
            match self.fail.load(Ordering::Relaxed) {
                true => Err("collector said 500".into()),
                false => Ok(()),
            }
        }
    }

    fn record() -> Arc<LogRecord> {
        Arc::new(sample())
    }

    /// Let the drain task run until it waits on something.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// A full batch goes at once; the rest waits for `max_wait` and then goes too.
    #[tokio::test(start_paused = true)]
    async fn batches_by_size_then_by_time() {
        let sink = Recorder::default();
        let batching = Batching { capacity: 1_000, max_records: 100, max_wait: Duration::from_secs(1) };
        let (queue, _task) = spawn("test", sink.clone(), batching, None);
        for _ in 0..250 {
            queue.push(record());
        }
        settle().await;
        assert_eq!(*sink.batches.lock().unwrap(), [100, 100], "the two full batches, without waiting");
        tokio::time::sleep(Duration::from_millis(900)).await;
        settle().await;
        assert_eq!(sink.batches.lock().unwrap().len(), 2, "the last 50 wait for the interval");
        tokio::time::sleep(Duration::from_millis(200)).await;
        settle().await;
        assert_eq!(*sink.batches.lock().unwrap(), [100, 100, 50]);
        assert_eq!(queue.counts().delivered.load(Ordering::Relaxed), 250);
        assert_eq!(queue.counts().dropped.load(Ordering::Relaxed), 0);
    }

    /// Records that come one at a time wait for their batch's time, except the one that fills
    /// the batch: it sends the batch at once.
    #[tokio::test(start_paused = true)]
    async fn the_record_that_fills_a_batch_sends_it() {
        let sink = Recorder::default();
        let batching = Batching { capacity: 1_000, max_records: 10, max_wait: Duration::from_secs(1) };
        let (queue, _task) = spawn("test", sink.clone(), batching, None);
        for _ in 0..9 {
            queue.push(record());
            settle().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sink.batches.lock().unwrap().is_empty(), "nine records wait");
        queue.push(record());
        settle().await;
        assert_eq!(*sink.batches.lock().unwrap(), [10], "the tenth sends the batch");
        // The next batch starts with the next record, and goes when its own time is up.
        for _ in 0..3 {
            queue.push(record());
            settle().await;
        }
        tokio::time::sleep(Duration::from_millis(999)).await;
        settle().await;
        assert_eq!(sink.batches.lock().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(2)).await;
        settle().await;
        assert_eq!(*sink.batches.lock().unwrap(), [10, 3]);
    }

    /// While the sink is stuck, the queue holds `capacity` records and drops (and counts) the
    /// rest; once it is free again, what was held is delivered.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_sink_costs_dropped_records_not_memory() {
        let sink = Recorder::default();
        let metrics = sluice_metrics::Metrics::new();
        let handle = metrics.callback("test");
        let batching = Batching { capacity: 10, max_records: 4, max_wait: Duration::from_secs(1) };
        let (queue, _task) = spawn("test", sink.clone(), batching, Some(handle));
        let stuck = sink.gate.lock().await;
        queue.push(record());
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        // The first record's batch is in the (stuck) sink; the queue takes 10 more, drops 5.
        for _ in 0..15 {
            queue.push(record());
        }
        assert_eq!(queue.counts().dropped.load(Ordering::Relaxed), 5);
        assert!(metrics.render().contains("sluice_callback_dropped_records_total{callback_name=\"test\"} 5\n"));
        drop(stuck);
        tokio::time::sleep(Duration::from_secs(3)).await;
        settle().await;
        assert_eq!(*sink.batches.lock().unwrap(), [1, 4, 4, 2]);
        assert_eq!(queue.counts().delivered.load(Ordering::Relaxed), 11);
    }

    /// A failed delivery is counted in LiteLLM's failure metric, and the task goes on.
    #[tokio::test(start_paused = true)]
    async fn failed_deliveries_are_counted_and_the_task_goes_on() {
        let sink = Recorder::default();
        sink.fail.store(true, Ordering::Relaxed);
        let metrics = sluice_metrics::Metrics::new();
        let batching = Batching { capacity: 10, max_records: 2, max_wait: Duration::from_secs(1) };
        let (queue, _task) = spawn("generic_api", sink.clone(), batching, Some(metrics.callback("generic_api")));
        for _ in 0..4 {
            queue.push(record());
        }
        settle().await;
        assert_eq!(queue.counts().failed_batches.load(Ordering::Relaxed), 2);
        let text = metrics.render();
        assert!(
            text.contains("litellm_callback_logging_failures_metric_total{callback_name=\"generic_api\"} 2\n"),
            "{text}"
        );
        sink.fail.store(false, Ordering::Relaxed);
        queue.push(record());
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(queue.counts().delivered.load(Ordering::Relaxed), 1);
    }

    /// The first failure is logged at once, the next ones once a minute with their count.
    #[tokio::test(start_paused = true)]
    async fn warnings_are_throttled_with_counts() {
        let mut t = Throttled::default();
        assert_eq!(t.note(0), None);
        assert_eq!(t.note(1), Some(1));
        assert_eq!(t.note(1), None);
        assert_eq!(t.note(2), None);
        tokio::time::advance(WARN_EVERY).await;
        assert_eq!(t.note(0), Some(3));
        assert_eq!(t.note(0), None);
    }

    /// Dropping every queue handle lets the task deliver what is left and end.
    #[tokio::test(start_paused = true)]
    async fn closing_the_queue_delivers_the_rest_and_ends() {
        let sink = Recorder::default();
        let (queue, drain) = spawn("test", sink.clone(), Batching::default(), None);
        for _ in 0..3 {
            queue.push(record());
        }
        drop(queue);
        assert!(drain.finish(Duration::from_secs(5)).await);
        assert_eq!(*sink.batches.lock().unwrap(), [3]);
    }

    /// Finishing delivers what is queued at once (no waiting out the interval) while the request
    /// path still holds its handle; later records are dropped.
    #[tokio::test(start_paused = true)]
    async fn finishing_delivers_what_is_queued_without_waiting() {
        let sink = Recorder::default();
        let (queue, drain) = spawn("test", sink.clone(), Batching::default(), None);
        for _ in 0..3 {
            queue.push(record());
        }
        let started = tokio::time::Instant::now();
        assert!(drain.finish(Duration::from_secs(5)).await);
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(*sink.batches.lock().unwrap(), [3]);
        queue.push(record());
        assert_eq!(queue.counts().dropped.load(Ordering::Relaxed), 1);
    }
}
