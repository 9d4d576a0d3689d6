//! Budget gauges of keys, teams and users, set the way LiteLLM's `_set_key_budget_metrics`,
//! `_set_team_budget_metrics` and `_set_user_budget_metrics` set them.
//!
//! LiteLLM refreshes these after every successful request, so they are cached per thread like the
//! request path's series: a refresh is a thread-local lookup and three atomic stores.

use std::hash::Hash;
use std::sync::OnceLock;

use crate::cache::with_caches;
use crate::caller::{cache_key, Caller};
use crate::families::{BudgetFamilies, FloatGauge};
use crate::labels::{KeyBudgetLabels, TeamBudgetLabels, UserBudgetLabels};
use crate::Shared;

/// One budget owner's gauges. Max and reset hours are resolved on first use: LiteLLM exports
/// them only for owners that have a max budget / a reset date.
#[derive(Debug)]
pub(crate) struct BudgetHandles {
    remaining: FloatGauge,
    max: OnceLock<FloatGauge>,
    remaining_hours: OnceLock<FloatGauge>,
}

/// What a budget looks like at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub max_budget: Option<f64>,
    /// `max_budget - spend`; `None` (no max budget) is exported as +Inf.
    pub remaining: Option<f64>,
    pub remaining_hours: Option<f64>,
}

/// Distinguishes the three owner kinds in the shared cache (low bits of the cache key).
const KEY: u64 = 1;
const TEAM: u64 = 2;
const USER: u64 = 3;

fn set<S>(shared: &Shared, num: u128, strs: &[&str], family: &BudgetFamilies<S>, labels: impl Fn() -> S, b: Budget)
where
    S: Clone + Hash + Eq,
{
    let apply = |h: &BudgetHandles| {
        // LiteLLM's `_safe_get_remaining_budget`: +Inf when there is no max budget.
        h.remaining.set(b.remaining.unwrap_or(f64::INFINITY));
        if let Some(max) = b.max_budget {
            h.max.get_or_init(|| family.max.get_or_create_owned(&labels())).set(max);
        }
        if let Some(hours) = b.remaining_hours {
            h.remaining_hours.get_or_init(|| family.remaining_hours.get_or_create_owned(&labels())).set(hours);
        }
    };
    let make = || BudgetHandles {
        remaining: family.remaining.get_or_create_owned(&labels()),
        max: OnceLock::new(),
        remaining_hours: OnceLock::new(),
    };
    let cached = with_caches(&shared.owner, |c| apply(c.budgets.get_or_insert_with(num, strs, &make)));
    if cached.is_none() {
        apply(&make());
    }
}

pub(crate) fn key(shared: &Shared, caller: &Caller, b: Budget) {
    let l = caller.labels();
    let labels =
        || KeyBudgetLabels { hashed_api_key: l.hashed_api_key.clone(), api_key_alias: l.api_key_alias.clone() };
    set(shared, cache_key(Some(caller), KEY), &[], &shared.families.key_budget, labels, b);
}

pub(crate) fn team(shared: &Shared, team: &str, team_alias: &str, b: Budget) {
    let labels = || TeamBudgetLabels { team: team.to_owned(), team_alias: team_alias.to_owned() };
    set(shared, cache_key(None, TEAM), &[team, team_alias], &shared.families.team_budget, labels, b);
}

pub(crate) fn user(shared: &Shared, user: &str, b: Budget) {
    let labels = || UserBudgetLabels { user: user.to_owned() };
    set(shared, cache_key(None, USER), &[user], &shared.families.user_budget, labels, b);
}
