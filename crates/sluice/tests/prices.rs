//! Prices end to end: a model that only LiteLLM's whole price map prices is billed and its budget
//! trips; a deployment's own prices override the map; a deployment nothing prices is named at
//! start-up and by `sluice check`, which also shows which LiteLLM release the map came from.

mod common;
use common::*;
use std::process::Command;

/// `gpt-4.5-preview` in LiteLLM's map: USD per input and output token. sluice's earlier
/// hand-picked subset did not list it, so it cost 0.
const INPUT: f64 = 7.5e-5;
const OUTPUT: f64 = 1.5e-4;
/// The mock's chat answer: 9 prompt and 12 completion tokens.
const COST: f64 = 9.0 * INPUT + 12.0 * OUTPUT;

const CONFIG: &str = r#"
model_list:
  - model_name: big
    litellm_params: {model: openai/gpt-4.5-preview, api_base: "{MOCK}"}
  - model_name: own-price
    litellm_params: {model: openai/gpt-4.5-preview, api_base: "{MOCK}", input_cost_per_token: 0.000001}
    model_info: {output_cost_per_token: 0.000002}
  - model_name: mine
    litellm_params: {model: openai/my-finetune-xyz, api_base: "{MOCK}"}
    model_info: {id: mine-1}
  - model_name: mocked
    litellm_params: {model: openai/not-a-real-model, mock_response: "hi"}
general_settings:
  master_key: sk-1234
litellm_settings:
  num_retries: 0
"#;

fn chat(g: &Proc, key: &str, model: &str) -> Response {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    request(g.addr, "POST", "/v1/chat/completions", Some(key), body.as_bytes())
}

fn cost(r: &Response) -> f64 {
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-litellm-response-cost").and_then(|c| c.parse().ok()).expect("x-litellm-response-cost")
}

#[test]
fn a_model_only_litellms_whole_map_prices_is_billed_and_its_budget_trips() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    let billed = cost(&chat(&g, "sk-1234", "big"));
    assert!((billed - COST).abs() < 1e-12, "billed {billed}, LiteLLM's price gives {COST}");
    // The deployment's own prices win over the map's, from litellm_params and model_info alike.
    let own = cost(&chat(&g, "sk-1234", "own-price"));
    assert!((own - (9.0 * 1e-6 + 12.0 * 2e-6)).abs() < 1e-12, "{own}");

    // A key whose budget covers one and a half calls: the second is admitted (spend is under the
    // budget), the third refused.
    let r = request(
        g.addr,
        "POST",
        "/key/generate",
        Some("sk-1234"),
        format!(r#"{{"max_budget":{}}}"#, COST * 1.5).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&g, &key, "big").status, 200);
    assert_eq!(chat(&g, &key, "big").status, 200);
    let refused = chat(&g, &key, "big");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error"]["type"], "budget_exceeded", "{}", refused.text());

    // /model/info shows the prices each deployment is billed at, as LiteLLM's does.
    let info = request(g.addr, "GET", "/model/info", Some("sk-1234"), b"").json();
    let of = |name: &str| info["data"].as_array().unwrap().iter().find(|d| d["model_name"] == name).unwrap().clone();
    assert_eq!(of("big")["model_info"]["input_cost_per_token"], INPUT);
    assert_eq!(of("big")["model_info"]["output_cost_per_token"], OUTPUT);
    assert_eq!(of("own-price")["model_info"]["input_cost_per_token"], 1e-6);
    assert_eq!(of("own-price")["model_info"]["output_cost_per_token"], 2e-6);
    assert_eq!(of("mine")["model_info"]["input_cost_per_token"], 0.0);
}

#[test]
fn an_unpriced_deployment_is_named_at_start_and_by_check_with_the_maps_version() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    // Its calls cost 0 — which is why it is named.
    assert_eq!(cost(&chat(&g, "sk-1234", "mine")), 0.0);
    let log = g.stderr();
    let named = "model_name mine (openai/my-finetune-xyz, id mine-1) has no known price";
    assert!(log.contains(named), "{log}");
    assert!(log.contains("input_cost_per_token"), "the warning says what to do: {log}");
    // Priced deployments, and one answering with mock_response, are not named.
    for quiet in ["model_name big ", "model_name own-price ", "model_name mocked "] {
        assert!(!log.contains(quiet), "{quiet} in {log}");
    }

    let path = std::env::temp_dir().join(format!("sluice-prices-check-{}.yaml", std::process::id()));
    std::fs::write(&path, CONFIG.replace("{MOCK}", "http://127.0.0.1:1/")).unwrap();
    let out = Command::new(BIN).args(["check", "--config", path.to_str().unwrap()]).output().unwrap();
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // The release and checksum the refresh script recorded.
    let recorded = include_str!("../../providers/src/prices.version");
    let field = |k: &str| recorded.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_string();
    let (version, sha) = (field("litellm "), field("sha256 "));
    assert!(stdout.contains(&format!("prices: LiteLLM {version}'s model price map (")), "{stdout}");
    assert!(stdout.contains(&format!("sha256 {sha})")), "{stdout}");
    assert!(stdout.contains(&format!("unpriced deployments (1):\n  {named}")), "{stdout}");
}

#[test]
fn cost_based_routing_prefers_the_deployment_the_map_prices_lower() {
    let m = mock(&[]);
    let config = r#"
model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4.5-preview, api_base: "{MOCK}"}
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{MOCK}"}
router_settings:
  routing_strategy: cost-based-routing
general_settings:
  master_key: sk-1234
"#;
    let g = gateway(config, Some(&m));
    // gpt-4o-mini: 0.15 and 0.60 USD per million tokens in and out.
    let cheap = 9.0 * 1.5e-7 + 12.0 * 6e-7;
    for _ in 0..10 {
        let billed = cost(&chat(&g, "sk-1234", "g"));
        assert!((billed - cheap).abs() < 1e-12, "billed {billed}: not the cheaper deployment");
    }
}

#[test]
fn a_deployment_priced_per_second_is_billed_for_its_time() {
    let m = mock(&[]);
    let config = r#"
model_list:
  - model_name: timed
    litellm_params: {model: openai/sleep-300, api_base: "{MOCK}", input_cost_per_second: 0.01}
    model_info: {output_cost_per_second: 0.02}
general_settings:
  master_key: sk-1234
"#;
    let g = gateway(config, Some(&m));
    // The mock answers after 300 ms: 0.3 s at 0.03 USD a second, and a little more.
    let billed = cost(&chat(&g, "sk-1234", "timed"));
    assert!((0.009..0.03).contains(&billed), "billed {billed}");
    let log = g.stderr();
    assert!(!log.contains("has no known price"), "{log}");
}

/// Cache reads cost their own price whether the answer comes whole or streamed: the mock's
/// `claude-cached-100` reports 12 uncached input tokens, 100 read from the cache and 9 output.
#[test]
fn cache_reads_are_billed_at_their_price_whole_and_streamed() {
    let m = mock(&[]);
    let config = r#"
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-cached-100
      api_base: "{MOCK}"
      api_key: sk-ant
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      cache_read_input_token_cost: 0.0000001
general_settings:
  master_key: sk-1234
"#;
    let g = gateway(config, Some(&m));
    let want = 12.0 * 1e-6 + 100.0 * 1e-7 + 9.0 * 2e-6;
    let whole = cost(&chat(&g, "sk-1234", "claude"));
    assert!((whole - want).abs() < 1e-12, "whole: billed {whole}, want {want}");

    let r = request(g.addr, "POST", "/key/generate", Some("sk-1234"), b"{}");
    let key = r.json()["key"].as_str().unwrap().to_string();
    let body = r#"{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let streamed = request(g.addr, "POST", "/v1/chat/completions", Some(&key), body.as_bytes());
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    // The stream is billed when it ends, just after its last byte.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let spend = loop {
        let info = request(g.addr, "GET", &format!("/key/info?key={key}"), Some("sk-1234"), b"").json();
        let spend = info["info"]["spend"].as_f64().unwrap_or(0.0);
        if spend > 0.0 || std::time::Instant::now() > deadline {
            break spend;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!((spend - want).abs() < 1e-12, "streamed: billed {spend}, want {want}");
}
