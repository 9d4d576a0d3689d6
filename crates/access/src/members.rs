//! Team members' spend and budgets in memory (LiteLLM's `LiteLLM_TeamMembership` with its
//! `max_budget_in_team`): what a key carrying both a `user_id` and a `team_id` is checked
//! against and charged to, read by team and then by user without allocating.
//!
//! Loaded with the rest of the registry and re-read per team when a team changes; an entry is
//! made on a member's first request when the database has none yet (its spend is written as a
//! new membership row).

use super::registry::{Entry, Live};
use dashmap::DashMap;
use sluice_store::{BudgetRecord, TeamMembershipRecord};
use std::collections::HashMap;
use std::sync::Arc;

/// A membership and the limit of its budget row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    pub record: TeamMembershipRecord,
    /// `max_budget_in_team`: the `max_budget` of the membership's budget row.
    pub max_budget: Option<f64>,
}

pub type MemberEntry = Entry<Membership>;

/// Team id → user id → entry.
#[derive(Default)]
pub struct Members(DashMap<String, DashMap<String, Arc<MemberEntry>>>);

impl Members {
    /// The member's entry, if known.
    pub fn get(&self, team_id: &str, user_id: &str) -> Option<Arc<MemberEntry>> {
        self.0.get(team_id)?.get(user_id).map(|e| e.clone())
    }

    /// The member's entry, made on first sight (under the map's entry lock, so concurrent first
    /// requests share one ledger).
    pub fn entry(&self, team_id: &str, user_id: &str) -> Arc<MemberEntry> {
        if let Some(e) = self.get(team_id, user_id) {
            return e;
        }
        let team = self.0.entry(team_id.to_string()).or_default();
        let e = team
            .entry(user_id.to_string())
            .or_insert_with(|| {
                let record = TeamMembershipRecord {
                    user_id: user_id.to_string(),
                    team_id: team_id.to_string(),
                    ..Default::default()
                };
                Arc::new(Entry {
                    record: Membership { record, max_budget: None },
                    live: live(0.0),
                    caller: None,
                    logging: Default::default(),
                })
            })
            .clone();
        e
    }

    /// Adds or replaces a membership read from the database, keeping its live state.
    pub fn put(&self, m: Membership) -> Arc<MemberEntry> {
        let team = self.0.entry(m.record.team_id.clone()).or_default();
        let live = match team.get(&m.record.user_id) {
            Some(old) => {
                old.live.ledger.reloaded(m.record.spend, &serde_json::Map::new());
                old.live.clone()
            }
            None => live(m.record.spend),
        };
        let entry = Arc::new(Entry { record: m, live, caller: None, logging: Default::default() });
        team.insert(entry.record.record.user_id.clone(), entry.clone());
        entry
    }

    /// Replaces one team's memberships with the database's; members not listed lose their
    /// budget (their spend so far stays counted in memory until written).
    pub fn reload_team(&self, team_id: &str, rows: Vec<Membership>) {
        let listed: std::collections::HashSet<String> = rows.iter().map(|m| m.record.user_id.clone()).collect();
        for m in rows {
            self.put(m);
        }
        if let Some(team) = self.0.get(team_id) {
            for mut e in team.iter_mut() {
                if !listed.contains(e.key()) && e.record.max_budget.is_some() {
                    let record = Membership { max_budget: None, ..e.record.clone() };
                    *e.value_mut() =
                        Arc::new(Entry { record, live: e.live.clone(), caller: None, logging: Default::default() });
                }
            }
        }
    }

    /// Replaces every membership with the database's (a full reload).
    pub fn reload(&self, rows: Vec<Membership>) {
        let mut by_team: HashMap<String, Vec<Membership>> = HashMap::new();
        for m in rows {
            by_team.entry(m.record.team_id.clone()).or_default().push(m);
        }
        let known: Vec<String> = self.0.iter().map(|t| t.key().clone()).collect();
        for t in known {
            if !by_team.contains_key(&t) {
                self.reload_team(&t, Vec::new());
            }
        }
        for (t, rows) in by_team {
            self.reload_team(&t, rows);
        }
    }

    /// A deleted team's members.
    pub fn remove_team(&self, team_id: &str) {
        self.0.remove(team_id);
    }

    /// A member who left the team.
    pub fn remove(&self, team_id: &str, user_id: &str) {
        if let Some(team) = self.0.get(team_id) {
            team.remove(user_id);
        }
    }
}

impl super::Access {
    /// Re-reads one team's memberships and their budgets from the database (a team changed, here
    /// or on another replica).
    pub async fn reload_members(&self, team_id: &str) -> Result<(), sluice_store::StoreError> {
        let Some(store) = self.store() else { return Ok(()) };
        let rows = store.team_memberships(Some(team_id)).await?;
        let mut budgets = Vec::new();
        for b in rows.iter().filter_map(|m| m.budget_id.as_deref()) {
            budgets.extend(store.get_budget(b).await?);
        }
        self.registry.members.reload_team(team_id, with_budgets(rows, &budgets));
        Ok(())
    }
}

fn live(spend: f64) -> Arc<Live> {
    Arc::new(Live { ledger: super::ledger::Ledger::new(spend, &serde_json::Map::new()), ..Default::default() })
}

/// Memberships joined with their budgets' limits.
pub fn with_budgets(rows: Vec<TeamMembershipRecord>, budgets: &[BudgetRecord]) -> Vec<Membership> {
    let limits: HashMap<&str, Option<f64>> = budgets.iter().map(|b| (b.budget_id.as_str(), b.max_budget)).collect();
    rows.into_iter()
        .map(|record| {
            let max_budget = record.budget_id.as_deref().and_then(|b| limits.get(b).copied().flatten());
            Membership { record, max_budget }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(team: &str, user: &str, spend: f64, max: Option<f64>) -> Membership {
        Membership {
            record: TeamMembershipRecord { user_id: user.into(), team_id: team.into(), spend, budget_id: None },
            max_budget: max,
        }
    }

    #[test]
    fn reloads_keep_the_ledger_and_drop_budgets_no_longer_stored() {
        let members = Members::default();
        let first = members.entry("t1", "u1");
        first.live.ledger.charge(0.5, None);
        members.reload(vec![m("t1", "u1", 0.0, Some(2.0))]);
        let e = members.get("t1", "u1").unwrap();
        assert!(Arc::ptr_eq(&e.live, &first.live));
        assert_eq!(e.record.max_budget, Some(2.0));
        members.reload(Vec::new());
        assert_eq!(members.get("t1", "u1").unwrap().record.max_budget, None);
        members.remove_team("t1");
        assert!(members.get("t1", "u1").is_none());
    }

    fn access() -> Arc<crate::Access> {
        let settings = crate::AccessSettings::for_tests();
        crate::Access::new(None, settings, None)
    }

    #[tokio::test]
    async fn a_members_key_stops_at_the_members_budget_in_the_team_only() {
        let a = access();
        let mut aliases = serde_json::Map::new();
        aliases.insert("fast".into(), "gpt-4o-mini".into());
        a.registry.put_team(
            sluice_store::TeamRecord { team_id: "t1".into(), model_aliases: aliases, ..Default::default() },
            false,
        );
        let key = |token: &str, team: Option<&str>| {
            let record = sluice_store::KeyRecord {
                token: token.into(),
                user_id: Some("u1".into()),
                team_id: team.map(Into::into),
                ..Default::default()
            };
            crate::Identity::Key(a.registry.put_key(record, false))
        };
        let (in_team, alone) = (key("k1", Some("t1")), key("k2", None));
        // No budget: admitted and charged to the membership all the same.
        let adm = a.admit(&in_team, "m", None).await.unwrap();
        assert!(adm.member.is_some() && a.admit(&alone, "m", None).await.unwrap().member.is_none());
        a.registry.members.put(m("t1", "u1", 0.0, Some(1.0)));
        let member = a.registry.members.get("t1", "u1").unwrap();
        member.live.ledger.charge(1.0, None);
        let e = a.admit(&in_team, "m", None).await.err().unwrap();
        assert_eq!((e.status, e.kind.as_deref()), (400, Some("budget_exceeded")));
        assert_eq!(e.message, "Budget has been exceeded! User=u1 in Team=t1 Current cost: 1, Max budget: 1");
        assert!(a.admit(&alone, "m", None).await.is_ok(), "the user's other keys are not the team's");
        // The team's aliases are the team keys' alone.
        assert_eq!(a.team_alias(&in_team, "fast").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(a.team_alias(&in_team, "gpt-4o-mini"), None);
        assert_eq!(a.team_alias(&alone, "fast"), None);
    }

    #[test]
    fn budgets_are_joined_by_id() {
        let b = BudgetRecord { budget_id: "b1".into(), max_budget: Some(3.0), ..Default::default() };
        let mut row = m("t", "u", 1.0, None).record;
        row.budget_id = Some("b1".into());
        assert_eq!(with_budgets(vec![row], &[b])[0].max_budget, Some(3.0));
    }
}
