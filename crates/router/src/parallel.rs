//! A deployment's own `max_parallel_requests` over every replica: the calls in flight on it,
//! counted in Redis ([`SharedCap`]: one field per replica), so N replicas together send it no
//! more than the cap.
//!
//! Only an explicit `max_parallel_requests` is shared. The cap LiteLLM derives from `rpm` or
//! `tpm` (`calculate_max_parallel_requests`) stays each process's own semaphore, as in LiteLLM:
//! the rpm itself is shared exactly by the deployment's window, and a derived cap of thousands
//! is not worth a Redis round trip on every request. An explicit cap costs one (entering; leaving
//! is sent in the background), paid only by deployments that set it.
//!
//! A call that finds the cap full waits, as LiteLLM's semaphore makes it wait, polling Redis with
//! a pause that grows to [`MAX_PAUSE`]. With Redis away each replica keeps to its share of the
//! cap (the cap divided by the replicas it last knew of), counted here.

use sluice_state::remote::cap::{CapSlot, Entered, SharedCap};
use sluice_state::remote::Remote;
use sluice_state::{InFlight, InFlightCount, Slot};
use std::sync::Arc;
use std::time::Duration;

/// The longest pause between two tries while the cap is full everywhere.
pub const MAX_PAUSE: Duration = Duration::from_millis(20);

/// The deployment's cap as this replica takes part in it.
#[derive(Debug)]
pub(crate) struct SharedParallel {
    cap: Arc<SharedCap>,
    /// This replica's calls admitted while Redis was away, held to its share.
    away: Arc<InFlight>,
}

/// A place under the shared cap, given back when the attempt ends (whichever way it was taken).
#[derive(Debug)]
pub(crate) struct ParallelSlot {
    _shared: Option<CapSlot>,
    _away: Option<Slot>,
}

impl SharedParallel {
    pub(crate) fn new(remote: Arc<Remote>, deployment_id: &str) -> SharedParallel {
        SharedParallel { cap: SharedCap::new(remote, "deployment", deployment_id), away: Arc::default() }
    }

    /// Waits for a place under `limit` over all replicas.
    pub(crate) async fn enter(&self, limit: u32) -> ParallelSlot {
        let limit = u64::from(limit);
        let mut pause = Duration::from_millis(1);
        loop {
            match self.cap.enter(limit).await {
                Some(Entered::Yes(slot)) => return ParallelSlot { _shared: Some(slot), _away: None },
                Some(Entered::Full { .. }) => {}
                None => {
                    if let Some(slot) = self.away.try_enter(self.cap.remote().share(limit)) {
                        return ParallelSlot { _shared: None, _away: Some(slot) };
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}
