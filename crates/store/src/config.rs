//! `sluice_config`: settings changed through `/config/update` (LiteLLM's `LiteLLM_Config`), one
//! row per section (`router_settings`, `litellm_settings`, `general_settings`), its value a JSON
//! object merged over the config file's section at start and on every replica when it changes.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, OnConflict, Val};
use crate::{Result, Store};

const TABLE: &str = "sluice_config";
const COLS: &[&str] = &["param_name", "param_value", "updated_at"];

/// One stored section.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigParam {
    pub param_name: String,
    /// The section's settings, as the API took them (an object; other JSON is kept as it is).
    pub param_value: Value,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn from_row(r: &AnyRow) -> Result<ConfigParam> {
    let value: Option<Value> = codec::opt_text(r, "param_value")?
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| crate::StoreError::Other(format!("sluice_config.param_value is not JSON: {e}")))?;
    Ok(ConfigParam {
        param_name: codec::text(r, "param_name")?,
        param_value: value.unwrap_or(Value::Object(Map::new())),
        updated_at: codec::time(r, "updated_at")?,
    })
}

/// Writes `value` as the section `name`, replacing what was stored under it.
pub(crate) async fn put(store: &Store, name: &str, value: &Value) -> Result<()> {
    let row = vec![
        ("param_name", Val::text(name)),
        ("param_value", Val::json(value)),
        ("updated_at", Val::time(chrono::Utc::now())),
    ];
    let (q, params) = sql::insert(TABLE, row, OnConflict::Update { key: "param_name", keep: &[] });
    sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(())
}

/// Every stored section, by name.
pub(crate) async fn all(store: &Store) -> Result<Vec<ConfigParam>> {
    let q = format!("{} ORDER BY param_name", sql::select(TABLE, COLS));
    let rows = sqlx::query(&q).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    rows.iter().map(from_row).collect()
}
