//! Security settings whose secret did not arrive stop the start.
//!
//! LiteLLM treats an `os.environ/` reference to an unset variable as "no value". For an upstream
//! credential that is right (that deployment fails at request time), but for the master key it
//! means *no authentication at all*, and a Kubernetes secret that failed to mount would open the
//! gateway. So an unresolved reference in a security setting is an error naming the YAML path
//! and the variable (never a value), and so is a security setting that resolves to nothing.

use super::{ConfigError, Env};
use serde_yaml_ng::{Mapping, Value};

const PREFIX: &str = "os.environ/";

/// `general_settings` keys that hold a security secret or decide who gets in.
const GENERAL: &[&str] = &["master_key", "database_url", "litellm_key_header_name"];

/// Variables a config may set in `environment_variables` that sluice or LiteLLM read as security
/// settings.
const SECURITY_VARIABLES: &[&str] = &[
    "LITELLM_MASTER_KEY",
    "DATABASE_URL",
    "REDIS_HOST",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "UI_USERNAME",
    "UI_PASSWORD",
    "LITELLM_SALT_KEY",
];

/// Whether a key's name says it holds a secret.
fn secret_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "password", "token", "credential"].iter().any(|s| k.contains(s))
}

/// `cache_params` keys that say where Redis is and how to log in to it.
fn redis_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("url") || k == "host" || k == "username"
}

/// Every security setting that names an unset variable, or is present but empty, as one error.
pub(crate) fn check(root: &Mapping, env: &Env) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let section = |name: &str| match root.get(name) {
        Some(Value::Mapping(m)) => Some(m),
        _ => None,
    };
    if let Some(general) = section("general_settings") {
        for (k, v) in general {
            let key = super::yaml::key_str(k);
            if GENERAL.contains(&key.as_str()) || secret_like(&key) {
                unresolved(&format!("general_settings.{key}"), v, env, &mut problems);
            }
        }
        if let Some(v) = general.get("master_key") {
            let empty = match v {
                Value::Null => true,
                Value::String(s) => s.trim().is_empty(),
                _ => false,
            };
            if empty {
                problems.push(
                    "general_settings.master_key: is empty. Set it to the key admins will use (e.g. os.environ/LITELLM_MASTER_KEY), or remove the line to run without authentication"
                        .to_string(),
                );
            }
        }
    }
    if let Some(router) = section("router_settings") {
        for (k, v) in router {
            let key = super::yaml::key_str(k);
            if key.starts_with("redis_") {
                unresolved(&format!("router_settings.{key}"), v, env, &mut problems);
            }
        }
    }
    if let Some(Value::Mapping(cache)) = section("litellm_settings").and_then(|l| l.get("cache_params")) {
        for (k, v) in cache {
            let key = super::yaml::key_str(k);
            if redis_like(&key) {
                unresolved(&format!("litellm_settings.cache_params.{key}"), v, env, &mut problems);
            }
        }
    }
    if let Some(vars) = section("environment_variables") {
        for (k, v) in vars {
            let key = super::yaml::key_str(k);
            if SECURITY_VARIABLES.contains(&key.as_str()) {
                unresolved(&format!("environment_variables.{key}"), v, env, &mut problems);
            }
        }
    }
    // Unset is open mode, LiteLLM's default; set but empty is a secret that did not arrive.
    if !section("general_settings").is_some_and(|g| g.contains_key("master_key"))
        && env.get("LITELLM_MASTER_KEY").is_some_and(|k| k.trim().is_empty())
    {
        problems.push(
            "LITELLM_MASTER_KEY: is set but empty. Give it the master key, or unset it to run without authentication"
                .to_string(),
        );
    }
    // Set but empty, the database URL would quietly send keys and spend to a local SQLite file.
    if !section("general_settings").is_some_and(|g| g.contains_key("database_url"))
        && env.get("DATABASE_URL").is_some_and(|u| u.trim().is_empty())
    {
        problems.push(
            "DATABASE_URL: is set but empty. Give it the database's URL, or unset it to use the embedded SQLite file"
                .to_string(),
        );
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Document(format!(
        "refusing to start with a security setting unresolved (a missing secret must not open the gateway):\n  {}",
        problems.join("\n  ")
    )))
}

fn unresolved(path: &str, v: &Value, env: &Env, problems: &mut Vec<String>) {
    let Value::String(s) = v else { return };
    let Some(var) = s.trim().strip_prefix(PREFIX) else { return };
    match env.get(var) {
        None => problems.push(format!(
            "{path}: environment variable {var} is not set. Set it (check that the secret holding it is mounted), or remove the setting"
        )),
        Some(value) if value.trim().is_empty() => problems.push(format!(
            "{path}: environment variable {var} is set but empty. Give it the secret's value (check that the secret holding it is mounted)"
        )),
        Some(_) => {}
    }
}
