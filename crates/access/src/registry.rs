//! The in-memory view of keys, users, teams and end users that every request reads: loaded from
//! the store at start, reloaded in the background, changed at once by the management API.
//!
//! Each entry pairs an immutable record (what an admin set) with its `Live` state (spend and
//! rate-limit windows), which survives record updates and reloads.

use super::ledger::Ledger;
use super::own_logging::{OwnLogging, Resolver};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use sluice_state::{InFlightCounter as InFlight, LimitWindow as Window};
use sluice_store::{BudgetRecord, EndUserRecord, KeyRecord, OrganizationRecord, TeamRecord, UserRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Spend and rate-limit state of one key, user, team or end user.
#[derive(Debug, Default)]
pub struct Live {
    pub ledger: Ledger,
    pub requests: Window,
    pub tokens: Window,
    pub in_flight: Arc<InFlight>,
    /// Per-model windows (`model_rpm_limit`/`model_tpm_limit`): (requests, tokens).
    pub per_model: Mutex<HashMap<String, Arc<(Window, Window)>>>,
    /// The counters shared with the other replicas through Redis, bound on first use once
    /// [`crate::Access::share_budgets`] was called.
    pub shared: SharedLive,
    /// The budget periods whose crossing was alerted (`max_budget`, `soft_budget`), so that a
    /// crossing is told once per period ([`crate::alerts`]).
    pub budget_alerted: crate::alerts::Crossed,
}

/// One spender's shared counters (see [`crate::shared`]).
#[derive(Debug, Default)]
pub struct SharedLive {
    /// The spend total, for `max_budget`.
    pub spend: std::sync::OnceLock<Arc<sluice_state::remote::spend::SharedSpend>>,
    /// Per-model totals, for a key's `model_max_budget`.
    pub models: Mutex<HashMap<String, Arc<sluice_state::remote::spend::SharedSpend>>>,
    /// The in-flight count, for `max_parallel_requests`.
    pub cap: std::sync::OnceLock<Arc<sluice_state::remote::cap::SharedCap>>,
}

impl SharedLive {
    /// A budget period ended or an admin set the spend: the shared totals become `usd` (the
    /// per-model ones 0), once per `period` however many replicas do it.
    pub async fn reset(&self, usd: f64, period: &str) {
        if let Some(s) = self.spend.get() {
            s.reset(usd, period).await;
        }
        let models: Vec<_> =
            self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect();
        for s in models {
            s.reset(0.0, period).await;
        }
    }
}

impl Live {
    fn new(spend: f64, model_spend: &serde_json::Map<String, serde_json::Value>, reset_ms: Option<i64>) -> Arc<Live> {
        let live = Live { ledger: Ledger::new(spend, model_spend), ..Default::default() };
        live.ledger.set_reset_at_ms(reset_ms);
        Arc::new(live)
    }

    /// The spend to show: the shared total as last synced when this spender's budget is shared
    /// (what every replica agrees on), else this replica's ledger.
    pub fn spend(&self) -> f64 {
        match self.shared.spend.get() {
            Some(s) if s.remote().healthy() => s.view(),
            Some(s) => s.view().max(self.ledger.spend()),
            None => self.ledger.spend(),
        }
    }

    pub fn model_windows(&self, model: &str) -> Arc<(Window, Window)> {
        self.per_model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(model.to_string())
            .or_default()
            .clone()
    }
}

#[derive(Debug)]
pub struct Entry<R> {
    pub record: R,
    pub live: Arc<Live>,
    /// Metrics labels for keys (alias, team); `None` for other entries.
    pub caller: Option<sluice_metrics::Caller>,
    /// Keys' and teams' own logging destination (`metadata.logging`), resolved when put here;
    /// `Inherit` for other entries.
    pub logging: OwnLogging,
}

pub type KeyEntry = Entry<KeyRecord>;
pub type UserEntry = Entry<UserRecord>;
pub type TeamEntry = Entry<TeamRecord>;
pub type EndUserEntry = Entry<EndUserRecord>;
pub type OrgEntry = Entry<Organization>;

/// An organization as the request path needs it: the row and the budget row it names (its
/// `max_budget` stops the keys of its teams).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Organization {
    pub record: OrganizationRecord,
    pub budget: Option<BudgetRecord>,
}

impl Organization {
    pub fn max_budget(&self) -> Option<f64> {
        self.budget.as_ref().and_then(|b| b.max_budget)
    }
}

fn ms(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

/// How long an unknown key stays known-unknown before the database is asked again.
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Bound on remembered unknown keys, so a flood of random keys cannot grow memory.
const NEGATIVE_CAP: usize = 100_000;

#[derive(Default)]
pub struct Registry {
    pub keys: DashMap<String, Arc<KeyEntry>>,
    pub users: DashMap<String, Arc<UserEntry>>,
    pub teams: DashMap<String, Arc<TeamEntry>>,
    pub end_users: DashMap<String, Arc<EndUserEntry>>,
    /// Budget rows (`sluice_budgets`) by `budget_id`: the limits of the end users that name one.
    pub budgets: DashMap<String, Arc<BudgetRecord>>,
    pub organizations: DashMap<String, Arc<OrgEntry>>,
    /// Team members' spend and `max_budget_in_team`.
    pub members: super::members::Members,
    negative: DashMap<String, Instant>,
    metrics: Option<Arc<sluice_metrics::Metrics>>,
    /// Resolves keys' and teams' `metadata.logging` as they are put here.
    pub own_logging: Resolver,
}

impl Registry {
    pub fn new(metrics: Option<Arc<sluice_metrics::Metrics>>) -> Self {
        Registry { metrics, ..Default::default() }
    }

    fn caller_for(&self, key: &KeyRecord) -> Option<sluice_metrics::Caller> {
        let m = self.metrics.as_ref()?;
        let team = key.team_id.as_deref().and_then(|t| self.teams.get(t));
        let user = key.user_id.as_deref().and_then(|u| self.users.get(u));
        Some(m.caller(&sluice_metrics::CallerLabels {
            hashed_api_key: key.token.clone(),
            api_key_alias: key.key_alias.clone().unwrap_or_default(),
            team: key.team_id.clone().unwrap_or_default(),
            team_alias: team.and_then(|t| t.record.team_alias.clone()).unwrap_or_default(),
            user: key.user_id.clone().unwrap_or_default(),
            user_email: user.and_then(|u| u.record.user_email.clone()).unwrap_or_default(),
        }))
    }

    /// Adds or replaces a key, keeping its live state. `from_db`: the record's spend is the
    /// database's (a reload), so the ledger's base follows it.
    pub fn put_key(&self, record: KeyRecord, from_db: bool) -> Arc<KeyEntry> {
        self.negative.remove(&record.token);
        let live = match self.keys.get(&record.token) {
            Some(old) => {
                let live = old.live.clone();
                if from_db {
                    live.ledger.reloaded(record.spend, &record.model_spend);
                }
                live.ledger.set_reset_at_ms(ms(record.budget_reset_at));
                live
            }
            None => Live::new(record.spend, &record.model_spend, ms(record.budget_reset_at)),
        };
        let caller = self.caller_for(&record);
        let old = self.keys.get(&record.token).map(|e| e.clone());
        let logging = self.logging_of(&record.metadata, old.as_deref(), || {
            self.own_logging.resolve(&record.metadata, &key_name(&record))
        });
        let entry = Arc::new(Entry { record, live, caller, logging });
        self.keys.insert(entry.record.token.clone(), entry.clone());
        entry
    }

    /// `metadata`'s own logging, taken from `old` when the settings it is read from are the
    /// same (a reload puts every entry again; resolving, and warning, once is enough), else
    /// `resolve`d.
    fn logging_of<R>(
        &self,
        metadata: &serde_json::Map<String, serde_json::Value>,
        old: Option<&Entry<R>>,
        resolve: impl FnOnce() -> OwnLogging,
    ) -> OwnLogging
    where
        R: HasMetadata,
    {
        if let Some(old) = old {
            let same = |field: &str| old.record.metadata().get(field) == metadata.get(field);
            if same("logging") && same("callback_settings") {
                return old.logging.clone();
            }
        }
        resolve()
    }

    pub fn put_user(&self, record: UserRecord, from_db: bool) -> Arc<UserEntry> {
        let live = self.live_of(self.users.get(&record.user_id).map(|e| e.live.clone()), from_db, |l| {
            l.ledger.reloaded(record.spend, &record.model_spend)
        });
        let live = live.unwrap_or_else(|| Live::new(record.spend, &record.model_spend, ms(record.budget_reset_at)));
        live.ledger.set_reset_at_ms(ms(record.budget_reset_at));
        let entry = Arc::new(Entry { record, live, caller: None, logging: OwnLogging::Inherit });
        self.users.insert(entry.record.user_id.clone(), entry.clone());
        entry
    }

    pub fn put_team(&self, record: TeamRecord, from_db: bool) -> Arc<TeamEntry> {
        let live = self.live_of(self.teams.get(&record.team_id).map(|e| e.live.clone()), from_db, |l| {
            l.ledger.reloaded(record.spend, &record.model_spend)
        });
        let live = live.unwrap_or_else(|| Live::new(record.spend, &record.model_spend, ms(record.budget_reset_at)));
        live.ledger.set_reset_at_ms(ms(record.budget_reset_at));
        let old = self.teams.get(&record.team_id).map(|e| e.clone());
        let logging = self.logging_of(&record.metadata, old.as_deref(), || {
            self.own_logging.resolve_team(&record.metadata, &format!("team {}", record.team_id))
        });
        let entry = Arc::new(Entry { record, live, caller: None, logging });
        self.teams.insert(entry.record.team_id.clone(), entry.clone());
        // Keys of this team carry its alias in their metrics labels.
        if self.metrics.is_some() {
            let members: Vec<KeyRecord> = self
                .keys
                .iter()
                .filter(|k| k.record.team_id.as_deref() == Some(entry.record.team_id.as_str()))
                .map(|k| k.record.clone())
                .collect();
            for k in members {
                self.put_key(k, false);
            }
        }
        entry
    }

    pub fn put_end_user(&self, record: EndUserRecord, from_db: bool) -> Arc<EndUserEntry> {
        let empty = serde_json::Map::new();
        let live = self.live_of(self.end_users.get(&record.user_id).map(|e| e.live.clone()), from_db, |l| {
            l.ledger.reloaded(record.spend, &empty)
        });
        let live = live.unwrap_or_else(|| Live::new(record.spend, &empty, None));
        let entry = Arc::new(Entry { record, live, caller: None, logging: OwnLogging::Inherit });
        self.end_users.insert(entry.record.user_id.clone(), entry.clone());
        entry
    }

    pub fn put_budget(&self, record: BudgetRecord) -> Arc<BudgetRecord> {
        let record = Arc::new(record);
        self.budgets.insert(record.budget_id.clone(), record.clone());
        record
    }

    /// Replaces every budget with the database's.
    pub fn reload_budgets(&self, budgets: Vec<BudgetRecord>) {
        let ids: std::collections::HashSet<String> = budgets.iter().map(|b| b.budget_id.clone()).collect();
        for b in budgets {
            self.put_budget(b);
        }
        self.budgets.retain(|id, _| ids.contains(id));
    }

    /// Adds or replaces an organization, keeping its live state (`from_db`: as for keys).
    pub fn put_organization(&self, org: Organization, from_db: bool) -> Arc<OrgEntry> {
        let r = &org.record;
        let live = self.live_of(self.organizations.get(&r.organization_id).map(|e| e.live.clone()), from_db, |l| {
            l.ledger.reloaded(r.spend, &r.model_spend)
        });
        let reset = ms(org.budget.as_ref().and_then(|b| b.budget_reset_at));
        let live = live.unwrap_or_else(|| Live::new(r.spend, &r.model_spend, reset));
        live.ledger.set_reset_at_ms(reset);
        let entry = Arc::new(Entry { record: org, live, caller: None, logging: OwnLogging::Inherit });
        self.organizations.insert(entry.record.record.organization_id.clone(), entry.clone());
        entry
    }

    /// Replaces every organization with the database's (a background reload).
    pub fn reload_organizations(&self, orgs: Vec<Organization>) {
        let ids: std::collections::HashSet<String> = orgs.iter().map(|o| o.record.organization_id.clone()).collect();
        for o in orgs {
            self.put_organization(o, true);
        }
        self.organizations.retain(|id, _| ids.contains(id));
    }

    /// The organization of a team, if it has one and it is known.
    pub fn team_organization(&self, team: &TeamRecord) -> Option<Arc<OrgEntry>> {
        team.organization_id.as_deref().and_then(|o| self.organizations.get(o).map(|e| e.clone()))
    }

    fn live_of(&self, old: Option<Arc<Live>>, from_db: bool, reload: impl FnOnce(&Live)) -> Option<Arc<Live>> {
        let live = old?;
        if from_db {
            reload(&live);
        }
        Some(live)
    }

    /// The end user named by a request's `user`, created on first sight. Created under the map's
    /// entry lock: concurrent first requests by one end user must share one ledger, or the spend
    /// of all but the last one created would go to a ledger nobody reads.
    pub fn end_user(&self, id: &str) -> Arc<EndUserEntry> {
        if let Some(e) = self.end_users.get(id) {
            return e.clone();
        }
        let empty = serde_json::Map::new();
        self.end_users
            .entry(id.to_string())
            .or_insert_with(|| {
                let record = EndUserRecord { user_id: id.to_string(), ..Default::default() };
                Arc::new(Entry {
                    record,
                    live: Live::new(0.0, &empty, None),
                    caller: None,
                    logging: OwnLogging::Inherit,
                })
            })
            .clone()
    }

    pub fn key(&self, token: &str) -> Option<Arc<KeyEntry>> {
        self.keys.get(token).map(|e| e.clone())
    }

    /// Whether `token` was looked up in the database recently and not found.
    pub fn known_unknown(&self, token: &str) -> bool {
        match self.negative.get(token) {
            Some(at) if at.elapsed() < NEGATIVE_TTL => true,
            Some(_) => {
                self.negative.remove(token);
                false
            }
            None => false,
        }
    }

    pub fn remember_unknown(&self, token: &str) {
        if self.negative.len() >= NEGATIVE_CAP {
            self.negative.clear();
        }
        self.negative.insert(token.to_string(), Instant::now());
    }

    /// Replaces the whole view with the database's (a background reload): entries gone from the
    /// database go from memory too.
    /// Replaces keys, users and teams with what the database held when `read_at` (the moment
    /// the reload began reading) — except what was written here since: the management API writes
    /// to the database, then here, so an entry written while the reload read may be missing from
    /// the read, or older in it. Such an entry (stamped `updated_at` within [`RELOAD_GRACE_MS`]
    /// of the read, or newer than the read's copy) stays; the next reload settles it. Without
    /// this a key made during a reload was refused for up to a second.
    pub fn reload(&self, keys: Vec<KeyRecord>, users: Vec<UserRecord>, teams: Vec<TeamRecord>, read_at: DateTime<Utc>) {
        let team_ids: std::collections::HashSet<String> = teams.iter().map(|t| t.team_id.clone()).collect();
        let user_ids: std::collections::HashSet<String> = users.iter().map(|u| u.user_id.clone()).collect();
        let tokens: std::collections::HashSet<String> = keys.iter().map(|k| k.token.clone()).collect();
        for t in teams {
            if !self.teams.get(&t.team_id).is_some_and(|e| newer(e.record.updated_at, t.updated_at)) {
                self.put_team_quiet(t);
            }
        }
        for u in users {
            if !self.users.get(&u.user_id).is_some_and(|e| newer(e.record.updated_at, u.updated_at)) {
                self.put_user(u, true);
            }
        }
        for k in keys {
            if !self.keys.get(&k.token).is_some_and(|e| newer(e.record.updated_at, k.updated_at)) {
                self.put_key(k, true);
            }
        }
        let recent = |at: Option<DateTime<Utc>>| {
            at.is_some_and(|at| at.timestamp_millis() >= read_at.timestamp_millis() - RELOAD_GRACE_MS)
        };
        self.teams.retain(|id, e| team_ids.contains(id) || recent(e.record.updated_at));
        self.users.retain(|id, e| user_ids.contains(id) || recent(e.record.updated_at));
        self.keys.retain(|t, e| tokens.contains(t) || recent(e.record.updated_at));
    }

    /// `put_team` without relabelling keys (a reload relabels every key right after).
    fn put_team_quiet(&self, record: TeamRecord) {
        let live = self.live_of(self.teams.get(&record.team_id).map(|e| e.live.clone()), true, |l| {
            l.ledger.reloaded(record.spend, &record.model_spend)
        });
        let live = live.unwrap_or_else(|| Live::new(record.spend, &record.model_spend, ms(record.budget_reset_at)));
        live.ledger.set_reset_at_ms(ms(record.budget_reset_at));
        let old = self.teams.get(&record.team_id).map(|e| e.clone());
        let logging = self.logging_of(&record.metadata, old.as_deref(), || {
            self.own_logging.resolve_team(&record.metadata, &format!("team {}", record.team_id))
        });
        self.teams.insert(record.team_id.clone(), Arc::new(Entry { record, live, caller: None, logging }));
    }
}

/// Records whose `metadata` may hold a `logging` list.
pub trait HasMetadata {
    fn metadata(&self) -> &serde_json::Map<String, serde_json::Value>;
}

impl HasMetadata for KeyRecord {
    fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.metadata
    }
}

impl HasMetadata for TeamRecord {
    fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.metadata
    }
}

/// A key as logs name it: its alias, else the start of its hash (never the key).
fn key_name(key: &KeyRecord) -> String {
    match &key.key_alias {
        Some(alias) => format!("key {alias}"),
        None => format!("key {}…", key.token.chars().take(12).collect::<String>()),
    }
}

/// How long before a reload's read a write may be stamped and still be missing from what the
/// read saw (its commit landing after the read began).
const RELOAD_GRACE_MS: i64 = 5_000;

/// Whether the copy in memory was written after the one a reload read.
fn newer(in_memory: Option<DateTime<Utc>>, read: Option<DateTime<Utc>>) -> bool {
    match (in_memory, read) {
        (Some(m), Some(r)) => m > r,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_at(token: &str, alias: &str, updated_ms: i64) -> KeyRecord {
        KeyRecord {
            token: token.into(),
            key_alias: Some(alias.into()),
            updated_at: DateTime::from_timestamp_millis(updated_ms),
            ..Default::default()
        }
    }

    #[test]
    fn a_reload_keeps_what_was_written_while_it_read() {
        let r = Registry::new(None);
        let read_at = DateTime::from_timestamp_millis(1_000_000).unwrap();
        // Written long before the read, and gone from the database since: removed.
        r.put_key(key_at("old", "a", 1_000_000 - RELOAD_GRACE_MS - 1), false);
        // Made while the reload read (not in what it read): kept.
        r.put_key(key_at("new", "b", 1_000_000 - 10), false);
        // Updated here after the copy the reload read: the newer copy stays.
        r.put_key(key_at("both", "renamed", 1_000_100), false);
        r.reload(vec![key_at("both", "stale", 999_000), key_at("db", "c", 1)], vec![], vec![], read_at);
        let alias = |t: &str| r.keys.get(t).and_then(|e| e.record.key_alias.clone());
        assert_eq!(alias("old"), None, "deleted elsewhere long ago");
        assert_eq!(alias("new").as_deref(), Some("b"), "made during the read");
        assert_eq!(alias("both").as_deref(), Some("renamed"), "the newer copy");
        assert_eq!(alias("db").as_deref(), Some("c"), "read from the database");
        // A later reload that does see the rename takes the database's copy again.
        r.reload(vec![key_at("both", "final", 1_000_200)], vec![], vec![], read_at);
        assert_eq!(alias("both").as_deref(), Some("final"));
    }

    #[test]
    fn concurrent_first_requests_of_an_end_user_share_one_ledger() {
        for round in 0..50 {
            let registry = Registry::new(None);
            let id = format!("end-user-{round}");
            let start = std::sync::Barrier::new(8);
            let entries: Vec<Arc<EndUserEntry>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            registry.end_user(&id)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let kept = registry.end_users.get(&id).unwrap().clone();
            assert!(entries.iter().all(|e| Arc::ptr_eq(&e.live, &kept.live)), "round {round}: a ledger was lost");
        }
    }
}
