//! Virtual-key management: `/key/generate`, `/key/update`, `/key/info`, `/v2/key/info`,
//! `/key/list`, `/key/delete`, `/key/block`, `/key/unblock` and `/key/regenerate`
//! (LiteLLM's `key_management_endpoints.py`). Raw keys are shown once, in the generate and
//! regenerate responses; the store and the registry only ever hold their SHA-256.

use super::roles::{authorize, Caller};
use super::{
    actor, bad, db, json, key_json, key_name, key_spend, new_raw_key, not_found, query_count, query_str, set_spend,
    store, token_of, Common, Fields, Need, Query, Result,
};
use crate::app::App;
use crate::live::Kind;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value};
use sluice_access::registry::Registry;
use sluice_access::{hash_key, Identity};
use sluice_store::{KeyFilter, KeyRecord, Spender, Store};
use sluice_wire::ApiError;
use std::sync::Arc;

/// Applies the key fields present in `f` to `rec` (everything `/key/generate` and `/key/update`
/// accept except `key`, `spend` and the identity fields the caller sets).
pub(crate) fn apply_key_fields(f: &Fields, rec: &mut KeyRecord, now: DateTime<Utc>) -> Result<()> {
    Common::of_key(rec).apply(f, now)?;
    if let Some(v) = f.string("key_alias")? {
        rec.key_alias = v.filter(|a| !a.is_empty());
    }
    if let Some(v) = f.string("user_id")? {
        rec.user_id = v;
    }
    if let Some(v) = f.string("team_id")? {
        rec.team_id = v;
    }
    if let Some(v) = f.f64("soft_budget")? {
        if let Some(x) = v.filter(|x| *x < 0.0) {
            return Err(bad(format!("soft_budget cannot be negative. Received: {x}"), "soft_budget"));
        }
        rec.soft_budget = v;
    }
    if let Some(v) = f.object("aliases")? {
        rec.aliases = v.unwrap_or_default();
    }
    if let Some(v) = f.bool("blocked")? {
        rec.blocked = v.unwrap_or(false);
    }
    if let Some(v) = f.strings("allowed_cache_controls")? {
        rec.allowed_cache_controls = v.unwrap_or_default();
    }
    // `expires` (an ISO time) first, so `duration` wins when both are given.
    if let Some(v) = f.string("expires")? {
        rec.expires = match v {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|_| bad("expires must be an ISO 8601 time, e.g. 2030-01-31T00:00:00Z", "expires"))?
                    .with_timezone(&Utc),
            ),
        };
    }
    if let Some(v) = f.string("duration")? {
        rec.expires = match v.as_deref().map(str::trim) {
            // `null` or "-1": never expires.
            None | Some("-1") | Some("") => None,
            Some(spec) => Some(super::after(now, spec, "duration")?),
        };
    }
    Ok(())
}

/// LiteLLM's 400 for a key alias in use by another key.
async fn check_alias(store: &Store, alias: Option<&str>, own_token: Option<&str>) -> Result<()> {
    let Some(alias) = alias else { return Ok(()) };
    if let Some(other) = db(store.key_by_alias(alias).await)? {
        if Some(other.token.as_str()) != own_token {
            return Err(bad(
                format!("Key with alias '{alias}' already exists. Unique key aliases across all keys are required."),
                "key_alias",
            ));
        }
    }
    Ok(())
}

/// LiteLLM's 400 for a key naming a team that does not exist.
pub(crate) async fn check_team(store: &Store, team_id: Option<&str>) -> Result<()> {
    let Some(team_id) = team_id else { return Ok(()) };
    if db(store.get_team(team_id).await)?.is_none() {
        return Err(bad(
            format!(
                "Unable to find team object in database. Team ID: {team_id}. Create the team with /team/new first."
            ),
            "team_id",
        ));
    }
    Ok(())
}

/// A caller-chosen raw key must look like a virtual key.
fn check_raw_key(raw: &str, field: &str) -> Result<()> {
    if raw.starts_with("sk-") {
        return Ok(());
    }
    Err(bad(
        format!(
            "Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: {}",
            sluice_access::auth::abbreviate(raw)
        ),
        field,
    ))
}

/// LiteLLM's `GenerateKeyResponse`: the row, the raw key (the only time it is shown), the hash
/// as `token`/`token_id`, and the request's other fields echoed.
pub(crate) fn generate_response(
    registry: &sluice_access::registry::Registry,
    raw: &str,
    rec: &KeyRecord,
    f: &Fields,
) -> Map<String, Value> {
    let mut m = key_json(registry, rec);
    m.insert("key".into(), Value::String(raw.to_string()));
    m.insert("token_id".into(), Value::String(rec.token.clone()));
    for (k, v) in &f.0 {
        if k != "new_key" {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    m
}

/// Creates a key from `f` for `caller` (shared with `/user/new`'s automatic key); a non-admin's
/// key must be its own or its team's ([`Caller::check_new_owner`]).
pub(crate) async fn create_key(app: &App, caller: &Caller, f: &Fields) -> Result<(String, KeyRecord)> {
    let store = store(app, Need::Keys)?;
    let now = super::now();
    let raw = match f.string("key")? {
        Some(Some(k)) => {
            check_raw_key(&k, "key")?;
            k
        }
        _ => new_raw_key(),
    };
    let who = actor(&caller.identity);
    let mut rec = KeyRecord {
        token: hash_key(&raw),
        key_name: Some(key_name(&raw)),
        created_at: Some(now),
        updated_at: Some(now),
        created_by: Some(who.clone()),
        updated_by: Some(who),
        ..Default::default()
    };
    apply_key_fields(f, &mut rec, now)?;
    if let Some(Some(s)) = f.f64("spend")? {
        if s < 0.0 {
            return Err(bad(format!("spend cannot be negative. Received: {s}"), "spend"));
        }
        rec.spend = s;
    }
    check_team(store, rec.team_id.as_deref()).await?;
    caller.check_new_owner(&app.access.registry, &rec, "/key/generate")?;
    check_alias(store, rec.key_alias.as_deref(), None).await?;
    db(store.insert_key(&rec).await)?;
    let entry = app.access.registry.put_key(rec, false);
    // Another replica may remember this hash as unknown: the notice makes it read it again.
    app.changes.publish(Kind::Key, [entry.record.token.clone()]).await;
    Ok((raw, entry.record.clone()))
}

/// `POST /key/generate`.
pub async fn generate(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/generate").await?;
    store(&app, Need::Keys)?;
    let mut f = Fields::parse(&body)?;
    caller.check_key_fields(&f, "/key/generate")?;
    // A non-admin's key is its own unless it names another user (LiteLLM assigns the caller's
    // user_id; naming someone else is checked in `create_key`).
    if !caller.all() && f.string("user_id")?.flatten().is_none() {
        if let Some(me) = caller.user_id() {
            f.0.insert("user_id".into(), Value::String(me.to_string()));
        }
    }
    let (raw, rec) = create_key(&app, &caller, &f).await?;
    tracing::info!(token = %rec.token, alias = rec.key_alias.as_deref().unwrap_or(""), "key generated");
    Ok(json(generate_response(&app.access.registry, &raw, &rec, &f)))
}

/// The stored key for `key` (raw or hash), or LiteLLM's 404.
async fn existing(store: &Store, key: &str) -> Result<KeyRecord> {
    db(store.get_key(&token_of(key)).await)?.ok_or_else(|| {
        not_found(
            format!("Key not found in database: {}. Check the key (or its hash) with /key/list.", shown(key)),
            "key",
        )
    })
}

/// The stored key for `key` if the caller may act on it: an admin any key (LiteLLM's 404 when
/// missing), others their own ([`Caller::owns_key`]), with one 403 for a key that is someone
/// else's and a key that is not there.
async fn owned(caller: &Caller, registry: &Registry, store: &Store, key: &str, action: &str) -> Result<KeyRecord> {
    if caller.all() {
        return existing(store, key).await;
    }
    match db(store.get_key(&token_of(key)).await)? {
        Some(rec) if caller.owns_key(registry, &rec) => Ok(rec),
        _ => Err(caller.not_your_key(registry, action)),
    }
}

/// How a key a client passed may appear in a message: abbreviated when raw, whole when a hash.
fn shown(key: &str) -> String {
    if key.starts_with("sk-") {
        sluice_access::auth::abbreviate(key)
    } else {
        key.to_string()
    }
}

/// `POST /key/update`: the fields present change, the others stay.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/update").await?;
    let store = store(&app, Need::Keys)?;
    let f = Fields::parse(&body)?;
    let key = f.required("key")?;
    let registry = &app.access.registry;
    let mut rec = owned(&caller, registry, store, &key, "update").await?;
    caller.check_key_fields(&f, "/key/update")?;
    let old_team = rec.team_id.clone();
    let now = super::now();
    apply_key_fields(&f, &mut rec, now)?;
    rec.updated_at = Some(now);
    rec.updated_by = Some(actor(&caller.identity));
    if rec.team_id != old_team {
        check_team(store, rec.team_id.as_deref()).await?;
    }
    caller.check_new_owner(registry, &rec, "/key/update")?;
    check_alias(store, rec.key_alias.as_deref(), Some(&rec.token)).await?;
    db(store.update_key(&rec).await)?;
    let entry = app.access.registry.put_key(rec, false);
    if let Some(Some(spend)) = f.f64("spend")? {
        set_spend(store, Spender::Key(entry.record.token.clone()), &entry.live, spend, entry.record.budget_reset_at)
            .await?;
    }
    app.changes.publish(Kind::Key, [entry.record.token.clone()]).await;
    let mut out = Map::new();
    out.insert("key".into(), Value::String(key));
    out.extend(key_json(&app.access.registry, &entry.record));
    Ok(json(out))
}

/// `GET /key/info?key=`: any key; without `?key=`, the caller's own. A non-admin may look at
/// its own key and at keys of its own user.
pub async fn info(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/info").await?;
    let identity = &caller.identity;
    let store = store(&app, Need::Keys)?;
    let (shown_key, token) = match (query_str(&q, "key"), identity) {
        (Some(k), _) => (k.to_string(), token_of(k)),
        // LiteLLM answers with the caller's key as it knows it: the hash.
        (None, Identity::Key(own)) => (own.record.token.clone(), own.record.token.clone()),
        (None, _) => {
            return Err(ApiError::bad_request(
                "Pass the key to look up as ?key=sk-... (the master key has no key row of its own).",
            )
            .param("key")
            .into())
        }
    };
    let rec = if caller.all() {
        existing(store, &token).await?
    } else {
        // A key that is not there and a key that is someone else's get the same 403, so a
        // non-admin cannot use this route to learn whether a key exists (LiteLLM answers 404
        // for the first, 403 for the second).
        let found = db(store.get_key(&token).await)?;
        match found {
            Some(rec) if caller.owns_key(&app.access.registry, &rec) => rec,
            _ => {
                let role = super::roles::role_name(identity, &app.access.registry);
                return Err(ApiError::new(
                    403,
                    format!("You are not allowed to access this key's info. Your role={role}"),
                )
                .kind("auth_error")
                .param("key")
                .into());
            }
        }
    };
    // Shared budgets: the total as Redis has it now, so every replica shows the same spend.
    if let Some(entry) = app.access.registry.key(&rec.token) {
        app.access.key_spend_now(&entry).await;
    }
    let mut row = key_json(&app.access.registry, &rec);
    row.remove("token");
    Ok(json(serde_json::json!({"key": shown_key, "info": row})))
}

/// `POST /v2/key/info` `{"keys": [...]}`: the rows found, tokens included (for a non-admin,
/// only the keys it may see).
pub async fn info_v2(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/v2/key/info").await?;
    let store = store(&app, Need::Keys)?;
    let f = Fields::parse(&body)?;
    let Some(Some(keys)) = f.strings("keys")? else {
        return Err(ApiError::new(422, "Malformed request. No keys passed in: send {\"keys\": [\"sk-...\"]}.")
            .kind("invalid_request_error")
            .param("keys")
            .into());
    };
    let mut info = Vec::new();
    for k in &keys {
        if let Some(rec) = db(store.get_key(&token_of(k)).await)?.filter(|r| caller.owns_key(&app.access.registry, r)) {
            info.push(Value::Object(key_json(&app.access.registry, &rec)));
        }
    }
    Ok(json(serde_json::json!({"key": keys, "info": info})))
}

/// `GET /key/list?page=&size=&user_id=&team_id=&key_alias=&return_full_object=`: every key for
/// an admin; for others their own keys and those of the teams they are an admin of.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/list").await?;
    let store = store(&app, Need::Keys)?;
    let page = query_count(&q, "page", 1, i64::MAX)?;
    let size = query_count(&q, "size", 10, 100)?;
    let full = query_str(&q, "return_full_object").and_then(super::parse_bool).unwrap_or(false);
    let filter = KeyFilter {
        user_id: query_str(&q, "user_id").map(str::to_string),
        team_id: query_str(&q, "team_id").map(str::to_string),
        key_alias: query_str(&q, "key_alias").map(str::to_string),
        page,
        size,
    };
    let (rows, total) = if caller.all() {
        db(store.list_keys(&filter).await)?
    } else {
        own_keys(&caller, &app, store, &filter).await?
    };
    let keys: Vec<Value> = rows
        .iter()
        .map(|k| if full { Value::Object(key_json(&app.access.registry, k)) } else { Value::String(k.token.clone()) })
        .collect();
    Ok(json(serde_json::json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": (total + size - 1) / size,
    })))
}

/// The page `filter` asks for, of the keys a non-admin may see: its user's, its teams' where it
/// is an admin, and its own key.
async fn own_keys(caller: &Caller, app: &App, store: &Store, filter: &KeyFilter) -> Result<(Vec<KeyRecord>, i64)> {
    let registry = &app.access.registry;
    let all_of = |user_id: Option<String>, team_id: Option<String>| KeyFilter {
        user_id,
        team_id,
        page: 1,
        size: 0,
        ..filter.clone()
    };
    let mut scopes = Vec::new();
    if let Some(me) = caller.user_id() {
        if filter.user_id.as_deref().is_none_or(|u| u == me) {
            scopes.push(all_of(Some(me.to_string()), filter.team_id.clone()));
        }
    }
    for team in caller.admin_teams(registry) {
        if filter.team_id.as_deref().is_none_or(|t| t == team) {
            scopes.push(all_of(filter.user_id.clone(), Some(team)));
        }
    }
    let mut found = std::collections::BTreeMap::new();
    for scope in &scopes {
        for rec in db(store.list_keys(scope).await)?.0 {
            found.insert(rec.token.clone(), rec);
        }
    }
    if let Identity::Key(own) = &caller.identity {
        let rec = &own.record;
        let wanted = |want: &Option<String>, has: &Option<String>| want.is_none() || want == has;
        if wanted(&filter.user_id, &rec.user_id)
            && wanted(&filter.team_id, &rec.team_id)
            && wanted(&filter.key_alias, &rec.key_alias)
        {
            found.entry(rec.token.clone()).or_insert_with(|| rec.clone());
        }
    }
    // The store's order: newest first, then by token.
    let mut rows: Vec<KeyRecord> = found.into_values().collect();
    rows.sort_by(|a, b| match (a.created_at, b.created_at) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.token.cmp(&b.token)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.token.cmp(&b.token),
    });
    let total = rows.len() as i64;
    let start = (filter.page.max(1) - 1).saturating_mul(filter.size).min(total) as usize;
    Ok((rows.into_iter().skip(start).take(filter.size.max(0) as usize).collect(), total))
}

/// `POST /key/delete` `{"keys": [...]}` (raw keys or hashes) or `{"key_aliases": [...]}`.
/// Keys that do not exist are skipped, as in LiteLLM; the answer lists what was asked for.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/delete").await?;
    let store = store(&app, Need::Keys)?;
    let f = Fields::parse(&body)?;
    let (asked, tokens) = match (f.strings("keys")?.flatten(), f.strings("key_aliases")?.flatten()) {
        (Some(keys), _) if !keys.is_empty() => {
            let tokens = keys.iter().map(|k| token_of(k)).collect();
            (keys, tokens)
        }
        (_, Some(aliases)) if !aliases.is_empty() => {
            let mut tokens = Vec::new();
            for a in &aliases {
                if let Some(k) = db(store.key_by_alias(a).await)? {
                    tokens.push(k.token);
                }
            }
            (aliases, tokens)
        }
        _ => {
            return Err(ApiError::new(
                400,
                "Pass the keys to delete as {\"keys\": [\"sk-...\" or hash, ...]} or {\"key_aliases\": [...]}.",
            )
            .kind("bad_request_error")
            .param("keys")
            .into())
        }
    };
    if !caller.all() {
        // All or nothing: one key that is not the caller's (or not there) refuses the request.
        let registry = &app.access.registry;
        let mut all_found = tokens.len() == asked.len();
        for t in &tokens {
            let rec = db(store.get_key(t).await)?;
            all_found &= rec.as_ref().is_some_and(|r| caller.owns_key(registry, r));
        }
        if !all_found {
            return Err(caller.not_your_key(registry, "delete"));
        }
    }
    let deleted = db(store.delete_keys(&tokens).await)?;
    for t in &deleted {
        app.access.registry.keys.remove(t);
    }
    app.changes.publish(Kind::Key, deleted.iter().cloned()).await;
    tracing::info!(count = deleted.len(), "keys deleted");
    Ok(json(serde_json::json!({"deleted_keys": asked})))
}

async fn set_blocked(app: &App, headers: &HeaderMap, body: &[u8], blocked: bool) -> Result<Response> {
    let route = if blocked { "/key/block" } else { "/key/unblock" };
    let caller = authorize(app, headers, route).await?;
    let store = store(app, Need::Keys)?;
    let f = Fields::parse(body)?;
    let key = f.required("key")?;
    let mut rec = owned(&caller, &app.access.registry, store, &key, if blocked { "block" } else { "unblock" }).await?;
    rec.blocked = blocked;
    rec.updated_at = Some(super::now());
    rec.updated_by = Some(actor(&caller.identity));
    db(store.update_key(&rec).await)?;
    let entry = app.access.registry.put_key(rec, false);
    app.changes.publish(Kind::Key, [entry.record.token.clone()]).await;
    Ok(json(key_json(&app.access.registry, &entry.record)))
}

/// `POST /key/block` `{"key": ...}`: the key is refused from now on.
pub async fn block(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    set_blocked(&app, &headers, &body, true).await
}

/// `POST /key/unblock` `{"key": ...}`.
pub async fn unblock(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    set_blocked(&app, &headers, &body, false).await
}

/// `POST /key/regenerate` `{"key": ..., "new_key"?: ..., ...fields to change}`.
pub async fn regenerate(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/regenerate").await?;
    let f = Fields::parse(&body)?;
    let key = f.required("key")?;
    regenerate_key(&app, &caller, "/key/regenerate", &key, &f).await
}

/// `POST /key/{key}/regenerate` (optional body with `new_key` and fields to change).
pub async fn regenerate_path(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let caller = authorize(&app, &headers, "/key/{key}/regenerate").await?;
    let f = Fields::parse(&body)?;
    regenerate_key(&app, &caller, "/key/{key}/regenerate", &key, &f).await
}

/// A new raw key for an existing key, same settings (plus any changes in `f`); the old key
/// stops working at once.
async fn regenerate_key(app: &App, caller: &Caller, route: &str, key: &str, f: &Fields) -> Result<Response> {
    let store = store(app, Need::Keys)?;
    let old = owned(caller, &app.access.registry, store, key, "regenerate").await?;
    caller.check_key_fields(f, route)?;
    let raw = match f.string("new_key")? {
        Some(Some(k)) => {
            check_raw_key(&k, "new_key")?;
            k
        }
        _ => new_raw_key(),
    };
    let now = super::now();
    let mut rec = old.clone();
    // `key` names the key being regenerated, not a new value.
    let mut changes = f.clone();
    changes.0.remove("key");
    apply_key_fields(&changes, &mut rec, now)?;
    rec.token = hash_key(&raw);
    rec.key_name = Some(key_name(&raw));
    rec.updated_at = Some(now);
    rec.updated_by = Some(actor(&caller.identity));
    // The live figure carries over (it includes spend not yet written).
    rec.spend = key_spend(&app.access.registry, &old);
    if rec.team_id != old.team_id {
        check_team(store, rec.team_id.as_deref()).await?;
    }
    caller.check_new_owner(&app.access.registry, &rec, route)?;
    check_alias(store, rec.key_alias.as_deref(), Some(&old.token)).await?;
    db(store.rekey(&old.token, &rec).await)?;
    app.access.registry.keys.remove(&old.token);
    let entry = app.access.registry.put_key(rec, false);
    app.changes.publish(Kind::Key, [old.token.clone(), entry.record.token.clone()]).await;
    tracing::info!(old = %old.token, new = %entry.record.token, "key regenerated");
    Ok(json(generate_response(&app.access.registry, &raw, &entry.record, &changes)))
}
