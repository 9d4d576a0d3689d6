//! `GET /health`: a minimal request of its mode (chat, completion, embedding) to every deployment,
//! or those `?model=` / `?model_id=` name, through the same provider code the proxy uses (so the
//! addresses and credentials tried are the real ones), in LiteLLM's shape: `healthy_endpoints`,
//! `unhealthy_endpoints` (each with its `litellm_params` minus secrets, the unhealthy with the
//! error), `healthy_count`, `unhealthy_count`.
//!
//! Checks run in parallel (at most [`PARALLEL`] at once), each within [`TIMEOUT`]. With
//! `general_settings.background_health_checks` they run every `health_check_interval` in the
//! background and `/health` serves the latest result. A wildcard deployment (`"*"`,
//! `"provider/*"`) is checked only with `model_info.health_check_model`, as in LiteLLM.

use crate::app::{App, Target};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sluice_router::Deployment;
use sluice_wire::sniff::Endpoint;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The longest one check waits for its deployment (LiteLLM's `health_check_timeout` default).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Checks in flight at once: a config of a thousand deployments must not open a thousand
/// upstream connections in the same instant.
pub const PARALLEL: usize = 32;

/// The shortest background interval: checks cost real calls, and a tiny interval would turn
/// them into load.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What a deployment's check sends and how it is shown, fixed when the deployment is built.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `model_info.mode` (`chat` when unset).
    pub mode: String,
    /// The model name the check asks for: the group's, or `model_info.health_check_model`.
    pub model: Option<String>,
    /// `litellm_params` without secrets, as `/health` shows them.
    pub params: Map<String, Value>,
}

impl Probe {
    pub fn new(model_name: &str, model_info: &serde_yaml_ng::Mapping, public_params: &serde_yaml_ng::Mapping) -> Probe {
        let info = |k: &str| model_info.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let wildcard = model_name.contains('*');
        let model = match info("health_check_model") {
            Some(m) => Some(m),
            None if wildcard => None,
            None => Some(model_name.to_string()),
        };
        let params = match serde_json::to_value(public_params) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Probe { mode: info("mode").unwrap_or_else(|| "chat".into()), model, params }
    }

    /// The endpoint and body of the check, or why this mode cannot be checked.
    fn request(&self, model: &str) -> Result<(Endpoint, Bytes), String> {
        let model = serde_json::to_string(model).unwrap_or_default();
        let (endpoint, body) = match self.mode.as_str() {
            "chat" => (
                Endpoint::Chat,
                format!(r#"{{"model":{model},"messages":[{{"role":"user","content":"ping"}}],"max_tokens":1}}"#),
            ),
            "completion" => (Endpoint::Completions, format!(r#"{{"model":{model},"prompt":"ping","max_tokens":1}}"#)),
            "embedding" => (Endpoint::Embeddings, format!(r#"{{"model":{model},"input":["ping"]}}"#)),
            other => {
                return Err(format!(
                    "sluice cannot check model_info.mode `{other}` deployments: it checks chat, completion and embedding deployments"
                ))
            }
        };
        Ok((endpoint, Bytes::from(body)))
    }
}

/// One deployment's result.
#[derive(Debug, Clone)]
struct Checked {
    model_name: String,
    id: String,
    upstream_model: Option<String>,
    params: Map<String, Value>,
    error: Option<String>,
}

/// `/health`'s settings and the background checks' latest result.
#[derive(Default)]
pub struct HealthChecks {
    pub background: bool,
    pub interval: Duration,
    /// `health_check_details`.
    pub details: bool,
    latest: Mutex<Vec<Checked>>,
}

impl HealthChecks {
    pub fn new(background: bool, interval_secs: f64, details: bool) -> HealthChecks {
        // Bounded when the config was read (at most a year); at least a second here.
        let interval = Duration::from_secs_f64(interval_secs.clamp(0.0, crate::config::MAX_SECONDS)).max(MIN_INTERVAL);
        HealthChecks { background, interval, details, latest: Mutex::new(Vec::new()) }
    }
}

/// Which deployments `/health` reports: `?model=` matches a deployment's `litellm_params.model`
/// or its model group, `?model_id=` its id.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    pub model: Option<String>,
    pub model_id: Option<String>,
}

impl Filter {
    fn keeps(&self, model_name: &str, id: &str, upstream_model: Option<&str>) -> bool {
        let model_ok = self.model.as_deref().is_none_or(|m| m == model_name || Some(m) == upstream_model);
        model_ok && self.model_id.as_deref().is_none_or(|i| i == id)
    }
}

/// `GET /health`, for admins (it shows every deployment's address and calls each of them).
pub async fn endpoint(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::extract::Query(filter): axum::extract::Query<Filter>,
    headers: http::HeaderMap,
) -> Result<axum::response::Response, crate::errors::ErrorResponse> {
    use axum::response::IntoResponse;
    crate::manage::admin(&app, &headers, "/health").await?;
    let body = report(&app, &filter).await.to_string();
    Ok(([(http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Starts the background checks when the config asks for them; they end with the app.
pub fn spawn_background(app: &Arc<App>) {
    if !app.health.background {
        return;
    }
    let weak: Weak<App> = Arc::downgrade(app);
    let interval = app.health.interval;
    tokio::spawn(async move {
        loop {
            let Some(app) = weak.upgrade() else { return };
            let results = run(&app, &Filter::default()).await;
            *app.health.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = results;
            drop(app);
            tokio::time::sleep(interval).await;
        }
    });
}

/// The `/health` answer: fresh checks, or the background checks' latest.
pub async fn report(app: &App, filter: &Filter) -> Value {
    let results = if app.health.background {
        let latest = app.health.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        latest.iter().filter(|c| filter.keeps(&c.model_name, &c.id, c.upstream_model.as_deref())).cloned().collect()
    } else {
        run(app, filter).await
    };
    render(&results, app.health.details)
}

fn render(results: &[Checked], details: bool) -> Value {
    let (mut healthy, mut unhealthy) = (Vec::new(), Vec::new());
    for c in results {
        let mut entry = if details {
            c.params.clone()
        } else {
            c.params.iter().filter(|(k, _)| *k == "model").map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        match &c.error {
            None => healthy.push(Value::Object(entry)),
            Some(e) => {
                entry.insert("error".into(), Value::from(e.as_str()));
                unhealthy.push(Value::Object(entry));
            }
        }
    }
    json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": results.iter().filter(|c| c.error.is_none()).count(),
        "unhealthy_count": results.iter().filter(|c| c.error.is_some()).count(),
    })
}

/// Checks every deployment `filter` keeps, [`PARALLEL`] at a time, in config order.
async fn run(app: &App, filter: &Filter) -> Vec<Checked> {
    use futures_util::StreamExt;
    let router = app.router.load_full();
    let targets: Vec<Arc<Deployment<Target>>> = router
        .deployments()
        .filter(|d| {
            let upstream = d.target.health.params.get("model").and_then(Value::as_str);
            filter.keeps(&d.model_name, &d.id, upstream)
        })
        // A wildcard deployment without a `health_check_model` is skipped, as in LiteLLM.
        .filter(|d| d.target.health.model.is_some())
        .cloned()
        .collect();
    futures_util::stream::iter(targets).map(|d| check(app, d)).buffered(PARALLEL).collect().await
}

async fn check(app: &App, d: Arc<Deployment<Target>>) -> Checked {
    let probe = &d.target.health;
    let model = probe.model.clone().unwrap_or_default();
    let error = match probe.request(&model) {
        Err(why) => Some(why),
        Ok((endpoint, body)) => crate::proxy::probe(app, &d, endpoint, body, &model, TIMEOUT).await.err(),
    };
    if let Some(e) = &error {
        tracing::warn!(model_id = %d.id, model_name = %d.model_name, "health check failed: {e}");
    }
    Checked {
        model_name: d.model_name.clone(),
        id: d.id.clone(),
        upstream_model: probe.params.get("model").and_then(Value::as_str).map(str::to_string),
        params: probe.params.clone(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(yaml: &str) -> serde_yaml_ng::Mapping {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn probes_ask_for_the_group_or_the_health_check_model() {
        let params = mapping("model: openai/gpt-4o\napi_base: http://x/");
        let p = Probe::new("gpt", &mapping("{}"), &params);
        assert_eq!((p.mode.as_str(), p.model.as_deref()), ("chat", Some("gpt")));
        let (endpoint, body) = p.request("gpt").unwrap();
        assert_eq!(endpoint, Endpoint::Chat);
        assert!(sluice_wire::sniff::request(&body, endpoint).is_ok());
        assert_eq!(Probe::new("openai/*", &mapping("{}"), &params).model, None, "skipped");
        let p = Probe::new("openai/*", &mapping("health_check_model: openai/gpt-4o-mini"), &params);
        assert_eq!(p.model.as_deref(), Some("openai/gpt-4o-mini"));
        for (mode, endpoint) in [("embedding", Endpoint::Embeddings), ("completion", Endpoint::Completions)] {
            let p = Probe::new("e", &mapping(&format!("mode: {mode}")), &params);
            let (e, body) = p.request("e").unwrap();
            assert_eq!(e, endpoint);
            assert!(sluice_wire::sniff::request(&body, e).is_ok());
        }
        let p = Probe::new("img", &mapping("mode: image_generation"), &params);
        assert!(p.request("img").unwrap_err().contains("image_generation"));
    }

    #[test]
    fn renders_litellms_shape() {
        let params: Map<String, Value> =
            serde_json::from_str(r#"{"model":"openai/x","api_base":"http://b/"}"#).unwrap();
        let c = |error: Option<&str>| Checked {
            model_name: "g".into(),
            id: "1".into(),
            upstream_model: Some("openai/x".into()),
            params: params.clone(),
            error: error.map(str::to_string),
        };
        let v = render(&[c(None), c(Some("boom"))], true);
        assert_eq!(v["healthy_count"], 1);
        assert_eq!(v["unhealthy_count"], 1);
        assert_eq!(v["healthy_endpoints"][0]["api_base"], "http://b/");
        assert_eq!(v["unhealthy_endpoints"][0]["error"], "boom");
        let v = render(&[c(Some("boom"))], false);
        assert_eq!(v["unhealthy_endpoints"][0], json!({"model": "openai/x", "error": "boom"}));
        let f = Filter { model: Some("openai/x".into()), model_id: None };
        assert!(f.keeps("g", "1", Some("openai/x")) && !f.keeps("h", "2", Some("openai/y")));
        let f = Filter { model: Some("g".into()), model_id: Some("2".into()) };
        assert!(!f.keeps("g", "1", None) && f.keeps("g", "2", None));
    }
}
