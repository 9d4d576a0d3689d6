//! The checks a virtual key's request passes before routing, in LiteLLM's order and with its
//! statuses and messages (reference §3.2, §3.5, §11): blocked, model access, budgets, expiry,
//! rate limits, then the proxy-wide budget and in-flight cap.
//!
//! Budgets count the estimated cost of the requests in flight on them ([`super::reserve`]).

use super::registry::{Entry, KeyEntry, Live};
use super::reserve::Reservation;
use super::{Access, Identity};
use http::{HeaderName, HeaderValue};
use sluice_state::remote::spend::SharedSpend;
use sluice_state::{now_secs, Full, InFlightCount, InFlightSlot as Slot, LimitWindow, RateWindow, WindowSharing};
use sluice_wire::ApiError;
use std::sync::Arc;

/// A request let through: whom to charge, the parallel-request places and the budget estimates
/// it holds (given back when it is dropped), and the `x-ratelimit-*` headers for its response.
#[derive(Default)]
pub struct Admission {
    pub key: Option<Arc<KeyEntry>>,
    pub user: Option<Arc<Entry<sluice_store::UserRecord>>>,
    pub team: Option<Arc<Entry<sluice_store::TeamRecord>>>,
    pub end_user: Option<Arc<Entry<sluice_store::EndUserRecord>>>,
    /// The organization of the key's team, charged like the team.
    pub organization: Option<Arc<super::registry::OrgEntry>>,
    /// The key's user in the key's team (a key with both), charged the member's spend.
    pub member: Option<Arc<super::members::MemberEntry>>,
    pub slots: Vec<Slot>,
    pub reservation: Reservation,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Budgets near their end, for [`Access::admit_shared`] to check in Redis.
    pub confirm: Vec<super::shared::Confirm>,
    /// Shared in-flight caps, for [`Access::admit_shared`] to enter in Redis.
    pub caps: Vec<super::shared::CapCheck>,
    /// Places held in shared in-flight caps, given back when dropped.
    pub cap_slots: Vec<sluice_state::remote::cap::CapSlot>,
}

/// Model-list entries that mean "every model".
const ALL_MODELS: &[&str] = &["*", "all-proxy-models", "all-team-models"];

/// Whether a model list lets `model` through. An empty `model` is a call that names none (a
/// pass-through route LiteLLM checks no model for): no list refuses it.
fn allows(models: &[String], model: &str) -> bool {
    models.is_empty()
        || model.is_empty()
        || models.iter().any(|m| ALL_MODELS.contains(&m.as_str()) || super::groups::covers(m, model))
}

fn model_denied(object: &str, kind: &str, models: &[String], model: &str) -> ApiError {
    let list = models.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ");
    ApiError::new(
        401,
        format!(
            "Authentication Error, {object} not allowed to access model. This {object} can only access models=[{list}]. Tried to access {model}"
        ),
    )
    .kind(kind)
    .param("model")
}

/// A number as Python's `str(float)` writes it (`0.0`, `3.7e-05`, `1e+16`), so budget messages
/// read exactly as LiteLLM's: the shortest digits that read back to `x`, in fixed notation for
/// exponents from -4 to 15 (always with a fraction), else scientific with a signed two-digit
/// exponent.
pub(crate) fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits Python's repr uses.
    let text = format!("{x:e}");
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text.as_str(), 0),
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        if exp < 0 {
            return format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize));
        }
        let whole = exp as usize + 1;
        if digits.len() <= whole {
            format!("{sign}{digits}{}.0", "0".repeat(whole - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..whole], &digits[whole..])
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        format!("{sign}{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
    }
}

pub(crate) fn budget_exceeded(message: String) -> ApiError {
    ApiError::new(400, message).kind("budget_exceeded")
}

/// Whether a spend reaches a budget: LiteLLM refuses keys, users, teams and end users at
/// `spend >= max_budget`, but lets the proxy-wide budget be spent up to `spend > max_budget`.
#[derive(Clone, Copy)]
enum Reached {
    AtMax,
    PastMax,
}

/// Holds the request's estimate against `live`'s budget and checks it, counting the estimates
/// of the other requests in flight as spent. Over on spend alone: LiteLLM's 400. Over only with
/// the requests in flight counted: a 429, as they may end up costing less (retry when they end).
///
/// With budgets shared (`shared`: the spender's total in Redis), the spend is the shared total as
/// last synced, and a budget near its end is listed for [`Access::admit_shared`] to check in
/// Redis; while Redis is away the limit is this replica's share of what was left.
fn hold_budget(
    adm: &mut Admission,
    live: &Arc<Live>,
    max: Option<f64>,
    reached: Reached,
    shared: Option<Arc<SharedSpend>>,
    message: impl Fn(f64, f64) -> String + Send + Sync + 'static,
) -> Result<(), ApiError> {
    let Some(max) = max else { return Ok(()) };
    let in_flight = adm.reservation.hold(live);
    let (spend, limit) = super::shared::budget_view(live, shared.as_ref(), max);
    let over = |x: f64, limit: f64| match reached {
        Reached::AtMax => x >= limit,
        Reached::PastMax => x > limit,
    };
    if over(spend, max) || (limit < max && spend >= limit) {
        return Err(budget_exceeded(message(spend, max)));
    }
    if over(spend + in_flight, limit) {
        return Err(in_flight_over(message(spend, max), in_flight));
    }
    let here = in_flight + adm.reservation.amount();
    if let Some(s) = shared.filter(|s| s.remote().healthy() && s.near(max, here)) {
        let past = matches!(reached, Reached::PastMax);
        adm.confirm.push(super::shared::Confirm {
            spend: s,
            live: live.clone(),
            max,
            past,
            message: Box::new(message),
        });
    }
    Ok(())
}

/// Over only with the requests in flight counted: a 429, as they may end up costing less.
pub(crate) fn in_flight_over(message: String, in_flight: f64) -> ApiError {
    ApiError::new(
        429,
        format!(
            "{message} Requests in flight on this budget are estimated to cost {in_flight} more; retry when they have finished."
        ),
    )
    .kind("budget_exceeded")
    .header("retry-after", "1".to_string())
}

/// `model_max_budget` values are a number (USD) or LiteLLM's `{"budget_limit": x, ...}`.
fn model_budget(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Object(o) => match o.get("budget_limit")? {
            serde_json::Value::String(s) => s.parse().ok(),
            other => other.as_f64(),
        },
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn metadata_limit(meta: &serde_json::Map<String, serde_json::Value>, field: &str, model: &str) -> Option<u64> {
    meta.get(field)?.get(model)?.as_f64().map(|x| x.max(0.0) as u64)
}

/// Shares `window` through Redis as `descriptor:value:kind` (e.g. `api_key:<token hash>:rpm`),
/// the first time only: after that this is one load.
fn bind(window: &LimitWindow, sharing: &Arc<WindowSharing>, descriptor: &str, value: &str, kind: &str) {
    if !window.is_shared() {
        window.bind(sharing, &format!("{descriptor}:{value}:{kind}"));
    }
}

struct Limited<'a> {
    descriptor: &'static str,
    value: String,
    live: &'a Live,
    rpm: Option<i64>,
    tpm: Option<i64>,
    parallel: Option<i64>,
    /// The key's own limits also go out as `x-ratelimit-api_key-*` headers.
    headers: bool,
}

pub(crate) fn rate_limited(descriptor: &str, value: &str, kind: &str, limit: u64, full: Full) -> ApiError {
    let reset = chrono::Utc::now() + chrono::Duration::seconds(full.retry_after as i64);
    let reset = reset.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    ApiError::new(
        429,
        format!(
            "Rate limit exceeded for {descriptor}: {value}. Limit type: {kind}. Current limit: {limit}, Remaining: 0. Limit resets at: {reset}"
        ),
    )
    .header("retry-after", full.retry_after.to_string())
    .header("rate_limit_type", kind.to_string())
    .header("reset_at", reset)
}

fn header(name: String, value: u64) -> Option<(HeaderName, HeaderValue)> {
    Some((HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from(value)))
}

// The checks that say whether a key may be used at all, whatever the route: every route runs
// them (`Access::check_standing`), and `Access::admit` runs the same functions in LiteLLM's order
// among its per-model checks.

/// LiteLLM's 401 for a blocked key.
fn key_blocked(k: &sluice_store::KeyRecord) -> Result<(), ApiError> {
    if k.blocked {
        return Err(super::auth::auth_error("Key is blocked. Update via `/key/unblock` if you're admin."));
    }
    Ok(())
}

/// LiteLLM's 401 for a key of a blocked team.
fn team_blocked(t: &sluice_store::TeamRecord) -> Result<(), ApiError> {
    if t.blocked {
        return Err(super::auth::auth_error(format!(
            "Team={} is blocked. Update via `/team/unblock` if you're admin.",
            t.team_id
        )));
    }
    Ok(())
}

/// LiteLLM's 400 `expired_key` for a key past its `expires`.
fn key_expired(k: &sluice_store::KeyRecord) -> Result<(), ApiError> {
    let Some(expires) = k.expires else { return Ok(()) };
    let now = chrono::Utc::now();
    if expires < now {
        return Err(ApiError::new(
            400,
            format!(
                "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
                expires.to_rfc3339(),
                now.to_rfc3339()
            ),
        )
        .kind("expired_key")
        .param(format!("sk-...{}", &k.token[k.token.len().saturating_sub(4)..])));
    }
    Ok(())
}

impl Access {
    /// Whether a `models` list lets its holder call `model`: listed (or matched by a listed
    /// wildcard), everything, or through a listed access group. The access groups are read only
    /// when the list itself does not decide.
    pub fn allows(&self, models: &[String], model: &str) -> bool {
        allows(models, model) || self.access_groups.load().grant(models, model)
    }

    /// Whether `identity` may call `model` at all (the `/models` list of a key).
    pub fn admit_model(&self, identity: &Identity, model: &str) -> bool {
        let Identity::Key(key) = identity else { return true };
        let team_ok = key
            .record
            .team_id
            .as_deref()
            .and_then(|t| self.registry.teams.get(t))
            .is_none_or(|t| self.allows(&t.record.models, model));
        self.allows(&key.record.models, model) && team_ok
    }

    /// Whether `identity` may call `model`, with the 401 [`Access::admit`] gives when not: how a
    /// request's own `fallbacks` are each checked against the key's models before any is tried.
    pub fn check_model(&self, identity: &Identity, model: &str) -> Result<(), ApiError> {
        let Identity::Key(key) = identity else { return Ok(()) };
        let k = &key.record;
        if !allows(&k.models, model) {
            return Err(model_denied("key", "key_model_access_denied", &k.models, model));
        }
        if let Some(t) = k.team_id.as_deref().and_then(|t| self.registry.teams.get(t)) {
            if !allows(&t.record.models, model) {
                return Err(model_denied("team", "team_model_access_denied", &t.record.models, model));
            }
        } else if let Some(u) = k.user_id.as_deref().and_then(|u| self.registry.users.get(u)) {
            if !allows(&u.record.models, model) {
                return Err(model_denied("user", "user_model_access_denied", &u.record.models, model));
            }
        }
        Ok(())
    }

    /// The model a team key's `model` names through its team's `model_aliases`, if it is an
    /// alias there: resolved before the model access check, as LiteLLM does. `None` (nothing
    /// allocated) for every other caller and name.
    pub fn team_alias(&self, identity: &Identity, model: &str) -> Option<String> {
        let Identity::Key(key) = identity else { return None };
        let team = self.registry.teams.get(key.record.team_id.as_deref()?)?;
        team.record.model_aliases.get(model)?.as_str().map(str::to_string)
    }

    /// Whether `identity` may use the gateway at all: a key that is blocked, expired, or of a
    /// blocked team is refused on every route (management, model lists, metrics), with the
    /// statuses and messages the proxy routes give. Budgets and rate limits are not checked
    /// here: they limit what a request spends, and these routes spend nothing (a key over its
    /// budget can still read its own `/key/info`, which says why it is refused).
    pub fn check_standing(&self, identity: &Identity) -> Result<(), ApiError> {
        let Identity::Key(key) = identity else { return Ok(()) };
        let k = &key.record;
        key_blocked(k)?;
        if let Some(t) = k.team_id.as_deref().and_then(|t| self.registry.teams.get(t)) {
            team_blocked(&t.record)?;
        }
        key_expired(k)
    }

    /// Admits `identity`'s request for `model` (by end user `end_user`), or says why not.
    pub async fn admit(&self, identity: &Identity, model: &str, end_user: Option<&str>) -> Result<Admission, ApiError> {
        self.admit_estimated(identity, model, end_user, 0.0).await
    }

    /// [`admit`](Self::admit) for a request estimated to cost `estimate` USD: the estimate is held
    /// against every budget the request falls under until the [`Admission`] is dropped. Async
    /// because a rate window shared through Redis may ask it (near its limit, or once this
    /// replica's lease is spent); with no Redis every step is ready at once.
    pub async fn admit_estimated(
        &self,
        identity: &Identity,
        model: &str,
        end_user: Option<&str>,
        estimate: f64,
    ) -> Result<Admission, ApiError> {
        let mut adm = Admission { reservation: Reservation::new(estimate), ..Default::default() };
        // End-user budgets apply to every caller, as `user` is a request field. An end user is
        // tracked in memory when it has a budget: its own (a stored row) or
        // `max_end_user_budget`. Others are not, so a client sending a new `user` on every
        // request cannot grow the gateway's memory (their spend is in the spend logs).
        let tracked = end_user.and_then(|id| match self.registry.end_users.get(id) {
            Some(e) => Some(e.clone()),
            None if self.settings.max_end_user_budget.is_some() => Some(self.registry.end_user(id)),
            None => None,
        });
        let mut rates = None;
        if let (Some(id), Some(e)) = (end_user, tracked) {
            if e.record.blocked {
                return Err(ApiError::new(400, format!("Authentication Error, End User={id} is blocked.")));
            }
            // Its budget row's limits (LiteLLM keeps an end user's budget there), else its own.
            let limits = super::end_users::limits(&self.registry, &e);
            let max = limits.max_budget.or(self.settings.max_end_user_budget);
            let shared = max.and_then(|_| self.shared_spend(&e.live, "end_user", id));
            let who = id.to_string();
            hold_budget(&mut adm, &e.live, max, Reached::AtMax, shared, move |s, b| {
                format!("ExceededBudget: End User={who} over budget. Spend={}, Budget={}", py_float(s), py_float(b))
            })?;
            if limits.rate_limited() {
                rates = Some(super::end_users::EndUserRates { id: id.to_string(), live: e.live.clone(), limits });
            }
            adm.end_user = Some(e);
        }
        // The end user's rate limits are taken with the key's, user's and team's (v3's
        // `end_user` descriptor), so a request refused by any of them holds none of the others.
        let end_user_check = rates.as_ref().map(|r| Limited {
            descriptor: "end_user",
            value: r.id.clone(),
            live: &r.live,
            rpm: r.limits.rpm_limit,
            tpm: r.limits.tpm_limit,
            parallel: r.limits.max_parallel_requests,
            headers: false,
        });
        match identity {
            Identity::Key(key) => self.admit_key(key, model, &mut adm, end_user_check).await?,
            Identity::Open | Identity::Master => {
                self.admit_proxy(&mut adm)?;
                if let Some(check) = end_user_check {
                    self.take_limits(&[check], &mut adm).await?;
                }
            }
        }
        Ok(adm)
    }

    /// The proxy-wide budget and in-flight cap (`litellm_settings.max_budget`,
    /// `global_max_parallel_requests`): every caller, the master key included, as in LiteLLM.
    fn admit_proxy(&self, adm: &mut Admission) -> Result<(), ApiError> {
        if let Some(g) = &self.global_budget {
            let shared = self.shared_spend(&g.live, "user", super::PROXY_BUDGET_ID);
            hold_budget(adm, &g.live, Some(g.max_budget), Reached::PastMax, shared, |s, b| {
                format!("Budget has been exceeded! Current cost: {}, Max budget: {}", py_float(s), py_float(b))
            })?;
        }
        if let Some((limit, in_flight)) = &self.global_parallel {
            let slot = in_flight.try_enter(*limit).ok_or_else(|| {
                ApiError::new(
                    429,
                    format!(
                        "Max parallel request limit reached Hit Global Limit: Limit={limit}, current: {}",
                        in_flight.current()
                    ),
                )
                .header("retry-after", "1".to_string())
                .header("rate_limit_type", "max_parallel_requests".to_string())
            })?;
            adm.slots.push(slot);
            if let Some(cap) = self.global_cap() {
                let descriptor = "global";
                adm.caps.push(super::shared::CapCheck {
                    cap,
                    limit: *limit,
                    local: in_flight.clone(),
                    descriptor,
                    value: String::new(),
                });
            }
        }
        Ok(())
    }

    async fn admit_key(
        &self,
        key: &Arc<KeyEntry>,
        model: &str,
        adm: &mut Admission,
        end_user: Option<Limited<'_>>,
    ) -> Result<(), ApiError> {
        let k = &key.record;
        key_blocked(k)?;
        let team = k.team_id.as_deref().and_then(|t| self.registry.teams.get(t).map(|e| e.clone()));
        let user = k.user_id.as_deref().and_then(|u| self.registry.users.get(u).map(|e| e.clone()));
        if !self.allows(&k.models, model) {
            return Err(model_denied("key", "key_model_access_denied", &k.models, model));
        }
        if let Some(t) = &team {
            if !self.allows(&t.record.models, model) {
                return Err(model_denied("team", "team_model_access_denied", &t.record.models, model));
            }
            team_blocked(&t.record)?;
        }
        if let Some(u) = &user {
            if k.team_id.is_none() && !self.allows(&u.record.models, model) {
                return Err(model_denied("user", "user_model_access_denied", &u.record.models, model));
            }
            let shared = u.record.max_budget.and_then(|_| self.shared_spend(&u.live, "user", &u.record.user_id));
            let who = u.record.user_id.clone();
            hold_budget(adm, &u.live, u.record.max_budget, Reached::AtMax, shared, move |s, b| {
                format!("ExceededBudget: User={who} over budget. Spend={}, Budget={}", py_float(s), py_float(b))
            })?;
        }
        if let Some(t) = &team {
            let shared = t.record.max_budget.and_then(|_| self.shared_spend(&t.live, "team", &t.record.team_id));
            let who = t.record.team_id.clone();
            hold_budget(adm, &t.live, t.record.max_budget, Reached::AtMax, shared, move |s, b| {
                format!(
                    "Budget has been exceeded! Team={who} Current cost: {}, Max budget: {}",
                    py_float(s),
                    py_float(b)
                )
            })?;
            // The member's budget in the team (`max_budget_in_team`); its spend is counted
            // whether or not it has one, as LiteLLM keeps it on the membership.
            if let Some(user_id) = k.user_id.as_deref() {
                let m = self.registry.members.entry(&t.record.team_id, user_id);
                if m.record.max_budget.is_some() {
                    let (user, team) = (user_id.to_string(), t.record.team_id.clone());
                    hold_budget(adm, &m.live, m.record.max_budget, Reached::AtMax, None, move |s, b| {
                        format!(
                            "Budget has been exceeded! User={user} in Team={team} Current cost: {s}, Max budget: {b}"
                        )
                    })?;
                }
                adm.member = Some(m);
            }
        }
        // The organization above the team: its budget stops every key of its teams (LiteLLM's
        // organization budget check), read from memory like the team's.
        let organization = team.as_ref().and_then(|t| self.registry.team_organization(&t.record));
        if let Some(o) = organization.as_ref().filter(|o| o.record.record.blocked) {
            // LiteLLM's `blocked` on an organization: "will stop all calls from keys with this org".
            return Err(super::auth::auth_error(format!(
                "Organization={} is blocked. Update via `/organization/update` with \"blocked\": false if you're admin.",
                o.record.record.organization_id
            )));
        }
        if let Some(o) = &organization {
            let id = &o.record.record.organization_id;
            let max = o.record.max_budget();
            let shared = max.and_then(|_| self.shared_spend(&o.live, "organization", id));
            let who = id.clone();
            hold_budget(adm, &o.live, max, Reached::AtMax, shared, move |s, b| {
                format!("Budget has been exceeded! Organization={who} Current cost: {s}, Max budget: {b}")
            })?;
        }
        key_expired(k)?;
        let shared = k.max_budget.and_then(|_| self.shared_spend(&key.live, "key", &k.token));
        hold_budget(adm, &key.live, k.max_budget, Reached::AtMax, shared, |s, b| {
            format!("Budget has been exceeded! Current cost: {}, Max budget: {}", py_float(s), py_float(b))
        })?;
        if let Some(max) = k.model_max_budget.get(model).and_then(model_budget) {
            let (token, alias, m) =
                (k.token.clone(), k.key_alias.clone().unwrap_or_else(|| "None".into()), model.to_string());
            let message = move |spent: f64, max: f64| {
                format!(
                    "LiteLLM Virtual Key: {token}, key_alias: {alias}, exceeded budget for model={m}. Current cost: {}, Max budget: {}",
                    py_float(spent),
                    py_float(max)
                )
            };
            let spent = key.live.ledger.model_spend(model);
            match self.shared_model_spend(key, model) {
                Some(s) => {
                    let (view, limit) = super::shared::budget_view(&key.live, Some(&s), max);
                    let view = if s.remote().healthy() { view } else { view.max(spent) };
                    if view >= max || view >= limit {
                        return Err(budget_exceeded(message(view, max)));
                    }
                    let here = super::reserve::usd(key.live.ledger.reserved()) + adm.reservation.amount();
                    if s.remote().healthy() && s.near(max, here) {
                        adm.confirm.push(super::shared::Confirm {
                            spend: s,
                            live: key.live.clone(),
                            max,
                            past: false,
                            message: Box::new(message),
                        });
                    }
                }
                None if spent >= max => return Err(budget_exceeded(message(spent, max))),
                None => {}
            }
        }
        self.admit_proxy(adm)?;

        let mut checks = vec![Limited {
            descriptor: "api_key",
            value: k.token.clone(),
            live: &key.live,
            rpm: k.rpm_limit,
            tpm: k.tpm_limit,
            parallel: k.max_parallel_requests,
            headers: true,
        }];
        if let Some(u) = &user {
            checks.push(Limited {
                descriptor: "user",
                value: u.record.user_id.clone(),
                live: &u.live,
                rpm: u.record.rpm_limit,
                tpm: u.record.tpm_limit,
                parallel: u.record.max_parallel_requests,
                headers: false,
            });
        }
        if let Some(t) = &team {
            checks.push(Limited {
                descriptor: "team",
                value: t.record.team_id.clone(),
                live: &t.live,
                rpm: t.record.rpm_limit,
                tpm: t.record.tpm_limit,
                parallel: t.record.max_parallel_requests,
                headers: false,
            });
        }
        checks.extend(end_user);
        self.take_limits(&checks, adm).await?;
        let model_rpm = metadata_limit(&k.metadata, "model_rpm_limit", model);
        let model_tpm = metadata_limit(&k.metadata, "model_tpm_limit", model);
        if model_rpm.is_some() || model_tpm.is_some() {
            let windows = key.live.model_windows(model);
            let now = now_secs();
            let value = format!("{}:{model}", k.token);
            if let Some(sharing) = self.sharing() {
                bind(&windows.0, sharing, "model_per_key", &value, "rpm");
                bind(&windows.1, sharing, "model_per_key", &value, "tpm");
            }
            if let Some(limit) = model_tpm {
                windows.1.check(limit, now).map_err(|f| rate_limited("model_per_key", &value, "tokens", limit, f))?;
            }
            if let Some(limit) = model_rpm {
                let left = windows
                    .0
                    .take(1, limit, now)
                    .await
                    .map_err(|f| rate_limited("model_per_key", &value, "requests", limit, f))?;
                adm.headers.extend(header("x-ratelimit-model_per_key-remaining-requests".into(), left));
                adm.headers.extend(header("x-ratelimit-model_per_key-limit-requests".into(), limit));
            }
        }
        adm.key = Some(key.clone());
        adm.user = user;
        adm.team = team;
        adm.organization = organization;
        Ok(())
    }

    async fn take_limits(&self, checks: &[Limited<'_>], adm: &mut Admission) -> Result<(), ApiError> {
        let now = now_secs();
        let limit = |x: Option<i64>| x.map(|v| v.max(0) as u64);
        if let Some(sharing) = self.sharing() {
            for c in checks {
                if c.rpm.is_some() {
                    bind(&c.live.requests, sharing, c.descriptor, &c.value, "rpm");
                }
                if c.tpm.is_some() {
                    bind(&c.live.tokens, sharing, c.descriptor, &c.value, "tpm");
                }
            }
        }
        for c in checks {
            if let Some(l) = limit(c.tpm) {
                let left =
                    c.live.tokens.check(l, now).map_err(|f| rate_limited(c.descriptor, &c.value, "tokens", l, f))?;
                if c.headers {
                    adm.headers.extend(header(format!("x-ratelimit-{}-remaining-tokens", c.descriptor), left));
                    adm.headers.extend(header(format!("x-ratelimit-{}-limit-tokens", c.descriptor), l));
                }
            }
        }
        for c in checks {
            if let Some(l) = limit(c.parallel) {
                // Shared: this replica's count never exceeds the shared one, so checking it first
                // refuses nothing Redis would admit; while Redis is away it is held to the share.
                let cap = self.shared_cap(c.live, c.descriptor, &c.value);
                let local = match &cap {
                    Some(cap) if !cap.remote().healthy() => cap.remote().share(l),
                    _ => l,
                };
                let slot = c.live.in_flight.try_enter(local).ok_or_else(|| {
                    rate_limited(c.descriptor, &c.value, "max_parallel_requests", l, Full { retry_after: 1 })
                })?;
                adm.slots.push(slot);
                if let Some(cap) = cap.filter(|c| c.remote().healthy()) {
                    adm.caps.push(super::shared::CapCheck {
                        cap,
                        limit: l,
                        local: c.live.in_flight.clone(),
                        descriptor: c.descriptor,
                        value: c.value.clone(),
                    });
                }
            }
        }
        let mut taken: Vec<&Live> = Vec::new();
        for c in checks {
            if let Some(l) = limit(c.rpm) {
                match c.live.requests.take(1, l, now).await {
                    Ok(left) => {
                        taken.push(c.live);
                        if c.headers {
                            adm.headers
                                .extend(header(format!("x-ratelimit-{}-remaining-requests", c.descriptor), left));
                            adm.headers.extend(header(format!("x-ratelimit-{}-limit-requests", c.descriptor), l));
                        }
                    }
                    Err(full) => {
                        for live in taken {
                            live.requests.give_back(1, now);
                        }
                        return Err(rate_limited(c.descriptor, &c.value, "requests", l, full));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_follow_litellm() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allows(&[], "gpt-4"));
        assert!(allows(&l(&["gpt-4"]), "gpt-4"));
        assert!(!allows(&l(&["gpt-4"]), "gpt-4o"));
        assert!(allows(&l(&["all-proxy-models"]), "x"));
        assert!(allows(&l(&["openai/*"]), "openai/gpt-4o"));
        assert!(!allows(&l(&["openai/*"]), "claude"));
    }

    fn access(max_budget: Option<f64>, max_parallel_requests: Option<u64>) -> Arc<Access> {
        let settings =
            crate::AccessSettings { max_budget, max_parallel_requests, ..crate::AccessSettings::for_tests() };
        Access::new(None, settings, None)
    }

    #[tokio::test]
    async fn budgets_count_the_estimates_of_the_requests_in_flight() {
        let a = access(None, None);
        let record = sluice_store::KeyRecord { token: "t".into(), max_budget: Some(1.0), ..Default::default() };
        let key = a.registry.put_key(record, false);
        let id = Identity::Key(key.clone());
        let admit = |estimate| a.admit_estimated(&id, "m", None, estimate);
        let first = admit(0.4).await.unwrap();
        let _second = admit(0.4).await.unwrap();
        // Two in flight hold 0.8 < 1: a third may start (LiteLLM's rule: spend below budget).
        let third = admit(0.4).await.unwrap();
        let e = admit(0.4).await.err().unwrap();
        assert_eq!((e.status, e.kind.as_deref()), (429, Some("budget_exceeded")), "{}", e.message);
        assert!(e.message.starts_with("Budget has been exceeded! Current cost: 0.0, Max budget: 1.0"), "{}", e.message);
        // A refused request holds nothing; one that ends gives its place back.
        drop(third);
        let _fourth = admit(0.4).await.unwrap();
        // Billed: the cost counts instead of the estimate.
        key.live.ledger.charge(0.3, None);
        first.reservation.release();
        assert!((crate::reserve::usd(key.live.ledger.reserved()) - 0.8).abs() < 1e-9);
        drop(first);
        assert!((crate::reserve::usd(key.live.ledger.reserved()) - 0.8).abs() < 1e-9, "released once");
        // Spent on its own: LiteLLM's 400.
        key.live.ledger.charge(0.7, None);
        let e = admit(0.0).await.err().unwrap();
        assert_eq!((e.status, e.kind.as_deref()), (400, Some("budget_exceeded")), "{}", e.message);
    }

    #[tokio::test]
    async fn the_proxy_budget_and_in_flight_cap_apply_to_every_caller() {
        let a = access(Some(1.0), Some(2));
        let g = a.global_budget.as_ref().unwrap();
        let first = a.admit_estimated(&Identity::Open, "m", None, 0.1).await.unwrap();
        let second = a.admit_estimated(&Identity::Master, "m", None, 0.1).await.unwrap();
        let e = a.admit_estimated(&Identity::Open, "m", None, 0.1).await.err().unwrap();
        assert_eq!(e.status, 429);
        assert!(e.message.starts_with("Max parallel request limit reached Hit Global Limit: Limit=2"), "{}", e.message);
        assert_eq!(a.global_parallel.as_ref().unwrap().1.current(), 2, "a refusal holds no place");
        drop((first, second));
        // LiteLLM lets the proxy's budget be spent up to `spend > max_budget`.
        g.live.ledger.charge(1.0, None);
        let third = a.admit_estimated(&Identity::Open, "m", None, 0.0).await;
        assert!(third.is_ok());
        drop(third);
        g.live.ledger.charge(0.01, None);
        let e = a.admit_estimated(&Identity::Master, "m", None, 0.0).await.err().unwrap();
        assert_eq!((e.status, e.kind.as_deref()), (400, Some("budget_exceeded")), "{}", e.message);
        assert_eq!(a.global_parallel.as_ref().unwrap().1.current(), 0);
        assert_eq!(g.live.ledger.reserved(), 0);
    }

    #[tokio::test]
    async fn an_organization_budget_stops_the_keys_of_its_teams_only() {
        use crate::registry::Organization;
        use sluice_store::{BudgetRecord, KeyRecord, OrganizationRecord, TeamRecord};
        let a = access(None, None);
        let budget = BudgetRecord { budget_id: "b".into(), max_budget: Some(1.0), ..Default::default() };
        let org = a.registry.put_organization(
            Organization {
                record: OrganizationRecord {
                    organization_id: "o".into(),
                    budget_id: Some("b".into()),
                    ..Default::default()
                },
                budget: Some(budget),
            },
            false,
        );
        for (team, org_id) in [("in", Some("o".to_string())), ("out", None)] {
            a.registry
                .put_team(TeamRecord { team_id: team.into(), organization_id: org_id, ..Default::default() }, false);
        }
        let key = |token: &str, team: &str| {
            let record = KeyRecord { token: token.into(), team_id: Some(team.into()), ..Default::default() };
            Identity::Key(a.registry.put_key(record, false))
        };
        let (inside, outside) = (key("k1", "in"), key("k2", "out"));
        let adm = a.admit_estimated(&inside, "m", None, 0.0).await.unwrap();
        assert!(adm.organization.as_ref().is_some_and(|o| Arc::ptr_eq(o, &org)), "the organization is charged");
        drop(adm);
        org.live.ledger.charge(1.0, None);
        let e = a.admit_estimated(&inside, "m", None, 0.0).await.err().unwrap();
        assert_eq!((e.status, e.kind.as_deref()), (400, Some("budget_exceeded")), "{}", e.message);
        assert_eq!(e.message, "Budget has been exceeded! Organization=o Current cost: 1, Max budget: 1");
        let other = a.admit_estimated(&outside, "m", None, 0.0).await.unwrap();
        assert!(other.organization.is_none());
    }

    #[test]
    fn numbers_in_budget_messages_read_as_python_writes_them() {
        for (x, python) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (2.5, "2.5"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (3.7e-05, "3.7e-05"),
            (2e-7, "2e-07"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-0.00042, "-0.00042"),
            (0.30000000000000004, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(py_float(x), python, "{x:e}");
        }
    }

    #[test]
    fn model_budgets_read_both_shapes() {
        assert_eq!(model_budget(&serde_json::json!(0.5)), Some(0.5));
        assert_eq!(model_budget(&serde_json::json!({"budget_limit": "0.25", "time_period": "1d"})), Some(0.25));
        assert_eq!(model_budget(&serde_json::json!({"budget_limit": 2})), Some(2.0));
    }
}
