//! Virtual keys, users, teams and end users on the request path: who is calling, what they may
//! do (models, expiry, budgets, rate limits), and what they spent — all from memory. The store
//! is read at start and in the background and written in batches by [`writer`], never while a
//! request waits (except once for a key this replica has never seen; see [`Access::identify`]).

pub mod admit;
pub mod charge;
pub mod duration;
pub mod ledger;
pub mod registry;
pub mod window;
pub mod writer;

use crate::auth::{self, MasterKey};
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
    /// Database lookups of keys this replica has not seen, at most this many at once: a flood
    /// of made-up keys, each new, gets 401s instead of a queue of queries.
    lookups: tokio::sync::Semaphore,
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
        Arc::new(Access {
            registry: Registry::new(metrics.clone()),
            master_hash: master.map(hash_key).unwrap_or_default().into(),
            master: master.map(MasterKey::new),
            db_up: AtomicBool::new(false),
            refuse_without_db: AtomicBool::new(false),
            db_error: std::sync::Mutex::new(None),
            store: std::sync::OnceLock::new(),
            writer: writer::Queue::new(),
            settings,
            metrics,
            lookups: tokio::sync::Semaphore::new(MAX_KEY_LOOKUPS),
        })
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
        let result = async {
            let teams = store.all_teams().await?;
            let users = store.all_users().await?;
            let keys = store.all_keys().await?;
            let end_users = store.all_end_users().await?;
            Ok::<_, sluice_store::StoreError>((keys, users, teams, end_users))
        }
        .await;
        self.db_up.store(result.is_ok(), Ordering::Relaxed);
        let (keys, users, teams, end_users) = result?;
        self.registry.reload(keys, users, teams);
        for e in end_users {
            self.registry.put_end_user(e, true);
        }
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn access(master: Option<&str>) -> Arc<Access> {
        let settings = AccessSettings {
            batch_write_interval: std::time::Duration::from_secs(10),
            reload_interval: std::time::Duration::from_secs(60),
            disable_spend_logs: false,
            max_end_user_budget: None,
        };
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

    #[tokio::test]
    async fn open_without_master_key() {
        assert!(matches!(access(None).identify(&HeaderMap::new()).await, Ok(Identity::Open)));
    }
}
