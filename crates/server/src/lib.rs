//! The sluice gateway: an axum app that speaks the OpenAI API (and LiteLLM's routes) to clients
//! and forwards each call to the deployment the router picks.
//!
//! `config` turns a LiteLLM `config.yaml` into typed settings (reporting what it ignores),
//! `auth` checks the caller's key, `proxy` carries a request to its upstream and the answer back,
//! `info` serves the model lists and health routes, and `listen` runs the accept loop (its own
//! HTTP/1.1 for the proxy routes' plain requests, hyper for the rest) with the timeouts that keep
//! slow clients from holding tasks forever. `exchange` holds what passes between a server and
//! the handler (the request as read, the one `Reply` type), and `errors` gives every error its
//! shape.

mod access_log;
mod alerts;
pub mod app;
pub mod config;
pub mod errors;
pub mod exchange;
mod files;
pub mod gate;
pub mod health;
pub mod info;
pub mod listen;
pub mod live;
pub mod manage;
pub mod openapi;
pub mod passthrough;
pub mod proxy;
mod redact;
#[cfg(test)]
mod test_numbers;
pub mod ui;
pub mod vertex_auth;
pub mod wildcard;

pub use app::App;
pub use config::Config;
/// The access layer lives in its own crate; these names keep the server's paths to it.
pub use sluice_access as access;
pub use sluice_access::auth;

use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use sluice_wire::sniff::Endpoint;
use std::sync::Arc;

/// Every route, with and without `/v1`, as LiteLLM serves them.
pub fn routes(app: Arc<App>) -> axum::Router {
    route_table(app).0
}

/// The router, and the path of every route it serves: what `/openapi.json` describes.
pub(crate) fn route_table(app: Arc<App>) -> (axum::Router, Vec<String>) {
    // The model routes write their own access-log lines (they know the model, the key and the
    // call id); the others get theirs from `access_log::layer`.
    let mut proxied = openapi::Routes::new();
    for prefix in ["", "/v1"] {
        for endpoint in DIRECT_ENDPOINTS {
            let path = endpoint.path();
            let direct = move |State(app): State<Arc<App>>, req: Request| async move {
                axum::response::Response::from(serve_proxied(app, endpoint, None, req).await)
            };
            // Azure's and the legacy engines' paths name the model (it wins over the body's).
            let named = move |State(app): State<Arc<App>>, Path(model): Path<String>, req: Request| async move {
                axum::response::Response::from(serve_proxied(app, endpoint, Some(model), req).await)
            };
            proxied = proxied.route(&format!("{prefix}{path}"), post(direct));
            if matches!(endpoint, Endpoint::Chat | Endpoint::Completions | Endpoint::Embeddings) {
                proxied = proxied
                    .route(&format!("{prefix}/openai/deployments/{{model}}{path}"), post(named))
                    .route(&format!("{prefix}/engines/{{model}}{path}"), post(named));
            }
        }
    }
    // Cohere's v2 path, which LiteLLM serves beside `/rerank` and `/v1/rerank`.
    let rerank_v2 = |State(app): State<Arc<App>>, req: Request| async move {
        axum::response::Response::from(serve_proxied(app, Endpoint::Rerank, None, req).await)
    };
    proxied = proxied.route("/v2/rerank", post(rerank_v2));
    proxied = proxied.route("/v1/messages", post(proxy::messages::messages));
    proxied = proxied.route("/v1/messages/count_tokens", post(proxy::count_tokens::count_tokens));
    let mut other = openapi::Routes::new();
    for prefix in ["", "/v1"] {
        other = other
            .route(&format!("{prefix}/models"), get(info::models))
            .route(&format!("{prefix}/models/{{*id}}"), get(info::model_by_id))
            .route(&format!("{prefix}/model/info"), get(manage::model_info))
            .route(&format!("{prefix}/responses/{{id}}"), get(proxy::responses::get).delete(proxy::responses::delete));
        other = files::routes(other, prefix);
    }
    other = other.route("/model_group/info", get(info::model_group_info));
    // Provider pass-through: everything under each provider's prefix that no route above
    // serves (the Azure-style model routes under `/openai/deployments/` stay model calls).
    for native in sluice_providers::passthrough::Native::ALL {
        for prefix in native.prefixes() {
            let relay =
                move |State(app): State<Arc<App>>, req: Request| passthrough::serve_native(app, native, prefix, req);
            other = other.route(&format!("{prefix}/{{*endpoint}}"), axum::routing::any(relay));
        }
    }
    // Known once every route is in the table.
    let document = Arc::new(std::sync::OnceLock::new());
    let other = other
        .route("/health/liveliness", get(info::liveliness))
        .route("/health/liveness", get(info::liveliness))
        .route("/health/readiness", get(info::readiness))
        .route("/health/readiness/details", get(info::readiness_details))
        .route("/health", get(health::endpoint))
        .route("/routes", get(info::routes))
        .route("/", get(info::root))
        .route("/metrics", get(info::metrics))
        .route("/openapi.json", openapi::serve_document(document.clone()))
        .route("/docs", get(openapi::docs_page))
        .merge(manage::routes());
    let all = proxied.map(|r| r.method_not_allowed_fallback(method_not_allowed)).merge(other.map(|r| {
        r.fallback(fallback)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(app.clone(), access_log::layer))
            .layer(axum::middleware::from_fn_with_state(app.clone(), ui::session_credential))
    }));
    let paths = all.paths().to_vec();
    let _ = document.set(openapi::Document::new(paths.clone()));
    // The admin UI's pages are not part of the API the document describes.
    (all.into_router().merge(ui::routes(app.clone())).with_state(app), paths)
}

/// What each client connection runs. `listen`'s own HTTP/1.1 path calls [`Gateway::direct`] for
/// the plain requests to the routes that carry the traffic; on connections hyper serves, the
/// tower service below matches the same POST routes (chat, completions and embeddings, with and
/// without `/v1`) by their exact path and calls them directly, and everything else goes through
/// [`routes`]. Going through axum's router was a measurable share of a request (path matching, an
/// extensions map for path parameters, boxed and cloned services; bench/README.md).
#[derive(Clone)]
pub struct Gateway {
    app: Arc<App>,
    router: axum::Router,
    /// The client's address, for `allowed_ips` (set per connection by `listen`).
    peer: Option<std::net::IpAddr>,
}

impl Gateway {
    pub fn new(app: Arc<App>) -> Gateway {
        Gateway { router: routes(app.clone()), app, peer: None }
    }

    /// The gateway as one client connection sees it.
    pub fn for_peer(&self, peer: std::net::IpAddr) -> Gateway {
        Gateway { peer: Some(peer), ..self.clone() }
    }

    /// Serves a request to one of the direct routes (see [`direct_route`]) whose head arrived at
    /// `received`: the entry of `listen`'s own HTTP/1.1 path.
    pub(crate) fn direct(
        &self,
        endpoint: Endpoint,
        request: exchange::ClientRequest,
        received: std::time::Instant,
    ) -> impl std::future::Future<Output = exchange::Reply> + Send + 'static {
        use futures_util::future::Either;
        // No `async` block around the two: it would hold the request's parts beside the
        // handler's future, in every connection's task.
        let parts = &request.parts;
        let serve = match self.app.gate.check(parts.uri.path(), self.peer, &parts.headers) {
            Err(refused) => Either::Left(std::future::ready(errors::reply(&refused, errors::Flavour::OpenAi))),
            Ok(()) => Either::Right(proxy::handle(self.app.clone(), endpoint, None, request, received)),
        };
        contained(endpoint.path(), serve, panicked)
    }

    /// The largest request body the gateway accepts, and how long a client has to send it.
    pub(crate) fn body_limits(&self) -> (usize, std::time::Duration) {
        (self.app.max_request_bytes, self.app.client_body_timeout)
    }
}

/// Serves a proxied route's request that hyper read (its body still to come).
fn serve_proxied(
    app: Arc<App>,
    endpoint: Endpoint,
    path_model: Option<String>,
    req: Request,
) -> impl std::future::Future<Output = exchange::Reply> + Send + 'static {
    let (parts, body) = req.into_parts();
    let request = exchange::ClientRequest { parts, body: exchange::ClientBody::Stream(body) };
    proxy::handle(app, endpoint, path_model, request, std::time::Instant::now())
}

/// The endpoints served at their own path (`Endpoint::path`), with and without `/v1`: [`routes`]
/// registers them with axum, and [`Gateway`] calls them before axum.
const DIRECT_ENDPOINTS: [Endpoint; 12] = [
    Endpoint::Chat,
    Endpoint::Completions,
    Endpoint::Embeddings,
    Endpoint::Responses,
    Endpoint::Rerank,
    Endpoint::Images,
    Endpoint::ImageEdits,
    Endpoint::ImageVariations,
    Endpoint::Moderations,
    Endpoint::Speech,
    Endpoint::Transcriptions,
    Endpoint::Translations,
];

/// The endpoint a request goes straight to, if it is one of [`Gateway`]'s direct routes.
pub(crate) fn direct_route(method: &http::Method, path: &str) -> Option<Endpoint> {
    if method != http::Method::POST {
        return None;
    }
    let path = path.strip_prefix("/v1").unwrap_or(path);
    DIRECT_ENDPOINTS.into_iter().find(|endpoint| endpoint.path() == path)
}

impl<B> tower::Service<http::Request<B>> for Gateway
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let req: Request = req.map(axum::body::Body::new);
        if let Err(e) = self.app.gate.check(req.uri().path(), self.peer, req.headers()) {
            return Box::pin(std::future::ready(Ok(errors::error_response(&e))));
        }
        match direct_route(req.method(), req.uri().path()) {
            Some(endpoint) => {
                let answer = serve_proxied(self.app.clone(), endpoint, None, req);
                Box::pin(async move { Ok(contained(endpoint.path(), answer, panicked).await.into()) })
            }
            None => {
                let route = RouteName(req.method().clone(), req.uri().path().to_string());
                let answer = tower::Service::call(&mut self.router, req);
                Box::pin(async move {
                    let answer = async move { answer.await.unwrap_or_else(|never| match never {}) };
                    Ok(contained(route, answer, || panicked().into()).await)
                })
            }
        }
    }
}

/// Runs one request's handler so that a panic in it costs that request only: the client gets a
/// 500 (or, once the answer has started, a closed connection) and the process goes on serving.
/// Each panic is logged at error level with the route (keys in paths abbreviated).
pub(crate) fn contained<T>(
    route: impl std::fmt::Display,
    handler: impl std::future::Future<Output = T>,
    on_panic: impl FnOnce() -> T,
) -> impl std::future::Future<Output = T> {
    use futures_util::FutureExt;
    // A combinator rather than an `async fn`: the connection's task holds this future inline
    // whether or not a request is in flight, and an `async fn` would keep `handler` and the
    // future wrapping it side by side.
    std::panic::AssertUnwindSafe(handler).catch_unwind().map(move |answer| match answer {
        Ok(answer) => answer,
        Err(_) => {
            tracing::error!(route = %route, "a request handler panicked; answered 500 and kept serving");
            on_panic()
        }
    })
}

/// Logs every panic as one error line with where it happened, through the log (so `--json_logs`
/// keeps every line JSON). The panic's message is kept only when it is a fixed text: a formatted
/// one can carry request data, keys included.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info.payload().downcast_ref::<&'static str>().copied().unwrap_or("(message withheld)");
        tracing::error!(location = %location, "panic: {message}");
    }));
}

/// The answer to a request whose handler panicked.
fn panicked() -> exchange::Reply {
    errors::reply(
        &sluice_wire::ApiError::new(
            500,
            "sluice hit an internal error while handling this request (logged on the server). Nothing else was affected; retry the request, and report it if it repeats.",
        ),
        errors::Flavour::OpenAi,
    )
}

/// A request's method and path for a log line, with anything that looks like a raw key (some
/// management routes carry one in the path) abbreviated.
struct RouteName(http::Method, String);

impl std::fmt::Display for RouteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, manage::redact(&self.1))
    }
}

/// What no route serves: a configured `pass_through_endpoints` route (built-in routes win over
/// them, as in LiteLLM), else FastAPI's 404.
async fn fallback(app: State<Arc<App>>, req: Request) -> axum::response::Response {
    if app.pass_through.has_custom() {
        if let Some(answer) = passthrough::serve_custom(app, req).await {
            return answer;
        }
    }
    not_found().await
}

/// FastAPI's bodies, which LiteLLM clients see for unknown routes.
async fn not_found() -> axum::response::Response {
    (http::StatusCode::NOT_FOUND, [(http::header::CONTENT_TYPE, "application/json")], "{\"detail\":\"Not Found\"}")
        .into_response()
}

async fn method_not_allowed() -> axum::response::Response {
    (
        http::StatusCode::METHOD_NOT_ALLOWED,
        [(http::header::CONTENT_TYPE, "application/json")],
        "{\"detail\":\"Method Not Allowed\"}",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_costs_its_request_only() {
        let boom = async {
            if std::hint::black_box(true) {
                panic!("a bug reached from a request");
            }
            axum::response::Response::new(axum::body::Body::empty())
        };
        let answer = contained("/chat/completions", boom, || panicked().into()).await;
        assert_eq!(answer.status(), 500);
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("internal error"), "{v}");
        assert!(!String::from_utf8_lossy(&body).contains("a bug reached"), "the panic's text stays in the log");
        let fine = contained("/chat/completions", async { 7 }, || 0).await;
        assert_eq!(fine, 7);
    }

    #[test]
    fn routes_in_panic_logs_abbreviate_keys() {
        let name = RouteName(http::Method::POST, "/key/sk-abcdefghijklmnopqrstuv/regenerate".into());
        let text = name.to_string();
        assert!(text.starts_with("POST /key/sk-"), "{text}");
        assert!(!text.contains("abcdefghijklmnopqrstuv"), "{text}");
    }

    #[test]
    fn direct_routes_are_the_exact_post_paths() {
        let post = http::Method::POST;
        for (path, endpoint) in [
            ("/chat/completions", Endpoint::Chat),
            ("/v1/chat/completions", Endpoint::Chat),
            ("/completions", Endpoint::Completions),
            ("/v1/completions", Endpoint::Completions),
            ("/embeddings", Endpoint::Embeddings),
            ("/v1/embeddings", Endpoint::Embeddings),
            ("/responses", Endpoint::Responses),
            ("/v1/responses", Endpoint::Responses),
            ("/rerank", Endpoint::Rerank),
            ("/v1/rerank", Endpoint::Rerank),
            ("/images/generations", Endpoint::Images),
            ("/v1/images/generations", Endpoint::Images),
            ("/images/edits", Endpoint::ImageEdits),
            ("/v1/images/edits", Endpoint::ImageEdits),
            ("/images/variations", Endpoint::ImageVariations),
            ("/v1/images/variations", Endpoint::ImageVariations),
            ("/v1/moderations", Endpoint::Moderations),
            ("/v1/audio/speech", Endpoint::Speech),
            ("/v1/audio/transcriptions", Endpoint::Transcriptions),
            ("/audio/translations", Endpoint::Translations),
        ] {
            assert_eq!(direct_route(&post, path), Some(endpoint), "{path}");
            assert_eq!(direct_route(&http::Method::GET, path), None, "{path}");
        }
        for path in ["/chat/completions/", "/v1/v1/chat/completions", "/v2/chat/completions", "/v1", "/", ""] {
            assert_eq!(direct_route(&post, path), None, "{path}");
        }
    }
}
