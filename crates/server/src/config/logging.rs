//! The logging callbacks sluice runs (beyond `prometheus`), and where their collectors are: read
//! from the environment by LiteLLM's variable names, `environment_variables` included. A callback
//! the config names but whose collector is not set stops the start: records the user asked for
//! would otherwise go nowhere, unseen. `s3` reads `litellm_settings.s3_callback_params` (with the
//! AWS variables as fallback), `datadog` LiteLLM's `DD_*` variables.

use super::deployment::Secret;
use super::error::{err, ConfigError};
use super::settings::NamedSink;
use super::Env;

/// LiteLLM's webhook callback.
pub const GENERIC_API: &str = "generic_api";

/// LiteLLM's classic Langfuse callback (the ingestion API; `langfuse_otel` is another).
pub const LANGFUSE: &str = sluice_export::LANGFUSE;
/// LiteLLM's OpenTelemetry callback.
pub const OTEL: &str = "otel";
/// Langfuse's OpenTelemetry endpoint.
pub const LANGFUSE_OTEL: &str = "langfuse_otel";

/// The logging callbacks sluice runs, by LiteLLM's names (`prometheus` aside: it is the metrics).
pub const SINKS: &[&str] = &[GENERIC_API, LANGFUSE, S3, DATADOG, OTEL, LANGFUSE_OTEL];

/// An OpenTelemetry exporter (`otel` or `langfuse_otel`) and the outcomes it takes.
#[derive(Debug, Clone)]
pub struct OtelSettings {
    pub events: sluice_export::Events,
    pub settings: sluice_export::otel::Settings,
}

/// `otel`'s settings when a callback list names it: LiteLLM's variables and the standard ones
/// (`sluice_export::otel::Settings::from_env`).
pub(crate) fn otel(named: Option<&NamedSink>, env: &Env) -> Result<Option<OtelSettings>, ConfigError> {
    let Some(NamedSink { path, events, .. }) = named else { return Ok(None) };
    let settings = sluice_export::otel::Settings::from_env(|name| env.get(name))
        .map_err(|e| err(path, format!("callback \"otel\": {e}")))?;
    Ok(Some(OtelSettings { events: *events, settings }))
}

/// `langfuse_otel`'s settings when a callback list names it: Langfuse's OTLP endpoint and keys.
pub(crate) fn langfuse_otel(named: Option<&NamedSink>, env: &Env) -> Result<Option<OtelSettings>, ConfigError> {
    let Some(NamedSink { path, events, .. }) = named else { return Ok(None) };
    let settings = sluice_export::otel::Settings::langfuse(|name| env.get(name)).map_err(|e| err(path, e))?;
    Ok(Some(OtelSettings { events: *events, settings }))
}

/// `generic_api`'s collector (`GENERIC_LOGGER_ENDPOINT`, `GENERIC_LOGGER_HEADERS`) and the
/// outcomes it takes.
#[derive(Debug, Clone)]
pub struct GenericApiSettings {
    pub events: sluice_export::Events,
    pub endpoint: String,
    /// `k1=v1,k2=v2`; the values are credentials.
    pub headers: Option<Secret>,
}

/// `generic_api`'s settings when a callback list names it (`named`: the first entry's path and
/// the outcomes it takes).
pub(crate) fn generic_api(named: Option<&NamedSink>, env: &Env) -> Result<Option<GenericApiSettings>, ConfigError> {
    let Some(NamedSink { path, events, .. }) = named else { return Ok(None) };
    let endpoint = env.get("GENERIC_LOGGER_ENDPOINT").filter(|e| !e.trim().is_empty()).ok_or_else(|| {
        err(
            path,
            "callback \"generic_api\" has no collector: set GENERIC_LOGGER_ENDPOINT (in the environment or under environment_variables) to the URL its records are POSTed to, and GENERIC_LOGGER_HEADERS (k1=v1,k2=v2) for any headers it needs",
        )
    })?;
    let headers = env.get("GENERIC_LOGGER_HEADERS").filter(|h| !h.trim().is_empty());
    sluice_export::generic_api::check(&endpoint, headers.as_deref()).map_err(|e| err(path, e))?;
    Ok(Some(GenericApiSettings { events: *events, endpoint, headers: headers.map(Secret::new) }))
}

/// A webhook named in `callback_settings` (`callback_type: generic_api`) and listed by that name
/// in a callback list: LiteLLM's named `generic_api` callbacks, each its own sink.
#[derive(Debug, Clone)]
pub struct NamedGenericApi {
    /// The name the lists use (`litellm_settings.callbacks: ["my_webhook"]`).
    pub name: String,
    pub events: sluice_export::Events,
    pub endpoint: String,
    /// `headers`, `os.environ/` resolved; the values are credentials.
    pub headers: Vec<(String, Secret)>,
    pub format: sluice_export::generic_api::LogFormat,
}

const CALLBACK_SETTINGS: &str = "callback_settings";

/// The keys of one `callback_settings` entry sluice reads.
const ENTRY_KEYS: &[&str] = &["callback_type", "endpoint", "headers", "event_types", "log_format"];

/// The names `callback_settings` defines as `generic_api` webhooks (for the callback lists to
/// recognise); an entry of another type is listed as ignored.
pub(crate) fn named_webhooks(root: &serde_yaml_ng::Mapping, ignored: &mut Vec<String>) -> Vec<String> {
    let Some(serde_yaml_ng::Value::Mapping(entries)) = root.get(CALLBACK_SETTINGS) else { return Vec::new() };
    let mut names = Vec::new();
    for (name, entry) in entries {
        let name = super::yaml::key_str(name);
        match entry.get("callback_type").and_then(|t| t.as_str()) {
            Some(GENERIC_API) => names.push(name),
            Some(other) => ignored.push(format!(
                "{CALLBACK_SETTINGS}.{name}.callback_type: \"{other}\" is not implemented in sluice yet (only generic_api)"
            )),
            None => ignored.push(format!("{CALLBACK_SETTINGS}.{name}: has no callback_type (generic_api is the one sluice runs)")),
        }
    }
    names
}

/// Each named webhook a callback list names (`named`), read from its `callback_settings` entry:
/// `endpoint` (an http(s) URL; without one the start stops), `headers` (a mapping, values
/// `os.environ/` resolved, as a whole or after a scheme), `event_types` (`llm_api_success`,
/// `llm_api_failure`; all when absent, and only what the lists give it) and `log_format`
/// (`json_array`, `ndjson`, `single`).
pub(crate) fn named_generic_apis(
    root: &serde_yaml_ng::Mapping,
    named: &[super::settings::NamedCallback],
    env: &Env,
    ignored: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<NamedGenericApi>, ConfigError> {
    use serde_yaml_ng::Value;
    let mut out = Vec::new();
    for callback in named {
        let at = format!("{CALLBACK_SETTINGS}.{}", callback.name);
        let entry = root.get(CALLBACK_SETTINGS).and_then(|e| e.get(callback.name.as_str()));
        let Some(Value::Mapping(entry)) = entry else {
            return Err(err(
                &at,
                "must be a mapping: {callback_type: generic_api, endpoint: https://..., headers: {...}}",
            ));
        };
        for (key, _) in entry {
            let key = super::yaml::key_str(key);
            if !ENTRY_KEYS.contains(&key.as_str()) {
                ignored.push(format!("{at}.{key}: not implemented in sluice yet"));
            }
        }
        let endpoint = entry
            .get("endpoint")
            .and_then(Value::as_str)
            .and_then(|e| env.resolve_str(&format!("{at}.endpoint"), e.trim(), warnings))
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| {
                err(&format!("{at}.endpoint"), format!("callback \"{}\" needs the URL its records are POSTed to, e.g. endpoint: https://logs.example.com/ingest", callback.name))
            })?;
        let mut headers = Vec::new();
        match entry.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                for (name, value) in m {
                    let name = super::yaml::key_str(name);
                    let path = format!("{at}.headers.{name}");
                    let raw = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return Err(err(&path, "must be text")),
                    };
                    if let Some(v) = super::passthrough::header_value(&path, &raw, env, warnings) {
                        headers.push((name, Secret::new(v)));
                    }
                }
            }
            Some(_) => return Err(err(&format!("{at}.headers"), "must be a mapping of header names to values")),
        }
        let mut events = callback.events;
        match entry.get("event_types") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(types)) => {
                let (mut success, mut failure) = (false, false);
                for (i, t) in types.iter().enumerate() {
                    match t.as_str() {
                        Some("llm_api_success") => success = true,
                        Some("llm_api_failure") => failure = true,
                        _ => {
                            return Err(err(
                                &format!("{at}.event_types[{i}]"),
                                "unknown event type; use llm_api_success or llm_api_failure",
                            ))
                        }
                    }
                }
                events.success &= success;
                events.failure &= failure;
            }
            Some(_) => return Err(err(&format!("{at}.event_types"), "must be a list, e.g. [llm_api_success]")),
        }
        let format = match entry.get("log_format").and_then(Value::as_str) {
            None => sluice_export::generic_api::LogFormat::JsonArray,
            Some(f) => sluice_export::generic_api::LogFormat::parse(f)
                .ok_or_else(|| err(&format!("{at}.log_format"), "use json_array, ndjson or single"))?,
        };
        let shown: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
        sluice_export::generic_api::check_named(&at, &endpoint, &shown).map_err(|e| err(&at, e))?;
        out.push(NamedGenericApi { name: callback.name.clone(), events, endpoint, headers, format });
    }
    Ok(out)
}

/// LiteLLM's S3 logger: one object per record.
pub const S3: &str = "s3";

/// LiteLLM's Datadog logger: the logs intake.
pub const DATADOG: &str = "datadog";

/// How many records one delivery takes, at most, when a setting asks for more (S3's
/// `s3_batch_size`, `DD_BATCH_SIZE`): Datadog's limit per request.
const MAX_BATCH: u64 = 1_000;

/// The longest a record may wait for its batch (`s3_flush_interval`), in seconds.
const MAX_FLUSH_SECONDS: f64 = 300.0;

/// `s3`'s bucket and credentials (`litellm_settings.s3_callback_params`), the outcomes it takes
/// and how its queue batches.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub events: sluice_export::Events,
    /// `Debug` shows no secret.
    pub settings: sluice_export::s3::S3Settings,
    pub batching: sluice_export::Batching,
}

/// `datadog`'s intake and labels (from the environment, as LiteLLM reads them), the outcomes it
/// takes and how its queue batches.
#[derive(Debug, Clone)]
pub struct DatadogSettings {
    pub events: sluice_export::Events,
    /// `Debug` shows no key.
    pub settings: sluice_export::datadog::DatadogSettings,
    pub batching: sluice_export::Batching,
}

const S3_PARAMS: &str = "litellm_settings.s3_callback_params";

/// `s3_callback_params` keys that pick encryption sluice cannot provide: the records would go
/// unencrypted against the user's intent, so they stop the start.
const S3_REFUSED: &[(&str, &str)] = &[
    ("s3_server_side_encryption", "per-object encryption settings are not sent by sluice; remove it and set the bucket's default encryption instead"),
    ("s3_sse_kms_key_id", "per-object encryption settings are not sent by sluice; remove it and set the bucket's default encryption (with this KMS key) instead"),
];

/// `s3_callback_params` keys read and honoured, or with nothing to do in sluice.
const S3_KNOWN: &[&str] = &[
    "s3_bucket_name",
    "s3_region_name",
    "s3_endpoint_url",
    "s3_path",
    "s3_aws_access_key_id",
    "s3_aws_secret_access_key",
    "s3_aws_session_token",
    // The AWS credential chain's settings (`sluice_credentials::aws::Settings`).
    "s3_aws_role_name",
    "s3_aws_session_name",
    "s3_aws_profile_name",
    "s3_aws_web_identity_token",
    "s3_aws_sts_endpoint",
    "s3_use_team_prefix",
    "s3_use_key_prefix",
    "s3_use_virtual_hosted_style",
    "s3_flush_interval",
    "s3_batch_size",
    // The records carry no messages or answers: nothing to strip or leave out.
    "s3_strip_base64_files",
    "s3_log_prompts_only",
];

/// `s3`'s settings when a callback list names it: `s3_callback_params` from the
/// `litellm_settings` section (`litellm`), `os.environ/` resolved, with the AWS variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION_NAME`,
/// `AWS_REGION`) where LiteLLM falls back to them.
pub(crate) fn s3(
    named: Option<&NamedSink>,
    litellm: Option<&serde_yaml_ng::Value>,
    env: &Env,
    ignored: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<S3Settings>, ConfigError> {
    use serde_yaml_ng::Value;
    let params = match litellm.and_then(|l| l.get("s3_callback_params")) {
        None | Some(Value::Null) => serde_yaml_ng::Mapping::new(),
        Some(Value::Mapping(m)) => m.clone(),
        Some(_) => {
            return Err(err(S3_PARAMS, "expected a mapping, e.g. {s3_bucket_name: my-logs, s3_region_name: us-east-1}"))
        }
    };
    let Some(NamedSink { path, events, .. }) = named else {
        if !params.is_empty() {
            ignored.push(format!("{S3_PARAMS}: not used: no callback list names \"s3\""));
        }
        return Ok(None);
    };
    for (k, v) in &params {
        let key = super::yaml::key_str(k);
        if v.is_null() {
            continue;
        }
        if let Some((_, fix)) = S3_REFUSED.iter().find(|(name, _)| *name == key) {
            return Err(err(&format!("{S3_PARAMS}.{key}"), *fix));
        }
        if !S3_KNOWN.contains(&key.as_str()) {
            ignored.push(format!("{S3_PARAMS}.{key}: not implemented in sluice yet"));
        }
    }
    let text = |key: &str, warnings: &mut Vec<String>| -> Result<Option<String>, ConfigError> {
        let at = format!("{S3_PARAMS}.{key}");
        let Some(v) = params.get(key) else { return Ok(None) };
        let Some(s) = super::value::string(v).map_err(|m| err(&at, m))? else { return Ok(None) };
        Ok(env.resolve_str(&at, s.trim(), warnings).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
    };
    let flag = |key: &str| -> Result<bool, ConfigError> {
        match params.get(key) {
            None => Ok(false),
            Some(v) => {
                Ok(super::value::boolean(v).map_err(|m| err(&format!("{S3_PARAMS}.{key}"), m))?.unwrap_or(false))
            }
        }
    };
    let bucket = text("s3_bucket_name", warnings)?.ok_or_else(|| {
        err(
            path,
            format!("callback \"s3\" has no bucket: set {S3_PARAMS}.s3_bucket_name to the bucket its records are written to (with s3_region_name, and s3_endpoint_url for an S3-compatible store)"),
        )
    })?;
    let non_empty = |name: &str| env.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let region = match text("s3_region_name", warnings)? {
        Some(r) => r,
        // LiteLLM's order for calls that are not to a model, then its default.
        None => non_empty("AWS_REGION_NAME").or_else(|| non_empty("AWS_REGION")).unwrap_or_else(|| "us-west-2".into()),
    };
    // Keys given here, else the AWS credential chain (the environment's keys, a profile, web
    // identity, ECS, EC2), with LiteLLM's assume-role on top: asked when the first batch is
    // written, so a delivery that finds none is counted as failed and logged with what to set.
    let keys = match (text("s3_aws_access_key_id", warnings)?, text("s3_aws_secret_access_key", warnings)?) {
        (Some(access_key_id), Some(secret_access_key)) => Some(sluice_export::s3::Credentials {
            access_key_id,
            secret_access_key,
            session_token: text("s3_aws_session_token", warnings)?,
        }),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(err(
                S3_PARAMS,
                "s3_aws_access_key_id and s3_aws_secret_access_key go together: set both (or neither, to use the AWS credential chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, ECS, EC2)",
            ))
        }
    };
    let role_arn = text("s3_aws_role_name", warnings)?;
    let web_identity_token = text("s3_aws_web_identity_token", warnings)?;
    if web_identity_token.is_some() && role_arn.is_none() {
        return Err(err(
            &format!("{S3_PARAMS}.s3_aws_web_identity_token"),
            "set s3_aws_role_name too: the role to assume with the token",
        ));
    }
    let chain = sluice_credentials::aws::Settings {
        keys,
        profile: text("s3_aws_profile_name", warnings)?,
        role_arn,
        session_name: text("s3_aws_session_name", warnings)?,
        web_identity_token,
        sts_endpoint: text("s3_aws_sts_endpoint", warnings)?,
        region: Some(region.clone()),
    };
    let credentials = sluice_credentials::aws::shared(chain, sluice_credentials::Env::capture(&|n| non_empty(n)));
    let settings = sluice_export::s3::S3Settings {
        bucket,
        region,
        endpoint_url: text("s3_endpoint_url", warnings)?,
        path: text("s3_path", warnings)?,
        use_team_prefix: flag("s3_use_team_prefix")?,
        use_key_prefix: flag("s3_use_key_prefix")?,
        virtual_hosted_style: flag("s3_use_virtual_hosted_style")?,
        credentials,
    };
    sluice_export::s3::check(&settings).map_err(|e| err(S3_PARAMS, e))?;
    let mut batching = sluice_export::Batching::default();
    if let Some(n) = text("s3_batch_size", warnings)? {
        batching.max_records = bounded_count(&format!("{S3_PARAMS}.s3_batch_size"), &n)?;
    }
    if let Some(s) = text("s3_flush_interval", warnings)? {
        let at = format!("{S3_PARAMS}.s3_flush_interval");
        let secs: f64 = s.parse().map_err(|_| err(&at, format!("expected seconds, e.g. 10, got \"{s}\"")))?;
        if !(secs.is_finite() && secs > 0.0 && secs <= MAX_FLUSH_SECONDS) {
            return Err(err(&at, format!("expected seconds above 0 and at most {MAX_FLUSH_SECONDS}, got {s}")));
        }
        batching.max_wait = std::time::Duration::from_secs_f64(secs);
    }
    Ok(Some(S3Settings { events: *events, settings, batching }))
}

/// A batch size from 1 to [`MAX_BATCH`].
fn bounded_count(at: &str, text: &str) -> Result<usize, ConfigError> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_BATCH).contains(&n) => Ok(n as usize),
        _ => Err(err(at, format!("expected a number of records from 1 to {MAX_BATCH}, got \"{text}\""))),
    }
}

/// `datadog`'s settings when a callback list names it, from LiteLLM's variables: `DD_API_KEY`
/// and `DD_SITE` (the intake `https://http-intake.logs.{DD_SITE}/api/v2/logs`), or
/// `LITELLM_DD_AGENT_HOST` (and `LITELLM_DD_AGENT_PORT`, 10518) for an agent; `DD_BASE_URL`
/// replaces the intake's address; `DD_SOURCE`, `DD_SERVICE`, `DD_ENV`, `DD_VERSION`, `HOSTNAME`
/// and `POD_NAME` label the logs; `DD_BATCH_SIZE` bounds a request's records.
pub(crate) fn datadog(named: Option<&NamedSink>, env: &Env) -> Result<Option<DatadogSettings>, ConfigError> {
    let Some(NamedSink { path, events, .. }) = named else { return Ok(None) };
    let var = |name: &str| env.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let api_key = var("DD_API_KEY");
    let base_url = var("DD_BASE_URL").map(|b| format!("{}/api/v2/logs", b.trim_end_matches('/')));
    let intake_url = match var("LITELLM_DD_AGENT_HOST") {
        Some(host) => {
            let port = var("LITELLM_DD_AGENT_PORT").unwrap_or_else(|| "10518".into());
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(err(
                    path,
                    format!("LITELLM_DD_AGENT_PORT: expected a port number from 1 to 65535, got \"{port}\""),
                ));
            }
            base_url.unwrap_or_else(|| format!("http://{host}:{port}/api/v2/logs"))
        }
        None => {
            if api_key.is_none() {
                return Err(err(
                    path,
                    "callback \"datadog\" has no API key: set DD_API_KEY (in the environment or under environment_variables) and DD_SITE (e.g. datadoghq.com, us5.datadoghq.com), or LITELLM_DD_AGENT_HOST to log through a Datadog agent",
                ));
            }
            match (base_url, var("DD_SITE")) {
                (Some(url), _) => url,
                (None, Some(site)) => format!("https://http-intake.logs.{site}/api/v2/logs"),
                (None, None) => {
                    return Err(err(
                        path,
                        "callback \"datadog\" has no site: set DD_SITE to your Datadog site (e.g. datadoghq.com, us5.datadoghq.com, datadoghq.eu)",
                    ))
                }
            }
        }
    };
    let or = |name: &str, default: &str| var(name).unwrap_or_else(|| default.to_string());
    let settings = sluice_export::datadog::DatadogSettings {
        intake_url,
        api_key,
        source: or("DD_SOURCE", "litellm"),
        service: or("DD_SERVICE", "litellm-server"),
        hostname: or("HOSTNAME", ""),
        env: or("DD_ENV", "unknown"),
        version: or("DD_VERSION", "unknown"),
        pod_name: or("POD_NAME", "unknown"),
    };
    sluice_export::datadog::check(&settings).map_err(|e| err(path, e))?;
    let mut batching = sluice_export::Batching::default();
    if let Some(n) = var("DD_BATCH_SIZE") {
        batching.max_records = bounded_count("DD_BATCH_SIZE", &n)?;
    }
    Ok(Some(DatadogSettings { events: *events, settings, batching }))
}

/// `langfuse`'s project and how its records are batched, when a callback list names it.
#[derive(Debug, Clone)]
pub struct LangfuseSettings {
    pub events: sluice_export::Events,
    /// `LANGFUSE_HOST` (LiteLLM's default when unset).
    pub host: Option<String>,
    pub public_key: Secret,
    pub secret_key: Secret,
    /// `LANGFUSE_RELEASE`: every trace's `release`.
    pub release: Option<String>,
    /// `LANGFUSE_FLUSH_INTERVAL` (seconds; LiteLLM's default 1): the longest a record waits
    /// for its batch.
    pub flush_interval: std::time::Duration,
    /// `LANGFUSE_FLUSH_AT` (the Langfuse SDK's; 100 here, sluice's batch size): events per
    /// batch are twice this.
    pub flush_at: usize,
}

/// The longest `LANGFUSE_FLUSH_INTERVAL` taken: records wait this long at most.
pub const MAX_FLUSH_INTERVAL_SECS: u64 = 60;

/// The most records in one Langfuse batch: two events each, and Langfuse takes up to 3.5 MB
/// a batch; a record's events are a few kilobytes at most (error messages are bounded).
pub const MAX_FLUSH_AT: usize = 500;

/// `langfuse`'s settings when a callback list names it, read from the variables LiteLLM's
/// `langfuse.py` (and the Langfuse SDK under it) reads. Settings sluice does not act on are
/// said so in `ignored`.
pub(crate) fn langfuse(
    named: Option<&NamedSink>,
    env: &Env,
    ignored: &mut Vec<String>,
) -> Result<Option<LangfuseSettings>, ConfigError> {
    let Some(NamedSink { path, events, .. }) = named else { return Ok(None) };
    let set = |name: &str| env.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let (Some(public_key), Some(secret_key)) = (set("LANGFUSE_PUBLIC_KEY"), set("LANGFUSE_SECRET_KEY")) else {
        return Err(err(
            path,
            "callback \"langfuse\" has no project: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (in the environment or under environment_variables) to the project's keys, and LANGFUSE_HOST if it is not https://cloud.langfuse.com",
        ));
    };
    let host = set("LANGFUSE_HOST");
    sluice_export::langfuse::Project::new(host.as_deref(), &public_key, &secret_key)
        .map_err(|e| err(path, format!("LANGFUSE_HOST: {e}")))?;
    let flush_interval = match set("LANGFUSE_FLUSH_INTERVAL") {
        None => std::time::Duration::from_secs(1),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s > 0.0 && s <= MAX_FLUSH_INTERVAL_SECS as f64 => std::time::Duration::from_secs_f64(s),
            _ => {
                return Err(err(
                    path,
                    format!("LANGFUSE_FLUSH_INTERVAL is \"{v}\"; set it to the seconds between deliveries, above 0 and at most {MAX_FLUSH_INTERVAL_SECS}"),
                ))
            }
        },
    };
    let flush_at = match set("LANGFUSE_FLUSH_AT") {
        None => sluice_export::Batching::default().max_records,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_FLUSH_AT).contains(&n) => n,
            _ => {
                return Err(err(
                    path,
                    format!("LANGFUSE_FLUSH_AT is \"{v}\"; set it to the records per delivery, 1 to {MAX_FLUSH_AT}"),
                ))
            }
        },
    };
    for (name, why) in [
        ("LANGFUSE_DEBUG", "the Langfuse SDK's debug output; sluice's own log level comes from RUST_LOG"),
        ("LANGFUSE_SAMPLE_RATE", "every call is sent"),
        ("UPSTREAM_LANGFUSE_SECRET_KEY", "LiteLLM's second, upstream Langfuse project is not implemented"),
        ("LANGFUSE_TRACING_ENVIRONMENT", "traces carry no environment"),
    ] {
        if set(name).is_some() {
            ignored.push(format!("environment {name}: not acted on ({why})"));
        }
    }
    Ok(Some(LangfuseSettings {
        events: *events,
        host,
        public_key: Secret::new(public_key),
        secret_key: Secret::new(secret_key),
        release: set("LANGFUSE_RELEASE"),
        flush_interval,
        flush_at,
    }))
}
