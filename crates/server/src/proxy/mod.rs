//! Carrying one OpenAI-format request to its upstream and the answer back.

pub use sluice_http::answer;
mod attempt;
pub mod body;
/// Writes one `name: value\r\n` header line: request heads, answer heads and head lines alike.
pub(crate) use sluice_http::push_field;
pub mod headers;
pub mod messages;
pub mod mock;
pub(crate) mod outlive;
pub use sluice_http::pool;
pub mod relay;
mod translate;
pub mod upstream;

use crate::app::App;
use crate::errors::error_response;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use headers::CallMeta;
use http_body_util::BodyExt;
use sluice_router::{Ctx, ExecError};
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::{splice, ApiError};
use std::sync::Arc;
use std::time::Instant;

/// Serves one OpenAI-format call on a connection hyper serves; `received` is when its head
/// arrived (the body's timeout and the reported durations count from then). A client that hangs
/// up does not cancel the call ([`outlive`]).
pub(crate) async fn handle(
    app: Arc<App>,
    endpoint: Endpoint,
    path_model: Option<String>,
    req: Request,
    received: Instant,
) -> Response {
    let (parts, body) = req.into_parts();
    outlive::Outlive::new(serve(app, endpoint, path_model, parts, ClientBody::Stream(body), received, false)).await.0
}

/// Serves one OpenAI-format call for `listen::direct`, which writes the answer's head itself:
/// the answer's forwarded and `x-litellm-*` headers come back as [`headers::HeadLines`]. A client
/// that hangs up does not cancel the call ([`outlive`]).
pub(crate) async fn handle_direct(
    app: Arc<App>,
    endpoint: Endpoint,
    parts: http::request::Parts,
    body: ClientBody,
    received: Instant,
) -> (Response, Option<headers::HeadLines>) {
    outlive::Outlive::new(serve(app, endpoint, None, parts, body, received, true)).await
}

/// A request's body as the handler gets it.
pub(crate) enum ClientBody {
    /// All of it, read already (`listen::direct` reads a body before calling the handler): no
    /// body stream to box and collect, and no timer to arm for it.
    Whole(Bytes),
    /// Still to be read, within the size and time limits.
    Stream(axum::body::Body),
}

async fn serve(
    app: Arc<App>,
    endpoint: Endpoint,
    path_model: Option<String>,
    parts: http::request::Parts,
    body: ClientBody,
    received: Instant,
    head_lines: bool,
) -> (Response, Option<headers::HeadLines>) {
    let mut meta = CallMeta::new(&parts.headers, received);
    meta.head_lines = head_lines;
    let resp = match proxy(&app, endpoint, path_model, &parts, body, &mut meta).await {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = error_response(&e);
            meta.apply(resp.headers_mut());
            resp
        }
    };
    if !meta.recorded {
        // Refused before the body was read (auth, size, syntax): no model or user to label with.
        let ua = parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        record(&app, &meta, endpoint, "", resp.status().as_u16(), "", ua);
    }
    if app.access_log {
        crate::access_log::proxied(&parts.method, parts.uri.path(), resp.status().as_u16(), &meta);
    }
    (resp, meta.lines.take())
}

/// One finished request in the Prometheus metrics.
fn record(app: &App, meta: &CallMeta, endpoint: Endpoint, model: &str, status: u16, end_user: &str, user_agent: &str) {
    if let Some(m) = &app.metrics {
        m.request_finished(&sluice_metrics::RequestRecord {
            requested_model: model,
            route: endpoint.route(),
            status,
            exception_class: None,
            total: meta.started.elapsed(),
            upstream: meta.upstream,
            deployment: meta.deployment.as_ref(),
            end_user,
            user_agent,
            caller: meta.caller(),
            // Added by the bill itself (`Charge::settle`), which also sees streams' cost.
            spend: 0.0,
        });
    }
}

async fn proxy(
    app: &App,
    endpoint: Endpoint,
    path_model: Option<String>,
    parts: &http::request::Parts,
    body: ClientBody,
    meta: &mut CallMeta,
) -> Result<Response, ApiError> {
    let identity = match app.access.identify(&parts.headers).await {
        Ok(identity) => identity,
        Err(e) => {
            return Err(match body {
                ClientBody::Stream(body) => body::drain_small(&parts.headers, body, e).await,
                ClientBody::Whole(_) => e,
            });
        }
    };
    let body = match body {
        ClientBody::Whole(body) if body.len() > app.max_request_bytes => {
            return Err(body::too_large(app.max_request_bytes, Some(body.len() as u64)))
        }
        ClientBody::Whole(body) => body,
        ClientBody::Stream(body) => {
            body::read_client_body(&parts.headers, body, app.max_request_bytes, app.client_body_timeout, meta.started)
                .await?
        }
    };
    proxy_body(app, &identity, endpoint, path_model, &parts.headers, body, None, meta).await
}

/// The request path after authentication and reading the body: shared by the OpenAI routes and
/// the Anthropic front door (which hands in a translated body, and its original for Anthropic
/// deployments to receive untouched).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn proxy_body(
    app: &App,
    identity: &crate::access::Identity,
    endpoint: Endpoint,
    path_model: Option<String>,
    headers: &http::HeaderMap,
    body: Bytes,
    native_anthropic: Option<&Bytes>,
    meta: &mut CallMeta,
) -> Result<Response, ApiError> {
    let view = sniff::request(&body, endpoint)?;

    // Like LiteLLM, a model named in the path wins over the body's.
    let model: String = match (&path_model, &view.model) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m.to_string(),
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "Missing required field `model`. Set it to one of: {}.",
                app.router.public_names().join(", ")
            ))
            .param("model"))
        }
    };
    // LiteLLM checks this for virtual keys only: the master key and an open proxy skip it.
    if app.enforce_user_param && view.user.is_none() && matches!(identity, crate::access::Identity::Key(_)) {
        return Err(crate::gate::user_param_missing());
    }
    let admission =
        app.access.admit_estimated(identity, &model, view.user.as_deref(), cost_estimate(app, &model, &view))?;
    // The spend-log row's identity is always sluice's own: a client's `x-litellm-call-id` goes
    // back in the response header and into the row beside its id, so repeating one cannot make
    // rows collide and vanish.
    let call_id = String::from_utf8_lossy(meta.call_id.as_bytes()).into_owned();
    let ids = match meta.client_call_id {
        false => crate::access::charge::LogIds { request_id: call_id, client_call_id: None },
        true => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let request_id = headers::new_call_id(&mut buf).to_string();
            crate::access::charge::LogIds { request_id, client_call_id: Some(call_id) }
        }
    };
    // Copied only when there are metrics to label.
    let labels = app.metrics.as_ref().map(|_| crate::access::charge::MetricLabels {
        route: endpoint.route(),
        user_agent: headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
    });
    meta.charge = Some(crate::access::charge::Charge::new(
        app.access.clone(),
        admission,
        &model,
        ids,
        endpoint.call_type(),
        view.user.as_deref(),
        labels,
    ));
    let ctx = Ctx { input_tokens: app.needs_input_tokens.then(|| estimate_tokens(&view)) };
    let client_model_json = splice::json_string(&model);
    let mut call = attempt::UpstreamCall {
        app,
        endpoint,
        body: &body,
        view: &view,
        client_model: &model,
        client_model_json,
        native_anthropic,
        meta,
    };
    let user_agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let out = app.router.execute(&model, &ctx, &mut call).await;
    if out.fallback_depth > 0 {
        if let (Some(m), Ok(_)) = (&app.metrics, &out.result) {
            m.fallback(&model, out.served_group.as_deref().unwrap_or(""), call.meta.caller(), true, 0, "");
        }
    }
    // Into the head lines when the answer has them, else into its header map.
    let retry_headers = |meta: &mut CallMeta, h: &mut http::HeaderMap| {
        let mut put = |name, n| match meta.lines.as_mut() {
            Some(lines) => lines.push_header(&name, &headers::count(n)),
            None => {
                h.insert(name, headers::count(n));
            }
        };
        put(headers::ATTEMPTED_RETRIES, out.attempted_retries);
        put(headers::MAX_RETRIES, out.max_retries);
        if out.fallback_depth > 0 {
            put(headers::ATTEMPTED_FALLBACKS, out.fallback_depth);
        }
    };
    let end_user = view.user.as_deref().unwrap_or("");
    let result = match out.result {
        Ok(mut resp) => {
            retry_headers(call.meta, resp.headers_mut());
            Ok(resp)
        }
        Err(ExecError::UnknownModel) => Err(unknown_model(app, endpoint, &model)),
        Err(ExecError::NoDeployment(n)) => {
            Err(ApiError::new(429, n.message()).header("retry-after", n.retry_after_secs.to_string()))
        }
        Err(ExecError::Upstream(e)) => {
            let mut resp = error_response(&e.api);
            call.meta.finish(e.upstream_headers.as_ref(), &mut resp);
            retry_headers(call.meta, resp.headers_mut());
            Ok(resp)
        }
    };
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status,
    };
    record(app, call.meta, endpoint, &model, status, end_user, user_agent);
    call.meta.recorded = true;
    result
}

/// What the request may cost on its model group, held against its budgets while it is in flight.
fn cost_estimate(app: &App, model: &str, view: &sniff::RequestView<'_>) -> f64 {
    let Some(group) = app.router.resolve(model) else { return 0.0 };
    let served = group.deployments.iter().map(|d| &*d.target.served);
    crate::access::reserve::estimate(estimate_tokens(view), view.max_tokens, served)
}

/// A cheap prompt-size estimate for quota and context-window checks: about four bytes per token.
fn estimate_tokens(view: &sniff::RequestView<'_>) -> u64 {
    let raw = view.messages.or(view.prompt).map(str::len).unwrap_or(0);
    (raw as u64).div_ceil(4)
}

fn unknown_model(app: &App, endpoint: Endpoint, model: &str) -> ApiError {
    let names = app.router.public_names();
    let available = if names.is_empty() {
        "No models are configured: add entries to model_list in the config.".to_string()
    } else {
        format!("Available models: {}.", names.join(", "))
    };
    ApiError::new(
        400,
        format!(
            "{{'error': '{}: Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key. {available}'}}",
            endpoint.route()
        ),
    )
}

/// Adds `"model": <upstream>` to a body that named its model only in the path.
pub(crate) fn insert_model(body: &Bytes, upstream_model: &Bytes) -> [Bytes; 3] {
    let open = body.iter().position(|b| *b == b'{').map(|i| i + 1).unwrap_or(0);
    let rest = body.slice(open..);
    let needs_comma = rest.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'}');
    let mut field = Vec::with_capacity(upstream_model.len() + 10);
    field.extend_from_slice(b"\"model\":");
    field.extend_from_slice(upstream_model);
    if needs_comma {
        field.push(b',');
    }
    [body.slice(..open), Bytes::from(field), rest]
}

pub(crate) enum ReadError {
    Timeout,
    Broken,
}

/// Reads an upstream's whole answer body by `deadline` (the request's timeout counted from when
/// it was sent).
pub(crate) async fn read_upstream(
    mut body: pool::UpstreamBody,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, ReadError> {
    // Usually all here with the head: no collecting, and no timer to arm.
    if let Some(whole) = body.take_whole(limit) {
        return Ok(whole);
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout_at(deadline.into(), limited.collect()).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Err(_)) => Err(ReadError::Broken),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_model_when_only_the_path_names_it() {
        let join = |p: [Bytes; 3]| p.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>();
        let m = splice::json_string("up");
        let out = join(insert_model(&Bytes::from_static(br#"{"messages":[]}"#), &m));
        assert_eq!(out, br#"{"model":"up","messages":[]}"#);
        let out = join(insert_model(&Bytes::from_static(b"{ }"), &m));
        assert_eq!(out, br#"{"model":"up" }"#);
    }
}
