//! Running a team (LiteLLM's `team_endpoints.py`) beyond `teams.rs`: `/team/member_update` (a
//! member's role and `max_budget_in_team`), `/team/model/add` and `/team/model/delete` — the proxy
//! admin's and the team's own admins' ([`team_admin`]) — and `/team/available` (the teams
//! `available_teams` offers a user).

use super::roles::{authorize, forbidden, Caller};
use super::{bad, db, json, not_found, store, team_json, Fields, Need, Result};
use crate::app::App;
use crate::live::Kind;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;
use sluice_access::members::Membership;
use sluice_access::Identity;
use sluice_store::{Store, TeamRecord};
use sluice_wire::ApiError;
use std::sync::Arc;

/// Lets the proxy admin and the team's own admins (users who are an `admin` member of it:
/// [`Caller::is_team_admin`]) through; others get LiteLLM's 403 naming `route`.
pub(crate) fn team_admin(app: &App, caller: &Caller, route: &str, team_id: &str) -> Result<()> {
    if caller.all() || caller.is_team_admin(&app.access.registry, team_id) {
        return Ok(());
    }
    Err(caller.not_team_admin(route, team_id))
}

/// The stored team, or LiteLLM's 404 for the model routes.
async fn team_of(store: &Store, team_id: &str) -> Result<TeamRecord> {
    db(store.get_team(team_id).await)?.ok_or_else(|| {
        not_found(format!("Team not found, passed team_id={team_id}. List teams with /team/list."), "team_id")
    })
}

/// Writes a changed team: the store, this replica's registry, then the other replicas.
async fn save(app: &App, store: &Store, mut team: TeamRecord) -> Result<TeamRecord> {
    team.updated_at = Some(super::now());
    db(store.update_team(&team).await)?;
    let id = team.team_id.clone();
    let entry = app.access.registry.put_team(team, false);
    app.changes.publish(Kind::Team, [id]).await;
    Ok(entry.record.clone())
}

/// A team's `team_memberships` for `/team/info`: each member's spend in the team (this replica's
/// live figure) and budget.
pub(crate) async fn memberships_json(app: &App, store: &Store, team: &TeamRecord) -> Result<Vec<Value>> {
    let rows = db(store.team_memberships(Some(&team.team_id)).await)?;
    let mut out = Vec::new();
    for u in team.members_with_roles.iter().filter_map(|m| m.user_id.as_deref()) {
        let row = rows.iter().find(|r| r.user_id == u);
        let live = app.access.registry.members.get(&team.team_id, u);
        let spend = live.map(|e| e.live.spend()).or(row.map(|r| r.spend)).unwrap_or(0.0);
        let budget_id = row.and_then(|r| r.budget_id.clone());
        let budget = match &budget_id {
            Some(b) => db(store.get_budget(b).await)?.map(|b| serde_json::to_value(b).unwrap_or(Value::Null)),
            None => None,
        };
        out.push(serde_json::json!({
            "user_id": u,
            "team_id": team.team_id,
            "spend": spend,
            "budget_id": budget_id,
            "litellm_budget_table": budget,
        }));
    }
    Ok(out)
}

/// `POST /team/member_update` `{"team_id", "user_id"/"user_email", "role"?, "max_budget_in_team"?}`:
/// a member's role, and their budget in the team (a `sluice_budgets` row; `null` removes it).
pub async fn member_update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let caller = authorize(&app, &headers, "/team/member_update").await?;
    let store = store(&app, Need::Other)?;
    let f = Fields::parse(&body)?;
    let team_id =
        f.string("team_id")?.flatten().ok_or_else(|| bad("No team id passed in: add \"team_id\".", "team_id"))?;
    let (user_id, user_email) = (f.string("user_id")?.flatten(), f.string("user_email")?.flatten());
    if user_id.is_none() && user_email.is_none() {
        return Err(bad("Either user_id or user_email needs to be passed in.", "user_id"));
    }
    let role = f.string("role")?.flatten();
    if let Some(r) = role.as_deref().filter(|r| !matches!(*r, "admin" | "user")) {
        return Err(bad(format!("Invalid member role={r}: use \"admin\" or \"user\"."), "role"));
    }
    let max_budget = f.f64("max_budget_in_team")?;
    if let Some(Some(x)) = max_budget.filter(|x| x.is_some_and(|x| x < 0.0)) {
        return Err(bad(format!("max_budget_in_team cannot be negative. Received: {x}"), "max_budget_in_team"));
    }
    let team = db(store.get_team(&team_id).await)?.ok_or_else(|| {
        bad(format!("Team id={team_id} does not exist in db. List teams with /team/list."), "team_id")
    })?;
    team_admin(&app, &caller, "/team/member_update", &team_id)?;
    let member = team.members_with_roles.iter().find(|m| match (&user_id, &user_email) {
        (Some(id), _) => m.user_id.as_deref() == Some(id.as_str()),
        (None, Some(email)) => m.user_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)),
        (None, None) => false,
    });
    let Some(member_id) = member.and_then(|m| m.user_id.clone()) else {
        let who = user_id.as_deref().or(user_email.as_deref()).unwrap_or_default();
        return Err(bad(
            format!("User={who} is not a member of team={team_id}. Add them with /team/member_add first."),
            "user_id",
        ));
    };
    if let Some(max) = max_budget {
        let by = super::actor(&caller.identity);
        let new_id = uuid::Uuid::new_v4().to_string();
        let (row, budget) =
            db(store.set_member_budget(&member_id, &team_id, max, &new_id, Some(&by), super::now()).await)?;
        app.access.registry.members.put(Membership { record: row, max_budget: budget.and_then(|b| b.max_budget) });
    }
    let mut team = team;
    if let Some(r) = &role {
        for m in team.members_with_roles.iter_mut().filter(|m| m.user_id.as_deref() == Some(member_id.as_str())) {
            m.role = r.clone();
            if let Some(e) = &user_email {
                m.user_email = Some(e.clone());
            }
        }
        team.admins.retain(|a| *a != member_id);
        if r == "admin" {
            team.admins.push(member_id.clone());
        }
    }
    // Saved even for a budget change alone: its announcement makes the other replicas re-read
    // the team's memberships, and its `updated_at` moves the change mark they poll without Redis.
    save(&app, store, team).await?;
    tracing::info!(team_id = %team_id, user_id = %member_id, "team member updated");
    Ok(json(serde_json::json!({
        "team_id": team_id,
        "user_id": member_id,
        "user_email": user_email,
        "max_budget_in_team": max_budget.flatten(),
    })))
}

/// `{"team_id", "models": [...]}` of the model routes.
fn team_and_models(f: &Fields) -> Result<(String, Vec<String>)> {
    let team_id = f.required("team_id")?;
    let models = f.strings("models")?.flatten().ok_or_else(|| -> super::ErrorResponse {
        ApiError::new(422, "`models` is required: send {\"team_id\": \"...\", \"models\": [\"gpt-4o\"]}.")
            .kind("invalid_request_error")
            .param("models")
            .into()
    })?;
    Ok((team_id, models))
}

async fn change_models(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    route: &str,
    change: impl FnOnce(&mut Vec<String>, Vec<String>),
) -> Result<Response> {
    let caller = authorize(app, headers, route).await?;
    let store = store(app, Need::Other)?;
    let f = Fields::parse(body)?;
    let (team_id, models) = team_and_models(&f)?;
    let mut team = team_of(store, &team_id).await?;
    let registry = &app.access.registry;
    if !caller.all() && !caller.is_team_admin(registry, &team_id) {
        return Err(forbidden("Only proxy admin or team admin can modify team models"));
    }
    change(&mut team.models, models);
    let team = save(app, store, team).await?;
    Ok(json(team_json(registry, &team)))
}

/// `POST /team/model/add`: the models join the team's list. An empty list (every model) becomes
/// `all-proxy-models` plus them, as in LiteLLM, so adding never narrows what the team may call.
pub async fn model_add(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    change_models(&app, &headers, &body, "/team/model/add", |list, added| {
        if list.is_empty() {
            list.push("all-proxy-models".into());
        }
        for m in added {
            if !list.contains(&m) {
                list.push(m);
            }
        }
    })
    .await
}

/// `POST /team/model/delete`: the models leave the team's list.
pub async fn model_delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    change_models(&app, &headers, &body, "/team/model/delete", |list, removed| list.retain(|m| !removed.contains(m)))
        .await
}

/// `GET /team/available`: the teams of `default_internal_user_params.available_teams` the
/// caller's user is not in yet.
pub async fn available(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    let identity = authorize(&app, &headers, "/team/available").await?.identity;
    let store = store(&app, Need::Other)?;
    let Some(offered) = &app.available_teams else {
        return Err(bad(
            "No available teams for user to join. See how to set available teams here: https://docs.litellm.ai/docs/proxy/self_serve#all-settings-for-self-serve--sso-flow",
            "available_teams",
        ));
    };
    let user = match &identity {
        Identity::Key(k) => match k.record.user_id.as_deref() {
            Some(u) => db(store.get_user(u).await)?,
            None => None,
        },
        _ => None,
    };
    let Some(user) = user else {
        return Err(not_found("User not found: /team/available lists teams for the user a key belongs to.", "user_id"));
    };
    let mut teams = Vec::new();
    for t in offered.iter().filter(|t| !user.teams.contains(t)) {
        if let Some(team) = db(store.get_team(t).await)? {
            teams.push(Value::Object(team_json(&app.access.registry, &team)));
        }
    }
    Ok(json(teams))
}
