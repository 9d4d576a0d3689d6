//! The checks a virtual key's request passes before routing, in LiteLLM's order and with its
//! statuses and messages (reference §3.2, §3.5, §11): blocked, model access, budgets, expiry,
//! rate limits.

use super::registry::{Entry, KeyEntry, Live};
use super::window::{now_secs, Full, Slot};
use super::{Access, Identity};
use http::{HeaderName, HeaderValue};
use sluice_wire::ApiError;
use std::sync::Arc;

/// A request let through: whom to charge, the parallel-request places it holds, and the
/// `x-ratelimit-*` headers for its response.
#[derive(Default)]
pub struct Admission {
    pub key: Option<Arc<KeyEntry>>,
    pub user: Option<Arc<Entry<sluice_store::UserRecord>>>,
    pub team: Option<Arc<Entry<sluice_store::TeamRecord>>>,
    pub end_user: Option<Arc<Entry<sluice_store::EndUserRecord>>>,
    pub slots: Vec<Slot>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Model-list entries that mean "every model".
const ALL_MODELS: &[&str] = &["*", "all-proxy-models", "all-team-models"];

fn allows(models: &[String], model: &str) -> bool {
    models.is_empty()
        || models.iter().any(|m| {
            ALL_MODELS.contains(&m.as_str())
                || m == model
                || m.strip_suffix('*').is_some_and(|prefix| model.starts_with(prefix))
        })
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

fn budget_exceeded(message: String) -> ApiError {
    ApiError::new(400, message).kind("budget_exceeded")
}

fn check_budget(live: &Live, max: Option<f64>, message: impl FnOnce(f64, f64) -> String) -> Result<(), ApiError> {
    if let Some(max) = max {
        let spend = live.ledger.spend();
        if spend >= max {
            return Err(budget_exceeded(message(spend, max)));
        }
    }
    Ok(())
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

struct Limited<'a> {
    descriptor: &'a str,
    value: String,
    live: &'a Live,
    rpm: Option<i64>,
    tpm: Option<i64>,
    parallel: Option<i64>,
    /// The key's own limits also go out as `x-ratelimit-api_key-*` headers.
    headers: bool,
}

fn rate_limited(descriptor: &str, value: &str, kind: &str, limit: u64, full: Full) -> ApiError {
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

impl Access {
    /// Whether `identity` may call `model` at all (the `/models` list of a key).
    pub fn admit_model(&self, identity: &Identity, model: &str) -> bool {
        let Identity::Key(key) = identity else { return true };
        let team_ok = key
            .record
            .team_id
            .as_deref()
            .and_then(|t| self.registry.teams.get(t))
            .is_none_or(|t| allows(&t.record.models, model));
        allows(&key.record.models, model) && team_ok
    }

    /// Admits `identity`'s request for `model` (by end user `end_user`), or says why not.
    pub fn admit(&self, identity: &Identity, model: &str, end_user: Option<&str>) -> Result<Admission, ApiError> {
        let mut adm = Admission::default();
        // End-user budgets apply to every caller, as `user` is a request field. An end user is
        // tracked in memory when it has a budget: its own (a stored row) or
        // `max_end_user_budget`. Others are not, so a client sending a new `user` on every
        // request cannot grow the gateway's memory (their spend is in the spend logs).
        let tracked = end_user.and_then(|id| match self.registry.end_users.get(id) {
            Some(e) => Some(e.clone()),
            None if self.settings.max_end_user_budget.is_some() => Some(self.registry.end_user(id)),
            None => None,
        });
        if let (Some(id), Some(e)) = (end_user, tracked) {
            if e.record.blocked {
                return Err(ApiError::new(400, format!("Authentication Error, End User={id} is blocked.")));
            }
            check_budget(&e.live, e.record.max_budget.or(self.settings.max_end_user_budget), |s, b| {
                format!("ExceededBudget: End User={id} over budget. Spend={s}, Budget={b}")
            })?;
            adm.end_user = Some(e);
        }
        let Identity::Key(key) = identity else { return Ok(adm) };
        let k = &key.record;
        if k.blocked {
            return Err(super::auth::auth_error("Key is blocked. Update via `/key/unblock` if you're admin."));
        }
        let team = k.team_id.as_deref().and_then(|t| self.registry.teams.get(t).map(|e| e.clone()));
        let user = k.user_id.as_deref().and_then(|u| self.registry.users.get(u).map(|e| e.clone()));
        if !allows(&k.models, model) {
            return Err(model_denied("key", "key_model_access_denied", &k.models, model));
        }
        if let Some(t) = &team {
            if !allows(&t.record.models, model) {
                return Err(model_denied("team", "team_model_access_denied", &t.record.models, model));
            }
            if t.record.blocked {
                return Err(super::auth::auth_error(format!(
                    "Team={} is blocked. Update via `/team/unblock` if you're admin.",
                    t.record.team_id
                )));
            }
        }
        if let Some(u) = &user {
            if k.team_id.is_none() && !allows(&u.record.models, model) {
                return Err(model_denied("user", "user_model_access_denied", &u.record.models, model));
            }
            check_budget(&u.live, u.record.max_budget, |s, b| {
                format!("ExceededBudget: User={} over budget. Spend={s}, Budget={b}", u.record.user_id)
            })?;
        }
        if let Some(t) = &team {
            check_budget(&t.live, t.record.max_budget, |s, b| {
                format!("Budget has been exceeded! Team={} Current cost: {s}, Max budget: {b}", t.record.team_id)
            })?;
        }
        if let Some(expires) = k.expires {
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
        }
        check_budget(&key.live, k.max_budget, |s, b| {
            format!("Budget has been exceeded! Current cost: {s}, Max budget: {b}")
        })?;
        if let Some(max) = k.model_max_budget.get(model).and_then(model_budget) {
            let spent = key.live.ledger.model_spend(model);
            if spent >= max {
                return Err(budget_exceeded(format!(
                    "LiteLLM Virtual Key: {}, key_alias: {}, exceeded budget for model={model}. Current cost: {spent}, Max budget: {max}",
                    k.token,
                    k.key_alias.as_deref().unwrap_or("None")
                )));
            }
        }

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
        self.take_limits(&checks, &mut adm)?;
        let model_rpm = metadata_limit(&k.metadata, "model_rpm_limit", model);
        let model_tpm = metadata_limit(&k.metadata, "model_tpm_limit", model);
        if model_rpm.is_some() || model_tpm.is_some() {
            let windows = key.live.model_windows(model);
            let now = now_secs();
            let value = format!("{}:{model}", k.token);
            if let Some(limit) = model_tpm {
                windows.1.check(limit, now).map_err(|f| rate_limited("model_per_key", &value, "tokens", limit, f))?;
            }
            if let Some(limit) = model_rpm {
                let left = windows
                    .0
                    .try_take(1, limit, now)
                    .map_err(|f| rate_limited("model_per_key", &value, "requests", limit, f))?;
                adm.headers.extend(header("x-ratelimit-model_per_key-remaining-requests".into(), left));
                adm.headers.extend(header("x-ratelimit-model_per_key-limit-requests".into(), limit));
            }
        }
        adm.key = Some(key.clone());
        adm.user = user;
        adm.team = team;
        Ok(adm)
    }

    fn take_limits(&self, checks: &[Limited<'_>], adm: &mut Admission) -> Result<(), ApiError> {
        let now = now_secs();
        let limit = |x: Option<i64>| x.map(|v| v.max(0) as u64);
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
                let slot = c.live.in_flight.try_enter(l).ok_or_else(|| {
                    rate_limited(c.descriptor, &c.value, "max_parallel_requests", l, Full { retry_after: 1 })
                })?;
                adm.slots.push(slot);
            }
        }
        let mut taken: Vec<&Live> = Vec::new();
        for c in checks {
            if let Some(l) = limit(c.rpm) {
                match c.live.requests.try_take(1, l, now) {
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

    #[test]
    fn model_budgets_read_both_shapes() {
        assert_eq!(model_budget(&serde_json::json!(0.5)), Some(0.5));
        assert_eq!(model_budget(&serde_json::json!({"budget_limit": "0.25", "time_period": "1d"})), Some(0.25));
        assert_eq!(model_budget(&serde_json::json!({"budget_limit": 2})), Some(2.0));
    }
}
