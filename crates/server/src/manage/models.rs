//! Deployments stored in the database (`store_model_in_db`): `/model/new`, `/model/delete`, and
//! `/model/update` and `PATCH /model/{model_id}/update`, and `/model/info` listing them next to
//! the config's (LiteLLM's `model_management_endpoints.py`).
//!
//! A model added, changed or deleted here is persisted, and this replica routes it before the
//! answer is sent; every other replica within about a second, once [`crate::live`] has read the
//! change (a notice through Redis, or the database poll) and swapped in a router with it
//! ([`App::reroute`]).

use super::{bad, caller, db, json, not_found, store, Fields, Need, Result};
use crate::app::App;
use crate::config::{DeploymentSpec, Env};
use crate::errors::ErrorResponse;
use crate::live::Kind;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use sluice_store::ModelRecord;
use sluice_wire::ApiError;
use std::sync::Arc;

/// LiteLLM's refusal when `store_model_in_db` is off (it answers 500 with this text).
pub(crate) fn disabled() -> ErrorResponse {
    ErrorResponse(
        ApiError::new(
            500,
            "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature. (In sluice: general_settings.store_model_in_db: true, or STORE_MODEL_IN_DB=True.)",
        )
        .kind("auth_error"),
    )
}

/// Whether a `litellm_params` entry holds a credential (never sent back to clients).
pub(crate) fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("secret")
        || n.contains("password")
        || n.contains("credential")
        || n.ends_with("_key")
        || n.ends_with("api_key")
        || n.ends_with("_key_id")
        || n.ends_with("_token")
        || n == "token"
}

pub(crate) fn public_params(params: &Map<String, Value>) -> Map<String, Value> {
    params.iter().filter(|(k, _)| !is_secret(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn model_json(m: &ModelRecord) -> Value {
    let mut info = m.model_info.clone();
    info.insert("id".into(), Value::String(m.model_id.clone()));
    info.insert("db_model".into(), Value::Bool(true));
    serde_json::json!({
        "model_id": m.model_id,
        "model_name": m.model_name,
        "litellm_params": public_params(&m.litellm_params),
        "model_info": info,
        "created_at": m.created_at,
    })
}

/// `POST /model/new` `{"model_name", "litellm_params": {"model", ...}, "model_info"?}`.
pub async fn new(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    super::roles::authorize(&app, &headers, "/model/new").await?;
    let store = store(&app, Need::Other)?;
    if !app.store_model_in_db {
        return Err(disabled());
    }
    let f = Fields::parse(&body)?;
    let model_name = f.required("model_name")?;
    let Some(Some(litellm_params)) = f.object("litellm_params")? else {
        return Err(bad("`litellm_params` is required, e.g. {\"model\": \"openai/gpt-4o\", \"api_key\": \"os.environ/OPENAI_API_KEY\"}", "litellm_params"));
    };
    if !litellm_params.get("model").is_some_and(Value::is_string) {
        return Err(bad(
            "`litellm_params.model` is required: the provider/model to call, e.g. openai/gpt-4o",
            "litellm_params",
        ));
    }
    let mut model_info = f.object("model_info")?.flatten().unwrap_or_default();
    let model_id = model_info
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    model_info.insert("id".into(), Value::String(model_id.clone()));
    let rec = ModelRecord { model_id, model_name, litellm_params, model_info, created_at: Some(super::now()) };
    // What would not load at the next start is refused now, naming the field.
    if let Err(why) = check(&rec, &Env::process()) {
        // The message starts with the field's path, as a config error would name it.
        let path = why.split(':').next().unwrap_or_default();
        let param = path.rsplit_once("].").map_or(path, |(_, p)| p).trim_start_matches("stored model.");
        return Err(bad(format!("{why}. Nothing was stored."), param));
    }
    db(store.insert_model(&rec).await)?;
    app.changes.publish(Kind::Model, [rec.model_id.clone()]).await;
    tracing::info!(model_id = %rec.model_id, model_name = %rec.model_name, "model stored in the database");
    let litellm_model = rec.litellm_params.get("model").and_then(Value::as_str).unwrap_or_default();
    let base_model = rec.model_info.get("base_model").and_then(Value::as_str);
    crate::alerts::model_added(&app, &rec.model_name, litellm_model, base_model);
    Ok(json(model_json(&rec)))
}

/// `POST /model/delete` `{"id"}`.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    super::roles::authorize(&app, &headers, "/model/delete").await?;
    let store = store(&app, Need::Other)?;
    if !app.store_model_in_db {
        return Err(disabled());
    }
    let f = Fields::parse(&body)?;
    let id = f.required("id")?;
    if !db(store.delete_model(&id).await)? {
        return Err(bad(format!("Model with id={id} not found in db. List models with /model/info."), "id"));
    }
    app.changes.publish(Kind::Model, [id.clone()]).await;
    Ok(json(serde_json::json!({"message": format!("Model: {id} deleted successfully")})))
}

/// `POST /model/update` `{"model_info": {"id"}, "model_name"?, "litellm_params"?, ...}` (the id
/// may also come as `model_id`): changes a stored model in place, merging the fields given.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    super::roles::authorize(&app, &headers, "/model/update").await?;
    let f = Fields::parse(&body)?;
    let from_info = f.0.get("model_info").and_then(|i| i.get("id")).and_then(Value::as_str);
    let from_top = f.0.get("model_id").and_then(Value::as_str);
    let Some(id) = from_info.or(from_top).filter(|s| !s.is_empty()).map(str::to_string) else {
        return Err(bad(
            "`model_info.id` is required: the id of the stored model to change (see /model/info)",
            "model_info",
        ));
    };
    // LiteLLM answers an unknown id here with a 400 (its PATCH route with a 404).
    change(&app, &id, &f, |m| bad(m, "model_info")).await
}

/// `PATCH /model/{model_id}/update` with the fields to change: LiteLLM's partial update.
pub async fn patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    super::roles::authorize(&app, &headers, "/model/{model_id}/update").await?;
    let f = Fields::parse(&body)?;
    change(&app, &id, &f, |m| not_found(m, "model_id")).await
}

/// Merges `f` into the stored model `id` as LiteLLM's `update_db_model` does: a new
/// `model_name` replaces the old; `litellm_params` and `model_info` are merged key by key, a
/// `null` leaving the key as it was. The result must load as a deployment, or nothing is stored.
async fn change(app: &App, id: &str, f: &Fields, missing: fn(String) -> ErrorResponse) -> Result<Response> {
    let store = store(app, Need::Other)?;
    if !app.store_model_in_db {
        return Err(disabled());
    }
    let stored = db(store.all_models().await)?;
    let Some(mut rec) = stored.into_iter().find(|m| m.model_id == id) else {
        if app.router.load().deployments().any(|d| d.id == id) {
            return Err(bad(
                format!("Can't edit model {id}: it is defined in the config file. Store it in the database with /model/new to edit it here, or change config.yaml."),
                "model_info",
            ));
        }
        return Err(missing(format!("Model {id} not found on proxy. List models with /model/info.")));
    };
    let name = f.string("model_name")?.flatten().filter(|n| !n.is_empty());
    let params = f.object("litellm_params")?.flatten();
    let info = f.object("model_info")?.flatten();
    if name.is_none() && params.is_none() && info.is_none() {
        return Err(bad(
            "Nothing to update: send model_name, litellm_params or model_info with the fields to change",
            "litellm_params",
        ));
    }
    if let Some(name) = name {
        rec.model_name = name;
    }
    let merge = |into: &mut Map<String, Value>, from: Map<String, Value>| {
        into.extend(from.into_iter().filter(|(_, v)| !v.is_null()));
    };
    if let Some(p) = params {
        merge(&mut rec.litellm_params, p);
    }
    if let Some(i) = info {
        merge(&mut rec.model_info, i);
    }
    // The id names the row; a different one in the body does not move it.
    rec.model_info.insert("id".into(), Value::String(rec.model_id.clone()));
    if let Err(why) = check(&rec, &Env::process()) {
        let path = why.split(':').next().unwrap_or_default();
        let param = path.rsplit_once("].").map_or(path, |(_, p)| p).trim_start_matches("stored model.");
        return Err(bad(format!("{why}. Nothing was changed."), param));
    }
    db(store.insert_model(&rec).await)?;
    app.changes.publish(Kind::Model, [rec.model_id.clone()]).await;
    tracing::info!(model_id = %rec.model_id, model_name = %rec.model_name, "stored model updated");
    Ok(json(model_json(&rec)))
}

/// `GET /model/info` (and `/v1/model/info`): the config's deployments, then those stored in
/// the database when `store_model_in_db` is on.
pub async fn model_info(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    let identity = caller(&app, &headers).await?;
    // A virtual key sees the deployments of the model groups it may call, as in LiteLLM.
    let is_key = matches!(identity, sluice_access::Identity::Key(_));
    let stored = match (app.store_model_in_db, app.access.store()) {
        (true, Some(store)) => match store.all_models().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("could not list stored models for /model/info: {e}");
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    if stored.is_empty() && !is_key {
        return Ok(([(http::header::CONTENT_TYPE, "application/json")], app.model_info_json.clone()).into_response());
    }
    let mut body: Value =
        serde_json::from_slice(&app.model_info_json).unwrap_or_else(|_| serde_json::json!({"data": []}));
    if let Some(data) = body.get_mut("data").and_then(Value::as_array_mut) {
        let known: std::collections::HashSet<String> = data
            .iter()
            .filter_map(|d| d.pointer("/model_info/id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let env = Env::process();
        for m in stored.iter().filter(|m| !known.contains(&m.model_id)) {
            let mut entry = model_json(m);
            if let Value::Object(o) = &mut entry {
                o.remove("model_id");
                o.remove("created_at");
                if let (Ok(spec), Some(Value::Object(info))) = (parse(m, "stored model", &env), o.get_mut("model_info"))
                {
                    crate::info::add_prices(&spec, info);
                }
            }
            data.push(entry);
        }
        if is_key {
            data.retain(|d| {
                d.get("model_name").and_then(Value::as_str).is_some_and(|m| app.access.admit_model(&identity, m))
            });
        }
    }
    Ok(json(body))
}

/// The stored models as deployments, for building the router at start: each is parsed like a
/// `model_list` entry (`os.environ/` references resolved against `env`). Entries that do not
/// parse are skipped with an error naming them, so one bad row never stops the start.
pub fn deployments_from_db(models: &[ModelRecord], env: &Env) -> Vec<DeploymentSpec> {
    let mut out = Vec::new();
    for m in models {
        match parse(m, &format!("stored model {}", m.model_id), env) {
            Ok(d) => out.push(d),
            Err(e) => tracing::error!(
                model_id = %m.model_id,
                "skipping {e}. Fix or delete it with /model/delete."
            ),
        }
    }
    out
}

/// Whether `m` would load as a deployment; `Err` names the field (`litellm_params.timeout: …`).
fn check(m: &ModelRecord, env: &Env) -> std::result::Result<(), String> {
    crate::app::check_deployment(&parse(m, "stored model", env)?, env)
}

fn parse(m: &ModelRecord, path: &str, env: &Env) -> std::result::Result<DeploymentSpec, String> {
    let mut info = m.model_info.clone();
    info.insert("id".into(), Value::String(m.model_id.clone()));
    info.insert("db_model".into(), Value::Bool(true));
    let entry = serde_json::json!({
        "model_name": m.model_name,
        "litellm_params": m.litellm_params,
        "model_info": info,
    });
    let v = serde_yaml_ng::to_value(&entry).map_err(|e| format!("{path}: {e}"))?;
    DeploymentSpec::parse(path, &v, env, &mut Vec::new(), &mut Vec::new()).map_err(|e| e.to_string())
}
