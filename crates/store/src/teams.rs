//! `sluice_teams`: teams (LiteLLM's `LiteLLM_TeamTable`).

use sqlx::any::AnyRow;

use crate::codec;
use crate::limits::{limit_vals, with_limits};
use crate::sql::Val;
use crate::table::{self, Table};
use crate::{Result, Store, TeamRecord};

pub(crate) const TABLE: Table<TeamRecord> = Table {
    name: "sluice_teams",
    key: "team_id",
    noun: |team_id| format!("team '{team_id}'"),
    conflict: |t, _| format!("Team with team_id '{}' already exists", t.team_id),
    row,
    from_row,
};

fn row(t: &TeamRecord) -> Vec<(&'static str, Val)> {
    let mut row = vec![
        ("team_id", Val::text(&t.team_id)),
        ("team_alias", Val::opt_text(&t.team_alias)),
        ("organization_id", Val::opt_text(&t.organization_id)),
        ("admins", Val::json(&t.admins)),
        ("members", Val::json(&t.members)),
        ("members_with_roles", Val::json(&t.members_with_roles)),
        ("models", Val::json(&t.models)),
        ("soft_budget", Val::opt_real(t.soft_budget)),
        ("blocked", Val::flag(t.blocked)),
        ("created_at", Val::opt_time(t.created_at)),
        ("updated_at", Val::opt_time(t.updated_at)),
        ("model_aliases", Val::json(&t.model_aliases)),
    ];
    row.extend(limit_vals!(t));
    row
}

fn from_row(r: &AnyRow) -> Result<TeamRecord> {
    Ok(with_limits!(
        TeamRecord {
            team_id: codec::text(r, "team_id")?,
            team_alias: codec::opt_text(r, "team_alias")?,
            organization_id: codec::opt_text(r, "organization_id")?,
            admins: codec::list(r, "admins")?,
            members: codec::list(r, "members")?,
            members_with_roles: codec::json(r, "members_with_roles")?,
            models: codec::list(r, "models")?,
            soft_budget: codec::opt_real(r, "soft_budget")?,
            blocked: codec::flag(r, "blocked")?,
            created_at: codec::opt_time(r, "created_at")?,
            updated_at: codec::opt_time(r, "updated_at")?,
            model_aliases: codec::map(r, "model_aliases")?,
        },
        r,
        codec::map
    ))
}

pub(crate) async fn insert(store: &Store, t: &TeamRecord) -> Result<()> {
    table::insert(store, &TABLE, t).await
}

pub(crate) async fn update(store: &Store, t: &TeamRecord) -> Result<()> {
    table::update(store, &TABLE, &t.team_id, t).await
}

pub(crate) async fn get(store: &Store, team_id: &str) -> Result<Option<TeamRecord>> {
    table::get(store, &TABLE, team_id).await
}

pub(crate) async fn all(store: &Store) -> Result<Vec<TeamRecord>> {
    table::all(store, &TABLE).await
}
