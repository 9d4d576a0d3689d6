//! Providers that need translation, end to end through `sluice mock`: the seed's Vertex AI config
//! verbatim (only the api_base hosts and the key file changed), Vertex AI's partner models,
//! Anthropic deployments, and the Anthropic `/v1/messages` front door.

mod common;
use common::*;

/// The seed's second config, as the load-test guide prints it.
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

const TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../providers/tests/fixtures/vertex-test-sa.json");

/// The test service-account key with its token_uri pointed at `mock`.
fn key_for(mock: &Proc) -> std::path::PathBuf {
    let mut key: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(TEST_KEY).unwrap()).unwrap();
    key["token_uri"] = serde_json::Value::String(format!("http://{}/token", mock.addr));
    let path = std::env::temp_dir().join(format!("sluice-vertex-key-{}-{}.json", std::process::id(), mock.addr.port()));
    std::fs::write(&path, key.to_string()).unwrap();
    path
}

#[test]
fn the_seed_vertex_config_works_verbatim() {
    // Host A (which also serves the key's token endpoint and accepts only tokens it issued) limits
    // the seed's route to 4 requests per 10 s; host B is unlimited and takes any bearer token.
    let a = mock(&["--vertex-credentials", TEST_KEY, "--rate-limit", "/v1/projects/bad-adroit-crow-413218=4/10s"]);
    let b = mock(&["--no-default-rate-limit"]);
    let key = key_for(&a);
    let config = SEED_VERTEX
        .replace("https://exampleopenaiendpoint-production.up.railway.app", &format!("http://{}", a.addr))
        .replace("https://exampleopenaiendpoint-production-c715.up.railway.app", &format!("http://{}", b.addr))
        .replace("/etc/secrets/adroit_crow.json", key.to_str().unwrap())
        + "general_settings:\n  master_key: sk-1234\n";
    let g = gateway(&config, None);

    let r = post(g.addr, "/chat/completions", &chat_for("gemini-vision", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "gemini-vision");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().len() > 1);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let r = post(
        g.addr,
        "/chat/completions",
        &chat_for("gemini-vision", true)
            .replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{}", r.text());
    let chunks: Vec<serde_json::Value> =
        frames[..frames.len() - 1].iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    assert!(chunks.iter().any(|c| c["choices"][0]["delta"]["content"].is_string()));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(chunks.last().unwrap()["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // Past host A's quota its 429s cool it down and the retries land on host B: clients see none.
    for i in 0..20 {
        let r = post(g.addr, "/chat/completions", &chat_for("gemini-vision", false));
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    let sa = mock_stats(&a);
    let sb = mock_stats(&b);
    assert!(sa["rate_limited"].as_u64().unwrap() >= 1, "host A hit its limit: {sa}");
    assert!(sb["by_route"]["vertex"].as_u64().unwrap() >= 10, "host B took the rest: {sb}");
    assert_eq!(sa["tokens_issued"].as_u64().unwrap(), 1, "one token, cached and shared by both deployments: {sa}");
    let metrics = request(g.addr, "GET", "/metrics", None, b"").text();
    assert!(metrics.contains("litellm_deployment_cooled_down_total{"), "cooldowns are visible in Prometheus");
}

#[test]
fn a_bad_key_is_a_clear_error_not_a_crash() {
    let m = mock(&["--vertex-credentials", TEST_KEY]);
    let config = format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: vertex_ai/gemini-pro\n      api_base: http://{}/\n      vertex_project: p\n      vertex_credentials: /nonexistent/key.json\ngeneral_settings:\n  master_key: sk-1234\n",
        m.addr
    );
    let g = gateway(&config, None);
    let r = post(g.addr, "/chat/completions", &chat_for("g", false));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.error_message().contains("vertex_credentials"), "{}", r.text());
}

#[test]
fn anthropic_deployments_and_the_messages_front_door() {
    let m = mock(&[]);
    let g = gateway(
        r#"
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20241022
      api_base: {MOCK}
      api_key: sk-ant-test
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_base: {MOCK}
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    // OpenAI clients reach an Anthropic deployment.
    let r = post(g.addr, "/chat/completions", &chat_for("claude", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "claude");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().contains("Anthropic"));
    let r = post(g.addr, "/chat/completions", &chat_for("claude", true));
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{}", r.text());

    // Anthropic clients reach an OpenAI-format deployment through /v1/messages.
    let body = r#"{"model":"fake-openai-endpoint","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(g.addr, "POST", "/v1/messages", Some("sk-1234"), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["type"], "text");
    let r = request(
        g.addr,
        "POST",
        "/v1/messages",
        Some("sk-1234"),
        body.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"").as_bytes(),
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    for event in ["event: message_start", "event: content_block_delta", "event: message_stop"] {
        assert!(text.contains(event), "{event} missing from {text}");
    }
    // Anthropic clients reaching an Anthropic deployment pass through untouched (but for model).
    let body = r#"{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(g.addr, "POST", "/v1/messages", Some("sk-1234"), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "claude-3-5-sonnet-20241022", "the upstream's own answer, not a translation");
    let r = request(
        g.addr,
        "POST",
        "/v1/messages",
        Some("sk-1234"),
        body.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("event: ping"), "the upstream's event stream as sent: {}", r.text());
    // Errors keep Anthropic's shape.
    let r =
        request(g.addr, "POST", "/v1/messages", Some("sk-1234"), br#"{"model":"nope","max_tokens":5,"messages":[]}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error");
}

#[test]
fn azure_deployments_use_deployment_urls_and_api_key() {
    let m = mock(&[]);
    let g = gateway(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: {MOCK}
      api_version: "2024-10-21"
      api_key: azure-test-key
  - model_name: embedder
    litellm_params:
      model: azure/my-embedding-deployment
      api_base: {MOCK}
      api_key: azure-test-key
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    let r = post(g.addr, "/chat/completions", &chat_for("gpt-4o", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "gpt-4o");
    let r = post(g.addr, "/chat/completions", &chat_for("gpt-4o", true));
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let first: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(first["choices"], serde_json::json!([]), "Azure's content-filter chunk is relayed");
    let text = stream_text(&frames);
    assert!(text.contains("fixed OpenAI endpoint"), "{text}");
    let r = post(g.addr, "/embeddings", r#"{"model":"embedder","input":"hi"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let s = mock_stats(&m);
    assert!(s["by_route"]["chat"].as_u64().unwrap() >= 2 && s["by_route"]["embeddings"].as_u64().unwrap() >= 1, "{s}");
}

#[test]
fn bedrock_converse_signed_with_sigv4_streamed_and_not() {
    let m = mock(&[]);
    let g = gateway(
        r#"
model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
      api_base: {MOCK}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
  - model_name: no-credentials
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      api_base: {MOCK}
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    let r = post(g.addr, "/chat/completions", &chat_for("claude-bedrock", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "claude-bedrock");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().contains("Bedrock"));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let body = chat_for("claude-bedrock", true)
        .replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    let r = post(g.addr, "/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{}", r.text());
    let text = stream_text(&frames);
    assert!(text.contains("Bedrock"), "{text}");
    assert!(mock_stats(&m)["by_route"]["bedrock"].as_u64().unwrap() >= 2);
    // A deployment without credentials answers with what is missing; the others keep serving.
    let r = post(g.addr, "/chat/completions", &chat_for("no-credentials", false));
    assert_eq!(r.status, 500);
    assert!(r.error_message().contains("aws_region_name") || r.error_message().contains("AWS"), "{}", r.text());
}

#[test]
fn google_ai_studio_gemini_with_an_api_key() {
    let m = mock(&[]);
    let g = gateway(
        r#"
model_list:
  - model_name: flash
    litellm_params:
      model: gemini/gemini-1.5-flash
      api_base: {MOCK}v1beta
      api_key: test-studio-key
general_settings:
  master_key: sk-1234
"#,
        Some(&m),
    );
    let r = post(g.addr, "/chat/completions", &chat_for("flash", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "flash");
    let r = post(g.addr, "/chat/completions", &chat_for("flash", true));
    assert_eq!(sse_data(&r.body).last().map(String::as_str), Some("[DONE]"), "{}", r.text());
    assert!(mock_stats(&m)["by_route"]["gemini"].as_u64().unwrap() >= 2, "served by the AI Studio routes");
}

#[test]
fn concurrent_first_requests_share_one_token_refresh() {
    let m = mock(&["--vertex-credentials", TEST_KEY, "--no-default-rate-limit", "--latency", "20ms"]);
    let key = key_for(&m);
    let config = format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: vertex_ai/gemini-1.5-pro\n      api_base: http://{}/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro\n      vertex_credentials: {}\ngeneral_settings:\n  master_key: sk-1234\n",
        m.addr,
        key.display()
    );
    let g = gateway(&config, None);
    let start = std::sync::Arc::new(std::sync::Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let start = start.clone();
            let addr = g.addr;
            std::thread::spawn(move || {
                start.wait();
                post(addr, "/chat/completions", &chat_for("g", false)).status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(mock_stats(&m)["tokens_issued"], 1, "16 concurrent first requests, one token fetch");
}

/// The shared provider matrix (as TensorZero's provider test macro): every provider runs the same
/// cases against `sluice mock` — a plain answer, a stream with usage, a tool call, the error
/// statuses and LiteLLM's classes for them, and bad upstream bytes (a body that is not JSON, a
/// stream that turns to garbage, a stream whose connection breaks).
mod matrix {
    use super::*;

    /// One provider: its name in model group names, how its deployment is written for a model,
    /// whether the mock answers its tool requests with a call, and what the client sees for each
    /// upstream error status (status, LiteLLM class).
    struct Provider {
        name: &'static str,
        deployment: fn(&str) -> String,
        tools: bool,
        errors: &'static [(u16, u16, &'static str)],
    }

    /// Upstream statuses and what a client sees for each, for providers classified by status.
    const ERRORS: &[(u16, u16, &str)] = &[
        (400, 400, "BadRequestError"),
        (401, 401, "AuthenticationError"),
        (429, 429, "RateLimitError"),
        (500, 500, "InternalServerError"),
    ];

    /// Bedrock is classified by its `x-amzn-errortype` first, as LiteLLM does: the mock names a
    /// 401 a `ValidationException` (a 400), and a Bedrock 500 is reported as 503.
    const BEDROCK_ERRORS: &[(u16, u16, &str)] = &[
        (400, 400, "BadRequestError"),
        (401, 400, "BadRequestError"),
        (429, 429, "RateLimitError"),
        (500, 503, "ServiceUnavailableError"),
    ];

    const PROVIDERS: &[Provider] = &[
        Provider {
            name: "openai",
            deployment: |m| format!("model: openai/{m}\n      api_base: {{MOCK}}"),
            tools: false,
            errors: ERRORS,
        },
        Provider {
            name: "azure",
            deployment: |m| {
                format!("model: azure/{m}\n      api_base: {{MOCK}}\n      api_key: az-key\n      api_version: \"2024-10-21\"")
            },
            tools: false,
            errors: ERRORS,
        },
        Provider {
            name: "anthropic",
            deployment: |m| format!("model: anthropic/{m}\n      api_base: {{MOCK}}\n      api_key: sk-ant"),
            tools: true,
            errors: ERRORS,
        },
        Provider {
            name: "vertex",
            deployment: |m| {
                format!("model: vertex_ai/{m}\n      api_base: {{MOCK}}\n      vertex_project: p\n      vertex_credentials: {{KEY}}")
            },
            tools: true,
            errors: ERRORS,
        },
        // Vertex AI's partner models: the model's last segment names the mock's case.
        Provider {
            name: "vertex-claude",
            deployment: |m| {
                format!("model: vertex_ai/claude/{m}\n      api_base: {{MOCK}}\n      vertex_project: p\n      vertex_credentials: {{KEY}}")
            },
            tools: true,
            errors: ERRORS,
        },
        Provider {
            name: "vertex-llama",
            deployment: |m| {
                format!("model: vertex_ai/meta/llama/{m}\n      api_base: {{MOCK}}\n      vertex_project: p\n      vertex_credentials: {{KEY}}")
            },
            tools: false,
            errors: ERRORS,
        },
        Provider {
            name: "vertex-mistral",
            deployment: |m| {
                format!("model: vertex_ai/mistral/{m}\n      api_base: {{MOCK}}\n      vertex_project: p\n      vertex_credentials: {{KEY}}")
            },
            tools: false,
            errors: ERRORS,
        },
        Provider {
            name: "gemini",
            deployment: |m| format!("model: gemini/{m}\n      api_base: {{MOCK}}v1beta\n      api_key: studio-key"),
            tools: true,
            errors: ERRORS,
        },
        Provider {
            name: "bedrock",
            deployment: |m| {
                format!("model: bedrock/{m}\n      api_base: {{MOCK}}\n      aws_region_name: us-east-1\n      aws_access_key_id: AKIDEXAMPLE\n      aws_secret_access_key: secret")
            },
            tools: true,
            errors: BEDROCK_ERRORS,
        },
    ];

    /// The mock's model names for each case (`ok` is an ordinary model).
    const MODELS: &[&str] =
        &["ok", "error-400", "error-401", "error-429", "error-500", "garbage", "stream-garbage", "stream-reset"];

    fn config(mock: &Proc) -> String {
        let mut out = String::from("model_list:\n");
        for p in PROVIDERS {
            for m in MODELS {
                out.push_str(&format!(
                    "  - model_name: {}-{m}\n    litellm_params:\n      {}\n",
                    p.name,
                    (p.deployment)(m)
                ));
            }
        }
        out.push_str("router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n");
        out.push_str("general_settings:\n  master_key: sk-1234\n");
        out.replace("{MOCK}", &format!("http://{}/", mock.addr)).replace("{KEY}", key_for(mock).to_str().unwrap())
    }

    fn with_usage(body: String) -> String {
        body.replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}")
    }

    fn tool_request(model: &str, stream: bool) -> String {
        format!(
            r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"please use the tool"}}],"tools":[{{"type":"function","function":{{"name":"get_weather","description":"w","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}}}}}}}}]}}"#
        )
    }

    /// The chunks of a stream, without `[DONE]`.
    fn chunks(frames: &[String]) -> Vec<serde_json::Value> {
        frames.iter().filter(|f| *f != "[DONE]").map(|f| serde_json::from_str(f).unwrap()).collect()
    }

    fn check(g: &Proc, p: &Provider) {
        let group = |m: &str| format!("{}-{m}", p.name);
        let who = p.name;

        // Plain.
        let r = post(g.addr, "/chat/completions", &chat_for(&group("ok"), false));
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        let v = r.json();
        assert_eq!(v["model"], group("ok"), "{who}");
        assert_eq!(v["object"], "chat.completion", "{who}");
        assert!(!v["choices"][0]["message"]["content"].as_str().unwrap_or_default().is_empty(), "{who}: {v}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{who}: {v}");
        assert!(v["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0, "{who} reports usage: {v}");

        // Streamed, with usage.
        let r = post(g.addr, "/chat/completions", &with_usage(chat_for(&group("ok"), true)));
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        let frames = sse_data(&r.body);
        assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{who}: {}", r.text());
        let cs = chunks(&frames);
        assert!(!stream_text(&frames).is_empty(), "{who}: {}", r.text());
        assert!(cs.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"), "{who}: {}", r.text());
        assert!(cs.last().unwrap()["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0, "{who}: {}", r.text());

        // A tool call, answered and streamed.
        if p.tools {
            let r = post(g.addr, "/chat/completions", &tool_request(&group("ok"), false));
            assert_eq!(r.status, 200, "{who}: {}", r.text());
            let v = r.json();
            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{who}: {v}");
            assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather", "{who}: {v}");
            let r = post(g.addr, "/chat/completions", &tool_request(&group("ok"), true));
            assert_eq!(r.status, 200, "{who}: {}", r.text());
            let cs = chunks(&sse_data(&r.body));
            assert!(
                cs.iter().any(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"),
                "{who}: {}",
                r.text()
            );
            assert!(cs.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"), "{who}: {}", r.text());
        }

        // Error statuses keep their status and get LiteLLM's class.
        for (upstream, status, class) in p.errors {
            let r = post(g.addr, "/chat/completions", &chat_for(&group(&format!("error-{upstream}")), false));
            assert_eq!(r.status, *status, "{who}: {}", r.text());
            assert!(r.error_message().starts_with(&format!("litellm.{class}: ")), "{who} {status}: {}", r.text());
        }

        // A 2xx body that is not the provider's format is a 500 naming the provider.
        let r = post(g.addr, "/chat/completions", &chat_for(&group("garbage"), false));
        assert_eq!(r.status, 500, "{who}: {}", r.text());
        assert!(r.error_message().starts_with("litellm.APIError: "), "{who}: {}", r.text());

        // Anthropic clients at /v1/messages reach every provider and get Anthropic's shapes.
        let body =
            format!(r#"{{"model":"{}","max_tokens":50,"messages":[{{"role":"user","content":"hi"}}]}}"#, group("ok"));
        let r = request(g.addr, "POST", "/v1/messages", Some("sk-1234"), body.as_bytes());
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        let v = r.json();
        assert_eq!((v["type"].as_str(), v["role"].as_str()), (Some("message"), Some("assistant")), "{who}: {v}");
        assert_eq!(v["content"][0]["type"], "text", "{who}: {v}");
        assert!(v["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0, "{who}: {v}");
        let streamed = body.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
        let r = request(g.addr, "POST", "/v1/messages", Some("sk-1234"), streamed.as_bytes());
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        let text = r.text();
        for event in ["event: message_start", "event: content_block_delta", "event: message_stop"] {
            assert!(text.contains(event), "{who}: {event} missing from {text}");
        }
        assert!(!text.contains("[DONE]") && !text.contains("chat.completion"), "{who}: no OpenAI text: {text}");
        let failing = body.replace(&group("ok"), &group("error-429"));
        let r = request(g.addr, "POST", "/v1/messages", Some("sk-1234"), failing.as_bytes());
        assert_eq!(r.status, 429, "{who}: {}", r.text());
        assert_eq!(r.json()["type"], "error", "{who}: {}", r.text());

        // Text completions: the provider's own API, or made through its chat (LiteLLM's
        // `text_completion`), with the same statuses and classes for the upstream's errors.
        let completion =
            |m: &str, stream: bool| format!(r#"{{"model":"{}","prompt":"hi","stream":{stream}}}"#, group(m));
        let r = post(g.addr, "/completions", &completion("ok", false));
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        let v = r.json();
        assert_eq!(
            (v["object"].as_str(), v["model"].as_str()),
            (Some("text_completion"), Some(group("ok").as_str())),
            "{who}: {v}"
        );
        assert!(!v["choices"][0]["text"].as_str().unwrap_or_default().is_empty(), "{who}: {v}");
        assert!(v["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0, "{who}: {v}");
        let r = post(g.addr, "/completions", &with_usage(completion("ok", true)));
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        let frames = sse_data(&r.body);
        assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{who}: {}", r.text());
        let cs = chunks(&frames);
        // (Azure's own opening chunk of prompt filter results is relayed as Azure sends it.)
        let texts = cs.iter().filter(|c| c["choices"] != serde_json::json!([]));
        assert!(texts.clone().all(|c| c["object"] == "text_completion"), "{who}: {}", r.text());
        assert!(
            texts.clone().any(|c| c["choices"][0]["text"].as_str().is_some_and(|t| !t.is_empty())),
            "{who}: {}",
            r.text()
        );
        assert!(cs.last().unwrap()["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0, "{who}: {}", r.text());
        for (upstream, status, class) in p.errors {
            let r = post(g.addr, "/completions", &completion(&format!("error-{upstream}"), false));
            assert_eq!(r.status, *status, "{who}: {}", r.text());
            assert!(r.error_message().starts_with(&format!("litellm.{class}: ")), "{who} {status}: {}", r.text());
        }

        // A stream that turns bad ends with an error event, never with [DONE]; a completion's
        // stream that breaks before its first text (the chat's opening role chunk is no
        // completion chunk) is an error answer instead.
        for m in ["stream-garbage", "stream-reset"] {
            let r = post(g.addr, "/completions", &completion(m, true));
            let frames = sse_data(&r.body);
            let error = match r.status {
                200 => serde_json::from_str(frames.last().unwrap()).unwrap(),
                _ => r.json(),
            };
            assert_ne!(frames.last().map(String::as_str), Some("[DONE]"), "{who} {m} completion: {}", r.text());
            let message = error["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("litellm."), "{who} {m} completion: {}", r.text());
            let r = post(g.addr, "/chat/completions", &chat_for(&group(m), true));
            assert_eq!(r.status, 200, "{who} {m}: {}", r.text());
            let frames = sse_data(&r.body);
            assert_ne!(frames.last().map(String::as_str), Some("[DONE]"), "{who} {m}: {}", r.text());
            let last: serde_json::Value = serde_json::from_str(frames.last().unwrap()).unwrap();
            assert!(last["error"]["message"].as_str().is_some_and(|m| m.starts_with("litellm.")), "{who} {m}: {last}");
        }
    }

    #[test]
    fn every_provider_passes_the_same_cases() {
        let m = mock(&["--no-default-rate-limit"]);
        let g = gateway(&config(&m), None);
        for p in PROVIDERS {
            check(&g, p);
        }
    }
}

/// Vertex AI's partner models reach their own doors with the Google token Gemini uses: Claude's
/// `rawPredict`/`streamRawPredict` with Anthropic's body (no `model`, `anthropic_version`), Llama
/// at the OpenAI-compatible `endpoints/openapi`, Mistral at its publisher's `rawPredict` with
/// `model` in the body; plain, streamed, a tool call, and each billed at its price.
#[test]
fn vertex_partner_models_reach_their_doors_with_the_google_token() {
    let m = mock(&["--vertex-credentials", TEST_KEY, "--record", "--no-default-rate-limit"]);
    let key = key_for(&m);
    let deployment = |name: &str, model: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: vertex_ai/{model}\n      api_base: {{MOCK}}\n      vertex_project: proj\n      vertex_location: us-east5\n      vertex_credentials: {}\n",
            key.display()
        )
    };
    let config = format!(
        "model_list:\n{}{}{}general_settings:\n  master_key: sk-1234\n",
        deployment("claude", "claude-3-5-sonnet@20240620"),
        deployment("llama", "meta/llama-3.1-405b-instruct-maas"),
        deployment("mistral", "mistral-large@2407"),
    );
    let g = gateway(&config, Some(&m));
    let last = || request(m.addr, "GET", "/mock/last", None, b"").json();
    let place = "/projects/proj/locations/us-east5";
    for (group, path, stream_path) in [
        (
            "claude",
            format!("/v1{place}/publishers/anthropic/models/claude-3-5-sonnet@20240620:rawPredict"),
            format!("/v1{place}/publishers/anthropic/models/claude-3-5-sonnet@20240620:streamRawPredict"),
        ),
        (
            "llama",
            format!("/v1beta1{place}/endpoints/openapi/chat/completions"),
            format!("/v1beta1{place}/endpoints/openapi/chat/completions"),
        ),
        (
            "mistral",
            format!("/v1{place}/publishers/mistralai/models/mistral-large@2407:rawPredict"),
            format!("/v1{place}/publishers/mistralai/models/mistral-large@2407:streamRawPredict"),
        ),
    ] {
        let r = post(g.addr, "/chat/completions", &chat_for(group, false));
        assert_eq!(r.status, 200, "{group}: {}", r.text());
        let v = r.json();
        assert_eq!(v["model"], group);
        assert!(!v["choices"][0]["message"]["content"].as_str().unwrap_or_default().is_empty(), "{group}: {v}");
        let cost: f64 = r.header("x-litellm-response-cost").and_then(|c| c.parse().ok()).unwrap_or(0.0);
        assert!(cost > 0.0, "{group} is billed at its price: {:?}", r.headers);
        let seen = last();
        assert_eq!(seen["path"], path.as_str(), "{group}");
        assert!(seen["headers"]["authorization"].as_str().unwrap().starts_with("Bearer "), "{group}: {seen}");
        let sent: serde_json::Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
        match group {
            "claude" => {
                assert!(sent.get("model").is_none(), "{sent}");
                assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");
                assert!(seen["headers"].get("x-api-key").is_none(), "the token rides in authorization only");
            }
            "llama" => assert_eq!(sent["model"], "meta/llama-3.1-405b-instruct-maas"),
            _ => assert_eq!(sent["model"], "mistral-large"),
        }

        let body = chat_for(group, true)
            .replace("\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        let r = post(g.addr, "/chat/completions", &body);
        assert_eq!(r.status, 200, "{group}: {}", r.text());
        let frames = sse_data(&r.body);
        assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{group}: {}", r.text());
        assert!(!stream_text(&frames).is_empty(), "{group}: {}", r.text());
        let usage: serde_json::Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
        assert!(usage["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0, "{group}: {usage}");
        assert!(frames.iter().filter(|f| *f != "[DONE]").all(|f| f.contains(&format!("\"model\":\"{group}\""))));
        assert_eq!(last()["path"], stream_path.as_str(), "{group}");
    }

    // Claude on Vertex calls tools as Anthropic does.
    let tools = r#"{"model":"claude","messages":[{"role":"user","content":"please use the tool"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}]}"#;
    let r = post(g.addr, "/chat/completions", tools);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    let sent: serde_json::Value = serde_json::from_str(last()["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["tools"][0]["name"], "get_weather", "Anthropic's tool shape: {sent}");
    let r = post(g.addr, "/chat/completions", &tools.replace("\"messages\"", "\"stream\":true,\"messages\""));
    let frames = sse_data(&r.body);
    assert!(frames.iter().any(|f| f.contains("\"tool_calls\"") && f.contains("get_weather")), "{}", r.text());
}

/// An upstream error on a partner model keeps its status and gets LiteLLM's class, named as a
/// Vertex failure; a token the mock did not issue is its 401.
#[test]
fn vertex_partner_errors_are_litellms_classes() {
    let m = mock(&["--vertex-credentials", TEST_KEY, "--no-default-rate-limit"]);
    let key = key_for(&m);
    let config = format!(
        "model_list:\n  - model_name: claude-busy\n    litellm_params:\n      model: vertex_ai/claude/error-529\n      api_base: {{MOCK}}\n      vertex_project: p\n      vertex_credentials: {k}\n  - model_name: llama-limited\n    litellm_params:\n      model: vertex_ai/meta/llama/error-429\n      api_base: {{MOCK}}\n      vertex_project: p\n      vertex_credentials: {k}\nrouter_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: sk-1234\n",
        k = key.display()
    );
    let g = gateway(&config, Some(&m));
    let r = post(g.addr, "/chat/completions", &chat_for("claude-busy", false));
    assert_eq!(r.status, 500, "Anthropic's 529 is LiteLLM's 500: {}", r.text());
    assert!(r.error_message().starts_with("litellm.InternalServerError: VertexAIException - "), "{}", r.text());
    let r = post(g.addr, "/chat/completions", &chat_for("llama-limited", false));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.error_message().starts_with("litellm.RateLimitError: VertexAIException - "), "{}", r.text());
}

/// A provider that echoes the credential it was sent in its error (as some OpenAI-compatible
/// servers do; the mock with `--provider-key` does) must not hand the deployment's key to the
/// caller: the error says `[redacted]` where the key was, on the OpenAI-format path, a translated
/// provider's and the Files API's.
#[test]
fn an_upstream_that_echoes_the_deployments_key_does_not_hand_it_to_the_caller() {
    let m = mock(&["--provider-key", "the-right-provider-key", "--no-default-rate-limit"]);
    let wrong = "sk-wrong-deployment-key-5e1d";
    let config = format!(
        r#"
model_list:
  - model_name: compatible
    litellm_params:
      model: openai/gpt-4o
      api_base: "{{MOCK}}v1"
      api_key: {wrong}
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20240620
      api_base: "{{MOCK}}"
      api_key: {wrong}
router_settings:
  disable_cooldowns: true
general_settings:
  master_key: sk-1234
"#
    );
    let g = gateway(&config, Some(&m));
    for model in ["compatible", "claude"] {
        for stream in [false, true] {
            let r =
                request(g.addr, "POST", "/v1/chat/completions", Some("sk-1234"), chat_for(model, stream).as_bytes());
            assert_eq!(r.status, 401, "{model} stream={stream}: {}", r.text());
            let text = r.text();
            assert!(!text.contains(wrong), "{model} stream={stream}: the key reached the caller: {text}");
            assert!(text.contains("Incorrect API key provided: [redacted]"), "{model} stream={stream}: {text}");
        }
    }
    let files = request(g.addr, "GET", "/v1/files?target_model_names=compatible", Some("sk-1234"), b"");
    assert_eq!(files.status, 401, "{}", files.text());
    assert!(!files.text().contains(wrong) && files.text().contains("[redacted]"), "{}", files.text());
    assert!(!g.stderr().contains(wrong), "{}", g.stderr());
}
