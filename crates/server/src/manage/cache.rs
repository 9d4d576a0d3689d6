//! LiteLLM's cache routes (`proxy/caching_routes.py`): `GET /cache/ping`, `POST /cache/delete`
//! (`{"keys": [...]}`, the keys a hit's `x-litellm-cache-key` named), `POST /cache/flushall`,
//! `GET /cache/redis/info`. A proxy admin's; a proxy admin viewer may read (`roles::POLICY`).

use super::roles::authorize;
use super::{bad, json, Result};
use crate::app::App;
use crate::errors::ErrorResponse;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use sluice_wire::ApiError;
use std::sync::Arc;

/// The most keys one `/cache/delete` names, and the longest key.
const MAX_KEYS: usize = 1_000;
const MAX_KEY: usize = 1_024;

fn cache(app: &App) -> Result<&Arc<sluice_cache::Cache>> {
    app.cache.as_ref().ok_or_else(|| {
        ErrorResponse::from(ApiError::new(
            503,
            "Cache not initialized. litellm.cache is None: set litellm_settings.cache: true (and cache_params) in the config",
        ))
    })
}

fn unavailable(message: String) -> ErrorResponse {
    ApiError::new(503, format!("Service Unhealthy: {message}")).into()
}

fn type_name(c: &sluice_cache::Cache) -> &'static str {
    match c.settings().backend {
        sluice_cache::Backend::Local => "local",
        sluice_cache::Backend::Redis => "redis",
    }
}

/// `GET /cache/ping`: whether the cache's store answers, its type and settings (no secret: the
/// Redis address is not among them).
pub async fn ping(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/cache/ping").await?;
    let c = cache(&app)?;
    c.ping().await.map_err(unavailable)?;
    let s = c.settings();
    let (entries, bytes) = c.usage();
    let shapes: Vec<&str> = s.shapes.iter().map(|s| s.name()).collect();
    Ok(json(json!({
        "status": "healthy",
        "cache_type": type_name(c),
        "ping_response": true,
        "set_cache_response": "success",
        "litellm_cache_params": {
            "type": type_name(c),
            "ttl": s.ttl.map(|t| t.as_secs()),
            "namespace": s.namespace,
            "mode": if s.default_on { "default_on" } else { "default_off" },
            "supported_call_types": shapes,
        },
        "sluice": {
            "entries_in_process": entries,
            "bytes_in_process": bytes,
            "hits": c.stats.hits.load(std::sync::atomic::Ordering::Relaxed),
            "misses": c.stats.misses.load(std::sync::atomic::Ordering::Relaxed),
        },
    })))
}

/// `POST /cache/delete` `{"keys": ["<x-litellm-cache-key>", ...]}`.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/cache/delete").await?;
    let c = cache(&app)?;
    let usage = "send {\"keys\": [\"<cache key>\", ...]}, the keys the x-litellm-cache-key header named";
    let v: Value = serde_json::from_slice(&body).map_err(|_| bad(format!("Invalid JSON: {usage}"), "keys"))?;
    let Some(Value::Array(list)) = v.get("keys") else {
        return Err(bad(format!("`keys` is required: {usage}"), "keys"));
    };
    if list.len() > MAX_KEYS {
        return Err(bad(format!("at most {MAX_KEYS} keys at once, got {}", list.len()), "keys"));
    }
    let keys = list
        .iter()
        .map(|k| match k.as_str() {
            Some(k) if !k.is_empty() && k.len() <= MAX_KEY => Ok(k.to_string()),
            _ => Err(bad(format!("each key must be a string of 1 to {MAX_KEY} bytes: {usage}"), "keys")),
        })
        .collect::<Result<Vec<_>>>()?;
    let deleted = c.delete(&keys).await.map_err(unavailable)?;
    Ok(json(json!({"status": "success", "deleted": deleted})))
}

/// `POST /cache/flushall`: every kept answer gone (this gateway's keys only, in Redis).
pub async fn flushall(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/cache/flushall").await?;
    cache(&app)?.flush().await.map_err(unavailable)?;
    Ok(json(json!({"status": "success"})))
}

/// `GET /cache/redis/info`: Redis's `INFO`, section by section.
pub async fn redis_info(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/cache/redis/info").await?;
    let c = cache(&app)?;
    let Some(info) = c.redis_info().await else {
        return Err(bad(
            format!("the cache is of type {}, not redis: there is no Redis to describe", type_name(c)),
            "type",
        ));
    };
    let text = info.map_err(unavailable)?;
    let mut fields = Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.to_string(), Value::from(v.trim()));
        }
    }
    let clients = fields.get("connected_clients").and_then(|v| v.as_str()).and_then(|v| v.parse::<u64>().ok());
    Ok(json(json!({"num_clients": clients, "info": fields})))
}
