//! The requests in flight, for the hanging-request alert (`llm_requests_hanging`): each request
//! is entered when it starts and removed when it ends (a guard), and a periodic scan reports the
//! ones older than `alerting_threshold`, once each. No timer per request: one coarse scan finds
//! them all. Only kept while the alert type is on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Shards of the table: requests on different threads rarely meet on one lock.
const SHARDS: usize = 16;

/// The longest model name kept for a request's alert.
const MAX_MODEL: usize = 256;

#[derive(Debug)]
struct Entry {
    model: Box<str>,
    started: Instant,
    reported: bool,
}

/// The requests in flight.
#[derive(Debug)]
pub struct InFlight {
    next: AtomicU64,
    shards: [Mutex<HashMap<u64, Entry>>; SHARDS],
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight { next: AtomicU64::new(0), shards: std::array::from_fn(|_| Mutex::new(HashMap::new())) }
    }
}

/// A request's place in [`InFlight`]; dropping it removes the request.
#[derive(Debug)]
pub struct Tracked {
    table: Arc<InFlight>,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.table.shard(self.id).remove(&self.id);
    }
}

/// A request found hanging.
#[derive(Debug, Clone, PartialEq)]
pub struct Hanging {
    pub model: String,
    pub age: Duration,
}

impl InFlight {
    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.shards[id as usize % SHARDS].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a request to `model`, started now.
    pub fn track(self: &Arc<Self>, model: &str) -> Tracked {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut model = model.to_string();
        super::truncate(&mut model, MAX_MODEL);
        self.shard(id).insert(id, Entry { model: model.into(), started: Instant::now(), reported: false });
        Tracked { table: self.clone(), id }
    }

    /// The requests in flight for `threshold` or longer not reported before (each is reported
    /// once), at most `max` of them.
    pub fn hanging(&self, threshold: Duration, max: usize) -> Vec<Hanging> {
        let now = Instant::now();
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for entry in shard.values_mut() {
                let age = now.duration_since(entry.started);
                if !entry.reported && age >= threshold && out.len() < max {
                    entry.reported = true;
                    out.push(Hanging { model: entry.model.to_string(), age });
                }
            }
        }
        out
    }

    /// Requests in flight now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_threshold_is_reported_once_and_gone_when_done() {
        let table = Arc::new(InFlight::default());
        let slow = table.track("gpt-4o");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let quick = table.track("gpt-4o-mini");
        assert!(table.hanging(Duration::from_secs(10), 10).is_empty());
        tokio::time::sleep(Duration::from_secs(6)).await;
        let found = table.hanging(Duration::from_secs(10), 10);
        assert_eq!(found, [Hanging { model: "gpt-4o".into(), age: Duration::from_secs(11) }]);
        assert!(table.hanging(Duration::from_secs(10), 10).is_empty(), "reported once");
        drop(quick);
        drop(slow);
        assert!(table.is_empty());
    }
}
