//! Carrying one OpenAI-format request to its upstream and the answer back.

pub mod body;
pub mod headers;
pub mod mock;
pub mod relay;
pub mod upstream;

use crate::app::{App, OpenAiTarget, TargetKind};
use crate::errors::error_response;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use body::ChainBody;
use bytes::Bytes;
use headers::CallMeta;
use http::{header, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use relay::{Relay, Step, UsageNeeds};
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::{splice, ApiError};
use std::sync::Arc;
use std::time::Instant;

pub async fn chat(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(app, Endpoint::Chat, None, req).await
}

pub async fn chat_for(State(app): State<Arc<App>>, Path(model): Path<String>, req: Request) -> Response {
    handle(app, Endpoint::Chat, Some(model), req).await
}

pub async fn completions(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(app, Endpoint::Completions, None, req).await
}

pub async fn completions_for(State(app): State<Arc<App>>, Path(model): Path<String>, req: Request) -> Response {
    handle(app, Endpoint::Completions, Some(model), req).await
}

pub async fn embeddings(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(app, Endpoint::Embeddings, None, req).await
}

pub async fn embeddings_for(State(app): State<Arc<App>>, Path(model): Path<String>, req: Request) -> Response {
    handle(app, Endpoint::Embeddings, Some(model), req).await
}

async fn handle(app: Arc<App>, endpoint: Endpoint, path_model: Option<String>, req: Request) -> Response {
    let mut meta = CallMeta::new(req.headers(), Instant::now());
    match proxy(&app, endpoint, path_model, req, &mut meta).await {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = error_response(&e);
            meta.apply(resp.headers_mut());
            resp
        }
    }
}

async fn proxy(
    app: &App,
    endpoint: Endpoint,
    path_model: Option<String>,
    req: Request,
    meta: &mut CallMeta,
) -> Result<Response, ApiError> {
    crate::auth::check(app.master_key.as_ref(), req.headers())?;
    let (parts, body) = req.into_parts();
    let body = body::read_client_body(&parts.headers, body, app.max_request_bytes, app.client_body_timeout).await?;
    let view = sniff::request(&body, endpoint)?;

    // Like LiteLLM, a model named in the path wins over the body's.
    let model: String = match (&path_model, &view.model) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m.to_string(),
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "Missing required field `model`. Set it to one of: {}.",
                app.router.model_names().join(", ")
            ))
            .param("model"))
        }
    };
    let Some(deployment) = app.router.pick(&model) else {
        return Err(unknown_model(app, endpoint, &model));
    };
    let target = &deployment.target;
    meta.model_id = Some(target.id_header.clone());
    meta.api_base = target.api_base_header.clone();

    match &target.kind {
        TargetKind::Unsupported => Err(ApiError::bad_request(format!(
            "provider {} is not implemented yet in sluice (model group \"{model}\", deployment {}). Route this model group to an OpenAI-compatible deployment until support lands.",
            target.provider.name, deployment.id
        ))),
        TargetKind::Misconfigured(why) => Err(ApiError::new(500, why.clone())),
        TargetKind::Mock(text) => {
            let call_id = meta.call_id.to_str().unwrap_or("mock").to_string();
            let (bytes, content_type) = if view.stream {
                (mock::stream(endpoint, &model, text, &call_id, view.include_usage)?, "text/event-stream")
            } else {
                (mock::complete(endpoint, &model, text, &call_id)?, "application/json")
            };
            let mut resp = Response::new(axum::body::Body::from(bytes));
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            meta.apply(resp.headers_mut());
            Ok(resp)
        }
        TargetKind::OpenAi(t) => forward(app, endpoint, &model, &body, &view, t, &target.provider, meta).await,
    }
}

fn unknown_model(app: &App, endpoint: Endpoint, model: &str) -> ApiError {
    let names = app.router.model_names();
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

#[allow(clippy::too_many_arguments)]
async fn forward(
    app: &App,
    endpoint: Endpoint,
    client_model: &str,
    body: &Bytes,
    view: &sniff::RequestView<'_>,
    t: &OpenAiTarget,
    provider: &sluice_providers::Provider,
    meta: &mut CallMeta,
) -> Result<Response, ApiError> {
    let parts = match &view.model_span {
        Some(span) => splice::replace(body, span.clone(), t.upstream_model.clone()),
        None => insert_model(body, &t.upstream_model),
    };
    let mut req = http::Request::new(ChainBody::new(parts));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = t.uri(endpoint).clone();
    let h = req.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::USER_AGENT, HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))));
    if view.stream {
        h.insert(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(auth) = &t.authorization {
        h.insert(header::AUTHORIZATION, auth.clone());
    }
    if let Some(org) = &t.organization {
        h.insert("openai-organization", org.clone());
    }

    let timeout = if view.stream { t.stream_timeout } else { t.timeout };
    let sent = Instant::now();
    let resp = match tokio::time::timeout(timeout, app.client.request(req)).await {
        Err(_) => return Err(upstream::timeout_error(provider, timeout)),
        Ok(Err(e)) => return Err(upstream::transport_error(provider, &e)),
        Ok(Ok(r)) => r,
    };
    let (up, incoming) = resp.into_parts();
    let client_model_json = splice::json_string(client_model);

    if !up.status.is_success() {
        let remaining = timeout.saturating_sub(sent.elapsed());
        let body = read_upstream(incoming, remaining, 1024 * 1024).await.unwrap_or_default();
        meta.upstream = sent.elapsed();
        let mut e = upstream::status_error(provider, up.status.as_u16(), &body);
        if let Some(ra) = up.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
            e = e.header("retry-after", ra);
        }
        let mut resp = error_response(&e);
        headers::forward_upstream(&up.headers, resp.headers_mut());
        meta.apply(resp.headers_mut());
        return Ok(resp);
    }

    if view.stream {
        let usage = view.include_usage.then(|| UsageNeeds {
            request: body.clone(),
            upstream_model: String::from_utf8_lossy(&t.upstream_model).trim_matches('"').to_string(),
        });
        let mut relay = Relay::new(incoming, *provider, endpoint, client_model_json, t.stream_timeout, usage);
        let first = match relay.step().await {
            Step::Failed(e) => return Err(e),
            Step::Data(b) => Some(b),
            Step::End => None,
        };
        meta.upstream = sent.elapsed();
        let stream = futures_util::stream::unfold((first, relay), |(first, mut relay)| async move {
            if let Some(b) = first {
                return Some((Ok::<_, std::convert::Infallible>(http_body::Frame::data(b)), (None, relay)));
            }
            match relay.step().await {
                Step::Data(b) => Some((Ok(http_body::Frame::data(b)), (None, relay))),
                Step::Failed(e) => Some((Ok(http_body::Frame::data(Bytes::from(e.to_sse_frame()))), (None, relay))),
                Step::End => None,
            }
        });
        let mut resp = Response::new(axum::body::Body::new(http_body_util::StreamBody::new(stream)));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers::forward_upstream(&up.headers, h);
        meta.apply(h);
        return Ok(resp);
    }

    let remaining = timeout.saturating_sub(sent.elapsed());
    let body = match read_upstream(incoming, remaining, 256 * 1024 * 1024).await {
        Ok(b) => b,
        Err(ReadError::Timeout) => return Err(upstream::timeout_error(provider, timeout)),
        Err(ReadError::Broken) => {
            return Err(ApiError::new(
                500,
                sluice_providers::errors::upstream_message(
                    sluice_providers::ExceptionClass::ApiConnection,
                    provider,
                    "Connection error: the upstream connection broke while sending its answer.",
                ),
            ))
        }
    };
    meta.upstream = sent.elapsed();
    let out = match sniff::response_model(&body) {
        Ok(Some(span)) => splice::replace(&body, span, client_model_json),
        Ok(None) => [body, Bytes::new(), Bytes::new()],
        Err(_) => {
            return Err(upstream::malformed_error(
                provider,
                "upstream returned a body that is not a JSON object",
                &body,
            ))
        }
    };
    let mut resp = Response::new(axum::body::Body::new(ChainBody::new(out)));
    *resp.status_mut() = StatusCode::from_u16(up.status.as_u16()).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers::forward_upstream(&up.headers, h);
    meta.apply(h);
    Ok(resp.into_response())
}

/// Adds `"model": <upstream>` to a body that named its model only in the path.
fn insert_model(body: &Bytes, upstream_model: &Bytes) -> [Bytes; 3] {
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

enum ReadError {
    Timeout,
    Broken,
}

async fn read_upstream(
    body: hyper::body::Incoming,
    timeout: std::time::Duration,
    limit: usize,
) -> Result<Bytes, ReadError> {
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
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
