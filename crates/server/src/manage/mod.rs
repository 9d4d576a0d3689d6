//! LiteLLM's management API (reference §2.3, §2.4): keys, users, teams, organizations, end
//! users, budgets, spend and models, with LiteLLM's paths, field names, defaults, statuses and messages, so its admin
//! scripts and clients work unchanged.
//!
//! This file holds the routes, the admin check, and what the handlers share: request-body and
//! query parsing, the error mapping for the store, the JSON shapes of rows, and key generation.
//! Every write goes to the store first and then into the in-memory registry, so it takes effect
//! on this replica at once, and is announced to the other replicas ([`crate::live`]).

mod budgets;
mod cache;
mod callbacks;
mod config;
mod end_users;
mod json_bytes;
mod keys;
mod models;
mod organizations;
mod reports;
mod roles;
mod spend;
pub(crate) mod summary;
mod team_members;
mod teams;
mod users;

/// What the rest of the server uses: the routes, `/model/info` (also served under `/v1`), the
/// models added through the API as deployments at start, and the redaction of store errors.
pub(crate) use config::{at_start as config_at_start, reload as reload_settings, LiveSettings};
pub(crate) use models::{deployments_from_db, model_info};

use crate::app::App;
use crate::errors::ErrorResponse;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use http::HeaderMap;
use rand::RngCore;
use serde_json::{Map, Value};
use sluice_access::registry::{Live, Registry};
use sluice_access::{duration, Identity};
use sluice_store::{KeyRecord, SpendIncrement, Spender, Store, StoreError, TeamRecord, UserRecord};
use sluice_wire::ApiError;

pub(crate) type Result<T> = std::result::Result<T, ErrorResponse>;

/// The management routes (LiteLLM serves them without a `/v1` prefix).
pub fn routes() -> crate::openapi::Routes {
    crate::openapi::Routes::new()
        .route("/key/generate", post(keys::generate))
        .route("/key/update", post(keys::update))
        .route("/key/info", get(keys::info))
        .route("/v2/key/info", post(keys::info_v2))
        .route("/key/list", get(keys::list))
        .route("/key/delete", post(keys::delete))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/user/new", post(users::new))
        .route("/user/info", get(users::info))
        .route("/user/update", post(users::update))
        .route("/user/delete", post(users::delete))
        .route("/user/list", get(users::list))
        .route("/team/new", post(teams::new))
        .route("/team/update", post(teams::update))
        .route("/team/info", get(teams::info))
        .route("/team/list", get(teams::list))
        .route("/team/delete", post(teams::delete))
        .route("/team/member_add", post(teams::member_add))
        .route("/team/member_delete", post(teams::member_delete))
        .route("/team/block", post(teams::block))
        .route("/team/unblock", post(teams::unblock))
        // Teams: member roles and budgets, model lists, the teams users may join.
        .route("/team/member_update", post(team_members::member_update))
        .route("/team/model/add", post(team_members::model_add))
        .route("/team/model/delete", post(team_members::model_delete))
        .route("/team/available", get(team_members::available))
        .route("/spend/logs", get(spend::logs))
        .route("/global/spend", get(spend::global))
        .route("/spend/keys", get(spend::keys))
        .route("/spend/users", get(spend::users))
        // Spend reports from the daily aggregates (`reports.rs`).
        .route("/spend/tags", get(reports::tags))
        .route("/global/spend/report", get(reports::global_report))
        .route("/user/daily/activity", get(reports::user_activity))
        .route("/team/daily/activity", get(reports::team_activity))
        .route("/model/new", post(models::new))
        .route("/model/delete", post(models::delete))
        .route("/model/update", post(models::update))
        .route("/model/{model_id}/update", axum::routing::patch(models::patch))
        // End users and budgets (LiteLLM serves each end-user route under /customer too).
        .route("/budget/new", post(budgets::new))
        .route("/budget/update", post(budgets::update))
        .route("/budget/info", post(budgets::info))
        .route("/budget/list", get(budgets::list))
        .route("/budget/settings", get(budgets::settings))
        .route("/budget/delete", post(budgets::delete))
        .route("/end_user/new", post(end_users::new))
        .route("/end_user/info", get(end_users::info))
        .route("/end_user/update", post(end_users::update))
        .route("/end_user/delete", post(end_users::delete))
        .route("/end_user/list", get(end_users::list))
        .route("/customer/new", post(end_users::new))
        .route("/customer/info", get(end_users::info))
        .route("/customer/update", post(end_users::update))
        .route("/customer/delete", post(end_users::delete))
        .route("/customer/list", get(end_users::list))
        // Organizations (organizations.rs).
        .route("/organization/new", post(organizations::new))
        .route("/organization/list", get(organizations::list))
        .route("/organization/info", get(organizations::info).post(organizations::info_many))
        .route("/organization/update", axum::routing::patch(organizations::update))
        .route("/organization/delete", axum::routing::delete(organizations::delete))
        .route("/organization/member_add", post(organizations::member_add))
        .route("/organization/member_update", axum::routing::patch(organizations::member_update))
        .route("/organization/member_delete", axum::routing::delete(organizations::member_delete))
        // Config and callback views, key health (issue #21).
        .route("/config/update", post(config::update))
        .route("/active/callbacks", get(callbacks::active))
        .route("/settings", get(callbacks::active))
        .route("/get/config/callbacks", get(callbacks::config_callbacks))
        .route("/key/health", post(callbacks::key_health).get(callbacks::key_health))
        // The answer cache (issue #25).
        .route("/cache/ping", get(cache::ping))
        .route("/cache/delete", post(cache::delete))
        .route("/cache/flushall", post(cache::flushall))
        .route("/cache/redis/info", get(cache::redis_info))
}

// --- who may call ---

/// The caller, whoever it is (routes a non-admin may call for itself), refused if its key is
/// blocked or expired, as on the proxy routes: a revoked key manages nothing, itself included.
pub(crate) async fn caller(app: &App, headers: &HeaderMap) -> Result<Identity> {
    Ok(app.access.authenticate(headers).await?)
}

/// The caller, who must be an admin: the master key, an open proxy, or a key of a
/// `proxy_admin` user. Others get LiteLLM's 401 for `route`.
pub(crate) async fn admin(app: &App, headers: &HeaderMap, route: &str) -> Result<Identity> {
    let identity = caller(app, headers).await?;
    if identity.is_admin(&app.access.registry) {
        return Ok(identity);
    }
    Err(not_admin(&identity, &app.access.registry, route).into())
}

/// LiteLLM's refusal of a management route (`route_checks.py`), naming the caller's role and
/// masked user id.
pub(crate) fn not_admin(identity: &Identity, registry: &Registry, route: &str) -> ApiError {
    let user = match identity {
        Identity::Key(k) => k.record.user_id.as_deref().and_then(|u| registry.users.get(u).map(|e| e.clone())),
        _ => None,
    };
    let role = user.as_ref().and_then(|u| u.record.user_role.clone()).unwrap_or_else(|| "unknown".into());
    let user_id = user.as_ref().map(|u| u.record.user_id.clone()).unwrap_or_else(|| "unknown".into());
    sluice_access::auth::auth_error(format!(
        "Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route={route}. Your role={role}. Your user_id={}",
        mask_user_id(&user_id)
    ))
}

/// LiteLLM's `_mask_user_id`: the first 6 and last 2 characters stay visible.
pub(crate) fn mask_user_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 4 {
        return "***".into();
    }
    if chars.len() < 8 {
        return id.to_string();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

/// Who made a change, for `created_by`/`updated_by` (LiteLLM names the master key
/// `default_user_id`).
pub(crate) fn actor(identity: &Identity) -> String {
    match identity {
        Identity::Key(k) => k.record.user_id.clone().unwrap_or_else(|| k.record.token.clone()),
        _ => "default_user_id".into(),
    }
}

// --- the database ---

/// What the route needs the database for, to word the error when there is none.
#[derive(Clone, Copy)]
pub(crate) enum Need {
    Keys,
    Other,
}

/// The store, or LiteLLM's `no_db_connection` error.
pub(crate) fn store(app: &App, need: Need) -> Result<&Store> {
    app.access.store().ok_or_else(|| {
        let message = match need {
            Need::Keys => "Connect Proxy to database to generate keys - https://docs.litellm.ai/docs/proxy/virtual_keys ",
            Need::Other => "No connected db. Set general_settings.database_url (or DATABASE_URL); if it is set, the database was unreachable at start and sluice is still retrying it.",
        };
        ErrorResponse(ApiError::new(400, message).kind("no_db_connection"))
    })
}

/// A store failure as the client sees it: unreachable → 503 (retry), conflict → 400.
pub(crate) fn db_error(e: StoreError) -> ErrorResponse {
    let e = match e {
        StoreError::Unavailable(why) => ApiError::new(
            503,
            format!("The database is unreachable right now ({why}). Nothing was changed; retry in a few seconds."),
        )
        .kind("service_unavailable")
        .header("retry-after", "5"),
        StoreError::Conflict(why) => ApiError::new(400, why).kind("bad_request_error"),
        StoreError::Other(why) => ApiError::new(500, format!("Database error: {why}")).kind("internal_server_error"),
    };
    ErrorResponse(e)
}

/// `?` for store calls: `db(store.get_key(..).await)?`.
pub(crate) fn db<T>(r: std::result::Result<T, StoreError>) -> Result<T> {
    r.map_err(db_error)
}

// --- request bodies ---

/// A JSON request body, read field by field so that an absent field (left as it is), `null`
/// (cleared) and a value can be told apart, and a field of the wrong type is named.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields(pub Map<String, Value>);

/// An absent field is `None`; `null` is `Some(None)`.
pub(crate) type Field<T> = Option<Option<T>>;

fn invalid(message: String, param: &str) -> ErrorResponse {
    ErrorResponse(ApiError::new(422, message).kind("invalid_request_error").param(param))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Fields {
    /// The body as a JSON object; an empty body is an empty object.
    pub fn parse(body: &[u8]) -> Result<Fields> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Fields::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Fields(m)),
            Ok(other) => {
                Err(invalid(format!("The request body must be a JSON object, not {}.", json_kind(&other)), "body"))
            }
            Err(e) => Err(invalid(
                format!(
                    "The request body is not valid JSON ({}). Send a JSON object with Content-Type: application/json.",
                    redact(&e.to_string())
                ),
                "body",
            )),
        }
    }

    pub fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    fn get<T>(&self, k: &str, what: &str, conv: impl Fn(&Value) -> Option<T>) -> Result<Field<T>> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => match conv(v) {
                Some(x) => Ok(Some(Some(x))),
                None => Err(invalid(format!("`{k}` must be {what}, not {}.", json_kind(v)), k)),
            },
        }
    }

    pub fn string(&self, k: &str) -> Result<Field<String>> {
        self.get(k, "a string", |v| v.as_str().map(str::to_string))
    }

    /// A number within ±[`MAX_NUMBER`] (budgets, spend): NaN, infinities and larger values are
    /// a 400 naming the field.
    pub fn f64(&self, k: &str) -> Result<Field<f64>> {
        let v = self.get(k, "a number", |v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })?;
        match v {
            Some(Some(x)) if !(-MAX_NUMBER..=MAX_NUMBER).contains(&x) => Err(out_of_range(k, &x.to_string())),
            other => Ok(other),
        }
    }

    /// A whole number within ±[`MAX_NUMBER`] (limits, counts).
    pub fn i64(&self, k: &str) -> Result<Field<i64>> {
        let v = self.get(k, "a whole number", |v| match v {
            Value::Number(n) => n.as_i64().map(|i| i as f64).or_else(|| n.as_f64()).filter(|x| x.fract() == 0.0),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.fract() == 0.0),
            _ => None,
        })?;
        match v {
            Some(Some(x)) if !(-MAX_NUMBER..=MAX_NUMBER).contains(&x) => Err(out_of_range(k, &x.to_string())),
            other => Ok(other.map(|x| x.map(|x| x as i64))),
        }
    }

    pub fn bool(&self, k: &str) -> Result<Field<bool>> {
        self.get(k, "true or false", |v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => parse_bool(s),
            _ => None,
        })
    }

    pub fn strings(&self, k: &str) -> Result<Field<Vec<String>>> {
        self.get(k, "a list of strings", |v| {
            v.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
        })
    }

    pub fn object(&self, k: &str) -> Result<Field<Map<String, Value>>> {
        self.get(k, "an object", |v| v.as_object().cloned())
    }

    /// A required string field.
    pub fn required(&self, k: &str) -> Result<String> {
        match self.string(k)? {
            Some(Some(s)) => Ok(s),
            _ => Err(invalid(format!("`{k}` is required: add it to the request body."), k)),
        }
    }
}

/// The largest magnitude a numeric management field takes: the largest whole number a JSON
/// client (JavaScript's `Number.MAX_SAFE_INTEGER`) carries exactly. Beyond it no budget, limit or
/// count means anything, and a value there only risks overflowing what it becomes.
pub(crate) const MAX_NUMBER: f64 = 9_007_199_254_740_991.0;

/// A JSON number, or a number written as a string.
fn amount(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// LiteLLM's 400 for a number outside what sluice accepts, naming the field.
fn out_of_range(field: &str, got: &str) -> ErrorResponse {
    bad(format!("{field} must be a finite number from -{MAX_NUMBER} to {MAX_NUMBER}. Received: {got}"), field)
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Query parameters of a GET route.
pub(crate) type Query = axum::extract::Query<std::collections::HashMap<String, String>>;

/// A positive whole-number query parameter with a default and an upper bound.
pub(crate) fn query_count(q: &Query, name: &str, default: i64, max: i64) -> Result<i64> {
    match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid(format!("`{name}` must be a whole number from 1 to {max}."), name)),
        },
    }
}

pub(crate) fn query_str<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.get(name).map(|s| s.as_str()).filter(|s| !s.is_empty())
}

/// A `YYYY-MM-DD` query parameter.
pub(crate) fn query_date(q: &Query, name: &str) -> Result<Option<NaiveDate>> {
    match query_str(q, name) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map(Some).map_err(|_| {
            ErrorResponse(
                ApiError::bad_request(format!("`{name}` must be a date written YYYY-MM-DD, e.g. 2025-01-31."))
                    .param(name),
            )
        }),
    }
}

/// Replaces anything that looks like a raw key (`sk-…`) in a message with its abbreviation.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("sk-") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '`')).unwrap_or(tail.len());
        out.push_str(&sluice_access::auth::abbreviate(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

// --- fields shared by keys, users and teams ---

/// Fields LiteLLM keeps inside `metadata` (`LiteLLM_ManagementEndpoint_MetadataFields`).
pub(crate) const METADATA_FIELDS: &[&str] = &[
    "model_rpm_limit",
    "model_tpm_limit",
    "tags",
    "guardrails",
    "prompts",
    "enforced_params",
    "temp_budget_increase",
    "temp_budget_expiry",
];

/// The budget, limit and access fields keys, users and teams have in common.
pub(crate) struct Common<'a> {
    pub models: &'a mut Vec<String>,
    pub max_budget: &'a mut Option<f64>,
    pub budget_duration: &'a mut Option<String>,
    pub budget_reset_at: &'a mut Option<DateTime<Utc>>,
    pub tpm_limit: &'a mut Option<i64>,
    pub rpm_limit: &'a mut Option<i64>,
    pub max_parallel_requests: &'a mut Option<i64>,
    pub model_max_budget: &'a mut Map<String, Value>,
    pub metadata: &'a mut Map<String, Value>,
}

impl Common<'_> {
    pub fn of_key(k: &mut KeyRecord) -> Common<'_> {
        Common {
            models: &mut k.models,
            max_budget: &mut k.max_budget,
            budget_duration: &mut k.budget_duration,
            budget_reset_at: &mut k.budget_reset_at,
            tpm_limit: &mut k.tpm_limit,
            rpm_limit: &mut k.rpm_limit,
            max_parallel_requests: &mut k.max_parallel_requests,
            model_max_budget: &mut k.model_max_budget,
            metadata: &mut k.metadata,
        }
    }

    pub fn of_user(u: &mut UserRecord) -> Common<'_> {
        Common {
            models: &mut u.models,
            max_budget: &mut u.max_budget,
            budget_duration: &mut u.budget_duration,
            budget_reset_at: &mut u.budget_reset_at,
            tpm_limit: &mut u.tpm_limit,
            rpm_limit: &mut u.rpm_limit,
            max_parallel_requests: &mut u.max_parallel_requests,
            model_max_budget: &mut u.model_max_budget,
            metadata: &mut u.metadata,
        }
    }

    pub fn of_team(t: &mut TeamRecord) -> Common<'_> {
        Common {
            models: &mut t.models,
            max_budget: &mut t.max_budget,
            budget_duration: &mut t.budget_duration,
            budget_reset_at: &mut t.budget_reset_at,
            tpm_limit: &mut t.tpm_limit,
            rpm_limit: &mut t.rpm_limit,
            max_parallel_requests: &mut t.max_parallel_requests,
            model_max_budget: &mut t.model_max_budget,
            metadata: &mut t.metadata,
        }
    }

    /// Applies the fields present in `f`: a value sets, `null` clears, absence leaves as is.
    /// `metadata` replaces the whole object, then the metadata fields (`tags`,
    /// `model_rpm_limit`, ...) are written into it, as LiteLLM does.
    pub fn apply(self, f: &Fields, now: DateTime<Utc>) -> Result<()> {
        if let Some(v) = f.strings("models")? {
            *self.models = v.unwrap_or_default();
        }
        if let Some(v) = f.f64("max_budget")? {
            if let Some(x) = v.filter(|x| *x < 0.0) {
                return Err(bad(format!("max_budget cannot be negative. Received: {x}"), "max_budget"));
            }
            *self.max_budget = v;
        }
        if let Some(v) = f.string("budget_duration")? {
            match v.filter(|s| !s.trim().is_empty()) {
                Some(spec) => {
                    *self.budget_reset_at = Some(after(now, &spec, "budget_duration")?);
                    *self.budget_duration = Some(spec);
                }
                None => {
                    *self.budget_duration = None;
                    *self.budget_reset_at = None;
                }
            }
        }
        for (name, slot) in [
            ("tpm_limit", &mut *self.tpm_limit),
            ("rpm_limit", &mut *self.rpm_limit),
            ("max_parallel_requests", &mut *self.max_parallel_requests),
        ] {
            if let Some(v) = f.i64(name)? {
                if let Some(x) = v.filter(|x| *x < 0) {
                    return Err(bad(format!("{name} cannot be negative. Received: {x}"), name));
                }
                *slot = v;
            }
        }
        if let Some(v) = f.object("model_max_budget")? {
            let v = v.unwrap_or_default();
            for (model, budget) in &v {
                let limit = match budget {
                    Value::Object(o) => o.get("budget_limit"),
                    other => Some(other),
                };
                if !limit.is_some_and(|l| amount(l).is_some_and(|x| (0.0..=MAX_NUMBER).contains(&x))) {
                    return Err(bad(
                        format!("model_max_budget.{model} must be a budget in USD from 0 to {MAX_NUMBER}, e.g. {{\"{model}\": 10}} or {{\"{model}\": {{\"budget_limit\": 10, \"time_period\": \"1d\"}}}}. Received: {budget}"),
                        "model_max_budget",
                    ));
                }
            }
            *self.model_max_budget = v;
        }
        if let Some(v) = f.object("metadata")? {
            *self.metadata = v.unwrap_or_default();
        }
        for name in METADATA_FIELDS {
            if let Some(Some(v)) = f.0.get(*name).map(|v| Some(v).filter(|v| !v.is_null())) {
                if matches!(*name, "model_rpm_limit" | "model_tpm_limit") {
                    let whole =
                        |x: &Value| x.as_f64().is_some_and(|n| (0.0..=MAX_NUMBER).contains(&n) && n.fract() == 0.0);
                    if !v.as_object().is_some_and(|limits| limits.values().all(whole)) {
                        return Err(invalid(
                            format!("`{name}` must be an object of model name to limit (a whole number from 0 to {MAX_NUMBER}), e.g. {{\"gpt-4o\": 100}}."),
                            name,
                        ));
                    }
                }
                if *name == "tags" {
                    f.strings("tags")?;
                }
                self.metadata.insert(name.to_string(), v.clone());
            }
        }
        Ok(())
    }
}

/// The time of a change, to the microsecond (what PostgreSQL keeps and Python's
/// `datetime.fromisoformat` reads).
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// A 400 for a value the client must change.
pub(crate) fn bad(message: impl Into<String>, param: &str) -> ErrorResponse {
    ErrorResponse(ApiError::new(400, message).kind("bad_request_error").param(param))
}

/// A 404 for a row that is not there.
pub(crate) fn not_found(message: impl Into<String>, param: &str) -> ErrorResponse {
    ErrorResponse(ApiError::new(404, message).kind("not_found_error").param(param))
}

/// `now + spec` in LiteLLM's duration grammar.
pub(crate) fn after(now: DateTime<Utc>, spec: &str, field: &str) -> Result<DateTime<Utc>> {
    duration::after(now, spec).map_err(|why| bad(format!("{field}: {why}"), field))
}

// --- spend ---

/// Sets a spender's spend (`"spend": x` on an update): zeroes it in the database and adds `x`
/// back as an increment, so spend only ever moves through the store's spend operations.
pub(crate) async fn set_spend(
    store: &Store,
    spender: Spender,
    live: &Live,
    amount: f64,
    reset_at: Option<DateTime<Utc>>,
) -> Result<()> {
    if amount < 0.0 || !amount.is_finite() {
        return Err(bad(format!("spend cannot be negative. Received: {amount}"), "spend"));
    }
    db(store.reset_spend(&spender, reset_at).await)?;
    if amount > 0.0 {
        db(store.apply_increments(&[SpendIncrement { spender, amount, per_model: Vec::new() }]).await)?;
    }
    live.ledger.reset();
    live.ledger.reloaded(amount, &Map::new());
    // Shared budgets: every replica's total becomes the amount set (this update names the period).
    live.shared.reset(amount, &format!("set:{}", Utc::now().timestamp_micros())).await;
    Ok(())
}

/// A key's spend: this replica's live figure (it includes spend not yet written), else the row's.
pub(crate) fn key_spend(registry: &Registry, k: &KeyRecord) -> f64 {
    registry.keys.get(&k.token).map(|e| e.live.spend()).unwrap_or(k.spend)
}

pub(crate) fn user_spend(registry: &Registry, u: &UserRecord) -> f64 {
    registry.users.get(&u.user_id).map(|e| e.live.spend()).unwrap_or(u.spend)
}

pub(crate) fn team_spend(registry: &Registry, t: &TeamRecord) -> f64 {
    registry.teams.get(&t.team_id).map(|e| e.live.spend()).unwrap_or(t.spend)
}

// --- rows as JSON ---

fn object_of<T: serde::Serialize>(row: &T) -> Map<String, Value> {
    match serde_json::to_value(row) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn fill(m: &mut Map<String, Value>, defaults: &[(&str, Value)]) {
    for (k, v) in defaults {
        m.entry(k.to_string()).or_insert_with(|| v.clone());
    }
}

/// A key row (`LiteLLM_VerificationToken`) with live spend; `token` is the hash, never the key.
pub(crate) fn key_json(registry: &Registry, k: &KeyRecord) -> Map<String, Value> {
    let mut m = object_of(k);
    m.insert("spend".into(), Value::from(key_spend(registry, k)));
    fill(
        &mut m,
        &[
            ("organization_id", Value::Null),
            ("budget_id", Value::Null),
            ("allowed_cache_controls", Value::Array(Vec::new())),
            ("allowed_routes", Value::Array(Vec::new())),
            ("permissions", Value::Object(Map::new())),
            ("config", Value::Object(Map::new())),
            ("soft_budget_cooldown", Value::Bool(false)),
            ("litellm_budget_table", Value::Null),
        ],
    );
    m
}

/// A user row (`LiteLLM_UserTable`) with live spend.
pub(crate) fn user_json(registry: &Registry, u: &UserRecord) -> Map<String, Value> {
    let mut m = object_of(u);
    m.insert("spend".into(), Value::from(user_spend(registry, u)));
    fill(
        &mut m,
        &[
            ("team_id", Value::Null),
            ("organization_id", Value::Null),
            ("sso_user_id", Value::Null),
            ("allowed_cache_controls", Value::Array(Vec::new())),
            ("organization_memberships", Value::Array(Vec::new())),
        ],
    );
    m
}

/// A team row (`LiteLLM_TeamTable`) with live spend.
pub(crate) fn team_json(registry: &Registry, t: &TeamRecord) -> Map<String, Value> {
    let mut m = object_of(t);
    m.insert("spend".into(), Value::from(team_spend(registry, t)));
    fill(
        &mut m,
        &[
            ("model_id", Value::Null),
            ("team_member_permissions", Value::Array(Vec::new())),
            ("litellm_model_table", Value::Null),
        ],
    );
    // LiteLLM shows a team's aliases in the model table row its `model_id` points at.
    if !t.model_aliases.is_empty() {
        let aliases = Value::Object(t.model_aliases.clone());
        m.insert("litellm_model_table".into(), serde_json::json!({"model_aliases": aliases, "team_id": t.team_id}));
    }
    m
}

pub(crate) fn json(v: impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

// --- keys ---

/// LiteLLM's `LENGTH_OF_LITELLM_GENERATED_KEY`: random bytes behind `sk-`.
const KEY_BYTES: usize = 16;

/// A new raw key: `sk-` + URL-safe base64 (no padding) of 16 random bytes, as
/// `secrets.token_urlsafe(16)` makes them.
pub(crate) fn new_raw_key() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("sk-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `key_name` as LiteLLM stores it: `sk-...` and the last 4 characters.
pub(crate) fn key_name(raw: &str) -> String {
    let tail: String = raw.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("sk-...{tail}")
}

/// A key as clients pass it: a raw `sk-` key is hashed, anything else is taken as the hash
/// (LiteLLM's `_hash_token_if_needed`).
pub(crate) fn token_of(key: &str) -> String {
    if key.starts_with("sk-") {
        sluice_access::hash_key(key)
    } else {
        key.to_string()
    }
}

#[cfg(test)]
mod tests;
