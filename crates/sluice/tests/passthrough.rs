//! Provider pass-through end to end: a real gateway in front of `sluice mock --provider-key
//! --record`, which answers 401 unless the provider's credential (not the caller's sluice key)
//! arrived, and shows the last request as it came. Each route: the body arrives untouched, the
//! answer comes back untouched, and the usage it reports is charged to the calling key.

mod common;
use common::*;
use serde_json::{json, Value};

const PROVIDER_KEY: &str = "prov-secret-123";

/// A gateway whose pass-through variables point at `mock` (set through the config's
/// `environment_variables`, which sluice reads as LiteLLM does), with a database for keys.
fn gateway_for(mock: &Proc, extra: &str) -> Proc {
    let base = format!("http://{}", mock.addr);
    let config = format!(
        r#"
general_settings:
  master_key: sk-1234
litellm_settings:
  callbacks: ["prometheus"]
environment_variables:
  OPENAI_API_BASE: "{base}"
  OPENAI_API_KEY: "{PROVIDER_KEY}"
  ANTHROPIC_API_BASE: "{base}"
  ANTHROPIC_API_KEY: "{PROVIDER_KEY}"
  GEMINI_API_BASE: "{base}"
  GEMINI_API_KEY: "{PROVIDER_KEY}"
  AWS_BEDROCK_RUNTIME_ENDPOINT: "{base}"
  AWS_REGION_NAME: us-east-1
  AWS_ACCESS_KEY_ID: "{PROVIDER_KEY}"
  AWS_SECRET_ACCESS_KEY: aws-secret-never-sent
  AZURE_API_BASE: "{base}"
  AZURE_API_KEY: "{PROVIDER_KEY}"
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      mock_response: from the model route
{extra}"#
    );
    gateway(&config, None)
}

fn provider_mock() -> Proc {
    mock(&["--provider-key", PROVIDER_KEY, "--record", "--no-default-rate-limit"])
}

/// A fresh virtual key.
fn new_key(g: &Proc) -> String {
    let r = post(g.addr, "/key/generate", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// The key's spend, once the charge has landed (it settles as the answer ends).
fn spend_of(g: &Proc, key: &str) -> f64 {
    let mut spend = 0.0;
    for _ in 0..50 {
        let r = get(g.addr, &format!("/key/info?key={key}"));
        assert_eq!(r.status, 200, "{}", r.text());
        spend = r.json()["info"]["spend"].as_f64().unwrap_or(0.0);
        if spend > 0.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    spend
}

fn last_request(mock: &Proc) -> Value {
    let r = request(mock.addr, "GET", "/mock/last", None, b"");
    assert_eq!(r.status, 200);
    r.json()
}

/// A request with the given fields, as an SDK would send it.
fn send(addr: std::net::SocketAddr, method: &str, path: &str, fields: &[(&str, &str)], body: &[u8]) -> Response {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in fields {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

/// What every relayed request must show at the provider: the provider's credential in the
/// provider's header, and no trace of the caller's key anywhere.
fn assert_provider_credential_only(seen: &Value, key: &str, header: &str, value: &str) {
    assert_eq!(seen["headers"][header], value, "{seen}");
    let text = seen.to_string();
    assert!(!text.contains(key), "the caller's key went upstream: {text}");
    assert!(!text.contains("sk-1234"), "{text}");
}

#[test]
fn openai_pass_through_relays_untouched_and_charges_the_key() {
    let m = provider_mock();
    let g = gateway_for(&m, "");
    let key = new_key(&g);
    // Odd spacing and key order: bytes, not a re-serialised tree, must arrive.
    let body = br#"{"model":"gpt-4o",  "messages":[{"role":"user","content":"hi"}], "temperature":0.5}"#;
    let r = send(
        g.addr,
        "POST",
        "/openai/v1/chat/completions",
        &[("Authorization", &format!("Bearer {key}")), ("Content-Type", "application/json")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(r.header("x-litellm-call-id").is_some());
    let seen = last_request(&m);
    assert_eq!(seen["path"], "/v1/chat/completions");
    assert_eq!(seen["body"].as_str().unwrap().as_bytes(), body);
    assert_provider_credential_only(&seen, &key, "authorization", &format!("Bearer {PROVIDER_KEY}"));
    assert!(spend_of(&g, &key) > 0.0, "the usage the provider reported is charged");
    let metrics = get(g.addr, "/metrics").text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("litellm_proxy_total_requests_metric") && l.contains("route=\"/openai\""))
        .unwrap_or_else(|| panic!("no pass-through request in the metrics:\n{metrics}"));
    assert!(line.contains("requested_model=\"gpt-4o\""), "{line}");

    // Streamed: frames arrive as the provider sent them.
    let body = br#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(g.addr, "POST", "/openai/v1/chat/completions", &[("Authorization", &format!("Bearer {key}"))], body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    let frames = sse_data(&r.body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{}", r.text());

    // An upstream that breaks mid-stream: the frames it sent, then one error frame in
    // LiteLLM's envelope (the status went out already).
    let body = br#"{"model":"stream-reset","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(g.addr, "POST", "/openai/v1/chat/completions", &[("Authorization", &format!("Bearer {key}"))], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let frames = sse_data(&r.body);
    assert!(frames.len() >= 2, "{}", r.text());
    let last: Value = serde_json::from_str(frames.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().starts_with("litellm.APIConnectionError"), "{last}");

    // A client that hangs up before the answer: the call runs to its end and is billed.
    let slow = mock(&["--latency", "700ms", "--no-default-rate-limit"]);
    let g = gateway(
        &format!("general_settings:\n  master_key: sk-1234\nenvironment_variables:\n  OPENAI_API_BASE: http://{}\n  OPENAI_API_KEY: k\n", slow.addr),
        None,
    );
    let quitter = new_key(&g);
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let head = format!(
        "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {quitter}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    {
        use std::io::Write as _;
        let mut s = connect(g.addr);
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(spend_of(&g, &quitter) > 0.0, "the abandoned call was billed");
}

#[test]
fn azure_style_model_routes_stay_model_calls() {
    let m = provider_mock();
    let g = gateway_for(&m, "");

    // The Azure-style model routes under /openai/deployments/ stay model calls.
    let r = send(
        g.addr,
        "POST",
        "/openai/deployments/m/chat/completions",
        &[("Authorization", "Bearer sk-1234")],
        br#"{"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "from the model route");
}

#[test]
fn anthropic_pass_through_takes_the_key_as_x_api_key() {
    let m = provider_mock();
    let g = gateway_for(&m, "");
    let key = new_key(&g);
    let body = br#"{"model":"claude-3-5-sonnet-20241022","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#;
    let fields =
        [("x-api-key", key.as_str()), ("anthropic-version", "2023-06-01"), ("content-type", "application/json")];
    let r = send(g.addr, "POST", "/anthropic/v1/messages", &fields, body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
    let seen = last_request(&m);
    assert_eq!(seen["body"].as_str().unwrap().as_bytes(), body);
    assert_eq!(seen["headers"]["anthropic-version"], "2023-06-01");
    assert_provider_credential_only(&seen, &key, "x-api-key", PROVIDER_KEY);
    let after_one = spend_of(&g, &key);
    assert!(after_one > 0.0);

    // A stream's usage (input at its start, output at its end) is charged when it ends.
    let body = br#"{"model":"claude-3-5-sonnet-20241022","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(g.addr, "POST", "/anthropic/v1/messages", &fields, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("event: message_start") && text.contains("event: message_stop"), "{text}");
    let mut spend = after_one;
    for _ in 0..50 {
        spend = spend_of(&g, &key);
        if spend > after_one {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(spend > after_one, "the stream was charged too ({spend} after {after_one})");
}

#[test]
fn gemini_and_bedrock_pass_through_use_the_providers_credentials() {
    let m = provider_mock();
    let g = gateway_for(&m, "");
    let key = new_key(&g);

    // google-genai sends its key as x-goog-api-key; a `?key=` sluice key never goes upstream.
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let r = send(
        g.addr,
        "POST",
        "/gemini/v1beta/models/gemini-2.0-flash:generateContent",
        &[("x-goog-api-key", &key)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["candidates"].is_array());
    let seen = last_request(&m);
    assert_eq!(seen["path"], "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(seen["body"].as_str().unwrap().as_bytes(), body);
    assert_provider_credential_only(&seen, &key, "x-goog-api-key", PROVIDER_KEY);
    let path = format!("/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key={key}");
    let r = send(g.addr, "POST", &path, &[], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = last_request(&m);
    assert_eq!(seen["query"], "alt=sse");
    assert_provider_credential_only(&seen, &key, "x-goog-api-key", PROVIDER_KEY);
    let gemini_spend = spend_of(&g, &key);
    assert!(gemini_spend > 0.0);

    // boto3 signs with its own (dummy) credentials and carries the sluice key in a header; the
    // gateway signs again with the provider's.
    let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":20}}"#;
    let dummy = "AWS4-HMAC-SHA256 Credential=AKIDDUMMY/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
    let fields = [("authorization", dummy), ("x-amz-date", "20250101T000000Z"), ("x-litellm-api-key", key.as_str())];
    let r = send(g.addr, "POST", "/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", &fields, body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["usage"]["inputTokens"].as_u64().is_some(), "{}", r.text());
    let seen = last_request(&m);
    assert_eq!(seen["body"].as_str().unwrap().as_bytes(), body);
    let auth = seen["headers"]["authorization"].as_str().unwrap();
    assert!(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={PROVIDER_KEY}/")), "{auth}");
    assert_ne!(seen["headers"]["x-amz-date"], "20250101T000000Z", "signed afresh");
    assert!(!seen.to_string().contains(&key) && !seen.to_string().contains("aws-secret-never-sent"));
    // The sluice key as the access key id works too (LiteLLM reads SigV4's Credential).
    let signed_with_key = format!(
        "AWS4-HMAC-SHA256 Credential={key}/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00"
    );
    let r = send(
        g.addr,
        "POST",
        "/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
        &[("authorization", &signed_with_key)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("application/vnd.amazon.eventstream"));
    let mut spend = gemini_spend;
    for _ in 0..50 {
        spend = spend_of(&g, &key);
        if spend > gemini_spend {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(spend > gemini_spend, "bedrock usage was charged");
}

#[test]
fn bad_callers_and_bad_upstreams_get_litellms_errors() {
    let m = provider_mock();
    let g = gateway_for(&m, "");
    let body = br#"{"model":"gpt-4o","messages":[]}"#;
    // No key, a made-up key: 401 in LiteLLM's envelope, nothing sent upstream.
    let r = send(g.addr, "POST", "/openai/v1/chat/completions", &[], body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("No api key passed in"));
    let r = send(g.addr, "POST", "/anthropic/v1/messages", &[("x-api-key", "sk-not-a-key")], body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["type"], "error", "Anthropic's envelope on Anthropic's route: {}", r.text());
    assert_eq!(last_request(&m), Value::Null, "nothing reached the provider");

    // The provider's own refusal comes back as it said it.
    let key = new_key(&g);
    let r = send(
        g.addr,
        "POST",
        "/openai/v1/chat/completions",
        &[("Authorization", &format!("Bearer {key}"))],
        br#"{"model":"error-429","messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 429, "{}", r.text());
    // A key restricted to other models is refused before anything is sent.
    let r = post(g.addr, "/key/generate", r#"{"models":["claude-3-haiku"]}"#);
    let narrow = r.json()["key"].as_str().unwrap().to_string();
    let r =
        send(g.addr, "POST", "/openai/v1/chat/completions", &[("Authorization", &format!("Bearer {narrow}"))], body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("not allowed to access model"), "{}", r.text());

    // A provider whose variables are missing says which to set.
    let r = send(
        g.addr,
        "POST",
        "/vertex_ai/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent",
        &[("Authorization", &format!("Bearer {key}"))],
        b"{}",
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("GOOGLE_APPLICATION_CREDENTIALS"), "{}", r.text());
    drop(g);

    // A target that is down: LiteLLM's connection error, as for any upstream.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = format!("general_settings:\n  master_key: sk-1234\nenvironment_variables:\n  OPENAI_API_BASE: http://{closed}\n  OPENAI_API_KEY: k\n");
    let down = gateway(&config, None);
    let r = send(down.addr, "POST", "/openai/v1/chat/completions", &[("Authorization", "Bearer sk-1234")], body);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.json()["error"]["message"].as_str().unwrap().starts_with("litellm.APIConnectionError: OpenAIException"),
        "{}",
        r.text()
    );

    // A slow target: the request timeout, as for any upstream.
    let base = format!("http://{}", m.addr);
    let config = format!("general_settings:\n  master_key: sk-1234\nrouter_settings:\n  timeout: 1\nenvironment_variables:\n  OPENAI_API_BASE: {base}\n  OPENAI_API_KEY: {PROVIDER_KEY}\n");
    let slow = gateway(&config, None);
    let r = send(
        slow.addr,
        "POST",
        "/openai/v1/chat/completions",
        &[("Authorization", "Bearer sk-1234")],
        br#"{"model":"sleep-3000","messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("timed out"), "{}", r.text());
}

#[test]
fn pass_through_endpoints_from_the_config() {
    let m = provider_mock();
    let extra = format!(
        r#"
  pass_through_endpoints:
    - path: /cohere/rerank
      target: http://{addr}/v1/chat/completions
      headers:
        Authorization: "Bearer os.environ/RERANK_KEY"
      auth: true
      cost_per_request: 0.5
    - path: /open
      target: http://{addr}
      include_subpath: true
      forward_headers: true
"#,
        addr = m.addr
    );
    // `general_settings` is in the text already: add the list under it.
    let base = format!("http://{}", m.addr);
    let config = format!(
        "general_settings:\n  master_key: sk-1234{extra}environment_variables:\n  RERANK_KEY: {PROVIDER_KEY}\n  OPENAI_API_BASE: {base}\n"
    );
    let g = gateway(&config, None);
    let key = new_key(&g);
    let body = br#"{"model":"any","messages":[{"role":"user","content":"x"}]}"#;
    let r = send(g.addr, "POST", "/cohere/rerank", &[("Authorization", &format!("Bearer {key}"))], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = last_request(&m);
    assert_eq!(seen["path"], "/v1/chat/completions");
    assert_provider_credential_only(&seen, &key, "authorization", &format!("Bearer {PROVIDER_KEY}"));
    assert!((spend_of(&g, &key) - 0.5).abs() < 1e-9, "cost_per_request is charged");
    let r = send(g.addr, "POST", "/cohere/rerank", &[], body);
    assert_eq!(r.status, 401, "auth: true needs a key: {}", r.text());

    // Without auth the route is open, and forward_headers passes the client's own fields.
    let r = send(
        g.addr,
        "POST",
        "/open/v1/chat/completions",
        &[("Authorization", &format!("Bearer {PROVIDER_KEY}")), ("x-custom", "1")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = last_request(&m);
    assert_eq!(seen["headers"]["x-custom"], "1");
    // Built-in routes win over configured ones; unknown paths are still FastAPI's 404.
    let r = get(g.addr, "/nothing-here");
    assert_eq!((r.status, r.json()), (404, json!({"detail": "Not Found"})));
}

#[test]
fn azure_and_vertex_pass_through() {
    // Vertex: the mock issues tokens for the test service account and accepts only those.
    const TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../providers/tests/fixtures/vertex-test-sa.json");
    let m = mock(&[
        "--provider-key",
        PROVIDER_KEY,
        "--record",
        "--no-default-rate-limit",
        "--vertex-credentials",
        TEST_KEY,
    ]);
    let mut sa: Value = serde_json::from_str(&std::fs::read_to_string(TEST_KEY).unwrap()).unwrap();
    sa["token_uri"] = Value::String(format!("http://{}/token", m.addr));
    let sa_path = std::env::temp_dir().join(format!("sluice-pt-sa-{}-{}.json", std::process::id(), m.addr.port()));
    std::fs::write(&sa_path, sa.to_string()).unwrap();
    let extra = format!(
        "default_vertex_config:\n  vertex_project: p\n  vertex_location: us-central1\n  vertex_credentials: {}\n  api_base: http://{}\n",
        sa_path.display(),
        m.addr
    );
    let g = gateway_for(&m, &extra);
    let key = new_key(&g);

    let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let path = "/vertex_ai/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent";
    let r = send(g.addr, "POST", path, &[("Authorization", &format!("Bearer {key}"))], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = last_request(&m);
    assert_eq!(
        seen["path"],
        "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent"
    );
    assert_eq!(seen["body"].as_str().unwrap().as_bytes(), body);
    let auth = seen["headers"]["authorization"].as_str().unwrap();
    assert!(auth.starts_with("Bearer ") && !auth.contains(&key), "the mock-issued token, not the key: {auth}");
    assert!(spend_of(&g, &key) > 0.0);

    // Azure: `api-key` carries the provider's key; the model is the one the path names.
    let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let path = "/azure/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01";
    let r = send(g.addr, "POST", path, &[("api-key", &key)], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = last_request(&m);
    assert_eq!(seen["path"], "/openai/deployments/gpt-4o/chat/completions");
    assert_eq!(seen["query"], "api-version=2024-06-01");
    assert_eq!(seen["body"].as_str().unwrap().as_bytes(), body);
    assert_provider_credential_only(&seen, &key, "api-key", PROVIDER_KEY);
}

#[test]
fn vertex_calls_to_a_deployments_project_use_its_service_account() {
    const TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../providers/tests/fixtures/vertex-test-sa.json");
    let m = mock(&["--record", "--no-default-rate-limit", "--vertex-credentials", TEST_KEY]);
    let mut sa: Value = serde_json::from_str(&std::fs::read_to_string(TEST_KEY).unwrap()).unwrap();
    sa["token_uri"] = Value::String(format!("http://{}/token", m.addr));
    let sa_path = std::env::temp_dir().join(format!("sluice-pt-dep-sa-{}-{}.json", std::process::id(), m.addr.port()));
    std::fs::write(&sa_path, sa.to_string()).unwrap();
    // No default credentials: only the deployment's project can be reached.
    let config = format!(
        r#"
model_list:
  - model_name: gemini
    litellm_params:
      model: vertex_ai/gemini-1.5-pro
      vertex_project: dep-proj
      vertex_location: us-central1
      vertex_credentials: {sa}
default_vertex_config:
  api_base: http://{addr}
general_settings:
  master_key: sk-1234
"#,
        sa = sa_path.display(),
        addr = m.addr
    );
    let g = gateway(&config, None);
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let call = |project: &str| {
        let path = format!("/vertex_ai/v1/projects/{project}/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent");
        send(g.addr, "POST", &path, &[("Authorization", "Bearer sk-1234")], body)
    };
    let r = call("dep-proj");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(last_request(&m)["headers"]["authorization"].as_str().unwrap().starts_with("Bearer "));
    let r = call("other-proj");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("vertex_credentials"), "{}", r.text());
}
