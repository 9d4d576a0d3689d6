//! A request's own controls ([`sluice_wire::controls`]) turned into what the pipeline does: the
//! router's [`Plan`] (retries, fallbacks checked against the key's models), the per-attempt
//! timeout, the bodies a `{model, messages}` fallback sends, and the testing switches that make
//! an attempt fail or answer without its upstream.
//!
//! Reached only by a request that carries a control field or `x-litellm-timeout`.

use super::attempt::CallError;
use super::upstream;
use crate::app::App;
use bytes::Bytes;
use sluice_providers::errors::upstream_message;
use sluice_providers::{ExceptionClass, Provider};
use sluice_router::{ErrorKind, Failed, Failure, Plan};
use sluice_wire::controls::{Controls, MockResponse};
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::ApiError;
use std::time::Duration;

/// LiteLLM's default timeout for `mock_timeout` when neither the request nor the header names
/// one (its `timeout` default): the attempt waits this long before failing.
const MOCK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

/// The router's plan for a request that carries controls: its fallbacks must each name a model
/// the gateway serves and the caller may call, or the request is refused before any attempt
/// (LiteLLM's 401 for a model the key may not use, its 400 for an unknown one).
pub(crate) fn plan(
    app: &App,
    identity: &sluice_access::Identity,
    endpoint: Endpoint,
    model: &str,
    controls: &Controls,
) -> Result<Plan, ApiError> {
    let fallbacks = match controls.fallbacks_for(model) {
        None => None,
        Some(list) => {
            let router = app.router.load();
            let mut names = Vec::with_capacity(list.len());
            for (name, _) in list {
                if router.resolve(&name).is_none() {
                    return Err(ApiError::bad_request(format!(
                        "fallbacks: no model named `{name}`. Call `/v1/models` ({}) to see the models you can use.",
                        endpoint.route()
                    ))
                    .param("fallbacks"));
                }
                app.access.check_model(identity, &name)?;
                names.push(name);
            }
            Some(names)
        }
    };
    Ok(Plan { num_retries: controls.num_retries, fallbacks, no_fallbacks: controls.disable_fallbacks })
}

/// The bodies the `{model, messages}` fallbacks send: `body` with its `messages` replaced, one
/// per model group that has such an entry (the first entry for a group wins).
pub(crate) fn fallback_bodies(
    app: &App,
    model: &str,
    body: &Bytes,
    view: &sniff::RequestView<'_>,
    controls: &Controls,
) -> Vec<(String, Bytes)> {
    let (Some(list), Some(messages)) = (controls.fallbacks_for(model), view.messages) else { return Vec::new() };
    let router = app.router.load();
    let start = messages.as_ptr() as usize - body.as_ptr() as usize;
    let span = start..start + messages.len();
    let mut out: Vec<(String, Bytes)> = Vec::new();
    for (name, replacement) in list {
        let (Some(replacement), Some(group)) = (replacement, router.resolve(&name)) else { continue };
        if out.iter().any(|(g, _)| *g == group.name) {
            continue;
        }
        let parts = sluice_wire::splice::replace(body, span.clone(), Bytes::from(replacement));
        out.push((group.name.clone(), Bytes::from(parts.concat())));
    }
    out
}

/// What a testing switch makes of this attempt instead of calling the upstream, if anything.
/// `depth` 0 is the requested model; the `mock_testing_*` switches fail only there, so that a
/// fallback answers.
pub(crate) enum Simulated {
    /// Answer with this text as the model's.
    Answer(String),
    /// Wait this long (the attempt's timeout), then fail as a timeout.
    TimeOut(Duration),
    Fail(Failed<CallError>),
}

pub(crate) fn simulate(
    controls: &Controls,
    timeout: Option<Duration>,
    provider: &Provider,
    group: &str,
    depth: u32,
) -> Option<Simulated> {
    if depth == 0 && controls.mock_testing_fallbacks {
        let detail = format!("This is a mock exception for model={group}, to trigger a fallback");
        return Some(Simulated::Fail(failed(
            ExceptionClass::InternalServer,
            ErrorKind::InternalServer,
            provider,
            &detail,
        )));
    }
    if depth == 0 && controls.mock_testing_rate_limit_error {
        let detail = format!("This is a mock exception for model={group}, to trigger a rate limit error");
        return Some(Simulated::Fail(failed(ExceptionClass::RateLimit, ErrorKind::RateLimit, provider, &detail)));
    }
    if controls.mock_timeout {
        return Some(Simulated::TimeOut(timeout.unwrap_or(MOCK_TIMEOUT_DEFAULT)));
    }
    let (class, kind, detail) = match controls.mock_response.as_ref()? {
        MockResponse::Text(text) => return Some(Simulated::Answer(text.clone())),
        MockResponse::RateLimit => (ExceptionClass::RateLimit, ErrorKind::RateLimit, "This is a mock rate limit error"),
        MockResponse::InternalServer => {
            (ExceptionClass::InternalServer, ErrorKind::InternalServer, "This is a mock internal server error")
        }
        MockResponse::ContextWindowExceeded => (
            ExceptionClass::ContextWindowExceeded,
            ErrorKind::ContextWindowExceeded,
            "This is a mock context window exceeded error",
        ),
        MockResponse::ContentPolicy(text) => {
            let f = failed(ExceptionClass::ContentPolicyViolation, ErrorKind::ContentPolicyViolation, provider, text);
            return Some(Simulated::Fail(f));
        }
    };
    Some(Simulated::Fail(failed(class, kind, provider, detail)))
}

/// A made-up failure of `class`, shaped as the upstream's would be, that never cools the
/// deployment ([`Failure::simulated`]).
fn failed(class: ExceptionClass, kind: ErrorKind, provider: &Provider, detail: &str) -> Failed<CallError> {
    let status = match kind {
        ErrorKind::RateLimit => 429,
        ErrorKind::ContextWindowExceeded | ErrorKind::ContentPolicyViolation => 400,
        _ => 500,
    };
    let mut api = ApiError::new(status, upstream_message(class, provider, detail));
    if let Some(t) = class.error_type() {
        api = api.kind(t);
    }
    let mut failure = Failure::status(status, None).simulated();
    failure.kind = kind;
    Failed { failure, error: CallError { api, upstream_headers: None } }
}

/// The failure after a `mock_timeout` wait, as a real timeout reads.
pub(crate) fn timed_out(provider: &Provider, after: Duration) -> Failed<CallError> {
    Failed {
        failure: Failure::timeout().simulated(),
        error: CallError { api: upstream::timeout_error(provider, after), upstream_headers: None },
    }
}
