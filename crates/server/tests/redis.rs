//! The app started with Redis named in its config (the real server on 127.0.0.1:6379, each test
//! under a key prefix of its own): two apps in one process stand for two replicas. Cooldowns
//! cross between them, readiness and `/metrics` report Redis, and an absent Redis does not stop
//! the start.

mod common;

use common::get;
use serde_json::Value;
use sluice_router::{Failure, FailureEffect};
use sluice_server::config::{Config, Env};
use sluice_server::App;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(redis: &str, name: &str, replica: &str) -> Config {
    let pid = std::process::id();
    let db = std::env::temp_dir().join(format!("sluice-test-redis-{name}-{replica}-{pid}.db"));
    let _ = std::fs::remove_file(&db);
    let text = format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/a, mock_response: "hi"}}
  - model_name: g
    litellm_params: {{model: openai/b, mock_response: "hi"}}
litellm_settings:
  callbacks: ["prometheus"]
router_settings:
  {redis}
sluice_settings:
  database_path: {db}
  redis_key_prefix: "sluice-test:{name}:{pid}:"
"#,
        db = db.display()
    );
    Config::from_yaml_str(&text, Env::fixed([])).expect("config")
}

async fn metrics(app: &Arc<App>) -> String {
    let (status, body) = get(app, "/metrics", "").await;
    assert!(status.is_success(), "{status}");
    body.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn two_started_apps_share_cooldowns_and_report_redis() {
    let redis = "redis_host: 127.0.0.1\n  redis_port: 6379";
    let a = App::start(&config(redis, "app", "a"), &Env::fixed([])).await.unwrap();
    let b = App::start(&config(redis, "app", "b"), &Env::fixed([])).await.unwrap();
    assert!(a.remote.is_some() && b.remote.is_some());

    // Both heartbeats counted: readiness and the gauges say two replicas.
    let start = Instant::now();
    loop {
        let (_, ready) = get(&a, "/health/readiness", "").await;
        if ready["redis_replicas"] == 2 {
            assert_eq!(ready["status"], "healthy", "{ready}");
            assert_eq!(ready["cache"], "redis", "{ready}");
            assert_eq!(ready["redis"], "connected", "{ready}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(4), "{ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = metrics(&a).await;
    for line in ["sluice_redis_up 1\n", "sluice_redis_replicas 2\n", "sluice_redis_failed_calls_total 0\n"] {
        assert!(text.contains(line), "{line}");
    }

    // A 429 cools a deployment on A; B skips it within a second, for the same time.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (router_a, router_b) = (a.router.load_full(), b.router.load_full());
    let group = router_a.group("g").unwrap();
    let attempt = router_a.select(group, &Default::default()).await.unwrap();
    let id = attempt.deployment.id.clone();
    let effect = router_a.record_failure(group, &attempt, &Failure::status(429, None));
    assert_eq!(effect, FailureEffect::CooledDown(Duration::from_secs(5)), "LiteLLM's default cooldown_time");
    let on_b = router_b.group("g").unwrap().deployments.iter().find(|d| d.id == id).unwrap().clone();
    let heard = Instant::now();
    while !on_b.health.cooling(router_b.now_ms()) {
        assert!(heard.elapsed() < Duration::from_secs(1), "B never heard of the cooldown");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = on_b.health.cooldown_left(router_b.now_ms());
    assert!((4_000..=5_000).contains(&left), "{left}");
    let group_b = router_b.group("g").unwrap();
    for _ in 0..20 {
        assert_ne!(router_b.select(group_b, &Default::default()).await.unwrap().deployment.id, id);
    }
}

#[tokio::test]
async fn an_absent_redis_does_not_stop_the_start_and_is_reported() {
    let started = Instant::now();
    let app = App::start(&config("redis_url: redis://127.0.0.1:1", "absent", "a"), &Env::fixed([])).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let (status, ready) = get(&app, "/health/readiness", "").await;
    assert!(status.is_success(), "{status}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["cache"], "redis", "{ready}");
    assert_eq!(ready["redis"], "Not connected", "{ready}");
    assert_eq!(ready["redis_replicas"], Value::from(1), "{ready}");
    assert!(metrics(&app).await.contains("sluice_redis_up 0\n"));
}
