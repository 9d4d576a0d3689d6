//! Budgets and in-flight caps shared through Redis: several `Access` instances over one store and
//! one Redis act as replicas. Against the real Redis on 127.0.0.1:6379 (a unique key prefix per
//! test) and, for Redis going away and coming back empty, a private `redis-server` of the test's
//! own on a port of its own.

use sluice_access::charge::{Charge, LogIds, Served};
use sluice_access::{Access, AccessSettings, Identity};
use sluice_providers::pricing::{Price, TokenUsage};
use sluice_state::remote::{redis, Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use sluice_store::{KeyRecord, Store, TeamRecord};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Every call costs this (exact in binary, so 24 of them are exactly 3.0).
const COST: f64 = 0.125;
const REPLICAS: usize = 4;

fn settings() -> AccessSettings {
    AccessSettings {
        batch_write_interval: Duration::from_millis(200),
        reload_interval: Duration::from_secs(60),
        disable_spend_logs: true,
        max_end_user_budget: None,
        max_budget: None,
        budget_duration: None,
        max_parallel_requests: None,
    }
}

fn prefix(test: &str) -> String {
    format!("sluice-test:{test}:{}:", std::process::id())
}

async fn store(test: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("sluice_shared_{test}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Store::open(&format!("sqlite://{}", dir.join("s.db").display()), 4).await.unwrap()
}

/// `REPLICAS` replicas over `store`, sharing through Redis at `url` under `prefix`, each one's
/// heartbeat counted by the others.
async fn replicas(store: &Store, url: &str, prefix: &str) -> Vec<Arc<Access>> {
    let mut out = Vec::new();
    for _ in 0..REPLICAS {
        let cfg = RemoteConfig { url: url.into(), prefix: prefix.into(), op_timeout: DEFAULT_OP_TIMEOUT };
        let remote = Remote::connect(&cfg).await.unwrap();
        remote.heartbeat().await;
        remote.spawn_heartbeat();
        let a = Access::new(Some("sk-master"), settings(), None);
        a.attach(store.clone());
        a.load().await.unwrap();
        sluice_access::writer::spawn(&a);
        a.share_budgets(remote);
        out.push(a);
    }
    // Each replica's count comes from its own heartbeat; on two loaded cores one heartbeat can
    // pass its operation timeout, so each is given a few seconds to see all the others.
    for a in &out {
        let remote = a.remote().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            remote.heartbeat().await;
            if remote.replicas() == REPLICAS as u64 || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(remote.replicas(), REPLICAS as u64);
    }
    out
}

fn served() -> Arc<Served> {
    let price = Price { input_per_token: 0.0, output_per_token: COST, ..Default::default() };
    Arc::new(Served::new("m", "m", "id", "openai", "", Some(price)))
}

static CALLS: AtomicU64 = AtomicU64::new(0);

/// One model call through `a`: admitted (shared checks included), `busy` long upstream, billed
/// [`COST`]. The error's status when refused.
async fn call(a: &Arc<Access>, id: &Identity, model: &str, busy: Duration) -> Result<(), u16> {
    let adm = a.admit_shared(id, model, None, COST).await.map_err(|e| e.status)?;
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let ids = LogIds { request_id: format!("r{n}"), ..Default::default() };
    let charge = Charge::new(a.clone(), adm, model, ids, "acompletion", None, None);
    charge.serving(&served(), None);
    tokio::time::sleep(busy).await;
    charge.settle(TokenUsage { completion_tokens: 1, ..Default::default() });
    Ok(())
}

async fn key(store: &Store, token: &str, edit: impl FnOnce(&mut KeyRecord)) {
    let mut k = KeyRecord { token: token.into(), ..Default::default() };
    edit(&mut k);
    store.insert_key(&k).await.unwrap();
}

fn identity(a: &Access, token: &str) -> Identity {
    Identity::Key(a.registry.key(token).expect("the key is loaded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_of_24_calls_admits_24_over_4_replicas_taking_turns() {
    let store = store("turns").await;
    key(&store, "k-turns", |k| k.max_budget = Some(24.0 * COST)).await;
    let rs = replicas(&store, "redis://127.0.0.1:6379", &prefix("turns")).await;
    let mut admitted = 0;
    for i in 0..40 {
        let a = &rs[i % REPLICAS];
        if call(a, &identity(a, "k-turns"), "m", Duration::from_millis(2)).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 24);
    // `/key/info` on any replica: the exact spend.
    for a in &rs {
        assert_eq!(a.key_spend_now(&a.registry.key("k-turns").unwrap()).await, 24.0 * COST);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_of_24_calls_admits_24_under_concurrent_requests() {
    let store = store("concurrent").await;
    key(&store, "k-conc", |k| k.max_budget = Some(24.0 * COST)).await;
    let rs = replicas(&store, "redis://127.0.0.1:6379", &prefix("concurrent")).await;
    let admitted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for replica in &rs {
        for _ in 0..10 {
            let (a, admitted) = (replica.clone(), admitted.clone());
            tasks.push(tokio::spawn(async move {
                // Until refused for spend alone; a 429 (the last dollars held by requests in
                // flight) is retried, as a client would.
                loop {
                    match call(&a, &identity(&a, "k-conc"), "m", Duration::from_millis(5)).await {
                        Ok(()) => admitted.fetch_add(1, Ordering::Relaxed),
                        Err(429) => {
                            tokio::time::sleep(Duration::from_millis(3)).await;
                            continue;
                        }
                        Err(_) => return,
                    };
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 24);
    let a = &rs[3];
    assert_eq!(a.key_spend_now(&a.registry.key("k-conc").unwrap()).await, 24.0 * COST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_model_budget_is_shared() {
    let store = store("model").await;
    key(&store, "k-model", |k| {
        k.model_max_budget.insert("m".into(), serde_json::json!({"budget_limit": 8.0 * COST, "time_period": "1d"}));
    })
    .await;
    let rs = replicas(&store, "redis://127.0.0.1:6379", &prefix("model")).await;
    let mut admitted = 0;
    for i in 0..20 {
        let a = &rs[i % REPLICAS];
        if call(a, &identity(a, "k-model"), "m", Duration::from_millis(1)).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 8);
    // Another model is not under that budget.
    assert_eq!(call(&rs[1], &identity(&rs[1], "k-model"), "other", Duration::ZERO).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_budget_is_shared_by_its_keys_on_every_replica() {
    let store = store("team").await;
    let team = TeamRecord { team_id: "t1".into(), max_budget: Some(8.0 * COST), ..Default::default() };
    store.insert_team(&team).await.unwrap();
    key(&store, "k-team-a", |k| k.team_id = Some("t1".into())).await;
    key(&store, "k-team-b", |k| k.team_id = Some("t1".into())).await;
    let rs = replicas(&store, "redis://127.0.0.1:6379", &prefix("team")).await;
    let mut admitted = 0;
    for i in 0..20 {
        let a = &rs[i % REPLICAS];
        let token = if i % 2 == 0 { "k-team-a" } else { "k-team-b" };
        loop {
            match call(a, &identity(a, token), "m", Duration::from_millis(1)).await {
                Ok(()) => admitted += 1,
                // The estimate of the call before still held (it goes in the background).
                Err(429) => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                Err(status) => assert_eq!(status, 400),
            }
            break;
        }
    }
    assert_eq!(admitted, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_cap_of_2_holds_across_replicas() {
    let store = store("cap").await;
    key(&store, "k-cap", |k| k.max_parallel_requests = Some(2)).await;
    let rs = replicas(&store, "redis://127.0.0.1:6379", &prefix("cap")).await;
    let admit = |i: usize| {
        let a = rs[i].clone();
        async move { a.admit_shared(&identity(&a, "k-cap"), "m", None, 0.0).await }
    };
    let first = admit(0).await.unwrap();
    let second = admit(1).await.unwrap();
    for r in 0..REPLICAS {
        let e = admit(r).await.err().expect("two in flight over all replicas");
        assert_eq!(e.status, 429);
        assert!(e.message.contains("max_parallel_requests"), "{}", e.message);
    }
    drop(first);
    // The slot goes back in the background.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = admit(2).await.unwrap();
    assert!(admit(3).await.is_err());
    drop((second, third));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let both = (admit(3).await.unwrap(), admit(0).await.unwrap());
    assert!(admit(1).await.is_err());
    drop(both);
}

/// Deletes every key under `prefix` (as a flush of this gateway's keys would).
async fn flush(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut c).await.unwrap();
    let live = format!("{prefix}replicas:live");
    for k in keys.into_iter().filter(|k| *k != live) {
        let _: i64 = redis::cmd("DEL").arg(k).query_async(&mut c).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_is_rebuilt_from_the_database_and_no_spend_is_lost() {
    let store = store("flush").await;
    key(&store, "k-flush", |k| k.max_budget = Some(24.0 * COST)).await;
    let url = "redis://127.0.0.1:6379";
    let p = prefix("flush");
    let rs = replicas(&store, url, &p).await;
    for i in 0..16 {
        let a = &rs[i % REPLICAS];
        call(a, &identity(a, "k-flush"), "m", Duration::ZERO).await.unwrap();
    }
    // The writers put the spend in the database; then Redis loses every total.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.get_key("k-flush").await.unwrap().unwrap().spend, 16.0 * COST);
    flush(url, &p).await;
    for a in &rs {
        a.sync_shared().await;
    }
    for a in &rs {
        assert_eq!(a.key_spend_now(&a.registry.key("k-flush").unwrap()).await, 16.0 * COST);
    }
    let mut admitted = 0;
    for i in 0..20 {
        let a = &rs[i % REPLICAS];
        if call(a, &identity(a, "k-flush"), "m", Duration::from_millis(1)).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 8, "the rest of the budget, not a fresh one");
}

/// A `redis-server` of this test's own, to stop and start again.
struct PrivateRedis {
    port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services.sh)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_each_replica_spends_its_share_and_back_empty_it_is_rebuilt() {
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let redis = PrivateRedis::start(port);
    let store = store("away").await;
    key(&store, "k-away", |k| k.max_budget = Some(24.0 * COST)).await;
    let rs = replicas(&store, &redis.url(), &prefix("away")).await;
    for a in &rs {
        a.sync_shared().await;
    }
    drop(redis);

    // Redis away: no request waits for it, and each replica spends a quarter of what was left.
    let started = std::time::Instant::now();
    let mut per_replica = [0; REPLICAS];
    for i in 0..40 {
        let a = &rs[i % REPLICAS];
        if call(a, &identity(a, "k-away"), "m", Duration::ZERO).await.is_ok() {
            per_replica[i % REPLICAS] += 1;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(per_replica, [6; REPLICAS]);

    // Back, empty: the totals are rebuilt from the database (and the spend not yet written).
    let redis = PrivateRedis::start(port);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for a in &rs {
        a.sync_shared().await;
        a.sync_shared().await;
    }
    for a in &rs {
        assert!(a.remote().unwrap().healthy());
        assert_eq!(a.key_spend_now(&a.registry.key("k-away").unwrap()).await, 24.0 * COST);
        assert_eq!(call(a, &identity(a, "k-away"), "m", Duration::ZERO).await, Err(400));
    }
    drop(redis);
}
