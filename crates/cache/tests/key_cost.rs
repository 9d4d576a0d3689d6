//! What the cache key costs on the seed's request, for bench/README.md. Ignored by default and
//! asserts nothing about time (timings belong in `bench/`, not in pass/fail); run with
//! `cargo test -p sluice-cache --release --test key_cost -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;

use sluice_cache::key::{self, Shape};

const ROUNDS: u32 = 200_000;

/// The seed locustfile's body as Python's `json.dumps` spells it (a space after `:` and `,`).
fn seed_body() -> Vec<u8> {
    let sentence = " This is a test there will be no cache hits and we'll fill up the context";
    let content = format!("4c7f1f0e-8a59-4a4e-9a8e-2b7d3f1c5e6a{sentence}").repeat(150);
    format!(
        r#"{{"model": "fake-openai-endpoint", "messages": [{{"role": "user", "content": "{content}"}}], "user": "my-new-end-user-1"}}"#
    )
    .into_bytes()
}

#[test]
#[ignore = "measurement, not a check; run in release with --nocapture"]
fn cost_per_key() {
    let body = seed_body();
    let compact = String::from_utf8(body.clone()).unwrap().replace("\": ", "\":").replace(", \"", ",\"").into_bytes();
    for (label, body) in [("json.dumps spacing", &body), ("compact", &compact)] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                black_box(key::digest(Shape::Chat, "fake-openai-endpoint", black_box(body)));
            }
            best = best.min(start.elapsed().as_secs_f64() / ROUNDS as f64);
        }
        println!("{label}, {} bytes: {:.2} µs a key (best of 5 runs of {ROUNDS})", body.len(), best * 1e6);
    }
    // Its parts, to see where the time goes: reading the members, and hashing that many bytes.
    for (label, run) in [
        ("members read", &(|| drop(black_box(sluice_wire::members::top_level(black_box(&body))))) as &dyn Fn()),
        ("the search for a quote or backslash through the body", &|| {
            black_box(memchr::memchr2(b'"', b'\\', black_box(&body[100..])));
        }),
        ("BLAKE3 of the whole body in one piece", &|| {
            black_box(blake3::hash(black_box(&body)));
        }),
    ] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                run();
            }
            best = best.min(start.elapsed().as_secs_f64() / ROUNDS as f64);
        }
        println!("{label}: {:.2} µs (best of 5 runs of {ROUNDS})", best * 1e6);
    }
}
