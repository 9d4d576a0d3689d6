//! Durable records for sluice: virtual keys, users, teams, end users, spend and spend logs,
//! models added through the API, and Responses API answers kept for providers without state
//! of their own. SQLite (the embedded default, a file created and migrated on
//! first start) or PostgreSQL (shared between replicas), with one schema, versioned migrations and
//! parameterised queries only.
//!
//! The store is never on a request's path: the server loads what it needs into memory at start,
//! refreshes it in the background, and writes spend in batches ([`Store::apply_increments`],
//! [`Store::insert_spend_logs`]).

mod budgets;
mod codec;
mod config;
mod connect;
mod daily;
mod end_users;
mod errors;
mod import;
mod keys;
mod limits;
mod log_writer;
mod models;
mod objects;
mod organizations;
mod records;
mod responses;
mod schema;
mod spend;
mod sql;
mod sqlite_file;
mod sqlite_raw;
mod table;
mod team_memberships;
mod teams;
mod users;

pub use config::ConfigParam;
pub use daily::{DailyFilter, DailyRow, DailySums, DayVersion, ReportGroup, ReportRow, TagSpend};
pub use import::{import_litellm_report, ImportReport};
pub use records::*;
pub use responses::MAX_RESPONSE_BYTES;
pub use schema::LATEST_VERSION as SCHEMA_VERSION;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::Any;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::Transaction;

use crate::sql::{Params, Val};

/// What went wrong talking to the database, worded for the person running sluice.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke: worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken (e.g. a key alias already in use).
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Spend-log rows [`Store::insert_spend_logs`] did not write, given back to be retried.
#[derive(Debug)]
pub struct LogsNotWritten {
    pub error: StoreError,
    pub logs: Vec<SpendLogRecord>,
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the database, with the schema migrated.
#[derive(Clone)]
pub struct Store {
    /// Replaced when a deleted or replaced SQLite file is opened again ([`Store::recover`]).
    pool: Arc<RwLock<AnyPool>>,
    backend: Backend,
    /// SQLite files: the thread that inserts spend logs on a connection of its own.
    log_writer: Option<log_writer::LogWriter>,
    /// PostgreSQL: the typed pool of the reads of many rows ([`connect::Target::bulk_reads`]).
    bulk_reads: Option<sqlx::PgPool>,
    /// A SQLite file sluice opened itself, watched for being deleted or replaced.
    file: Option<Arc<WatchedFile>>,
}

/// What [`Store::recover`] needs to open a watched SQLite file again.
struct WatchedFile {
    watch: sqlite_file::Watch,
    target: connect::Target,
    pool_size: u32,
}

/// What [`Store::recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing to recover: PostgreSQL, or the SQLite file is the one opened.
    NotNeeded,
    /// The SQLite file had been deleted: it was copied from the connection still open on it
    /// (nothing written before was lost) and opened again at its path.
    Restored(String),
    /// Another file had taken the SQLite file's place: it is used from now on (migrated if it
    /// was empty).
    Switched(String),
}

/// How long [`Store::recover`] waits for the old connections' queries to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating and migrating if needed) the database named by `url`: `postgres://…` /
    /// `postgresql://…`, `sqlite://path`, `sqlite::memory:`, or a bare file path (SQLite).
    /// `pool_size` caps the connections (LiteLLM's `database_connection_pool_limit`).
    pub async fn open(url: &str, pool_size: u32) -> Result<Store> {
        Self::open_at_version(url, pool_size, SCHEMA_VERSION).await
    }

    /// [`Store::open`], migrating no further than `version`: the database an older sluice left,
    /// for the tests that upgrade one in place.
    #[doc(hidden)]
    pub async fn open_at_version(url: &str, pool_size: u32, version: i64) -> Result<Store> {
        let target = connect::Target::parse(url)?;
        let watched = match target.watched_file()? {
            Some(path) => {
                let id = target.create_file(&path)?;
                Some((path, id))
            }
            None => None,
        };
        let pool = target.connect(pool_size, watched.as_ref().map(|(p, id)| (p.as_path(), *id))).await?;
        schema::migrate(&pool, target.backend, version).await?;
        let mut log_writer = None;
        // The writer prepares its statements against the newest schema; an older one (a test's)
        // writes no spend logs.
        if target.own_log_connection() && version >= SCHEMA_VERSION {
            // The file as SQLite resolved it for the pool, so both connections open the same one.
            if let Some(file) = main_file(&pool).await? {
                log_writer = Some(log_writer::LogWriter::open(&file).await?);
            }
        }
        let backend = target.backend;
        let bulk_reads = target.bulk_reads()?;
        let file = watched
            .map(|(path, id)| Arc::new(WatchedFile { watch: sqlite_file::Watch::new(path, id), target, pool_size }));
        Ok(Store { pool: Arc::new(RwLock::new(pool)), backend, log_writer, bulk_reads, file })
    }

    /// The pool, once the SQLite file (if watched) is checked to be the one opened: nothing is
    /// read from or written to a file that is no longer there.
    pub(crate) fn pool(&self) -> Result<AnyPool> {
        if let Some(f) = &self.file {
            f.watch.check()?;
        }
        Ok(self.pool.read().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// Whether the SQLite file is still the one opened (always for PostgreSQL): an error saying
    /// what happened to it otherwise.
    pub fn check_file(&self) -> Result<()> {
        match &self.file {
            Some(f) => f.watch.check(),
            None => Ok(()),
        }
    }

    /// Brings a SQLite file that was deleted or replaced while open back into use: a deleted
    /// file is copied from the connection still open on it and put back at its path (nothing
    /// written before is lost), a replacing file is adopted (and migrated). Every old connection
    /// is closed before a new one opens: connections on the old and the new file would share the
    /// journal and WAL files named after the path (see `sqlite_file`). Safe to call at any time;
    /// an error means try again later.
    pub async fn recover(&self) -> Result<Recovery> {
        let Some(f) = &self.file else { return Ok(Recovery::NotNeeded) };
        let _one = f.watch.recovering.lock().await;
        let state = f.watch.state()?;
        if state == sqlite_file::State::Intact {
            return Ok(Recovery::NotNeeded);
        }
        let path = f.watch.path.clone();
        let shown = path.display().to_string();
        let old = self.pool.read().unwrap_or_else(PoisonError::into_inner).clone();
        // Queries under way finish first; new ones fail at the file check meanwhile.
        // One that does not finish in time goes on against the old file, and the copy may miss
        // what it writes.
        let _ = tokio::time::timeout(CLOSE_WAIT, old.close()).await;
        let [wal, shm, journal] = f.watch.companions();
        let recovery = match state {
            sqlite_file::State::Deleted => {
                let copy = f.watch.restore_path();
                let copy_shown = copy.display().to_string();
                f.target.create_parent_dir()?;
                sqlite_file::remove(&copy).map_err(|e| io_error(&copy_shown, e))?;
                let writer = self.log_writer.as_ref().ok_or_else(|| {
                    StoreError::Other(format!("SQLite database {shown}: no connection left to restore it from"))
                })?;
                writer.copy_to(&copy_shown).await?;
                writer.close().await;
                // The old database's companions, if closing left them, must not be read as
                // the copy's.
                for p in [&wal, &shm, &journal] {
                    sqlite_file::remove(p).map_err(|e| io_error(&p.display().to_string(), e))?;
                }
                // Put in place only if the path is still free (a link fails if it is not).
                let linked = std::fs::hard_link(&copy, &path);
                let _ = sqlite_file::remove(&copy);
                match linked {
                    Ok(()) => Recovery::Restored(format!(
                        "SQLite database {shown} had been deleted while open: restored from sluice's open connection \
                         (nothing written before was lost) and opened again"
                    )),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Recovery::Switched(format!(
                        "SQLite database {shown} had been deleted while open and another file was put in its place: \
                         using that file from now on"
                    )),
                    Err(e) => return Err(io_error(&shown, e)),
                }
            }
            sqlite_file::State::Replaced(_) => {
                if let Some(w) = &self.log_writer {
                    w.close().await;
                }
                // A file still in WAL mode (from an older sluice): SQLite leaves the WAL of a moved
                // database in place, and read beside the new file it would overlay the old file's
                // pages on it. One brought along with the new file is kept. The wal-index is
                // rebuilt from the WAL, so it goes either way.
                if f.watch.wal_is_ours() {
                    sqlite_file::remove(&wal).map_err(|e| io_error(&wal.display().to_string(), e))?;
                }
                sqlite_file::remove(&shm).map_err(|e| io_error(&shm.display().to_string(), e))?;
                Recovery::Switched(format!(
                    "SQLite database {shown} was replaced by another file while open: using the new file from now on"
                ))
            }
            sqlite_file::State::Intact => unreachable!("returned above"),
        };
        let id = sqlite_file::identity(&path).map_err(|e| io_error(&shown, e))?;
        let pool = f.target.connect(f.pool_size, Some((&path, id))).await?;
        schema::migrate(&pool, self.backend, SCHEMA_VERSION).await?;
        f.watch.set_expected(id);
        *self.pool.write().unwrap_or_else(PoisonError::into_inner) = pool;
        if let Some(w) = &self.log_writer {
            w.reopen().await?;
        }
        f.watch.note_wal();
        Ok(recovery)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether spend logs are written on a SQLite connection and thread of their own (a SQLite
    /// file) rather than through the pool.
    #[doc(hidden)]
    pub fn logs_on_own_connection(&self) -> bool {
        self.log_writer.is_some()
    }

    /// The schema version the database has been migrated to.
    pub async fn schema_version(&self) -> Result<i64> {
        schema::version(&self.pool()?).await
    }

    /// A cheap round trip, for `/health/readiness`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool()?).await.map_err(errors::db)?;
        Ok(())
    }

    // --- keys ---
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<()> {
        keys::insert(self, key).await
    }
    /// Writes every field of the row except `spend` and `model_spend` (those move only through
    /// [`apply_increments`](Self::apply_increments) and [`reset_spend`](Self::reset_spend), so an update
    /// never loses spend written by another replica). A key no longer in the database is an
    /// error.
    pub async fn update_key(&self, key: &KeyRecord) -> Result<()> {
        keys::update(self, key).await
    }
    pub async fn get_key(&self, token: &str) -> Result<Option<KeyRecord>> {
        keys::get(self, token).await
    }
    pub async fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRecord>> {
        keys::by_alias(self, alias).await
    }
    /// One page of keys, newest first, and the total count matching the filter.
    pub async fn list_keys(&self, filter: &KeyFilter) -> Result<(Vec<KeyRecord>, i64)> {
        keys::list(self, filter).await
    }
    pub async fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        keys::all(self).await
    }
    /// Deletes the keys whose tokens are given; returns the tokens that existed.
    pub async fn delete_keys(&self, tokens: &[String]) -> Result<Vec<String>> {
        delete_ids(self, keys::TABLE.name, keys::TABLE.key, tokens).await
    }
    /// Replaces a key's token (`/key/regenerate`): the row of `old_token` gets `new.token` and
    /// `new`'s other fields except `spend`/`model_spend`, which keep their stored values.
    pub async fn rekey(&self, old_token: &str, new: &KeyRecord) -> Result<()> {
        keys::rekey(self, old_token, new).await
    }

    // --- users ---
    pub async fn insert_user(&self, user: &UserRecord) -> Result<()> {
        users::insert(self, user).await
    }
    /// Every field except `spend`/`model_spend`.
    pub async fn update_user(&self, user: &UserRecord) -> Result<()> {
        users::update(self, user).await
    }
    pub async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        users::get(self, user_id).await
    }
    pub async fn all_users(&self) -> Result<Vec<UserRecord>> {
        users::all(self).await
    }
    pub async fn delete_users(&self, user_ids: &[String]) -> Result<Vec<String>> {
        delete_ids(self, users::TABLE.name, users::TABLE.key, user_ids).await
    }

    // --- teams ---
    pub async fn insert_team(&self, team: &TeamRecord) -> Result<()> {
        teams::insert(self, team).await
    }
    /// Every field except `spend`/`model_spend`.
    pub async fn update_team(&self, team: &TeamRecord) -> Result<()> {
        teams::update(self, team).await
    }
    pub async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>> {
        teams::get(self, team_id).await
    }
    pub async fn all_teams(&self) -> Result<Vec<TeamRecord>> {
        teams::all(self).await
    }
    pub async fn delete_teams(&self, team_ids: &[String]) -> Result<Vec<String>> {
        delete_ids(self, teams::TABLE.name, teams::TABLE.key, team_ids).await
    }

    // --- budgets ---
    pub async fn insert_budget(&self, budget: &BudgetRecord) -> Result<()> {
        budgets::insert(self, budget).await
    }
    /// Writes every field of the budget; a budget that is not there is an error.
    pub async fn update_budget(&self, budget: &BudgetRecord) -> Result<()> {
        budgets::update(self, budget).await
    }
    pub async fn get_budget(&self, budget_id: &str) -> Result<Option<BudgetRecord>> {
        budgets::get(self, budget_id).await
    }
    pub async fn all_budgets(&self) -> Result<Vec<BudgetRecord>> {
        budgets::all(self).await
    }
    pub async fn delete_budgets(&self, budget_ids: &[String]) -> Result<Vec<String>> {
        delete_ids(self, budgets::TABLE.name, budgets::TABLE.key, budget_ids).await
    }

    // --- organizations ---
    pub async fn insert_organization(&self, org: &OrganizationRecord) -> Result<()> {
        organizations::insert(self, org).await
    }
    /// Every field except `spend`/`model_spend`.
    pub async fn update_organization(&self, org: &OrganizationRecord) -> Result<()> {
        organizations::update(self, org).await
    }
    pub async fn get_organization(&self, organization_id: &str) -> Result<Option<OrganizationRecord>> {
        organizations::get(self, organization_id).await
    }
    pub async fn all_organizations(&self) -> Result<Vec<OrganizationRecord>> {
        organizations::all(self).await
    }
    /// Inserts or overwrites organizations, spend included (the LiteLLM import).
    pub async fn upsert_organizations(&self, orgs: &[OrganizationRecord]) -> Result<()> {
        organizations::upsert_all(self, orgs).await
    }
    /// Deletes the organizations and their memberships; returns the ids that existed.
    pub async fn delete_organizations(&self, organization_ids: &[String]) -> Result<Vec<String>> {
        organizations::delete(self, organization_ids).await
    }
    /// Adds a membership; the user already being a member is a `Conflict`.
    pub async fn insert_org_member(&self, member: &OrgMemberRecord) -> Result<()> {
        organizations::insert_member(self, member).await
    }
    /// Writes a membership's role and budget; whether it was there.
    pub async fn update_org_member(&self, member: &OrgMemberRecord) -> Result<bool> {
        organizations::update_member(self, member).await
    }
    /// Inserts or overwrites memberships, spend included (the LiteLLM import).
    pub async fn upsert_org_members(&self, members: &[OrgMemberRecord]) -> Result<()> {
        organizations::upsert_members(self, members).await
    }
    pub async fn get_org_member(&self, user_id: &str, organization_id: &str) -> Result<Option<OrgMemberRecord>> {
        organizations::get_member(self, user_id, organization_id).await
    }
    /// The members of one organization.
    pub async fn org_members(&self, organization_id: &str) -> Result<Vec<OrgMemberRecord>> {
        organizations::members_by(self, Some(("organization_id", organization_id))).await
    }
    /// The organizations one user belongs to.
    pub async fn user_org_memberships(&self, user_id: &str) -> Result<Vec<OrgMemberRecord>> {
        organizations::members_by(self, Some(("user_id", user_id))).await
    }
    pub async fn all_org_members(&self) -> Result<Vec<OrgMemberRecord>> {
        organizations::members_by(self, None).await
    }
    pub async fn delete_org_member(&self, user_id: &str, organization_id: &str) -> Result<bool> {
        organizations::delete_member(self, user_id, organization_id).await
    }

    // --- team memberships ---
    /// Adds `team_id` to a member's `teams`, creating the user (`new`) when there is none: by
    /// `new.user_id`, or with `by_email` by `new.user_email` (case-insensitive). Serialised with
    /// every other join of the same user through the database's locks, so concurrent joins by
    /// any number of replicas leave one user row listing every team. Returns the row as written.
    pub async fn join_team(
        &self,
        new: &UserRecord,
        by_email: bool,
        team_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(UserRecord, Joined)> {
        team_memberships::join(self, new, by_email, team_id, now).await
    }
    /// Every membership row, or one team's.
    pub async fn team_memberships(&self, team_id: Option<&str>) -> Result<Vec<TeamMembershipRecord>> {
        team_memberships::list(self, team_id).await
    }
    pub async fn get_team_membership(&self, user_id: &str, team_id: &str) -> Result<Option<TeamMembershipRecord>> {
        team_memberships::get(self, user_id, team_id).await
    }
    /// Sets (or with `None` removes) a member's `max_budget_in_team`, creating the membership row
    /// as needed (its spend is kept); a new budget row gets `new_budget_id`. One transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_member_budget(
        &self,
        user_id: &str,
        team_id: &str,
        max_budget: Option<f64>,
        new_budget_id: &str,
        by: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(TeamMembershipRecord, Option<BudgetRecord>)> {
        team_memberships::set_budget(self, user_id, team_id, max_budget, new_budget_id, by, now).await
    }
    /// Deletes a membership and its budget; whether there was one.
    pub async fn delete_team_membership(&self, user_id: &str, team_id: &str) -> Result<bool> {
        team_memberships::delete(self, user_id, team_id).await
    }

    // --- end users ---
    pub async fn all_end_users(&self) -> Result<Vec<EndUserRecord>> {
        end_users::all(self).await
    }
    /// A new end user; a taken `user_id` is a `Conflict`.
    pub async fn insert_end_user(&self, end_user: &EndUserRecord) -> Result<()> {
        end_users::insert(self, end_user).await
    }
    /// Every field except `spend`; an end user that is not there is an error.
    pub async fn update_end_user(&self, end_user: &EndUserRecord) -> Result<()> {
        end_users::update(self, end_user).await
    }
    pub async fn get_end_user(&self, user_id: &str) -> Result<Option<EndUserRecord>> {
        end_users::get(self, user_id).await
    }
    /// Deletes the end users whose ids are given; returns the ids that existed.
    pub async fn delete_end_users(&self, user_ids: &[String]) -> Result<Vec<String>> {
        delete_ids(self, end_users::TABLE.name, end_users::TABLE.key, user_ids).await
    }
    /// Inserts the end user, or updates every field but the spend of an existing one (its
    /// stored spend is kept).
    pub async fn upsert_end_user(&self, end_user: &EndUserRecord) -> Result<()> {
        end_users::upsert(self, end_user).await
    }

    // --- spend ---
    /// Adds every increment (`spend = spend + x`, creating end-user rows as needed, merging
    /// `model_spend`) in one transaction. Rows are touched in a fixed order so concurrent
    /// replicas cannot deadlock. On error nothing was applied.
    pub async fn apply_increments(&self, increments: &[SpendIncrement]) -> Result<()> {
        spend::apply_increments(self, increments).await
    }
    /// Inserts spend-log rows in one transaction (not the increments' one: on a SQLite file the
    /// rows go through a connection of their own). A request id already logged is skipped, so a
    /// batch may be retried. On success the vector comes back empty with its capacity, for the
    /// next batch; on failure nothing was written and the rows come back in the error.
    pub async fn insert_spend_logs(
        &self,
        logs: Vec<SpendLogRecord>,
    ) -> std::result::Result<Vec<SpendLogRecord>, LogsNotWritten> {
        spend::insert_logs(self, logs, std::time::Duration::ZERO).await
    }
    /// [`Store::insert_spend_logs`], spread over about `spread`: a SQLite file's spend-log thread
    /// writes the batch in small pieces paced to end then (sooner if the batch is small enough
    /// that pieces never wait), so that it takes a steady sliver of a core shared with requests
    /// instead of bursts. PostgreSQL and `sqlite::memory:` write at once.
    pub async fn insert_spend_logs_paced(
        &self,
        logs: Vec<SpendLogRecord>,
        spread: std::time::Duration,
    ) -> std::result::Result<Vec<SpendLogRecord>, LogsNotWritten> {
        spend::insert_logs(self, logs, spread).await
    }
    /// Budget reset: sets `spend` (and `model_spend`) to zero and `budget_reset_at` to `next`.
    pub async fn reset_spend(&self, spender: &Spender, next: Option<DateTime<Utc>>) -> Result<()> {
        spend::reset(self, spender, next).await
    }
    /// Raw rows, newest first.
    pub async fn spend_logs(&self, filter: &SpendLogFilter) -> Result<Vec<SpendLogRecord>> {
        spend::logs(self, filter).await
    }
    /// Rows grouped by UTC day, oldest first.
    pub async fn spend_by_day(&self, filter: &SpendLogFilter) -> Result<Vec<DailySpend>> {
        spend::by_day(self, filter).await
    }
    /// Sum of `spend` over the spend logs between `start` and `end` (all time when `None`).
    pub async fn global_spend(&self, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<f64> {
        spend::global(self, start, end).await
    }

    // --- models (store_model_in_db) ---
    /// Inserts the model, or replaces the one with the same `model_id` (keeping its `created_at`).
    pub async fn insert_model(&self, model: &ModelRecord) -> Result<()> {
        models::insert(self, model).await
    }
    pub async fn delete_model(&self, model_id: &str) -> Result<bool> {
        models::delete(self, model_id).await
    }
    /// Stores a Responses API answer (refused over [`MAX_RESPONSE_BYTES`]).
    pub async fn insert_response(&self, response: &ResponseRecord) -> Result<()> {
        responses::insert(self, response).await
    }

    /// The stored response `id`, whoever owns it (the caller checks).
    pub async fn get_response(&self, id: &str) -> Result<Option<ResponseRecord>> {
        responses::get(self, id).await
    }

    /// Deletes the stored response `id` if `owner` made it; whether there was one.
    pub async fn delete_response(&self, id: &str, owner: &str) -> Result<bool> {
        responses::delete(self, id, owner).await
    }

    // --- files and batches (`/v1/files`, `/v1/batches`) ---
    /// Records who made the upstream object `object_id` and where it lives.
    pub async fn insert_object(&self, object: &ObjectRecord) -> Result<()> {
        objects::insert(self, object).await
    }

    /// The record of the `kind` (`file`, `batch`) object `id`, whoever owns it (the caller checks).
    pub async fn get_object(&self, kind: &str, id: &str) -> Result<Option<ObjectRecord>> {
        objects::get(self, kind, id).await
    }

    /// The `kind` objects `owner` made (everyone's with `None`), newest first, at most `limit`.
    pub async fn list_objects(&self, kind: &str, owner: Option<&str>, limit: i64) -> Result<Vec<ObjectRecord>> {
        objects::list(self, kind, owner, limit).await
    }

    /// Marks the `kind` object `id` billed; whether this call did (false: billed already, or
    /// not recorded).
    pub async fn claim_object_billing(&self, kind: &str, id: &str) -> Result<bool> {
        objects::claim_billing(self, kind, id).await
    }

    /// Forgets the `kind` object `id`; whether it was recorded.
    pub async fn delete_object(&self, kind: &str, id: &str) -> Result<bool> {
        objects::delete(self, kind, id).await
    }

    pub async fn all_models(&self) -> Result<Vec<ModelRecord>> {
        models::all(self).await
    }

    // --- settings changed through `/config/update` ---
    /// Stores `value` as the settings section `name` (`router_settings`, ...), replacing it.
    pub async fn put_config_param(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        config::put(self, name, value).await
    }
    /// Every stored settings section, by name.
    pub async fn config_params(&self) -> Result<Vec<ConfigParam>> {
        config::all(self).await
    }

    // --- changes ---
    /// A cheap mark of the keys, users, teams and organizations as the management API leaves them: each
    /// table's row count and latest `updated_at`. Every create, delete and update moves it (spend
    /// does not), so a replica polling for changes made elsewhere reads the tables again only
    /// when it moved.
    pub async fn change_mark(&self) -> Result<[i64; 8]> {
        let part = |t: &str| {
            format!("(SELECT COUNT(*) FROM {t}) AS {t}_n, (SELECT COALESCE(MAX(updated_at), 0) FROM {t}) AS {t}_at")
        };
        let q = format!(
            "SELECT {}, {}, {}, {}",
            part("sluice_keys"),
            part("sluice_users"),
            part("sluice_teams"),
            part("sluice_organizations")
        );
        let row = sqlx::query(&q).fetch_one(&self.pool()?).await.map_err(errors::db)?;
        let mut mark = [0i64; 8];
        for (i, v) in mark.iter_mut().enumerate() {
            *v = row.try_get::<i64, _>(i).map_err(errors::db)?;
        }
        Ok(mark)
    }
}

fn io_error(path: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("SQLite database {path}: {e}; check that the directory is writable"))
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later can fail with
/// "database is locked" when another connection wrote in between, and busy waiting cannot help.
pub(crate) async fn begin_write(pool: &AnyPool, backend: Backend) -> Result<Transaction<'static, Any>> {
    let tx = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    };
    tx.map_err(errors::db)
}

/// The file of a SQLite database's `main` schema, as SQLite resolved it (an absolute path).
async fn main_file(pool: &AnyPool) -> Result<Option<String>> {
    let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_optional(pool)
        .await
        .map_err(errors::db)?;
    let file = row.map(|r| r.try_get::<Option<String>, _>("file")).transpose().map_err(errors::db)?.flatten();
    Ok(file.filter(|f| !f.is_empty()))
}

/// Deletes the rows whose `key` is in `ids`, in one transaction; returns the ids that existed.
async fn delete_ids(store: &Store, table: &str, key: &str, ids: &[String]) -> Result<Vec<String>> {
    let mut ids: Vec<&String> = ids.iter().collect();
    ids.sort();
    ids.dedup();
    let mut tx = begin_write(&store.pool()?, store.backend).await?;
    let mut deleted = Vec::new();
    for id in ids {
        let mut params = Params::new();
        let q = format!("DELETE FROM {table} WHERE {key} = {}", params.push(Val::text(id)));
        let done = sql::query(&q, params).execute(&mut *tx).await.map_err(errors::db)?;
        if done.rows_affected() > 0 {
            deleted.push(id.clone());
        }
    }
    tx.commit().await.map_err(errors::db)?;
    Ok(deleted)
}

/// How many rows of each kind [`import_litellm`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub keys: usize,
    pub users: usize,
    pub teams: usize,
    pub end_users: usize,
    pub organizations: usize,
}

/// Copies keys, users, teams, end users and their budgets and spend from a LiteLLM PostgreSQL
/// database (its Prisma schema: `"LiteLLM_VerificationToken"`, `"LiteLLM_UserTable"`,
/// `"LiteLLM_TeamTable"`, `"LiteLLM_EndUserTable"`, `"LiteLLM_BudgetTable"`) into `into`. Rows
/// already present (same token / id) are updated, so the import can be run again. Tables and
/// columns an older LiteLLM lacks are skipped (their counts are 0, their fields empty);
/// [`import_litellm_report`] also lists them.
pub async fn import_litellm(source_url: &str, into: &Store) -> Result<ImportCounts> {
    Ok(import_litellm_report(source_url, into).await?.counts)
}
