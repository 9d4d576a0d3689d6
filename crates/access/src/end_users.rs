//! End users (a request's `user` field, LiteLLM's customers) and the budgets they name: what
//! limits apply to one (its budget row's `max_budget`, `rpm_limit`, `tpm_limit`,
//! `max_parallel_requests`, else its own `max_budget`), and the budget periods that end
//! (`budget_duration`), which zero the spend of every end user on that budget.
//!
//! Everything here reads the registry in memory: a request never waits on the database for it.

use super::registry::{EndUserEntry, Live, Registry};
use super::Access;
use sluice_store::{BudgetRecord, Spender};
use std::sync::Arc;

/// The limits an end user's requests meet, from its budget row when it names one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserLimits {
    pub max_budget: Option<f64>,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

impl EndUserLimits {
    /// Whether any rate or in-flight limit is set (budgets aside).
    pub fn rate_limited(&self) -> bool {
        self.rpm_limit.is_some() || self.tpm_limit.is_some() || self.max_parallel_requests.is_some()
    }
}

/// An end user's limits: the budget row it names (if that row is known here), its own
/// `max_budget` where the budget sets none.
pub fn limits(registry: &Registry, e: &EndUserEntry) -> EndUserLimits {
    let budget = e.record.budget_id.as_deref().and_then(|b| registry.budgets.get(b).map(|b| b.clone()));
    match budget {
        Some(b) => EndUserLimits {
            max_budget: b.max_budget.or(e.record.max_budget),
            rpm_limit: b.rpm_limit,
            tpm_limit: b.tpm_limit,
            max_parallel_requests: b.max_parallel_requests,
        },
        None => EndUserLimits { max_budget: e.record.max_budget, ..Default::default() },
    }
}

/// An end user's rate limits, held for [`crate::admit`] (an owned copy: the admission is built
/// while it is checked).
pub(crate) struct EndUserRates {
    pub id: String,
    pub live: Arc<Live>,
    pub limits: EndUserLimits,
}

impl Access {
    /// Zeroes the spend of the end users of every budget whose period ended, then moves the
    /// budget's `budget_reset_at` on by its `budget_duration` (LiteLLM's budget reset job for
    /// end users). A budget whose duration cannot be read is reset this once.
    pub(crate) async fn reset_end_user_budgets(&self) {
        let Some(store) = self.store() else { return };
        let now = chrono::Utc::now();
        let due: Vec<Arc<BudgetRecord>> = self
            .registry
            .budgets
            .iter()
            .filter(|b| b.budget_reset_at.is_some_and(|t| t <= now))
            .map(|b| b.clone())
            .collect();
        for budget in due {
            let next = budget.budget_duration.as_deref().and_then(|d| match super::duration::after(now, d) {
                Ok(next) => Some(next),
                Err(why) => {
                    tracing::error!(
                        budget_id = %budget.budget_id,
                        "budget_duration: {why}; no further budget resets are scheduled for it"
                    );
                    None
                }
            });
            let mut moved = (*budget).clone();
            moved.budget_reset_at = next;
            // The row first: were it not written, the next tick tries again, the spend untouched.
            if store.update_budget(&moved).await.is_err() {
                continue;
            }
            let ended = budget.budget_reset_at.map(|t| t.timestamp_millis()).unwrap_or_default().to_string();
            let members: Vec<Arc<EndUserEntry>> = self
                .registry
                .end_users
                .iter()
                .filter(|e| e.record.budget_id.as_deref() == Some(budget.budget_id.as_str()))
                .map(|e| e.clone())
                .collect();
            for e in members {
                if store.reset_spend(&Spender::EndUser(e.record.user_id.clone()), None).await.is_ok() {
                    e.live.ledger.reset();
                    e.live.shared.reset(0.0, &ended).await;
                }
            }
            self.registry.put_budget(moved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_state::RateWindow;
    use sluice_store::EndUserRecord;

    #[test]
    fn an_end_user_meets_its_budget_rows_limits_else_its_own_budget() {
        let registry = Registry::new(None);
        let own = registry
            .put_end_user(EndUserRecord { user_id: "a".into(), max_budget: Some(2.0), ..Default::default() }, false);
        assert_eq!(limits(&registry, &own), EndUserLimits { max_budget: Some(2.0), ..Default::default() });
        assert!(!limits(&registry, &own).rate_limited());

        let linked = registry.put_end_user(
            EndUserRecord {
                user_id: "b".into(),
                max_budget: Some(2.0),
                budget_id: Some("tier".into()),
                ..Default::default()
            },
            false,
        );
        // The budget is not known yet: the end user's own budget holds meanwhile.
        assert_eq!(limits(&registry, &linked).max_budget, Some(2.0));
        registry.put_budget(BudgetRecord {
            budget_id: "tier".into(),
            max_budget: Some(5.0),
            rpm_limit: Some(3),
            tpm_limit: Some(100),
            ..Default::default()
        });
        let l = limits(&registry, &linked);
        assert_eq!(
            (l.max_budget, l.rpm_limit, l.tpm_limit, l.max_parallel_requests),
            (Some(5.0), Some(3), Some(100), None)
        );
        assert!(l.rate_limited());
        registry.budgets.remove("tier");
        assert_eq!(limits(&registry, &linked).rpm_limit, None);
    }

    fn access() -> Arc<Access> {
        let settings = crate::AccessSettings::for_tests();
        Access::new(None, settings, None)
    }

    /// The budget row's rpm and tpm limits hold an end user's requests, whoever calls (v3's
    /// `end_user` descriptor and message), and a refusal takes nothing from the windows.
    #[tokio::test]
    async fn an_end_users_budget_limits_its_requests() {
        let a = access();
        let id = crate::Identity::Open;
        a.registry.put_budget(BudgetRecord {
            budget_id: "tier".into(),
            rpm_limit: Some(2),
            tpm_limit: Some(50),
            ..Default::default()
        });
        let e = a.registry.put_end_user(
            EndUserRecord { user_id: "cust".into(), budget_id: Some("tier".into()), ..Default::default() },
            false,
        );
        assert!(a.admit(&id, "m", Some("cust")).await.is_ok());
        assert!(a.admit(&id, "m", Some("cust")).await.is_ok());
        let refused = a.admit(&id, "m", Some("cust")).await.err().expect("over rpm");
        assert_eq!(refused.status, 429);
        assert!(
            refused
                .message
                .starts_with("Rate limit exceeded for end_user: cust. Limit type: requests. Current limit: 2"),
            "{}",
            refused.message
        );
        // Another end user, and a request naming none, are not held by it.
        assert!(a.admit(&id, "m", Some("other")).await.is_ok());
        assert!(a.admit(&id, "m", None).await.is_ok());

        // Tokens: counted after the answer; once the window holds the limit, refused.
        a.registry.put_budget(BudgetRecord { budget_id: "tier".into(), tpm_limit: Some(50), ..Default::default() });
        e.live.tokens.add(50, sluice_state::now_secs());
        let refused = a.admit(&id, "m", Some("cust")).await.err().expect("over tpm");
        assert!(refused.message.contains("end_user: cust. Limit type: tokens"), "{}", refused.message);
    }
}
