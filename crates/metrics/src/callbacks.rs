//! The logging callbacks' own health: `litellm_callback_logging_failures_metric` (LiteLLM's name
//! and label: a batch a callback could not deliver) and `sluice_callback_dropped_records` (records
//! a callback's full queue had no room for; LiteLLM's queues are unbounded, so it has no such
//! family).
//!
//! A callback resolves its two series once, when it is built ([`Metrics::callback`]); counting
//! afterwards is one atomic add, with no lock and no allocation, wherever it happens.
//!
//! [`Metrics::callback`]: crate::Metrics::callback

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallbackLabels {
    pub callback_name: String,
}

#[derive(Debug, Default)]
pub(crate) struct CallbackFamilies {
    failures: Family<CallbackLabels, Counter>,
    dropped: Family<CallbackLabels, Counter>,
}

impl CallbackFamilies {
    pub(crate) fn register(r: &mut Registry) -> CallbackFamilies {
        let f = CallbackFamilies::default();
        r.register(
            "litellm_callback_logging_failures_metric",
            "Total number of failures when emitting logs to callbacks",
            f.failures.clone(),
        );
        r.register(
            "sluice_callback_dropped_records",
            "Logging records a callback dropped because its queue was full (its collector slow or down)",
            f.dropped.clone(),
        );
        f
    }

    pub(crate) fn series(&self, callback_name: &str) -> CallbackMetrics {
        let labels = CallbackLabels { callback_name: callback_name.to_string() };
        CallbackMetrics {
            failures: self.failures.get_or_create(&labels).clone(),
            dropped: self.dropped.get_or_create(&labels).clone(),
        }
    }
}

/// One callback's two counters, resolved once: cloning shares the series.
#[derive(Debug, Clone, Default)]
pub struct CallbackMetrics {
    failures: Counter,
    dropped: Counter,
}

impl CallbackMetrics {
    /// A delivery to the callback's collector failed (refused, timed out, unreachable).
    pub fn failed(&self) {
        self.failures.inc();
    }

    /// `n` records were dropped for want of room in the callback's queue.
    pub fn dropped(&self, n: u64) {
        self.dropped.inc_by(n);
    }
}
