//! The settings sections: `general_settings`, `router_settings`, `litellm_settings`, and sluice's
//! own `sluice_settings`. Each is read by serde into a private struct of the keys sluice acts on;
//! the section's other keys are recorded as read but not acted on.

use super::deployment::Secret;
use super::error::{err, fields_of, present, typed, ConfigError};
use super::value::refuse_scalars;
use super::value::{
    AllowedFails, AtMost, Callbacks, Count, FallbackList, Flag, InFlightCap, Item, Key, Kibibytes, Listed, Megabytes,
    Names, Num, PerKind, Positive, PositiveCount, Retries, Seconds, Text, Usd, MAPPING,
};
use super::yaml::{key_str, mapping};
use super::Env;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_yaml_ng::Value;

/// Each key of `section` (at `path`) that `T` does not read, as an ignored line.
fn unread<T: serde::de::DeserializeOwned>(path: &str, section: &Value, why: &str, ignored: &mut Vec<String>) {
    let fields = fields_of::<T>();
    if let Value::Mapping(m) = section {
        for (k, _) in m {
            let key = key_str(k);
            if !fields.contains(&key.as_str()) {
                ignored.push(format!("{path}.{key}: {why}"));
            }
        }
    }
}

const NOT_YET: &str = "not implemented in sluice yet";

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
    /// `background_health_checks`: `/health` serves the result of checks run every
    /// `health_check_interval` seconds in the background instead of calling every deployment.
    pub background_health_checks: bool,
    /// `health_check_interval` (LiteLLM's default: 300 s).
    pub health_check_interval: f64,
    /// `health_check_details`: `/health` shows each deployment's `litellm_params` (without
    /// secrets); `false` shows only its model.
    pub health_check_details: bool,
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
            background_health_checks: false,
            health_check_interval: 300.0,
            health_check_details: true,
        }
    }
}

/// The `general_settings` keys sluice acts on.
#[derive(Deserialize)]
struct GeneralSection {
    master_key: Option<Text>,
    max_request_size_mb: Option<Megabytes>,
    database_url: Option<Text>,
    database_connection_pool_limit: Option<PositiveCount>,
    proxy_batch_write_at: Option<Positive>,
    user_api_key_cache_ttl: Option<Positive>,
    disable_spend_logs: Option<Flag>,
    store_model_in_db: Option<Flag>,
    allowed_routes: Option<Listed<Route>>,
    allowed_ips: Option<Listed<super::IpRange>>,
    use_x_forwarded_for: Option<Flag>,
    enforce_user_param: Option<Flag>,
    require_auth_for_metrics_endpoint: Option<Flag>,
    global_max_parallel_requests: Option<InFlightCap>,
    max_parallel_requests: Option<InFlightCap>,
    allow_requests_on_db_unavailable: Option<Flag>,
    background_health_checks: Option<Flag>,
    health_check_interval: Option<Positive>,
    health_check_details: Option<Flag>,
    /// Read by `config::passthrough` (named here so it is not reported as unread).
    #[allow(dead_code)]
    pass_through_endpoints: Option<serde::de::IgnoredAny>,
    // Read by `config::alerting`.
    #[allow(dead_code)]
    alerting: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    alerting_threshold: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    alert_types: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    alerting_args: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    alert_to_webhook_url: Option<serde::de::IgnoredAny>,
}

impl GeneralSettings {
    pub(crate) fn parse(
        v: &Value,
        env: &Env,
        ignored: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        const AT: &str = "general_settings";
        mapping(AT, v)?;
        let raw: GeneralSection = typed(AT, v)?;
        unread::<GeneralSection>(AT, v, NOT_YET, ignored);
        let d = GeneralSettings::default();
        let flag = |f: Option<Flag>| f.is_some_and(|Flag(b)| b);
        let secret = |key: &str, raw: Option<Text>, warnings: &mut Vec<String>| {
            raw.and_then(|Text(s)| env.resolve_str(&format!("{AT}.{key}"), &s, warnings)).map(Secret::new)
        };
        Ok(GeneralSettings {
            master_key: secret("master_key", raw.master_key, warnings),
            max_request_size: raw.max_request_size_mb.map(|Megabytes(b)| b),
            database_url: secret("database_url", raw.database_url, warnings),
            database_pool_limit: raw.database_connection_pool_limit.map_or(d.database_pool_limit, |n| n.0),
            batch_write_interval: raw.proxy_batch_write_at.map_or(d.batch_write_interval, |x| x.0),
            key_cache_ttl: raw.user_api_key_cache_ttl.map_or(d.key_cache_ttl, |x| x.0),
            disable_spend_logs: flag(raw.disable_spend_logs),
            store_model_in_db: flag(raw.store_model_in_db),
            allowed_routes: raw.allowed_routes.map(|l| l.0.into_iter().map(|Route(r)| r).collect()),
            allowed_ips: raw.allowed_ips.map(|l| l.0),
            use_x_forwarded_for: flag(raw.use_x_forwarded_for),
            enforce_user_param: flag(raw.enforce_user_param),
            require_auth_for_metrics: flag(raw.require_auth_for_metrics_endpoint),
            global_max_parallel_requests: raw.global_max_parallel_requests.map(|n| n.0),
            max_parallel_requests: raw.max_parallel_requests.map(|n| n.0 as u32),
            allow_requests_on_db_unavailable: raw.allow_requests_on_db_unavailable.map(|f| f.0),
            background_health_checks: flag(raw.background_health_checks),
            health_check_interval: raw.health_check_interval.map_or(d.health_check_interval, |x| x.0),
            health_check_details: raw.health_check_details.is_none_or(|Flag(b)| b),
        })
    }
}

/// One of `allowed_routes`: a request path, matched exactly as LiteLLM does (`/v1/chat/completions`
/// and `/chat/completions` are two routes).
struct Route(String);

impl Item for Route {
    const WHAT: &'static str = "route paths, e.g. [\"/chat/completions\", \"/v1/chat/completions\"]";

    fn check(route: String) -> Result<Self, String> {
        if route.starts_with('/') {
            Ok(Route(route))
        } else {
            Err(format!("\"{route}\" is not a route path; routes are matched exactly, like \"/chat/completions\""))
        }
    }
}

impl Item for super::IpRange {
    const WHAT: &'static str = "IP addresses, e.g. [\"10.0.0.5\", \"10.1.0.0/16\"]";

    fn check(ip: String) -> Result<Self, String> {
        super::IpRange::parse(&ip)
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

/// The `router_settings` keys sluice acts on.
#[derive(Deserialize)]
struct RouterSection {
    timeout: Option<Positive>,
    stream_timeout: Option<Positive>,
    routing_strategy: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    routing_strategy_args: Option<Value>,
    num_retries: Option<Count>,
    retry_after: Option<Seconds>,
    cooldown_time: Option<Seconds>,
    allowed_fails: Option<Count>,
    disable_cooldowns: Option<Flag>,
    enable_pre_call_checks: Option<Flag>,
    enable_tag_filtering: Option<Flag>,
    tag_filtering_match_any: Option<Flag>,
    max_fallbacks: Option<Count>,
    default_max_parallel_requests: Option<Count>,
    #[serde(default, deserialize_with = "present")]
    retry_policy: Option<PerKind<Retries>>,
    #[serde(default, deserialize_with = "present")]
    allowed_fails_policy: Option<PerKind<AllowedFails>>,
    // Written with no value, a fallback list is an empty one: it replaces what litellm_settings
    // gave, as LiteLLM's router does.
    #[serde(default, deserialize_with = "present")]
    fallbacks: Option<FallbackList>,
    #[serde(default, deserialize_with = "present")]
    context_window_fallbacks: Option<FallbackList>,
    #[serde(default, deserialize_with = "present")]
    content_policy_fallbacks: Option<FallbackList>,
    #[serde(default, deserialize_with = "present")]
    default_fallbacks: Option<Names>,
    #[serde(default, deserialize_with = "present")]
    model_group_alias: Option<Aliases>,
    /// Read only to be refused: LiteLLM rejects it here too.
    #[serde(default, deserialize_with = "present")]
    health_check_interval: Option<IgnoredAny>,
    // Where Redis is: read by `config::redis`.
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    redis_url: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    redis_host: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    redis_port: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    redis_password: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    redis_db: Option<IgnoredAny>,
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
        const AT: &str = "router_settings";
        mapping(AT, v)?;
        let raw: RouterSection = typed(AT, v)?;
        if raw.health_check_interval.is_some() {
            return Err(err(
                "router_settings.health_check_interval",
                "belongs in general_settings, not router_settings (LiteLLM rejects it here too)",
            ));
        }
        unread::<RouterSection>(AT, v, NOT_YET, ignored);
        let strategy_name = raw.routing_strategy.map_or_else(|| "simple-shuffle".to_string(), |t| t.0);
        if !sluice_router::Strategy::NAMES.contains(&strategy_name.as_str()) {
            return Err(err(
                "router_settings.routing_strategy",
                format!(
                    "unknown strategy \"{strategy_name}\"; use one of {}",
                    sluice_router::Strategy::NAMES.join(", ")
                ),
            ));
        }
        self.timeout = raw.timeout.map(|x| x.0);
        self.stream_timeout = raw.stream_timeout.map(|x| x.0);
        let r = &mut self.routing;
        if let Some(Count(n)) = raw.num_retries {
            r.num_retries = n;
        }
        if let Some(Seconds(d)) = raw.retry_after {
            r.retry_after = d;
        }
        if let Some(Seconds(d)) = raw.cooldown_time {
            r.cooldown_time = d;
        }
        if let Some(Count(n)) = raw.allowed_fails {
            r.allowed_fails = (n != 3).then_some(n);
        }
        if let Some(Flag(b)) = raw.disable_cooldowns {
            r.disable_cooldowns = b;
        }
        if let Some(Flag(b)) = raw.enable_pre_call_checks {
            r.enable_pre_call_checks = b;
        }
        if let Some(Flag(b)) = raw.enable_tag_filtering {
            r.enable_tag_filtering = b;
        }
        if let Some(Flag(b)) = raw.tag_filtering_match_any {
            r.tag_filtering_match_any = b;
        }
        if let Some(Count(n)) = raw.max_fallbacks {
            r.max_fallbacks = n;
        }
        if let Some(Count(n)) = raw.default_max_parallel_requests {
            r.default_max_parallel_requests = Some(n);
        }
        if let Some(p) = raw.retry_policy {
            r.retry_policy = Some(p.0);
        }
        if let Some(p) = raw.allowed_fails_policy {
            r.allowed_fails_policy = Some(p.0);
        }
        if let Some(FallbackList(l)) = raw.fallbacks {
            r.fallbacks = l;
        }
        if let Some(FallbackList(l)) = raw.context_window_fallbacks {
            r.context_window_fallbacks = l;
        }
        if let Some(FallbackList(l)) = raw.content_policy_fallbacks {
            r.content_policy_fallbacks = l;
        }
        if let Some(Names(list)) = raw.default_fallbacks {
            r.fallbacks.retain(|(g, _)| g != "*");
            r.fallbacks.push(("*".into(), list));
        }
        for (alias, group, hidden) in raw.model_group_alias.map(|a| a.0).unwrap_or_default() {
            self.fallback_targets.push((format!("router_settings.model_group_alias.{alias}"), group.clone()));
            r.aliases.insert(alias, (group, hidden));
        }
        r.strategy = strategy(&strategy_name, raw.routing_strategy_args.as_ref(), ignored)?;
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

/// `model_group_alias`: alias → group, or alias → `{model: group, hidden: bool}`.
struct Aliases(Vec<(String, String, bool)>);

impl<'de> Deserialize<'de> for Aliases {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Aliases;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(MAPPING)
            }
            refuse_scalars!(MAPPING);
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Aliases, E> {
                Err(E::custom(MAPPING))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Aliases, E> {
                Err(E::custom(MAPPING))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Aliases, A::Error> {
                Err(de::Error::custom(MAPPING))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Aliases, A::Error> {
                let mut out = Vec::new();
                while let Some(Key(alias)) = map.next_key()? {
                    let AliasTarget(group, hidden) = map.next_value()?;
                    out.push((alias, group, hidden));
                }
                Ok(Aliases(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct AliasTarget(String, bool);

impl<'de> Deserialize<'de> for AliasTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "expected a group name, or {model: <group>, hidden: true|false}";
        match Value::deserialize(d)? {
            Value::String(g) => Ok(AliasTarget(g, false)),
            Value::Mapping(m) => {
                let group = m
                    .get("model")
                    .and_then(|g| super::value::string(g).ok().flatten())
                    .ok_or_else(|| de::Error::custom(WHAT))?;
                let hidden = match m.get("hidden") {
                    Some(h) => super::value::boolean(h).map_err(de::Error::custom)?.unwrap_or(false),
                    None => false,
                };
                Ok(AliasTarget(group, hidden))
            }
            _ => Err(de::Error::custom(WHAT)),
        }
    }
}

/// `routing_strategy_args` that latency-based routing reads.
#[derive(Deserialize)]
struct LatencyArgs {
    ttl: Option<Seconds>,
    lowest_latency_buffer: Option<Num>,
    max_latency_list_size: Option<Count>,
}

fn strategy(
    name: &str,
    args: Option<&Value>,
    ignored: &mut Vec<String>,
) -> Result<sluice_router::Strategy, ConfigError> {
    use sluice_router::Strategy;
    const AT: &str = "router_settings.routing_strategy_args";
    let why = format!("not used by strategy {name}");
    let mut latency = LatencyArgs { ttl: None, lowest_latency_buffer: None, max_latency_list_size: None };
    if let Some(a) = args {
        mapping(AT, a)?;
        if name == "latency-based-routing" {
            latency = typed(AT, a)?;
            unread::<LatencyArgs>(AT, a, &why, ignored);
        } else {
            unread::<()>(AT, a, &why, ignored);
        }
    }
    Ok(match name {
        "least-busy" => Strategy::LeastBusy,
        "latency-based-routing" => Strategy::LatencyBased {
            ttl: latency.ttl.map_or(std::time::Duration::from_secs(3600), |s| s.0),
            buffer: latency.lowest_latency_buffer.map_or(0.0, |n| n.0),
            max_list: latency.max_latency_list_size.map_or(10, |c| c.0).max(1) as usize,
        },
        "usage-based-routing" => Strategy::UsageBased,
        "usage-based-routing-v2" => Strategy::UsageBasedV2,
        "cost-based-routing" => Strategy::CostBased,
        "adaptive-p2c" => Strategy::AdaptiveP2c,
        _ => Strategy::SimpleShuffle,
    })
}

/// A logging callback named in `callbacks`, `success_callback` or `failure_callback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSink {
    /// One of `config::logging::SINKS`.
    pub name: &'static str,
    /// The first list entry that names it, for errors (`litellm_settings.callbacks[1]`).
    pub path: String,
    /// The outcomes it takes: LiteLLM's `success_callback` successes, `failure_callback`
    /// failures, `callbacks` both.
    pub events: sluice_export::Events,
}

/// A callback the lists name that `callback_settings` defines (a named `generic_api` webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCallback {
    pub name: String,
    /// The outcomes the lists give it.
    pub events: sluice_export::Events,
}

#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// `request_timeout`: the default upstream timeout in seconds (LiteLLM: 6000).
    pub request_timeout: Option<f64>,
    pub callbacks: Vec<String>,
    /// The logging callbacks sluice runs that the lists name (`config::logging::SINKS`), each
    /// once: its name, the first list entry naming it (for errors) and the outcomes it takes.
    /// Their collectors are read from the environment by `config::logging`.
    pub sinks: Vec<NamedSink>,
    /// The callbacks the lists name that `callback_settings` defines, each once, with the
    /// outcomes the lists give it (read by `config::logging::named_generic_apis`).
    pub named: Vec<NamedCallback>,
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
    /// `turn_off_message_logging`: the logging callbacks get no prompt and no answer.
    pub turn_off_message_logging: bool,
    /// `redact_messages_in_exceptions`: the logging callbacks' records and spans carry no
    /// exception message.
    pub redact_messages_in_exceptions: bool,
    /// `default_internal_user_params.available_teams`: the teams users may list (and join)
    /// through `/team/available`. `None`: not set.
    pub available_teams: Option<Vec<String>>,
}

/// The `litellm_settings` keys sluice acts on.
#[derive(Deserialize)]
struct LitellmSection {
    request_timeout: Option<Positive>,
    callbacks: Option<Callbacks>,
    success_callback: Option<Callbacks>,
    failure_callback: Option<Callbacks>,
    /// Checked, not acted on: sluice's log level comes from `RUST_LOG`.
    #[allow(dead_code)]
    set_verbose: Option<Flag>,
    json_logs: Option<Flag>,
    turn_off_message_logging: Option<Flag>,
    redact_messages_in_exceptions: Option<Flag>,
    num_retries: Option<Count>,
    drop_params: Option<Flag>,
    require_auth_for_metrics_endpoint: Option<Flag>,
    max_end_user_budget: Option<Num>,
    allowed_fails: Option<Count>,
    fallbacks: Option<FallbackList>,
    context_window_fallbacks: Option<FallbackList>,
    content_policy_fallbacks: Option<FallbackList>,
    #[serde(default, deserialize_with = "present")]
    default_fallbacks: Option<Names>,
    max_budget: Option<Usd>,
    budget_duration: Option<Text>,
    max_parallel_requests: Option<InFlightCap>,
    // The Redis cache's address (and whether it caches answers): read by `config::redis`.
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    cache: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    cache_params: Option<IgnoredAny>,
    // The `s3` callback's bucket and credentials: read by `config::logging`.
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    s3_callback_params: Option<IgnoredAny>,
    /// Only `available_teams` is read (`available_teams`); its other keys are reviewed as unread.
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    default_internal_user_params: Option<IgnoredAny>,
}

impl LitellmSettings {
    /// The callback `name` when a list names it.
    pub fn sink(&self, name: &str) -> Option<&NamedSink> {
        self.sinks.iter().find(|s| s.name == name)
    }

    /// `defined`: the callback names `callback_settings` defines.
    pub(crate) fn parse(v: &Value, defined: &[String], ignored: &mut Vec<String>) -> Result<Self, ConfigError> {
        const AT: &str = "litellm_settings";
        mapping(AT, v)?;
        let raw: LitellmSection = typed(AT, v)?;
        unread::<LitellmSection>(AT, v, NOT_YET, ignored);
        let mut callbacks = Vec::new();
        let mut lists = [
            ("callbacks", raw.callbacks),
            ("success_callback", raw.success_callback),
            ("failure_callback", raw.failure_callback),
        ];
        // In the order the config writes them, as `/model/info`'s callback list shows them.
        let position = |key: &str| mapping(AT, v).ok().and_then(|m| m.keys().position(|k| k.as_str() == Some(key)));
        lists.sort_by_key(|(key, _)| position(key));
        let mut sinks: Vec<NamedSink> = Vec::new();
        let mut named: Vec<NamedCallback> = Vec::new();
        for (key, names) in lists {
            let names = names.map(|c| c.0).unwrap_or_default();
            for (i, name) in names.iter().enumerate() {
                if name == "prometheus" {
                    continue;
                }
                let events = match key {
                    "success_callback" => sluice_export::Events { success: true, failure: false },
                    "failure_callback" => sluice_export::Events { success: false, failure: true },
                    _ => sluice_export::Events { success: true, failure: true },
                };
                let Some(&sink) = super::logging::SINKS.iter().find(|s| **s == name.as_str()) else {
                    if defined.contains(name) {
                        match named.iter_mut().find(|n| n.name == *name) {
                            Some(n) => {
                                (n.events.success, n.events.failure) =
                                    (n.events.success || events.success, n.events.failure || events.failure)
                            }
                            None => named.push(NamedCallback { name: name.clone(), events }),
                        }
                        continue;
                    }
                    ignored.push(format!("{AT}.{key}: callback \"{name}\" is not implemented in sluice yet"));
                    continue;
                };
                let at = match sinks.iter().position(|s| s.name == sink) {
                    Some(at) => at,
                    None => {
                        sinks.push(NamedSink {
                            name: sink,
                            path: format!("{AT}.{key}[{i}]"),
                            events: Default::default(),
                        });
                        sinks.len() - 1
                    }
                };
                let events = &mut sinks[at].events;
                match key {
                    "success_callback" => events.success = true,
                    "failure_callback" => events.failure = true,
                    _ => *events = sluice_export::Events { success: true, failure: true },
                }
            }
            callbacks.extend(names);
        }
        let budget_duration = match raw.budget_duration {
            Some(Text(d)) => {
                sluice_access::duration::after(chrono::Utc::now(), &d)
                    .map_err(|e| err("litellm_settings.budget_duration", e))?;
                Some(d)
            }
            None => None,
        };
        let s = LitellmSettings {
            request_timeout: raw.request_timeout.map(|x| x.0),
            callbacks,
            sinks,
            named,
            num_retries: raw.num_retries.map(|c| c.0),
            allowed_fails: raw.allowed_fails.map(|c| c.0),
            fallbacks: raw.fallbacks.map(|l| l.0).unwrap_or_default(),
            context_window_fallbacks: raw.context_window_fallbacks.map(|l| l.0).unwrap_or_default(),
            content_policy_fallbacks: raw.content_policy_fallbacks.map(|l| l.0).unwrap_or_default(),
            default_fallbacks: raw.default_fallbacks.map(|n| n.0),
            drop_params: raw.drop_params.is_some_and(|f| f.0),
            max_end_user_budget: raw.max_end_user_budget.map(|n| n.0),
            require_auth_for_metrics: raw.require_auth_for_metrics_endpoint.is_some_and(|f| f.0),
            // LiteLLM's 0 is no budget.
            max_budget: raw.max_budget.map(|u| u.0).filter(|x| *x > 0.0),
            budget_duration,
            max_parallel_requests: raw.max_parallel_requests.map(|n| n.0),
            json_logs: raw.json_logs.is_some_and(|f| f.0),
            turn_off_message_logging: raw.turn_off_message_logging.is_some_and(|f| f.0),
            redact_messages_in_exceptions: raw.redact_messages_in_exceptions.is_some_and(|f| f.0),
            available_teams: available_teams(v, ignored)?,
        };
        if s.budget_duration.is_some() && s.max_budget.is_none() {
            ignored.push("litellm_settings.budget_duration: has no effect without litellm_settings.max_budget".into());
        }
        Ok(s)
    }
}

/// `litellm_settings.default_internal_user_params.available_teams` (a list of team ids). The
/// section's other keys (new users' budgets, models) are not applied: they are reported under the
/// section's own path, which the review of unenforced settings refuses.
fn available_teams(v: &Value, ignored: &mut Vec<String>) -> Result<Option<Vec<String>>, ConfigError> {
    const AT: &str = "litellm_settings.default_internal_user_params";
    let Some(section) = v.get("default_internal_user_params").filter(|s| !s.is_null()) else { return Ok(None) };
    let Value::Mapping(m) = section else {
        return Err(err(AT, "must be a mapping, e.g. {available_teams: [team-id, ...]}"));
    };
    let mut teams = None;
    for (k, value) in m {
        match key_str(k).as_str() {
            "available_teams" => {
                let list: Option<Vec<String>> = match value {
                    Value::Null => Some(Vec::new()),
                    Value::Sequence(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
                    _ => None,
                };
                let list = list.ok_or_else(|| {
                    err(&format!("{AT}.available_teams"), "must be a list of team ids, e.g. [team-a, team-b]")
                })?;
                teams = Some(list);
            }
            other => ignored.push(format!("{AT}: `{other}` {NOT_YET}")),
        }
    }
    Ok(teams)
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
    /// `redis_key_prefix`: put before every key sluice writes to Redis, so several gateways
    /// can share one (`None`: `sluice:`).
    pub redis_key_prefix: Option<String>,
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
            redis_key_prefix: None,
        }
    }
}

/// Retries may add at most ten times the first attempts: more is no budget at all.
const MAX_RETRY_BUDGET_PERCENT: u64 = 1000;
/// A retry allowance beyond any upstream's capacity is no budget at all.
const MAX_RETRY_BUDGET_PER_SECOND: u64 = 100_000;

/// `sluice_settings`: every key is sluice's own, so an unknown one is an error, not a LiteLLM
/// setting to list as ignored. The fields' order is the order the error lists them in.
#[derive(Deserialize)]
struct SluiceSection {
    client_header_timeout: Option<Positive>,
    client_body_timeout: Option<Positive>,
    upstream_connect_timeout: Option<Positive>,
    client_read_buffer_kb: Option<Kibibytes>,
    #[serde(default, deserialize_with = "present")]
    database_path: Option<Option<Text>>,
    retry_budget_percent: Option<AtMost<MAX_RETRY_BUDGET_PERCENT>>,
    retry_budget_min_per_second: Option<AtMost<MAX_RETRY_BUDGET_PER_SECOND>>,
    access_log: Option<Flag>,
    redis_key_prefix: Option<Text>,
}

impl SluiceSettings {
    pub(crate) fn parse(v: &Value) -> Result<Self, ConfigError> {
        const AT: &str = "sluice_settings";
        let known = fields_of::<SluiceSection>();
        for (k, _) in mapping(AT, v)? {
            let key = key_str(k);
            if !known.contains(&key.as_str()) {
                return Err(err(
                    &format!("{AT}.{key}"),
                    format!("unknown sluice setting; known: {}", known.join(", ")),
                ));
            }
        }
        let raw: SluiceSection = typed(AT, v)?;
        let d = SluiceSettings::default();
        let database_path = match raw.database_path {
            None => d.database_path,
            Some(p) => p.map(|t| t.0).filter(|p| !p.is_empty()).ok_or_else(|| {
                err("sluice_settings.database_path", "expected a file path, e.g. /var/lib/sluice/sluice.db")
            })?,
        };
        Ok(SluiceSettings {
            client_header_timeout: raw.client_header_timeout.map_or(d.client_header_timeout, |x| x.0),
            client_body_timeout: raw.client_body_timeout.map_or(d.client_body_timeout, |x| x.0),
            upstream_connect_timeout: raw.upstream_connect_timeout.map_or(d.upstream_connect_timeout, |x| x.0),
            client_read_buffer_kb: raw.client_read_buffer_kb.map_or(d.client_read_buffer_kb, |x| x.0),
            database_path,
            retry_budget: sluice_router::RetryBudgetSettings {
                ratio: raw.retry_budget_percent.map_or(20.0, |x| x.0) / 100.0,
                min_per_second: raw.retry_budget_min_per_second.map_or(10.0, |x| x.0),
            },
            access_log: raw.access_log.is_none_or(|f| f.0),
            redis_key_prefix: raw.redis_key_prefix.map(|t| t.0),
        })
    }
}

/// The keys the general, router and litellm sections read, for the test that they are all known.
#[cfg(test)]
pub(super) fn read_keys() -> (&'static [&'static str], &'static [&'static str], &'static [&'static str]) {
    (fields_of::<GeneralSection>(), fields_of::<RouterSection>(), fields_of::<LitellmSection>())
}
