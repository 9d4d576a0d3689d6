//! `sluice_team_memberships` (LiteLLM's `LiteLLM_TeamMembership`): a member's spend in a team and
//! the budget capping it; and [`join`], which puts a team into a member's user row (creating the
//! user) safely when many requests name the same new member at once.

use chrono::{DateTime, Utc};
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;

use crate::codec;
use crate::errors;
use crate::sql::{self, Params, Val};
use crate::users;
use crate::{Backend, BudgetRecord, Joined, Result, Store, TeamMembershipRecord, UserRecord};

pub(crate) const NAME: &str = "sluice_team_memberships";
const COLS: &str = "user_id, team_id, spend, budget_id";

fn from_row(r: &AnyRow) -> Result<TeamMembershipRecord> {
    Ok(TeamMembershipRecord {
        user_id: codec::text(r, "user_id")?,
        team_id: codec::text(r, "team_id")?,
        spend: codec::real(r, "spend")?,
        budget_id: codec::opt_text(r, "budget_id")?,
    })
}

/// Every membership row, or those of one team.
pub(crate) async fn list(store: &Store, team_id: Option<&str>) -> Result<Vec<TeamMembershipRecord>> {
    let mut params = Params::new();
    let filter = match team_id {
        Some(t) => format!(" WHERE team_id = {}", params.push(Val::text(t))),
        None => String::new(),
    };
    let q = format!("SELECT {COLS} FROM {NAME}{filter} ORDER BY team_id, user_id");
    let rows = sql::query(&q, params).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}

pub(crate) async fn get(store: &Store, user_id: &str, team_id: &str) -> Result<Option<TeamMembershipRecord>> {
    let mut params = Params::new();
    let q = format!(
        "SELECT {COLS} FROM {NAME} WHERE user_id = {} AND team_id = {}",
        params.push(Val::text(user_id)),
        params.push(Val::text(team_id))
    );
    let row = sql::query(&q, params).fetch_optional(&store.pool()?).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes the membership and the budget only it used; whether there was one.
pub(crate) async fn delete(store: &Store, user_id: &str, team_id: &str) -> Result<bool> {
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    let found = locked(&mut tx, store.backend, user_id, team_id).await?;
    let Some(found) = found else { return Ok(false) };
    let mut params = Params::new();
    let q = format!(
        "DELETE FROM {NAME} WHERE user_id = {} AND team_id = {}",
        params.push(Val::text(user_id)),
        params.push(Val::text(team_id))
    );
    sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
    if let Some(b) = &found.budget_id {
        delete_budget(&mut tx, b).await?;
    }
    tx.commit().await.map_err(errors::db)?;
    Ok(true)
}

/// The membership row of `(user_id, team_id)`, locked for the rest of `tx` on PostgreSQL (SQLite's
/// write transaction holds the whole database already).
async fn locked(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    user_id: &str,
    team_id: &str,
) -> Result<Option<TeamMembershipRecord>> {
    let mut params = Params::new();
    let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let q = format!(
        "SELECT {COLS} FROM {NAME} WHERE user_id = {} AND team_id = {}{lock}",
        params.push(Val::text(user_id)),
        params.push(Val::text(team_id))
    );
    let row = sql::query(&q, params).fetch_optional(&mut **tx).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

async fn delete_budget(tx: &mut Transaction<'static, Any>, budget_id: &str) -> Result<()> {
    let mut params = Params::new();
    let q =
        format!("DELETE FROM {} WHERE budget_id = {}", crate::budgets::TABLE.name, params.push(Val::text(budget_id)));
    sql::query(&q, params).execute(&mut **tx).await.map_err(errors::db)?;
    Ok(())
}

/// Sets a member's `max_budget_in_team`, in one transaction: the membership row is created if
/// missing (its spend kept if not), its budget row created or updated; `None` removes the budget.
/// `new_budget_id` names the budget row when one must be made. Returns the membership and its
/// budget.
pub(crate) async fn set_budget(
    store: &Store,
    user_id: &str,
    team_id: &str,
    max_budget: Option<f64>,
    new_budget_id: &str,
    by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(TeamMembershipRecord, Option<BudgetRecord>)> {
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    let mut params = Params::new();
    let q = format!(
        "INSERT INTO {NAME} (user_id, team_id, spend) VALUES ({}, {}, 0) ON CONFLICT (user_id, team_id) DO NOTHING",
        params.push(Val::text(user_id)),
        params.push(Val::text(team_id))
    );
    sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
    let mut member = locked(&mut tx, store.backend, user_id, team_id)
        .await?
        .ok_or_else(|| crate::StoreError::Other(format!("membership of '{user_id}' in team '{team_id}' vanished")))?;
    let budgets = &crate::budgets::TABLE;
    let budget = match (max_budget, member.budget_id.clone()) {
        (None, None) => None,
        (None, Some(old)) => {
            delete_budget(&mut tx, &old).await?;
            member.budget_id = None;
            None
        }
        (Some(max), old) => {
            let existing = match &old {
                Some(id) => {
                    let mut params = Params::new();
                    let q = format!("{} WHERE budget_id = {}", budgets.select(), params.push(Val::text(id)));
                    let row = sql::query(&q, params).fetch_optional(&mut *tx).await.map_err(errors::db)?;
                    row.as_ref().map(budgets.from_row).transpose()?
                }
                None => None,
            };
            let b = match existing {
                Some(mut b) => {
                    b.max_budget = Some(max);
                    b.updated_at = Some(now);
                    b.updated_by = by.map(str::to_string);
                    let (q, params) =
                        sql::update(budgets.name, budgets.key, Val::text(&b.budget_id), (budgets.row)(&b), &[]);
                    sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
                    b
                }
                None => {
                    let b = BudgetRecord {
                        budget_id: new_budget_id.to_string(),
                        max_budget: Some(max),
                        created_at: Some(now),
                        updated_at: Some(now),
                        created_by: by.map(str::to_string),
                        updated_by: by.map(str::to_string),
                        ..Default::default()
                    };
                    let (q, params) = sql::insert(budgets.name, (budgets.row)(&b), sql::OnConflict::Fail);
                    sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
                    b
                }
            };
            member.budget_id = Some(b.budget_id.clone());
            Some(b)
        }
    };
    let mut params = Params::new();
    let q = format!(
        "UPDATE {NAME} SET budget_id = {} WHERE user_id = {} AND team_id = {}",
        params.push(Val::opt_text(&member.budget_id)),
        params.push(Val::text(user_id)),
        params.push(Val::text(team_id))
    );
    sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
    tx.commit().await.map_err(errors::db)?;
    Ok((member, budget))
}

/// A stable 64-bit FNV-1a hash, for the PostgreSQL advisory lock that serialises joins naming
/// one email (a row lock cannot: there is no row yet).
fn lock_id(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Adds `team_id` to the `teams` of the user `new.user_id` names or, when `by_email`, of the user
/// whose email is `new.user_email` (case-insensitively); no such user: `new` is inserted with
/// `teams = [team_id]`. One transaction, serialised with every other join naming the same user
/// (the database's locks, so replicas sharing it are serialised too): concurrent joins of one
/// new member make one user row listing every team.
pub(crate) async fn join(
    store: &Store,
    new: &UserRecord,
    by_email: bool,
    team_id: &str,
    now: DateTime<Utc>,
) -> Result<(UserRecord, Joined)> {
    let table = &users::TABLE;
    let pg = store.backend == Backend::Postgres;
    let lock = if pg { " FOR UPDATE" } else { "" };
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    let email = new.user_email.as_deref().filter(|_| by_email);
    if let (true, Some(email)) = (pg, email) {
        let mut params = Params::new();
        let id = params.push(Val::int(Some(lock_id(&format!("sluice user email {}", email.to_lowercase())))));
        sql::query(&format!("SELECT pg_advisory_xact_lock({id})"), params)
            .execute(&mut *tx)
            .await
            .map_err(errors::db)?;
    }
    let mut inserted = false;
    if email.is_none() {
        // The row exists from here on, so the lock below always has a row to take.
        let mut row = (table.row)(new);
        for (col, v) in row.iter_mut() {
            if *col == "teams" {
                *v = Val::json(&Vec::<String>::new());
            }
        }
        let (mut q, params) = sql::insert(table.name, row, sql::OnConflict::Fail);
        q.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", table.key));
        inserted = sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?.rows_affected() == 1;
    }
    let mut params = Params::new();
    let q = match email {
        Some(e) => format!(
            "{} WHERE LOWER(user_email) = LOWER({}) ORDER BY created_at, user_id LIMIT 1{lock}",
            table.select(),
            params.push(Val::text(e))
        ),
        None => format!("{} WHERE user_id = {}{lock}", table.select(), params.push(Val::text(&new.user_id))),
    };
    let found = sql::query(&q, params).fetch_optional(&mut *tx).await.map_err(errors::db)?;
    let found = found.as_ref().map(table.from_row).transpose()?;
    let (mut user, how) = match found {
        Some(u) if u.teams.iter().any(|t| t == team_id) => {
            tx.commit().await.map_err(errors::db)?;
            return Ok((u, Joined::Already));
        }
        Some(u) if inserted => (u, Joined::Created),
        Some(u) => (u, Joined::Added),
        None => {
            let u = UserRecord { teams: Vec::new(), ..new.clone() };
            let (q, params) = sql::insert(table.name, (table.row)(&u), sql::OnConflict::Fail);
            sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
            (u, Joined::Created)
        }
    };
    user.teams.push(team_id.to_string());
    user.updated_at = Some(now);
    let mut params = Params::new();
    let q = format!(
        "UPDATE {} SET teams = {}, updated_at = {} WHERE user_id = {}",
        table.name,
        params.push(Val::json(&user.teams)),
        params.push(Val::opt_time(user.updated_at)),
        params.push(Val::text(&user.user_id))
    );
    sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
    tx.commit().await.map_err(errors::db)?;
    Ok((user, how))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_ids_are_stable_and_distinct() {
        assert_eq!(super::lock_id("a"), super::lock_id("a"));
        assert_ne!(super::lock_id("a@x"), super::lock_id("b@x"));
    }
}
