//! Spend reports: `/spend/logs`, `/global/spend`, `/spend/keys` and `/spend/users` (LiteLLM's
//! `spend_management_endpoints.py`). Totals of keys and users come from this replica's live
//! ledgers where the row is in memory, so they include spend not yet written. An internal user
//! (or internal user viewer) sees only its own spend on each of them; a key of no user reads its
//! own key's spend logs.

use super::roles::{authorize, forbidden, Caller};
use super::{db, json, key_json, query_date, query_str, store, token_of, user_json, Need, Query, Result};
use crate::app::App;
use axum::extract::State;
use axum::response::Response;
use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use http::HeaderMap;
use serde_json::Value;
use sluice_store::SpendLogFilter;
use std::sync::Arc;

fn day_start(d: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
}

/// The last instant of `d` (the store's range is inclusive at both ends).
fn day_end(d: NaiveDate) -> chrono::DateTime<Utc> {
    day_start(d) + Duration::days(1) - Duration::microseconds(1)
}

/// Raw rows per `/spend/logs` page, by default and at most: LiteLLM returns every row, which
/// with a million rows is a response no client can use.
const LOG_PAGE: i64 = 1_000;
const MAX_LOG_PAGE: i64 = 10_000;

/// `GET /spend/logs?api_key=&user_id=&team_id=&model=&status=&request_id=&start_date=&end_date=&summarize=&page=&page_size=`.
///
/// As in LiteLLM, the daily summary (`[{"startTime", "spend", "models", "users", "api_keys"}]`)
/// is given when both dates are set and `summarize` is not false; otherwise the raw rows,
/// newest first, `page_size` (1,000 by default) of them from page `page`. `request_id` is the
/// `x-litellm-call-id` or the answer's own `id` (`chatcmpl-…`).
pub async fn logs(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/spend/logs").await?;
    let store = store(&app, Need::Other)?;
    // A non-admin's rows are its own user's (its own key's without a user): the activity
    // routes' rule, so the logs and the charts of one key agree.
    let registry = &app.access.registry;
    let mut user_id = query_str(&q, "user_id").map(str::to_string);
    let mut api_key = query_str(&q, "api_key").map(token_of);
    super::reports::own_rows(&caller, registry, &mut user_id, &mut api_key)?;
    let team_id = query_str(&q, "team_id").map(str::to_string);
    super::reports::own_team(&caller, registry, team_id.as_deref())?;
    let start = query_date(&q, "start_date")?;
    let end = query_date(&q, "end_date")?;
    let summarize = query_str(&q, "summarize").and_then(super::parse_bool).unwrap_or(true);
    let filter = SpendLogFilter {
        api_key,
        user_id,
        team_id,
        request_id: query_str(&q, "request_id").map(str::to_string),
        model: query_str(&q, "model").map(str::to_string),
        status: query_str(&q, "status").map(str::to_string),
        start: start.map(day_start),
        end: end.map(day_end),
        ..Default::default()
    };
    let page = super::query_count(&q, "page", 1, i64::from(u32::MAX))?;
    let page_size = super::query_count(&q, "page_size", LOG_PAGE, MAX_LOG_PAGE)?;
    if let (true, Some(start), Some(end)) = (summarize, start, end) {
        // Whole days: read from the daily aggregates (a few rows a day) unless a filter they
        // do not hold (a request id, a team, a model, a status) narrows it to the rows themselves.
        let by_rows = filter.request_id.is_some()
            || filter.team_id.is_some()
            || filter.model.is_some()
            || filter.status.is_some();
        let (from, to) = (start.format("%Y-%m-%d").to_string(), end.format("%Y-%m-%d").to_string());
        if by_rows {
            return Ok(super::summary::response(&db(store.spend_by_day(&filter).await)?));
        }
        let daily = sluice_store::DailyFilter {
            start_date: Some(from.clone()),
            end_date: Some(to.clone()),
            api_key: filter.api_key.clone(),
            user_id: filter.user_id.clone(),
            ..Default::default()
        };
        if daily.api_key.is_some() || daily.user_id.is_some() {
            return Ok(super::summary::response(&db(store.daily_summary(&daily).await)?));
        }
        // The whole proxy's: finished days come from the answers kept.
        let versions = db(store.daily_versions(&from, &to).await)?;
        let read = move |first: String, last: String| async move {
            let range =
                sluice_store::DailyFilter { start_date: Some(first), end_date: Some(last), ..Default::default() };
            store.daily_summary(&range).await
        };
        let body = db(app.spend_days.answer(&versions, read).await)?;
        return Ok(super::json_bytes::response(body));
    }
    let filter =
        SpendLogFilter { limit: Some(page_size), offset: Some((page - 1).saturating_mul(page_size)), ..filter };
    Ok(json(db(store.spend_logs(&filter).await)?))
}

/// The user a non-admin's spend query is about: always its own (`asked`, when given, must be
/// it); an admin's is `asked`.
fn own_user(caller: &Caller, asked: Option<&str>, what: &str) -> Result<Option<String>> {
    if caller.all() {
        return Ok(asked.map(str::to_string));
    }
    let me = caller.user_id().unwrap_or_default();
    match asked {
        Some(a) if a != me => Err(forbidden(format!(
            "You may only see your own {what}: user_id={a} is not yours (your user_id={me}). Ask a proxy admin for other users' spend."
        ))),
        _ => Ok(Some(me.to_string())),
    }
}

/// `GET /global/spend`: `{"spend": <last 30 days>, "max_budget": 0.0}` (LiteLLM sums its
/// `MonthlyGlobalSpend` view, the spend logs of the last 30 days; it has no proxy-wide budget
/// unless `litellm.max_budget` is set, which sluice does not read). An internal user gets its
/// own spend and budget in the same shape.
pub async fn global(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    let caller = authorize(&app, &headers, "/global/spend").await?;
    let store = store(&app, Need::Other)?;
    if !caller.all() {
        let me = own_user(&caller, None, "spend")?.unwrap_or_default();
        let registry = &app.access.registry;
        let (spend, max_budget) = match db(store.get_user(&me).await)? {
            Some(u) => (super::user_spend(registry, &u), u.max_budget.unwrap_or(0.0)),
            None => (0.0, 0.0),
        };
        return Ok(json(serde_json::json!({"spend": spend, "max_budget": max_budget})));
    }
    let since = Utc::now() - Duration::days(30);
    let spend = db(store.global_spend(Some(since), None).await)?;
    Ok(json(serde_json::json!({"spend": spend, "max_budget": 0.0})))
}

/// `GET /spend/keys`: every key row, with spend (a non-admin's own keys).
pub async fn keys(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    let caller = authorize(&app, &headers, "/spend/keys").await?;
    let store = store(&app, Need::Other)?;
    let keys = match own_user(&caller, None, "spend")? {
        Some(me) => {
            let filter = sluice_store::KeyFilter { user_id: Some(me), page: 1, size: 0, ..Default::default() };
            db(store.list_keys(&filter).await)?.0
        }
        None => db(store.all_keys().await)?,
    };
    let rows: Vec<Value> = keys.iter().map(|k| Value::Object(key_json(&app.access.registry, k))).collect();
    Ok(json(rows))
}

/// `GET /spend/users?user_id=`: every user row (or the one asked for), with spend.
pub async fn users(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    let caller = authorize(&app, &headers, "/spend/users").await?;
    let store = store(&app, Need::Other)?;
    let only = own_user(&caller, query_str(&q, "user_id"), "spend")?;
    let only = only.as_deref();
    let rows: Vec<Value> = db(store.all_users().await)?
        .iter()
        .filter(|u| only.is_none_or(|id| u.user_id == id))
        .map(|u| Value::Object(user_json(&app.access.registry, u)))
        .collect();
    Ok(json(rows))
}
