//! Rate windows shared through the real Redis on 127.0.0.1:6379: several `Remote`s on one
//! prefix stand for replicas of one gateway.

use sluice_state::remote::window::{SharedWindow, WindowSharing};
use sluice_state::remote::{Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use sluice_state::{MinuteWindow, RateWindow, Window};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::Cut;

fn config(url: &str, test: &str) -> RemoteConfig {
    RemoteConfig {
        url: url.into(),
        prefix: format!("sluice-test:{test}:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    }
}

/// `count` replicas on one Redis, each having heard the others' heartbeats.
async fn replicas(url: &str, test: &str, count: usize) -> Vec<Arc<WindowSharing>> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(WindowSharing::new(Remote::connect(&config(url, test)).await.unwrap()));
    }
    for s in out.iter().chain(out.iter()) {
        s.remote().heartbeat().await;
    }
    out
}

fn windows<W: RateWindow>(sharing: &[Arc<WindowSharing>], name: &str) -> Vec<SharedWindow<W>> {
    sharing
        .iter()
        .map(|s| {
            let w = SharedWindow::<W>::default();
            w.bind(s, name);
            w
        })
        .collect()
}

/// Now, as a second: the tests below stay within one or two.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_key_with_rpm_30_admits_exactly_30_of_90_across_four_replicas() {
    let sharing = replicas("redis://127.0.0.1:6379", "rpm30", 4).await;
    assert_eq!(sharing[0].remote().replicas(), 4);
    let w = windows::<Window>(&sharing, "key:hash-1:rpm");
    let mut ok = 0;
    for i in 0..90 {
        if w[i % 4].take(1, 30, now()).await.is_ok() {
            ok += 1;
        }
        if i % 7 == 0 {
            // Leases go stale and come back while the others go on.
            sharing[i % 4].sync(Duration::ZERO).await;
        }
    }
    assert_eq!(ok, 30);
    // Refused now, and every replica knows it without asking again.
    let before: u64 = sharing.iter().map(|s| s.round_trips()).sum();
    let t = now();
    for r in &w {
        assert!(r.take(1, 30, t).await.is_err());
    }
    let asked: u64 = sharing.iter().map(|s| s.round_trips()).sum::<u64>() - before;
    assert!(asked <= 4, "{asked} round trips for 4 refusals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_on_four_replicas_admit_exactly_the_limit() {
    let sharing = replicas("redis://127.0.0.1:6379", "rpm30-tasks", 4).await;
    let w: Arc<Vec<SharedWindow<Window>>> = Arc::new(windows(&sharing, "key:hash-2:rpm"));
    let ok = Arc::new(AtomicU64::new(0));
    let t = now();
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let (w, ok) = (w.clone(), ok.clone());
            tokio::spawn(async move {
                if w[i % 4].take(1, 30, t).await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), 30);
}

/// A deployment at 10,000 rpm: never more than 10,000 across replicas, and a few hundred round
/// trips for 12,000 requests (leases far from the limit; one request each near it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_deployment_takes_leases_not_a_round_trip_per_request() {
    let sharing = replicas("redis://127.0.0.1:6379", "rpm10k", 4).await;
    let w: Arc<Vec<SharedWindow<MinuteWindow>>> = Arc::new(windows(&sharing, "deployment:d1:rpm"));
    let t = now();
    let tasks: Vec<_> = (0..4)
        .map(|r| {
            let w = w.clone();
            tokio::spawn(async move {
                let mut ok = 0u64;
                for _ in 0..3_000 {
                    if w[r].take(1, 10_000, t).await.is_ok() {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap();
    }
    let trips: u64 = sharing.iter().map(|s| s.round_trips()).sum();
    eprintln!("{ok} of 12,000 admitted in {trips} round trips");
    // All 12,000 asked within one second: each replica holds at most its last lease unused.
    assert!(ok <= 10_000, "{ok} admitted");
    assert!(ok >= 9_000, "only {ok} admitted: leases held back too much");
    assert!(trips < 600, "{trips} round trips for 12,000 requests");
    // Given back, the unused leases are there for the others: exactly the limit in the end.
    for s in &sharing {
        s.sync(Duration::ZERO).await;
    }
    // (The next second: this one is known full on the replicas that were refused.)
    let mut more = 0;
    while w[0].take(1, 10_000, t + 1).await.is_ok() {
        more += 1;
    }
    assert_eq!(ok + more, 10_000);
}

#[tokio::test]
async fn an_unused_lease_is_given_back_for_the_others() {
    let sharing = replicas("redis://127.0.0.1:6379", "giveback", 2).await;
    let w = windows::<Window>(&sharing, "user:u1:rpm");
    let t = now();
    // A takes one request and a lease of (100 / (2 × 4)) = 12 units in all: the script's rule
    // is `lease_size`'s.
    assert_eq!(sluice_state::remote::window::lease_size(100, 0, 2, 1), 12);
    assert!(w[0].take(1, 100, t).await.is_ok());
    let mut b = 0;
    while w[1].take(1, 100, t).await.is_ok() {
        b += 1;
    }
    assert_eq!(b, 88, "A still holds its lease");
    sharing[0].sync(Duration::ZERO).await;
    let mut more = 0;
    while w[1].take(1, 100, t + 1).await.is_ok() {
        more += 1;
    }
    assert_eq!(more, 11, "A's 11 unused units came back");
}

#[tokio::test]
async fn token_windows_count_here_and_check_the_shared_total() {
    let sharing = replicas("redis://127.0.0.1:6379", "tpm", 3).await;
    let w = windows::<Window>(&sharing, "team:t1:tpm");
    let t = now();
    for r in &w {
        assert_eq!(r.check(1_000, t), Ok(1_000));
        r.add(300, t);
    }
    for s in &sharing {
        s.sync(Duration::ZERO).await;
    }
    // The last to sync read all three; the others read it at their next sync, which reads
    // back the windows checked since.
    for (s, r) in sharing.iter().zip(&w) {
        assert!(r.check(1_000, t).is_ok());
        s.sync(Duration::ZERO).await;
    }
    for r in &w {
        assert_eq!(r.used(t), 900);
        assert_eq!(r.check(1_000, t), Ok(100));
    }
    w[0].add(100, t);
    assert!(w[0].check(1_000, t).is_err());
    sharing[0].sync(Duration::ZERO).await;
    sharing[1].sync(Duration::ZERO).await;
    let full = w[1].check(1_000, t).unwrap_err();
    assert!((59..=60).contains(&full.retry_after), "{full:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_away_each_replica_admits_its_share_and_catches_up_after() {
    let cut = Cut::start().await;
    let url = cut.url();
    let sharing = replicas(&url, "away", 3).await;
    assert_eq!(sharing[0].remote().replicas(), 3);
    let w = windows::<Window>(&sharing, "key:hash-3:rpm");
    let t = now();
    assert!(w[0].take(1, 30, t).await.is_ok(), "shared while Redis answers");
    cut.cut();
    // Each replica's first call finds Redis gone (within the call's timeout) and opens its
    // breaker; from then on nothing waits.
    let started = std::time::Instant::now();
    let mut admitted = [0u64; 3];
    for (r, n) in w.iter().zip(admitted.iter_mut()) {
        for _ in 0..30 {
            if r.take(1, 30, t).await.is_ok() {
                *n += 1;
            }
        }
    }
    // At most one call timeout (100 ms) per replica, once.
    assert!(started.elapsed() < Duration::from_millis(600), "{:?}", started.elapsed());
    assert!(sharing.iter().all(|s| !s.remote().healthy()));
    // Then nothing waits: a thousand refusals in well under a millisecond each.
    let started = std::time::Instant::now();
    for i in 0..1_000 {
        assert!(w[i % 3].take(1, 30, t).await.is_err());
    }
    assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
    // Each replica alone admits its share, 30 / 3: the first counted 2 already (its request and
    // the one left of its lease of 30 / (3 × 4) = 2).
    assert_eq!(admitted, [9, 10, 10]);

    // Redis back: what each admitted alone is pushed, and the window is shared (and full) again.
    cut.mend();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sharing.iter().all(|s| s.remote().healthy()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for s in &sharing {
            s.sync(Duration::ZERO).await;
        }
    }
    assert!(sharing.iter().all(|s| s.remote().healthy()), "sharing did not resume");
    let _ = w[1].check(30, t);
    sharing[1].sync(Duration::ZERO).await;
    assert_eq!(w[1].used(t), 30);
    assert!(w[2].take(1, 30, t + 1).await.is_err());
}
