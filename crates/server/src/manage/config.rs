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

use super::roles::authorize;
use super::{bad, db, json, store, Fields, Need, Result};
use crate::app::App;
use crate::config::{Config, DeploymentSpec, Env};
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
    /// The stored models the router was last built with (`None`: not yet re-read since start).
    /// Its lock is held across every swap of the router, so a swap for new settings and one for
    /// changed models never interleave: the last one always has the newest of both.
    routed: std::sync::Mutex<Option<Vec<DeploymentSpec>>>,
}

impl LiveSettings {
    pub fn new(config: &Config, env: &Env) -> Self {
        LiveSettings {
            file: ArcSwap::from_pointee(config.clone()),
            current: ArcSwap::from_pointee(config.clone()),
            env: env.clone(),
            applied: Default::default(),
            reloading: Default::default(),
            routed: Default::default(),
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

impl LiveSettings {
    /// Routes `stored` (the models stored in the database) with the current settings
    /// ([`App::reroute`]): what [`crate::live`] does when stored models change.
    pub(crate) fn route_models(&self, app: &App, stored: Vec<DeploymentSpec>, changed: &HashSet<String>) {
        let mut routed = self.routed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        app.reroute(&self.current(), &self.env, &stored, changed);
        *routed = Some(stored);
    }

    /// Routes with `config` from now on, the stored models as last routed (`read`, the ones in
    /// the database, until they have been). Deployments are rebuilt only when a setting built
    /// into them changed.
    fn route_settings(&self, app: &App, config: Config, read: Vec<DeploymentSpec>) {
        let mut routed = self.routed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stored = routed.clone().unwrap_or(read);
        let changed: HashSet<String> = if built_in(&self.current()) != built_in(&config) {
            config.deployments.iter().chain(&stored).map(|d| d.id.clone()).collect()
        } else {
            HashSet::new()
        };
        app.reroute(&config, &self.env, &stored, &changed);
        self.current.store(Arc::new(config));
        *routed = Some(stored);
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
    live.route_settings(app, config, super::deployments_from_db(&models, &live.env));
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
    authorize(&app, &headers, "/config/update").await?;
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
        return Err(bad(format!("The settings were not changed: {e}"), e.path().unwrap_or("body")));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = "
model_list:
  - model_name: a
    litellm_params: {model: openai/a, api_key: x}
general_settings:
  master_key: sk-the-master-secret
litellm_settings:
  num_retries: 5
  drop_params: true
router_settings:
  routing_strategy: least-busy
  num_retries: 1
";

    fn file() -> Config {
        Config::from_yaml_str(FILE, Env::fixed([])).unwrap()
    }

    #[test]
    fn stored_sections_merge_over_the_files_key_by_key() {
        let router = json!({"num_retries": 3, "fallbacks": [{"a": ["b"]}]});
        let c = file().with_sections([("router_settings", &router)]).unwrap();
        assert_eq!(c.router.routing.num_retries, 3);
        assert_eq!(c.router.routing.fallbacks, vec![("a".to_string(), vec!["b".to_string()])]);
        // Keys the section does not name keep the file's values.
        assert_eq!(c.router.routing.strategy.name(), "least-busy");
        assert!(c.litellm.drop_params);
        // The file's own document is left as it was.
        assert_eq!(file().router.routing.num_retries, 1);
    }

    #[test]
    fn the_document_kept_for_merging_never_shows_its_secrets() {
        let c = file();
        assert!(c.source.get("general_settings").is_some());
        assert!(!format!("{c:?}").contains("sk-the-master-secret"));
    }

    #[test]
    fn stored_values_are_bounded_as_in_the_file() {
        for bad in [json!({"num_retries": -1}), json!({"timeout": 1e300}), json!({"routing_strategy": "fastest"})] {
            let e = file().with_sections([("router_settings", &bad)]).unwrap_err().to_string();
            assert!(e.contains("router_settings."), "{bad}: {e}");
        }
    }

    #[test]
    fn only_settings_applied_live_are_taken() {
        assert_eq!(refusal("router_settings", "num_retries"), None);
        assert_eq!(refusal("litellm_settings", "drop_params"), None);
        for (section, key, words) in [
            ("router_settings", "redis_host", "Redis connection is made at start"),
            ("litellm_settings", "max_budget", "without a restart"),
            ("litellm_settings", "made_up", "without a restart"),
            ("general_settings", "master_key", "read at start"),
        ] {
            let why = refusal(section, key).unwrap_or_default();
            assert!(why.starts_with(&format!("{section}.{key} ")) && why.contains(words), "{why}");
        }
    }

    #[test]
    fn a_setting_built_into_deployments_rebuilds_them() {
        let c = file();
        let timeout = json!({"timeout": 30});
        assert_ne!(built_in(&c), built_in(&c.with_sections([("router_settings", &timeout)]).unwrap()));
        let retries = json!({"num_retries": 2});
        assert_eq!(built_in(&c), built_in(&c.with_sections([("router_settings", &retries)]).unwrap()));
    }
}
