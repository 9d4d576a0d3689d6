//! `sluice_models`: deployments added through the API (`store_model_in_db`).

use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{ModelRecord, Result, Store};

const TABLE: &str = "sluice_models";
const COLS: &[&str] = &["model_id", "model_name", "litellm_params", "model_info", "created_at"];

fn row(m: &ModelRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("model_id", Val::text(&m.model_id)),
        ("model_name", Val::text(&m.model_name)),
        ("litellm_params", Val::json(&m.litellm_params)),
        ("model_info", Val::json(&m.model_info)),
        ("created_at", Val::opt_time(m.created_at)),
    ]
}

fn from_row(r: &AnyRow) -> Result<ModelRecord> {
    Ok(ModelRecord {
        model_id: codec::text(r, "model_id")?,
        model_name: codec::text(r, "model_name")?,
        litellm_params: codec::map(r, "litellm_params")?,
        model_info: codec::map(r, "model_info")?,
        created_at: codec::opt_time(r, "created_at")?,
    })
}

/// Inserts, or replaces the row with the same `model_id` (so `/model/update` can use it too).
pub(crate) async fn insert(store: &Store, m: &ModelRecord) -> Result<()> {
    let (q, params) = sql::insert(TABLE, row(m), OnConflict::Update { key: "model_id", keep: &["created_at"] });
    sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(())
}

pub(crate) async fn delete(store: &Store, model_id: &str) -> Result<bool> {
    let mut params = Params::new();
    let q = format!("DELETE FROM {TABLE} WHERE model_id = {}", params.push(Val::text(model_id)));
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn all(store: &Store) -> Result<Vec<ModelRecord>> {
    let q = format!("{} ORDER BY created_at NULLS LAST, model_id", sql::select(TABLE, COLS));
    let rows = sqlx::query(&q).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}
