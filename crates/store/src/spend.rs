//! Spend: batched increments of key/user/team/end-user spend, budget resets, and the
//! `sluice_spend_logs` rows with the queries the spend endpoints need.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AnyConnection, Arguments};

use crate::codec;
use crate::errors;
use crate::sql::{self, Params, Val};
use crate::{
    end_users, keys, organizations, teams, users, Backend, DailySpend, LogsNotWritten, Result, SpendIncrement,
    SpendLogFilter, SpendLogRecord, Spender, Store, StoreError,
};

const TABLE: &str = "sluice_spend_logs";
/// The status the partial index of failed calls leaves out (schema migration 13).
const FAILED_INDEX_EXCLUDES: &str = "success";
const COLS: [&str; 24] = [
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
    "client_call_id",
    "response_id",
    "cache_hit",
    "cache_key",
];
pub(crate) const SQLITE_MAX_LOG_ROWS: usize = 64;
/// Log rows per INSERT, at most. SQLite: 64 × 24 = 1,536 parameters (its limit is 32,766), a power
/// of two for the chunking in `chunk_rows`; longer statements measured no faster, and the seven
/// lengths kept prepared hold about 3 KiB a row, some 380 KiB per connection. PostgreSQL: 1,000 ×
/// 24 = 24,000 parameters (its limit is 65,535), for fewer round trips.
pub(crate) fn max_log_rows(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => SQLITE_MAX_LOG_ROWS,
        Backend::Postgres => 1_000,
    }
}

/// How many of the `left` rows still to insert the next INSERT takes.
pub(crate) fn chunk_rows(backend: Backend, left: usize) -> usize {
    match backend {
        // Each length is one more statement SQLite keeps prepared (preparing one costs more than
        // twice what running it does): full chunks, then the largest power of two left, so seven
        // lengths serve every batch.
        Backend::Sqlite => 1 << left.min(max_log_rows(backend)).ilog2(),
        // PostgreSQL parses every statement anyway, so the fewer the better.
        Backend::Postgres => left.min(max_log_rows(backend)),
    }
}

/// One bound value of a log row.
pub(crate) enum LogValue<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Real(f64),
    Int(i64),
}

/// A row's values in `COLS` order (the one place that order is written down), with its metadata
/// and tags already as JSON text.
pub(crate) fn log_values<'a>(l: &'a SpendLogRecord, metadata: &'a str, tags: &'a str) -> [LogValue<'a>; COLS.len()] {
    use LogValue::*;
    [
        Text(&l.request_id),
        Text(&l.call_type),
        Text(&l.api_key),
        Real(l.spend),
        Int(l.total_tokens),
        Int(l.prompt_tokens),
        Int(l.completion_tokens),
        Int(l.start_time.timestamp_millis()),
        Int(l.end_time.timestamp_millis()),
        Text(&l.model),
        OptText(l.model_id.as_deref()),
        OptText(l.model_group.as_deref()),
        OptText(l.custom_llm_provider.as_deref()),
        OptText(l.api_base.as_deref()),
        OptText(l.user.as_deref()),
        OptText(l.team_id.as_deref()),
        OptText(l.end_user.as_deref()),
        Text(metadata),
        Text(tags),
        Text(&l.status),
        OptText(l.client_call_id.as_deref()),
        OptText(l.response_id.as_deref()),
        Int(i64::from(l.cache_hit)),
        OptText(l.cache_key.as_deref()),
    ]
}

/// The JSON text of empty metadata and of an empty tag list. Spend-log rows rarely carry either,
/// and these are exactly what serialising the empty values gives.
pub(crate) const NO_METADATA: &str = "{}";
pub(crate) const NO_TAGS: &str = "[]";

/// The INSERT of `rows` log rows (SQLite: `?` placeholders; PostgreSQL: `$n`). The text for the
/// most rows is built once per backend; a shorter one is its first rows' placeholders, which are
/// the same whatever the length.
pub(crate) fn log_insert(backend: Backend, rows: usize) -> Cow<'static, str> {
    // A request id already logged (a batch retried after a lost commit reply) is skipped rather
    // than failing the whole batch. Request ids are sluice's own (never a client's), so nothing
    // else can collide.
    //
    // PostgreSQL returns the ids it inserted, so that a retried batch whose first commit did
    // land (its reply lost) is not counted twice in the daily aggregates. A SQLite batch that
    // failed was rolled back: nothing of it is ever there already.
    let on_conflict = match backend {
        Backend::Sqlite => " ON CONFLICT (request_id) DO NOTHING",
        Backend::Postgres => " ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
    };
    /// The statement for `max_log_rows` rows, and where each row's `(…)` ends in it.
    type Full = (String, Vec<usize>);
    static SQLITE: OnceLock<Full> = OnceLock::new();
    static POSTGRES: OnceLock<Full> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    let (sql, row_ends) = cell.get_or_init(|| {
        // SQLite: a multi-row INSERT whose constraints abort the statement keeps a statement
        // journal, a copy of every page it changes, so that the rows before a failure can be
        // undone without ending the transaction. Nothing here needs that: a failed batch is
        // rolled back whole (`log_writer`, and sqlx's transaction), so a constraint failure may
        // as well end the transaction itself, and no journal is kept.
        let verb = match backend {
            Backend::Sqlite => "INSERT OR ROLLBACK",
            Backend::Postgres => "INSERT",
        };
        let mut sql = format!("{verb} INTO {TABLE} ({}) VALUES ", COLS.join(", "));
        let mut row_ends = Vec::with_capacity(max_log_rows(backend));
        for row in 0..max_log_rows(backend) {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for col in 0..COLS.len() {
                if col > 0 {
                    sql.push(',');
                }
                // SQLite looks numbered parameters up by name, a scan per parameter that makes
                // a long insert quadratic; plain `?` are bound in order.
                match backend {
                    Backend::Sqlite => sql.push('?'),
                    Backend::Postgres => write!(sql, "${}", row * COLS.len() + col + 1).unwrap(),
                }
            }
            sql.push(')');
            row_ends.push(sql.len());
        }
        sql.push_str(on_conflict);
        (sql, row_ends)
    });
    if rows == row_ends.len() {
        Cow::Borrowed(sql)
    } else {
        Cow::Owned([&sql[..row_ends[rows - 1]], on_conflict].concat())
    }
}

/// Inserts `logs` (at most `max_log_rows`) in one statement through sqlx, binding the records'
/// own strings.
/// On PostgreSQL, the ids of the rows that were already there (skipped).
async fn insert_chunk(conn: &mut AnyConnection, backend: Backend, logs: &[SpendLogRecord]) -> Result<HashSet<String>> {
    let json: Vec<[Cow<str>; 2]> = logs
        .iter()
        .map(|l| {
            let metadata =
                if l.metadata.is_empty() { NO_METADATA.into() } else { codec::json_text(&l.metadata).into() };
            let tags =
                if l.request_tags.is_empty() { NO_TAGS.into() } else { codec::json_text(&l.request_tags).into() };
            [metadata, tags]
        })
        .collect();
    let sql = log_insert(backend, logs.len());
    let mut args = AnyArguments::default();
    args.reserve(logs.len() * COLS.len(), 0);
    // SQLite keeps the statement prepared: there are only a few lengths (see `chunk_rows`), and
    // SQLite has no bind types to go stale. PostgreSQL must not cache through `Any` (see
    // `sql::query`).
    let mut q = sqlx::query_with(&sql, args).persistent(backend == Backend::Sqlite);
    for (l, [metadata, tags]) in logs.iter().zip(&json) {
        for v in log_values(l, metadata, tags) {
            q = match v {
                LogValue::Text(s) => q.bind(s),
                LogValue::OptText(s) => q.bind(s),
                LogValue::Real(f) => q.bind(f),
                LogValue::Int(i) => q.bind(i),
            };
        }
    }
    if backend == Backend::Sqlite {
        q.execute(conn).await.map_err(errors::db)?;
        return Ok(HashSet::new());
    }
    let inserted = q.fetch_all(conn).await.map_err(errors::db)?;
    if inserted.len() == logs.len() {
        return Ok(HashSet::new());
    }
    let inserted: HashSet<String> = inserted.iter().map(|r| codec::text(r, "request_id")).collect::<Result<_>>()?;
    Ok(logs.iter().filter(|l| !inserted.contains(&l.request_id)).map(|l| l.request_id.clone()).collect())
}

fn log_from_row(r: &AnyRow) -> Result<SpendLogRecord> {
    Ok(SpendLogRecord {
        request_id: codec::text(r, "request_id")?,
        client_call_id: codec::opt_text(r, "client_call_id")?,
        call_type: codec::text(r, "call_type")?.into(),
        api_key: codec::text(r, "api_key")?.into(),
        spend: codec::real(r, "spend")?,
        total_tokens: codec::int(r, "total_tokens")?,
        prompt_tokens: codec::int(r, "prompt_tokens")?,
        completion_tokens: codec::int(r, "completion_tokens")?,
        start_time: codec::time(r, "start_time")?,
        end_time: codec::time(r, "end_time")?,
        model: codec::text(r, "model")?.into(),
        model_id: codec::opt_text(r, "model_id")?.map(Into::into),
        model_group: codec::opt_text(r, "model_group")?.map(Into::into),
        custom_llm_provider: codec::opt_text(r, "custom_llm_provider")?.map(Into::into),
        api_base: codec::opt_text(r, "api_base")?.map(Into::into),
        user: codec::opt_text(r, "user_id")?,
        team_id: codec::opt_text(r, "team_id")?,
        end_user: codec::opt_text(r, "end_user")?,
        metadata: codec::map(r, "metadata")?,
        request_tags: codec::list(r, "request_tags")?,
        status: codec::text(r, "status")?.into(),
        response_id: codec::opt_text(r, "response_id")?,
        cache_hit: codec::int(r, "cache_hit")? != 0,
        cache_key: codec::opt_text(r, "cache_key")?,
        ..Default::default()
    })
}

/// The table and key column holding a spender's row.
fn table_of(s: &Spender) -> (&'static str, &'static str, &str) {
    match s {
        Spender::Key(id) => (keys::TABLE.name, keys::TABLE.key, id),
        Spender::User(id) => (users::TABLE.name, users::TABLE.key, id),
        Spender::Team(id) => (teams::TABLE.name, teams::TABLE.key, id),
        Spender::EndUser(id) => (end_users::TABLE.name, end_users::TABLE.key, id),
        Spender::Organization(id) => (organizations::TABLE.name, organizations::TABLE.key, id),
        // Keyed by (user_id, team_id): the callers write it with both columns.
        Spender::TeamMember(user_id, _) => (crate::team_memberships::NAME, "user_id", user_id),
    }
}

/// `amount` and per-model amounts, summed per spender.
type Merged = BTreeMap<Spender, (f64, BTreeMap<String, f64>)>;

/// NaN or infinite spend would poison the totals for good (PostgreSQL stores NaN; SQLite turns
/// it into NULL, failing every later batch), so such a batch is refused whole, before any write.
fn check_increments(increments: &[SpendIncrement]) -> Result<()> {
    for inc in increments {
        if !inc.amount.is_finite() || inc.per_model.iter().any(|(_, v)| !v.is_finite()) {
            return Err(StoreError::Other(format!(
                "spend batch not written: increment for {:?} is not a finite number ({}); this is a bug in the \
                 cost calculation",
                inc.spender, inc.amount
            )));
        }
    }
    Ok(())
}

fn check_logs(logs: &[SpendLogRecord]) -> Result<()> {
    if let Some(l) = logs.iter().find(|l| !l.spend.is_finite()) {
        return Err(StoreError::Other(format!(
            "spend logs not written: spend of request {} is not a finite number ({}); this is a bug in the cost \
             calculation",
            l.request_id, l.spend
        )));
    }
    Ok(())
}

pub(crate) async fn apply_increments(store: &Store, increments: &[SpendIncrement]) -> Result<()> {
    check_increments(increments)?;
    if increments.is_empty() {
        return Ok(());
    }
    // Summed per spender and visited in `Spender` order: every replica locks rows in the same
    // order, so two concurrent batches cannot deadlock.
    let mut merged: Merged = BTreeMap::new();
    for inc in increments {
        let entry = merged.entry(inc.spender.clone()).or_default();
        entry.0 += inc.amount;
        for (model, usd) in &inc.per_model {
            *entry.1.entry(model.clone()).or_default() += usd;
        }
    }

    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    for (spender, (amount, per_model)) in &merged {
        let (table, key, id) = table_of(spender);
        if let Spender::TeamMember(user_id, team_id) = spender {
            // A membership row appears with the member's first spend, as in LiteLLM.
            sqlx::query(&format!(
                "INSERT INTO {table} (user_id, team_id, spend) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, team_id) DO UPDATE SET spend = {table}.spend + excluded.spend"
            ))
            .bind(user_id.to_owned())
            .bind(team_id.to_owned())
            .bind(*amount)
            .execute(&mut *tx)
            .await
            .map_err(errors::db)?;
            continue;
        }
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
    tx.commit().await.map_err(errors::db)
}

pub(crate) async fn insert_logs(
    store: &Store,
    mut logs: Vec<SpendLogRecord>,
    spread: std::time::Duration,
) -> std::result::Result<Vec<SpendLogRecord>, LogsNotWritten> {
    if let Err(error) = check_logs(&logs) {
        return Err(LogsNotWritten { error, logs });
    }
    if logs.is_empty() {
        return Ok(logs);
    }
    // The thread's connection would write into a deleted file as readily as into the real one.
    if let Err(error) = store.check_file() {
        return Err(LogsNotWritten { error, logs });
    }
    if let Some(thread) = &store.log_writer {
        return thread.insert(logs, spread).await;
    }
    match insert_logs_sqlx(store, &logs).await {
        Ok(()) => {
            logs.clear();
            Ok(logs)
        }
        Err(error) => Err(LogsNotWritten { error, logs }),
    }
}

/// PostgreSQL and `sqlite::memory:` (which no second connection can reach): one transaction on
/// the pool.
async fn insert_logs_sqlx(store: &Store, logs: &[SpendLogRecord]) -> Result<()> {
    let mut tx = crate::begin_write(&store.pool()?, store.backend).await?;
    let mut rest = logs;
    let mut skipped = HashSet::new();
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(chunk_rows(store.backend, rest.len()));
        skipped.extend(insert_chunk(&mut tx, store.backend, chunk).await?);
        rest = after;
    }
    // The day's aggregates in the same transaction, of the rows written now: a batch counts
    // in both or in neither, and once.
    let fresh: Vec<SpendLogRecord>;
    let counted = match skipped.is_empty() {
        true => logs,
        false => {
            fresh = logs.iter().filter(|l| !skipped.contains(&l.request_id)).cloned().collect();
            &fresh[..]
        }
    };
    crate::daily::upsert_sqlx(&mut tx, &crate::daily::Batch::of(counted)).await?;
    tx.commit().await.map_err(errors::db)
}

pub(crate) async fn reset(store: &Store, spender: &Spender, next: Option<DateTime<Utc>>) -> Result<()> {
    let (table, key, id) = table_of(spender);
    let mut params = Params::new();
    let q = match spender {
        // End users have no budget window of their own.
        Spender::EndUser(_) => format!("UPDATE {table} SET spend = 0 WHERE {key} = {}", params.push(Val::text(id))),
        // An organization's budget window is its budget row's: the next reset is written there.
        Spender::Organization(_) => {
            let org = params.push(Val::text(id));
            let zero = format!("UPDATE {table} SET spend = 0, model_spend = '{{}}' WHERE {key} = {org}");
            sql::query(&zero, params).execute(&store.pool()?).await.map_err(errors::db)?;
            let mut params = Params::new();
            let next = params.push(Val::opt_time(next));
            let org = params.push(Val::text(id));
            let q = format!(
                "UPDATE {} SET budget_reset_at = {next} WHERE budget_id = (SELECT budget_id FROM {table} WHERE {key} = {org})",
                crate::budgets::TABLE.name
            );
            sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
            return Ok(());
        }
        Spender::TeamMember(user_id, team_id) => format!(
            "UPDATE {table} SET spend = 0 WHERE user_id = {} AND team_id = {}",
            params.push(Val::text(user_id)),
            params.push(Val::text(team_id))
        ),
        _ => {
            let next = params.push(Val::opt_time(next));
            let id = params.push(Val::text(id));
            format!("UPDATE {table} SET spend = 0, model_spend = '{{}}', budget_reset_at = {next} WHERE {key} = {id}")
        }
    };
    sql::query(&q, params).execute(&store.pool()?).await.map_err(errors::db)?;
    Ok(())
}

/// ` WHERE …` for a filter (the time range is inclusive at both ends).
fn where_clause(f: &SpendLogFilter, params: &mut Params) -> String {
    let mut wheres = Vec::new();
    for (col, v) in [("api_key", &f.api_key), ("user_id", &f.user_id), ("team_id", &f.team_id)] {
        if let Some(v) = v {
            wheres.push(format!("{col} = {}", params.push(Val::text(v))));
        }
    }
    // The ids a client knows: the `x-litellm-call-id` it got back (sluice's request id, or the
    // call id the client chose itself, which may name several rows) and the answer's own `id`
    // (the provider's, which LiteLLM logs as `request_id`). Each has an index.
    if let Some(v) = &f.request_id {
        let id = params.push(Val::text(v));
        let client = params.push(Val::text(v));
        let response = params.push(Val::text(v));
        wheres.push(format!("(request_id = {id} OR client_call_id = {client} OR response_id = {response})"));
    }
    if let Some(v) = &f.model {
        let group = params.push(Val::text(v));
        let model = params.push(Val::text(v));
        wheres.push(format!("(model_group = {group} OR model = {model})"));
    }
    if let Some(v) = &f.status {
        wheres.push(format!("status = {}", params.push(Val::text(v))));
        // Implied by the term above; written out so that both databases see the partial
        // index of failed calls (migration 13) applies. SQLite matches a partial index's
        // predicate only by its text, never through a bound value.
        if v != "success" {
            wheres.push(format!("status <> '{}'", FAILED_INDEX_EXCLUDES));
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
        sql::select(TABLE, &COLS),
        where_clause(f, &mut params)
    );
    if let Some(limit) = f.limit {
        q.push_str(&format!(" LIMIT {}", params.push(Val::int(Some(limit.max(0))))));
        if let Some(offset) = f.offset {
            q.push_str(&format!(" OFFSET {}", params.push(Val::int(Some(offset.max(0))))));
        }
    }
    let rows = sql::query(&q, params).fetch_all(&store.pool()?).await.map_err(errors::db)?;
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
    let rows = sql::query(&q, params).fetch_all(&store.pool()?).await.map_err(errors::db)?;
    let mut days = crate::records::SpendDays::default();
    for r in &rows {
        let date = codec::time(r, "start_time")?.format("%Y-%m-%d").to_string();
        let (model, user) = (codec::text(r, "model")?, codec::opt_text(r, "user_id")?);
        days.add(&date, &model, user.as_deref(), &codec::text(r, "api_key")?, codec::real(r, "spend")?);
    }
    Ok(days.into_days())
}

pub(crate) async fn global(store: &Store, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<f64> {
    let mut params = Params::new();
    let f = SpendLogFilter { start, end, ..Default::default() };
    let q = format!("SELECT SUM(spend) AS total FROM {TABLE}{}", where_clause(&f, &mut params));
    let row = sql::query(&q, params).fetch_one(&store.pool()?).await.map_err(errors::db)?;
    codec::real(&row, "total")
}
