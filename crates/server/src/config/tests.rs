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
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, temperature: 0.2}\ngeneral_settings:\n  alerting: [\"email\"]\n  alerting_threshold: 5\nrouter_settings:\n  provider_budget_config: {openai: {budget_limit: 1, time_period: 1d}}\nguardrails: []\n",
    )
    .unwrap();
    let joined = c.ignored.join("\n");
    for needle in
        ["litellm_params.temperature", "general_settings.alerting_threshold", "guardrails: set to its off value"]
    {
        assert!(joined.contains(needle), "{needle} missing from {joined}");
    }
    assert!(!joined.contains("email"), "values are not echoed");
    assert!(c.warnings.iter().any(|w| w.contains("\"email\" alerts are not implemented")), "{:?}", c.warnings);
    assert_eq!(c.refused.len(), 1, "{:?}", c.refused);
    assert!(c.refused[0].starts_with("router_settings.provider_budget_config: provider budgets are not enforced"));
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
fn unresolved_secrets_in_security_settings_stop_the_load() {
    let text = r#"
environment_variables:
  LITELLM_MASTER_KEY: os.environ/MOUNTED_MASTER
general_settings:
  master_key: os.environ/MASTER_FROM_SECRET
  database_url: os.environ/DB_FROM_SECRET
router_settings:
  redis_host: os.environ/REDIS_FROM_SECRET
  redis_password: os.environ/REDIS_PASSWORD_FROM_SECRET
litellm_settings:
  cache_params:
    type: redis
    password: os.environ/CACHE_PASSWORD_FROM_SECRET
"#;
    let e = Config::from_yaml_str(text, Env::fixed([("UNRELATED", "sk-value-never-shown")])).unwrap_err().to_string();
    for (path, var) in [
        ("environment_variables.LITELLM_MASTER_KEY", "MOUNTED_MASTER"),
        ("general_settings.master_key", "MASTER_FROM_SECRET"),
        ("general_settings.database_url", "DB_FROM_SECRET"),
        ("router_settings.redis_host", "REDIS_FROM_SECRET"),
        ("router_settings.redis_password", "REDIS_PASSWORD_FROM_SECRET"),
        ("litellm_settings.cache_params.password", "CACHE_PASSWORD_FROM_SECRET"),
    ] {
        assert!(e.contains(&format!("{path}: environment variable {var} is not set")), "{path} in {e}");
    }

    // Set, the same config loads; the value never appears in messages.
    let vars = [
        ("MOUNTED_MASTER", "sk-a"),
        ("MASTER_FROM_SECRET", "sk-secret-master"),
        ("DB_FROM_SECRET", "postgresql://u:p@h/db"),
        ("REDIS_FROM_SECRET", "redis.internal"),
        ("REDIS_PASSWORD_FROM_SECRET", "pw"),
        ("CACHE_PASSWORD_FROM_SECRET", "pw"),
    ];
    let c = Config::from_yaml_str(text, Env::fixed(vars)).unwrap();
    assert_eq!(c.general.master_key.unwrap().expose(), "sk-secret-master");

    // Set but empty (a secret that mounted as an empty file) is no better.
    let e = Config::from_yaml_str("general_settings:\n  master_key: os.environ/M\n", Env::fixed([("M", "")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("general_settings.master_key: environment variable M is set but empty"), "{e}");
}

#[test]
fn an_empty_master_key_is_an_error_and_none_at_all_is_open_mode() {
    for text in ["general_settings:\n  master_key:\n", "general_settings:\n  master_key: \"\"\n"] {
        let e = Config::from_yaml_str(text, Env::fixed([])).unwrap_err().to_string();
        assert!(e.contains("general_settings.master_key: is empty"), "{e}");
    }
    let e = Config::from_yaml_str("model_list: []", Env::fixed([("LITELLM_MASTER_KEY", " ")])).unwrap_err();
    assert!(e.to_string().contains("LITELLM_MASTER_KEY: is set but empty"), "{e}");
    let e = Config::from_yaml_str("model_list: []", Env::fixed([("DATABASE_URL", "")])).unwrap_err();
    assert!(e.to_string().contains("DATABASE_URL: is set but empty"), "{e}");
    // The seed configs name no master key: LiteLLM's open mode, still allowed.
    let c = Config::from_yaml_str(SEED_OPENAI, Env::fixed([])).unwrap();
    assert!(c.general.master_key.is_none());
    assert!(c.refusal().is_none());
}

#[test]
fn upstream_credentials_that_are_unset_stay_warnings() {
    let c = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: os.environ/NO_SUCH_KEY}\n",
    )
    .unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("NO_SUCH_KEY")), "{:?}", c.warnings);
    assert!(c.deployments[0].api_key.is_none());
}

/// The refused lines of a config, asserting there are some.
fn refused(text: &str) -> Vec<String> {
    let c = load(text).unwrap();
    assert!(!c.refused.is_empty() && c.refusal().is_some(), "nothing refused; ignored: {:?}", c.ignored);
    c.refused
}

#[test]
fn guardrails_are_refused() {
    let r =
        refused("guardrails:\n  - guardrail_name: pii\n    litellm_params: {guardrail: presidio, mode: pre_call}\n");
    assert!(r[0].starts_with("guardrails: guardrails"), "{r:?}");
    let r = refused("litellm_settings:\n  guardrails: [{prompt_injection: {callbacks: [lakera_prompt_injection]}}]\n");
    assert!(r[0].starts_with("litellm_settings.guardrails:"), "{r:?}");
}

#[test]
fn moderation_and_custom_callbacks_are_refused_and_logging_ones_ignored() {
    let c = load(
        "litellm_settings:\n  callbacks: [\"prometheus\", \"lunary\", \"presidio\"]\n  success_callback: [\"custom_callbacks.proxy_handler_instance\"]\n",
    )
    .unwrap();
    let refused = c.refused.join("\n");
    assert!(refused.contains("litellm_settings.callbacks[2]: callback \"presidio\""), "{refused}");
    assert!(
        refused.contains("litellm_settings.success_callback[0]: callback \"custom_callbacks.proxy_handler_instance\"")
    );
    let ignored = c.ignored.join("\n");
    assert!(ignored.contains("\"lunary\""), "{ignored}");
    assert!(!ignored.contains("presidio") && !ignored.contains("custom_callbacks"), "{ignored}");
}

#[test]
fn access_restrictions_sluice_lacks_are_refused() {
    for (text, path) in [
        ("general_settings:\n  admin_only_routes: [\"/key/generate\"]\n", "general_settings.admin_only_routes"),
        ("general_settings:\n  enforced_params: [\"user\"]\n", "general_settings.enforced_params"),
        ("general_settings:\n  enable_jwt_auth: true\n", "general_settings.enable_jwt_auth"),
        ("general_settings:\n  custom_auth: custom_auth.user_api_key_auth\n", "general_settings.custom_auth"),
        ("general_settings:\n  key_management_system: google_kms\n", "general_settings.key_management_system"),
    ] {
        let r = refused(text);
        assert!(r[0].starts_with(&format!("{path}: ")), "{r:?}");
    }
}

#[test]
fn spend_and_key_limits_sluice_lacks_are_refused() {
    for (text, path) in [
        ("litellm_settings:\n  upperbound_key_generate_params: {max_budget: 100}\n", "litellm_settings.upperbound_key_generate_params"),
        ("litellm_settings:\n  default_key_generate_params: {max_budget: 1}\n", "litellm_settings.default_key_generate_params"),
        ("litellm_settings:\n  max_internal_user_budget: 10\n", "litellm_settings.max_internal_user_budget"),
        ("router_settings:\n  provider_budget_config: {openai: {budget_limit: 100, time_period: 1d}}\n", "router_settings.provider_budget_config"),
        ("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, max_budget: 5, budget_duration: 1d}\n", "model_list[0].litellm_params.budget_duration"),
    ] {
        let r = refused(text);
        assert!(r.iter().any(|l| l.starts_with(&format!("{path}: "))), "{path}: {r:?}");
    }
}

#[test]
fn routing_restrictions_sluice_lacks_are_refused_and_redis_is_configured() {
    // Tag routing is implemented: read, neither refused nor ignored.
    let c = load("router_settings:\n  enable_tag_filtering: true\n  tag_filtering_match_any: false\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/x, tags: [free, default]}\n    model_info: {access_groups: [beta]}\n").unwrap();
    assert!(c.refused.is_empty() && c.ignored.is_empty(), "{:?} {:?}", c.refused, c.ignored);
    assert!(c.router.routing.enable_tag_filtering && !c.router.routing.tag_filtering_match_any);
    assert_eq!(c.deployments[0].tags, ["free", "default"]);
    assert_eq!(c.deployments[0].access_groups, ["beta"]);
    // Shared through Redis now: configured, not refused.
    let c = load("router_settings:\n  redis_host: redis\n  redis_port: 6379\n").unwrap();
    assert!(c.refused.is_empty(), "{:?}", c.refused);
    assert_eq!(c.redis.unwrap().url, "redis://redis:6379");
    let r = refused("router_settings:\n  optional_pre_call_checks: [\"prompt_caching\", \"router_budget_limiting\"]\n");
    assert!(r[0].starts_with("router_settings.optional_pre_call_checks:"), "{r:?}");
    let c = load("router_settings:\n  optional_pre_call_checks: [\"prompt_caching\"]\n").unwrap();
    assert!(c.refused.is_empty(), "only some options limit anything: {:?}", c.refused);
    let e = load("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, tags: free}\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("model_list[0].litellm_params.tags: "), "{e}");
}

#[test]
fn harmless_settings_stay_ignored() {
    let c = load("general_settings:\n  alerting_threshold: 300\n  ui_access_mode: admin_only\n  public_routes: [\"/spend/calculate\"]\nlitellm_settings:\n  turn_off_message_logging: true\n  redact_messages_in_exceptions: true\n  cache: true\nrouter_settings:\n  cache_responses: true\n").unwrap();
    assert!(c.refused.is_empty(), "{:?}", c.refused);
    // `turn_off_message_logging` is read (the logging callbacks' content), and `cache` (a
    // Redis cache, the proxy's default, that names no Redis: a warning), the rest ignored.
    assert_eq!(c.ignored.len(), 4, "{:?}", c.ignored);
    assert!(c.warnings.iter().any(|w| w.contains("answers are not cached")), "{:?}", c.warnings);
    assert!(c.litellm.turn_off_message_logging);
    // Read too: the callbacks' records and spans carry no exception message.
    assert!(c.litellm.redact_messages_in_exceptions);
}

#[test]
fn misspelled_keys_get_a_suggestion_and_misspelled_guards_are_refused() {
    let c = load(
        "router_settings:\n  routing_stratgy: least-busy\ngeneral_settings:\n  alertng: [slack]\n  maser_key: sk-1234\nrouter_setings:\n  num_retries: 1\n",
    )
    .unwrap();
    let ignored = c.ignored.join("\n");
    assert!(
        ignored.contains("router_settings.routing_stratgy: unknown setting (did you mean routing_strategy?)"),
        "{ignored}"
    );
    assert!(ignored.contains("general_settings.alertng: unknown setting (did you mean alerting?)"), "{ignored}");
    let refused = c.refused.join("\n");
    assert!(refused.contains("general_settings.maser_key: unknown setting (did you mean master_key?)"), "{refused}");
    assert!(!refused.contains("sk-1234"), "values are not echoed");
    // A misspelled section header would drop a whole section of restrictions.
    let c = load("general_setings:\n  master_key: sk-1234\n").unwrap();
    assert!(
        c.refused[0].starts_with("general_setings: unknown setting (did you mean general_settings?)"),
        "{:?}",
        c.refused
    );
    let c = load("router_setings:\n  num_retries: 1\n").unwrap();
    assert!(
        c.refused[0].starts_with("router_setings: unknown setting (did you mean router_settings?)"),
        "{:?}",
        c.refused
    );
}

#[test]
fn allowlists_and_user_param_are_read() {
    let c = load(
        "general_settings:\n  allowed_routes: [\"/chat/completions\", \"/v1/models\"]\n  allowed_ips: [\"10.0.0.5\", \"192.168.0.0/16\"]\n  use_x_forwarded_for: true\n  enforce_user_param: true\n",
    )
    .unwrap();
    let g = &c.general;
    assert_eq!(g.allowed_routes.as_deref(), Some(&["/chat/completions".to_string(), "/v1/models".to_string()][..]));
    assert_eq!(g.allowed_ips.as_ref().map(Vec::len), Some(2));
    assert!(g.use_x_forwarded_for && g.enforce_user_param);
    assert!(c.ignored.is_empty() && c.refused.is_empty(), "{:?} {:?}", c.ignored, c.refused);
    for (text, expected) in [
        (
            "general_settings:\n  allowed_ips: [\"localhost\"]\n",
            "general_settings.allowed_ips[0]: \"localhost\" is not an IP address",
        ),
        ("general_settings:\n  allowed_ips: \"10.0.0.1\"\n", "general_settings.allowed_ips: expected a list"),
        (
            "general_settings:\n  allowed_routes: [\"openai_routes\"]\n",
            "general_settings.allowed_routes[0]: \"openai_routes\" is not a route path",
        ),
    ] {
        let e = load(text).unwrap_err().to_string();
        assert!(e.starts_with(expected), "got {e:?}, expected {expected:?}");
    }
}

#[test]
fn deployments_sluice_cannot_serve_load_and_say_why() {
    let c = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: vertexai/gemini}\n  - model_name: b\n    litellm_params: {model: azure/}\n  - model_name: c\n    litellm_params: {model: my-own-model}\n  - model_name: d\n    litellm_params: {model: openai/x}\n",
    )
    .unwrap();
    let why: Vec<_> = c.deployments.iter().map(|d| d.unusable.clone()).collect();
    assert!(why[0].as_deref().unwrap().starts_with(
        "model_list[0].litellm_params.model: unknown provider \"vertexai\" (did you mean \"vertex_ai\"?). Deployment model_list[0] of model group \"a\""
    ));
    assert!(why[1].as_deref().unwrap().contains("names the provider but no model"), "{why:?}");
    assert!(why[2].as_deref().unwrap().contains("cannot tell which provider serves \"my-own-model\""), "{why:?}");
    assert_eq!(why[3], None);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
}

/// LiteLLM-style configs as its users write them, in `examples/litellm/`.
const LITELLM_EXAMPLES: &[(&str, &str)] = &[
    ("azure-openai.yaml", include_str!("../../../../examples/litellm/azure-openai.yaml")),
    ("multi-provider.yaml", include_str!("../../../../examples/litellm/multi-provider.yaml")),
    ("production.yaml", include_str!("../../../../examples/litellm/production.yaml")),
];

fn example_env() -> Env {
    Env::fixed([
        ("LITELLM_MASTER_KEY", "sk-example"),
        ("DATABASE_URL", "postgresql://u:p@db/litellm"),
        ("REDIS_HOST", "redis"),
        ("REDIS_PASSWORD", "pw"),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x"),
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-example"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-example"),
    ])
}

#[test]
fn litellm_example_configs_load() {
    for (name, text) in LITELLM_EXAMPLES {
        let c = Config::from_yaml_str(text, example_env()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!c.deployments.is_empty(), "{name}");
        let refused = c.refused.join("\n");
        match *name {
            "azure-openai.yaml" => {
                assert!(c.refused.is_empty(), "{name}: {refused}");
                assert!(
                    c.deployments.iter().any(|d| d.unusable.is_some()),
                    "{name}: the azure/ entry without a deployment name"
                );
            }
            "multi-provider.yaml" => {
                assert!(c.refused.is_empty(), "{name}: {refused}");
                let langfuse = c.langfuse.as_ref().expect("the example logs to Langfuse");
                assert_eq!(langfuse.host.as_deref(), Some("https://cloud.langfuse.com"), "{name}");
                assert_eq!(langfuse.events, sluice_export::Events { success: true, failure: true }, "{name}");
            }
            _ => {
                for needle in ["guardrails", "litellm_settings.max_internal_user_budget"] {
                    assert!(refused.contains(needle), "{name}: {needle} missing from {refused}");
                }
                assert!(!refused.contains("redis"), "{name}: Redis is shared, not refused: {refused}");
                assert_eq!(c.redis.as_ref().map(|r| r.url.as_str()), Some("redis://:pw@redis:6379"), "{name}");
            }
        }
    }
}

#[test]
fn numbers_out_of_range_name_their_path() {
    let model =
        |params: &str| format!("model_list:\n  - model_name: a\n    litellm_params: {{model: openai/x, {params}}}\n");
    let cases = [
        (model("timeout: 1e30"), "model_list[0].litellm_params.timeout: must be a positive number of seconds, at most"),
        (model("stream_timeout: .inf"), "model_list[0].litellm_params.stream_timeout: expected a finite number"),
        (model("timeout: \"NaN\""), "model_list[0].litellm_params.timeout: expected a finite number"),
        (model("cooldown_time: 1e300"), "model_list[0].litellm_params.cooldown_time: must be a number from 0 to"),
        (model("rpm: -5"), "model_list[0].litellm_params.rpm: must be a number from 0 to"),
        (model("tpm: 1e20"), "model_list[0].litellm_params.tpm: must be a number from 0 to"),
        (
            model("input_cost_per_token: -1"),
            "model_list[0].litellm_params.input_cost_per_token: must be a number from 0",
        ),
        (
            "general_settings:\n  max_request_size_mb: 1e30\n".into(),
            "general_settings.max_request_size_mb: must be a positive number of megabytes, at most 4096",
        ),
        (
            "general_settings:\n  proxy_batch_write_at: 1e30\n".into(),
            "general_settings.proxy_batch_write_at: must be a positive number of seconds",
        ),
        (
            "general_settings:\n  database_connection_pool_limit: 1e12\n".into(),
            "general_settings.database_connection_pool_limit: must be a whole number from 1",
        ),
        (
            "router_settings:\n  cooldown_time: 1e30\n".into(),
            "router_settings.cooldown_time: expected a number of seconds from 0 to",
        ),
        ("router_settings:\n  retry_after: .nan\n".into(), "router_settings.retry_after: expected a finite number"),
        (
            "router_settings:\n  num_retries: 1e10\n".into(),
            "router_settings.num_retries: expected a whole number from 0 to",
        ),
        (
            "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {ttl: 1e300}\n"
                .into(),
            "router_settings.routing_strategy_args.ttl: expected a number of seconds",
        ),
        (
            "sluice_settings:\n  client_read_buffer_kb: 1e9\n".into(),
            "sluice_settings.client_read_buffer_kb: must be a positive number of KiB, at most 1024",
        ),
        (
            "sluice_settings:\n  client_header_timeout: 1e30\n".into(),
            "sluice_settings.client_header_timeout: must be a positive number of seconds",
        ),
    ];
    for (text, expected) in cases {
        let e = load(&text).unwrap_err().to_string();
        assert!(e.starts_with(expected), "got {e:?}, expected prefix {expected:?}");
    }
}

/// Every numeric setting, and where it sits in the YAML.
const NUMERIC_SETTINGS: &[&str] = &[
    "model_list.litellm_params.timeout",
    "model_list.litellm_params.stream_timeout",
    "model_list.litellm_params.rpm",
    "model_list.litellm_params.tpm",
    "model_list.litellm_params.weight",
    "model_list.litellm_params.order",
    "model_list.litellm_params.max_parallel_requests",
    "model_list.litellm_params.cooldown_time",
    "model_list.litellm_params.input_cost_per_token",
    "model_list.litellm_params.output_cost_per_token",
    "model_list.model_info.max_input_tokens",
    "general_settings.max_request_size_mb",
    "general_settings.database_connection_pool_limit",
    "general_settings.proxy_batch_write_at",
    "general_settings.user_api_key_cache_ttl",
    "router_settings.timeout",
    "router_settings.stream_timeout",
    "router_settings.num_retries",
    "router_settings.retry_after",
    "router_settings.cooldown_time",
    "router_settings.allowed_fails",
    "router_settings.max_fallbacks",
    "router_settings.default_max_parallel_requests",
    "router_settings.routing_strategy_args.ttl",
    "router_settings.routing_strategy_args.max_latency_list_size",
    "router_settings.routing_strategy_args.lowest_latency_buffer",
    "litellm_settings.request_timeout",
    "litellm_settings.num_retries",
    "litellm_settings.allowed_fails",
    "litellm_settings.max_end_user_budget",
    "sluice_settings.client_header_timeout",
    "sluice_settings.client_body_timeout",
    "sluice_settings.upstream_connect_timeout",
    "sluice_settings.client_read_buffer_kb",
];

/// A config setting `setting` to `value` (written as YAML, plain or quoted).
fn config_with(setting: &str, value: &str, quoted: bool) -> String {
    let value = if quoted { format!("'{}'", value.replace('\'', "''")) } else { value.to_string() };
    let parts: Vec<&str> = setting.split('.').collect();
    match parts.as_slice() {
        ["model_list", section, key] => format!(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      api_base: http://127.0.0.1:9/\n{}",
            if *section == "model_info" {
                format!("    model_info:\n      {key}: {value}\n")
            } else {
                format!("      {key}: {value}\n")
            }
        ),
        ["router_settings", "routing_strategy_args", key] => {
            format!("router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args:\n    {key}: {value}\n")
        }
        [section, key] => format!("{section}:\n  {key}: {value}\n"),
        _ => unreachable!("{setting}"),
    }
}

proptest::proptest! {
    /// Whatever number a setting is given, the config either names the path in an error, or
    /// loads and builds a gateway whose durations, sizes and counts are all in range; never a
    /// panic.
    #[test]
    fn any_number_in_any_setting_is_refused_or_bounded(
        setting in proptest::sample::select(NUMERIC_SETTINGS),
        value in crate::test_numbers::text(),
        quoted in proptest::bool::ANY,
    ) {
        let text = config_with(setting, &value, quoted);
        let key = setting.rsplit('.').next().unwrap();
        match load(&text) {
            Err(e) => proptest::prop_assert!(e.to_string().contains(key) || e.to_string().contains("YAML"), "{e}"),
            Ok(config) => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let _inside = rt.enter();
                let app = crate::App::with_env(&config, &Env::fixed([])).unwrap();
                proptest::prop_assert!(app.client_body_timeout.as_secs_f64() <= MAX_SECONDS);
                proptest::prop_assert!(app.max_request_bytes <= 4096 * 1024 * 1024);
                for d in &config.deployments {
                    for x in [d.timeout, d.stream_timeout, d.cooldown_time].into_iter().flatten() {
                        proptest::prop_assert!((0.0..=MAX_SECONDS).contains(&x));
                    }
                }
            }
        }
    }
}

#[test]
fn proxy_wide_budget_and_in_flight_caps_are_read_and_bounded() {
    let c = load(
        "litellm_settings:\n  max_budget: 12.5\n  budget_duration: 30d\n  max_parallel_requests: 40\ngeneral_settings:\n  global_max_parallel_requests: 50\n  max_parallel_requests: 7\n",
    )
    .unwrap();
    assert_eq!(c.litellm.max_budget, Some(12.5));
    assert_eq!(c.litellm.budget_duration.as_deref(), Some("30d"));
    assert_eq!((c.litellm.max_parallel_requests, c.general.global_max_parallel_requests), (Some(40), Some(50)));
    assert_eq!(c.router.routing.default_max_parallel_requests, Some(7), "the default per-deployment cap");
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
    // LiteLLM's 0 means no proxy-wide budget.
    assert_eq!(load("litellm_settings:\n  max_budget: 0\n").unwrap().litellm.max_budget, None);
    for (bad, path) in [
        ("litellm_settings:\n  max_budget: -1\n", "litellm_settings.max_budget"),
        ("litellm_settings:\n  max_budget: .inf\n", "litellm_settings.max_budget"),
        ("litellm_settings:\n  budget_duration: soon\n", "litellm_settings.budget_duration"),
        ("litellm_settings:\n  max_parallel_requests: 0\n", "litellm_settings.max_parallel_requests"),
        ("general_settings:\n  global_max_parallel_requests: 1e30\n", "general_settings.global_max_parallel_requests"),
        ("general_settings:\n  max_parallel_requests: 2.5\n", "general_settings.max_parallel_requests"),
    ] {
        let e = load(bad).unwrap_err();
        assert!(e.to_string().starts_with(path), "{bad}: {e}");
    }
}

#[test]
fn retry_budget_is_read_and_bounded() {
    let c = load("sluice_settings:\n  retry_budget_percent: 5\n  retry_budget_min_per_second: 0\n").unwrap();
    assert_eq!(c.router.routing.retry_budget, sluice_router::RetryBudgetSettings { ratio: 0.05, min_per_second: 0.0 });
    assert_eq!(load("{}").unwrap().router.routing.retry_budget, sluice_router::RetryBudgetSettings::default());
    for bad in ["retry_budget_percent: -1", "retry_budget_percent: 1e9", "retry_budget_min_per_second: .nan"] {
        let e = load(&format!("sluice_settings:\n  {bad}\n")).unwrap_err().to_string();
        assert!(e.contains("must be a number from 0 to") || e.contains("expected a finite number"), "{bad}: {e}");
    }
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

/// Where Redis is, each way LiteLLM users write it (`config::redis`).
mod redis {
    use super::*;

    fn with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_yaml_str(text, Env::fixed(vars.iter().copied()))
    }

    fn url(text: &str, vars: &[(&str, &str)]) -> Option<String> {
        with(text, vars).unwrap().redis.map(|r| r.url)
    }

    #[test]
    fn router_settings_redis_url_wins() {
        let text = "router_settings:\n  redis_url: redis://:pw@cache.internal:6380/1\n  redis_host: other\nlitellm_settings:\n  cache: true\n  cache_params: {type: redis, host: third, supported_call_types: []}\n";
        let c = with(text, &[]).unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.url, "redis://:pw@cache.internal:6380/1");
        assert_eq!(r.prefix, "sluice:");
        assert!(c.refused.is_empty(), "{:?}", c.refused);
        assert!(
            c.warnings.iter().any(|w| w.starts_with("litellm_settings.cache_params: names another Redis")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn router_settings_host_port_password_and_db() {
        let text = "router_settings:\n  redis_host: os.environ/RH\n  redis_port: \"6380\"\n  redis_password: os.environ/RP\n  redis_db: 2\n";
        assert_eq!(
            url(text, &[("RH", "redis.internal"), ("RP", "p@ss:w/rd")]).unwrap(),
            "redis://:p%40ss%3Aw%2Frd@redis.internal:6380/2"
        );
        // What the config leaves out comes from LiteLLM's variables, else the default port.
        let host_only = "router_settings:\n  redis_host: redis.internal\n";
        assert_eq!(url(host_only, &[]).unwrap(), "redis://redis.internal:6379");
        assert_eq!(
            url(host_only, &[("REDIS_PORT", "7000"), ("REDIS_PASSWORD", "pw"), ("REDIS_USERNAME", "gw")]).unwrap(),
            "redis://gw:pw@redis.internal:7000"
        );
        assert_eq!(
            url("router_settings:\n  redis_host: \"::1\"\n  redis_port: 6379\n", &[]).unwrap(),
            "redis://[::1]:6379"
        );
        let c = with("router_settings:\n  redis_port: 6379\n", &[("REDIS_HOST", "redis")]).unwrap();
        assert!(c.redis.is_none());
        assert!(
            c.warnings.iter().any(|w| w.starts_with("router_settings.redis_port: has no effect without")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn cache_params_share_limits_with_or_without_caching_answers() {
        let limits_only = "litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    host: redis.internal\n    port: 6381\n    password: os.environ/CP\n    supported_call_types: []\n";
        let c = with(limits_only, &[("CP", "pw")]).unwrap();
        assert_eq!(c.redis.unwrap().url, "redis://:pw@redis.internal:6381");
        assert!(!c.ignored.iter().any(|l| l.contains("cach")), "{:?}", c.ignored);
        assert!(c.refused.is_empty(), "{:?}", c.refused);

        assert!(c.cache.is_none(), "`[]`: no answers cached");

        // LiteLLM's default caches answers, in the same Redis that shares the limits.
        let answers = "litellm_settings:\n  cache: true\n  cache_params: {type: redis, host: redis.internal, ttl: 600, namespace: gw}\n";
        let c = with(answers, &[]).unwrap();
        assert_eq!(c.redis.unwrap().url, "redis://redis.internal:6379");
        assert!(c.ignored.is_empty(), "{:?}", c.ignored);
        let s = c.cache.unwrap().settings;
        assert_eq!(
            (s.backend, s.ttl, s.namespace.as_deref()),
            (sluice_cache::Backend::Redis, Some(std::time::Duration::from_secs(600)), Some("gw"))
        );
    }

    #[test]
    fn cache_params_default_to_the_redis_variables() {
        // The proxy's default cache type is Redis; the address comes from the variables.
        let bare = "litellm_settings:\n  cache: true\n  cache_params: {supported_call_types: []}\n";
        assert_eq!(
            url(bare, &[("REDIS_HOST", "redis"), ("REDIS_PORT", "6390"), ("REDIS_PASSWORD", "pw")]).unwrap(),
            "redis://:pw@redis:6390"
        );
        assert_eq!(
            url(bare, &[("REDIS_URL", "redis://u:pw@from-url:6379/3"), ("REDIS_HOST", "redis")]).unwrap(),
            "redis://u:pw@from-url:6379/3"
        );
        assert_eq!(
            url("litellm_settings:\n  cache: true\n", &[("REDIS_HOST", "redis")]).unwrap(),
            "redis://redis:6379"
        );
        // The config's own host wins over the variables.
        let own =
            "litellm_settings:\n  cache: true\n  cache_params: {type: redis, host: mine, supported_call_types: []}\n";
        assert_eq!(url(own, &[("REDIS_URL", "redis://env:6379"), ("REDIS_HOST", "env")]).unwrap(), "redis://mine:6379");
        // Named nowhere: a bare `cache: true` warns; an explicit `type: redis` is an error.
        let c = with("litellm_settings:\n  cache: true\n", &[]).unwrap();
        assert!(c.redis.is_none());
        assert!(c.warnings.iter().any(|w| w.contains("nothing is shared through Redis")), "{:?}", c.warnings);
        let e = with("litellm_settings:\n  cache: true\n  cache_params: {type: redis}\n", &[]).unwrap_err().to_string();
        assert!(e.contains("litellm_settings.cache_params: type: redis names no Redis: set cache_params.host"), "{e}");
    }

    #[test]
    fn the_variables_alone_share_nothing() {
        let vars = [
            ("REDIS_HOST", "redis"),
            ("REDIS_PORT", "6379"),
            ("REDIS_PASSWORD", "pw"),
            ("REDIS_URL", "redis://redis:6379"),
        ];
        assert_eq!(url(SEED_OPENAI, &vars), None);
        // Nor a cache that is off, or not Redis.
        assert_eq!(url("litellm_settings:\n  cache: false\n  cache_params: {type: redis, host: redis}\n", &vars), None);
        let c = with("litellm_settings:\n  cache: true\n  cache_params: {type: local}\n", &vars).unwrap();
        assert_eq!(c.redis, None);
        assert_eq!(c.cache.unwrap().settings.backend, sluice_cache::Backend::Local);
    }

    #[test]
    fn cache_params_are_read_bounded_and_checked() {
        let c = with(
            "litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n    mode: default_off\n    default_in_memory_ttl: 30\n    max_size_in_memory: 50\n    supported_call_types: [acompletion, aembedding, transcription]\n    s3_bucket_name: b\n",
            &[],
        )
        .unwrap();
        let s = c.cache.unwrap().settings;
        assert!(!s.default_on);
        assert_eq!((s.in_memory_ttl, s.max_entries), (Some(std::time::Duration::from_secs(30)), 50));
        assert_eq!(s.shapes, vec![sluice_cache::Shape::Chat, sluice_cache::Shape::Embedding]);
        for line in [
            "supported_call_types[2]: transcription: sluice does not cache",
            "cache_params.s3_bucket_name: not implemented",
        ] {
            assert!(c.ignored.iter().any(|l| l.contains(line)), "{line}: {:?}", c.ignored);
        }
        // A store sluice has not: listed, and nothing cached.
        let c = with("litellm_settings:\n  cache: true\n  cache_params: {type: s3, s3_bucket_name: b}\n", &[]).unwrap();
        assert!(c.cache.is_none() && c.ignored.iter().any(|l| l.contains("type: s3")), "{:?}", c.ignored);
        for (bad, says) in [
            ("mode: sometimes", "expected default_on"),
            ("ttl: -1", "expected seconds above 0"),
            ("ttl: .inf", "finite"),
            ("supported_call_types: [chat]", "is not a call type"),
            ("max_size_in_memory: 0", "expected a count"),
            ("type: redis-semantic", "similarity_threshold"),
            ("{type: redis-semantic, similarity_threshold: 2}", "from 0 to 1"),
        ] {
            let text = if bad.starts_with('{') {
                format!("litellm_settings:\n  cache: true\n  cache_params: {bad}\n")
            } else {
                format!("litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n    {bad}\n")
            };
            let text = text.replace("type: local\n    type: redis-semantic", "type: redis-semantic");
            let e = with(&text, &[("REDIS_HOST", "r")]).unwrap_err().to_string();
            assert!(e.contains("litellm_settings.cache_params") && e.contains(says), "{bad}: {e}");
        }
        // The semantic cache's embedding model must be one the config serves.
        let e = with(
            "litellm_settings:\n  cache: true\n  cache_params: {type: redis-semantic, host: r, similarity_threshold: 0.8, redis_semantic_cache_embedding_model: nope}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"nope\" is not a model_name in model_list"), "{e}");
    }

    #[test]
    fn the_key_prefix_is_sluices_own_setting() {
        let text = "router_settings:\n  redis_host: redis\nsluice_settings:\n  redis_key_prefix: \"gw-eu:\"\n";
        assert_eq!(with(text, &[]).unwrap().redis.unwrap().prefix, "gw-eu:");
    }

    #[test]
    fn cluster_sentinel_and_tls_stop_the_start_with_what_to_do() {
        /// A config, the variables set, and what its error says.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    redis_startup_nodes: [{host: a, port: 7000}]\n",
                &[],
                "litellm_settings.cache_params.redis_startup_nodes: Redis Cluster is not supported by sluice: point it at one Redis server",
            ),
            (
                "litellm_settings:\n  cache: true\n  cache_params: {type: redis, host: redis}\n",
                &[("REDIS_CLUSTER_NODES", "[{\"host\": \"a\", \"port\": 7000}]")],
                "REDIS_CLUSTER_NODES: is set, and LiteLLM's Redis cache would use it. Redis Cluster is not supported",
            ),
            (
                "litellm_settings:\n  cache: true\n  cache_params: {type: redis, service_name: mymaster, sentinel_nodes: [[\"s1\", 26379]]}\n",
                &[],
                "litellm_settings.cache_params.service_name: Redis Sentinel is not supported by sluice",
            ),
            (
                "router_settings:\n  redis_url: rediss://:s3cret-pw@redis:6380\n",
                &[],
                "router_settings.redis_url: TLS to Redis (rediss://) is not supported",
            ),
            (
                "router_settings:\n  redis_url: http://:s3cret-pw@redis:6380\n",
                &[],
                "router_settings.redis_url: is not a Redis URL sluice can use; expected redis://",
            ),
            (
                "router_settings:\n  redis_host: redis\n  redis_password: s3cret-pw\n  redis_port: six\n",
                &[],
                "router_settings.redis_port: expected a port number from 1 to 65535, got \"six\"",
            ),
            (
                "litellm_settings:\n  cache: true\n  cache_params: {supported_call_types: []}\n",
                &[("REDIS_URL", "redis//:s3cret-pw@redis"), ("REDIS_PASSWORD", "s3cret-pw")],
                "REDIS_URL: is not a Redis URL sluice can use",
            ),
        ];
        for (text, vars, expected) in cases {
            let e = with(text, vars).unwrap_err().to_string();
            assert!(e.contains(expected), "{expected}\n  in {e}");
            assert!(!e.contains("s3cret-pw"), "the password is never shown: {e}");
        }
    }

    #[test]
    fn a_loaded_config_never_shows_the_password() {
        let c = with("router_settings:\n  redis_host: redis\n  redis_password: s3cret-pw\n", &[]).unwrap();
        assert_eq!(c.redis.as_ref().unwrap().url, "redis://:s3cret-pw@redis:6379");
        assert!(!format!("{c:?}").contains("s3cret-pw"));
        assert!(!c.warnings.iter().chain(&c.ignored).any(|l| l.contains("s3cret-pw")));
    }
}

#[test]
fn unit_prices_of_images_and_speech_are_the_deployments_own() {
    let c = load(
        r#"
model_list:
  - model_name: images
    litellm_params: {model: openai/dall-e-3, output_cost_per_image: 0.04}
    model_info: {input_cost_per_pixel: 0.0000001}
  - model_name: tts
    litellm_params: {model: openai/gpt-4o, input_cost_per_character: 0.000015}
  - model_name: whisper
    litellm_params: {model: openai/whisper-1, input_cost_per_second: 0.0001}
  - model_name: huge
    litellm_params: {model: openai/dall-e-3, output_cost_per_image: 1e9}
"#,
    );
    // A price past the bound is refused at load, naming the key.
    let e = c.unwrap_err().to_string();
    assert!(e.contains("output_cost_per_image"), "{e}");
    let c = load(
        r#"
model_list:
  - model_name: images
    litellm_params: {model: openai/dall-e-3, output_cost_per_image: 0.04}
    model_info: {input_cost_per_pixel: 0.0000001}
  - model_name: tts
    litellm_params: {model: openai/gpt-4o, input_cost_per_character: 0.000015}
"#,
    )
    .unwrap();
    let d = |name: &str| c.deployments.iter().find(|d| d.model_name == name).unwrap();
    let images = d("images").price().unwrap().units;
    assert_eq!((images.output_per_image, images.input_per_pixel), (0.04, 0.0000001));
    let tts = d("tts").price().unwrap();
    // The unit price comes on top of the map's token prices.
    assert_eq!(tts.units.input_per_character, 0.000015);
    assert_eq!(tts.input_per_token, sluice_providers::pricing::lookup("openai", "gpt-4o").unwrap().input_per_token);
    assert!(d("images").unpriced().is_none());
}

#[test]
fn rerank_search_units_are_priced_by_the_map_or_the_deployment() {
    let c = load(
        r#"
model_list:
  - model_name: mapped
    litellm_params: {model: cohere/rerank-v3.5, api_key: k}
  - model_name: own
    litellm_params: {model: cohere/rerank-v3.5, api_key: k, input_cost_per_query: 0.01}
  - model_name: info
    litellm_params: {model: openai/my-reranker, api_base: "http://x/v1", api_key: k}
    model_info: {input_cost_per_query: 0.003}
"#,
    )
    .unwrap();
    let d = |name: &str| c.deployments.iter().find(|d| d.model_name == name).unwrap();
    // LiteLLM's map bills Cohere's rerank-v3.5 at $0.002 a search unit.
    assert_eq!(d("mapped").price().unwrap().units.input_per_query, 0.002);
    assert_eq!(d("own").price().unwrap().units.input_per_query, 0.01);
    let info = d("info").price().unwrap();
    assert_eq!(info.units.input_per_query, 0.003);
    assert_eq!(info.units.queries(2), 0.006);
    assert_eq!(info.units.queries(u64::MAX), 0.003 * sluice_providers::pricing::MAX_SEARCH_UNITS as f64);
    assert!(d("info").unpriced().is_none());
    let e = load(
        "model_list:\n  - model_name: m\n    litellm_params: {model: cohere/rerank-v3.5, input_cost_per_query: 1e9}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("input_cost_per_query"), "{e}");
}

#[test]
fn prices_come_from_the_deployment_then_the_map_and_the_rest_are_named() {
    let c = load(
        r#"
model_list:
  - model_name: mapped
    litellm_params: {model: openai/gpt-4o}
  - model_name: own
    litellm_params: {model: openai/gpt-4o, input_cost_per_token: 0.5}
    model_info: {cache_read_input_token_cost: 0.25}
  - model_name: timed
    litellm_params: {model: openai/my-endpoint, input_cost_per_second: 0.01}
  - model_name: mine
    litellm_params: {model: openai/my-finetune}
  - model_name: mocked
    litellm_params: {model: openai/my-finetune, mock_response: hi}
  - model_name: every
    litellm_params: {model: "openai/*"}
"#,
    )
    .unwrap();
    let d = |name: &str| c.deployments.iter().find(|d| d.model_name == name).unwrap();
    assert_eq!(d("mapped").price(), sluice_providers::pricing::lookup("openai", "gpt-4o"));
    let own = d("own").price().unwrap();
    // Its own prices win field by field; what it does not set is the map's (gpt-4o's output).
    assert_eq!((own.input_per_token, own.output_per_token, own.cache_read_per_token), (0.5, 1e-5, Some(0.25)));
    let timed = d("timed").price().unwrap();
    assert!(timed.per_second() && timed.input_per_second == 0.01);
    assert_eq!(d("mine").price(), None);
    let named: Vec<&str> =
        c.deployments.iter().filter(|d| d.unpriced().is_some()).map(|d| d.model_name.as_str()).collect();
    // A mock_response answers without a provider; a wildcard is priced per model it is called with.
    assert_eq!(named, ["mine"]);
    let why = d("mine").unpriced().unwrap();
    assert!(why.contains("openai/my-finetune") && why.contains("input_cost_per_token"), "{why}");
}

#[test]
fn batch_prices_come_from_the_deployment_then_the_map() {
    let c = load(
        r#"
model_list:
  - model_name: mapped
    litellm_params: {model: openai/gpt-4o}
  - model_name: own
    litellm_params: {model: openai/gpt-4o, input_cost_per_token_batches: 0.3}
    model_info: {output_cost_per_token_batches: 0.7}
  - model_name: custom
    litellm_params: {model: openai/my-finetune, input_cost_per_token: 0.002, output_cost_per_token: 0.004}
"#,
    )
    .unwrap();
    let d = |name: &str| c.deployments.iter().find(|d| d.model_name == name).unwrap().price().unwrap();
    assert_eq!(
        (d("mapped").input_per_token_batches, d("mapped").output_per_token_batches),
        (Some(1.25e-6), Some(5e-6))
    );
    assert_eq!((d("own").input_per_token_batches, d("own").output_per_token_batches), (Some(0.3), Some(0.7)));
    // Its token prices stay the map's: only the batch prices are its own.
    assert_eq!(d("own").input_per_token, 2.5e-6);
    assert_eq!((d("custom").input_per_token_batches, d("custom").output_per_token_batches), (None, None));
    assert!(c.ignored.iter().all(|l| !l.contains("cost_per_token_batches")), "{:?}", c.ignored);
}

/// `generic_api` takes what its lists say (LiteLLM: `success_callback` successes,
/// `failure_callback` failures, `callbacks` both), finds its collector under
/// `environment_variables` as in the environment, and is not listed as ignored.
#[test]
fn generic_api_takes_the_outcomes_its_lists_name() {
    let with_env = |litellm: &str| {
        format!("environment_variables:\n  GENERIC_LOGGER_ENDPOINT: http://127.0.0.1:9/ingest\n  GENERIC_LOGGER_HEADERS: \"authorization=Bearer abc\"\nlitellm_settings:\n{litellm}")
    };
    let events = |litellm: &str| load(&with_env(litellm)).unwrap().generic_api.map(|g| g.events);
    let both = sluice_export::Events { success: true, failure: true };
    assert_eq!(
        events("  success_callback: [generic_api]\n"),
        Some(sluice_export::Events { success: true, failure: false })
    );
    assert_eq!(
        events("  failure_callback: [generic_api]\n"),
        Some(sluice_export::Events { success: false, failure: true })
    );
    assert_eq!(events("  success_callback: [generic_api]\n  failure_callback: [generic_api]\n"), Some(both));
    assert_eq!(events("  callbacks: [prometheus, generic_api]\n"), Some(both));
    assert_eq!(events("  callbacks: [prometheus]\n"), None);
    let c = load(&with_env("  success_callback: [generic_api]\n")).unwrap();
    assert!(!c.ignored.join("\n").contains("generic_api"), "{:?}", c.ignored);
    assert!(!format!("{c:?}").contains("Bearer abc"), "the headers' values are not in Debug");
    assert_eq!(c.generic_api.unwrap().endpoint, "http://127.0.0.1:9/ingest");
}

/// `callback_settings` names webhooks (LiteLLM's named `generic_api` callbacks): a list naming one
/// runs it with its own endpoint, headers, outcomes and format; other types are listed as ignored.
#[test]
fn callback_settings_names_generic_api_webhooks() {
    let text = "litellm_settings:\n  success_callback: [audit]\n  callbacks: [lines, prometheus]\n  failure_callback: [unused_type]\ncallback_settings:\n  audit:\n    callback_type: generic_api\n    endpoint: http://127.0.0.1:9/audit\n    headers:\n      Authorization: Bearer os.environ/MASTER\n    event_types: [llm_api_success, llm_api_failure]\n  lines:\n    callback_type: generic_api\n    endpoint: http://127.0.0.1:9/lines\n    event_types: [llm_api_failure]\n    log_format: ndjson\n    batch_size: 5\n  unused_type:\n    callback_type: sqs\n";
    let c = load(text).unwrap();
    let hooks: Vec<_> = c.named_generic_apis.iter().map(|h| (h.name.as_str(), h.events, h.format)).collect();
    use sluice_export::{generic_api::LogFormat, Events};
    assert_eq!(
        hooks,
        [
            // Its list gives it successes only, whatever its event_types allow.
            ("audit", Events { success: true, failure: false }, LogFormat::JsonArray),
            ("lines", Events { success: false, failure: true }, LogFormat::Ndjson),
        ]
    );
    assert_eq!(c.named_generic_apis[0].headers[0].1.expose(), "Bearer sk-master");
    assert!(!format!("{c:?}").contains("sk-master"), "header values stay out of Debug");
    let ignored = c.ignored.join("\n");
    assert!(ignored.contains("callback_settings.lines.batch_size"), "{ignored}");
    assert!(ignored.contains("callback_settings.unused_type.callback_type: \"sqs\""), "{ignored}");
    assert!(ignored.contains("callback \"unused_type\" is not implemented"), "{ignored}");
    assert!(!ignored.contains("callback \"audit\"") && !ignored.contains("callback_settings: not"), "{ignored}");

    let e = load("litellm_settings:\n  callbacks: [h]\ncallback_settings:\n  h:\n    callback_type: generic_api\n    endpoint: http://x/\n    event_types: [llm_api_sucess]\n").unwrap_err().to_string();
    assert!(e.contains("callback_settings.h.event_types[0]") && e.contains("llm_api_success"), "{e}");
    let e = load("litellm_settings:\n  callbacks: [h]\ncallback_settings:\n  h:\n    callback_type: generic_api\n    endpoint: http://x/\n    log_format: xml\n").unwrap_err().to_string();
    assert!(e.contains("callback_settings.h.log_format"), "{e}");
}

/// A `generic_api` with nowhere to send stops the start, saying what to set.
#[test]
fn generic_api_without_an_endpoint_stops_the_start() {
    let e = load("litellm_settings:\n  callbacks: [prometheus]\n  failure_callback: [generic_api]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("litellm_settings.failure_callback[0]") && e.contains("set GENERIC_LOGGER_ENDPOINT"), "{e}");
    let e = Config::from_yaml_str(
        "litellm_settings:\n  callbacks: [generic_api]\n",
        Env::fixed([("GENERIC_LOGGER_ENDPOINT", "logs.example.com")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("litellm_settings.callbacks[0]") && e.contains("http:// or https://"), "{e}");
}

/// `s3` reads `s3_callback_params` with `os.environ/` resolved, takes what its lists say, and is
/// listed neither as ignored nor with its secrets in `Debug`.
#[test]
fn s3_reads_its_callback_params() {
    let text = "environment_variables:\n  S3_SECRET: s3-very-secret\nlitellm_settings:\n  success_callback: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs-bucket\n    s3_region_name: eu-west-1\n    s3_endpoint_url: http://127.0.0.1:5000\n    s3_aws_access_key_id: AKIDEXAMPLE\n    s3_aws_secret_access_key: os.environ/S3_SECRET\n    s3_path: litellm-logs\n    s3_use_team_prefix: true\n    s3_batch_size: 20\n    s3_flush_interval: 2\n";
    let c = load(text).unwrap();
    let s3 = c.s3.clone().unwrap();
    assert_eq!(s3.events, sluice_export::Events { success: true, failure: false });
    assert_eq!(s3.settings.bucket, "logs-bucket");
    assert_eq!(s3.settings.region, "eu-west-1");
    assert_eq!(s3.settings.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(s3.settings.path.as_deref(), Some("litellm-logs"));
    assert!(s3.settings.use_team_prefix && !s3.settings.use_key_prefix);
    let keys = resolve(&s3.settings.credentials).unwrap();
    assert_eq!(keys.access_key_id, "AKIDEXAMPLE");
    assert_eq!(keys.secret_access_key, "s3-very-secret");
    assert_eq!(keys.session_token, None);
    assert_eq!(s3.batching.max_records, 20);
    assert_eq!(s3.batching.max_wait, std::time::Duration::from_secs(2));
    assert!(!c.ignored.join("\n").contains("s3"), "{:?}", c.ignored);
    assert!(!format!("{c:?}").contains("s3-very-secret"), "the secret key is not in Debug");
    assert!(c.datadog.is_none() && c.generic_api.is_none());
}

/// The credentials the S3 logger would sign with (keys and the environment's: no I/O).
fn resolve(
    c: &std::sync::Arc<sluice_credentials::aws::AwsCredentials>,
) -> Result<std::sync::Arc<sluice_export::s3::Credentials>, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(c.get())
}

/// Without keys in the params, the AWS variables are used, as boto3 would; the region falls back
/// to AWS_REGION_NAME, AWS_REGION, then LiteLLM's us-west-2.
#[test]
fn s3_falls_back_to_the_aws_variables() {
    let text = "litellm_settings:\n  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n";
    let env = |vars: &[(&'static str, &'static str)]| {
        let mut all = vec![("AWS_ACCESS_KEY_ID", "AKIDENV"), ("AWS_SECRET_ACCESS_KEY", "env-secret")];
        all.extend_from_slice(vars);
        Config::from_yaml_str(text, Env::fixed(all)).unwrap().s3.unwrap()
    };
    let s3 = env(&[("AWS_SESSION_TOKEN", "env-token")]);
    assert_eq!(s3.events, sluice_export::Events { success: true, failure: true });
    let keys = resolve(&s3.settings.credentials).unwrap();
    assert_eq!(keys.access_key_id, "AKIDENV");
    assert_eq!(keys.session_token.as_deref(), Some("env-token"));
    assert_eq!(s3.settings.region, "us-west-2");
    assert_eq!(env(&[("AWS_REGION", "eu-central-1")]).settings.region, "eu-central-1");
    assert_eq!(env(&[("AWS_REGION", "eu-central-1"), ("AWS_REGION_NAME", "ap-south-1")]).settings.region, "ap-south-1");
}

/// An `s3` callback without a bucket or credentials stops the start saying what to set; settings
/// sluice cannot honour stop it too; params with no `s3` callback are reported unused.
#[test]
fn s3_without_what_it_needs_stops_the_start() {
    let e = load("litellm_settings:\n  callbacks: [prometheus, s3]\n").unwrap_err().to_string();
    assert!(e.contains("litellm_settings.callbacks[1]") && e.contains("s3_callback_params.s3_bucket_name"), "{e}");
    // Without keys anywhere the start goes on: the chain is asked when a batch is written.
    let text = "litellm_settings:\n  failure_callback: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n";
    let s3 = Config::from_yaml_str(text, Env::fixed(vec![("AWS_EC2_METADATA_DISABLED", "true")])).unwrap().s3.unwrap();
    let e = resolve(&s3.settings.credentials).unwrap_err();
    assert!(e.contains("AWS_ACCESS_KEY_ID") && e.contains("AWS_PROFILE"), "{e}");
    let e = load("litellm_settings:\n  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n    s3_aws_access_key_id: AKID\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("go together"), "{e}");
    // The chain's settings load (LiteLLM's names); a web identity token needs its role.
    let c = load("litellm_settings:\n  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n    s3_aws_access_key_id: AKID\n    s3_aws_secret_access_key: s\n    s3_aws_role_name: arn:aws:iam::1:role/x\n    s3_aws_session_name: logs\n    s3_aws_sts_endpoint: http://127.0.0.1:9\n    s3_aws_profile_name: dev\n").unwrap();
    let chain = c.s3.unwrap().settings.credentials.source().settings().clone();
    assert_eq!(chain.role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
    assert_eq!((chain.session_name.as_deref(), chain.profile.as_deref()), (Some("logs"), Some("dev")));
    assert_eq!(chain.sts_endpoint.as_deref(), Some("http://127.0.0.1:9"));
    assert!(!c.ignored.join("\n").contains("s3_aws"), "{:?}", c.ignored);
    let e = load("litellm_settings:\n  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n    s3_aws_web_identity_token: eyJ.secret-oidc\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s3_aws_web_identity_token") && e.contains("s3_aws_role_name") && !e.contains("secret-oidc"),
        "{e}"
    );
    let e = load("litellm_settings:\n  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n    s3_aws_access_key_id: AKID\n    s3_aws_secret_access_key: s\n    s3_batch_size: 100000\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3_batch_size") && e.contains("1 to 1000"), "{e}");
    let e = load("litellm_settings:\n  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: logs\n    s3_aws_access_key_id: AKID\n    s3_aws_secret_access_key: s3-very-secret\n    s3_endpoint_url: not a url\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3_endpoint_url") && !e.contains("s3-very-secret"), "{e}");
    let c = load("litellm_settings:\n  s3_callback_params:\n    s3_bucket_name: logs\n").unwrap();
    assert!(c.s3.is_none());
    assert!(
        c.ignored.iter().any(|l| l.contains("s3_callback_params") && l.contains("no callback list names")),
        "{:?}",
        c.ignored
    );
}

/// `datadog` reads LiteLLM's variables: the site's intake, `DD_BASE_URL` instead, an agent, and
/// the labels with LiteLLM's defaults.
#[test]
fn datadog_reads_litellms_variables() {
    let text = "litellm_settings:\n  callbacks: [datadog]\n";
    let dd = |vars: Vec<(&'static str, &'static str)>| Config::from_yaml_str(text, Env::fixed(vars));
    let c = dd(vec![("DD_API_KEY", "dd-very-secret"), ("DD_SITE", "us5.datadoghq.com")]).unwrap();
    let d = c.datadog.clone().unwrap();
    assert_eq!(d.events, sluice_export::Events { success: true, failure: true });
    assert_eq!(d.settings.intake_url, "https://http-intake.logs.us5.datadoghq.com/api/v2/logs");
    assert_eq!(d.settings.api_key.as_deref(), Some("dd-very-secret"));
    assert_eq!(
        (&*d.settings.source, &*d.settings.service, &*d.settings.env, &*d.settings.version, &*d.settings.hostname),
        ("litellm", "litellm-server", "unknown", "unknown", "")
    );
    assert_eq!(d.batching.max_records, sluice_export::Batching::default().max_records);
    assert!(!format!("{c:?}").contains("dd-very-secret"));
    assert!(!c.ignored.join("\n").contains("datadog"), "{:?}", c.ignored);

    let d = dd(vec![
        ("DD_API_KEY", "k"),
        ("DD_BASE_URL", "http://127.0.0.1:9/"),
        ("DD_SERVICE", "gw"),
        ("DD_SOURCE", "sluice"),
        ("DD_ENV", "prod"),
        ("HOSTNAME", "box-1"),
        ("DD_BATCH_SIZE", "50"),
    ])
    .unwrap()
    .datadog
    .unwrap();
    assert_eq!(d.settings.intake_url, "http://127.0.0.1:9/api/v2/logs");
    assert_eq!((&*d.settings.service, &*d.settings.source, &*d.settings.env), ("gw", "sluice", "prod"));
    assert_eq!(d.settings.hostname, "box-1");
    assert_eq!(d.batching.max_records, 50);

    let d = dd(vec![("LITELLM_DD_AGENT_HOST", "10.0.0.7")]).unwrap().datadog.unwrap();
    assert_eq!(d.settings.intake_url, "http://10.0.0.7:10518/api/v2/logs");
    assert_eq!(d.settings.api_key, None);
}

/// A `datadog` callback without its key or site stops the start saying what to set.
#[test]
fn datadog_without_its_key_or_site_stops_the_start() {
    let text = "litellm_settings:\n  success_callback: [datadog]\n";
    let e = Config::from_yaml_str(text, Env::fixed([("DD_SITE", "datadoghq.com")])).unwrap_err().to_string();
    assert!(e.contains("litellm_settings.success_callback[0]") && e.contains("set DD_API_KEY"), "{e}");
    let e = Config::from_yaml_str(text, Env::fixed([("DD_API_KEY", "dd-very-secret")])).unwrap_err().to_string();
    assert!(e.contains("DD_SITE") && !e.contains("dd-very-secret"), "{e}");
    let e = Config::from_yaml_str(text, Env::fixed([("DD_API_KEY", "k"), ("DD_SITE", "x"), ("DD_BATCH_SIZE", "0")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("DD_BATCH_SIZE"), "{e}");
    let e = Config::from_yaml_str(text, Env::fixed([("DD_API_KEY", "k"), ("DD_BASE_URL", "ftp://x")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("DD_BASE_URL"), "{e}");
}

/// `langfuse` reads LiteLLM's variables: the project's keys, its host (LiteLLM's default when
/// unset), the release and the flush settings, bounded; the lists say which outcomes it takes.
#[test]
fn langfuse_reads_its_project_from_the_environment() {
    let vars = |extra: &[(&'static str, &'static str)]| {
        let mut v = vec![("LANGFUSE_PUBLIC_KEY", "pk-lf-1"), ("LANGFUSE_SECRET_KEY", "sk-lf-hidden")];
        v.extend_from_slice(extra);
        Env::fixed(v)
    };
    let c = Config::from_yaml_str("litellm_settings:\n  success_callback: [langfuse]\n", vars(&[])).unwrap();
    let l = c.langfuse.unwrap();
    assert_eq!(l.events, sluice_export::Events { success: true, failure: false });
    assert_eq!((l.host, l.release), (None, None));
    assert_eq!((l.flush_interval, l.flush_at), (std::time::Duration::from_secs(1), 100));
    assert!(!format!("{:?}", l.secret_key).contains("sk-lf-hidden"));
    assert!(!c.ignored.join("\n").contains("langfuse"), "{:?}", c.ignored);
    let c = Config::from_yaml_str(
        "litellm_settings:\n  callbacks: [langfuse]\nenvironment_variables:\n  LANGFUSE_HOST: http://lf.internal:3000\n  LANGFUSE_RELEASE: v7\n  LANGFUSE_FLUSH_INTERVAL: \"5\"\n  LANGFUSE_FLUSH_AT: \"20\"\n  LANGFUSE_DEBUG: \"True\"\n",
        vars(&[]),
    )
    .unwrap();
    let l = c.langfuse.unwrap();
    assert_eq!(l.events, sluice_export::Events { success: true, failure: true });
    assert_eq!(l.host.as_deref(), Some("http://lf.internal:3000"));
    assert_eq!(l.release.as_deref(), Some("v7"));
    assert_eq!((l.flush_interval, l.flush_at), (std::time::Duration::from_secs(5), 20));
    assert!(c.ignored.iter().any(|i| i.contains("LANGFUSE_DEBUG")), "{:?}", c.ignored);
}

/// A `langfuse` without its keys, or with settings out of bounds, stops the start saying what
/// to set, never a key.
#[test]
fn langfuse_without_its_keys_stops_the_start() {
    let e = load("litellm_settings:\n  failure_callback: [langfuse]\n").unwrap_err().to_string();
    assert!(e.contains("litellm_settings.failure_callback[0]") && e.contains("LANGFUSE_PUBLIC_KEY"), "{e}");
    for (name, value) in [
        ("LANGFUSE_FLUSH_INTERVAL", "0"),
        ("LANGFUSE_FLUSH_INTERVAL", "86400"),
        ("LANGFUSE_FLUSH_AT", "100000"),
        ("LANGFUSE_HOST", "http://bad host"),
    ] {
        let env = Env::fixed([("LANGFUSE_PUBLIC_KEY", "pk"), ("LANGFUSE_SECRET_KEY", "sk-lf-hidden"), (name, value)]);
        let e = Config::from_yaml_str("litellm_settings:\n  callbacks: [langfuse]\n", env).unwrap_err().to_string();
        assert!(e.contains(name) && !e.contains("sk-lf-hidden"), "{name}={value}: {e}");
    }
}
