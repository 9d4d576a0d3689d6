//! What keys, users, teams and end users have in common: a table keyed by one text column, a
//! record written as one row and read back from one, and the same few statements on it.

use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;

use crate::errors;
use crate::sql::{self, OnConflict, Params, Val};
use crate::{Result, Store, StoreError};

/// Moved only by spend writes and budget resets, never by an update.
const SPEND_COLS: &[&str] = &["spend", "model_spend"];

/// A table and how its record type `R` maps onto it.
pub(crate) struct Table<R: 'static> {
    pub name: &'static str,
    /// The primary key column.
    pub key: &'static str,
    /// Names the row whose key is the argument in a message, e.g. `user 'u1'`.
    pub noun: fn(&str) -> String,
    /// Words a unique violation writing the record; gets the database's message, which names
    /// the column or index that clashed.
    pub conflict: fn(&R, &str) -> String,
    /// The `(column, value)` pairs of the record: every column of the table.
    pub row: fn(&R) -> Vec<(&'static str, Val)>,
    /// Reads a record back from the columns `row` writes.
    pub from_row: fn(&AnyRow) -> Result<R>,
}

impl<R: Default> Table<R> {
    /// `SELECT … FROM` the table, naming the columns `row` writes (so the two cannot disagree).
    pub(crate) fn select(&self) -> String {
        let cols: Vec<&str> = (self.row)(&R::default()).into_iter().map(|(col, _)| col).collect();
        sql::select(self.name, &cols)
    }
}

impl<R> Table<R> {
    /// Maps an error from writing `rec`, worded by `conflict` when it is a unique violation.
    fn error(&self, e: sqlx::Error, rec: &R) -> StoreError {
        errors::map(e, |m| (self.conflict)(rec, m))
    }
}

/// Inserts `rec`; a taken key (or other unique column) is a `Conflict`.
pub(crate) async fn insert<R>(store: &Store, t: &Table<R>, rec: &R) -> Result<()> {
    let (q, params) = sql::insert(t.name, (t.row)(rec), OnConflict::Fail);
    sql::query(&q, params).execute(&store.pool()?).await.map_err(|e| t.error(e, rec))?;
    Ok(())
}

/// Inserts every record in `tx`, overwriting the rows with the same keys (spend included).
pub(crate) async fn upsert_all<R>(tx: &mut Transaction<'static, Any>, t: &Table<R>, recs: &[R]) -> Result<()> {
    for rec in recs {
        let (q, params) = sql::insert(t.name, (t.row)(rec), OnConflict::Update { key: t.key, keep: &[] });
        sql::query(&q, params).execute(&mut **tx).await.map_err(|e| t.error(e, rec))?;
    }
    Ok(())
}

/// Writes every column of `rec` except [`SPEND_COLS`] into the row whose key is `key_value`
/// (`rec`'s own key, or the old one when a rekey changes it). No such row is an error.
pub(crate) async fn update<R>(store: &Store, t: &Table<R>, key_value: &str, rec: &R) -> Result<()> {
    let (q, params) = sql::update(t.name, t.key, Val::text(key_value), (t.row)(rec), SPEND_COLS);
    let done = sql::query(&q, params).execute(&store.pool()?).await.map_err(|e| t.error(e, rec))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Other(format!("no {} in the database (was it deleted?)", (t.noun)(key_value))));
    }
    Ok(())
}

/// The row whose `col` is `value` (the first one, if `col` is not unique).
pub(crate) async fn get_by<R: Default>(store: &Store, t: &Table<R>, col: &str, value: &str) -> Result<Option<R>> {
    let mut params = Params::new();
    let q = format!("{} WHERE {col} = {}", t.select(), params.push(Val::text(value)));
    let row = sql::query(&q, params).fetch_optional(&store.pool()?).await.map_err(errors::db)?;
    row.as_ref().map(t.from_row).transpose()
}

/// The row with key `key_value`.
pub(crate) async fn get<R: Default>(store: &Store, t: &Table<R>, key_value: &str) -> Result<Option<R>> {
    get_by(store, t, t.key, key_value).await
}

/// Every row, by key.
pub(crate) async fn all<R: Default>(store: &Store, t: &Table<R>) -> Result<Vec<R>> {
    let q = format!("{} ORDER BY {}", t.select(), t.key);
    let rows = sqlx::query(&q).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    rows.iter().map(t.from_row).collect()
}
