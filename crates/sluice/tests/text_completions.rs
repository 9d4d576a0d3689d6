//! `/v1/completions` on providers that only chat (LiteLLM's `text_completion`), end to end
//! through `sluice mock`: the prompt sent as the chat's user message with the completion's
//! parameters mapped by the provider's own translation, the answer and the stream in the
//! `text_completion` shape, billed at the chat prices and logged as `atext_completion`.

mod common;
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../providers/tests/fixtures/vertex-test-sa.json");

/// The test service-account key with its token_uri pointed at `mock`.
fn key_for(mock: &Proc) -> std::path::PathBuf {
    let mut key: Value = serde_json::from_str(&std::fs::read_to_string(TEST_KEY).unwrap()).unwrap();
    key["token_uri"] = Value::String(format!("http://{}/token", mock.addr));
    let path =
        std::env::temp_dir().join(format!("sluice-textcomp-key-{}-{}.json", std::process::id(), mock.addr.port()));
    std::fs::write(&path, key.to_string()).unwrap();
    path
}

const CONFIG: &str = r#"
model_list:
  - model_name: gemini
    litellm_params:
      model: vertex_ai/gemini-1.5-pro
      api_base: {MOCK}v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro
      vertex_project: p
      vertex_location: us-central1
      vertex_credentials: {KEY}
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20241022
      api_base: {MOCK}
      api_key: sk-ant-test
  - model_name: claude-dropping
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20241022
      api_base: {MOCK}
      api_key: sk-ant-test
      drop_params: true
  - model_name: bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
      api_base: {MOCK}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
  - model_name: voyage
    litellm_params:
      model: voyage/voyage-3
      api_base: {MOCK}
      api_key: k
general_settings:
  master_key: sk-1234
router_settings:
  num_retries: 0
"#;

fn stack() -> (Proc, Proc) {
    let m = mock(&["--vertex-credentials", TEST_KEY, "--record"]);
    let key = key_for(&m);
    let g = gateway(&CONFIG.replace("{KEY}", key.to_str().unwrap()), Some(&m));
    (m, g)
}

fn complete(addr: SocketAddr, key: &str, body: Value) -> Response {
    request(addr, "POST", "/v1/completions", Some(key), body.to_string().as_bytes())
}

/// The body the mock last received, as JSON.
fn upstream_body(mock: &Proc) -> Value {
    let r = request(mock.addr, "GET", "/mock/last", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_str(r.json()["body"].as_str().unwrap()).unwrap()
}

/// The chunks of a text-completion stream, checked to end with `[DONE]`.
fn chunks(r: &Response) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text());
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{}", r.text());
    frames[..frames.len() - 1].iter().map(|f| serde_json::from_str(f).unwrap()).collect()
}

/// Checks a whole answer's shape and returns its text.
fn whole_text(r: &Response, model: &str) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "text_completion", "{v}");
    assert_eq!(v["model"], model, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"), "{v}");
    assert_eq!(v["choices"][0]["index"], 0, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert!(v["choices"][0].get("message").is_none(), "{v}");
    let u = &v["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0 && u["completion_tokens"].as_u64().unwrap() > 0, "{v}");
    v["choices"][0]["text"].as_str().unwrap().to_string()
}

/// Checks a stream's shape (text-completion chunks, one finish, the usage chunk last) and
/// returns its text.
fn streamed_text(r: &Response, model: &str) -> String {
    let chunks = chunks(r);
    for c in &chunks {
        assert_eq!(c["object"], "text_completion", "{c}");
        assert_eq!(c["model"], model, "{c}");
        assert!(c["choices"].as_array().unwrap().iter().all(|ch| ch.get("delta").is_none()), "{c}");
    }
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|c| &c["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")], "{chunks:?}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{last}");
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0, "{last}");
    chunks.iter().filter_map(|c| c["choices"].get(0)?["text"].as_str()).collect()
}

#[test]
fn vertex_ai_completions_plain_and_streamed() {
    let (m, g) = stack();
    let body = json!({"model": "gemini", "prompt": "Say hi", "max_tokens": 7, "stop": ["\n"], "temperature": 0.5,
        "top_p": 0.9, "seed": 3, "user": "u1"});
    let text = whole_text(&complete(g.addr, "sk-1234", body.clone()), "gemini");
    assert!(!text.is_empty());
    let sent = upstream_body(&m);
    assert_eq!(sent["contents"], json!([{"role": "user", "parts": [{"text": "Say hi"}]}]), "{sent}");
    let config = &sent["generationConfig"];
    assert_eq!(config["maxOutputTokens"], 7, "{sent}");
    assert_eq!(config["stopSequences"], json!(["\n"]), "{sent}");
    assert_eq!((&config["temperature"], &config["topP"], &config["seed"]), (&json!(0.5), &json!(0.9), &json!(3)));

    let mut streamed = body;
    streamed["stream"] = true.into();
    streamed["stream_options"] = json!({"include_usage": true});
    let r = complete(g.addr, "sk-1234", streamed);
    assert_eq!(streamed_text(&r, "gemini"), text);
}

#[test]
fn anthropic_completions_plain_and_streamed() {
    let (m, g) = stack();
    let body = json!({"model": "claude", "prompt": "Say hi", "max_tokens": 7, "stop": "END", "temperature": 0.5,
        "user": "u1"});
    let text = whole_text(&complete(g.addr, "sk-1234", body.clone()), "claude");
    assert!(text.contains("Anthropic"), "{text}");
    let sent = upstream_body(&m);
    assert_eq!(sent["messages"][0]["role"], "user", "{sent}");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1, "{sent}");
    assert!(sent["messages"][0].to_string().contains("Say hi"), "{sent}");
    assert_eq!((&sent["max_tokens"], &sent["stop_sequences"]), (&json!(7), &json!(["END"])), "{sent}");
    assert_eq!(sent["temperature"], 0.5, "{sent}");
    assert_eq!(sent["metadata"]["user_id"], "u1", "{sent}");

    let mut streamed = body;
    streamed["stream"] = true.into();
    streamed["stream_options"] = json!({"include_usage": true});
    let r = complete(g.addr, "sk-1234", streamed);
    assert_eq!(streamed_text(&r, "claude"), text);

    // A list of prompts is one conversation of user messages, as LiteLLM sends it: one answer.
    let r = complete(g.addr, "sk-1234", json!({"model": "claude", "prompt": ["one", "two"]}));
    whole_text(&r, "claude");
    assert_eq!(r.json()["choices"].as_array().unwrap().len(), 1);
    // Anthropic's translation joins consecutive user turns into one, as LiteLLM's does.
    let sent = upstream_body(&m);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]),
        "{sent}"
    );
}

#[test]
fn bedrock_completions_plain_and_streamed() {
    let (m, g) = stack();
    let body = json!({"model": "bedrock", "prompt": "Say hi", "max_tokens": 9, "stop": ["\n\n"], "top_p": 0.8});
    let text = whole_text(&complete(g.addr, "sk-1234", body.clone()), "bedrock");
    assert!(text.contains("Bedrock"), "{text}");
    let sent = upstream_body(&m);
    assert_eq!(sent["messages"], json!([{"role": "user", "content": [{"text": "Say hi"}]}]), "{sent}");
    let config = &sent["inferenceConfig"];
    assert_eq!(
        (&config["maxTokens"], &config["stopSequences"], &config["topP"]),
        (&json!(9), &json!(["\n\n"]), &json!(0.8))
    );

    let mut streamed = body;
    streamed["stream"] = true.into();
    streamed["stream_options"] = json!({"include_usage": true});
    let r = complete(g.addr, "sk-1234", streamed);
    assert_eq!(streamed_text(&r, "bedrock"), text);
    assert!(mock_stats(&m)["by_route"]["bedrock"].as_u64().unwrap() >= 2);
}

#[test]
fn completion_only_parameters_are_refused_by_name_or_dropped() {
    let (m, g) = stack();
    let r = complete(g.addr, "sk-1234", json!({"model": "claude", "prompt": "x", "echo": true, "logprobs": 2}));
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.error_message();
    assert!(message.contains("['echo', 'logprobs']") && message.contains("drop_params"), "{message}");
    assert_eq!(r.json()["error"]["param"], "echo");
    assert_eq!(mock_stats(&m)["by_route"]["anthropic"].as_u64().unwrap_or(0), 0, "refused before any upstream call");

    // `n` goes to the provider's chat translation, which refuses what it cannot honour.
    let r = complete(g.addr, "sk-1234", json!({"model": "claude", "prompt": "x", "n": 2}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("'n'"), "{}", r.text());

    // Token ids name OpenAI's tokens: they cannot become a chat message.
    let r = complete(g.addr, "sk-1234", json!({"model": "claude", "prompt": [[1, 2, 3]]}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("token ids"), "{}", r.text());

    // With `drop_params` they are dropped and the call is made.
    let body = json!({"model": "claude-dropping", "prompt": "x", "echo": true, "suffix": "!", "best_of": 2, "n": 2});
    let r = complete(g.addr, "sk-1234", body);
    whole_text(&r, "claude-dropping");
    let sent = upstream_body(&m);
    for dropped in ["echo", "suffix", "best_of", "n", "prompt"] {
        assert!(sent.get(dropped).is_none(), "{dropped} reached Anthropic: {sent}");
    }

    // A provider that cannot chat answers as before, naming the routes it serves.
    let r = complete(g.addr, "sk-1234", json!({"model": "voyage", "prompt": "x"}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("/completions is not supported"), "{}", r.text());
}

#[test]
fn completions_are_billed_at_chat_prices_and_logged_as_text_completions() {
    let (_m, g) = stack();
    let r = post(g.addr, "/key/generate", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let (key, token) = (r.json()["key"].as_str().unwrap().to_string(), r.json()["token"].as_str().unwrap().to_string());
    whole_text(&complete(g.addr, &key, json!({"model": "claude", "prompt": "hi"})), "claude");
    let r = complete(g.addr, &key, json!({"model": "bedrock", "prompt": "hi", "stream": true}));
    assert!(!chunks(&r).is_empty());

    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let r = get(g.addr, &format!("/spend/logs?summarize=false&api_key={token}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = r.json().as_array().unwrap().clone();
        if rows.len() >= 2 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["call_type"], "atext_completion", "{row}");
        assert!(row["spend"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["completion_tokens"].as_u64().unwrap() > 0, "{row}");
    }
    // The chat price of the model: claude-3-5-sonnet's $3 and $15 per million tokens.
    let claude = rows.iter().find(|r| r["model_group"] == "claude").unwrap();
    let (p, c) = (claude["prompt_tokens"].as_f64().unwrap(), claude["completion_tokens"].as_f64().unwrap());
    let want = p * 3e-6 + c * 15e-6;
    assert!((claude["spend"].as_f64().unwrap() - want).abs() < 1e-12, "{claude} != {want}");
}

/// Every other provider that chats without a completions API of its own, through the one
/// conversion: plain and streamed. `azure_text/` keeps its own `/completions`.
#[test]
fn every_chat_provider_completes_and_azure_text_keeps_its_own() {
    let m = mock(&["--record", "--no-default-rate-limit"]);
    let aws = "aws_region_name: us-west-2\n      aws_access_key_id: AKIDEXAMPLE\n      aws_secret_access_key: secret";
    let deployments = [
        ("ollama", "model: ollama/llama3\n      api_base: {MOCK}".to_string()),
        ("ollama-chat", "model: ollama_chat/llama3.1\n      api_base: {MOCK}".to_string()),
        ("cohere", "model: cohere_chat/command-r-plus\n      api_base: {MOCK}\n      api_key: co".to_string()),
        ("gemini", "model: gemini/gemini-1.5-pro\n      api_base: {MOCK}v1beta\n      api_key: studio".to_string()),
        (
            "workers",
            "model: cloudflare/@cf/meta/llama-3.1-8b-instruct\n      api_base: {MOCK}client/v4/accounts/a/ai/run/\n      api_key: cf"
                .to_string(),
        ),
        ("predibase", "model: predibase/llama-3-8b-instruct\n      api_base: {MOCK}\n      tenant_id: t1\n      api_key: pb".to_string()),
        ("triton", "model: triton/ensemble\n      api_base: {MOCK}v2/models/ensemble/generate".to_string()),
        (
            "watsonx",
            "model: watsonx/ibm/granite-3-8b-instruct\n      api_base: {MOCK}\n      api_key: wx\n      project_id: p1"
                .to_string(),
        ),
        ("sagemaker", format!("model: sagemaker/my-tgi-endpoint\n      api_base: {{MOCK}}\n      {aws}")),
        ("sagemaker-chat", format!("model: sagemaker_chat/my-chat-endpoint\n      api_base: {{MOCK}}\n      {aws}")),
        ("replicate", "model: replicate/meta/meta-llama-3-8b-instruct\n      api_base: {MOCK}\n      api_key: r8".to_string()),
    ];
    let mut config = String::from("model_list:\n");
    for (name, deployment) in &deployments {
        config.push_str(&format!("  - model_name: {name}\n    litellm_params:\n      {deployment}\n"));
    }
    config.push_str(
        "  - model_name: instruct\n    litellm_params:\n      model: azure_text/gpt-35-turbo-instruct\n      api_base: {MOCK}\n      api_key: az\n      api_version: \"2024-02-01\"\n",
    );
    config.push_str("general_settings:\n  master_key: sk-1234\nrouter_settings:\n  num_retries: 0\n");
    let config = config.replace("{MOCK}", &format!("http://{}/", m.addr));
    let path = std::env::temp_dir().join(format!("sluice-textcomp-all-{}.yaml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    let iam = format!("http://{}/identity/token", m.addr);
    let g = spawn_with(
        &["--config", path.to_str().unwrap(), "--host", "127.0.0.1", "--port", "0", "--num_workers", "2"],
        "gateway",
        &[("WATSONX_IAM_URL", &iam)],
    );

    for (name, _) in &deployments {
        let body = json!({"model": name, "prompt": "Say hi", "max_tokens": 20});
        let text = whole_text(&complete(g.addr, "sk-1234", body.clone()), name);
        assert!(!text.is_empty(), "{name}");
        let mut streamed = body;
        streamed["stream"] = true.into();
        streamed["stream_options"] = json!({"include_usage": true});
        let r = complete(g.addr, "sk-1234", streamed);
        assert!(!streamed_text(&r, name).is_empty(), "{name}: {}", r.text());
    }

    // Azure's text completions get the client's request as it is, at the deployment's
    // `/completions`: `echo` and the list of prompts included.
    let body = json!({"model": "instruct", "prompt": ["a", "b"], "echo": true});
    let r = complete(g.addr, "sk-1234", body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "text_completion");
    let seen = request(m.addr, "GET", "/mock/last", None, b"").json();
    assert!(seen["path"].as_str().unwrap().ends_with("/completions"), "{seen}");
    let sent: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
    assert_eq!((&sent["prompt"], &sent["echo"]), (&json!(["a", "b"]), &json!(true)), "{sent}");
}

/// The answer cache keeps a completion made through chat in the completion's shape: a stream
/// kept whole is replayed to a stream and answered whole, with no second upstream call.
#[test]
fn a_completion_through_chat_is_cached_as_a_completion() {
    let m = mock(&[]);
    let config = "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-3-5-sonnet-20241022\n      api_base: {MOCK}\n      api_key: sk-ant-test\nlitellm_settings:\n  cache: true\n  cache_params:\n    type: local\ngeneral_settings:\n  master_key: sk-1234\n";
    let g = gateway(config, Some(&m));
    let body = json!({"model": "claude", "prompt": "cache me", "stream": true});
    let first = streamed_text_of(&complete(g.addr, "sk-1234", body.clone()));
    let again = complete(g.addr, "sk-1234", body);
    assert!(again.header("x-litellm-cache-key").is_some(), "a hit: {:?}", again.headers);
    assert_eq!(streamed_text_of(&again), first);
    let whole = complete(g.addr, "sk-1234", json!({"model": "claude", "prompt": "cache me"}));
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(whole.json()["object"], "text_completion");
    assert_eq!(whole.json()["choices"][0]["text"], first.as_str());
    assert_eq!(mock_stats(&m)["by_route"]["anthropic"], 1, "one upstream call for three answers");
}

/// The text of a text-completion stream.
fn streamed_text_of(r: &Response) -> String {
    let chunks = chunks(r);
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"), "{}", r.text());
    chunks.iter().filter_map(|c| c["choices"].get(0)?["text"].as_str()).collect()
}
