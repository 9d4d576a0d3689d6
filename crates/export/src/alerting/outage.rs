//! LiteLLM's outage alerts: a deployment answering with timeouts (408) or server errors (5xx)
//! `minor_outage_alert_threshold` times within `outage_alert_ttl` is a minor outage (level
//! Medium), `major_outage_alert_threshold` times a major one (High), each told once per window
//! (`outage_alerts`); the same counted per provider and region, once two or more of its
//! deployments fail (`region_outage_alerts`). Other failures (a 400, a 429, a bad key) are the
//! caller's or the key's, not an outage, and are not counted.
//!
//! Fed only by failed attempts, with alerting on: a short lock on a bounded map, never on a
//! request that succeeded.

use super::{Alert, AlertType, Alerts, Level};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// LiteLLM's `alerting_args` for outages, bounded where they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageArgs {
    /// `outage_alert_ttl`: the window a deployment's errors are counted in.
    pub ttl: Duration,
    /// `region_outage_alert_ttl`: the same for a provider's region.
    pub region_ttl: Duration,
    /// `minor_outage_alert_threshold`.
    pub minor: u32,
    /// `major_outage_alert_threshold`.
    pub major: u32,
    /// `max_outage_alert_list_size`: errors kept per window (LiteLLM's bound on its list; a
    /// threshold above it is never reached, as in LiteLLM).
    pub max_errors: u32,
}

impl Default for OutageArgs {
    /// LiteLLM's defaults.
    fn default() -> Self {
        OutageArgs {
            ttl: Duration::from_secs(60),
            region_ttl: Duration::from_secs(60),
            minor: 5,
            major: 10,
            max_errors: 10,
        }
    }
}

/// The most deployments and regions watched at once: past it, windows that ended are dropped,
/// and a new one is not opened until there is room.
const MAX_WINDOWS: usize = 10_000;
/// The most deployments a region's window remembers (two are enough to tell).
const MAX_REGION_DEPLOYMENTS: usize = 16;

/// One failed attempt, as the outage alerts need it.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt<'a> {
    pub deployment_id: &'a str,
    /// `litellm_params.model`.
    pub model: &'a str,
    pub provider: &'a str,
    pub api_base: Option<&'a str>,
    /// `region_name` (or the provider's own region setting), when the deployment has one.
    pub region: Option<&'a str>,
    /// The HTTP status it failed with (a failure without an answer as LiteLLM counts it: 500,
    /// or 408 for a timeout).
    pub status: u16,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    last: Instant,
    errors: Vec<u16>,
    minor_sent: bool,
    major_sent: bool,
    deployments: Vec<String>,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            opened: now,
            last: now,
            errors: Vec::new(),
            minor_sent: false,
            major_sent: false,
            deployments: Vec::new(),
        }
    }
}

/// What outages are being counted.
#[derive(Debug)]
pub struct Outages {
    args: OutageArgs,
    deployments: Mutex<HashMap<String, Window>>,
    regions: Mutex<HashMap<String, Window>>,
}

/// Which outage a window's count reached, if it is to be told now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Minor,
    Major,
}

impl Outages {
    pub fn new(args: OutageArgs) -> Outages {
        Outages { args, deployments: Mutex::default(), regions: Mutex::default() }
    }

    /// Counts `failed` when it is a timeout or a server error, and tells the outage its count
    /// reaches (each once per window).
    pub fn failed(&self, alerts: &Alerts, failed: &FailedAttempt<'_>) {
        if failed.status != 408 && failed.status < 500 {
            return;
        }
        let now = Instant::now();
        if alerts.wants(AlertType::OutageAlerts) {
            let told = count(&self.deployments, failed.deployment_id, self.args.ttl, &self.args, now, |_| true, failed);
            if let Some((severity, errors, last)) = told {
                let key = ("Model", failed.model);
                alerts.send(outage_alert(AlertType::OutageAlerts, severity, key, failed, &errors, last));
            }
        }
        if let (true, Some(region)) = (alerts.wants(AlertType::RegionOutageAlerts), failed.region) {
            let id = format!("{}{region}", failed.provider);
            // Not one bad deployment: two or more of the region's must be failing.
            let told =
                count(&self.regions, &id, self.args.region_ttl, &self.args, now, |w| w.deployments.len() > 1, failed);
            if let Some((severity, errors, last)) = told {
                alerts.send(outage_alert(
                    AlertType::RegionOutageAlerts,
                    severity,
                    ("Region", region),
                    failed,
                    &errors,
                    last,
                ));
            }
        }
    }
}

/// Adds `failed` to the window of `id` in `windows` (a new one when there is none or it ended);
/// the severity to tell now, with the window's errors and when it was last updated.
fn count(
    windows: &Mutex<HashMap<String, Window>>,
    id: &str,
    ttl: Duration,
    args: &OutageArgs,
    now: Instant,
    enough: impl Fn(&Window) -> bool,
    failed: &FailedAttempt<'_>,
) -> Option<(Severity, Vec<u16>, Instant)> {
    let mut windows = windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if windows.len() >= MAX_WINDOWS && !windows.contains_key(id) {
        windows.retain(|_, w| now.duration_since(w.opened) < ttl);
        if windows.len() >= MAX_WINDOWS {
            return None;
        }
    }
    let window = windows.entry(id.to_string()).or_insert_with(|| Window::new(now));
    if now.duration_since(window.opened) >= ttl {
        *window = Window::new(now);
    }
    let since_last = window.last;
    window.last = now;
    if window.errors.len() < args.max_errors as usize {
        window.errors.push(failed.status);
    }
    if window.deployments.len() < MAX_REGION_DEPLOYMENTS
        && !window.deployments.iter().any(|d| d == failed.deployment_id)
    {
        window.deployments.push(failed.deployment_id.to_string());
    }
    let n = window.errors.len() as u32;
    let severity = if !window.minor_sent && n >= args.minor && enough(window) {
        window.minor_sent = true;
        Severity::Minor
    } else if !window.major_sent && n >= args.major && enough(window) {
        window.major_sent = true;
        Severity::Major
    } else {
        return None;
    };
    Some((severity, window.errors.clone(), since_last))
}

/// LiteLLM's `_outage_alert_msg_factory`: the outage, what failed and the errors by kind.
fn outage_alert(
    kind: AlertType,
    severity: Severity,
    (key, value): (&str, &str),
    failed: &FailedAttempt<'_>,
    errors: &[u16],
    last: Instant,
) -> Alert {
    let (name, level) = match severity {
        Severity::Minor => ("Minor", Level::Medium),
        Severity::Major => ("Major", Level::High),
    };
    let mut headers = format!("\n*{key} Name:* `{value}`\n*Provider:* `{}`\n", failed.provider);
    if let (Some(base), "Model") = (failed.api_base, key) {
        headers.push_str(&format!("*API Base:* `{base}`\n"));
    }
    let (timeouts, api) = errors.iter().fold((0, 0), |(t, a), s| if *s == 408 { (t + 1, a) } else { (t, a + 1) });
    let mut counts = String::new();
    if timeouts > 0 {
        counts.push_str(&format!("\nTimeout Errors: {timeouts}\n"));
    }
    if api > 0 {
        counts.push_str(&format!("\nAPI Errors: {api}\n"));
    }
    let ago = last.elapsed().as_secs_f64();
    let message = format!(
        "\n\n*⚠️ {name} Service Outage*\n\n{headers}\n\n*Errors:*\n{counts}\n\n*Last Check:* `{ago:.4}s ago`\n\n"
    );
    let subject = format!("{}:{value}:{name}", kind.name());
    Alert::new(kind, level, subject, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(deployment_id: &str, status: u16) -> FailedAttempt<'_> {
        FailedAttempt {
            deployment_id,
            model: "openai/gpt-4o",
            provider: "openai",
            api_base: Some("https://api.openai.com/v1"),
            region: Some("eu-west-1"),
            status,
        }
    }

    #[test]
    fn a_deployments_errors_are_told_at_the_minor_then_the_major_threshold_once_per_window() {
        let args = OutageArgs { minor: 2, major: 3, max_errors: 10, ..Default::default() };
        let windows = Mutex::default();
        let t0 = Instant::now();
        let step =
            |at: Duration, status| count(&windows, "d1", args.ttl, &args, t0 + at, |_| true, &failed("d1", status));
        assert_eq!(step(Duration::ZERO, 500), None);
        assert_eq!(step(Duration::from_secs(1), 408).map(|t| (t.0, t.1)), Some((Severity::Minor, vec![500, 408])));
        assert_eq!(step(Duration::from_secs(2), 503).map(|t| t.0), Some(Severity::Major));
        assert_eq!(step(Duration::from_secs(3), 503), None, "each is told once per window");
        // A new window after the ttl counts again from one.
        assert_eq!(step(Duration::from_secs(61), 500), None);
        assert_eq!(step(Duration::from_secs(62), 500).map(|t| t.0), Some(Severity::Minor));
    }

    #[test]
    fn a_region_needs_two_failing_deployments_and_lists_are_bounded() {
        let args = OutageArgs { minor: 2, major: 50, max_errors: 3, ..Default::default() };
        let windows = Mutex::default();
        let now = Instant::now();
        let two = |w: &Window| w.deployments.len() > 1;
        for _ in 0..5 {
            assert_eq!(count(&windows, "openaieu", args.region_ttl, &args, now, two, &failed("d1", 500)), None);
        }
        let told = count(&windows, "openaieu", args.region_ttl, &args, now, two, &failed("d2", 500)).unwrap();
        assert_eq!((told.0, told.1.len()), (Severity::Minor, 3), "at most max_errors kept");
        // The major threshold is beyond the list's bound: never reached, as in LiteLLM.
        assert_eq!(count(&windows, "openaieu", args.region_ttl, &args, now, two, &failed("d3", 500)), None);
    }

    #[test]
    fn the_message_reads_as_litellms() {
        let a = outage_alert(
            AlertType::OutageAlerts,
            Severity::Major,
            ("Model", "openai/gpt-4o"),
            &failed("d1", 500),
            &[408, 500, 503],
            Instant::now(),
        );
        assert_eq!(a.level, Level::High);
        assert!(a.message.contains("*⚠️ Major Service Outage*"), "{}", a.message);
        assert!(a
            .message
            .contains("*Model Name:* `openai/gpt-4o`\n*Provider:* `openai`\n*API Base:* `https://api.openai.com/v1`"));
        assert!(a.message.contains("\nTimeout Errors: 1\n") && a.message.contains("\nAPI Errors: 2\n"));
        let r = outage_alert(
            AlertType::RegionOutageAlerts,
            Severity::Minor,
            ("Region", "eu-west-1"),
            &failed("d1", 500),
            &[500],
            Instant::now(),
        );
        assert!(r.message.contains("*Region Name:* `eu-west-1`") && !r.message.contains("API Base"), "{}", r.message);
        assert_eq!(r.level, Level::Medium);
    }
}
