//! What a logging callback adds to settling a call on the request path, in allocations: the
//! record is built from strings the call already holds and handed over with one `try_send`. A
//! counting global allocator (its own test binary) counts this thread's allocations while a call
//! is settled, with and without a callback running; the difference is the record's cost.

use sluice_access::charge::{Charge, LogIds, Served};
use sluice_access::{Access, AccessSettings, Identity};
use sluice_providers::pricing::TokenUsage;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: sluice_alloc_count::Counting = sluice_alloc_count::Counting;

fn settings() -> AccessSettings {
    AccessSettings {
        batch_write_interval: Duration::from_secs(10),
        reload_interval: Duration::from_secs(60),
        disable_spend_logs: true,
        max_end_user_budget: None,
        max_budget: None,
        budget_duration: None,
        max_parallel_requests: None,
    }
}

/// A sink that takes batches and does nothing: only the request path's side is measured.
struct Discard;

impl sluice_export::Sink for Discard {
    async fn send(&self, _: &[Arc<sluice_export::LogRecord>]) -> Result<(), String> {
        Ok(())
    }
}

/// Allocations of settling `calls` calls on `access` (after one to warm up), on average.
async fn per_settle(access: &Arc<Access>, calls: u64) -> f64 {
    let served = Arc::new(Served::new("gpt-4o", "gpt-4o", "m1", "openai", "http://up", None));
    let mut total = 0;
    for i in 0..=calls {
        let admission = access.admit_shared(&Identity::Master, "gpt-4o", Some("end-user"), 0.0).await.unwrap();
        let ids = LogIds { request_id: format!("r{i}"), ..Default::default() };
        let charge = Charge::new(access.clone(), admission, "gpt-4o", ids, "acompletion", Some("end-user"), None);
        charge.serving(&served, None);
        let n = sluice_alloc_count::allocations_in(|| {
            charge.settle(TokenUsage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() });
        });
        if i > 0 {
            total += n;
        }
    }
    total as f64 / calls as f64
}

/// A logging callback adds a handful of small allocations per call (the record's own strings —
/// ids, end user, key alias and team when there are some —, its shared box, the queue's block
/// every 32 records), not work in proportion to anything.
#[tokio::test(flavor = "current_thread")]
async fn a_callback_adds_a_few_allocations_per_call() {
    let plain = Access::new(Some("sk-master"), settings(), None);
    let without = per_settle(&plain, 200).await;

    let logged = Access::new(Some("sk-master"), settings(), None);
    let mut callbacks = sluice_export::Callbacks::default();
    callbacks.add(
        "test",
        sluice_export::Events { success: true, failure: true },
        sluice_export::queue::spawn("test", Discard, sluice_export::Batching::default(), None),
    );
    let _ = logged.logging.set(Arc::new(callbacks));
    let with = per_settle(&logged, 200).await;

    let added = with - without;
    println!("allocations per settle: {without:.2} without a callback, {with:.2} with one (+{added:.2})");
    assert!(added > 0.0, "the counting works: a record is built");
    assert!(added <= 6.0, "a record costs {added:.2} allocations");
}

/// Allocations of making and settling `calls` calls on `access` (after one to warm up), on
/// average: alerting's side is in both (the request tracked as in flight, the slow check).
async fn per_call(access: &Arc<Access>, calls: u64) -> f64 {
    let served = Arc::new(Served::new("gpt-4o", "gpt-4o", "m1", "openai", "http://up", None));
    let mut total = 0;
    for i in 0..=calls {
        let admission = access.admit_shared(&Identity::Master, "gpt-4o", Some("end-user"), 0.0).await.unwrap();
        let ids = LogIds { request_id: format!("r{i}"), ..Default::default() };
        let n = sluice_alloc_count::allocations_in(|| {
            let charge = Charge::new(access.clone(), admission, "gpt-4o", ids, "acompletion", Some("end-user"), None);
            charge.serving(&served, None);
            charge.settle(TokenUsage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() });
        });
        if i > 0 {
            total += n;
        }
    }
    total as f64 / calls as f64
}

/// Slack alerting on, a call that is neither slow nor failed costs its entry among the requests
/// in flight (the model's name), nothing more; off, alerting costs nothing.
#[tokio::test(flavor = "current_thread")]
async fn alerting_adds_an_allocation_or_two_per_call() {
    use sluice_export::alerting::{self, AlertSink, AlertType, AlertTypes, Delivery};
    struct Ignore;
    impl AlertSink for Ignore {
        async fn post(&self, _: AlertType, _: &str) -> Delivery {
            Delivery::Sent
        }
    }
    let plain = Access::new(Some("sk-master"), settings(), None);
    let without = per_call(&plain, 200).await;

    let alerting = Access::new(Some("sk-master"), settings(), None);
    let setup = alerting::Setup {
        types: AlertTypes::all(),
        threshold: Duration::from_secs(300),
        pacing: alerting::Pacing::default(),
        metrics: None,
        proxy_base_url: None,
        outage: Default::default(),
    };
    let (alerts, _drain) = alerting::spawn(Ignore, setup);
    let _ = alerting.alerts.set(alerts);
    let with = per_call(&alerting, 200).await;

    let added = with - without;
    println!("allocations per call: {without:.2} without alerting, {with:.2} with it (+{added:.2})");
    assert!(added > 0.0, "the counting works: the call is tracked in flight");
    assert!(added <= 3.0, "alerting costs {added:.2} allocations a call");
}
