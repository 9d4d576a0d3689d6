//! `/v1/files` and `/v1/batches` (and the same without `/v1`): OpenAI's Files and Batches APIs,
//! forwarded to an OpenAI-compatible or Azure deployment. The upstream keeps the files and
//! batches; sluice keeps who made each one and which deployment holds it (`sluice_objects`,
//! [`owners`]), so that another key is told it does not exist and a call by id reaches the right
//! upstream. Uploads stream through ([`upload`]); file content streams back. Each call is
//! authenticated and admitted like chat (the key's rpm and budgets, on the model group of the
//! deployment), and logged in the spend logs with LiteLLM's call type (`acreate_file`,
//! `afile_list`, …); a batch's answers are billed once, when it is first read completed
//! ([`batches`]).

mod batches;
mod owners;
mod upload;
mod upstream;

use crate::app::{App, OpenAiTarget, Target, TargetKind};
use crate::errors;
use crate::openapi::Routes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use owners::{Ask, Caller, Dep};
use sluice_access::charge::Charge;
use sluice_providers::pricing::TokenUsage;
use sluice_wire::ApiError;
use std::sync::Arc;
use std::time::Instant;

/// The kinds of object the ownership table records.
const FILE: &str = "file";
const BATCH: &str = "batch";

/// The most bytes of an answer read whole (a list, a batch object; not file content).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// The routes under `prefix` (`""` and `/v1`).
pub(crate) fn routes(r: Routes, prefix: &str) -> Routes {
    r.route(&format!("{prefix}/files"), post(create).get(list))
        .route(&format!("{prefix}/files/{{id}}"), get(retrieve).delete(delete))
        .route(&format!("{prefix}/files/{{id}}/content"), get(content))
        .route(&format!("{prefix}/batches"), post(batches::create).get(batches::list))
        .route(&format!("{prefix}/batches/{{id}}"), get(batches::retrieve))
        .route(&format!("{prefix}/batches/{{id}}/cancel"), post(batches::cancel))
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| errors::reply(&e, errors::Flavour::OpenAi).into())
}

fn json_reply(status: http::StatusCode, body: Bytes) -> Response {
    crate::exchange::Reply::whole(status, "application/json", [body, Bytes::new(), Bytes::new()]).into()
}

/// The OpenAI or Azure address of a deployment that files and batches can live on.
fn target(dep: &Dep) -> Result<&OpenAiTarget, ApiError> {
    openai(&dep.target).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Model group `{}` is served by provider {}, which has no Files or Batches API in sluice; use an OpenAI-compatible or Azure deployment.",
            dep.model_name, dep.target.provider.name
        ))
    })
}

pub(super) fn openai(target: &Target) -> Option<&OpenAiTarget> {
    match &target.kind {
        TargetKind::OpenAi(t) => Some(t),
        _ => None,
    }
}

/// One admitted call, to be settled (billed, logged) once it is over.
struct Billed(Arc<Charge>);

impl Billed {
    /// Admits the caller's call of `call_type` on `dep`'s model group, like chat.
    async fn admit(app: &App, caller: &Caller, dep: &Dep, call_type: &'static str) -> Result<Billed, ApiError> {
        let admission = app.access.admit_shared(&caller.identity, &dep.model_name, None, 0.0).await?;
        let ids = sluice_access::charge::LogIds { request_id: uuid::Uuid::new_v4().to_string(), ..Default::default() };
        let charge = Charge::new(app.access.clone(), admission, &dep.model_name, ids, call_type, None, None);
        charge.serving(&dep.target.served, dep.target.metrics.as_ref());
        Ok(Billed(charge))
    }

    /// Bills `usage` for a call that succeeded, or logs the failure.
    fn settle<T>(self, result: &Result<T, ApiError>, usage: TokenUsage) {
        self.settle_as(result, usage, false);
    }

    /// [`settle`](Self::settle) at the deployment's batch prices when `batch`.
    fn settle_as<T>(self, result: &Result<T, ApiError>, usage: TokenUsage, batch: bool) {
        match result {
            Ok(_) if batch => {
                self.0.settle_batch(usage);
            }
            Ok(_) => {
                self.0.settle(usage);
            }
            Err(e) => self.0.failed(&sluice_access::charge::Failure {
                status: e.status,
                class: sluice_metrics::exception_class_for_status(e.status),
                message: &e.message,
            }),
        }
    }
}

/// The client's query without LiteLLM's routing fields (they are the gateway's).
fn forwarded_query(query: Option<&str>) -> String {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            !pair.is_empty() && !upload::GATEWAY_FIELDS.contains(&key)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One call answered with a whole body (JSON: a file, a batch, a list).
async fn fetch(
    t: &OpenAiTarget,
    method: http::Method,
    tail: &str,
    query: &str,
    body: Option<Bytes>,
) -> Result<(http::StatusCode, Bytes), ApiError> {
    fetch_within(t, method, tail, query, body, ANSWER_LIMIT).await
}

/// [`fetch`], reading at most `limit` bytes of the answer.
async fn fetch_within(
    t: &OpenAiTarget,
    method: http::Method,
    tail: &str,
    query: &str,
    body: Option<Bytes>,
    limit: usize,
) -> Result<(http::StatusCode, Bytes), ApiError> {
    let uri = upstream::uri(t, tail, query)?;
    let mut headers = upstream::headers(t);
    if body.is_some() {
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    }
    let answer = upstream::send(t, method, uri, headers, upstream::whole(body.unwrap_or_default()))
        .await
        .map_err(|e| e.into_api(t))?;
    let status = answer.status();
    let bytes = upstream::read(t, answer.into_body(), limit).await?;
    if !status.is_success() {
        return Err(upstream::failed(t, status, bytes));
    }
    Ok((status, bytes))
}

/// `POST /v1/files`: the upload streamed to the deployment LiteLLM's fields name.
async fn create(State(app): State<Arc<App>>, RawQuery(query): RawQuery, req: Request) -> Response {
    let received = Instant::now();
    let (parts, mut body) = req.into_parts();
    let caller = match owners::caller(&app, &parts.headers).await {
        Ok(c) => c,
        Err(e) => return answer(Err(crate::proxy::body::drain_small(&parts.headers, body, e).await)),
    };
    let deadline = received + app.client_body_timeout;
    let head = match upload::read_head(&parts.headers, &mut body, app.max_request_bytes, deadline).await {
        Ok(h) => h,
        Err(e) => return answer(Err(e)),
    };
    let from_query = owners::QueryAsk::new(query.as_deref(), &parts.headers);
    let ask = Ask {
        names: head.field("target_model_names").or(head.field("model")).or(from_query.names()),
        provider: head.field("custom_llm_provider").or(from_query.provider()),
    };
    let dep = match owners::choose(&app, &caller, &ask) {
        Ok(d) => d,
        Err(e) => return answer(Err(e)),
    };
    let billed = match Billed::admit(&app, &caller, &dep, "acreate_file").await {
        Ok(b) => b,
        Err(e) => return answer(Err(e)),
    };
    let result = async {
        let t = target(&dep)?;
        let (stream, stopped) = upload::stream(&head, body, app.max_request_bytes, deadline);
        let mut headers = upstream::headers(t);
        headers.insert(http::header::CONTENT_TYPE, head.content_type.clone());
        if let Some(n) = head.upstream_length {
            headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(n));
        }
        let uri = upstream::uri(t, "/files", "")?;
        let sent = upstream::send(t, http::Method::POST, uri, headers, stream).await;
        // The client's body stopping (too large, too slow) is what the client is told, whatever
        // the upstream made of the broken request.
        let answer = match sent {
            Ok(a) => a,
            Err(e) => return Err(stopped.get().cloned().unwrap_or_else(|| e.into_api(t))),
        };
        let status = answer.status();
        let bytes = upstream::read(t, answer.into_body(), ANSWER_LIMIT).await;
        if let Some(e) = stopped.get() {
            return Err(e.clone());
        }
        let bytes = bytes?;
        if !status.is_success() {
            return Err(upstream::failed(t, status, bytes));
        }
        owners::remember(&app, &caller, FILE, &bytes, &dep).await;
        Ok(json_reply(status, bytes))
    }
    .await;
    billed.settle(&result, TokenUsage::default());
    answer(result)
}

/// `GET /v1/files`: the caller's files (everyone's for an admin), from each deployment that
/// holds one.
async fn list(State(app): State<Arc<App>>, RawQuery(query): RawQuery, headers: http::HeaderMap) -> Response {
    answer(owners::list(&app, &headers, query.as_deref(), FILE, "afile_list", "/files").await)
}

/// `GET /v1/files/{id}`.
async fn retrieve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
) -> Response {
    answer(by_id(&app, &headers, query.as_deref(), &id, http::Method::GET, "afile_retrieve").await)
}

/// `DELETE /v1/files/{id}`: deleted upstream, then forgotten here.
async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
) -> Response {
    answer(by_id(&app, &headers, query.as_deref(), &id, http::Method::DELETE, "afile_delete").await)
}

async fn by_id(
    app: &App,
    headers: &http::HeaderMap,
    query: Option<&str>,
    id: &str,
    method: http::Method,
    call_type: &'static str,
) -> Result<Response, ApiError> {
    let caller = owners::caller(app, headers).await?;
    let dep = owners::locate(app, &caller, FILE, id, &owners::QueryAsk::new(query, headers).ask()).await?;
    let billed = Billed::admit(app, &caller, &dep, call_type).await?;
    let result = async {
        let t = target(&dep)?;
        let (status, bytes) = fetch(t, method.clone(), &format!("/files/{id}"), &forwarded_query(query), None).await?;
        if method == http::Method::DELETE {
            owners::forget(app, FILE, id).await;
        }
        Ok(json_reply(status, bytes))
    }
    .await;
    billed.settle(&result, TokenUsage::default());
    result
}

/// `GET /v1/files/{id}/content`: the file's bytes streamed back as the upstream sends them.
async fn content(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
) -> Response {
    let result = async {
        let caller = owners::caller(&app, &headers).await?;
        let dep =
            owners::locate(&app, &caller, FILE, &id, &owners::QueryAsk::new(query.as_deref(), &headers).ask()).await?;
        let billed = Billed::admit(&app, &caller, &dep, "afile_content").await?;
        let result = async {
            let t = target(&dep)?;
            let uri = upstream::uri(t, &format!("/files/{id}/content"), &forwarded_query(query.as_deref()))?;
            let answer = upstream::send(t, http::Method::GET, uri, upstream::headers(t), upstream::whole(Bytes::new()))
                .await
                .map_err(|e| e.into_api(t))?;
            let status = answer.status();
            if !status.is_success() {
                let bytes = upstream::read(t, answer.into_body(), ANSWER_LIMIT).await?;
                return Err(upstream::failed(t, status, bytes));
            }
            let (parts, body) = answer.into_parts();
            let mut out = Response::new(axum::body::Body::new(body));
            *out.status_mut() = status;
            for name in [http::header::CONTENT_TYPE, http::header::CONTENT_LENGTH, http::header::CONTENT_DISPOSITION] {
                if let Some(v) = parts.headers.get(&name) {
                    out.headers_mut().insert(name, v.clone());
                }
            }
            Ok(out)
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
    fn the_gateways_query_fields_stay_here() {
        assert_eq!(
            super::forwarded_query(Some("purpose=batch&custom_llm_provider=azure&limit=2")),
            "purpose=batch&limit=2"
        );
        assert_eq!(super::forwarded_query(Some("target_model_names=a")), "");
        assert_eq!(super::forwarded_query(None), "");
    }
}
