//! Organizations: `/organization/new`, `/organization/list`, `/organization/info` (GET, and the
//! deprecated POST), `/organization/update`, `/organization/delete`,
//! `/organization/member_add`, `/organization/member_update` and `/organization/member_delete`
//! (LiteLLM's `organization_endpoints.py`), and the checks a team in an organization passes
//! (`team_endpoints.py`). An organization's budget and limits are a `sluice_budgets` row; its
//! members are `org_admin`s (who may manage its members and create teams in it) or users.

use super::roles::{authorize, Grant};
use super::{
    actor, bad, caller, db, json, not_admin, not_found, query_str, store, team_json, user_json, Fields, Need, Query,
    Result, MAX_NUMBER, METADATA_FIELDS,
};
use crate::app::App;
use crate::live::Kind;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value};
use sluice_access::auth::auth_error;
use sluice_access::organizations::with_budget;
use sluice_access::registry::Organization;
use sluice_access::Identity;
use sluice_store::{BudgetRecord, OrgMemberRecord, OrganizationRecord, Store, TeamRecord, UserRecord};
use sluice_wire::ApiError;
use std::sync::Arc;

/// LiteLLM's `LitellmUserRoles`: the roles a member may have in an organization.
const ROLES: &[&str] =
    &["proxy_admin", "proxy_admin_viewer", "org_admin", "internal_user", "internal_user_viewer", "team", "customer"];

/// The budget fields of `/organization/new` and `/organization/update` (`LiteLLM_BudgetTable`).
const BUDGET_FIELDS: &[&str] = &[
    "max_budget",
    "soft_budget",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
    "budget_duration",
];

/// Model-list entries that let a team in the organization name any model.
const ALL_MODELS: &[&str] = &["*", "all-proxy-models"];

fn required_422(field: &str, example: &str) -> ApiError {
    ApiError::new(422, format!("`{field}` is required: send {example}.")).kind("invalid_request_error").param(field)
}

// --- who may manage an organization ---

fn caller_user_id(identity: &Identity) -> Option<String> {
    match identity {
        Identity::Key(k) => k.record.user_id.clone(),
        _ => None,
    }
}

/// Whether the caller is an `org_admin` member of `organization_id`.
async fn is_org_admin(store: &Store, identity: &Identity, organization_id: &str) -> Result<bool> {
    let Some(user_id) = caller_user_id(identity) else { return Ok(false) };
    let member = db(store.get_org_member(&user_id, organization_id).await)?;
    Ok(member.is_some_and(|m| m.user_role.as_deref() == Some("org_admin")))
}

/// The caller, who must be a proxy admin or an `org_admin` of `organization_id`. An org admin
/// of other organizations gets a 403 naming this one; anyone else LiteLLM's 401 for `route`.
async fn org_manager(app: &App, headers: &HeaderMap, route: &str, organization_id: &str) -> Result<Identity> {
    let caller = authorize(app, headers, route).await?;
    let identity = caller.identity;
    if caller.grant == Grant::All {
        return Ok(identity);
    }
    let store = store(app, Need::Other)?;
    if is_org_admin(store, &identity, organization_id).await? {
        return Ok(identity);
    }
    let admin_elsewhere = match caller_user_id(&identity) {
        Some(u) => {
            db(store.user_org_memberships(&u).await)?.iter().any(|m| m.user_role.as_deref() == Some("org_admin"))
        }
        None => false,
    };
    if admin_elsewhere {
        return Err(ApiError::new(
            403,
            format!(
                "User is not org_admin for Organization={organization_id}. Ask a proxy admin, or an org_admin of this organization, to make this change."
            ),
        )
        .kind("auth_error")
        .into());
    }
    Err(not_admin(&identity, &app.access.registry, route).into())
}

/// The caller of a proxy-admin-only organization route, else LiteLLM's 401 with `message`.
async fn proxy_admin(
    app: &App,
    headers: &HeaderMap,
    route: &str,
    message: impl FnOnce(&str) -> String,
) -> Result<Identity> {
    let caller = authorize(app, headers, route).await?;
    let identity = caller.identity;
    if caller.grant == Grant::All {
        return Ok(identity);
    }
    let role = caller_user_id(&identity)
        .and_then(|u| app.access.registry.users.get(&u).and_then(|e| e.record.user_role.clone()))
        .unwrap_or_else(|| "None".into());
    Err(auth_error(message(&role)).into())
}

/// `/team/new`'s caller: a proxy admin, or an `org_admin` of the organization the new team
/// names (`organization_id` in the body). Others get LiteLLM's 401.
pub(crate) async fn team_creator(app: &App, headers: &HeaderMap, f: &Fields) -> Result<Identity> {
    let refused = match authorize(app, headers, "/team/new").await {
        Ok(caller) => return Ok(caller.identity),
        Err(refused) => refused,
    };
    if let Some(org) = f.string("organization_id")?.flatten() {
        let identity = caller(app, headers).await?;
        if is_org_admin(store(app, Need::Other)?, &identity, &org).await? {
            return Ok(identity);
        }
    }
    Err(refused)
}

// --- the team checks ---

/// What LiteLLM checks of a team in an organization when it is created or updated: the
/// organization exists, the team's models are among the organization's (unless it allows every
/// model), and its `max_budget` is not above the organization's.
pub(crate) async fn check_team(store: &Store, team: &TeamRecord) -> Result<()> {
    let Some(org_id) = team.organization_id.as_deref() else { return Ok(()) };
    let Some(org) = db(store.get_organization(org_id).await)? else {
        return Err(bad(
            format!("Organization not found for organization_id={org_id}. Create it with /organization/new."),
            "organization_id",
        ));
    };
    let open = org.models.is_empty() || org.models.iter().any(|m| ALL_MODELS.contains(&m.as_str()));
    if !open {
        if let Some(m) = team.models.iter().find(|m| !org.models.contains(m)) {
            return Err(bad(
                format!(
                    "Model '{m}' not in organization's allowed models. Organization allowed models={:?}. Organization={org_id}",
                    org.models
                ),
                "models",
            ));
        }
    }
    let budget = match &org.budget_id {
        Some(id) => db(store.get_budget(id).await)?,
        None => None,
    };
    if let (Some(team_max), Some(org_max)) = (team.max_budget, budget.and_then(|b| b.max_budget)) {
        if team_max > org_max {
            return Err(bad(
                format!("Team max_budget ({team_max:?}) exceeds organization's max_budget ({org_max:?})."),
                "max_budget",
            ));
        }
    }
    Ok(())
}

// --- rows as JSON ---

fn object_of<T: serde::Serialize>(row: &T) -> Map<String, Value> {
    match serde_json::to_value(row) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn member_json(m: &OrgMemberRecord, budget: Option<&BudgetRecord>) -> Value {
    let mut out = object_of(m);
    out.insert("user".into(), Value::Null);
    out.insert("litellm_budget_table".into(), budget.map_or(Value::Null, |b| Value::Object(object_of(b))));
    Value::Object(out)
}

/// An organization as LiteLLM's `LiteLLM_OrganizationTableWithMembers`: the row with live spend,
/// its budget row, its memberships and its teams.
async fn org_json(app: &App, store: &Store, org: &Organization) -> Result<Value> {
    let registry = &app.access.registry;
    let r = &org.record;
    let mut out = object_of(r);
    let spend = registry.organizations.get(&r.organization_id).map(|e| e.live.spend()).unwrap_or(r.spend);
    out.insert("spend".into(), Value::from(spend));
    out.insert("object_permission_id".into(), Value::Null);
    out.insert("object_permission".into(), Value::Null);
    out.insert("litellm_budget_table".into(), org.budget.as_ref().map_or(Value::Null, |b| Value::Object(object_of(b))));
    let members = db(store.org_members(&r.organization_id).await)?;
    out.insert("members".into(), Value::Array(members.iter().map(|m| member_json(m, None)).collect()));
    let teams: Vec<Value> = db(store.all_teams().await)?
        .iter()
        .filter(|t| t.organization_id.as_deref() == Some(r.organization_id.as_str()))
        .map(|t| Value::Object(team_json(registry, t)))
        .collect();
    out.insert("teams".into(), Value::Array(teams));
    out.insert("users".into(), Value::Null);
    Ok(Value::Object(out))
}

async fn existing(store: &Store, organization_id: &str, status: u16) -> Result<Organization> {
    match db(store.get_organization(organization_id).await)? {
        Some(r) => db(with_budget(store, r).await),
        None => Err(ApiError::new(
            status,
            format!("Organization not found for organization_id={organization_id}. List organizations with /organization/list."),
        )
        .kind(if status == 404 { "not_found_error" } else { "bad_request_error" })
        .param("organization_id")
        .into()),
    }
}

// --- budgets ---

/// The budget fields present in `f` applied to `b`: a value sets, `null` clears. A duration
/// sets the next reset from `now`.
fn apply_budget(f: &Fields, b: &mut BudgetRecord, now: DateTime<Utc>) -> Result<()> {
    for name in ["max_budget", "soft_budget"] {
        if let Some(v) = f.f64(name)? {
            if let Some(x) = v.filter(|x| *x < 0.0) {
                return Err(bad(format!("{name} cannot be negative. Received: {x}"), name));
            }
            match name {
                "max_budget" => b.max_budget = v,
                _ => b.soft_budget = v,
            }
        }
    }
    for name in ["tpm_limit", "rpm_limit", "max_parallel_requests"] {
        if let Some(v) = f.i64(name)? {
            if let Some(x) = v.filter(|x| *x < 0) {
                return Err(bad(format!("{name} cannot be negative. Received: {x}"), name));
            }
            match name {
                "tpm_limit" => b.tpm_limit = v,
                "rpm_limit" => b.rpm_limit = v,
                _ => b.max_parallel_requests = v,
            }
        }
    }
    if let Some(v) = f.object("model_max_budget")? {
        let v = v.unwrap_or_default();
        for (model, budget) in &v {
            let limit = match budget {
                Value::Object(o) => o.get("budget_limit").and_then(Value::as_f64),
                other => other.as_f64(),
            };
            if !limit.is_some_and(|x| (0.0..=MAX_NUMBER).contains(&x)) {
                return Err(bad(
                    format!("model_max_budget.{model} must be a budget in USD from 0 to {MAX_NUMBER}, e.g. {{\"{model}\": 10}}. Received: {budget}"),
                    "model_max_budget",
                ));
            }
        }
        b.model_max_budget = v;
    }
    super::budgets::budget_duration(f, b, now)?;
    Ok(())
}

fn has_budget_fields(f: &Fields) -> bool {
    BUDGET_FIELDS.iter().any(|k| f.has(k))
}

/// `metadata` and LiteLLM's metadata fields (`tags`, `model_rpm_limit`, ...) written into it.
fn apply_metadata(f: &Fields, metadata: &mut Map<String, Value>, merge: bool) -> Result<()> {
    if let Some(v) = f.object("metadata")? {
        let v = v.unwrap_or_default();
        if merge {
            // `/organization/update` merges into what is there, as LiteLLM's `_update_dictionary`.
            metadata.extend(v);
        } else {
            *metadata = v;
        }
    }
    for name in METADATA_FIELDS {
        if let Some(v) = f.0.get(*name).filter(|v| !v.is_null()) {
            metadata.insert(name.to_string(), v.clone());
        }
    }
    Ok(())
}

/// Puts a stored organization in memory here, then tells the other replicas to read it again.
async fn publish(app: &App, org: Organization) {
    let id = org.record.organization_id.clone();
    app.access.registry.put_organization(org, false);
    app.changes.publish(Kind::Organization, [id]).await;
}

// --- routes ---

/// `POST /organization/new`.
pub async fn new(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let identity = proxy_admin(&app, &headers, "/organization/new", |role| {
        format!("Only admins can create orgs. Your role is = {role}")
    })
    .await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let Some(alias) = f.string("organization_alias")?.flatten() else {
        return Err(required_422("organization_alias", "{\"organization_alias\": \"my-org\"}").into());
    };
    let organization_id = f
        .string("organization_id")?
        .flatten()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if db(store.get_organization(&organization_id).await)?.is_some() {
        return Err(bad(
            format!("Organization id = {organization_id} already exists. Please use a different organization id."),
            "organization_id",
        ));
    }
    let now = super::now();
    let by = actor(&identity);
    // Checked before anything is written, so a bad field leaves no budget row behind.
    let mut budget = BudgetRecord {
        budget_id: uuid::Uuid::new_v4().to_string(),
        created_at: Some(now),
        updated_at: Some(now),
        created_by: Some(by.clone()),
        updated_by: Some(by.clone()),
        ..Default::default()
    };
    apply_budget(&f, &mut budget, now)?;
    let mut rec = OrganizationRecord {
        organization_id: organization_id.clone(),
        organization_alias: Some(alias),
        models: f.strings("models")?.flatten().unwrap_or_default(),
        blocked: f.bool("blocked")?.flatten().unwrap_or(false),
        created_at: Some(now),
        updated_at: Some(now),
        created_by: Some(by.clone()),
        updated_by: Some(by),
        ..Default::default()
    };
    apply_metadata(&f, &mut rec.metadata, false)?;
    // Every organization has a budget: the one named, or one made from the budget fields.
    let budget = match f.string("budget_id")?.flatten() {
        Some(id) => {
            let found = db(store.get_budget(&id).await)?;
            let Some(found) = found else {
                return Err(bad(format!("Budget not found for budget_id={id}. Create it with /budget/new, or leave budget_id out and send max_budget etc."), "budget_id"));
            };
            found
        }
        None => {
            db(store.insert_budget(&budget).await)?;
            budget
        }
    };
    rec.budget_id = Some(budget.budget_id.clone());
    db(store.insert_organization(&rec).await)?;
    let org = Organization { record: rec, budget: Some(budget) };
    publish(&app, org.clone()).await;
    tracing::info!(organization_id = %organization_id, "organization created");
    let mut out = match org_json(&app, store, &org).await? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // `NewOrganizationResponse` carries the budget, not the members and teams.
    for k in ["members", "teams", "users"] {
        out.remove(k);
    }
    Ok(json(out))
}

/// `GET /organization/list?org_id=&org_alias=`: every organization for an admin, the ones the
/// caller belongs to for anyone else.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/organization/list").await?;
    let identity = &caller.identity;
    let store = store(&app, Need::Other)?;
    let mut orgs = db(store.all_organizations().await)?;
    if caller.grant != Grant::All {
        let mine: Vec<String> = match caller_user_id(identity) {
            Some(u) => db(store.user_org_memberships(&u).await)?.into_iter().map(|m| m.organization_id).collect(),
            None => Vec::new(),
        };
        orgs.retain(|o| mine.contains(&o.organization_id));
    }
    if let Some(id) = query_str(&q, "org_id") {
        orgs.retain(|o| o.organization_id == id);
    }
    if let Some(alias) = query_str(&q, "org_alias").map(str::to_lowercase) {
        orgs.retain(|o| o.organization_alias.as_deref().is_some_and(|a| a.to_lowercase().contains(&alias)));
    }
    let mut out = Vec::with_capacity(orgs.len());
    for r in orgs {
        out.push(org_json(&app, store, &db(with_budget(store, r).await)?).await?);
    }
    Ok(json(out))
}

/// `GET /organization/info?organization_id=`.
pub async fn info(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let Some(id) = query_str(&q, "organization_id").map(str::to_string) else {
        return Err(ApiError::new(422, "`organization_id` is required: call /organization/info?organization_id=...")
            .kind("invalid_request_error")
            .param("organization_id")
            .into());
    };
    org_manager(&app, &headers, "/organization/info", &id).await?;
    let store = store(&app, Need::Other)?;
    let Some(r) = db(store.get_organization(&id).await)? else {
        return Err(not_found("Organization not found", "organization_id"));
    };
    let org = db(with_budget(store, r).await)?;
    Ok(json(org_json(&app, store, &org).await?))
}

/// `POST /organization/info` `{"organizations": [...]}` (LiteLLM's deprecated form): each with
/// its budget.
pub async fn info_many(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/organization/info").await?;
    let identity = caller.identity;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let ids = f.strings("organizations")?.flatten().unwrap_or_default();
    if ids.is_empty() {
        return Err(bad(format!("Specify list of organization id's to query. Passed in={ids:?}"), "organizations"));
    }
    if caller.grant != Grant::All {
        for id in &ids {
            if !is_org_admin(store, &identity, id).await? {
                return Err(not_admin(&identity, &app.access.registry, "/organization/info").into());
            }
        }
    }
    let mut out = Vec::new();
    for id in &ids {
        if let Some(r) = db(store.get_organization(id).await)? {
            let org = db(with_budget(store, r).await)?;
            let mut m = object_of(&org.record);
            m.insert(
                "litellm_budget_table".into(),
                org.budget.as_ref().map_or(Value::Null, |b| Value::Object(object_of(b))),
            );
            out.push(Value::Object(m));
        }
    }
    Ok(json(out))
}

/// `PATCH /organization/update` `{"organization_id", ...fields}`: budget fields (flat, or nested
/// in `litellm_budget_table` as LiteLLM's UI sends them) change the organization's budget row.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let identity = authorize(&app, &headers, "/organization/update").await?.identity;
    let store = store(&app, Need::Other)?;
    let mut f = Fields::parse(&body)?;
    if let Some(Value::Object(nested)) = f.0.remove("litellm_budget_table") {
        for (k, v) in nested {
            if BUDGET_FIELDS.contains(&k.as_str()) && !v.is_null() {
                f.0.insert(k, v);
            }
        }
    }
    let id = f.required("organization_id")?;
    let mut org = existing(store, &id, 404).await?;
    let now = super::now();
    let by = actor(&identity);
    let r = &mut org.record;
    if let Some(v) = f.string("organization_alias")? {
        r.organization_alias = v;
    }
    if let Some(v) = f.strings("models")? {
        r.models = v.unwrap_or_default();
    }
    if let Some(v) = f.bool("blocked")? {
        r.blocked = v.unwrap_or(false);
    }
    apply_metadata(&f, &mut r.metadata, true)?;
    r.updated_at = Some(now);
    r.updated_by = Some(by.clone());
    if has_budget_fields(&f) {
        let mut budget = org.budget.clone().unwrap_or_else(|| BudgetRecord {
            budget_id: r.budget_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            created_at: Some(now),
            created_by: Some(by.clone()),
            ..Default::default()
        });
        apply_budget(&f, &mut budget, now)?;
        budget.updated_at = Some(now);
        budget.updated_by = Some(by);
        if org.budget.is_some() {
            db(store.update_budget(&budget).await)?;
        } else {
            db(store.insert_budget(&budget).await)?;
            org.record.budget_id = Some(budget.budget_id.clone());
        }
        org.budget = Some(budget);
    }
    db(store.update_organization(&org.record).await)?;
    publish(&app, org.clone()).await;
    Ok(json(org_json(&app, store, &org).await?))
}

/// `DELETE /organization/delete` `{"organization_ids": [...]}`: as LiteLLM, the organization's
/// teams (with their keys) and memberships go with it; its budget row stays.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    proxy_admin(&app, &headers, "/organization/delete", |_| "Only proxy admins can delete organizations".into())
        .await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let Some(ids) = f.strings("organization_ids")?.flatten().filter(|v| !v.is_empty()) else {
        return Err(required_422("organization_ids", "{\"organization_ids\": [\"...\"]}").into());
    };
    let mut orgs = Vec::new();
    for id in &ids {
        match db(store.get_organization(id).await)? {
            Some(r) => orgs.push(db(with_budget(store, r).await)?),
            None => return Err(not_found(format!("Organization={id} not found"), "organization_ids")),
        }
    }
    // What each looked like, for the answer.
    let mut out = Vec::with_capacity(orgs.len());
    for org in &orgs {
        out.push(org_json(&app, store, org).await?);
    }
    let teams: Vec<TeamRecord> = db(store.all_teams().await)?
        .into_iter()
        .filter(|t| t.organization_id.as_ref().is_some_and(|o| ids.contains(o)))
        .collect();
    super::teams::remove_teams(&app, store, &teams).await?;
    let deleted = db(store.delete_organizations(&ids).await)?;
    for id in &deleted {
        app.access.registry.organizations.remove(id);
    }
    app.changes.publish(Kind::Organization, deleted.iter().cloned()).await;
    tracing::info!(count = deleted.len(), teams = teams.len(), "organizations deleted");
    Ok(json(out))
}

/// A member as a request names it: `{"role", "user_id"?, "user_email"?}`.
struct Member {
    user_id: Option<String>,
    user_email: Option<String>,
    role: String,
}

fn parse_members(v: &Value) -> Result<Vec<Member>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        _ => return Err(bad("`member` must be a member object or a list of them", "member")),
    };
    items
        .into_iter()
        .map(|m| {
            let o = m.as_object().ok_or_else(|| {
                bad(
                    "each `member` must be an object like {\"role\": \"internal_user\", \"user_id\": \"...\"}",
                    "member",
                )
            })?;
            let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            let Some(role) = text("role") else {
                return Err(bad(format!("each `member` needs a role: one of {}", ROLES.join(", ")), "member"));
            };
            if !ROLES.contains(&role.as_str()) {
                return Err(bad(format!("Invalid member role={role}: use one of {}.", ROLES.join(", ")), "member"));
            }
            let member = Member { user_id: text("user_id"), user_email: text("user_email"), role };
            if member.user_id.is_none() && member.user_email.is_none() {
                return Err(bad("each `member` needs a user_id or a user_email", "member"));
            }
            Ok(member)
        })
        .collect()
}

/// The one user with this email, or LiteLLM's 400.
async fn user_by_email(store: &Store, email: &str) -> Result<Option<UserRecord>> {
    let found: Vec<UserRecord> = db(store.all_users().await)?
        .into_iter()
        .filter(|u| u.user_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)))
        .collect();
    if found.len() > 1 {
        return Err(bad("Multiple users with this email found in db. Please use 'user_id' instead.", "user_email"));
    }
    Ok(found.into_iter().next())
}

/// The user a member names (by id, else by email), created as an `internal_user` if there is
/// none, as LiteLLM's `add_member_to_organization` does.
async fn member_user(app: &App, store: &Store, m: &Member) -> Result<UserRecord> {
    if let Some(id) = &m.user_id {
        if let Some(u) = db(store.get_user(id).await)? {
            return Ok(u);
        }
    }
    if let Some(email) = &m.user_email {
        if let Some(u) = user_by_email(store, email).await? {
            return Ok(u);
        }
    }
    let u = super::teams::new_member_user(m.user_id.as_deref(), m.user_email.as_deref(), super::now());
    db(store.insert_user(&u).await)?;
    let id = u.user_id.clone();
    app.access.registry.put_user(u.clone(), false);
    app.changes.publish(Kind::User, [id]).await;
    Ok(u)
}

/// `POST /organization/member_add` `{"organization_id", "member": {...} or [...]}`.
pub async fn member_add(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let f = Fields::parse(&body)?;
    let org_id = f.required("organization_id")?;
    org_manager(&app, &headers, "/organization/member_add", &org_id).await?;
    let store = store(&app, Need::Other)?;
    let members = match f.0.get("member") {
        Some(v) if !v.is_null() => parse_members(v)?,
        _ => {
            return Err(
                required_422("member", "{\"role\": \"internal_user\", \"user_id\": \"...\"} or a list of them").into()
            )
        }
    };
    existing(store, &org_id, 404).await?;
    // A member already in is refused before anything is written, so a list is added whole or not
    // at all.
    for id in members.iter().filter_map(|m| m.user_id.as_deref()) {
        if db(store.get_org_member(id, &org_id).await)?.is_some() {
            return Err(bad(
                format!("User={id} is already a member of organization={org_id}. Change their role with /organization/member_update."),
                "member",
            ));
        }
    }
    let mut users = Vec::new();
    let mut memberships = Vec::new();
    for m in &members {
        let user = member_user(&app, store, m).await?;
        let now = super::now();
        let membership = OrgMemberRecord {
            user_id: user.user_id.clone(),
            organization_id: org_id.clone(),
            user_role: Some(m.role.clone()),
            created_at: Some(now),
            updated_at: Some(now),
            ..Default::default()
        };
        db(store.insert_org_member(&membership).await)?;
        users.push(Value::Object(user_json(&app.access.registry, &user)));
        memberships.push(member_json(&membership, None));
    }
    Ok(json(serde_json::json!({
        "organization_id": org_id,
        "updated_users": users,
        "updated_organization_memberships": memberships,
    })))
}

/// The member a request names by `user_id` or `user_email`.
async fn named_member(store: &Store, f: &Fields) -> Result<String> {
    match (f.string("user_id")?.flatten(), f.string("user_email")?.flatten()) {
        (Some(id), _) => Ok(id),
        (None, Some(email)) => match user_by_email(store, &email).await? {
            Some(u) => Ok(u.user_id),
            None => Err(bad(
                format!("Unique user not found for user_email={email}. Potential duplicate OR non-existent user_email in LiteLLM_UserTable. Use 'user_id' instead."),
                "user_email",
            )),
        },
        (None, None) => Err(ApiError::new(422, "`user_id` or `user_email` is required to pick the member.")
            .kind("invalid_request_error")
            .param("user_id")
            .into()),
    }
}

/// `PATCH /organization/member_update` `{"organization_id", "user_id"/"user_email", "role"?,
/// "max_budget_in_organization"?}`.
pub async fn member_update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let f = Fields::parse(&body)?;
    let org_id = f.required("organization_id")?;
    let identity = org_manager(&app, &headers, "/organization/member_update", &org_id).await?;
    let store = store(&app, Need::Other)?;
    existing(store, &org_id, 400).await?;
    let user_id = named_member(store, &f).await?;
    let Some(mut m) = db(store.get_org_member(&user_id, &org_id).await)? else {
        return Err(not_found(format!("Member not found in organization for user_id={user_id}"), "user_id"));
    };
    if let Some(role) = f.string("role")?.flatten() {
        if !ROLES.contains(&role.as_str()) {
            return Err(bad(format!("Invalid member role={role}: use one of {}.", ROLES.join(", ")), "role"));
        }
        m.user_role = Some(role);
    }
    let now = super::now();
    let mut budget = match &m.budget_id {
        Some(id) => db(store.get_budget(id).await)?,
        None => None,
    };
    if let Some(Some(max)) = f.f64("max_budget_in_organization")? {
        if max < 0.0 {
            return Err(bad(
                format!("max_budget_in_organization cannot be negative. Received: {max}"),
                "max_budget_in_organization",
            ));
        }
        let by = actor(&identity);
        match &mut budget {
            Some(b) => {
                b.max_budget = Some(max);
                b.updated_at = Some(now);
                b.updated_by = Some(by);
                db(store.update_budget(b).await)?;
            }
            None => {
                let b = BudgetRecord {
                    budget_id: uuid::Uuid::new_v4().to_string(),
                    max_budget: Some(max),
                    created_at: Some(now),
                    updated_at: Some(now),
                    created_by: Some(by.clone()),
                    updated_by: Some(by),
                    ..Default::default()
                };
                db(store.insert_budget(&b).await)?;
                m.budget_id = Some(b.budget_id.clone());
                budget = Some(b);
            }
        }
    }
    m.updated_at = Some(now);
    if !db(store.update_org_member(&m).await)? {
        return Err(bad(format!("Member not found in organization={org_id} for user_id={user_id}"), "user_id"));
    }
    Ok(json(member_json(&m, budget.as_ref())))
}

/// `DELETE /organization/member_delete` `{"organization_id", "user_id"/"user_email"}`: the
/// membership removed, as it was.
pub async fn member_delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let f = Fields::parse(&body)?;
    let org_id = f.required("organization_id")?;
    org_manager(&app, &headers, "/organization/member_delete", &org_id).await?;
    let store = store(&app, Need::Other)?;
    let user_id = named_member(store, &f).await?;
    let Some(m) = db(store.get_org_member(&user_id, &org_id).await)? else {
        return Err(not_found(format!("Member not found in organization for user_id={user_id}"), "user_id"));
    };
    db(store.delete_org_member(&user_id, &org_id).await)?;
    Ok(json(member_json(&m, None)))
}
