//! LiteLLM's alerting settings, from `general_settings`: `alerting` (which channels: `slack` is
//! implemented, the others are named as not implemented at start), `alerting_threshold` (seconds
//! before a call is slow or hanging; LiteLLM's default 300), `alert_types` (LiteLLM's names; all by
//! default), `alerting_args` (`daily_report_frequency`, `budget_alert_ttl`) and
//! `alert_to_webhook_url` (a webhook per alert type). Slack on without `SLACK_WEBHOOK_URL` stops
//! the start: alerts the user asked for would otherwise go nowhere, unseen.

use super::deployment::Secret;
use super::error::{err, typed, ConfigError};
use super::value::{Positive, PositiveCount, MAX_SECONDS};
use super::yaml::key_str;
use super::Env;
use serde::Deserialize;
use serde_yaml_ng::Value;
use sluice_export::alerting::{AlertType, AlertTypes};
use std::time::Duration;

/// LiteLLM's default `alerting_threshold`, in seconds.
pub const DEFAULT_THRESHOLD: f64 = 300.0;

/// LiteLLM's default `daily_report_frequency` (12 hours) and `budget_alert_ttl` (a day).
pub const DEFAULT_DAILY_REPORT_FREQUENCY: Duration = Duration::from_secs(12 * 60 * 60);
pub const DEFAULT_BUDGET_ALERT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The channels sluice sends alerts to.
pub const CHANNELS: &[&str] = &["slack"];

/// LiteLLM's other alert types: accepted (a LiteLLM config names them), never sent by sluice.
const NOT_SENT: &[&str] = &[
    "failed_tracking_spend",
    "user_spend_thresholds",
    "model_deprecation_warnings",
    "new_virtual_key_created",
    "virtual_key_updated",
    "virtual_key_deleted",
    "new_team_created",
    "team_updated",
    "team_deleted",
    "new_internal_user_created",
    "internal_user_updated",
    "internal_user_deleted",
];

/// Webhooks per alert type, at most (each type may list several).
const MAX_WEBHOOKS_PER_TYPE: usize = 10;

/// Slack alerting, when `general_settings.alerting` names `slack`.
#[derive(Debug, Clone)]
pub struct AlertingSettings {
    /// `SLACK_WEBHOOK_URL`: its path is a credential.
    pub webhook: Secret,
    /// `alerting_threshold`.
    pub threshold: Duration,
    /// `alert_types`.
    pub types: AlertTypes,
    /// `alerting_args.daily_report_frequency` (or `SLACK_DAILY_REPORT_FREQUENCY`).
    pub daily_report_frequency: Duration,
    /// `alerting_args.budget_alert_ttl`: a budget alert is not repeated within it.
    pub budget_alert_ttl: Duration,
    /// `alert_to_webhook_url`: the types sent elsewhere than `SLACK_WEBHOOK_URL`.
    pub by_type: Vec<(AlertType, Vec<Secret>)>,
    /// `PROXY_BASE_URL`: named at the end of each message, as LiteLLM does.
    pub proxy_base_url: Option<String>,
    /// `alerting_args`' outage windows and thresholds (`outage_alert_ttl`,
    /// `region_outage_alert_ttl`, `minor_outage_alert_threshold`, `major_outage_alert_threshold`,
    /// `max_outage_alert_list_size`).
    pub outage: sluice_export::alerting::outage::OutageArgs,
}

/// The most errors an outage window keeps (LiteLLM's `max_outage_alert_list_size` is unbounded).
const MAX_OUTAGE_LIST: u32 = 10_000;

/// The longest `PROXY_BASE_URL` taken.
const MAX_PROXY_BASE_URL: usize = 2_048;

/// The alerting keys of `general_settings`.
#[derive(Deserialize)]
struct Section {
    #[serde(default)]
    alerting: Option<Value>,
    alerting_threshold: Option<Positive>,
    #[serde(default)]
    alert_types: Option<Value>,
    #[serde(default)]
    alerting_args: Option<Value>,
    #[serde(default)]
    alert_to_webhook_url: Option<Value>,
}

/// `alerting_args` keys sluice acts on.
#[derive(Deserialize)]
struct Args {
    daily_report_frequency: Option<Positive>,
    budget_alert_ttl: Option<Positive>,
    outage_alert_ttl: Option<Positive>,
    region_outage_alert_ttl: Option<Positive>,
    minor_outage_alert_threshold: Option<PositiveCount>,
    major_outage_alert_threshold: Option<PositiveCount>,
    max_outage_alert_list_size: Option<PositiveCount>,
}

const ARGS: [&str; 7] = [
    "daily_report_frequency",
    "budget_alert_ttl",
    "outage_alert_ttl",
    "region_outage_alert_ttl",
    "minor_outage_alert_threshold",
    "major_outage_alert_threshold",
    "max_outage_alert_list_size",
];

/// Reads the alerting settings of `general` (the `general_settings` mapping). `None` when
/// `alerting` names no channel sluice sends to; the channels it does not implement, and
/// `alerting_args` it does not act on, are named in `warnings` and `ignored`.
pub(crate) fn read(
    general: Option<&Value>,
    env: &Env,
    ignored: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<AlertingSettings>, ConfigError> {
    const AT: &str = "general_settings";
    let Some(general @ Value::Mapping(_)) = general else { return Ok(None) };
    let raw: Section = typed(AT, general)?;
    let channels = match &raw.alerting {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(err(&format!("{AT}.alerting"), "expected a list of channel names, e.g. [\"slack\"]")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::String(one)) => vec![one.clone()],
        Some(_) => return Err(err(&format!("{AT}.alerting"), "expected a list of channel names, e.g. [\"slack\"]")),
    };
    for other in channels.iter().filter(|c| !CHANNELS.contains(&c.as_str())) {
        warnings
            .push(format!("{AT}.alerting: \"{other}\" alerts are not implemented in sluice; only \"slack\" is sent"));
    }
    if !channels.iter().any(|c| c == "slack") {
        for key in ["alerting_threshold", "alert_types", "alerting_args", "alert_to_webhook_url"] {
            if general.get(key).is_some() {
                ignored.push(format!("{AT}.{key}: alerting is off (general_settings.alerting names no \"slack\")"));
            }
        }
        return Ok(None);
    }
    let webhook = env.get("SLACK_WEBHOOK_URL").filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        err(
            &format!("{AT}.alerting"),
            "\"slack\" alerting has no webhook: set SLACK_WEBHOOK_URL (in the environment or under environment_variables) to the Slack incoming webhook's URL (https://hooks.slack.com/services/…)",
        )
    })?;
    sluice_export::alerting::slack::webhook(&webhook, "SLACK_WEBHOOK_URL")
        .map_err(|e| err(&format!("{AT}.alerting"), e))?;
    let threshold = raw.alerting_threshold.map_or(DEFAULT_THRESHOLD, |p| p.0);
    let types = match &raw.alert_types {
        None | Some(Value::Null) => AlertTypes::all(),
        Some(v) => alert_types(&format!("{AT}.alert_types"), v, ignored)?,
    };
    let (mut daily_report_frequency, mut budget_alert_ttl) = (DEFAULT_DAILY_REPORT_FREQUENCY, DEFAULT_BUDGET_ALERT_TTL);
    // LiteLLM's default report frequency comes from this variable, when set.
    if let Some(v) = env.get("SLACK_DAILY_REPORT_FREQUENCY") {
        match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s <= MAX_SECONDS => daily_report_frequency = Duration::from_secs_f64(s),
            _ => {
                return Err(err(
                    "SLACK_DAILY_REPORT_FREQUENCY",
                    format!("must be a positive number of seconds, at most {MAX_SECONDS} (a year)"),
                ))
            }
        }
    }
    let mut outage = sluice_export::alerting::outage::OutageArgs::default();
    if let Some(args) = &raw.alerting_args {
        let path = format!("{AT}.alerting_args");
        match args {
            Value::Null => {}
            Value::Mapping(m) => {
                let a: Args = typed(&path, args)?;
                if let Some(Positive(s)) = a.daily_report_frequency {
                    daily_report_frequency = Duration::from_secs_f64(s);
                }
                if let Some(Positive(s)) = a.budget_alert_ttl {
                    budget_alert_ttl = Duration::from_secs_f64(s);
                }
                if let Some(Positive(s)) = a.outage_alert_ttl {
                    outage.ttl = Duration::from_secs_f64(s);
                }
                if let Some(Positive(s)) = a.region_outage_alert_ttl {
                    outage.region_ttl = Duration::from_secs_f64(s);
                }
                if let Some(PositiveCount(n)) = a.minor_outage_alert_threshold {
                    outage.minor = n;
                }
                if let Some(PositiveCount(n)) = a.major_outage_alert_threshold {
                    outage.major = n;
                }
                if let Some(PositiveCount(n)) = a.max_outage_alert_list_size {
                    if n > MAX_OUTAGE_LIST {
                        return Err(err(
                            &format!("{path}.max_outage_alert_list_size"),
                            format!("must be at most {MAX_OUTAGE_LIST}: the errors kept per deployment or region"),
                        ));
                    }
                    outage.max_errors = n;
                }
                for (k, _) in m {
                    let k = key_str(k);
                    if !ARGS.contains(&k.as_str()) {
                        ignored.push(format!("{path}.{k}: not implemented in sluice yet"));
                    }
                }
            }
            _ => return Err(err(&path, super::value::MAPPING)),
        }
    }
    let by_type = match &raw.alert_to_webhook_url {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => webhooks_by_type(&format!("{AT}.alert_to_webhook_url"), v, env, warnings)?,
    };
    let proxy_base_url = env.get("PROXY_BASE_URL").map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
    if proxy_base_url.as_ref().is_some_and(|u| u.len() > MAX_PROXY_BASE_URL) {
        return Err(err(
            "PROXY_BASE_URL",
            format!("is longer than {MAX_PROXY_BASE_URL} characters; set it to the proxy's address"),
        ));
    }
    Ok(Some(AlertingSettings {
        webhook: Secret::new(webhook),
        threshold: Duration::from_secs_f64(threshold),
        types,
        daily_report_frequency,
        budget_alert_ttl,
        by_type,
        proxy_base_url,
        outage,
    }))
}

fn known_types() -> String {
    AlertType::ALL.iter().map(|t| t.name()).chain(NOT_SENT.iter().copied()).collect::<Vec<_>>().join(", ")
}

fn alert_type(path: &str, name: &str) -> Result<AlertType, ConfigError> {
    AlertType::from_name(name)
        .ok_or_else(|| err(path, format!("unknown alert type \"{name}\"; use LiteLLM's names: {}", known_types())))
}

fn alert_types(path: &str, v: &Value, ignored: &mut Vec<String>) -> Result<AlertTypes, ConfigError> {
    let Value::Sequence(items) = v else {
        return Err(err(
            path,
            format!("expected a list of alert types, e.g. [\"budget_alerts\"]; known: {}", known_types()),
        ));
    };
    let mut set = AlertTypes::none();
    for (i, item) in items.iter().enumerate() {
        let Value::String(name) = item else {
            return Err(err(&format!("{path}[{i}]"), "expected an alert type's name"));
        };
        if NOT_SENT.contains(&name.as_str()) {
            // Named by the list, not the item: review reads `path: why` and knows the list's key.
            ignored.push(format!("{path}: \"{name}\" alerts are not sent by sluice yet"));
            continue;
        }
        set = set.with(alert_type(&format!("{path}[{i}]"), name)?);
    }
    Ok(set)
}

/// `alert_to_webhook_url`: `{alert_type: url}` or `{alert_type: [url, …]}`, `os.environ/`
/// references resolved.
fn webhooks_by_type(
    path: &str,
    v: &Value,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<Vec<(AlertType, Vec<Secret>)>, ConfigError> {
    let Value::Mapping(m) = v else { return Err(err(path, super::value::MAPPING)) };
    let mut out = Vec::new();
    for (k, urls) in m {
        let name = key_str(k);
        let at = format!("{path}.{name}");
        let kind = alert_type(&at, &name)?;
        let listed: Vec<String> = match urls {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(err(&at, "expected a webhook URL or a list of them")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(err(&at, "expected a webhook URL or a list of them")),
        };
        if listed.len() > MAX_WEBHOOKS_PER_TYPE {
            return Err(err(&at, format!("lists more than {MAX_WEBHOOKS_PER_TYPE} webhooks")));
        }
        let mut secrets = Vec::new();
        for url in listed {
            let Some(url) = env.resolve_str(&at, &url, warnings) else { continue };
            // The URL is a credential: the message names the setting, not the value.
            sluice_export::alerting::slack::webhook(&url, &at).map_err(|e| err(&at, e))?;
            secrets.push(Secret::new(url));
        }
        if !secrets.is_empty() {
            out.push((kind, secrets));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Env};
    use super::*;

    const HOOK: &str = "https://hooks.slack.com/services/T0/B0/secret-token";

    fn load(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_yaml_str(yaml, Env::fixed(vars.iter().copied())).map_err(|e| e.to_string())
    }

    #[test]
    fn slack_with_litellm_defaults() {
        let c = load("general_settings:\n  alerting: [\"slack\"]\n", &[("SLACK_WEBHOOK_URL", HOOK)]).unwrap();
        let a = c.alerting.expect("alerting on");
        assert_eq!(a.webhook.expose(), HOOK);
        assert_eq!(a.threshold, Duration::from_secs(300));
        assert_eq!(a.types, AlertTypes::all());
        assert_eq!(a.daily_report_frequency, Duration::from_secs(12 * 3600));
        assert_eq!(a.budget_alert_ttl, Duration::from_secs(24 * 3600));
        assert!(!format!("{a:?}").contains("secret-token"), "the webhook is a secret");
        assert!(load("model_list: []\n", &[]).unwrap().alerting.is_none());
    }

    #[test]
    fn outage_arguments_are_read_and_bounded() {
        let with = |args: &str| {
            load(
                &format!("general_settings:\n  alerting: [\"slack\"]\n  alerting_args:\n{args}"),
                &[("SLACK_WEBHOOK_URL", HOOK)],
            )
        };
        let c = with("    outage_alert_ttl: 30\n    region_outage_alert_ttl: 90\n    minor_outage_alert_threshold: 3\n    major_outage_alert_threshold: 7\n    max_outage_alert_list_size: 20\n").unwrap();
        let o = c.alerting.unwrap().outage;
        assert_eq!((o.ttl, o.region_ttl), (Duration::from_secs(30), Duration::from_secs(90)));
        assert_eq!((o.minor, o.major, o.max_errors), (3, 7, 20));
        assert!(!c.ignored.iter().any(|i| i.contains("outage")), "{:?}", c.ignored);
        let d = load("general_settings:\n  alerting: [\"slack\"]\n", &[("SLACK_WEBHOOK_URL", HOOK)]).unwrap();
        assert_eq!(d.alerting.unwrap().outage, sluice_export::alerting::outage::OutageArgs::default());
        let e = with("    max_outage_alert_list_size: 1000000\n").unwrap_err();
        assert!(e.contains("alerting_args.max_outage_alert_list_size") && e.contains("at most 10000"), "{e}");
        let e = with("    minor_outage_alert_threshold: 0\n").unwrap_err();
        assert!(e.contains("minor_outage_alert_threshold"), "{e}");
    }

    #[test]
    fn every_setting_is_read_and_bounded() {
        let yaml = "general_settings:\n  alerting: [\"slack\", \"email\"]\n  alerting_threshold: 0.5\n  alert_types: [\"budget_alerts\", \"new_team_created\", \"llm_too_slow\"]\n  alerting_args:\n    daily_report_frequency: 60\n    budget_alert_ttl: 120\n    log_to_console: true\n  alert_to_webhook_url:\n    budget_alerts: [\"https://hooks.slack.com/services/a\", os.environ/BUDGET_HOOK]\n";
        let vars = [
            ("SLACK_WEBHOOK_URL", HOOK),
            ("BUDGET_HOOK", "https://hooks.slack.com/services/b"),
            ("PROXY_BASE_URL", "https://llm.example.com"),
        ];
        let c = load(yaml, &vars).unwrap();
        let a = c.alerting.unwrap();
        assert_eq!(a.threshold, Duration::from_millis(500));
        assert_eq!(a.types.iter().collect::<Vec<_>>(), [AlertType::LlmTooSlow, AlertType::BudgetAlerts]);
        assert_eq!((a.daily_report_frequency, a.budget_alert_ttl), (Duration::from_secs(60), Duration::from_secs(120)));
        assert_eq!(a.proxy_base_url.as_deref(), Some("https://llm.example.com"));
        assert_eq!(a.by_type.len(), 1);
        assert_eq!(a.by_type[0].0, AlertType::BudgetAlerts);
        assert_eq!(a.by_type[0].1[1].expose(), "https://hooks.slack.com/services/b");
        assert!(c.warnings.iter().any(|w| w.contains("\"email\" alerts are not implemented")), "{:?}", c.warnings);
        assert!(
            c.ignored.iter().any(|l| l.starts_with("general_settings.alerting_args.log_to_console: ")),
            "{:?}",
            c.ignored
        );
        assert!(
            c.ignored
                .iter()
                .any(|l| l == "general_settings.alert_types: \"new_team_created\" alerts are not sent by sluice yet"),
            "{:?}",
            c.ignored
        );
        assert!(c.refused.is_empty(), "{:?}", c.refused);
    }

    #[test]
    fn mistakes_stop_the_start_and_say_what_to_do() {
        let hook = [("SLACK_WEBHOOK_URL", HOOK)];
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&str, Vars, &str)] = &[
            ("general_settings:\n  alerting: [\"slack\"]\n", &[], "general_settings.alerting: \"slack\" alerting has no webhook: set SLACK_WEBHOOK_URL"),
            ("general_settings:\n  alerting: [\"slack\"]\n", &[("SLACK_WEBHOOK_URL", "hooks")], "general_settings.alerting: SLACK_WEBHOOK_URL needs an http:// or https:// address"),
            ("general_settings:\n  alerting: [\"slack\"]\n  alerting_threshold: 0\n", &hook, "general_settings.alerting_threshold: must be a positive number of seconds"),
            ("general_settings:\n  alerting: [\"slack\"]\n  alerting_threshold: 1e12\n", &hook, "general_settings.alerting_threshold: must be a positive number of seconds, at most"),
            ("general_settings:\n  alerting: [\"slack\"]\n  alert_types: [\"budget_alert\"]\n", &hook, "general_settings.alert_types[0]: unknown alert type \"budget_alert\"; use LiteLLM's names: llm_exceptions,"),
            ("general_settings:\n  alerting: [\"slack\"]\n  alert_types: budget_alerts\n", &hook, "general_settings.alert_types: expected a list of alert types"),
            ("general_settings:\n  alerting: [\"slack\"]\n  alerting_args:\n    budget_alert_ttl: -1\n", &hook, "general_settings.alerting_args.budget_alert_ttl: must be a positive number"),
            ("general_settings:\n  alerting: [\"slack\"]\n  alert_to_webhook_url:\n    budget_alerts: \"ftp://x/secret-path\"\n", &hook, "general_settings.alert_to_webhook_url.budget_alerts: general_settings.alert_to_webhook_url.budget_alerts needs an http:// or https://"),
            ("general_settings:\n  alerting: 7\n", &hook, "general_settings.alerting: expected a list of channel names"),
        ];
        for (yaml, vars, expected) in cases {
            let e = load(yaml, vars).unwrap_err();
            assert!(e.starts_with(expected), "got {e:?}, expected prefix {expected:?}");
            assert!(!e.contains("secret"), "{e}");
        }
        let e = load(
            "general_settings:\n  alerting: [\"slack\"]\n",
            &[("SLACK_WEBHOOK_URL", HOOK), ("SLACK_DAILY_REPORT_FREQUENCY", "-5")],
        )
        .unwrap_err();
        assert!(e.starts_with("SLACK_DAILY_REPORT_FREQUENCY: must be a positive number"), "{e}");
    }

    #[test]
    fn settings_without_slack_are_listed_as_ignored() {
        let c = load("general_settings:\n  alert_types: [\"budget_alerts\"]\n", &[]).unwrap();
        assert!(c.alerting.is_none());
        assert!(
            c.ignored.iter().any(|l| l.starts_with("general_settings.alert_types: alerting is off")),
            "{:?}",
            c.ignored
        );
    }
}
