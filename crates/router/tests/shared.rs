//! Deployment quotas shared by several routers (replicas) through the real Redis on
//! 127.0.0.1:6379.

use sluice_router::{Ctx, Deployment, Router, Settings};
use sluice_state::remote::{Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use sluice_state::WindowSharing;
use std::sync::Arc;

async fn replica(test: &str) -> (Router<()>, Arc<WindowSharing>) {
    let remote = Remote::connect(&RemoteConfig {
        url: "redis://127.0.0.1:6379".into(),
        prefix: format!("sluice-test:{test}:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    })
    .await
    .unwrap();
    let mut d = Deployment::new("dep-a", "g", ());
    d.rpm = Some(20.0);
    let router = Router::new(vec![d], Settings { seed: Some(7), ..Settings::default() });
    let sharing = WindowSharing::new(remote);
    router.share_windows(&sharing);
    (router, sharing)
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
