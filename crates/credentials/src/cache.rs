//! A credential kept until shortly before it expires: [`Cached`].
//!
//! Requests read the cached value under a read lock. Inside the last [`REFRESH_EARLY`] of its
//! life, the first request to notice starts one refresh in the background and goes on with the
//! value it has (still valid); only when there is no valid value do requests wait, and then for
//! one fetch between them all. A failed background refresh keeps the old value until it expires.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long before expiry a credential is refreshed (the AWS SDKs' and google-auth's margin is
/// of this order).
pub const REFRESH_EARLY: Duration = Duration::from_secs(300);

/// The longest any credential is kept, whatever its issuer says (static keys excepted).
pub const MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A credential and how long it is good for (`Debug` is the value's own, which hides secrets).
#[derive(Debug)]
pub struct Fresh<T> {
    pub value: T,
    /// `None`: it does not expire (keys given outright).
    pub lifetime: Option<Duration>,
}

/// Where a credential is fetched from.
pub trait Source: Send + Sync + 'static {
    type Value: Clone + Send + Sync + 'static;
    fn fetch(&self) -> BoxFuture<'_, Result<Fresh<Self::Value>, String>>;
}

struct Entry<T> {
    value: T,
    /// From here on a refresh is due (in the background while before `expires`).
    refresh_at: Option<Instant>,
    expires: Option<Instant>,
}

/// A [`Source`]'s credential, cached and refreshed before it expires.
pub struct Cached<S: Source> {
    source: S,
    /// [`REFRESH_EARLY`], but for tests.
    early: Duration,
    slot: RwLock<Option<Entry<S::Value>>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
}

/// The source (whose own `Debug` hides secrets), never the value.
impl<S: Source + std::fmt::Debug> std::fmt::Debug for Cached<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").field("source", &self.source).finish_non_exhaustive()
    }
}

impl<S: Source> Cached<S> {
    pub fn new(source: S) -> Arc<Self> {
        Self::with_margin(source, REFRESH_EARLY)
    }

    /// Refreshing `early` before expiry instead of [`REFRESH_EARLY`] (tests, to see a refresh
    /// within seconds).
    pub fn with_margin(source: S, early: Duration) -> Arc<Self> {
        Arc::new(Cached { source, early, slot: RwLock::new(None), refresh: Arc::new(tokio::sync::Mutex::new(())) })
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The current value and whether it is due for a refresh; `None` when there is none valid.
    fn current(&self) -> Option<(S::Value, bool)> {
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        let e = slot.as_ref()?;
        let now = Instant::now();
        if e.expires.is_some_and(|x| now >= x) {
            return None;
        }
        Some((e.value.clone(), e.refresh_at.is_some_and(|r| now >= r)))
    }

    fn store(&self, fresh: Fresh<S::Value>) -> S::Value {
        let now = Instant::now();
        let lifetime = fresh.lifetime.map(|l| l.min(MAX_LIFETIME));
        let entry = Entry {
            value: fresh.value.clone(),
            // Half-way through a lifetime shorter than twice the margin, so a short-lived
            // credential is not refreshed on every request.
            refresh_at: lifetime.map(|l| now + l.saturating_sub(self.early).max(l / 2)),
            expires: lifetime.map(|l| now + l),
        };
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(entry);
        fresh.value
    }

    /// The credential: the cached one while valid (starting a background refresh inside its
    /// last [`REFRESH_EARLY`]), else one fetched now, once for all the callers waiting.
    pub async fn get(self: &Arc<Self>) -> Result<S::Value, String> {
        if let Some((value, due)) = self.current() {
            if due {
                self.refresh_in_background();
            }
            return Ok(value);
        }
        let _one_fetch = self.refresh.lock().await;
        // Someone else may have fetched while this caller waited.
        if let Some((value, _)) = self.current() {
            return Ok(value);
        }
        let fresh = self.source.fetch().await?;
        Ok(self.store(fresh))
    }

    fn refresh_in_background(self: &Arc<Self>) {
        // Taken: a refresh (or a fetch) is already under way.
        let Ok(guard) = self.refresh.clone().try_lock_owned() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let _guard = guard;
            // Someone may have refreshed between the check and the lock.
            if this.current().is_some_and(|(_, due)| !due) {
                return;
            }
            match this.source.fetch().await {
                Ok(fresh) => {
                    this.store(fresh);
                }
                Err(e) => tracing::warn!(
                    "refreshing a cloud credential failed; the current one is kept until it expires: {e}"
                ),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Counts fetches; each takes 50 ms and lives `lifetime`.
    struct Counting {
        fetches: AtomicU32,
        lifetime: Duration,
    }

    impl Source for Counting {
        type Value = u32;
        fn fetch(&self) -> BoxFuture<'_, Result<Fresh<u32>, String>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Fresh { value: n, lifetime: Some(self.lifetime) })
            })
        }
    }

    #[tokio::test]
    async fn one_fetch_for_concurrent_callers() {
        let c = Cached::new(Counting { fetches: AtomicU32::new(0), lifetime: Duration::from_secs(3600) });
        let calls: Vec<_> = (0..32).map(|_| c.clone()).map(|c| tokio::spawn(async move { c.get().await })).collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 1);
        }
        assert_eq!(c.source().fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_early_in_the_background_without_blocking() {
        // Lives 1.2 s with a 1 s margin: due for a refresh 600 ms after it is fetched.
        let c = Cached::with_margin(
            Counting { fetches: AtomicU32::new(0), lifetime: Duration::from_millis(1200) },
            Duration::from_secs(1),
        );
        assert_eq!(c.get().await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(c.get().await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(c.source().fetches.load(Ordering::SeqCst), 1, "refreshed before it was due");
        // Due: the callers get the valid value at once, and one refresh starts.
        let started = Instant::now();
        for _ in 0..10 {
            assert_eq!(c.get().await.unwrap(), 1);
        }
        assert!(started.elapsed() < Duration::from_millis(40), "a due refresh blocked a caller");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(c.get().await.unwrap(), 2);
        assert_eq!(c.source().fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_expired_value_is_fetched_again_and_lifetimes_are_capped() {
        let c = Cached::new(Counting { fetches: AtomicU32::new(0), lifetime: Duration::from_millis(10) });
        assert_eq!(c.get().await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(c.get().await.unwrap(), 2);
        let long = Cached::new(Counting { fetches: AtomicU32::new(0), lifetime: Duration::from_secs(u64::MAX / 4) });
        long.get().await.unwrap();
        let slot = long.slot.read().unwrap();
        let expires = slot.as_ref().unwrap().expires.unwrap();
        assert!(expires <= Instant::now() + MAX_LIFETIME);
    }
}
