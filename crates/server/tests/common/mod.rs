//! What the router-level tests share: an app built from a config (with an in-memory SQLite
//! store when asked), and requests sent through `routes` as a client's key would send them.

#![allow(dead_code)]

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_server::config::{Config, Env};
use sluice_server::{routes, App};
use sluice_store::Store;
use std::sync::Arc;
use tower::ServiceExt;

/// The app of `config`, with an in-memory store attached when `with_store`.
pub async fn app_from(config: &str, with_store: bool) -> Arc<App> {
    let config = Config::from_yaml_str(config, Env::fixed([])).expect("config");
    let app = App::with_env(&config, &Env::fixed([])).expect("app");
    if with_store {
        app.access.attach(Store::open("sqlite::memory:", 1).await.expect("store"));
    }
    app
}

/// Sends one request with `key` as its bearer token; the answer's status and JSON body (a body
/// that is not JSON comes back as a JSON string).
pub async fn call(app: &Arc<App>, method: Method, uri: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {key}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = routes(app.clone()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

pub async fn post(app: &Arc<App>, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, uri, key, Some(body)).await
}

pub async fn get(app: &Arc<App>, uri: &str, key: &str) -> (StatusCode, Value) {
    call(app, Method::GET, uri, key, None).await
}
