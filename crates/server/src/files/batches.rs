//! `/v1/batches`: a batch goes to the deployment that holds its input file (the caller must own
//! it), and belongs to the caller. As LiteLLM does, a batch is billed when it is first read
//! completed: its output file is read and each answer's usage is billed at the deployment's
//! batch prices (`input_cost_per_token_batches`, …; half its token prices without them, as
//! LiteLLM's `batch_cost_calculator` bills), once (`claim_object_billing`) however many
//! replicas read it. The output and error files become the batch owner's.

use super::owners::{self, Ask, QueryAsk};
use super::{answer, fetch, forwarded_query, target, upload, Billed, BATCH, FILE};
use crate::app::App;
use axum::extract::{Path, RawQuery, Request, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use sluice_access::charge::MAX_TOKENS;
use sluice_providers::pricing::TokenUsage;
use sluice_wire::ApiError;
use std::sync::Arc;
use std::time::Instant;

/// The most bytes of a batch's output file read to bill it.
const OUTPUT_LIMIT: usize = 64 * 1024 * 1024;

/// `POST /v1/batches`.
pub(super) async fn create(State(app): State<Arc<App>>, RawQuery(query): RawQuery, req: Request) -> Response {
    answer(create_batch(&app, query.as_deref(), req).await)
}

async fn create_batch(app: &App, query: Option<&str>, req: Request) -> Result<Response, ApiError> {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    let caller = match owners::caller(app, &parts.headers).await {
        Ok(c) => c,
        Err(e) => return Err(crate::proxy::body::drain_small(&parts.headers, body, e).await),
    };
    let body = crate::proxy::body::read_client_body(
        &parts.headers,
        body,
        app.max_request_bytes,
        app.client_body_timeout,
        received,
    )
    .await?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}.")))?;
    let input = request["input_file_id"].as_str().ok_or_else(|| {
        ApiError::bad_request("Missing required field `input_file_id`: upload the requests with `purpose=batch` first.")
            .param("input_file_id")
    })?;
    let text = |k: &str| request[k].as_str().map(str::trim).filter(|v| !v.is_empty());
    let from_query = QueryAsk::new(query, &parts.headers);
    let ask = Ask {
        names: text("target_model_names").or(text("model")).or(from_query.names()),
        provider: text("custom_llm_provider").or(from_query.provider()),
    };
    // The batch runs where its input file is.
    let dep = owners::locate(app, &caller, FILE, input, &ask).await?;
    let billed = Billed::admit(app, &caller, &dep, "acreate_batch").await?;
    let result = async {
        let t = target(&dep)?;
        let sent = sluice_wire::strip::without_members(&body, &upload::GATEWAY_FIELDS);
        let (status, bytes) = fetch(t, http::Method::POST, "/batches", &forwarded_query(query), Some(sent)).await?;
        owners::remember(app, &caller, BATCH, &bytes, &dep).await;
        Ok(super::json_reply(status, bytes))
    }
    .await;
    billed.settle(&result, TokenUsage::default());
    result
}

/// `GET /v1/batches`.
pub(super) async fn list(State(app): State<Arc<App>>, RawQuery(query): RawQuery, headers: http::HeaderMap) -> Response {
    answer(owners::list(&app, &headers, query.as_deref(), BATCH, "alist_batches", "/batches").await)
}

/// `GET /v1/batches/{id}`: billed for its answers when first seen completed.
pub(super) async fn retrieve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
) -> Response {
    answer(retrieve_batch(&app, &headers, query.as_deref(), &id).await)
}

async fn retrieve_batch(
    app: &App,
    headers: &http::HeaderMap,
    query: Option<&str>,
    id: &str,
) -> Result<Response, ApiError> {
    let caller = owners::caller(app, headers).await?;
    let dep = owners::locate(app, &caller, BATCH, id, &QueryAsk::new(query, headers).ask()).await?;
    let billed = Billed::admit(app, &caller, &dep, "aretrieve_batch").await?;
    let mut usage = TokenUsage::default();
    let result = async {
        let t = target(&dep)?;
        let (status, bytes) =
            fetch(t, http::Method::GET, &format!("/batches/{id}"), &forwarded_query(query), None).await?;
        let batch: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let record = owners::record(app, BATCH, id).await?;
        // The files the batch wrote are its owner's.
        if let Some(r) = &record {
            for field in ["output_file_id", "error_file_id"] {
                if let Some(file) = batch[field].as_str().filter(|f| super::upstream::plain_id(f)) {
                    if owners::record(app, FILE, file).await?.is_none() {
                        owners::own(app, &r.owner, r.team_id.clone(), FILE, file, &dep).await;
                    }
                }
            }
        }
        let output = batch["output_file_id"].as_str().filter(|f| super::upstream::plain_id(f));
        if let (Some(r), Some(output), Some("completed")) = (&record, output, batch["status"].as_str()) {
            if !r.billed {
                usage = batch_usage(t, output).await;
                let claimed = match app.access.store() {
                    Some(store) => store.claim_object_billing(BATCH, id).await.unwrap_or(false),
                    None => false,
                };
                if !claimed {
                    usage = TokenUsage::default();
                }
            }
        }
        Ok(super::json_reply(status, bytes))
    }
    .await;
    // A completed batch's answers at the deployment's batch prices (0 tokens otherwise).
    billed.settle_as(&result, usage, true);
    result
}

/// The usage of every answer in a batch's output file (read up to [`OUTPUT_LIMIT`]).
async fn batch_usage(t: &crate::app::OpenAiTarget, output: &str) -> TokenUsage {
    let tail = format!("/files/{output}/content");
    let content = match super::fetch_within(t, http::Method::GET, &tail, "", None, OUTPUT_LIMIT).await {
        Ok((_, bytes)) => bytes,
        Err(e) => {
            tracing::warn!(file = output, "could not read a completed batch's output to bill it: {}", e.message);
            return TokenUsage::default();
        }
    };
    sum_usage(&content)
}

/// The summed `response.body.usage` of each JSON line, each count bounded.
fn sum_usage(content: &Bytes) -> TokenUsage {
    let mut usage = TokenUsage::default();
    for line in content.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<Value>(line) else { continue };
        let u = &v["response"]["body"]["usage"];
        let count = |k: &str| u[k].as_u64().unwrap_or(0).min(MAX_TOKENS);
        usage.prompt_tokens = usage.prompt_tokens.saturating_add(count("prompt_tokens"));
        usage.completion_tokens = usage.completion_tokens.saturating_add(count("completion_tokens"));
        let cached = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0).min(MAX_TOKENS);
        usage.cached_prompt_tokens = usage.cached_prompt_tokens.saturating_add(cached);
    }
    usage
}

/// `POST /v1/batches/{id}/cancel`.
pub(super) async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
) -> Response {
    let result = async {
        let caller = owners::caller(&app, &headers).await?;
        let dep = owners::locate(&app, &caller, BATCH, &id, &QueryAsk::new(query.as_deref(), &headers).ask()).await?;
        let billed = Billed::admit(&app, &caller, &dep, "acancel_batch").await?;
        let result = async {
            let t = target(&dep)?;
            let tail = format!("/batches/{id}/cancel");
            let (status, bytes) =
                fetch(t, http::Method::POST, &tail, &forwarded_query(query.as_deref()), Some(Bytes::new())).await?;
            Ok(super::json_reply(status, bytes))
        }
        .await;
        billed.settle(&result, TokenUsage::default());
        result
    }
    .await;
    answer(result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_sums_each_answer_bounded() {
        let lines = concat!(
            r#"{"response":{"body":{"usage":{"prompt_tokens":10,"completion_tokens":20}}}}"#,
            "\n",
            r#"{"response":{"body":{"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}}}"#,
            "\nnot json\n",
            r#"{"response":{"body":{"usage":{"prompt_tokens":18446744073709551615}}}}"#,
            "\n"
        );
        let u = super::sum_usage(&bytes::Bytes::from(lines));
        assert_eq!(u.prompt_tokens, 15 + sluice_access::charge::MAX_TOKENS);
        assert_eq!(u.completion_tokens, 21);
        assert_eq!(u.cached_prompt_tokens, 2);
    }
}
