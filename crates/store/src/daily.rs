//! Daily aggregates of the spend logs: `sluice_daily_spend` (LiteLLM's `LiteLLM_DailyUserSpend`,
//! `…TeamSpend` and `…EndUserSpend` in one table, keyed by day, key, user, team, end user, model,
//! model group and provider), `sluice_daily_team_spend` (the same summed per day, team, end user
//! and model only, for the per-team and per-end-user reports) and `sluice_daily_tag_spend`
//! (`LiteLLM_DailyTagSpend`).
//!
//! Each batch of spend-log rows is grouped here and upserted in the batch's own transaction (one
//! statement per distinct group, `spend = spend + excluded.spend`), so the reports
//! (`/user/daily/activity`, `/team/daily/activity`, `/global/spend/report`, `/spend/tags`) read
//! a few rows per day instead of every request, and nothing of this runs on the request path.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::codec;
use crate::errors;
use crate::sql::{self, Params, Val};
use crate::{Result, SpendLogRecord, Store};

const TABLE: &str = "sluice_daily_spend";
const TAG_TABLE: &str = "sluice_daily_tag_spend";
/// The group's identity, the table's primary key, in its order.
const KEYS: [&str; 8] = ["date", "api_key", "user_id", "team_id", "end_user", "model", "model_group", "provider"];
/// What is summed per group.
const SUMS: [&str; 8] = [
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
];
const TAG_KEYS: [&str; 2] = ["date", "tag"];
const TAG_SUMS: [&str; 4] = ["spend", "prompt_tokens", "completion_tokens", "api_requests"];
/// `/global/spend/report` by team or end user over a month read every key's row of every day
/// (300,000 rows with 10,000 keys) and grouped them: several hundred ms. This holds the same
/// sums per day, team, end user and model, as many rows as there are teams (or end users)
/// calling a model in a day; a key's calls fold into its team's row.
const TEAM_TABLE: &str = "sluice_daily_team_spend";
const TEAM_KEYS: [&str; 4] = ["date", "team_id", "end_user", "model"];
/// The report's sums; the same as a tag's.
const TEAM_SUMS: [&str; 4] = TAG_SUMS;
/// Groups per multi-row upsert through sqlx: 500 × 16 = 8,000 parameters, within both
/// databases' limits.
const SQLX_ROWS: usize = 500;

/// What one group (a day of one key, user, team, end user, model, group and provider) adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DailySums {
    pub spend: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_read_input_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub api_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
}

impl DailySums {
    fn of(l: &SpendLogRecord) -> DailySums {
        let ok = l.status == "success";
        DailySums {
            spend: l.spend,
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
            cache_read_input_tokens: l.cache_read_input_tokens,
            cache_creation_input_tokens: l.cache_creation_input_tokens,
            api_requests: 1,
            successful_requests: ok as i64,
            failed_requests: !ok as i64,
        }
    }

    /// Adds `o` (counts saturate: a row's counts are bounded, their sum over years may not be).
    pub fn add(&mut self, o: &DailySums) {
        self.spend += o.spend;
        self.prompt_tokens = self.prompt_tokens.saturating_add(o.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(o.completion_tokens);
        self.cache_read_input_tokens = self.cache_read_input_tokens.saturating_add(o.cache_read_input_tokens);
        self.cache_creation_input_tokens =
            self.cache_creation_input_tokens.saturating_add(o.cache_creation_input_tokens);
        self.api_requests = self.api_requests.saturating_add(o.api_requests);
        self.successful_requests = self.successful_requests.saturating_add(o.successful_requests);
        self.failed_requests = self.failed_requests.saturating_add(o.failed_requests);
    }

    /// The values in `SUMS` order.
    fn values(&self) -> [Num; 8] {
        [
            Num::Real(self.spend),
            Num::Int(self.prompt_tokens),
            Num::Int(self.completion_tokens),
            Num::Int(self.cache_read_input_tokens),
            Num::Int(self.cache_creation_input_tokens),
            Num::Int(self.api_requests),
            Num::Int(self.successful_requests),
            Num::Int(self.failed_requests),
        ]
    }

    /// The values in `TAG_SUMS` order.
    fn tag_values(&self) -> [Num; 4] {
        [
            Num::Real(self.spend),
            Num::Int(self.prompt_tokens),
            Num::Int(self.completion_tokens),
            Num::Int(self.api_requests),
        ]
    }

    fn from_row(r: &AnyRow) -> Result<DailySums> {
        Ok(DailySums {
            spend: codec::real(r, "spend")?,
            prompt_tokens: codec::int(r, "prompt_tokens")?,
            completion_tokens: codec::int(r, "completion_tokens")?,
            cache_read_input_tokens: codec::int(r, "cache_read_input_tokens")?,
            cache_creation_input_tokens: codec::int(r, "cache_creation_input_tokens")?,
            api_requests: codec::int(r, "api_requests")?,
            successful_requests: codec::int(r, "successful_requests")?,
            failed_requests: codec::int(r, "failed_requests")?,
        })
    }
}

/// One summed number to bind.
#[derive(Clone, Copy)]
pub(crate) enum Num {
    Real(f64),
    Int(i64),
}

/// A group's ids after the date, in `KEYS` order; a missing id is ''.
type Ids<'a> = [&'a str; 7];

/// A batch of spend-log rows grouped for the upserts, borrowing the rows' strings. Ordered
/// maps: every writer (every replica) touches rows in the same order, so two batches cannot
/// deadlock on PostgreSQL.
#[derive(Default)]
pub(crate) struct Batch<'a> {
    groups: BTreeMap<(NaiveDate, Ids<'a>), DailySums>,
    /// (team, end user, model) per day: `TEAM_TABLE`'s rows.
    teams: BTreeMap<(NaiveDate, [&'a str; 3]), DailySums>,
    tags: BTreeMap<(NaiveDate, &'a str), DailySums>,
}

impl<'a> Batch<'a> {
    pub(crate) fn of(logs: &'a [SpendLogRecord]) -> Batch<'a> {
        let mut b = Batch::default();
        for l in logs {
            // The UTC day the request started, as LiteLLM dates it.
            let date = l.start_time.date_naive();
            let ids = [
                &*l.api_key,
                l.user.as_deref().unwrap_or(""),
                l.team_id.as_deref().unwrap_or(""),
                l.end_user.as_deref().unwrap_or(""),
                &*l.model,
                l.model_group.as_deref().unwrap_or(""),
                l.custom_llm_provider.as_deref().unwrap_or(""),
            ];
            let sums = DailySums::of(l);
            b.groups.entry((date, ids)).or_default().add(&sums);
            b.teams.entry((date, [ids[2], ids[3], ids[4]])).or_default().add(&sums);
            // A tag repeated in one request counts once.
            for (i, tag) in l.request_tags.iter().enumerate() {
                if !l.request_tags[..i].contains(tag) {
                    b.tags.entry((date, tag.as_str())).or_default().add(&sums);
                }
            }
        }
        b
    }

    /// Each group: its date text, ids and sums.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (String, &Ids<'a>, &DailySums)> + '_ {
        self.groups.iter().map(|((d, ids), s)| (date_text(*d), ids, s))
    }

    /// Each (day, team, end user, model): its date text, ids and sums.
    pub(crate) fn teams(&self) -> impl Iterator<Item = (String, &[&'a str; 3], &DailySums)> + '_ {
        self.teams.iter().map(|((d, ids), s)| (date_text(*d), ids, s))
    }

    /// Each (day, tag): its date text, tag and sums.
    pub(crate) fn tags(&self) -> impl Iterator<Item = (String, &'a str, &DailySums)> + '_ {
        self.tags.iter().map(|((d, tag), s)| (date_text(*d), *tag, s))
    }
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The upsert of `rows` groups into `table`: `?` placeholders (`numbered` false, SQLite's raw
/// connection binds in order) or `$n`.
fn upsert_sql(table: &str, keys: &[&str], sums: &[&str], rows: usize, numbered: bool) -> String {
    let width = keys.len() + sums.len();
    let mut values = Vec::with_capacity(rows);
    for row in 0..rows {
        let marks: Vec<String> =
            (1..=width).map(|i| if numbered { format!("${}", row * width + i) } else { "?".to_owned() }).collect();
        values.push(format!("({})", marks.join(",")));
    }
    let sets: Vec<String> = sums.iter().map(|c| format!("{c} = {table}.{c} + excluded.{c}")).collect();
    format!(
        "INSERT INTO {table} ({}, {}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        keys.join(", "),
        sums.join(", "),
        values.join(", "),
        keys.join(", "),
        sets.join(", ")
    )
}

/// The single-row upserts SQLite's raw spend-log connection prepares once: groups, teams, then
/// tags.
pub(crate) fn raw_upserts() -> [String; 3] {
    [
        upsert_sql(TABLE, &KEYS, &SUMS, 1, false),
        upsert_sql(TEAM_TABLE, &TEAM_KEYS, &TEAM_SUMS, 1, false),
        upsert_sql(TAG_TABLE, &TAG_KEYS, &TAG_SUMS, 1, false),
    ]
}

fn push_num(params: &mut Params, n: Num) {
    params.push(match n {
        Num::Real(f) => Val::real(f),
        Num::Int(i) => Val::int(Some(i)),
    });
}

/// The batch's upserts through sqlx (PostgreSQL, `sqlite::memory:`), on the connection holding
/// the spend logs' transaction: several groups per statement.
pub(crate) async fn upsert_sqlx(conn: &mut AnyConnection, batch: &Batch<'_>) -> Result<()> {
    let groups: Vec<_> = batch.groups().collect();
    for chunk in groups.chunks(SQLX_ROWS) {
        let mut params = Params::new();
        for (date, ids, sums) in chunk {
            params.push(Val::text(date));
            for id in *ids {
                params.push(Val::text(id));
            }
            for n in sums.values() {
                push_num(&mut params, n);
            }
        }
        let q = upsert_sql(TABLE, &KEYS, &SUMS, chunk.len(), true);
        sql::query(&q, params).execute(&mut *conn).await.map_err(errors::db)?;
    }
    let teams: Vec<_> = batch.teams().collect();
    for chunk in teams.chunks(SQLX_ROWS) {
        let mut params = Params::new();
        for (date, ids, sums) in chunk {
            params.push(Val::text(date));
            for id in *ids {
                params.push(Val::text(id));
            }
            for n in sums.tag_values() {
                push_num(&mut params, n);
            }
        }
        let q = upsert_sql(TEAM_TABLE, &TEAM_KEYS, &TEAM_SUMS, chunk.len(), true);
        sql::query(&q, params).execute(&mut *conn).await.map_err(errors::db)?;
    }
    let tags: Vec<_> = batch.tags().collect();
    for chunk in tags.chunks(SQLX_ROWS) {
        let mut params = Params::new();
        for (date, tag, sums) in chunk {
            params.push(Val::text(date));
            params.push(Val::text(tag));
            for n in sums.tag_values() {
                push_num(&mut params, n);
            }
        }
        let q = upsert_sql(TAG_TABLE, &TAG_KEYS, &TAG_SUMS, chunk.len(), true);
        sql::query(&q, params).execute(&mut *conn).await.map_err(errors::db)?;
    }
    Ok(())
}

/// Binds one group's values for the raw connection's single-row upsert.
pub(crate) fn bind_group<'b>(b: &mut crate::sqlite_raw::Binder<'b>, date: &'b str, ids: &Ids<'b>, sums: &DailySums) {
    b.text(date);
    for id in ids {
        b.text(id);
    }
    for n in sums.values() {
        match n {
            Num::Real(f) => b.real(f),
            Num::Int(i) => b.int(i),
        }
    }
}

/// Binds one (day, team, end user, model) for the raw connection's single-row team upsert.
pub(crate) fn bind_team<'b>(
    b: &mut crate::sqlite_raw::Binder<'b>,
    date: &'b str,
    ids: &[&'b str; 3],
    sums: &DailySums,
) {
    b.text(date);
    for id in ids {
        b.text(id);
    }
    for n in sums.tag_values() {
        match n {
            Num::Real(f) => b.real(f),
            Num::Int(i) => b.int(i),
        }
    }
}

/// Binds one (day, tag) for the raw connection's single-row tag upsert.
pub(crate) fn bind_tag<'b>(b: &mut crate::sqlite_raw::Binder<'b>, date: &'b str, tag: &'b str, sums: &DailySums) {
    b.text(date);
    b.text(tag);
    for n in sums.tag_values() {
        match n {
            Num::Real(f) => b.real(f),
            Num::Int(i) => b.int(i),
        }
    }
}

/// One stored group of a day.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DailyRow {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub api_key: String,
    /// The ids below are '' where the request had none.
    pub user_id: String,
    pub team_id: String,
    pub end_user: String,
    pub model: String,
    pub model_group: String,
    pub provider: String,
    #[serde(flatten)]
    pub sums: DailySums,
}

/// Which daily rows a report reads. Dates are `YYYY-MM-DD`, both inclusive.
#[derive(Debug, Clone, Default)]
pub struct DailyFilter {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    /// Any of these teams (none: every team).
    pub team_ids: Vec<String>,
    pub end_user: Option<String>,
    pub model: Option<String>,
}

/// What `/global/spend/report` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportGroup {
    Team,
    EndUser,
    ApiKey,
}

impl ReportGroup {
    fn column(self) -> &'static str {
        match self {
            ReportGroup::Team => "team_id",
            ReportGroup::EndUser => "end_user",
            ReportGroup::ApiKey => "api_key",
        }
    }
}

/// One (day, group, model) of `/global/spend/report`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRow {
    pub date: String,
    /// The team, end user or key ('' where the requests had none).
    pub group: String,
    pub model: String,
    pub spend: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub api_requests: i64,
}

/// [`ReportRow`]s summed from the daily rows as they are read: kept as read, then sorted and
/// the rows of one (day, group, model) added up. The rows mostly come in the primary key's
/// order, so the sort finds them sorted; hashing each row's three names to sum them as they came
/// cost more.
#[derive(Default)]
struct ReportSums(Vec<ReportRow>);

impl ReportSums {
    fn add(&mut self, [date, group, model]: [&str; 3], (spend, prompt, completion): (f64, i64, i64), requests: i64) {
        self.0.push(ReportRow {
            date: date.to_owned(),
            group: group.to_owned(),
            model: model.to_owned(),
            spend,
            prompt_tokens: prompt,
            completion_tokens: completion,
            api_requests: requests,
        });
    }

    /// Oldest day first, then by group and model in byte order.
    fn into_rows(mut self) -> Vec<ReportRow> {
        self.0.sort_by(|a, b| (&a.date, &a.group, &a.model).cmp(&(&b.date, &b.group, &b.model)));
        self.0.dedup_by(|later, kept| {
            let same = (&later.date, &later.group, &later.model) == (&kept.date, &kept.group, &kept.model);
            if same {
                kept.spend += later.spend;
                kept.prompt_tokens = kept.prompt_tokens.saturating_add(later.prompt_tokens);
                kept.completion_tokens = kept.completion_tokens.saturating_add(later.completion_tokens);
                kept.api_requests = kept.api_requests.saturating_add(later.api_requests);
            }
            same
        });
        self.0
    }
}

/// A day of the daily aggregates as [`Store::daily_versions`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayVersion {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub rows: i64,
    pub requests: i64,
}

/// One tag's spend over a date range (`/spend/tags`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagSpend {
    pub tag: String,
    pub spend: f64,
    pub api_requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

fn where_clause(f: &DailyFilter, params: &mut Params) -> String {
    let mut wheres = Vec::new();
    if let Some(d) = &f.start_date {
        wheres.push(format!("date >= {}", params.push(Val::text(d))));
    }
    if let Some(d) = &f.end_date {
        wheres.push(format!("date <= {}", params.push(Val::text(d))));
    }
    for (col, v) in [("api_key", &f.api_key), ("user_id", &f.user_id), ("end_user", &f.end_user), ("model", &f.model)] {
        if let Some(v) = v {
            wheres.push(format!("{col} = {}", params.push(Val::text(v))));
        }
    }
    if !f.team_ids.is_empty() {
        let marks: Vec<String> = f.team_ids.iter().map(|t| params.push(Val::text(t))).collect();
        wheres.push(format!("team_id IN ({})", marks.join(", ")));
    }
    if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    }
}

/// `SUM` of a BIGINT is NUMERIC on PostgreSQL, which the `Any` driver cannot decode.
fn sum_int(col: &str) -> String {
    format!("CAST(COALESCE(SUM({col}), 0) AS BIGINT) AS {col}")
}

impl Store {
    /// The daily rows matching `filter`, newest day first, `page_size` of them from the
    /// `page`th page (1-based), and how many match in all.
    pub async fn daily_activity(
        &self,
        filter: &DailyFilter,
        page: i64,
        page_size: i64,
    ) -> Result<(Vec<DailyRow>, i64)> {
        let pool = self.pool()?;
        let mut params = Params::new();
        let q = format!("SELECT COUNT(*) AS n FROM {TABLE}{}", where_clause(filter, &mut params));
        // PostgreSQL: by the primary key's date range (see `bulk_reads`): planned on the general
        // pool, a week's count read the whole table.
        let total = match &self.bulk_reads {
            Some(pg) => {
                let row = sql::query_pg(&q, params).fetch_one(pg).await.map_err(errors::db)?;
                row.try_get::<i64, _>(0).map_err(|e| codec::decode_err(TABLE, e))?
            }
            None => codec::int(&sql::query(&q, params).fetch_one(&pool).await.map_err(errors::db)?, "n")?,
        };
        let mut params = Params::new();
        let wheres = where_clause(filter, &mut params);
        let limit = params.push(Val::int(Some(page_size.max(0))));
        let offset = params.push(Val::int(Some(page.max(1).saturating_sub(1).saturating_mul(page_size.max(0)))));
        // The primary key's order, backwards: the newest rows come straight off the index.
        let order: Vec<String> = KEYS.iter().map(|k| format!("{k} DESC")).collect();
        let cols: Vec<&str> = KEYS.iter().chain(&SUMS).copied().collect();
        let q = format!(
            "{}{wheres} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            sql::select(TABLE, &cols),
            order.join(", ")
        );
        let rows = sql::query(&q, params).fetch_all(&pool).await.map_err(errors::db)?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(DailyRow {
                    date: codec::text(r, "date")?,
                    api_key: codec::text(r, "api_key")?,
                    user_id: codec::text(r, "user_id")?,
                    team_id: codec::text(r, "team_id")?,
                    end_user: codec::text(r, "end_user")?,
                    model: codec::text(r, "model")?,
                    model_group: codec::text(r, "model_group")?,
                    provider: codec::text(r, "provider")?,
                    sums: DailySums::from_row(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, total))
    }

    /// Spend per day, group and model, oldest day first, then by group and model in byte order
    /// (summed in the database). By team or end user, unless a key or user narrows it, from the
    /// per-team aggregates.
    pub async fn daily_report(&self, filter: &DailyFilter, group: ReportGroup) -> Result<Vec<ReportRow>> {
        let mut params = Params::new();
        let col = group.column();
        let by_team = group != ReportGroup::ApiKey && filter.api_key.is_none() && filter.user_id.is_none();
        let table = if by_team { TEAM_TABLE } else { TABLE };
        // A month of 1,000 teams is 30,000 rows of the team table, one per team and model but
        // for the end users summed away: PostgreSQL's GROUP BY of them (planned as 3,100
        // groups) spilled to disk, 84 ms of the route's 100, so those are summed here. Grouped
        // by end user or key, the groups are few and the database sums them best.
        let summed_here = by_team && group == ReportGroup::Team;
        let wheres = where_clause(filter, &mut params);
        let q = if summed_here {
            format!(
                "SELECT date, {col}, model, spend, prompt_tokens, completion_tokens, api_requests FROM {table}{wheres}"
            )
        } else {
            format!(
                "SELECT date, {col}, model, COALESCE(SUM(spend), 0) AS spend, {}, {}, {} FROM {table}{wheres} \
                 GROUP BY date, {col}, model",
                sum_int("prompt_tokens"),
                sum_int("completion_tokens"),
                sum_int("api_requests"),
            )
        };
        let mut sums = ReportSums::default();
        let err = |e: sqlx::Error| codec::decode_err(table, e);
        if let Some(pg) = &self.bulk_reads {
            // PostgreSQL's own driver, rows read in place: the `Any` driver's copy of each
            // into its own shape cost more than the sums.
            let mut rows = sql::query_pg(&q, params).fetch(pg);
            while let Some(r) = rows.try_next().await.map_err(errors::db)? {
                let names =
                    [r.try_get::<&str, _>(0).map_err(err)?, r.try_get(1).map_err(err)?, r.try_get(2).map_err(err)?];
                let figures = (r.try_get(3).map_err(err)?, r.try_get(4).map_err(err)?, r.try_get(5).map_err(err)?);
                sums.add(names, figures, r.try_get(6).map_err(err)?);
            }
        } else {
            let pool = self.pool()?;
            let mut rows = sql::query(&q, params).fetch(&pool);
            while let Some(r) = rows.try_next().await.map_err(errors::db)? {
                let names =
                    [r.try_get::<&str, _>(0).map_err(err)?, r.try_get(1).map_err(err)?, r.try_get(2).map_err(err)?];
                let figures = (codec::real_at(&r, 3)?, r.try_get(4).map_err(err)?, r.try_get(5).map_err(err)?);
                sums.add(names, figures, r.try_get(6).map_err(err)?);
            }
        }
        Ok(sums.into_rows())
    }

    /// Spend per day, with per-model, per-user and per-key spend (`/spend/logs`' daily summary),
    /// oldest day first: one grouped read of the aggregates (however many requests the days
    /// held), folded into the three breakdowns here. Days before the aggregates existed
    /// (migration 9) are not in them.
    pub async fn daily_summary(&self, filter: &DailyFilter) -> Result<Vec<crate::DailySpend>> {
        let mut params = Params::new();
        // Not grouped in SQL: the rows are few per key and day already (a group per team, end
        // user, model group, provider more), and a four-column GROUP BY of 80,000 rows cost
        // PostgreSQL 70 ms (a hash spilling to disk) of the 100 the route may take.
        // Streamed and read in place (by position, borrowed): with 10,000 keys a week is 80,000
        // rows, and a copy of each name per row was most of the route's time.
        let q =
            format!("SELECT date, model, user_id, api_key, spend FROM {TABLE}{}", where_clause(filter, &mut params));
        let mut days = crate::records::SpendDays::default();
        if let Some(pg) = &self.bulk_reads {
            let mut rows = sql::query_pg(&q, params).fetch(pg);
            while let Some(r) = rows.try_next().await.map_err(errors::db)? {
                let text = |i: usize| r.try_get::<&str, _>(i).map_err(|e| codec::decode_err(TABLE, e));
                let spend = r.try_get::<f64, _>(4).map_err(|e| codec::decode_err(TABLE, e))?;
                days.add(text(0)?, text(1)?, Some(text(2)?).filter(|u| !u.is_empty()), text(3)?, spend);
            }
            return Ok(days.into_days());
        }
        let pool = self.pool()?;
        let mut rows = sql::query(&q, params).fetch(&pool);
        while let Some(r) = rows.try_next().await.map_err(errors::db)? {
            let text = |i: usize| r.try_get::<&str, _>(i).map_err(|e| codec::decode_err(TABLE, e));
            let spend = codec::real_at(&r, 4)?;
            days.add(text(0)?, text(1)?, Some(text(2)?).filter(|u| !u.is_empty()), text(3)?, spend);
        }
        Ok(days.into_days())
    }

    /// What each day between two `YYYY-MM-DD` days (inclusive) holds, oldest first: its daily
    /// rows and the requests they count. Every call the spend writer counts adds a row to its
    /// day or a request to one, so a day whose pair is unchanged has the same rows: the
    /// summarised `/spend/logs` keeps finished days' answers on that condition.
    pub async fn daily_versions(&self, start_date: &str, end_date: &str) -> Result<Vec<DayVersion>> {
        let mut params = Params::new();
        let f = DailyFilter {
            start_date: Some(start_date.to_owned()),
            end_date: Some(end_date.to_owned()),
            ..Default::default()
        };
        let q = format!(
            "SELECT date, COUNT(*) AS n, {} FROM {TABLE}{} GROUP BY date ORDER BY date",
            sum_int("api_requests"),
            where_clause(&f, &mut params)
        );
        // PostgreSQL: by the primary key's date range (see `bulk_reads`), not the whole table.
        if let Some(pg) = &self.bulk_reads {
            let rows = sql::query_pg(&q, params).fetch_all(pg).await.map_err(errors::db)?;
            return rows
                .iter()
                .map(|r| {
                    let err = |e: sqlx::Error| codec::decode_err(TABLE, e);
                    Ok(DayVersion {
                        date: r.try_get(0).map_err(err)?,
                        rows: r.try_get(1).map_err(err)?,
                        requests: r.try_get(2).map_err(err)?,
                    })
                })
                .collect();
        }
        let rows = sql::query(&q, params).fetch_all(&self.pool()?).await.map_err(errors::db)?;
        rows.iter()
            .map(|r| {
                Ok(DayVersion {
                    date: codec::text(r, "date")?,
                    rows: codec::int(r, "n")?,
                    requests: codec::int(r, "api_requests")?,
                })
            })
            .collect()
    }

    /// Spend per request tag between two `YYYY-MM-DD` days (inclusive), most spent first.
    pub async fn tag_spend(&self, start_date: Option<&str>, end_date: Option<&str>) -> Result<Vec<TagSpend>> {
        let mut params = Params::new();
        let mut wheres = Vec::new();
        if let Some(d) = start_date {
            wheres.push(format!("date >= {}", params.push(Val::text(d))));
        }
        if let Some(d) = end_date {
            wheres.push(format!("date <= {}", params.push(Val::text(d))));
        }
        let wheres = if wheres.is_empty() { String::new() } else { format!(" WHERE {}", wheres.join(" AND ")) };
        let q = format!(
            "SELECT tag, COALESCE(SUM(spend), 0) AS spend, {}, {}, {} FROM {TAG_TABLE}{wheres} GROUP BY tag \
             ORDER BY spend DESC, tag",
            sum_int("api_requests"),
            sum_int("prompt_tokens"),
            sum_int("completion_tokens"),
        );
        let rows = sql::query(&q, params).fetch_all(&self.pool()?).await.map_err(errors::db)?;
        rows.iter()
            .map(|r| {
                Ok(TagSpend {
                    tag: codec::text(r, "tag")?,
                    spend: codec::real(r, "spend")?,
                    api_requests: codec::int(r, "api_requests")?,
                    prompt_tokens: codec::int(r, "prompt_tokens")?,
                    completion_tokens: codec::int(r, "completion_tokens")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, day: u32, key: &str, tags: &[&str], spend: f64) -> SpendLogRecord {
        let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, day, 23, 59, 59).unwrap();
        SpendLogRecord {
            request_id: id.into(),
            api_key: key.into(),
            spend,
            prompt_tokens: 10,
            completion_tokens: 5,
            start_time: start,
            model: "gpt-4o".into(),
            request_tags: tags.iter().map(|t| t.to_string()).collect(),
            status: "success".into(),
            cache_read_input_tokens: 3,
            ..Default::default()
        }
    }

    /// Rows of one day and ids fold into one group; another day, key or status is another;
    /// a tag counts once per request.
    #[test]
    fn a_batch_folds_into_one_row_per_group() {
        let mut failed = row("d", 1, "k1", &[], 0.0);
        failed.status = "failure".into();
        let logs = [
            row("a", 1, "k1", &["x", "x", "y"], 1.0),
            row("b", 1, "k1", &["x"], 2.0),
            row("c", 2, "k1", &[], 4.0),
            failed,
        ];
        let b = Batch::of(&logs);
        let groups: Vec<_> = b.groups().map(|(d, ids, s)| (d, ids[0], *s)).collect();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "2026-03-01");
        assert_eq!(
            groups[0].2,
            DailySums {
                spend: 3.0,
                prompt_tokens: 30,
                completion_tokens: 15,
                cache_read_input_tokens: 9,
                cache_creation_input_tokens: 0,
                api_requests: 3,
                successful_requests: 2,
                failed_requests: 1
            }
        );
        assert_eq!((groups[1].0.as_str(), groups[1].2.spend), ("2026-03-02", 4.0));
        let tags: Vec<_> = b.tags().map(|(d, t, s)| (d, t, s.spend, s.api_requests)).collect();
        assert_eq!(tags, [("2026-03-01".to_owned(), "x", 3.0, 2), ("2026-03-01".to_owned(), "y", 1.0, 1)]);
    }

    #[test]
    fn upserts_add_to_the_stored_sums() {
        let q = upsert_sql(TAG_TABLE, &TAG_KEYS, &TAG_SUMS, 2, true);
        assert!(q.starts_with("INSERT INTO sluice_daily_tag_spend (date, tag, spend, prompt_tokens"));
        assert!(q.contains("VALUES ($1,$2,$3,$4,$5,$6), ($7,$8,$9,$10,$11,$12)"));
        assert!(q.ends_with("api_requests = sluice_daily_tag_spend.api_requests + excluded.api_requests"));
        assert!(raw_upserts()[0].contains("VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT"));
        assert!(
            raw_upserts()[1].starts_with("INSERT INTO sluice_daily_team_spend (date, team_id, end_user, model, spend")
        );
    }
}
