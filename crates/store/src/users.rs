//! `sluice_users`: internal users (LiteLLM's `LiteLLM_UserTable`).

use sqlx::any::AnyRow;

use crate::codec;
use crate::limits::{limit_vals, with_limits};
use crate::sql::Val;
use crate::table::{self, Table};
use crate::{Result, Store, UserRecord};

pub(crate) const TABLE: Table<UserRecord> = Table {
    name: "sluice_users",
    key: "user_id",
    noun: |user_id| format!("user '{user_id}'"),
    conflict: |u, _| format!("User with user_id '{}' already exists", u.user_id),
    row,
    from_row,
};

fn row(u: &UserRecord) -> Vec<(&'static str, Val)> {
    let mut row = vec![
        ("user_id", Val::text(&u.user_id)),
        ("user_alias", Val::opt_text(&u.user_alias)),
        ("user_email", Val::opt_text(&u.user_email)),
        ("user_role", Val::opt_text(&u.user_role)),
        ("teams", Val::json(&u.teams)),
        ("models", Val::json(&u.models)),
        ("created_at", Val::opt_time(u.created_at)),
        ("updated_at", Val::opt_time(u.updated_at)),
    ];
    row.extend(limit_vals!(u));
    row
}

fn from_row(r: &AnyRow) -> Result<UserRecord> {
    Ok(with_limits!(
        UserRecord {
            user_id: codec::text(r, "user_id")?,
            user_alias: codec::opt_text(r, "user_alias")?,
            user_email: codec::opt_text(r, "user_email")?,
            user_role: codec::opt_text(r, "user_role")?,
            teams: codec::list(r, "teams")?,
            models: codec::list(r, "models")?,
            created_at: codec::opt_time(r, "created_at")?,
            updated_at: codec::opt_time(r, "updated_at")?,
        },
        r,
        codec::map
    ))
}

pub(crate) async fn insert(store: &Store, u: &UserRecord) -> Result<()> {
    table::insert(store, &TABLE, u).await
}

pub(crate) async fn update(store: &Store, u: &UserRecord) -> Result<()> {
    table::update(store, &TABLE, &u.user_id, u).await
}

pub(crate) async fn get(store: &Store, user_id: &str) -> Result<Option<UserRecord>> {
    table::get(store, &TABLE, user_id).await
}

pub(crate) async fn all(store: &Store) -> Result<Vec<UserRecord>> {
    table::all(store, &TABLE).await
}
