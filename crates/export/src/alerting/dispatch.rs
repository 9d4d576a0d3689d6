//! The task between the alert queue and the webhook: it batches alerts per topic (alert type),
//! folds repeats of one subject into one counted line, forgets nothing it has not sent, and
//! sends at most one message per topic per [`Pacing::interval`].
//!
//! The first alert of a quiet topic waits [`Pacing::gather`] for others of a burst to join it;
//! after a message, the topic's next one waits out the interval and carries everything that came
//! meanwhile. A subject already sent is not sent again within [`Pacing::dedup`] (for budgets,
//! [`Pacing::budget_dedup`], LiteLLM's `budget_alert_ttl`): repeats are counted, not posted.
//! A webhook that answers 429 gets the message again after its `Retry-After`.

use super::{clock_time, truncate, Alert, AlertType, AlertTypes, Alerts, InFlight, Level};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a webhook did with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Sent,
    /// Rate-limited (429): send again after this long.
    RetryAfter(Duration),
    /// Refused or unreachable; why, without secrets.
    Failed(String),
}

/// Where messages go.
pub trait AlertSink: Send + Sync + 'static {
    /// Posts one message of topic `kind`.
    fn post(&self, kind: AlertType, text: &str) -> impl Future<Output = Delivery> + Send;
}

/// How alerts are queued, batched and paced.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Alerts waiting in the queue, at most; more are dropped and counted.
    pub capacity: usize,
    /// Between two messages of one topic, at least.
    pub interval: Duration,
    /// How long the first alert of a quiet topic waits for others to join its message.
    pub gather: Duration,
    /// A subject sent is not sent again within this long.
    pub dedup: Duration,
    /// [`Pacing::dedup`] for budget alerts (LiteLLM's `budget_alert_ttl`).
    pub budget_dedup: Duration,
    /// Distinct subjects listed in one message, at most; the rest are counted.
    pub max_lines: usize,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            capacity: 1_000,
            interval: Duration::from_secs(60),
            gather: Duration::from_secs(1),
            dedup: Duration::from_secs(60),
            budget_dedup: Duration::from_secs(24 * 60 * 60),
            max_lines: 20,
        }
    }
}

/// Subjects remembered as recently sent, at most (beyond, the expired ones are forgotten first,
/// then nothing new is remembered until some expire).
const MAX_RECENT: usize = 10_000;

/// The longest message posted: Slack's limit on `text` is 40,000 characters.
const MAX_MESSAGE: usize = 35_000;

/// The longest wait a `Retry-After` is taken for, and the shortest.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often delivery failures are logged while they go on, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The handle that ends the dispatch task: [`AlertDrain::finish`].
#[derive(Debug)]
pub struct AlertDrain {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl AlertDrain {
    /// Sends what is pending at once (pacing aside) and ends the task; true when it finished
    /// within `limit`.
    pub async fn finish(self, limit: Duration) -> bool {
        self.stop.notify_one();
        tokio::time::timeout(limit, self.task).await.is_ok()
    }
}

/// What [`spawn`] is told besides the sink.
#[derive(Debug, Clone)]
pub struct Setup {
    pub types: AlertTypes,
    pub threshold: Duration,
    pub pacing: Pacing,
    pub metrics: Option<sluice_metrics::CallbackMetrics>,
    /// `PROXY_BASE_URL`: LiteLLM ends each message with it, so a reader knows which proxy spoke.
    pub proxy_base_url: Option<String>,
    /// `alerting_args`' outage thresholds and windows.
    pub outage: super::outage::OutageArgs,
}

/// Starts the dispatch task for `sink`. Call from within a Tokio runtime. The task ends when told
/// to ([`AlertDrain::finish`]) or once every [`Alerts`] clone is dropped, after sending what it
/// holds.
pub fn spawn<S: AlertSink>(sink: S, setup: Setup) -> (Alerts, AlertDrain) {
    let (tx, rx) = mpsc::channel(setup.pacing.capacity.max(1));
    let in_flight = setup.types.contains(AlertType::LlmRequestsHanging).then(|| Arc::new(InFlight::default()));
    let alerts = Alerts {
        tx,
        types: setup.types,
        threshold: setup.threshold,
        dropped: Arc::new(AtomicU64::new(0)),
        metrics: setup.metrics.clone(),
        in_flight,
        outages: (setup.types.contains(AlertType::OutageAlerts) || setup.types.contains(AlertType::RegionOutageAlerts))
            .then(|| Arc::new(super::outage::Outages::new(setup.outage))),
        fallbacks: setup.types.contains(AlertType::FallbackReports).then(Default::default),
    };
    let stop = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(run(rx, sink, setup.pacing, setup.metrics, setup.proxy_base_url, stop.clone()));
    (alerts, AlertDrain { stop, task })
}

/// One subject's line in a topic's next message.
#[derive(Debug)]
struct Line {
    subject: String,
    level: Level,
    message: String,
    count: u64,
    /// Unix seconds of the first alert of the line: its timestamp.
    at: u64,
}

/// One topic's alerts waiting for its next message.
#[derive(Debug, Default)]
struct Topic {
    lines: Vec<Line>,
    /// Alerts of subjects beyond [`Pacing::max_lines`].
    more: u64,
    /// When the next message may go; `None` while nothing waits.
    due: Option<Instant>,
    last_sent: Option<Instant>,
}

impl Topic {
    fn total(&self) -> u64 {
        self.lines.iter().map(|l| l.count).sum::<u64>() + self.more
    }
}

struct Dispatcher<S> {
    sink: S,
    pacing: Pacing,
    proxy_base_url: Option<String>,
    topics: BTreeMap<AlertType, Topic>,
    /// (topic, subject) → when it was last sent.
    recent: HashMap<(AlertType, String), Instant>,
    metrics: Option<sluice_metrics::CallbackMetrics>,
    failures: u64,
    last_warned: Option<Instant>,
}

async fn run<S: AlertSink>(
    mut rx: mpsc::Receiver<Alert>,
    sink: S,
    pacing: Pacing,
    metrics: Option<sluice_metrics::CallbackMetrics>,
    proxy_base_url: Option<String>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut d = Dispatcher {
        sink,
        pacing,
        proxy_base_url,
        topics: BTreeMap::new(),
        recent: HashMap::new(),
        metrics,
        failures: 0,
        last_warned: None,
    };
    loop {
        let due = d.topics.values().filter_map(|t| t.due).min();
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = rx.recv() => match got {
                Some(alert) => d.take(alert, Instant::now()),
                None => break,
            },
            () = sleep => d.send_due(Instant::now(), false).await,
            () = stop.notified() => {
                rx.close();
                while let Ok(alert) = rx.try_recv() {
                    d.take(alert, Instant::now());
                }
                break;
            }
        }
    }
    // The end: what is pending goes now, whatever the pacing.
    d.send_due(Instant::now(), true).await;
}

impl<S: AlertSink> Dispatcher<S> {
    fn dedup_for(&self, kind: AlertType) -> Duration {
        match kind {
            AlertType::BudgetAlerts => self.pacing.budget_dedup,
            _ => self.pacing.dedup,
        }
    }

    /// Files one alert under its topic.
    fn take(&mut self, alert: Alert, now: Instant) {
        let window = self.dedup_for(alert.kind);
        let key = (alert.kind, alert.subject);
        let sent_lately = self.recent.get(&key).is_some_and(|at| now.duration_since(*at) < window);
        let (kind, subject) = key;
        let topic = self.topics.entry(kind).or_default();
        if let Some(line) = topic.lines.iter_mut().find(|l| l.subject == subject) {
            line.count += 1;
            return;
        }
        if sent_lately {
            // Sent within the window: a repeat, not news.
            return;
        }
        if topic.lines.len() < self.pacing.max_lines.max(1) {
            let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            topic.lines.push(Line { subject, level: alert.level, message: alert.message, count: 1, at });
        } else {
            topic.more += 1;
        }
        if topic.due.is_none() {
            let gathered = now + self.pacing.gather;
            let paced = topic.last_sent.map(|at| at + self.pacing.interval);
            topic.due = Some(paced.map_or(gathered, |p| p.max(gathered)));
        }
    }

    /// Sends each topic whose time has come (every topic with alerts, when `all`).
    async fn send_due(&mut self, now: Instant, all: bool) {
        let due: Vec<AlertType> =
            self.topics.iter().filter(|(_, t)| t.due.is_some_and(|at| all || at <= now)).map(|(k, _)| *k).collect();
        for kind in due {
            let Some(topic) = self.topics.get(&kind) else { continue };
            let mut text = compose(kind, topic);
            if let Some(url) = &self.proxy_base_url {
                text.push_str(&format!("\n\nProxy URL: `{url}`"));
            }
            let outcome = self.sink.post(kind, &text).await;
            let now = Instant::now();
            let Some(topic) = self.topics.get_mut(&kind) else { continue };
            match outcome {
                Delivery::RetryAfter(wait) if !all => {
                    topic.due = Some(now + wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER));
                    continue;
                }
                Delivery::Sent => {}
                Delivery::RetryAfter(_) => self.failed(kind, "rate-limited (429) at shutdown".into(), now),
                Delivery::Failed(why) => self.failed(kind, why, now),
            }
            let Some(topic) = self.topics.get_mut(&kind) else { continue };
            topic.due = None;
            topic.more = 0;
            topic.last_sent = Some(now);
            let lines = std::mem::take(&mut topic.lines);
            self.remember(kind, lines, now);
        }
    }

    /// Notes the subjects just sent, so that repeats within the window are not.
    fn remember(&mut self, kind: AlertType, lines: Vec<Line>, now: Instant) {
        if self.recent.len() + lines.len() > MAX_RECENT {
            let (dedup, budget) = (self.pacing.dedup, self.pacing.budget_dedup);
            self.recent.retain(|(k, _), at| {
                let window = if *k == AlertType::BudgetAlerts { budget } else { dedup };
                now.duration_since(*at) < window
            });
        }
        for line in lines {
            if self.recent.len() >= MAX_RECENT {
                break;
            }
            self.recent.insert((kind, line.subject), now);
        }
    }

    fn failed(&mut self, kind: AlertType, why: String, now: Instant) {
        self.failures += 1;
        if let Some(m) = &self.metrics {
            m.failed();
        }
        if self.last_warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            tracing::warn!(
                alert_type = kind.name(),
                failures = self.failures,
                "alerting could not deliver a message (dropped): {why}"
            );
            self.last_warned = Some(now);
            self.failures = 0;
        }
    }
}

/// The message text of a topic's pending alerts, in LiteLLM's layout: `Level`, `Timestamp` and
/// `Message` per alert (a report as it is), `[Num Alerts: N]` first when it carries several.
fn compose(kind: AlertType, topic: &Topic) -> String {
    let mut text = String::new();
    let total = topic.total();
    if total > 1 {
        text.push_str(&format!("[Num Alerts: {total}]\n\n"));
    }
    for (i, line) in topic.lines.iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        match kind {
            AlertType::DailyReports | AlertType::SpendReports | AlertType::NewModelAdded => {
                text.push_str(&line.message)
            }
            _ => text.push_str(&format!(
                "Level: `{}`\nTimestamp: `{}`\n\nMessage: {}",
                line.level.name(),
                clock_time(line.at),
                line.message
            )),
        }
        if line.count > 1 {
            text.push_str(&format!("\n(repeated {} times)", line.count));
        }
    }
    if topic.more > 0 {
        text.push_str(&format!("\n\n…and {} more `{}` alerts", topic.more, kind.name()));
    }
    if text.len() > MAX_MESSAGE {
        truncate(&mut text, MAX_MESSAGE);
        text.push_str("\n…(cut)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps each message posted; answers what the test queues (else `Sent`).
    #[derive(Clone, Default)]
    struct Recorder {
        posted: Arc<Mutex<Vec<(AlertType, String)>>>,
        answers: Arc<Mutex<Vec<Delivery>>>,
    }

    impl AlertSink for Recorder {
        async fn post(&self, kind: AlertType, text: &str) -> Delivery {
            self.posted.lock().unwrap().push((kind, text.to_string()));
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                Delivery::Sent
            } else {
                answers.remove(0)
            }
        }
    }

    fn setup(pacing: Pacing) -> Setup {
        Setup {
            types: AlertTypes::all(),
            threshold: Duration::from_secs(300),
            pacing,
            metrics: None,
            proxy_base_url: Some("https://llm.example.com".into()),
            outage: Default::default(),
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn slow(subject: &str) -> Alert {
        Alert::new(AlertType::LlmTooSlow, Level::Low, subject, format!("`Responses are slow` {subject}"))
    }

    /// A burst of alerts of one topic is one message, sent once the gathering wait is over;
    /// repeats of a subject are one line with its count.
    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_message_with_counts() {
        let sink = Recorder::default();
        let (alerts, _drain) = spawn(sink.clone(), setup(Pacing::default()));
        for i in 0..10 {
            alerts.send(slow(&format!("req-{}", i % 3)));
        }
        settle().await;
        assert!(sink.posted.lock().unwrap().is_empty(), "the burst is gathered first");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        settle().await;
        let posted = sink.posted.lock().unwrap().clone();
        assert_eq!(posted.len(), 1, "{posted:?}");
        let (kind, text) = &posted[0];
        assert_eq!(*kind, AlertType::LlmTooSlow);
        assert!(text.starts_with("[Num Alerts: 10]\n\nLevel: `Low`\nTimestamp: `"), "{text}");
        assert!(text.contains("Message: `Responses are slow` req-0\n(repeated 4 times)"), "{text}");
        assert!(text.contains("req-1\n(repeated 3 times)") && text.contains("req-2\n(repeated 3 times)"), "{text}");
        assert!(text.ends_with("\n\nProxy URL: `https://llm.example.com`"), "{text}");
    }

    /// After a message, a topic's next one waits out the minute and carries everything that
    /// came meanwhile; another topic is not held up by it.
    #[tokio::test(start_paused = true)]
    async fn at_most_one_message_per_topic_per_minute() {
        let sink = Recorder::default();
        let (alerts, _drain) = spawn(sink.clone(), setup(Pacing::default()));
        alerts.send(slow("a"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(sink.posted.lock().unwrap().len(), 1);
        for s in ["b", "c", "d"] {
            alerts.send(slow(s));
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        alerts.send(Alert::new(AlertType::DbExceptions, Level::High, "database", "DB down"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        {
            let posted = sink.posted.lock().unwrap();
            assert_eq!(posted.len(), 2, "only the other topic's message: {posted:?}");
            assert_eq!(posted[1].0, AlertType::DbExceptions);
        }
        // One minute after the first slow message (at 1 s; now is 19 s): the next one, with
        // the three.
        tokio::time::sleep(Duration::from_secs(40)).await;
        settle().await;
        assert_eq!(sink.posted.lock().unwrap().len(), 2, "not before the minute is over");
        tokio::time::sleep(Duration::from_secs(3)).await;
        settle().await;
        let posted = sink.posted.lock().unwrap().clone();
        assert_eq!(posted.len(), 3, "{posted:?}");
        assert!(posted[2].1.starts_with("[Num Alerts: 3]"), "{}", posted[2].1);
        for s in ["b", "c", "d"] {
            assert!(posted[2].1.contains(&format!("slow` {s}")), "{}", posted[2].1);
        }
    }

    /// A subject sent is not sent again within the dedup window (a day for budgets), and is
    /// again after it.
    #[tokio::test(start_paused = true)]
    async fn repeats_within_the_window_are_not_sent() {
        let sink = Recorder::default();
        let pacing = Pacing { budget_dedup: Duration::from_secs(3_600), ..Pacing::default() };
        let (alerts, _drain) = spawn(sink.clone(), setup(pacing));
        let budget = || Alert::new(AlertType::BudgetAlerts, Level::High, "key:abc", "Key Budget: Budget Crossed");
        alerts.send(budget());
        alerts.send(slow("x"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(sink.posted.lock().unwrap().len(), 2);
        tokio::time::sleep(Duration::from_secs(70)).await;
        alerts.send(budget());
        alerts.send(slow("x"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        {
            let posted = sink.posted.lock().unwrap();
            assert_eq!(posted.len(), 3, "the slow subject again after a minute, not the budget: {posted:?}");
            assert_eq!(posted[2].0, AlertType::LlmTooSlow);
        }
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        alerts.send(budget());
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        let posted = sink.posted.lock().unwrap();
        assert_eq!(posted.len(), 4);
        assert_eq!(posted[3].0, AlertType::BudgetAlerts);
    }

    /// A 429 is answered by sending the same message again after `Retry-After`, with what joined
    /// it meanwhile.
    #[tokio::test(start_paused = true)]
    async fn rate_limited_messages_are_sent_again_after_retry_after() {
        let sink = Recorder::default();
        sink.answers.lock().unwrap().push(Delivery::RetryAfter(Duration::from_secs(5)));
        let (alerts, _drain) = spawn(sink.clone(), setup(Pacing::default()));
        alerts.send(slow("a"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        alerts.send(slow("b"));
        tokio::time::sleep(Duration::from_secs(3)).await;
        settle().await;
        assert_eq!(sink.posted.lock().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        let posted = sink.posted.lock().unwrap();
        assert_eq!(posted.len(), 2, "{posted:?}");
        assert!(posted[1].1.starts_with("[Num Alerts: 2]") && posted[1].1.contains("slow` b"), "{}", posted[1].1);
    }

    /// The queue is bounded: alerts beyond it are dropped and counted; types not wanted are not
    /// queued at all.
    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_and_counts() {
        let sink = Recorder::default();
        let metrics = sluice_metrics::Metrics::new();
        let mut s = setup(Pacing { capacity: 5, ..Pacing::default() });
        s.types = AlertTypes::none().with(AlertType::LlmTooSlow);
        s.metrics = Some(metrics.callback("slack"));
        let (alerts, _drain) = spawn(sink.clone(), s);
        alerts.send(Alert::new(AlertType::DbExceptions, Level::High, "database", "not wanted"));
        for i in 0..8 {
            alerts.send(slow(&i.to_string()));
        }
        assert_eq!(alerts.dropped(), 3);
        assert!(metrics.render().contains("sluice_callback_dropped_records_total{callback_name=\"slack\"} 3\n"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        let posted = sink.posted.lock().unwrap();
        assert_eq!(posted.len(), 1);
        assert!(posted[0].1.starts_with("[Num Alerts: 5]") && !posted[0].1.contains("not wanted"));
    }

    /// Subjects beyond the listed lines are counted in the message, not listed.
    #[tokio::test(start_paused = true)]
    async fn many_subjects_are_listed_up_to_a_bound() {
        let sink = Recorder::default();
        let (alerts, drain) = spawn(sink.clone(), setup(Pacing { max_lines: 3, ..Pacing::default() }));
        for i in 0..7 {
            alerts.send(slow(&format!("s{i}")));
        }
        settle().await;
        assert!(drain.finish(Duration::from_secs(1)).await, "finishing sends at once");
        let posted = sink.posted.lock().unwrap();
        assert_eq!(posted.len(), 1);
        let text = &posted[0].1;
        assert!(
            text.starts_with("[Num Alerts: 7]") && text.contains("…and 4 more `llm_too_slow` alerts\n\nProxy URL: `"),
            "{text}"
        );
        assert!(text.contains("slow` s2") && !text.contains("slow` s3"), "{text}");
    }

    /// One alert alone is LiteLLM's layout without a count; a report is posted as it is.
    #[test]
    fn one_alert_reads_as_litellm_writes_it() {
        let mut topic = Topic::default();
        topic.lines.push(Line {
            subject: "db".into(),
            level: Level::High,
            message: "DB read/write call failed".into(),
            count: 1,
            at: 3_723,
        });
        assert_eq!(
            compose(AlertType::DbExceptions, &topic),
            "Level: `High`\nTimestamp: `01:02:03`\n\nMessage: DB read/write call failed"
        );
        topic.lines[0].message = "*💸 Daily Spend Report*".into();
        assert_eq!(compose(AlertType::DailyReports, &topic), "*💸 Daily Spend Report*");
    }
}
