//! `POST /config/update` (LiteLLM's `proxy_server.py`): settings changed without a restart.
//!
//! The body is LiteLLM's `ConfigYAML`: `router_settings`, `litellm_settings`,
//! `general_settings`, `environment_variables`. Each section is merged key by key into what the
//! database holds for it (`sluice_config`, [`sluice_store::Store::put_config_param`]); `null`
//! removes a key, so the file's value holds again. As in LiteLLM the feature needs
//! `store_model_in_db`, and only then are stored settings read at start and merged over the
//! file's sections.
//!
//! A setting is taken only where sluice can apply it at once: the router's (retries, fallbacks,
//! strategy, cooldowns, timeouts) and the `litellm_settings` that feed the router or the
//! deployments. Any other is refused before anything is stored, with a message naming it —
//! never stored and silently ignored. The merged document is read again by the config parser
//! ([`Config::with_sections`]), so a stored value is checked and bounded exactly as in
//! `config.yaml`, and a bad one is refused with the parser's message.
//!
//! Applying: the new config is swapped in ([`LiveSettings`]) and a router with its settings
//! replaces the old one ([`App::reroute`]); deployments keep their live health unless a setting
//! that is built into them (a timeout, `drop_params`) changed. Other replicas get a notice
//! ([`crate::live`]) or see the change in their database poll, and do the same.

use super::{admin, bad, db, json, store, Fields, Need, Result};
use crate::app::App;
use crate::config::{Config, Env};
use crate::live::Kind;
use arc_swap::ArcSwap;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use sluice_store::{ConfigParam, Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;

/// The `router_settings` sluice applies live: everything its router reads.
const ROUTER_LIVE: &[&str] = &[
    "num_retries",
    "retry_after",
    "cooldown_time",
    "allowed_fails",
    "disable_cooldowns",
    "enable_pre_call_checks",
    "enable_tag_filtering",
    "tag_filtering_match_any",
    "max_fallbacks",
    "retry_policy",
    "allowed_fails_policy",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "model_group_alias",
    "routing_strategy",
    "routing_strategy_args",
    "timeout",
    "stream_timeout",
    "default_max_parallel_requests",
];

/// The `litellm_settings` sluice applies live: those that feed the router or the deployments.
const LITELLM_LIVE: &[&str] = &[
    "num_retries",
    "allowed_fails",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "drop_params",
    "request_timeout",
];

/// Settings built into each deployment when it is made: changing one rebuilds them all (their
/// cooldowns and windows start again).
fn built_in(c: &Config) -> (Option<f64>, Option<f64>, Option<f64>, bool, Option<u32>) {
    (
        c.router.timeout,
        c.router.stream_timeout,
        c.litellm.request_timeout,
        c.litellm.drop_params,
        c.router.routing.default_max_parallel_requests,
    )
}

/// The config as the API has changed it, held by [`App`].
pub struct LiveSettings {
    /// `config.yaml` as read at start: what the stored sections are merged over.
    file: ArcSwap<Config>,
    /// The file with the stored sections over it: what routes now.
    current: ArcSwap<Config>,
    env: Env,
    /// The stored sections last applied, to tell a real change from a poll that found none.
    applied: std::sync::Mutex<Vec<(String, Value)>>,
    /// One reload at a time, so an older read never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
}

impl LiveSettings {
    pub fn new(config: &Config, env: &Env) -> Self {
        LiveSettings {
            file: ArcSwap::from_pointee(config.clone()),
            current: ArcSwap::from_pointee(config.clone()),
            env: env.clone(),
            applied: Default::default(),
            reloading: Default::default(),
        }
    }

    /// The config routing now (the file's, with the stored settings over it).
    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// What [`App::start`] built the app from: the file, and the file with the stored settings.
    pub(crate) fn started(&self, file: Config, current: Config, stored: Vec<(String, Value)>) {
        self.file.store(Arc::new(file));
        self.current.store(Arc::new(current));
        *self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = stored;
    }
}

fn sections(params: Vec<ConfigParam>) -> Vec<(String, Value)> {
    params.into_iter().map(|p| (p.param_name, p.param_value)).collect()
}

/// The settings stored in the database merged over `file`, for [`App::start`]: `None` when
/// there are none, or they cannot be read or applied (said in the log; the file's config is
/// used, a bad stored setting never stops the start).
pub(crate) async fn at_start(store: &Store, file: &Config) -> Option<(Config, Vec<(String, Value)>)> {
    let stored = match store.config_params().await {
        Ok(p) if p.is_empty() => return None,
        Ok(p) => sections(p),
        Err(e) => {
            tracing::warn!("could not read the settings stored by /config/update ({e}); using config.yaml's alone");
            return None;
        }
    };
    match file.with_sections(stored.iter().map(|(k, v)| (k.as_str(), v))) {
        Ok(c) => Some((c, stored)),
        Err(e) => {
            tracing::error!(
                "the settings stored by /config/update no longer apply ({e}); using config.yaml's alone. Fix them with /config/update."
            );
            None
        }
    }
}

/// Reads the stored settings and, if they changed since last applied, applies them on this
/// replica: `/config/update` here, a notice from another replica, the database poll.
pub(crate) async fn reload(app: &App) -> std::result::Result<(), StoreError> {
    if !app.store_model_in_db {
        return Ok(());
    }
    let Some(store) = app.access.store() else { return Ok(()) };
    let live = &app.live_settings;
    let _one = live.reloading.lock().await;
    let stored = sections(store.config_params().await?);
    if *live.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) == stored {
        return Ok(());
    }
    let file = live.file.load_full();
    let config = match file.with_sections(stored.iter().map(|(k, v)| (k.as_str(), v))) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("the settings stored by /config/update do not apply ({e}); keeping the current ones");
            return Ok(());
        }
    };
    let models = store.all_models().await?;
    let old = live.current();
    let specs = super::deployments_from_db(&models, &live.env);
    // Deployments are rebuilt only when a setting built into them changed.
    let changed: HashSet<String> = if built_in(&old) != built_in(&config) {
        config.deployments.iter().chain(&specs).map(|d| d.id.clone()).collect()
    } else {
        HashSet::new()
    };
    app.reroute(&config, &live.env, &specs, &changed);
    live.current.store(Arc::new(config));
    *live.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = stored;
    tracing::info!("settings changed through /config/update now apply");
    Ok(())
}

/// Why `key` of `section` cannot be taken, or `None` when sluice applies it live.
fn refusal(section: &str, key: &str) -> Option<String> {
    let path = format!("{section}.{key}");
    match section {
        "router_settings" if ROUTER_LIVE.contains(&key) => None,
        "litellm_settings" if LITELLM_LIVE.contains(&key) => None,
        "router_settings" if key.starts_with("redis_") => Some(format!(
            "{path} cannot be changed while sluice runs: the Redis connection is made at start. Set it in config.yaml and restart."
        )),
        "router_settings" | "litellm_settings" => Some(format!(
            "{path} cannot be applied without a restart in sluice. Settings /config/update applies live: router_settings.{{{}}}, litellm_settings.{{{}}}. Set {path} in config.yaml and restart.",
            ROUTER_LIVE.join(", "),
            LITELLM_LIVE.join(", ")
        )),
        "general_settings" => Some(format!(
            "{path} cannot be changed while sluice runs: general_settings are read at start. Set it in config.yaml and restart."
        )),
        _ => None,
    }
}

/// `POST /config/update`: LiteLLM's `{"message": "Config updated successfully"}` once the
/// settings are stored and apply on this replica.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    admin(&app, &headers, "/config/update").await?;
    let f = Fields::parse(&body)?;
    if !app.store_model_in_db {
        return Err(super::models::disabled());
    }
    let store = store(&app, Need::Other)?;
    let mut changes: Vec<(&str, Map<String, Value>)> = Vec::new();
    for (section, v) in &f.0 {
        match section.as_str() {
            "router_settings" | "litellm_settings" | "general_settings" => {}
            "environment_variables" => {
                if v.as_object().is_some_and(|m| !m.is_empty()) {
                    return Err(bad(
                        "environment_variables cannot be set through /config/update in sluice: deployments read their credentials when they are built, and sluice keeps no secrets in its database. Set them in the process environment or config.yaml's environment_variables and restart.",
                        "environment_variables",
                    ));
                }
                continue;
            }
            "model_list" => {
                return Err(bad(
                    "model_list cannot be changed through /config/update: add, change and delete models with /model/new, /model/update and /model/delete.",
                    "model_list",
                ))
            }
            other => {
                return Err(bad(
                    format!("{other} is not a section /config/update takes; use router_settings, litellm_settings, general_settings or environment_variables."),
                    other,
                ))
            }
        }
        let settings = match v {
            Value::Null => continue,
            Value::Object(m) => m,
            _ => return Err(bad(format!("{section} must be an object of settings."), section)),
        };
        for key in settings.keys() {
            if let Some(why) = refusal(section, key) {
                return Err(bad(why, &format!("{section}.{key}")));
            }
        }
        changes.push((section.as_str(), settings.clone()));
    }
    // The stored sections with this request's keys over them (`null` removes one).
    let mut stored: Map<String, Value> =
        sections(db(store.config_params().await)?).into_iter().collect::<Map<String, Value>>();
    let mut touched = Vec::new();
    for (section, settings) in changes {
        let entry = stored.entry(section.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Value::Object(m) = entry {
            for (k, v) in settings {
                match v {
                    Value::Null => drop(m.remove(&k)),
                    v => drop(m.insert(k, v)),
                }
            }
        }
        touched.push(section);
    }
    // Checked whole, as at start, before anything is stored.
    let file = app.live_settings.file.load_full();
    if let Err(e) = file.with_sections(stored.iter().map(|(k, v)| (k.as_str(), v))) {
        return Err(bad(format!("The settings were not changed: {e}"), "body"));
    }
    for section in &touched {
        if let Some(v) = stored.get(*section) {
            db(store.put_config_param(section, v).await)?;
        }
    }
    if !touched.is_empty() {
        db(reload(&app).await)?;
        app.changes.publish(Kind::Config, touched.iter().map(|s| s.to_string())).await;
    }
    Ok(json(serde_json::json!({"message": "Config updated successfully"})))
}
