//! Observability sinks: LiteLLM's logging callbacks, fed off the request path.
//!
//! A finished model call becomes one [`LogRecord`] (LiteLLM's `StandardLoggingPayload`), which
//! [`Callbacks::log`] hands to each sink that wants it — a `try_send` per sink, never a wait.
//! Each sink has its own bounded queue and a background task that batches and delivers
//! ([`queue`]); a collector that is slow or down costs dropped records (counted, in
//! `sluice_callback_dropped_records`) and failed deliveries (in LiteLLM's
//! `litellm_callback_logging_failures_metric`), never a request's time or unbounded memory.
//!
//! Sinks: [`generic_api`] (LiteLLM's webhook callback), [`s3`] (one object per record in a bucket,
//! SigV4-signed), [`datadog`] (Datadog's logs intake) and [`otel`] (OpenTelemetry traces: `otel`,
//! `langfuse_otel`). A request carries its [`trace::TraceContext`] only while an OpenTelemetry
//! sink runs.
//! Beside the callbacks, [`alerting`]: LiteLLM's Slack alerts, their own queue and pacing.
//!
//! The crate knows nothing of keys, routing or HTTP serving: the server builds the records'
//! contents (in `access::charge`) and decides which callbacks run from the config.

pub mod alerting;
pub mod collector;
pub mod content;
pub mod datadog;
pub mod generic_api;
pub mod otel;
pub mod queue;
pub mod record;
pub mod s3;
pub mod trace;

pub use queue::{Batching, Drain, Queue, Sink};
pub use record::{ErrorInformation, LogRecord, Metadata, Status};

use std::sync::Arc;

/// Which outcomes a callback receives: LiteLLM's `success_callback` (successes),
/// `failure_callback` (failures) and `callbacks` (both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    pub success: bool,
    pub failure: bool,
}

impl Events {
    pub fn wants(self, status: Status) -> bool {
        match status {
            Status::Success => self.success,
            Status::Failure => self.failure,
        }
    }
}

/// The running logging callbacks: each one's name, the outcomes it takes, and its queue.
#[derive(Debug, Default)]
pub struct Callbacks {
    sinks: Vec<(&'static str, Events, Queue)>,
    /// An OpenTelemetry sink runs: requests keep a trace ([`trace`]).
    traced: bool,
    /// Records carry the prompt and the answer (LiteLLM's default; off with
    /// `turn_off_message_logging`).
    content: bool,
    /// Taken by [`Callbacks::finish`].
    drains: std::sync::Mutex<Vec<Drain>>,
}

impl Callbacks {
    /// Adds a running sink ([`queue::spawn`]).
    pub fn add(&mut self, name: &'static str, events: Events, (queue, drain): (Queue, Drain)) {
        self.sinks.push((name, events, queue));
        self.drains.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).push(drain);
    }

    /// An OpenTelemetry sink runs: from now on requests keep their trace.
    pub fn trace(&mut self) {
        self.traced = true;
    }

    /// Whether records carry the prompt and the answer ([`content`]).
    pub fn keep_content(&mut self, keep: bool) {
        self.content = keep;
    }

    /// Whether records carry the prompt and the answer at all.
    pub fn keeps_content(&self) -> bool {
        self.content
    }

    /// Whether a record carries `json` (the prompt or the answer), held within the bounds of
    /// [`content`].
    pub fn content(&self, json: &bytes::Bytes) -> Option<content::Content> {
        self.content.then(|| content::Content::hold(json.clone())).flatten()
    }

    /// Whether requests keep a trace for these callbacks.
    pub fn traced(&self) -> bool {
        self.traced
    }

    /// At shutdown: every sink delivers what it holds, for at most `limit` each (a collector
    /// that is down must not hold the process).
    pub async fn finish(&self, limit: std::time::Duration) {
        let drains = std::mem::take(&mut *self.drains.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for (drain, (name, _, _)) in drains.into_iter().zip(&self.sinks) {
            if !drain.finish(limit).await {
                tracing::warn!(callback = name, "logging callback did not deliver its last records in time");
            }
        }
    }

    /// Whether any callback takes records with `status`: when none does, the caller need not
    /// build one.
    pub fn wants(&self, status: Status) -> bool {
        self.sinks.iter().any(|(_, e, _)| e.wants(status))
    }

    /// Hands `record` to every callback that takes its status: one shared allocation, and a
    /// non-blocking enqueue per callback.
    pub fn log(&self, record: LogRecord) {
        let status = record.status;
        let record = Arc::new(record);
        for (_, events, queue) in &self.sinks {
            if events.wants(status) {
                queue.push(record.clone());
            }
        }
    }

    /// The names of the callbacks running.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.sinks.iter().map(|(n, _, _)| *n)
    }
}
