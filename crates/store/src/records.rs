//! The durable records, shaped like LiteLLM's rows (reference/litellm.md §3.3) so the management
//! API can serialise them with LiteLLM's field names.
//!
//! Lists and maps that LiteLLM keeps as `text[]`/`jsonb` are plain Rust values here; the store
//! keeps them as JSON text so one schema serves SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A virtual key (`LiteLLM_VerificationToken`). `token` is the SHA-256 hex of the raw key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    /// Empty: every model the key's team/user may use.
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// `{model: usd}`.
    pub model_max_budget: Map<String, Value>,
    /// `{model: usd}` spent so far, per model.
    pub model_spend: Map<String, Value>,
    /// Free-form; LiteLLM keeps `model_rpm_limit`, `model_tpm_limit` and `tags` in here.
    pub metadata: Map<String, Value>,
    pub aliases: Map<String, Value>,
    /// The request `cache` controls the key may set (`no-cache`, `ttl`, …); empty: any. Absent
    /// from a record written before it existed, which restricted nothing.
    #[serde(default)]
    pub allowed_cache_controls: Vec<String>,
    pub blocked: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// `LiteLLM_UserTable`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    pub user_alias: Option<String>,
    pub user_email: Option<String>,
    pub user_role: Option<String>,
    pub teams: Vec<String>,
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<DateTime<Utc>>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub model_max_budget: Map<String, Value>,
    pub model_spend: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One entry of a team's `members_with_roles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    /// `admin` or `user`.
    pub role: String,
}

/// `LiteLLM_TeamTable`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub organization_id: Option<String>,
    pub admins: Vec<String>,
    pub members: Vec<String>,
    pub members_with_roles: Vec<TeamMember>,
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<DateTime<Utc>>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub model_max_budget: Map<String, Value>,
    pub model_spend: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// `{alias: model}`: a team key asking for the alias is routed to the model (LiteLLM keeps
    /// these in `LiteLLM_ModelTable`, pointed at by the team's `model_id`).
    pub model_aliases: Map<String, Value>,
}

/// `LiteLLM_TeamMembership`: a user's spend in one team and the budget (a `sluice_budgets` row)
/// that caps it (`max_budget_in_team`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamMembershipRecord {
    pub user_id: String,
    pub team_id: String,
    pub spend: f64,
    pub budget_id: Option<String>,
}

/// What [`crate::Store::join_team`] did to the member's user row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// No such user: it was created, with the team in its `teams`.
    Created,
    /// The team was added to the user's `teams`.
    Added,
    /// The user already listed the team.
    Already,
}

/// `LiteLLM_BudgetTable`: a budget and limits that end users, organizations and team
/// memberships point at by `budget_id`, so one budget can be shared by many of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetRecord {
    pub budget_id: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    /// `{model: usd}`.
    pub model_max_budget: Map<String, Value>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// `LiteLLM_OrganizationTable`: an organization above teams. Its budget and limits are the
/// `sluice_budgets` row named by `budget_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrganizationRecord {
    pub organization_id: String,
    pub organization_alias: Option<String>,
    pub budget_id: Option<String>,
    /// Empty: every model.
    pub models: Vec<String>,
    pub spend: f64,
    pub model_spend: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

/// `LiteLLM_OrganizationMembership`: a user's role (`org_admin`, `internal_user`, ...) in one
/// organization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgMemberRecord {
    pub user_id: String,
    pub organization_id: String,
    pub user_role: Option<String>,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// `LiteLLM_EndUserTable`: the `user` field of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndUserRecord {
    pub user_id: String,
    pub alias: Option<String>,
    pub spend: f64,
    /// A budget of its own, used when no `budget_id` is set (rows from before budgets).
    pub max_budget: Option<f64>,
    pub blocked: bool,
    /// The `sluice_budgets` row whose limits apply: `max_budget`, `rpm_limit`, `tpm_limit`,
    /// `max_parallel_requests`, `budget_duration`.
    pub budget_id: Option<String>,
    /// `eu` or `us`: the end user's requests go only to deployments in that region.
    pub allowed_model_region: Option<String>,
    pub default_model: Option<String>,
}

/// One request in `LiteLLM_SpendLogs`.
///
/// A busy gateway holds thousands of these between writes, so what every request of a deployment
/// repeats (its model, id, provider, base, group) is an `Arc<str>` shared with the deployment, and
/// what is fixed text (`call_type`, `status`) borrows a `&'static str`. A master-key row owns one
/// string, its request id, instead of ten; a virtual key's row also copies the key hash and its
/// user and team ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendLogRecord {
    /// The row's identity: sluice's own id for the request, unique whatever the client sends.
    pub request_id: String,
    /// The `x-litellm-call-id` the client sent, when it sent one (the response carries it back).
    /// Kept beside the row's id, never as it: a client repeating an id must not be able to make
    /// its rows collide and disappear.
    pub client_call_id: Option<String>,
    pub call_type: Cow<'static, str>,
    /// Hash of the key that paid (never the raw key).
    pub api_key: Arc<str>,
    pub spend: f64,
    pub total_tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    #[serde(rename = "startTime")]
    pub start_time: DateTime<Utc>,
    #[serde(rename = "endTime")]
    pub end_time: DateTime<Utc>,
    pub model: Arc<str>,
    pub model_id: Option<Arc<str>>,
    pub model_group: Option<Arc<str>>,
    pub custom_llm_provider: Option<Arc<str>>,
    pub api_base: Option<Arc<str>>,
    pub user: Option<String>,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    pub metadata: Map<String, Value>,
    pub request_tags: Vec<String>,
    pub status: Cow<'static, str>,
    /// The id the provider gave its answer (`chatcmpl-…`, the `id` the client saw): what
    /// LiteLLM's spend log calls `request_id`, so `/spend/logs?request_id=` finds a row by it.
    pub response_id: Option<String>,
    /// Prompt tokens read from the provider's cache: summed into the daily aggregates
    /// (`LiteLLM_DailyUserSpend` has the column; its spend log does not), never stored per row.
    #[serde(skip)]
    pub cache_read_input_tokens: i64,
    /// Prompt tokens written to the provider's cache; daily aggregates only, as above.
    #[serde(skip)]
    pub cache_creation_input_tokens: i64,
    /// Answered from sluice's answer cache (LiteLLM's `cache_hit`, shown as `"True"`/`"False"`).
    #[serde(serialize_with = "python_bool", deserialize_with = "python_bool_in")]
    pub cache_hit: bool,
    /// The cache key the answer was found under (a hit) or kept under.
    pub cache_key: Option<String>,
}

/// A flag as LiteLLM's spend logs show it: Python's `str(bool)`.
fn python_bool<S: serde::Serializer>(b: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *b { "True" } else { "False" })
}

fn python_bool_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Text(t) => t.eq_ignore_ascii_case("true"),
    })
}

/// A Responses API answer served through chat, kept for `GET`, `DELETE` and
/// `previous_response_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseRecord {
    /// The id the client got (`resp_…`).
    pub response_id: String,
    /// Who made it: the key's token hash, or `master` for the master key.
    pub owner: String,
    /// The model name the client asked for.
    pub model: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The chat messages of the conversation up to and including this response (JSON array),
    /// which a `previous_response_id` continues.
    pub conversation: String,
    /// The Response object as the client got it (JSON).
    pub response: String,
}

/// A deployment added through `/model/new` (`LiteLLM_ProxyModelTable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub model_id: String,
    pub model_name: String,
    pub litellm_params: Map<String, Value>,
    pub model_info: Map<String, Value>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Whose spend an increment belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Spender {
    /// A key's token hash.
    Key(String),
    User(String),
    Team(String),
    EndUser(String),
    Organization(String),
    /// A user's spend within a team (`sluice_team_memberships`): `(user_id, team_id)`.
    TeamMember(String, String),
}

/// Spend accumulated in memory since the last write, for one spender, with per-model amounts
/// for `model_spend` (end users have none).
#[derive(Debug, Clone, PartialEq)]
pub struct SpendIncrement {
    pub spender: Spender,
    pub amount: f64,
    /// `(model, usd)` pairs to add to `model_spend`.
    pub per_model: Vec<(String, f64)>,
}

/// Filters for `/spend/logs`.
#[derive(Debug, Clone, Default)]
pub struct SpendLogFilter {
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub request_id: Option<String>,
    /// The model group the client asked for, or the upstream model.
    pub model: Option<String>,
    /// `success` or `failure`.
    pub status: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    /// Rows skipped before the first returned (with `limit`: paging, newest first).
    pub offset: Option<i64>,
}

/// One day of `/spend/logs?summarize=true`, serialized in LiteLLM's shape: `{"startTime",
/// "spend", "models", "users", "api_keys"}`, each of the last three spend by name (in no
/// particular order, as in LiteLLM: hashed, as a day can name 10,000 keys and a sorted map's
/// comparisons of their long hashes were a third of the route's time; with foldhash, as SipHash
/// was a tenth of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DailySpend {
    /// `YYYY-MM-DD` (UTC).
    #[serde(rename = "startTime")]
    pub date: String,
    pub spend: f64,
    pub models: SpendByName,
    pub users: SpendByName,
    pub api_keys: SpendByName,
}

/// Spend by model, user or key name.
pub type SpendByName = HashMap<String, f64, foldhash::fast::RandomState>;

/// [`DailySpend`]s added up row by row, oldest day first.
#[derive(Debug, Default)]
pub(crate) struct SpendDays(BTreeMap<String, DailySpend>);

impl SpendDays {
    /// Adds a row's spend to its day, model and key, and to its user when it has one. Borrowed,
    /// so that a name already counted costs no allocation.
    pub(crate) fn add(&mut self, date: &str, model: &str, user: Option<&str>, api_key: &str, spend: f64) {
        fn add_to(sums: &mut SpendByName, name: &str, spend: f64) {
            match sums.get_mut(name) {
                Some(sum) => *sum += spend,
                None => {
                    sums.insert(name.to_string(), spend);
                }
            }
        }
        if !self.0.contains_key(date) {
            // Sized as the largest day so far: days are alike, and growing a map of 10,000 keys
            // rehashes it a dozen times.
            let sized = |f: fn(&DailySpend) -> usize| {
                let n = self.0.values().map(f).max().unwrap_or(0);
                SpendByName::with_capacity_and_hasher(n, Default::default())
            };
            let day = DailySpend {
                date: date.to_string(),
                spend: 0.0,
                models: sized(|d| d.models.len()),
                users: sized(|d| d.users.len()),
                api_keys: sized(|d| d.api_keys.len()),
            };
            self.0.insert(date.to_string(), day);
        }
        let Some(day) = self.0.get_mut(date) else { return };
        day.spend += spend;
        add_to(&mut day.models, model, spend);
        if let Some(user) = user {
            add_to(&mut day.users, user, spend);
        }
        add_to(&mut day.api_keys, api_key, spend);
    }

    pub(crate) fn into_days(self) -> Vec<DailySpend> {
        self.0.into_values().collect()
    }
}

/// Filters for `/key/list`.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    /// 1-based.
    pub page: i64,
    pub size: i64,
}

/// Who made a file or batch kept upstream (`/v1/files`, `/v1/batches`), and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRecord {
    /// The upstream's id, as the client got it (`file-…`, `batch_…`).
    pub object_id: String,
    /// `file` or `batch`.
    pub kind: String,
    /// The key's token hash, or `master` for the master key.
    pub owner: String,
    pub team_id: Option<String>,
    /// The model group it was made through.
    pub model: String,
    /// The deployment (`model_info.id`) that holds it.
    pub model_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// A batch whose usage has been billed (once, when it was first seen completed).
    pub billed: bool,
}
