//! Budgets and in-flight caps shared with the other replicas through Redis, once the app calls
//! [`Access::share_budgets`]. Spenders bind their shared counters on first use (so entries
//! loaded or created later bind as they come); the counters themselves are `sluice-state`'s
//! ([`SharedSpend`], [`SharedCap`]).
//!
//! Admission stays synchronous and local ([`Access::admit_estimated`]) in the common case: it
//! reads each budget's shared total as last synced. What it cannot decide locally — a budget
//! near its end, a shared in-flight cap — it lists in the [`Admission`], and
//! [`Access::admit_shared`] asks Redis about those before the request goes on.

use super::admit::Admission;
use super::registry::{KeyEntry, Live};
use super::Access;
use sluice_state::remote::cap::{Entered, SharedCap};
use sluice_state::remote::spend::{SharedSpend, SpendBook, Verdict, SYNC_EVERY};
use sluice_state::remote::Remote;
use sluice_state::{Full, InFlightCount};
use sluice_wire::ApiError;
use std::sync::Arc;

/// A budget admission found near its end: checked (and the estimate held) in Redis.
pub struct Confirm {
    pub spend: Arc<SharedSpend>,
    /// The spender here: its requests in flight on this replica count if Redis does not answer.
    pub live: Arc<Live>,
    pub max: f64,
    /// Refused only past `max` (the proxy budget), not at it.
    pub past: bool,
    pub message: Box<dyn Fn(f64, f64) -> String + Send + Sync>,
}

/// A shared in-flight cap to enter in Redis (the local slot is already taken).
pub struct CapCheck {
    pub cap: Arc<SharedCap>,
    pub limit: u64,
    /// This replica's own count, checked against its share while Redis is away.
    pub local: Arc<sluice_state::InFlightCounter>,
    pub descriptor: &'static str,
    pub value: String,
}

impl Access {
    /// Shares every budget's spend and every `max_parallel_requests` cap with the other replicas
    /// through `remote` from now on; starts the background sync (call within the runtime, once).
    pub fn share_budgets(self: &Arc<Self>, remote: Arc<Remote>) {
        let book = SpendBook::new(remote);
        if self.book.set(book).is_err() {
            return;
        }
        sluice_state::remote::every(SYNC_EVERY, self, |access| async move { access.sync_shared().await });
    }

    /// One round of the background sync (tests call it to step the clock by hand): sends the
    /// charges, reads the totals; when Redis lost totals (a flush, a restart) or was away, reloads
    /// the database's view and raises every total to it (`max(Redis, database + pending)`), so
    /// no spend written is lost. After any reload the totals are reconciled the same way.
    pub async fn sync_shared(&self) {
        let Some(book) = self.book.get() else { return };
        let raise = self.reconcile.swap(false, std::sync::atomic::Ordering::AcqRel);
        if book.sync(raise).await {
            if self.load().await.is_ok() {
                self.reconcile.store(false, std::sync::atomic::Ordering::Release);
            }
            book.sync(true).await;
        }
    }

    /// The shared connection, once [`share_budgets`](Self::share_budgets) was called.
    pub fn remote(&self) -> Option<&Arc<Remote>> {
        self.book.get().map(|b| b.remote())
    }

    /// `live`'s shared spend total (`kind:id` in Redis), bound now if it is not yet.
    pub fn shared_spend(&self, live: &Arc<Live>, kind: &str, id: &str) -> Option<Arc<SharedSpend>> {
        let book = self.book.get()?;
        let spend = live.shared.spend.get_or_init(|| {
            let weak = Arc::downgrade(live);
            book.bind(
                kind,
                id,
                Box::new(move || weak.upgrade().map(|l| (l.ledger.spend(), l.ledger.pending())).unwrap_or_default()),
            )
        });
        Some(spend.clone())
    }

    /// A key's shared total for one model (`model_max_budget`).
    pub fn shared_model_spend(&self, key: &Arc<KeyEntry>, model: &str) -> Option<Arc<SharedSpend>> {
        let book = self.book.get()?;
        let mut models = key.live.shared.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let spend = models.entry(model.to_string()).or_insert_with(|| {
            let weak = Arc::downgrade(&key.live);
            let m = model.to_string();
            book.bind(
                "key_model",
                &format!("{}:{model}", key.record.token),
                Box::new(move || {
                    weak.upgrade().map(|l| (l.ledger.model_spend(&m), l.ledger.model_pending(&m))).unwrap_or_default()
                }),
            )
        });
        Some(spend.clone())
    }

    /// `live`'s shared in-flight count.
    pub fn shared_cap(&self, live: &Live, kind: &str, id: &str) -> Option<Arc<SharedCap>> {
        let remote = self.remote()?;
        Some(live.shared.cap.get_or_init(|| SharedCap::new(remote.clone(), kind, id)).clone())
    }

    /// A key's spend for `/key/info`: the shared total as Redis has it now when budgets are
    /// shared (every replica shows the same figure), else this replica's ledger.
    /// Keys without a budget are not shared: their spend is this replica's.
    pub async fn key_spend_now(&self, key: &Arc<KeyEntry>) -> f64 {
        let shared = key.record.max_budget.and_then(|_| self.shared_spend(&key.live, "key", &key.record.token));
        let Some(spend) = shared else {
            return key.live.ledger.spend();
        };
        match spend.read_now().await {
            Some(total) => total,
            None => key.live.ledger.spend().max(spend.view()),
        }
    }

    /// Brings a user's or team's shared spend up to what Redis has now (its replica's charges
    /// sent first), for `/user/info` and `/team/info`; nothing to do for a spender whose budget
    /// is not shared.
    pub async fn refresh_spend(&self, live: &Arc<Live>) {
        if let Some(spend) = live.shared.spend.get() {
            spend.read_now().await;
        }
    }

    /// [`admit_estimated`](Self::admit_estimated), then the checks only Redis can answer: the
    /// budgets near their end and the shared in-flight caps. Far from every budget and with no
    /// cap set, nothing here waits. Redis away: each check falls back to this replica's share.
    pub async fn admit_shared(
        &self,
        identity: &super::Identity,
        model: &str,
        end_user: Option<&str>,
        estimate: f64,
    ) -> Result<Admission, ApiError> {
        let mut adm = self.admit_estimated(identity, model, end_user, estimate).await?;
        let nanos = adm.reservation.nanos();
        for c in std::mem::take(&mut adm.confirm) {
            let verdict = c.spend.hold(c.max, c.past, nanos).await;
            let over = |x: f64| if c.past { x > c.max } else { x >= c.max };
            match verdict {
                Some((Verdict::Held { .. }, held)) => {
                    if let Some(held) = held {
                        adm.reservation.keep(held);
                    }
                }
                Some((Verdict::Spent { total }, _)) => {
                    return Err(super::admit::budget_exceeded((c.message)(total, c.max)))
                }
                Some((Verdict::InFlight { total, others }, _)) => {
                    return Err(super::admit::in_flight_over((c.message)(total, c.max), others))
                }
                // Redis went away (or did not answer in time) since admission looked: this
                // replica's share, as admission would have used then, with the requests in flight
                // here counted, as many may be in this same moment.
                None => {
                    let spend = c.spend.view();
                    let share = c.spend.share(c.max);
                    if over(spend) || spend >= share {
                        return Err(super::admit::budget_exceeded((c.message)(spend, c.max)));
                    }
                    let own = if adm.reservation.holds(&c.live) { nanos } else { 0 };
                    let others = super::reserve::usd(c.live.ledger.reserved().saturating_sub(own));
                    if spend + others >= share {
                        return Err(super::admit::in_flight_over((c.message)(spend, c.max), others));
                    }
                }
            }
        }
        for c in std::mem::take(&mut adm.caps) {
            match c.cap.enter(c.limit).await {
                Some(Entered::Yes(slot)) => adm.cap_slots.push(slot),
                Some(Entered::Full { .. }) => return Err(cap_full(&c)),
                // Redis away: this replica's own count (its slot included) against its share.
                None if c.local.current() > c.cap.remote().share(c.limit) => return Err(cap_full(&c)),
                None => {}
            }
        }
        Ok(adm)
    }
}

fn cap_full(c: &CapCheck) -> ApiError {
    if c.descriptor == "global" {
        return ApiError::new(
            429,
            format!("Max parallel request limit reached Hit Global Limit: Limit={}, current: {}", c.limit, c.limit),
        )
        .header("retry-after", "1".to_string())
        .header("rate_limit_type", "max_parallel_requests".to_string());
    }
    super::admit::rate_limited(c.descriptor, &c.value, "max_parallel_requests", c.limit, Full { retry_after: 1 })
}

/// What a budget's check uses as spend and limit: the shared view and the budget while Redis
/// answers, the shared view and this replica's share of what was left while it is away, the
/// ledger alone when budgets are not shared.
pub fn budget_view(live: &Live, shared: Option<&Arc<SharedSpend>>, max: f64) -> (f64, f64) {
    match shared {
        Some(s) if s.remote().healthy() => (s.view().max(0.0), max),
        Some(s) => (s.view().max(live.ledger.spend()), s.share(max)),
        None => (live.ledger.spend(), max),
    }
}
