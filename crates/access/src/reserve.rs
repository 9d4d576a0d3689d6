//! Budgets under concurrency. A budget is checked before a request and charged after it, so
//! without more, every request admitted while the last ones were still running could push the
//! spend past the budget (200 concurrent requests on a budget covering 70 were all served).
//!
//! So a request admitted against a budget holds its *estimated* cost there until it ends
//! ([`Reservation`], released when it is billed, fails, or its client leaves — on drop, whatever
//! the path), and admission counts the estimates of the requests in flight as spent. A request
//! alone sees no estimates: LiteLLM's rule (admitted while spend < `max_budget`) is unchanged.

use super::charge::Served;
use super::registry::Live;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The most one request's estimate counts, in USD: a price or a `max_tokens` from outside,
/// however large, becomes a bounded amount (and the counters cannot overflow).
pub const MAX_ESTIMATE_USD: f64 = 100_000.0;

/// Completion tokens assumed for a deployment that has not answered yet, when the request sets
/// no `max_tokens`.
pub const FIRST_ANSWER_TOKENS: u64 = 256;

/// The most completion tokens an estimate counts.
const MAX_ANSWER_TOKENS: u64 = 1 << 24;

/// USD to the ledgers' nano-USD, rounded up (a request that costs anything holds something).
pub fn nanos(usd: f64) -> u64 {
    if usd.is_nan() || usd <= 0.0 {
        return 0;
    }
    (usd.min(MAX_ESTIMATE_USD) * 1e9).ceil() as u64
}

pub fn usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// What a request may cost on the deployments that may serve it (the dearest of them): its
/// prompt at the input price, and `max_tokens` — or, when it sets none, the deployment's typical
/// answer — at the output price (both from the price tier a prompt that long falls in).
pub fn estimate<'a>(prompt_tokens: u64, max_tokens: Option<u64>, served: impl Iterator<Item = &'a Served>) -> f64 {
    served
        .filter_map(|s| {
            let price = s.price?;
            let answer = max_tokens.unwrap_or_else(|| s.answer.tokens()).min(MAX_ANSWER_TOKENS);
            // The cost formula itself, so a prompt past a price tier's threshold is held at the
            // tier's price. Reasoning tokens are held at the output price (they are part of
            // `max_tokens`; the few models pricing them apart are not worth a guess).
            let cost = price.cost(&sluice_providers::pricing::TokenUsage {
                prompt_tokens: prompt_tokens.min(MAX_ANSWER_TOKENS),
                completion_tokens: answer,
                ..Default::default()
            });
            cost.is_finite().then_some(cost.clamp(0.0, MAX_ESTIMATE_USD))
        })
        .fold(0.0, f64::max)
}

/// How long a deployment's answers are, in completion tokens, for the estimate of a request
/// that sets no `max_tokens`. It follows longer answers at once and shorter ones slowly, so it
/// errs on the side of holding more.
#[derive(Debug, Default, Clone)]
pub struct AnswerLength(Arc<AtomicU64>);

/// [`AnswerLength`] keeps sixteenths of a token, so its slow decay moves by less than a token.
const SCALE: u64 = 16;

impl AnswerLength {
    pub fn tokens(&self) -> u64 {
        match self.0.load(Ordering::Relaxed) {
            0 => FIRST_ANSWER_TOKENS,
            v => v.div_ceil(SCALE),
        }
    }

    pub fn observe(&self, completion_tokens: u64) {
        let x = completion_tokens.clamp(1, MAX_ANSWER_TOKENS) * SCALE;
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
            Some(match cur {
                0 => x,
                cur if x > cur => cur + (x - cur).div_ceil(2),
                cur => cur - (cur - x) / 16,
            })
        });
    }
}

/// Budgets one request can be held against: end user, user, team, team member, organization,
/// key, the whole proxy (one `hold_budget` call each in `admit.rs`).
const LEVELS: usize = 7;

/// A request's estimate, held against each budget it was admitted under until it ends.
#[derive(Debug, Default)]
pub struct Reservation {
    nanos: u64,
    held: [Option<Arc<Live>>; LEVELS],
    /// The estimate as held in Redis on budgets near their end (shared budgets).
    remote: std::sync::Mutex<Vec<sluice_state::remote::spend::Held>>,
    released: AtomicBool,
}

impl Reservation {
    pub fn new(estimate_usd: f64) -> Self {
        Reservation {
            nanos: nanos(estimate_usd),
            held: Default::default(),
            remote: Default::default(),
            released: AtomicBool::new(false),
        }
    }

    /// The estimate, in nano-USD.
    pub fn nanos(&self) -> u64 {
        self.nanos
    }

    /// Keeps an estimate held in Redis until the request ends.
    pub fn keep(&self, held: sluice_state::remote::spend::Held) {
        self.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(held);
    }

    /// The estimate, in USD.
    pub fn amount(&self) -> f64 {
        usd(self.nanos)
    }

    /// Holds the estimate against `live`'s budget; returns what the other requests in flight on
    /// it hold, in USD. Holding first and looking after is what bounds the overshoot: of two
    /// requests admitted at once, the second always sees the first.
    pub fn hold(&mut self, live: &Arc<Live>) -> f64 {
        let free = self.held.iter_mut().find(|h| h.is_none());
        match free {
            Some(free) if self.nanos > 0 => {
                let others = live.ledger.reserve(self.nanos);
                *free = Some(live.clone());
                usd(others)
            }
            _ => usd(live.ledger.reserved()),
        }
    }

    /// Whether the estimate is held against `live`'s budget.
    pub fn holds(&self, live: &Arc<Live>) -> bool {
        self.nanos > 0 && self.held.iter().flatten().any(|h| Arc::ptr_eq(h, live))
    }

    /// The request ended: its estimates stop counting (its cost, if any, is in the ledgers now).
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        for live in self.held.iter().flatten() {
            live.ledger.unreserve(self.nanos);
        }
        // Dropped: taken out of Redis after this replica's charges are sent.
        drop(std::mem::take(&mut *self.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner)));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_providers::pricing::Price;

    fn served(input: f64, output: f64) -> Served {
        let price = Price { input_per_token: input, output_per_token: output, ..Default::default() };
        Served::new("m", "g", "id", "openai", "", Some(price))
    }

    #[test]
    fn estimates_count_the_prompt_and_the_longest_answer_at_the_dearest_price() {
        let (cheap, dear) = (served(1e-6, 2e-6), served(1e-5, 3e-5));
        let e = estimate(100, Some(50), [&cheap, &dear].into_iter());
        assert!((e - (100.0 * 1e-5 + 50.0 * 3e-5)).abs() < 1e-12, "{e}");
        // No max_tokens: the typical answer, before any answer a fixed guess.
        let e = estimate(0, None, [&cheap].into_iter());
        assert!((e - FIRST_ANSWER_TOKENS as f64 * 2e-6).abs() < 1e-12);
        cheap.answer.observe(10);
        assert_eq!(cheap.answer.tokens(), 10);
        // Unpriced deployments and absurd numbers from outside stay bounded.
        assert_eq!(estimate(10, Some(10), [&Served::default()].into_iter()), 0.0);
        let absurd = served(1e30, f64::INFINITY);
        assert_eq!(estimate(u64::MAX, Some(u64::MAX), [&absurd].into_iter()), 0.0);
        assert_eq!(estimate(u64::MAX, Some(u64::MAX), [&served(1e30, 1.0)].into_iter()), MAX_ESTIMATE_USD);
        assert_eq!(nanos(f64::NAN), 0);
        assert_eq!(nanos(1e300), (MAX_ESTIMATE_USD * 1e9) as u64);
    }

    #[test]
    fn a_prompt_past_a_price_tier_is_held_at_the_tiers_price() {
        let tier = sluice_providers::pricing::Tier {
            above_prompt_tokens: 1000,
            input_per_token: 2e-6,
            output_per_token: Some(4e-6),
            ..Default::default()
        };
        let price = Price { input_per_token: 1e-6, output_per_token: 2e-6, above: Some(tier), ..Default::default() };
        let s = Served::new("m", "g", "id", "gemini", "", Some(price));
        let e = estimate(1000, Some(10), [&s].into_iter());
        assert!((e - (1000.0 * 1e-6 + 10.0 * 2e-6)).abs() < 1e-12, "{e}");
        let e = estimate(1001, Some(10), [&s].into_iter());
        assert!((e - (1001.0 * 2e-6 + 10.0 * 4e-6)).abs() < 1e-12, "{e}");
    }

    #[test]
    fn typical_answers_rise_fast_and_fall_slowly() {
        let a = AnswerLength::default();
        a.observe(100);
        a.observe(300);
        assert_eq!(a.tokens(), 200);
        for _ in 0..5 {
            a.observe(10);
        }
        assert!(a.tokens() > 100, "{}", a.tokens());
        for _ in 0..200 {
            a.observe(10);
        }
        assert!(a.tokens() <= 11, "{}", a.tokens());
    }

    #[test]
    fn a_reservation_counts_until_it_is_released_or_dropped() {
        let live = Arc::new(Live::default());
        let mut a = Reservation::new(0.25);
        assert_eq!(a.hold(&live), 0.0);
        let mut b = Reservation::new(0.5);
        assert_eq!(b.hold(&live), 0.25, "the second sees the first");
        a.release();
        a.release();
        assert_eq!(usd(live.ledger.reserved()), 0.5, "released once");
        drop(a);
        drop(b);
        assert_eq!(live.ledger.reserved(), 0, "a dropped reservation leaks nothing");
    }
}
