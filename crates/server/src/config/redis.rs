//! Where the Redis that replicas share limits, budgets and cooldowns through is, read the ways
//! LiteLLM users already write it (reference §1.3, §1.4, §4.8, §6), into a [`RemoteConfig`].
//!
//! In order, the first that names Redis wins:
//! 1. `router_settings.redis_url`;
//! 2. `router_settings.redis_host` (with `redis_port`, `redis_password`, deprecated `redis_db`);
//! 3. `litellm_settings.cache: true` with `cache_params` of `type: redis` (the proxy's default
//!    type): `url`, else `host`/`port`/`password`/`username`, else the `REDIS_URL` variable,
//!    else `REDIS_HOST`.
//!
//! A missing port, password or user name comes from `REDIS_PORT` (else 6379), `REDIS_PASSWORD`,
//! `REDIS_USERNAME`, as LiteLLM's Redis client fills them in. The variables alone do not turn
//! sharing on: LiteLLM needs the config to name Redis, and so does sluice. Redis Cluster and
//! Sentinel stop the start with what to use instead; `rediss://` too (this build has no TLS).
//! The key prefix is sluice's own setting, `sluice_settings.redis_key_prefix` (`sluice:`).
//!
//! No message here ever holds the URL or the password: they say which setting to fix.

use super::error::{err, ConfigError};
use super::value::{boolean, string};
use super::Env;
use serde_yaml_ng::{Mapping, Value};
use sluice_state::remote::{RemoteConfig, DEFAULT_OP_TIMEOUT, DEFAULT_PREFIX};

/// The port when neither the config nor `REDIS_PORT` names one.
const DEFAULT_PORT: u16 = 6379;

/// Settings (in `cache_params` or `router_settings`) that ask for Redis Cluster or Sentinel.
const CLUSTER_KEYS: &[&str] = &["redis_startup_nodes", "startup_nodes"];
const SENTINEL_KEYS: &[&str] = &["service_name", "sentinel_nodes", "sentinel_password"];

const CLUSTER_FIX: &str = "Redis Cluster is not supported by sluice: point it at one Redis server (router_settings.redis_host, or cache_params.host), a primary with a replica for failover behind one address if you need one; sluice keeps only live counters, cooldowns and heartbeats there";
const SENTINEL_FIX: &str = "Redis Sentinel is not supported by sluice: point it at one Redis server address (router_settings.redis_host, or cache_params.host), e.g. a proxy or DNS name that follows the primary";

/// Reads where Redis is. `Ok(None)`: the config names no Redis, and each replica counts alone.
pub(crate) fn read(
    root: &Mapping,
    env: &Env,
    prefix: Option<String>,
    ignored: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<RemoteConfig>, ConfigError> {
    let section = |name: &str| match root.get(name) {
        Some(Value::Mapping(m)) => Some(m),
        _ => None,
    };
    let router = section("router_settings");
    let litellm = section("litellm_settings");
    let from_router = match router {
        Some(r) => from_router_settings(r, env, warnings)?,
        None => None,
    };
    let from_cache = match litellm {
        Some(l) => from_cache_settings(l, env, ignored, warnings)?,
        None => None,
    };
    let url = match (from_router, from_cache) {
        (Some(r), Some(c)) => {
            if r != c {
                warnings.push(
                    "litellm_settings.cache_params: names another Redis than router_settings; sluice shares limits and cooldowns, and keeps cached answers, in router_settings' only".into(),
                );
            }
            Some(r)
        }
        (r, c) => r.or(c),
    };
    Ok(url.map(|url| RemoteConfig {
        url,
        prefix: prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    }))
}

/// `router_settings.redis_url`, or `redis_host` with its port, password and db.
fn from_router_settings(r: &Mapping, env: &Env, warnings: &mut Vec<String>) -> Result<Option<String>, ConfigError> {
    const AT: &str = "router_settings";
    refuse_cluster_and_sentinel(AT, r, &["redis_startup_nodes"], &[])?;
    if let Some(url) = text(AT, r, "redis_url", env, warnings)? {
        return checked_url(&format!("{AT}.redis_url"), url).map(Some);
    }
    let Some(host) = text(AT, r, "redis_host", env, warnings)? else {
        for key in ["redis_port", "redis_password", "redis_db"] {
            if r.get(key).is_some_and(|v| !v.is_null()) {
                warnings.push(format!(
                    "{AT}.{key}: has no effect without router_settings.redis_host (or redis_url), so nothing is shared through Redis by it"
                ));
            }
        }
        return Ok(None);
    };
    let port = port(AT, r, "redis_port", env, warnings)?;
    let password = text(AT, r, "redis_password", env, warnings)?.or_else(|| non_empty(env.get("REDIS_PASSWORD")));
    let username = non_empty(env.get("REDIS_USERNAME"));
    let db = match r.get("redis_db") {
        None | Some(Value::Null) => None,
        Some(v) => Some(db(&format!("{AT}.redis_db"), v, env, warnings)?),
    }
    .flatten();
    Ok(Some(build_url(&host, port, username.as_deref(), password.as_deref(), db)))
}

/// `litellm_settings.cache: true` with Redis `cache_params` (what of them is about caching
/// answers is read by `config::cache`).
fn from_cache_settings(
    l: &Mapping,
    env: &Env,
    ignored: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, ConfigError> {
    const AT: &str = "litellm_settings.cache_params";
    let on = match l.get("cache") {
        None => false,
        Some(v) => boolean(v).map_err(|m| err("litellm_settings.cache", m))?.unwrap_or(false),
    };
    let params = match l.get("cache_params") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m.clone(),
        Some(_) => return Err(err(AT, "expected a mapping, e.g. {type: redis, host: ..., port: 6379}")),
    };
    if !on {
        if !params.is_empty() {
            ignored.push(format!("{AT}: not used: litellm_settings.cache is not true"));
        }
        return Ok(None);
    }
    // The proxy's default cache type is Redis (the SDK's is local).
    let kind = match params.get("type") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string(v).map_err(|m| err(&format!("{AT}.type"), m))?.unwrap_or_default()),
    };
    // A semantic cache keeps its vectors and answers in Redis too.
    let redis = kind.as_deref().is_none_or(|k| k == "redis" || k == "redis-semantic");
    if !redis {
        return Ok(None);
    }
    refuse_cluster_and_sentinel(AT, &params, CLUSTER_KEYS, SENTINEL_KEYS)?;
    for var in ["REDIS_CLUSTER_NODES", "REDIS_SENTINEL_NODES", "REDIS_SERVICE_NAME"] {
        if non_empty(env.get(var)).is_some() {
            let fix = if var == "REDIS_CLUSTER_NODES" { CLUSTER_FIX } else { SENTINEL_FIX };
            return Err(err(var, format!("is set, and LiteLLM's Redis cache would use it. {fix}; then unset {var}")));
        }
    }
    if let Some(url) = text(AT, &params, "url", env, warnings)? {
        return checked_url(&format!("{AT}.url"), url).map(Some);
    }
    let host = match text(AT, &params, "host", env, warnings)? {
        Some(h) => h,
        None => {
            if let Some(url) = non_empty(env.get("REDIS_URL")) {
                return checked_url("REDIS_URL", url).map(Some);
            }
            match non_empty(env.get("REDIS_HOST")) {
                Some(h) => h,
                None if kind.is_some() => {
                    return Err(err(
                        AT,
                        "type: redis names no Redis: set cache_params.host (and port, password), or the REDIS_HOST (or REDIS_URL) variable",
                    ))
                }
                None => {
                    warnings.push("litellm_settings.cache: true picks a Redis cache, but neither cache_params.host nor REDIS_HOST / REDIS_URL names one; nothing is shared through Redis".into());
                    return Ok(None);
                }
            }
        }
    };
    let port = port(AT, &params, "port", env, warnings)?;
    let password = text(AT, &params, "password", env, warnings)?.or_else(|| non_empty(env.get("REDIS_PASSWORD")));
    let username = text(AT, &params, "username", env, warnings)?.or_else(|| non_empty(env.get("REDIS_USERNAME")));
    let db = match params.get("db") {
        None | Some(Value::Null) => None,
        Some(v) => db(&format!("{AT}.db"), v, env, warnings)?,
    };
    Ok(Some(build_url(&host, port, username.as_deref(), password.as_deref(), db)))
}

fn refuse_cluster_and_sentinel(at: &str, m: &Mapping, cluster: &[&str], sentinel: &[&str]) -> Result<(), ConfigError> {
    for (keys, fix) in [(cluster, CLUSTER_FIX), (sentinel, SENTINEL_FIX)] {
        for key in keys {
            if m.get(*key).is_some_and(|v| !v.is_null()) {
                return Err(err(&format!("{at}.{key}"), fix));
            }
        }
    }
    Ok(())
}

/// A string setting, `os.environ/` resolved; `None` when absent, null, empty or unset.
fn text(
    at: &str,
    m: &Mapping,
    key: &str,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, ConfigError> {
    let path = format!("{at}.{key}");
    let Some(v) = m.get(key) else { return Ok(None) };
    let Some(s) = string(v).map_err(|m| err(&path, m))? else { return Ok(None) };
    Ok(env.resolve_str(&path, s.trim(), warnings).and_then(|s| non_empty(Some(s))))
}

fn port(at: &str, m: &Mapping, key: &str, env: &Env, warnings: &mut Vec<String>) -> Result<u16, ConfigError> {
    match text(at, m, key, env, warnings)? {
        Some(p) => parse_port(&format!("{at}.{key}"), &p),
        None => match non_empty(env.get("REDIS_PORT")) {
            Some(p) => parse_port("REDIS_PORT", &p),
            None => Ok(DEFAULT_PORT),
        },
    }
}

fn parse_port(path: &str, p: &str) -> Result<u16, ConfigError> {
    match p.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(err(path, format!("expected a port number from 1 to 65535, got \"{p}\""))),
    }
}

fn db(path: &str, v: &Value, env: &Env, warnings: &mut Vec<String>) -> Result<Option<u32>, ConfigError> {
    let Some(s) = string(v).map_err(|m| err(path, m))? else { return Ok(None) };
    let Some(s) = env.resolve_str(path, s.trim(), warnings) else { return Ok(None) };
    s.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| err(path, format!("expected a database number (0, 1, ...), got \"{s}\"")))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A `redis_url` (or `REDIS_URL`) that sluice can connect with. The message never shows the
/// value: it may hold a password.
fn checked_url(path: &str, url: String) -> Result<String, ConfigError> {
    if url.starts_with("rediss://") {
        return Err(err(
            path,
            "TLS to Redis (rediss://) is not supported by this build of sluice: use redis:// on a private network, or a local TLS tunnel (e.g. stunnel) to reach Redis",
        ));
    }
    if !url.starts_with("redis://") || sluice_state::remote::redis::Client::open(url.as_str()).is_err() {
        return Err(err(
            path,
            "is not a Redis URL sluice can use; expected redis://[[user]:password@]host[:port][/db] (the value is not shown: it may hold a password)",
        ));
    }
    Ok(url)
}

/// `redis://[user][:password@]host:port[/db]`, the user and password percent-encoded.
fn build_url(host: &str, port: u16, username: Option<&str>, password: Option<&str>, db: Option<u32>) -> String {
    let mut url = String::from("redis://");
    if username.is_some() || password.is_some() {
        url.push_str(&encode(username.unwrap_or_default()));
        if let Some(p) = password {
            url.push(':');
            url.push_str(&encode(p));
        }
        url.push('@');
    }
    if host.contains(':') && !host.starts_with('[') {
        url.push_str(&format!("[{host}]"));
    } else {
        url.push_str(host);
    }
    url.push_str(&format!(":{port}"));
    if let Some(db) = db {
        url.push_str(&format!("/{db}"));
    }
    url
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
