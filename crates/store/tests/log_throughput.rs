//! A measurement, run by hand, not a check: what writing spend logs to a SQLite file costs, in
//! the writer's batches (1,000 rows, and one spend increment each), as process CPU and wall time.
//!
//! `cargo test -p sluice-store --test log_throughput -- --ignored --nocapture`
//! (`NO_RESPONSE_ID=1` before it: rows without the answer's id, whose index is then not written)

use sluice_store::{KeyRecord, SpendIncrement, SpendLogRecord, Spender, Store};

/// User plus system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by hand with --ignored --nocapture"]
async fn spend_log_throughput() {
    let dir = std::env::temp_dir().join(format!("sluice_log_throughput_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&format!("sqlite://{}", dir.join("t.db").display()), 2).await.unwrap();
    store.insert_key(&KeyRecord { token: "k".into(), ..Default::default() }).await.unwrap();
    let increment =
        || SpendIncrement { spender: Spender::Key("k".into()), amount: 1.0, per_model: vec![("m".into(), 1.0)] };
    let cpu_before = cpu_seconds();
    let mut rounds = Vec::new();
    for round in 0..12 {
        let started = std::time::Instant::now();
        for batch in 0..50 {
            let logs: Vec<SpendLogRecord> = (0..1000)
                .map(|i| SpendLogRecord {
                    request_id: format!("r{round}-{batch}-{i}"),
                    // As the request path logs them: the answer's id (indexed) and its day's
                    // aggregate row (one group per batch here). `NO_RESPONSE_ID=1` leaves the
                    // id out, to see what its index costs.
                    response_id: std::env::var_os("NO_RESPONSE_ID")
                        .is_none()
                        .then(|| format!("chatcmpl-{round}-{batch}-{i}")),
                    api_key: "k".into(),
                    model: "gpt-4o".into(),
                    spend: 0.001,
                    ..Default::default()
                })
                .collect();
            store.insert_spend_logs(logs).await.unwrap();
            store.apply_increments(&[increment()]).await.unwrap();
        }
        rounds.push(started.elapsed().as_secs_f64());
    }
    let cpu = cpu_seconds() - cpu_before;
    rounds.sort_by(f64::total_cmp);
    eprintln!(
        "600,000 rows in 12 rounds of 50,000: process CPU {cpu:.2} s; wall per round min {:.3} s, median {:.3} s",
        rounds[0], rounds[6]
    );
    let _ = std::fs::remove_dir_all(dir);
}
