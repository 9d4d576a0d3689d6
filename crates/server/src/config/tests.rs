use super::*;

const SEED_OPENAI: &str = r#"
model_list:
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_key: fake-key
      api_base: https://exampleopenaiendpoint-production.up.railway.app/

litellm_settings:
  callbacks: ["prometheus"] # Enterprise LiteLLM Only - use prometheus to get metrics on your load test
"#;

const SEED_VERTEX: &str = r#"
model_list:
  - model_name: gemini-vision
    litellm_params:
      model: vertex_ai/gemini-1.0-pro-vision-001
      api_base: https://exampleopenaiendpoint-production.up.railway.app/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001
      vertex_project: "adroit-crow-413218"
      vertex_location: "us-central1"
      vertex_credentials: /etc/secrets/adroit_crow.json
  - model_name: gemini-vision
    litellm_params:
      model: vertex_ai/gemini-1.0-pro-vision-001
      api_base: https://exampleopenaiendpoint-production-c715.up.railway.app/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001
      vertex_project: "adroit-crow-413218"
      vertex_location: "us-central1"
      vertex_credentials: /etc/secrets/adroit_crow.json

litellm_settings:
  callbacks: ["prometheus"] # Enterprise LiteLLM Only - use prometheus to get metrics on your load test
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_str(text, Env::fixed([("OPENAI_KEY", "sk-upstream"), ("MASTER", "sk-master")]))
}

#[test]
fn both_seed_configs_load() {
    let c = load(SEED_OPENAI).unwrap();
    assert_eq!(c.deployments.len(), 1);
    assert_eq!(c.deployments[0].model.provider.name, "openai");
    assert_eq!(c.deployments[0].model.upstream, "fake");
    assert_eq!(c.deployments[0].id.len(), 64);
    assert!(!c.ignored.iter().any(|l| l.contains("prometheus")), "{:?}", c.ignored);

    let c = load(SEED_VERTEX).unwrap();
    assert_eq!(c.deployments.len(), 2);
    assert_ne!(c.deployments[0].id, c.deployments[1].id);
    assert_eq!(c.deployments[0].model.provider.name, "vertex_ai");
    assert!(c.deployments[0].public_params.get("vertex_credentials").is_none());
}

#[test]
fn resolves_environment_references_everywhere_litellm_does() {
    let c = load(
        r#"
environment_variables:
  UPSTREAM_BASE: http://127.0.0.1:9/
  ALIAS_KEY: os.environ/OPENAI_KEY
model_list:
  - model_name: m
    litellm_params:
      model: openai/x
      api_key: os.environ/ALIAS_KEY
      api_base: os.environ/UPSTREAM_BASE
      organization: os.environ/NOT_SET
general_settings:
  master_key: os.environ/MASTER
"#,
    )
    .unwrap();
    let d = &c.deployments[0];
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "sk-upstream");
    assert_eq!(d.api_base.as_deref(), Some("http://127.0.0.1:9/"));
    assert_eq!(d.organization, None);
    assert!(c.warnings.iter().any(|w| w.contains("NOT_SET")));
    assert_eq!(c.general.master_key.as_ref().unwrap().expose(), "sk-master");
    assert!(!format!("{c:?}").contains("sk-upstream"), "secrets must not appear in Debug output");
    assert!(!format!("{c:?}").contains("sk-master"));
}

#[test]
fn master_key_from_environment() {
    let c = Config::from_yaml_str("model_list: []", Env::fixed([("LITELLM_MASTER_KEY", "sk-env")])).unwrap();
    assert_eq!(c.general.master_key.unwrap().expose(), "sk-env");
}

#[test]
fn invalid_configs_name_path_and_fix() {
    let cases = [
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: vertexai/gemini\n", "model_list[0].litellm_params.model: unknown provider \"vertexai\" (did you mean \"vertex_ai\"?)"),
        ("model_list:\n  - litellm_params:\n      model: openai/x\n", "model_list[0].model_name: missing"),
        ("model_list:\n  - model_name: a\n", "model_list[0].litellm_params: missing"),
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      timeout: soon\n", "model_list[0].litellm_params.timeout: expected a number"),
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      api_base: localhost:8090\n", "model_list[0].litellm_params.api_base"),
        ("model_list: 5\n", "model_list: expected a list"),
        ("general_settings:\n  max_request_size_mb: -1\n", "general_settings.max_request_size_mb: must be a positive"),
        ("router_settings:\n  routing_strategy: fastest\n", "router_settings.routing_strategy: unknown strategy"),
        ("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, input_cost_per_token: cheap}\n", "model_list[0].litellm_params.input_cost_per_token: expected a number"),
        ("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, max_parallel_requests: many}\n", "model_list[0].litellm_params.max_parallel_requests: expected a number"),
        ("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {id: same}\n  - model_name: b\n    litellm_params: {model: openai/y}\n    model_info: {id: same}\n", "model_list[1].model_info.id: deployment id \"same\" is used twice"),
    ];
    for (text, expected) in cases {
        let e = load(text).unwrap_err().to_string();
        assert!(e.starts_with(expected), "got {e:?}, expected prefix {expected:?}");
    }
}

#[test]
fn lists_what_it_ignores() {
    let c = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, temperature: 0.2}\ngeneral_settings:\n  alerting: [\"slack\"]\nrouter_settings:\n  enable_tag_filtering: true\nguardrails: []\n",
    )
    .unwrap();
    let joined = c.ignored.join("\n");
    for needle in ["litellm_params.temperature", "general_settings.alerting", "enable_tag_filtering", "guardrails"] {
        assert!(joined.contains(needle), "{needle} missing from {joined}");
    }
    assert!(!joined.contains("slack"), "values are not echoed");
}

#[test]
fn includes_merge_model_lists() {
    let dir = std::env::temp_dir().join(format!("sluice-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("models.yaml"), "model_list:\n  - model_name: b\n    litellm_params: {model: openai/b}\n")
        .unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        "include: [models.yaml]\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n",
    )
    .unwrap();
    let c = Config::load_with_env(&dir.join("config.yaml"), Env::fixed([])).unwrap();
    let names: Vec<_> = c.deployments.iter().map(|d| d.model_name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn router_settings_reach_the_router() {
    let c = load(
        r#"
model_list:
  - model_name: gpt-4
    litellm_params: {model: openai/gpt-4, order: 1, max_parallel_requests: 3, cooldown_time: 0}
    model_info: {max_input_tokens: 8192, input_cost_per_token: 0.00003}
  - model_name: gpt-3.5
    litellm_params: {model: openai/gpt-3.5-turbo}
litellm_settings:
  num_retries: 4
  fallbacks: [{"gpt-4": ["gpt-3.5"]}]
router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {ttl: 60, lowest_latency_buffer: 0.5}
  num_retries: 1
  allowed_fails: 3
  cooldown_time: 30
  retry_policy: {RateLimitErrorRetries: 5}
  context_window_fallbacks: [{"gpt-3.5": ["gpt-4"]}]
  default_fallbacks: ["gpt-3.5"]
  model_group_alias: {"gpt-4o": "gpt-4", "hidden-one": {model: gpt-3.5, hidden: true}}
  enable_pre_call_checks: true
"#,
    )
    .unwrap();
    let r = &c.router.routing;
    assert_eq!(r.num_retries, 1, "router_settings wins over litellm_settings");
    assert_eq!(r.allowed_fails, None, "3 is the default: not legacy mode");
    assert_eq!(r.cooldown_time, std::time::Duration::from_secs(30));
    assert_eq!(r.retry_policy.as_ref().unwrap().get(sluice_router::ErrorKind::RateLimit), Some(5));
    assert_eq!(
        r.fallbacks,
        vec![("gpt-4".to_string(), vec!["gpt-3.5".to_string()]), ("*".to_string(), vec!["gpt-3.5".to_string()])]
    );
    assert_eq!(r.context_window_fallbacks.len(), 1);
    assert_eq!(r.aliases["hidden-one"], ("gpt-3.5".to_string(), true));
    assert!(r.enable_pre_call_checks);
    assert!(matches!(r.strategy, sluice_router::Strategy::LatencyBased { buffer, .. } if buffer == 0.5));
    let d = &c.deployments[0];
    assert_eq!((d.order, d.max_parallel_requests, d.cooldown_time), (Some(1.0), Some(3.0), Some(0.0)));
    assert_eq!(d.max_input_tokens, Some(8192));
    assert_eq!(d.prices, vec![("input_cost_per_token".to_string(), 0.00003)]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn fallbacks_to_unknown_groups_warn() {
    let c = load("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\nrouter_settings:\n  fallbacks: [{a: [b]}]\n").unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("\"b\" is not a model_name")), "{:?}", c.warnings);
}

#[test]
fn access_log_and_json_logs_are_switches() {
    let defaults = load("model_list: []\n").unwrap();
    assert!(defaults.sluice.access_log, "the access log is on by default");
    assert!(!defaults.litellm.json_logs);
    let set = load("sluice_settings:\n  access_log: false\nlitellm_settings:\n  json_logs: true\n").unwrap();
    assert!(!set.sluice.access_log);
    assert!(set.litellm.json_logs);
    assert!(!set.ignored.iter().any(|l| l.contains("json_logs")), "{:?}", set.ignored);
    let e = load("sluice_settings:\n  access_log: sometimes\n").unwrap_err().to_string();
    assert!(e.contains("sluice_settings.access_log") && e.contains("true or false"), "{e}");
}
