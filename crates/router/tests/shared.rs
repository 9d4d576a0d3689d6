//! Deployment quotas shared by several routers (replicas) through the real Redis on
//! 127.0.0.1:6379.

use sluice_router::{Ctx, Deployment, Router, Settings};
use sluice_state::remote::{Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use sluice_state::WindowSharing;
use std::sync::Arc;

/// One replica: a router with deployment `d` of group "g", its windows (and caps) shared
/// through the Redis at `url` under the test's prefix.
async fn replica_with(url: &str, test: &str, d: Deployment<()>) -> (Router<()>, Arc<WindowSharing>) {
    let remote = Remote::connect(&RemoteConfig {
        url: url.into(),
        prefix: format!("sluice-test:{test}:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    })
    .await
    .unwrap();
    let router = Router::new(vec![d], Settings { seed: Some(7), ..Settings::default() });
    let sharing = WindowSharing::new(remote);
    router.share_windows(&sharing);
    (router, sharing)
}

async fn replica(test: &str) -> (Router<()>, Arc<WindowSharing>) {
    let mut d = Deployment::new("dep-a", "g", ());
    d.rpm = Some(20.0);
    replica_with("redis://127.0.0.1:6379", test, d).await
}

#[tokio::test]
async fn three_replicas_send_a_deployment_exactly_its_rpm() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica("router-rpm").await);
    }
    for (_, s) in replicas.iter().chain(replicas.iter()) {
        s.remote().heartbeat().await;
    }
    let mut sent = [0; 3];
    for i in 0..60 {
        let (router, _) = &replicas[i % 3];
        let group = router.group("g").unwrap();
        if router.select(group, &Ctx::default()).await.is_ok() {
            sent[i % 3] += 1;
        }
    }
    assert_eq!(sent.iter().sum::<u32>(), 20, "{sent:?}");
    assert!(sent.iter().all(|&n| n > 0), "every replica sent some: {sent:?}");
}

async fn capped_replica(url: &str, test: &str) -> (Router<()>, Arc<WindowSharing>) {
    let mut d = Deployment::new("dep-capped", "g", ());
    d.max_parallel_requests = Some(3);
    replica_with(url, test, d).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_keep_a_deployment_under_its_max_parallel_requests() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(capped_replica("redis://127.0.0.1:6379", "router-parallel").await);
    }
    for (_, s) in replicas.iter().chain(replicas.iter()) {
        s.remote().heartbeat().await;
    }
    let ctx = Ctx::default();
    let select = |i: usize| {
        let router = &replicas[i].0;
        router.select(router.group("g").unwrap(), &ctx)
    };
    // Three in flight, on two of the replicas.
    let mut held = vec![select(0).await.unwrap(), select(0).await.unwrap(), select(1).await.unwrap()];

    // The third replica, with nothing in flight of its own, waits for a place.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), select(2)).await.is_err(),
        "a fourth call went out while three were in flight elsewhere"
    );

    // One ends: the waiting call goes out.
    let ended = held.pop().unwrap();
    let release = async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(ended);
    };
    let started = std::time::Instant::now();
    let (got, ()) = tokio::join!(tokio::time::timeout(std::time::Duration::from_secs(2), select(2)), release);
    let waited = started.elapsed();
    assert!(got.is_ok(), "the call still waited after a place was freed");
    assert!(waited < std::time::Duration::from_millis(400), "waited {waited:?} for a place freed after 100 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_away_each_replica_keeps_to_its_share_of_the_cap() {
    // A Redis of this test's own, stopped once three replicas have counted each other.
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/services.sh)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let url = format!("redis://127.0.0.1:{port}");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(capped_replica(&url, "router-parallel-away").await);
    }
    for (_, s) in replicas.iter().chain(replicas.iter()) {
        s.remote().heartbeat().await;
    }
    let _ = redis.kill();
    let _ = redis.wait();

    // Three replicas known: a cap of 3 is one place each, taken at once, without waiting on Redis.
    let (router, _) = &replicas[0];
    let group = router.group("g").unwrap();
    let started = std::time::Instant::now();
    let first = router.select(group, &Ctx::default()).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), router.select(group, &Ctx::default()))
            .await
            .is_err(),
        "a second call went out on a replica whose share is one"
    );
    drop(first);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), router.select(group, &Ctx::default()))
            .await
            .is_ok(),
        "the place given back was not taken"
    );
}
