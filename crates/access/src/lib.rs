//! Who may call and what they spent: virtual keys, users, teams and end users on the request
//! path — who is calling ([`Access::identify`], [`Access::authenticate`]), what they may do
//! (models, expiry, budgets, rate limits: [`Access::admit`]), and what they spent
//! ([`charge::Charge`], settled after the answer) — all from memory. The store is read at start
//! and in the background and written in batches by [`writer`], never while a request waits
//! (except once for a key this replica has never seen; see [`Access::identify`]).
//!
//! Counters that replicas must agree on (windows, in-flight counts, spend) are `sluice-state`'s
//! types, used through its traits. The server composes this crate: the proxy identifies, admits
//! and charges; the management API reads and changes the [`registry`]; `App` starts and stops
//! the [`writer`].

pub mod admit;
pub mod alerts;
pub mod auth;
pub mod charge;
pub mod duration;
pub mod end_users;
pub mod groups;
pub mod ledger;
pub mod log_queue;
pub mod members;
pub mod organizations;
pub mod own_logging;
pub mod registry;
pub mod reserve;
pub mod shared;
pub mod writer;

/// The parsers' test numbers are the server's: one list of what arrives from outside.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../server/src/test_numbers.rs"]
mod test_numbers;

use auth::MasterKey;
use registry::{KeyEntry, Registry};
use sha2::{Digest, Sha256};
use sluice_store::Store;
use sluice_wire::ApiError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Who a request comes from.
#[derive(Clone)]
pub enum Identity {
    /// No master key is configured: LiteLLM lets everyone in as admin.
    Open,
    Master,
    Key(Arc<KeyEntry>),
}

impl Identity {
    /// The master key, an open proxy, or a key of a user whose role is `proxy_admin`.
    pub fn is_admin(&self, registry: &Registry) -> bool {
        match self {
            Identity::Open | Identity::Master => true,
            Identity::Key(k) => k
                .record
                .user_id
                .as_deref()
                .and_then(|u| registry.users.get(u))
                .is_some_and(|u| u.record.user_role.as_deref() == Some("proxy_admin")),
        }
    }
}

/// Settings of the access layer, from `general_settings`/`litellm_settings`.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    pub batch_write_interval: std::time::Duration,
    pub reload_interval: std::time::Duration,
    pub disable_spend_logs: bool,
    pub max_end_user_budget: Option<f64>,
    /// `litellm_settings.max_budget` (0 or unset: none) and `budget_duration`: the whole proxy's.
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    /// The proxy-wide in-flight cap (`general_settings.global_max_parallel_requests`).
    pub max_parallel_requests: Option<u64>,
}

#[cfg(test)]
impl AccessSettings {
    /// LiteLLM's defaults, no proxy-wide budget or cap: what the unit tests start from.
    pub(crate) fn for_tests() -> AccessSettings {
        AccessSettings {
            batch_write_interval: std::time::Duration::from_secs(10),
            reload_interval: std::time::Duration::from_secs(60),
            disable_spend_logs: false,
            max_end_user_budget: None,
            max_budget: None,
            budget_duration: None,
            max_parallel_requests: None,
        }
    }
}

/// The user row LiteLLM keeps the proxy-wide spend on (`litellm_settings.max_budget`), so a
/// database moved from LiteLLM keeps the proxy's spend and the writer persists and resets it
/// like any user's.
pub const PROXY_BUDGET_ID: &str = "litellm-proxy-budget";

/// The proxy-wide budget and its spend.
pub struct GlobalBudget {
    pub max_budget: f64,
    pub budget_duration: Option<String>,
    /// Shared with the registry's entry for [`PROXY_BUDGET_ID`].
    pub live: Arc<registry::Live>,
}

pub struct Access {
    pub registry: Registry,
    /// Set once the database is open and migrated (at start, or later if it was down then).
    store: std::sync::OnceLock<Store>,
    pub master: Option<MasterKey>,
    /// SHA-256 hex of the master key: spend logs attribute master-key traffic to it, as LiteLLM does.
    pub master_hash: Arc<str>,
    pub settings: AccessSettings,
    pub writer: writer::Queue,
    /// Whether the last database round trip worked (for `/health/readiness`).
    pub db_up: AtomicBool,
    /// `general_settings.allow_requests_on_db_unavailable: false`: while the database is
    /// unavailable every request is refused (503) instead of served from memory.
    pub refuse_without_db: AtomicBool,
    /// Why the database last failed, for `/health/readiness`.
    pub db_error: std::sync::Mutex<Option<String>>,
    pub metrics: Option<Arc<sluice_metrics::Metrics>>,
    /// The admin UI's live figures: each bill's cost is added here as it settles.
    pub pulse: Arc<sluice_metrics::Pulse>,
    /// The logging callbacks that take a record of each finished call (`litellm_settings`'
    /// `callbacks`, `success_callback`, `failure_callback`), once the app has started them.
    pub logging: std::sync::OnceLock<Arc<sluice_export::Callbacks>>,
    /// Slack alerting (`general_settings.alerting`), once the app has started it: budgets
    /// crossed, slow calls and failed ones are reported to it ([`alerts`]).
    pub alerts: std::sync::OnceLock<sluice_export::alerting::Alerts>,
    /// Database lookups of keys this replica has not seen, at most this many at once: a flood
    /// of made-up keys, each new, gets 401s instead of a queue of queries.
    lookups: tokio::sync::Semaphore,
    pub global_budget: Option<GlobalBudget>,
    /// The proxy-wide in-flight cap and the count it applies to.
    pub global_parallel: Option<(u64, Arc<sluice_state::InFlightCounter>)>,
    /// Set once Redis is configured: rate windows are shared through it, each bound the first
    /// time a request checks it (entries loaded or created later included).
    sharing: std::sync::OnceLock<Arc<sluice_state::WindowSharing>>,
    /// Budgets and caps shared through Redis ([`shared`]), once the app shares them.
    book: std::sync::OnceLock<Arc<sluice_state::remote::spend::SpendBook>>,
    /// The proxy-wide in-flight cap's shared count.
    global_cap: std::sync::OnceLock<Arc<sluice_state::remote::cap::SharedCap>>,
    /// Set by a reload from the database: the next sync raises shared totals to its view.
    reconcile: AtomicBool,
    /// `model_info.access_groups` of the models served now ([`groups`]), replaced whole when
    /// the models change.
    pub access_groups: arc_swap::ArcSwap<groups::AccessGroups>,
}

/// Concurrent database lookups of unseen keys.
const MAX_KEY_LOOKUPS: usize = 4;

pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

impl Access {
    pub fn new(
        master: Option<&str>,
        settings: AccessSettings,
        metrics: Option<Arc<sluice_metrics::Metrics>>,
    ) -> Arc<Access> {
        let registry = Registry::new(metrics.clone());
        let global_budget = settings.max_budget.filter(|b| *b > 0.0).map(|max_budget| {
            let entry = registry.put_user(proxy_budget_record(max_budget, settings.budget_duration.clone()), false);
            GlobalBudget { max_budget, budget_duration: settings.budget_duration.clone(), live: entry.live.clone() }
        });
        let global_parallel = settings.max_parallel_requests.map(|n| (n, Arc::default()));
        Arc::new(Access {
            registry,
            global_budget,
            global_parallel,
            master_hash: master.map(hash_key).unwrap_or_default().into(),
            master: master.map(MasterKey::new),
            db_up: AtomicBool::new(false),
            refuse_without_db: AtomicBool::new(false),
            db_error: std::sync::Mutex::new(None),
            store: std::sync::OnceLock::new(),
            writer: writer::Queue::new(),
            settings,
            metrics,
            pulse: Arc::new(sluice_metrics::Pulse::new()),
            logging: std::sync::OnceLock::new(),
            alerts: std::sync::OnceLock::new(),
            lookups: tokio::sync::Semaphore::new(MAX_KEY_LOOKUPS),
            sharing: std::sync::OnceLock::new(),
            book: std::sync::OnceLock::new(),
            global_cap: std::sync::OnceLock::new(),
            reconcile: AtomicBool::new(false),
            access_groups: arc_swap::ArcSwap::from_pointee(groups::AccessGroups::default()),
        })
    }

    /// Shares every key's, user's and team's `rpm_limit`/`tpm_limit` window and every key's
    /// per-model limits with the other replicas through Redis. Call once, when Redis is
    /// configured; windows bind as requests first check them, named by the key's token hash,
    /// the user's or team's id (and the model, for per-model limits).
    pub fn share_windows(&self, sharing: Arc<sluice_state::WindowSharing>) {
        let _ = self.sharing.set(sharing);
    }

    pub(crate) fn sharing(&self) -> Option<&Arc<sluice_state::WindowSharing>> {
        self.sharing.get()
    }

    /// The shared count of the proxy-wide in-flight cap, when caps are shared.
    fn global_cap(&self) -> Option<Arc<sluice_state::remote::cap::SharedCap>> {
        let remote = self.remote()?;
        Some(
            self.global_cap
                .get_or_init(|| sluice_state::remote::cap::SharedCap::new(remote.clone(), "global", "proxy"))
                .clone(),
        )
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.get()
    }

    /// Attaches the opened database (once).
    pub fn attach(&self, store: Store) {
        if self.store.set(store).is_ok() {
            self.db_up.store(true, Ordering::Relaxed);
        }
    }

    pub fn db_connected(&self) -> bool {
        self.store().is_some() && self.db_up.load(Ordering::Relaxed)
    }

    /// Records the outcome of a database round trip (the error for `/health/readiness`).
    pub fn db_result(&self, result: Result<(), &sluice_store::StoreError>) {
        self.db_up.store(result.is_ok(), Ordering::Relaxed);
        let mut last = self.db_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = result.err().map(|e| e.to_string());
    }

    /// The 503 every request gets while the database is unavailable, when the config says not to
    /// serve without it (`allow_requests_on_db_unavailable: false`).
    pub fn require_db(&self) -> Result<(), ApiError> {
        if !self.refuse_without_db.load(Ordering::Relaxed) || self.db_connected() {
            return Ok(());
        }
        Err(ApiError::new(
            503,
            "The database is unavailable and general_settings.allow_requests_on_db_unavailable is false, so \
             requests are refused until it is back; retry later (set it to true to serve known keys from \
             memory meanwhile)",
        )
        .kind("service_unavailable"))
    }

    /// Loads every key, user and team into memory. Failure leaves the registry as it was.
    pub async fn load(&self) -> Result<(), sluice_store::StoreError> {
        let Some(store) = self.store() else { return Ok(()) };
        let read_at = chrono::Utc::now();
        let result = async {
            let teams = store.all_teams().await?;
            let users = store.all_users().await?;
            let keys = store.all_keys().await?;
            let end_users = store.all_end_users().await?;
            let budgets = store.all_budgets().await?;
            let members = members::with_budgets(store.team_memberships(None).await?, &budgets);
            Ok::<_, sluice_store::StoreError>((keys, users, teams, end_users, budgets, members))
        }
        .await;
        // A failed read marks the database down; a read that works does not mark it up: a file
        // that can be read but not written (made immutable, a full disk) is still down, and the
        // spend writer, whose writes and pings decide that, says when it is back. (Reloads run
        // every second while Redis is away, so a read here must not hide a write outage.)
        if result.is_err() {
            self.db_up.store(false, Ordering::Relaxed);
        }
        let (keys, users, teams, end_users, budgets, members) = result?;
        self.registry.reload_budgets(budgets);
        let proxy_row = users.iter().any(|u| u.user_id == PROXY_BUDGET_ID);
        self.registry.reload(keys, users, teams, read_at);
        self.registry.members.reload(members);
        // The proxy's row is missing (making it failed, or an admin deleted it): its spend stays
        // counted in memory on the same ledger, and the row is made again.
        if let (Some(g), false) = (&self.global_budget, proxy_row) {
            let record = proxy_budget_record(g.max_budget, g.budget_duration.clone());
            let entry = registry::Entry { record, live: g.live.clone(), caller: None, logging: Default::default() };
            self.registry.users.insert(PROXY_BUDGET_ID.to_string(), Arc::new(entry));
            self.prepare(store).await;
        }
        for e in end_users {
            self.registry.put_end_user(e, true);
        }
        if let Err(e) = self.load_organizations().await {
            self.db_up.store(false, Ordering::Relaxed);
            return Err(e);
        }
        self.reconcile.store(true, Ordering::Release);
        Ok(())
    }

    /// Makes or updates the proxy budget's row (before the database is attached, so the spend
    /// writer never writes to a row that is not there yet). The config's budget wins over the
    /// row's; the period's end is kept unless the duration changed.
    pub async fn prepare(&self, store: &Store) {
        let Some(g) = &self.global_budget else { return };
        let result = async {
            let now = chrono::Utc::now();
            let next_reset = |d: &Option<String>| d.as_deref().and_then(|d| duration::after(now, d).ok());
            match store.get_user(PROXY_BUDGET_ID).await? {
                None => {
                    let mut record = proxy_budget_record(g.max_budget, g.budget_duration.clone());
                    record.budget_reset_at = next_reset(&g.budget_duration);
                    // What the writer moved out of pending while there was no row to add it to.
                    record.spend = g.live.ledger.written();
                    store.insert_user(&record).await
                }
                Some(mut record) => {
                    let duration_changed = record.budget_duration != g.budget_duration;
                    if duration_changed || (record.budget_reset_at.is_none() && g.budget_duration.is_some()) {
                        record.budget_reset_at = next_reset(&g.budget_duration);
                    }
                    record.max_budget = Some(g.max_budget);
                    record.budget_duration = g.budget_duration.clone();
                    store.update_user(&record).await
                }
            }
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(
                "could not record the proxy budget in the database ({e}); its spend is counted in memory, and the row is tried again at the next reload"
            );
        }
    }

    /// The caller, from the key in the headers (LiteLLM's order, reference §3.2). A key this
    /// replica has not seen is looked up in the database once; a miss is remembered for a while
    /// so a flood of made-up keys never reaches the database.
    pub async fn identify(&self, headers: &http::HeaderMap) -> Result<Identity, ApiError> {
        self.require_db()?;
        let Some(master) = &self.master else { return Ok(Identity::Open) };
        let key = auth::presented_key(headers)?.filter(|k| !k.is_empty());
        let Some(key) = key else {
            return Err(auth::auth_error("No api key passed in."));
        };
        if master.matches(key) {
            return Ok(Identity::Master);
        }
        if !key.starts_with("sk-") {
            return Err(auth::not_virtual_key(key));
        }
        let token = hash_key(key);
        if let Some(entry) = self.registry.key(&token) {
            return Ok(Identity::Key(entry));
        }
        if !self.registry.known_unknown(&token) {
            // No free lookup: the database is busy with other unseen keys (or a flood of them);
            // this one is answered as unknown without waiting, and looked up on a later try.
            let permit = self.lookups.try_acquire();
            if let (Some(store), Ok(_permit)) = (self.store(), permit) {
                match store.get_key(&token).await {
                    Ok(Some(record)) => {
                        self.db_up.store(true, Ordering::Relaxed);
                        return Ok(Identity::Key(self.registry.put_key(record, true)));
                    }
                    Ok(None) => {
                        self.db_up.store(true, Ordering::Relaxed);
                        self.registry.remember_unknown(&token);
                    }
                    // Unreachable database: the key is unknown for now, and asked about again later.
                    Err(_) => self.db_up.store(false, Ordering::Relaxed),
                }
            }
        }
        Err(auth::unknown_key(key, &token))
    }

    /// The caller of a route that is not a model call (management, model lists, metrics): who it
    /// is ([`Access::identify`]) and whether its key may be used at all
    /// ([`Access::check_standing`]: not blocked, not expired, its team not blocked). Model calls
    /// run the same checks inside [`Access::admit`], in LiteLLM's order among the per-model ones.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Identity, ApiError> {
        let identity = self.identify(headers).await?;
        self.check_standing(&identity)?;
        Ok(identity)
    }
}

fn proxy_budget_record(max_budget: f64, budget_duration: Option<String>) -> sluice_store::UserRecord {
    sluice_store::UserRecord {
        user_id: PROXY_BUDGET_ID.to_string(),
        max_budget: Some(max_budget),
        budget_duration,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use sluice_store::Spender;

    fn access(master: Option<&str>) -> Arc<Access> {
        let settings = AccessSettings::for_tests();
        Access::new(master, settings, None)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn accepts_master_key_from_every_litellm_header() {
        let a = access(Some("sk-1234"));
        for h in [
            headers(&[("authorization", "Bearer sk-1234")]),
            headers(&[("authorization", "bearer sk-1234")]),
            headers(&[("x-litellm-api-key", "sk-1234")]),
            headers(&[("api-key", "sk-1234")]),
            headers(&[("x-api-key", "sk-1234")]),
        ] {
            assert!(matches!(a.identify(&h).await, Ok(Identity::Master)), "{h:?}");
        }
        // x-litellm-api-key wins over an Authorization header meant for the upstream.
        let h = headers(&[("x-litellm-api-key", "sk-1234"), ("authorization", "Bearer upstream-key")]);
        assert!(matches!(a.identify(&h).await, Ok(Identity::Master)));
    }

    #[tokio::test]
    async fn rejections_use_litellm_bodies_and_never_echo_the_key() {
        let a = access(Some("sk-1234"));
        let err = |h: HeaderMap| {
            let a = a.clone();
            async move { a.identify(&h).await.err().expect("refused") }
        };
        let e = err(HeaderMap::new()).await;
        assert_eq!((e.status, e.message.as_str()), (401, "Authentication Error, No api key passed in."));
        let e = err(headers(&[("authorization", "Token abc")])).await;
        assert!(e.message.contains("Ensure Key has `Bearer ` prefix"));
        let e = err(headers(&[("authorization", "Bearer sk-wrong-secret-value")])).await;
        assert_eq!(e.kind.as_deref(), Some("token_not_found_in_db"));
        assert!(e.message.contains("sk-...alue"));
        assert!(!e.message.contains("wrong-secret"));
        let e = err(headers(&[("authorization", "Bearer nope-not-a-virtual-key")])).await;
        assert!(e.message.contains("nope****-key"), "{}", e.message);
    }

    /// The proxy budget's spend lives on LiteLLM's user row: made at start with the config's
    /// budget, read back, and made again (with the spend counted meanwhile) if it goes missing.
    #[tokio::test]
    async fn the_proxy_budget_row_is_made_read_back_and_remade() {
        let dir = std::env::temp_dir().join(format!("sluice_proxy_budget_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("p.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let settings = |max: f64| AccessSettings {
            batch_write_interval: std::time::Duration::from_secs(10),
            reload_interval: std::time::Duration::from_secs(60),
            disable_spend_logs: false,
            max_end_user_budget: None,
            max_budget: Some(max),
            budget_duration: Some("30d".into()),
            max_parallel_requests: None,
        };
        let a = Access::new(Some("sk-m"), settings(5.0), None);
        a.prepare(&store).await;
        a.attach(store.clone());
        a.load().await.unwrap();
        let row = store.get_user(PROXY_BUDGET_ID).await.unwrap().unwrap();
        assert_eq!((row.max_budget, row.budget_duration.as_deref()), (Some(5.0), Some("30d")));
        let reset_at = row.budget_reset_at.expect("a period end");
        let spend = [(Spender::User(PROXY_BUDGET_ID.into()), 1.5)];
        let inc = |(s, x): &(Spender, f64)| sluice_store::SpendIncrement {
            spender: s.clone(),
            amount: *x,
            per_model: vec![],
        };
        store.apply_increments(&spend.iter().map(inc).collect::<Vec<_>>()).await.unwrap();

        // A restart with another budget: the spend is read back, the period kept.
        let b = Access::new(Some("sk-m"), settings(7.0), None);
        b.prepare(&store).await;
        b.attach(store.clone());
        b.load().await.unwrap();
        let g = b.global_budget.as_ref().unwrap();
        assert_eq!(g.live.ledger.spend(), 1.5);
        let row = store.get_user(PROXY_BUDGET_ID).await.unwrap().unwrap();
        assert_eq!((row.max_budget, row.spend, row.budget_reset_at), (Some(7.0), 1.5, Some(reset_at)));

        // Deleted: remade at the next reload with what this replica had written.
        store.delete_users(&[PROXY_BUDGET_ID.to_string()]).await.unwrap();
        b.load().await.unwrap();
        assert_eq!(store.get_user(PROXY_BUDGET_ID).await.unwrap().map(|r| r.spend), Some(1.5));
        assert!(Arc::ptr_eq(&b.registry.users.get(PROXY_BUDGET_ID).unwrap().live, &g.live));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn open_without_master_key() {
        assert!(matches!(access(None).identify(&HeaderMap::new()).await, Ok(Identity::Open)));
    }
}
