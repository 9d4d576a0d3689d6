//! `sluice_users`: internal users (LiteLLM's `LiteLLM_UserTable`).

use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{Result, Store, StoreError, UserRecord};

pub(crate) const TABLE: &str = "sluice_users";
const COLS: &[&str] = &[
    "user_id",
    "user_alias",
    "user_email",
    "user_role",
    "teams",
    "models",
    "spend",
    "max_budget",
    "budget_duration",
    "budget_reset_at",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
    "model_spend",
    "metadata",
    "created_at",
    "updated_at",
];
pub(crate) const SPEND_COLS: &[&str] = &["spend", "model_spend"];

pub(crate) fn row(u: &UserRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("user_id", Val::text(&u.user_id)),
        ("user_alias", Val::opt_text(&u.user_alias)),
        ("user_email", Val::opt_text(&u.user_email)),
        ("user_role", Val::opt_text(&u.user_role)),
        ("teams", Val::json(&u.teams)),
        ("models", Val::json(&u.models)),
        ("spend", Val::real(u.spend)),
        ("max_budget", Val::opt_real(u.max_budget)),
        ("budget_duration", Val::opt_text(&u.budget_duration)),
        ("budget_reset_at", Val::opt_time(u.budget_reset_at)),
        ("tpm_limit", Val::int(u.tpm_limit)),
        ("rpm_limit", Val::int(u.rpm_limit)),
        ("max_parallel_requests", Val::int(u.max_parallel_requests)),
        ("model_max_budget", Val::json(&u.model_max_budget)),
        ("model_spend", Val::json(&u.model_spend)),
        ("metadata", Val::json(&u.metadata)),
        ("created_at", Val::opt_time(u.created_at)),
        ("updated_at", Val::opt_time(u.updated_at)),
    ]
}

fn from_row(r: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        user_id: codec::text(r, "user_id")?,
        user_alias: codec::opt_text(r, "user_alias")?,
        user_email: codec::opt_text(r, "user_email")?,
        user_role: codec::opt_text(r, "user_role")?,
        teams: codec::list(r, "teams")?,
        models: codec::list(r, "models")?,
        spend: codec::real(r, "spend")?,
        max_budget: codec::opt_real(r, "max_budget")?,
        budget_duration: codec::opt_text(r, "budget_duration")?,
        budget_reset_at: codec::opt_time(r, "budget_reset_at")?,
        tpm_limit: codec::opt_int(r, "tpm_limit")?,
        rpm_limit: codec::opt_int(r, "rpm_limit")?,
        max_parallel_requests: codec::opt_int(r, "max_parallel_requests")?,
        model_max_budget: codec::map(r, "model_max_budget")?,
        model_spend: codec::map(r, "model_spend")?,
        metadata: codec::map(r, "metadata")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
    })
}

pub(crate) fn conflict(u: &UserRecord) -> String {
    format!("User with user_id '{}' already exists", u.user_id)
}

pub(crate) async fn insert(store: &Store, u: &UserRecord) -> Result<()> {
    let (q, params) = sql::insert(TABLE, row(u), OnConflict::Fail);
    sql::query(&q, params).execute(&store.pool).await.map_err(|e| errors::map(e, |_| conflict(u)))?;
    Ok(())
}

pub(crate) async fn update(store: &Store, u: &UserRecord) -> Result<()> {
    let (q, params) = sql::update(TABLE, "user_id", Val::text(&u.user_id), row(u), SPEND_COLS);
    let done = sql::query(&q, params).execute(&store.pool).await.map_err(errors::db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Other(format!("no user '{}' in the database (was it deleted?)", u.user_id)));
    }
    Ok(())
}

pub(crate) async fn get(store: &Store, user_id: &str) -> Result<Option<UserRecord>> {
    let mut params = Params::new();
    let q = format!("{} WHERE user_id = {}", sql::select(TABLE, COLS), params.push(Val::text(user_id)));
    let row = sql::query(&q, params).fetch_optional(&store.pool).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn all(store: &Store) -> Result<Vec<UserRecord>> {
    let q = format!("{} ORDER BY user_id", sql::select(TABLE, COLS));
    let rows = sqlx::query(&q).fetch_all(&store.pool).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}
