//! The callback and settings views of LiteLLM's admin UI: `GET /active/callbacks` and
//! `GET /settings` (`_health_endpoints.py`), `GET /get/config/callbacks` (`proxy_server.py`), and
//! `POST /key/health` (`key_management_endpoints.py`).
//!
//! They list the callbacks the config names (`litellm_settings.callbacks`, `success_callback`,
//! `failure_callback`, `general_settings.alerting`) in LiteLLM's shapes, and which of them
//! sluice runs: `prometheus`, `generic_api`, `langfuse`, `s3` and `datadog`. Environment variables a callback reads are named, their
//! values never shown (LiteLLM shows them; they are secrets).

use super::roles::authorize;
use super::{caller, json, Result};
use crate::app::App;
use crate::config::Config;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use serde_yaml_ng::Value as Yaml;
use sluice_access::Identity;
use std::sync::Arc;

/// Whether sluice runs the callback `name`: the metrics, or one of the logging sinks
/// (`config::logging::SINKS`, the one list of what is implemented).
fn runs(name: &str) -> bool {
    name == "prometheus" || crate::config::logging::SINKS.contains(&name)
}

/// The environment variables LiteLLM's UI lists for a callback (`proxy_server.py`).
fn variables(callback: &str) -> &'static [&'static str] {
    match callback {
        "langfuse" => &["LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_HOST"],
        "openmeter" => &["OPENMETER_API_KEY"],
        "braintrust" => &["BRAINTRUST_API_KEY"],
        "traceloop" => &["TRACELOOP_API_KEY"],
        "datadog" => &["DD_API_KEY", "DD_SITE"],
        "langsmith" => &["LANGSMITH_API_KEY", "LANGSMITH_PROJECT", "LANGSMITH_DEFAULT_RUN_NAME"],
        "lunary" => &["LUNARY_PUBLIC_KEY"],
        "slack" => &["SLACK_WEBHOOK_URL"],
        "generic_api" => &["GENERIC_LOGGER_ENDPOINT", "GENERIC_LOGGER_HEADERS"],
        "otel" => &["OTEL_EXPORTER", "OTEL_ENDPOINT", "OTEL_HEADERS"],
        "langfuse_otel" => &["LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_OTEL_HOST"],
        _ => &[],
    }
}

/// A callback list as the config writes it: one name or a list of names.
fn names(section: Option<&Yaml>, key: &str) -> Vec<String> {
    match section.and_then(|s| s.get(key)) {
        Some(Yaml::String(s)) => vec![s.clone()],
        Some(Yaml::Sequence(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

struct Named {
    callbacks: Vec<String>,
    success: Vec<String>,
    failure: Vec<String>,
    alerting: Option<Vec<String>>,
}

fn named(config: &Config) -> Named {
    let litellm = config.source.get("litellm_settings");
    let general = config.source.get("general_settings");
    Named {
        callbacks: names(litellm, "callbacks"),
        success: names(litellm, "success_callback"),
        failure: names(litellm, "failure_callback"),
        alerting: general.and_then(|g| g.get("alerting")).map(|_| names(general, "alerting")),
    }
}

/// `GET /active/callbacks` (and `/settings`, its older name): LiteLLM's shape, plus
/// `sluice.running`, the callbacks sluice runs.
pub async fn active(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/active/callbacks").await?;
    let config = app.live_settings.current();
    let n = named(&config);
    let all: Vec<&String> = n.callbacks.iter().chain(&n.success).chain(&n.failure).collect();
    let mut running: Vec<&str> = all
        .iter()
        .map(|c| c.as_str())
        .filter(|c| runs(c) || config.named_generic_apis.iter().any(|n| n.name == *c))
        .collect();
    if config.alerting.is_some() {
        running.push("slack");
    }
    // LiteLLM prints the Python value: a list, or None.
    let alerting = match &n.alerting {
        Some(list) => format!("[{}]", list.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")),
        None => "None".to_string(),
    };
    Ok(json(json!({
        "alerting": alerting,
        "litellm.callbacks": n.callbacks,
        "litellm.input_callback": [],
        "litellm.failure_callback": n.failure,
        "litellm.success_callback": n.success,
        "litellm._async_success_callback": [],
        "litellm._async_failure_callback": [],
        "litellm._async_input_callback": [],
        "all_litellm_callbacks": all,
        "num_callbacks": all.len(),
        "num_alerting": n.alerting.as_ref().map_or(0, Vec::len),
        "litellm.request_timeout": config.litellm.request_timeout.unwrap_or(6000.0),
        "sluice.running": running,
    })))
}

/// Each callback's variables, by name, with no value.
fn unset(names: &[&str]) -> Map<String, Value> {
    names.iter().map(|n| (n.to_string(), Value::Null)).collect()
}

/// `GET /get/config/callbacks`: the callbacks and alerts the config names, each with the
/// variables it reads (values withheld) and whether sluice runs it, and the router's settings.
pub async fn config_callbacks(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/get/config/callbacks").await?;
    let config = app.live_settings.current();
    let n = named(&config);
    let mut callbacks = Vec::new();
    for (list, kind) in [(&n.success, "success"), (&n.failure, "failure"), (&n.callbacks, "success_and_failure")] {
        for name in list {
            callbacks.push(json!({
                "name": name,
                "variables": unset(variables(name)),
                "type": kind,
                "active": runs(name),
            }));
        }
    }
    let alerts: Vec<Value> = n
        .alerting
        .iter()
        .flatten()
        .map(|name| {
            // Slack, when sluice sends it: the alert types on, and the types with a webhook of
            // their own (the URLs withheld: each is a credential).
            let running = config.alerting.as_ref().filter(|_| name == "slack");
            let active_alerts: Vec<&str> =
                running.map(|a| a.types.iter().map(|t| t.name()).collect()).unwrap_or_default();
            let to_webhook: Map<String, Value> = running
                .map(|a| a.by_type.iter().map(|(t, _)| (t.name().to_string(), Value::Null)).collect())
                .unwrap_or_default();
            json!({
                "name": name,
                "variables": unset(variables(name)),
                "active_alerts": active_alerts,
                "alerts_to_webhook": to_webhook,
                "active": running.is_some(),
            })
        })
        .collect();
    let router = config.source.get("router_settings").and_then(|r| serde_json::to_value(r).ok());
    let router = router.filter(Value::is_object).unwrap_or_else(|| json!({}));
    Ok(json(json!({
        "status": "success",
        "callbacks": callbacks,
        "alerts": alerts,
        "router_settings": redact_router(router),
    })))
}

/// The router settings without the Redis password (the one secret the section holds).
fn redact_router(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        for (k, val) in m.iter_mut() {
            if super::models::is_secret(k) || k == "redis_url" {
                *val = Value::Null;
            }
        }
    }
    v
}

/// `POST /key/health`: the calling key's health, LiteLLM's `KeyHealthResponse`. A key whose
/// metadata names logging callbacks (`metadata.logging`) is healthy when they are `langfuse`
/// entries that resolved to a project (`sluice_access::own_logging`), unhealthy otherwise:
/// sluice runs no other callback per key.
pub async fn key_health(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    let identity = caller(&app, &headers).await?;
    let (logging, resolved) = match &identity {
        Identity::Key(k) => (
            k.record.metadata.get("logging").cloned(),
            matches!(k.logging, sluice_access::own_logging::OwnLogging::Own(Some(_))),
        ),
        _ => (None, false),
    };
    let Some(logging) = logging.filter(|l| !l.is_null()) else {
        return Ok(json(json!({"key": "healthy", "logging_callbacks": null})));
    };
    let named: Vec<Value> = match &logging {
        Value::Array(items) => {
            items.iter().filter_map(|i| i.get("callback_name").or(Some(i)).filter(|c| c.is_string()).cloned()).collect()
        }
        _ => Vec::new(),
    };
    let others: Vec<&str> =
        named.iter().filter_map(Value::as_str).filter(|n| *n != crate::config::logging::LANGFUSE).collect();
    let details = if !others.is_empty() {
        Some(format!(
            "sluice runs only langfuse per key (metadata.logging), not {}. Remove the other entries from the key with /key/update.",
            others.join(", ")
        ))
    } else if !resolved {
        Some("the key's langfuse entry has no usable project: set callback_vars.langfuse_public_key and langfuse_secret_key (values or os.environ/NAME) and langfuse_host with /key/update.".to_string())
    } else {
        None
    };
    let status = if details.is_none() { "healthy" } else { "unhealthy" };
    Ok(json(json!({
        "key": status,
        "logging_callbacks": {
            "callbacks": named,
            "status": status,
            "details": details,
        },
    })))
}
