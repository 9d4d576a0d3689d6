//! Teams: `/team/new`, `/team/update`, `/team/info`, `/team/list`, `/team/delete`,
//! `/team/member_add`, `/team/member_delete`, `/team/block` and `/team/unblock` (LiteLLM's
//! `team_endpoints.py`). A team's `members_with_roles` (with the legacy `members` and `admins`
//! lists) and each member's `teams` list are changed together.

use super::roles::authorize;
use super::team_members::{memberships_json, team_admin};
use super::{
    actor, bad, db, json, key_json, not_admin, not_found, query_str, set_spend, store, team_json, user_json, Common,
    Fields, Need, Query, Result,
};
use crate::app::App;
use crate::live::Kind;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;
use sluice_access::Identity;
use sluice_store::{Joined, KeyFilter, Spender, Store, TeamMember, TeamRecord, UserRecord};
use sluice_wire::ApiError;
use std::sync::Arc;

/// The stored team, or LiteLLM's 404.
async fn existing(store: &Store, team_id: &str) -> Result<TeamRecord> {
    db(store.get_team(team_id).await)?.ok_or_else(|| {
        not_found(format!("Team not found, passed team_id={team_id}. List teams with /team/list."), "team_id")
    })
}

/// A member as a request names it: `{"role", "user_id"?, "user_email"?}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub role: String,
}

/// `member` (one object or a list) or `members_with_roles`.
pub(crate) fn parse_members(v: &Value, field: &str) -> Result<Vec<Member>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        Value::Null => Vec::new(),
        _ => return Err(bad(format!("`{field}` must be a member object or a list of them"), field)),
    };
    items
        .into_iter()
        .map(|m| {
            let o = m.as_object().ok_or_else(|| {
                bad(
                    format!(
                        "each entry of `{field}` must be an object like {{\"role\": \"user\", \"user_id\": \"...\"}}"
                    ),
                    field,
                )
            })?;
            let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            let role = text("role").unwrap_or_else(|| "user".into());
            if role != "admin" && role != "user" {
                return Err(bad(format!("Invalid member role={role}: use \"admin\" or \"user\"."), field));
            }
            let member = Member { user_id: text("user_id"), user_email: text("user_email"), role };
            if member.user_id.is_none() && member.user_email.is_none() {
                return Err(bad(format!("each entry of `{field}` needs a user_id or a user_email"), field));
            }
            Ok(member)
        })
        .collect()
}

/// The user id a member names, to tell whether they are in the team already: its `user_id`, else
/// the user with that email, else a fresh id no team has (joining creates the user, in the store:
/// [`join_member`]).
async fn resolve(store: &Store, m: &Member) -> Result<String> {
    if let Some(id) = &m.user_id {
        return Ok(id.clone());
    }
    let email = m.user_email.as_deref().unwrap_or_default();
    let found = db(store.all_users().await)?
        .into_iter()
        .find(|u| u.user_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)));
    Ok(found.map(|u| u.user_id).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()))
}

/// Adds `user_id` to the team and the team to the user, creating the user (as an
/// `internal_user`) if there is none, as LiteLLM's `/team/member_add` does. `false`: already a
/// member, nothing changed.
pub(crate) async fn join_team(
    app: &App,
    store: &Store,
    team_id: &str,
    user_id: &str,
    user_email: Option<&str>,
    role: &str,
) -> Result<bool> {
    let m =
        Member { user_id: Some(user_id.to_string()), user_email: user_email.map(str::to_string), role: role.into() };
    Ok(join_member(app, store, team_id, &m).await?.1)
}

/// The user a team or organization member becomes when there is none: an `internal_user`
/// with the id given (else a new one) and the email given, as LiteLLM makes them.
pub(crate) fn new_member_user(
    user_id: Option<&str>,
    email: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> UserRecord {
    UserRecord {
        user_id: user_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string),
        user_email: email.map(str::to_string),
        user_role: Some("internal_user".into()),
        created_at: Some(now),
        updated_at: Some(now),
        ..Default::default()
    }
}

/// Puts the member into the team: the team goes into the user's `teams` (the user, found by id
/// or else by email, is created as an `internal_user` if there is none) in one serialised store
/// operation, so concurrent requests naming the same new member make one user; then the member
/// goes into the team's `members_with_roles`. Returns the member's user id and whether the team
/// gained a member.
pub(crate) async fn join_member(app: &App, store: &Store, team_id: &str, m: &Member) -> Result<(String, bool)> {
    let now = super::now();
    let new = new_member_user(m.user_id.as_deref(), m.user_email.as_deref(), now);
    let (user, how) = db(store.join_team(&new, m.user_id.is_none(), team_id, now).await)?;
    let user_id = user.user_id.clone();
    let email = m.user_email.clone().or_else(|| user.user_email.clone());
    if how != Joined::Already {
        app.access.registry.put_user(user, false);
        app.changes.publish(Kind::User, [user_id.clone()]).await;
    }
    let mut team = existing(store, team_id).await?;
    if team.members_with_roles.iter().any(|x| x.user_id.as_deref() == Some(user_id.as_str())) {
        return Ok((user_id, false));
    }
    team.members_with_roles.push(TeamMember {
        user_id: Some(user_id.clone()),
        user_email: email,
        role: m.role.clone(),
    });
    if !team.members.contains(&user_id) {
        team.members.push(user_id.clone());
    }
    if m.role == "admin" && !team.admins.contains(&user_id) {
        team.admins.push(user_id.clone());
    }
    team.updated_at = Some(now);
    db(store.update_team(&team).await)?;
    let changed_id = team.team_id.clone();
    app.access.registry.put_team(team, false);
    app.changes.publish(Kind::Team, [changed_id]).await;
    Ok((user_id, true))
}

/// Removes `user_id` from the team (and, with `touch_user`, the team from the user's `teams`).
/// `false`: not a member.
pub(crate) async fn leave_team(
    app: &App,
    store: &Store,
    team_id: &str,
    user_id: &str,
    touch_user: bool,
) -> Result<bool> {
    let Some(mut team) = db(store.get_team(team_id).await)? else { return Ok(false) };
    let before = (team.members_with_roles.len(), team.members.len(), team.admins.len());
    team.members_with_roles.retain(|m| m.user_id.as_deref() != Some(user_id));
    team.members.retain(|m| m != user_id);
    team.admins.retain(|m| m != user_id);
    let changed = before != (team.members_with_roles.len(), team.members.len(), team.admins.len());
    // The member's spend and budget in the team go with the membership, as in LiteLLM.
    db(store.delete_team_membership(user_id, team_id).await)?;
    app.access.registry.members.remove(team_id, user_id);
    let now = super::now();
    if changed {
        team.updated_at = Some(now);
        db(store.update_team(&team).await)?;
        let changed_id = team.team_id.clone();
        app.access.registry.put_team(team, false);
        app.changes.publish(Kind::Team, [changed_id]).await;
    }
    if touch_user {
        if let Some(mut u) = db(store.get_user(user_id).await)? {
            if u.teams.iter().any(|t| t == team_id) {
                u.teams.retain(|t| t != team_id);
                u.updated_at = Some(now);
                db(store.update_user(&u).await)?;
                let changed_id = u.user_id.clone();
                app.access.registry.put_user(u, false);
                app.changes.publish(Kind::User, [changed_id]).await;
            }
        }
    }
    Ok(changed)
}

/// Team fields beyond the common budget/limit ones.
fn apply_team_fields(f: &Fields, t: &mut TeamRecord) -> Result<()> {
    Common::of_team(t).apply(f, super::now())?;
    if let Some(v) = f.string("team_alias")? {
        t.team_alias = v;
    }
    if let Some(v) = f.string("organization_id")? {
        t.organization_id = v;
    }
    if let Some(v) = f.f64("soft_budget")? {
        t.soft_budget = v;
    }
    if let Some(v) = f.bool("blocked")? {
        t.blocked = v.unwrap_or(false);
    }
    if let Some(v) = f.object("model_aliases")? {
        let v = v.unwrap_or_default();
        if let Some((alias, model)) = v.iter().find(|(_, m)| !m.is_string()) {
            return Err(bad(
                format!("model_aliases.{alias} must be the name of a model, e.g. {{\"{alias}\": \"gpt-4o\"}}. Received: {model}"),
                "model_aliases",
            ));
        }
        t.model_aliases = v;
    }
    Ok(())
}

fn current(app: &App, team_id: &str, fallback: TeamRecord) -> TeamRecord {
    app.access.registry.teams.get(team_id).map(|e| e.record.clone()).unwrap_or(fallback)
}

/// `POST /team/new`.
pub async fn new(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let f = Fields::parse(&body)?;
    // A proxy admin, or an org_admin creating a team in their organization.
    let creator = super::organizations::team_creator(&app, &headers, &f).await?;
    let store = store(&app, Need::Other)?;
    let team_id =
        f.string("team_id")?.flatten().filter(|s| !s.is_empty()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if db(store.get_team(&team_id).await)?.is_some() {
        return Err(bad(format!("Team id = {team_id} already exists. Please use a different team id."), "team_id"));
    }
    let now = super::now();
    let mut rec =
        TeamRecord { team_id: team_id.clone(), created_at: Some(now), updated_at: Some(now), ..Default::default() };
    apply_team_fields(&f, &mut rec)?;
    super::organizations::check_team(store, &rec).await?;
    let mut members = match f.0.get("members_with_roles") {
        Some(v) => parse_members(v, "members_with_roles")?,
        None => Vec::new(),
    };
    for (field, role) in [("admins", "admin"), ("members", "user")] {
        for id in f.strings(field)?.flatten().unwrap_or_default() {
            if !members.iter().any(|m| m.user_id.as_deref() == Some(id.as_str())) {
                members.push(Member { user_id: Some(id), user_email: None, role: role.into() });
            }
        }
    }
    // The creating user becomes an admin of the team unless the request names them, as in
    // LiteLLM (whose master key is the user `default_user_id`; sluice's names no user).
    if let Identity::Key(k) = &creator {
        if let Some(u) = k.record.user_id.as_deref() {
            if !members.iter().any(|m| m.user_id.as_deref() == Some(u)) {
                members.push(Member { user_id: Some(u.to_string()), user_email: None, role: "admin".into() });
            }
        }
    }
    db(store.insert_team(&rec).await)?;
    let changed_id = rec.team_id.clone();
    app.access.registry.put_team(rec.clone(), false);
    app.changes.publish(Kind::Team, [changed_id]).await;
    for m in &members {
        join_member(&app, store, &team_id, m).await?;
    }
    let mut out = team_json(&app.access.registry, &current(&app, &team_id, rec));
    for (k, v) in &f.0 {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    tracing::info!(team_id = %team_id, "team created");
    Ok(json(out))
}

/// `POST /team/update` `{"team_id", ...fields}`.
pub async fn update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/team/update").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let team_id = f.required("team_id")?;
    let mut rec = existing(store, &team_id).await?;
    team_admin(&app, &caller, "/team/update", &team_id)?;
    apply_team_fields(&f, &mut rec)?;
    if ["organization_id", "models", "max_budget"].iter().any(|k| f.has(k)) {
        super::organizations::check_team(store, &rec).await?;
    }
    rec.updated_at = Some(super::now());
    db(store.update_team(&rec).await)?;
    let changed_id = rec.team_id.clone();
    let entry = app.access.registry.put_team(rec, false);
    app.changes.publish(Kind::Team, [changed_id]).await;
    if let Some(Some(spend)) = f.f64("spend")? {
        set_spend(store, Spender::Team(team_id.clone()), &entry.live, spend, entry.record.budget_reset_at).await?;
    }
    Ok(json(serde_json::json!({"team_id": team_id, "data": team_json(&app.access.registry, &entry.record)})))
}

/// `GET /team/info?team_id=`: the team, its keys and memberships. Admins, keys of the team and
/// keys of its members may look.
pub async fn info(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/team/info").await?;
    let identity = &caller.identity;
    let store = store(&app, Need::Other)?;
    let registry = &app.access.registry;
    let team_id = match (query_str(&q, "team_id"), identity) {
        (Some(t), _) => t.to_string(),
        (None, Identity::Key(k)) if k.record.team_id.is_some() => k.record.team_id.clone().unwrap_or_default(),
        _ => {
            return Err(ApiError::new(422, "`team_id` is required: call /team/info?team_id=...")
                .kind("invalid_request_error")
                .param("team_id")
                .into())
        }
    };
    let rec = if caller.all() {
        existing(store, &team_id).await?
    } else {
        // A team that is not there and a team the caller is not in get the same refusal, so a
        // non-admin cannot use this route to learn which teams exist.
        let Identity::Key(k) = identity else { unreachable!("only keys are not admins") };
        let found = db(store.get_team(&team_id).await)?;
        match found {
            Some(rec)
                if k.record.team_id.as_deref() == Some(team_id.as_str())
                    || k.record
                        .user_id
                        .as_deref()
                        .is_some_and(|u| rec.members_with_roles.iter().any(|m| m.user_id.as_deref() == Some(u))) =>
            {
                rec
            }
            _ => return Err(not_admin(identity, registry, "/team/info").into()),
        }
    };
    if let Some(entry) = registry.teams.get(&team_id).map(|e| e.clone()) {
        app.access.refresh_spend(&entry.live).await;
    }
    let filter = KeyFilter { team_id: Some(team_id.clone()), page: 1, size: 0, ..Default::default() };
    let (keys, _) = db(store.list_keys(&filter).await)?;
    let memberships = memberships_json(&app, store, &rec).await?;
    Ok(json(serde_json::json!({
        "team_id": team_id,
        "team_info": team_json(registry, &rec),
        "keys": keys.iter().map(|k| Value::Object(key_json(registry, k))).collect::<Vec<_>>(),
        "team_memberships": memberships,
    })))
}

/// `GET /team/list?user_id=`: every team (or those `user_id` belongs to); a non-admin sees the
/// teams its user is a member of and its key's team.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/team/list").await?;
    let store = store(&app, Need::Other)?;
    let user = query_str(&q, "user_id");
    let member = |t: &TeamRecord, u: &str| t.members_with_roles.iter().any(|m| m.user_id.as_deref() == Some(u));
    let teams: Vec<Value> = db(store.all_teams().await)?
        .iter()
        .filter(|t| user.is_none_or(|u| member(t, u)))
        .filter(|t| {
            caller.all()
                || caller.team_id() == Some(t.team_id.as_str())
                || caller.user_id().is_some_and(|me| member(t, me))
        })
        .map(|t| Value::Object(team_json(&app.access.registry, t)))
        .collect();
    Ok(json(teams))
}

/// `POST /team/delete` `{"team_ids": [...]}`: the teams and their keys go, and each member's
/// `teams` list forgets them.
pub async fn delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    authorize(&app, &headers, "/team/delete").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let Some(ids) = f.strings("team_ids")?.flatten().filter(|v| !v.is_empty()) else {
        return Err(ApiError::new(422, "`team_ids` is required: send {\"team_ids\": [\"...\"]}.")
            .kind("invalid_request_error")
            .param("team_ids")
            .into());
    };
    let mut teams = Vec::new();
    for id in &ids {
        teams.push(existing(store, id).await?);
    }
    let deleted = remove_teams(&app, store, &teams).await?;
    tracing::info!(count = deleted.len(), "teams deleted");
    Ok(json(serde_json::json!({"deleted_teams": deleted})))
}

/// Deletes teams with their keys, and takes them out of their members' `teams` lists; returns
/// the ids deleted. `/team/delete`, and `/organization/delete` for an organization's teams.
pub(crate) async fn remove_teams(app: &App, store: &Store, teams: &[TeamRecord]) -> Result<Vec<String>> {
    let ids: Vec<String> = teams.iter().map(|t| t.team_id.clone()).collect();
    for team in teams {
        let filter = KeyFilter { team_id: Some(team.team_id.clone()), page: 1, size: 0, ..Default::default() };
        let (keys, _) = db(store.list_keys(&filter).await)?;
        let tokens: Vec<String> = keys.into_iter().map(|k| k.token).collect();
        let gone = db(store.delete_keys(&tokens).await)?;
        for t in &gone {
            app.access.registry.keys.remove(t);
        }
        app.changes.publish(Kind::Key, gone).await;
        for m in team.members_with_roles.iter().filter_map(|m| m.user_id.as_deref()) {
            if let Some(mut u) = db(store.get_user(m).await)? {
                if u.teams.iter().any(|t| t == &team.team_id) {
                    u.teams.retain(|t| t != &team.team_id);
                    u.updated_at = Some(super::now());
                    db(store.update_user(&u).await)?;
                    let changed_id = u.user_id.clone();
                    app.access.registry.put_user(u, false);
                    app.changes.publish(Kind::User, [changed_id]).await;
                }
            }
        }
    }
    for team in teams {
        for m in team.members_with_roles.iter().filter_map(|m| m.user_id.as_deref()) {
            db(store.delete_team_membership(m, &team.team_id).await)?;
        }
    }
    let deleted = db(store.delete_teams(&ids).await)?;
    for id in &deleted {
        app.access.registry.teams.remove(id);
        app.access.registry.members.remove_team(id);
    }
    app.changes.publish(Kind::Team, deleted.iter().cloned()).await;
    Ok(deleted)
}

/// `POST /team/member_add` `{"team_id", "member": {"role", "user_id"/"user_email"} or [...]}`.
pub async fn member_add(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/team/member_add").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let team_id = f.required("team_id")?;
    team_admin(&app, &caller, "/team/member_add", &team_id)?;
    let members = match f.0.get("member") {
        Some(v) if !v.is_null() => parse_members(v, "member")?,
        _ => {
            return Err(ApiError::new(
                422,
                "`member` is required: {\"role\": \"user\", \"user_id\": \"...\"} or a list of them.",
            )
            .kind("invalid_request_error")
            .param("member")
            .into())
        }
    };
    let team = existing(store, &team_id).await?;
    for m in &members {
        let user_id = resolve(store, m).await?;
        if team.members_with_roles.iter().any(|x| x.user_id.as_deref() == Some(user_id.as_str())) {
            return Err(bad(
                format!("User={user_id} already in team={team_id}. Change their role with /team/member_update."),
                "member",
            ));
        }
    }
    let mut ids = Vec::new();
    for m in &members {
        ids.push(join_member(&app, store, &team_id, m).await?.0);
    }
    let registry = &app.access.registry;
    let mut out = team_json(registry, &current(&app, &team_id, team));
    let users: Vec<Value> = ids
        .iter()
        .filter_map(|u| registry.users.get(u).map(|e| Value::Object(user_json(registry, &e.record))))
        .collect();
    out.insert("updated_users".into(), Value::Array(users));
    out.insert("updated_team_memberships".into(), Value::Array(Vec::new()));
    Ok(json(out))
}

/// `POST /team/member_delete` `{"team_id", "user_id"/"user_email"}`.
pub async fn member_delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/team/member_delete").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let team_id = f.required("team_id")?;
    team_admin(&app, &caller, "/team/member_delete", &team_id)?;
    let team = existing(store, &team_id).await?;
    let user_id = match (f.string("user_id")?.flatten(), f.string("user_email")?.flatten()) {
        (Some(id), _) => id,
        (None, Some(email)) => team
            .members_with_roles
            .iter()
            .find(|m| m.user_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)))
            .and_then(|m| m.user_id.clone())
            .ok_or_else(|| bad(format!("No member with user_email={email} in team={team_id}."), "user_email"))?,
        (None, None) => {
            return Err(ApiError::new(422, "`user_id` or `user_email` is required to pick the member to remove.")
                .kind("invalid_request_error")
                .param("user_id")
                .into())
        }
    };
    if !leave_team(&app, store, &team_id, &user_id, true).await? {
        return Err(bad(
            format!("User={user_id} is not a member of team={team_id}. See the members with /team/info."),
            "user_id",
        ));
    }
    Ok(json(team_json(&app.access.registry, &current(&app, &team_id, team))))
}

async fn set_blocked(app: &App, headers: &HeaderMap, body: &[u8], blocked: bool) -> Result<Response> {
    let route = if blocked { "/team/block" } else { "/team/unblock" };
    let identity = authorize(app, headers, route).await?.identity;
    let store = store(app, Need::Other)?;
    let f = Fields::parse(body)?;
    let team_id = f.required("team_id")?;
    let mut rec = existing(store, &team_id).await?;
    rec.blocked = blocked;
    rec.updated_at = Some(super::now());
    db(store.update_team(&rec).await)?;
    let changed_id = rec.team_id.clone();
    let entry = app.access.registry.put_team(rec, false);
    app.changes.publish(Kind::Team, [changed_id]).await;
    tracing::info!(team_id = %team_id, blocked, by = %actor(&identity), "team block changed");
    Ok(json(team_json(&app.access.registry, &entry.record)))
}

/// `POST /team/block` `{"team_id"}`: the team's keys are refused from now on.
pub async fn block(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    set_blocked(&app, &headers, &body, true).await
}

/// `POST /team/unblock` `{"team_id"}`.
pub async fn unblock(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    set_blocked(&app, &headers, &body, false).await
}
