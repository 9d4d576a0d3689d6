//! Spend: batched increments of key/user/team/end-user spend, budget resets, and the
//! `sluice_spend_logs` rows with the queries the spend endpoints need.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use crate::codec;
use crate::errors;
use crate::sql::{self, Params, Val};
use crate::{
    end_users, keys, teams, users, DailySpend, Result, SpendBatch, SpendLogFilter, SpendLogRecord, Spender, Store,
    StoreError,
};

const TABLE: &str = "sluice_spend_logs";
const COLS: &[&str] = &[
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "start_time",
    "end_time",
    "model",
    "model_id",
    "model_group",
    "custom_llm_provider",
    "api_base",
    "user_id",
    "team_id",
    "end_user",
    "metadata",
    "request_tags",
    "status",
];
/// Log rows per INSERT statement: 50 × 20 parameters stays far below both backends' limits.
const LOG_CHUNK: usize = 50;

fn log_row(l: &SpendLogRecord) -> Vec<Val> {
    vec![
        Val::text(&l.request_id),
        Val::text(&l.call_type),
        Val::text(&l.api_key),
        Val::real(l.spend),
        Val::int(Some(l.total_tokens)),
        Val::int(Some(l.prompt_tokens)),
        Val::int(Some(l.completion_tokens)),
        Val::time(l.start_time),
        Val::time(l.end_time),
        Val::text(&l.model),
        Val::opt_text(&l.model_id),
        Val::opt_text(&l.model_group),
        Val::opt_text(&l.custom_llm_provider),
        Val::opt_text(&l.api_base),
        Val::opt_text(&l.user),
        Val::opt_text(&l.team_id),
        Val::opt_text(&l.end_user),
        Val::json(&l.metadata),
        Val::json(&l.request_tags),
        Val::text(&l.status),
    ]
}

fn log_from_row(r: &AnyRow) -> Result<SpendLogRecord> {
    Ok(SpendLogRecord {
        request_id: codec::text(r, "request_id")?,
        call_type: codec::text(r, "call_type")?,
        api_key: codec::text(r, "api_key")?,
        spend: codec::real(r, "spend")?,
        total_tokens: codec::int(r, "total_tokens")?,
        prompt_tokens: codec::int(r, "prompt_tokens")?,
        completion_tokens: codec::int(r, "completion_tokens")?,
        start_time: codec::time(r, "start_time")?,
        end_time: codec::time(r, "end_time")?,
        model: codec::text(r, "model")?,
        model_id: codec::opt_text(r, "model_id")?,
        model_group: codec::opt_text(r, "model_group")?,
        custom_llm_provider: codec::opt_text(r, "custom_llm_provider")?,
        api_base: codec::opt_text(r, "api_base")?,
        user: codec::opt_text(r, "user_id")?,
        team_id: codec::opt_text(r, "team_id")?,
        end_user: codec::opt_text(r, "end_user")?,
        metadata: codec::map(r, "metadata")?,
        request_tags: codec::list(r, "request_tags")?,
        status: codec::text(r, "status")?,
    })
}

/// The table and key column holding a spender's row.
fn table_of(s: &Spender) -> (&'static str, &'static str, &str) {
    match s {
        Spender::Key(id) => (keys::TABLE.name, keys::TABLE.key, id),
        Spender::User(id) => (users::TABLE.name, users::TABLE.key, id),
        Spender::Team(id) => (teams::TABLE.name, teams::TABLE.key, id),
        Spender::EndUser(id) => (end_users::TABLE.name, end_users::TABLE.key, id),
    }
}

/// `amount` and per-model amounts, summed per spender.
type Merged = BTreeMap<Spender, (f64, BTreeMap<String, f64>)>;

/// NaN or infinite spend would poison the totals for good (PostgreSQL stores NaN; SQLite turns
/// it into NULL, failing every later batch), so such a batch is refused whole, before any write.
fn check_finite(batch: &SpendBatch) -> Result<()> {
    for inc in &batch.increments {
        if !inc.amount.is_finite() || inc.per_model.iter().any(|(_, v)| !v.is_finite()) {
            return Err(StoreError::Other(format!(
                "spend batch not written: increment for {:?} is not a finite number ({}); this is a bug in the \
                 cost calculation",
                inc.spender, inc.amount
            )));
        }
    }
    if let Some(l) = batch.logs.iter().find(|l| !l.spend.is_finite()) {
        return Err(StoreError::Other(format!(
            "spend batch not written: spend of request {} is not a finite number ({}); this is a bug in the cost \
             calculation",
            l.request_id, l.spend
        )));
    }
    Ok(())
}

pub(crate) async fn apply(store: &Store, batch: &SpendBatch) -> Result<()> {
    check_finite(batch)?;
    // Summed per spender and visited in `Spender` order: every replica locks rows in the same
    // order, so two concurrent batches cannot deadlock.
    let mut merged: Merged = BTreeMap::new();
    for inc in &batch.increments {
        let entry = merged.entry(inc.spender.clone()).or_default();
        entry.0 += inc.amount;
        for (model, usd) in &inc.per_model {
            *entry.1.entry(model.clone()).or_default() += usd;
        }
    }

    let mut tx = crate::begin_write(&store.pool, store.backend).await?;
    for (spender, (amount, per_model)) in &merged {
        let (table, key, id) = table_of(spender);
        if let Spender::EndUser(_) = spender {
            sqlx::query(&format!(
                "INSERT INTO {table} (user_id, spend) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET spend = {table}.spend + excluded.spend"
            ))
            .bind(id.to_owned())
            .bind(*amount)
            .execute(&mut *tx)
            .await
            .map_err(errors::db)?;
            continue;
        }
        // The increment happens in the database, so nothing written by another replica is lost.
        // Being the first statement on the row, it also takes the row lock (PostgreSQL) or the
        // write lock (SQLite) before `model_spend` is read below.
        let done = sqlx::query(&format!("UPDATE {table} SET spend = spend + $1 WHERE {key} = $2"))
            .bind(*amount)
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(errors::db)?;
        if done.rows_affected() == 0 || per_model.is_empty() {
            // A spender deleted since the spend was counted: nothing to add to.
            continue;
        }
        // `model_spend` is JSON text, so the merge is a read-modify-write, safe under the lock
        // the UPDATE above holds until commit.
        let row = sqlx::query(&format!("SELECT model_spend FROM {table} WHERE {key} = $1"))
            .bind(id.to_owned())
            .fetch_one(&mut *tx)
            .await
            .map_err(errors::db)?;
        let mut spent: Map<String, Value> = codec::map(&row, "model_spend")?;
        for (model, usd) in per_model {
            let before = spent.get(model).and_then(Value::as_f64).unwrap_or(0.0);
            spent.insert(model.clone(), Value::from(before + usd));
        }
        sqlx::query(&format!("UPDATE {table} SET model_spend = $1 WHERE {key} = $2"))
            .bind(serde_json::to_string(&spent).unwrap_or_else(|_| "{}".to_owned()))
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(errors::db)?;
    }

    for chunk in batch.logs.chunks(LOG_CHUNK) {
        let mut params = Params::new();
        let tuples: Vec<String> = chunk
            .iter()
            .map(|l| {
                let marks: Vec<String> = log_row(l)
                    .into_iter()
                    .map(|v| {
                        let mark = params.push(v);
                        // SQLite looks numbered parameters up by name, a scan per parameter that
                        // makes a 1,000-parameter insert quadratic; plain `?` are bound in order
                        // (which is the order they are pushed here).
                        if store.backend == crate::Backend::Sqlite {
                            "?".to_owned()
                        } else {
                            mark
                        }
                    })
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        // A request id already logged (a batch retried after a lost commit reply) is skipped
        // rather than failing the whole batch.
        let q = format!(
            "INSERT INTO {TABLE} ({}) VALUES {} ON CONFLICT (request_id) DO NOTHING",
            COLS.join(", "),
            tuples.join(", ")
        );
        // SQLite keeps a full chunk's statement prepared (its text never changes, and SQLite has
        // no bind types to go stale); not the shorter last chunks, whose every length would be
        // one more cached statement of up to a thousand parameters. PostgreSQL must not cache
        // through `Any` at all (see `sql::query`).
        let persistent = store.backend == crate::Backend::Sqlite && chunk.len() == LOG_CHUNK;
        sql::query(&q, params).persistent(persistent).execute(&mut *tx).await.map_err(errors::db)?;
    }
    tx.commit().await.map_err(errors::db)
}

pub(crate) async fn reset(store: &Store, spender: &Spender, next: Option<DateTime<Utc>>) -> Result<()> {
    let (table, key, id) = table_of(spender);
    let mut params = Params::new();
    let q = match spender {
        // End users have no budget window of their own.
        Spender::EndUser(_) => format!("UPDATE {table} SET spend = 0 WHERE {key} = {}", params.push(Val::text(id))),
        _ => {
            let next = params.push(Val::opt_time(next));
            let id = params.push(Val::text(id));
            format!("UPDATE {table} SET spend = 0, model_spend = '{{}}', budget_reset_at = {next} WHERE {key} = {id}")
        }
    };
    sql::query(&q, params).execute(&store.pool).await.map_err(errors::db)?;
    Ok(())
}

/// ` WHERE …` for a filter (the time range is inclusive at both ends).
fn where_clause(f: &SpendLogFilter, params: &mut Params) -> String {
    let mut wheres = Vec::new();
    for (col, v) in
        [("api_key", &f.api_key), ("user_id", &f.user_id), ("team_id", &f.team_id), ("request_id", &f.request_id)]
    {
        if let Some(v) = v {
            wheres.push(format!("{col} = {}", params.push(Val::text(v))));
        }
    }
    if let Some(start) = f.start {
        wheres.push(format!("start_time >= {}", params.push(Val::time(start))));
    }
    if let Some(end) = f.end {
        wheres.push(format!("start_time <= {}", params.push(Val::time(end))));
    }
    if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    }
}

pub(crate) async fn logs(store: &Store, f: &SpendLogFilter) -> Result<Vec<SpendLogRecord>> {
    let mut params = Params::new();
    let mut q = format!(
        "{}{} ORDER BY start_time DESC, request_id DESC",
        sql::select(TABLE, COLS),
        where_clause(f, &mut params)
    );
    if let Some(limit) = f.limit {
        q.push_str(&format!(" LIMIT {}", params.push(Val::int(Some(limit.max(0))))));
    }
    let rows = sql::query(&q, params).fetch_all(&store.pool).await.map_err(errors::db)?;
    rows.iter().map(log_from_row).collect()
}

/// Grouped in Rust: portable SQL has no common way to truncate a millisecond timestamp to a UTC
/// date. `limit` does not apply (it would cut a day short).
pub(crate) async fn by_day(store: &Store, f: &SpendLogFilter) -> Result<Vec<DailySpend>> {
    let mut params = Params::new();
    let q = format!(
        "SELECT start_time, spend, model, user_id, api_key FROM {TABLE}{} ORDER BY start_time",
        where_clause(f, &mut params)
    );
    let rows = sql::query(&q, params).fetch_all(&store.pool).await.map_err(errors::db)?;

    #[derive(Default)]
    struct Day {
        spend: f64,
        models: BTreeMap<String, f64>,
        users: BTreeMap<String, f64>,
        api_keys: BTreeMap<String, f64>,
    }
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    for r in &rows {
        let date = codec::time(r, "start_time")?.format("%Y-%m-%d").to_string();
        let spend = codec::real(r, "spend")?;
        let day = days.entry(date).or_default();
        day.spend += spend;
        *day.models.entry(codec::text(r, "model")?).or_default() += spend;
        if let Some(user) = codec::opt_text(r, "user_id")? {
            *day.users.entry(user).or_default() += spend;
        }
        *day.api_keys.entry(codec::text(r, "api_key")?).or_default() += spend;
    }
    let to_map = |m: BTreeMap<String, f64>| m.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
    Ok(days
        .into_iter()
        .map(|(date, d)| DailySpend {
            date,
            spend: d.spend,
            models: to_map(d.models),
            users: to_map(d.users),
            api_keys: to_map(d.api_keys),
        })
        .collect())
}

pub(crate) async fn global(store: &Store, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<f64> {
    let mut params = Params::new();
    let f = SpendLogFilter { start, end, ..Default::default() };
    let q = format!("SELECT SUM(spend) AS total FROM {TABLE}{}", where_clause(&f, &mut params));
    let row = sql::query(&q, params).fetch_one(&store.pool).await.map_err(errors::db)?;
    codec::real(&row, "total")
}
