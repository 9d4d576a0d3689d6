//! The schema and its versioned migrations. Each step is SQL valid on both SQLite and
//! PostgreSQL (TEXT, BIGINT, DOUBLE PRECISION only, so the `Any` driver can decode every column),
//! applied in order inside one transaction at [`Store::open`](crate::Store::open); the version
//! reached is recorded in `sluice_schema_version`, so re-opening is a no-op.

use sqlx::AnyPool;
use sqlx::Row;

use crate::errors;
use crate::{Backend, Result, StoreError};

/// One schema version: the statements that take the database from the previous version to it.
/// Never edit a released step; add a new one.
struct Migration {
    version: i64,
    /// The one backend the step is for (a no-op, still recorded, on the other), or both.
    only_on: Option<Backend>,
    statements: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        only_on: None,
        statements: &[
            "CREATE TABLE sluice_keys (
            token TEXT NOT NULL PRIMARY KEY,
            key_name TEXT,
            key_alias TEXT,
            user_id TEXT,
            team_id TEXT,
            models TEXT NOT NULL DEFAULT '[]',
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            max_budget DOUBLE PRECISION,
            soft_budget DOUBLE PRECISION,
            budget_duration TEXT,
            budget_reset_at BIGINT,
            expires BIGINT,
            tpm_limit BIGINT,
            rpm_limit BIGINT,
            max_parallel_requests BIGINT,
            model_max_budget TEXT NOT NULL DEFAULT '{}',
            model_spend TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            aliases TEXT NOT NULL DEFAULT '{}',
            blocked BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT,
            updated_at BIGINT,
            created_by TEXT,
            updated_by TEXT
        )",
            "CREATE INDEX sluice_keys_user_id_idx ON sluice_keys (user_id)",
            "CREATE INDEX sluice_keys_team_id_idx ON sluice_keys (team_id)",
            // Partial, so any number of keys may have no alias.
            "CREATE UNIQUE INDEX sluice_keys_key_alias_uniq ON sluice_keys (key_alias) WHERE key_alias IS NOT NULL",
            "CREATE TABLE sluice_users (
            user_id TEXT NOT NULL PRIMARY KEY,
            user_alias TEXT,
            user_email TEXT,
            user_role TEXT,
            teams TEXT NOT NULL DEFAULT '[]',
            models TEXT NOT NULL DEFAULT '[]',
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            max_budget DOUBLE PRECISION,
            budget_duration TEXT,
            budget_reset_at BIGINT,
            tpm_limit BIGINT,
            rpm_limit BIGINT,
            max_parallel_requests BIGINT,
            model_max_budget TEXT NOT NULL DEFAULT '{}',
            model_spend TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at BIGINT,
            updated_at BIGINT
        )",
            "CREATE TABLE sluice_teams (
            team_id TEXT NOT NULL PRIMARY KEY,
            team_alias TEXT,
            organization_id TEXT,
            admins TEXT NOT NULL DEFAULT '[]',
            members TEXT NOT NULL DEFAULT '[]',
            members_with_roles TEXT NOT NULL DEFAULT '[]',
            models TEXT NOT NULL DEFAULT '[]',
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            max_budget DOUBLE PRECISION,
            soft_budget DOUBLE PRECISION,
            budget_duration TEXT,
            budget_reset_at BIGINT,
            tpm_limit BIGINT,
            rpm_limit BIGINT,
            max_parallel_requests BIGINT,
            model_max_budget TEXT NOT NULL DEFAULT '{}',
            model_spend TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            blocked BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT,
            updated_at BIGINT
        )",
            "CREATE TABLE sluice_end_users (
            user_id TEXT NOT NULL PRIMARY KEY,
            alias TEXT,
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            max_budget DOUBLE PRECISION,
            blocked BIGINT NOT NULL DEFAULT 0
        )",
            // `user_id` holds the record's `user` field (`user` is reserved in PostgreSQL).
            "CREATE TABLE sluice_spend_logs (
            request_id TEXT NOT NULL PRIMARY KEY,
            call_type TEXT NOT NULL,
            api_key TEXT NOT NULL,
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            total_tokens BIGINT NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            start_time BIGINT NOT NULL,
            end_time BIGINT NOT NULL,
            model TEXT NOT NULL,
            model_id TEXT,
            model_group TEXT,
            custom_llm_provider TEXT,
            api_base TEXT,
            user_id TEXT,
            team_id TEXT,
            end_user TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            request_tags TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL
        )",
            // LiteLLM lacks (api_key, startTime): per-key spend queries scan the whole table there.
            "CREATE INDEX sluice_spend_logs_key_time_idx ON sluice_spend_logs (api_key, start_time)",
            "CREATE INDEX sluice_spend_logs_time_idx ON sluice_spend_logs (start_time)",
            "CREATE INDEX sluice_spend_logs_user_idx ON sluice_spend_logs (user_id)",
            "CREATE INDEX sluice_spend_logs_team_idx ON sluice_spend_logs (team_id)",
            "CREATE TABLE sluice_models (
            model_id TEXT NOT NULL PRIMARY KEY,
            model_name TEXT NOT NULL,
            litellm_params TEXT NOT NULL DEFAULT '{}',
            model_info TEXT NOT NULL DEFAULT '{}',
            created_at BIGINT
        )",
        ],
    },
    Migration {
        version: 2,
        only_on: None,
        statements: &[
            // Every request inserts a spend-log row, and each index is one more B-tree insert
            // (together a sixth of a request's CPU). Filtering logs by user or team is a rare admin
            // query; LiteLLM indexes neither. Kept: (api_key, start_time) and start_time.
            "DROP INDEX sluice_spend_logs_user_idx",
            "DROP INDEX sluice_spend_logs_team_idx",
        ],
    },
    Migration {
        version: 3,
        only_on: None,
        statements: &[
            // The `x-litellm-call-id` a client chose, kept beside the row's own id (a client
            // repeating an id made rows collide on the primary key, and all but one vanished).
            "ALTER TABLE sluice_spend_logs ADD COLUMN client_call_id TEXT",
            // Partial: rows without a client id (nearly all) cost no index insert.
            "CREATE INDEX sluice_spend_logs_client_call_id_idx ON sluice_spend_logs (client_call_id) \
             WHERE client_call_id IS NOT NULL",
        ],
    },
    Migration {
        version: 4,
        only_on: None,
        statements: &[
            // Responses API answers of providers that keep no state (`responses.rs`).
            "CREATE TABLE sluice_responses (
            response_id TEXT NOT NULL PRIMARY KEY,
            owner TEXT NOT NULL,
            model TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            conversation TEXT NOT NULL,
            response TEXT NOT NULL
        )",
        ],
    },
    Migration {
        version: 5,
        only_on: None,
        statements: &[
            // LiteLLM_BudgetTable: shared by end users, organizations and team memberships.
            "CREATE TABLE sluice_budgets (
            budget_id TEXT NOT NULL PRIMARY KEY,
            max_budget DOUBLE PRECISION,
            soft_budget DOUBLE PRECISION,
            max_parallel_requests BIGINT,
            tpm_limit BIGINT,
            rpm_limit BIGINT,
            model_max_budget TEXT NOT NULL DEFAULT '{}',
            budget_duration TEXT,
            budget_reset_at BIGINT,
            created_at BIGINT,
            updated_at BIGINT,
            created_by TEXT,
            updated_by TEXT
        )",
        ],
    },
    Migration {
        version: 6,
        only_on: None,
        statements: &[
            // Organizations above teams (LiteLLM's `LiteLLM_OrganizationTable`); the budget and
            // limits live in the `sluice_budgets` row named by `budget_id`.
            "CREATE TABLE sluice_organizations (
            organization_id TEXT NOT NULL PRIMARY KEY,
            organization_alias TEXT,
            budget_id TEXT,
            models TEXT NOT NULL DEFAULT '[]',
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            model_spend TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            blocked BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT,
            created_by TEXT,
            updated_at BIGINT,
            updated_by TEXT
        )",
            // `LiteLLM_OrganizationMembership`: one row per (user, organization).
            "CREATE TABLE sluice_organization_members (
            user_id TEXT NOT NULL,
            organization_id TEXT NOT NULL,
            user_role TEXT,
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            budget_id TEXT,
            created_at BIGINT,
            updated_at BIGINT,
            PRIMARY KEY (user_id, organization_id)
        )",
            "CREATE INDEX sluice_organization_members_org_idx ON sluice_organization_members (organization_id)",
        ],
    },
    Migration {
        version: 7,
        only_on: None,
        statements: &[
            // LiteLLM_EndUserTable's budget link, region and default model; an existing database
            // upgrades in place (its end users keep their own max_budget, no budget_id).
            "ALTER TABLE sluice_end_users ADD COLUMN budget_id TEXT",
            "ALTER TABLE sluice_end_users ADD COLUMN allowed_model_region TEXT",
            "ALTER TABLE sluice_end_users ADD COLUMN default_model TEXT",
        ],
    },
    Migration {
        version: 8,
        only_on: None,
        statements: &[
            // A team's `model_aliases` (`{alias: model}`), kept on the team row rather than in a
            // table of their own as LiteLLM does (`LiteLLM_ModelTable`).
            "ALTER TABLE sluice_teams ADD COLUMN model_aliases TEXT NOT NULL DEFAULT '{}'",
            // LiteLLM_TeamMembership: a member's spend in a team and its `max_budget_in_team`
            // (a `sluice_budgets` row).
            "CREATE TABLE sluice_team_memberships (
            user_id TEXT NOT NULL,
            team_id TEXT NOT NULL,
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            budget_id TEXT,
            PRIMARY KEY (user_id, team_id)
        )",
            "CREATE INDEX sluice_team_memberships_team_idx ON sluice_team_memberships (team_id)",
        ],
    },
    Migration {
        version: 9,
        only_on: None,
        statements: &[
            // The provider's answer id (`chatcmpl-…`), which LiteLLM's dashboards and scripts
            // look a call up by; indexed on PostgreSQL only (migration 10).
            "ALTER TABLE sluice_spend_logs ADD COLUMN response_id TEXT",
            // Daily aggregates of the spend logs (LiteLLM's `LiteLLM_DailyUserSpend`, `…TeamSpend`,
            // `…EndUserSpend` in one table): upserted by the spend writer in the spend logs'
            // own transaction, one row per distinct group per batch, so the activity reports
            // read a few rows per day instead of every request. `date` is `YYYY-MM-DD` (UTC);
            // a missing id is '' so that the primary key treats it as one value (NULLs never
            // conflict).
            "CREATE TABLE sluice_daily_spend (
            date TEXT NOT NULL,
            api_key TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            team_id TEXT NOT NULL DEFAULT '',
            end_user TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            model_group TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL DEFAULT '',
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cache_read_input_tokens BIGINT NOT NULL DEFAULT 0,
            cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0,
            api_requests BIGINT NOT NULL DEFAULT 0,
            successful_requests BIGINT NOT NULL DEFAULT 0,
            failed_requests BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (date, api_key, user_id, team_id, end_user, model, model_group, provider)
        )",
            // The per-user and per-team reports; date ranges use the primary key.
            "CREATE INDEX sluice_daily_spend_user_idx ON sluice_daily_spend (user_id, date)",
            "CREATE INDEX sluice_daily_spend_team_idx ON sluice_daily_spend (team_id, date)",
            // LiteLLM_DailyTagSpend: a request with several tags counts in each.
            "CREATE TABLE sluice_daily_tag_spend (
            date TEXT NOT NULL,
            tag TEXT NOT NULL,
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            api_requests BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (date, tag)
        )",
        ],
    },
    Migration {
        version: 10,
        // Answer ids are random, so every row inserts into this index at a random place. On
        // PostgreSQL that is one more B-tree insert per request (LiteLLM pays the same: its
        // primary key is that id). A SQLite file writes its spend logs through a small page
        // cache, where the random inserts spilled and re-read pages: 29 → 39 µs of CPU a
        // request on one core (bench/README.md, fifteenth session). There a lookup by answer
        // id scans the logs instead.
        only_on: Some(Backend::Postgres),
        statements: &[
            // Partial: rows without one (errors, pass-through) cost none.
            "CREATE INDEX sluice_spend_logs_response_id_idx ON sluice_spend_logs (response_id) \
             WHERE response_id IS NOT NULL",
        ],
    },
    Migration {
        version: 11,
        only_on: None,
        statements: &[
            // LiteLLM_Config: settings sections changed through `/config/update` (`config.rs`).
            "CREATE TABLE sluice_config (
            param_name TEXT NOT NULL PRIMARY KEY,
            param_value TEXT,
            updated_at BIGINT NOT NULL
        )",
        ],
    },
    Migration {
        version: 12,
        only_on: None,
        statements: &[
            // LiteLLM_SpendLogs' `cache_hit` and `cache_key`: a call the answer cache served.
            "ALTER TABLE sluice_spend_logs ADD COLUMN cache_hit BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE sluice_spend_logs ADD COLUMN cache_key TEXT",
        ],
    },
    Migration {
        version: 13,
        only_on: None,
        statements: &[
            // `/spend/logs?status=failure` (the UI's logs filter): failed calls are few, so
            // without an index the newest 50 of them meant walking the whole time index. Partial:
            // a successful call (nearly every row) costs no index insert. The query repeats the
            // predicate literally (`spend::where_clause`) so that SQLite matches it too.
            "CREATE INDEX sluice_spend_logs_failed_time_idx ON sluice_spend_logs (start_time) \
             WHERE status <> 'success'",
        ],
    },
    Migration {
        version: 14,
        only_on: None,
        statements: &[
            // Files and batches made through `/v1/files` and `/v1/batches` (`objects.rs`): who
            // owns each upstream id, and the deployment that holds it.
            "CREATE TABLE sluice_objects (
            object_id TEXT NOT NULL PRIMARY KEY,
            kind TEXT NOT NULL,
            owner TEXT NOT NULL,
            team_id TEXT,
            model TEXT NOT NULL,
            model_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            billed BIGINT NOT NULL DEFAULT 0
        )",
            "CREATE INDEX sluice_objects_owner_idx ON sluice_objects (owner, kind, created_at)",
        ],
    },
    Migration {
        version: 15,
        // The logs' `team_id` and `model` filters: one team of 1,000 or a rarely used model is
        // a few rows in a million, found through these instead of the whole time index. Every
        // row inserts into each, at one place per team or model; on PostgreSQL that is the
        // database's work, but a SQLite file writes its logs on the gateway's own thread, where
        // an index inserting at many places spilled its page cache before (migration 10): there
        // these filters walk the time index, newest first.
        only_on: Some(Backend::Postgres),
        statements: &[
            // Partial: calls of keys without a team cost none.
            "CREATE INDEX sluice_spend_logs_team_time_idx ON sluice_spend_logs (team_id, start_time) \
             WHERE team_id IS NOT NULL",
            // The filter matches either name (`model_group = $1 OR model = $1`): one index each.
            "CREATE INDEX sluice_spend_logs_model_group_time_idx ON sluice_spend_logs (model_group, start_time)",
            "CREATE INDEX sluice_spend_logs_model_time_idx ON sluice_spend_logs (model, start_time)",
        ],
    },
    Migration {
        version: 16,
        only_on: None,
        statements: &[
            // The daily aggregates summed per team, end user and model (`daily.rs`), upserted
            // beside `sluice_daily_spend` in the spend logs' transaction, and filled from it here.
            "CREATE TABLE sluice_daily_team_spend (
            date TEXT NOT NULL,
            team_id TEXT NOT NULL DEFAULT '',
            end_user TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            spend DOUBLE PRECISION NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            api_requests BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (date, team_id, end_user, model)
        )",
            "INSERT INTO sluice_daily_team_spend (date, team_id, end_user, model, spend, prompt_tokens, \
             completion_tokens, api_requests) \
             SELECT date, team_id, end_user, model, SUM(spend), CAST(SUM(prompt_tokens) AS BIGINT), \
             CAST(SUM(completion_tokens) AS BIGINT), CAST(SUM(api_requests) AS BIGINT) FROM sluice_daily_spend \
             GROUP BY date, team_id, end_user, model",
        ],
    },
    Migration {
        version: 17,
        // `/user/daily/activity` counts the days' rows for its page count: a month of 10,000
        // keys is 290,000 rows, and counted off the primary key (eight text columns, 60 MB) or
        // the table that took 60–95 ms. A date alone deduplicates to 2 MB, read without the
        // table once vacuumed: 25–40 ms. A row inserts into it once (a day's first call of its
        // group); the sums' updates leave it alone. PostgreSQL only: a SQLite file's reads of
        // the daily rows walk its primary key, which an index of dates would draw them from.
        only_on: Some(Backend::Postgres),
        statements: &["CREATE INDEX sluice_daily_spend_date_idx ON sluice_daily_spend (date)"],
    },
    Migration {
        version: 18,
        only_on: None,
        // A key's `allowed_cache_controls` (LiteLLM's column of the same name): the request
        // `cache` controls it may set, a JSON list as the key's `models` are.
        statements: &["ALTER TABLE sluice_keys ADD COLUMN allowed_cache_controls TEXT NOT NULL DEFAULT '[]'"],
    },
];

/// The version a database is at once this build has migrated it.
pub const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Brings the schema up to `target` (the newest version, [`LATEST_VERSION`], but in tests of an
/// upgrade). Replicas starting together are serialised by an advisory lock (PostgreSQL) or the write lock taken by `BEGIN IMMEDIATE` (SQLite).
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend, target: i64) -> Result<()> {
    let mut tx = crate::begin_write(pool, backend).await?;
    if backend == Backend::Postgres {
        // An arbitrary constant naming "sluice schema migration".
        sqlx::query("SELECT pg_advisory_xact_lock(7238123401)").execute(&mut *tx).await.map_err(errors::db)?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS sluice_schema_version (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(errors::db)?;
    let row = sqlx::query("SELECT MAX(version) AS v FROM sluice_schema_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(errors::db)?;
    let current = row.try_get::<Option<i64>, _>("v").map_err(errors::db)?.unwrap_or(0);
    let latest = LATEST_VERSION;
    if current > latest {
        return Err(StoreError::Other(format!(
            "the database schema is at version {current}, newer than this sluice build understands ({latest}); \
             upgrade sluice or point it at another database"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current && m.version <= target) {
        let statements = if m.only_on.is_none_or(|b| b == backend) { m.statements } else { &[] };
        for stmt in statements {
            sqlx::query(stmt)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Other(format!("schema migration {} failed: {e}", m.version)))?;
        }
        sqlx::query("INSERT INTO sluice_schema_version (version, applied_at) VALUES ($1, $2)")
            .bind(m.version)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(errors::db)?;
    }
    tx.commit().await.map_err(errors::db)
}

/// The schema version the database is at (for tests and diagnostics).
pub(crate) async fn version(pool: &AnyPool) -> Result<i64> {
    let row =
        sqlx::query("SELECT MAX(version) AS v FROM sluice_schema_version").fetch_one(pool).await.map_err(errors::db)?;
    Ok(row.try_get::<Option<i64>, _>("v").map_err(errors::db)?.unwrap_or(0))
}
