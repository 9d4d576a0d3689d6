//! Internal users: `/user/new`, `/user/info`, `/user/update`, `/user/delete` and `/user/list`
//! (LiteLLM's `internal_user_endpoints.py`). A user's `teams` list and the teams' member lists
//! are kept in step here and in `teams`.

use super::keys::{create_key, generate_response};
use super::roles::authorize;
use super::teams::{join_team, leave_team};
use super::{
    bad, db, json, key_json, not_found, query_count, query_str, set_spend, store, team_json, user_json, Common, Fields,
    Need, Query, Result,
};
use crate::app::App;
use crate::live::Kind;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use sluice_store::{KeyFilter, Spender, Store, UserRecord};
use sluice_wire::ApiError;
use std::sync::Arc;

/// LiteLLM's `LitellmUserRoles`.
pub(crate) const ROLES: &[&str] =
    &["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "team", "customer"];

/// Fields of `/user/new` that also shape the key it creates (LiteLLM's `generate_key_helper_fn`
/// gives the key the user's models and rate limits, but not the user's budget).
const KEY_FIELDS: &[&str] = &[
    "models",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "metadata",
    "key_alias",
    "duration",
    "team_id",
    "aliases",
    "model_rpm_limit",
    "model_tpm_limit",
    "tags",
];

fn role_of(f: &Fields) -> Result<Option<Option<String>>> {
    let role = f.string("user_role")?;
    if let Some(Some(r)) = &role {
        if !ROLES.contains(&r.as_str()) {
            return Err(bad(format!("Invalid user_role={r}. Use one of: {}.", ROLES.join(", ")), "user_role"));
        }
    }
    Ok(role)
}

async fn email_taken(store: &Store, email: &str, except: Option<&str>) -> Result<bool> {
    let users = db(store.all_users().await)?;
    Ok(users.iter().any(|u| {
        u.user_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)) && Some(u.user_id.as_str()) != except
    }))
}

/// The stored user, or a 404 that says how to create one.
pub(crate) async fn existing(store: &Store, user_id: &str) -> Result<UserRecord> {
    db(store.get_user(user_id).await)?.ok_or_else(|| {
        not_found(format!("User not found, passed user_id={user_id}. Create the user with /user/new."), "user_id")
    })
}

/// `POST /user/new`: the user, and (unless `auto_create_key` is false) a key for them.
pub async fn new(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/user/new").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let now = super::now();
    let user_id =
        f.string("user_id")?.flatten().filter(|s| !s.is_empty()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let role = role_of(&f)?.flatten().unwrap_or_else(|| "internal_user".into());
    let email = f.string("user_email")?.flatten();
    if let Some(e) = &email {
        if email_taken(store, e, None).await? {
            return Err(bad(
                format!("User with email {e} already exists. Update that user with /user/update instead."),
                "user_email",
            ));
        }
    }
    let teams = f.strings("teams")?.flatten().unwrap_or_default();
    for t in &teams {
        if db(store.get_team(t).await)?.is_none() {
            return Err(bad(
                format!("Team not found, passed team_id={t}. Create the team with /team/new first."),
                "teams",
            ));
        }
    }
    let mut rec = UserRecord {
        user_id: user_id.clone(),
        user_email: email,
        user_alias: f.string("user_alias")?.flatten(),
        user_role: Some(role),
        created_at: Some(now),
        updated_at: Some(now),
        ..Default::default()
    };
    Common::of_user(&mut rec).apply(&f, now)?;
    if let Some(Some(s)) = f.f64("spend")? {
        if s < 0.0 {
            return Err(bad(format!("spend cannot be negative. Received: {s}"), "spend"));
        }
        rec.spend = s;
    }
    db(store.insert_user(&rec).await)?;
    let changed_id = rec.user_id.clone();
    app.access.registry.put_user(rec.clone(), false);
    app.changes.publish(Kind::User, [changed_id]).await;
    for t in &teams {
        join_team(&app, store, t, &user_id, None, "user").await?;
    }
    // Joining the teams rewrote the user's `teams`.
    let rec = app.access.registry.users.get(&user_id).map(|e| e.record.clone()).unwrap_or(rec);
    let mut out = user_json(&app.access.registry, &rec);
    if f.bool("auto_create_key")?.flatten().unwrap_or(true) {
        let mut kf = Fields(Map::new());
        for k in KEY_FIELDS {
            if let Some(v) = f.0.get(*k) {
                kf.0.insert(k.to_string(), v.clone());
            }
        }
        kf.0.insert("user_id".into(), Value::String(user_id.clone()));
        let (raw, key) = create_key(&app, &caller, &kf).await?;
        let k = generate_response(&app.access.registry, &raw, &key, &kf);
        for field in ["key", "key_name", "token", "token_id", "expires", "key_alias"] {
            if let Some(v) = k.get(field) {
                out.insert(field.into(), v.clone());
            }
        }
    } else {
        out.insert("key".into(), Value::Null);
    }
    for (k, v) in &f.0 {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    tracing::info!(user_id = %user_id, "user created");
    Ok(json(out))
}

/// `GET /user/info?user_id=`: the user, their keys and teams. A non-admin may look at its own
/// user only (a proxy admin viewer any user); a proxy admin without `user_id` gets every key and
/// team (LiteLLM's admin view).
pub async fn info(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/user/info").await?;
    let store = store(&app, Need::Other)?;
    let is_admin = caller.all();
    let own = caller.user_id().map(str::to_string);
    let asked = query_str(&q, "user_id").map(str::to_string);
    if !is_admin {
        if let Some(a) = asked.as_deref().filter(|a| !caller.owns_user(a)) {
            return Err(ApiError::new(
                403,
                format!(
                    "Authentication Error, key not allowed to access this user's info. user_id={a}, key's user_id={}",
                    own.as_deref().unwrap_or("None")
                ),
            )
            .kind("auth_error")
            .param("user_id")
            .into());
        }
        if asked.is_none() && own.is_none() {
            return Err(ApiError::bad_request("This key belongs to no user: pass ?user_id=.").param("user_id").into());
        }
    }
    let registry = &app.access.registry;
    // Without `user_id`, a proxy admin gets every key and team; anyone else (a viewer too, as in
    // LiteLLM) its own user.
    let proxy_admin = super::roles::Role::of(&caller.identity, registry) == super::roles::Role::ProxyAdmin;
    let Some(user_id) = asked.or(if proxy_admin { None } else { own }) else {
        let keys = db(store.all_keys().await)?;
        let teams = db(store.all_teams().await)?;
        return Ok(json(serde_json::json!({
            "user_id": null,
            "user_info": {"user_role": "proxy_admin"},
            "keys": keys.iter().map(|k| Value::Object(key_json(registry, k))).collect::<Vec<_>>(),
            "teams": teams.iter().map(|t| Value::Object(team_json(registry, t))).collect::<Vec<_>>(),
        })));
    };
    let rec = existing(store, &user_id).await?;
    if let Some(entry) = registry.users.get(&user_id).map(|e| e.clone()) {
        app.access.refresh_spend(&entry.live).await;
    }
    let filter = KeyFilter { user_id: Some(user_id.clone()), page: 1, size: 0, ..Default::default() };
    let (keys, _) = db(store.list_keys(&filter).await)?;
    let mut teams = Vec::new();
    for t in &rec.teams {
        if let Some(team) = db(store.get_team(t).await)? {
            teams.push(Value::Object(team_json(registry, &team)));
        }
    }
    Ok(json(serde_json::json!({
        "user_id": user_id,
        "user_info": user_json(registry, &rec),
        "keys": keys.iter().map(|k| Value::Object(key_json(registry, k))).collect::<Vec<_>>(),
        "teams": teams,
    })))
}

/// `POST /user/update` (`user_id`, or `user_email` to find the user): the fields present change.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/user/update").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let user_id = match (f.string("user_id")?.flatten(), f.string("user_email")?.flatten()) {
        (Some(id), _) => id,
        (None, Some(email)) => db(store.all_users().await)?
            .into_iter()
            .find(|u| u.user_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)))
            .map(|u| u.user_id)
            .ok_or_else(|| {
                not_found(format!("No user with user_email={email}. Create one with /user/new."), "user_email")
            })?,
        (None, None) => {
            return Err(ApiError::new(422, "`user_id` or `user_email` is required to pick the user to update.")
                .kind("invalid_request_error")
                .param("user_id")
                .into())
        }
    };
    let mut rec = existing(store, &user_id).await?;
    let now = super::now();
    Common::of_user(&mut rec).apply(&f, now)?;
    if let Some(v) = role_of(&f)? {
        rec.user_role = v;
    }
    if f.has("user_id") {
        if let Some(v) = f.string("user_email")? {
            if let Some(e) = &v {
                if email_taken(store, e, Some(&user_id)).await? {
                    return Err(bad(format!("User with email {e} already exists."), "user_email"));
                }
            }
            rec.user_email = v;
        }
    }
    if let Some(v) = f.string("user_alias")? {
        rec.user_alias = v;
    }
    rec.updated_at = Some(now);
    db(store.update_user(&rec).await)?;
    let changed_id = rec.user_id.clone();
    let entry = app.access.registry.put_user(rec, false);
    app.changes.publish(Kind::User, [changed_id]).await;
    if let Some(Some(spend)) = f.f64("spend")? {
        set_spend(store, Spender::User(user_id.clone()), &entry.live, spend, entry.record.budget_reset_at).await?;
    }
    Ok(json(serde_json::json!({"user_id": user_id, "data": user_json(&app.access.registry, &entry.record)})))
}

/// `POST /user/delete` `{"user_ids": [...]}`: the users, their keys and their team
/// memberships go. Answers the number of users deleted, as LiteLLM does.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/user/delete").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let Some(ids) = f.strings("user_ids")?.flatten().filter(|v| !v.is_empty()) else {
        return Err(ApiError::new(422, "`user_ids` is required: send {\"user_ids\": [\"...\"]}.")
            .kind("invalid_request_error")
            .param("user_ids")
            .into());
    };
    for id in &ids {
        let filter = KeyFilter { user_id: Some(id.clone()), page: 1, size: 0, ..Default::default() };
        let (keys, _) = db(store.list_keys(&filter).await)?;
        let tokens: Vec<String> = keys.into_iter().map(|k| k.token).collect();
        let gone = db(store.delete_keys(&tokens).await)?;
        for t in &gone {
            app.access.registry.keys.remove(t);
        }
        app.changes.publish(Kind::Key, gone).await;
        if let Some(user) = db(store.get_user(id).await)? {
            for t in &user.teams {
                leave_team(&app, store, t, id, false).await?;
            }
        }
    }
    let deleted = db(store.delete_users(&ids).await)?;
    for id in &deleted {
        app.access.registry.users.remove(id);
    }
    app.changes.publish(Kind::User, deleted.iter().cloned()).await;
    tracing::info!(count = deleted.len(), "users deleted");
    Ok(json(deleted.len()))
}

/// `GET /user/list?page=&page_size=&user_ids=&role=&team=&user_email=`.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    authorize(&app, &headers, "/user/list").await?;
    let store = store(&app, Need::Other)?;
    let page = query_count(&q, "page", 1, i64::MAX)?;
    let page_size = query_count(&q, "page_size", 25, 100)?;
    let ids: Option<Vec<&str>> = query_str(&q, "user_ids").map(|s| s.split(',').map(str::trim).collect());
    let role = query_str(&q, "role");
    let team = query_str(&q, "team");
    let email = query_str(&q, "user_email").map(str::to_lowercase);
    let mut users: Vec<UserRecord> = db(store.all_users().await)?
        .into_iter()
        .filter(|u| ids.as_ref().is_none_or(|ids| ids.contains(&u.user_id.as_str())))
        .filter(|u| role.is_none_or(|r| u.user_role.as_deref() == Some(r)))
        .filter(|u| team.is_none_or(|t| u.teams.iter().any(|x| x == t)))
        .filter(|u| {
            email
                .as_ref()
                .is_none_or(|e| u.user_email.as_deref().is_some_and(|x| x.to_lowercase().contains(e.as_str())))
        })
        .collect();
    users.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.user_id.cmp(&b.user_id)));
    let total = users.len() as i64;
    let start = ((page - 1).saturating_mul(page_size)).min(total) as usize;
    let rows: Vec<Value> = users
        .iter()
        .skip(start)
        .take(page_size as usize)
        .map(|u| Value::Object(user_json(&app.access.registry, u)))
        .collect();
    Ok(json(serde_json::json!({
        "users": rows,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) / page_size,
    })))
}
