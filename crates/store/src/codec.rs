//! Field encodings shared by every table: timestamps as BIGINT unix milliseconds, lists and maps
//! as JSON text, booleans as BIGINT 0/1 (the `Any` driver cannot decode SQLite BOOLEAN columns),
//! and the row getters that undo them.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::sql::Val;
use crate::{Result, StoreError};

impl Val {
    pub(crate) fn text(s: &str) -> Val {
        Val::Text(Some(s.to_owned()))
    }
    pub(crate) fn opt_text(s: &Option<String>) -> Val {
        Val::Text(s.clone())
    }
    pub(crate) fn int(i: Option<i64>) -> Val {
        Val::Int(i)
    }
    pub(crate) fn real(f: f64) -> Val {
        Val::Real(Some(f))
    }
    pub(crate) fn opt_real(f: Option<f64>) -> Val {
        Val::Real(f)
    }
    pub(crate) fn time(t: DateTime<Utc>) -> Val {
        Val::Int(Some(t.timestamp_millis()))
    }
    pub(crate) fn opt_time(t: Option<DateTime<Utc>>) -> Val {
        Val::Int(t.map(|t| t.timestamp_millis()))
    }
    pub(crate) fn flag(b: bool) -> Val {
        Val::Int(Some(b as i64))
    }
    pub(crate) fn json<T: Serialize>(v: &T) -> Val {
        Val::Text(Some(json_text(v)))
    }
}

/// Lists and maps of plain JSON values always serialise, so a failure cannot happen here.
pub(crate) fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn decode_err(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("cannot read column {col}: {e}"))
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(col).map_err(|e| decode_err(col, e))
}

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String> {
    Ok(opt_text(row, col)?.unwrap_or_default())
}

pub(crate) fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(col).map_err(|e| decode_err(col, e))
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(opt_int(row, col)?.unwrap_or(0))
}

/// SQLite reports computed values (a `SUM`, a literal 0) as integers when they happen to be
/// whole, so an integer is accepted wherever a float is expected.
pub(crate) fn opt_real(row: &AnyRow, col: &str) -> Result<Option<f64>> {
    real_in(row, col, &col)
}

pub(crate) fn real(row: &AnyRow, col: &str) -> Result<f64> {
    Ok(opt_real(row, col)?.unwrap_or(0.0))
}

/// [`real`] of the `i`th column, for reads of many rows where a lookup by name shows.
pub(crate) fn real_at(row: &AnyRow, i: usize) -> Result<f64> {
    Ok(real_in(row, i, &format_args!("#{i}"))?.unwrap_or(0.0))
}

/// [`opt_real`] of the column `col` (a name or a position), called `shown` in an error.
fn real_in<I>(row: &AnyRow, col: I, shown: &dyn std::fmt::Display) -> Result<Option<f64>>
where
    I: sqlx::ColumnIndex<AnyRow> + Copy,
{
    match row.try_get::<Option<f64>, _>(col) {
        Ok(v) => Ok(v),
        Err(e) => match row.try_get::<Option<i64>, _>(col) {
            Ok(v) => Ok(v.map(|i| i as f64)),
            Err(_) => Err(decode_err(&shown.to_string(), e)),
        },
    }
}

pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(int(row, col)? != 0)
}

pub(crate) fn millis_to_time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

pub(crate) fn opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    match opt_int(row, col)? {
        None => Ok(None),
        Some(ms) => millis_to_time(ms).map(Some).ok_or_else(|| decode_err(col, format!("{ms} is out of range"))),
    }
}

pub(crate) fn time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    Ok(opt_time(row, col)?.unwrap_or_default())
}

/// JSON text (NULL reads as the type's default, as LiteLLM's nullable columns do).
pub(crate) fn json<T: DeserializeOwned + Default>(row: &AnyRow, col: &str) -> Result<T> {
    match opt_text(row, col)? {
        None => Ok(T::default()),
        Some(s) if s.is_empty() || s == "null" => Ok(T::default()),
        Some(s) => serde_json::from_str(&s).map_err(|e| decode_err(col, format!("invalid JSON ({e})"))),
    }
}

pub(crate) fn list(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    json(row, col)
}

pub(crate) fn map(row: &AnyRow, col: &str) -> Result<Map<String, Value>> {
    json(row, col)
}
