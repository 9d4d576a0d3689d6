//! Budgets: `/budget/new`, `/budget/update`, `/budget/info`, `/budget/list`, `/budget/settings`
//! and `/budget/delete` (LiteLLM's `budget_management_endpoints.py`). A budget is a row of limits
//! (`sluice_budgets`) that end users name by `budget_id`; `apply` also serves `/end_user/*`,
//! whose budget fields become such a row.

use super::roles::authorize;
use super::{bad, db, json, not_found, query_str, store, Fields, Need, Query, Result, MAX_NUMBER};
use crate::app::App;
use crate::errors::ErrorResponse;
use crate::live::Kind;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{json, Map, Value};
use sluice_store::{BudgetRecord, StoreError};
use sluice_wire::ApiError;
use std::sync::Arc;

/// The fields of a budget a request may set (LiteLLM's `BudgetNewRequest` less `budget_id`).
pub(crate) const FIELDS: &[&str] = &[
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "model_max_budget",
    "budget_duration",
    "budget_reset_at",
];

/// What `/budget/settings` describes: LiteLLM's `allowed_args`, in `BudgetNewRequest`'s order.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("max_budget", "Float", "Max spend in USD before requests are refused; reset every budget_duration."),
    ("soft_budget", "Float", "Spend in USD past which alerts are sent; requests are not refused."),
    ("max_parallel_requests", "Integer", "Max requests in flight at once."),
    ("tpm_limit", "Integer", "Max tokens per minute."),
    ("rpm_limit", "Integer", "Max requests per minute."),
    ("model_max_budget", "Object", "Max spend per model, e.g. {\"gpt-4o\": {\"budget_limit\": 10}}."),
    ("budget_duration", "String", "How often the spend is reset, e.g. \"30s\", \"30m\", \"30h\", \"30d\", \"1mo\"."),
];

/// Whether `f` sets any budget field.
pub(crate) fn any_field(f: &Fields) -> bool {
    FIELDS.iter().any(|k| f.0.get(*k).is_some_and(|v| !v.is_null()))
}

/// A non-negative amount in USD (LiteLLM: "must be a non-negative finite number").
fn usd(f: &Fields, k: &str) -> Result<Option<Option<f64>>> {
    let v = f.f64(k)?;
    if let Some(Some(x)) = v {
        if x < 0.0 {
            return Err(bad(format!("{k} must be a non-negative finite number. Received: {x}"), k));
        }
    }
    Ok(v)
}

/// `budget_reset_at` as RFC 3339, or a naive `YYYY-MM-DDTHH:MM:SS[.f]` read as UTC (what Python's
/// `datetime.isoformat()` writes without a zone).
fn reset_at(f: &Fields) -> Result<Option<Option<DateTime<Utc>>>> {
    let Some(v) = f.string("budget_reset_at")? else { return Ok(None) };
    let Some(s) = v else { return Ok(Some(None)) };
    let s = s.trim();
    let t = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .map_err(|_| {
            bad(
                format!("budget_reset_at must be a date and time such as 2030-01-31T00:00:00Z. Received: {s}"),
                "budget_reset_at",
            )
        })?;
    Ok(Some(Some(t)))
}

/// `model_max_budget`: model → a budget in USD, or an object of such numbers
/// (`{"budget_limit": 10, "time_period": "1d"}`); every number within 0..=[`MAX_NUMBER`].
fn model_max_budget(f: &Fields) -> Result<Option<Map<String, Value>>> {
    let Some(v) = f.object("model_max_budget")? else { return Ok(None) };
    let v = v.unwrap_or_default();
    let in_range = |x: &Value| x.as_f64().is_some_and(|n| (0.0..=MAX_NUMBER).contains(&n));
    for (model, budget) in &v {
        let ok = match budget {
            Value::Number(_) => in_range(budget),
            Value::Object(o) => o.values().all(|x| !x.is_number() || in_range(x)),
            _ => false,
        };
        if !ok {
            return Err(bad(
                format!("model_max_budget.{model} must be a budget in USD from 0 to {MAX_NUMBER}, or an object such as {{\"budget_limit\": 10, \"time_period\": \"1d\"}}. Received: {budget}"),
                "model_max_budget",
            ));
        }
    }
    Ok(Some(v))
}

/// Applies the budget fields present in `f` to `b`: a value sets, `null` clears, absence leaves
/// as is. A new `budget_duration` starts a period now unless `budget_reset_at` is given.
pub(crate) fn apply(b: &mut BudgetRecord, f: &Fields, now: DateTime<Utc>) -> Result<()> {
    for (k, slot) in [("max_budget", &mut b.max_budget), ("soft_budget", &mut b.soft_budget)] {
        if let Some(v) = usd(f, k)? {
            *slot = v;
        }
    }
    for (k, slot) in [
        ("max_parallel_requests", &mut b.max_parallel_requests),
        ("tpm_limit", &mut b.tpm_limit),
        ("rpm_limit", &mut b.rpm_limit),
    ] {
        if let Some(v) = f.i64(k)? {
            if let Some(x) = v.filter(|x| *x < 0) {
                return Err(bad(format!("{k} cannot be negative. Received: {x}"), k));
            }
            *slot = v;
        }
    }
    if let Some(v) = model_max_budget(f)? {
        b.model_max_budget = v;
    }
    budget_duration(f, b, now)?;
    if let Some(v) = reset_at(f)? {
        b.budget_reset_at = v;
    }
    Ok(())
}

/// A new budget row from the budget fields of `f`, made by `by`.
pub(crate) fn record(budget_id: String, f: &Fields, by: &str, now: DateTime<Utc>) -> Result<BudgetRecord> {
    let mut b = BudgetRecord {
        budget_id,
        created_at: Some(now),
        updated_at: Some(now),
        created_by: Some(by.to_string()),
        updated_by: Some(by.to_string()),
        ..Default::default()
    };
    apply(&mut b, f, now)?;
    Ok(b)
}

/// A budget row as LiteLLM returns it (`LiteLLM_BudgetTable`).
pub(crate) fn budget_json(b: &BudgetRecord) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        if b.model_max_budget.is_empty() {
            m.insert("model_max_budget".into(), Value::Null);
        }
    }
    v
}

/// The stored budget, or a 404 that says how to make one.
pub(crate) async fn existing(app: &App, budget_id: &str, param: &str) -> Result<BudgetRecord> {
    let store = store(app, Need::Other)?;
    db(store.get_budget(budget_id).await)?.ok_or_else(|| {
        not_found(format!("Budget not found, passed budget_id={budget_id}. Create it with /budget/new first."), param)
    })
}

/// Stores a budget made or changed here, then puts it in memory and tells the other replicas.
pub(crate) async fn publish(app: &App, b: BudgetRecord) {
    let id = b.budget_id.clone();
    app.access.registry.put_budget(b);
    app.changes.publish(Kind::Budget, [id]).await;
}

/// `POST /budget/new`.
pub async fn new(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let identity = authorize(&app, &headers, "/budget/new").await?.identity;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let now = super::now();
    let id =
        f.string("budget_id")?.flatten().filter(|s| !s.is_empty()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let b = record(id.clone(), &f, &super::actor(&identity), now)?;
    match store.insert_budget(&b).await {
        Err(StoreError::Conflict(_)) => {
            return Err(bad(format!("Budget with id '{id}' already exists."), "budget_id"));
        }
        other => db(other)?,
    }
    publish(&app, b.clone()).await;
    Ok(json(budget_json(&b)))
}

/// `POST /budget/update`: the fields given, on the budget `budget_id`.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let identity = authorize(&app, &headers, "/budget/update").await?.identity;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let Some(id) = f.string("budget_id")?.flatten().filter(|s| !s.is_empty()) else {
        return Err(bad("budget_id is required", "budget_id"));
    };
    let mut b = existing(&app, &id, "budget_id").await?;
    let now = super::now();
    apply(&mut b, &f, now)?;
    b.updated_at = Some(now);
    b.updated_by = Some(super::actor(&identity));
    db(store.update_budget(&b).await)?;
    publish(&app, b.clone()).await;
    Ok(json(budget_json(&b)))
}

/// `POST /budget/info` with `{"budgets": [ids]}`: the budgets found, in the order asked.
pub async fn info(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/budget/info").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let ids = f.strings("budgets")?.flatten().unwrap_or_default();
    if ids.is_empty() {
        return Err(bad(
            "Specify list of budget id's to query. Passed in=[]. Send {\"budgets\": [\"<budget_id>\", ...]}.",
            "budgets",
        ));
    }
    let mut out = Vec::new();
    for id in &ids {
        if let Some(b) = db(store.get_budget(id).await)? {
            out.push(budget_json(&b));
        }
    }
    Ok(json(out))
}

/// `GET /budget/list`.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    authorize(&app, &headers, "/budget/list").await?;
    let store = store(&app, Need::Other)?;
    let all = db(store.all_budgets().await)?;
    Ok(json(all.iter().map(budget_json).collect::<Vec<_>>()))
}

/// `GET /budget/settings?budget_id=`: each field a budget may set, with its value in that budget
/// (`null` for a budget that is not there, as LiteLLM answers).
pub async fn settings(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    authorize(&app, &headers, "/budget/settings").await?;
    let store = store(&app, Need::Other)?;
    let Some(id) = query_str(&q, "budget_id") else {
        return Err(ErrorResponse(
            ApiError::new(422, "`budget_id` is required: add ?budget_id=<id> to the URL.")
                .kind("invalid_request_error")
                .param("budget_id"),
        ));
    };
    let row = db(store.get_budget(id).await)?.map(|b| budget_json(&b)).unwrap_or(Value::Null);
    let out: Vec<Value> = SETTINGS
        .iter()
        .map(|(name, kind, description)| {
            json!({
                "field_name": name,
                "field_type": kind,
                "field_description": description,
                "field_value": row.get(*name).cloned().unwrap_or(Value::Null),
                "stored_in_db": true,
                "field_default_value": Value::Null,
            })
        })
        .collect();
    Ok(json(out))
}

/// `POST /budget/delete` with `{"id": budget_id}`: the row deleted. A budget end users still
/// name is kept (LiteLLM's database refuses it too, by its foreign key).
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/budget/delete").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let id = f.required("id")?;
    let b = existing(&app, &id, "id").await?;
    let users: Vec<String> = db(store.all_end_users().await)?
        .into_iter()
        .filter(|e| e.budget_id.as_deref() == Some(id.as_str()))
        .map(|e| e.user_id)
        .collect();
    if !users.is_empty() {
        return Err(bad(
            format!(
                "Budget {id} is used by end users {users:?}; give them another budget (or none) with /end_user/update first."
            ),
            "id",
        ));
    }
    db(store.delete_budgets(std::slice::from_ref(&id)).await)?;
    app.access.registry.budgets.remove(&id);
    app.changes.publish(Kind::Budget, [id]).await;
    Ok(json(budget_json(&b)))
}

/// `budget_duration` from the body onto `b`: a period starts now (`budget_reset_at` = now +
/// duration); `null` or empty removes it and its reset.
pub(crate) fn budget_duration(f: &Fields, b: &mut BudgetRecord, now: DateTime<Utc>) -> Result<()> {
    if let Some(v) = f.string("budget_duration")? {
        match v.filter(|s| !s.trim().is_empty()) {
            Some(spec) => {
                b.budget_reset_at = Some(super::after(now, &spec, "budget_duration")?);
                b.budget_duration = Some(spec);
            }
            None => {
                b.budget_duration = None;
                b.budget_reset_at = None;
            }
        }
    }
    Ok(())
}
