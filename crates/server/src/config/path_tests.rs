//! Errors from the derived reading name the YAML path down to the setting, with today's text;
//! mutated seed configs load or name a path, never panic.

use super::*;
use proptest::prelude::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_str(text, Env::fixed([("OPENAI_KEY", "sk-upstream")]))
}

const KNOWN_SLUICE: &str = "client_header_timeout, client_body_timeout, upstream_connect_timeout, client_read_buffer_kb, database_path, retry_budget_percent, retry_budget_min_per_second, access_log, redis_key_prefix";

#[test]
fn bad_configs_give_exact_path_bearing_messages() {
    let two = |params: &str| {
        format!("model_list:\n  - model_name: a\n    litellm_params: {{model: openai/x}}\n  - model_name: b\n    litellm_params: {{model: openai/y, {params}}}\n")
    };
    let cases: Vec<(String, &str, String)> = vec![
        // A wrong type at depth.
        (two("rpm: ten"), "model_list[1].litellm_params.rpm", "expected a number, got \"ten\"".into()),
        (two("drop_params: maybe"), "model_list[1].litellm_params.drop_params", "expected true or false, got \"maybe\"".into()),
        (two("api_key: [a]"), "model_list[1].litellm_params.api_key", "expected a string".into()),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {id: [1]}\n".into(),
            "model_list[0].model_info.id",
            "expected a string".into(),
        ),
        (
            "router_settings:\n  fallbacks: [{a: [b]}, {gpt-4: [~]}]\n".into(),
            "router_settings.fallbacks[1].gpt-4[0]",
            "expected a model group name".into(),
        ),
        ("litellm_settings:\n  fallbacks: [a]\n".into(), "litellm_settings.fallbacks[0]", "expected a mapping of key: value".into()),
        (
            "router_settings:\n  model_group_alias: {fast: {model: a, hidden: maybe}}\n".into(),
            "router_settings.model_group_alias.fast",
            "expected true or false, got \"maybe\"".into(),
        ),
        ("router_settings:\n  model_group_alias:\n".into(), "router_settings.model_group_alias", "expected a mapping of key: value".into()),
        (
            "router_settings:\n  retry_policy: {TimeoutErrorRetries: many}\n".into(),
            "router_settings.retry_policy.TimeoutErrorRetries",
            "expected a number, got \"many\"".into(),
        ),
        (
            "router_settings:\n  allowed_fails_policy: {TimeoutErrorRetries: 1}\n".into(),
            "router_settings.allowed_fails_policy.TimeoutErrorRetries",
            "unknown field; use e.g. RateLimitErrorAllowedFails, TimeoutErrorAllowedFails, InternalServerErrorAllowedFails, AuthenticationErrorAllowedFails, BadRequestErrorAllowedFails, ContentPolicyViolationErrorAllowedFails".into(),
        ),
        (
            "general_settings:\n  allowed_ips: [\"10.0.0.1\", 7]\n".into(),
            "general_settings.allowed_ips[1]",
            "expected a string in this list of IP addresses, e.g. [\"10.0.0.5\", \"10.1.0.0/16\"]".into(),
        ),
        ("litellm_settings:\n  callbacks: 5\n".into(), "litellm_settings.callbacks", "expected a list of callback names, e.g. [\"prometheus\"]".into()),
        ("sluice_settings:\n  database_path:\n".into(), "sluice_settings.database_path", "expected a file path, e.g. /var/lib/sluice/sluice.db".into()),
        ("sluice_settings:\n  colour: blue\n".into(), "sluice_settings.colour", format!("unknown sluice setting; known: {KNOWN_SLUICE}")),
        // Where Redis is.
        ("router_settings:\n  redis_host: redis\n  redis_port: 0\n".into(), "router_settings.redis_port", "expected a port number from 1 to 65535, got \"0\"".into()),
        ("router_settings:\n  redis_host: redis\n  redis_db: two\n".into(), "router_settings.redis_db", "expected a database number (0, 1, ...), got \"two\"".into()),
        ("litellm_settings:\n  cache: maybe\n".into(), "litellm_settings.cache", "expected true or false, got \"maybe\"".into()),
        ("litellm_settings:\n  cache: true\n  cache_params: [redis]\n".into(), "litellm_settings.cache_params", "expected a mapping, e.g. {type: redis, host: ..., port: 6379}".into()),
        ("litellm_settings:\n  cache: true\n  cache_params: {type: redis, host: r, supported_call_types: completion}\n".into(), "litellm_settings.cache_params.supported_call_types", "expected a list of call types, or [] to cache no answers".into()),
        // Out of range.
        (two("weight: -1"), "model_list[1].litellm_params.weight", "must be a number from 0 to 1000000000, got -1".into()),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {max_input_tokens: 1e13}\n".into(),
            "model_list[0].model_info.max_input_tokens",
            "must be a number from 0 to 1000000000000, got 10000000000000".into(),
        ),
        (
            "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {max_latency_list_size: 2.5}\n".into(),
            "router_settings.routing_strategy_args.max_latency_list_size",
            "expected a whole number from 0 to 1000000".into(),
        ),
        ("general_settings:\n  global_max_parallel_requests: 0\n".into(), "general_settings.global_max_parallel_requests", "must be a whole number of requests, 1 or more (leave it out for no cap)".into()),
        ("litellm_settings:\n  max_budget: -3\n".into(), "litellm_settings.max_budget", "must be a number of USD, 0 or more (0: no proxy-wide budget)".into()),
        ("sluice_settings:\n  retry_budget_percent: 1001\n".into(), "sluice_settings.retry_budget_percent", "must be a number from 0 to 1000".into()),
    ];
    for (text, path, message) in cases {
        let e = load(&text).unwrap_err();
        assert_eq!(e, ConfigError::Setting { path: path.into(), message: message.clone() }, "{text}");
        assert_eq!(e.path(), Some(path));
        assert_eq!(e.to_string(), format!("{path}: {message}"));
    }
}

#[test]
fn whole_document_errors_have_no_path() {
    let e = load("model_list: [\n").unwrap_err();
    assert!(matches!(&e, ConfigError::Document(m) if m.starts_with("config is not valid YAML")), "{e}");
    assert_eq!(e.path(), None);
    let e = Config::from_yaml_str("general_settings:\n  master_key: os.environ/NOPE\n", Env::fixed([])).unwrap_err();
    assert_eq!(e.path(), None, "one error may name several unresolved secrets");
}

#[test]
fn misspelled_keys_are_listed_with_a_suggestion() {
    let c = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_bse: \"http://h/\", temperature: 0.1}\n    rpn: 5\nlitellm_settings:\n  request_timout: 5\n",
    )
    .unwrap();
    let ignored = c.ignored.join("\n");
    for line in [
        "model_list[0].litellm_params.api_bse: unknown setting (did you mean api_base?)",
        "model_list[0].litellm_params.temperature: not implemented in sluice yet",
        "model_list[0].rpn: unknown setting (did you mean rpm?)",
        "litellm_settings.request_timout: unknown setting (did you mean request_timeout?)",
    ] {
        assert!(c.ignored.iter().any(|l| l == line), "{line} missing from\n{ignored}");
    }
}

#[test]
fn litellm_leniencies_are_kept() {
    // Numbers and switches as strings, a version written as a number.
    let c = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, rpm: \"10\", timeout: \" 2.5 \", drop_params: \"yes\", api_version: 2024}\n    tpm: 7\n",
    )
    .unwrap();
    let d = &c.deployments[0];
    assert_eq!((d.rpm, d.tpm, d.timeout, d.drop_params), (Some(10.0), Some(7.0), Some(2.5), Some(true)));
    assert_eq!(d.api_version.as_deref(), Some("2024"));
    // Written with no value, a router fallback list replaces litellm_settings' with an empty one.
    let c = load("litellm_settings:\n  fallbacks: [{a: [b]}]\nrouter_settings:\n  fallbacks:\n").unwrap();
    assert!(c.router.routing.fallbacks.is_empty(), "{:?}", c.router.routing.fallbacks);
    let c = load("litellm_settings:\n  fallbacks: [{a: [b]}]\nrouter_settings:\n  num_retries: 1\n").unwrap();
    assert_eq!(c.router.routing.fallbacks.len(), 1);
}

/// Every key a section struct reads is one LiteLLM knows (or sluice's own), so a misspelling of
/// it gets a suggestion.
#[test]
fn the_keys_sluice_reads_are_known_keys() {
    use super::known;
    let (general, router, litellm) = super::settings::read_keys();
    let read = [
        ("general_settings", general.to_vec(), known::GENERAL),
        ("router_settings", router.to_vec(), known::ROUTER),
        ("litellm_settings", litellm.to_vec(), known::LITELLM),
        ("model_list[].litellm_params", super::deployment::read_keys(), known::LITELLM_PARAMS),
    ];
    for (section, fields, known) in read {
        assert!(!fields.is_empty(), "{section}: no fields read");
        for f in fields {
            assert!(known.contains(&f), "{section}.{f} is read but missing from known.rs");
        }
    }
}

/// The configs sluice's users start from.
const SEEDS: &[&str] = &[
    include_str!("../../../../examples/config.yaml"),
    include_str!("../../../../examples/container.yaml"),
    include_str!("../../../../examples/seed-openai.yaml"),
    include_str!("../../../../examples/litellm/azure-openai.yaml"),
    include_str!("../../../../examples/litellm/multi-provider.yaml"),
    include_str!("../../../../examples/litellm/production.yaml"),
];

/// Values that are wrong somewhere: wrong types, out of range, odd YAML.
const TOKENS: &[&str] = &[
    "ten",
    "\"10\"",
    "-1",
    "0",
    "1e400",
    ".nan",
    ".inf",
    "~",
    "[]",
    "{}",
    "[a, 1]",
    "{a: [b]}",
    "true",
    "maybe",
    "os.environ/UNSET",
    "\"\"",
    "!custom 5",
    "2.5",
    "http://h/",
    "[{a: [~]}]",
    "{model: a, hidden: x}",
];

/// Keys to plant, from every section.
const KEYS: &[&str] = &[
    "rpm",
    "timeout",
    "model",
    "api_base",
    "model_info",
    "fallbacks",
    "model_group_alias",
    "retry_policy",
    "callbacks",
    "allowed_ips",
    "allowed_routes",
    "database_path",
    "max_budget",
    "routing_strategy",
    "routing_strategy_args",
    "max_input_tokens",
    "id",
    "vertex_credentials",
    "master_key",
    "colour",
];

#[derive(Debug, Clone)]
enum Mutation {
    Value(usize, usize),
    Delete(usize),
    Duplicate(usize),
    Plant(usize, usize, usize),
    Garble(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(l, t)| Mutation::Value(l, t)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), 0..KEYS.len(), 0..TOKENS.len()).prop_map(|(l, k, t)| Mutation::Plant(l, k, t)),
        (any::<usize>(), "[ -~]{0,30}").prop_map(|(l, s)| Mutation::Garble(l, s)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in mutations {
        if lines.is_empty() {
            break;
        }
        let at = |l: &usize| l % lines.len();
        match m {
            Mutation::Value(l, t) => {
                let i = at(l);
                if let Some((key, _)) = lines[i].split_once(": ") {
                    lines[i] = format!("{key}: {}", TOKENS[*t]);
                }
            }
            Mutation::Delete(l) => {
                let i = at(l);
                lines.remove(i);
            }
            Mutation::Duplicate(l) => {
                let i = at(l);
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            Mutation::Plant(l, k, t) => {
                let i = at(l);
                let indent: String = lines[i].chars().take_while(|c| *c == ' ').collect();
                lines.insert(i + 1, format!("{indent}{}: {}", KEYS[*k], TOKENS[*t]));
            }
            Mutation::Garble(l, s) => {
                let i = at(l);
                lines[i] = s.clone();
            }
        }
    }
    lines.join("\n")
}

proptest! {
    /// A mutated seed config loads, or its error names a YAML path that starts at one of the
    /// document's sections (or is about the document as a whole); loading never panics.
    #[test]
    fn mutated_seed_configs_load_or_name_a_path(
        seed in proptest::sample::select(SEEDS),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let text = mutate(seed, &mutations);
        let env = Env::fixed([("LITELLM_MASTER_KEY", "sk-example"), ("DATABASE_URL", "postgresql://u:p@db/x"), ("REDIS_HOST", "redis"), ("REDIS_PASSWORD", "pw")]);
        match Config::from_yaml_str(&text, env) {
            Ok(_) => {}
            Err(ConfigError::Setting { path, message }) => {
                let root = path.split(['.', '[']).next().unwrap_or_default();
                prop_assert!(root == "(top level)" || text.contains(root), "{path}: {message}\n{text}");
                prop_assert!(!message.is_empty());
            }
            Err(ConfigError::Document(message)) => prop_assert!(
                message.starts_with("config is not valid YAML") || message.starts_with("refusing to start"),
                "{message}\n{text}"
            ),
        }
    }
}

#[test]
fn integer_keys_are_not_fields() {
    let c = load("general_settings:\n  0: sk-not-a-master-key\n").unwrap();
    assert!(c.general.master_key.is_none(), "serde would take key 0 as the first field");
    assert!(c.ignored.iter().any(|l| l.starts_with("general_settings.0: ")), "{:?}", c.ignored);
}

#[test]
fn callbacks_keep_the_order_they_are_written_in() {
    let c = load("litellm_settings:\n  success_callback: [\"lunary\"]\n  callbacks: [\"prometheus\"]\n").unwrap();
    assert_eq!(c.litellm.callbacks, ["lunary", "prometheus"]);
}
