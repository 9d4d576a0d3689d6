//! The logging callbacks sluice runs (beyond `prometheus`), and where their collectors are: read
//! from the environment by LiteLLM's variable names, `environment_variables` included. A callback
//! the config names but whose collector is not set stops the start: records the user asked for
//! would otherwise go nowhere, unseen.

use super::deployment::Secret;
use super::error::{err, ConfigError};
use super::settings::NamedSink;
use super::Env;

/// LiteLLM's webhook callback.
pub const GENERIC_API: &str = "generic_api";

/// LiteLLM's OpenTelemetry callback.
pub const OTEL: &str = "otel";
/// Langfuse's OpenTelemetry endpoint.
pub const LANGFUSE_OTEL: &str = "langfuse_otel";

/// The logging callbacks sluice runs, by LiteLLM's names (`prometheus` aside: it is the metrics).
pub const SINKS: &[&str] = &[GENERIC_API, OTEL, LANGFUSE_OTEL];

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
