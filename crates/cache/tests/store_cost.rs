//! What a miss costs the in-process store at the size `bench/cache.py` runs it (100,000 entries,
//! full, so every miss's answer evicts another), for bench/README.md. Ignored by default and
//! asserts nothing about time; run with
//! `cargo test -p sluice-cache --release --test store_cost -- --ignored --nocapture`.
//!
//! Each round is what the server does for a miss: the lookup (a small body, so that the key's
//! hash does not hide the store), the `get` that finds nothing, and the `put` of a 600-byte
//! answer copied into a buffer of its own. The entries are far more than the CPU's caches hold,
//! as in the gateway: the memory an eviction touches is cold.

use bytes::Bytes;
use sluice_cache::{Cache, Settings, Shape};
use std::hint::black_box;
use std::time::Instant;

const ENTRIES: usize = 100_000;
const ROUNDS: usize = 400_000;

fn body(i: usize) -> String {
    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"question {i}"}}],"user":"u"}}"#)
}

#[test]
#[ignore = "measurement, not a check; run in release with --nocapture"]
fn cost_per_miss() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let answer = vec![b'a'; 600];
    for run in 0..3 {
        let cache = Cache::new(Settings { max_entries: ENTRIES, ..Settings::default() }, None).unwrap();
        for i in 0..ENTRIES {
            let l = cache.lookup(Shape::Chat, "m", body(i).as_bytes(), None).unwrap();
            cache.put(&l, Bytes::from(answer.clone()));
        }
        let bodies: Vec<String> = (ENTRIES..ENTRIES + ROUNDS).map(body).collect();
        let start = Instant::now();
        for b in &bodies {
            let l = cache.lookup(Shape::Chat, "m", black_box(b.as_bytes()), None).unwrap();
            assert!(rt.block_on(cache.get(&l)).is_none());
            cache.put(&l, Bytes::from(black_box(&answer[..]).to_vec()));
        }
        let each = start.elapsed().as_secs_f64() / ROUNDS as f64;
        let held = cache.usage().0;
        // The key alone, for the difference.
        let start = Instant::now();
        for b in &bodies {
            black_box(cache.lookup(Shape::Chat, "m", black_box(b.as_bytes()), None));
        }
        let key = start.elapsed().as_secs_f64() / ROUNDS as f64;
        println!(
            "run {run}: a miss {:.0} ns (lookup, get, put and its eviction), the lookup alone {:.0} ns: the store {:.0} ns; {held} entries held",
            each * 1e9,
            key * 1e9,
            (each - key) * 1e9
        );
    }
}
