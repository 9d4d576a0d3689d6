//! Cooldowns shared through the real Redis on 127.0.0.1:6379 when Redis is away at the moment a
//! deployment is cooled: the cooldown stays on its replica, and reaches the others once Redis is
//! back, with the time it has left.

use sluice_state::remote::{cooldowns, Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use sluice_state::{Cooldown, SharedCooldown};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::Cut;

fn config(url: &str, test: &str) -> RemoteConfig {
    RemoteConfig {
        url: url.into(),
        prefix: format!("sluice-test:{test}:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_started_while_redis_was_away_reaches_the_others_when_it_is_back() {
    let epoch = Instant::now();
    let now_ms = move || epoch.elapsed().as_millis() as u64 + 1;

    // Replica A reaches Redis through a relay the test cuts; replica B directly.
    let cut = Cut::start().await;
    let a = Remote::connect(&config(&cut.url(), "cooldown-away")).await.unwrap();
    let b = Remote::connect(&config("redis://127.0.0.1:6379", "cooldown-away")).await.unwrap();
    let on_a = SharedCooldown::default();
    on_a.bind(a.clone(), "d1");
    let on_b = Arc::new(SharedCooldown::default());
    let heard = on_b.clone();
    cooldowns::listen(&b, move |note| {
        heard.heard(now_ms(), note.left_ms);
        true
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    cut.cut();
    let cooled = Instant::now();
    on_a.cool_because(now_ms(), Duration::from_secs(4), "429 RateLimit");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(on_a.cooling(now_ms()));
    assert!(!on_b.cooling(now_ms()), "Redis is away: B cannot have heard");

    // Redis back: A's heartbeat reconnects and sends what Redis did not take.
    cut.mend();
    let started = Instant::now();
    while !on_b.cooling(now_ms()) {
        assert!(started.elapsed() < Duration::from_secs(5), "B never heard of the cooldown");
        a.heartbeat().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = on_b.left(now_ms());
    let since = cooled.elapsed().as_millis() as u64;
    assert!(left <= 4_000 - since + 50 && left + since >= 4_000 - 100, "left on B {left} ms, {since} ms after cooling");

    // Sent once: a later heartbeat has nothing more to send, and the note is in Redis.
    let notes = cooldowns::running(&b).await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].deployment, "d1");
    assert_eq!(notes[0].reason, "429 RateLimit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_that_ended_while_redis_was_away_is_not_sent() {
    let epoch = Instant::now();
    let now_ms = move || epoch.elapsed().as_millis() as u64 + 1;
    let cut = Cut::start().await;
    let a = Remote::connect(&config(&cut.url(), "cooldown-ended")).await.unwrap();
    let b = Remote::connect(&config("redis://127.0.0.1:6379", "cooldown-ended")).await.unwrap();
    let on_a = SharedCooldown::default();
    on_a.bind(a.clone(), "d1");

    cut.cut();
    on_a.cool_because(now_ms(), Duration::from_millis(300), "429 RateLimit");
    tokio::time::sleep(Duration::from_millis(600)).await;
    cut.mend();
    for _ in 0..40 {
        a.heartbeat().await;
        if a.healthy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.healthy());
    a.heartbeat().await;
    assert_eq!(cooldowns::running(&b).await.unwrap(), vec![], "an ended cooldown stays unsent");
}
