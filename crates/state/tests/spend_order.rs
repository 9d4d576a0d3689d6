//! A shared budget's promise, against the real Redis on 127.0.0.1:6379: at no moment does Redis
//! count neither a request's estimate nor its cost. A request near its budget holds its estimate
//! in Redis, is charged its cost (sent at once), then lets go of the estimate (also sent at once);
//! those two sends go out from separate tasks, and if the second overtook the first, the total
//! plus the held estimates would fall short of what the requests admitted so far cost, and
//! another replica looking then could spend the same dollars twice.

use sluice_state::remote::spend::{SpendBook, Verdict};
use sluice_state::remote::{redis, Remote, RemoteConfig, DEFAULT_OP_TIMEOUT};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Each request costs exactly its estimate.
const COST: f64 = 0.125;
const COST_NANOS: u64 = 125_000_000;
const TASKS: usize = 16;
const REQUESTS_PER_TASK: usize = 40;

/// The total (in nano-USD) plus every replica's held estimates, read in one step.
const COUNTED: &str = r"
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
local h = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do h = h + tonumber(v) end
return math.floor(t * 1e9 + 0.5) + h
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_never_counts_neither_the_estimate_nor_the_cost() {
    let cfg = RemoteConfig {
        url: "redis://127.0.0.1:6379".into(),
        prefix: format!("sluice-test:spend-order:{}:", std::process::id()),
        op_timeout: DEFAULT_OP_TIMEOUT,
    };
    let remote = Remote::connect(&cfg).await.unwrap();
    remote.heartbeat().await;
    let book = SpendBook::new(remote.clone());
    let spend = book.bind("key", "k", Box::new(|| (0.0, 0.0)));
    let (total_key, held_key) = (remote.key("spend", "key:k"), remote.key("held", "key:k"));

    let done = Arc::new(AtomicBool::new(false));
    let admitted = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (remote, done, admitted) = (remote.clone(), done.clone(), admitted.clone());
        let (total_key, held_key) = (total_key.clone(), held_key.clone());
        tokio::spawn(async move {
            let script = redis::Script::new(COUNTED);
            let (mut reads, mut dips) = (0u64, Vec::new());
            while !done.load(Ordering::Acquire) {
                // Every request admitted before this read holds its estimate or has its cost
                // counted by the time Redis runs it.
                let floor = admitted.load(Ordering::Acquire) as i64 * COST_NANOS as i64;
                let mut call = script.prepare_invoke();
                call.key(&total_key).key(&held_key);
                let counted: i64 = remote.call(|mut c| async move { call.invoke_async(&mut c).await }).await.unwrap();
                if counted < floor {
                    dips.push((floor, counted));
                }
                reads += 1;
            }
            (reads, dips)
        })
    };

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (spend, admitted) = (spend.clone(), admitted.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..REQUESTS_PER_TASK {
                let (verdict, held) = spend.hold(1e9, false, COST_NANOS).await.expect("Redis answers");
                assert!(matches!(verdict, Verdict::Held { .. }), "{verdict:?}");
                admitted.fetch_add(1, Ordering::AcqRel);
                // The order a request ends in: charged, then its estimate let go.
                spend.charge(COST);
                drop(held);
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Let the last sends land.
    let requests = (TASKS * REQUESTS_PER_TASK) as f64;
    for _ in 0..200 {
        if spend.read_now().await == Some(requests * COST) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    done.store(true, Ordering::Release);
    let (reads, dips) = watcher.await.unwrap();
    assert!(reads > 10, "the watcher read only {reads} times");
    assert!(
        dips.is_empty(),
        "total + held fell short of the requests admitted {} times in {reads} reads (admitted, counted): {:?}",
        dips.len(),
        &dips[..dips.len().min(5)]
    );
    assert_eq!(spend.read_now().await, Some(requests * COST));
    let held: std::collections::HashMap<String, i64> = remote
        .call(|mut c| async move { redis::cmd("HGETALL").arg(&held_key).query_async(&mut c).await })
        .await
        .unwrap();
    assert!(held.values().all(|&n| n == 0), "estimates still held: {held:?}");
    let _: Option<()> =
        remote.call(|mut c| async move { redis::cmd("DEL").arg(&total_key).query_async(&mut c).await }).await;
}
