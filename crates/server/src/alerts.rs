//! Slack alerting's start (`general_settings.alerting: ["slack"]`) and its watcher: one task
//! that looks, once a second, at what no request reports — deployments entering and leaving
//! cooldown, the database and Redis going down and coming back, requests in flight past
//! `alerting_threshold` — and sends the spend report every `daily_report_frequency`.
//!
//! The router stays pure (the watcher reads its deployments' cooldowns; nothing in the router
//! knows of alerts), and the request path pays nothing with alerting off: billing reports budgets
//! crossed and slow or failed calls through `Access::alerts` (see `sluice_access::alerts`).

use crate::app::App;
use crate::config::alerting::AlertingSettings;
use crate::config::Secret;
use sluice_export::alerting::{self, Alert, AlertType, Alerts, Level};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the watcher looks.
const TICK: Duration = Duration::from_secs(1);

/// Hanging requests reported by one scan, at most (the rest are reported by the next ones).
const MAX_HANGING_PER_SCAN: usize = 50;

/// Rows per list of the spend report.
const REPORT_TOP: usize = 5;

/// Starts alerting: the Slack sender and its queue, handed to billing, and the watcher. The
/// drain to finish at shutdown, or `None` when the settings cannot be used (logged; checked
/// when the config was read, so this is a bug).
pub(crate) fn start(app: &Arc<App>, settings: &AlertingSettings) -> Option<alerting::AlertDrain> {
    let webhook = |s: &Secret, what: &str| alerting::slack::webhook(s.expose(), what);
    let default = match webhook(&settings.webhook, "SLACK_WEBHOOK_URL") {
        Ok(u) => u,
        Err(e) => {
            tracing::error!("alerting not started: {e}");
            return None;
        }
    };
    let mut by_type = HashMap::new();
    for (kind, urls) in &settings.by_type {
        let urls: Vec<http::Uri> = urls.iter().filter_map(|u| webhook(u, "alert_to_webhook_url").ok()).collect();
        by_type.insert(*kind, urls);
    }
    let sink = alerting::slack::Slack::new(default, by_type);
    let pacing = alerting::Pacing { budget_dedup: settings.budget_alert_ttl, ..alerting::Pacing::default() };
    let setup = alerting::Setup {
        types: settings.types,
        threshold: settings.threshold,
        pacing,
        metrics: app.metrics.as_ref().map(|m| m.callback("slack_alerting")),
        proxy_base_url: settings.proxy_base_url.clone(),
        outage: settings.outage,
    };
    let (alerts, drain) = alerting::spawn(sink, setup);
    let _ = app.access.alerts.set(alerts.clone());
    let types: Vec<&str> = settings.types.iter().map(AlertType::name).collect();
    tracing::info!(alert_types = ?types, threshold_s = settings.threshold.as_secs_f64(), "slack alerting on");
    tokio::spawn(watch(Arc::downgrade(app), alerts, settings.daily_report_frequency));
    Some(drain)
}

/// What the watcher saw last.
#[derive(Default)]
struct Seen {
    /// Deployment id → whether it was cooling down.
    cooling: HashMap<String, bool>,
    database_up: Option<bool>,
    redis_up: Option<bool>,
}

async fn watch(app: Weak<App>, alerts: Alerts, report_every: Duration) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen = Seen::default();
    // LiteLLM sends its first report one period after the start.
    let mut next_report = tokio::time::Instant::now() + report_every;
    // In ticks: counted, not timed, so that no scan slips to the tick after.
    let hang_scan_every = ((alerts.threshold() / 10).clamp(TICK, Duration::from_secs(30)).as_secs()).max(1);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        let Some(app) = app.upgrade() else { return };
        if alerts.wants(AlertType::CooldownDeployment) {
            cooldowns(&app, &alerts, &mut seen.cooling);
        }
        if alerts.wants(AlertType::DbExceptions) {
            health(&app, &alerts, &mut seen);
        }
        if ticks.is_multiple_of(hang_scan_every) {
            hanging(&alerts);
        }
        ticks += 1;
        // Half a tick early counts as on time: a deadline a few microseconds after the tick
        // would otherwise wait a whole extra tick.
        let now = tokio::time::Instant::now() + TICK / 2;
        if now >= next_report {
            next_report = now + report_every;
            if let Some(report) = alerts.take_fallback_report() {
                alerts.send(report);
            }
            if let Some(kind) = report_kind(&alerts) {
                let (app, alerts) = (app.clone(), alerts.clone());
                // The store's reads are not the watcher's to wait for.
                tokio::spawn(async move { spend_report(&app, &alerts, kind, report_every).await });
            }
        }
    }
}

/// Deployments that started or ended a cooldown since the last look.
fn cooldowns(app: &App, alerts: &Alerts, cooling: &mut HashMap<String, bool>) {
    let router = app.router.load();
    let now_ms = router.now_ms();
    let mut present = 0;
    for d in router.deployments() {
        present += 1;
        let now = d.health.cooling(now_ms);
        let before = match cooling.get_mut(&d.id) {
            Some(was) => std::mem::replace(was, now),
            None => {
                cooling.insert(d.id.clone(), now);
                false
            }
        };
        if now == before {
            continue;
        }
        let served = &d.target.served;
        let api_base = served.api_base.as_deref().unwrap_or("");
        let (subject, message) = if now {
            let left = d.health.cooldown_left(now_ms).div_ceil(1000);
            (
                format!("cooled:{}", d.id),
                format!(
                    "Router: Cooling down Deployment:\nModel Name: `{}`\nModel Group: `{}`\nAPI Base: `{api_base}`\nDeployment ID: `{}`\nCooldown Time: `{left} seconds`\n\nChange 'cooldown_time' + 'allowed_fails' under 'router_settings' in the config to tune when deployments cool down.",
                    served.model, d.model_name, d.id
                ),
            )
        } else {
            (
                format!("back:{}", d.id),
                format!(
                    "Router: Deployment back in service (cooldown over):\nModel Name: `{}`\nModel Group: `{}`\nAPI Base: `{api_base}`\nDeployment ID: `{}`",
                    served.model, d.model_name, d.id
                ),
            )
        };
        alerts.send(Alert::new(AlertType::CooldownDeployment, Level::Low, subject, message));
    }
    // Deployments removed by a model change are forgotten.
    if cooling.len() > present {
        let ids: std::collections::HashSet<&str> = router.deployments().map(|d| d.id.as_str()).collect();
        cooling.retain(|id, _| ids.contains(id.as_str()));
    }
}

/// The database and Redis: down and back.
fn health(app: &App, alerts: &Alerts, seen: &mut Seen) {
    let db_up = app.access.db_connected();
    if seen.database_up != Some(db_up) {
        let first = seen.database_up.is_none();
        seen.database_up = Some(db_up);
        if !db_up {
            let why = app
                .access
                .db_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "the database cannot be reached".into());
            alerts.send(Alert::new(
                AlertType::DbExceptions,
                Level::High,
                "database:down",
                format!("DB read/write call failed: `{why}`\n\nKnown keys are served from memory; spend is kept and written when the database is back."),
            ));
        } else if !first {
            alerts.send(Alert::new(
                AlertType::DbExceptions,
                Level::Low,
                "database:up",
                "Database connection restored: reads and writes work again.",
            ));
        }
    }
    if let Some(remote) = &app.remote {
        let up = remote.healthy();
        if seen.redis_up != Some(up) {
            let first = seen.redis_up.is_none();
            seen.redis_up = Some(up);
            if !up {
                alerts.send(Alert::new(
                    AlertType::DbExceptions,
                    Level::High,
                    "redis:down",
                    "Redis unavailable: limits, budgets and cooldowns are counted by each replica alone until it is back.",
                ));
            } else if !first {
                alerts.send(Alert::new(
                    AlertType::DbExceptions,
                    Level::Low,
                    "redis:up",
                    "Redis connection restored: limits, budgets and cooldowns are shared again.",
                ));
            }
        }
    }
}

/// Requests in flight past the threshold, each reported once.
fn hanging(alerts: &Alerts) {
    let Some(in_flight) = alerts.in_flight() else { return };
    for h in in_flight.hanging(alerts.threshold(), MAX_HANGING_PER_SCAN) {
        let message = format!(
            "`Requests are hanging - {}s+ request time`\nRequest Model: `{}`\nWaiting for: `{:.0}s`",
            sluice_access::alerts::seconds(alerts.threshold()),
            h.model,
            h.age.as_secs_f64()
        );
        alerts.send(Alert::new(AlertType::LlmRequestsHanging, Level::Medium, format!("hanging:{}", h.model), message));
    }
}

/// The spend report goes out as `daily_reports` when that type is on, else as `spend_reports`.
fn report_kind(alerts: &Alerts) -> Option<AlertType> {
    [AlertType::DailyReports, AlertType::SpendReports].into_iter().find(|k| alerts.wants(*k))
}

/// The spend report: the top keys and teams by spend since yesterday (UTC), from the store's
/// daily aggregates.
async fn spend_report(app: &App, alerts: &Alerts, kind: AlertType, every: Duration) {
    let Some(store) = app.access.store() else { return };
    let today = chrono::Utc::now().date_naive();
    let start = today - chrono::Duration::days(1);
    let filter = sluice_store::DailyFilter {
        start_date: Some(start.format("%Y-%m-%d").to_string()),
        end_date: Some(today.format("%Y-%m-%d").to_string()),
        ..Default::default()
    };
    let mut lists = Vec::new();
    for group in [sluice_store::ReportGroup::Team, sluice_store::ReportGroup::ApiKey] {
        match store.daily_report(&filter, group).await {
            Ok(rows) => lists.push(top(rows.iter().map(|r| (r.group.as_str(), r.spend)))),
            Err(e) => {
                tracing::warn!("spend report not sent: the daily aggregates could not be read: {e}");
                return;
            }
        }
    }
    let (teams, keys) = (&lists[0], &lists[1]);
    let mut text =
        format!("*💸 Spend Report for `{} - {}` (1 days)*\n", start.format("%m-%d-%Y"), today.format("%m-%d-%Y"));
    text.push_str("\n*Team Spend Report:*\n");
    if teams.is_empty() {
        text.push_str("None\n");
    }
    for (team, spend) in teams {
        let alias = app.access.registry.teams.get(team.as_str()).and_then(|t| t.record.team_alias.clone());
        let name = alias.unwrap_or_else(|| if team.is_empty() { "(no team)".into() } else { team.clone() });
        text.push_str(&format!("Team: `{name}` | Spend: `${}`\n", round4(*spend)));
    }
    text.push_str("\n*Key Spend Report:*\n");
    if keys.is_empty() {
        text.push_str("None\n");
    }
    for (key, spend) in keys {
        let alias = app.access.registry.keys.get(key.as_str()).and_then(|k| k.record.key_alias.clone());
        // The key's hash, shortened: enough to find it in /key/list, never the key itself.
        let name = alias.unwrap_or_else(|| format!("{}…", key.chars().take(12).collect::<String>()));
        text.push_str(&format!("Key: `{name}` | Spend: `${}`\n", round4(*spend)));
    }
    let next = chrono::Utc::now() + chrono::Duration::seconds(every.as_secs() as i64);
    text.push_str(&format!("\nNext Run is at: `{}`", next.format("%Y-%m-%d %H:%M:%S UTC")));
    alerts.send(Alert::new(kind, Level::Low, format!("report:{}", chrono::Utc::now().timestamp()), text));
}

/// The `REPORT_TOP` largest spends of `rows` summed by group, largest first.
fn top<'a>(rows: impl Iterator<Item = (&'a str, f64)>) -> Vec<(String, f64)> {
    let mut sums: HashMap<&str, f64> = HashMap::new();
    for (group, spend) in rows {
        *sums.entry(group).or_default() += spend;
    }
    let mut out: Vec<(String, f64)> =
        sums.into_iter().filter(|(_, s)| *s > 0.0).map(|(g, s)| (g.to_string(), s)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(REPORT_TOP);
    out
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Env};
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Told(Arc<Mutex<Vec<(AlertType, String)>>>);

    impl alerting::AlertSink for Told {
        async fn post(&self, kind: AlertType, text: &str) -> alerting::Delivery {
            self.0.lock().unwrap().push((kind, text.to_string()));
            alerting::Delivery::Sent
        }
    }

    /// A deployment's cooldown is told when it starts and when it is over, each once; the
    /// database, away from the first look, is told as down.
    #[tokio::test(start_paused = true)]
    async fn cooldowns_and_the_database_are_told_when_they_change() {
        let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/a, api_base: \"http://127.0.0.1:9/\", api_key: k}\n  - model_name: g\n    litellm_params: {model: openai/b, api_base: \"http://127.0.0.1:9/\", api_key: k}\n";
        let config = Config::from_yaml_str(yaml, Env::fixed([])).unwrap();
        let app = App::with_env(&config, &Env::fixed([])).unwrap();
        let told = Told::default();
        let setup = alerting::Setup {
            types: alerting::AlertTypes::all(),
            threshold: Duration::from_secs(300),
            pacing: alerting::Pacing::default(),
            metrics: None,
            proxy_base_url: None,
            outage: Default::default(),
        };
        let (alerts, _drain) = alerting::spawn(told.clone(), setup);
        let mut seen = Seen::default();
        cooldowns(&app, &alerts, &mut seen.cooling);
        let router = app.router.load();
        let d = router.deployments().next().unwrap().clone();
        d.health.cool(router.now_ms(), Duration::from_secs(5));
        cooldowns(&app, &alerts, &mut seen.cooling);
        cooldowns(&app, &alerts, &mut seen.cooling);
        health(&app, &alerts, &mut seen);
        health(&app, &alerts, &mut seen);
        tokio::time::sleep(Duration::from_secs(6)).await;
        cooldowns(&app, &alerts, &mut seen.cooling);
        // The second cooldown message waits out the topic's minute.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let got = told.0.lock().unwrap().clone();
        let cooldown: Vec<&String> =
            got.iter().filter(|(k, _)| *k == AlertType::CooldownDeployment).map(|(_, t)| t).collect();
        assert_eq!(cooldown.len(), 2, "{got:?}");
        assert!(
            cooldown[0].contains("Message: Router: Cooling down Deployment:\nModel Name: `a`\nModel Group: `g`"),
            "{}",
            cooldown[0]
        );
        assert!(
            cooldown[0].contains(&format!("Deployment ID: `{}`\nCooldown Time: `5 seconds`", d.id)),
            "{}",
            cooldown[0]
        );
        assert!(
            cooldown[1].contains("Router: Deployment back in service (cooldown over):\nModel Name: `a`"),
            "{}",
            cooldown[1]
        );
        let db: Vec<&String> = got.iter().filter(|(k, _)| *k == AlertType::DbExceptions).map(|(_, t)| t).collect();
        assert_eq!(db.len(), 1, "{got:?}");
        assert!(db[0].starts_with("Level: `High`") && db[0].contains("DB read/write call failed"), "{}", db[0]);
    }

    #[test]
    fn the_report_lists_the_largest_spenders_first() {
        let rows = [("a", 1.0), ("b", 3.0), ("a", 2.5), ("c", 0.0), ("d", 0.1), ("e", 0.2), ("f", 0.3), ("g", 0.4)];
        let got = top(rows.iter().map(|(g, s)| (*g, *s)));
        assert_eq!(
            got,
            [("a".to_string(), 3.5), ("b".into(), 3.0), ("g".into(), 0.4), ("f".into(), 0.3), ("e".into(), 0.2)]
        );
        assert_eq!(round4(0.123_456), 0.1235);
    }
}

/// `new_model_added`: a model was added through `/model/new` — LiteLLM's message, with the
/// OpenAI SDK snippet that calls it and its prices from the price table (the base model's when
/// `model_info.base_model` names one). Nothing when alerting is off or does not want it.
pub(crate) fn model_added(app: &App, model_name: &str, litellm_model: &str, base_model: Option<&str>) {
    let Some(alerts) = app.access.alerts.get().filter(|a| a.wants(AlertType::NewModelAdded)) else { return };
    let base_url = app
        .live_settings
        .current()
        .alerting
        .as_ref()
        .and_then(|a| a.proxy_base_url.clone())
        .unwrap_or_else(|| "http://0.0.0.0:4000".into());
    alerts.send(Alert::new(
        AlertType::NewModelAdded,
        Level::Low,
        model_name,
        model_added_message(model_name, litellm_model, base_model, &base_url),
    ));
}

fn model_added_message(model_name: &str, litellm_model: &str, base_model: Option<&str>, base_url: &str) -> String {
    let priced = base_model.unwrap_or(litellm_model);
    let (provider, model) = priced.split_once('/').unwrap_or(("", priced));
    // As LiteLLM writes them: fixed-point, never `1.63e-06`.
    let info = match sluice_providers::pricing::lookup(provider, model) {
        Some(p) => format!(
            "input_cost_per_token: {:.8}\noutput_cost_per_token: {:.8}\n",
            p.input_per_token, p.output_per_token
        ),
        None => String::new(),
    };
    let base = base_model.map(|b| format!("Base Model: `{b}`\n")).unwrap_or_default();
    format!(
        "\n*🚅 New Model Added*\nModel Name: `{model_name}`\n{base}\n\nUsage OpenAI Python SDK:\n```\nimport openai\nclient = openai.OpenAI(\n    api_key=\"your_api_key\",\n    base_url={base_url}\n)\n\nresponse = client.chat.completions.create(\n    model=\"{model_name}\", # model to send to the proxy\n    messages = [\n        {{\n            \"role\": \"user\",\n            \"content\": \"this is a test request, write a short poem\"\n        }}\n    ]\n)\n```\n\nModel Info: \n```\n{info}\n```\n"
    )
}

#[cfg(test)]
mod model_added_tests {
    use super::model_added_message;

    #[test]
    fn a_new_model_is_told_with_how_to_call_it_and_its_prices() {
        let m = model_added_message("fast-chat", "openai/gpt-4o", None, "https://gw.example.com");
        assert!(m.contains("*🚅 New Model Added*\nModel Name: `fast-chat`"), "{m}");
        assert!(m.contains("base_url=https://gw.example.com") && m.contains("model=\"fast-chat\""), "{m}");
        assert!(m.contains("input_cost_per_token: 0.0000025"), "{m}");
        let m = model_added_message("mine", "openai/my-finetune", Some("openai/gpt-4o"), "http://x");
        assert!(m.contains("Base Model: `openai/gpt-4o`") && m.contains("output_cost_per_token: 0.00001000"), "{m}");
    }
}
