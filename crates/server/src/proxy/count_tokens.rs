//! `POST /v1/messages/count_tokens`: Anthropic's token counting, `{"input_tokens": N}`. As
//! LiteLLM does, a model group served by Anthropic has the request forwarded to Anthropic's own
//! `/v1/messages/count_tokens` (the deployment's address and key, `model` spliced); any other is
//! counted here with the tokenizer LiteLLM would use for its model (`sluice_providers::tokens`: tiktoken,
//! the cookbook's per-message overhead), over the messages translated to OpenAI's format. The key
//! is authenticated and admitted for the model like chat; a count is not a billed call.

use super::body;
use crate::app::{App, TargetKind};
use crate::exchange::Reply;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use sluice_wire::ApiError;
use std::sync::Arc;
use std::time::Instant;

/// The most bytes of Anthropic's answer read.
const ANSWER_LIMIT: usize = 1024 * 1024;

pub async fn count_tokens(State(app): State<Arc<App>>, req: Request) -> Response {
    match count(&app, req).await {
        Ok(reply) => reply.into(),
        Err(e) => crate::errors::reply(&e, crate::errors::Flavour::Anthropic).into(),
    }
}

async fn count(app: &App, req: Request) -> Result<Reply, ApiError> {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    let identity = match app.access.identify(&parts.headers).await {
        Ok(identity) => identity,
        Err(e) => return Err(body::drain_small(&parts.headers, body, e).await),
    };
    let body =
        body::read_client_body(&parts.headers, body, app.max_request_bytes, app.client_body_timeout, received).await?;
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("Request body is not valid JSON: {e}. Send an Anthropic count_tokens request."))
    })?;
    let model = request["model"].as_str().filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::bad_request("Missing required field `model`: name a model group from `/v1/models`.").param("model")
    })?;
    let model = app.access.team_alias(&identity, model).unwrap_or_else(|| model.to_string());
    let deployment = {
        let router = app.router.load();
        let group = router.group(&model).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key."
            ))
            .param("model")
        })?;
        group.deployments.first().cloned().ok_or_else(|| ApiError::bad_request("The model group has no deployment."))?
    };
    // Limits and model access as for chat; the admission ends with this call.
    let _admission = app.access.admit_shared(&identity, &model, None, 0.0).await?;
    if let TargetKind::Translated(t) = &deployment.target.kind {
        if let Some(native) = t.native_messages(&body, false) {
            return upstream(app, &deployment.target.provider, native).await;
        }
    }
    // A count request has no `max_tokens`, which the Messages translation requires.
    let mut request = request;
    if request.get("max_tokens").is_none() {
        request["max_tokens"] = Value::from(1);
    }
    let openai = sluice_providers::anthropic::messages_to_openai(&request).map_err(|e| {
        let mut err = ApiError::bad_request(e.message);
        if let Some(p) = e.param {
            err = err.param(p);
        }
        err
    })?;
    let messages = openai["messages"].to_string();
    let counted_as = deployment.target.served.model.to_string();
    let input_tokens =
        sluice_providers::tokens::count_messages(sluice_providers::tokens::encoding_for(&counted_as), &messages);
    let answer = serde_json::json!({ "input_tokens": input_tokens }).to_string();
    Ok(Reply::whole(http::StatusCode::OK, "application/json", [Bytes::from(answer), Bytes::new(), Bytes::new()]))
}

/// Anthropic's own count: the Messages request the provider would send, at `…/count_tokens`.
async fn upstream(
    app: &App,
    provider: &sluice_providers::Provider,
    native: sluice_providers::UpstreamRequest,
) -> Result<Reply, ApiError> {
    let url = native.url.to_string();
    let url = match url.split_once('?') {
        Some((path, query)) => format!("{}/count_tokens?{query}", path.trim_end_matches('/')),
        None => format!("{}/count_tokens", url.trim_end_matches('/')),
    };
    let mut req = http::Request::new(super::body::ChainBody::new(native.body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = url.parse().map_err(|_| ApiError::new(500, "the Anthropic deployment's address is not a URL"))?;
    *req.headers_mut() = native.headers;
    req.headers_mut().remove(http::header::ACCEPT);
    let timeout = native.timeout;
    let answer = tokio::time::timeout(timeout, app.client.fetch(req))
        .await
        .map_err(|_| super::upstream::timeout_error(provider, timeout))?
        .map_err(|e| super::upstream::transport_error(provider, &e))?;
    let body = super::read_upstream(answer.body, Instant::now() + timeout, ANSWER_LIMIT)
        .await
        .map_err(|_| super::upstream::timeout_error(provider, timeout))?;
    let status = http::StatusCode::from_u16(answer.head.status.as_u16()).unwrap_or(http::StatusCode::BAD_GATEWAY);
    if !status.is_success() {
        let message =
            sluice_wire::sniff::error_message(&body).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(ApiError::new(status.as_u16(), message));
    }
    Ok(Reply::whole(status, "application/json", [body, Bytes::new(), Bytes::new()]))
}
