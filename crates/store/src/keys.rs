//! `sluice_keys`: virtual keys, one row per token hash.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::codec;
use crate::errors;
use crate::limits::{limit_vals, with_limits};
use crate::sql::{self, Params, Val};
use crate::table::{self, Table};
use crate::{KeyFilter, KeyRecord, Result, Store};

pub(crate) const TABLE: Table<KeyRecord> = Table {
    name: "sluice_keys",
    key: "token",
    noun: |token| format!("key with token {}", short(token)),
    conflict,
    row,
    from_row,
};

fn row(k: &KeyRecord) -> Vec<(&'static str, Val)> {
    let mut row = vec![
        ("token", Val::text(&k.token)),
        ("key_name", Val::opt_text(&k.key_name)),
        ("key_alias", Val::opt_text(&k.key_alias)),
        ("user_id", Val::opt_text(&k.user_id)),
        ("team_id", Val::opt_text(&k.team_id)),
        ("models", Val::json(&k.models)),
        ("soft_budget", Val::opt_real(k.soft_budget)),
        ("expires", Val::opt_time(k.expires)),
        ("aliases", Val::json(&k.aliases)),
        ("allowed_cache_controls", Val::json(&k.allowed_cache_controls)),
        ("blocked", Val::flag(k.blocked)),
        ("created_at", Val::opt_time(k.created_at)),
        ("updated_at", Val::opt_time(k.updated_at)),
        ("created_by", Val::opt_text(&k.created_by)),
        ("updated_by", Val::opt_text(&k.updated_by)),
    ];
    row.extend(limit_vals!(k));
    row
}

fn from_row(r: &AnyRow) -> Result<KeyRecord> {
    Ok(with_limits!(
        KeyRecord {
            token: codec::text(r, "token")?,
            key_name: codec::opt_text(r, "key_name")?,
            key_alias: codec::opt_text(r, "key_alias")?,
            user_id: codec::opt_text(r, "user_id")?,
            team_id: codec::opt_text(r, "team_id")?,
            models: codec::list(r, "models")?,
            soft_budget: codec::opt_real(r, "soft_budget")?,
            expires: codec::opt_time(r, "expires")?,
            aliases: codec::map(r, "aliases")?,
            allowed_cache_controls: codec::list(r, "allowed_cache_controls")?,
            blocked: codec::flag(r, "blocked")?,
            created_at: codec::opt_time(r, "created_at")?,
            updated_at: codec::opt_time(r, "updated_at")?,
            created_by: codec::opt_text(r, "created_by")?,
            updated_by: codec::opt_text(r, "updated_by")?,
        },
        r,
        codec::map
    ))
}

/// Words a unique violation: the alias index or the primary key.
fn conflict(k: &KeyRecord, db_message: &str) -> String {
    match &k.key_alias {
        Some(alias) if db_message.contains("key_alias") => {
            format!("Key with alias '{alias}' already exists; choose another key_alias")
        }
        _ => "A key with this token already exists".to_owned(),
    }
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
    table::insert(store, &TABLE, k).await
}

pub(crate) async fn update(store: &Store, k: &KeyRecord) -> Result<()> {
    table::update(store, &TABLE, &k.token, k).await
}

pub(crate) async fn rekey(store: &Store, old_token: &str, new: &KeyRecord) -> Result<()> {
    table::update(store, &TABLE, old_token, new).await
}

pub(crate) async fn get(store: &Store, token: &str) -> Result<Option<KeyRecord>> {
    table::get(store, &TABLE, token).await
}

pub(crate) async fn by_alias(store: &Store, alias: &str) -> Result<Option<KeyRecord>> {
    table::get_by(store, &TABLE, "key_alias", alias).await
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
    let count_sql = format!("SELECT COUNT(*) AS n FROM {}{where_sql}", TABLE.name);
    let total = sql::query(&count_sql, count_params)
        .fetch_one(&store.pool()?)
        .await
        .map_err(errors::db)?
        .try_get::<i64, _>("n")
        .map_err(errors::db)?;

    let mut q = format!("{}{where_sql} ORDER BY created_at DESC NULLS LAST, token", TABLE.select());
    if f.size > 0 {
        let offset = (f.page.max(1) - 1).saturating_mul(f.size);
        let limit = params.push(Val::int(Some(f.size)));
        let offset = params.push(Val::int(Some(offset)));
        q.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    let rows = sql::query(&q, params).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    let keys = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok((keys, total))
}

pub(crate) async fn all(store: &Store) -> Result<Vec<KeyRecord>> {
    table::all(store, &TABLE).await
}
