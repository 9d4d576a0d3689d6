//! What one request's recording costs, for the figure in the crate docs. Ignored by default and
//! asserts nothing about time (timings belong in `bench/`, not in pass/fail); run with
//! `cargo test -p sluice-metrics --release --test cost -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_metrics::{DeploymentLabels, Metrics, RequestRecord, Usage};

const ROUNDS: u32 = 1_000_000;

#[test]
#[ignore = "measurement, not a check; run in release with --nocapture"]
fn cost_per_record() {
    let m = Metrics::new();
    let d = m.deployment(&DeploymentLabels {
        model_group: "fake-openai-endpoint".into(),
        litellm_model_name: "openai/fake".into(),
        model_id: "m1".into(),
        api_base: "http://up".into(),
        api_provider: "openai".into(),
        tpm_limit: None,
        rpm_limit: None,
    });
    let usage = Some(Usage { prompt_tokens: 1200, completion_tokens: 30 });
    let rec = RequestRecord {
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
    let full = || {
        d.attempt_started(black_box("fake-openai-endpoint"), None);
        d.attempt_succeeded(black_box("fake-openai-endpoint"), None, Duration::from_millis(100), None, usage);
        m.request_finished(black_box(&rec));
    };
    full();
    let start = Instant::now();
    for _ in 0..ROUNDS {
        full();
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("attempt_started + attempt_succeeded + request_finished: {per:.0} ns per request");

    let start = Instant::now();
    for _ in 0..ROUNDS {
        m.request_finished(black_box(&rec));
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("request_finished alone (thread-local lookup): {per:.0} ns");

    let start = Instant::now();
    for _ in 0..ROUNDS {
        d.attempt_started(black_box("fake-openai-endpoint"), None);
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("attempt_started alone (pre-resolved): {per:.0} ns");
}
