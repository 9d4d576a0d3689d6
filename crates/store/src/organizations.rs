//! `sluice_organizations` and `sluice_organization_members`: organizations above teams and who
//! belongs to each with which role (LiteLLM's `LiteLLM_OrganizationTable` and
//! `LiteLLM_OrganizationMembership`).

use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::table::{self, Table};
use crate::{OrgMemberRecord, OrganizationRecord, Result, Store};

pub(crate) const TABLE: Table<OrganizationRecord> = Table {
    name: "sluice_organizations",
    key: "organization_id",
    noun: |id| format!("organization '{id}'"),
    conflict: |o, _| format!("Organization with organization_id '{}' already exists", o.organization_id),
    row,
    from_row,
};

fn row(o: &OrganizationRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("organization_id", Val::text(&o.organization_id)),
        ("organization_alias", Val::opt_text(&o.organization_alias)),
        ("budget_id", Val::opt_text(&o.budget_id)),
        ("models", Val::json(&o.models)),
        ("spend", Val::real(o.spend)),
        ("model_spend", Val::json(&o.model_spend)),
        ("metadata", Val::json(&o.metadata)),
        ("blocked", Val::flag(o.blocked)),
        ("created_at", Val::opt_time(o.created_at)),
        ("created_by", Val::opt_text(&o.created_by)),
        ("updated_at", Val::opt_time(o.updated_at)),
        ("updated_by", Val::opt_text(&o.updated_by)),
    ]
}

fn from_row(r: &AnyRow) -> Result<OrganizationRecord> {
    Ok(OrganizationRecord {
        organization_id: codec::text(r, "organization_id")?,
        organization_alias: codec::opt_text(r, "organization_alias")?,
        budget_id: codec::opt_text(r, "budget_id")?,
        models: codec::list(r, "models")?,
        spend: codec::real(r, "spend")?,
        model_spend: codec::map(r, "model_spend")?,
        metadata: codec::map(r, "metadata")?,
        blocked: codec::flag(r, "blocked")?,
        created_at: codec::opt_time(r, "created_at")?,
        created_by: codec::opt_text(r, "created_by")?,
        updated_at: codec::opt_time(r, "updated_at")?,
        updated_by: codec::opt_text(r, "updated_by")?,
    })
}

pub(crate) async fn insert(store: &Store, o: &OrganizationRecord) -> Result<()> {
    table::insert(store, &TABLE, o).await
}

pub(crate) async fn update(store: &Store, o: &OrganizationRecord) -> Result<()> {
    table::update(store, &TABLE, &o.organization_id, o).await
}

pub(crate) async fn get(store: &Store, id: &str) -> Result<Option<OrganizationRecord>> {
    table::get(store, &TABLE, id).await
}

pub(crate) async fn all(store: &Store) -> Result<Vec<OrganizationRecord>> {
    table::all(store, &TABLE).await
}

/// Inserts or overwrites organizations (the LiteLLM import), spend included.
pub(crate) async fn upsert_all(store: &Store, orgs: &[OrganizationRecord]) -> Result<()> {
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    table::upsert_all(&mut tx, &TABLE, orgs).await?;
    tx.commit().await.map_err(errors::db)
}

// --- members: keyed by (user_id, organization_id), so not a `Table` ---

const MEMBERS: &str = "sluice_organization_members";

fn member_row(m: &OrgMemberRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("user_id", Val::text(&m.user_id)),
        ("organization_id", Val::text(&m.organization_id)),
        ("user_role", Val::opt_text(&m.user_role)),
        ("spend", Val::real(m.spend)),
        ("budget_id", Val::opt_text(&m.budget_id)),
        ("created_at", Val::opt_time(m.created_at)),
        ("updated_at", Val::opt_time(m.updated_at)),
    ]
}

fn member_from_row(r: &AnyRow) -> Result<OrgMemberRecord> {
    Ok(OrgMemberRecord {
        user_id: codec::text(r, "user_id")?,
        organization_id: codec::text(r, "organization_id")?,
        user_role: codec::opt_text(r, "user_role")?,
        spend: codec::real(r, "spend")?,
        budget_id: codec::opt_text(r, "budget_id")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
    })
}

fn member_select() -> String {
    let cols: Vec<&str> = member_row(&OrgMemberRecord::default()).into_iter().map(|(c, _)| c).collect();
    sql::select(MEMBERS, &cols)
}

/// Adds a membership; one already there for the same user and organization is a `Conflict`.
pub(crate) async fn insert_member(store: &Store, m: &OrgMemberRecord) -> Result<()> {
    let (q, params) = sql::insert(MEMBERS, member_row(m), OnConflict::Fail);
    sql::query(&q, params).execute(&store.pool()?).await.map_err(|e| {
        errors::map(e, |_| format!("User={} is already a member of organization={}", m.user_id, m.organization_id))
    })?;
    Ok(())
}

/// Writes a membership's role, budget and `updated_at` (its spend moves only through spend
/// writes); whether there was one.
pub(crate) async fn update_member(store: &Store, m: &OrgMemberRecord) -> Result<bool> {
    let mut params = Params::new();
    let q = format!(
        "UPDATE {MEMBERS} SET user_role = {}, budget_id = {}, updated_at = {} WHERE user_id = {} AND organization_id = {}",
        params.push(Val::opt_text(&m.user_role)),
        params.push(Val::opt_text(&m.budget_id)),
        params.push(Val::opt_time(m.updated_at)),
        params.push(Val::text(&m.user_id)),
        params.push(Val::text(&m.organization_id)),
    );
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(done.rows_affected() > 0)
}

/// Inserts or overwrites memberships (the LiteLLM import), spend included.
pub(crate) async fn upsert_members(store: &Store, members: &[OrgMemberRecord]) -> Result<()> {
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    upsert_members_in(&mut tx, members).await?;
    tx.commit().await.map_err(errors::db)
}

/// [`upsert_members`] inside a transaction the caller commits.
pub(crate) async fn upsert_members_in(tx: &mut Transaction<'static, Any>, members: &[OrgMemberRecord]) -> Result<()> {
    for m in members {
        let (mut q, params) = sql::insert(MEMBERS, member_row(m), OnConflict::Fail);
        // The key is two columns, which `OnConflict::Update` does not name.
        q.push_str(
            " ON CONFLICT (user_id, organization_id) DO UPDATE SET user_role = excluded.user_role, \
             spend = excluded.spend, budget_id = excluded.budget_id, created_at = excluded.created_at, \
             updated_at = excluded.updated_at",
        );
        sql::query(&q, params).execute(&mut **tx).await.map_err(errors::db)?;
    }
    Ok(())
}

pub(crate) async fn get_member(store: &Store, user_id: &str, organization_id: &str) -> Result<Option<OrgMemberRecord>> {
    let mut params = Params::new();
    let q = format!(
        "{} WHERE user_id = {} AND organization_id = {}",
        member_select(),
        params.push(Val::text(user_id)),
        params.push(Val::text(organization_id))
    );
    let row = sql::query(&q, params).fetch_optional(&store.pool()?).await.map_err(errors::db)?;
    row.as_ref().map(member_from_row).transpose()
}

/// The memberships whose `col` (`user_id` or `organization_id`) is `value`, or every one.
pub(crate) async fn members_by(store: &Store, filter: Option<(&str, &str)>) -> Result<Vec<OrgMemberRecord>> {
    let mut params = Params::new();
    let mut q = member_select();
    if let Some((col, value)) = filter {
        debug_assert!(matches!(col, "user_id" | "organization_id"));
        q.push_str(&format!(" WHERE {col} = {}", params.push(Val::text(value))));
    }
    q.push_str(" ORDER BY organization_id, user_id");
    let rows = sql::query(&q, params).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    rows.iter().map(member_from_row).collect()
}

/// Removes one membership; whether it was there.
pub(crate) async fn delete_member(store: &Store, user_id: &str, organization_id: &str) -> Result<bool> {
    let mut params = Params::new();
    let q = format!(
        "DELETE FROM {MEMBERS} WHERE user_id = {} AND organization_id = {}",
        params.push(Val::text(user_id)),
        params.push(Val::text(organization_id))
    );
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(done.rows_affected() > 0)
}

/// Deletes organizations and their memberships in one transaction; returns the ids that existed.
pub(crate) async fn delete(store: &Store, ids: &[String]) -> Result<Vec<String>> {
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    let mut deleted = Vec::new();
    for id in ids {
        let mut params = Params::new();
        let q = format!("DELETE FROM {MEMBERS} WHERE organization_id = {}", params.push(Val::text(id)));
        sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
        let mut params = Params::new();
        let q = format!("DELETE FROM {} WHERE organization_id = {}", TABLE.name, params.push(Val::text(id)));
        if sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?.rows_affected() > 0 {
            deleted.push(id.clone());
        }
    }
    tx.commit().await.map_err(errors::db)?;
    Ok(deleted)
}
