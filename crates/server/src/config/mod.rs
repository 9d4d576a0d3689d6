//! Loading a LiteLLM `config.yaml`: includes, `os.environ/` references, `environment_variables`,
//! the model list and the settings sections sluice acts on.
//!
//! Each section is read by serde into a struct of the keys sluice acts on (`settings`,
//! `deployment`), made of the lenient, bounded value types in `value`, through
//! `serde_path_to_error` (`error`): errors name the YAML path and the fix. Keys LiteLLM knows but sluice does not act on yet are
//! collected in [`Config::ignored`] so start-up can list them once, never silently dropped; those
//! that would deny or limit something are in [`Config::refused`] and stop the start
//! ([`Config::refusal`]). A security setting whose `os.environ/` secret is missing is an error.

pub mod alerting;
pub mod cache;
mod deployment;
mod env;
mod error;
mod ip_range;
mod known;
pub mod logging;
mod model_id;
mod passthrough;
mod redis;
mod secrets;
mod settings;
mod unenforced;
mod value;
mod yaml;

pub use deployment::{DeploymentSpec, Secret};
pub use env::Env;
pub use error::ConfigError;
pub use ip_range::IpRange;
pub use passthrough::{PassThrough, PassThroughEndpoint};
pub use settings::{GeneralSettings, LitellmSettings, RouterSettings, SluiceSettings};
pub use value::MAX_SECONDS;

use serde_yaml_ng::{Mapping, Value};
use std::path::Path;

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub deployments: Vec<DeploymentSpec>,
    pub general: GeneralSettings,
    pub router: RouterSettings,
    pub litellm: LitellmSettings,
    /// `generic_api`'s collector, when a callback list names it.
    pub generic_api: Option<logging::GenericApiSettings>,
    /// The webhooks `callback_settings` names, when a callback list names them.
    pub named_generic_apis: Vec<logging::NamedGenericApi>,
    /// `s3`'s bucket, when a callback list names it.
    pub s3: Option<logging::S3Settings>,
    /// `datadog`'s intake, when a callback list names it.
    pub datadog: Option<logging::DatadogSettings>,
    /// `langfuse`'s project, when a callback list names it.
    pub langfuse: Option<logging::LangfuseSettings>,
    /// `otel`'s exporter, when a callback list names it.
    pub otel: Option<logging::OtelSettings>,
    /// `langfuse_otel`'s exporter, when a callback list names it.
    pub langfuse_otel: Option<logging::OtelSettings>,
    /// Slack alerting, when `general_settings.alerting` names `slack`.
    pub alerting: Option<alerting::AlertingSettings>,
    /// The answer cache, when `litellm_settings.cache` turns one on (`config::cache`).
    pub cache: Option<cache::CacheSettings>,
    pub sluice: SluiceSettings,
    /// Where the Redis is that replicas share limits, budgets and cooldowns through (`None`:
    /// the config names none, and each replica counts alone). See `config::redis`.
    pub redis: Option<sluice_state::remote::RemoteConfig>,
    /// `general_settings.pass_through_endpoints` and `default_vertex_config`.
    pub pass_through: PassThrough,
    /// The environment the config was read with, `environment_variables` included: LiteLLM
    /// sets those in the process, where its pass-through routes find their variables.
    pub environment: Env,
    /// One line per setting that was read but is not acted on, with the reason.
    pub ignored: Vec<String>,
    /// One line per setting that would deny or limit something and is not enforced: the start
    /// stops on them unless told to go on ([`Config::refusal`]).
    pub refused: Vec<String>,
    /// Non-fatal problems worth a warning (e.g. an `os.environ/` variable that is not set).
    pub warnings: Vec<String>,
    /// The document as read (includes followed): what `/config/update`'s sections are merged
    /// over ([`Config::with_sections`]) and what the callback views list.
    pub source: Source,
}

/// The config document as written. It holds secrets (`master_key`, `api_key`s), so its `Debug`
/// shows none of it.
#[derive(Clone, Default)]
pub struct Source(pub Mapping);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({} sections, not shown)", self.0.len())
    }
}

impl std::ops::Deref for Source {
    type Target = Mapping;
    fn deref(&self) -> &Mapping {
        &self.0
    }
}

use error::err;

/// The top-level sections sluice reads: the first of LiteLLM's known ones (`known::TOP_LEVEL`).
const TOP_LEVEL_IMPLEMENTED: &[&str] = known::TOP_LEVEL.split_at(8).0;

impl Config {
    /// Reads `path` (following `include:`) with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, Env::process())
    }

    pub fn load_with_env(path: &Path, env: Env) -> Result<Config, ConfigError> {
        let root = yaml::read_with_includes(path)?;
        Config::from_value(root, env)
    }

    /// Parses a config held in a string (tests, `sluice check` on stdin).
    pub fn from_yaml_str(text: &str, env: Env) -> Result<Config, ConfigError> {
        let root: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| ConfigError::Document(format!("config is not valid YAML: {e}")))?;
        Config::from_value(root, env)
    }

    /// This config with `sections` (a section name → its settings as JSON) merged over the
    /// document key by key, as LiteLLM merges the settings stored in its database over the
    /// file's; read again whole, so every value is checked and bounded as at start.
    pub fn with_sections<'a>(
        &self,
        sections: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) -> Result<Config, ConfigError> {
        let mut root = self.source.0.clone();
        for (name, settings) in sections {
            let over = serde_yaml_ng::to_value(settings)
                .map_err(|e| ConfigError::Document(format!("{name}: cannot be read as settings ({e})")))?;
            let merged = match (root.get(name), over) {
                (Some(Value::Mapping(file)), Value::Mapping(db)) => {
                    let mut m = file.clone();
                    for (k, v) in db {
                        m.insert(k, v);
                    }
                    Value::Mapping(m)
                }
                (_, over) => over,
            };
            root.insert(Value::String(name.to_string()), merged);
        }
        Config::from_value(Value::Mapping(root), self.environment.clone())
    }

    fn from_value(root: Value, mut env: Env) -> Result<Config, ConfigError> {
        let root = match root {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => {
                return Err(err("(top level)", "expected a mapping with sections like model_list and general_settings"))
            }
        };
        let mut ignored = Vec::new();
        let mut warnings = Vec::new();
        for (k, _) in &root {
            let key = yaml::key_str(k);
            if TOP_LEVEL_IMPLEMENTED.contains(&key.as_str()) || key == "default_vertex_config" {
                continue;
            }
            // Known to LiteLLM (`known::TOP_LEVEL`), but not one of the sections above.
            if known::TOP_LEVEL.contains(&key.as_str()) {
                ignored.push(format!("{key}: not implemented in sluice yet"));
            } else {
                ignored.push(format!("{key}: unknown top-level section"));
            }
        }

        if let Some(vars) = root.get("environment_variables") {
            env.apply_section(vars, &mut warnings)?;
        }
        secrets::check(&root, &env)?;

        let mut litellm = LitellmSettings::default();
        if let Some(v) = root.get("litellm_settings") {
            litellm = LitellmSettings::parse(v, &logging::named_webhooks(&root, &mut ignored), &mut ignored)?;
        }
        let named_generic_apis = logging::named_generic_apis(&root, &litellm.named, &env, &mut ignored, &mut warnings)?;
        let generic_api = logging::generic_api(litellm.sink(logging::GENERIC_API), &env)?;
        let s3 =
            logging::s3(litellm.sink(logging::S3), root.get("litellm_settings"), &env, &mut ignored, &mut warnings)?;
        let datadog = logging::datadog(litellm.sink(logging::DATADOG), &env)?;
        let langfuse = logging::langfuse(litellm.sink(logging::LANGFUSE), &env, &mut ignored)?;
        let otel = logging::otel(litellm.sink(logging::OTEL), &env)?;
        let langfuse_otel = logging::langfuse_otel(litellm.sink(logging::LANGFUSE_OTEL), &env)?;
        let mut general = GeneralSettings::default();
        if let Some(v) = root.get("general_settings") {
            general = GeneralSettings::parse(v, &env, &mut ignored, &mut warnings)?;
        }
        if general.master_key.is_none() {
            if let Some(k) = env.get("LITELLM_MASTER_KEY") {
                general.master_key = Some(Secret::new(k));
            }
        }
        let alerting = alerting::read(root.get("general_settings"), &env, &mut ignored, &mut warnings)?;
        let mut router = RouterSettings::from_litellm(&litellm);
        if let Some(v) = root.get("router_settings") {
            router = router.parse(v, &mut ignored)?;
        }
        if router.routing.default_max_parallel_requests.is_none() {
            router.routing.default_max_parallel_requests = general.max_parallel_requests;
        }
        let mut sluice = SluiceSettings::default();
        if let Some(v) = root.get("sluice_settings") {
            sluice = SluiceSettings::parse(v)?;
        }
        router.routing.retry_budget = sluice.retry_budget;

        let mut deployments = Vec::new();
        match root.get("model_list") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("model_list[{i}]");
                    deployments.push(DeploymentSpec::parse(&path, item, &env, &mut ignored, &mut warnings)?);
                }
            }
            Some(_) => return Err(err("model_list", "expected a list of entries with model_name and litellm_params")),
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in deployments.iter().enumerate() {
            if !seen.insert(d.id.clone()) {
                return Err(err(
                    &format!("model_list[{i}].model_info.id"),
                    format!("deployment id \"{}\" is used twice; give each deployment a unique model_info.id", d.id),
                ));
            }
        }
        let names: std::collections::HashSet<&str> = deployments.iter().map(|d| d.model_name.as_str()).collect();
        for (path, target) in &router.fallback_targets {
            if target != "*" && !names.contains(target.as_str()) {
                warnings.push(format!("{path}: \"{target}\" is not a model_name in model_list, so it can never serve"));
            }
        }
        let pass_through = passthrough::read(&root, &env, &mut warnings)?;
        let redis = redis::read(&root, &env, sluice.redis_key_prefix.clone(), &mut ignored, &mut warnings)?;
        let cache = match root.get("litellm_settings") {
            Some(Value::Mapping(l)) => cache::read(Some(l), &mut ignored)?,
            _ => None,
        };
        if let Some(c) = &cache {
            if c.settings.backend == sluice_cache::Backend::Redis && redis.is_none() {
                warnings.push(
                    "litellm_settings.cache: a Redis cache, but no Redis is named (cache_params.host, REDIS_HOST or REDIS_URL): answers are not cached".into(),
                );
            }
            if let Some(s) = &c.semantic {
                if !deployments.iter().any(|d| d.model_name == s.embedding_model) {
                    return Err(error::err(
                        "litellm_settings.cache_params.redis_semantic_cache_embedding_model",
                        format!("\"{}\" is not a model_name in model_list: name the embedding deployment that embeds prompts", s.embedding_model),
                    ));
                }
            }
        }
        ignored.sort();
        ignored.dedup();
        let (ignored, refused) = unenforced::review(&root, ignored);
        Ok(Config {
            deployments,
            general,
            router,
            litellm,
            generic_api,
            named_generic_apis,
            s3,
            datadog,
            langfuse,
            otel,
            langfuse_otel,
            alerting,
            cache,
            sluice,
            redis,
            pass_through,
            environment: env,
            ignored,
            refused,
            warnings,
            source: Source(root),
        })
    }

    /// Why the gateway must not start on this config: the settings it would not enforce that
    /// deny or limit something, and what to do. `None` when there are none.
    pub fn refusal(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        Some(format!(
            "refusing to start: {} setting(s) would deny or limit something, and sluice does not enforce them:\n  {}\nRemove them, or start with --allow-unenforced-settings (or SLUICE_ALLOW_UNENFORCED_SETTINGS=1) to run without them.",
            self.refused.len(),
            self.refused.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod path_tests;
#[cfg(test)]
mod tests;
