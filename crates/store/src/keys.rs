//! `sluice_keys`: virtual keys, one row per token hash.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{KeyFilter, KeyRecord, Result, Store, StoreError};

pub(crate) const TABLE: &str = "sluice_keys";
const COLS: &[&str] = &[
    "token",
    "key_name",
    "key_alias",
    "user_id",
    "team_id",
    "models",
    "spend",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "budget_reset_at",
    "expires",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
    "model_spend",
    "metadata",
    "aliases",
    "blocked",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
];
/// Moved only by spend writes and budget resets, never by an update.
pub(crate) const SPEND_COLS: &[&str] = &["spend", "model_spend"];

pub(crate) fn row(k: &KeyRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("token", Val::text(&k.token)),
        ("key_name", Val::opt_text(&k.key_name)),
        ("key_alias", Val::opt_text(&k.key_alias)),
        ("user_id", Val::opt_text(&k.user_id)),
        ("team_id", Val::opt_text(&k.team_id)),
        ("models", Val::json(&k.models)),
        ("spend", Val::real(k.spend)),
        ("max_budget", Val::opt_real(k.max_budget)),
        ("soft_budget", Val::opt_real(k.soft_budget)),
        ("budget_duration", Val::opt_text(&k.budget_duration)),
        ("budget_reset_at", Val::opt_time(k.budget_reset_at)),
        ("expires", Val::opt_time(k.expires)),
        ("tpm_limit", Val::int(k.tpm_limit)),
        ("rpm_limit", Val::int(k.rpm_limit)),
        ("max_parallel_requests", Val::int(k.max_parallel_requests)),
        ("model_max_budget", Val::json(&k.model_max_budget)),
        ("model_spend", Val::json(&k.model_spend)),
        ("metadata", Val::json(&k.metadata)),
        ("aliases", Val::json(&k.aliases)),
        ("blocked", Val::flag(k.blocked)),
        ("created_at", Val::opt_time(k.created_at)),
        ("updated_at", Val::opt_time(k.updated_at)),
        ("created_by", Val::opt_text(&k.created_by)),
        ("updated_by", Val::opt_text(&k.updated_by)),
    ]
}

fn from_row(r: &AnyRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        token: codec::text(r, "token")?,
        key_name: codec::opt_text(r, "key_name")?,
        key_alias: codec::opt_text(r, "key_alias")?,
        user_id: codec::opt_text(r, "user_id")?,
        team_id: codec::opt_text(r, "team_id")?,
        models: codec::list(r, "models")?,
        spend: codec::real(r, "spend")?,
        max_budget: codec::opt_real(r, "max_budget")?,
        soft_budget: codec::opt_real(r, "soft_budget")?,
        budget_duration: codec::opt_text(r, "budget_duration")?,
        budget_reset_at: codec::opt_time(r, "budget_reset_at")?,
        expires: codec::opt_time(r, "expires")?,
        tpm_limit: codec::opt_int(r, "tpm_limit")?,
        rpm_limit: codec::opt_int(r, "rpm_limit")?,
        max_parallel_requests: codec::opt_int(r, "max_parallel_requests")?,
        model_max_budget: codec::map(r, "model_max_budget")?,
        model_spend: codec::map(r, "model_spend")?,
        metadata: codec::map(r, "metadata")?,
        aliases: codec::map(r, "aliases")?,
        blocked: codec::flag(r, "blocked")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
        created_by: codec::opt_text(r, "created_by")?,
        updated_by: codec::opt_text(r, "updated_by")?,
    })
}

/// Words a unique violation: the alias index or the primary key.
pub(crate) fn conflict(k: &KeyRecord, db_message: &str) -> String {
    match &k.key_alias {
        Some(alias) if db_message.contains("key_alias") => {
            format!("Key with alias '{alias}' already exists; choose another key_alias")
        }
        _ => "A key with this token already exists".to_owned(),
    }
}

fn not_found(token: &str) -> StoreError {
    StoreError::Other(format!("no key with token {} in the database (was it deleted?)", short(token)))
}

/// Enough of a token hash to recognise it in a message.
fn short(token: &str) -> String {
    let prefix: String = token.chars().take(12).collect();
    if prefix.len() < token.len() {
        format!("{prefix}…")
    } else {
        prefix
    }
}

pub(crate) async fn insert(store: &Store, k: &KeyRecord) -> Result<()> {
    let (q, params) = sql::insert(TABLE, row(k), OnConflict::Fail);
    sql::query(&q, params).execute(&store.pool).await.map_err(|e| errors::map(e, |m| conflict(k, m)))?;
    Ok(())
}

pub(crate) async fn update(store: &Store, k: &KeyRecord) -> Result<()> {
    let (q, params) = sql::update(TABLE, "token", Val::text(&k.token), row(k), SPEND_COLS);
    let done = sql::query(&q, params).execute(&store.pool).await.map_err(|e| errors::map(e, |m| conflict(k, m)))?;
    if done.rows_affected() == 0 {
        return Err(not_found(&k.token));
    }
    Ok(())
}

pub(crate) async fn rekey(store: &Store, old_token: &str, new: &KeyRecord) -> Result<()> {
    let (q, params) = sql::update(TABLE, "token", Val::text(old_token), row(new), SPEND_COLS);
    let done = sql::query(&q, params).execute(&store.pool).await.map_err(|e| errors::map(e, |m| conflict(new, m)))?;
    if done.rows_affected() == 0 {
        return Err(not_found(old_token));
    }
    Ok(())
}

async fn fetch_one_by(store: &Store, col: &str, value: &str) -> Result<Option<KeyRecord>> {
    let mut params = Params::new();
    let q = format!("{} WHERE {col} = {}", sql::select(TABLE, COLS), params.push(Val::text(value)));
    let row = sql::query(&q, params).fetch_optional(&store.pool).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn get(store: &Store, token: &str) -> Result<Option<KeyRecord>> {
    fetch_one_by(store, "token", token).await
}

pub(crate) async fn by_alias(store: &Store, alias: &str) -> Result<Option<KeyRecord>> {
    fetch_one_by(store, "key_alias", alias).await
}

pub(crate) async fn list(store: &Store, f: &KeyFilter) -> Result<(Vec<KeyRecord>, i64)> {
    let mut params = Params::new();
    let mut wheres = Vec::new();
    for (col, v) in [("user_id", &f.user_id), ("team_id", &f.team_id), ("key_alias", &f.key_alias)] {
        if let Some(v) = v {
            wheres.push(format!("{col} = {}", params.push(Val::text(v))));
        }
    }
    let where_sql = if wheres.is_empty() { String::new() } else { format!(" WHERE {}", wheres.join(" AND ")) };

    // The same filter twice: once to count, once for the page (the count's params are cloned).
    let mut count_params = Params::new();
    for v in [&f.user_id, &f.team_id, &f.key_alias].into_iter().flatten() {
        count_params.push(Val::text(v));
    }
    let count_sql = format!("SELECT COUNT(*) AS n FROM {TABLE}{where_sql}");
    let total = sql::query(&count_sql, count_params)
        .fetch_one(&store.pool)
        .await
        .map_err(errors::db)?
        .try_get::<i64, _>("n")
        .map_err(errors::db)?;

    let mut q = format!("{}{where_sql} ORDER BY created_at DESC NULLS LAST, token", sql::select(TABLE, COLS));
    if f.size > 0 {
        let offset = (f.page.max(1) - 1).saturating_mul(f.size);
        let limit = params.push(Val::int(Some(f.size)));
        let offset = params.push(Val::int(Some(offset)));
        q.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    let rows = sql::query(&q, params).fetch_all(&store.pool).await.map_err(errors::db)?;
    let keys = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok((keys, total))
}

pub(crate) async fn all(store: &Store) -> Result<Vec<KeyRecord>> {
    let q = format!("{} ORDER BY token", sql::select(TABLE, COLS));
    let rows = sqlx::query(&q).fetch_all(&store.pool).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}
