//! The management API end to end on the axum router, with an in-memory SQLite store: keys
//! (generate, info, update, block, regenerate, delete) and their effect on admission, users
//! with their automatic key, teams with members, spend logs, and refusals.

mod common;

use common::{get, post};
use http::StatusCode;
use serde_json::{json, Value};
use sluice_server::config::{Config, Env};
use sluice_server::App;
use sluice_store::Store;
use std::sync::Arc;

const MASTER: &str = "sk-master-test";

const CONFIG: &str = r#"
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      mock_response: hi
  - model_name: other
    litellm_params:
      model: openai/other
      mock_response: hi
general_settings:
  master_key: sk-master-test
"#;

async fn app(with_store: bool) -> Arc<App> {
    common::app_from(CONFIG, with_store).await
}

/// Whether a request with `key` for model `m` would be admitted.
async fn admitted(app: &App, key: &str) -> Result<(), String> {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {key}").parse().unwrap());
    let id = app.access.identify(&h).await.map_err(|e| e.message)?;
    app.access.admit(&id, "m", None).await.map(|_| ()).map_err(|e| e.message)
}

#[tokio::test]
async fn key_lifecycle() {
    let app = app(true).await;
    let (s, k) = post(
        &app,
        "/key/generate",
        MASTER,
        json!({"models": ["m"], "key_alias": "alias-1", "max_budget": 10, "duration": "30d",
               "model_rpm_limit": {"m": 5}, "tags": ["t1"], "metadata": {"app": "x"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let raw = k["key"].as_str().unwrap().to_string();
    assert!(raw.starts_with("sk-") && raw.len() == 25, "{raw}");
    let token = k["token"].as_str().unwrap().to_string();
    assert_eq!(token, sluice_server::access::hash_key(&raw));
    assert_eq!(k["token_id"], json!(token));
    assert_eq!(k["key_name"], json!(format!("sk-...{}", &raw[raw.len() - 4..])));
    assert_eq!(k["metadata"], json!({"app": "x", "model_rpm_limit": {"m": 5}, "tags": ["t1"]}));
    assert!(k["expires"].is_string());
    assert_eq!(k["max_budget"], json!(10.0));
    assert_eq!(admitted(&app, &raw).await, Ok(()));

    // The alias is unique.
    let (s, e) = post(&app, "/key/generate", MASTER, json!({"key_alias": "alias-1"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"]["message"].as_str().unwrap().starts_with("Key with alias 'alias-1' already exists"), "{e}");
    assert_eq!(e["error"]["code"], json!("400"));

    // The key reads its own info, without the hash.
    let (s, info) = get(&app, "/key/info", &raw).await;
    assert_eq!(s, StatusCode::OK, "{info}");
    assert_eq!(info["info"]["key_alias"], json!("alias-1"));
    assert!(info["info"].get("token").is_none());
    let (s, info) = get(&app, &format!("/key/info?key={raw}"), MASTER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["key"], json!(raw));
    assert_eq!(info["info"]["spend"], json!(0.0));

    let (s, u) =
        post(&app, "/key/update", MASTER, json!({"key": raw, "max_budget": 20, "models": ["m", "other"]})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["key"], json!(raw));
    assert_eq!(u["max_budget"], json!(20.0));
    assert_eq!(u["key_alias"], json!("alias-1"));
    assert_eq!(app.access.registry.key(&token).unwrap().record.max_budget, Some(20.0));

    let (s, _) = post(&app, "/key/block", MASTER, json!({"key": raw})).await;
    assert_eq!(s, StatusCode::OK);
    let refused = admitted(&app, &raw).await.unwrap_err();
    assert!(refused.contains("Key is blocked"), "{refused}");
    let (s, _) = post(&app, "/key/unblock", MASTER, json!({"key": token})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(admitted(&app, &raw).await, Ok(()));

    let (s, listed) = get(&app, "/key/list", MASTER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["keys"], json!([token]));
    assert_eq!(
        (listed["total_count"].clone(), listed["current_page"].clone(), listed["total_pages"].clone()),
        (json!(1), json!(1), json!(1))
    );

    // Regenerate: a new raw key, same settings; the old one stops working at once.
    let (s, r) = post(&app, "/key/regenerate", MASTER, json!({"key": raw})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let new_raw = r["key"].as_str().unwrap().to_string();
    assert_ne!(new_raw, raw);
    assert_eq!(r["key_alias"], json!("alias-1"));
    assert_eq!(r["max_budget"], json!(20.0));
    assert!(admitted(&app, &raw).await.is_err());
    assert_eq!(admitted(&app, &new_raw).await, Ok(()));

    let (s, d) = post(&app, "/key/delete", MASTER, json!({"keys": [new_raw]})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d, json!({"deleted_keys": [new_raw]}));
    let gone = admitted(&app, &new_raw).await.unwrap_err();
    assert!(gone.contains("Invalid proxy server token"), "{gone}");
    let (s, _) = get(&app, &format!("/key/info?key={new_raw}"), MASTER).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_teams_and_refusals() {
    let app = app(true).await;
    let (s, u) = post(&app, "/user/new", MASTER, json!({"user_id": "u1", "max_budget": 5, "models": ["m"]})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["user_id"], json!("u1"));
    assert_eq!(u["user_role"], json!("internal_user"));
    let user_key = u["key"].as_str().unwrap().to_string();
    assert!(user_key.starts_with("sk-"));
    let (_, info) = get(&app, "/key/info", &user_key).await;
    assert_eq!(info["info"]["user_id"], json!("u1"));
    assert_eq!(info["info"]["max_budget"], Value::Null, "the user's budget stays on the user");
    assert_eq!(admitted(&app, &user_key).await, Ok(()));

    // Not an admin: admin-only management routes are refused with LiteLLM's 401 (an internal
    // user manages its own keys: tests/python/test_roles.py).
    let (s, e) = post(&app, "/user/new", &user_key, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Authentication Error, Only proxy admin can be used to generate"), "{msg}");
    assert!(msg.contains("Route=/user/new. Your role=internal_user"), "{msg}");
    assert_eq!(e["error"]["type"], json!("auth_error"));
    // ... but it may read its own user.
    let (s, me) = get(&app, "/user/info", &user_key).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["user_info"]["user_id"], json!("u1"));
    assert_eq!(me["keys"].as_array().unwrap().len(), 1);
    let (s, _) = get(&app, "/user/info?user_id=someone-else", &user_key).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A proxy_admin user's key is an admin.
    let (_, a) = post(&app, "/user/new", MASTER, json!({"user_id": "boss", "user_role": "proxy_admin"})).await;
    let admin_key = a["key"].as_str().unwrap().to_string();
    let (s, _) = get(&app, "/key/list", &admin_key).await;
    assert_eq!(s, StatusCode::OK);

    // Teams: members join both ways; unknown users are created.
    let (s, t) =
        post(&app, "/team/new", MASTER, json!({"team_id": "team1", "team_alias": "Team One", "models": ["m"]})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    // Aliases may repeat, as in LiteLLM.
    let (s, _) = post(&app, "/team/new", MASTER, json!({"team_alias": "Team One"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, m) = post(
        &app,
        "/team/member_add",
        MASTER,
        json!({"team_id": "team1", "member": {"role": "user", "user_id": "u2"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["members_with_roles"][0]["user_id"], json!("u2"));
    let (s, u2) = get(&app, "/user/info?user_id=u2", MASTER).await;
    assert_eq!(s, StatusCode::OK, "{u2}");
    assert_eq!(u2["user_info"]["teams"], json!(["team1"]));
    let (s, _) = post(&app, "/team/member_add", MASTER, json!({"team_id": "team1", "member": {"user_id": "u2"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, k) = post(&app, "/key/generate", MASTER, json!({"team_id": "team1", "user_id": "u2"})).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let team_key = k["key"].as_str().unwrap().to_string();
    assert_eq!(admitted(&app, &team_key).await, Ok(()));
    let (s, e) = post(&app, "/key/generate", MASTER, json!({"team_id": "nope"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"]["message"].as_str().unwrap().contains("Unable to find team object in database. Team ID: nope"));

    let (s, ti) = get(&app, "/team/info?team_id=team1", MASTER).await;
    assert_eq!(s, StatusCode::OK, "{ti}");
    assert_eq!(ti["keys"].as_array().unwrap().len(), 1);
    assert_eq!(ti["team_memberships"][0]["user_id"], json!("u2"));

    // Blocking the team refuses its keys at once.
    let (s, _) = post(&app, "/team/block", MASTER, json!({"team_id": "team1"})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(admitted(&app, &team_key).await.unwrap_err().contains("is blocked"));
    let (s, _) = post(&app, "/team/unblock", MASTER, json!({"team_id": "team1"})).await;
    assert_eq!(s, StatusCode::OK);

    let (s, _) = post(&app, "/team/member_delete", MASTER, json!({"team_id": "team1", "user_id": "u2"})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, u2) = get(&app, "/user/info?user_id=u2", MASTER).await;
    assert_eq!(u2["user_info"]["teams"], json!([]));

    let (s, list) = get(&app, "/user/list", MASTER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], json!(3));

    // Deleting a user takes their keys with them.
    let (s, n) = post(&app, "/user/delete", MASTER, json!({"user_ids": ["u1"]})).await;
    assert_eq!((s, n), (StatusCode::OK, json!(1)));
    assert!(admitted(&app, &user_key).await.is_err());

    let (s, d) = post(&app, "/team/delete", MASTER, json!({"team_ids": ["team1"]})).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert!(admitted(&app, &team_key).await.is_err());
}

#[tokio::test]
async fn spend_and_models() {
    let app = app(true).await;
    let (s, logs) = get(&app, "/spend/logs", MASTER).await;
    assert_eq!((s, logs), (StatusCode::OK, json!([])));
    let (s, logs) = get(&app, "/spend/logs?start_date=2025-01-01&end_date=2025-01-31", MASTER).await;
    assert_eq!((s, logs), (StatusCode::OK, json!([])));
    let (s, e) = get(&app, "/spend/logs?start_date=yesterday", MASTER).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, g) = get(&app, "/global/spend", MASTER).await;
    assert_eq!((s, g["spend"].clone()), (StatusCode::OK, json!(0.0)));
    let (s, keys) = get(&app, "/spend/keys", MASTER).await;
    assert_eq!((s, keys), (StatusCode::OK, json!([])));

    // store_model_in_db is off: LiteLLM's refusal.
    let (s, e) =
        post(&app, "/model/new", MASTER, json!({"model_name": "x", "litellm_params": {"model": "openai/x"}})).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e["error"]["message"].as_str().unwrap().contains("STORE_MODEL_IN_DB"));
    let (s, info) = get(&app, "/model/info", MASTER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn stored_models_are_listed() {
    let config = Config::from_yaml_str(CONFIG, Env::fixed([])).unwrap();
    let app = App::with_env(&config, &Env::fixed([("STORE_MODEL_IN_DB", "True")])).unwrap();
    app.access.attach(Store::open("sqlite::memory:", 1).await.unwrap());
    let body = json!({"model_name": "db-model", "litellm_params": {"model": "openai/x", "api_key": "sk-upstream-secret"},
                      "model_info": {"id": "db-1"}});
    let (s, m) = post(&app, "/model/new", MASTER, body).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert!(m["litellm_params"].get("api_key").is_none());
    let (_, info) = get(&app, "/model/info", MASTER).await;
    let data = info["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[2]["model_info"]["db_model"], json!(true));
    assert!(!info.to_string().contains("upstream-secret"));
    let (s, d) = post(&app, "/model/delete", MASTER, json!({"id": "db-1"})).await;
    assert_eq!((s, d), (StatusCode::OK, json!({"message": "Model: db-1 deleted successfully"})));
    let (s, _) = post(&app, "/model/delete", MASTER, json!({"id": "db-1"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refusals_without_admin_or_database() {
    let app = app(false).await;
    let (s, e) = post(&app, "/key/generate", MASTER, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["type"], json!("no_db_connection"));
    assert!(e["error"]["message"].as_str().unwrap().starts_with("Connect Proxy to database to generate keys"));
    let (s, e) = get(&app, "/key/list", "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    let (s, _) = post(&app, "/key/generate", "sk-not-a-real-key", json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let app = app_with_store().await;
    let (s, e) = post(&app, "/key/generate", MASTER, json!({"max_budget": "lots"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["param"], json!("max_budget"));
    let (s, e) = post(&app, "/key/generate", MASTER, json!({"key": "not-sk-key-value"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!e.to_string().contains("not-sk-key-value"));
    let (s, _) = post(&app, "/key/update", MASTER, json!({"key": "sk-unknown-key-0000"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn app_with_store() -> Arc<App> {
    app(true).await
}
