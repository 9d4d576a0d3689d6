//! Keys', users' and teams' rate limits shared by several `Access`es (replicas) through the real
//! Redis on 127.0.0.1:6379.

use sluice_access::{Access, AccessSettings, Identity};
use sluice_state::remote::{Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use sluice_state::WindowSharing;
use sluice_store::{KeyRecord, TeamRecord};
use std::sync::Arc;
use std::time::Duration;

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

/// `count` replicas, each knowing the same key (and its team) from "the database".
async fn replicas(test: &str, count: usize, key: &KeyRecord, team: &TeamRecord) -> Vec<(Arc<Access>, Identity)> {
    let mut out = Vec::new();
    let mut remotes = Vec::new();
    for _ in 0..count {
        let remote = Remote::connect(&RemoteConfig {
            url: "redis://127.0.0.1:6379".into(),
            prefix: format!("sluice-test:{test}:{}:", std::process::id()),
            op_timeout: DEFAULT_OP_TIMEOUT,
        })
        .await
        .unwrap();
        let access = Access::new(None, settings(), None);
        access.share_windows(WindowSharing::new(remote.clone()));
        access.registry.put_team(team.clone(), true);
        let entry = access.registry.put_key(key.clone(), true);
        remotes.push(remote);
        out.push((access, Identity::Key(entry)));
    }
    for r in remotes.iter().chain(remotes.iter()) {
        r.heartbeat().await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_rpm_limit_30_admits_exactly_30_of_90_over_four_replicas() {
    let key = KeyRecord { token: "hash-rpm30".into(), rpm_limit: Some(30), ..Default::default() };
    let team = TeamRecord { team_id: "t-none".into(), ..Default::default() };
    let replicas = Arc::new(replicas("access-rpm30", 4, &key, &team).await);
    // Concurrent requests, spread over the replicas.
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let replicas = replicas.clone();
            tokio::spawn(async move {
                let (access, id) = &replicas[i % 4];
                access.admit(id, "m", None).await.is_ok()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap() as u32;
    }
    assert_eq!(ok, 30);
}

/// A team's limit and a key's per-model limit, each over three replicas.
#[tokio::test]
async fn team_and_per_model_limits_are_shared_too() {
    let team = TeamRecord { team_id: "team-7".into(), rpm_limit: Some(12), ..Default::default() };
    let mut key = KeyRecord { token: "hash-team7".into(), team_id: Some("team-7".into()), ..Default::default() };
    key.metadata.insert("model_rpm_limit".into(), serde_json::json!({"m-small": 5}));
    let replicas = replicas("access-team", 3, &key, &team).await;
    let mut small = 0;
    for i in 0..5 {
        let (access, id) = &replicas[i % 3];
        if access.admit(id, "m-small", None).await.is_ok() {
            small += 1;
        }
    }
    assert_eq!(small, 5);
    let e = replicas[2].0.admit(&replicas[2].1, "m-small", None).await.err().unwrap();
    assert!(e.message.contains("model_per_key"), "the key's limit for m-small: {}", e.message);
    let mut other = 0;
    for i in 0..30 {
        let (access, id) = &replicas[i % 3];
        if access.admit(id, "m-big", None).await.is_ok() {
            other += 1;
        }
    }
    // The refused m-small request above counted against the team (it passed the team's limit
    // before the key's per-model one refused it, as on one replica).
    assert_eq!(other, 12 - 6, "the team's limit over both models");
}
