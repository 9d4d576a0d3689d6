//! The gateway's shared state, built once from a [`Config`]: the router with each deployment's
//! precomputed upstream target, the upstream client, and the auth settings.

use crate::config::{Config, DeploymentSpec, Env, Secret};
use crate::proxy::upstream::{self, Client};
use crate::vertex_auth::VertexToken;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::HeaderValue;
use sluice_access::{Access, AccessSettings};
use sluice_metrics::{DeploymentLabels, DeploymentMetrics, Metrics};
use sluice_providers::{Built, Params, Provider, Translated};
use sluice_router::{Deployment, Member, Router};
use sluice_state::remote::Remote;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
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
    pub served: Arc<sluice_access::charge::Served>,
    /// What `/health` sends it and shows of it.
    pub health: crate::health::Probe,
    /// `region_name` (else `aws_region_name`, `vertex_location`): for region outage alerts.
    pub region: Option<Arc<str>>,
    /// `drop_params`, the deployment's else `litellm_settings`': what a translation that the
    /// server makes itself (a completion through chat) drops instead of refusing.
    pub drop_params: bool,
}

#[derive(Debug)]
pub enum TargetKind {
    /// An OpenAI-format upstream: forward the body with `model` rewritten.
    OpenAi(Box<OpenAiTarget>),
    /// `mock_response`: answer locally without an upstream.
    Mock(String),
    /// A provider that speaks another format: translate both ways.
    Translated(Box<Translated>),
    /// A provider whose translation is not implemented yet.
    Unsupported,
    /// A wildcard deployment: each requested name gets its own target ([`crate::wildcard`]).
    Wildcard(Box<crate::wildcard::Wildcard>),
    /// A deployment that cannot serve (no usable base URL, missing credentials): its requests
    /// are answered with why.
    Misconfigured(String),
}

/// An OpenAI-format deployment's address and credentials.
pub type OpenAiTarget = sluice_providers::openai::OpenAi;

/// Everything a request handler needs.
pub struct App {
    /// Swapped whole when a model is added, changed or deleted through the API
    /// ([`App::reroute`]); a request holds the one it started with.
    pub router: ArcSwap<Router<Target>>,
    pub client: Client,
    /// Keys, users, teams, budgets and spend.
    pub access: Arc<Access>,
    pub max_request_bytes: usize,
    pub client_body_timeout: Duration,
    pub callbacks: Vec<String>,
    /// `/models` body, rendered again with each router.
    pub models_json: ArcSwap<Bytes>,
    /// `/model/info` body, rendered once.
    pub model_info_json: Bytes,
    /// Whether routing reads the request's estimated prompt tokens (follows the router).
    pub needs_input_tokens: AtomicBool,
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
    /// `default_internal_user_params.available_teams`, for `/team/available`.
    pub available_teams: Option<Vec<String>>,
    /// The Redis replicas share limits, budgets and cooldowns through (`config.redis`), when the
    /// config names one and the app was started with [`App::start`].
    pub remote: Option<Arc<Remote>>,
    /// Where this replica tells the others what the management API changed ([`crate::live`]).
    pub changes: crate::live::Changes,
    /// `/health`'s settings and the background checks' latest result.
    pub health: crate::health::HealthChecks,
    /// The provider pass-through routes and `pass_through_endpoints`.
    pub pass_through: crate::passthrough::Table,
    /// The rate windows' sync with Redis, once started: routers rebuilt after a model change
    /// bind their new deployments' windows to it.
    windows: std::sync::OnceLock<Arc<sluice_state::WindowSharing>>,
    /// Responses API answers on their way into the database (`proxy::responses`).
    pub responses: Arc<crate::proxy::responses::Pending>,
    /// The config as `/config/update` has changed it (`manage::config`).
    pub live_settings: crate::manage::LiveSettings,
    /// Slack alerting's sender, once started ([`crate::alerts`]): finished at shutdown.
    alerting: std::sync::Mutex<Option<sluice_export::alerting::AlertDrain>>,
    /// The answer cache (`litellm_settings.cache`), when the config turns one on: a Redis cache
    /// only once Redis is connected ([`App::start`]).
    pub cache: Option<Arc<sluice_cache::Cache>>,
    /// The model group a semantic cache embeds prompts with.
    pub semantic_model: Option<String>,
    /// The admin UI's sign-in sessions ([`crate::ui`]).
    pub ui: crate::ui::UiState,
    /// The summarised `/spend/logs`' answers of days unchanged since (`manage::summary`).
    pub(crate) spend_days: crate::manage::summary::DayCache,
}

impl App {
    /// The app without a database or Redis (tests, checks): [`App::start`] connects both.
    pub fn with_env(config: &Config, env: &Env) -> Result<Arc<App>, String> {
        App::build(config, env, config.deployments.len(), None)
    }

    /// [`App::with_env`] where the deployments from `stored_from` on were read from the database:
    /// one of those that cannot be built is skipped with an error naming it, so a bad row never
    /// stops the start (the config's own deployments still must all build).
    fn build(config: &Config, env: &Env, stored_from: usize, remote: Option<Arc<Remote>>) -> Result<Arc<App>, String> {
        let default_timeout =
            config.router.timeout.or(config.litellm.request_timeout).unwrap_or(LITELLM_DEFAULT_TIMEOUT);
        let default_stream_timeout = config.router.stream_timeout.unwrap_or(default_timeout);
        let metrics = config.litellm.callbacks.iter().any(|c| c == "prometheus").then(|| match &remote {
            Some(_) => Metrics::with_redis(),
            None => Metrics::new(),
        });
        let cache = match &config.cache {
            Some(c) => match sluice_cache::Cache::new(c.settings.clone(), remote.clone()) {
                Ok(cache) => Some(cache),
                // A Redis cache without Redis (the config named none, or the app was built
                // without connecting it): every request goes upstream.
                Err(e) => {
                    tracing::warn!("litellm_settings.cache: {e}; answers are not cached");
                    None
                }
            },
            None => None,
        };
        // Built first: Vertex deployments fetch their tokens through it.
        let client = upstream::client(seconds(config.sluice.upstream_connect_timeout, 10.0));
        let vertex_tokens = std::cell::RefCell::new(std::collections::HashMap::new());
        let ctx = TargetCtx {
            // With `environment_variables`, which LiteLLM puts in its process environment, where
            // the providers (and the AWS and Google credential chains) read them.
            env: &config.environment,
            default_timeout,
            default_stream_timeout,
            metrics: metrics.as_ref(),
            drop_params: config.litellm.drop_params,
            vertex_tokens: &vertex_tokens,
            client: &client,
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
        let router = Router::new(deployments, routing);
        let pass_through = crate::passthrough::Table::new(
            config.pass_through.endpoints.clone(),
            &config.pass_through.vertex,
            &|v: &str| config.environment.from_config(v).or_else(|| env.get(v)),
            &mut |source: &str| -> Arc<dyn sluice_providers::TokenSource> {
                vertex_tokens
                    .borrow_mut()
                    .entry(source.to_string())
                    .or_insert_with(|| Arc::new(VertexToken::new(source.to_string(), env)))
                    .clone()
            },
            seconds(default_timeout, LITELLM_DEFAULT_TIMEOUT),
            seconds(default_stream_timeout, LITELLM_DEFAULT_TIMEOUT),
        )
        .with_vertex_accounts(
            config
                .deployments
                .iter()
                .filter_map(|d| {
                    let (project, source) = (d.vertex_project.as_ref()?, d.vertex_credentials.as_ref()?.expose());
                    let token = vertex_tokens
                        .borrow_mut()
                        .entry(source.to_string())
                        .or_insert_with(|| Arc::new(VertexToken::new(source.to_string(), env)))
                        .clone();
                    Some(crate::passthrough::VertexAccount {
                        project: project.clone(),
                        location: d.vertex_location.clone(),
                        token,
                    })
                })
                .collect(),
        );
        let app = Arc::new(App {
            models_json: ArcSwap::from_pointee(crate::info::render_models(&crate::info::model_names(&router, false))),
            needs_input_tokens: AtomicBool::new(needs_input_tokens(&router)),
            model_info_json: crate::info::render_model_info(&config.deployments),
            router: ArcSwap::from_pointee(router),
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
            store_model_in_db: store_model_in_db(config, env),
            gate: crate::gate::Gate::new(&config.general),
            enforce_user_param: config.general.enforce_user_param,
            require_auth_for_metrics: config.general.require_auth_for_metrics
                || config.litellm.require_auth_for_metrics,
            access_log: config.sluice.access_log,
            available_teams: config.litellm.available_teams.clone(),
            remote,
            changes: crate::live::Changes::default(),
            health: crate::health::HealthChecks::new(
                config.general.background_health_checks,
                config.general.health_check_interval,
                config.general.health_check_details,
            ),
            windows: std::sync::OnceLock::new(),
            pass_through,
            responses: Default::default(),
            live_settings: crate::manage::LiveSettings::new(config, env),
            alerting: std::sync::Mutex::new(None),
            cache,
            semantic_model: config.cache.as_ref().and_then(|c| c.semantic.as_ref()).map(|s| s.embedding_model.clone()),
            ui: crate::ui::UiState::new(config, env),
            spend_days: Default::default(),
        });
        app.access.access_groups.store(Arc::new(access_groups(config.deployments.iter())));
        Ok(app)
    }

    /// Routes `config`'s deployments and `stored` (the models stored in the database) from now
    /// on, without a restart: a new router is swapped in, in which every deployment not named
    /// in `changed` keeps its live health (cooldown, windows, in-flight slots). A stored model
    /// that cannot be built is left out with an error naming it, as at start.
    pub fn reroute(&self, config: &Config, _env: &Env, stored: &[DeploymentSpec], changed: &HashSet<String>) {
        let old = self.router.load_full();
        let mut current: HashMap<&str, &Arc<Deployment<Target>>> =
            old.deployments().map(|d| (d.id.as_str(), d)).collect();
        let default_timeout =
            config.router.timeout.or(config.litellm.request_timeout).unwrap_or(LITELLM_DEFAULT_TIMEOUT);
        let vertex_tokens = std::cell::RefCell::new(std::collections::HashMap::new());
        let ctx = TargetCtx {
            env: &config.environment,
            default_timeout,
            default_stream_timeout: config.router.stream_timeout.unwrap_or(default_timeout),
            metrics: self.metrics.as_ref(),
            drop_params: config.litellm.drop_params,
            vertex_tokens: &vertex_tokens,
            client: &self.client,
        };
        let mut members = Vec::new();
        for (i, spec) in config.deployments.iter().chain(stored).enumerate() {
            let kept = if changed.contains(&spec.id) { None } else { current.remove(spec.id.as_str()) };
            if let Some(d) = kept {
                members.push(Member::Kept(d.clone()));
                continue;
            }
            match deployment(spec, &ctx) {
                Ok(d) => members.push(Member::New(Box::new(d))),
                Err(e) => tracing::error!(
                    model_id = %spec.id,
                    model_name = %spec.model_name,
                    "skipping {} model {}: {e}. Fix or delete it with /model/delete.",
                    if i < config.deployments.len() { "configured" } else { "stored" },
                    spec.id
                ),
            }
        }
        let router = old.rebuilt_with(members, config.router.routing.clone());
        self.share_router(&router);
        self.access.access_groups.store(Arc::new(access_groups(config.deployments.iter().chain(stored))));
        self.models_json.store(Arc::new(crate::info::render_models(&crate::info::model_names(&router, false))));
        self.needs_input_tokens.store(needs_input_tokens(&router), Ordering::Relaxed);
        self.router.store(Arc::new(router));
    }

    /// Binds a router's deployments (cooldowns and rpm/tpm windows) to Redis, when it is
    /// configured: at start, and for each router rebuilt after a model change (deployments
    /// carried over are bound already; binding is idempotent).
    fn share_router(&self, router: &Router<Target>) {
        if let Some(remote) = &self.remote {
            router.share_cooldowns(remote.clone());
            if let Some(windows) = self.windows.get() {
                router.share_windows(windows);
            }
        }
    }

    /// [`App::start`] with the Redis connection replicas share: changes made through the
    /// management API reach every replica within a second (pub/sub, with the database polled
    /// as the fallback; see [`crate::live`]). `None`: the database poll alone carries them.
    pub async fn start_with(config: &Config, env: &Env, remote: Option<Arc<Remote>>) -> Result<Arc<App>, String> {
        let app = App::start_alone(config, env, remote.clone()).await?;
        crate::live::spawn(&app, env, remote);
        Ok(app)
    }

    /// Builds the app, opens its database (creating and migrating it), loads keys, users and
    /// teams, and starts the spend writer. A database that cannot be reached does not stop the
    /// gateway: it serves the master key, and the database is retried in the background.
    pub async fn start(config: &Config, env: &Env) -> Result<Arc<App>, String> {
        // Redis first: the router and the counters bind to it as they are built. A Redis that
        // is away does not stop the start (the connection starts degraded and keeps trying).
        let remote = match &config.redis {
            Some(redis) => {
                let remote = Remote::connect(redis).await.map_err(|e| format!("Redis: {e}"))?;
                remote.spawn_heartbeat();
                tracing::info!(
                    prefix = %remote.prefix(),
                    connected = remote.healthy(),
                    "sharing limits, budgets and cooldowns with the other replicas through Redis"
                );
                Some(remote)
            }
            None => None,
        };
        App::start_with(config, env, remote).await
    }

    async fn start_alone(config: &Config, env: &Env, remote: Option<Arc<Remote>>) -> Result<Arc<App>, String> {
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
        // Settings stored by `/config/update` go over the file's, as LiteLLM reads them: only
        // with store_model_in_db.
        let file = config;
        let mut stored_settings = Vec::new();
        let mut config = std::borrow::Cow::Borrowed(config);
        if let Some(store) = store.as_ref().filter(|_| store_model_in_db(file, env)) {
            if let Some((merged, stored)) = crate::manage::config_at_start(store, file).await {
                config = std::borrow::Cow::Owned(merged);
                stored_settings = stored;
            }
        }
        let effective = config.clone().into_owned();
        // Deployments added through `/model/new` (store_model_in_db) join the config's.
        let from_config = config.deployments.len();
        if let Some(store) = store.as_ref().filter(|_| config.general.store_model_in_db) {
            match store.all_models().await {
                Ok(models) if !models.is_empty() => {
                    let mut owned = config.into_owned();
                    owned.deployments.extend(crate::manage::deployments_from_db(&models, env));
                    config = std::borrow::Cow::Owned(owned);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("could not read stored models: {e}"),
            }
        }
        let app = App::build(&config, env, from_config, remote)?;
        app.live_settings.started(file.clone(), effective, stored_settings);
        if let Some(remote) = &app.remote {
            let windows = sluice_state::remote::window::WindowSharing::new(remote.clone());
            windows.spawn();
            let _ = app.windows.set(windows.clone());
            app.share_router(&app.router.load());
            app.access.share_windows(windows);
        }
        if config.general.allow_requests_on_db_unavailable == Some(false) {
            app.access.refuse_without_db.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        sluice_access::writer::spawn(&app.access);
        start_logging(&app, &config);
        crate::health::spawn_background(&app);
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
        // Once the database is attached (or known to be away): the watcher's first look at it
        // must not take a start still migrating for an outage.
        if let Some(settings) = &config.alerting {
            *app.alerting.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                crate::alerts::start(&app, settings);
        }
        // After the load: a budget's shared total is rebuilt from the database's figure when
        // Redis has none (spenders bind on their first admission).
        if let Some(remote) = &app.remote {
            app.access.share_budgets(remote.clone());
        }
        Ok(app)
    }

    /// The end of [`App::start`]: call once the listener has stopped and the requests in flight
    /// have ended. Writes the spend still in memory to the database (for at most
    /// [`SHUTDOWN_WRITE_LIMIT`]: a database that is down must not hold the process forever).
    pub async fn shutdown(&self) {
        if let Some(logging) = self.access.logging.get() {
            logging.finish(SHUTDOWN_LOGGING_LIMIT).await;
        }
        let alerting = self.alerting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(drain) = alerting {
            if !drain.finish(SHUTDOWN_LOGGING_LIMIT).await {
                tracing::warn!("slack alerting did not deliver its last messages in time");
            }
        }
        sluice_access::writer::shutdown(&self.access, SHUTDOWN_WRITE_LIMIT).await;
    }

    /// The database [`App::start`] opens for `config`: `general_settings.database_url`, else
    /// `DATABASE_URL`, else the embedded SQLite file.
    pub fn database_url(config: &Config, env: &Env) -> String {
        database_url(config, env)
    }
}

/// How long the logging callbacks may take at shutdown to deliver what they hold.
const SHUTDOWN_LOGGING_LIMIT: Duration = Duration::from_secs(5);

/// Starts the logging callbacks the config names (`generic_api`, `langfuse`, `s3`, `datadog`,
/// `otel`, `langfuse_otel`; `prometheus` is the metrics), each with its queue and delivery task,
/// and hands them to billing, which records each call. The `langfuse` sink always runs: a key's
/// or team's `metadata.logging` may name its own project whether or not the config names
/// `langfuse` (as in LiteLLM); without either it holds an empty queue and an idle task.
fn start_logging(app: &App, config: &Config) {
    use crate::config::logging::{DATADOG, GENERIC_API, LANGFUSE_OTEL, OTEL, S3};
    use sluice_export::{
        datadog::Datadog, generic_api::GenericApi, otel::Otlp, s3::S3 as S3Sink, Batching, Callbacks, Events,
    };
    /// Starts `sink`'s queue and task. The settings were checked when the config was read: an
    /// error here is a bug, and logged, not fatal.
    fn run<S: sluice_export::Sink>(
        app: &App,
        callbacks: &mut Callbacks,
        name: &'static str,
        events: Events,
        batching: Batching,
        sink: Result<S, String>,
    ) {
        match sink {
            Ok(sink) => {
                let metrics = app.metrics.as_ref().map(|m| m.callback(name));
                callbacks.add(name, events, sluice_export::queue::spawn(name, sink, batching, metrics));
            }
            Err(e) => tracing::error!("{name} callback not started: {e}"),
        }
    }
    // Keys' and teams' `os.environ/` values and fallback `LANGFUSE_*` variables are read where
    // the config's are, `environment_variables` included. Set before the keys load.
    let environment = config.environment.clone();
    app.access.registry.own_logging.set_env(move |name| environment.get(name));
    let mut callbacks = Callbacks::default();
    if let Some(g) = &config.generic_api {
        let sink = GenericApi::new(&g.endpoint, g.headers.as_ref().map(Secret::expose));
        run(app, &mut callbacks, GENERIC_API, g.events, Batching::default(), sink);
    }
    for named in &config.named_generic_apis {
        // A sink's name labels its metrics and logs for the life of the process: the config's
        // few webhook names are kept as such, once, at start.
        let name: &'static str = Box::leak(named.name.clone().into_boxed_str());
        let headers: Vec<(&str, &str)> = named.headers.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
        let at = format!("callback_settings.{}", named.name);
        let sink = GenericApi::named(&at, &named.endpoint, &headers, named.format);
        run(app, &mut callbacks, name, named.events, Batching::default(), sink);
    }
    if let Some(s) = &config.s3 {
        run(app, &mut callbacks, S3, s.events, s.batching, S3Sink::new(s.settings.clone()));
    }
    if let Some(d) = &config.datadog {
        run(app, &mut callbacks, DATADOG, d.events, d.batching, Datadog::new(d.settings.clone()));
    }
    for (name, otel) in [(OTEL, &config.otel), (LANGFUSE_OTEL, &config.langfuse_otel)] {
        if let Some(o) = otel {
            run(app, &mut callbacks, name, o.events, Batching::default(), Otlp::new(&o.settings));
            // Requests keep their trace from now on.
            callbacks.trace();
        }
    }
    // Records hold the prompt and the answer only for a sink that writes them out.
    let otel_content =
        [&config.otel, &config.langfuse_otel].iter().any(|o| o.as_ref().is_some_and(|o| o.settings.capture_content));
    let wants_content = config.generic_api.is_some()
        || !config.named_generic_apis.is_empty()
        || config.langfuse.is_some()
        || config.s3.is_some()
        || config.datadog.is_some()
        || otel_content;
    callbacks.keep_content(wants_content, !config.litellm.turn_off_message_logging);
    callbacks.redact_exceptions(config.litellm.redact_messages_in_exceptions);
    start_langfuse(app, config, &mut callbacks);
    let names: Vec<&str> = callbacks.names().collect();
    if !names.is_empty() {
        tracing::info!(callbacks = ?names, "logging callbacks running");
    }
    let _ = app.access.logging.set(Arc::new(callbacks));
}

/// The `langfuse` sink: the configured project (if any) and batching, and keys' own projects.
fn start_langfuse(app: &App, config: &Config, callbacks: &mut sluice_export::Callbacks) {
    use crate::config::logging::LANGFUSE;
    let mut batching = sluice_export::Batching::default();
    let mut events = sluice_export::Events::default();
    let mut release = None;
    let mut default = None;
    if let Some(l) = &config.langfuse {
        // Checked when the config was read, as above.
        match sluice_export::langfuse::Project::new(l.host.as_deref(), l.public_key.expose(), l.secret_key.expose()) {
            Ok(project) => {
                default = Some(Arc::new(project));
                events = l.events;
                release = l.release.clone();
                batching.max_wait = l.flush_interval;
                batching.max_records = l.flush_at;
            }
            Err(e) => tracing::error!("langfuse callback not started for the configured project: {e}"),
        }
    }
    let sink = sluice_export::langfuse::Langfuse::new(default, release);
    let metrics = app.metrics.as_ref().map(|m| m.callback(LANGFUSE));
    callbacks.add_langfuse(events, sluice_export::queue::spawn(LANGFUSE, sink, batching, metrics));
}

/// Whether routing reads the request's estimated prompt tokens: estimating them costs a pass
/// over the body, so only when some deployment has a `tpm` or a checked context window.
fn needs_input_tokens(router: &Router<Target>) -> bool {
    router
        .deployments()
        .any(|d| d.tpm.is_some() || (router.settings.enable_pre_call_checks && d.max_input_tokens.is_some()))
}

/// The deployments' `model_info.access_groups`, for keys' model checks.
fn access_groups<'a>(specs: impl Iterator<Item = &'a DeploymentSpec>) -> sluice_access::groups::AccessGroups {
    sluice_access::groups::AccessGroups::new(
        specs.flat_map(|s| s.access_groups.iter().map(|g| (g.as_str(), s.model_name.as_str()))),
    )
}

/// `general_settings.store_model_in_db`, or `STORE_MODEL_IN_DB=True`.
fn store_model_in_db(config: &Config, env: &Env) -> bool {
    config.general.store_model_in_db
        || env.get("STORE_MODEL_IN_DB").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
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
    let price = target.served.price;
    // Named once per deployment built (at start, and when a stored model changes): spend on it is
    // invisible to every budget.
    if price.is_none() {
        if let Some(why) = spec.unpriced() {
            tracing::warn!(model_id = %spec.id, "{why}");
        }
    }
    let mut d = Deployment::new(spec.id.clone(), spec.model_name.clone(), target);
    d.weight = spec.weight;
    d.rpm = spec.rpm;
    d.tpm = spec.tpm;
    d.order = spec.order;
    d.max_parallel_requests = spec.max_parallel_requests.map(|n| n.max(1.0) as u32);
    // Bounded when the config was read; the clamp keeps a bad value from becoming a panic.
    d.cooldown_time = spec.cooldown_time.map(|s| seconds(s, 0.0));
    d.max_input_tokens = spec.max_input_tokens;
    d.num_retries = spec.num_retries;
    d.tags = spec.tags.clone();
    d.region = spec.region_name.as_deref().and_then(sluice_router::Region::of);
    // Cost-based routing compares what billing charges: the deployment's own prices, else the
    // price map's (as LiteLLM's `lowest_cost` reads `litellm.model_cost`). A price per second
    // has no per-token figure to compare: unknown, as in LiteLLM.
    d.cost_per_token = price.filter(|p| !p.per_second()).map(|p| p.input_per_token + p.output_per_token);
    Ok(d)
}

/// Whether `spec` builds into a deployment as it would at start: how `/model/new` refuses a
/// model that the next start would have to skip.
pub(crate) fn check_deployment(spec: &DeploymentSpec, env: &Env) -> Result<(), String> {
    let vertex_tokens = std::cell::RefCell::new(std::collections::HashMap::new());
    // Never used to send: a check builds the deployment and drops it.
    let client = upstream::client(Duration::from_secs(10));
    let ctx = TargetCtx {
        env,
        default_timeout: LITELLM_DEFAULT_TIMEOUT,
        default_stream_timeout: LITELLM_DEFAULT_TIMEOUT,
        metrics: None,
        drop_params: false,
        vertex_tokens: &vertex_tokens,
        client: &client,
    };
    deployment(spec, &ctx).map(drop)
}

/// `secs` as a duration: `fallback` when it is not a number, and never more than the longest
/// time a setting may name (`config::settings::MAX_SECONDS`).
fn seconds(secs: f64, fallback: f64) -> Duration {
    let secs = if secs.is_nan() { fallback } else { secs };
    Duration::from_secs_f64(secs.clamp(0.0, crate::config::MAX_SECONDS))
}

/// What building a deployment's target reads besides its spec.
pub(crate) struct TargetCtx<'a> {
    pub env: &'a Env,
    pub default_timeout: f64,
    pub default_stream_timeout: f64,
    pub metrics: Option<&'a Arc<Metrics>>,
    pub drop_params: bool,
    /// One token cache per service-account key, shared by every deployment that uses it.
    pub vertex_tokens: &'a std::cell::RefCell<std::collections::HashMap<String, Arc<VertexToken>>>,
    pub client: &'a Client,
}

pub(crate) fn build_target(spec: &DeploymentSpec, ctx: &TargetCtx<'_>) -> Result<Target, String> {
    let provider = spec.model.provider;
    let lookup = |v: &str| ctx.env.get(v);
    let base = sluice_providers::reported_base(&spec.model, spec.api_base.as_deref(), &lookup);
    let api_base_header = base.as_deref().and_then(|b| HeaderValue::from_str(b).ok());
    let id_header = HeaderValue::from_str(&spec.id).map_err(|_| {
        format!("model_list[{}].model_info.id: must be printable ASCII to be sent as a header", spec.index)
    })?;
    let wildcard = spec.is_wildcard().then(|| crate::wildcard::Wildcard::new(spec, ctx)).flatten();
    let kind = if let Some(why) = &spec.unusable {
        TargetKind::Misconfigured(why.clone())
    } else if let Some(w) = wildcard {
        TargetKind::Wildcard(Box::new(w))
    } else if let Some(text) = &spec.mock_response {
        TargetKind::Mock(text.clone())
    } else {
        let mut tokens = |source: &str| -> Arc<dyn sluice_providers::TokenSource> {
            ctx.vertex_tokens
                .borrow_mut()
                .entry(source.to_string())
                .or_insert_with(|| Arc::new(VertexToken::new(source.to_string(), ctx.env)))
                .clone()
        };
        match sluice_providers::build(&params(spec, ctx), &lookup, &mut tokens) {
            Ok(Built::OpenAi(t)) => TargetKind::OpenAi(Box::new(t)),
            Ok(Built::Translated(t)) => TargetKind::Translated(Box::new(t)),
            Ok(Built::NotImplemented) => TargetKind::Unsupported,
            Ok(Built::Unusable(why)) => TargetKind::Misconfigured(why),
            Err(why) => return Err(why),
        }
    };
    // A wildcard's series are its concrete targets'.
    let metrics = ctx.metrics.filter(|_| !matches!(kind, TargetKind::Wildcard(_))).map(|m| {
        m.deployment(&DeploymentLabels {
            model_group: spec.model_name.clone(),
            litellm_model_name: format!("{}/{}", provider.name, spec.model.upstream),
            model_id: spec.id.clone(),
            api_base: base.clone().unwrap_or_default(),
            api_provider: provider.name.to_string(),
            tpm_limit: spec.tpm,
            rpm_limit: spec.rpm,
        })
    });
    let served = Arc::new(sluice_access::charge::Served::new(
        &spec.model.upstream,
        &spec.model_name,
        &spec.id,
        provider.name,
        base.as_deref().unwrap_or_default(),
        spec.price(),
    ));
    let health = crate::health::Probe::new(&spec.model_name, &spec.model_info, &spec.public_params);
    let region = spec.region_name.as_deref().map(Arc::from);
    let drop_params = spec.drop_params.unwrap_or(ctx.drop_params);
    Ok(Target { id_header, api_base_header, provider, kind, metrics, served, health, region, drop_params })
}

/// What the providers read from a deployment spec, with the gateway's defaults applied.
fn params<'a>(spec: &'a DeploymentSpec, ctx: &TargetCtx<'_>) -> Params<'a> {
    let secret = |s: &'a Option<Secret>| s.as_ref().map(|v| v.expose());
    Params {
        index: spec.index,
        id: &spec.id,
        model_name: &spec.model_name,
        model: &spec.model,
        api_base: spec.api_base.as_deref(),
        api_key: secret(&spec.api_key),
        api_version: spec.api_version.as_deref(),
        organization: spec.organization.as_deref(),
        azure_ad_token: secret(&spec.azure_ad_token),
        vertex_project: spec.vertex_project.as_deref(),
        vertex_location: spec.vertex_location.as_deref(),
        tenant_id: spec.tenant_id.as_deref(),
        project_id: spec.project_id.as_deref(),
        space_id: spec.space_id.as_deref(),
        vertex_credentials: secret(&spec.vertex_credentials),
        aws_region_name: spec.aws_region_name.as_deref(),
        aws_access_key_id: secret(&spec.aws_access_key_id),
        aws_secret_access_key: secret(&spec.aws_secret_access_key),
        aws_session_token: secret(&spec.aws_session_token),
        aws_role_name: spec.aws_role_name.as_deref(),
        aws_session_name: spec.aws_session_name.as_deref(),
        aws_profile_name: spec.aws_profile_name.as_deref(),
        aws_web_identity_token: secret(&spec.aws_web_identity_token),
        aws_sts_endpoint: spec.aws_sts_endpoint.as_deref(),
        drop_params: spec.drop_params.unwrap_or(ctx.drop_params),
        timeout: seconds(spec.timeout.unwrap_or(ctx.default_timeout), LITELLM_DEFAULT_TIMEOUT),
        stream_timeout: seconds(
            spec.stream_timeout.or(spec.timeout).unwrap_or(ctx.default_stream_timeout),
            LITELLM_DEFAULT_TIMEOUT,
        ),
    }
}
