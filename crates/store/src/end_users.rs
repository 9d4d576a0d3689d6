//! `sluice_end_users`: the `user` field of requests (LiteLLM's `LiteLLM_EndUserTable`).

use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Val};
use crate::table::{self, Table};
use crate::{EndUserRecord, Result, Store};

pub(crate) const TABLE: Table<EndUserRecord> = Table {
    name: "sluice_end_users",
    key: "user_id",
    noun: |user_id| format!("end user '{user_id}'"),
    conflict: |e, _| format!("Customer already exists, passed user_id={}. Please pass a new user_id.", e.user_id),
    row,
    from_row,
};

fn row(e: &EndUserRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("user_id", Val::text(&e.user_id)),
        ("alias", Val::opt_text(&e.alias)),
        ("spend", Val::real(e.spend)),
        ("max_budget", Val::opt_real(e.max_budget)),
        ("blocked", Val::flag(e.blocked)),
        ("budget_id", Val::opt_text(&e.budget_id)),
        ("allowed_model_region", Val::opt_text(&e.allowed_model_region)),
        ("default_model", Val::opt_text(&e.default_model)),
    ]
}

fn from_row(r: &AnyRow) -> Result<EndUserRecord> {
    Ok(EndUserRecord {
        user_id: codec::text(r, "user_id")?,
        alias: codec::opt_text(r, "alias")?,
        spend: codec::real(r, "spend")?,
        max_budget: codec::opt_real(r, "max_budget")?,
        blocked: codec::flag(r, "blocked")?,
        budget_id: codec::opt_text(r, "budget_id")?,
        allowed_model_region: codec::opt_text(r, "allowed_model_region")?,
        default_model: codec::opt_text(r, "default_model")?,
    })
}

pub(crate) async fn insert(store: &Store, e: &EndUserRecord) -> Result<()> {
    table::insert(store, &TABLE, e).await
}

/// Every field except `spend`.
pub(crate) async fn update(store: &Store, e: &EndUserRecord) -> Result<()> {
    table::update(store, &TABLE, &e.user_id, e).await
}

pub(crate) async fn get(store: &Store, user_id: &str) -> Result<Option<EndUserRecord>> {
    table::get(store, &TABLE, user_id).await
}

pub(crate) async fn all(store: &Store) -> Result<Vec<EndUserRecord>> {
    table::all(store, &TABLE).await
}

/// Inserts the row, or updates every other field of an existing one; an existing row's spend is
/// left alone (it moves only through spend writes).
pub(crate) async fn upsert(store: &Store, e: &EndUserRecord) -> Result<()> {
    let (q, params) = sql::insert(TABLE.name, row(e), OnConflict::Update { key: TABLE.key, keep: &["spend"] });
    sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(())
}
