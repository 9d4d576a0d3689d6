//! The Redis connection against the real server on 127.0.0.1:6379 (`scripts/services.sh` starts
//! it), and against an address where nothing listens.

use sluice_state::remote::{Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use std::time::{Duration, Instant};

fn config(url: &str, prefix: &str) -> RemoteConfig {
    RemoteConfig {
        url: url.into(),
        prefix: format!("sluice-test:{prefix}:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    }
}

#[tokio::test]
async fn replicas_count_each_other_through_redis() {
    let cfg = config("redis://127.0.0.1:6379", "replicas");
    let a = Remote::connect(&cfg).await.unwrap();
    let b = Remote::connect(&cfg).await.unwrap();
    assert!(a.healthy() && b.healthy());
    a.heartbeat().await;
    b.heartbeat().await;
    a.heartbeat().await;
    assert_eq!(a.replicas(), 2);
    assert_eq!(a.share(30), 15);
    assert_eq!(a.share(1), 1, "a small limit still admits on each replica");
    assert_eq!(a.share(0), 0);
    let pong: Option<String> =
        a.call(|mut c| async move { sluice_state::remote::redis::cmd("PING").query_async(&mut c).await }).await;
    assert_eq!(pong.as_deref(), Some("PONG"));
    assert!(a.key("window", "k1").starts_with(&cfg.prefix));
}

/// Redis away from the start: the gateway still starts, calls come back `None` at once (the
/// breaker is open, nothing waits out a timeout), and the share falls back to one replica's.
#[tokio::test]
async fn an_absent_redis_fails_fast_and_is_reported() {
    let r = Remote::connect(&config("redis://127.0.0.1:1", "absent")).await.unwrap();
    assert!(!r.healthy());
    let started = Instant::now();
    for _ in 0..1_000 {
        let v: Option<String> =
            r.call(|mut c| async move { sluice_state::remote::redis::cmd("PING").query_async(&mut c).await }).await;
        assert!(v.is_none());
    }
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(r.share(30), 30);
}

#[tokio::test]
async fn a_url_that_cannot_be_parsed_is_an_error_without_the_password() {
    let e = Remote::connect(&config("http://user:s3cret@host:1", "bad")).await.unwrap_err();
    assert!(!e.contains("s3cret"), "{e}");
    assert!(e.contains("redis://"), "{e}");
}

#[test]
fn a_config_prints_without_its_password() {
    let cfg = config("redis://user:s3cret@redis.internal:6379/2", "debug");
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("s3cret") && !shown.contains("user"), "{shown}");
    let plain = format!("{:?}", config("redis://redis.internal:6379", "debug"));
    assert!(plain.contains("redis://redis.internal:6379"), "{plain}");
}
