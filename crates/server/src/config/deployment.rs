//! One `model_list` entry: `model_name`, `litellm_params`, `model_info`.

use super::yaml::{key_str, mapping, number, string};
use super::{err, model_id, ConfigError, Env};
use serde_yaml_ng::{Mapping, Value};
use sluice_providers::ModelRef;

/// A value that must never reach a log line, a label or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A deployment as configured.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    /// Position in `model_list`, for messages.
    pub index: usize,
    pub model_name: String,
    pub id: String,
    pub model: ModelRef,
    pub api_base: Option<String>,
    pub api_key: Option<Secret>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
    pub weight: Option<f64>,
    pub mock_response: Option<String>,
    /// Priority under `enable_pre_call_checks` (lowest wins).
    pub order: Option<f64>,
    pub max_parallel_requests: Option<f64>,
    pub cooldown_time: Option<f64>,
    /// Custom prices (`input_cost_per_token`, …), by key, from litellm_params then model_info.
    pub prices: Vec<(String, f64)>,
    /// `model_info.max_input_tokens`, for the context-window pre-call check.
    pub max_input_tokens: Option<u64>,
    pub vertex_project: Option<String>,
    pub vertex_location: Option<String>,
    /// A path to a service-account JSON file, or the JSON itself.
    pub vertex_credentials: Option<Secret>,
    /// Per-deployment `drop_params` (else `litellm_settings.drop_params`).
    pub drop_params: Option<bool>,
    /// Azure: a Microsoft Entra token sent as a bearer token instead of `api-key`.
    pub azure_ad_token: Option<Secret>,
    /// AWS (Bedrock): credentials and region from litellm_params (else the standard AWS env vars).
    pub aws_access_key_id: Option<Secret>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    pub aws_region_name: Option<String>,
    /// `litellm_params` with secrets removed, as `/model/info` shows them.
    pub public_params: Mapping,
    /// `model_info` as configured, with `id` filled in.
    pub model_info: Mapping,
    /// Why this deployment cannot serve (its `model` names no provider sluice knows), when it
    /// cannot: as in LiteLLM, the rest of the config still loads, and requests that reach it are
    /// answered with this.
    pub unusable: Option<String>,
}

/// `litellm_params` keys sluice acts on now.
const IMPLEMENTED: &[&str] = &[
    "model",
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "organization",
    "timeout",
    "stream_timeout",
    "rpm",
    "tpm",
    "weight",
    "mock_response",
    "custom_llm_provider",
    "max_retries",
    "order",
    "max_parallel_requests",
    "cooldown_time",
    "drop_params",
];

/// Custom price keys (LiteLLM's names).
const PRICES: &[&str] = &[
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_second",
    "output_cost_per_second",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
];

/// Provider-specific keys that matter once that provider's translation exists.
const PROVIDER_KEYS: &[&str] = &[
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "region_name",
    "azure_ad_token",
    "use_psc_endpoint_format",
];

impl DeploymentSpec {
    pub(crate) fn parse(
        path: &str,
        item: &Value,
        env: &Env,
        ignored: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let entry = mapping(path, item)?;
        let model_name = match entry.get("model_name") {
            Some(v) => string(&format!("{path}.model_name"), v)?,
            None => None,
        }
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            err(&format!("{path}.model_name"), "missing; give the public name clients will send as `model`")
        })?;

        let params_path = format!("{path}.litellm_params");
        let mut params = match entry.get("litellm_params") {
            Some(v) => mapping(&params_path, v)?.clone(),
            None => {
                return Err(err(&params_path, "missing; add litellm_params with at least `model: <provider>/<name>`"))
            }
        };
        env.resolve_mapping(&params_path, &mut params, warnings);

        let field = |name: &str| params.get(name).filter(|v| !v.is_null());
        let p = |name: &str| format!("{params_path}.{name}");
        let str_field = |name: &str| -> Result<Option<String>, ConfigError> {
            field(name).map(|v| string(&p(name), v)).transpose().map(Option::flatten)
        };
        let num_field = |name: &str| -> Result<Option<f64>, ConfigError> {
            let x = field(name).map(|v| number(&p(name), v)).transpose().map(Option::flatten)?;
            within(&p(name), x, limit_of(name))
        };

        let model_str = str_field("model")?
            .ok_or_else(|| err(&p("model"), "missing; write it as <provider>/<name>, e.g. openai/gpt-4o"))?;
        let custom = str_field("custom_llm_provider")?;
        let (model, unusable) = match sluice_providers::parse_model(&model_str, custom.as_deref()) {
            Ok(model) => (model, None),
            Err(why) => {
                let why = format!(
                    "{}: {why}. Deployment {} of model group \"{model_name}\" cannot serve until the config is fixed",
                    p("model"),
                    path
                );
                warnings.push(why.clone());
                let unknown =
                    sluice_providers::Provider { name: "unknown", family: sluice_providers::Family::NotImplemented };
                (ModelRef { provider: unknown, upstream: model_str.clone() }, Some(why))
            }
        };

        let timeout = super::settings::positive(&p("timeout"), field("timeout").unwrap_or(&Value::Null))?;
        let stream_timeout =
            super::settings::positive(&p("stream_timeout"), field("stream_timeout").unwrap_or(&Value::Null))?;
        let api_base = str_field("api_base")?.or(str_field("base_url")?);
        if let Some(base) = &api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(err(
                    &p("api_base"),
                    format!("\"{base}\" is not an http(s) URL; write it like http://127.0.0.1:8090/"),
                ));
            }
        }

        for (k, _) in &params {
            let key = key_str(k);
            if IMPLEMENTED.contains(&key.as_str()) || PROVIDER_KEYS.contains(&key.as_str()) {
                continue;
            }
            if PRICES.contains(&key.as_str()) {
                // Used by cost-based routing now; spend tracking arrives with virtual keys.
                continue;
            }
            ignored.push(format!("{params_path}.{key}: not implemented in sluice yet"));
        }

        let mut model_info = match entry.get("model_info") {
            Some(v) if !v.is_null() => mapping(&format!("{path}.model_info"), v)?.clone(),
            _ => Mapping::new(),
        };
        let id = match model_info.get("id").filter(|v| !v.is_null()) {
            Some(v) => string(&format!("{path}.model_info.id"), v)?.unwrap_or_default(),
            None => model_id::generate(&model_name, &params),
        };
        model_info.insert(Value::from("id"), Value::from(id.clone()));

        for (k, _) in entry {
            let key = key_str(k);
            if !["model_name", "litellm_params", "model_info", "rpm", "tpm"].contains(&key.as_str()) {
                ignored.push(format!("{path}.{key}: unknown model_list entry key"));
            }
        }

        let public_params =
            params.iter().filter(|(k, _)| !is_secret_key(&key_str(k))).map(|(k, v)| (k.clone(), v.clone())).collect();

        let index = path.trim_start_matches("model_list[").trim_end_matches(']').parse().unwrap_or(0);
        let entry_num = |name: &str| -> Result<Option<f64>, ConfigError> {
            let at = format!("{path}.{name}");
            within(&at, entry.get(name).map(|v| number(&at, v)).transpose()?.flatten(), limit_of(name))
        };
        Ok(DeploymentSpec {
            index,
            model_name,
            id,
            model,
            api_base,
            api_key: str_field("api_key")?.map(Secret::new),
            api_version: str_field("api_version")?,
            organization: str_field("organization")?,
            timeout,
            stream_timeout,
            rpm: entry_num("rpm")?.or(num_field("rpm")?),
            tpm: entry_num("tpm")?.or(num_field("tpm")?),
            weight: num_field("weight")?,
            mock_response: str_field("mock_response")?,
            order: num_field("order")?,
            max_parallel_requests: num_field("max_parallel_requests")?,
            cooldown_time: num_field("cooldown_time")?,
            prices: PRICES
                .iter()
                .filter_map(|k| {
                    let at = format!("{path}.model_info.{k}");
                    let from_info = model_info
                        .get(*k)
                        .map(|v| number(&at, v).and_then(|x| within(&at, x, limit_of(k))))
                        .transpose();
                    match (num_field(k), from_info) {
                        (Err(e), _) | (_, Err(e)) => Some(Err(e)),
                        (Ok(Some(v)), _) | (Ok(None), Ok(Some(Some(v)))) => Some(Ok((k.to_string(), v))),
                        _ => None,
                    }
                })
                .collect::<Result<_, _>>()?,
            azure_ad_token: str_field("azure_ad_token")?.map(Secret::new),
            aws_access_key_id: str_field("aws_access_key_id")?.map(Secret::new),
            aws_secret_access_key: str_field("aws_secret_access_key")?.map(Secret::new),
            aws_session_token: str_field("aws_session_token")?.map(Secret::new),
            aws_region_name: str_field("aws_region_name")?.or(str_field("region_name")?),
            vertex_project: str_field("vertex_project")?,
            vertex_location: str_field("vertex_location")?,
            vertex_credentials: match field("vertex_credentials") {
                Some(Value::Mapping(_)) => {
                    let v = field("vertex_credentials").cloned().unwrap_or(Value::Null);
                    Some(Secret::new(serde_json::to_string(&v).unwrap_or_default()))
                }
                _ => str_field("vertex_credentials")?.map(Secret::new),
            },
            drop_params: field("drop_params")
                .map(|v| super::yaml::boolean(&p("drop_params"), v))
                .transpose()?
                .flatten(),
            max_input_tokens: {
                let at = format!("{path}.model_info.max_input_tokens");
                let x = model_info.get("max_input_tokens").map(|v| number(&at, v)).transpose()?.flatten();
                within(&at, x, limit_of("max_input_tokens"))?.map(|x| x as u64)
            },
            public_params,
            model_info,
            unusable,
        })
    }
}

/// The largest value each numeric deployment setting takes; every one is 0 or more. Past these
/// the numbers stop meaning anything (a token costing more than a thousand dollars, a quota of a
/// trillion a minute) and only risk overflowing what they become.
fn limit_of(name: &str) -> f64 {
    match name {
        "cooldown_time" => super::settings::MAX_SECONDS,
        "rpm" | "tpm" | "max_input_tokens" => 1e12,
        "weight" | "order" | "max_parallel_requests" => 1e9,
        // Prices, in USD per token or per second.
        _ => 1000.0,
    }
}

/// `x` when it lies in `0..=max`, else an error naming the path and the range.
fn within(path: &str, x: Option<f64>, max: f64) -> Result<Option<f64>, ConfigError> {
    match x {
        Some(v) if !(0.0..=max).contains(&v) => Err(err(path, format!("must be a number from 0 to {max}, got {v}"))),
        other => Ok(other),
    }
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "credential", "token", "password"].iter().any(|s| k.contains(s))
}
