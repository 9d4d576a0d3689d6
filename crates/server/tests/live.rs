//! Live changes between replicas: two apps in one process share one SQLite file and one real
//! Redis (a prefix of their own), as two replicas share PostgreSQL and Redis. What the
//! management API changes through A reaches B within a second through Redis pub/sub, and within
//! about two through the database poll when Redis is absent; a model changed through A is
//! routed by A before A answers.

mod common;

use common::{call, get, post};
use http::StatusCode;
use serde_json::{json, Value};
use sluice_server::config::{Config, Env};
use sluice_server::App;
use sluice_state::remote::{Remote, RemoteConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MASTER: &str = "sk-master";

fn config(db: &std::path::Path) -> Config {
    let yaml = format!(
        r#"
model_list:
  - model_name: cfg
    litellm_params: {{model: openai/cfg, mock_response: "from config"}}
    model_info: {{id: cfg-1}}
general_settings:
  master_key: {MASTER}
  database_url: sqlite://{}
  store_model_in_db: true
"#,
        db.display()
    );
    Config::from_yaml_str(&yaml, Env::fixed([])).unwrap()
}

async fn remote(url: &str, test: &str) -> Arc<Remote> {
    let prefix = format!("sluice-test:{test}:{}:", std::process::id());
    Remote::connect(&RemoteConfig { url: url.into(), prefix, op_timeout: Duration::from_millis(100) }).await.unwrap()
}

/// Two replicas on one fresh database; `redis`: whether they share the real Redis.
async fn replicas(test: &str, redis: bool) -> (Arc<App>, Arc<App>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sluice_live_{test}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir.join("shared.db"));
    // Nothing listens on port 1: Redis is configured but absent (the breaker opens at start).
    let url = if redis { "redis://127.0.0.1:6379" } else { "redis://127.0.0.1:1" };
    let a = App::start_with(&config, &Env::fixed([]), Some(remote(url, test).await)).await.unwrap();
    let b = App::start_with(&config, &Env::fixed([]), Some(remote(url, test).await)).await.unwrap();
    if redis {
        within(Duration::from_secs(3), "both replicas subscribe", || async {
            a.changes.following() && b.changes.following()
        })
        .await;
    } else {
        assert!(!a.changes.following() && !b.changes.following());
    }
    (a, b, dir)
}

/// Waits until `check` holds, at most `limit`; how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(app: &Arc<App>, key: &str) -> StatusCode {
    get(app, "/v1/models", key).await.0
}

async fn new_key(app: &Arc<App>, body: Value) -> String {
    let (s, k) = post(app, "/key/generate", MASTER, body).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    k["key"].as_str().unwrap().to_string()
}

fn routes(app: &App, model: &str) -> bool {
    app.router.load().resolve(model).is_some()
}

async fn chat(app: &Arc<App>, model: &str) -> (StatusCode, Value) {
    post(app, "/v1/chat/completions", MASTER, json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_blocked_deleted_regenerated_and_updated_through_a_reach_b_within_a_second() {
    let (a, b, dir) = replicas("keys", true).await;
    let second = Duration::from_secs(1);

    // Block: B has the key in memory (it served it) and refuses it within a second.
    let key = new_key(&a, json!({})).await;
    assert_eq!(status(&b, &key).await, StatusCode::OK);
    let (s, _) = post(&a, "/key/block", MASTER, json!({"key": key})).await;
    assert_eq!(s, StatusCode::OK);
    let refused = status(&a, &key).await;
    assert_ne!(refused, StatusCode::OK);
    within(second, "B refuses the blocked key", || async { status(&b, &key).await == refused }).await;
    let (s, _) = post(&a, "/key/unblock", MASTER, json!({"key": key})).await;
    assert_eq!(s, StatusCode::OK);
    within(second, "B serves the unblocked key", || async { status(&b, &key).await == StatusCode::OK }).await;

    // Update: the new limit is B's within a second.
    let hash = sluice_access::hash_key(&key);
    let (s, _) = post(&a, "/key/update", MASTER, json!({"key": key, "rpm_limit": 7, "max_budget": 2.5})).await;
    assert_eq!(s, StatusCode::OK);
    within(second, "B takes the new limits", || async {
        let r = b.access.registry.key(&hash).unwrap().record.clone();
        (r.rpm_limit, r.max_budget) == (Some(7), Some(2.5))
    })
    .await;

    // Regenerate: the old key is refused by B, the new one served.
    let (s, r) = post(&a, "/key/regenerate", MASTER, json!({"key": key})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let fresh = r["key"].as_str().unwrap().to_string();
    within(second, "B drops the regenerated key", || async { b.access.registry.key(&hash).is_none() }).await;
    assert_eq!(status(&b, &key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&b, &fresh).await, StatusCode::OK);
    // The new key kept the limits.
    assert_eq!(b.access.registry.key(&sluice_access::hash_key(&fresh)).unwrap().record.rpm_limit, Some(7));

    // Delete.
    let (s, _) = post(&a, "/key/delete", MASTER, json!({"keys": [fresh]})).await;
    assert_eq!(s, StatusCode::OK);
    within(second, "B refuses the deleted key", || async { status(&b, &fresh).await == StatusCode::UNAUTHORIZED })
        .await;
    // B's in-memory copy went with the notice, not with B's own database look-up.
    assert!(b.access.registry.key(&sluice_access::hash_key(&fresh)).is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_teams_changed_through_a_reach_b_within_a_second() {
    let (a, b, dir) = replicas("teams", true).await;
    let second = Duration::from_secs(1);
    let (s, t) = post(&a, "/team/new", MASTER, json!({"team_id": "team-live", "max_budget": 10.0})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, u) = post(&a, "/user/new", MASTER, json!({"user_id": "user-live", "max_budget": 5.0})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    within(second, "B knows the new team and user", || async {
        b.access.registry.teams.contains_key("team-live") && b.access.registry.users.contains_key("user-live")
    })
    .await;

    let (s, _) = post(&a, "/user/update", MASTER, json!({"user_id": "user-live", "max_budget": 9.0})).await;
    assert_eq!(s, StatusCode::OK);
    within(second, "B takes the user's new budget", || async {
        b.access.registry.users.get("user-live").unwrap().record.max_budget == Some(9.0)
    })
    .await;

    // A team blocked through A: its key is refused by B.
    let key = new_key(&a, json!({"team_id": "team-live"})).await;
    assert_eq!(status(&b, &key).await, StatusCode::OK);
    let (s, _) = post(&a, "/team/block", MASTER, json!({"team_id": "team-live"})).await;
    assert_eq!(s, StatusCode::OK);
    let refused = status(&a, &key).await;
    assert_ne!(refused, StatusCode::OK);
    within(second, "B refuses the blocked team's key", || async { status(&b, &key).await == refused }).await;

    // Deleted through A: gone from B (the team's keys with it).
    let (s, _) = post(&a, "/team/delete", MASTER, json!({"team_ids": ["team-live"]})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(&a, "/user/delete", MASTER, json!({"user_ids": ["user-live"]})).await;
    assert_eq!(s, StatusCode::OK);
    within(second, "B drops the deleted team, its key and the user", || async {
        !b.access.registry.teams.contains_key("team-live")
            && !b.access.registry.users.contains_key("user-live")
            && b.access.registry.key(&sluice_access::hash_key(&key)).is_none()
    })
    .await;
    assert_eq!(status(&b, &key).await, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_budget_in_a_team_set_through_a_reaches_b_with_and_without_redis() {
    for redis in [true, false] {
        let (a, b, dir) = replicas(if redis { "members" } else { "members-poll" }, redis).await;
        let body = json!({"team_id": "team-m", "members_with_roles": [{"role": "user", "user_id": "user-m"}]});
        let (s, t) = post(&a, "/team/new", MASTER, body).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        let body = json!({"team_id": "team-m", "user_id": "user-m", "max_budget_in_team": 2.5});
        let (s, m) = post(&a, "/team/member_update", MASTER, body).await;
        assert_eq!(s, StatusCode::OK, "{m}");
        within(Duration::from_secs(2), "B holds the member's budget in the team", || async {
            b.access.registry.members.get("team-m", "user-m").is_some_and(|m| m.record.max_budget == Some(2.5))
        })
        .await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_added_through_a_is_routed_by_b_within_a_second_and_deleted_likewise() {
    let (a, b, dir) = replicas("models", true).await;
    let second = Duration::from_secs(1);
    let cfg_before = b.router.load().deployments().next().unwrap().clone();
    assert!(!routes(&b, "live-model"));
    let body = json!({"model_name": "live-model",
                      "litellm_params": {"model": "openai/live", "mock_response": "stored answer"},
                      "model_info": {"id": "live-1"}});
    let (s, m) = post(&a, "/model/new", MASTER, body).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    within(second, "A routes its own new model", || async { routes(&a, "live-model") }).await;
    within(second, "B routes the new model", || async { routes(&b, "live-model") }).await;
    let (s, answer) = chat(&b, "live-model").await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert_eq!(answer["choices"][0]["message"]["content"], json!("stored answer"));
    // The config's deployment was kept whole, with its live health.
    let cfg_after = b.router.load().deployments().next().unwrap().clone();
    assert!(Arc::ptr_eq(&cfg_before, &cfg_after));
    let models = get(&b, "/v1/models", MASTER).await.1;
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cfg", "live-model"]);

    let (s, _) = post(&a, "/model/delete", MASTER, json!({"id": "live-1"})).await;
    assert_eq!(s, StatusCode::OK);
    within(second, "B stops routing the deleted model", || async { !routes(&b, "live-model") }).await;
    within(second, "A stops routing it", || async { !routes(&a, "live-model") }).await;
    assert_eq!(chat(&b, "live-model").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(chat(&b, "cfg").await.0, StatusCode::OK);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_database_poll_carries_a_block_and_a_model_within_two_seconds() {
    let (a, b, dir) = replicas("poll", false).await;
    let key = new_key(&a, json!({})).await;
    assert_eq!(status(&b, &key).await, StatusCode::OK);
    let started = Instant::now();
    let (s, _) = post(&a, "/key/block", MASTER, json!({"key": key})).await;
    assert_eq!(s, StatusCode::OK);
    // Publishing to an absent Redis did not hold the write up.
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    let refused = status(&a, &key).await;
    // Redis is absent: only the poll can carry it (a tick may fall just after the write, so how
    // soon is not asserted, only the bound).
    within(Duration::from_secs(2), "B refuses the blocked key", || async { status(&b, &key).await == refused }).await;

    let body = json!({"model_name": "polled-model",
                      "litellm_params": {"model": "openai/p", "mock_response": "polled"},
                      "model_info": {"id": "polled-1"}});
    let (s, m) = post(&a, "/model/new", MASTER, body).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    within(Duration::from_secs(2), "B routes the model", || async { routes(&b, "polled-model") }).await;
    assert_eq!(chat(&b, "polled-model").await.0, StatusCode::OK);
    let _ = std::fs::remove_dir_all(dir);
}

fn answer(v: &Value) -> &Value {
    &v["choices"][0]["message"]["content"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_updated_through_a_is_routed_by_a_at_once_and_by_b_within_a_second() {
    let (a, b, dir) = replicas("update", true).await;
    let second = Duration::from_secs(1);
    let body = json!({"model_name": "upd",
                      "litellm_params": {"model": "openai/u", "mock_response": "before", "rpm": 100},
                      "model_info": {"id": "upd-1", "note": "kept"}});
    let (s, m) = post(&a, "/model/new", MASTER, body).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    // At once: the answer came after A's router took the model in.
    assert!(routes(&a, "upd"));
    within(second, "B routes the new model", || async { routes(&b, "upd") }).await;

    // LiteLLM's /model/update: the id in model_info, a partial litellm_params merged in.
    let (s, m) = post(
        &a,
        "/model/update",
        MASTER,
        json!({"model_info": {"id": "upd-1"},
               "litellm_params": {"mock_response": "after", "api_key": "sk-upstream-secret-123", "rpm": null}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["litellm_params"]["mock_response"], "after");
    // Merged: what was not named stays (a null leaves it too), the model is still openai/u.
    assert_eq!(m["litellm_params"]["model"], "openai/u");
    assert_eq!(m["litellm_params"]["rpm"], 100);
    assert!(!m.to_string().contains("sk-upstream-secret-123"), "{m}");
    let (s, got) = chat(&a, "upd").await;
    assert_eq!((s, answer(&got)), (StatusCode::OK, &json!("after")), "A answers with the change at once");
    within(second, "B answers with the change", || async { answer(&chat(&b, "upd").await.1) == "after" }).await;

    // LiteLLM's PATCH /model/{model_id}/update: a new model_name moves the deployment.
    let (s, m) = call(
        &a,
        http::Method::PATCH,
        "/model/upd-1/update",
        MASTER,
        Some(json!({"model_name": "renamed", "model_info": {"tier": "gold"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert!(routes(&a, "renamed") && !routes(&a, "upd"), "A routes the new name at once");
    within(second, "B routes the new name only", || async { routes(&b, "renamed") && !routes(&b, "upd") }).await;
    let (s, got) = chat(&b, "renamed").await;
    assert_eq!((s, answer(&got)), (StatusCode::OK, &json!("after")));

    // /model/info shows the change on both, its secret never.
    for app in [&a, &b] {
        let info = get(app, "/model/info", MASTER).await.1;
        let entry = info["data"].as_array().unwrap().iter().find(|d| d["model_info"]["id"] == "upd-1").unwrap().clone();
        assert_eq!(entry["model_name"], "renamed");
        assert_eq!(entry["litellm_params"]["mock_response"], "after");
        assert_eq!((&entry["model_info"]["note"], &entry["model_info"]["tier"]), (&json!("kept"), &json!("gold")));
        assert!(!info.to_string().contains("sk-upstream-secret-123"), "{info}");
    }

    // What cannot be changed is refused, and nothing moves.
    let (s, e) =
        post(&a, "/model/update", MASTER, json!({"model_info": {"id": "cfg-1"}, "litellm_params": {"rpm": 1}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a config model: {e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("/model/new"), "{e}");
    let (s, e) = post(&a, "/model/update", MASTER, json!({"model_info": {"id": "nope"}, "litellm_params": {}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = call(&a, http::Method::PATCH, "/model/nope/update", MASTER, Some(json!({"model_name": "x"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, e) = post(&a, "/model/update", MASTER, json!({"litellm_params": {"rpm": 1}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no id: {e}");
    let (s, e) = post(
        &a,
        "/model/update",
        MASTER,
        json!({"model_info": {"id": "upd-1"}, "litellm_params": {"timeout": "soon"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a value that would not load: {e}");
    assert_eq!(answer(&chat(&a, "renamed").await.1), "after");
    let (s, e) =
        post(&b, "/model/update", "sk-not-admin", json!({"model_info": {"id": "upd-1"}, "model_name": "x"})).await;
    assert!(s.is_client_error(), "{s} {e}");

    let (s, _) = post(&a, "/model/delete", MASTER, json!({"id": "upd-1"})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!routes(&a, "renamed"), "A stops routing a deleted model at once");
    within(second, "B stops routing it", || async { !routes(&b, "renamed") }).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_through_a_route_on_a_at_once_and_on_b_within_a_second() {
    let (a, b, dir) = replicas("settings", true).await;
    let retries = |app: &App| app.router.load().settings.num_retries;
    let (before_a, before_b) = (retries(&a), retries(&b));
    let cfg_before = b.router.load().deployments().next().unwrap().clone();
    let (s, m) = post(&a, "/config/update", MASTER, json!({"router_settings": {"num_retries": 7}})).await;
    assert_eq!((s, m), (StatusCode::OK, json!({"message": "Config updated successfully"})));
    assert_eq!(retries(&a), 7, "A routes with its change before answering");
    within(Duration::from_secs(1), "B routes with the new setting", || async { retries(&b) == 7 }).await;
    // A setting the router reads keeps the deployments, with their live health.
    assert!(Arc::ptr_eq(&cfg_before, &b.router.load().deployments().next().unwrap().clone()));

    let (s, _) = post(&a, "/config/update", MASTER, json!({"router_settings": {"num_retries": null}})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(retries(&a), before_a);
    within(Duration::from_secs(1), "B is back to the file's setting", || async { retries(&b) == before_b }).await;
    let _ = std::fs::remove_dir_all(dir);
}
