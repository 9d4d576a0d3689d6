//! The settings sections: `general_settings`, `router_settings`, `litellm_settings`, and sluice's
//! own `sluice_settings`. Each parser records keys it reads but does not act on.

use super::deployment::Secret;
use super::yaml::{boolean, key_str, mapping, number, string};
use super::{err, ConfigError, Env};
use serde_yaml_ng::Value;

#[derive(Debug, Clone, Default)]
pub struct GeneralSettings {
    pub master_key: Option<Secret>,
    /// `max_request_size_mb`, in bytes. `None`: sluice's default applies.
    pub max_request_size: Option<usize>,
}

impl GeneralSettings {
    pub(crate) fn parse(
        v: &Value,
        env: &Env,
        ignored: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let mut s = GeneralSettings::default();
        for (k, val) in mapping("general_settings", v)? {
            let key = key_str(k);
            let path = format!("general_settings.{key}");
            match key.as_str() {
                "master_key" => {
                    if let Some(raw) = string(&path, val)? {
                        s.master_key = env.resolve_str(&path, &raw, warnings).map(Secret::new);
                    }
                }
                "max_request_size_mb" => {
                    if let Some(mb) = number(&path, val)? {
                        if mb <= 0.0 {
                            return Err(err(&path, "must be a positive number of megabytes"));
                        }
                        s.max_request_size = Some((mb * 1024.0 * 1024.0) as usize);
                    }
                }
                _ => ignored.push(format!("{path}: not implemented in sluice yet")),
            }
        }
        Ok(s)
    }
}

#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Default upstream timeout in seconds for deployments that set none.
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    pub routing_strategy: String,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings { timeout: None, stream_timeout: None, routing_strategy: "simple-shuffle".into() }
    }
}

const STRATEGIES: &[&str] = &[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
];

impl RouterSettings {
    pub(crate) fn parse(v: &Value, env: &Env, ignored: &mut Vec<String>) -> Result<Self, ConfigError> {
        let _ = env;
        let mut s = RouterSettings::default();
        for (k, val) in mapping("router_settings", v)? {
            let key = key_str(k);
            let path = format!("router_settings.{key}");
            match key.as_str() {
                "timeout" => s.timeout = positive(&path, val)?,
                "stream_timeout" => s.stream_timeout = positive(&path, val)?,
                "routing_strategy" => {
                    let name = string(&path, val)?.unwrap_or_else(|| "simple-shuffle".into());
                    if !STRATEGIES.contains(&name.as_str()) {
                        return Err(err(
                            &path,
                            format!("unknown strategy \"{name}\"; use one of {}", STRATEGIES.join(", ")),
                        ));
                    }
                    if name != "simple-shuffle" {
                        ignored
                            .push(format!("{path}: \"{name}\" is not implemented in sluice yet; using simple-shuffle"));
                    }
                    s.routing_strategy = name;
                }
                "health_check_interval" => {
                    return Err(err(
                        &path,
                        "belongs in general_settings, not router_settings (LiteLLM rejects it here too)",
                    ))
                }
                _ => ignored.push(format!("{path}: not implemented in sluice yet")),
            }
        }
        Ok(s)
    }
}

#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// `request_timeout`: the default upstream timeout in seconds (LiteLLM: 6000).
    pub request_timeout: Option<f64>,
    pub callbacks: Vec<String>,
}

impl LitellmSettings {
    pub(crate) fn parse(v: &Value, env: &Env, ignored: &mut Vec<String>) -> Result<Self, ConfigError> {
        let _ = env;
        let mut s = LitellmSettings::default();
        for (k, val) in mapping("litellm_settings", v)? {
            let key = key_str(k);
            let path = format!("litellm_settings.{key}");
            match key.as_str() {
                "request_timeout" => s.request_timeout = positive(&path, val)?,
                "callbacks" | "success_callback" | "failure_callback" => {
                    let names: Vec<String> = match val {
                        Value::Sequence(items) => {
                            items.iter().filter_map(|i| string(&path, i).ok().flatten()).collect()
                        }
                        Value::String(one) => vec![one.clone()],
                        Value::Null => Vec::new(),
                        _ => return Err(err(&path, "expected a list of callback names, e.g. [\"prometheus\"]")),
                    };
                    for name in &names {
                        ignored.push(format!("{path}: callback \"{name}\" is not implemented in sluice yet"));
                    }
                    s.callbacks.extend(names);
                }
                "set_verbose" | "json_logs" => {
                    boolean(&path, val)?;
                }
                _ => ignored.push(format!("{path}: not implemented in sluice yet")),
            }
        }
        Ok(s)
    }
}

/// sluice's own knobs (not LiteLLM's), in their own section so LiteLLM configs stay valid.
#[derive(Debug, Clone)]
pub struct SluiceSettings {
    /// Seconds a client has to send its request headers.
    pub client_header_timeout: f64,
    /// Seconds a client has to send its whole request body.
    pub client_body_timeout: f64,
    /// Seconds to establish an upstream TCP connection.
    pub upstream_connect_timeout: f64,
}

impl Default for SluiceSettings {
    fn default() -> Self {
        SluiceSettings { client_header_timeout: 30.0, client_body_timeout: 60.0, upstream_connect_timeout: 10.0 }
    }
}

impl SluiceSettings {
    pub(crate) fn parse(v: &Value) -> Result<Self, ConfigError> {
        let mut s = SluiceSettings::default();
        for (k, val) in mapping("sluice_settings", v)? {
            let key = key_str(k);
            let path = format!("sluice_settings.{key}");
            let slot = match key.as_str() {
                "client_header_timeout" => &mut s.client_header_timeout,
                "client_body_timeout" => &mut s.client_body_timeout,
                "upstream_connect_timeout" => &mut s.upstream_connect_timeout,
                _ => {
                    return Err(err(
                        &path,
                        "unknown sluice setting; known: client_header_timeout, client_body_timeout, upstream_connect_timeout",
                    ))
                }
            };
            if let Some(x) = positive(&path, val)? {
                *slot = x;
            }
        }
        Ok(s)
    }
}

pub(crate) fn positive(path: &str, v: &Value) -> Result<Option<f64>, ConfigError> {
    match number(path, v)? {
        Some(x) if x <= 0.0 || !x.is_finite() => Err(err(path, "must be a positive number of seconds")),
        other => Ok(other),
    }
}
