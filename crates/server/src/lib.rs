//! The sluice gateway: an axum app that speaks the OpenAI API (and LiteLLM's routes) to clients
//! and forwards each call to the deployment the router picks.
//!
//! `config` turns a LiteLLM `config.yaml` into typed settings (reporting what it ignores),
//! `auth` checks the caller's key, `proxy` carries a request to its upstream and the answer back,
//! `info` serves the model lists and health routes, and `listen` runs the accept loop with the
//! timeouts that keep slow clients from holding tasks forever.

pub mod access;
pub mod app;
pub mod auth;
pub mod config;
pub mod errors;
pub mod info;
pub mod listen;
pub mod manage;
pub mod proxy;
pub mod tokens;
pub mod vertex_auth;

pub use app::App;
pub use config::Config;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::sync::Arc;

/// Every route, with and without `/v1`, as LiteLLM serves them.
pub fn routes(app: Arc<App>) -> axum::Router {
    let mut r = axum::Router::new();
    for prefix in ["", "/v1"] {
        r = r
            .route(&format!("{prefix}/chat/completions"), post(proxy::chat))
            .route(&format!("{prefix}/completions"), post(proxy::completions))
            .route(&format!("{prefix}/embeddings"), post(proxy::embeddings))
            .route(&format!("{prefix}/openai/deployments/{{model}}/chat/completions"), post(proxy::chat_for))
            .route(&format!("{prefix}/openai/deployments/{{model}}/completions"), post(proxy::completions_for))
            .route(&format!("{prefix}/openai/deployments/{{model}}/embeddings"), post(proxy::embeddings_for))
            .route(&format!("{prefix}/engines/{{model}}/chat/completions"), post(proxy::chat_for))
            .route(&format!("{prefix}/engines/{{model}}/completions"), post(proxy::completions_for))
            .route(&format!("{prefix}/engines/{{model}}/embeddings"), post(proxy::embeddings_for))
            .route(&format!("{prefix}/models"), get(info::models))
            .route(&format!("{prefix}/models/{{*id}}"), get(info::model_by_id))
            .route(&format!("{prefix}/model/info"), get(manage::models::model_info));
    }
    r.route("/health/liveliness", get(info::liveliness))
        .route("/health/liveness", get(info::liveliness))
        .route("/health/readiness", get(info::readiness))
        .route("/", get(info::root))
        .route("/metrics", get(info::metrics))
        .route("/v1/messages", post(proxy::messages::messages))
        .merge(manage::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
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
