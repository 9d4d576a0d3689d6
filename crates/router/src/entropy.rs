//! Random numbers for picks without a lock shared by every request: each pick gets its own
//! small generator, seeded from a per-thread stream (or, when the settings fix a seed, from one
//! atomic stream, so a test's picks repeat).

use rand::RngCore;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64's increment: successive states are far apart whatever the start.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Where each pick's generator is seeded from.
#[derive(Debug)]
pub(crate) enum Entropy {
    /// Each thread's own stream, seeded from the OS once per thread.
    PerThread,
    /// One stream for the router (`Settings::seed`): an atomic add per pick, so picks on one
    /// thread repeat from run to run.
    Seeded(AtomicU64),
}

thread_local! {
    static THREAD_STATE: Cell<u64> = Cell::new(rand::random());
}

impl Entropy {
    pub(crate) fn new(seed: Option<u64>) -> Entropy {
        match seed {
            Some(s) => Entropy::Seeded(AtomicU64::new(s)),
            None => Entropy::PerThread,
        }
    }

    /// A generator for one pick (or one retry's jitter).
    pub(crate) fn draw(&self) -> Pick {
        let state = match self {
            Entropy::PerThread => THREAD_STATE.with(|s| {
                let next = s.get().wrapping_add(GOLDEN);
                s.set(next);
                next
            }),
            Entropy::Seeded(s) => s.fetch_add(GOLDEN, Ordering::Relaxed).wrapping_add(GOLDEN),
        };
        Pick(mix(state))
    }
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: a few instructions per number, and statistically sound for choosing among
/// deployments and jittering retries (nothing here is secret).
#[derive(Debug)]
pub(crate) struct Pick(u64);

impl RngCore for Pick {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn a_seed_repeats_its_picks() {
        let picks = |seed| {
            let e = Entropy::new(Some(seed));
            (0..64).map(|_| e.draw().gen_range(0..1000)).collect::<Vec<u32>>()
        };
        assert_eq!(picks(42), picks(42));
        assert_ne!(picks(42), picks(43));
    }

    /// Every draw of a shared seeded stream is its own, however many threads draw at once: the
    /// stream is one atomic add, not a generator behind a lock.
    #[test]
    fn racing_threads_never_get_the_same_draw() {
        let e = std::sync::Arc::new(Entropy::new(Some(7)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let e = e.clone();
                std::thread::spawn(move || (0..2000).map(|_| e.draw().next_u64()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn picks_spread_evenly() {
        let e = Entropy::new(None);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[e.draw().gen_range(0..4)] += 1;
        }
        assert!(counts.iter().all(|c| (9_000..11_000).contains(c)), "{counts:?}");
    }
}
