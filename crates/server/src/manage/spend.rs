//! Spend reports: `/spend/logs`, `/global/spend`, `/spend/keys` and `/spend/users` (LiteLLM's
//! `spend_management_endpoints.py`). Totals of keys and users come from this replica's live
//! ledgers where the row is in memory, so they include spend not yet written.

use super::{admin, db, json, key_json, query_date, query_str, store, token_of, user_json, Need, Query, Result};
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

/// `GET /spend/logs?api_key=&user_id=&request_id=&start_date=&end_date=&summarize=&page=&page_size=`.
///
/// As in LiteLLM, the daily summary (`[{"startTime", "spend", "models", "users", "api_keys"}]`)
/// is given when both dates are set and `summarize` is not false; otherwise the raw rows,
/// newest first, `page_size` (1,000 by default) of them from page `page`. `request_id` is the
/// `x-litellm-call-id` or the answer's own `id` (`chatcmpl-…`).
pub async fn logs(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    admin(&app, &headers, "/spend/logs").await?;
    let store = store(&app, Need::Other)?;
    let start = query_date(&q, "start_date")?;
    let end = query_date(&q, "end_date")?;
    let summarize = query_str(&q, "summarize").and_then(super::parse_bool).unwrap_or(true);
    let filter = SpendLogFilter {
        api_key: query_str(&q, "api_key").map(token_of),
        user_id: query_str(&q, "user_id").map(str::to_string),
        request_id: query_str(&q, "request_id").map(str::to_string),
        start: start.map(day_start),
        end: end.map(day_end),
        ..Default::default()
    };
    let page = super::query_count(&q, "page", 1, i64::from(u32::MAX))?;
    let page_size = super::query_count(&q, "page_size", LOG_PAGE, MAX_LOG_PAGE)?;
    if summarize && start.is_some() && end.is_some() {
        // Whole days: read from the daily aggregates (a few rows a day) unless a request id
        // narrows it to the rows themselves.
        let days = match &filter.request_id {
            None => {
                let daily = sluice_store::DailyFilter {
                    start_date: start.map(|d| d.format("%Y-%m-%d").to_string()),
                    end_date: end.map(|d| d.format("%Y-%m-%d").to_string()),
                    api_key: filter.api_key.clone(),
                    user_id: filter.user_id.clone(),
                    ..Default::default()
                };
                db(store.daily_summary(&daily).await)?
            }
            Some(_) => db(store.spend_by_day(&filter).await)?,
        };
        let out: Vec<Value> = days
            .into_iter()
            .map(|d| {
                serde_json::json!({
                    "startTime": d.date,
                    "spend": d.spend,
                    "models": d.models,
                    "users": d.users,
                    "api_keys": d.api_keys,
                })
            })
            .collect();
        return Ok(json(out));
    }
    let filter =
        SpendLogFilter { limit: Some(page_size), offset: Some((page - 1).saturating_mul(page_size)), ..filter };
    Ok(json(db(store.spend_logs(&filter).await)?))
}

/// `GET /global/spend`: `{"spend": <last 30 days>, "max_budget": 0.0}` (LiteLLM sums its
/// `MonthlyGlobalSpend` view, the spend logs of the last 30 days; it has no proxy-wide budget
/// unless `litellm.max_budget` is set, which sluice does not read).
pub async fn global(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    admin(&app, &headers, "/global/spend").await?;
    let store = store(&app, Need::Other)?;
    let since = Utc::now() - Duration::days(30);
    let spend = db(store.global_spend(Some(since), None).await)?;
    Ok(json(serde_json::json!({"spend": spend, "max_budget": 0.0})))
}

/// `GET /spend/keys`: every key row, with spend.
pub async fn keys(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    admin(&app, &headers, "/spend/keys").await?;
    let store = store(&app, Need::Other)?;
    let keys = db(store.all_keys().await)?;
    let rows: Vec<Value> = keys.iter().map(|k| Value::Object(key_json(&app.access.registry, k))).collect();
    Ok(json(rows))
}

/// `GET /spend/users?user_id=`: every user row (or the one asked for), with spend.
pub async fn users(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    admin(&app, &headers, "/spend/users").await?;
    let store = store(&app, Need::Other)?;
    let only = query_str(&q, "user_id");
    let rows: Vec<Value> = db(store.all_users().await)?
        .iter()
        .filter(|u| only.is_none_or(|id| u.user_id == id))
        .map(|u| Value::Object(user_json(&app.access.registry, u)))
        .collect();
    Ok(json(rows))
}
