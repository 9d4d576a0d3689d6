//! The admin UI's security on the axum router with an in-memory SQLite store: every `/ui` answer
//! carries the CSP; sign-in sets an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind TLS);
//! the API takes the cookie only beside the session's CSRF token, for reads and writes alike;
//! sign-out ends the session; and a virtual key's session reads no other key.

mod common;

use axum::body::Body;
use http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sluice_server::config::{Config, Env};
use sluice_server::{routes, App};
use sluice_store::Store;
use std::sync::Arc;
use tower::ServiceExt;

const MASTER: &str = "sk-master-test";

const CONFIG: &str = r#"
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      mock_response: hi
general_settings:
  master_key: sk-master-test
"#;

async fn app_with(env: Env) -> Arc<App> {
    let config = Config::from_yaml_str(CONFIG, Env::fixed([])).expect("config");
    let app = App::with_env(&config, &env).expect("app");
    app.access.attach(Store::open("sqlite::memory:", 1).await.expect("store"));
    app
}

async fn app() -> Arc<App> {
    app_with(Env::fixed([])).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

async fn send(app: &Arc<App>, method: Method, uri: &str, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri).header(header::HOST, "sluice.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(b) => {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                req = req.header(header::CONTENT_TYPE, "application/json");
            }
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = routes(app.clone()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, headers, body, text }
}

/// A signed-in browser: its cookie header and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &Arc<App>, body: Value) -> (Browser, Answer) {
    let a = send(app, Method::POST, "/ui/login", &[], Some(body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let set = a.headers.get(header::SET_COOKIE).expect("a session cookie").to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = a.body["csrf_token"].as_str().expect("a CSRF token").to_string();
    (Browser { cookie, csrf }, a)
}

impl Browser {
    async fn call(&self, app: &Arc<App>, method: Method, uri: &str, body: Option<Value>) -> Answer {
        send(app, method, uri, &[("cookie", &self.cookie), ("x-sluice-csrf", &self.csrf)], body).await
    }
}

async fn new_key(app: &Arc<App>, alias: &str) -> String {
    let (s, k) = common::post(app, "/key/generate", MASTER, json!({"key_alias": alias})).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    k["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_page_is_the_app_under_the_csp_and_files_revalidate() {
    let app = app().await;
    for page in [
        "/ui",
        "/ui/",
        "/ui/login",
        "/ui/keys",
        "/ui/teams",
        "/ui/users",
        "/ui/organizations",
        "/ui/models",
        "/ui/spend",
        "/ui/logs",
    ] {
        let a = send(&app, Method::GET, page, &[], None).await;
        assert_eq!(a.status, StatusCode::OK, "{page}");
        assert!(a.text.contains("/ui/assets/app.js"), "{page} serves the app's shell");
        let csp = a.headers.get(header::CONTENT_SECURITY_POLICY).expect("CSP").to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(a.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
    }
    let missing = send(&app, Method::GET, "/ui/nope", &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.headers.contains_key(header::CONTENT_SECURITY_POLICY), "a 404 page is under the CSP too");

    let js = send(&app, Method::GET, "/ui/assets/app.js", &[], None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    let etag = js.headers[header::ETAG].to_str().unwrap().to_string();
    let again = send(&app, Method::GET, "/ui/assets/app.js", &[("if-none-match", &etag)], None).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());
    assert_eq!(send(&app, Method::GET, "/ui/assets/index.html", &[], None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_secure_behind_tls() {
    let app = app().await;
    let (_, a) = sign_in(&app, json!({"key": MASTER})).await;
    let set = a.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("sluice_ui="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP cannot carry a Secure cookie: {set}");
    assert!(!a.text.contains(MASTER), "the answer never repeats the key");
    assert_eq!(a.body["admin"], true);

    let tls =
        send(&app, Method::POST, "/ui/login", &[("x-forwarded-proto", "https")], Some(json!({"key": MASTER}))).await;
    assert!(tls.headers[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn sign_in_is_refused_for_bad_keys_forms_and_other_sites() {
    let app = app().await;
    let wrong = send(&app, Method::POST, "/ui/login", &[], Some(json!({"key": "sk-not-a-key"}))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());

    let form = send(
        &app,
        Method::POST,
        "/ui/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(json!({"key": MASTER})),
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "a cross-site form cannot sign a browser in");
    assert!(form.headers.get(header::SET_COOKIE).is_none());

    let other_site =
        send(&app, Method::POST, "/ui/login", &[("origin", "https://evil.test")], Some(json!({"key": MASTER}))).await;
    assert_eq!(other_site.status, StatusCode::FORBIDDEN);
    assert!(other_site.headers.get(header::SET_COOKIE).is_none());
    let same_site =
        send(&app, Method::POST, "/ui/login", &[("origin", "http://sluice.test")], Some(json!({"key": MASTER}))).await;
    assert_eq!(same_site.status, StatusCode::OK, "{}", same_site.text);
    let behind_proxy = [("origin", "https://gw.example"), ("x-forwarded-host", "gw.example")];
    let proxied = send(&app, Method::POST, "/ui/login", &behind_proxy, Some(json!({"key": MASTER}))).await;
    assert_eq!(proxied.status, StatusCode::OK, "a proxy that rewrites Host: {}", proxied.text);
}

#[tokio::test]
async fn the_api_takes_the_cookie_only_with_its_csrf_token() {
    let app = app().await;
    let (browser, _) = sign_in(&app, json!({"key": MASTER})).await;
    let with_token = browser.call(&app, Method::GET, "/key/list", None).await;
    assert_eq!(with_token.status, StatusCode::OK, "{}", with_token.text);

    let cookie_only = [("cookie", browser.cookie.as_str())];
    let read = send(&app, Method::GET, "/key/list", &cookie_only, None).await;
    assert_eq!(read.status, StatusCode::UNAUTHORIZED, "a read without the token: {}", read.text);
    let write = send(&app, Method::POST, "/key/generate", &cookie_only, Some(json!({"key_alias": "csrf"}))).await;
    assert_eq!(write.status, StatusCode::UNAUTHORIZED, "a write without the token: {}", write.text);
    let wrong = [("cookie", browser.cookie.as_str()), ("x-sluice-csrf", "0000")];
    let forged = send(&app, Method::POST, "/key/generate", &wrong, Some(json!({"key_alias": "csrf"}))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "a wrong token: {}", forged.text);
    let (_, keys) = common::get(&app, "/key/list?key_alias=csrf", MASTER).await;
    assert_eq!(keys["total_count"], 0, "no refused write made a key: {keys}");

    // With the token, a write goes through as the signed-in key.
    let made = browser.call(&app, Method::POST, "/key/generate", Some(json!({"key_alias": "via-ui"}))).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
}

#[tokio::test]
async fn signed_out_there_is_no_session_and_sign_out_needs_the_token() {
    let app = app().await;
    let none = send(&app, Method::GET, "/ui/session", &[], None).await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.body, json!({"signed_in": false}));
    assert!(none.body.get("csrf_token").is_none());

    let (browser, _) = sign_in(&app, json!({"key": MASTER})).await;
    let me = send(&app, Method::GET, "/ui/session", &[("cookie", &browser.cookie)], None).await;
    assert_eq!(me.body["signed_in"], true);
    assert_eq!(me.headers[header::CACHE_CONTROL], "no-store", "no cache keeps a CSRF token");
    assert_eq!(me.body["csrf_token"], browser.csrf.as_str());

    let forged = send(&app, Method::POST, "/ui/logout", &[("cookie", &browser.cookie)], None).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "another site cannot sign a browser out");
    assert_eq!(browser.call(&app, Method::GET, "/key/list", None).await.status, StatusCode::OK);

    let out = browser.call(&app, Method::POST, "/ui/logout", None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(browser.call(&app, Method::GET, "/key/list", None).await.status, StatusCode::UNAUTHORIZED);
    let after = send(&app, Method::GET, "/ui/session", &[("cookie", &browser.cookie)], None).await;
    assert_eq!(after.body, json!({"signed_in": false}));
}

#[tokio::test]
async fn a_virtual_keys_session_reads_its_own_key_and_no_other() {
    let app = app().await;
    let mine = new_key(&app, "mine").await;
    let theirs = new_key(&app, "theirs").await;
    let (browser, who) = sign_in(&app, json!({"key": mine})).await;
    assert_eq!(who.body["admin"], false);
    assert_eq!(who.body["key_alias"], "mine");

    let list = browser.call(&app, Method::GET, "/key/list?return_full_object=true", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains("\"mine\""), "{}", list.text);
    assert!(!list.text.contains("theirs"), "another key's alias: {}", list.text);
    let other = browser.call(&app, Method::GET, &format!("/key/info?key={theirs}"), None).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    let made = browser.call(&app, Method::POST, "/key/generate", Some(json!({}))).await;
    assert!(made.status.is_client_error(), "a key of no user mints no keys: {}", made.text);
}

/// Spend-log rows of the key `raw` (of `user`, in `team`), one per request id, written as the
/// proxy writes them.
async fn log_rows(app: &Arc<App>, raw: &str, user: Option<&str>, team: Option<&str>, ids: &[&str]) {
    let token: std::sync::Arc<str> = sluice_server::access::hash_key(raw).into();
    let rows = ids
        .iter()
        .map(|id| sluice_store::SpendLogRecord {
            request_id: id.to_string(),
            api_key: token.clone(),
            user: user.map(str::to_string),
            team_id: team.map(str::to_string),
            model: "m".into(),
            status: "success".into(),
            start_time: chrono::Utc::now(),
            end_time: chrono::Utc::now(),
            ..Default::default()
        })
        .collect();
    app.access.store().expect("a store").insert_spend_logs(rows).await.expect("rows written");
}

/// `/spend/logs` rows (not the summary) as `browser`'s session reads them, with `filters`.
async fn logs(app: &Arc<App>, browser: &Browser, filters: &str) -> Answer {
    browser.call(app, Method::GET, &format!("/spend/logs?summarize=false{filters}"), None).await
}

fn request_ids(a: &Answer) -> Vec<String> {
    let mut ids: Vec<String> =
        a.body.as_array().expect("rows").iter().map(|r| r["request_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_virtual_key_of_no_user_reads_its_own_logs_and_is_refused_anyone_elses() {
    let app = app().await;
    let mine = new_key(&app, "mine").await;
    let theirs = new_key(&app, "theirs").await;
    log_rows(&app, &mine, None, None, &["mine-1", "mine-2"]).await;
    log_rows(&app, &theirs, None, Some("their-team"), &["theirs-1"]).await;
    let (browser, _) = sign_in(&app, json!({"key": mine})).await;

    let logs = browser.call(&app, Method::GET, "/spend/logs?summarize=false", None).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.text);
    assert_eq!(request_ids(&logs), ["mine-1", "mine-2"], "its own rows and no other key's");
    // Its own key named, by the raw key or its hash: the same rows.
    let hash = sluice_server::access::hash_key(&mine);
    for named in [mine.as_str(), hash.as_str()] {
        let own = browser.call(&app, Method::GET, &format!("/spend/logs?summarize=false&api_key={named}"), None).await;
        assert_eq!(request_ids(&own), ["mine-1", "mine-2"], "{}", own.text);
    }
    // Another key, a user or a team named: refused, as on the activity routes.
    for filter in [format!("api_key={theirs}"), "user_id=someone".to_string(), "team_id=their-team".to_string()] {
        let refused = browser.call(&app, Method::GET, &format!("/spend/logs?summarize=false&{filter}"), None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{filter}: {}", refused.text);
        assert!(refused.text.contains("may only view its own"), "{}", refused.text);
        assert!(!refused.text.contains("theirs-1"));
    }
    // The daily summary is its own too.
    let day = chrono::Utc::now().format("%Y-%m-%d");
    let summary = browser.call(&app, Method::GET, &format!("/spend/logs?start_date={day}&end_date={day}"), None).await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert!(!summary.text.contains(&sluice_server::access::hash_key(&theirs)), "{}", summary.text);

    // An admin's filters are unchanged: every row, or the other key's.
    let all =
        send(&app, Method::GET, "/spend/logs?summarize=false", &[("authorization", &format!("Bearer {MASTER}"))], None)
            .await;
    assert_eq!(request_ids(&all), ["mine-1", "mine-2", "theirs-1"]);
    let other = send(
        &app,
        Method::GET,
        &format!("/spend/logs?summarize=false&api_key={theirs}"),
        &[("authorization", &format!("Bearer {MASTER}"))],
        None,
    )
    .await;
    assert_eq!(request_ids(&other), ["theirs-1"]);

    // The activity routes apply the same rule to a key filter.
    let activity = format!("/user/daily/activity?start_date={day}&end_date={day}");
    let refused = browser.call(&app, Method::GET, &format!("{activity}&api_key={theirs}"), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let own = browser.call(&app, Method::GET, &format!("{activity}&api_key={mine}"), None).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
}

#[tokio::test]
async fn a_users_key_filters_its_logs_by_its_users_keys_and_teams_only() {
    let app = app().await;
    let (s, u) = common::post(&app, "/user/new", MASTER, json!({"user_id": "u", "user_role": "internal_user"})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    let (s, t) = common::post(
        &app,
        "/team/new",
        MASTER,
        json!({"team_id": "ut", "members_with_roles": [{"user_id": "u", "role": "user"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let key_of_u = |alias: &'static str| {
        let app = app.clone();
        async move {
            let (s, k) = common::post(&app, "/key/generate", MASTER, json!({"user_id": "u", "key_alias": alias})).await;
            assert_eq!(s, StatusCode::OK, "{k}");
            k["key"].as_str().unwrap().to_string()
        }
    };
    let (first, second) = (key_of_u("first").await, key_of_u("second").await);
    let stranger = new_key(&app, "stranger").await;
    log_rows(&app, &first, Some("u"), None, &["first-1"]).await;
    log_rows(&app, &second, Some("u"), Some("ut"), &["second-1"]).await;
    log_rows(&app, &stranger, None, None, &["stranger-1"]).await;
    let (browser, _) = sign_in(&app, json!({"key": first})).await;

    assert_eq!(request_ids(&logs(&app, &browser, "").await), ["first-1", "second-1"], "its user's rows");
    assert_eq!(
        request_ids(&logs(&app, &browser, &format!("&api_key={second}")).await),
        ["second-1"],
        "another key of its user"
    );
    assert_eq!(request_ids(&logs(&app, &browser, "&team_id=ut").await), ["second-1"], "a team its user is a member of");
    assert_eq!(logs(&app, &browser, &format!("&api_key={stranger}")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(logs(&app, &browser, "&team_id=elsewhere").await.status, StatusCode::FORBIDDEN);
    assert_eq!(logs(&app, &browser, "&user_id=someone").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_deleted_keys_session_ends() {
    let app = app().await;
    let key = new_key(&app, "short-lived").await;
    let (browser, _) = sign_in(&app, json!({"key": key})).await;
    let (s, _) = common::post(&app, "/key/delete", MASTER, json!({"keys": [key]})).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(browser.call(&app, Method::GET, "/key/list", None).await.status, StatusCode::OK);
    let me = send(&app, Method::GET, "/ui/session", &[("cookie", &browser.cookie)], None).await;
    assert_eq!(me.body, json!({"signed_in": false}));
}

#[tokio::test]
async fn user_name_sign_in_is_litellms_ui_username_and_password() {
    let ops = app_with(Env::fixed([("UI_USERNAME", "ops"), ("UI_PASSWORD", "s3cret")])).await;
    let wrong = send(&ops, Method::POST, "/ui/login", &[], Some(json!({"username": "ops", "password": "nope"}))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let (browser, who) = sign_in(&ops, json!({"username": "ops", "password": "s3cret"})).await;
    assert_eq!(who.body["admin"], true);
    assert_eq!(browser.call(&ops, Method::GET, "/user/list", None).await.status, StatusCode::OK);

    // Unset, LiteLLM's defaults: user `admin`, the master key as its password.
    let plain = app().await;
    sign_in(&plain, json!({"username": "admin", "password": MASTER})).await;
    let refused =
        send(&plain, Method::POST, "/ui/login", &[], Some(json!({"username": "admin", "password": "x"}))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_live_figures_are_an_admins_through_a_session_with_its_token() {
    let app = app().await;
    let (admin, _) = sign_in(&app, json!({"key": MASTER})).await;
    let live = admin.call(&app, Method::GET, "/ui/api/live", None).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text);
    let deployments = live.body["deployments"].as_array().expect("deployments");
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["model_name"], "m");
    assert_eq!(deployments[0]["cooling_down"], false);
    assert!(live.body["requests_per_second"].is_number());
    assert!(live.headers.contains_key(header::CONTENT_SECURITY_POLICY));

    let cookie_only = send(&app, Method::GET, "/ui/api/live", &[("cookie", &admin.cookie)], None).await;
    assert_eq!(cookie_only.status, StatusCode::UNAUTHORIZED, "{}", cookie_only.text);
    let key = new_key(&app, "not-admin").await;
    let (holder, _) = sign_in(&app, json!({"key": key})).await;
    let refused = holder.call(&app, Method::GET, "/ui/api/live", None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    let by_key = send(&app, Method::GET, "/ui/api/live", &[("authorization", &format!("Bearer {MASTER}"))], None).await;
    assert_eq!(by_key.status, StatusCode::OK, "an admin's key works as on any API route");
}

/// A priced model; the test's requests are answered in process (`mock_response` in the body,
/// which LiteLLM bills at the deployment's prices).
const PRICED: &str = r#"
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      mock_response: hi
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002
general_settings:
  master_key: sk-master-test
"#;

#[tokio::test]
async fn the_live_figures_move_with_traffic_without_the_database() {
    let config = Config::from_yaml_str(PRICED, Env::fixed([])).expect("config");
    let app = App::with_env(&config, &Env::fixed([])).expect("app");
    app.access.attach(Store::open("sqlite::memory:", 1).await.expect("store"));
    let key = new_key(&app, "busy-key").await;
    let live = || async {
        send(&app, Method::GET, "/ui/api/live", &[("authorization", &format!("Bearer {MASTER}"))], None).await.body
    };
    let before = live().await;
    assert_eq!(before["requests_last_minute"], 0, "{before}");
    assert_eq!(before["p50_ms"], Value::Null);
    assert_eq!(before["top_keys"], json!([]));

    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}], "mock_response": "hi"});
    for _ in 0..5 {
        let (s, body) = common::post(&app, "/chat/completions", &key, chat.clone()).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (s, _) =
        common::post(&app, "/chat/completions", &key, json!({"model": "no-such-model", "messages": chat["messages"]}))
            .await;
    assert!(s.is_client_error());
    // Nothing written to the database is read: the figures are there at once.
    let after = live().await;
    assert_eq!(after["requests_last_minute"], 6, "{after}");
    assert_eq!(after["failures_last_minute"], 1, "{after}");
    assert!(after["requests_per_second"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(after["p50_ms"].as_f64().is_some() && after["p99_ms"].as_f64() >= after["p50_ms"].as_f64(), "{after}");
    assert_eq!(after["today"]["requests"], 6);
    let spend = after["today"]["spend"].as_f64().unwrap_or(0.0);
    assert!(spend > 0.0, "today's spend: {after}");
    let top_key = &after["top_keys"][0];
    assert_eq!(top_key["key"], "busy-key", "{after}");
    assert_eq!(top_key["requests"], 6);
    assert!((top_key["spend"].as_f64().unwrap_or(0.0) - spend).abs() < 1e-9);
    let model = after["top_models"].as_array().and_then(|m| m.iter().find(|m| m["model"] == "m")).cloned();
    let model = model.unwrap_or_else(|| panic!("model m among the top: {after}"));
    assert_eq!(model["requests"], 5);
    assert!(model["spend"].as_f64().unwrap_or(0.0) > 0.0);
}
