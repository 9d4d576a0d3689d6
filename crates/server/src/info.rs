//! Model lists and health: `/models`, `/models/{id}`, `/model/info`, `/model_group/info`,
//! `/health/*` and `/`.
//!
//! A key sees only the models it may call (its `models`, its team's, the access groups they
//! list). A wildcard group is listed as LiteLLM lists it: expanded into the models the price
//! table knows for its provider, and as the pattern itself when it cannot be expanded (`*`) or
//! `return_wildcard_routes=True` asks for it.

use crate::app::App;
use crate::app::{Target, TargetKind};
use crate::config::DeploymentSpec;
use crate::errors::ErrorResponse;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sluice_wire::ApiError;
use std::sync::Arc;

/// LiteLLM's `DEFAULT_MODEL_CREATED_AT_TIME`.
const MODEL_CREATED: u64 = 1677610602;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn render_models(names: &[String]) -> Bytes {
    let data: Vec<Value> = names.iter().map(|n| model_object(n)).collect();
    Bytes::from(json!({"object": "list", "data": data}).to_string())
}

fn model_object(name: &str) -> Value {
    json!({"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "openai"})
}

pub fn render_model_info(deployments: &[DeploymentSpec]) -> Bytes {
    let data: Vec<Value> = deployments
        .iter()
        .map(|d| {
            let params = serde_json::to_value(&d.public_params).unwrap_or(Value::Null);
            let mut info = serde_json::to_value(&d.model_info).unwrap_or_else(|_| json!({}));
            if let Value::Object(m) = &mut info {
                m.entry("db_model").or_insert(Value::Bool(false));
                add_prices(d, m);
            }
            json!({"model_name": d.model_name, "litellm_params": params, "model_info": info})
        })
        .collect();
    Bytes::from(json!({"data": data}).to_string())
}

/// The per-token prices a deployment is billed at, under LiteLLM's names, where its `model_info`
/// does not set them: LiteLLM's `/model/info` shows the price map's figures the same way, so a
/// person can see what each call will cost (and that an unpriced one costs 0).
pub(crate) fn add_prices(d: &DeploymentSpec, info: &mut serde_json::Map<String, Value>) {
    let p = d.price().unwrap_or_default();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            info.entry(k).or_insert(json!(v));
        }
    };
    put("input_cost_per_token", Some(p.input_per_token));
    put("output_cost_per_token", Some(p.output_per_token));
    put("cache_read_input_token_cost", p.cache_read_per_token);
    put("cache_creation_input_token_cost", p.cache_creation_per_token);
    put("output_cost_per_reasoning_token", p.reasoning_per_token);
    put("input_cost_per_token_batches", p.input_per_token_batches);
    put("output_cost_per_token_batches", p.output_per_token_batches);
    if p.per_second() {
        put("input_cost_per_second", Some(p.input_per_second));
        put("output_cost_per_second", Some(p.output_per_second));
    }
}

fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// The names `/models` lists: groups (wildcards expanded) and visible aliases, in config order,
/// each once; with `wildcard_routes`, the patterns themselves too.
pub fn model_names(router: &sluice_router::Router<Target>, wildcard_routes: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in router.public_names() {
        let expanded = router.group(&name).filter(|g| g.pattern.is_some()).map(|g| {
            g.deployments
                .iter()
                .filter_map(|d| match &d.target.kind {
                    TargetKind::Wildcard(w) => w.known_names(),
                    _ => None,
                })
                .flatten()
                .collect::<Vec<String>>()
        });
        let show_pattern = match &expanded {
            None => true,
            Some(names) => wildcard_routes || names.is_empty(),
        };
        for n in expanded.into_iter().flatten() {
            if seen.insert(n.clone()) {
                out.push(n);
            }
        }
        if show_pattern && seen.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}

/// One of LiteLLM's boolean query flags, written as Python writes booleans (`True`).
fn flag(q: &std::collections::HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

pub async fn models(
    State(app): State<Arc<App>>,
    Query(q): crate::manage::Query,
    headers: HeaderMap,
) -> Result<Response, ErrorResponse> {
    let identity = app.access.authenticate(&headers).await?;
    let is_key = matches!(identity, sluice_access::Identity::Key(_));
    let (wildcards, only_groups, with_groups) = (
        flag(&q, "return_wildcard_routes"),
        flag(&q, "only_model_access_groups"),
        flag(&q, "include_model_access_groups"),
    );
    // The common answer, rendered once per router.
    if !is_key && !wildcards && !only_groups && !with_groups {
        return Ok(json_response(app.models_json.load().as_ref().clone()));
    }
    let mut names = match only_groups {
        true => Vec::new(),
        false => model_names(&app.router.load(), wildcards),
    };
    if only_groups || with_groups {
        names.extend(app.access.access_groups.load().names().iter().cloned());
    }
    // A virtual key sees the models it may call, as LiteLLM filters the list.
    names.retain(|m| app.access.admit_model(&identity, m));
    Ok(json_response(render_models(&names)))
}

/// LiteLLM's `/model_group/info`: one entry per model group the caller may use (wildcard groups
/// by their pattern), with its providers, prices and summed limits.
pub async fn model_group_info(
    State(app): State<Arc<App>>,
    Query(q): crate::manage::Query,
    headers: HeaderMap,
) -> Result<Response, ErrorResponse> {
    let identity = app.access.authenticate(&headers).await?;
    let wanted = q.get("model_group");
    let router = app.router.load();
    let data: Vec<Value> = router
        .model_names()
        .iter()
        .filter(|n| wanted.is_none_or(|w| w == *n))
        .filter(|n| app.access.admit_model(&identity, n))
        .filter_map(|n| router.group(n))
        .map(group_info)
        .collect();
    Ok(json_response(Bytes::from(json!({"data": data}).to_string())))
}

fn group_info(g: &sluice_router::Group<Target>) -> Value {
    let mut providers: Vec<&str> = Vec::new();
    for d in &g.deployments {
        let name = d.target.provider.name;
        // A catch-all's provider is the requested name's: none to name here.
        if name != "*" && !providers.contains(&name) {
            providers.push(name);
        }
    }
    let price = g.deployments.iter().find_map(|d| d.target.served.price);
    let sum = |f: fn(&sluice_router::Deployment<Target>) -> Option<f64>| -> Value {
        let vals: Vec<f64> = g.deployments.iter().filter_map(|d| f(d)).collect();
        if vals.is_empty() {
            Value::Null
        } else {
            json!(vals.iter().sum::<f64>())
        }
    };
    json!({
        "model_group": g.name,
        "providers": providers,
        "max_input_tokens": g.deployments.iter().find_map(|d| d.max_input_tokens),
        "max_output_tokens": null,
        "input_cost_per_token": price.map(|p| p.input_per_token),
        "output_cost_per_token": price.map(|p| p.output_per_token),
        "mode": "chat",
        "tpm": sum(|d| d.tpm),
        "rpm": sum(|d| d.rpm),
        "supports_parallel_function_calling": false,
        "supports_vision": false,
        "supports_function_calling": false,
        "supported_openai_params": null,
        "configurable_clientside_auth_params": null,
    })
}

pub async fn model_by_id(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ErrorResponse> {
    let identity = app.access.authenticate(&headers).await?;
    // A key asking for a model it may not use learns no more than for one that does not exist.
    if app.router.load().resolve(&id).is_none() || !app.access.admit_model(&identity, &id) {
        return Err(ApiError::new(
            404,
            format!("The model `{id}` does not exist. Call `/v1/models` to see the models you can use."),
        )
        .kind("not_found_error")
        .param("model")
        .into());
    }
    Ok(json_response(Bytes::from(model_object(&id).to_string())))
}

pub async fn model_info(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ErrorResponse> {
    app.access.authenticate(&headers).await?;
    Ok(json_response(app.model_info_json.clone()))
}

pub async fn liveliness() -> Response {
    json_response(Bytes::from_static(b"\"I'm alive!\""))
}

/// LiteLLM's readiness answer. While the database is unavailable the status is `degraded`
/// (known keys are served from memory and spend is held until it is back, with how many
/// spend-log rows wait and were dropped), or, with `allow_requests_on_db_unavailable: false`,
/// a 503 as LiteLLM gives when its database check fails, so an orchestrator stops routing here.
pub async fn readiness(State(app): State<Arc<App>>) -> Response {
    use std::sync::atomic::Ordering;
    let connected = app.access.db_connected();
    let db_error = if connected {
        None
    } else {
        let last = app.access.db_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Some(last.unwrap_or_else(|| "the database has not been reached yet".to_owned()))
    };
    if let (Some(e), true) = (&db_error, app.access.refuse_without_db.load(Ordering::Relaxed)) {
        let body = json!({"detail": format!("Service Unhealthy (database unavailable: {e})")});
        let mut resp = json_response(Bytes::from(body.to_string()));
        *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        return resp;
    }
    // Redis away: requests are still served, each replica on its share of every limit.
    let redis_up = app.remote.as_ref().is_none_or(|r| r.healthy());
    let mut body = json!({
        "status": if connected && redis_up { "healthy" } else { "degraded" },
        "db": if connected { "connected" } else { "Not connected" },
        "cache": match (&app.cache, &app.remote) {
            (Some(c), _) if c.settings().backend == sluice_cache::Backend::Local => Value::from("local"),
            (Some(_), _) | (None, Some(_)) => Value::from("redis"),
            (None, None) => Value::Null,
        },
        "litellm_version": VERSION,
        "success_callbacks": app.callbacks,
        "use_aiohttp_transport": true,
        "gateway": "sluice",
    });
    if let (Some(r), Value::Object(m)) = (&app.remote, &mut body) {
        m.insert("redis".into(), Value::from(if redis_up { "connected" } else { "Not connected" }));
        m.insert("redis_replicas".into(), Value::from(r.replicas()));
        m.insert("redis_failed_calls".into(), Value::from(r.failures()));
    }
    if let (Some(e), Value::Object(m)) = (db_error, &mut body) {
        let writer = &app.access.writer;
        m.insert("db_error".into(), Value::from(e));
        m.insert("pending_spend_logs".into(), Value::from(writer.pending_logs.load(Ordering::Relaxed)));
        m.insert("dropped_spend_logs".into(), Value::from(writer.dropped_logs_total.load(Ordering::Relaxed)));
    }
    json_response(Bytes::from(body.to_string()))
}

/// LiteLLM's `GET /routes` (public, as there): every route served, with its methods, from the
/// route table's description, so it lists what `/openapi.json` does and names nothing else.
pub async fn routes() -> Response {
    let mut out: Vec<(String, Vec<String>, &str)> = Vec::new();
    for op in crate::openapi::OPERATIONS {
        let paths = [Some(op.path.to_string()), op.v1.then(|| format!("/v1{}", op.path))];
        for path in paths.into_iter().flatten() {
            let method = op.method.to_ascii_uppercase();
            match out.iter_mut().find(|(p, _, _)| *p == path) {
                Some((_, methods, _)) => methods.push(method),
                None => out.push((path, vec![method], op.summary)),
            }
        }
    }
    let routes: Vec<Value> = out
        .into_iter()
        .map(|(path, methods, summary)| json!({"path": path, "methods": methods, "name": summary, "endpoint": summary}))
        .collect();
    json_response(Bytes::from(json!({"routes": routes}).to_string()))
}

/// LiteLLM's authenticated `GET /health/readiness/details`: the readiness answer with its
/// diagnostics (database, Redis, callbacks, version) for any valid key. sluice's
/// `/health/readiness` already carries them, so this is that answer behind a key.
pub async fn readiness_details(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ErrorResponse> {
    app.access.authenticate(&headers).await?;
    Ok(readiness(State(app)).await)
}

pub async fn root() -> Response {
    json_response(Bytes::from_static(b"\"LiteLLM: RUNNING\""))
}

/// Prometheus scrape endpoint; 404 unless the `prometheus` callback is on, as in LiteLLM. With
/// `require_auth_for_metrics_endpoint`, only a caller whose key passes the checks every route
/// applies (the master key, or a virtual key not blocked or expired) reads it, as LiteLLM's
/// `PrometheusAuthMiddleware` runs its key check: the series name keys, aliases and users.
pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if app.require_auth_for_metrics {
        if let Err(e) = app.access.authenticate(&headers).await {
            // LiteLLM's middleware answers 401 with a JSON string naming the reason.
            let body = Value::String(format!("Unauthorized access to metrics endpoint: {}", e.message));
            return (http::StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], body.to_string())
                .into_response();
        }
    }
    match &app.metrics {
        Some(m) => {
            if let Some(r) = &app.remote {
                m.redis_state(r.healthy(), r.replicas(), r.failures());
            }
            let (access, load) = (&app.access, std::sync::atomic::Ordering::Relaxed);
            if let Some(c) = &app.cache {
                let (entries, bytes) = c.usage();
                m.cache_state(&sluice_metrics::CacheState {
                    entries: entries as u64,
                    bytes: bytes as u64,
                    failed_writes: c.stats.failed_writes.load(load),
                });
            }
            m.database_state(&sluice_metrics::DatabaseState {
                configured: access.store().is_some(),
                up: access.db_connected(),
                pending_spend: access.writer.pending_spend.load(load),
                pending_logs: access.writer.pending_logs.load(load),
                dropped_logs: access.writer.dropped_logs_total.load(load),
                users: access.registry.users.len() as u64,
                teams: access.registry.teams.len() as u64,
            });
            ([(header::CONTENT_TYPE, sluice_metrics::Metrics::content_type())], m.render()).into_response()
        }
        None => {
            (http::StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], "{\"detail\":\"Not Found\"}")
                .into_response()
        }
    }
}
