//! A spend counter in one atomic.

use crate::BudgetCounter;
use std::sync::atomic::{AtomicU64, Ordering};

/// An `f64` updated atomically (compare-and-swap on its bits): adding never takes a lock.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl BudgetCounter for AtomicF64 {
    fn add(&self, usd: f64) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some((f64::from_bits(b) + usd).to_bits()));
    }

    fn read(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Acquire))
    }

    fn reset_to(&self, usd: f64) {
        self.0.store(usd.to_bits(), Ordering::Release)
    }
}

impl AtomicF64 {
    /// Takes the value, leaving 0: of two callers racing, each gets a disjoint part.
    pub fn take(&self) -> f64 {
        f64::from_bits(self.0.swap(0f64.to_bits(), Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn racing_adds_are_all_counted() {
        let c = Arc::new(AtomicF64::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(0.25)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // Quarters add exactly in binary floating point, so the sum is exact.
        assert_eq!(c.read(), 2000.0);
        c.reset_to(0.0);
        assert_eq!(c.read(), 0.0);
    }
}
