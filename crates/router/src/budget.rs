//! The retry budget: retries of a model group may add at most a share of its recent first
//! attempts, plus a small allowance per second (Finagle's and Envoy's retry budgets).
//!
//! `num_retries` bounds what one request may cost; it does not bound what a storm costs. When
//! every deployment of a group answers 5xx, each request becomes `1 + num_retries` upstream calls
//! at the moment the upstream can least take them. With the budget, a storm costs at most
//! `first attempts × (1 + share) + allowance × window` calls, while a healthy group, whose
//! occasional retries stay far below the share, never notices it.

use sluice_state::{RateWindow, SlidingWindow};

/// Seconds over which first attempts and retries are counted.
pub const WINDOW_SECONDS: usize = 10;

/// `sluice_settings.retry_budget_*`: how many retries a group may spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetSettings {
    /// Retries allowed per first attempt in the window (0.2: one retry per five requests).
    pub ratio: f64,
    /// Retries allowed per second whatever the traffic, so that a quiet group still retries.
    pub min_per_second: f64,
}

impl Default for RetryBudgetSettings {
    fn default() -> Self {
        RetryBudgetSettings { ratio: 0.2, min_per_second: 10.0 }
    }
}

impl RetryBudgetSettings {
    /// Retries the window holds at most when it has seen `first` first attempts.
    fn allowance(&self, first: u64) -> u64 {
        let reserve = self.min_per_second * WINDOW_SECONDS as f64;
        // Both factors are bounded when the settings are read; the float-to-int cast saturates.
        (reserve + self.ratio * first as f64).floor() as u64
    }
}

/// One group's budget: first attempts deposit, retries withdraw.
#[derive(Debug, Default)]
pub struct RetryBudget {
    first: SlidingWindow<WINDOW_SECONDS>,
    retries: SlidingWindow<WINDOW_SECONDS>,
}

impl RetryBudget {
    /// Counts a request's first attempt at the group.
    pub fn deposit(&self, second: u64) {
        self.first.add(1, second);
    }

    /// Takes one retry from the budget if it has one left; says whether it did. Racing callers
    /// may both take the last one: the overshoot is bounded by the requests in flight.
    pub fn withdraw(&self, settings: &RetryBudgetSettings, second: u64) -> bool {
        let allowed = settings.allowance(self.first.used(second));
        self.retries.try_take(1, allowed, second).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_first_attempts_plus_an_allowance() {
        let s = RetryBudgetSettings { ratio: 0.2, min_per_second: 1.0 };
        let b = RetryBudget::default();
        for _ in 0..100 {
            b.deposit(3);
        }
        // 10 from the allowance, 20 from the share of 100 first attempts.
        assert_eq!((0..100).filter(|_| b.withdraw(&s, 3)).count(), 30);
        assert!(!b.withdraw(&s, 12), "still inside the window");
        assert!(b.withdraw(&s, 13), "the window slid past second 3");
    }

    #[test]
    fn a_zero_budget_allows_no_retry() {
        let s = RetryBudgetSettings { ratio: 0.0, min_per_second: 0.0 };
        let b = RetryBudget::default();
        b.deposit(0);
        assert!(!b.withdraw(&s, 0));
    }
}
