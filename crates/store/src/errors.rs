//! How sqlx errors become [`StoreError`]s: lost connections are `Unavailable` (retry later),
//! unique violations are `Conflict` with a message about the record, the rest `Other`.

use crate::StoreError;

/// Maps an error from a query; `conflict` words the message for a unique violation (it gets the
/// database's own message, which names the column or index that clashed).
pub(crate) fn map(e: sqlx::Error, conflict: impl FnOnce(&str) -> String) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => {
            StoreError::Unavailable(format!("{e}; check that the database is running and reachable"))
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict(db.message())),
        sqlx::Error::Database(db) if is_connection_class(db.code().as_deref()) => {
            StoreError::Unavailable(format!("{e}; the database is shutting down or refusing connections"))
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Maps an error from a query that has no uniqueness rule worth explaining.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    map(e, |msg| format!("already exists: {msg}"))
}

/// PostgreSQL SQLSTATE classes 08 (connection exception), 57P01–57P03 (shutdown, cannot connect
/// now) and 53300 (too many connections).
fn is_connection_class(code: Option<&str>) -> bool {
    matches!(code, Some(c) if c.starts_with("08") || c.starts_with("57P") || c == "53300")
}
