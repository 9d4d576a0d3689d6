//! The Gemini translation checked against golden files written from formats.md (§2, §10.2,
//! §10.5, §13), LiteLLM's URL rules (§2.2), the error mapping, and a property test that a
//! request's carried fields survive translation.

use std::path::PathBuf;

use serde_json::{json, Value};
use sluice_providers::gemini::{self, Options, StreamTranslator};

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemini");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let v =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Equality where the expected string `{{call_id}}` stands for any generated tool-call id.
fn matches(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::String(e), Value::String(g)) if e == "{{call_id}}" => g.starts_with("call_") && g.len() == 29,
        (Value::Object(e), Value::Object(g)) => {
            e.len() == g.len() && e.iter().all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv)))
        }
        (Value::Array(e), Value::Array(g)) => e.len() == g.len() && e.iter().zip(g).all(|(a, b)| matches(a, b)),
        _ => expected == got,
    }
}

fn check(name: &str, expected: &Value, got: &Value) {
    assert!(
        matches(expected, got),
        "{name}\nexpected: {}\n     got: {}",
        serde_json::to_string_pretty(expected).unwrap(),
        serde_json::to_string_pretty(got).unwrap()
    );
}

#[test]
fn golden_files() {
    let mut counts = [0usize; 3];
    for (name, f) in fixtures() {
        match f["kind"].as_str().unwrap() {
            "request" => {
                let opts = Options {
                    drop_params: f.pointer("/options/drop_params") == Some(&json!(true)),
                    ..Options::default()
                };
                let got = gemini::chat_request(&f["input"], &opts).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                check(&name, &f["expected"], &got);
                counts[0] += 1;
            }
            "response" => {
                let got = gemini::chat_response(
                    &f["input"],
                    f["model"].as_str().unwrap(),
                    f["id"].as_str().unwrap(),
                    f["created"].as_u64().unwrap(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                check(&name, &f["expected"], &got);
                counts[1] += 1;
            }
            "stream" => {
                let mut t = StreamTranslator::new(
                    f["model"].as_str().unwrap(),
                    f["id"].as_str().unwrap(),
                    f["created"].as_u64().unwrap(),
                    f["include_usage"].as_bool().unwrap(),
                );
                let mut chunks = Vec::new();
                for e in f["events"].as_array().unwrap() {
                    chunks
                        .extend(t.on_event(e.as_str().unwrap().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e:?}")));
                }
                chunks.extend(t.finish());
                let got: Vec<Value> = chunks.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
                check(&name, &f["expected"], &Value::Array(got));
                let u = f["expected_usage"].as_array().unwrap();
                assert_eq!(t.usage(), Some((u[0].as_u64().unwrap(), u[1].as_u64().unwrap())), "{name}");
                counts[2] += 1;
            }
            k => panic!("{name}: unknown kind {k}"),
        }
    }
    assert!(counts.iter().all(|&n| n >= 2), "every direction has golden files: {counts:?}");
}

#[test]
fn stream_tool_call_ids_are_distinct_and_stable() {
    let events = [
        r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"a","args":{}}}]}}]}"#,
        r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"b","args":{}}}]},"finishReason":"STOP"}]}"#,
    ];
    let run = || {
        let mut t = StreamTranslator::new("m", "chatcmpl-x", 1, false);
        let mut ids = Vec::new();
        for e in events {
            for c in t.on_event(e.as_bytes()).unwrap() {
                let v: Value = serde_json::from_str(&c).unwrap();
                if let Some(id) = v.pointer("/choices/0/delta/tool_calls/0/id") {
                    ids.push(id.as_str().unwrap().to_string());
                }
            }
        }
        ids
    };
    let ids = run();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids, run());
}

#[test]
fn stream_with_crlf_payload_and_several_candidates() {
    let mut t = StreamTranslator::new("m", "i", 1, false);
    let out = t
        .on_event(b"{\"candidates\":[{\"index\":0,\"content\":{\"parts\":[{\"text\":\"a\"}]}},{\"index\":1,\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"MAX_TOKENS\"}]}\r\n")
        .unwrap();
    let v: Vec<Value> = out.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "a"}));
    assert_eq!(v[1]["choices"][0]["index"], 1);
    assert_eq!(v[2]["choices"][0]["finish_reason"], "length");
    let end: Vec<Value> = t.finish().iter().map(|c| serde_json::from_str(c).unwrap()).collect();
    assert_eq!(end.len(), 1, "only choice 0 was left open");
    assert_eq!(end[0]["choices"][0]["index"], 0);
}

const SEED_BASE: &str = "https://exampleopenaiendpoint-production.up.railway.app/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001";

#[test]
fn vertex_urls_follow_litellm() {
    let m = "gemini-1.0-pro-vision-001";
    let (p, l) = ("adroit-crow-413218", "us-central1");
    // The seed's api_base already names the model: only the verb is appended, and the
    // configured project/location do not matter.
    assert_eq!(gemini::vertex_url(Some(SEED_BASE), p, l, m, false), format!("{SEED_BASE}:generateContent"));
    assert_eq!(
        gemini::vertex_url(Some(SEED_BASE), p, l, m, true),
        format!("{SEED_BASE}:streamGenerateContent?alt=sse")
    );
    assert_eq!(
        gemini::vertex_url(Some(&format!("{SEED_BASE}/")), "x", "y", m, false),
        format!("{SEED_BASE}:generateContent")
    );
    // A bare host gets the default path; a bare version the path after it.
    let path = "projects/adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001";
    for base in ["http://127.0.0.1:8090", "http://127.0.0.1:8090/"] {
        assert_eq!(
            gemini::vertex_url(Some(base), p, l, m, false),
            format!("http://127.0.0.1:8090/v1/{path}:generateContent")
        );
    }
    assert_eq!(
        gemini::vertex_url(Some("http://h/v1"), p, l, m, true),
        format!("http://h/v1/{path}:streamGenerateContent?alt=sse")
    );
    assert_eq!(
        gemini::vertex_url(Some("http://h/v1beta1/"), p, l, m, false),
        format!("http://h/v1beta1/{path}:generateContent")
    );
    assert_eq!(
        gemini::vertex_url(Some("http://h/proxy/model?x=1"), p, l, m, true),
        "http://h/proxy/model:streamGenerateContent?x=1&alt=sse"
    );
    // Default hosts by location.
    assert_eq!(
        gemini::vertex_url(None, "p", "us-central1", "gemini-2.0-flash", false),
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(
        gemini::vertex_url(None, "p", "global", "gemini-2.5-pro", true),
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        gemini::vertex_url(None, "p", "us", "g", false),
        "https://aiplatform.us.rep.googleapis.com/v1/projects/p/locations/us/publishers/google/models/g:generateContent"
    );
    assert_eq!(
        gemini::vertex_url(None, "p", "eu", "g", false),
        "https://aiplatform.eu.rep.googleapis.com/v1/projects/p/locations/eu/publishers/google/models/g:generateContent"
    );
    // A numeric model is a tuned-model endpoint.
    assert_eq!(
        gemini::vertex_url(None, "p", "europe-west4", "1234567890", false),
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/endpoints/1234567890:generateContent"
    );
}

#[test]
fn ai_studio_urls() {
    assert_eq!(
        gemini::gemini_url(None, "gemini-2.0-flash", false),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(
        gemini::gemini_url(None, "models/gemini-2.5-flash", true),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        gemini::gemini_url(None, "gemini-3-pro-preview", false),
        "https://generativelanguage.googleapis.com/v1alpha/models/gemini-3-pro-preview:generateContent"
    );
    assert_eq!(
        gemini::gemini_url(Some("http://127.0.0.1:8090/v1beta/"), "gemini-2.0-flash", true),
        "http://127.0.0.1:8090/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
}

#[test]
fn google_errors_map_to_litellm_classes() {
    let body = |code: u16, status: &str, msg: &str| {
        json!({"error": {"code": code, "message": msg, "status": status}}).to_string().into_bytes()
    };
    let cases: &[(u16, &str, &str, u16, &str)] = &[
        (429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.", 429, "RateLimitError"),
        (400, "INVALID_ARGUMENT", "Invalid JSON payload received.", 400, "BadRequestError"),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (5486723) exceeds the maximum number of tokens allowed (1048575).",
            400,
            "ContextWindowExceededError",
        ),
        (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", 401, "AuthenticationError"),
        (403, "PERMISSION_DENIED", "Permission denied on resource project x.", 403, "PermissionDeniedError"),
        (404, "NOT_FOUND", "Publisher Model was not found.", 404, "NotFoundError"),
        (500, "INTERNAL", "Internal error encountered.", 500, "InternalServerError"),
        (503, "UNAVAILABLE", "The model is overloaded.", 503, "ServiceUnavailableError"),
    ];
    for &(code, status, msg, want_status, want_class) in cases {
        let (s, class, text) = gemini::error(code, &body(code, status, msg));
        assert_eq!((s, class, text.as_str()), (want_status, want_class, msg), "{code} {status}");
    }
    let (s, class, text) = gemini::error(502, b"<html>Bad Gateway</html>");
    assert_eq!((s, class), (502, "BadGatewayError"));
    assert!(text.contains("Bad Gateway"));
    // An error envelope delivered with a 200 (mid-stream) is classified by its own code.
    let (s, class, _) = gemini::error(200, &body(429, "RESOURCE_EXHAUSTED", "quota"));
    assert_eq!((s, class), (429, "RateLimitError"));
}

/// xorshift64*: a fixed-seed generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn text(&mut self) -> String {
        const ALPHABET: &[&str] = &["a", "Z", " ", "\"", "\\", "\n", "é", "日本", "🦀", "{", "}", ":", "0"];
        let len = 1 + self.below(12);
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize]).collect()
    }
}

#[test]
fn translation_carries_what_it_should() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for case in 0..500 {
        let n = 1 + rng.below(8);
        let mut messages = Vec::new();
        let mut system_texts = Vec::new();
        let mut turn_texts = Vec::new();
        for i in 0..n {
            let role = match rng.below(4) {
                0 => "system",
                1 => "assistant",
                _ => "user",
            };
            // At least one non-system message, so system text stays in systemInstruction.
            let role = if i == n - 1 && role == "system" { "user" } else { role };
            let text = rng.text();
            let content = if rng.below(2) == 0 { json!(text) } else { json!([{"type": "text", "text": text}]) };
            messages.push(json!({"role": role, "content": content}));
            if role == "system" {
                system_texts.push(text);
            } else {
                turn_texts.push(text);
            }
        }
        let temperature = rng.below(200) as f64 / 100.0;
        let max_tokens = 1 + rng.below(100_000);
        let stops: Vec<String> = (0..rng.below(4)).map(|_| rng.text()).collect();
        let tools: Vec<String> = (0..rng.below(4)).map(|k| format!("fn_{case}_{k}")).collect();
        let mut req = json!({
            "model": "gemini-2.0-flash",
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        });
        // A single stop may go as a plain string; it must come back as a one-item list.
        match stops.len() {
            0 => {}
            1 if case % 2 == 0 => req["stop"] = json!(stops[0]),
            _ => req["stop"] = json!(stops),
        }
        if !tools.is_empty() {
            req["tools"] = tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t, "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}))
                .collect();
        }
        let out = gemini::chat_request(&req, &Options::default()).unwrap_or_else(|e| panic!("case {case}: {e:?}"));

        let texts = |v: &Value| -> Vec<String> {
            v.as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_string()).collect()
        };
        let got_system = out.get("systemInstruction").map(|s| texts(&s["parts"])).unwrap_or_default();
        assert_eq!(got_system, system_texts, "case {case}");
        let contents = out["contents"].as_array().unwrap();
        let got_turns: Vec<String> = contents.iter().flat_map(|c| texts(&c["parts"])).collect();
        assert_eq!(got_turns, turn_texts, "case {case}");
        for pair in contents.windows(2) {
            assert_ne!(pair[0]["role"], pair[1]["role"], "case {case}: same-role turns must merge");
        }
        assert!(contents.iter().all(|c| c["role"] == "user" || c["role"] == "model"));
        let g = &out["generationConfig"];
        assert_eq!(g["temperature"].as_f64(), Some(temperature), "case {case}");
        assert_eq!(g["maxOutputTokens"].as_u64(), Some(max_tokens), "case {case}");
        let got_stops: Vec<String> = g
            .get("stopSequences")
            .map(|s| s.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert_eq!(got_stops, stops, "case {case}");
        let got_tools: Vec<String> = out
            .pointer("/tools/0/functionDeclarations")
            .map(|d| d.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert_eq!(got_tools, tools, "case {case}");
    }
}

#[test]
fn response_then_request_round_trips_tool_calls() {
    // What the gateway answered becomes the next request's history: the generated tool-call id
    // must lead back to the right function name.
    let gemini_answer = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "lookup", "args": {"q": "rust"}}},
        {"functionCall": {"name": "fetch", "args": {"url": "https://x"}}}
    ]}, "finishReason": "STOP"}]});
    let openai = gemini::chat_response(&gemini_answer, "m", "chatcmpl-rt", 1).unwrap();
    let msg = openai["choices"][0]["message"].clone();
    let calls = msg["tool_calls"].as_array().unwrap();
    let req = json!({"messages": [
        {"role": "user", "content": "go"},
        msg,
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "page"},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"hits\": 3}"}
    ]});
    let out = gemini::chat_request(&req, &Options::default()).unwrap();
    assert_eq!(out["contents"][1]["parts"][0]["functionCall"], json!({"name": "lookup", "args": {"q": "rust"}}));
    assert_eq!(
        out["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "fetch", "response": {"content": "page"}}},
            {"functionResponse": {"name": "lookup", "response": {"hits": 3}}}
        ])
    );
}
