//! The router end to end: the seed's second load test scaled down (two rate-limited deployments
//! of one model group), fallbacks and aliases through the mock's error injection, the immediate
//! 429 when nothing is available, and the Prometheus metrics that show it.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// Two deployments of one group, each at a mock route limited to 600 requests per 10 s window
/// (the fake's fixed window and 429 body, no Retry-After), offered ~1.7x the combined quota for
/// 20 s: LiteLLM's 2 x 10K RPM test at 1/10 scale.
#[test]
fn seed_rate_limit_test_scaled_down() {
    let m = mock(&[
        "--no-default-rate-limit",
        "--rate-limit",
        "/openai/deployments/crow-a=600/10s",
        "--rate-limit",
        "/openai/deployments/crow-b=600/10s",
    ]);
    let g = gateway(
        r#"
model_list:
  - model_name: gemini-vision
    litellm_params:
      model: openai/gemini-1.0-pro-vision-001
      api_base: {MOCK}openai/deployments/crow-a
  - model_name: gemini-vision
    litellm_params:
      model: openai/gemini-1.0-pro-vision-001
      api_base: {MOCK}openai/deployments/crow-b
litellm_settings:
  callbacks: ["prometheus"]
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    let dir = std::env::temp_dir().join(format!("sluice-seed2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("load.json");
    let started = Instant::now();
    let out = Command::new(BIN)
        .args([
            "load",
            "--host",
            &format!("http://{}", g.addr),
            "--model",
            "gemini-vision",
            "--rate",
            "200",
            "-t",
            "20s",
        ])
        .args(["--connections", "200", "-q", "--error-file", dir.join("error.txt").to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "load ran: {}", String::from_utf8_lossy(&out.stderr));
    let elapsed = started.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let total = v["aggregated"]["requests"].as_u64().unwrap();
    let failed = v["aggregated"]["failures"].as_u64().unwrap();
    let ok = total - failed;
    // The upstream accepts 600 per deployment per window; windows open at each route's first
    // request, so a 20 s run spans exactly two windows per route.
    let quota = 2 * 600 * 2;
    assert!(total > 3_500, "offered {total} requests in {elapsed:.1}s");
    assert!(ok as f64 >= 0.99 * quota as f64, "{ok} successes of a combined quota of {quota}");
    assert!(ok <= quota as u64 + 600, "more successes ({ok}) than the upstream can give: the mock is not limiting");
    for f in v["failures"].as_array().unwrap() {
        assert_eq!(f["status"], 429, "only rate-limit failures: {f}");
    }

    // Prometheus saw the cooldowns and the failures, with the seed's labels.
    let metrics = request(g.addr, "GET", "/metrics", None, b"").text();
    let cooled = metrics
        .lines()
        .find(|l| l.starts_with("litellm_deployment_cooled_down_total{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        cooled.contains("litellm_model_name=\"gemini-vision\"") && cooled.contains("exception_status=\"429\""),
        "{cooled}"
    );
    let failures = metrics.lines().find(|l| l.starts_with("litellm_deployment_failure_responses_total{")).unwrap();
    assert!(failures.contains("exception_class=\"RateLimitError\""), "{failures}");
    assert!(metrics.contains("litellm_deployment_state{"));

    // With both deployments cooling, the client's 429 is immediate (no upstream call, no wait).
    let mut cooled_429 = Vec::new();
    let mut tries = 0;
    while cooled_429.len() < 21 && tries < 4_000 {
        tries += 1;
        let t = Instant::now();
        let r = post(g.addr, "/chat/completions", &chat_for("gemini-vision", false));
        let took = t.elapsed();
        if r.status == 429 && r.text().contains("No deployments available") {
            assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
            cooled_429.push(took);
        }
    }
    assert!(cooled_429.len() >= 21, "never saw both deployments cooling ({tries} tries)");
    cooled_429.sort();
    let median = cooled_429[cooled_429.len() / 2];
    assert!(median < Duration::from_millis(5), "median 429 took {median:?}");
}

#[test]
fn fallbacks_aliases_and_retry_headers() {
    let m = mock(&[]);
    let g = gateway(
        r#"
model_list:
  - model_name: primary
    litellm_params: {model: openai/error-503, api_base: "{MOCK}"}
  - model_name: backup
    litellm_params: {model: openai/fake, api_base: "{MOCK}"}
  - model_name: flaky
    litellm_params: {model: openai/429, api_base: "{MOCK}"}
  - model_name: flaky
    litellm_params: {model: openai/fake, api_base: "{MOCK}"}
router_settings:
  fallbacks: [{"primary": ["backup"]}]
  model_group_alias: {"gpt-4o": "backup"}
  retry_after: 0
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    let r = post(g.addr, "/chat/completions", &chat_for("primary", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(r.json()["model"], "fake", "after a fallback the served model is kept, as in LiteLLM");

    let r = post(g.addr, "/chat/completions", &chat_for("gpt-4o", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "gpt-4o", "an alias is re-stamped like any requested name");
    let models = get(g.addr, "/v1/models").json();
    assert!(models["data"].as_array().unwrap().iter().any(|m| m["id"] == "gpt-4o"), "aliases are listed");

    // A 429 on one deployment of a group cools it and is retried on the other at once; while
    // it cools, nothing more is sent its way.
    let mut retried = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let r = post(g.addr, "/chat/completions", &chat_for("flaky", false));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(t.elapsed() < Duration::from_millis(500), "no sleep before the retry");
        retried += r.header("x-litellm-attempted-retries").unwrap().parse::<u32>().unwrap();
    }
    assert!(retried <= 1, "at most the first request met the 429 deployment: {retried}");
}

#[test]
fn single_deployment_errors_are_retried_then_reported_with_diagnostics() {
    let m = mock(&[]);
    let g = gateway(
        "model_list:\n  - model_name: down\n    litellm_params: {model: openai/error-503, api_base: \"{MOCK}\"}\nrouter_settings:\n  num_retries: 2\ngeneral_settings:\n  master_key: sk-1234\n",
        Some(&m),
    );
    let before = mock_stats(&m)["by_route"]["chat"].as_u64().unwrap();
    let t = Instant::now();
    let r = post(g.addr, "/chat/completions", &chat_for("down", false));
    assert_eq!(r.status, 503);
    assert!(t.elapsed() >= Duration::from_millis(1_100), "backoff 0.5 s then 1 s (jittered) before the retries");
    assert_eq!(mock_stats(&m)["by_route"]["chat"].as_u64().unwrap() - before, 3, "one try and two retries");
    assert_eq!(r.header("x-litellm-attempted-retries"), Some("2"));
    let msg = r.error_message();
    assert!(msg.contains("Received Model Group=down"), "{msg}");
}

#[test]
fn prometheus_counts_tokens_of_streams_and_complete_answers() {
    let m = mock(&[]);
    let g = gateway(
        "model_list:\n  - model_name: m\n    litellm_params: {model: openai/fake, api_base: \"{MOCK}\"}\nlitellm_settings:\n  callbacks: [\"prometheus\"]\ngeneral_settings:\n  master_key: sk-1234\n",
        Some(&m),
    );
    assert_eq!(post(g.addr, "/chat/completions", &chat_for("m", false)).status, 200);
    let body =
        chat_for("m", true).replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    let r = post(g.addr, "/chat/completions", &body);
    assert_eq!(sse_data(&r.body).last().map(String::as_str), Some("[DONE]"));
    let metrics = request(g.addr, "GET", "/metrics", None, b"").text();
    let total: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("litellm_total_tokens_metric_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 42.0, "21 tokens from the complete answer and 21 from the stream's usage chunk:\n{metrics}");
    let ok: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("litellm_proxy_total_requests_metric_total{") && l.contains("status_code=\"200\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(ok, 2.0);
}
