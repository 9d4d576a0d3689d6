//! `import_litellm`: copying keys, users, teams and end users (with budgets and spend) out of a
//! LiteLLM PostgreSQL database. LiteLLM's columns are `text[]`, `jsonb`, `timestamp(3)` and
//! `integer`, which the `Any` driver cannot decode, so every column is cast in SQL to text,
//! bigint (timestamps as unix milliseconds), double precision or boolean. Tables and columns an
//! older LiteLLM lacks are read as NULL and listed in the report instead of failing the import.

use std::collections::HashMap;

#[path = "import_orgs.rs"]
mod orgs;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::Row;

use crate::codec;
use crate::connect::Target;
use crate::errors;
use crate::limits::with_limits;
use crate::table;
use crate::{
    budgets, end_users, keys, teams, users, Backend, BudgetRecord, EndUserRecord, ImportCounts, KeyRecord, Result,
    Store, StoreError, TeamMember, TeamRecord, UserRecord,
};

/// What [`import_litellm_report`] copied, and what it could not find in the source database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub counts: ImportCounts,
    /// Tables and columns missing from the source (older LiteLLM versions), e.g.
    /// `LiteLLM_BudgetTable (table not found)`; their fields were left empty.
    pub skipped: Vec<String>,
}

const KEY_TABLE: &str = "LiteLLM_VerificationToken";
const USER_TABLE: &str = "LiteLLM_UserTable";
const TEAM_TABLE: &str = "LiteLLM_TeamTable";
const END_USER_TABLE: &str = "LiteLLM_EndUserTable";
const BUDGET_TABLE: &str = "LiteLLM_BudgetTable";

/// How a source column is cast so the `Any` driver can read it.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Real,
    /// A timestamp, read as unix milliseconds.
    Time,
    /// `jsonb`, read as JSON text.
    Json,
    /// `text[]`, read as a JSON array.
    List,
    Bool,
}
use Kind::*;

const KEY_COLS: &[(&str, Kind)] = &[
    ("token", Text),
    ("key_name", Text),
    ("key_alias", Text),
    ("user_id", Text),
    ("team_id", Text),
    ("models", List),
    ("spend", Real),
    ("max_budget", Real),
    ("budget_duration", Text),
    ("budget_reset_at", Time),
    ("expires", Time),
    ("tpm_limit", Int),
    ("rpm_limit", Int),
    ("max_parallel_requests", Int),
    ("model_max_budget", Json),
    ("model_spend", Json),
    ("metadata", Json),
    ("aliases", Json),
    ("allowed_cache_controls", List),
    ("blocked", Bool),
    ("budget_id", Text),
    ("created_at", Time),
    ("updated_at", Time),
    ("created_by", Text),
    ("updated_by", Text),
];
const USER_COLS: &[(&str, Kind)] = &[
    ("user_id", Text),
    ("user_alias", Text),
    ("user_email", Text),
    ("user_role", Text),
    ("teams", List),
    ("models", List),
    ("spend", Real),
    ("max_budget", Real),
    ("budget_duration", Text),
    ("budget_reset_at", Time),
    ("tpm_limit", Int),
    ("rpm_limit", Int),
    ("max_parallel_requests", Int),
    ("model_max_budget", Json),
    ("model_spend", Json),
    ("metadata", Json),
    ("created_at", Time),
    ("updated_at", Time),
];
const TEAM_COLS: &[(&str, Kind)] = &[
    ("team_id", Text),
    ("team_alias", Text),
    ("organization_id", Text),
    ("admins", List),
    ("members", List),
    ("members_with_roles", Json),
    ("models", List),
    ("spend", Real),
    ("max_budget", Real),
    ("budget_duration", Text),
    ("budget_reset_at", Time),
    ("tpm_limit", Int),
    ("rpm_limit", Int),
    ("max_parallel_requests", Int),
    ("model_max_budget", Json),
    ("model_spend", Json),
    ("metadata", Json),
    ("blocked", Bool),
    ("created_at", Time),
    ("updated_at", Time),
];
const END_USER_COLS: &[(&str, Kind)] = &[
    ("user_id", Text),
    ("alias", Text),
    ("spend", Real),
    ("blocked", Bool),
    ("budget_id", Text),
    ("allowed_model_region", Text),
    ("default_model", Text),
];
const BUDGET_COLS: &[(&str, Kind)] = &[
    ("budget_id", Text),
    ("max_budget", Real),
    ("soft_budget", Real),
    ("max_parallel_requests", Int),
    ("tpm_limit", Int),
    ("rpm_limit", Int),
    ("model_max_budget", Json),
    ("budget_duration", Text),
    ("budget_reset_at", Time),
    ("created_at", Time),
    ("updated_at", Time),
    ("created_by", Text),
    ("updated_by", Text),
];

/// The source's tables: name → {column → PostgreSQL data type}.
type Catalog = HashMap<String, HashMap<String, String>>;

/// Copies the LiteLLM database at `source_url` into `into` and says what was missing there.
/// See [`import_litellm`](crate::import_litellm).
pub async fn import_litellm_report(source_url: &str, into: &Store) -> Result<ImportReport> {
    let target = Target::parse(source_url)?;
    if target.backend != Backend::Postgres {
        return Err(StoreError::Other(
            "the LiteLLM database to import from must be a postgres:// or postgresql:// URL".to_owned(),
        ));
    }
    let source = target.connect(2, None).await?;
    let result = copy(&source, into).await.map_err(|e| match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(target.scrub(&m)),
        StoreError::Conflict(m) => StoreError::Conflict(target.scrub(&m)),
        StoreError::Other(m) => StoreError::Other(target.scrub(&m)),
    });
    source.close().await;
    result
}

async fn copy(source: &AnyPool, into: &Store) -> Result<ImportReport> {
    let catalog = catalog(source).await?;
    let mut report = ImportReport::default();
    let main = [KEY_TABLE, USER_TABLE, TEAM_TABLE, END_USER_TABLE];
    if main.iter().all(|t| !catalog.contains_key(*t)) {
        return Err(StoreError::Other(format!(
            "none of LiteLLM's tables ({}) are in the source database's schema; check that the URL names \
             LiteLLM's database",
            main.join(", ")
        )));
    }

    let budget_rows = read(source, &catalog, BUDGET_TABLE, BUDGET_COLS, &mut report).await?;
    let budgets: HashMap<String, Budget> =
        budget_rows.iter().map(|r| Ok((codec::text(r, "budget_id")?, Budget::from_row(r)?))).collect::<Result<_>>()?;
    let budget_records = budget_rows.iter().map(budget_from_row).collect::<Result<Vec<_>>>()?;
    let keys = read(source, &catalog, KEY_TABLE, KEY_COLS, &mut report).await?;
    let keys = keys.iter().map(|r| key_from_row(r, &budgets)).collect::<Result<Vec<_>>>()?;
    let users = read(source, &catalog, USER_TABLE, USER_COLS, &mut report).await?;
    let users = users.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
    let teams = read(source, &catalog, TEAM_TABLE, TEAM_COLS, &mut report).await?;
    let teams = teams.iter().map(team_from_row).collect::<Result<Vec<_>>>()?;
    let end_users = read(source, &catalog, END_USER_TABLE, END_USER_COLS, &mut report).await?;
    let end_users = end_users.iter().map(|r| end_user_from_row(r, &budgets)).collect::<Result<Vec<_>>>()?;
    let organizations = orgs::read_organizations(source, &catalog, &budgets, &mut report).await?;

    // One transaction: an import that fails half-way leaves the store as it was.
    let mut tx = crate::begin_write(&into.pool()?, into.backend).await?;
    // Budgets first: the end users below name them.
    table::upsert_all(&mut tx, &budgets::TABLE, &budget_records).await?;
    table::upsert_all(&mut tx, &keys::TABLE, &keys).await?;
    table::upsert_all(&mut tx, &users::TABLE, &users).await?;
    table::upsert_all(&mut tx, &teams::TABLE, &teams).await?;
    table::upsert_all(&mut tx, &end_users::TABLE, &end_users).await?;
    organizations.write(&mut tx).await?;
    tx.commit().await.map_err(errors::db)?;

    report.counts = ImportCounts {
        keys: keys.len(),
        users: users.len(),
        teams: teams.len(),
        end_users: end_users.len(),
        organizations: organizations.orgs.len(),
    };
    Ok(report)
}

async fn catalog(source: &AnyPool) -> Result<Catalog> {
    // information_schema's own types (sql_identifier, character_data) are cast to text for Any.
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name LIKE 'LiteLLM_%'",
    )
    .fetch_all(source)
    .await
    .map_err(|e| StoreError::Other(format!("cannot list the source database's tables: {e}")))?;
    let mut out = Catalog::new();
    for r in &rows {
        out.entry(codec::text(r, "t")?).or_default().insert(codec::text(r, "c")?, codec::text(r, "d")?);
    }
    Ok(out)
}

/// Every row of `table`, each wanted column cast for `Any` (typed NULL where it is missing).
/// A missing table reads as no rows; what was missing goes into the report.
async fn read(
    source: &AnyPool,
    catalog: &Catalog,
    table: &str,
    cols: &[(&str, Kind)],
    report: &mut ImportReport,
) -> Result<Vec<AnyRow>> {
    let Some(present) = catalog.get(table) else {
        report.skipped.push(format!("{table} (table not found)"));
        return Ok(Vec::new());
    };
    let key = cols[0].0;
    if !present.contains_key(key) {
        report.skipped.push(format!("{table} (no {key} column)"));
        return Ok(Vec::new());
    }
    let mut exprs = Vec::with_capacity(cols.len());
    for (col, kind) in cols {
        match present.get(*col) {
            Some(data_type) => exprs.push(format!("{} AS {col}", cast(col, *kind, data_type))),
            None => {
                report.skipped.push(format!("{table}.{col} (column not found)"));
                exprs.push(format!("{} AS {col}", typed_null(*kind)));
            }
        }
    }
    let q = format!("SELECT {} FROM \"{table}\"", exprs.join(", "));
    sqlx::query(&q)
        .fetch_all(source)
        .await
        .map_err(|e| StoreError::Other(format!("cannot read {table} from the LiteLLM database: {e}")))
}

fn cast(col: &str, kind: Kind, data_type: &str) -> String {
    let c = format!("\"{col}\"");
    let is_json = data_type == "json" || data_type == "jsonb";
    match kind {
        Text => format!("{c}::text"),
        Int => format!("{c}::bigint"),
        Real => format!("{c}::double precision"),
        Bool => format!("{c}::boolean"),
        Time if data_type.starts_with("timestamp") || data_type == "date" => {
            format!("(EXTRACT(EPOCH FROM {c}) * 1000)::bigint")
        }
        Time => format!("(EXTRACT(EPOCH FROM {c}::timestamptz) * 1000)::bigint"),
        List if data_type == "ARRAY" => format!("array_to_json({c})::text"),
        Json | List if is_json || data_type == "text" => format!("{c}::text"),
        Json | List => format!("to_json({c})::text"),
    }
}

fn typed_null(kind: Kind) -> &'static str {
    match kind {
        Text | Json | List => "NULL::text",
        Int | Time => "NULL::bigint",
        Real => "NULL::double precision",
        Bool => "NULL::boolean",
    }
}

fn flag(r: &AnyRow, col: &str) -> Result<bool> {
    r.try_get::<Option<bool>, _>(col)
        .map(|b| b.unwrap_or(false))
        .map_err(|e| StoreError::Other(format!("cannot read column {col}: {e}")))
}

/// JSON text as a value; a JSON string holding JSON (as some LiteLLM versions wrote metadata)
/// is unwrapped once.
fn json_value(r: &AnyRow, col: &str) -> Result<Value> {
    let Some(text) = codec::opt_text(r, col)? else { return Ok(Value::Null) };
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(match v {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        v => v,
    })
}

fn map(r: &AnyRow, col: &str) -> Result<Map<String, Value>> {
    Ok(match json_value(r, col)? {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// Array elements as strings; NULL elements are dropped.
fn list(r: &AnyRow, col: &str) -> Result<Vec<String>> {
    Ok(match json_value(r, col)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            })
            .collect(),
        Value::String(s) if !s.is_empty() => vec![s],
        _ => Vec::new(),
    })
}

/// A `LiteLLM_BudgetTable` row: limits shared by the keys and end users that name it.
struct Budget {
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    max_parallel_requests: Option<i64>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    model_max_budget: Map<String, Value>,
    budget_duration: Option<String>,
    budget_reset_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Budget {
    fn from_row(r: &AnyRow) -> Result<Budget> {
        Ok(Budget {
            max_budget: codec::opt_real(r, "max_budget")?,
            soft_budget: codec::opt_real(r, "soft_budget")?,
            max_parallel_requests: codec::opt_int(r, "max_parallel_requests")?,
            tpm_limit: codec::opt_int(r, "tpm_limit")?,
            rpm_limit: codec::opt_int(r, "rpm_limit")?,
            model_max_budget: map(r, "model_max_budget")?,
            budget_duration: codec::opt_text(r, "budget_duration")?,
            budget_reset_at: codec::opt_time(r, "budget_reset_at")?,
        })
    }
}

fn budget_of<'a>(r: &AnyRow, budgets: &'a HashMap<String, Budget>) -> Result<Option<&'a Budget>> {
    Ok(codec::opt_text(r, "budget_id")?.and_then(|id| budgets.get(&id)))
}

fn key_from_row(r: &AnyRow, budgets: &HashMap<String, Budget>) -> Result<KeyRecord> {
    let mut k = with_limits!(
        KeyRecord {
            token: codec::text(r, "token")?,
            key_name: codec::opt_text(r, "key_name")?,
            key_alias: codec::opt_text(r, "key_alias")?,
            user_id: codec::opt_text(r, "user_id")?,
            team_id: codec::opt_text(r, "team_id")?,
            models: list(r, "models")?,
            soft_budget: None,
            expires: codec::opt_time(r, "expires")?,
            aliases: map(r, "aliases")?,
            allowed_cache_controls: list(r, "allowed_cache_controls")?,
            blocked: flag(r, "blocked")?,
            created_at: codec::opt_time(r, "created_at")?,
            updated_at: codec::opt_time(r, "updated_at")?,
            created_by: codec::opt_text(r, "created_by")?,
            updated_by: codec::opt_text(r, "updated_by")?,
        },
        r,
        map
    );
    // A key's own limits win; its budget row fills in the rest (LiteLLM reads it the same way).
    if let Some(b) = budget_of(r, budgets)? {
        k.max_budget = k.max_budget.or(b.max_budget);
        k.soft_budget = k.soft_budget.or(b.soft_budget);
        k.tpm_limit = k.tpm_limit.or(b.tpm_limit);
        k.rpm_limit = k.rpm_limit.or(b.rpm_limit);
        k.max_parallel_requests = k.max_parallel_requests.or(b.max_parallel_requests);
        k.budget_duration = k.budget_duration.take().or_else(|| b.budget_duration.clone());
        k.budget_reset_at = k.budget_reset_at.or(b.budget_reset_at);
        if k.model_max_budget.is_empty() {
            k.model_max_budget = b.model_max_budget.clone();
        }
    }
    Ok(k)
}

fn user_from_row(r: &AnyRow) -> Result<UserRecord> {
    Ok(with_limits!(
        UserRecord {
            user_id: codec::text(r, "user_id")?,
            user_alias: codec::opt_text(r, "user_alias")?,
            user_email: codec::opt_text(r, "user_email")?,
            user_role: codec::opt_text(r, "user_role")?,
            teams: list(r, "teams")?,
            models: list(r, "models")?,
            created_at: codec::opt_time(r, "created_at")?,
            updated_at: codec::opt_time(r, "updated_at")?,
        },
        r,
        map
    ))
}

/// `members_with_roles` entries; ones without a role are plain members.
fn members(r: &AnyRow) -> Result<Vec<TeamMember>> {
    let Value::Array(items) = json_value(r, "members_with_roles")? else { return Ok(Vec::new()) };
    let field = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(items
        .iter()
        .filter_map(Value::as_object)
        .map(|m| TeamMember {
            user_id: field(m, "user_id"),
            user_email: field(m, "user_email"),
            role: field(m, "role").unwrap_or_else(|| "user".to_owned()),
        })
        .collect())
}

fn team_from_row(r: &AnyRow) -> Result<TeamRecord> {
    Ok(with_limits!(
        TeamRecord {
            team_id: codec::text(r, "team_id")?,
            team_alias: codec::opt_text(r, "team_alias")?,
            organization_id: codec::opt_text(r, "organization_id")?,
            admins: list(r, "admins")?,
            members: list(r, "members")?,
            members_with_roles: members(r)?,
            models: list(r, "models")?,
            soft_budget: None,
            blocked: flag(r, "blocked")?,
            created_at: codec::opt_time(r, "created_at")?,
            updated_at: codec::opt_time(r, "updated_at")?,
            // LiteLLM keeps them in `LiteLLM_ModelTable`, which the import does not read.
            model_aliases: Map::new(),
        },
        r,
        map
    ))
}

fn end_user_from_row(r: &AnyRow, budgets: &HashMap<String, Budget>) -> Result<EndUserRecord> {
    Ok(EndUserRecord {
        user_id: codec::text(r, "user_id")?,
        alias: codec::opt_text(r, "alias")?,
        spend: codec::real(r, "spend")?,
        // LiteLLM keeps an end user's limit only in its budget row.
        max_budget: budget_of(r, budgets)?.and_then(|b| b.max_budget),
        blocked: flag(r, "blocked")?,
        budget_id: codec::opt_text(r, "budget_id")?,
        allowed_model_region: codec::opt_text(r, "allowed_model_region")?,
        default_model: codec::opt_text(r, "default_model")?,
    })
}

/// A `LiteLLM_BudgetTable` row as it is kept here (`sluice_budgets`), for the end users (and
/// whatever else) that name it by `budget_id`.
fn budget_from_row(r: &AnyRow) -> Result<BudgetRecord> {
    Ok(BudgetRecord {
        budget_id: codec::text(r, "budget_id")?,
        max_budget: codec::opt_real(r, "max_budget")?,
        soft_budget: codec::opt_real(r, "soft_budget")?,
        max_parallel_requests: codec::opt_int(r, "max_parallel_requests")?,
        tpm_limit: codec::opt_int(r, "tpm_limit")?,
        rpm_limit: codec::opt_int(r, "rpm_limit")?,
        model_max_budget: map(r, "model_max_budget")?,
        budget_duration: codec::opt_text(r, "budget_duration")?,
        budget_reset_at: codec::opt_time(r, "budget_reset_at")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
        created_by: codec::opt_text(r, "created_by")?,
        updated_by: codec::opt_text(r, "updated_by")?,
    })
}
