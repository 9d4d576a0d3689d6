//! Spend reports read from the daily aggregates (`sluice_store::DailyRow`, written with the
//! spend logs): `/user/daily/activity` and `/team/daily/activity` (LiteLLM's
//! `SpendAnalyticsPaginatedResponse`), `/global/spend/report` and `/spend/tags`.
//!
//! Who sees which rows is decided in one place, [`visible`]: an admin sees every row; any other
//! key only its own user's (or, without a user, its own key's) and its own team's. `/spend/logs`
//! applies the same rule ([`own_rows`], [`own_team`]).

use super::json_bytes::{self, Writer};
use super::roles::{authorize, Caller};
use super::{db, json, query_count, query_date, query_str, store, token_of, Need, Query, Result};
use crate::app::App;
use crate::errors::ErrorResponse;
use axum::extract::State;
use axum::response::Response;
use chrono::NaiveDate;
use http::HeaderMap;
use serde_json::{json, Value};
use sluice_access::registry::Registry;
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
fn visible(caller: &Caller, registry: &Registry, entity: Entity, f: &mut DailyFilter) -> Result<()> {
    match entity {
        Entity::User => own_rows(caller, registry, &mut f.user_id, &mut f.api_key),
        Entity::Team => {
            let Identity::Key(k) = &caller.identity else { return Ok(()) };
            if caller.all() {
                return Ok(());
            }
            let Some(team) = k.record.team_id.clone() else { return Err(refuse("team")) };
            if f.team_ids.iter().any(|t| *t != team) {
                return Err(refuse("team"));
            }
            f.team_ids = vec![team];
            Ok(())
        }
    }
}

/// A non-admin's 403 for a filter naming someone else's `what` (user, key, team).
fn refuse(what: &str) -> ErrorResponse {
    ErrorResponse(
        ApiError::new(
            403,
            format!(
                "This key may only view its own {what}'s activity. Remove the filter, or use an admin key to view \
                 others'."
            ),
        )
        .kind("auth_error"),
    )
}

/// [`visible`]'s rule for rows of users and keys, shared with `/spend/logs`: a non-admin's
/// `user_id` becomes its own user (its `api_key` its own key when it has no user), and a filter
/// naming another user, or a key that is neither its own nor its user's, is refused.
pub(crate) fn own_rows(
    caller: &Caller,
    registry: &Registry,
    user_id: &mut Option<String>,
    api_key: &mut Option<String>,
) -> Result<()> {
    let Identity::Key(k) = &caller.identity else { return Ok(()) };
    if caller.all() {
        return Ok(());
    }
    let own = k.record.user_id.clone();
    if user_id.is_some() && *user_id != own {
        return Err(refuse("user"));
    }
    if let Some(asked) = api_key.as_deref() {
        let users_key = || own.is_some() && registry.keys.get(asked).is_some_and(|e| e.record.user_id == own);
        if asked != k.record.token && !users_key() {
            return Err(refuse("key"));
        }
    }
    match own {
        Some(user) => *user_id = Some(user),
        None => *api_key = Some(k.record.token.clone()),
    }
    Ok(())
}

/// A non-admin may narrow rows to its key's team or a team its user is a member of; any other
/// team is refused (the rows stay its own either way: this only keeps the answer honest).
pub(crate) fn own_team(caller: &Caller, registry: &Registry, team_id: Option<&str>) -> Result<()> {
    let Some(team) = team_id else { return Ok(()) };
    if caller.all() || !matches!(caller.identity, Identity::Key(_)) {
        return Ok(());
    }
    if caller.team_id() == Some(team) || caller.team_role(registry, team).is_some() {
        return Ok(());
    }
    Err(refuse("team"))
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
fn metrics(w: &mut Writer, s: &DailySums) {
    w.open_object()
        .key("spend")
        .f64(s.spend)
        .key("prompt_tokens")
        .i64(s.prompt_tokens)
        .key("completion_tokens")
        .i64(s.completion_tokens)
        .key("total_tokens")
        .i64(s.prompt_tokens.saturating_add(s.completion_tokens))
        .key("cache_read_input_tokens")
        .i64(s.cache_read_input_tokens)
        .key("cache_creation_input_tokens")
        .i64(s.cache_creation_input_tokens)
        .key("api_requests")
        .i64(s.api_requests)
        .key("successful_requests")
        .i64(s.successful_requests)
        .key("failed_requests")
        .i64(s.failed_requests)
        .end_object();
}

/// One breakdown bucket: its sums, and per key within it. Names are borrowed from the rows.
#[derive(Default)]
struct Bucket<'r> {
    sums: DailySums,
    keys: BTreeMap<&'r str, DailySums>,
}

impl<'r> Bucket<'r> {
    fn add(&mut self, r: &'r DailyRow) {
        self.sums.add(&r.sums);
        self.keys.entry(&r.api_key).or_default().add(&r.sums);
    }
}

/// One day's metrics and breakdowns.
#[derive(Default)]
struct Day<'r> {
    sums: DailySums,
    models: BTreeMap<&'r str, Bucket<'r>>,
    model_groups: BTreeMap<&'r str, Bucket<'r>>,
    providers: BTreeMap<&'r str, Bucket<'r>>,
    api_keys: BTreeMap<&'r str, DailySums>,
    entities: BTreeMap<&'r str, Bucket<'r>>,
}

impl<'r> Day<'r> {
    fn add(&mut self, r: &'r DailyRow, entity: Entity) {
        self.sums.add(&r.sums);
        self.models.entry(&r.model).or_default().add(r);
        let group = if r.model_group.is_empty() { &r.model } else { &r.model_group };
        self.model_groups.entry(group).or_default().add(r);
        let provider = if r.provider.is_empty() { "unknown" } else { &r.provider };
        self.providers.entry(provider).or_default().add(r);
        self.api_keys.entry(&r.api_key).or_default().add(&r.sums);
        let who = match entity {
            Entity::User => &r.user_id,
            Entity::Team => &r.team_id,
        };
        self.entities.entry(who).or_default().add(r);
    }
}

/// Writes the activity answer's parts; keys' aliases and teams come from the registry.
struct ActivityWriter<'a> {
    w: Writer,
    registry: &'a Registry,
}

impl ActivityWriter<'_> {
    /// `{"<key hash>": {"metrics": …, "metadata": {"key_alias", "team_id"}}, …}`.
    fn keyed(&mut self, keys: &BTreeMap<&str, DailySums>) {
        self.w.open_object();
        for (token, sums) in keys {
            self.w.key(token).open_object().key("metrics");
            metrics(&mut self.w, sums);
            self.w.key("metadata").open_object();
            match self.registry.keys.get(*token) {
                Some(k) => {
                    let (alias, team) = (k.record.key_alias.as_deref(), k.record.team_id.as_deref());
                    self.w.key("key_alias").opt_str(alias).key("team_id").opt_str(team);
                }
                None => {
                    self.w.key("key_alias").opt_str(None).key("team_id").opt_str(None);
                }
            }
            self.w.end_object().end_object();
        }
        self.w.end_object();
    }

    /// `{"<name>": {"metrics", "metadata": {}, "api_key_breakdown"}, …}`.
    fn buckets(&mut self, buckets: &BTreeMap<&str, Bucket<'_>>) {
        self.w.open_object();
        for (name, b) in buckets {
            self.w.key(name).open_object().key("metrics");
            metrics(&mut self.w, &b.sums);
            self.w.key("metadata").raw(b"{}").key("api_key_breakdown");
            self.keyed(&b.keys);
            self.w.end_object();
        }
        self.w.end_object();
    }

    fn day(&mut self, date: &str, d: &Day<'_>) {
        self.w.open_object().key("date").str(date).key("metrics");
        metrics(&mut self.w, &d.sums);
        self.w.key("breakdown").open_object().key("models");
        self.buckets(&d.models);
        self.w.key("model_groups");
        self.buckets(&d.model_groups);
        self.w.key("providers");
        self.buckets(&d.providers);
        self.w.key("api_keys");
        self.keyed(&d.api_keys);
        self.w.key("entities");
        self.buckets(&d.entities);
        self.w.key("mcp_servers").raw(b"{}").end_object().end_object();
    }
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
    visible(&caller, &app.access.registry, entity, &mut f)?;
    let (rows, total) = db(store.daily_activity(&f, page, page_size).await)?;

    let mut days: BTreeMap<&str, Day> = BTreeMap::new();
    let mut totals = DailySums::default();
    for r in &rows {
        totals.add(&r.sums);
        days.entry(&r.date).or_default().add(r, entity);
    }
    let total_pages = if total == 0 { 1 } else { (total + page_size - 1) / page_size };
    // A row appears in five breakdowns of about 400 bytes each.
    let mut out = ActivityWriter { w: Writer::with_capacity(1024 + rows.len() * 2048), registry: &app.access.registry };
    out.w.open_object().key("results").open_array();
    for (date, d) in days.iter().rev() {
        out.day(date, d);
    }
    let w = &mut out.w;
    w.end_array().key("metadata").open_object();
    w.key("total_spend").f64(totals.spend);
    w.key("total_prompt_tokens").i64(totals.prompt_tokens);
    w.key("total_completion_tokens").i64(totals.completion_tokens);
    w.key("total_tokens").i64(totals.prompt_tokens.saturating_add(totals.completion_tokens));
    w.key("total_api_requests").i64(totals.api_requests);
    w.key("total_successful_requests").i64(totals.successful_requests);
    w.key("total_failed_requests").i64(totals.failed_requests);
    w.key("total_cache_read_input_tokens").i64(totals.cache_read_input_tokens);
    w.key("total_cache_creation_input_tokens").i64(totals.cache_creation_input_tokens);
    w.key("page").i64(page).key("total_pages").i64(total_pages).key("has_more").raw(if page < total_pages {
        b"true"
    } else {
        b"false"
    });
    w.end_object().end_object();
    Ok(json_bytes::response(out.w.into_bytes()))
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
    // About 180 bytes a team's (or key's) model.
    let mut w = Writer::with_capacity(64 + rows.len() * 192);
    w.open_array();
    if group == ReportGroup::ApiKey {
        // Per key over the range; models in name order (the store sorted by day first).
        let mut keys: BTreeMap<&str, BTreeMap<&str, (f64, i64, i64)>> = BTreeMap::new();
        for r in &rows {
            let m = keys.entry(&r.group).or_default().entry(&r.model).or_default();
            m.0 += r.spend;
            m.1 = m.1.saturating_add(r.prompt_tokens);
            m.2 = m.2.saturating_add(r.completion_tokens);
        }
        for (key, models) in &keys {
            let (cost, input, output) = models
                .values()
                .fold((0.0, 0i64, 0i64), |t, m| (t.0 + m.0, t.1.saturating_add(m.1), t.2.saturating_add(m.2)));
            w.open_object().key("api_key").str(key).key("total_cost").f64(cost);
            w.key("total_input_tokens").i64(input).key("total_output_tokens").i64(output);
            w.key("model_details").open_array();
            for (model, (cost, p, c)) in models {
                w.open_object().key("model").str(model).key("total_cost").f64(*cost);
                w.key("prompt_tokens").i64(*p).key("completion_tokens").i64(*c).end_object();
            }
            w.end_array().end_object();
        }
        w.end_array();
        return Ok(json_bytes::response(w.into_bytes()));
    }
    // Per day, then per team or customer: the store sorted the rows so, each run of one day's
    // group is that group's models.
    let registry = &app.access.registry;
    let label = if group == ReportGroup::Team { "teams" } else { "customers" };
    for day in rows.chunk_by(|a, b| a.date == b.date) {
        w.open_object().key("group_by_day").str(&format!("{}T00:00:00+00:00", day[0].date));
        w.key(label).open_array();
        for models in day.chunk_by(|a, b| a.group == b.group) {
            let id = models[0].group.as_str();
            w.open_object();
            if group == ReportGroup::Team {
                // LiteLLM names a team by its alias.
                let alias = (!id.is_empty()).then(|| registry.teams.get(id)).flatten();
                let alias = alias.as_ref().and_then(|t| t.record.team_alias.as_deref());
                let name = match id {
                    "" => "Unassigned Team",
                    id => alias.unwrap_or(id),
                };
                w.key("team_name").str(name).key("team_id");
            } else {
                w.key("customer");
            }
            w.opt_str((!id.is_empty()).then_some(id));
            w.key("total_spend").f64(models.iter().map(|r| r.spend).sum());
            w.key("metadata").open_array();
            for r in models {
                let tokens = r.prompt_tokens.saturating_add(r.completion_tokens);
                w.open_object().key("model").str(&r.model).key("spend").f64(r.spend);
                w.key("total_tokens").i64(tokens).end_object();
            }
            w.end_array().end_object();
        }
        w.end_array().end_object();
    }
    w.end_array();
    Ok(json_bytes::response(w.into_bytes()))
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
