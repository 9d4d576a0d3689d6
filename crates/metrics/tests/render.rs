//! The scrape as a LiteLLM dashboard sees it: names, types, label sets, buckets, values and
//! escaping, read back through a small parser of the Prometheus text format.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_metrics::{Caller, CallerLabels, DeploymentLabels, DeploymentMetrics, Metrics, RequestRecord, Usage};

const GROUP: &str = "fake-openai-endpoint";

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug)]
struct MetricFamily {
    kind: String,
    samples: Vec<Sample>,
}

/// Parses the text format strictly enough to catch what Prometheus would reject: every sample
/// belongs to the family declared just before it, label values are properly quoted and escaped,
/// values are numbers.
fn parse(text: &str) -> BTreeMap<String, MetricFamily> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut helped: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            helped = Some(name);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_owned();
            let kind = parts.next().unwrap().to_owned();
            assert_eq!(parts.next(), None, "{line}");
            assert_eq!(helped.as_deref(), Some(name.as_str()), "TYPE without HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind.as_str()), "{line}");
            assert!(out.insert(name.clone(), MetricFamily { kind, samples: vec![] }).is_none());
            current = Some(name);
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let sample = parse_sample(line);
        let family_name = current.as_ref().expect("sample before TYPE");
        let family = out.get_mut(family_name).unwrap();
        let allowed: Vec<String> = if family.kind == "histogram" {
            ["_bucket", "_sum", "_count"].iter().map(|s| format!("{family_name}{s}")).collect()
        } else {
            vec![family_name.clone()]
        };
        assert!(allowed.contains(&sample.name), "{line} outside {family_name}");
        family.samples.push(sample);
    }
    out
}

fn parse_sample(line: &str) -> Sample {
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut name = String::new();
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
        name.push(bytes[i]);
        i += 1;
    }
    let mut labels = BTreeMap::new();
    if bytes.get(i) == Some(&'{') {
        i += 1;
        loop {
            let mut key = String::new();
            while bytes[i] != '=' {
                assert!(bytes[i].is_ascii_alphanumeric() || bytes[i] == '_', "{line}");
                key.push(bytes[i]);
                i += 1;
            }
            i += 1;
            assert_eq!(bytes[i], '"', "{line}");
            i += 1;
            let mut value = String::new();
            loop {
                match bytes[i] {
                    '\\' => {
                        i += 1;
                        value.push(match bytes[i] {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            c => panic!("bad escape \\{c} in {line}"),
                        });
                    }
                    '"' => break,
                    '\n' => panic!("raw newline in {line}"),
                    c => value.push(c),
                }
                i += 1;
            }
            i += 1;
            assert!(labels.insert(key, value).is_none(), "duplicate label: {line}");
            match bytes[i] {
                ',' => i += 1,
                '}' => {
                    i += 1;
                    break;
                }
                c => panic!("unexpected {c} in {line}"),
            }
        }
    }
    assert_eq!(bytes[i], ' ', "{line}");
    let raw: String = bytes[i + 1..].iter().collect();
    let value = match raw.as_str() {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    Sample { name, labels, value }
}

fn labels() -> DeploymentLabels {
    DeploymentLabels {
        model_group: GROUP.into(),
        litellm_model_name: "openai/fake".into(),
        model_id: "m1".into(),
        api_base: "http://up".into(),
        api_provider: "openai".into(),
        tpm_limit: Some(100_000.0),
        rpm_limit: Some(10_000.0),
    }
}

fn request<'a>(d: &'a DeploymentMetrics, status: u16, user_agent: &'a str) -> RequestRecord<'a> {
    RequestRecord {
        requested_model: GROUP,
        route: "/chat/completions",
        status,
        exception_class: None,
        total: Duration::from_millis(120),
        upstream: Duration::from_millis(100),
        queue: Some(Duration::from_millis(3)),
        deployment: Some(d),
        end_user: "my-new-end-user-1",
        user_agent,
        caller: None,
        spend: 0.0,
    }
}

/// Touches every metric once or more.
fn scenario() -> (Arc<Metrics>, DeploymentMetrics) {
    let m = Metrics::new();
    let d = m.deployment(&labels());
    d.attempt_started(GROUP, None);
    d.attempt_succeeded(
        GROUP,
        None,
        Duration::from_millis(100),
        Some(Duration::from_millis(20)),
        Some(Usage { prompt_tokens: 10, completion_tokens: 5 }),
    );
    d.remaining(None, Some(99.0), Some(5000.0));
    m.request_finished(&RequestRecord { spend: 0.25, ..request(&d, 200, "locust") });
    d.attempt_started(GROUP, None);
    d.attempt_failed(GROUP, None, 429, "RateLimitError", Duration::from_millis(5));
    d.cooled_down(429);
    m.request_finished(&request(&d, 429, "locust"));
    m.fallback(GROUP, "other", None, true, 429, "RateLimitError");
    m.fallback(GROUP, "other", None, false, 429, "RateLimitError");
    // Budgets and key limits only exist for virtual keys.
    let key = m.caller(&key_labels());
    m.key_budget(&key, Some(10.0), Some(7.5), Some(12.0));
    m.team_budget("team-1", "Team One", Some(100.0), Some(60.0), Some(24.0));
    m.user_budget("user-1", Some(5.0), Some(4.0), Some(1.5));
    m.cache_lookup(GROUP, "", "my-new-end-user-1", None, false, 0);
    m.cache_lookup(GROUP, "", "my-new-end-user-1", None, true, 21);
    m.cache_state(&sluice_metrics::CacheState { entries: 3, bytes: 1200, failed_writes: 0 });
    d.key_remaining(&key, Some(9.0), Some(900.0));
    (m, d)
}

/// A virtual key's labels; `sk-…` is what a client sends, the server passes only its hash.
fn key_labels() -> CallerLabels {
    CallerLabels {
        hashed_api_key: "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b".into(),
        api_key_alias: "prod-key".into(),
        team: "team-1".into(),
        team_alias: "Team One".into(),
        user: "user-1".into(),
        user_email: "u@example.com".into(),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const DEPLOYMENT_REQUEST: &[&str] = &[
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "client_ip",
    "user_agent",
];

/// Reference §5, one entry per exported name: (scraped name, type, labels).
fn expected() -> Vec<(&'static str, &'static str, BTreeSet<String>)> {
    let api_latency = set(&[
        "model",
        "hashed_api_key",
        "api_key_alias",
        "team",
        "team_alias",
        "requested_model",
        "end_user",
        "user",
        "model_id",
    ]);
    let tokens = set(&[
        "end_user",
        "hashed_api_key",
        "api_key_alias",
        "model",
        "team",
        "team_alias",
        "user",
        "user_email",
        "requested_model",
        "model_id",
    ]);
    let group = set(&[
        "model_group",
        "api_provider",
        "api_base",
        "litellm_model_name",
        "hashed_api_key",
        "api_key_alias",
        "model_id",
    ]);
    let id = set(&["litellm_model_name", "model_id", "api_base", "api_provider"]);
    let fallback = set(&[
        "requested_model",
        "fallback_model",
        "hashed_api_key",
        "api_key_alias",
        "team",
        "team_alias",
        "exception_status",
        "exception_class",
        "model_id",
    ]);
    let key_budget = set(&["hashed_api_key", "api_key_alias"]);
    let cache =
        set(&["model", "hashed_api_key", "api_key_alias", "team", "team_alias", "end_user", "user", "model_id"]);
    let team_budget = set(&["team", "team_alias"]);
    let user_budget = set(&["user"]);
    let key_model = set(&["hashed_api_key", "api_key_alias", "model", "model_id"]);
    let mut failure = DEPLOYMENT_REQUEST.to_vec();
    failure.extend(["exception_status", "exception_class"]);
    vec![
        (
            "litellm_proxy_total_requests_metric_total",
            "counter",
            set(&[
                "end_user",
                "hashed_api_key",
                "api_key_alias",
                "requested_model",
                "team",
                "team_alias",
                "user",
                "status_code",
                "user_email",
                "route",
                "client_ip",
                "user_agent",
                "model_id",
            ]),
        ),
        (
            "litellm_proxy_failed_requests_metric_total",
            "counter",
            set(&[
                "end_user",
                "hashed_api_key",
                "api_key_alias",
                "requested_model",
                "team",
                "team_alias",
                "user",
                "user_email",
                "exception_status",
                "exception_class",
                "route",
                "client_ip",
                "user_agent",
                "model_id",
            ]),
        ),
        (
            "litellm_request_total_latency_metric",
            "histogram",
            set(&[
                "end_user",
                "hashed_api_key",
                "api_key_alias",
                "requested_model",
                "team",
                "team_alias",
                "user",
                "model",
                "model_id",
            ]),
        ),
        (
            "litellm_request_queue_time_seconds",
            "histogram",
            set(&[
                "end_user",
                "hashed_api_key",
                "api_key_alias",
                "requested_model",
                "team",
                "team_alias",
                "user",
                "model",
                "model_id",
            ]),
        ),
        (
            "litellm_requests_metric_total",
            "counter",
            set(&[
                "end_user",
                "hashed_api_key",
                "api_key_alias",
                "model",
                "team",
                "team_alias",
                "user",
                "user_email",
                "client_ip",
                "user_agent",
                "model_id",
            ]),
        ),
        (
            "litellm_llm_api_failed_requests_metric_total",
            "counter",
            set(&["end_user", "hashed_api_key", "api_key_alias", "model", "team", "team_alias", "user", "model_id"]),
        ),
        ("litellm_llm_api_latency_metric", "histogram", api_latency.clone()),
        ("litellm_llm_api_time_to_first_token_metric", "histogram", api_latency),
        ("litellm_overhead_latency_metric", "histogram", group.clone()),
        ("litellm_total_tokens_metric_total", "counter", tokens.clone()),
        ("litellm_input_tokens_metric_total", "counter", tokens.clone()),
        ("litellm_output_tokens_metric_total", "counter", tokens),
        ("litellm_deployment_total_requests_total", "counter", set(DEPLOYMENT_REQUEST)),
        ("litellm_deployment_success_responses_total", "counter", set(DEPLOYMENT_REQUEST)),
        ("litellm_deployment_failure_responses_total", "counter", set(&failure)),
        (
            "litellm_deployment_latency_per_output_token",
            "histogram",
            set(&[
                "litellm_model_name",
                "model_id",
                "api_base",
                "api_provider",
                "hashed_api_key",
                "api_key_alias",
                "team",
                "team_alias",
            ]),
        ),
        ("litellm_deployment_state", "gauge", id.clone()),
        (
            "litellm_deployment_cooled_down_total",
            "counter",
            set(&["litellm_model_name", "model_id", "api_base", "api_provider", "exception_status"]),
        ),
        ("litellm_deployment_successful_fallbacks_total", "counter", fallback.clone()),
        ("litellm_deployment_failed_fallbacks_total", "counter", fallback),
        ("litellm_deployment_tpm_limit", "gauge", id.clone()),
        ("litellm_deployment_rpm_limit", "gauge", id),
        ("litellm_remaining_requests_metric", "gauge", group.clone()),
        ("litellm_remaining_tokens_metric", "gauge", group),
        (
            "litellm_spend_metric_total",
            "counter",
            set(&[
                "end_user",
                "hashed_api_key",
                "api_key_alias",
                "model",
                "team",
                "team_alias",
                "user",
                "user_email",
                "client_ip",
                "user_agent",
                "model_id",
            ]),
        ),
        ("litellm_remaining_api_key_budget_metric", "gauge", key_budget.clone()),
        ("litellm_api_key_max_budget_metric", "gauge", key_budget.clone()),
        ("litellm_api_key_budget_remaining_hours_metric", "gauge", key_budget),
        ("litellm_remaining_team_budget_metric", "gauge", team_budget.clone()),
        ("litellm_team_max_budget_metric", "gauge", team_budget.clone()),
        ("litellm_team_budget_remaining_hours_metric", "gauge", team_budget),
        ("litellm_remaining_user_budget_metric", "gauge", user_budget.clone()),
        ("litellm_user_max_budget_metric", "gauge", user_budget.clone()),
        ("litellm_user_budget_remaining_hours_metric", "gauge", user_budget),
        ("litellm_remaining_api_key_requests_for_model", "gauge", key_model.clone()),
        ("litellm_remaining_api_key_tokens_for_model", "gauge", key_model),
        ("sluice_overhead_seconds", "histogram", set(&["route", "api_provider"])),
        // The database's health, set at scrape time (`Metrics::database_state`).
        ("litellm_in_memory_spend_update_queue_size", "gauge", set(&[])),
        ("litellm_in_memory_daily_spend_update_queue_size", "gauge", set(&[])),
        ("litellm_redis_spend_update_queue_size", "gauge", set(&[])),
        ("litellm_redis_daily_spend_update_queue_size", "gauge", set(&[])),
        ("litellm_total_users", "gauge", set(&[])),
        ("litellm_teams_count", "gauge", set(&[])),
        ("sluice_database_up", "gauge", set(&[])),
        ("sluice_spend_logs_dropped_total", "counter", set(&[])),
        // The answer cache: per request (`Metrics::cache_lookup`), and at scrape time.
        ("litellm_cache_hits_metric_total", "counter", cache.clone()),
        ("litellm_cache_misses_metric_total", "counter", cache.clone()),
        ("litellm_cached_tokens_metric_total", "counter", cache),
        ("sluice_cache_entries", "gauge", set(&[])),
        ("sluice_cache_bytes", "gauge", set(&[])),
        ("sluice_cache_failed_writes", "gauge", set(&[])),
    ]
}

#[test]
fn every_metric_has_litellm_name_type_and_label_set() {
    let (m, _d) = scenario();
    let text = m.render();
    let families = parse(&text);
    let expected = expected();
    assert_eq!(
        families.keys().cloned().collect::<BTreeSet<_>>(),
        expected.iter().map(|e| e.0.to_string()).collect(),
        "{text}"
    );
    for (name, kind, labels) in expected {
        let f = &families[name];
        assert_eq!(f.kind, kind, "{name}");
        assert!(!f.samples.is_empty(), "{name}");
        for s in &f.samples {
            let mut got: BTreeSet<String> = s.labels.keys().cloned().collect();
            if s.name.ends_with("_bucket") {
                assert!(got.remove("le"), "{name} bucket without le");
            }
            assert_eq!(got, labels, "{}", s.name);
        }
    }
    // Counters are scraped as `<name>_total`, in the TYPE line as well (classic text format).
    assert!(text.contains("# TYPE litellm_deployment_cooled_down_total counter\n"));
    assert!(!text.contains("_total_total"));
}

fn le_values(families: &BTreeMap<String, MetricFamily>, name: &str) -> Vec<String> {
    let f = &families[name];
    let first = &f.samples[0].labels;
    f.samples
        .iter()
        .filter(|s| s.name.ends_with("_bucket") && labels_without_le(&s.labels) == labels_without_le(first))
        .map(|s| s.labels["le"].clone())
        .collect()
}

fn labels_without_le(l: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    l.iter().filter(|(k, _)| *k != "le").map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[test]
fn buckets_are_litellms_formatted_like_python() {
    let (m, _d) = scenario();
    let text = m.render();
    let families = parse(&text);
    let latency: Vec<&str> = vec![
        "0.005", "0.00625", "0.0125", "0.025", "0.05", "0.1", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0",
        "4.5", "5.0", "5.5", "6.0", "6.5", "7.0", "7.5", "8.0", "8.5", "9.0", "9.5", "10.0", "15.0", "20.0", "25.0",
        "30.0", "60.0", "120.0", "180.0", "240.0", "300.0", "+Inf",
    ];
    for name in [
        "litellm_request_total_latency_metric",
        "litellm_llm_api_latency_metric",
        "litellm_llm_api_time_to_first_token_metric",
        "litellm_overhead_latency_metric",
    ] {
        assert_eq!(le_values(&families, name), latency, "{name}");
    }
    let default: Vec<&str> = vec![
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0",
        "+Inf",
    ];
    assert_eq!(le_values(&families, "litellm_deployment_latency_per_output_token"), default);
    assert!(text.contains("le=\"300.0\"}"));
}

fn sample<'a>(
    families: &'a BTreeMap<String, MetricFamily>,
    name: &str,
    family: &str,
    want: &[(&str, &str)],
) -> &'a Sample {
    let matching: Vec<&Sample> = families[family]
        .samples
        .iter()
        .filter(|s| s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .collect();
    assert_eq!(matching.len(), 1, "{name} {want:?}: {matching:?}");
    matching[0]
}

#[test]
fn values_and_label_values() {
    let (m, _d) = scenario();
    let text = m.render();
    let f = parse(&text);
    let total = "litellm_proxy_total_requests_metric_total";
    let ok = sample(&f, total, total, &[("status_code", "200")]);
    assert_eq!(ok.value, 1.0);
    assert_eq!(ok.labels["end_user"], "my-new-end-user-1");
    assert_eq!(ok.labels["requested_model"], GROUP);
    assert_eq!(ok.labels["route"], "/chat/completions");
    assert_eq!(ok.labels["user_agent"], "locust");
    assert_eq!(ok.labels["model_id"], "m1");
    assert_eq!(ok.labels["hashed_api_key"], "");
    assert_eq!(sample(&f, total, total, &[("status_code", "429")]).value, 1.0);

    let failed = "litellm_proxy_failed_requests_metric_total";
    let s = sample(&f, failed, failed, &[]);
    assert_eq!(s.labels["exception_status"], "429");
    assert_eq!(s.labels["exception_class"], "RateLimitError");

    // Total latency is observed for successful requests only, as in LiteLLM.
    let lat = "litellm_request_total_latency_metric";
    let count = sample(&f, &format!("{lat}_count"), lat, &[]);
    assert_eq!(count.value, 1.0);
    assert_eq!(count.labels["model"], "openai/fake");
    let sum = sample(&f, &format!("{lat}_sum"), lat, &[]);
    assert!((sum.value - 0.12).abs() < 1e-9);

    // Queue time: arrival to the first upstream call, observed with the total latency.
    let queue = "litellm_request_queue_time_seconds";
    assert_eq!(sample(&f, &format!("{queue}_count"), queue, &[]).value, 1.0);
    assert!((sample(&f, &format!("{queue}_sum"), queue, &[]).value - 0.003).abs() < 1e-9);
    // The deprecated families: successes, and failures by deployment model.
    let requests = "litellm_requests_metric_total";
    let s = sample(&f, requests, requests, &[]);
    assert_eq!((s.value, s.labels["model"].as_str(), s.labels["user_agent"].as_str()), (1.0, "openai/fake", "locust"));
    let llm_failed = "litellm_llm_api_failed_requests_metric_total";
    let s = sample(&f, llm_failed, llm_failed, &[]);
    assert_eq!((s.value, s.labels["model"].as_str(), s.labels["model_id"].as_str()), (1.0, "openai/fake", "m1"));

    let over = "litellm_overhead_latency_metric";
    let s = sample(&f, &format!("{over}_sum"), over, &[("model_group", GROUP)]);
    assert!((s.value - 0.02).abs() < 1e-9);
    let sluice = "sluice_overhead_seconds";
    assert_eq!(sample(&f, &format!("{sluice}_count"), sluice, &[("api_provider", "openai")]).value, 2.0);

    for (name, v) in [
        ("litellm_input_tokens_metric_total", 10.0),
        ("litellm_output_tokens_metric_total", 5.0),
        ("litellm_total_tokens_metric_total", 15.0),
    ] {
        let s = sample(&f, name, name, &[("requested_model", GROUP)]);
        assert_eq!(s.value, v, "{name}");
        assert_eq!(s.labels["model"], "openai/fake");
        assert_eq!(s.labels["end_user"], "");
    }

    let dt = "litellm_deployment_total_requests_total";
    assert_eq!(sample(&f, dt, dt, &[("litellm_model_name", "openai/fake")]).value, 2.0);
    let ds = "litellm_deployment_success_responses_total";
    assert_eq!(sample(&f, ds, ds, &[]).value, 1.0);
    let df = "litellm_deployment_failure_responses_total";
    let s = sample(&f, df, df, &[("exception_status", "429")]);
    assert_eq!(s.value, 1.0);
    assert_eq!(s.labels["exception_class"], "RateLimitError");
    assert_eq!(s.labels["requested_model"], GROUP);

    let ttft = "litellm_llm_api_time_to_first_token_metric";
    assert!((sample(&f, &format!("{ttft}_sum"), ttft, &[]).value - 0.02).abs() < 1e-9);
    let pt = "litellm_deployment_latency_per_output_token";
    assert!((sample(&f, &format!("{pt}_sum"), pt, &[]).value - 0.02).abs() < 1e-9);

    let rr = "litellm_remaining_requests_metric";
    assert_eq!(sample(&f, rr, rr, &[("model_group", GROUP)]).value, 99.0);
    let rt = "litellm_remaining_tokens_metric";
    assert_eq!(sample(&f, rt, rt, &[]).value, 5000.0);
    let tpm = "litellm_deployment_tpm_limit";
    assert_eq!(sample(&f, tpm, tpm, &[("model_id", "m1")]).value, 100_000.0);
    let rpm = "litellm_deployment_rpm_limit";
    assert_eq!(sample(&f, rpm, rpm, &[]).value, 10_000.0);

    let fb = "litellm_deployment_successful_fallbacks_total";
    let s = sample(&f, fb, fb, &[("fallback_model", "other")]);
    assert_eq!(s.value, 1.0);
    assert_eq!(s.labels["exception_status"], "429");
    let ff = "litellm_deployment_failed_fallbacks_total";
    assert_eq!(sample(&f, ff, ff, &[]).value, 1.0);
}

#[test]
fn cooldown_counts_under_the_group_name() {
    let (m, _d) = scenario();
    let text = m.render();
    assert!(
        text.contains(
            "litellm_deployment_cooled_down_total{litellm_model_name=\"fake-openai-endpoint\",\
             model_id=\"m1\",api_base=\"http://up\",api_provider=\"openai\",\
             exception_status=\"429\"} 1\n"
        ),
        "{text}"
    );
}

fn state_line(m: &Metrics) -> String {
    m.render().lines().find(|l| l.starts_with("litellm_deployment_state{")).unwrap().to_owned()
}

#[test]
fn deployment_state_moves_0_1_2_0() {
    let m = Metrics::new();
    let d = m.deployment(&DeploymentLabels { tpm_limit: None, rpm_limit: None, ..labels() });
    let want = |v: u8| {
        format!(
            "litellm_deployment_state{{litellm_model_name=\"openai/fake\",model_id=\"m1\",\
             api_base=\"http://up\",api_provider=\"openai\"}} {v}"
        )
    };
    assert_eq!(state_line(&m), want(0));
    assert!(!m.render().contains("litellm_deployment_tpm_limit"));
    d.attempt_failed(GROUP, None, 500, "InternalServerError", Duration::ZERO);
    assert_eq!(state_line(&m), want(1));
    d.cooled_down(500);
    assert_eq!(state_line(&m), want(2));
    // A failure that lands while cooled down does not hide the outage.
    d.attempt_failed(GROUP, None, 500, "InternalServerError", Duration::ZERO);
    assert_eq!(d.state(), 2);
    d.healthy();
    assert_eq!(state_line(&m), want(0));
    d.attempt_failed(GROUP, None, 500, "InternalServerError", Duration::ZERO);
    d.attempt_succeeded(GROUP, None, Duration::from_millis(1), None, None);
    assert_eq!(state_line(&m), want(0));
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    let d = m.deployment(&labels());
    let nasty = "a\"b\\c\nd,le=\"1\"}";
    m.request_finished(&request(&d, 200, nasty));
    let text = m.render();
    assert!(text.contains("user_agent=\"a\\\"b\\\\c\\nd,le=\\\"1\\\"}\""), "{text}");
    let f = parse(&text);
    let total = "litellm_proxy_total_requests_metric_total";
    assert_eq!(sample(&f, total, total, &[]).labels["user_agent"], nasty);
}

#[test]
fn requested_model_other_than_the_group_gets_its_own_series() {
    let m = Metrics::new();
    let d = m.deployment(&labels());
    for _ in 0..3 {
        d.attempt_started("alias", None);
    }
    d.attempt_started(GROUP, None);
    let f = parse(&m.render());
    let dt = "litellm_deployment_total_requests_total";
    assert_eq!(sample(&f, dt, dt, &[("requested_model", "alias")]).value, 3.0);
    assert_eq!(sample(&f, dt, dt, &[("requested_model", GROUP)]).value, 1.0);
    // Nothing succeeded yet: no empty success-side series.
    assert!(!f.contains_key("litellm_llm_api_latency_metric"));
    assert!(!f.contains_key("litellm_deployment_success_responses_total"));
}

#[test]
fn two_registries_do_not_share_series() {
    let a = Metrics::new();
    let b = Metrics::new();
    let da = a.deployment(&labels());
    let db = b.deployment(&labels());
    a.request_finished(&request(&da, 200, "x"));
    a.request_finished(&request(&da, 200, "x"));
    b.request_finished(&request(&db, 200, "x"));
    let total = "litellm_proxy_total_requests_metric_total";
    assert_eq!(sample(&parse(&a.render()), total, total, &[]).value, 2.0);
    assert_eq!(sample(&parse(&b.render()), total, total, &[]).value, 1.0);
}

#[test]
fn records_from_many_threads_add_up() {
    let m = Metrics::new();
    let d = m.deployment(&labels());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (m, d) = (&m, &d);
            s.spawn(move || {
                let ua = if t % 2 == 0 { "even" } else { "odd" };
                for _ in 0..1000 {
                    d.attempt_started("alias", None);
                    d.attempt_succeeded("alias", None, Duration::from_millis(3), None, None);
                    m.request_finished(&request(d, 200, ua));
                }
            });
        }
    });
    let f = parse(&m.render());
    let total = "litellm_proxy_total_requests_metric_total";
    assert_eq!(sample(&f, total, total, &[("user_agent", "even")]).value, 2000.0);
    assert_eq!(sample(&f, total, total, &[("user_agent", "odd")]).value, 2000.0);
    let dt = "litellm_deployment_total_requests_total";
    assert_eq!(sample(&f, dt, dt, &[("requested_model", "alias")]).value, 4000.0);
    let api = "litellm_llm_api_latency_metric";
    let count = sample(&f, &format!("{api}_count"), api, &[]);
    assert_eq!(count.value, 4000.0);
    assert_eq!(count.labels["requested_model"], "alias");
    let inf = sample(&f, &format!("{api}_bucket"), api, &[("le", "+Inf")]);
    assert_eq!(inf.value, 4000.0);
    let le5ms = sample(&f, &format!("{api}_bucket"), api, &[("le", "0.005")]);
    assert_eq!(le5ms.value, 4000.0);
}

#[test]
fn spend_and_budgets_render_like_litellm() {
    let (m, _d) = scenario();
    let f = parse(&m.render());
    let spend = "litellm_spend_metric_total";
    let s = sample(&f, spend, spend, &[]);
    assert_eq!(s.value, 0.25);
    assert_eq!(s.labels["model"], "openai/fake");
    assert_eq!(s.labels["model_id"], "m1");
    assert_eq!(s.labels["end_user"], "my-new-end-user-1");
    assert_eq!(s.labels["hashed_api_key"], "");

    let key = [("api_key_alias", "prod-key")];
    let rk = "litellm_remaining_api_key_budget_metric";
    assert_eq!(sample(&f, rk, rk, &key).value, 7.5);
    let mk = "litellm_api_key_max_budget_metric";
    assert_eq!(sample(&f, mk, mk, &key).value, 10.0);
    let hk = "litellm_api_key_budget_remaining_hours_metric";
    assert_eq!(sample(&f, hk, hk, &key).value, 12.0);
    let rt = "litellm_remaining_team_budget_metric";
    assert_eq!(sample(&f, rt, rt, &[("team", "team-1"), ("team_alias", "Team One")]).value, 60.0);
    let ru = "litellm_remaining_user_budget_metric";
    assert_eq!(sample(&f, ru, ru, &[("user", "user-1")]).value, 4.0);
    let kr = "litellm_remaining_api_key_requests_for_model";
    let s = sample(&f, kr, kr, &key);
    assert_eq!(s.value, 9.0);
    assert_eq!(s.labels["model"], GROUP);
    assert_eq!(s.labels["model_id"], "m1");
    let kt = "litellm_remaining_api_key_tokens_for_model";
    assert_eq!(sample(&f, kt, kt, &key).value, 900.0);
}

#[test]
fn budgets_without_a_max_are_infinite_and_export_no_max() {
    let m = Metrics::new();
    let key = m.caller(&key_labels());
    m.key_budget(&key, None, None, None);
    m.team_budget("t", "", None, None, None);
    let text = m.render();
    assert!(text.contains("litellm_remaining_team_budget_metric{team=\"t\",team_alias=\"\"} +Inf\n"), "{text}");
    let f = parse(&text);
    let rk = "litellm_remaining_api_key_budget_metric";
    assert_eq!(sample(&f, rk, rk, &[]).value, f64::INFINITY);
    for absent in ["litellm_api_key_max_budget_metric", "litellm_api_key_budget_remaining_hours_metric"] {
        assert!(!f.contains_key(absent), "{absent}");
    }
    // A later max budget and a new spend update the same series.
    m.key_budget(&key, Some(20.0), Some(15.0), None);
    let f = parse(&m.render());
    assert_eq!(sample(&f, rk, rk, &[]).value, 15.0);
    let mk = "litellm_api_key_max_budget_metric";
    assert_eq!(sample(&f, mk, mk, &[]).value, 20.0);
}

/// Every series a request with a virtual key touches, recorded once.
fn record_with(m: &Metrics, d: &DeploymentMetrics, key: &Caller, requested_model: &str) {
    let caller = Some(key);
    let usage = Some(Usage { prompt_tokens: 10, completion_tokens: 5 });
    d.attempt_started(requested_model, caller);
    d.attempt_failed(requested_model, caller, 429, "RateLimitError", Duration::from_millis(5));
    d.attempt_started(requested_model, caller);
    d.attempt_succeeded(requested_model, caller, Duration::from_millis(100), Some(Duration::from_millis(20)), usage);
    d.stream_usage(requested_model, caller, Usage { prompt_tokens: 1, completion_tokens: 1 });
    d.remaining(caller, Some(99.0), Some(5000.0));
    m.fallback(requested_model, "other", caller, true, 429, "RateLimitError");
    let ok = RequestRecord { requested_model, caller, spend: 0.5, ..request(d, 200, "locust") };
    m.request_finished(&ok);
    m.request_finished(&RequestRecord { status: 429, spend: 0.0, ..ok });
}

#[test]
fn a_callers_labels_reach_every_per_request_series() {
    let m = Metrics::new();
    let d = m.deployment(&labels());
    let key = m.caller(&key_labels());
    // Own group (the pre-resolved path for no caller) and another requested model.
    for model in [GROUP, "alias"] {
        record_with(&m, &d, &key, model);
        record_with(&m, &d, &key, model);
    }
    let text = m.render();
    let f = parse(&text);
    let want = key_labels();
    let mut checked = 0;
    for family in f.values() {
        for s in &family.samples {
            let mut any = false;
            for (label, value) in [
                ("hashed_api_key", &want.hashed_api_key),
                ("api_key_alias", &want.api_key_alias),
                ("team", &want.team),
                ("team_alias", &want.team_alias),
                ("user", &want.user),
                ("user_email", &want.user_email),
            ] {
                if let Some(got) = s.labels.get(label) {
                    assert_eq!(got, value, "{label} on {}", s.name);
                    any = true;
                }
            }
            checked += usize::from(any);
        }
    }
    assert!(checked > 50, "{checked}");
    // Counts add up per caller series, on both the cached and the first-seen path.
    let total = "litellm_proxy_total_requests_metric_total";
    assert_eq!(sample(&f, total, total, &[("status_code", "200"), ("requested_model", "alias")]).value, 2.0);
    let dt = "litellm_deployment_total_requests_total";
    assert_eq!(sample(&f, dt, dt, &[("requested_model", GROUP)]).value, 4.0);
    let spend = "litellm_spend_metric_total";
    assert_eq!(sample(&f, spend, spend, &[]).value, 2.0);
    let tokens = "litellm_input_tokens_metric_total";
    assert_eq!(sample(&f, tokens, tokens, &[("requested_model", GROUP)]).value, 22.0);
}

#[test]
fn no_caller_keeps_key_labels_empty_and_callers_get_their_own_series() {
    let m = Metrics::new();
    let d = m.deployment(&labels());
    let key = m.caller(&key_labels());
    let renamed = m.caller(&CallerLabels { api_key_alias: "renamed".into(), ..key_labels() });
    for caller in [None, Some(&key), Some(&renamed), Some(&key)] {
        d.attempt_started(GROUP, caller);
        m.request_finished(&RequestRecord { caller, ..request(&d, 200, "locust") });
    }
    let f = parse(&m.render());
    let total = "litellm_proxy_total_requests_metric_total";
    let anon = sample(&f, total, total, &[("hashed_api_key", "")]);
    assert_eq!(anon.value, 1.0);
    assert!(["api_key_alias", "team", "team_alias", "user", "user_email"].iter().all(|l| anon.labels[*l].is_empty()));
    assert_eq!(sample(&f, total, total, &[("api_key_alias", "prod-key")]).value, 2.0);
    assert_eq!(sample(&f, total, total, &[("api_key_alias", "renamed")]).value, 1.0);
    let dt = "litellm_deployment_total_requests_total";
    assert_eq!(sample(&f, dt, dt, &[("api_key_alias", "prod-key")]).value, 2.0);
    assert_eq!(sample(&f, dt, dt, &[("api_key_alias", "")]).value, 1.0);
}

#[test]
fn only_the_hash_the_server_passes_is_exported() {
    let raw = "sk-1234-raw-virtual-key";
    let m = Metrics::new();
    let d = m.deployment(&labels());
    let key = m.caller(&CallerLabels { hashed_api_key: "hashed-by-server".into(), ..key_labels() });
    record_with(&m, &d, &key, GROUP);
    m.key_budget(&key, Some(1.0), Some(1.0), None);
    d.key_remaining(&key, Some(1.0), None);
    let text = m.render();
    assert!(!text.contains(raw));
    assert!(!text.contains("sk-"), "{text}");
    assert!(text.contains("hashed_api_key=\"hashed-by-server\""));
}

#[test]
fn content_type_is_prometheus_text() {
    assert_eq!(Metrics::content_type(), "text/plain; version=0.0.4; charset=utf-8");
}
