//! Spend held in memory: what the database last said (`base`) plus what this replica has added
//! since and not yet written (`pending`). Requests add to `pending` with one atomic operation;
//! the spend writer moves `pending` into the database in batches and then into `base`.
//!
//! Beside the spend, a ledger holds what the requests in flight on it are estimated to cost
//! (`reserved`, see [`super::reserve`]), so admission can count them before they are billed.

use sluice_state::{BudgetCounter, SpendCounter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Ledger {
    base: SpendCounter,
    pending: SpendCounter,
    /// Per model: (base, pending), for `model_max_budget` and `model_spend`.
    models: Mutex<HashMap<String, (f64, f64)>>,
    /// Set while this ledger sits in the writer's dirty list.
    pub(crate) dirty: AtomicBool,
    /// Unix milliseconds of the next budget reset; 0 when none.
    reset_at_ms: AtomicI64,
    /// Estimated cost of the requests in flight, in nano-USD: an integer, so what each request
    /// adds it takes back exactly, in whatever order they end.
    reserved: AtomicU64,
}

/// What a write takes out of a ledger, and gives back if the write fails.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taken {
    pub amount: f64,
    pub per_model: Vec<(String, f64)>,
}

impl Ledger {
    pub fn new(spend: f64, model_spend: &serde_json::Map<String, serde_json::Value>) -> Self {
        let models = model_spend.iter().filter_map(|(m, v)| Some((m.clone(), (v.as_f64()?, 0.0)))).collect();
        let ledger = Ledger { models: Mutex::new(models), ..Default::default() };
        ledger.base.reset_to(spend);
        ledger
    }

    pub fn spend(&self) -> f64 {
        // Pending first: a write in progress moves an amount into base before taking it out of
        // pending, so this order may count it twice for a moment but never misses it.
        let pending = self.pending.read();
        self.base.read() + pending
    }

    /// What the writer has written (or, for a row that is not there, tried to).
    pub fn written(&self) -> f64 {
        self.base.read()
    }

    /// What this replica has added and not yet written.
    pub fn pending(&self) -> f64 {
        self.pending.read()
    }

    /// [`pending`](Self::pending) for one model.
    pub fn model_pending(&self, model: &str) -> f64 {
        self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(model).map(|(_, p)| *p).unwrap_or(0.0)
    }

    pub fn model_spend(&self, model: &str) -> f64 {
        self.models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(model)
            .map(|(b, p)| b + p)
            .unwrap_or(0.0)
    }

    /// Adds a request's cost; returns true when the ledger just became dirty (the caller queues it).
    pub fn charge(&self, cost: f64, model: Option<&str>) -> bool {
        self.pending.add(cost);
        if let Some(m) = model {
            let mut models = self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match models.get_mut(m) {
                Some(e) => e.1 += cost,
                None => {
                    models.insert(m.to_string(), (0.0, cost));
                }
            }
        }
        !self.dirty.swap(true, Ordering::SeqCst)
    }

    /// What is pending now, for a batch. Stays pending until [`committed`](Self::committed).
    pub fn snapshot(&self) -> Taken {
        let per_model = self
            .models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(_, (_, p))| *p != 0.0)
            .map(|(m, (_, p))| (m.clone(), *p))
            .collect();
        Taken { amount: self.pending.read(), per_model }
    }

    /// The batch holding `taken` is in the database: move it from pending to base. Returns
    /// whether anything is still pending (added while the batch was being written).
    pub fn committed(&self, taken: &Taken) -> bool {
        // Into base before out of pending: budgets read mid-move see the amount (see `spend`).
        self.base.add(taken.amount);
        self.pending.add(-taken.amount);
        let mut models = self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (m, x) in &taken.per_model {
            if let Some(e) = models.get_mut(m) {
                e.1 -= x;
                e.0 += x;
            }
        }
        drop(models);
        // Clear the flag before looking at what is left: a charge that lands after the look sees
        // the flag down and queues the ledger itself, so none can slip between look and clear.
        // (The writer keys its list by spender, so a ledger queued twice is written once.)
        self.dirty.store(false, Ordering::SeqCst);
        let still = self.pending.read().abs() > 1e-15
            || self
                .models
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
                .any(|(_, p)| p.abs() > 1e-15);
        if still {
            self.dirty.store(true, Ordering::SeqCst);
        }
        still
    }

    /// The database's view after a reload: it holds everything this replica committed.
    pub fn reloaded(&self, spend: f64, model_spend: &serde_json::Map<String, serde_json::Value>) {
        self.base.reset_to(spend);
        let mut models = self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (m, v) in model_spend {
            if let Some(x) = v.as_f64() {
                models.entry(m.clone()).or_insert((0.0, 0.0)).0 = x;
            }
        }
    }

    /// A budget period ended: spend starts again from zero, pending included (it belonged to
    /// the period that ended; the spend logs keep it).
    pub fn reset(&self) {
        self.base.reset_to(0.0);
        self.pending.reset_to(0.0);
        self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// Adds a request's estimate; returns what the other requests in flight had reserved.
    pub fn reserve(&self, nanos: u64) -> u64 {
        let prev = self.reserved.fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| Some(r.saturating_add(nanos)));
        prev.unwrap_or_else(|r| r)
    }

    /// Takes back what [`reserve`](Self::reserve) added.
    pub fn unreserve(&self, nanos: u64) {
        let _ = self.reserved.fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| Some(r.saturating_sub(nanos)));
    }

    /// The estimated cost of the requests in flight, in nano-USD.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }

    pub fn reset_at_ms(&self) -> Option<i64> {
        Some(self.reset_at_ms.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    pub fn set_reset_at_ms(&self, at: Option<i64>) {
        self.reset_at_ms.store(at.unwrap_or(0), Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Release builds unwind: a request that panicked while holding a shared key's lock must not
    /// turn every later request on that key into a panic too.
    #[test]
    fn a_panic_while_the_models_are_locked_leaves_the_ledger_usable() {
        let l = std::sync::Arc::new(Ledger::new(0.0, &serde_json::Map::new()));
        let held = l.clone();
        let panicked = std::thread::spawn(move || {
            let _models = held.models.lock().unwrap();
            panic!("a handler's bug");
        })
        .join();
        assert!(panicked.is_err() && l.models.is_poisoned());
        l.charge(0.5, Some("gpt"));
        assert_eq!(l.model_spend("gpt"), 0.5);
        let taken = l.snapshot();
        l.committed(&taken);
        assert_eq!(l.spend(), 0.5);
    }

    #[test]
    fn pending_moves_to_base_only_when_committed() {
        let l = Ledger::new(1.0, &serde_json::Map::new());
        assert!(l.charge(0.5, Some("gpt")));
        assert!(!l.charge(0.25, Some("gpt")), "already queued");
        assert_eq!(l.spend(), 1.75);
        let t = l.snapshot();
        assert_eq!(t.amount, 0.75);
        l.charge(0.25, None);
        assert!(l.committed(&t), "0.25 arrived during the write");
        assert_eq!(l.spend(), 2.0);
        assert_eq!(l.model_spend("gpt"), 0.75);
        let t = l.snapshot();
        assert!(!l.committed(&t));
        assert_eq!(l.spend(), 2.0);
    }

    #[test]
    fn a_failed_write_keeps_everything_pending() {
        let l = Ledger::new(0.0, &serde_json::Map::new());
        l.charge(0.1, None);
        let _lost_write = l.snapshot();
        l.charge(0.2, None);
        let t = l.snapshot();
        assert!((t.amount - 0.3).abs() < 1e-12);
        assert!(!l.committed(&t));
        assert!((l.spend() - 0.3).abs() < 1e-12);
    }
}
