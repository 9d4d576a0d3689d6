//! `POST /v1/messages`: the front door for Anthropic clients. The Anthropic request is translated
//! to OpenAI's format and runs through the same router as every other request, so it can reach
//! any provider. Each answer is translated once:
//!
//! - an Anthropic deployment gets the client's own bytes (but for `model`) and its answer comes
//!   back untouched;
//! - a translating provider (Gemini, Bedrock) hands its OpenAI-shaped chunks as values straight
//!   to Anthropic's stream translator (`proxy::translate`), with no OpenAI text in between;
//! - an OpenAI-format deployment's stream goes through the relay's OpenAI stage, which hands
//!   each chunk to Anthropic's stream translator instead of writing it as an OpenAI frame;
//! - a whole answer (a completion, or the demo model's stream) is translated here, once.
//!
//! Streams and native answers come back marked
//! [`NativeAnthropic`](crate::exchange::NativeAnthropic) and pass through as they are.

use super::body;
use super::headers::{Facts, Outcome};
use super::proxy_body;
use crate::app::App;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue};
use http_body_util::BodyExt;
use sluice_providers::anthropic;
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};
use std::sync::Arc;
use std::time::Instant;

pub async fn messages(State(app): State<Arc<App>>, req: Request) -> Response {
    // Runs to its end if the client hangs up, as the OpenAI routes do (`outlive`).
    super::outlive::Outlive::new(async move {
        let mut facts = Facts::new(req.headers(), Instant::now());
        facts.trace = super::trace_context(&app, req.headers(), "/v1/messages");
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let resp = match front_door(&app, req, &mut facts).await {
            Ok(resp) => resp,
            Err(e) => {
                super::log_failure(&app, &mut facts, "anthropic_messages", &e);
                anthropic_error(e.status, &e.message)
            }
        };
        if app.access_log {
            crate::access_log::proxied(&method, uri.path(), resp.status().as_u16(), &facts);
        }
        resp
    })
    .await
}

fn anthropic_error(status: u16, message: &str) -> Response {
    crate::errors::reply(&ApiError::new(status, message), crate::errors::Flavour::Anthropic).into()
}

async fn front_door(app: &App, req: Request, facts: &mut Facts) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let identity = match app.access.identify(&parts.headers).await {
        Ok(identity) => identity,
        Err(e) => return Err(body::drain_small(&parts.headers, body, e).await),
    };
    let body =
        body::read_client_body(&parts.headers, body, app.max_request_bytes, app.client_body_timeout, facts.received)
            .await?;
    let request: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("Request body is not valid JSON: {e}. Send an Anthropic Messages request."))
    })?;
    let model = request.get("model").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    let stream = request.get("stream").and_then(|s| s.as_bool()).unwrap_or(false);
    let openai = anthropic::messages_to_openai(&request).map_err(|e| {
        let mut err = ApiError::bad_request(e.message);
        if let Some(p) = e.param {
            err = err.param(p);
        }
        err
    })?;
    let openai_body = Bytes::from(openai.to_string());
    let mut outcome = Outcome::default();
    let resp: Response =
        proxy_body(app, &identity, Endpoint::Chat, None, &parts.headers, openai_body, Some(&body), facts, &mut outcome)
            .await?
            .into();
    if resp.extensions().get::<crate::exchange::NativeAnthropic>().is_some() {
        return Ok(resp);
    }
    let (mut head, body) = resp.into_parts();
    if !head.status.is_success() {
        let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        let message =
            sluice_wire::sniff::error_message(&bytes).unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        let mut out = anthropic_error(head.status.as_u16(), &message);
        copy_litellm_headers(&head.headers, out.headers_mut());
        return Ok(out);
    }
    head.headers.remove(header::CONTENT_LENGTH);
    // Streams from a deployment come back as Anthropic's events already (the relay translates
    // them); what is left is an answer that came whole: a completion, or the demo model's
    // stream, written at once.
    let bytes =
        body.collect().await.map(|c| c.to_bytes()).map_err(|_| ApiError::new(500, "the upstream answer broke off"))?;
    if !stream {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| ApiError::new(500, "the upstream answer is not JSON"))?;
        let msg = anthropic::openai_to_messages(&v, &model).map_err(|e| ApiError::new(500, e.message))?;
        head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(Response::from_parts(head, axum::body::Body::from(msg.to_string())));
    }
    let mut parser = sse::Parser::new();
    parser.push(&bytes);
    let mut events = anthropic::MessagesStream::new(&model);
    let mut out = BytesMut::new();
    let mut put = |chunk: &serde_json::Value, events: &mut anthropic::MessagesStream| {
        for f in events.on_chunk(chunk) {
            out.put_slice(f.as_bytes());
        }
    };
    while let Ok(Some(event)) = parser.next_event() {
        if let Ok(chunk) = serde_json::from_slice::<serde_json::Value>(&event.data) {
            put(&chunk, &mut events);
        }
    }
    if let Some(event) = parser.finish() {
        if let Ok(chunk) = serde_json::from_slice::<serde_json::Value>(&event.data) {
            put(&chunk, &mut events);
        }
    }
    for f in events.finish() {
        out.put_slice(f.as_bytes());
    }
    head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    Ok(Response::from_parts(head, axum::body::Body::from(out.freeze())))
}

fn copy_litellm_headers(from: &http::HeaderMap, to: &mut http::HeaderMap) {
    for (k, v) in from {
        if k.as_str().starts_with("x-litellm-") || k == header::RETRY_AFTER {
            to.insert(k.clone(), v.clone());
        }
    }
}
