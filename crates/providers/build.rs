//! Turns the bundled price map (`src/prices.json`, LiteLLM's shape, written by
//! `scripts/refresh-prices.sh`) into a compact table compiled into the binary: one string of all
//! model names with where each ends, and rows of numbers, both sorted by name.
//!
//! Why not parse the JSON at start: the table holds two thousand models, and a parsed map would
//! sit on the heap of every process (about a megabyte) and cost a few milliseconds of start-up.
//! Rows without pointers stay in the binary's read-only data: nothing to relocate at load, and
//! only the pages a lookup touches are ever read in. The search walks the names alone (80 KB);
//! the rows (170 KB) are read one per model found.
//!
//! A value the cost formula cannot use (not a number, negative, above the bound the config
//! applies to a deployment's own prices, two price tiers on one model) fails the build naming the
//! model, so a refresh that changes LiteLLM's shape is noticed at once rather than mispriced.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The most USD one token may cost (the bound `model_list` prices are read with).
const MAX_PRICE: f64 = 1000.0;

fn main() {
    println!("cargo:rerun-if-changed=src/prices.json");
    println!("cargo:rerun-if-changed=src/prices.version");
    let json = std::fs::read_to_string("src/prices.json").expect("src/prices.json");
    let version = std::fs::read_to_string("src/prices.version").expect("src/prices.version");
    let table: BTreeMap<String, Map<String, Value>> =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("src/prices.json: {e}"));

    let field = |key: &str| {
        version
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("src/prices.version has no `{key}` line"))
            .trim()
            .to_string()
    };
    let (litellm, sha256) = (field("litellm"), field("sha256"));

    let mut providers: Vec<String> = Vec::new();
    let mut modes: Vec<String> = Vec::new();
    let index = |list: &mut Vec<String>, s: &str| -> u8 {
        let i = list.iter().position(|p| p == s).unwrap_or_else(|| {
            list.push(s.to_string());
            list.len() - 1
        });
        u8::try_from(i).expect("at most 256 providers and modes")
    };

    let mut names = String::new();
    let mut name_ends = String::new();
    let mut rows = String::new();
    let mut tiers = String::new();
    let mut tier_count = 0u16;
    for (name, entry) in &table {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("{name}: no {k}"));
        let provider = index(&mut providers, text("litellm_provider"));
        let mode = index(&mut modes, entry.get("mode").and_then(Value::as_str).unwrap_or(""));
        let price = |k: &str| -> Option<f64> {
            let v = entry.get(k)?;
            let x = v.as_f64().unwrap_or_else(|| panic!("{name}.{k}: {v} is not a number"));
            assert!(
                x.is_finite() && (0.0..=MAX_PRICE).contains(&x),
                "{name}.{k}: {x} is not a price from 0 to {MAX_PRICE}"
            );
            Some(x)
        };
        let tiered: Vec<(&str, u64)> = entry
            .keys()
            .filter_map(|k| k.strip_prefix("input_cost_per_token_above_").map(|t| (k.as_str(), t)))
            .map(|(k, t)| (k, threshold(t).unwrap_or_else(|| panic!("{name}.{k}: cannot read the threshold"))))
            .collect();
        assert!(tiered.len() <= 1, "{name}: more than one price tier; pricing.rs carries one");
        let tier = match tiered.first() {
            None => 0,
            Some(&(key, above)) => {
                let suffix = key.strip_prefix("input_cost_per_token").unwrap_or_default();
                tier_count += 1;
                writeln!(
                    tiers,
                    "    Tier {{ above_prompt_tokens: {above}, input_per_token: {}, output_per_token: {}, cache_read_per_token: {}, cache_creation_per_token: {} }},",
                    num(price(key).unwrap_or(0.0)),
                    opt(price(&format!("output_cost_per_token{suffix}"))),
                    opt(price(&format!("cache_read_input_token_cost{suffix}"))),
                    opt(price(&format!("cache_creation_input_token_cost{suffix}"))),
                )
                .unwrap();
                tier_count
            }
        };
        names.push_str(name);
        write!(name_ends, "{}, ", names.len()).unwrap();
        writeln!(
            rows,
            "    Row {{ provider: {provider}, mode: {mode}, input: {}, output: {}, cache_read: {}, cache_creation: {}, reasoning: {}, batch_input: {}, batch_output: {}, query: {}, tier: {tier} }},",
            num(price("input_cost_per_token").unwrap_or(0.0)),
            num(price("output_cost_per_token").unwrap_or(0.0)),
            opt(price("cache_read_input_token_cost")),
            opt(price("cache_creation_input_token_cost")),
            opt(price("output_cost_per_reasoning_token")),
            opt(price("input_cost_per_token_batches")),
            opt(price("output_cost_per_token_batches")),
            num(price("input_cost_per_query").unwrap_or(0.0)),
        )
        .unwrap();
    }

    let list = |l: &[String]| l.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    let out = format!(
        "// @generated by crates/providers/build.rs from src/prices.json; do not edit.\n\
         /// Where the table came from.\n\
         pub const SOURCE: Source = Source {{ litellm: {litellm:?}, sha256: {sha256:?}, models: {} }};\n\
         static NAMES: &str = {names:?};\n\
         /// Where each row's name ends in `NAMES` (it starts where the one before ends).\n\
         static NAME_ENDS: [u32; {}] = [{name_ends}];\n\
         static PROVIDERS: &[&str] = &[{}];\n\
         static MODES: &[&str] = &[{}];\n\
         /// Price tiers; a row's `tier` counts from 1 (0: none).\n\
         static TIERS: [Tier; {tier_count}] = [\n{tiers}];\n\
         static ROWS: [Row; {}] = [\n{rows}];\n",
        table.len(),
        table.len(),
        list(&providers),
        list(&modes),
        table.len(),
    );
    let path = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("prices_table.rs");
    std::fs::write(path, out).expect("write prices_table.rs");
}

/// `200k` → 200000, `128` → 128 (LiteLLM's `_above_200k_tokens` and `_above_128_tokens`).
fn threshold(key_tail: &str) -> Option<u64> {
    let t = key_tail.strip_suffix("_tokens")?;
    match t.strip_suffix('k') {
        Some(k) => k.parse::<u64>().ok()?.checked_mul(1000),
        None => t.parse().ok(),
    }
}

/// A float literal that reads back as exactly `x` (Debug prints the shortest round trip).
fn num(x: f64) -> String {
    format!("{x:?}")
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "None".to_string(), |x| format!("Some({x:?})"))
}
