//! `/health` end to end (real `sluice` and `sluice mock` processes): each deployment called in
//! its mode through the proxy's own provider code, LiteLLM's shape, no credential echoed,
//! `?model=` / `?model_id=`, admins only, wildcard deployments only with `health_check_model`,
//! background checks served from their latest result; `/health/readiness/details` and `/routes`.

mod common;
use common::*;
use std::time::{Duration, Instant};

const SECRET: &str = "sk-health-secret-do-not-echo";

fn config(extra_general: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = std::env::temp_dir().join(format!("sluice-health-{}-{n}.db", std::process::id()));
    format!(
        r#"
model_list:
  - model_name: good
    litellm_params: {{model: openai/fake, api_base: "{{MOCK}}", api_key: {SECRET}}}
    model_info: {{id: good-1}}
  - model_name: down
    litellm_params: {{model: openai/error-503, api_base: "{{MOCK}}", api_key: {SECRET}}}
  - model_name: refused
    litellm_params: {{model: openai/x, api_base: "http://127.0.0.1:9/", api_key: {SECRET}}}
  - model_name: vectors
    litellm_params: {{model: openai/fake-embed, api_base: "{{MOCK}}"}}
    model_info: {{mode: embedding}}
  - model_name: "wild/*"
    litellm_params: {{model: openai/fake, api_base: "{{MOCK}}"}}
  - model_name: "checked/*"
    litellm_params: {{model: openai/fake, api_base: "{{MOCK}}"}}
    model_info: {{health_check_model: checked/fake}}
general_settings:
  master_key: sk-1234
  database_url: sqlite://{}
{extra_general}
"#,
        db.display()
    )
}

#[test]
fn health_calls_every_deployment_and_never_echoes_credentials() {
    let m = mock(&[]);
    let g = gateway(&config(""), Some(&m));
    let before = mock_stats(&m);
    let r = get(g.addr, "/health");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(!text.contains(SECRET), "a credential was echoed: {text}");
    let v = r.json();
    assert_eq!(v["healthy_count"], 3, "{v}");
    assert_eq!(v["unhealthy_count"], 2, "{v}");
    let healthy: Vec<&str> =
        v["healthy_endpoints"].as_array().unwrap().iter().map(|e| e["model"].as_str().unwrap()).collect();
    assert_eq!(
        healthy,
        ["openai/fake", "openai/fake-embed", "openai/fake"],
        "the wildcard without a check model is skipped"
    );
    let down = &v["unhealthy_endpoints"][0];
    assert_eq!(down["model"], "openai/error-503");
    assert!(down["api_base"].as_str().unwrap().starts_with("http://"));
    assert!(down.get("api_key").is_none());
    assert!(
        down["error"].as_str().unwrap().contains("503") || down["error"].as_str().unwrap().contains("Service"),
        "{down}"
    );
    let refused = &v["unhealthy_endpoints"][1];
    assert!(refused["error"].as_str().unwrap().contains("Connection error"), "{refused}");
    // Each mode was asked its own way.
    let after = mock_stats(&m);
    let delta =
        |route: &str| after["by_route"][route].as_u64().unwrap_or(0) - before["by_route"][route].as_u64().unwrap_or(0);
    assert_eq!(delta("chat"), 3, "good, down and checked/* (chat); {after}");
    assert_eq!(delta("embeddings"), 1, "{after}");

    // Filters.
    let v = get(g.addr, "/health?model=good").json();
    assert_eq!((v["healthy_count"].as_u64(), v["unhealthy_count"].as_u64()), (Some(1), Some(0)));
    let v = get(g.addr, "/health?model=openai/error-503").json();
    assert_eq!((v["healthy_count"].as_u64(), v["unhealthy_count"].as_u64()), (Some(0), Some(1)));
    let v = get(g.addr, "/health?model_id=good-1").json();
    assert_eq!(v["healthy_count"], 1);

    // Admins only: a virtual key is refused, as are callers without a key.
    let k = post(g.addr, "/key/generate", "{}");
    assert_eq!(k.status, 200, "{}", k.text());
    let key = k.json()["key"].as_str().unwrap().to_string();
    let r = request(g.addr, "GET", "/health", Some(&key), b"");
    assert_eq!(r.status, 401, "{}", r.text());
    r.error_message();
    assert_eq!(request(g.addr, "GET", "/health", None, b"").status, 401);

    // Readiness details, for any valid key.
    let r = request(g.addr, "GET", "/health/readiness/details", Some(&key), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["db"], "connected");
    assert!(r.json()["litellm_version"].is_string());
    assert_eq!(request(g.addr, "GET", "/health/readiness/details", None, b"").status, 401);

    // /routes lists what the gateway serves, to anyone (as LiteLLM's).
    let r = request(g.addr, "GET", "/routes", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let routes = r.json();
    let find = |p: &str| routes["routes"].as_array().unwrap().iter().find(|r| r["path"] == p).cloned();
    assert_eq!(find("/v1/chat/completions").unwrap()["methods"], serde_json::json!(["POST"]));
    assert_eq!(find("/health").unwrap()["methods"], serde_json::json!(["GET"]));
}

#[test]
fn background_checks_are_served_from_their_latest_result() {
    let m = mock(&[]);
    let g = gateway(&config("  background_health_checks: true\n  health_check_interval: 300\n"), Some(&m));
    // The first round runs at start.
    let deadline = Instant::now() + Duration::from_secs(15);
    let v = loop {
        let v = get(g.addr, "/health").json();
        if v["healthy_count"].as_u64().unwrap_or(0) + v["unhealthy_count"].as_u64().unwrap_or(0) == 5 {
            break v;
        }
        assert!(Instant::now() < deadline, "no background result: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(v["healthy_count"], 3);
    // Served from memory: asking again calls nothing upstream.
    let calls = || {
        let s = mock_stats(&m);
        s["by_route"]["chat"].as_u64().unwrap() + s["by_route"]["embeddings"].as_u64().unwrap()
    };
    let before = calls();
    for _ in 0..3 {
        let v = get(g.addr, "/health?model=down").json();
        assert_eq!(v["unhealthy_count"], 1);
    }
    assert_eq!(calls(), before);
}
