//! `sluice_teams`: teams (LiteLLM's `LiteLLM_TeamTable`).

use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{Result, Store, StoreError, TeamRecord};

pub(crate) const TABLE: &str = "sluice_teams";
const COLS: &[&str] = &[
    "team_id",
    "team_alias",
    "organization_id",
    "admins",
    "members",
    "members_with_roles",
    "models",
    "spend",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "budget_reset_at",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
    "model_spend",
    "metadata",
    "blocked",
    "created_at",
    "updated_at",
];
pub(crate) const SPEND_COLS: &[&str] = &["spend", "model_spend"];

pub(crate) fn row(t: &TeamRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("team_id", Val::text(&t.team_id)),
        ("team_alias", Val::opt_text(&t.team_alias)),
        ("organization_id", Val::opt_text(&t.organization_id)),
        ("admins", Val::json(&t.admins)),
        ("members", Val::json(&t.members)),
        ("members_with_roles", Val::json(&t.members_with_roles)),
        ("models", Val::json(&t.models)),
        ("spend", Val::real(t.spend)),
        ("max_budget", Val::opt_real(t.max_budget)),
        ("soft_budget", Val::opt_real(t.soft_budget)),
        ("budget_duration", Val::opt_text(&t.budget_duration)),
        ("budget_reset_at", Val::opt_time(t.budget_reset_at)),
        ("tpm_limit", Val::int(t.tpm_limit)),
        ("rpm_limit", Val::int(t.rpm_limit)),
        ("max_parallel_requests", Val::int(t.max_parallel_requests)),
        ("model_max_budget", Val::json(&t.model_max_budget)),
        ("model_spend", Val::json(&t.model_spend)),
        ("metadata", Val::json(&t.metadata)),
        ("blocked", Val::flag(t.blocked)),
        ("created_at", Val::opt_time(t.created_at)),
        ("updated_at", Val::opt_time(t.updated_at)),
    ]
}

fn from_row(r: &AnyRow) -> Result<TeamRecord> {
    Ok(TeamRecord {
        team_id: codec::text(r, "team_id")?,
        team_alias: codec::opt_text(r, "team_alias")?,
        organization_id: codec::opt_text(r, "organization_id")?,
        admins: codec::list(r, "admins")?,
        members: codec::list(r, "members")?,
        members_with_roles: codec::json(r, "members_with_roles")?,
        models: codec::list(r, "models")?,
        spend: codec::real(r, "spend")?,
        max_budget: codec::opt_real(r, "max_budget")?,
        soft_budget: codec::opt_real(r, "soft_budget")?,
        budget_duration: codec::opt_text(r, "budget_duration")?,
        budget_reset_at: codec::opt_time(r, "budget_reset_at")?,
        tpm_limit: codec::opt_int(r, "tpm_limit")?,
        rpm_limit: codec::opt_int(r, "rpm_limit")?,
        max_parallel_requests: codec::opt_int(r, "max_parallel_requests")?,
        model_max_budget: codec::map(r, "model_max_budget")?,
        model_spend: codec::map(r, "model_spend")?,
        metadata: codec::map(r, "metadata")?,
        blocked: codec::flag(r, "blocked")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
    })
}

pub(crate) fn conflict(t: &TeamRecord) -> String {
    format!("Team with team_id '{}' already exists", t.team_id)
}

pub(crate) async fn insert(store: &Store, t: &TeamRecord) -> Result<()> {
    let (q, params) = sql::insert(TABLE, row(t), OnConflict::Fail);
    sql::query(&q, params).execute(&store.pool).await.map_err(|e| errors::map(e, |_| conflict(t)))?;
    Ok(())
}

pub(crate) async fn update(store: &Store, t: &TeamRecord) -> Result<()> {
    let (q, params) = sql::update(TABLE, "team_id", Val::text(&t.team_id), row(t), SPEND_COLS);
    let done = sql::query(&q, params).execute(&store.pool).await.map_err(errors::db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Other(format!("no team '{}' in the database (was it deleted?)", t.team_id)));
    }
    Ok(())
}

pub(crate) async fn get(store: &Store, team_id: &str) -> Result<Option<TeamRecord>> {
    let mut params = Params::new();
    let q = format!("{} WHERE team_id = {}", sql::select(TABLE, COLS), params.push(Val::text(team_id)));
    let row = sql::query(&q, params).fetch_optional(&store.pool).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn all(store: &Store) -> Result<Vec<TeamRecord>> {
    let q = format!("{} ORDER BY team_id", sql::select(TABLE, COLS));
    let rows = sqlx::query(&q).fetch_all(&store.pool).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}
