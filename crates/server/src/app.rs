//! The gateway's shared state, built once from a [`Config`]: the router with each deployment's
//! precomputed upstream target, the upstream client, and the auth settings.

use crate::access::{Access, AccessSettings};
use crate::config::{Config, DeploymentSpec, Env, Secret};
use crate::proxy::upstream::{self, Client};
use crate::vertex_auth::VertexToken;
use bytes::Bytes;
use http::{HeaderValue, Uri};
use sluice_metrics::{DeploymentLabels, DeploymentMetrics, Metrics};
use sluice_providers::{openai, Family, Provider};
use sluice_router::{Deployment, Router};
use sluice_wire::sniff::Endpoint;
use std::sync::Arc;
use std::time::Duration;

/// Default `max_request_size_mb` when the config sets none: large enough for base64 images, small
/// enough that a hostile client cannot make the gateway buffer gigabytes.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// LiteLLM's default request timeout (`litellm.request_timeout`), in seconds.
const LITELLM_DEFAULT_TIMEOUT: f64 = 6000.0;

/// How sluice reaches one deployment.
#[derive(Debug)]
pub struct Target {
    /// `x-litellm-model-id`.
    pub id_header: HeaderValue,
    /// `x-litellm-model-api-base` (query string stripped), when there is a base URL.
    pub api_base_header: Option<HeaderValue>,
    pub provider: Provider,
    pub kind: TargetKind,
    /// Prometheus handles for this deployment, when the prometheus callback is on.
    pub metrics: Option<DeploymentMetrics>,
    /// What spend logs record about this deployment, and its per-token prices.
    pub served: Arc<crate::access::charge::Served>,
}

#[derive(Debug)]
pub enum TargetKind {
    /// An OpenAI-format upstream: forward the body with `model` rewritten.
    OpenAi(Box<OpenAiTarget>),
    /// `mock_response`: answer locally without an upstream.
    Mock(String),
    /// A provider that speaks another format: translate both ways.
    Translated(Box<TranslatedTarget>),
    /// A provider whose translation is not implemented yet.
    Unsupported,
    /// An OpenAI-compatible provider without a usable base URL.
    Misconfigured(String),
}

#[derive(Debug)]
pub struct OpenAiTarget {
    /// The upstream model name as a JSON string literal, ready to splice into bodies.
    pub upstream_model: Bytes,
    pub chat: Uri,
    pub completions: Uri,
    pub embeddings: Uri,
    /// The credential header: `Authorization: Bearer …` (OpenAI and friends) or `api-key` (Azure).
    pub auth: Option<(http::HeaderName, HeaderValue)>,
    pub organization: Option<HeaderValue>,
    pub timeout: Duration,
    pub stream_timeout: Duration,
}

impl OpenAiTarget {
    pub fn uri(&self, endpoint: Endpoint) -> &Uri {
        match endpoint {
            Endpoint::Chat => &self.chat,
            Endpoint::Completions => &self.completions,
            Endpoint::Embeddings => &self.embeddings,
        }
    }
}

/// Which foreign format a translated deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gemini,
    Anthropic,
    Bedrock,
}

/// How a translated call authenticates beyond its static headers.
pub enum UpstreamAuth {
    None,
    Vertex(Arc<VertexToken>),
    /// AWS SigV4: every request is signed over its exact URL and body.
    SigV4 {
        credentials: sluice_providers::bedrock::Credentials,
        region: String,
    },
}

impl std::fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamAuth::None => "None",
            UpstreamAuth::Vertex(_) => "Vertex(service account)",
            UpstreamAuth::SigV4 { .. } => "SigV4(credentials)",
        })
    }
}

#[derive(Debug)]
pub struct TranslatedTarget {
    pub dialect: Dialect,
    pub upstream_model: String,
    pub url: Uri,
    pub stream_url: Uri,
    /// Key and version headers (marked sensitive where secret).
    pub static_headers: Vec<(http::HeaderName, HeaderValue)>,
    pub auth: UpstreamAuth,
    pub drop_params: bool,
    pub timeout: Duration,
    pub stream_timeout: Duration,
}

/// Everything a request handler needs.
pub struct App {
    pub router: Router<Target>,
    pub client: Client,
    /// Keys, users, teams, budgets and spend.
    pub access: Arc<Access>,
    pub max_request_bytes: usize,
    pub client_body_timeout: Duration,
    pub callbacks: Vec<String>,
    /// `/models` body, rendered once.
    pub models_json: Bytes,
    /// `/model/info` body, rendered once.
    pub model_info_json: Bytes,
    /// Whether routing reads the request's estimated prompt tokens.
    pub needs_input_tokens: bool,
    /// LiteLLM's Prometheus metrics (`litellm_settings.callbacks: ["prometheus"]`).
    pub metrics: Option<Arc<Metrics>>,
    /// `general_settings.store_model_in_db` (or `STORE_MODEL_IN_DB=True`): `/model/new` and
    /// `/model/delete` persist deployments in the database.
    pub store_model_in_db: bool,
    /// `general_settings.allowed_routes` and `allowed_ips`.
    pub gate: crate::gate::Gate,
    /// `general_settings.enforce_user_param`.
    pub enforce_user_param: bool,
    /// `require_auth_for_metrics_endpoint`: `/metrics` answers only callers with a valid key.
    pub require_auth_for_metrics: bool,
    /// `sluice_settings.access_log`: one log line per request.
    pub access_log: bool,
}

impl App {
    pub fn with_env(config: &Config, env: &Env) -> Result<Arc<App>, String> {
        App::build(config, env, config.deployments.len())
    }

    /// [`App::with_env`] where the deployments from `stored_from` on were read from the database:
    /// one of those that cannot be built is skipped with an error naming it, so a bad row never
    /// stops the start (the config's own deployments still must all build).
    fn build(config: &Config, env: &Env, stored_from: usize) -> Result<Arc<App>, String> {
        let default_timeout =
            config.router.timeout.or(config.litellm.request_timeout).unwrap_or(LITELLM_DEFAULT_TIMEOUT);
        let default_stream_timeout = config.router.stream_timeout.unwrap_or(default_timeout);
        let metrics = config.litellm.callbacks.iter().any(|c| c == "prometheus").then(Metrics::new);
        // One token cache per key, shared by every deployment that uses it.
        let vertex_tokens = std::cell::RefCell::new(std::collections::HashMap::new());
        let ctx = TargetCtx {
            env,
            default_timeout,
            default_stream_timeout,
            metrics: metrics.as_deref(),
            drop_params: config.litellm.drop_params,
            vertex_tokens: &vertex_tokens,
        };
        let deployments = config
            .deployments
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| match deployment(spec, &ctx) {
                Err(e) if i >= stored_from => {
                    tracing::error!(
                        model_id = %spec.id,
                        model_name = %spec.model_name,
                        "skipping stored model {}: {e}. Fix or delete it with /model/delete.",
                        spec.id
                    );
                    None
                }
                other => Some(other),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let routing = config.router.routing.clone();
        // Estimating prompt tokens costs a pass over the body; only do it when something reads it.
        let needs_input_tokens = deployments.iter().any(|d| d.tpm.is_some())
            || (routing.enable_pre_call_checks && deployments.iter().any(|d| d.max_input_tokens.is_some()));
        let router = Router::new(deployments, routing);
        let client = upstream::client(seconds(config.sluice.upstream_connect_timeout, 10.0));
        Ok(Arc::new(App {
            models_json: crate::info::render_models(&router.public_names()),
            needs_input_tokens,
            model_info_json: crate::info::render_model_info(&config.deployments),
            router,
            client,
            access: Access::new(
                config.general.master_key.as_ref().map(|k| k.expose()),
                AccessSettings {
                    batch_write_interval: seconds(config.general.batch_write_interval, 10.0),
                    reload_interval: seconds(config.general.key_cache_ttl, 60.0),
                    disable_spend_logs: config.general.disable_spend_logs,
                    max_end_user_budget: config.litellm.max_end_user_budget,
                    max_budget: config.litellm.max_budget,
                    budget_duration: config.litellm.budget_duration.clone(),
                    max_parallel_requests: match (
                        config.general.global_max_parallel_requests,
                        config.litellm.max_parallel_requests,
                    ) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                },
                metrics.clone(),
            ),
            max_request_bytes: config.general.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            client_body_timeout: seconds(config.sluice.client_body_timeout, 60.0),
            callbacks: config.litellm.callbacks.clone(),
            metrics,
            store_model_in_db: config.general.store_model_in_db
                || env.get("STORE_MODEL_IN_DB").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            gate: crate::gate::Gate::new(&config.general),
            enforce_user_param: config.general.enforce_user_param,
            require_auth_for_metrics: config.general.require_auth_for_metrics
                || config.litellm.require_auth_for_metrics,
            access_log: config.sluice.access_log,
        }))
    }

    /// Builds the app, opens its database (creating and migrating it), loads keys, users and
    /// teams, and starts the spend writer. A database that cannot be reached does not stop the
    /// gateway: it serves the master key, and the database is retried in the background.
    pub async fn start(config: &Config, env: &Env) -> Result<Arc<App>, String> {
        let url = database_url(config, env);
        let pool = config.general.database_pool_limit;
        let store = match sluice_store::Store::open(&url, pool).await {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::error!(
                    "database unavailable at start ({e}); serving the master key only and retrying every 5 s"
                );
                None
            }
        };
        // Deployments added through `/model/new` (store_model_in_db) join the config's.
        let from_config = config.deployments.len();
        let mut config = std::borrow::Cow::Borrowed(config);
        if let Some(store) = store.as_ref().filter(|_| config.general.store_model_in_db) {
            match store.all_models().await {
                Ok(models) if !models.is_empty() => {
                    let mut owned = config.into_owned();
                    owned.deployments.extend(crate::manage::models::deployments_from_db(&models, env));
                    config = std::borrow::Cow::Owned(owned);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("could not read stored models: {e}"),
            }
        }
        let app = App::build(&config, env, from_config)?;
        if config.general.allow_requests_on_db_unavailable == Some(false) {
            app.access.refuse_without_db.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        crate::access::writer::spawn(&app.access);
        match store {
            Some(store) => {
                app.access.prepare(&store).await;
                app.access.attach(store);
                if let Err(e) = app.access.load().await {
                    tracing::warn!("could not load keys from the database yet: {e}");
                }
            }
            None => {
                let access = app.access.clone();
                tokio::spawn(async move {
                    for attempt in 1u64.. {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        match sluice_store::Store::open(&url, pool).await {
                            Ok(store) => {
                                access.prepare(&store).await;
                                access.attach(store);
                                let _ = access.load().await;
                                tracing::info!(attempt, "database connected");
                                return;
                            }
                            // Each of the first tries, then one a minute: enough to follow an
                            // outage without a line every five seconds.
                            Err(e) if attempt <= 3 || attempt % 12 == 0 => {
                                tracing::warn!(attempt, "database still unavailable ({e}); retrying every 5 s")
                            }
                            Err(_) => {}
                        }
                    }
                });
            }
        }
        Ok(app)
    }

    /// The end of [`App::start`]: call once the listener has stopped and the requests in flight
    /// have ended. Writes the spend still in memory to the database (for at most
    /// [`SHUTDOWN_WRITE_LIMIT`]: a database that is down must not hold the process forever).
    pub async fn shutdown(&self) {
        crate::access::writer::shutdown(&self.access, SHUTDOWN_WRITE_LIMIT).await;
    }

    /// The database [`App::start`] opens for `config`: `general_settings.database_url`, else
    /// `DATABASE_URL`, else the embedded SQLite file.
    pub fn database_url(config: &Config, env: &Env) -> String {
        database_url(config, env)
    }
}

/// How long [`App::shutdown`] waits for the database to take the last spend.
pub const SHUTDOWN_WRITE_LIMIT: Duration = Duration::from_secs(10);

/// `general_settings.database_url`, else `DATABASE_URL`, else the embedded SQLite file.
pub(crate) fn database_url(config: &Config, env: &Env) -> String {
    config
        .general
        .database_url
        .as_ref()
        .map(|u| u.expose().to_string())
        .or_else(|| env.get("DATABASE_URL"))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}", config.sluice.database_path))
}

/// One deployment for the router, with its upstream target.
fn deployment(spec: &DeploymentSpec, ctx: &TargetCtx<'_>) -> Result<Deployment<Target>, String> {
    let target = build_target(spec, ctx)?;
    let mut d = Deployment::new(spec.id.clone(), spec.model_name.clone(), target);
    d.weight = spec.weight;
    d.rpm = spec.rpm;
    d.tpm = spec.tpm;
    d.order = spec.order;
    d.max_parallel_requests = spec.max_parallel_requests.map(|n| n.max(1.0) as u32);
    // Bounded when the config was read; the clamp keeps a bad value from becoming a panic.
    d.cooldown_time = spec.cooldown_time.map(|s| seconds(s, 0.0));
    d.max_input_tokens = spec.max_input_tokens;
    let price = |k: &str| spec.prices.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    d.cost_per_token = match (price("input_cost_per_token"), price("output_cost_per_token")) {
        (None, None) => None,
        (i, o) => Some(i.unwrap_or(0.0) + o.unwrap_or(0.0)),
    };
    Ok(d)
}

/// Whether `spec` builds into a deployment as it would at start: how `/model/new` refuses a
/// model that the next start would have to skip.
pub(crate) fn check_deployment(spec: &DeploymentSpec, env: &Env) -> Result<(), String> {
    let vertex_tokens = std::cell::RefCell::new(std::collections::HashMap::new());
    let ctx = TargetCtx {
        env,
        default_timeout: LITELLM_DEFAULT_TIMEOUT,
        default_stream_timeout: LITELLM_DEFAULT_TIMEOUT,
        metrics: None,
        drop_params: false,
        vertex_tokens: &vertex_tokens,
    };
    deployment(spec, &ctx).map(drop)
}

/// `secs` as a duration: `fallback` when it is not a number, and never more than the longest
/// time a setting may name (`config::settings::MAX_SECONDS`).
fn seconds(secs: f64, fallback: f64) -> Duration {
    let secs = if secs.is_nan() { fallback } else { secs };
    Duration::from_secs_f64(secs.clamp(0.0, crate::config::MAX_SECONDS))
}

struct TargetCtx<'a> {
    env: &'a Env,
    default_timeout: f64,
    default_stream_timeout: f64,
    metrics: Option<&'a Metrics>,
    drop_params: bool,
    vertex_tokens: &'a std::cell::RefCell<std::collections::HashMap<String, Arc<VertexToken>>>,
}

fn build_target(spec: &DeploymentSpec, ctx: &TargetCtx<'_>) -> Result<Target, String> {
    let (env, default_timeout, default_stream_timeout, metrics) =
        (ctx.env, ctx.default_timeout, ctx.default_stream_timeout, ctx.metrics);
    let provider = spec.model.provider;
    let lookup = |v: &str| env.get(v);
    let base = openai::resolve_base(&provider, spec.api_base.as_deref(), lookup);
    let api_base_header = base.as_deref().and_then(|b| HeaderValue::from_str(openai::display_base(b)).ok());
    let id_header = HeaderValue::from_str(&spec.id).map_err(|_| {
        format!("model_list[{}].model_info.id: must be printable ASCII to be sent as a header", spec.index)
    })?;
    let kind = if let Some(why) = &spec.unusable {
        TargetKind::Misconfigured(why.clone())
    } else if let Some(text) = &spec.mock_response {
        TargetKind::Mock(text.clone())
    } else {
        match provider.family {
            Family::NotImplemented => TargetKind::Unsupported,
            // Missing credentials or region are answered per request (as LiteLLM does), so one
            // incomplete deployment does not keep the others from serving.
            Family::Vertex | Family::GoogleAiStudio | Family::Anthropic | Family::Bedrock => {
                match translated_target(spec, ctx, default_timeout, default_stream_timeout) {
                    Ok(t) => TargetKind::Translated(Box::new(t)),
                    Err(why) => TargetKind::Misconfigured(why),
                }
            }
            // As LiteLLM does, an Azure deployment missing its endpoint fails its own requests,
            // not the start.
            Family::Azure => match azure_target(spec, ctx) {
                Ok(t) => TargetKind::OpenAi(Box::new(t)),
                Err(why) => TargetKind::Misconfigured(why),
            },
            Family::OpenAiCompatible { .. } => match &base {
                None => TargetKind::Misconfigured(format!(
                    "deployment {} of model group \"{}\" has no api_base; set litellm_params.api_base for provider {}",
                    spec.id, spec.model_name, provider.name
                )),
                Some(base) => {
                    let uri = |e: Endpoint| -> Result<Uri, String> {
                        openai::url(base, e).parse::<Uri>().map_err(|e| {
                            format!("model_list[{}].litellm_params.api_base: not a valid URL ({e}); write it like http://127.0.0.1:8090/", spec.index)
                        })
                    };
                    let key = openai::resolve_key(&provider, spec.api_key.as_ref().map(|k| k.expose()), lookup);
                    let auth = key
                        .map(|k| secret_header(spec, http::header::AUTHORIZATION, format!("Bearer {k}")))
                        .transpose()?;
                    let organization = spec.organization.as_deref().and_then(|o| HeaderValue::from_str(o).ok());
                    TargetKind::OpenAi(Box::new(OpenAiTarget {
                        upstream_model: sluice_wire::splice::json_string(&spec.model.upstream),
                        chat: uri(Endpoint::Chat)?,
                        completions: uri(Endpoint::Completions)?,
                        embeddings: uri(Endpoint::Embeddings)?,
                        auth,
                        organization,
                        timeout: seconds(spec.timeout.unwrap_or(default_timeout), LITELLM_DEFAULT_TIMEOUT),
                        stream_timeout: seconds(
                            spec.stream_timeout.or(spec.timeout).unwrap_or(default_stream_timeout),
                            LITELLM_DEFAULT_TIMEOUT,
                        ),
                    }))
                }
            },
        }
    };
    let metrics = metrics.map(|m| {
        m.deployment(&DeploymentLabels {
            model_group: spec.model_name.clone(),
            litellm_model_name: format!("{}/{}", provider.name, spec.model.upstream),
            model_id: spec.id.clone(),
            api_base: base.as_deref().map(openai::display_base).unwrap_or_default().to_string(),
            api_provider: provider.name.to_string(),
            tpm_limit: spec.tpm,
            rpm_limit: spec.rpm,
        })
    });
    let served = Arc::new(crate::access::charge::Served::new(
        &spec.model.upstream,
        &spec.model_name,
        &spec.id,
        provider.name,
        base.as_deref().map(openai::display_base).unwrap_or_default(),
        deployment_price(spec),
    ));
    Ok(Target { id_header, api_base_header, provider, kind, metrics, served })
}

/// The deployment's own prices when its config sets any, else the bundled table's.
fn deployment_price(spec: &DeploymentSpec) -> Option<sluice_providers::pricing::Price> {
    let own = |k: &str| spec.prices.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    match (own("input_cost_per_token"), own("output_cost_per_token")) {
        (None, None) => sluice_providers::pricing::lookup(spec.model.provider.name, &spec.model.upstream),
        (i, o) => Some(sluice_providers::pricing::Price {
            input_per_token: i.unwrap_or(0.0),
            output_per_token: o.unwrap_or(0.0),
            cache_read_per_token: own("cache_read_input_token_cost"),
            cache_creation_per_token: own("cache_creation_input_token_cost"),
        }),
    }
}

fn translated_target(
    spec: &DeploymentSpec,
    ctx: &TargetCtx<'_>,
    timeout: f64,
    stream_timeout: f64,
) -> Result<TranslatedTarget, String> {
    let provider = spec.model.provider;
    let model = &spec.model.upstream;
    let path = format!("model_list[{}].litellm_params", spec.index);
    let parse = |u: String| -> Result<Uri, String> {
        u.parse::<Uri>().map_err(|e| format!("{path}.api_base: builds the URL {u:?}, which is not valid ({e})"))
    };
    let secret = |name: &'static str, value: &str| -> Result<(http::HeaderName, HeaderValue), String> {
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| format!("{path}.api_key: contains characters not allowed in a header"))?;
        v.set_sensitive(true);
        Ok((http::HeaderName::from_static(name), v))
    };
    let key = spec.api_key.as_ref().map(|k| k.expose().to_string());
    let (dialect, url, stream_url, static_headers, auth) = match provider.family {
        Family::Vertex => {
            // Read on first use, as LiteLLM does: a config naming a key that is not there yet still
            // loads, and requests say what is missing.
            let source = spec
                .vertex_credentials
                .as_ref()
                .map(|c| c.expose().to_string())
                .or_else(|| ctx.env.get("GOOGLE_APPLICATION_CREDENTIALS"))
                .unwrap_or_default();
            let project = spec.vertex_project.clone().or_else(|| ctx.env.get("VERTEXAI_PROJECT")).unwrap_or_default();
            let location = spec
                .vertex_location
                .clone()
                .or_else(|| ctx.env.get("VERTEXAI_LOCATION"))
                .unwrap_or_else(|| "us-central1".into());
            let base = spec.api_base.as_deref();
            let token = ctx
                .vertex_tokens
                .borrow_mut()
                .entry(source.clone())
                .or_insert_with(|| Arc::new(VertexToken::new(source)))
                .clone();
            (
                Dialect::Gemini,
                parse(sluice_providers::gemini::vertex_url(base, &project, &location, model, false))?,
                parse(sluice_providers::gemini::vertex_url(base, &project, &location, model, true))?,
                Vec::new(),
                UpstreamAuth::Vertex(token),
            )
        }
        Family::GoogleAiStudio => {
            let key = key.or_else(|| ctx.env.get("GEMINI_API_KEY")).ok_or_else(|| {
                format!("{path}.api_key: missing; set it (or GEMINI_API_KEY) to a Google AI Studio key")
            })?;
            let base = spec.api_base.as_deref();
            (
                Dialect::Gemini,
                parse(sluice_providers::gemini::gemini_url(base, model, false))?,
                parse(sluice_providers::gemini::gemini_url(base, model, true))?,
                vec![secret("x-goog-api-key", &key)?],
                UpstreamAuth::None,
            )
        }
        Family::Bedrock => {
            use sluice_providers::bedrock;
            let region = spec
                .aws_region_name
                .clone()
                .or_else(|| ctx.env.get("AWS_REGION"))
                .or_else(|| ctx.env.get("AWS_DEFAULT_REGION"))
                .ok_or_else(|| {
                    format!(
                        "{path}.aws_region_name: missing; set it (or AWS_REGION) to the Bedrock region, e.g. us-east-1"
                    )
                })?;
            let id = bedrock::model_id(model);
            let base = spec.api_base.as_deref();
            let url = parse(bedrock::converse_url(base, &region, id, false))?;
            let stream_url = parse(bedrock::converse_url(base, &region, id, true))?;
            // A Bedrock API key is a bearer token; otherwise sign with AWS credentials.
            let bearer = key.or_else(|| ctx.env.get(bedrock::BEARER_TOKEN_ENV));
            let secret_of =
                |s: &Option<Secret>, env: &str| s.as_ref().map(|v| v.expose().to_string()).or_else(|| ctx.env.get(env));
            let (headers, auth) = match bearer {
                Some(k) => (vec![secret("authorization", &format!("Bearer {k}"))?], UpstreamAuth::None),
                None => {
                    let access = secret_of(&spec.aws_access_key_id, "AWS_ACCESS_KEY_ID");
                    let secret_key = secret_of(&spec.aws_secret_access_key, "AWS_SECRET_ACCESS_KEY");
                    let (Some(access_key_id), Some(secret_access_key)) = (access, secret_key) else {
                        return Err(format!("{path}: no AWS credentials; set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or a Bedrock API key as api_key"));
                    };
                    let credentials = bedrock::Credentials {
                        access_key_id,
                        secret_access_key,
                        session_token: secret_of(&spec.aws_session_token, "AWS_SESSION_TOKEN"),
                    };
                    (Vec::new(), UpstreamAuth::SigV4 { credentials, region })
                }
            };
            (Dialect::Bedrock, url, stream_url, headers, auth)
        }
        _ => {
            let key = key
                .or_else(|| ctx.env.get("ANTHROPIC_API_KEY"))
                .ok_or_else(|| format!("{path}.api_key: missing; set it (or ANTHROPIC_API_KEY) to an Anthropic key"))?;
            let url = parse(sluice_providers::anthropic::url(spec.api_base.as_deref(), |v| ctx.env.get(v)))?;
            let mut headers = Vec::new();
            for (name, value) in sluice_providers::anthropic::headers(&key, spec.api_version.as_deref()) {
                if name == "x-api-key" {
                    headers.push(secret("x-api-key", &value)?);
                } else if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.push((http::HeaderName::from_static(name), v));
                }
            }
            (Dialect::Anthropic, url.clone(), url, headers, UpstreamAuth::None)
        }
    };
    Ok(TranslatedTarget {
        dialect,
        upstream_model: model.clone(),
        url,
        stream_url,
        static_headers,
        auth,
        drop_params: spec.drop_params.unwrap_or(ctx.drop_params),
        timeout: seconds(spec.timeout.unwrap_or(timeout), LITELLM_DEFAULT_TIMEOUT),
        stream_timeout: seconds(
            spec.stream_timeout.or(spec.timeout).unwrap_or(stream_timeout),
            LITELLM_DEFAULT_TIMEOUT,
        ),
    })
}

fn secret_header(
    spec: &DeploymentSpec,
    name: http::HeaderName,
    value: String,
) -> Result<(http::HeaderName, HeaderValue), String> {
    let mut v = HeaderValue::from_str(&value).map_err(|_| {
        format!("model_list[{}].litellm_params.api_key: contains characters not allowed in a header", spec.index)
    })?;
    v.set_sensitive(true);
    Ok((name, v))
}

fn azure_target(spec: &DeploymentSpec, ctx: &TargetCtx<'_>) -> Result<OpenAiTarget, String> {
    use sluice_providers::azure;
    let path = format!("model_list[{}].litellm_params", spec.index);
    let first_env = |names: &[&str]| names.iter().find_map(|n| ctx.env.get(n));
    let base = spec.api_base.clone().or_else(|| first_env(azure::BASE_ENV)).ok_or_else(|| {
        format!(
            "{path}.api_base: missing; set it to your Azure OpenAI endpoint, e.g. https://<resource>.openai.azure.com"
        )
    })?;
    let version = spec
        .api_version
        .clone()
        .or_else(|| first_env(azure::VERSION_ENV))
        .unwrap_or_else(|| azure::DEFAULT_API_VERSION.into());
    let deployment = &spec.model.upstream;
    let uri = |e: Endpoint| -> Result<Uri, String> {
        azure::url(&base, deployment, e, &version)
            .parse::<Uri>()
            .map_err(|e| format!("{path}.api_base: not a valid URL ({e})"))
    };
    let auth = match (
        &spec.azure_ad_token,
        spec.api_key.as_ref().map(|k| k.expose().to_string()).or_else(|| first_env(azure::KEY_ENV)),
    ) {
        (Some(token), _) => {
            Some(secret_header(spec, http::header::AUTHORIZATION, format!("Bearer {}", token.expose()))?)
        }
        (None, Some(key)) => Some(secret_header(spec, http::HeaderName::from_static("api-key"), key)?),
        (None, None) => None,
    };
    Ok(OpenAiTarget {
        upstream_model: sluice_wire::splice::json_string(deployment),
        chat: uri(Endpoint::Chat)?,
        completions: uri(Endpoint::Completions)?,
        embeddings: uri(Endpoint::Embeddings)?,
        auth,
        organization: None,
        timeout: seconds(spec.timeout.unwrap_or(ctx.default_timeout), LITELLM_DEFAULT_TIMEOUT),
        stream_timeout: seconds(
            spec.stream_timeout.or(spec.timeout).unwrap_or(ctx.default_stream_timeout),
            LITELLM_DEFAULT_TIMEOUT,
        ),
    })
}
