//! Who may use the routes that are not model calls, on the axum router with an in-memory SQLite
//! store: a blocked or expired key is refused on every route (as on the proxy routes), the
//! master key still works, and the lookups a non-admin may make answer alike whether or not the
//! thing asked about exists.

mod common;

use common::{call, get, post};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_server::App;
use std::sync::Arc;

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

async fn app() -> Arc<App> {
    common::app_from(CONFIG, true).await
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_else(|| panic!("no error message in {v}"))
}

/// A `proxy_admin` user's key.
async fn admin_key(app: &Arc<App>, user_id: &str) -> String {
    let (s, u) = post(app, "/user/new", MASTER, json!({"user_id": user_id, "user_role": "proxy_admin"})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    u["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_blocked_admin_key_manages_nothing_not_even_itself() {
    let app = app().await;
    let boss = admin_key(&app, "boss").await;
    let (s, k) = post(&app, "/key/generate", &boss, json!({})).await;
    assert_eq!(s, StatusCode::OK, "an unblocked admin key mints keys: {k}");

    let (s, _) = post(&app, "/key/block", MASTER, json!({"key": boss})).await;
    assert_eq!(s, StatusCode::OK);
    let blocked = "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin.";
    for (method, uri, body) in [
        (Method::POST, "/key/generate", Some(json!({}))),
        (Method::POST, "/key/unblock", Some(json!({"key": boss}))),
        (Method::POST, "/key/update", Some(json!({"key": boss, "blocked": false}))),
        (Method::POST, "/user/new", Some(json!({"user_id": "sneaky", "user_role": "proxy_admin"}))),
        (Method::POST, "/team/new", Some(json!({"team_alias": "t"}))),
        (Method::GET, "/key/list", None),
        (Method::GET, "/key/info", None),
        (Method::GET, "/spend/logs", None),
        (Method::GET, "/v1/models", None),
        (Method::GET, "/model/info", None),
    ] {
        let (s, e) = call(&app, method, uri, &boss, body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}: {e}");
        assert_eq!(message(&e), blocked, "{uri}");
        assert_eq!(e["error"]["type"], json!("auth_error"), "{uri}");
    }
    let token = sluice_server::access::hash_key(&boss);
    assert!(app.access.registry.key(&token).unwrap().record.blocked, "the key unblocked itself");

    // The master key still works, and unblocking restores the admin.
    let (s, _) = get(&app, "/key/list", MASTER).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(&app, "/key/unblock", MASTER, json!({"key": boss})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, k) = post(&app, "/key/generate", &boss, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{k}");
}

#[tokio::test]
async fn a_key_of_a_blocked_team_reads_nothing() {
    let app = app().await;
    let (s, _) = post(&app, "/team/new", MASTER, json!({"team_id": "t1"})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, k) = post(&app, "/key/generate", MASTER, json!({"team_id": "t1"})).await;
    let key = k["key"].as_str().unwrap().to_string();
    let (s, _) = get(&app, "/key/info", &key).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(&app, "/team/block", MASTER, json!({"team_id": "t1"})).await;
    assert_eq!(s, StatusCode::OK);
    for uri in ["/key/info", "/team/info", "/v1/models", "/model/info"] {
        let (s, e) = get(&app, uri, &key).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}: {e}");
        assert!(message(&e).contains("Team=t1 is blocked"), "{uri}: {e}");
    }
}

#[tokio::test]
async fn an_expired_key_reads_nothing() {
    let app = app().await;
    let (s, k) = post(&app, "/key/generate", MASTER, json!({"duration": "1s"})).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    let (s, _) = get(&app, "/v1/models", &key).await;
    assert_eq!(s, StatusCode::OK, "not expired yet");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    for uri in ["/key/info", "/v1/models", "/models", "/models/m", "/v1/models/m", "/model/info", "/v1/model/info"] {
        let (s, e) = get(&app, uri, &key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["error"]["type"], json!("expired_key"), "{uri}: {e}");
        assert!(message(&e).starts_with("Authentication Error - Expired Key."), "{uri}: {e}");
    }
    // The proxy routes refuse it the same way.
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {key}").parse().unwrap());
    let id = app.access.identify(&h).await.unwrap();
    assert_eq!(app.access.admit(&id, "m", None).await.err().unwrap().kind.as_deref(), Some("expired_key"));

    // The master key still reads the expired key's row.
    let (s, info) = get(&app, &format!("/key/info?key={key}"), MASTER).await;
    assert_eq!(s, StatusCode::OK, "{info}");
    let (s, _) = get(&app, "/v1/models", MASTER).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn key_info_does_not_tell_a_non_admin_which_keys_exist() {
    let app = app().await;
    let (_, mine) = post(&app, "/key/generate", MASTER, json!({})).await;
    let mine = mine["key"].as_str().unwrap().to_string();
    let (_, other) = post(&app, "/key/generate", MASTER, json!({})).await;
    let other = other["key"].as_str().unwrap().to_string();
    let missing = "sk-this-key-does-not-exist-0000";

    let (s_other, e_other) = get(&app, &format!("/key/info?key={other}"), &mine).await;
    let (s_missing, e_missing) = get(&app, &format!("/key/info?key={missing}"), &mine).await;
    assert_eq!(s_other, StatusCode::FORBIDDEN, "{e_other}");
    assert_eq!((s_missing, &e_missing), (s_other, &e_other), "an existing and a missing key are answered alike");
    // By hash too.
    let hashed = sluice_server::access::hash_key(&other);
    let (s, e) = get(&app, &format!("/key/info?key={hashed}"), &mine).await;
    assert_eq!((s, &e), (s_other, &e_other));

    // Its own key, and an admin's view, are unchanged.
    let (s, _) = get(&app, &format!("/key/info?key={mine}"), &mine).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = get(&app, &format!("/key/info?key={missing}"), MASTER).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn team_info_does_not_tell_a_non_member_which_teams_exist() {
    let app = app().await;
    let (s, _) = post(&app, "/team/new", MASTER, json!({"team_id": "secret-team"})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, k) = post(&app, "/key/generate", MASTER, json!({})).await;
    let outsider = k["key"].as_str().unwrap().to_string();

    let (s_there, e_there) = get(&app, "/team/info?team_id=secret-team", &outsider).await;
    let (s_missing, e_missing) = get(&app, "/team/info?team_id=no-such-team", &outsider).await;
    assert_eq!(s_there, StatusCode::UNAUTHORIZED, "{e_there}");
    assert_eq!((s_missing, &e_missing), (s_there, &e_there), "an existing and a missing team are answered alike");

    let (s, _) = get(&app, "/team/info?team_id=no-such-team", MASTER).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&app, "/team/info?team_id=secret-team", MASTER).await;
    assert_eq!(s, StatusCode::OK);
}
