//! `sluice_objects`: files and batches made through `/v1/files` and `/v1/batches`. The upstream
//! keeps the object; this table says who made it (the key's token hash and team) and which
//! deployment holds it, so that another key is told it does not exist and a later call by id
//! reaches the right upstream. The server checks the owner.

use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{ObjectRecord, Result, Store};

const TABLE: &str = "sluice_objects";
const COLS: &[&str] = &["object_id", "kind", "owner", "team_id", "model", "model_id", "created_at", "billed"];

/// The most rows one list reads.
pub const MAX_LIST: i64 = 10_000;

fn row(r: &ObjectRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("object_id", Val::text(&r.object_id)),
        ("kind", Val::text(&r.kind)),
        ("owner", Val::text(&r.owner)),
        ("team_id", Val::opt_text(&r.team_id)),
        ("model", Val::text(&r.model)),
        ("model_id", Val::text(&r.model_id)),
        ("created_at", Val::int(Some(r.created_at))),
        ("billed", Val::flag(r.billed)),
    ]
}

fn from_row(r: &AnyRow) -> Result<ObjectRecord> {
    Ok(ObjectRecord {
        object_id: codec::text(r, "object_id")?,
        kind: codec::text(r, "kind")?,
        owner: codec::text(r, "owner")?,
        team_id: codec::opt_text(r, "team_id")?,
        model: codec::text(r, "model")?,
        model_id: codec::text(r, "model_id")?,
        created_at: codec::int(r, "created_at")?,
        billed: codec::int(r, "billed")? != 0,
    })
}

pub(crate) async fn insert(store: &Store, r: &ObjectRecord) -> Result<()> {
    // An upstream that hands out an id twice (a mock restarted) names the newer object.
    let (q, params) = sql::insert(TABLE, row(r), OnConflict::Update { key: "object_id", keep: &[] });
    sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(())
}

pub(crate) async fn get(store: &Store, kind: &str, object_id: &str) -> Result<Option<ObjectRecord>> {
    let mut params = Params::new();
    let id = params.push(Val::text(object_id));
    let kind = params.push(Val::text(kind));
    let q = format!("{} WHERE object_id = {id} AND kind = {kind}", sql::select(TABLE, COLS));
    let row = sql::query(&q, params).fetch_optional(&store.pool()?).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

/// The objects of `kind` that `owner` made (every owner's with `None`), newest first, at most
/// `limit` (bounded by [`MAX_LIST`]).
pub(crate) async fn list(store: &Store, kind: &str, owner: Option<&str>, limit: i64) -> Result<Vec<ObjectRecord>> {
    let mut params = Params::new();
    let kind = params.push(Val::text(kind));
    let mut q = format!("{} WHERE kind = {kind}", sql::select(TABLE, COLS));
    if let Some(owner) = owner {
        let owner = params.push(Val::text(owner));
        q.push_str(&format!(" AND owner = {owner}"));
    }
    q.push_str(&format!(" ORDER BY created_at DESC LIMIT {}", limit.clamp(1, MAX_LIST)));
    let rows = sql::query(&q, params).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}

/// Deletes the row; whether there was one.
pub(crate) async fn delete(store: &Store, kind: &str, object_id: &str) -> Result<bool> {
    let mut params = Params::new();
    let id = params.push(Val::text(object_id));
    let kind = params.push(Val::text(kind));
    let q = format!("DELETE FROM {TABLE} WHERE object_id = {id} AND kind = {kind}");
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(done.rows_affected() > 0)
}

/// Marks the object billed if it was not yet; whether this call did (of replicas that race to
/// bill one finished batch, one wins).
pub(crate) async fn claim_billing(store: &Store, kind: &str, object_id: &str) -> Result<bool> {
    let mut params = Params::new();
    let id = params.push(Val::text(object_id));
    let kind = params.push(Val::text(kind));
    let q = format!("UPDATE {TABLE} SET billed = 1 WHERE object_id = {id} AND kind = {kind} AND billed = 0");
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(done.rows_affected() > 0)
}
