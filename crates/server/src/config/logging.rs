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

/// The logging callbacks sluice runs, by LiteLLM's names (`prometheus` aside: it is the metrics).
pub const SINKS: &[&str] = &[GENERIC_API];

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
