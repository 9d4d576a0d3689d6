//! A miss costs the in-process store no allocation once it is full: the lookup's key is written
//! into a per-thread buffer and hashed there, the `get` that finds nothing takes a lock and
//! probes a table, and the `put` files the answer (already the caller's own `Bytes`) in the slot
//! its eviction emptied. Every request a miss, as `bench/cache.py` runs it, that is every request;
//! an allocation here would be one more `malloc` and `free` on each. A counting global allocator
//! (its own test binary) counts this thread's allocations.

use bytes::Bytes;
use futures_util::FutureExt;
use sluice_cache::{Cache, Settings, Shape};

#[global_allocator]
static GLOBAL: sluice_alloc_count::Counting = sluice_alloc_count::Counting;

const ENTRIES: usize = 256;

fn body(i: usize) -> String {
    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"question {i}"}}],"temperature":0.2}}"#)
}

#[test]
fn a_miss_on_a_full_store_allocates_nothing() {
    let cache = Cache::new(Settings { max_entries: ENTRIES, ..Settings::default() }, None).unwrap();
    let mut answers: Vec<Bytes> = (0..4 * ENTRIES).map(|i| Bytes::from(format!("{{\"answer\":{i}}}"))).collect();
    let bodies: Vec<String> = (0..4 * ENTRIES).map(body).collect();
    // Filled past its bound (every shard full, every later put evicting), and the per-thread
    // key buffer grown to these bodies.
    for (b, a) in bodies[..2 * ENTRIES].iter().zip(answers.drain(..2 * ENTRIES)) {
        let l = cache.lookup(Shape::Chat, "m", b.as_bytes(), None).unwrap();
        cache.put(&l, a);
    }
    assert_eq!(cache.usage().0, ENTRIES, "full");
    let mut answers = answers.into_iter();
    let n = sluice_alloc_count::allocations_in(|| {
        for b in &bodies[2 * ENTRIES..] {
            let l = cache.lookup(Shape::Chat, "m", b.as_bytes(), None).unwrap();
            assert!(cache.get(&l).now_or_never().expect("a local get does not wait").is_none());
            cache.put(&l, answers.next().unwrap());
        }
    });
    assert_eq!(n, 0, "allocations in {} misses on a full store", 2 * ENTRIES);
    assert_eq!(cache.usage().0, ENTRIES);
    assert!(cache.stats.misses.load(std::sync::atomic::Ordering::Relaxed) >= 2 * ENTRIES as u64);
}
