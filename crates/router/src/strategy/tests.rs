use crate::settings::{Settings, Strategy};
use crate::{Ctx, Deployment, Router};
use std::collections::HashMap;
use std::time::Duration;

fn dep(id: &str) -> Deployment<()> {
    Deployment::new(id, "g", ())
}

fn router(ds: Vec<Deployment<()>>, strategy: Strategy) -> Router<()> {
    Router::new(ds, Settings { strategy, seed: Some(42), ..Settings::default() })
}

/// How often each deployment is chosen over `n` selections (attempts released at once).
async fn distribution(r: &Router<()>, n: usize) -> HashMap<String, usize> {
    let g = r.group("g").unwrap();
    let mut out = HashMap::new();
    for _ in 0..n {
        let a = r.select(g, &Ctx::default()).await.unwrap();
        *out.entry(a.deployment.id.clone()).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn simple_shuffle_is_uniform_without_weights() {
    let r = router(vec![dep("a"), dep("b")], Strategy::SimpleShuffle);
    let d = distribution(&r, 10_000).await;
    assert!((4_700..5_300).contains(&d["a"]), "{d:?}");
}

#[tokio::test]
async fn simple_shuffle_weighs_by_weight_then_rpm_and_the_first_decides() {
    let mut a = dep("a");
    a.weight = Some(3.0);
    let mut b = dep("b");
    b.weight = Some(1.0);
    let d = distribution(&router(vec![a, b], Strategy::SimpleShuffle), 10_000).await;
    assert!((7_200..7_800).contains(&d["a"]), "{d:?}");

    let mut a = dep("a");
    a.rpm = Some(100_000.0);
    let mut b = dep("b");
    b.rpm = Some(300_000.0);
    let d = distribution(&router(vec![a, b], Strategy::SimpleShuffle), 10_000).await;
    assert!((2_200..2_800).contains(&d["a"]), "{d:?}");

    let mut a = dep("a");
    a.weight = Some(1.0);
    let mut b = dep("b");
    b.rpm = Some(50_000.0);
    let d = distribution(&router(vec![a, b], Strategy::SimpleShuffle), 1_000).await;
    assert_eq!(d.get("b"), None, "b has no weight, and weight is the field the first deployment set");
}

#[tokio::test]
async fn least_busy_picks_the_idlest() {
    let r = router(vec![dep("a"), dep("b"), dep("c")], Strategy::LeastBusy);
    let g = r.group("g").unwrap();
    let held: Vec<_> = futures_join(&r, g, 2).await;
    let next = r.select(g, &Ctx::default()).await.unwrap();
    assert!(held.iter().all(|h| h.deployment.id != next.deployment.id), "the third goes to the idle one");
}

async fn futures_join<'a>(r: &'a Router<()>, g: &'a crate::Group<()>, n: usize) -> Vec<crate::Attempt<()>> {
    let mut v = Vec::new();
    for _ in 0..n {
        let a = r.select(g, &Ctx::default()).await.unwrap();
        v.push(a);
    }
    v
}

#[tokio::test(start_paused = true)]
async fn latency_based_prefers_the_fast_one() {
    let r = router(
        vec![dep("fast"), dep("slow")],
        Strategy::LatencyBased { ttl: Duration::from_secs(3600), buffer: 0.0, max_list: 10 },
    );
    let g = r.group("g").unwrap();
    for id in ["fast", "slow"] {
        let d = g.deployments.iter().find(|d| d.id == id).unwrap();
        let ms = if id == "fast" { 0.05 } else { 0.5 };
        d.health.push_latency(r.now_ms(), ms, 10);
    }
    let d = distribution(&r, 200).await;
    assert_eq!(d["fast"], 200, "{d:?}");
}

#[tokio::test]
async fn usage_based_prefers_least_used_and_enforces_rpm() {
    let mut a = dep("a");
    a.rpm = Some(5.0);
    let mut b = dep("b");
    b.rpm = Some(5.0);
    let r = router(vec![a, b], Strategy::UsageBasedV2);
    let d = distribution(&r, 10).await;
    assert_eq!((d["a"], d["b"]), (5, 5));
    let g = r.group("g").unwrap();
    let e = r.select(g, &Ctx::default()).await.err().expect("both over rpm");
    assert!(e.message().starts_with("No deployments available for selected model"));
}

#[tokio::test]
async fn cost_based_prefers_the_cheapest() {
    let mut a = dep("a");
    a.cost_per_token = Some(0.00002);
    let mut b = dep("b");
    b.cost_per_token = Some(0.000001);
    let c = dep("unknown-price");
    let d = distribution(&router(vec![a, b, c], Strategy::CostBased), 100).await;
    assert_eq!(d["b"], 100);
}

#[tokio::test]
async fn adaptive_p2c_steers_away_from_slow_and_failing_deployments() {
    let r = router(vec![dep("good"), dep("slow"), dep("failing")], Strategy::AdaptiveP2c);
    let g = r.group("g").unwrap();
    for d in &g.deployments {
        for _ in 0..20 {
            match d.id.as_str() {
                "good" => d.health.record_ok(0, Duration::from_millis(20)),
                "slow" => d.health.record_ok(0, Duration::from_millis(400)),
                _ => {
                    d.health.record_ok(0, Duration::from_millis(20));
                    d.health.record_failed(0);
                }
            }
        }
    }
    let d = distribution(&r, 3_000).await;
    // The best of two random picks: "good" wins every pair it is in (2 of 3 pairs).
    assert!(d["good"] > 1_800, "{d:?}");
    assert!(d.get("slow").copied().unwrap_or(0) < 200, "{d:?}");
}

#[tokio::test]
async fn pre_call_checks_apply_order_and_context_window() {
    let mut a = dep("primary");
    a.order = Some(1.0);
    a.max_input_tokens = Some(1000);
    let mut b = dep("backup");
    b.order = Some(2.0);
    b.max_input_tokens = Some(100_000);
    let r = Router::new(vec![a, b], Settings { enable_pre_call_checks: true, seed: Some(1), ..Settings::default() });
    let g = r.group("g").unwrap();
    for _ in 0..20 {
        assert_eq!(
            r.select(g, &Ctx { input_tokens: Some(10), ..Ctx::default() }).await.unwrap().deployment.id,
            "primary"
        );
    }
    assert_eq!(
        r.select(g, &Ctx { input_tokens: Some(5_000), ..Ctx::default() }).await.unwrap().deployment.id,
        "backup"
    );
}

#[tokio::test(start_paused = true)]
async fn every_strategy_keeps_deployments_within_rpm_over_a_sliding_minute() {
    let mut a = dep("a");
    a.rpm = Some(3.0);
    let mut b = dep("b");
    b.rpm = Some(3.0);
    let r = router(vec![a, b], Strategy::SimpleShuffle);
    let g = r.group("g").unwrap();
    for _ in 0..6 {
        drop(r.select(g, &Ctx::default()).await.unwrap());
    }
    let e = r.select(g, &Ctx::default()).await.err().expect("quota spent");
    assert!(e.cooldown_list.is_empty(), "shed by quota, not cooldown");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(r.select(g, &Ctx::default()).await.is_err(), "still inside the same 60 s");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(r.select(g, &Ctx::default()).await.is_ok(), "the window slid on");
}

#[tokio::test]
async fn adaptive_p2c_avoids_deployments_whose_provider_says_quota_is_spent() {
    let r = router(vec![dep("spent"), dep("fresh")], Strategy::AdaptiveP2c);
    let g = r.group("g").unwrap();
    let spent = g.deployments.iter().find(|d| d.id == "spent").unwrap();
    r.record_remaining(spent, tokio::time::Instant::now(), Some(0.0), None);
    let d = distribution(&r, 100).await;
    assert_eq!(d["fresh"], 100, "{d:?}");
}

#[tokio::test]
async fn max_parallel_requests_caps_concurrency_like_litellm() {
    let mut a = dep("a");
    a.max_parallel_requests = Some(2);
    a.rpm = Some(1_000.0);
    let r = router(vec![a], Strategy::SimpleShuffle);
    let g = r.group("g").unwrap();
    let _one = r.select(g, &Ctx::default()).await.unwrap();
    let _two = r.select(g, &Ctx::default()).await.unwrap();
    let third = tokio::time::timeout(Duration::from_millis(50), r.select(g, &Ctx::default())).await;
    assert!(third.is_err(), "the third waits for a slot, as LiteLLM's semaphore does");
}
