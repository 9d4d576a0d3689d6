//! Steady-state recording allocates nothing: once a label set has been seen on a thread, every
//! later record of it is atomics and a thread-local lookup. A counting global allocator (its own
//! test binary, so no other test's allocator is replaced) counts allocations made by this thread
//! while recording.

use std::time::Duration;

use sluice_metrics::{CallerLabels, DeploymentLabels, Metrics, Pulse, RequestRecord, Usage};

#[global_allocator]
static GLOBAL: sluice_alloc_count::Counting = sluice_alloc_count::Counting;

#[test]
fn steady_state_recording_does_not_allocate() {
    let m = Metrics::new();
    let d = m.deployment(&DeploymentLabels {
        model_group: "fake-openai-endpoint".into(),
        litellm_model_name: "openai/fake".into(),
        model_id: "m1".into(),
        api_base: "http://up".into(),
        api_provider: "openai".into(),
        tpm_limit: Some(1000.0),
        rpm_limit: None,
    });
    let usage = Usage { prompt_tokens: 1200, completion_tokens: 30 };
    let ok = RequestRecord {
        requested_model: "fake-openai-endpoint",
        route: "/chat/completions",
        status: 200,
        exception_class: None,
        total: Duration::from_micros(100_250),
        upstream: Duration::from_millis(100),
        queue: Some(Duration::from_micros(180)),
        deployment: Some(&d),
        end_user: "my-new-end-user-1",
        user_agent: "python-requests/2.32",
        caller: None,
        spend: 0.0,
    };
    let failed = RequestRecord { requested_model: "alias", status: 429, exception_class: Some("RateLimitError"), ..ok };
    let key = m.caller(&CallerLabels {
        hashed_api_key: "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b".into(),
        api_key_alias: "prod-key".into(),
        team: "team-1".into(),
        team_alias: "Team One".into(),
        user: "user-1".into(),
        user_email: "u@example.com".into(),
    });
    let caller = Some(&key);
    // A logging callback's counters, resolved once when the callback is built.
    let callback = m.callback("generic_api");
    let keyed = RequestRecord { caller, spend: 0.0012, ..ok };
    let pulse = Pulse::new();
    let token = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b";
    let record = || {
        // Own group: the pre-resolved fast path.
        d.attempt_started("fake-openai-endpoint", None);
        d.attempt_succeeded(
            "fake-openai-endpoint",
            None,
            Duration::from_millis(100),
            Some(Duration::from_millis(12)),
            Some(usage),
        );
        d.remaining(None, Some(9_999.0), Some(99_000.0));
        m.request_finished(&ok);
        // Another requested model and a failure: the thread-local cache path.
        d.attempt_started("alias", None);
        d.attempt_failed("alias", None, 429, "RateLimitError", Duration::from_millis(3));
        d.attempt_started("alias", None);
        d.attempt_succeeded("alias", None, Duration::from_millis(90), None, Some(usage));
        d.healthy();
        m.request_finished(&failed);
        m.fallback("alias", "fake-openai-endpoint", None, true, 429, "RateLimitError");
        // No deployment picked (e.g. unknown model).
        m.request_finished(&RequestRecord { deployment: None, status: 400, exception_class: None, ..ok });
        // A virtual key: every record with the caller, on its own group and another model.
        for model in ["fake-openai-endpoint", "alias"] {
            d.attempt_started(model, caller);
            d.attempt_failed(model, caller, 429, "RateLimitError", Duration::from_millis(3));
            d.attempt_started(model, caller);
            d.attempt_succeeded(model, caller, Duration::from_millis(90), Some(Duration::from_millis(9)), Some(usage));
            d.stream_usage(model, caller, usage);
        }
        d.remaining(caller, Some(9_999.0), Some(99_000.0));
        d.key_remaining(&key, Some(99.0), Some(9_000.0));
        m.request_finished(&keyed);
        m.request_finished(&RequestRecord { status: 429, spend: 0.0, ..keyed });
        m.fallback("alias", "fake-openai-endpoint", caller, false, 429, "RateLimitError");
        m.key_budget(&key, Some(10.0), Some(7.5), Some(12.0));
        m.key_budget(&key, None, None, None);
        m.team_budget("team-1", "Team One", Some(100.0), Some(60.0), Some(24.0));
        m.user_budget("user-1", None, None, None);
        callback.failed();
        callback.dropped(1);
        // The answer cache's lookups, a miss and a hit, with and without a key.
        m.cache_lookup("fake-openai-endpoint", "", "", None, false, 0);
        m.cache_lookup("fake-openai-endpoint", "", "my-end-user", caller, true, 30);
        // The admin UI's pulse: a request with and without a key, a failure, and its bill.
        pulse.request(200, Duration::from_millis(120), "fake-openai-endpoint", Some(token));
        pulse.request(429, Duration::from_millis(3), "alias", None);
        pulse.request(200, Duration::from_secs(400), "alias", Some(token));
        pulse.spend(0.0012, "fake-openai-endpoint", Some(token));
        pulse.spend(0.0, "alias", None);
    };
    // The first round resolves every series and fills this thread's caches.
    record();
    let n = sluice_alloc_count::allocations_in(|| {
        for _ in 0..1000 {
            record();
        }
    });
    assert_eq!(n, 0, "allocations in 1000 steady-state rounds");

    // The counting itself works: a first-seen label set does allocate.
    let first =
        sluice_alloc_count::allocations_in(|| m.request_finished(&RequestRecord { end_user: "someone-new", ..ok }));
    assert!(first > 0);
}
