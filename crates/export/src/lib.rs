//! Observability sinks: LiteLLM's logging callbacks, fed off the request path.
//!
//! A finished model call becomes one [`LogRecord`] (LiteLLM's `StandardLoggingPayload`), which
//! [`Callbacks::log`] hands to each sink that wants it — a `try_send` per sink, never a wait.
//! Each sink has its own bounded queue and a background task that batches and delivers
//! ([`queue`]); a collector that is slow or down costs dropped records (counted, in
//! `sluice_callback_dropped_records`) and failed deliveries (in LiteLLM's
//! `litellm_callback_logging_failures_metric`), never a request's time or unbounded memory.
//!
//! Sinks: [`generic_api`] (LiteLLM's webhook callback), [`langfuse`] (Langfuse's ingestion API,
//! to the configured project or to a key's or team's own), [`s3`] (one object per record in a
//! bucket, SigV4-signed), [`datadog`] (Datadog's logs intake) and [`otel`] (OpenTelemetry
//! traces: `otel`, `langfuse_otel`). A request carries its [`trace::TraceContext`] only while an
//! OpenTelemetry sink runs, and what it said for Langfuse ([`request_metadata`]) only while a
//! sink reads it.
//! Beside the callbacks, [`alerting`]: LiteLLM's Slack alerts, their own queue and pacing.
//!
//! The crate knows nothing of keys, routing or HTTP serving: the server builds the records'
//! contents (in `access::charge`) and decides which callbacks run from the config.

pub mod alerting;
pub mod collector;
pub mod content;
pub mod datadog;
pub mod generic_api;
pub mod langfuse;
pub mod otel;
pub mod queue;
pub mod record;
pub mod request_metadata;
pub mod s3;
pub mod trace;

pub use queue::{Batching, Drain, Queue, Sink};
pub use record::{ErrorInformation, LogRecord, Metadata, Status};

use std::sync::Arc;

/// LiteLLM's name of the Langfuse callback.
pub const LANGFUSE: &str = "langfuse";

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

/// One running callback: its name, the outcomes the config gives it, whether it also takes the
/// records that carry their own destination for it (a key's or team's Langfuse project, with
/// the outcomes that key asked for), and its queue.
#[derive(Debug)]
struct Running {
    name: &'static str,
    events: Events,
    own_projects: bool,
    queue: Queue,
}

impl Running {
    fn takes(&self, record: &LogRecord) -> bool {
        self.events.wants(record.status)
            || (self.own_projects && record.langfuse.as_ref().is_some_and(|o| o.events.wants(record.status)))
    }
}

/// The running logging callbacks.
#[derive(Debug, Default)]
pub struct Callbacks {
    sinks: Vec<Running>,
    /// An OpenTelemetry sink runs: requests keep a trace ([`trace`]).
    traced: bool,
    /// Every record carries the prompt and the answer: a configured sink writes them out
    /// (LiteLLM's default; off with `turn_off_message_logging`).
    content: bool,
    /// Messages may be logged at all (not `turn_off_message_logging`): a call whose key or team
    /// has its own Langfuse project keeps its prompt and answer for that project even when no
    /// configured sink writes content.
    message_logging: bool,
    /// `redact_messages_in_exceptions`: records carry no exception message.
    redact_exceptions: bool,
    /// Taken by [`Callbacks::finish`].
    drains: std::sync::Mutex<Vec<Drain>>,
}

impl Callbacks {
    /// Adds a running sink ([`queue::spawn`]).
    pub fn add(&mut self, name: &'static str, events: Events, running: (Queue, Drain)) {
        self.push(Running { name, events, own_projects: false, queue: running.0 }, running.1);
    }

    /// Adds the running `langfuse` sink: it takes the records `events` names (none when the
    /// config does not name `langfuse`), and every record whose key or team has its own project
    /// for the record's outcome.
    pub fn add_langfuse(&mut self, events: Events, running: (Queue, Drain)) {
        self.push(Running { name: LANGFUSE, events, own_projects: true, queue: running.0 }, running.1);
    }

    fn push(&mut self, running: Running, drain: Drain) {
        self.sinks.push(running);
        self.drains.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).push(drain);
    }

    /// An OpenTelemetry sink runs: from now on requests keep their trace.
    pub fn trace(&mut self) {
        self.traced = true;
    }

    /// Whether records carry the prompt and the answer ([`content`]): `keep` when a configured
    /// sink writes content out, `allowed` unless `turn_off_message_logging` (a call for a key's
    /// or team's own Langfuse project then keeps it too).
    pub fn keep_content(&mut self, keep: bool, allowed: bool) {
        self.content = keep && allowed;
        self.message_logging = allowed;
    }

    /// `litellm_settings.redact_messages_in_exceptions`: a failure's record says
    /// [`record::REDACTED`] instead of its message, and its span has no `exception.message`.
    pub fn redact_exceptions(&mut self, redact: bool) {
        self.redact_exceptions = redact;
    }

    /// A failure's `error_str`: its message, bounded ([`record::bounded_error`]), or
    /// [`record::REDACTED`].
    pub fn error_str(&self, message: &str) -> String {
        match self.redact_exceptions {
            true => record::REDACTED.to_string(),
            false => record::bounded_error(message),
        }
    }

    /// Whether a call's record carries the prompt and the answer: every record's when a
    /// configured sink writes them; else a call whose key or team has its own Langfuse project
    /// (`own_project`) when messages may be logged. The `langfuse` sink that runs for keys' and
    /// teams' own projects alone does not make every request hold its prompt.
    pub fn keeps_content(&self, own_project: bool) -> bool {
        self.content || (own_project && self.message_logging && self.takes_own_projects())
    }

    /// `json` (the prompt or the answer) for a record, held within the bounds of [`content`],
    /// when the call's record carries content ([`keeps_content`](Self::keeps_content)).
    pub fn content(&self, json: &[u8], own_project: bool) -> Option<content::Content> {
        self.keeps_content(own_project).then(|| content::Content::hold(json)).flatten()
    }

    /// Whether requests keep a trace for these callbacks.
    pub fn traced(&self) -> bool {
        self.traced
    }

    /// Whether a record carries what its request said for Langfuse (its `metadata` keys and
    /// `langfuse_*` headers, [`request_metadata`]) whatever its key: a configured `langfuse`
    /// sink or an OpenTelemetry one (a key's or team's own Langfuse project also asks for it,
    /// which the caller knows).
    pub fn reads_request_metadata(&self) -> bool {
        self.traced || self.sinks.iter().any(|s| s.own_projects && s.events != Events::default())
    }

    /// At shutdown: every sink delivers what it holds, for at most `limit` each (a collector
    /// that is down must not hold the process).
    pub async fn finish(&self, limit: std::time::Duration) {
        let drains = std::mem::take(&mut *self.drains.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for (drain, running) in drains.into_iter().zip(&self.sinks) {
            if !drain.finish(limit).await {
                tracing::warn!(callback = running.name, "logging callback did not deliver its last records in time");
            }
        }
    }

    /// Whether any callback takes every record with `status`: when none does (and the caller's
    /// key or team has no project of its own for it), the caller need not build one.
    pub fn wants(&self, status: Status) -> bool {
        self.sinks.iter().any(|s| s.events.wants(status))
    }

    /// Whether a key's or team's own Langfuse project can be logged to.
    pub fn takes_own_projects(&self) -> bool {
        self.sinks.iter().any(|s| s.own_projects)
    }

    /// Hands `record` to every callback that takes it: one shared allocation, and a
    /// non-blocking enqueue per callback.
    pub fn log(&self, record: LogRecord) {
        let record = Arc::new(record);
        for running in &self.sinks {
            if running.takes(&record) {
                running.queue.push(record.clone());
            }
        }
    }

    /// The names of the callbacks the config runs (not the `langfuse` sink that runs only for
    /// keys' and teams' own projects).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.sinks.iter().filter(|s| s.events != Events::default()).map(|s| s.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nowhere;

    impl Sink for Nowhere {
        async fn send(&self, _: &[Arc<LogRecord>]) -> Result<(), String> {
            Ok(())
        }
    }

    /// Which calls' records hold the prompt and the answer: every call's with a configured sink
    /// that writes them; a call with its own Langfuse project's when only the `langfuse` sink
    /// for own projects runs; none with `turn_off_message_logging`.
    #[tokio::test]
    async fn content_is_kept_for_configured_sinks_and_own_projects_unless_turned_off() {
        let body = bytes::Bytes::from_static(br#"[{"role":"user","content":"hi"}]"#);
        for (configured, allowed, own, kept) in [
            (true, true, false, true),
            (true, true, true, true),
            (false, true, true, true),
            (false, true, false, false),
            (true, false, true, false),
            (false, false, true, false),
        ] {
            let mut callbacks = Callbacks::default();
            callbacks.add_langfuse(Events::default(), queue::spawn("langfuse", Nowhere, Batching::default(), None));
            callbacks.keep_content(configured, allowed);
            let case = (configured, allowed, own);
            assert_eq!(callbacks.keeps_content(own), kept, "{case:?}");
            assert_eq!(callbacks.content(&body, own).is_some(), kept, "{case:?}");
        }
        // Without the own-projects sink, a call's own project holds nothing.
        let mut callbacks = Callbacks::default();
        callbacks.keep_content(false, true);
        assert!(!callbacks.keeps_content(true));
    }
}
