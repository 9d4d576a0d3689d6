//! What billing tells Slack alerting (`general_settings.alerting`), in LiteLLM's words: a key,
//! team or user whose spend first crosses its `max_budget` (a key's `soft_budget` too), or first
//! leaves 15 % and then 5 % of it, each once per budget period; a call slower than `alerting_threshold` (`llm_too_slow`); a failed call
//! (`llm_exceptions`). Each is one `try_send` into the alert queue, and only when alerting is on.

use super::admit::Admission;
use super::charge::Served;
use sluice_export::alerting::{Alert, AlertType, Alerts, Level};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The budget periods whose crossing was told, one spender's: its `max_budget`'s, its
/// `soft_budget`'s, and LiteLLM's warnings at 15 % and 5 % of the budget left. Each holds the
/// period's reset time plus one (0: never told).
#[derive(Debug, Default)]
pub struct Crossed {
    max: AtomicI64,
    soft: AtomicI64,
    fifteen: AtomicI64,
    five: AtomicI64,
}

/// Where a spend stands against its budget, as LiteLLM's `budget_alerts` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Crossed,
    /// At most 5 % of the budget left.
    FivePercentLeft,
    /// At most 15 % left.
    FifteenPercentLeft,
}

impl Standing {
    /// LiteLLM's rule: the budget reached, else at most 5 % of it left, else at most 15 %.
    fn of(spend: f64, max: f64) -> Option<Standing> {
        let left = if max > 0.0 { (max - spend) / max } else { 0.0 };
        match () {
            _ if spend >= max => Some(Standing::Crossed),
            _ if left <= 0.05 => Some(Standing::FivePercentLeft),
            _ if left <= 0.15 => Some(Standing::FifteenPercentLeft),
            _ => None,
        }
    }
}

/// One spender's budget against its spend: the alert for where it stands, the first time this
/// period (`who`: LiteLLM's `Key`, `Team`, `User`; `subject`: its kind and id).
fn budget_standing(
    alerts: &Alerts,
    crossed: &Crossed,
    (spend, max, period): (f64, f64, i64),
    who: &str,
    subject: &str,
    info: &[(&str, Option<String>)],
) {
    let Some(standing) = Standing::of(spend, max) else { return };
    let (marker, event, headline) = match standing {
        Standing::Crossed => {
            (&crossed.max, "budget_crossed", format!("{who} Budget: Budget Crossed\n Total Budget:`{}`", usd(max)))
        }
        Standing::FivePercentLeft => {
            (&crossed.five, "threshold_crossed_5", format!("{who} Budget: 5% Threshold Crossed "))
        }
        Standing::FifteenPercentLeft => {
            (&crossed.fifteen, "threshold_crossed_15", format!("{who} Budget: 15% Threshold Crossed"))
        }
    };
    if Crossed::first(marker, period) {
        alerts.send(budget_alert(format!("{subject}:{event}"), headline, info));
    }
}

impl Crossed {
    /// Whether this is the first crossing told for the period ending at `reset_at_ms` (0: a
    /// budget without a period). Racing requests agree: one of them gets true.
    fn first(marker: &AtomicI64, reset_at_ms: i64) -> bool {
        let mark = reset_at_ms.saturating_add(1).max(1);
        marker.swap(mark, Ordering::Relaxed) != mark
    }
}

/// USD as a person reads it: at most six decimals, trailing zeros dropped.
fn usd(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Seconds as LiteLLM prints its settings: `300`, `0.5`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// One spender's budget alert: LiteLLM's `event_message`, then who it is about.
fn budget_alert(subject: String, headline: String, info: &[(&str, Option<String>)]) -> Alert {
    let mut message = headline;
    message.push_str("\n\n");
    for (name, value) in info {
        if let Some(v) = value {
            message.push_str(&format!("{name}: `{v}`\n"));
        }
    }
    Alert::new(AlertType::BudgetAlerts, Level::High, subject, message.trim_end().to_string())
}

/// After a call's cost is in the ledgers: tells each budget of the key, its team and its user
/// that this cost took over its limit for the first time in the period.
pub(crate) fn budgets(alerts: &Alerts, a: &Admission) {
    if !alerts.wants(AlertType::BudgetAlerts) {
        return;
    }
    if let Some(k) = &a.key {
        let r = &k.record;
        let spend = k.live.ledger.spend();
        let period = k.live.ledger.reset_at_ms().unwrap_or(0);
        let info = |max: Option<f64>| {
            [
                ("spend", Some(usd(spend))),
                ("max_budget", max.map(usd)),
                ("soft_budget", r.soft_budget.map(usd)),
                ("token", Some(r.token.clone())),
                ("key_alias", r.key_alias.clone()),
                ("user_id", r.user_id.clone()),
                ("team_id", r.team_id.clone()),
                ("event_group", Some("key".into())),
            ]
        };
        if let Some(max) = r.max_budget {
            let subject = format!("key:{}", r.token);
            budget_standing(alerts, &k.live.budget_alerted, (spend, max, period), "Key", &subject, &info(Some(max)));
        }
        if let Some(soft) = r.soft_budget.filter(|s| spend >= *s) {
            if Crossed::first(&k.live.budget_alerted.soft, period) {
                alerts.send(budget_alert(
                    format!("key:{}:soft_budget_crossed", r.token),
                    format!("Soft Budget Crossed: Total Soft Budget:`{}`", usd(soft)),
                    &info(r.max_budget),
                ));
            }
        }
    }
    if let Some(t) = &a.team {
        let r = &t.record;
        let spend = t.live.ledger.spend();
        if let Some(max) = r.max_budget {
            let period = t.live.ledger.reset_at_ms().unwrap_or(0);
            let info = [
                ("spend", Some(usd(spend))),
                ("max_budget", Some(usd(max))),
                ("team_id", Some(r.team_id.clone())),
                ("team_alias", r.team_alias.clone()),
                ("event_group", Some("team".into())),
            ];
            let subject = format!("team:{}", r.team_id);
            budget_standing(alerts, &t.live.budget_alerted, (spend, max, period), "Team", &subject, &info);
        }
    }
    if let Some(u) = &a.user {
        let r = &u.record;
        let spend = u.live.ledger.spend();
        if let Some(max) = r.max_budget {
            let period = u.live.ledger.reset_at_ms().unwrap_or(0);
            let info = [
                ("spend", Some(usd(spend))),
                ("max_budget", Some(usd(max))),
                ("user_id", Some(r.user_id.clone())),
                ("user_email", r.user_email.clone()),
                ("event_group", Some("internal_user".into())),
            ];
            let subject = format!("user:{}", r.user_id);
            budget_standing(alerts, &u.live.budget_alerted, (spend, max, period), "User", &subject, &info);
        }
    }
}

/// Who made a call, as LiteLLM adds it to a request's alert.
fn caller(a: &Admission) -> String {
    let mut out = String::new();
    if let Some(alias) = a.key.as_ref().and_then(|k| k.record.key_alias.as_deref()) {
        out.push_str(&format!("\nKey Alias: `{alias}`"));
    }
    if let Some(team) = a.team.as_ref() {
        let name = team.record.team_alias.as_deref().unwrap_or(&team.record.team_id);
        out.push_str(&format!("\nTeam: `{name}`"));
    }
    out
}

/// A call that took `took`: `llm_too_slow` when over the threshold.
pub(crate) fn slow(alerts: &Alerts, took: Duration, model_group: &str, served: &Served, a: &Admission) {
    if took <= alerts.threshold() || !alerts.wants(AlertType::LlmTooSlow) {
        return;
    }
    let api_base = served.api_base.as_deref().unwrap_or("");
    let message = format!(
        "`Responses are slow - {:.2}s response time > Alerting threshold: {}s`\nRequest Model: `{model_group}`\nAPI Base: `{api_base}`{}",
        took.as_secs_f64(),
        seconds(alerts.threshold()),
        caller(a)
    );
    let deployment = served.model_id.as_deref().unwrap_or(&served.model);
    alerts.send(Alert::new(AlertType::LlmTooSlow, Level::Low, format!("{model_group}:{deployment}"), message));
}

/// A call that failed: `llm_exceptions`.
pub(crate) fn failed(
    alerts: &Alerts,
    failure: &super::charge::Failure<'_>,
    model_group: &str,
    served: &Served,
    a: &Admission,
) {
    if !alerts.wants(AlertType::LlmExceptions) {
        return;
    }
    let mut error = failure.message.to_string();
    if error.len() > 500 {
        let mut end = 500;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
        error.push('…');
    }
    let api_base = served.api_base.as_deref().unwrap_or("");
    let message = format!(
        "LLM API call failed: `{error}`\n\nModel: `{model_group}`\nAPI Base: `{api_base}`\nException: `{} {}`{}",
        failure.status,
        failure.class,
        caller(a)
    );
    alerts.send(Alert::new(
        AlertType::LlmExceptions,
        Level::High,
        format!("{model_group}:{}", failure.status),
        message,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_stands_as_litellm_tells_it() {
        assert_eq!(Standing::of(10.0, 10.0), Some(Standing::Crossed));
        assert_eq!(Standing::of(12.0, 10.0), Some(Standing::Crossed));
        assert_eq!(Standing::of(9.5, 10.0), Some(Standing::FivePercentLeft));
        assert_eq!(Standing::of(9.0, 10.0), Some(Standing::FifteenPercentLeft));
        assert_eq!(Standing::of(8.5, 10.0), Some(Standing::FifteenPercentLeft));
        assert_eq!(Standing::of(8.0, 10.0), None);
        // A zero budget is crossed by any spend.
        assert_eq!(Standing::of(0.0, 0.0), Some(Standing::Crossed));
    }

    #[test]
    fn a_crossing_is_told_once_per_period() {
        let c = Crossed::default();
        assert!(Crossed::first(&c.max, 0));
        assert!(!Crossed::first(&c.max, 0));
        assert!(Crossed::first(&c.max, 1_700_000_000_000), "a new period");
        assert!(!Crossed::first(&c.max, 1_700_000_000_000));
        assert!(Crossed::first(&c.soft, 0), "the soft budget is its own");
        assert_eq!(usd(0.000_300_000_000_1), "0.0003");
        assert_eq!(usd(5.0), "5");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(seconds(Duration::from_secs(300)), "300");
    }
}
