//! LiteLLM's alerting (`general_settings.alerting: ["slack"]`): events worth a person's attention
//! — budgets crossed, deployments cooled down and back, slow and hanging requests, the database
//! or Redis down and back, the daily spend report — sent to a Slack incoming webhook.
//!
//! Whoever notices an event builds an [`Alert`] and hands it to [`Alerts::send`]: one
//! `try_send` into a bounded queue, never a wait (a full queue drops the alert and counts it).
//! A background task ([`dispatch`]) batches what arrives per topic (LiteLLM's `alert_types`),
//! folds repeats of one subject into one line (deduplication within a window), and sends at most
//! one message per topic per minute, collecting everything that came meanwhile into it.
//!
//! The module knows nothing of keys, routers or databases: `access` reports budgets and slow
//! calls, the server watches cooldowns, health and requests in flight ([`InFlight`]), reports
//! failed attempts (counted into outages, [`outage`]) and fallbacks ([`fallbacks`]), and sends
//! the daily report.

pub mod dispatch;
pub mod fallbacks;
pub mod in_flight;
pub mod outage;
pub mod slack;

pub use dispatch::{spawn, AlertDrain, AlertSink, Delivery, Pacing, Setup};
pub use in_flight::{InFlight, Tracked};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// LiteLLM's alert types (`general_settings.alert_types`), each a topic of its own: a topic gets
/// at most one message a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertType {
    LlmExceptions,
    LlmTooSlow,
    LlmRequestsHanging,
    BudgetAlerts,
    DbExceptions,
    DailyReports,
    SpendReports,
    FallbackReports,
    CooldownDeployment,
    NewModelAdded,
    OutageAlerts,
    RegionOutageAlerts,
}

impl AlertType {
    /// Every type, in LiteLLM's order.
    pub const ALL: [AlertType; 12] = [
        AlertType::LlmExceptions,
        AlertType::LlmTooSlow,
        AlertType::LlmRequestsHanging,
        AlertType::BudgetAlerts,
        AlertType::DbExceptions,
        AlertType::DailyReports,
        AlertType::SpendReports,
        AlertType::FallbackReports,
        AlertType::CooldownDeployment,
        AlertType::NewModelAdded,
        AlertType::OutageAlerts,
        AlertType::RegionOutageAlerts,
    ];

    /// LiteLLM's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            AlertType::LlmExceptions => "llm_exceptions",
            AlertType::LlmTooSlow => "llm_too_slow",
            AlertType::LlmRequestsHanging => "llm_requests_hanging",
            AlertType::BudgetAlerts => "budget_alerts",
            AlertType::DbExceptions => "db_exceptions",
            AlertType::DailyReports => "daily_reports",
            AlertType::SpendReports => "spend_reports",
            AlertType::FallbackReports => "fallback_reports",
            AlertType::CooldownDeployment => "cooldown_deployment",
            AlertType::NewModelAdded => "new_model_added",
            AlertType::OutageAlerts => "outage_alerts",
            AlertType::RegionOutageAlerts => "region_outage_alerts",
        }
    }

    pub fn from_name(name: &str) -> Option<AlertType> {
        AlertType::ALL.into_iter().find(|t| t.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of alert types: the ones `alert_types` turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertTypes(u32);

impl AlertTypes {
    /// Every type: LiteLLM's default when `alert_types` is not set.
    pub fn all() -> AlertTypes {
        AlertTypes(AlertType::ALL.iter().fold(0, |bits, t| bits | t.bit()))
    }

    pub fn none() -> AlertTypes {
        AlertTypes(0)
    }

    pub fn with(self, t: AlertType) -> AlertTypes {
        AlertTypes(self.0 | t.bit())
    }

    pub fn contains(self, t: AlertType) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = AlertType> {
        AlertType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

/// How urgent an alert is, LiteLLM's `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
        }
    }
}

/// One event worth telling a person about.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertType,
    pub level: Level,
    /// What the alert is about (a key's hash, a deployment's id, "database"): alerts of one type
    /// and subject within the dedup window are one line of a message, counted.
    pub subject: String,
    /// The text a person reads, in LiteLLM's words (Slack markdown).
    pub message: String,
}

/// The longest message text one alert carries: a report of many rows is cut here.
pub const MAX_ALERT_TEXT: usize = 8 * 1024;

/// The longest subject kept for deduplication.
pub const MAX_SUBJECT: usize = 256;

impl Alert {
    /// An alert, its subject and message bounded ([`MAX_SUBJECT`], [`MAX_ALERT_TEXT`]).
    pub fn new(kind: AlertType, level: Level, subject: impl Into<String>, message: impl Into<String>) -> Alert {
        let mut subject = subject.into();
        let mut message = message.into();
        truncate(&mut subject, MAX_SUBJECT);
        if message.len() > MAX_ALERT_TEXT {
            truncate(&mut message, MAX_ALERT_TEXT);
            message.push('…');
        }
        Alert { kind, level, subject, message }
    }
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The senders' end of the alert queue, cheap to clone. Held (in an `Option` or a `OnceLock`)
/// only when alerting is on: with it off, nobody builds an alert.
#[derive(Debug, Clone)]
pub struct Alerts {
    tx: mpsc::Sender<Alert>,
    types: AlertTypes,
    /// `alerting_threshold`: a call slower than this is slow, one unanswered this long hangs.
    threshold: Duration,
    dropped: Arc<AtomicU64>,
    metrics: Option<sluice_metrics::CallbackMetrics>,
    in_flight: Option<Arc<InFlight>>,
    /// The errors counted for outage alerts (only with `outage_alerts` or
    /// `region_outage_alerts`).
    outages: Option<Arc<outage::Outages>>,
    /// The fallbacks since the last report (only with `fallback_reports`).
    fallbacks: Option<Arc<fallbacks::Fallbacks>>,
}

impl Alerts {
    /// Whether alerts of type `t` are wanted: check before building one.
    pub fn wants(&self, t: AlertType) -> bool {
        self.types.contains(t)
    }

    pub fn types(&self) -> AlertTypes {
        self.types
    }

    pub fn threshold(&self) -> Duration {
        self.threshold
    }

    /// Queues `alert` (dropped unless its type is wanted); a full queue drops it and counts it.
    pub fn send(&self, alert: Alert) {
        if !self.wants(alert.kind) {
            return;
        }
        if self.tx.try_send(alert).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                m.dropped(1);
            }
        }
    }

    /// Alerts dropped for want of room in the queue since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The requests in flight, for the hanging-request scan (only with `llm_requests_hanging`).
    pub fn in_flight(&self) -> Option<&Arc<InFlight>> {
        self.in_flight.as_ref()
    }

    /// An upstream attempt failed: counted for the outage alerts when they are on
    /// ([`outage`]).
    pub fn attempt_failed(&self, failed: &outage::FailedAttempt<'_>) {
        if let Some(o) = &self.outages {
            o.failed(self, failed);
        }
    }

    /// A call to `from` fell back to `to` and was served (`ok`) or not: counted for the next
    /// fallback report when `fallback_reports` is on ([`fallbacks`]).
    pub fn fallback(&self, from: &str, to: &str, ok: bool) {
        if let Some(f) = &self.fallbacks {
            f.record(from, to, ok);
        }
    }

    /// The fallback report since the last one, if there were any (and the type is on).
    pub fn take_fallback_report(&self) -> Option<Alert> {
        let text = self.fallbacks.as_ref()?.take_report()?;
        Some(Alert::new(AlertType::FallbackReports, Level::Low, "fallbacks", text))
    }

    /// Starts tracking a request to `model` as in flight until the guard is dropped, when
    /// hanging requests are watched.
    pub fn track(&self, model: &str) -> Option<Tracked> {
        self.in_flight.as_ref().map(|f| f.track(model))
    }
}

/// `HH:MM:SS` (UTC) of `unix_seconds`, the timestamp LiteLLM puts on an alert.
pub fn clock_time(unix_seconds: u64) -> String {
    let s = unix_seconds % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_hold_what_was_added() {
        for t in AlertType::ALL {
            assert_eq!(AlertType::from_name(t.name()), Some(t));
        }
        assert_eq!(AlertType::from_name("slack"), None);
        let set = AlertTypes::none().with(AlertType::BudgetAlerts).with(AlertType::LlmTooSlow);
        assert!(set.contains(AlertType::BudgetAlerts) && !set.contains(AlertType::DbExceptions));
        assert_eq!(set.iter().collect::<Vec<_>>(), [AlertType::LlmTooSlow, AlertType::BudgetAlerts]);
        assert_eq!(AlertTypes::all().iter().count(), 12);
    }

    #[test]
    fn alerts_are_bounded() {
        let a = Alert::new(AlertType::DailyReports, Level::Low, "é".repeat(400), "x".repeat(20_000));
        assert!(a.subject.len() <= MAX_SUBJECT);
        assert!(a.message.len() <= MAX_ALERT_TEXT + "…".len());
        assert_eq!(clock_time(86_400 * 3 + 3_723), "01:02:03");
    }
}
