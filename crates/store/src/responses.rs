//! `sluice_responses`: Responses API answers served through chat (providers that keep no state
//! of their own), so that `GET /v1/responses/{id}`, `DELETE` and `previous_response_id` work for
//! them. Each row belongs to the key that made it (its token hash); the server checks the owner.

use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{ResponseRecord, Result, Store, StoreError};

const TABLE: &str = "sluice_responses";
const COLS: &[&str] = &["response_id", "owner", "model", "created_at", "conversation", "response"];

/// The largest row stored: the conversation and the response together. A conversation that grows
/// past it ends there (its next `previous_response_id` is not found), rather than the table
/// growing without bound.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

fn row(r: &ResponseRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("response_id", Val::text(&r.response_id)),
        ("owner", Val::text(&r.owner)),
        ("model", Val::text(&r.model)),
        ("created_at", Val::int(Some(r.created_at))),
        ("conversation", Val::text(&r.conversation)),
        ("response", Val::text(&r.response)),
    ]
}

fn from_row(r: &AnyRow) -> Result<ResponseRecord> {
    Ok(ResponseRecord {
        response_id: codec::text(r, "response_id")?,
        owner: codec::text(r, "owner")?,
        model: codec::text(r, "model")?,
        created_at: codec::int(r, "created_at")?,
        conversation: codec::text(r, "conversation")?,
        response: codec::text(r, "response")?,
    })
}

pub(crate) async fn insert(store: &Store, r: &ResponseRecord) -> Result<()> {
    let size = r.conversation.len() + r.response.len();
    if size > MAX_RESPONSE_BYTES {
        return Err(StoreError::Other(format!(
            "response {} is {size} bytes with its conversation, over the {MAX_RESPONSE_BYTES} stored per response",
            r.response_id
        )));
    }
    let (q, params) = sql::insert(TABLE, row(r), OnConflict::Fail);
    sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(())
}

pub(crate) async fn get(store: &Store, response_id: &str) -> Result<Option<ResponseRecord>> {
    let mut params = Params::new();
    let q = format!("{} WHERE response_id = {}", sql::select(TABLE, COLS), params.push(Val::text(response_id)));
    let row = sql::query(&q, params).fetch_optional(&store.pool()?).await.map_err(errors::db)?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes the row if `owner` made it; whether one was deleted.
pub(crate) async fn delete(store: &Store, response_id: &str, owner: &str) -> Result<bool> {
    let mut params = Params::new();
    let id = params.push(Val::text(response_id));
    let owner = params.push(Val::text(owner));
    let q = format!("DELETE FROM {TABLE} WHERE response_id = {id} AND owner = {owner}");
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(done.rows_affected() > 0)
}
