//! Who made a request: the virtual key, its team and its user, as label values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The key, team and user labels LiteLLM puts on its per-request metrics (reference §5).
///
/// `hashed_api_key` is whatever the server stores for the key (LiteLLM: the SHA-256 hex of the
/// raw key); this crate never sees a raw key and exports exactly what it is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallerLabels {
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub user_email: String,
}

/// A handle on one caller's labels, made once per key identity with
/// [`Metrics::caller`](crate::Metrics::caller) and kept by the server; cheap to clone (one
/// `Arc`).
///
/// Its id stands for the labels in the per-thread caches, so recording with a caller hashes one
/// number rather than six strings. A key whose alias or team changes needs a new handle: handles
/// are immutable, and a new id keeps a cached series of the old labels from being reused.
#[derive(Clone, Debug)]
pub struct Caller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    labels: CallerLabels,
}

/// The labels of "no caller" (master key, or no auth configured): all empty, as LiteLLM exports
/// them for unauthenticated traffic.
static NOBODY: CallerLabels = CallerLabels {
    hashed_api_key: String::new(),
    api_key_alias: String::new(),
    team: String::new(),
    team_alias: String::new(),
    user: String::new(),
    user_email: String::new(),
};

impl Caller {
    pub(crate) fn new(labels: &CallerLabels) -> Caller {
        // Starts at 1: 0 is "no caller" in cache keys.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Caller { inner: Arc::new(Inner { id: NEXT.fetch_add(1, Ordering::Relaxed), labels: labels.clone() }) }
    }

    /// Unique per handle in this process; never 0.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn labels(&self) -> &CallerLabels {
        &self.inner.labels
    }
}

/// The labels of `caller`, empty for none.
pub(crate) fn labels(caller: Option<&Caller>) -> &CallerLabels {
    caller.map_or(&NOBODY, Caller::labels)
}

/// A per-thread cache key: `caller`'s id in the high half, `num` (deployment, status, …) in the
/// low half.
pub(crate) fn cache_key(caller: Option<&Caller>, num: u64) -> u128 {
    u128::from(caller.map_or(0, Caller::id)) << 64 | u128::from(num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_have_distinct_nonzero_ids_and_clones_share_them() {
        let a = Caller::new(&CallerLabels { hashed_api_key: "h".into(), ..Default::default() });
        let b = Caller::new(a.labels());
        assert_ne!(a.id(), 0);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.clone().id(), a.id());
        assert_eq!(labels(None), &CallerLabels::default());
        assert_eq!(labels(Some(&a)).hashed_api_key, "h");
        assert_ne!(cache_key(Some(&a), 7), cache_key(None, 7));
        assert_eq!(cache_key(None, 7), 7);
    }
}
