//! One `model_list` entry: `model_name`, `litellm_params`, `model_info`.

use super::error::{err, fields_of, typed, ConfigError};
use super::value::{Count, Flag, Item, Listed, Positive, Text, UpTo, MAX_SECONDS};
use super::yaml::{key_str, mapping};
use super::{model_id, Env};
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;
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
    /// `litellm_params.model` as written: for a wildcard deployment (a `*` in both
    /// `model_name` and `model`), the template each requested name fills in.
    pub model_template: String,
    /// `litellm_params.custom_llm_provider`.
    pub custom_llm_provider: Option<String>,
    /// `litellm_params.tags`: what tag-based routing matches requests' tags against.
    pub tags: Vec<String>,
    /// `model_info.access_groups`: names a key's `models` may list to grant this model group.
    pub access_groups: Vec<String>,
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
    /// `litellm_params.num_retries`: retries after a failure of this deployment.
    pub num_retries: Option<u32>,
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
    /// Predibase's `tenant_id`; watsonx.ai's `project_id` and `space_id`.
    pub tenant_id: Option<String>,
    pub project_id: Option<String>,
    pub space_id: Option<String>,
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
    /// LiteLLM's assume-role and profile settings, for the AWS credential chain.
    pub aws_role_name: Option<String>,
    pub aws_session_name: Option<String>,
    pub aws_profile_name: Option<String>,
    pub aws_web_identity_token: Option<Secret>,
    pub aws_sts_endpoint: Option<String>,
    /// `litellm_params.region_name` (else `aws_region_name`, else `vertex_location`): where the
    /// deployment runs, for end users held to a region.
    pub region_name: Option<String>,
    /// `litellm_params` with secrets removed, as `/model/info` shows them.
    pub public_params: Mapping,
    /// `model_info` as configured, with `id` filled in.
    pub model_info: Mapping,
    /// Why this deployment cannot serve (its `model` names no provider sluice knows), when it
    /// cannot: as in LiteLLM, the rest of the config still loads, and requests that reach it are
    /// answered with this.
    pub unusable: Option<String>,
}

impl DeploymentSpec {
    /// What a call to this deployment costs: its own prices (`input_cost_per_token`, a batch's
    /// `input_cost_per_token_batches`, … or
    /// `input_cost_per_second`, … in `litellm_params` or `model_info`) when it sets any, else
    /// LiteLLM's price map's for its provider and model. `None`: its calls cost 0.
    pub fn price(&self) -> Option<sluice_providers::pricing::Price> {
        let own = |k: &str| self.prices.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        // The images' and speech's units, which the bundled map does not carry: the
        // deployment's own, on top of whatever its tokens cost.
        let units = sluice_providers::pricing::UnitPrices {
            output_per_image: own("output_cost_per_image").unwrap_or(0.0),
            input_per_image: own("input_cost_per_image").unwrap_or(0.0),
            input_per_pixel: own("input_cost_per_pixel").unwrap_or(0.0),
            input_per_character: own("input_cost_per_character").unwrap_or(0.0),
            input_per_query: own("input_cost_per_query").unwrap_or(0.0),
        };
        match self.token_price() {
            // A rerank model's price per search unit is the one unit price the map carries: the
            // deployment's own replaces it, as its token prices replace the map's.
            Some(p) => {
                let input_per_query = own("input_cost_per_query").unwrap_or(p.units.input_per_query);
                Some(sluice_providers::pricing::Price {
                    units: sluice_providers::pricing::UnitPrices { input_per_query, ..units },
                    ..p
                })
            }
            None if units.any() => Some(sluice_providers::pricing::Price { units, ..Default::default() }),
            None => None,
        }
    }

    /// [`price`](Self::price) without the unit prices: per token or per second.
    fn token_price(&self) -> Option<sluice_providers::pricing::Price> {
        let own = |k: &str| self.prices.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let mapped = || sluice_providers::pricing::lookup(self.model.provider.name, &self.model.upstream);
        let per_token = [
            own("input_cost_per_token"),
            own("output_cost_per_token"),
            own("cache_read_input_token_cost"),
            own("cache_creation_input_token_cost"),
            own("input_cost_per_token_batches"),
            own("output_cost_per_token_batches"),
        ];
        let per_second = (own("input_cost_per_second"), own("output_cost_per_second"));
        if per_token.iter().all(Option::is_none) {
            if per_second == (None, None) {
                return mapped();
            }
            // Billed by time alone (LiteLLM: custom prices per token when set, else per second).
            return Some(sluice_providers::pricing::Price {
                input_per_second: per_second.0.unwrap_or(0.0),
                output_per_second: per_second.1.unwrap_or(0.0),
                ..Default::default()
            });
        }
        // Merged into the map's entry field by field, as LiteLLM's `register_model` merges a
        // deployment's prices into the model's known ones: a deployment that sets only its input
        // price keeps the map's output, cache and tier prices.
        let mut p = mapped().unwrap_or_default();
        let [input, output, cache_read, cache_creation, batch_input, batch_output] = per_token;
        p.input_per_token = input.unwrap_or(p.input_per_token);
        p.output_per_token = output.unwrap_or(p.output_per_token);
        p.cache_read_per_token = cache_read.or(p.cache_read_per_token);
        p.cache_creation_per_token = cache_creation.or(p.cache_creation_per_token);
        p.input_per_token_batches = batch_input.or(p.input_per_token_batches);
        p.output_per_token_batches = batch_output.or(p.output_per_token_batches);
        Some(p)
    }

    /// Why this deployment's calls would cost 0 — it calls a provider, and neither its config nor
    /// LiteLLM's price map prices its model — so that a start-up warning and `sluice check` can
    /// name it: budgets cannot see spend on it. `None` when it is priced, answers with
    /// `mock_response`, cannot serve anyway, or is a wildcard (priced per model it is called
    /// with).
    pub fn unpriced(&self) -> Option<String> {
        let serves = self.unusable.is_none() && self.model.provider.family != sluice_providers::Family::NotImplemented;
        if self.mock_response.is_some() || !serves || self.model.upstream.contains('*') {
            return None;
        }
        if self.price().is_some() {
            return None;
        }
        Some(format!(
            "model_name {} ({}/{}, id {}) has no known price: its calls cost 0, so budgets and spend do not count them. Set input_cost_per_token and output_cost_per_token in its litellm_params (or model_info), or name the model as LiteLLM's price map does",
            self.model_name, self.model.provider.name, self.model.upstream, self.id
        ))
    }
}

/// Quotas, a trillion a minute at most.
const MAX_QUOTA: u64 = 1_000_000_000_000;
/// Weights, priorities and concurrency caps.
const MAX_RANK: u64 = 1_000_000_000;
/// A cooldown, like every time a setting names, is at most a year.
const MAX_COOLDOWN: u64 = MAX_SECONDS as u64;
/// Prices, in USD per token or per second: past a thousand dollars a token they stop meaning
/// anything and only risk overflowing what they become.
const MAX_PRICE: u64 = 1000;

/// The keys of one `model_list` entry.
#[derive(Deserialize)]
struct EntrySection {
    model_name: Option<Text>,
    /// Read by hand: its `os.environ/` references are resolved before it is typed.
    #[allow(dead_code)]
    litellm_params: Option<IgnoredAny>,
    #[allow(dead_code)]
    model_info: Option<IgnoredAny>,
    rpm: Option<UpTo<MAX_QUOTA>>,
    tpm: Option<UpTo<MAX_QUOTA>>,
}

/// The `litellm_params` keys sluice acts on (prices are in [`Prices`]).
#[derive(Deserialize)]
struct ParamsSection {
    model: Option<Text>,
    api_base: Option<Text>,
    base_url: Option<Text>,
    api_key: Option<Text>,
    api_version: Option<Text>,
    organization: Option<Text>,
    timeout: Option<Positive>,
    stream_timeout: Option<Positive>,
    rpm: Option<UpTo<MAX_QUOTA>>,
    tpm: Option<UpTo<MAX_QUOTA>>,
    weight: Option<UpTo<MAX_RANK>>,
    mock_response: Option<Text>,
    custom_llm_provider: Option<Text>,
    /// The OpenAI SDK's own retry count inside LiteLLM's call; sluice's retries are the
    /// router's (`num_retries`), so this is accepted and has no effect.
    #[allow(dead_code)]
    max_retries: Option<IgnoredAny>,
    /// The retries a failure of this deployment gets, in place of the request's or the router's.
    num_retries: Option<Count>,
    order: Option<UpTo<MAX_RANK>>,
    max_parallel_requests: Option<UpTo<MAX_RANK>>,
    cooldown_time: Option<UpTo<MAX_COOLDOWN>>,
    drop_params: Option<Flag>,
    vertex_project: Option<Text>,
    vertex_location: Option<Text>,
    vertex_credentials: Option<Credentials>,
    aws_access_key_id: Option<Text>,
    aws_secret_access_key: Option<Text>,
    aws_session_token: Option<Text>,
    aws_region_name: Option<Text>,
    aws_role_name: Option<Text>,
    aws_session_name: Option<Text>,
    aws_profile_name: Option<Text>,
    aws_web_identity_token: Option<Text>,
    aws_sts_endpoint: Option<Text>,
    region_name: Option<Text>,
    azure_ad_token: Option<Text>,
    /// Provider-specific addressing: Predibase's tenant (`tenant_id`, or LiteLLM's other name
    /// for it), watsonx.ai's project or deployment space.
    tenant_id: Option<Text>,
    predibase_tenant_id: Option<Text>,
    project_id: Option<Text>,
    space_id: Option<Text>,
    /// Vertex's private-endpoint URL form: read with the provider's addressing.
    #[allow(dead_code)]
    use_psc_endpoint_format: Option<IgnoredAny>,
    tags: Option<Listed<Label>>,
}

/// A tag or access-group name.
pub(crate) struct Label(String);

/// Longer names are a mistake, and would be copied into every key check and listing.
const MAX_LABEL: usize = 256;

impl Item for Label {
    const WHAT: &'static str = "names, e.g. [\"free\", \"default\"]";

    fn check(s: String) -> Result<Self, String> {
        match s.len() {
            0 => Err("an empty name matches nothing; remove it".into()),
            n if n > MAX_LABEL => Err(format!("a name of {n} bytes; at most {MAX_LABEL}")),
            _ => Ok(Label(s)),
        }
    }
}

fn labels(l: Option<Listed<Label>>) -> Vec<String> {
    l.map(|l| l.0.into_iter().map(|x| x.0).collect()).unwrap_or_default()
}

/// Custom prices (LiteLLM's names), in `litellm_params` or `model_info`; the order is the order
/// [`DeploymentSpec::prices`] lists them in.
#[derive(Deserialize)]
struct Prices {
    input_cost_per_token: Option<UpTo<MAX_PRICE>>,
    output_cost_per_token: Option<UpTo<MAX_PRICE>>,
    input_cost_per_second: Option<UpTo<MAX_PRICE>>,
    output_cost_per_second: Option<UpTo<MAX_PRICE>>,
    cache_read_input_token_cost: Option<UpTo<MAX_PRICE>>,
    cache_creation_input_token_cost: Option<UpTo<MAX_PRICE>>,
    output_cost_per_image: Option<UpTo<MAX_PRICE>>,
    input_cost_per_image: Option<UpTo<MAX_PRICE>>,
    input_cost_per_pixel: Option<UpTo<MAX_PRICE>>,
    input_cost_per_character: Option<UpTo<MAX_PRICE>>,
    input_cost_per_token_batches: Option<UpTo<MAX_PRICE>>,
    output_cost_per_token_batches: Option<UpTo<MAX_PRICE>>,
    input_cost_per_query: Option<UpTo<MAX_PRICE>>,
}

impl Prices {
    fn listed(self) -> [(&'static str, Option<f64>); 13] {
        let x = |p: Option<UpTo<MAX_PRICE>>| p.map(|p| p.0);
        [
            ("input_cost_per_token", x(self.input_cost_per_token)),
            ("output_cost_per_token", x(self.output_cost_per_token)),
            ("input_cost_per_second", x(self.input_cost_per_second)),
            ("output_cost_per_second", x(self.output_cost_per_second)),
            ("cache_read_input_token_cost", x(self.cache_read_input_token_cost)),
            ("cache_creation_input_token_cost", x(self.cache_creation_input_token_cost)),
            ("output_cost_per_image", x(self.output_cost_per_image)),
            ("input_cost_per_image", x(self.input_cost_per_image)),
            ("input_cost_per_pixel", x(self.input_cost_per_pixel)),
            ("input_cost_per_character", x(self.input_cost_per_character)),
            ("input_cost_per_token_batches", x(self.input_cost_per_token_batches)),
            ("output_cost_per_token_batches", x(self.output_cost_per_token_batches)),
            ("input_cost_per_query", x(self.input_cost_per_query)),
        ]
    }
}

/// The `model_info` keys sluice acts on (besides prices).
#[derive(Deserialize)]
struct InfoSection {
    id: Option<Text>,
    max_input_tokens: Option<UpTo<MAX_QUOTA>>,
    access_groups: Option<Listed<Label>>,
}

/// `vertex_credentials`: a path to a service-account JSON file, the JSON as a string, or the
/// JSON written as YAML (kept as JSON text).
struct Credentials(String);

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            m @ Value::Mapping(_) => Ok(Credentials(serde_json::to_string(&m).unwrap_or_default())),
            other => super::value::string(&other)
                .map_err(serde::de::Error::custom)?
                .map(Credentials)
                .ok_or_else(|| serde::de::Error::custom("expected a string")),
        }
    }
}

impl DeploymentSpec {
    /// A wildcard deployment: a `*` in both `model_name` and `litellm_params.model`, so each
    /// requested name fills in the model it calls.
    pub fn is_wildcard(&self) -> bool {
        self.model_name.contains('*') && self.model_template.contains('*')
    }

    /// Reads one deployment at YAML path `path` (`model_list[3]`, or a name for one stored in the
    /// database).
    pub(crate) fn parse(
        path: &str,
        item: &Value,
        env: &Env,
        ignored: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let entry = mapping(path, item)?;
        let head: EntrySection = typed(path, item)?;
        let model_name = head.model_name.map(|t| t.0).filter(|s| !s.is_empty()).ok_or_else(|| {
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
        let params_value = Value::Mapping(params.clone());
        let p: ParamsSection = typed(&params_path, &params_value)?;
        let param_prices: Prices = typed(&params_path, &params_value)?;
        let at = |name: &str| format!("{params_path}.{name}");
        let text = |t: Option<Text>| t.map(|t| t.0);

        let model_str = text(p.model)
            .ok_or_else(|| err(&at("model"), "missing; write it as <provider>/<name>, e.g. openai/gpt-4o"))?;
        let custom = text(p.custom_llm_provider);
        // A wildcard deployment names its provider per request (`model: "*"` sends the requested
        // name, provider prefix included): what it cannot serve is refused then.
        let wildcard = model_name.contains('*') && model_str.contains('*');
        let (model, unusable) = match sluice_providers::parse_model(&model_str, custom.as_deref()) {
            Ok(model) => (model, None),
            Err(_) if wildcard => {
                let any = sluice_providers::Provider { name: "*", family: sluice_providers::Family::NotImplemented };
                (ModelRef { provider: any, upstream: model_str.clone() }, None)
            }
            Err(why) => {
                let why = format!(
                    "{}: {why}. Deployment {} of model group \"{model_name}\" cannot serve until the config is fixed",
                    at("model"),
                    path
                );
                warnings.push(why.clone());
                let unknown =
                    sluice_providers::Provider { name: "unknown", family: sluice_providers::Family::NotImplemented };
                (ModelRef { provider: unknown, upstream: model_str.clone() }, Some(why))
            }
        };

        // A LiteLLM prefix sluice knows but does not serve loads, as in LiteLLM; its requests are
        // answered with why.
        if let Some(why) = sluice_providers::catalogue::not_served(model.provider.name) {
            warnings.push(format!(
                "{}: provider {} is not implemented in sluice: {why}. Deployment {path} of model group \"{model_name}\" answers its requests with a 400",
                at("model"),
                model.provider.name
            ));
        }

        let api_base = text(p.api_base).or(text(p.base_url));
        if let Some(base) = &api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(err(
                    &at("api_base"),
                    format!("\"{base}\" is not an http(s) URL; write it like http://127.0.0.1:8090/"),
                ));
            }
        }

        let read = [fields_of::<ParamsSection>(), fields_of::<Prices>()];
        for (k, _) in &params {
            let key = key_str(k);
            if !read.iter().any(|f| f.contains(&key.as_str())) {
                ignored.push(format!("{params_path}.{key}: not implemented in sluice yet"));
            }
        }
        let entry_keys = fields_of::<EntrySection>();
        for (k, _) in entry {
            let key = key_str(k);
            if !entry_keys.contains(&key.as_str()) {
                ignored.push(format!("{path}.{key}: unknown model_list entry key"));
            }
        }

        let info_path = format!("{path}.model_info");
        let mut model_info = match entry.get("model_info") {
            Some(v) if !v.is_null() => mapping(&info_path, v)?.clone(),
            _ => Mapping::new(),
        };
        let info_value = Value::Mapping(model_info.clone());
        let info: InfoSection = typed(&info_path, &info_value)?;
        let info_prices: Prices = typed(&info_path, &info_value)?;
        let id = match info.id {
            Some(Text(id)) => id,
            None => model_id::generate(&model_name, &params),
        };
        model_info.insert(Value::from("id"), Value::from(id.clone()));

        let public_params =
            params.iter().filter(|(k, _)| !is_secret_key(&key_str(k))).map(|(k, v)| (k.clone(), v.clone())).collect();
        let region_name = [&p.region_name, &p.aws_region_name, &p.vertex_location]
            .into_iter()
            .find_map(|t| t.as_ref().map(|t| t.0.clone()));
        let index = path.trim_start_matches("model_list[").trim_end_matches(']').parse().unwrap_or(0);
        let num = |x: Option<UpTo<MAX_QUOTA>>| x.map(|x| x.0);
        let rank = |x: Option<UpTo<MAX_RANK>>| x.map(|x| x.0);
        let secret = |t: Option<Text>| t.map(|t| Secret::new(t.0));
        Ok(DeploymentSpec {
            index,
            model_name,
            id,
            model,
            model_template: model_str,
            custom_llm_provider: custom,
            tags: labels(p.tags),
            access_groups: labels(info.access_groups),
            api_base,
            api_key: secret(p.api_key),
            api_version: text(p.api_version),
            organization: text(p.organization),
            timeout: p.timeout.map(|x| x.0),
            stream_timeout: p.stream_timeout.map(|x| x.0),
            rpm: num(head.rpm).or(num(p.rpm)),
            tpm: num(head.tpm).or(num(p.tpm)),
            weight: rank(p.weight),
            mock_response: text(p.mock_response),
            num_retries: p.num_retries.map(|c| c.0),
            order: rank(p.order),
            max_parallel_requests: rank(p.max_parallel_requests),
            cooldown_time: p.cooldown_time.map(|x| x.0),
            prices: param_prices
                .listed()
                .into_iter()
                .zip(info_prices.listed())
                .filter_map(|((k, own), (_, info))| own.or(info).map(|v| (k.to_string(), v)))
                .collect(),
            azure_ad_token: secret(p.azure_ad_token),
            aws_access_key_id: secret(p.aws_access_key_id),
            aws_secret_access_key: secret(p.aws_secret_access_key),
            aws_session_token: secret(p.aws_session_token),
            aws_region_name: text(p.aws_region_name).or(text(p.region_name)),
            aws_role_name: text(p.aws_role_name),
            aws_session_name: text(p.aws_session_name),
            aws_profile_name: text(p.aws_profile_name),
            aws_web_identity_token: secret(p.aws_web_identity_token),
            aws_sts_endpoint: text(p.aws_sts_endpoint),
            region_name,
            vertex_project: text(p.vertex_project),
            vertex_location: text(p.vertex_location),
            vertex_credentials: p.vertex_credentials.map(|c| Secret::new(c.0)),
            tenant_id: text(p.tenant_id).or(text(p.predibase_tenant_id)),
            project_id: text(p.project_id),
            space_id: text(p.space_id),
            drop_params: p.drop_params.map(|f| f.0),
            max_input_tokens: info.max_input_tokens.map(|x| x.0 as u64),
            public_params,
            model_info,
            unusable,
        })
    }
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "credential", "token", "password"].iter().any(|s| k.contains(s))
}

/// The `litellm_params` keys a deployment reads, for the test that they are all known.
#[cfg(test)]
pub(super) fn read_keys() -> Vec<&'static str> {
    [fields_of::<ParamsSection>(), fields_of::<Prices>()].concat()
}
