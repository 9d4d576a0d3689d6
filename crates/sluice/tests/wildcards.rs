//! Wildcard model groups, tag routing and model access groups end to end (real `sluice` and
//! `sluice mock` processes): `*`, `provider/*` and prefix patterns reach the upstream with the
//! requested name mapped, the most specific match wins, metrics stay bounded, and keys see and
//! call only what their `models` (and the access groups they list) allow.

mod common;
use common::*;
use serde_json::Value;
use std::net::SocketAddr;

fn config() -> String {
    r#"
model_list:
  - model_name: "*"
    litellm_params:
      model: "*"
      api_base: {MOCK}
      api_key: sk-any
  - model_name: "anthropic/*"
    litellm_params:
      model: "anthropic/*"
      api_base: {MOCK}
      api_key: sk-ant-test
    model_info:
      access_groups: ["claude-models"]
  - model_name: "claude-3-5-*"
    litellm_params:
      model: "anthropic/claude-3-5-*"
      api_base: {MOCK}
      api_key: sk-ant-test
  - model_name: "openai/*"
    litellm_params:
      model: "openai/*"
      api_base: {MOCK}
  - model_name: "priced/*"
    litellm_params:
      model: "openai/*"
      api_base: {MOCK}
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_base: {MOCK}
    model_info:
      access_groups: ["beta"]
  - model_name: tagged
    litellm_params:
      model: openai/paid-upstream
      api_base: {MOCK}
      tags: ["paid"]
  - model_name: tagged
    litellm_params:
      model: openai/error-400
      api_base: {MOCK}
      tags: ["free"]
litellm_settings:
  callbacks: ["prometheus"]
router_settings:
  enable_tag_filtering: true
  num_retries: 0
general_settings:
  master_key: sk-1234
  proxy_batch_write_at: 0.2
"#
    .to_string()
}

fn messages(addr: SocketAddr, key: &str, model: &str) -> Response {
    let body = format!(r#"{{"model":"{model}","max_tokens":50,"messages":[{{"role":"user","content":"hi"}}]}}"#);
    request(addr, "POST", "/v1/messages", Some(key), body.as_bytes())
}

fn chat(addr: SocketAddr, key: &str, body: &str) -> Response {
    request(addr, "POST", "/v1/chat/completions", Some(key), body.as_bytes())
}

/// The spend-log row of call `id`, once the batch write has stored it.
fn spend_row(addr: SocketAddr, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = get(addr, &format!("/spend/logs?request_id={id}"));
        assert_eq!(r.status, 200, "{}", r.text());
        if let Some(row) = r.json().as_array().and_then(|a| a.first().cloned()) {
            return row;
        }
        assert!(std::time::Instant::now() < deadline, "no spend-log row for {id} after 15 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn ids(r: &Response) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

fn new_key(addr: SocketAddr, models: &str) -> String {
    let r = post(addr, "/key/generate", &format!(r#"{{"models":{models}}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

#[test]
fn wildcards_route_the_requested_name_upstream() {
    let m = mock(&[]);
    let g = gateway(&config(), Some(&m));

    // `anthropic/*`: the Anthropic upstream is asked for the name without the prefix (a native
    // `/v1/messages` answer carries the upstream's own model name).
    let r = messages(g.addr, "sk-1234", "anthropic/claude-3-opus-20240229");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "claude-3-opus-20240229");
    // The more specific `claude-3-5-*` wins over `*` for a bare name, and maps to anthropic/.
    let r = messages(g.addr, "sk-1234", "claude-3-5-haiku-20241022");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "claude-3-5-haiku-20241022");
    // OpenAI clients reach the same wildcard, answered with the name they asked for.
    let r = chat(g.addr, "sk-1234", &chat_for("anthropic/claude-3-haiku-20240307", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "anthropic/claude-3-haiku-20240307");

    // `openai/*`: the upstream sees `error-404` (the mock's trigger), so its 404 comes back,
    // and does not cool the wildcard deployment down for the names that exist.
    let r = chat(g.addr, "sk-1234", &chat_for("openai/error-404", false));
    assert_eq!(r.status, 404, "the upstream was asked for error-404: {}", r.text());
    let r = chat(g.addr, "sk-1234", &chat_for("openai/gpt-4o", false));
    assert_eq!(r.status, 200, "{}", r.text());
    // Priced as the concrete model (the deployment itself has no price), and logged as it.
    let cost: f64 = r.header("x-litellm-response-cost").unwrap().parse().unwrap();
    assert!(cost > 0.0, "gpt-4o's price applies: {cost}");
    let id = r.header("x-litellm-call-id").unwrap().to_string();
    let row = spend_row(g.addr, &id);
    assert_eq!(row["model"], "gpt-4o", "{row}");
    assert_eq!(row["model_group"], "openai/gpt-4o", "{row}");

    // `*` with `model: "*"`: the requested name names its provider.
    let r = chat(g.addr, "sk-1234", &chat_for("openai/anything-at-all", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = chat(g.addr, "sk-1234", &chat_for("gpt-4o-mini", true));
    assert_eq!(r.status, 200, "{}", r.text());
    // A name no provider claims: LiteLLM's 400, not a 5xx.
    let r = chat(g.addr, "sk-1234", &chat_for("no-such-provider/x", false));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("LLM Provider NOT provided"), "{}", r.text());
    let r = chat(g.addr, "sk-1234", &chat_for("mystery-model", false));
    assert_eq!(r.status, 400, "{}", r.text());
    // A caller-chosen name cannot steer the upstream URL.
    let r = chat(g.addr, "sk-1234", &chat_for("anthropic/../v1/other", false));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("path segment"), "{}", r.text());

    // Exact names still go to their own group.
    let r = chat(g.addr, "sk-1234", CHAT);
    assert_eq!(r.status, 200, "{}", r.text());

    // A deployment's own prices price any name, so they do not make it a label.
    let r = chat(g.addr, "sk-1234", &chat_for("priced/made-up-name", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-litellm-response-cost").unwrap().parse::<f64>().unwrap() > 0.0);

    // Metrics label a priced name by itself and an unpriced one by its pattern, so callers
    // cannot mint series.
    let metrics = get(g.addr, "/metrics").text();
    assert!(!metrics.contains("made-up-name"), "no series names an invented model: {metrics}");
    assert!(metrics.contains("requested_model=\"priced/*\""), "{metrics}");
    let requests: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("litellm_proxy_total_requests_metric_total{")).collect();
    let joined = requests.join("\n");
    assert!(joined.contains("requested_model=\"openai/gpt-4o\""), "{joined}");
    assert!(joined.contains("requested_model=\"openai/*\""), "{joined}");
    assert!(!joined.contains("anything-at-all"), "an unpriced name is not a label: {joined}");
}

#[test]
fn model_lists_expand_wildcards_and_follow_the_key() {
    let m = mock(&[]);
    let g = gateway(&config(), Some(&m));

    let all = ids(&get(g.addr, "/v1/models"));
    assert!(all.contains(&"anthropic/claude-3-5-sonnet-20240620".to_string()), "{all:?}");
    assert!(all.contains(&"claude-3-5-sonnet-20240620".to_string()), "prefix patterns expand: {all:?}");
    assert!(all.contains(&"*".to_string()), "a catch-all cannot be expanded, so it is listed: {all:?}");
    assert!(!all.contains(&"anthropic/*".to_string()), "{all:?}");
    assert!(all.contains(&"fake-openai-endpoint".to_string()));
    let routes = ids(&get(g.addr, "/v1/models?return_wildcard_routes=True"));
    assert!(routes.contains(&"anthropic/*".to_string()), "{routes:?}");
    let groups = ids(&get(g.addr, "/v1/models?only_model_access_groups=True"));
    assert_eq!(groups, ["claude-models", "beta"]);

    // A key limited to `anthropic/*` sees and calls only Anthropic models.
    let key = new_key(g.addr, r#"["anthropic/*"]"#);
    let seen = ids(&request(g.addr, "GET", "/v1/models", Some(&key), b""));
    assert!(!seen.is_empty() && seen.iter().all(|m| m.starts_with("anthropic/")), "{seen:?}");
    let r = chat(g.addr, &key, &chat_for("anthropic/claude-3-haiku-20240307", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = chat(g.addr, &key, &chat_for("openai/gpt-4o", false));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.error_message().contains("not allowed to access model"), "{}", r.text());
    let r = request(g.addr, "GET", "/v1/models/anthropic/claude-3-haiku-20240307", Some(&key), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], "anthropic/claude-3-haiku-20240307");
    let r = request(g.addr, "GET", "/v1/models/openai/gpt-4o", Some(&key), b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(get(g.addr, "/v1/models/openai/gpt-4o").status, 200, "the master key may use it");
    let info = request(g.addr, "GET", "/model_group/info", Some(&key), b"").json();
    let names: Vec<&str> =
        info["data"].as_array().unwrap().iter().map(|d| d["model_group"].as_str().unwrap()).collect();
    assert_eq!(names, ["anthropic/*"]);
    assert_eq!(info["data"][0]["providers"], serde_json::json!(["anthropic"]));
    let deployments = request(g.addr, "GET", "/model/info", Some(&key), b"").json();
    let names: Vec<&str> =
        deployments["data"].as_array().unwrap().iter().map(|d| d["model_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["anthropic/*"]);

    // An access group in a key's `models` grants the groups filed under it.
    let key = new_key(g.addr, r#"["beta"]"#);
    assert_eq!(ids(&request(g.addr, "GET", "/v1/models", Some(&key), b"")), ["fake-openai-endpoint"]);
    let r = chat(g.addr, &key, CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = chat(g.addr, &key, &chat_for("anthropic/claude-3-haiku-20240307", false));
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(ids(&request(g.addr, "GET", "/v1/models?only_model_access_groups=True", Some(&key), b"")), ["beta"]);
    let key = new_key(g.addr, r#"["claude-models"]"#);
    let r = chat(g.addr, &key, &chat_for("anthropic/claude-3-haiku-20240307", false));
    assert_eq!(r.status, 200, "an access group holding a wildcard grants its names: {}", r.text());

    // The master key's /model_group/info lists every group, one filtered by name.
    let info = get(g.addr, "/model_group/info?model_group=tagged").json();
    assert_eq!(info["data"].as_array().unwrap().len(), 1, "{info}");
    assert_eq!(info["data"][0]["providers"], serde_json::json!(["openai"]));
}

#[test]
fn tags_pick_deployments() {
    let m = mock(&[]);
    let g = gateway(&config(), Some(&m));
    let body = |tags: &str| {
        format!(r#"{{"model":"tagged","metadata":{{"tags":{tags}}},"messages":[{{"role":"user","content":"hi"}}]}}"#)
    };
    // `paid` reaches the working deployment every time; `free` the one answering 400.
    for _ in 0..10 {
        let r = chat(g.addr, "sk-1234", &body(r#"["paid"]"#));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for _ in 0..3 {
        let r = chat(g.addr, "sk-1234", &body(r#"["free"]"#));
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(!r.error_message().contains("tags configuration"), "the upstream's 400: {}", r.text());
    }
    // A top-level `tags` works too.
    let r =
        chat(g.addr, "sk-1234", r#"{"model":"tagged","tags":["paid"],"messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    // Tags no deployment carries, with no `default` deployment: LiteLLM's refusal, a 400.
    let r = chat(g.addr, "sk-1234", &body(r#"["gold"]"#));
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = r.error_message();
    assert!(msg.contains("Not allowed to access model due to tags configuration"), "{msg}");
    assert!(msg.contains("'gold'"), "{msg}");
    let v: Value = r.json();
    assert_eq!(v["error"]["code"], "400");
}

#[test]
fn a_bare_name_reaches_its_providers_wildcard() {
    let m = mock(&[]);
    let g = gateway(
        r#"
model_list:
  - model_name: "anthropic/*"
    litellm_params:
      model: "anthropic/*"
      api_base: {MOCK}
      api_key: sk-ant-test
litellm_settings:
  callbacks: ["prometheus"]
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    // LiteLLM's `get_pattern`: `claude-…` implies anthropic, and `anthropic/*` takes it.
    let r = messages(g.addr, "sk-1234", "claude-3-haiku-20240307");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "claude-3-haiku-20240307");
    let r = chat(g.addr, "sk-1234", &chat_for("claude-3-haiku-20240307", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "claude-3-haiku-20240307", "answered with the name asked for");
    // A name whose provider has no wildcard here is unknown.
    let r = chat(g.addr, "sk-1234", &chat_for("gpt-4o", false));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("Invalid model name"), "{}", r.text());
    let r = chat(g.addr, "sk-1234", &chat_for("made-up-7f3a", false));
    assert_eq!(r.status, 400, "{}", r.text());
    let metrics = get(g.addr, "/metrics").text();
    assert!(metrics.contains("litellm_proxy_total_requests_metric_total{"), "{metrics}");
    assert!(!metrics.contains("made-up-7f3a"), "an unknown name is no label: {metrics}");
}
