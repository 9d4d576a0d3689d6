//! The Bedrock Converse translation checked against golden files written from formats.md §6 and
//! §13 (not captured from live APIs), the event-stream framing (round trips, every split, CRC
//! corruption), the stream translator over an encoded transcript, the error mapping, AWS's
//! published SigV4 test-suite vectors, and a property loop over request translation.

use serde_json::{json, Value};
use sluice_providers::bedrock::{
    self, encode_event, Credentials, EventMessage, EventStreamDecoder, Options, StreamTranslator,
};

const CREATED: u64 = 1_700_000_000;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/bedrock/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cases(name: &str) -> Vec<Value> {
    fixture(name).as_array().expect("a list of cases").clone()
}

// ---- requests ----

#[test]
fn request_fixtures() {
    for case in cases("converse_request.json") {
        let name = case["name"].as_str().unwrap();
        let opts = Options { drop_params: case["options"]["drop_params"].as_bool().unwrap_or(false) };
        let got = bedrock::converse_request(&case["openai"], &opts).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, case["bedrock"], "{name}\n got: {got:#}");
    }
}

#[test]
fn unsupported_params_are_refused_by_name_unless_dropped() {
    let base = || json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    for (param, value) in [
        ("n", json!(2)),
        ("logit_bias", json!({"1": 1})),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(2)),
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(0.5)),
        ("seed", json!(1)),
        ("response_format", json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})),
        ("functions", json!([{"name": "f"}])),
    ] {
        let mut req = base();
        req[param] = value;
        let err = bedrock::converse_request(&req, &Options::default()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param));
        assert!(err.message.contains("drop_params"), "{}", err.message);
        let ok = bedrock::converse_request(&req, &Options { drop_params: true }).unwrap();
        assert_eq!(ok, bedrock::converse_request(&base(), &Options::default()).unwrap(), "{param} leaked");
    }
    // Harmless values pass even without drop_params.
    let mut req = base();
    req["n"] = json!(1);
    req["logprobs"] = json!(false);
    req["response_format"] = json!({"type": "text"});
    assert_eq!(
        bedrock::converse_request(&req, &Options::default()).unwrap(),
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    );
}

#[test]
fn bad_requests_name_the_param() {
    let bad = |req: Value, param: &str| {
        let err = bedrock::converse_request(&req, &Options::default()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{err:?}");
        assert!(!err.message.is_empty());
    };
    bad(json!({"model": "m"}), "messages");
    bad(json!({"model": "m", "messages": [{"role": "system", "content": "only"}]}), "messages");
    bad(json!({"model": "m", "messages": [{"role": "critic", "content": "x"}]}), "messages[0].role");
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]}),
        "messages[0].content[0].image_url.url",
    );
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]}),
        "messages[0].content[0].image_url.url",
    );
    bad(json!({"model": "m", "messages": [{"role": "user", "content": ""}]}), "messages[0].content");
    bad(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}), "messages[0].tool_call_id");
    bad(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{not"}}]}]}),
        "messages[0].tool_calls[0].function.arguments",
    );
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": "sometimes"}),
        "tool_choice",
    );
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code_interpreter"}]}),
        "tools[0].type",
    );
    bad(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}), "max_tokens");
    bad(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}), "temperature");
    bad(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 5}), "stop");
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}),
        "reasoning_effort",
    );
}

// ---- responses ----

#[test]
fn response_fixtures() {
    for case in cases("converse_response.json") {
        let name = case["name"].as_str().unwrap();
        let got = bedrock::converse_response(&case["bedrock"], "my-bedrock", "chatcmpl-test", CREATED)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, case["openai"], "{name}\n got: {got:#}");
    }
    assert!(bedrock::converse_response(&json!({"message": "nope"}), "m", "i", 0).is_err());
}

// ---- event-stream framing ----

/// (headers, payload) of one message.
type Sample = (Vec<(String, String)>, Vec<u8>);

fn sample_messages() -> Vec<Sample> {
    vec![
        (
            vec![
                (":event-type".into(), "contentBlockDelta".into()),
                (":content-type".into(), "application/json".into()),
                (":message-type".into(), "event".into()),
            ],
            br#"{"contentBlockIndex":0,"delta":{"text":"h\u00e9llo"}}"#.to_vec(),
        ),
        (vec![(":message-type".into(), "event".into())], Vec::new()),
        (Vec::new(), vec![0u8, 255, 10, 13]),
        (vec![("x".into(), "é".repeat(300))], vec![b'a'; 5000]),
    ]
}

fn encode_all(msgs: &[Sample]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, p) in msgs {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        out.extend(encode_event(&h, p));
    }
    out
}

fn drain(d: &mut EventStreamDecoder) -> Result<Vec<EventMessage>, String> {
    let mut out = Vec::new();
    while let Some(m) = d.next_message()? {
        out.push(m);
    }
    Ok(out)
}

#[test]
fn event_stream_round_trips() {
    let msgs = sample_messages();
    let bytes = encode_all(&msgs);
    let mut d = EventStreamDecoder::new();
    d.push(&bytes);
    let got = drain(&mut d).unwrap();
    assert_eq!(got.len(), msgs.len());
    for (m, (h, p)) in got.iter().zip(&msgs) {
        assert_eq!(&m.headers, h);
        assert_eq!(&m.payload, p);
    }
    assert_eq!(got[0].header(":event-type"), Some("contentBlockDelta"));
    assert_eq!(got[0].header(":exception-type"), None);
    assert_eq!(d.pending(), 0);
    // A known frame: total 16 + headers + payload, prelude CRC over the first 8 bytes.
    let one = encode_event(&[], b"");
    assert_eq!(one, [0, 0, 0, 16, 0, 0, 0, 0, 0x05, 0xC2, 0x48, 0xEB, 0x7D, 0x98, 0xC8, 0xFF]);
}

#[test]
fn event_stream_survives_every_split() {
    let msgs = sample_messages();
    let bytes = encode_all(&msgs[..2]);
    for cut in 0..=bytes.len() {
        let mut d = EventStreamDecoder::new();
        d.push(&bytes[..cut]);
        let mut got = drain(&mut d).unwrap();
        d.push(&bytes[cut..]);
        got.extend(drain(&mut d).unwrap());
        assert_eq!(got.len(), 2, "cut at {cut}");
        assert_eq!(got[0].payload, msgs[0].1);
        assert_eq!(d.pending(), 0);
    }
    // And byte by byte.
    let bytes = encode_all(&msgs);
    let mut d = EventStreamDecoder::new();
    let mut got = Vec::new();
    for b in &bytes {
        d.push(std::slice::from_ref(b));
        got.extend(drain(&mut d).unwrap());
    }
    assert_eq!(got.len(), msgs.len());
}

#[test]
fn event_stream_detects_corruption() {
    let bytes = encode_event(&[(":event-type", "messageStop")], br#"{"stopReason":"end_turn"}"#);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        let mut d = EventStreamDecoder::new();
        d.push(&bad);
        // Corrupting the length may make the frame look longer than what arrived, which is
        // indistinguishable from "more to come" — except that the prelude CRC catches it.
        let err = d.next_message().expect_err(&format!("byte {i} flipped"));
        let expected = if i < 12 { "prelude" } else { "message checksum" };
        assert!(err.contains(expected), "byte {i}: {err}");
    }
    // A stream cut mid-frame is not an error until the end: it shows as pending bytes.
    let mut d = EventStreamDecoder::new();
    d.push(&bytes[..bytes.len() - 3]);
    assert_eq!(d.next_message(), Ok(None));
    assert_eq!(d.pending(), bytes.len() - 3);
    // Impossible lengths with a valid prelude CRC are refused rather than waited for.
    let mut huge = Vec::new();
    huge.extend_from_slice(&(64u32 * 1024 * 1024).to_be_bytes());
    huge.extend_from_slice(&0u32.to_be_bytes());
    let crc = crc32(&huge);
    huge.extend_from_slice(&crc.to_be_bytes());
    let mut d = EventStreamDecoder::new();
    d.push(&huge);
    assert!(d.next_message().unwrap_err().contains("impossible"));
}

/// CRC-32/IEEE, written again here so the test does not trust the code under test.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn encoded_frames_carry_valid_crcs() {
    let f = encode_event(&[(":event-type", "metadata")], b"{}");
    let n = f.len();
    assert_eq!(u32::from_be_bytes(f[8..12].try_into().unwrap()), crc32(&f[..8]));
    assert_eq!(u32::from_be_bytes(f[n - 4..].try_into().unwrap()), crc32(&f[..n - 4]));
}

// ---- stream translation ----

fn event(kind: &str, payload: &Value) -> Vec<u8> {
    let p = payload.to_string();
    encode_event(
        &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        p.as_bytes(),
    )
}

#[test]
fn stream_fixture() {
    let fx = fixture("stream_text_tool.json");
    let mut wire = Vec::new();
    for e in fx["events"].as_array().unwrap() {
        wire.extend(event(e["type"].as_str().unwrap(), &e["payload"]));
    }
    let include_usage = fx["include_usage"].as_bool().unwrap();
    let mut t = StreamTranslator::new("my-bedrock", "chatcmpl-s", CREATED, include_usage);
    let mut d = EventStreamDecoder::new();
    let mut chunks = Vec::new();
    // Feed in awkward 7-byte pieces, as a network would.
    for piece in wire.chunks(7) {
        d.push(piece);
        while let Some(m) = d.next_message().unwrap() {
            chunks.extend(t.on_message(&m).unwrap());
        }
    }
    chunks.extend(t.finish());
    assert!(t.finish().is_empty());
    let got: Vec<Value> = chunks.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
    let expected = fx["chunks"].as_array().unwrap();
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g["id"], "chatcmpl-s");
        assert_eq!(g["object"], "chat.completion.chunk");
        assert_eq!(g["created"], CREATED);
        assert_eq!(g["model"], "my-bedrock");
        if let Some(u) = e.get("usage") {
            assert_eq!(g["choices"], json!([]));
            assert_eq!(&g["usage"], u);
        } else {
            assert_eq!(g["usage"], Value::Null);
            let c = &g["choices"][0];
            assert_eq!(c["index"], 0);
            assert_eq!(&c["delta"], &e["delta"], "{g}");
            assert_eq!(&c["finish_reason"], &e["finish_reason"], "{g}");
        }
    }
    let u = fx["usage"].as_array().unwrap();
    assert_eq!(t.usage(), Some((u[0].as_u64().unwrap(), u[1].as_u64().unwrap())));
}

#[test]
fn stream_without_usage_or_stop() {
    let mut t = StreamTranslator::new("m", "id", CREATED, false);
    let mut d = EventStreamDecoder::new();
    d.push(&event("messageStart", &json!({"role": "assistant"})));
    d.push(&event("contentBlockDelta", &json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}})));
    d.push(&event(
        "contentBlockDelta",
        &json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
    ));
    d.push(&event("someFutureEvent", &json!({"x": 1})));
    let mut chunks = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        chunks.extend(t.on_message(&m).unwrap());
    }
    assert_eq!(t.usage(), None);
    chunks.extend(t.finish());
    let got: Vec<Value> = chunks.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(got[1]["choices"][0]["delta"], json!({"content": "Hi"}));
    assert_eq!(got[2]["choices"][0]["delta"], json!({"reasoning_content": "hmm"}));
    assert_eq!(got[3]["choices"][0]["finish_reason"], "stop");
}

#[test]
fn stream_exceptions_end_the_stream() {
    let mut t = StreamTranslator::new("m", "id", CREATED, true);
    let mut d = EventStreamDecoder::new();
    d.push(&event("messageStart", &json!({"role": "assistant"})));
    d.push(&encode_event(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    ));
    let first = d.next_message().unwrap().unwrap();
    assert_eq!(t.on_message(&first).unwrap().len(), 1);
    let exc = d.next_message().unwrap().unwrap();
    let err = t.on_message(&exc).unwrap_err();
    assert!(err.message.contains("throttlingException") && err.message.contains("Too many tokens"), "{err:?}");
    assert_eq!(err.param, None);
    assert!(t.finish().is_empty(), "nothing after an exception");
    assert_eq!(
        bedrock::stream_exception(&exc),
        Some((429, "RateLimitError", "Too many tokens, please wait before trying again.".to_string()))
    );
    let generic = EventMessage {
        headers: vec![
            (":message-type".into(), "error".into()),
            (":error-code".into(), "InternalFailure".into()),
            (":error-message".into(), "boom".into()),
        ],
        payload: Vec::new(),
    };
    assert_eq!(bedrock::stream_exception(&generic), Some((503, "ServiceUnavailableError", "boom".to_string())));
    let mut t = StreamTranslator::new("m", "id", CREATED, false);
    assert!(t.on_message(&generic).unwrap_err().message.contains("boom"));
    assert_eq!(bedrock::stream_exception(&first), None);
    // An event whose payload is not JSON cannot be translated.
    let mut t = StreamTranslator::new("m", "id", CREATED, false);
    let broken =
        EventMessage { headers: vec![(":event-type".into(), "contentBlockDelta".into())], payload: b"{no".to_vec() };
    assert!(t.on_message(&broken).is_err());
}

// ---- errors ----

#[test]
fn error_fixtures() {
    for case in cases("errors.json") {
        let name = case["name"].as_str().unwrap();
        let body = match &case["body"] {
            Value::String(s) => s.clone().into_bytes(),
            v => v.to_string().into_bytes(),
        };
        let (status, class, message) =
            bedrock::error(case["status"].as_u64().unwrap() as u16, case["type"].as_str(), &body);
        let expect = case["expect"].as_array().unwrap();
        assert_eq!(status, expect[0].as_u64().unwrap() as u16, "{name}");
        assert_eq!(class, expect[1].as_str().unwrap(), "{name}");
        match &case["body"]["message"] {
            Value::String(m) => assert_eq!(&message, m, "{name}"),
            _ => assert!(!message.is_empty(), "{name}"),
        }
    }
}

// ---- SigV4 ----

fn example_creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data.as_bytes()).as_ref().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

#[test]
fn sigv4_bedrock_post() {
    let model = "anthropic.claude-3-haiku-20240307-v1:0";
    let url = bedrock::converse_url(None, "us-west-2", model, false);
    assert!(url.ends_with("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"), "{url}");
    let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let creds = Credentials { session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".into()), ..example_creds() };
    let t = 1_704_164_645; // 2024-01-02T03:04:05Z
    let headers = bedrock::sign("POST", &url, body, "us-west-2", &creds, t).unwrap();
    let get = |k: &str| headers.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()).unwrap();
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"]);
    assert_eq!(get("x-amz-date"), "20240102T030405Z");
    assert_eq!(get("x-amz-content-sha256"), sha256_hex(body));
    assert_eq!(get("x-amz-security-token"), "FwoGZXIvYXdzEXAMPLETOKEN");

    let auth = get("authorization");
    let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-west-2/bedrock/aws4_request, \
                  SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=";
    assert!(auth.starts_with(prefix), "{auth}");
    let signature = &auth[prefix.len()..];
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    // The signature over the canonical request as the SigV4 documentation spells it out, with
    // the model id's `%3A` encoded a second time in the canonical URI (non-S3 services).
    let canonical = format!(
        "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n\
         host:bedrock-runtime.us-west-2.amazonaws.com\nx-amz-content-sha256:{h}\nx-amz-date:20240102T030405Z\n\
         x-amz-security-token:FwoGZXIvYXdzEXAMPLETOKEN\n\n\
         host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n{h}",
        h = sha256_hex(body)
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n20240102T030405Z\n20240102/us-west-2/bedrock/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20240102");
    for part in ["us-west-2", "bedrock", "aws4_request"] {
        key = hmac(&key, part);
    }
    assert_eq!(signature, hex::encode(hmac(&key, &to_sign)));

    // Deterministic; any change to the body changes the signature.
    assert_eq!(bedrock::sign("POST", &url, body, "us-west-2", &creds, t).unwrap(), headers);
    let other = bedrock::sign("POST", &url, b"{}", "us-west-2", &creds, t).unwrap();
    assert_ne!(other[0], headers[0]);

    // Without a session token, no token header is signed or sent; secrets never show.
    let plain = bedrock::sign("POST", &url, body, "us-west-2", &example_creds(), t).unwrap();
    assert_eq!(plain.len(), 3);
    assert!(plain[0].1.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    let all = format!("{plain:?}{headers:?}");
    assert!(!all.contains("wJalrXUtnFEMI"));

    // A custom endpoint signs its own host, port included.
    let local = bedrock::converse_url(Some("http://127.0.0.1:8090"), "us-west-2", model, true);
    assert_ne!(bedrock::sign("POST", &local, body, "us-west-2", &creds, t).unwrap()[0], headers[0]);

    // Errors say what is missing without echoing secrets.
    let empty = Credentials { secret_access_key: String::new(), ..example_creds() };
    assert!(bedrock::sign("POST", &url, body, "us-west-2", &empty, t).unwrap_err().contains("secret access key"));
    let err = bedrock::sign("POST", &url, body, "", &example_creds(), t).unwrap_err();
    assert!(err.contains("region") && !err.contains("wJalr"));
    assert!(bedrock::sign("POST", "not a url", body, "us-west-2", &example_creds(), t).is_err());
}

// ---- property loop ----

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        const ALPHABET: &[&str] = &["a", "Z", " ", "é", "中", "\"", "\\", "\n", "{", "🙂", "%3A", "<"];
        let len = 1 + self.below(12);
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize]).collect()
    }
}

#[test]
fn request_translation_keeps_what_it_carries() {
    let mut rng = Rng(0x5eed);
    for round in 0..300 {
        let system = rng.text();
        let turns = 1 + rng.below(5) as usize;
        let mut messages = vec![json!({"role": "system", "content": system})];
        let mut expected_turns: Vec<(&str, Vec<String>)> = Vec::new();
        for i in 0..turns {
            let role = if i % 2 == 0 || rng.below(3) == 0 { "user" } else { "assistant" };
            let text = rng.text();
            messages.push(json!({"role": role, "content": text}));
            match expected_turns.last_mut() {
                Some((r, texts)) if *r == role => texts.push(text),
                _ => expected_turns.push((role, vec![text])),
            }
        }
        let max_tokens = 1 + rng.below(100_000);
        let temperature = rng.below(200) as f64 / 100.0;
        let stops: Vec<String> = (0..rng.below(4)).map(|_| rng.text()).collect();
        let tools: Vec<String> = (0..rng.below(4)).map(|i| format!("tool_{i}_{}", rng.below(1000))).collect();
        let mut req = json!({
            "model": "m", "messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stop": stops,
        });
        if !tools.is_empty() {
            req["tools"] = tools
                .iter()
                .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}))
                .collect();
        }
        let got =
            bedrock::converse_request(&req, &Options::default()).unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(got["system"], json!([{"text": system}]), "round {round}");
        let turns_got = got["messages"].as_array().unwrap();
        assert_eq!(turns_got.len(), expected_turns.len(), "round {round}");
        for (g, (role, texts)) in turns_got.iter().zip(&expected_turns) {
            assert_eq!(g["role"], *role);
            let texts_got: Vec<&str> =
                g["content"].as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap()).collect();
            assert_eq!(&texts_got, texts, "round {round}");
        }
        let inf = &got["inferenceConfig"];
        assert_eq!(inf["maxTokens"], max_tokens);
        assert_eq!(inf["temperature"].as_f64(), Some(temperature));
        if stops.is_empty() {
            assert!(inf.get("stopSequences").is_none());
        } else {
            assert_eq!(inf["stopSequences"], json!(stops));
        }
        let names: Vec<&str> = got["toolConfig"]["tools"]
            .as_array()
            .map(|t| t.iter().map(|t| t["toolSpec"]["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(names, tools);
        // The body serializes and parses back to the same value (what the server signs).
        let bytes = serde_json::to_vec(&got).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), got);
    }
}
