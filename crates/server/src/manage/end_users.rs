//! End users (LiteLLM's customers: the `user` field of requests): `/end_user/new`, `/info`,
//! `/update`, `/delete`, `/list`, each also under `/customer/` (LiteLLM's `customer_endpoints.py`
//! serves both). Budget fields given with an end user (`max_budget`, `rpm_limit`, `tpm_limit`,
//! `max_parallel_requests`, `budget_duration`, ...) become a budget row it names by `budget_id`,
//! as in LiteLLM; an update changes that row, or makes one if it has none.

use super::budgets::{self, budget_json};
use super::roles::authorize;
use super::{bad, db, json, not_found, query_str, store, Fields, Need, Query, Result};
use crate::app::App;
use crate::errors::ErrorResponse;
use crate::live::Kind;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use sluice_access::Identity;
use sluice_store::{EndUserRecord, Store};
use sluice_wire::ApiError;
use std::sync::Arc;

/// LiteLLM's `AllowedModelRegion`.
const REGIONS: &[&str] = &["eu", "us"];

fn invalid(message: String, param: &str) -> ErrorResponse {
    ErrorResponse(ApiError::new(422, message).kind("invalid_request_error").param(param))
}

/// An end user as LiteLLM returns it (`LiteLLM_EndUserTable` with its budget row), with this
/// replica's live spend.
fn end_user_json(app: &App, e: &EndUserRecord) -> Map<String, Value> {
    let registry = &app.access.registry;
    let spend = registry.end_users.get(&e.user_id).map(|x| x.live.spend()).unwrap_or(e.spend);
    let budget = e.budget_id.as_deref().and_then(|b| registry.budgets.get(b).map(|b| budget_json(&b)));
    let v = json!({
        "user_id": e.user_id,
        "alias": e.alias,
        "spend": spend,
        "allowed_model_region": e.allowed_model_region,
        "default_model": e.default_model,
        "budget_id": e.budget_id,
        "blocked": e.blocked,
        "litellm_budget_table": budget.unwrap_or(Value::Null),
        "object_permission_id": Value::Null,
        "object_permission": Value::Null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The region, checked against LiteLLM's two.
fn region(f: &Fields) -> Result<Option<Option<String>>> {
    let v = f.string("allowed_model_region")?;
    if let Some(Some(r)) = &v {
        if !REGIONS.contains(&r.as_str()) {
            return Err(invalid(
                format!("allowed_model_region must be one of {REGIONS:?}. Received: {r}"),
                "allowed_model_region",
            ));
        }
    }
    Ok(v)
}

/// The default model, which must be one this proxy serves (LiteLLM's 422 otherwise).
fn default_model(app: &App, f: &Fields) -> Result<Option<Option<String>>> {
    let v = f.string("default_model")?;
    if let Some(Some(m)) = &v {
        let router = app.router.load();
        if router.resolve(m).is_none() {
            let mut names: Vec<&String> = router.model_names().iter().collect();
            names.sort();
            return Err(invalid(
                format!("Default Model not on proxy. Configure via `/model/new` or config.yaml. Default_model={m}, proxy_model_names={names:?}"),
                "default_model",
            ));
        }
    }
    Ok(v)
}

/// The stored end user, or LiteLLM's 404.
async fn existing(store: &Store, user_id: &str, param: &str) -> Result<EndUserRecord> {
    db(store.get_end_user(user_id).await)?
        .ok_or_else(|| not_found(format!("End User Id={user_id} does not exist in db"), param))
}

/// The fields of an end user's own row that `f` gives (not its budget), onto `e`.
async fn apply(app: &App, e: &mut EndUserRecord, f: &Fields) -> Result<()> {
    if let Some(v) = f.string("alias")? {
        e.alias = v;
    }
    if let Some(v) = f.bool("blocked")? {
        e.blocked = v.unwrap_or(false);
    }
    if let Some(v) = region(f)? {
        e.allowed_model_region = v;
    }
    if let Some(v) = default_model(app, f)? {
        e.default_model = v;
    }
    if let Some(v) = f.string("budget_id")? {
        if let Some(id) = v.as_deref() {
            budgets::existing(app, id, "budget_id").await?;
        }
        e.budget_id = v;
    }
    Ok(())
}

/// Stores nothing; puts the end user in memory and tells the other replicas.
async fn publish(app: &App, e: EndUserRecord) {
    let id = e.user_id.clone();
    app.access.registry.put_end_user(e, false);
    app.changes.publish(Kind::EndUser, [id]).await;
}

fn who(identity: &Identity) -> String {
    super::actor(identity)
}

/// `POST /end_user/new` (`/customer/new`).
pub async fn new(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let identity = authorize(&app, &headers, "/end_user/new").await?.identity;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let user_id = match f.string("user_id")?.flatten().filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => return Err(invalid("`user_id` is required: add it to the request body.".into(), "user_id")),
    };
    let now = super::now();
    let mut e = EndUserRecord { user_id: user_id.clone(), ..Default::default() };
    apply(&app, &mut e, &f).await?;
    if let Some(Some(s)) = f.f64("spend")? {
        if s < 0.0 {
            return Err(bad(format!("spend cannot be negative. Received: {s}"), "spend"));
        }
        e.spend = s;
    }
    // Checked before anything is written: a taken id makes no budget row.
    if db(store.get_end_user(&user_id).await)?.is_some() {
        return Err(bad(
            format!("Customer already exists, passed user_id={user_id}. Please pass a new user_id."),
            "user_id",
        ));
    }
    let budget = if budgets::any_field(&f) {
        let b = budgets::record(uuid::Uuid::new_v4().to_string(), &f, &who(&identity), now)?;
        e.budget_id = Some(b.budget_id.clone());
        Some(b)
    } else {
        None
    };
    if let Some(b) = &budget {
        db(store.insert_budget(b).await)?;
    }
    if let Err(err) = store.insert_end_user(&e).await {
        // A budget made for it alone would be left naming nobody.
        if let Some(b) = &budget {
            let _ = store.delete_budgets(std::slice::from_ref(&b.budget_id)).await;
        }
        return Err(super::db_error(err));
    }
    if let Some(b) = budget {
        budgets::publish(&app, b).await;
    }
    publish(&app, e.clone()).await;
    Ok(json(end_user_json(&app, &e)))
}

/// `GET /end_user/info?end_user_id=` (`/customer/info`).
pub async fn info(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    authorize(&app, &headers, "/end_user/info").await?;
    let store = store(&app, Need::Other)?;
    let Some(id) = query_str(&q, "end_user_id") else {
        return Err(invalid("`end_user_id` is required: add ?end_user_id=<id> to the URL.".into(), "end_user_id"));
    };
    let e = existing(store, id, "end_user_id").await?;
    Ok(json(end_user_json(&app, &e)))
}

/// `POST /end_user/update` (`/customer/update`): the end user's own fields, and its budget's
/// (the row it names is changed, so every end user on that budget sees it, as in LiteLLM).
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let identity = authorize(&app, &headers, "/end_user/update").await?.identity;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let Some(user_id) = f.string("user_id")?.flatten().filter(|s| !s.is_empty()) else {
        return Err(invalid("`user_id` is required: add it to the request body.".into(), "user_id"));
    };
    let mut e = existing(store, &user_id, "user_id").await?;
    apply(&app, &mut e, &f).await?;
    let now = super::now();
    let mut budget = None;
    if budgets::any_field(&f) {
        let b = match e.budget_id.as_deref() {
            Some(id) => match db(store.get_budget(id).await)? {
                Some(mut b) => {
                    budgets::apply(&mut b, &f, now)?;
                    b.updated_at = Some(now);
                    b.updated_by = Some(who(&identity));
                    db(store.update_budget(&b).await)?;
                    b
                }
                None => {
                    let b = budgets::record(id.to_string(), &f, &who(&identity), now)?;
                    db(store.insert_budget(&b).await)?;
                    b
                }
            },
            None => {
                let b = budgets::record(uuid::Uuid::new_v4().to_string(), &f, &who(&identity), now)?;
                db(store.insert_budget(&b).await)?;
                e.budget_id = Some(b.budget_id.clone());
                b
            }
        };
        budget = Some(b);
    }
    db(store.update_end_user(&e).await)?;
    if let Some(b) = budget {
        budgets::publish(&app, b).await;
    }
    publish(&app, e.clone()).await;
    Ok(json(end_user_json(&app, &e)))
}

/// `POST /end_user/delete` (`/customer/delete`) with `{"user_ids": [...]}`: all of them, or none
/// when any is not there.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/end_user/delete").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let ids = f.strings("user_ids")?.flatten().unwrap_or_default();
    if ids.is_empty() {
        return Err(bad("user_ids is required: send {\"user_ids\": [\"<end user id>\", ...]}.", "user_ids"));
    }
    let mut missing = Vec::new();
    for id in &ids {
        if db(store.get_end_user(id).await)?.is_none() {
            missing.push(id.clone());
        }
    }
    if !missing.is_empty() {
        return Err(not_found(format!("End User Id(s)={} do not exist in db", missing.join(", ")), "user_ids"));
    }
    let deleted = db(store.delete_end_users(&ids).await)?;
    for id in &deleted {
        app.access.registry.end_users.remove(id);
    }
    app.changes.publish(Kind::EndUser, deleted.iter().cloned()).await;
    let quoted: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    Ok(json(json!({
        "deleted_customers": deleted.len(),
        "message": format!("Successfully deleted customers with ids: [{}]", quoted.join(", ")),
    })))
}

/// `GET /end_user/list` (`/customer/list`).
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/end_user/list").await?;
    let store = store(&app, Need::Other)?;
    let all = db(store.all_end_users().await)?;
    Ok(json(all.iter().map(|e| end_user_json(&app, e)).collect::<Vec<_>>()))
}
