//! Every provider behind the one trait: built from `litellm_params` and the environment, asked
//! for requests, answers and errors on bytes alone (no network).

use bytes::Bytes;
use sluice_providers::provider::{Headers, TokenSource};
use sluice_providers::{build, parse_model, AnswerMeta, Built, ChatCall, ChatProvider, ModelRef, Params};
use sluice_wire::sniff::Endpoint;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

struct NoToken;

impl TokenSource for NoToken {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<http::HeaderValue, String>> + Send + '_>> {
        Box::pin(async { Err("no token in tests".to_string()) })
    }
}

struct NoHeaders;

impl Headers for NoHeaders {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

fn params(model: &ModelRef) -> Params<'_> {
    Params {
        index: 3,
        id: "dep-1",
        model_name: "group",
        model,
        api_base: Some("http://upstream.test/"),
        api_key: Some("sk-very-secret"),
        api_version: None,
        organization: None,
        azure_ad_token: None,
        vertex_project: Some("p"),
        vertex_location: None,
        tenant_id: None,
        project_id: None,
        space_id: None,
        vertex_credentials: Some("/keys/sa.json"),
        aws_region_name: Some("us-east-1"),
        aws_access_key_id: None,
        aws_secret_access_key: None,
        aws_session_token: None,
        aws_role_name: None,
        aws_session_name: None,
        aws_profile_name: None,
        aws_web_identity_token: None,
        aws_sts_endpoint: None,
        drop_params: false,
        timeout: Duration::from_secs(5),
        stream_timeout: Duration::from_secs(7),
    }
}

fn built(p: &Params<'_>, env: &[(&str, &str)]) -> Built {
    let env = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    let mut tokens = |_: &str| -> Arc<dyn TokenSource> { Arc::new(NoToken) };
    build(p, &env, &mut tokens).unwrap()
}

const CHAT: &[u8] = br#"{"model":"group","messages":[{"role":"user","content":"hi"}]}"#;

fn call(body: &Bytes, stream: bool) -> ChatCall<'_> {
    ChatCall {
        endpoint: Endpoint::Chat,
        body,
        model_span: sluice_wire::sniff::model_span(body),
        stream,
        now: 1_700_000_000,
    }
}

const META: AnswerMeta<'static> = AnswerMeta {
    model: "group",
    id: "chatcmpl-1",
    created: 1,
    include_usage: true,
    endpoint: Endpoint::Chat,
    request: CHAT,
};

#[test]
fn the_catalogue_builds_each_family_and_debug_hides_secrets() {
    for model in
        ["openai/gpt", "azure/dep", "anthropic/claude", "vertex_ai/gemini-pro", "gemini/gemini-pro", "bedrock/m"]
    {
        let m = parse_model(model, None).unwrap();
        let b = built(&params(&m), &[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "aws-very-secret")]);
        let debug = format!("{b:?}");
        assert!(matches!(b, Built::OpenAi(_) | Built::Translated(_)), "{model}: {debug}");
        assert!(!debug.contains("very-secret"), "{model} leaks a secret: {debug}");
    }
    // The families built for the prefixes LiteLLM users name besides the big ones.
    for (model, base) in [
        ("azure_ai/mistral-large", "http://upstream.test/"),
        ("huggingface/tgi", "http://upstream.test/"),
        ("ai21/jamba-1.5-mini", "http://upstream.test/"),
        ("cloudflare/@cf/meta/llama-3-8b-instruct", "http://upstream.test/run/"),
        ("predibase/llama-3-8b", "http://upstream.test/"),
        ("triton/m", "http://upstream.test/v2/models/m/generate"),
        ("azure_text/gpt-35-turbo-instruct", "http://upstream.test/"),
        ("watsonx/ibm/granite-3-8b-instruct", "http://upstream.test/"),
        ("sagemaker/my-endpoint", "http://upstream.test/"),
        ("sagemaker_chat/my-endpoint", "http://upstream.test/"),
        ("replicate/meta/meta-llama-3-8b-instruct", "http://upstream.test/"),
    ] {
        let m = parse_model(model, None).unwrap();
        let p = Params { api_base: Some(base), ..params(&m) };
        let b = built(
            &p,
            &[
                ("PREDIBASE_TENANT_ID", "t1"),
                ("WATSONX_PROJECT_ID", "p1"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "aws-very-secret"),
            ],
        );
        let debug = format!("{b:?}");
        assert!(matches!(b, Built::OpenAi(_) | Built::Translated(_)), "{model}: {debug}");
        assert!(!debug.contains("very-secret"), "{model} leaks a secret: {debug}");
    }
}

#[test]
fn each_new_prefix_says_what_it_lacks() {
    let cases = [
        ("cloudflare/@cf/x", None, "CLOUDFLARE_ACCOUNT_ID"),
        ("predibase/m", Some("http://upstream.test/"), "PREDIBASE_TENANT_ID"),
        ("triton/m", Some("http://upstream.test/v2/models/m"), "must end in /generate"),
        ("triton/m", None, "api_base: missing"),
        ("azure_ai/m", None, "AZURE_AI_API_BASE"),
        ("watsonx/ibm/granite", Some("http://upstream.test/"), "WATSONX_PROJECT_ID"),
        ("watsonx/ibm/granite", None, "WATSONX_URL"),
        ("sagemaker/e", None, "aws_region_name"),
    ];
    for (model, base, wanted) in cases {
        let m = parse_model(model, None).unwrap();
        let p = Params { api_base: base, aws_region_name: None, ..params(&m) };
        let Built::Unusable(why) = built(&p, &[]) else { panic!("{model} must be unusable") };
        assert!(why.contains(wanted) && why.contains("model_list[3].litellm_params"), "{model}: {why}");
    }
}

#[test]
fn the_new_translated_prefixes_build_their_own_wire_requests() {
    let body = Bytes::from_static(CHAT);
    let m = parse_model("cloudflare/@cf/meta/llama-3-8b-instruct", None).unwrap();
    let Built::Translated(p) = built(&Params { api_base: Some("http://cf.test/run"), ..params(&m) }, &[]) else {
        panic!()
    };
    let req = p.build_request(&call(&body, true)).unwrap();
    assert_eq!(req.url, "http://cf.test/run/@cf/meta/llama-3-8b-instruct");
    assert_eq!(req.headers["authorization"], "Bearer sk-very-secret");
    let sent: serde_json::Value = serde_json::from_slice(&req.body.concat()).unwrap();
    assert_eq!(sent, serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}));
    let m = parse_model("predibase/llama-3-8b", None).unwrap();
    let Built::Translated(p) = built(&Params { tenant_id: Some("t9"), ..params(&m) }, &[]) else { panic!() };
    assert_eq!(
        p.build_request(&call(&body, true)).unwrap().url,
        "http://upstream.test/t9/deployments/v2/llms/llama-3-8b/generate_stream"
    );
    let m = parse_model("triton/m", None).unwrap();
    let Built::Translated(p) =
        built(&Params { api_base: Some("http://t.test/v2/models/m/generate"), ..params(&m) }, &[])
    else {
        panic!()
    };
    assert_eq!(p.build_request(&call(&body, true)).unwrap().url, "http://t.test/v2/models/m/generate_stream");
    assert_eq!(
        p.map_error(503, &NoHeaders, br#"{"error":"busy"}"#).message,
        "litellm.ServiceUnavailableError: TritonException - busy"
    );
}

#[test]
fn what_a_deployment_lacks_is_its_own_failure_and_says_what_to_set() {
    let m = parse_model("hosted_vllm/llama", None).unwrap();
    let p = Params { api_base: None, ..params(&m) };
    let Built::Unusable(why) = built(&p, &[]) else { panic!("no api_base must be unusable") };
    assert!(why.contains("set litellm_params.api_base"), "{why}");
    let m = parse_model("bedrock/m", None).unwrap();
    let half = Params { api_key: None, aws_access_key_id: Some("AKID"), ..params(&m) };
    let Built::Unusable(why) = built(&half, &[]) else { panic!("half a key pair must be unusable") };
    assert!(why.contains("model_list[3].litellm_params") && why.contains("aws_secret_access_key"), "{why}");
    let m = parse_model("anthropic/claude", None).unwrap();
    let p = Params { api_key: None, ..params(&m) };
    let Built::Unusable(why) = built(&p, &[]) else { panic!("no key must be unusable") };
    assert!(why.contains("ANTHROPIC_API_KEY"), "{why}");
    // A base URL that cannot be sent stops the start instead.
    let m = parse_model("openai/gpt", None).unwrap();
    let p = Params { api_base: Some("http://bad host/"), ..params(&m) };
    let env = |_: &str| None;
    assert!(build(&p, &env, &mut |_: &str| -> Arc<dyn TokenSource> { Arc::new(NoToken) }).is_err());
}

#[test]
fn openai_forwards_the_clients_bytes_with_only_model_rewritten() {
    let m = parse_model("openai/upstream-name", None).unwrap();
    let Built::OpenAi(p) = built(&params(&m), &[]) else { panic!() };
    let body = Bytes::from_static(CHAT);
    let req = p.build_request(&call(&body, true)).unwrap();
    assert_eq!(req.url, "http://upstream.test/chat/completions");
    assert_eq!(req.body.concat(), br#"{"model":"upstream-name","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(req.body[2].as_ptr(), body[body.len() - req.body[2].len()..].as_ptr(), "the tail is the client's bytes");
    assert!(req.headers.iter().any(|(n, v)| n == "authorization" && v == "Bearer sk-very-secret" && v.is_sensitive()));
    assert_eq!(req.timeout, Duration::from_secs(7), "streams wait stream_timeout");
    let e = p.map_error(400, &NoHeaders, br#"{"error":{"message":"This model's maximum context length is 8192"}}"#);
    assert!(e.message.starts_with("litellm.ContextWindowExceededError: OpenAIException - "), "{}", e.message);
    assert!(p.parse_answer(b"nope", &META).unwrap_err().message.starts_with("litellm.APIError: OpenAIException"));
}

#[test]
fn translated_providers_build_their_own_format() {
    let m = parse_model("anthropic/claude-x", None).unwrap();
    let Built::Translated(p) = built(&params(&m), &[]) else { panic!() };
    let body = Bytes::from_static(CHAT);
    let req = p.build_request(&call(&body, false)).unwrap();
    assert_eq!(req.url, "http://upstream.test/v1/messages");
    let sent: serde_json::Value = serde_json::from_slice(&req.body.concat()).unwrap();
    assert_eq!(sent["model"], "claude-x");
    assert!(req.headers.iter().any(|(n, v)| n == "x-api-key" && v.is_sensitive()));
    // An Anthropic client's own request goes through but for `model`.
    let native = Bytes::from_static(br#"{"model":"group","max_tokens":5,"messages":[]}"#);
    let req = p.native_messages(&native, false).unwrap();
    assert_eq!(req.body.concat(), br#"{"model":"claude-x","max_tokens":5,"messages":[]}"#);
    let e = p.map_error(429, &NoHeaders, br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#);
    assert_eq!((e.status, e.kind.as_deref()), (429, Some("throttling_error")));
    assert!(e.message.starts_with("litellm.RateLimitError: AnthropicException - "), "{}", e.message);

    let m = parse_model("vertex_ai/gemini-pro", None).unwrap();
    let Built::Translated(p) = built(&params(&m), &[]) else { panic!() };
    assert!(p.native_messages(&native, false).is_none(), "only Anthropic speaks the front door's format");
    let req = p.build_request(&call(&body, true)).unwrap();
    assert!(req.token.is_some(), "Vertex asks for a service-account token");
    assert!(req.url.to_string().ends_with(":streamGenerateContent?alt=sse"), "{}", req.url);
    let bad = Bytes::from_static(b"{not json");
    assert_eq!(p.build_request(&call(&bad, false)).err().map(|e| e.status), Some(400));
}

#[tokio::test]
async fn bedrock_signs_each_request_over_its_bytes() {
    let m = parse_model("bedrock/anthropic.claude-3", None).unwrap();
    // Without an api_key (a Bedrock API key, sent as a bearer token), AWS credentials sign.
    let p = Params { api_key: None, ..params(&m) };
    let b = built(&p, &[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "secret")]);
    let Built::Translated(p) = b else { panic!() };
    let body = Bytes::from_static(CHAT);
    let mut req = p.build_request(&call(&body, false)).unwrap();
    assert!(req.aws.is_some() && !req.headers.contains_key("authorization"), "signed when sent");
    req.sign_aws(1_700_000_000).await.unwrap();
    let auth = req.headers.iter().find(|(n, _)| *n == "authorization").map(|(_, v)| v).unwrap();
    assert!(auth.to_str().unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKID/"), "{auth:?}");
    assert!(auth.is_sensitive());
    assert!(req.headers.iter().any(|(n, _)| n == "x-amz-date"));
    assert!(!req.headers.contains_key("x-amz-security-token"), "no session token, no header");

    // With nothing configured (and no EC2 to ask), the request fails saying what to set.
    let p = Params { api_key: None, ..params(&m) };
    let Built::Translated(p) = built(&p, &[("AWS_EC2_METADATA_DISABLED", "true"), ("HOME", "/nonexistent")]) else {
        panic!("a Bedrock deployment without keys waits for the chain")
    };
    let mut req = p.build_request(&call(&body, false)).unwrap();
    let e = req.sign_aws(1_700_000_000).await.unwrap_err();
    assert!(
        e.contains("AWS_ACCESS_KEY_ID") && e.contains("AWS_PROFILE") && e.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{e}"
    );
    let mut tr = p.stream_translator(&META);
    let mut out = Vec::new();
    tr.push(b"\x00\x00\x00\x10garbage-bytes!!!");
    assert!(tr.drain(&mut out).is_err(), "bad event-stream bytes fail the stream");
}

#[test]
fn ollama_chats_embeds_and_streams_ndjson_through_the_trait() {
    let m = parse_model("ollama_chat/llama3", None).unwrap();
    let Built::Translated(p) = built(&Params { api_base: Some("http://gpu:11434/"), ..params(&m) }, &[]) else {
        panic!()
    };
    assert!(p.serves(Endpoint::Chat) && p.serves(Endpoint::Embeddings) && !p.serves(Endpoint::Completions));
    let body = Bytes::from_static(CHAT);
    let req = p.build_request(&call(&body, true)).unwrap();
    assert_eq!(req.url, "http://gpu:11434/api/chat");
    let sent: serde_json::Value = serde_json::from_slice(&req.body.concat()).unwrap();
    assert_eq!(sent["model"], "llama3");
    assert_eq!(sent["stream"], true);
    assert!(req.headers.iter().any(|(n, v)| n == "authorization" && v == "Bearer sk-very-secret" && v.is_sensitive()));
    assert!(!format!("{p:?}").contains("very-secret"));

    // The stream arrives cut anywhere; lines come out whole.
    let ndjson = concat!(
        "{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
        "{\"message\":{\"role\":\"assistant\",\"content\":\" there\"},\"done\":false}\n",
        "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",",
        "\"prompt_eval_count\":5,\"eval_count\":2}\n",
    );
    for cut in [1, 17, 60, ndjson.len() - 1] {
        let mut tr = p.stream_translator(&META);
        let mut out = Vec::new();
        tr.push(&ndjson.as_bytes()[..cut]);
        tr.drain(&mut out).unwrap();
        tr.push(&ndjson.as_bytes()[cut..]);
        tr.drain(&mut out).unwrap();
        tr.finish(&mut out).unwrap();
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hi there", "cut at {cut}");
        assert_eq!(tr.usage(), Some((5, 2)));
        assert_eq!(out.last().unwrap()["usage"]["completion_tokens"], 2);
    }

    let embed = Bytes::from_static(br#"{"model":"group","input":["a","b"],"encoding_format":"base64"}"#);
    let req = p.build_request(&ChatCall { endpoint: Endpoint::Embeddings, ..call(&embed, false) }).unwrap();
    assert_eq!(req.url, "http://gpu:11434/api/embed");
    assert_eq!(req.timeout, Duration::from_secs(5));
    let meta = AnswerMeta { endpoint: Endpoint::Embeddings, request: &embed, ..META };
    let out = p.parse_answer(br#"{"model":"x","embeddings":[[1.0],[0.5]],"prompt_eval_count":3}"#, &meta).unwrap();
    assert_eq!(out["data"][1]["embedding"], "AAAAPw==", "base64 as the OpenAI SDK asks by default");
    assert_eq!(out["usage"]["prompt_tokens"], 3);

    let e = p.map_error(404, &NoHeaders, br#"{"error":"model \"llama3\" not found, try pulling it first"}"#);
    assert_eq!(e.status, 404);
    assert!(e.message.starts_with("litellm.NotFoundError: OllamaException - model"), "{}", e.message);

    // `ollama/` generates from one prompt, at Ollama's default address.
    let m = parse_model("ollama/llama3", None).unwrap();
    let Built::Translated(p) = built(&Params { api_base: None, api_key: None, ..params(&m) }, &[]) else { panic!() };
    let req = p.build_request(&call(&body, false)).unwrap();
    assert_eq!(req.url, "http://localhost:11434/api/generate");
    assert!(!req.headers.contains_key("authorization"));
    let sent: serde_json::Value = serde_json::from_slice(&req.body.concat()).unwrap();
    assert_eq!(sent["prompt"], "### User:\nhi\n\n");
    let out =
        p.parse_answer(br#"{"response":"Hello","done":true,"prompt_eval_count":4,"eval_count":1}"#, &META).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "Hello");
    assert_eq!(out["usage"]["total_tokens"], 5);
}

#[test]
fn image_models_serve_generations_at_their_own_paths() {
    let body = Bytes::from_static(br#"{"model":"group","prompt":"a cat","n":2,"size":"512x512"}"#);
    let images = ChatCall { endpoint: Endpoint::Images, ..call(&body, false) };
    let meta = AnswerMeta { endpoint: Endpoint::Images, request: &body, ..META };
    for (model, url, answer) in [
        (
            "vertex_ai/imagen-3.0-generate-001",
            "http://upstream.test/v1/projects/p/locations/us-central1/publishers/google/models/imagen-3.0-generate-001:predict",
            &br#"{"predictions":[{"bytesBase64Encoded":"AAA"},{"bytesBase64Encoded":"BBB"}]}"#[..],
        ),
        (
            "bedrock/amazon.nova-canvas-v1:0",
            "http://upstream.test/model/amazon.nova-canvas-v1%3A0/invoke",
            &br#"{"images":["AAA","BBB"]}"#[..],
        ),
    ] {
        let m = parse_model(model, None).unwrap();
        let Built::Translated(p) = built(&params(&m), &[]) else { panic!("{model}") };
        assert!(p.serves(Endpoint::Images) && p.serves(Endpoint::Chat), "{model}");
        let req = p.build_request(&images).unwrap();
        assert_eq!(req.url.to_string(), url, "{model}");
        let sent: serde_json::Value = serde_json::from_slice(&req.body.concat()).unwrap();
        assert!(sent.to_string().contains("a cat"), "{model}: {sent}");
        let out = p.parse_answer(answer, &meta).unwrap();
        assert_eq!(out["data"], serde_json::json!([{"b64_json": "AAA"}, {"b64_json": "BBB"}]), "{model}");
    }
    // A Vertex token goes with Imagen's call, as with chat's.
    let m = parse_model("vertex_ai/imagen-3.0-generate-001", None).unwrap();
    let Built::Translated(p) = built(&params(&m), &[]) else { panic!() };
    assert!(p.build_request(&images).unwrap().token.is_some());
    // Chat models do not serve the route: the server answers 400 without an upstream call.
    for model in ["vertex_ai/gemini-pro", "gemini/imagen-3.0-generate-002", "bedrock/anthropic.claude-3-5-sonnet"] {
        let m = parse_model(model, None).unwrap();
        let Built::Translated(p) = built(&params(&m), &[]) else { panic!("{model}") };
        assert!(!p.serves(Endpoint::Images), "{model}");
    }
}
