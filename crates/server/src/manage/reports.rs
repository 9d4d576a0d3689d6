//! Spend reports read from the daily aggregates (`sluice_store::DailyRow`, written with the
//! spend logs): `/user/daily/activity` and `/team/daily/activity` (LiteLLM's
//! `SpendAnalyticsPaginatedResponse`), `/global/spend/report` and `/spend/tags`.
//!
//! Who sees which rows is decided in one place, [`visible`]: an admin sees every row; any other
//! key only its own user's (or, without a user, its own key's) and its own team's.

use super::roles::{authorize, Caller};
use super::{db, json, query_count, query_date, query_str, store, token_of, Need, Query, Result};
use crate::app::App;
use crate::errors::ErrorResponse;
use axum::extract::State;
use axum::response::Response;
use chrono::NaiveDate;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use sluice_access::Identity;
use sluice_store::{DailyFilter, DailyRow, DailySums, ReportGroup};
use sluice_wire::ApiError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Daily rows per page: LiteLLM's default, and the most one page holds (the rows are grouped
/// into days in memory).
const PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 1_000;
/// The most teams one `team_ids` names (each is a bound parameter).
const MAX_TEAMS: usize = 100;

/// Which activity a report is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entity {
    User,
    Team,
}

/// The one rule of who sees which activity: a caller the route is all of (a proxy admin, or a
/// viewer: `roles::POLICY`) sees every row and filters as it likes; any other key sees its own
/// user's rows (its own key's when it has no user) on user reports, and its own team's on team
/// reports, and is refused a filter naming someone else's.
fn visible(caller: &Caller, entity: Entity, f: &mut DailyFilter) -> Result<()> {
    let Identity::Key(k) = &caller.identity else { return Ok(()) };
    if caller.all() {
        return Ok(());
    }
    let refuse = |what: &str| {
        ErrorResponse(
            ApiError::new(
                403,
                format!(
                    "This key may only view its own {what}'s activity. Remove the filter, or use an admin key to \
                     view others'."
                ),
            )
            .kind("auth_error"),
        )
    };
    match entity {
        Entity::User => {
            let own = k.record.user_id.clone();
            if f.user_id.is_some() && f.user_id != own {
                return Err(refuse("user"));
            }
            match own {
                Some(user) => f.user_id = Some(user),
                None => f.api_key = Some(k.record.token.clone()),
            }
        }
        Entity::Team => {
            let Some(team) = k.record.team_id.clone() else { return Err(refuse("team")) };
            if f.team_ids.iter().any(|t| *t != team) {
                return Err(refuse("team"));
            }
            f.team_ids = vec![team];
        }
    }
    Ok(())
}

/// `start_date`/`end_date` as the daily rows' `YYYY-MM-DD`, both required (LiteLLM's 400).
fn date_range(q: &Query) -> Result<(NaiveDate, NaiveDate)> {
    match (query_date(q, "start_date")?, query_date(q, "end_date")?) {
        (Some(start), Some(end)) => Ok((start, end)),
        _ => Err(super::bad("Please provide start_date and end_date, written YYYY-MM-DD.", "start_date")),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// LiteLLM's `SpendMetrics`.
fn metrics(s: &DailySums) -> Value {
    json!({
        "spend": s.spend,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "total_tokens": s.prompt_tokens.saturating_add(s.completion_tokens),
        "cache_read_input_tokens": s.cache_read_input_tokens,
        "cache_creation_input_tokens": s.cache_creation_input_tokens,
        "api_requests": s.api_requests,
        "successful_requests": s.successful_requests,
        "failed_requests": s.failed_requests,
    })
}

/// One breakdown bucket: its sums, and per key within it.
#[derive(Default)]
struct Bucket {
    sums: DailySums,
    keys: BTreeMap<String, DailySums>,
}

impl Bucket {
    fn add(&mut self, r: &DailyRow) {
        self.sums.add(&r.sums);
        self.keys.entry(r.api_key.clone()).or_default().add(&r.sums);
    }
}

/// One day's metrics and breakdowns.
#[derive(Default)]
struct Day {
    sums: DailySums,
    models: BTreeMap<String, Bucket>,
    model_groups: BTreeMap<String, Bucket>,
    providers: BTreeMap<String, Bucket>,
    api_keys: BTreeMap<String, DailySums>,
    entities: BTreeMap<String, Bucket>,
}

/// `GET /user/daily/activity`.
pub async fn user_activity(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    activity(&app, &headers, &q, Entity::User).await
}

/// `GET /team/daily/activity`.
pub async fn team_activity(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    activity(&app, &headers, &q, Entity::Team).await
}

/// LiteLLM's `SpendAnalyticsPaginatedResponse`: the page's daily rows grouped by day (newest
/// first), each with its metrics and breakdowns by model, model group, provider, key and
/// user or team; `metadata` sums the page and says where it is.
async fn activity(app: &App, headers: &HeaderMap, q: &Query, entity: Entity) -> Result<Response> {
    let route = match entity {
        Entity::User => "/user/daily/activity",
        Entity::Team => "/team/daily/activity",
    };
    let caller = authorize(app, headers, route).await?;
    let store = store(app, Need::Other)?;
    let (start, end) = date_range(q)?;
    let page = query_count(q, "page", 1, i64::from(u32::MAX))?;
    let page_size = query_count(q, "page_size", PAGE_SIZE, MAX_PAGE_SIZE)?;
    let mut f = DailyFilter {
        start_date: Some(day(start)),
        end_date: Some(day(end)),
        api_key: query_str(q, "api_key").map(token_of),
        model: query_str(q, "model").map(str::to_string),
        ..Default::default()
    };
    match entity {
        Entity::User => f.user_id = query_str(q, "user_id").map(str::to_string),
        Entity::Team => {
            f.team_ids = query_str(q, "team_ids")
                .map(|s| s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            if f.team_ids.len() > MAX_TEAMS {
                return Err(super::bad(format!("team_ids names at most {MAX_TEAMS} teams."), "team_ids"));
            }
        }
    }
    visible(&caller, entity, &mut f)?;
    let (rows, total) = db(store.daily_activity(&f, page, page_size).await)?;

    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    let mut totals = DailySums::default();
    for r in &rows {
        totals.add(&r.sums);
        let d = days.entry(r.date.clone()).or_default();
        d.sums.add(&r.sums);
        d.models.entry(r.model.clone()).or_default().add(r);
        let group = if r.model_group.is_empty() { &r.model } else { &r.model_group };
        d.model_groups.entry(group.clone()).or_default().add(r);
        let provider = if r.provider.is_empty() { "unknown" } else { &r.provider };
        d.providers.entry(provider.to_string()).or_default().add(r);
        d.api_keys.entry(r.api_key.clone()).or_default().add(&r.sums);
        let who = match entity {
            Entity::User => &r.user_id,
            Entity::Team => &r.team_id,
        };
        d.entities.entry(who.clone()).or_default().add(r);
    }
    let registry = &app.access.registry;
    let key_metadata = |token: &str| match registry.keys.get(token) {
        Some(k) => json!({"key_alias": k.record.key_alias, "team_id": k.record.team_id}),
        None => json!({"key_alias": null, "team_id": null}),
    };
    let keyed = |keys: &BTreeMap<String, DailySums>| -> Map<String, Value> {
        keys.iter().map(|(k, s)| (k.clone(), json!({"metrics": metrics(s), "metadata": key_metadata(k)}))).collect()
    };
    let buckets = |b: &BTreeMap<String, Bucket>| -> Map<String, Value> {
        b.iter()
            .map(|(name, b)| {
                let v = json!({"metrics": metrics(&b.sums), "metadata": {}, "api_key_breakdown": keyed(&b.keys)});
                (name.clone(), v)
            })
            .collect()
    };
    let results: Vec<Value> = days
        .iter()
        .rev()
        .map(|(date, d)| {
            json!({
                "date": date,
                "metrics": metrics(&d.sums),
                "breakdown": {
                    "models": buckets(&d.models),
                    "model_groups": buckets(&d.model_groups),
                    "providers": buckets(&d.providers),
                    "api_keys": keyed(&d.api_keys),
                    "entities": buckets(&d.entities),
                    "mcp_servers": {},
                },
            })
        })
        .collect();
    let total_pages = if total == 0 { 1 } else { (total + page_size - 1) / page_size };
    Ok(json(json!({
        "results": results,
        "metadata": {
            "total_spend": totals.spend,
            "total_prompt_tokens": totals.prompt_tokens,
            "total_completion_tokens": totals.completion_tokens,
            "total_tokens": totals.prompt_tokens.saturating_add(totals.completion_tokens),
            "total_api_requests": totals.api_requests,
            "total_successful_requests": totals.successful_requests,
            "total_failed_requests": totals.failed_requests,
            "total_cache_read_input_tokens": totals.cache_read_input_tokens,
            "total_cache_creation_input_tokens": totals.cache_creation_input_tokens,
            "page": page,
            "total_pages": total_pages,
            "has_more": page < total_pages,
        },
    })))
}

/// `GET /global/spend/report?start_date=&end_date=&group_by=team|customer|api_key` (with
/// `api_key`, `internal_user_id`, `team_id`, `customer_id` filters), in LiteLLM's shapes: per
/// day, each team's (or customer's) spend with a per-model breakdown; for `api_key`, per key
/// over the whole range with per-model details.
pub async fn global_report(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    authorize(&app, &headers, "/global/spend/report").await?;
    let store = store(&app, Need::Other)?;
    let (start, end) = date_range(&q)?;
    let group = match query_str(&q, "group_by").unwrap_or("team") {
        "team" => ReportGroup::Team,
        "customer" => ReportGroup::EndUser,
        "api_key" => ReportGroup::ApiKey,
        other => {
            return Err(super::bad(
                format!("group_by must be one of team, customer, api_key. Received: {other}"),
                "group_by",
            ))
        }
    };
    let f = DailyFilter {
        start_date: Some(day(start)),
        end_date: Some(day(end)),
        api_key: query_str(&q, "api_key").map(token_of),
        user_id: query_str(&q, "internal_user_id").map(str::to_string),
        team_ids: query_str(&q, "team_id").map(|t| vec![t.to_string()]).unwrap_or_default(),
        end_user: query_str(&q, "customer_id").map(str::to_string),
        ..Default::default()
    };
    let rows = db(store.daily_report(&f, group).await)?;
    if group == ReportGroup::ApiKey {
        // Per key over the range; models in name order.
        let mut keys: BTreeMap<&str, Vec<&sluice_store::ReportRow>> = BTreeMap::new();
        for r in &rows {
            keys.entry(&r.group).or_default().push(r);
        }
        let out: Vec<Value> = keys
            .into_iter()
            .map(|(key, rows)| {
                let mut models: BTreeMap<&str, (f64, i64, i64)> = BTreeMap::new();
                for r in &rows {
                    let m = models.entry(&r.model).or_default();
                    m.0 += r.spend;
                    m.1 = m.1.saturating_add(r.prompt_tokens);
                    m.2 = m.2.saturating_add(r.completion_tokens);
                }
                json!({
                    "api_key": key,
                    "total_cost": rows.iter().map(|r| r.spend).sum::<f64>(),
                    "total_input_tokens": rows.iter().map(|r| r.prompt_tokens).fold(0i64, i64::saturating_add),
                    "total_output_tokens": rows.iter().map(|r| r.completion_tokens).fold(0i64, i64::saturating_add),
                    "model_details": models.into_iter().map(|(model, (cost, p, c))| json!({
                        "model": model, "total_cost": cost, "prompt_tokens": p, "completion_tokens": c,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(json(out));
    }
    // Per day, then per team or customer, in the order the store sorted them.
    let mut days: BTreeMap<&str, BTreeMap<&str, Vec<&sluice_store::ReportRow>>> = BTreeMap::new();
    for r in &rows {
        days.entry(&r.date).or_default().entry(&r.group).or_default().push(r);
    }
    let registry = &app.access.registry;
    let out: Vec<Value> = days
        .into_iter()
        .map(|(date, groups)| {
            let entries: Vec<Value> = groups
                .into_iter()
                .map(|(id, rows)| {
                    let total: f64 = rows.iter().map(|r| r.spend).sum();
                    let models: Vec<Value> = rows
                        .iter()
                        .map(|r| {
                            let tokens = r.prompt_tokens.saturating_add(r.completion_tokens);
                            json!({"model": r.model, "spend": r.spend, "total_tokens": tokens})
                        })
                        .collect();
                    match group {
                        ReportGroup::Team => {
                            // LiteLLM names a team by its alias.
                            let name = match id {
                                "" => "Unassigned Team".to_string(),
                                id => registry
                                    .teams
                                    .get(id)
                                    .and_then(|t| t.record.team_alias.clone())
                                    .unwrap_or_else(|| id.to_string()),
                            };
                            json!({"team_name": name, "team_id": (!id.is_empty()).then_some(id), "total_spend": total, "metadata": models})
                        }
                        _ => json!({"customer": (!id.is_empty()).then_some(id), "total_spend": total, "metadata": models}),
                    }
                })
                .collect();
            let label = if group == ReportGroup::Team { "teams" } else { "customers" };
            let mut day = Map::new();
            day.insert("group_by_day".into(), format!("{date}T00:00:00+00:00").into());
            day.insert(label.into(), Value::Array(entries));
            Value::Object(day)
        })
        .collect();
    Ok(json(out))
}

/// `GET /spend/tags?start_date=&end_date=`: `[{"individual_request_tag", "log_count",
/// "total_spend"}]`, most spent first (LiteLLM's `DailyTagSpend` view, summed).
pub async fn tags(State(app): State<Arc<App>>, headers: HeaderMap, q: Query) -> Result<Response> {
    authorize(&app, &headers, "/spend/tags").await?;
    let store = store(&app, Need::Other)?;
    let start = query_date(&q, "start_date")?.map(day);
    let end = query_date(&q, "end_date")?.map(day);
    let rows = db(store.tag_spend(start.as_deref(), end.as_deref()).await)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|t| json!({"individual_request_tag": t.tag, "log_count": t.api_requests, "total_spend": t.spend}))
        .collect();
    Ok(json(out))
}
