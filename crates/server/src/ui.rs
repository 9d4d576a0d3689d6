//! The admin web UI mounted at `/ui` (the files and sessions are `sluice-ui`'s): the pages, the
//! sign-in and sign-out, and the one bridge from a signed-in browser to the management API.
//!
//! Sign-in checks the key exactly as the API would (`Access::authenticate`), or LiteLLM's
//! `UI_USERNAME`/`UI_PASSWORD` (user `admin` and the master key when they are unset), which sign
//! in as the master key. The API then takes the session cookie as the caller's key only when the
//! request also carries the session's CSRF token ([`session_credential`]), for every method: the
//! session acts as that key, so the UI can do nothing its key could not do through the API.

use crate::app::App;
use crate::config::{Config, Env};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use sluice_access::Identity;
use sluice_ui::session::{self, CSRF_HEADER};
use sluice_ui::{assets, Asset, Sessions};
use sluice_wire::ApiError;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What the UI keeps in the app: the sessions and who may sign in with a user name.
pub struct UiState {
    pub sessions: Sessions,
    /// The master key, which a user-name sign-in acts as (`None`: an open proxy).
    master_key: Option<String>,
    /// `UI_USERNAME` / `UI_PASSWORD`; LiteLLM's defaults are `admin` and the master key.
    username: Option<String>,
    password: Option<String>,
}

impl UiState {
    pub fn new(config: &Config, env: &Env) -> UiState {
        let master_key = config.general.master_key.as_ref().map(|k| k.expose().to_string());
        UiState {
            sessions: Sessions::default(),
            username: env.get("UI_USERNAME").filter(|u| !u.is_empty()).or_else(|| Some("admin".into())),
            password: env.get("UI_PASSWORD").filter(|p| !p.is_empty()).or_else(|| master_key.clone()),
            master_key,
        }
    }

    fn user_matches(&self, username: &str, password: &str) -> bool {
        let (Some(u), Some(p)) = (&self.username, &self.password) else { return false };
        // Both compared, always, so the time taken says nothing of which one was wrong.
        let user_ok = username.as_bytes().ct_eq(u.as_bytes());
        let pass_ok = password.as_bytes().ct_eq(p.as_bytes());
        bool::from(user_ok & pass_ok)
    }
}

/// The `/ui` routes, each with its access-log line. Every answer carries the CSP and the other
/// headers of [`secure_headers`].
pub(crate) fn routes(app: Arc<App>) -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/login", get(page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/session", get(current))
        .route("/ui/api/live", get(live))
        .route("/ui/assets/{name}", get(asset))
        .route("/ui/{page}", get(page))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(axum::middleware::from_fn_with_state(app, crate::access_log::layer))
}

async fn secure_headers(mut answer: Response) -> Response {
    let h = answer.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(sluice_ui::CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The files set their own (`no-cache`, revalidated by ETag); the rest — a session's CSRF
    // token, live figures — is kept by no cache.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    answer
}

/// A page: the app's shell, which draws the page its path names.
async fn page(uri: http::Uri, headers: HeaderMap) -> Response {
    let name = uri.path().trim_start_matches("/ui").trim_matches('/');
    if !assets::PAGES.contains(&name) {
        let body = "<!doctype html><title>Not found</title><h1>Not found</h1><p><a href=\"/ui\">Back to sluice</a></p>";
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    }
    serve(assets::shell(), &headers)
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>, headers: HeaderMap) -> Response {
    match assets::asset(&name) {
        Some(file) => serve(file, &headers),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "no such file").into_response(),
    }
}

/// A file, or 304 when the browser holds this version (it always asks: `no-cache`).
fn serve(file: &'static Asset, headers: &HeaderMap) -> Response {
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| file.matches(v));
    let status = if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let body = if fresh { Bytes::new() } else { Bytes::from_static(file.body) };
    let mut answer = (status, body).into_response();
    let h = answer.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&file.etag) {
        h.insert(header::ETAG, etag);
    }
    answer
}

#[derive(serde::Deserialize)]
struct SignIn {
    key: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `POST /ui/login` with `{"key"}` or `{"username", "password"}` as JSON.
async fn login(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    // A page of another site can post a form but not JSON, and names itself in `Origin`: both
    // checks keep it from signing a browser in as the attacker's key.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return refusal(
            415,
            "Sign in with a JSON body: {\"key\": \"sk-...\"} or {\"username\": ..., \"password\": ...}.",
        );
    }
    if !same_origin(&headers) {
        return refusal(403, "Sign-in refused: the request came from a page of another site.");
    }
    let Ok(form) = serde_json::from_slice::<SignIn>(&body) else {
        return refusal(
            400,
            "Sign in with a JSON body: {\"key\": \"sk-...\"} or {\"username\": ..., \"password\": ...}.",
        );
    };
    let credential = match (form.key, form.username, form.password) {
        (Some(key), _, _) if !key.trim().is_empty() => key.trim().to_string(),
        (_, Some(user), Some(password)) => {
            if !app.ui.user_matches(&user, &password) {
                return refusal(401, "Sign-in refused: wrong user name or password (UI_USERNAME and UI_PASSWORD).");
            }
            app.ui.master_key.clone().unwrap_or_default()
        }
        _ => return refusal(400, "Enter your key (the master key or a virtual key), or a user name and password."),
    };
    let identity = match authenticate(&app, &credential).await {
        Ok(identity) => identity,
        Err(e) => return crate::errors::error_response(&e),
    };
    let (id, signed_in) = app.ui.sessions.start(credential);
    let mut answer = crate::manage::json(who(&app, &identity, &signed_in.csrf));
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&id, over_tls(&headers))) {
        answer.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    answer
}

/// `GET /ui/session`: who the session's browser is and its CSRF token, or `{"signed_in": false}`
/// (a 200, so that opening the UI signed out is no error in the browser's console). A session
/// whose key has since been deleted, blocked or expired is ended here.
async fn current(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let signed_out = || crate::manage::json(serde_json::json!({"signed_in": false}));
    let Some(id) = session_id(&headers) else { return signed_out() };
    let Some(signed_in) = app.ui.sessions.get(id) else { return signed_out() };
    match authenticate(&app, &signed_in.credential).await {
        Ok(identity) => crate::manage::json(who(&app, &identity, &signed_in.csrf)),
        Err(_) => {
            app.ui.sessions.end(id);
            signed_out()
        }
    }
}

/// `POST /ui/logout` (with the session's CSRF token): ends the session and removes the cookie.
async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else { return refusal(401, "Not signed in.") };
    if let Some(signed_in) = app.ui.sessions.get(id) {
        if !signed_in.csrf_matches(csrf_of(&headers)) {
            return refusal(403, "Sign-out needs the session's CSRF token in the x-sluice-csrf header.");
        }
        app.ui.sessions.end(id);
    }
    let mut answer = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie(over_tls(&headers))) {
        answer.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    answer
}

/// The bridge to the API, a layer on every route but the model calls: a request that presents
/// no key of its own but the session cookie and that session's CSRF token is made as the
/// session's key. A cookie without the token is ignored, so the route sees a caller with no key.
pub(crate) async fn session_credential(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    as_session_key(&app, req.headers_mut());
    next.run(req).await
}

/// Puts the session's key in `headers` when they carry a session cookie, its CSRF token and no
/// key of their own.
fn as_session_key(app: &App, headers: &mut HeaderMap) {
    let Some(signed_in) = session_id(headers).and_then(|id| app.ui.sessions.get(id)) else { return };
    let has_own_key = !matches!(sluice_access::auth::presented_key(headers), Ok(None));
    if !has_own_key && signed_in.csrf_matches(csrf_of(headers)) && !signed_in.credential.is_empty() {
        if let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", signed_in.credential)) {
            bearer.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, bearer);
        }
    }
}

/// `GET /ui/api/live` (an admin's, by key or session): the dashboard's live figures, all in
/// process, nothing read from the database. Traffic, latency percentiles and today's spend come
/// from the access layer's [`Pulse`](sluice_metrics::Pulse) (recorded as each request finishes
/// and each bill settles); deployments' load and cooldowns from the router's own atomics.
async fn live(State(app): State<Arc<App>>, mut headers: HeaderMap) -> Response {
    use sluice_state::RateWindow;
    as_session_key(&app, &mut headers);
    if let Err(refused) = crate::manage::admin(&app, &headers, "/ui/api/live").await {
        return refused.into_response();
    }
    let router = app.router.load();
    let now_ms = router.now_ms();
    let second = now_ms.saturating_sub(1) / 1000;
    let mut in_flight = 0u64;
    let mut deployments = Vec::new();
    for d in router.deployments() {
        let count = d.health.requests.used(second);
        let flying = u64::from(d.health.in_flight.load(std::sync::atomic::Ordering::Relaxed));
        in_flight = in_flight.saturating_add(flying);
        let cooling = d.health.cooling(now_ms);
        deployments.push(serde_json::json!({
            "id": d.id,
            "model_name": d.model_name,
            "api_base": d.target.served.api_base,
            "cooling_down": cooling,
            "cooldown_left_s": if cooling { d.health.cooldown_left(now_ms).div_ceil(1000) } else { 0 },
            "in_flight": flying,
            "requests_last_minute": count,
            "latency_ms": d.health.latency_ewma().filter(|l| l.is_finite()).map(|l| l * 1000.0),
            "error_ratio": d.health.error_ratio(),
        }));
    }
    let pulse = &app.access.pulse;
    let recent = pulse.recent();
    let today = pulse.today();
    let day_start = chrono::Utc::now().timestamp().max(0) as u64 / 86_400 * 86_400;
    let ratio = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
    let figures = |t: &sluice_metrics::pulse::Today| serde_json::json!({"requests": t.requests, "failures": t.failures, "spend": t.spend});
    let mut by_model = pulse.today_by_model();
    by_model.sort_by(|a, b| b.1.spend.total_cmp(&a.1.spend).then(b.1.requests.cmp(&a.1.requests)));
    let top_models: Vec<_> = by_model
        .iter()
        .take(TOP)
        .map(|(name, t)| {
            let mut v = figures(t);
            v["model"] = name.as_str().into();
            v
        })
        .collect();
    let mut by_key = pulse.today_by_key();
    by_key.sort_by(|a, b| b.1.spend.total_cmp(&a.1.spend).then(b.1.requests.cmp(&a.1.requests)));
    by_key.truncate(TOP);
    // Named back from the registry: a key's alias, or the start of its token hash.
    let mut names = std::collections::HashMap::new();
    for entry in app.access.registry.keys.iter() {
        let r = &entry.value().record;
        let id = sluice_metrics::Pulse::id_of(&r.token);
        if by_key.iter().any(|(k, _)| *k == id) {
            let short: String = r.token.chars().take(10).collect();
            names.insert(id, (r.key_alias.clone().unwrap_or_else(|| format!("{short}…")), short));
        }
    }
    let top_keys: Vec<_> = by_key
        .iter()
        .map(|(id, t)| {
            let mut v = figures(t);
            let (label, token) = names.get(id).cloned().unwrap_or_else(|| ("(deleted key)".into(), String::new()));
            v["key"] = label.into();
            v["token"] = token.into();
            v
        })
        .collect();
    crate::manage::json(serde_json::json!({
        "window_s": sluice_metrics::pulse::WINDOW_S,
        "requests_per_second": recent.requests as f64 / sluice_metrics::pulse::WINDOW_S as f64,
        "requests_last_minute": recent.requests,
        "failures_last_minute": recent.failures,
        "error_ratio": ratio(recent.failures, recent.requests),
        "p50_ms": recent.p50_ms,
        "p99_ms": recent.p99_ms,
        "in_flight": in_flight,
        "today": figures(&today),
        "counting_since_unix_s": day_start.max(pulse.started_unix_s()),
        "top_models": top_models,
        "top_keys": top_keys,
        "deployments": deployments,
    }))
}

/// How many models and keys the dashboard ranks.
const TOP: usize = 5;

async fn authenticate(app: &App, credential: &str) -> Result<Identity, ApiError> {
    let mut h = HeaderMap::new();
    if !credential.is_empty() {
        let value = HeaderValue::from_str(&format!("Bearer {credential}")).map_err(|_| {
            ApiError::new(401, "Sign-in refused: a key is letters, digits and dashes.").kind("auth_error")
        })?;
        h.insert(header::AUTHORIZATION, value);
    }
    app.access.authenticate(&h).await
}

/// What the app shows of who is signed in.
fn who(app: &App, identity: &Identity, csrf: &str) -> serde_json::Value {
    let registry = &app.access.registry;
    let admin = identity.is_admin(registry);
    let mut v = serde_json::json!({
        "signed_in": true,
        "csrf_token": csrf,
        "admin": admin,
        "store_model_in_db": app.store_model_in_db,
    });
    match identity {
        Identity::Key(k) => {
            let r = &k.record;
            let role =
                r.user_id.as_deref().and_then(|u| registry.users.get(u)).and_then(|u| u.record.user_role.clone());
            v["token"] = r.token.clone().into();
            v["key_alias"] = r.key_alias.clone().into();
            v["user_id"] = r.user_id.clone().into();
            v["team_id"] = r.team_id.clone().into();
            v["user_role"] = role.into();
        }
        _ => v["user_role"] = "proxy_admin".into(),
    }
    v
}

fn refusal(status: u16, message: &str) -> Response {
    crate::errors::error_response(&ApiError::new(status, message).kind("auth_error"))
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(session::cookie_value)
}

fn csrf_of(headers: &HeaderMap) -> &str {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Whether the browser reached sluice over TLS (a TLS-terminating proxy says so in
/// `X-Forwarded-Proto`): the cookie is then `Secure`.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// A request with no `Origin`, or one naming the host it was sent to (`Host`, or the
/// `X-Forwarded-Host` of a proxy in front that rewrites `Host`).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let named = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .is_some_and(|host| !host.is_empty() && origin_host.eq_ignore_ascii_case(host))
    };
    named("host") || named("x-forwarded-host")
}
