//! The settings sections: `general_settings`, `router_settings`, `litellm_settings`, and sluice's
//! own `sluice_settings`. Each parser records keys it reads but does not act on.

use super::deployment::Secret;
use super::yaml::{boolean, key_str, mapping, number, string};
use super::{err, ConfigError, Env};
use serde_yaml_ng::Value;

#[derive(Debug, Clone)]
pub struct GeneralSettings {
    pub master_key: Option<Secret>,
    /// `max_request_size_mb`, in bytes. `None`: sluice's default applies.
    pub max_request_size: Option<usize>,
    /// `database_url`: PostgreSQL (or a SQLite URL). `None`: `DATABASE_URL`, else the embedded
    /// SQLite file (`sluice_settings.database_path`).
    pub database_url: Option<Secret>,
    /// `database_connection_pool_limit` (LiteLLM's default: 10).
    pub database_pool_limit: u32,
    /// `proxy_batch_write_at`: seconds between spend writes (LiteLLM's default: 10).
    pub batch_write_interval: f64,
    /// `user_api_key_cache_ttl`: seconds between background reloads of keys, users and teams.
    pub key_cache_ttl: f64,
    /// `disable_spend_logs`: keep spend totals but write no per-request rows.
    pub disable_spend_logs: bool,
    /// `store_model_in_db`: `/model/new` persists deployments.
    pub store_model_in_db: bool,
    /// `allowed_routes`: when set, only these paths are served (others get LiteLLM's 403).
    pub allowed_routes: Option<Vec<String>>,
    /// `allowed_ips`: when set, only clients from these addresses or ranges are served.
    pub allowed_ips: Option<Vec<super::IpRange>>,
    /// `use_x_forwarded_for`: the client's address is the `x-forwarded-for` header's.
    pub use_x_forwarded_for: bool,
    /// `enforce_user_param`: LLM requests from virtual keys must name their end `user`.
    pub enforce_user_param: bool,
    /// `require_auth_for_metrics_endpoint` (LiteLLM reads it from `litellm_settings`; accepted
    /// here too): `/metrics` needs a valid key.
    pub require_auth_for_metrics: bool,
    /// `global_max_parallel_requests`: requests in flight on the whole proxy, at most.
    pub global_max_parallel_requests: Option<u64>,
    /// `max_parallel_requests`: LiteLLM's default per-deployment concurrency cap (the router's
    /// `default_max_parallel_requests` when router_settings sets none).
    pub max_parallel_requests: Option<u32>,
    /// `allow_requests_on_db_unavailable`: `Some(false)` refuses requests (503) and fails
    /// readiness while the database is unavailable; unset or `true` serves known keys from
    /// memory and reports readiness as degraded.
    pub allow_requests_on_db_unavailable: Option<bool>,
}

impl Default for GeneralSettings {
    fn default() -> Self {
        GeneralSettings {
            master_key: None,
            max_request_size: None,
            database_url: None,
            database_pool_limit: 10,
            batch_write_interval: 10.0,
            key_cache_ttl: 60.0,
            disable_spend_logs: false,
            store_model_in_db: false,
            allowed_routes: None,
            allowed_ips: None,
            use_x_forwarded_for: false,
            enforce_user_param: false,
            require_auth_for_metrics: false,
            global_max_parallel_requests: None,
            max_parallel_requests: None,
            allow_requests_on_db_unavailable: None,
        }
    }
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
                        if mb <= 0.0 || mb > MAX_REQUEST_SIZE_MB {
                            return Err(err(
                                &path,
                                format!("must be a positive number of megabytes, at most {MAX_REQUEST_SIZE_MB}"),
                            ));
                        }
                        s.max_request_size = Some((mb * 1024.0 * 1024.0) as usize);
                    }
                }
                "database_url" => {
                    if let Some(raw) = string(&path, val)? {
                        s.database_url = env.resolve_str(&path, &raw, warnings).map(Secret::new);
                    }
                }
                "database_connection_pool_limit" => {
                    if let Some(n) = positive_count(&path, val)? {
                        s.database_pool_limit = u32::try_from(n as u64)
                            .map_err(|_| err(&path, "is larger than any database accepts; LiteLLM's default is 10"))?;
                    }
                }
                "proxy_batch_write_at" => {
                    if let Some(x) = positive(&path, val)? {
                        s.batch_write_interval = x;
                    }
                }
                "user_api_key_cache_ttl" => {
                    if let Some(x) = positive(&path, val)? {
                        s.key_cache_ttl = x;
                    }
                }
                "disable_spend_logs" => s.disable_spend_logs = boolean(&path, val)?.unwrap_or(false),
                "store_model_in_db" => s.store_model_in_db = boolean(&path, val)?.unwrap_or(false),
                "allowed_routes" => s.allowed_routes = allowed_routes(&path, val)?,
                "allowed_ips" => {
                    s.allowed_ips = string_list(&path, val, "IP addresses, e.g. [\"10.0.0.5\", \"10.1.0.0/16\"]")?
                        .map(|ips| {
                            ips.iter()
                                .enumerate()
                                .map(|(i, ip)| super::IpRange::parse(ip).map_err(|e| err(&format!("{path}[{i}]"), e)))
                                .collect::<Result<Vec<_>, _>>()
                        })
                        .transpose()?
                }
                "use_x_forwarded_for" => s.use_x_forwarded_for = boolean(&path, val)?.unwrap_or(false),
                "enforce_user_param" => s.enforce_user_param = boolean(&path, val)?.unwrap_or(false),
                "require_auth_for_metrics_endpoint" => {
                    s.require_auth_for_metrics = boolean(&path, val)?.unwrap_or(false)
                }
                "global_max_parallel_requests" => s.global_max_parallel_requests = in_flight_cap(&path, val)?,
                "max_parallel_requests" => s.max_parallel_requests = in_flight_cap(&path, val)?.map(|n| n as u32),
                "allow_requests_on_db_unavailable" => s.allow_requests_on_db_unavailable = boolean(&path, val)?,
                _ => ignored.push(format!("{path}: not implemented in sluice yet")),
            }
        }
        Ok(s)
    }
}

/// `allowed_routes`: request paths, matched exactly as LiteLLM does (`/v1/chat/completions` and
/// `/chat/completions` are two routes).
fn allowed_routes(path: &str, v: &Value) -> Result<Option<Vec<String>>, ConfigError> {
    let routes = string_list(path, v, "route paths, e.g. [\"/chat/completions\", \"/v1/chat/completions\"]")?;
    for (i, route) in routes.iter().flatten().enumerate() {
        if !route.starts_with('/') {
            return Err(err(
                &format!("{path}[{i}]"),
                format!("\"{route}\" is not a route path; routes are matched exactly, like \"/chat/completions\""),
            ));
        }
    }
    Ok(routes)
}

/// A list of strings; `None` when the setting is null.
fn string_list(path: &str, v: &Value, what: &str) -> Result<Option<Vec<String>>, ConfigError> {
    match v {
        Value::Null => Ok(None),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.clone()),
                _ => Err(err(&format!("{path}[{i}]"), format!("expected a string in this list of {what}"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(err(path, format!("expected a list of {what}"))),
    }
}

#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Default upstream timeout in seconds for deployments that set none.
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    /// Everything the router itself acts on.
    pub routing: sluice_router::Settings,
    /// Fallback targets named in the config, to check against the model list.
    pub(crate) fallback_targets: Vec<(String, String)>,
}

impl RouterSettings {
    /// The router's settings before `router_settings` is read: LiteLLM's defaults, overridden by
    /// the `litellm_settings` keys LiteLLM also reads (router_settings wins over them).
    pub(crate) fn from_litellm(l: &LitellmSettings) -> Self {
        let mut routing = sluice_router::Settings::default();
        if let Some(n) = l.num_retries {
            routing.num_retries = n;
        }
        if let Some(n) = l.allowed_fails {
            routing.allowed_fails = (n != 3).then_some(n);
        }
        routing.fallbacks = l.fallbacks.clone();
        routing.context_window_fallbacks = l.context_window_fallbacks.clone();
        routing.content_policy_fallbacks = l.content_policy_fallbacks.clone();
        if let Some(d) = &l.default_fallbacks {
            routing.fallbacks.push(("*".into(), d.clone()));
        }
        RouterSettings { timeout: None, stream_timeout: None, routing, fallback_targets: Vec::new() }
    }

    pub(crate) fn parse(mut self, v: &Value, ignored: &mut Vec<String>) -> Result<Self, ConfigError> {
        let mut strategy_args: Option<&Value> = None;
        let mut strategy_name = "simple-shuffle".to_string();
        let r = &mut self.routing;
        for (k, val) in mapping("router_settings", v)? {
            let key = key_str(k);
            let path = format!("router_settings.{key}");
            match key.as_str() {
                "timeout" => self.timeout = positive(&path, val)?,
                "stream_timeout" => self.stream_timeout = positive(&path, val)?,
                "routing_strategy" => {
                    let name = string(&path, val)?.unwrap_or_else(|| "simple-shuffle".into());
                    if !sluice_router::Strategy::NAMES.contains(&name.as_str()) {
                        return Err(err(
                            &path,
                            format!(
                                "unknown strategy \"{name}\"; use one of {}",
                                sluice_router::Strategy::NAMES.join(", ")
                            ),
                        ));
                    }
                    strategy_name = name;
                }
                "routing_strategy_args" => strategy_args = Some(val),
                "num_retries" => r.num_retries = count(&path, val)?.unwrap_or(r.num_retries),
                "retry_after" => r.retry_after = seconds(&path, val)?.unwrap_or(r.retry_after),
                "cooldown_time" => r.cooldown_time = seconds(&path, val)?.unwrap_or(r.cooldown_time),
                "allowed_fails" => {
                    if let Some(n) = count(&path, val)? {
                        r.allowed_fails = (n != 3).then_some(n);
                    }
                }
                "disable_cooldowns" => r.disable_cooldowns = boolean(&path, val)?.unwrap_or(false),
                "enable_pre_call_checks" => r.enable_pre_call_checks = boolean(&path, val)?.unwrap_or(false),
                "max_fallbacks" => r.max_fallbacks = count(&path, val)?.unwrap_or(r.max_fallbacks),
                "default_max_parallel_requests" => r.default_max_parallel_requests = count(&path, val)?,
                "retry_policy" => r.retry_policy = Some(per_kind(&path, val, "Retries")?),
                "allowed_fails_policy" => r.allowed_fails_policy = Some(per_kind(&path, val, "AllowedFails")?),
                "fallbacks" => r.fallbacks = fallback_list(&path, val)?,
                "context_window_fallbacks" => r.context_window_fallbacks = fallback_list(&path, val)?,
                "content_policy_fallbacks" => r.content_policy_fallbacks = fallback_list(&path, val)?,
                "default_fallbacks" => {
                    let list = name_list(&path, val)?;
                    r.fallbacks.retain(|(g, _)| g != "*");
                    r.fallbacks.push(("*".into(), list));
                }
                "model_group_alias" => {
                    for (alias, target) in mapping(&path, val)? {
                        let alias = key_str(alias);
                        let p = format!("{path}.{alias}");
                        let (group, hidden) = match target {
                            Value::String(g) => (g.clone(), false),
                            Value::Mapping(m) => {
                                let g = m.get("model").and_then(|g| string(&p, g).ok().flatten()).ok_or_else(|| {
                                    err(&p, "expected a group name, or {model: <group>, hidden: true|false}")
                                })?;
                                let hidden =
                                    m.get("hidden").map(|h| boolean(&p, h)).transpose()?.flatten().unwrap_or(false);
                                (g, hidden)
                            }
                            _ => return Err(err(&p, "expected a group name, or {model: <group>, hidden: true|false}")),
                        };
                        self.fallback_targets.push((p, group.clone()));
                        r.aliases.insert(alias, (group, hidden));
                    }
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
        r.strategy = strategy(&strategy_name, strategy_args, ignored)?;
        for (list_name, list) in [
            ("fallbacks", &r.fallbacks),
            ("context_window_fallbacks", &r.context_window_fallbacks),
            ("content_policy_fallbacks", &r.content_policy_fallbacks),
        ] {
            for (group, targets) in list {
                for t in targets {
                    self.fallback_targets.push((format!("router_settings.{list_name}.{group}"), t.clone()));
                }
            }
        }
        Ok(self)
    }
}

fn strategy(
    name: &str,
    args: Option<&Value>,
    ignored: &mut Vec<String>,
) -> Result<sluice_router::Strategy, ConfigError> {
    use sluice_router::Strategy;
    let mut ttl = std::time::Duration::from_secs(3600);
    let mut buffer = 0.0;
    let mut max_list = 10usize;
    if let Some(a) = args {
        for (k, v) in mapping("router_settings.routing_strategy_args", a)? {
            let key = key_str(k);
            let path = format!("router_settings.routing_strategy_args.{key}");
            match (name, key.as_str()) {
                ("latency-based-routing", "ttl") => ttl = seconds(&path, v)?.unwrap_or(ttl),
                ("latency-based-routing", "lowest_latency_buffer") => buffer = number(&path, v)?.unwrap_or(0.0),
                ("latency-based-routing", "max_latency_list_size") => {
                    max_list = count(&path, v)?.unwrap_or(10).max(1) as usize
                }
                _ => ignored.push(format!("{path}: not used by strategy {name}")),
            }
        }
    }
    Ok(match name {
        "least-busy" => Strategy::LeastBusy,
        "latency-based-routing" => Strategy::LatencyBased { ttl, buffer, max_list },
        "usage-based-routing" => Strategy::UsageBased,
        "usage-based-routing-v2" => Strategy::UsageBasedV2,
        "cost-based-routing" => Strategy::CostBased,
        "adaptive-p2c" => Strategy::AdaptiveP2c,
        _ => Strategy::SimpleShuffle,
    })
}

/// The largest `max_request_size_mb`: a request body is held in memory whole.
pub const MAX_REQUEST_SIZE_MB: f64 = 4096.0;

/// The longest time any setting can name, in seconds (a year): timeouts, cooldowns, TTLs and
/// intervals all become deadlines, and a deadline must fit the clock.
pub const MAX_SECONDS: f64 = 365.0 * 86_400.0;

/// The largest `client_read_buffer_kb`: every open connection may hold one.
pub const MAX_READ_BUFFER_KB: f64 = 1024.0;

/// The largest count a setting can name (retries, fails, list sizes).
const MAX_COUNT: f64 = 1_000_000.0;

fn count(path: &str, v: &Value) -> Result<Option<u32>, ConfigError> {
    match number(path, v)? {
        Some(x) if !(0.0..=MAX_COUNT).contains(&x) || x.fract() != 0.0 => {
            Err(err(path, format!("expected a whole number from 0 to {MAX_COUNT}")))
        }
        other => Ok(other.map(|x| x as u32)),
    }
}

pub(crate) fn seconds(path: &str, v: &Value) -> Result<Option<std::time::Duration>, ConfigError> {
    match number(path, v)? {
        Some(x) if !(0.0..=MAX_SECONDS).contains(&x) => {
            Err(err(path, format!("expected a number of seconds from 0 to {MAX_SECONDS} (a year)")))
        }
        other => Ok(other.map(std::time::Duration::from_secs_f64)),
    }
}

/// `retry_policy` / `allowed_fails_policy`: `{RateLimitErrorRetries: 3, ...}`.
fn per_kind(path: &str, v: &Value, suffix: &str) -> Result<sluice_router::PerKind, ConfigError> {
    let mut out = sluice_router::PerKind::default();
    for (k, n) in mapping(path, v)? {
        let key = key_str(k);
        let p = format!("{path}.{key}");
        let kind = sluice_router::PerKind::kind_for_field(&key).filter(|_| key.ends_with(suffix)).ok_or_else(|| {
            err(&p, format!("unknown field; use e.g. RateLimitError{suffix}, TimeoutError{suffix}, InternalServerError{suffix}, AuthenticationError{suffix}, BadRequestError{suffix}, ContentPolicyViolationError{suffix}"))
        })?;
        if let Some(c) = count(&p, n)? {
            out.0.insert(kind, c);
        }
    }
    Ok(out)
}

fn name_list(path: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                string(&format!("{path}[{i}]"), x)?
                    .ok_or_else(|| err(&format!("{path}[{i}]"), "expected a model group name"))
            })
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Null => Ok(Vec::new()),
        _ => Err(err(path, "expected a list of model group names")),
    }
}

/// LiteLLM's fallback shape: `[{"gpt-4": ["gpt-3.5", "claude"]}, ...]` (a plain mapping works too).
pub(crate) fn fallback_list(path: &str, v: &Value) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut out = Vec::new();
    let mut add = |m: &serde_yaml_ng::Mapping, p: &str| -> Result<(), ConfigError> {
        for (g, targets) in m {
            let g = key_str(g);
            out.push((g.clone(), name_list(&format!("{p}.{g}"), targets)?));
        }
        Ok(())
    };
    match v {
        Value::Null => {}
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                add(mapping(&p, item)?, &p)?;
            }
        }
        Value::Mapping(m) => add(m, path)?,
        _ => return Err(err(path, "expected a list like [{\"gpt-4\": [\"gpt-3.5-turbo\"]}]")),
    }
    Ok(out)
}

#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// `request_timeout`: the default upstream timeout in seconds (LiteLLM: 6000).
    pub request_timeout: Option<f64>,
    pub callbacks: Vec<String>,
    pub num_retries: Option<u32>,
    pub allowed_fails: Option<u32>,
    pub fallbacks: Vec<(String, Vec<String>)>,
    pub context_window_fallbacks: Vec<(String, Vec<String>)>,
    pub content_policy_fallbacks: Vec<(String, Vec<String>)>,
    pub default_fallbacks: Option<Vec<String>>,
    /// Drop request parameters a provider cannot take instead of answering 400.
    pub drop_params: bool,
    /// `max_end_user_budget`: the budget of each end user (the request's `user`) in USD.
    pub max_end_user_budget: Option<f64>,
    /// `require_auth_for_metrics_endpoint`: `/metrics` needs a valid key.
    pub require_auth_for_metrics: bool,
    /// `max_budget`: the whole proxy's budget in USD (`None` for LiteLLM's 0: no budget).
    pub max_budget: Option<f64>,
    /// `budget_duration`: the period after which the proxy's spend starts again from zero.
    pub budget_duration: Option<String>,
    /// `max_parallel_requests`: requests in flight on the whole proxy, at most.
    pub max_parallel_requests: Option<u64>,
    /// `json_logs`: every log line as JSON (as `--json_logs`).
    pub json_logs: bool,
}

impl LitellmSettings {
    pub(crate) fn parse(v: &Value, ignored: &mut Vec<String>) -> Result<Self, ConfigError> {
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
                    for name in names.iter().filter(|n| n.as_str() != "prometheus") {
                        ignored.push(format!("{path}: callback \"{name}\" is not implemented in sluice yet"));
                    }
                    s.callbacks.extend(names);
                }
                "set_verbose" => {
                    boolean(&path, val)?;
                }
                "json_logs" => s.json_logs = boolean(&path, val)?.unwrap_or(false),
                "num_retries" => s.num_retries = count(&path, val)?,
                "drop_params" => s.drop_params = boolean(&path, val)?.unwrap_or(false),
                "require_auth_for_metrics_endpoint" => {
                    s.require_auth_for_metrics = boolean(&path, val)?.unwrap_or(false)
                }
                "max_end_user_budget" => s.max_end_user_budget = number(&path, val)?,
                "allowed_fails" => s.allowed_fails = count(&path, val)?,
                "fallbacks" => s.fallbacks = fallback_list(&path, val)?,
                "context_window_fallbacks" => s.context_window_fallbacks = fallback_list(&path, val)?,
                "content_policy_fallbacks" => s.content_policy_fallbacks = fallback_list(&path, val)?,
                "default_fallbacks" => s.default_fallbacks = Some(name_list(&path, val)?),
                "max_budget" => match number(&path, val)? {
                    Some(x) if !x.is_finite() || x < 0.0 => {
                        return Err(err(&path, "must be a number of USD, 0 or more (0: no proxy-wide budget)"))
                    }
                    x => s.max_budget = x.filter(|x| *x > 0.0),
                },
                "budget_duration" => {
                    if let Some(d) = string(&path, val)? {
                        crate::access::duration::after(chrono::Utc::now(), &d).map_err(|e| err(&path, e))?;
                        s.budget_duration = Some(d);
                    }
                }
                "max_parallel_requests" => s.max_parallel_requests = in_flight_cap(&path, val)?,
                _ => ignored.push(format!("{path}: not implemented in sluice yet")),
            }
        }
        if s.budget_duration.is_some() && s.max_budget.is_none() {
            ignored.push("litellm_settings.budget_duration: has no effect without litellm_settings.max_budget".into());
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
    /// Largest read buffer a client connection keeps, in KiB (8 minimum): memory per open
    /// connection against reads per large request. The first 128 open connections get at least
    /// 32 KiB (`listen`).
    pub client_read_buffer_kb: f64,
    /// The embedded SQLite file used when no `database_url`/`DATABASE_URL` is set.
    pub database_path: String,
    /// `retry_budget_percent` and `retry_budget_min_per_second`: what a model group's retries may
    /// add to its first attempts (docs/routing.md).
    pub retry_budget: sluice_router::RetryBudgetSettings,
    /// One log line per request (`access_log`), as LiteLLM's uvicorn prints one.
    pub access_log: bool,
}

impl Default for SluiceSettings {
    fn default() -> Self {
        SluiceSettings {
            client_header_timeout: 30.0,
            client_body_timeout: 60.0,
            upstream_connect_timeout: 10.0,
            client_read_buffer_kb: 8.0,
            database_path: "sluice.db".into(),
            retry_budget: sluice_router::RetryBudgetSettings::default(),
            access_log: true,
        }
    }
}

impl SluiceSettings {
    pub(crate) fn parse(v: &Value) -> Result<Self, ConfigError> {
        let mut s = SluiceSettings::default();
        for (k, val) in mapping("sluice_settings", v)? {
            let key = key_str(k);
            let path = format!("sluice_settings.{key}");
            if key == "database_path" {
                s.database_path = string(&path, val)?
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| err(&path, "expected a file path, e.g. /var/lib/sluice/sluice.db"))?;
                continue;
            }
            if key == "client_read_buffer_kb" {
                // Kept per open connection: a size, not a time.
                match number(&path, val)? {
                    Some(kb) if kb <= 0.0 || kb > MAX_READ_BUFFER_KB => {
                        return Err(err(
                            &path,
                            format!("must be a positive number of KiB, at most {MAX_READ_BUFFER_KB}"),
                        ))
                    }
                    Some(kb) => s.client_read_buffer_kb = kb,
                    None => {}
                }
                continue;
            }
            if key == "retry_budget_percent" {
                s.retry_budget.ratio = bounded(&path, val, MAX_RETRY_BUDGET_PERCENT)?.unwrap_or(20.0) / 100.0;
                continue;
            }
            if key == "retry_budget_min_per_second" {
                s.retry_budget.min_per_second = bounded(&path, val, MAX_RETRY_BUDGET_PER_SECOND)?.unwrap_or(10.0);
                continue;
            }
            if key == "access_log" {
                s.access_log = boolean(&path, val)?.unwrap_or(true);
                continue;
            }
            let slot = match key.as_str() {
                "client_header_timeout" => &mut s.client_header_timeout,
                "client_body_timeout" => &mut s.client_body_timeout,
                "upstream_connect_timeout" => &mut s.upstream_connect_timeout,
                _ => {
                    return Err(err(
                        &path,
                        "unknown sluice setting; known: client_header_timeout, client_body_timeout, upstream_connect_timeout, client_read_buffer_kb, database_path, retry_budget_percent, retry_budget_min_per_second, access_log",
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

/// A cap on requests in flight: a whole number, 1 or more.
fn in_flight_cap(path: &str, v: &Value) -> Result<Option<u64>, ConfigError> {
    match number(path, v)? {
        Some(x) if x < 1.0 || !x.is_finite() || x.fract() != 0.0 || x > u32::MAX as f64 => {
            Err(err(path, "must be a whole number of requests, 1 or more (leave it out for no cap)"))
        }
        other => Ok(other.map(|x| x as u64)),
    }
}

/// Retries may add at most ten times the first attempts: more is no budget at all.
const MAX_RETRY_BUDGET_PERCENT: f64 = 1000.0;
/// A retry allowance beyond any upstream's capacity is no budget at all.
const MAX_RETRY_BUDGET_PER_SECOND: f64 = 100_000.0;

/// A number from 0 to `max`.
fn bounded(path: &str, v: &Value, max: f64) -> Result<Option<f64>, ConfigError> {
    match number(path, v)? {
        Some(x) if !(0.0..=max).contains(&x) => Err(err(path, format!("must be a number from 0 to {max}"))),
        other => Ok(other),
    }
}

fn positive_count(path: &str, v: &Value) -> Result<Option<f64>, ConfigError> {
    match number(path, v)? {
        Some(x) if !(1.0..=MAX_COUNT).contains(&x) || x.fract() != 0.0 => {
            Err(err(path, format!("must be a whole number from 1 to {MAX_COUNT}")))
        }
        other => Ok(other),
    }
}

/// A positive number of seconds, at most [`MAX_SECONDS`].
pub(crate) fn positive(path: &str, v: &Value) -> Result<Option<f64>, ConfigError> {
    match number(path, v)? {
        Some(x) if x <= 0.0 || x > MAX_SECONDS => {
            Err(err(path, format!("must be a positive number of seconds, at most {MAX_SECONDS} (a year)")))
        }
        other => Ok(other),
    }
}
