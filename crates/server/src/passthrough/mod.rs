//! Provider pass-through: `/openai/*`, `/anthropic/*`, `/gemini/*`, `/vertex_ai/*`, `/bedrock/*`
//! and `/azure/*` relay a provider's native API, and `general_settings.pass_through_endpoints`
//! relay configured routes to fixed targets, as LiteLLM does.
//!
//! The caller authenticates with a sluice key (whichever header its SDK puts it in); that key
//! and every other form of it are stripped, and the provider's credential (from the environment,
//! `providers::passthrough`) is added, or the request signed. Bodies go upstream and come back
//! as they are, streams frame by frame ([`relay`]); the usage the answer reports is read on the
//! way and charged to the key like any model call (budgets, limits and spend logs apply).
//! Sending uses the gateway's pooled client, with the same timeouts and the same errors for an
//! upstream that is down or slow.

mod headers;
mod relay;

use crate::app::App;
use crate::config::PassThroughEndpoint;
use crate::errors::{self, Flavour};
use crate::exchange::{Lines, Reply, ReplyBody};
use crate::proxy::body::{read_client_body, ChainBody};
use crate::proxy::headers::Facts;
use crate::proxy::upstream;
use crate::redact::redact;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use sluice_access::charge::{Charge, LogIds, MetricLabels, Served};
use sluice_providers::passthrough::{self as native, Credential, Native, NativeUpstream, UsageTap, VertexDefaults};
use sluice_providers::Provider;
use sluice_wire::ApiError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a spend-log row calls a pass-through call (LiteLLM's `call_type`).
const CALL_TYPE: &str = "pass_through_endpoint";
/// The largest whole answer relayed: beyond it the call fails rather than buffer more.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;
/// The largest error body read from an upstream.
const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// Every pass-through route, built once at start.
pub struct Table {
    /// One per [`Native`], in [`Native::ALL`]'s order.
    natives: Vec<NativeUpstream>,
    /// What a spend-log row says about a model called through each native route, and its
    /// price: built once per model (a price lookup and several strings) instead of per call.
    /// Beside `natives`, in the same order.
    served: Vec<std::sync::RwLock<rustc_hash::FxHashMap<Box<str>, Arc<Served>>>>,
    custom: Vec<PassThroughEndpoint>,
    /// The Vertex deployments' service accounts, by project and location.
    vertex_accounts: Vec<VertexAccount>,
    timeout: Duration,
    stream_timeout: Duration,
}

impl Table {
    /// `env` reads the environment (LiteLLM's variable names); `token_for` makes the Vertex
    /// token source for a credential.
    pub fn new(
        custom: Vec<PassThroughEndpoint>,
        vertex: &VertexDefaults,
        env: sluice_providers::provider::Env<'_>,
        token_for: &mut dyn FnMut(&str) -> Arc<dyn sluice_providers::TokenSource>,
        timeout: Duration,
        stream_timeout: Duration,
    ) -> Table {
        let natives = Native::ALL.iter().map(|n| native::resolve(*n, env, vertex, token_for)).collect();
        let served = Native::ALL.iter().map(|_| Default::default()).collect();
        Table { natives, served, custom, vertex_accounts: Vec::new(), timeout, stream_timeout }
    }

    /// The service accounts of the Vertex deployments in `model_list`: `/vertex_ai/*` calls to
    /// their project (and location) use them.
    pub fn with_vertex_accounts(mut self, accounts: Vec<VertexAccount>) -> Table {
        self.vertex_accounts = accounts;
        self
    }

    fn vertex_token_for(&self, subpath: &str) -> Option<Arc<dyn sluice_providers::TokenSource>> {
        let (project, location) = native::vertex_project_location(subpath)?;
        self.vertex_accounts
            .iter()
            .find(|a| a.project == project && a.location.as_deref().is_none_or(|l| l == location))
            .map(|a| a.token.clone())
    }

    fn native(&self, n: Native) -> Option<&NativeUpstream> {
        self.natives.iter().find(|u| u.native == n)
    }

    /// The spend-log facts and price of `model` on `upstream`'s provider, built on first use;
    /// past [`SERVED_KEPT`] models (callers name them) they are built per call instead.
    fn served(&self, upstream: &NativeUpstream, base: &str, model: &str) -> Arc<Served> {
        let Some(at) = self.natives.iter().position(|u| u.native == upstream.native) else {
            return Arc::new(served_for(upstream.native, base, model));
        };
        let cache = &self.served[at];
        if let Some(s) = cache.read().unwrap_or_else(|e| e.into_inner()).get(model) {
            return s.clone();
        }
        let built = Arc::new(served_for(upstream.native, base, model));
        let mut map = cache.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < SERVED_KEPT {
            map.insert(model.into(), built.clone());
        }
        built
    }

    /// The configured endpoint serving `path` and the part of the path below it.
    fn custom_for<'a>(&self, path: &'a str) -> Option<(&PassThroughEndpoint, &'a str)> {
        self.custom.iter().find_map(|e| {
            let rest = path.strip_prefix(e.path.as_str())?;
            match rest {
                "" => Some((e, "")),
                _ if e.include_subpath && rest.starts_with('/') => Some((e, rest)),
                _ => None,
            }
        })
    }

    /// Whether any endpoint is configured (the fallback looks only then).
    pub fn has_custom(&self) -> bool {
        !self.custom.is_empty()
    }
}

/// What a call learned that its metrics record needs, whether or not it succeeded.
#[derive(Default)]
struct Known {
    /// The model it named (empty when none).
    model: String,
    /// Whom it bills, once admitted.
    charge: Option<Arc<Charge>>,
    /// From sending to the answer's head.
    upstream: Duration,
}

/// A Vertex deployment's service account, for pass-through calls to its project.
pub struct VertexAccount {
    pub project: String,
    pub location: Option<String>,
    pub token: Arc<dyn sluice_providers::TokenSource>,
}

/// Where one call goes.
enum Route<'a> {
    Native(&'a NativeUpstream),
    Custom(&'a PassThroughEndpoint),
}

impl Route<'_> {
    /// The provider errors name.
    fn provider(&self) -> Provider {
        match self {
            Route::Native(u) => u.native.provider(),
            Route::Custom(_) => {
                Provider { name: "pass_through_endpoint", family: sluice_providers::Family::NotImplemented }
            }
        }
    }

    fn flavour(&self) -> Flavour {
        match self {
            Route::Native(u) if u.native == Native::Anthropic => Flavour::Anthropic,
            _ => Flavour::OpenAi,
        }
    }

    fn needs_key(&self) -> bool {
        match self {
            Route::Native(_) => true,
            Route::Custom(e) => e.auth,
        }
    }
}

/// The axum handler of one provider's routes (`{prefix}/{*rest}`). A call outlives its
/// client's hang-up and is billed, as model calls are (`proxy::outlive`).
pub async fn serve_native(app: Arc<App>, native: Native, prefix: &'static str, req: Request) -> Response {
    let received = Instant::now();
    let call = async move {
        let Some(upstream) = app.pass_through.native(native) else {
            return errors::reply(&ApiError::new(404, "this pass-through route is not configured"), Flavour::OpenAi);
        };
        let subpath = req.uri().path().strip_prefix(prefix).unwrap_or("").to_string();
        serve(&app, Route::Native(upstream), prefix, &subpath, req, received).await
    };
    Response::from(crate::proxy::outlive::Outlive::new(call).await)
}

/// A configured `pass_through_endpoints` route serving `req`, if one does (called where no
/// built-in route matched, so built-in routes win as they do in LiteLLM).
pub async fn serve_custom(State(app): State<Arc<App>>, req: Request) -> Option<Response> {
    let received = Instant::now();
    app.pass_through.custom_for(req.uri().path())?;
    let call = async move {
        let path = req.uri().path().to_string();
        let Some((endpoint, subpath)) = app.pass_through.custom_for(&path) else {
            return errors::reply(&ApiError::new(404, "Not Found"), Flavour::OpenAi);
        };
        let subpath = subpath.to_string();
        serve(&app, Route::Custom(endpoint), "", &subpath, req, received).await
    };
    Some(Response::from(crate::proxy::outlive::Outlive::new(call).await))
}

async fn serve(
    app: &App,
    route: Route<'_>,
    prefix: &'static str,
    subpath: &str,
    req: Request,
    received: Instant,
) -> Reply {
    let (parts, body) = req.into_parts();
    let facts = Facts::new(&parts.headers, received);
    let flavour = route.flavour();
    let mut known = Known::default();
    let mut reply = match call(app, &route, prefix, subpath, &parts, body, &facts, &mut known).await {
        Ok(reply) => reply,
        Err(e) => errors::reply(&e, flavour),
    };
    // The access-log line is `access_log::layer`'s, as for every route axum serves.
    reply.lines.push_header(&crate::proxy::headers::CALL_ID, &facts.call_id);
    let key = known.charge.as_ref().and_then(|c| c.admission().key.as_ref()).map(|k| k.record.token.as_str());
    app.access.pulse.request(reply.status.as_u16(), facts.received.elapsed(), &known.model, key);
    if let Some(m) = &app.metrics {
        m.request_finished(&sluice_metrics::RequestRecord {
            requested_model: &known.model,
            route: if prefix.is_empty() { "/pass_through" } else { prefix },
            status: reply.status.as_u16(),
            exception_class: None,
            total: facts.received.elapsed(),
            upstream: known.upstream,
            // Pass-through calls go upstream as they arrive: LiteLLM observes no queue time.
            queue: None,
            deployment: None,
            end_user: "",
            user_agent: parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            caller: known.charge.as_ref().and_then(|c| c.caller()),
            // Added by the bill itself (`Charge::settle_with`), which also sees streams' cost.
            spend: 0.0,
        });
    }
    reply
}

/// One call: who calls, what it names, where it goes; its answer, or the error to send.
#[allow(clippy::too_many_arguments)]
async fn call(
    app: &App,
    route: &Route<'_>,
    prefix: &'static str,
    subpath: &str,
    parts: &http::request::Parts,
    body: axum::body::Body,
    facts: &Facts,
    known: &mut Known,
) -> Result<Reply, ApiError> {
    let provider = route.provider();
    // Who calls, before the body is read.
    let identity = match route.needs_key() {
        true => {
            let presented = headers::presented_key(&parts.headers, parts.uri.query());
            match app.access.identify(presented.as_ref().unwrap_or(&parts.headers)).await {
                Ok(identity) => Some(identity),
                Err(e) => return Err(crate::proxy::body::drain_small(&parts.headers, body, e).await),
            }
        }
        false => None,
    };
    // What is wrong with the route's own settings is said before anything is charged.
    // A Vertex call to a project and location a deployment serves uses that deployment's
    // service account, as LiteLLM does; others use `default_vertex_config`'s.
    let deployment_credential = match route {
        Route::Native(u) if u.native == Native::Vertex => {
            app.pass_through.vertex_token_for(subpath).map(Credential::Token)
        }
        _ => None,
    };
    let (base, credential) = match route {
        Route::Native(u) => {
            let base = u.base.as_ref().map_err(|m| not_configured(m))?;
            let credential = match &deployment_credential {
                Some(c) => c,
                None => u.credential.as_ref().map_err(|m| not_configured(m))?,
            };
            (base.as_str(), Some(credential))
        }
        Route::Custom(_) => ("", None),
    };
    let body =
        read_client_body(&parts.headers, body, app.max_request_bytes, app.client_body_timeout, facts.received).await?;

    // The model the call names, for model access, limits and the price.
    let model = match route {
        Route::Native(u) => u.native.model_in_path(subpath).or_else(|| body_model(&body)),
        Route::Custom(_) => None,
    }
    .unwrap_or_default();
    known.model.clone_from(&model);
    let charge = match &identity {
        Some(identity) => {
            let admission = app.access.admit_shared(identity, &model, None, 0.0).await?;
            let call_id = String::from_utf8_lossy(facts.call_id.as_bytes()).into_owned();
            let ids = LogIds { request_id: call_id, ..Default::default() };
            let labels = app.metrics.as_ref().map(|_| MetricLabels {
                route: if prefix.is_empty() { "/pass_through" } else { prefix },
                user_agent: parts
                    .headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .into(),
                // The caller names the model here: only a name the price table knows gets a
                // series of its own, so callers cannot mint label values.
                requested_model: (!model.is_empty()
                    && sluice_providers::pricing::lookup(provider.name, &model).is_none())
                .then(|| "unpriced".to_string()),
            });
            let charge = Charge::new(app.access.clone(), admission, &model, ids, CALL_TYPE, None, labels);
            let served = match route {
                Route::Native(u) => app.pass_through.served(u, base, &model),
                Route::Custom(e) => Arc::new(Served::new(&model, &model, "", "", &e.target.to_string(), None)),
            };
            charge.serving(&served, None);
            known.charge = Some(charge.clone());
            Some(charge)
        }
        None => None,
    };
    let fixed_cost = match route {
        Route::Custom(e) => e.cost_per_request,
        Route::Native(_) => 0.0,
    };

    let req = build_request(route, base, credential, subpath, parts, body).await?;
    let timeout = app.pass_through.timeout;
    let sent = Instant::now();
    let answer = match tokio::time::timeout(timeout, app.client.fetch(req)).await {
        Err(_) => return Err(upstream::timeout_error(&provider, timeout)),
        Ok(Err(e)) => return Err(upstream::transport_error(&provider, &e)),
        Ok(Ok(answer)) => answer,
    };
    known.upstream = sent.elapsed();
    let status = answer.head.status;
    // The answer's fields as rendered lines, as the model routes keep theirs: no header name
    // built (and allocated) per field.
    let mut lines = Lines::with_capacity(1024);
    let mut content_type: Option<Bytes> = None;
    answer.head.headers.for_each(|name, value| {
        if headers::relayed_answer_field(name) {
            // Kept only for a stream, whose relay reads it.
            if name.eq_ignore_ascii_case(b"content-type") && relay::is_stream(value) {
                content_type = Some(Bytes::copy_from_slice(value));
            }
            lines.push_lower(b"", name, value);
        }
    });
    let stream_type = content_type.filter(|_| status.is_success());
    if let Some(content_type) = stream_type {
        let tap = UsageTap::new(&content_type);
        let sse = content_type.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"text/"));
        let tap = relay::Tap { tap, charge, fixed_cost };
        let body = relay::body(answer.body, tap, provider, app.pass_through.stream_timeout, route.flavour(), sse);
        return Ok(Reply {
            status,
            headers: HeaderMap::new(),
            lines,
            body: ReplyBody::Stream(body),
            anthropic_native: false,
        });
    }
    let limit = if status.is_success() { MAX_ANSWER_BYTES } else { MAX_ERROR_BYTES };
    let whole = match crate::proxy::read_upstream(answer.body, sent + timeout, limit).await {
        Ok(b) => b,
        Err(crate::proxy::ReadError::Timeout) => return Err(upstream::timeout_error(&provider, timeout)),
        Err(crate::proxy::ReadError::Broken) => {
            return Err(ApiError::new(
                500,
                sluice_providers::errors::upstream_message(
                    sluice_providers::ExceptionClass::ApiConnection,
                    &provider,
                    "Connection error: the upstream connection broke while sending its answer.",
                ),
            ))
        }
    };
    // A failed call is relayed as the provider said it (less any echo of the credential the
    // gateway sent), and costs nothing.
    let whole = match status.is_success() {
        true => {
            if let Some(charge) = charge {
                let usage = native::answer_usage(&whole).unwrap_or_default();
                charge.settle_with(usage, fixed_cost);
            }
            whole
        }
        false => redact(whole, &sent_secrets(route, credential)),
    };
    Ok(Reply {
        status,
        headers: HeaderMap::new(),
        lines,
        body: ReplyBody::Whole([whole, Bytes::new(), Bytes::new()]),
        anthropic_native: false,
    })
}

/// The secret parts of the credentials a call sent: the provider's key (without its scheme),
/// or a configured endpoint's sensitive header values.
fn sent_secrets<'a>(route: &'a Route<'_>, credential: Option<&'a Credential>) -> Vec<&'a [u8]> {
    let secret = crate::redact::secret_part;
    match (route, credential) {
        (Route::Native(_), Some(Credential::Header(_, v))) => vec![secret(v)],
        (Route::Custom(e), _) => e.headers.iter().filter(|(_, v)| v.is_sensitive()).map(|(_, v)| secret(v)).collect(),
        _ => Vec::new(),
    }
}

/// Models remembered per provider in [`Table::served`].
const SERVED_KEPT: usize = 1024;

fn served_for(native: Native, base: &str, model: &str) -> Served {
    let name = native.provider_name();
    Served::new(model, model, "", name, base, sluice_providers::pricing::lookup(name, model))
}

/// The body's top-level `model`, when it is a JSON object that names one.
fn body_model(body: &[u8]) -> Option<String> {
    sluice_wire::sniff::request(body, sluice_wire::sniff::Endpoint::Chat).ok()?.model.map(|m| m.to_string())
}

/// A provider's pass-through that lacks its settings: the operator's to fix, said plainly.
fn not_configured(message: &str) -> ApiError {
    ApiError::new(
        500,
        format!(
            "{message} Set it where sluice starts and restart it; until then this pass-through route cannot serve."
        ),
    )
}

/// The upstream request: the client's method, path below the prefix, query and body; its
/// headers without any form of the caller's key; the provider's credential added.
async fn build_request(
    route: &Route<'_>,
    base: &str,
    credential: Option<&Credential>,
    subpath: &str,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<http::Request<ChainBody>, ApiError> {
    let query = parts.uri.query();
    let (url, forward, strip_key) = match route {
        Route::Native(u) => {
            let base = u.native.base_for(base, subpath);
            // A Gemini client may send its (sluice) key as `?key=`: never passed on.
            let query = query.map(headers::without_key_param).filter(|q| !q.is_empty());
            (join(&base, subpath, query.as_deref()), true, true)
        }
        Route::Custom(e) => {
            let target = e.target.to_string();
            let target = target.trim_end_matches('/');
            let path = if e.include_subpath { subpath } else { "" };
            let query = query.map(|q| match e.auth {
                true => headers::without_key_param(q),
                false => q.to_string(),
            });
            let query = query.filter(|q| !q.is_empty());
            // A target with its own query string keeps it; the client's joins it.
            (join(target, path, query.as_deref()), e.forward_headers, e.auth)
        }
    };
    let uri: http::Uri = url.parse().map_err(|_| {
        ApiError::bad_request("The request's path and query do not make a valid upstream URL. Check the path.")
    })?;
    let mut out = HeaderMap::new();
    if forward {
        headers::forward_request_fields(
            &parts.headers,
            &mut out,
            strip_key,
            matches!(credential, Some(Credential::SigV4 { .. })),
        );
    }
    match (route, credential) {
        (Route::Custom(e), _) => {
            for (name, value) in &e.headers {
                out.insert(name.clone(), value.clone());
            }
        }
        (Route::Native(u), Some(Credential::Header(name, value))) => {
            out.insert(name.clone(), value.clone());
            if u.native == Native::Anthropic && !out.contains_key("anthropic-version") {
                out.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
            }
        }
        (Route::Native(u), Some(Credential::Token(source))) => {
            let token =
                source.token().await.map_err(|m| sluice_providers::errors::auth_failed(&u.native.provider(), &m))?;
            out.insert(http::header::AUTHORIZATION, token);
        }
        (Route::Native(_), Some(Credential::SigV4 { credentials, region })) => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let credentials = credentials
                .get()
                .await
                .map_err(|m| sluice_providers::errors::auth_failed(&Native::Bedrock.provider(), &m))?;
            let signed = sluice_providers::bedrock::sign(
                parts.method.as_str(),
                &uri.to_string(),
                &body,
                region,
                &credentials,
                now,
            )
            .map_err(|e| ApiError::bad_request(format!("cannot sign the Bedrock request: {e}")))?;
            for (name, value) in signed {
                if let Ok(mut v) = HeaderValue::from_str(&value) {
                    v.set_sensitive(name == "authorization" || name == "x-amz-security-token");
                    out.insert(http::HeaderName::from_static(name), v);
                }
            }
        }
        (Route::Native(_), None) => {}
    }
    let mut req = http::Request::new(ChainBody::new([body, Bytes::new(), Bytes::new()]));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = out;
    Ok(req)
}

/// `base` + `path` + `?query`, keeping a query `base` has already.
fn join(base: &str, path: &str, query: Option<&str>) -> String {
    let (base, base_query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let mut url = format!("{}{path}", base.trim_end_matches('/'));
    if path.is_empty() && base.ends_with('/') && !url.ends_with('/') {
        url.push('/');
    }
    let queries: Vec<&str> = base_query.into_iter().chain(query).filter(|q| !q.is_empty()).collect();
    if !queries.is_empty() {
        url.push('?');
        url.push_str(&queries.join("&"));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_sent_is_what_an_error_answer_is_redacted_of() {
        let mut v = HeaderValue::from_static("Bearer prov-secret-123");
        v.set_sensitive(true);
        let credential = Credential::Header(http::header::AUTHORIZATION, v);
        let upstream =
            NativeUpstream { native: Native::OpenAi, base: Ok("http://x".into()), credential: Err(String::new()) };
        let route = Route::Native(&upstream);
        assert_eq!(sent_secrets(&route, Some(&credential)), vec![&b"prov-secret-123"[..]]);
    }

    #[test]
    fn urls_join_base_path_and_query() {
        assert_eq!(
            join("https://api.openai.com", "/v1/chat/completions", None),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(join("https://h/", "/a", Some("x=1")), "https://h/a?x=1");
        assert_eq!(join("https://h/v1/rerank?api-version=2", "", Some("x=1")), "https://h/v1/rerank?api-version=2&x=1");
        assert_eq!(join("https://h/v1/rerank", "/sub", None), "https://h/v1/rerank/sub");
    }
}
