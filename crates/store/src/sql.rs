//! Building parameterised SQL for both backends: values travel only as bound parameters
//! (`$1`, `$2`, …, which PostgreSQL and SQLite both accept), and only this crate's own constant
//! table and column names are ever formatted into SQL text.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// One bound value, in the few shapes the `Any` driver carries. A typed `None` becomes a typed
/// NULL on PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
}

/// The values of a query, in placeholder order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<Val>);

impl Params {
    pub(crate) fn new() -> Params {
        Params(Vec::new())
    }

    /// Adds a value and returns the placeholder to write where it goes.
    pub(crate) fn push(&mut self, v: Val) -> String {
        self.0.push(v);
        format!("${}", self.0.len())
    }
}

/// `sqlx::query(sql)` with `params` bound in order.
///
/// Not kept as a prepared statement: through the `Any` driver a NULL is sent with a type taken
/// from whatever was bound first, so a statement prepared with a NULL `max_budget` would refuse a
/// number there later (PostgreSQL: "incorrect binary data format in bind parameter").
pub(crate) fn query(sql: &str, params: Params) -> Query<'_, Any, AnyArguments<'_>> {
    bound(sql, params)
}

/// [`query`] for PostgreSQL's own driver (the typed pool of bulk reads).
pub(crate) fn query_pg(sql: &str, params: Params) -> Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    bound(sql, params)
}

fn bound<'q, DB: sqlx::Database + sqlx::database::HasStatementCache>(
    sql: &'q str,
    params: Params,
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::query::<DB>(sql).persistent(false);
    for v in params.0 {
        q = match v {
            Val::Text(s) => q.bind(s),
            Val::Int(i) => q.bind(i),
            Val::Real(f) => q.bind(f),
        };
    }
    q
}

/// `SELECT a, b, … FROM table`.
pub(crate) fn select(table: &str, cols: &[&str]) -> String {
    format!("SELECT {} FROM {table}", cols.join(", "))
}

/// What an insert does when the primary key (or another unique column) is already taken.
pub(crate) enum OnConflict<'a> {
    /// Fail (mapped to `StoreError::Conflict`).
    Fail,
    /// Overwrite every column except the key and those in `keep`.
    Update { key: &'a str, keep: &'a [&'a str] },
}

/// `INSERT INTO table (…) VALUES (…)` for the given columns and values.
pub(crate) fn insert(table: &str, row: Vec<(&'static str, Val)>, on_conflict: OnConflict) -> (String, Params) {
    let mut params = Params::new();
    let mut names = Vec::with_capacity(row.len());
    let mut marks = Vec::with_capacity(row.len());
    for (name, v) in row {
        names.push(name);
        marks.push(params.push(v));
    }
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), marks.join(", "));
    if let OnConflict::Update { key, keep } = on_conflict {
        let sets: Vec<String> =
            names.iter().filter(|n| **n != key && !keep.contains(n)).map(|n| format!("{n} = excluded.{n}")).collect();
        sql.push_str(&format!(" ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", ")));
    }
    (sql, params)
}

/// `UPDATE table SET … WHERE key = key_value`, writing every column of `row` except those in
/// `skip`. The key column itself is written from `row` too, which is how a rekey changes it.
pub(crate) fn update(
    table: &str,
    key: &str,
    key_value: Val,
    row: Vec<(&'static str, Val)>,
    skip: &[&str],
) -> (String, Params) {
    let mut params = Params::new();
    let mut sets = Vec::with_capacity(row.len());
    for (name, v) in row {
        if skip.contains(&name) {
            continue;
        }
        sets.push(format!("{name} = {}", params.push(v)));
    }
    let key_mark = params.push(key_value);
    (format!("UPDATE {table} SET {} WHERE {key} = {key_mark}", sets.join(", ")), params)
}
