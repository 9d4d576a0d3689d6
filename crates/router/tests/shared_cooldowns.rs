//! Cooldowns shared between replicas through the real Redis on 127.0.0.1:6379: two routers in
//! one process stand for two replicas, each with its own `Remote` (and so its own replica id,
//! connection and subscription), under a key prefix of their own.

use sluice_router::{Deployment, Failure, FailureEffect, Router, Settings};
use sluice_state::remote::{cooldowns, Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(url: &str, name: &str) -> RemoteConfig {
    RemoteConfig {
        url: url.into(),
        prefix: format!("sluice-test:{name}:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    }
}

const COOLDOWN: Duration = Duration::from_millis(2_000);

fn router() -> Router<()> {
    let ds = ["d1", "d2"].iter().map(|id| Deployment::new(*id, "g", ())).collect();
    Router::new(ds, Settings { seed: Some(7), cooldown_time: COOLDOWN, ..Settings::default() })
}

/// Cools `id` on `r` the way a request does: an attempt on it answered 429.
async fn fail_with_429(r: &Router<()>, id: &str) -> FailureEffect {
    let group = r.group("g").unwrap();
    for _ in 0..1_000 {
        let attempt = r.select(group, &Default::default()).await.unwrap();
        if attempt.deployment.id == id {
            return r.record_failure(group, &attempt, &Failure::status(429, None));
        }
    }
    panic!("{id} never selected");
}

fn left(r: &Router<()>, id: &str) -> u64 {
    let d = r.group("g").unwrap().deployments.iter().find(|d| d.id == id).unwrap().clone();
    d.health.cooldown_left(r.now_ms())
}

/// Waits (up to `limit`) until `id` is cooling on `r`; how long that took.
async fn until_cooling(r: &Router<()>, id: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while left(r, id) == 0 {
        assert!(start.elapsed() < limit, "{id} not cooling after {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_deployment_cooled_by_one_replica_is_skipped_by_the_others_for_the_same_time() {
    let cfg = config("redis://127.0.0.1:6379", "cooldowns-shared");
    let (ra, rb) = (Remote::connect(&cfg).await.unwrap(), Remote::connect(&cfg).await.unwrap());
    let (a, b) = (router(), router());
    a.share_cooldowns(ra.clone());
    b.share_cooldowns(rb.clone());
    // Both subscriptions begin.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(left(&b, "d1"), 0);

    let cooled_at = Instant::now();
    assert_eq!(fail_with_429(&a, "d1").await, FailureEffect::CooledDown(COOLDOWN));
    let heard_after = until_cooling(&b, "d1", Duration::from_secs(1)).await;
    let on_b = left(&b, "d1");
    let since = cooled_at.elapsed().as_millis() as u64;
    assert!(on_b <= 2_000 && on_b + since + 20 >= 2_000, "left on B {on_b} ms, {since} ms after the cooldown began");
    assert!(heard_after < Duration::from_millis(500), "{heard_after:?}");
    assert_eq!(left(&b, "d2"), 0, "only the cooled deployment");

    // B routes around it.
    let group = b.group("g").unwrap();
    for _ in 0..50 {
        assert_eq!(b.select(group, &Default::default()).await.unwrap().deployment.id, "d2");
    }

    // Who, until when, why, in Redis.
    let notes = cooldowns::running(&rb).await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].deployment, "d1");
    assert_eq!(notes[0].reason, "429 RateLimit");
    assert_eq!(notes[0].replica, ra.replica());
    assert!(notes[0].left_ms <= 2_000 && notes[0].left_ms > 1_000, "{notes:?}");

    // A replica that starts mid-cooldown reads it from Redis.
    let rc = Remote::connect(&cfg).await.unwrap();
    let c = router();
    c.share_cooldowns(rc);
    until_cooling(&c, "d1", Duration::from_secs(1)).await;
    assert!(left(&c, "d1") <= left(&a, "d1") + 20, "no longer than on the replica that cooled it");

    // And it ends on every replica when it ends on the first.
    tokio::time::sleep(COOLDOWN.saturating_sub(cooled_at.elapsed()) + Duration::from_millis(30)).await;
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(left(r, "d1"), 0, "{name}");
    }
    assert!(cooldowns::running(&rb).await.unwrap().is_empty(), "the key expired with the cooldown");
}

#[tokio::test]
async fn without_redis_cooling_works_locally_and_at_once() {
    let remote: Arc<Remote> = Remote::connect(&config("redis://127.0.0.1:1", "cooldowns-absent")).await.unwrap();
    let r = router();
    r.share_cooldowns(remote);
    let started = Instant::now();
    assert_eq!(fail_with_429(&r, "d2").await, FailureEffect::CooledDown(COOLDOWN));
    assert!(started.elapsed() < Duration::from_millis(50), "{:?}", started.elapsed());
    let l = left(&r, "d2");
    assert!((1_950..=2_000).contains(&l), "{l}");
    let group = r.group("g").unwrap();
    for _ in 0..20 {
        assert_eq!(r.select(group, &Default::default()).await.unwrap().deployment.id, "d1");
    }
}
