//! Golden tests for the Anthropic translation, both directions. The fixtures under
//! `tests/fixtures/anthropic/` were written by hand from formats.md §3, §10.3 and §13 (not
//! captured from live APIs), so they pin the documented shapes rather than one day's output.

use serde_json::{json, Value};
use sluice_providers::anthropic::{self, ChatStream, MessagesStream, Options};

const CREATED: u64 = 1_700_000_000;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/anthropic/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cases(name: &str) -> Vec<Value> {
    fixture_json(name).as_array().expect("a list of cases").clone()
}

fn parse_all(chunks: &[String]) -> Vec<Value> {
    chunks.iter().map(|c| serde_json::from_str(c).unwrap_or_else(|e| panic!("{e}: {c}"))).collect()
}

// ---- OpenAI client → Anthropic upstream: requests ----

#[test]
fn chat_request_fixtures() {
    for case in cases("chat_request.json") {
        let name = case["name"].as_str().unwrap();
        let opts = match case.get("options") {
            Some(o) => Options {
                drop_params: o["drop_params"].as_bool().unwrap(),
                default_max_tokens: o["default_max_tokens"].as_u64().unwrap() as u32,
            },
            None => Options::default(),
        };
        let got = anthropic::chat_request(&case["openai"], "claude-3-5-sonnet-20241022", &opts)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, case["anthropic"], "{name}\n got: {got:#}");
    }
}

#[test]
fn default_max_tokens_is_litellms() {
    assert_eq!(Options::default(), Options { drop_params: false, default_max_tokens: 4096 });
}

#[test]
fn chat_request_refuses_what_anthropic_cannot_take() {
    let base = || json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let strict = Options::default();
    for (param, value) in [
        ("n", json!(2)),
        ("logit_bias", json!({"1": 1})),
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(0.5)),
        ("seed", json!(1)),
        ("logprobs", json!(true)),
        ("response_format", json!({"type": "json_object"})),
    ] {
        let mut req = base();
        req[param] = value.clone();
        let err = anthropic::chat_request(&req, "c", &strict).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param));
        assert!(err.message.contains("drop_params"), "{}", err.message);
        // With drop_params the same request goes through, without the parameter.
        let ok = anthropic::chat_request(&req, "c", &Options { drop_params: true, ..strict }).unwrap();
        assert!(ok.get(param).is_none(), "{param} was not dropped");
    }

    let bad = |req: Value, param: &str| {
        let err = anthropic::chat_request(&req, "c", &strict).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{err:?}");
        assert!(!err.message.is_empty());
    };
    bad(json!({"model": "m"}), "messages");
    bad(json!({"model": "m", "messages": [{"role": "system", "content": "only system"}]}), "messages");
    bad(json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}), "max_tokens");
    bad(json!({"model": "m", "max_tokens": "many", "messages": [{"role": "user", "content": "x"}]}), "max_tokens");
    bad(json!({"model": "m", "stop": "  ", "messages": [{"role": "user", "content": "x"}]}), "stop");
    bad(json!({"model": "m", "messages": [{"role": "function", "content": "x"}]}), "messages[0].role");
    bad(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}), "messages[0].tool_call_id");
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
        "messages[0].content[0].type",
    );
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]}),
        "messages[0].content[0].image_url.url",
    );
    bad(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}),
        "messages[0].content[0].image_url.url",
    );
    bad(
        json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
        "messages[0].tool_calls[0].function.arguments",
    );
    bad(
        json!({"model": "m", "tools": [{"type": "code_interpreter"}], "messages": [{"role": "user", "content": "x"}]}),
        "tools[0].type",
    );
    bad(
        json!({"model": "m", "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes",
               "messages": [{"role": "user", "content": "x"}]}),
        "tool_choice",
    );
    bad(json!({"model": "m", "messages": [{"role": "user", "content": ""}]}), "messages[0].content");
    assert!(anthropic::chat_request(&json!([1, 2]), "c", &strict).is_err());
}

#[test]
fn chat_request_small_cases() {
    let opts = Options::default();
    // No tools: tool_choice and parallel_tool_calls have nothing to apply to.
    let req = json!({"model": "m", "tool_choice": "auto", "parallel_tool_calls": false,
                     "messages": [{"role": "user", "content": "x"}], "stream": false});
    let out = anthropic::chat_request(&req, "c", &opts).unwrap();
    assert!(out.get("tool_choice").is_none() && out.get("tools").is_none() && out.get("stream").is_none());
    // parallel_tool_calls:false without a tool_choice means auto without parallel calls.
    let req = json!({"model": "m", "parallel_tool_calls": false, "tools": [{"type": "function", "function": {"name": "f"}}],
                     "messages": [{"role": "user", "content": "x"}]});
    let out = anthropic::chat_request(&req, "c", &opts).unwrap();
    assert_eq!(out["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
    // An assistant turn with nothing in it is dropped rather than sent empty.
    let req = json!({"model": "m", "messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "b"}]});
    let out = anthropic::chat_request(&req, "c", &opts).unwrap();
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    );
    // A PDF as an OpenAI file part becomes a document block.
    let req = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}]}]});
    let out = anthropic::chat_request(&req, "c", &opts).unwrap();
    assert_eq!(
        out["messages"][0]["content"][0],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
    );
}

// ---- OpenAI client → Anthropic upstream: responses ----

#[test]
fn chat_response_fixtures() {
    for case in cases("chat_response.json") {
        let name = case["name"].as_str().unwrap();
        let got = anthropic::chat_response(&case["anthropic"], "claude-alias", CREATED)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, case["openai"], "{name}\n got: {got:#}");
    }
}

#[test]
fn chat_response_rejects_what_is_not_a_message() {
    let err = anthropic::chat_response(&json!({"type": "error", "error": {"type": "api_error"}}), "m", 0).unwrap_err();
    assert!(err.param.is_none());
    assert!(err.message.contains("content"));
}

// ---- OpenAI client → Anthropic upstream: streams ----

/// Splits an SSE body into (event name, data) pairs, as the gateway's reader would.
fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut name = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            (name, data)
        })
        .collect()
}

fn run_stream(sse: &str, include_usage: bool) -> (ChatStream, Vec<String>) {
    let mut s = ChatStream::new("claude-alias", CREATED, include_usage);
    let mut out = Vec::new();
    for (name, data) in sse_events(sse) {
        out.extend(s.on_event(name.as_deref(), data.as_bytes()).unwrap());
    }
    out.extend(s.finish());
    (s, out)
}

#[test]
fn stream_transcript_10_3() {
    let (s, chunks) = run_stream(&fixture("stream_10_3.sse"), true);
    let want = fixture_json("stream_10_3.chunks.json");
    assert_eq!(Value::Array(parse_all(&chunks)), want, "{chunks:#?}");
    assert_eq!(s.usage(), Some((10, 15)));
}

#[test]
fn stream_without_include_usage_has_no_usage() {
    let (_, chunks) = run_stream(&fixture("stream_10_3.sse"), false);
    let chunks = parse_all(&chunks);
    assert_eq!(chunks.len(), 5);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn stream_error_event_is_an_error() {
    let mut s = ChatStream::new("m", 1, true);
    let start = r#"{"type":"message_start","message":{"id":"msg_e","usage":{"input_tokens":4,"output_tokens":1}}}"#;
    assert_eq!(s.on_event(Some("message_start"), start.as_bytes()).unwrap().len(), 1);
    let err = s
        .on_event(Some("error"), br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
        .unwrap_err();
    assert!(err.message.contains("overloaded_error") && err.message.contains("Overloaded"), "{}", err.message);
    // After an error nothing more is produced, not even a usage chunk.
    assert!(s.finish().is_empty());
    assert!(s.on_event(Some("ping"), b"").unwrap().is_empty());
    // Garbage is an error too.
    let mut s = ChatStream::new("m", 1, false);
    assert!(s.on_event(Some("content_block_delta"), b"{not json").is_err());
}

#[test]
fn stream_odd_but_valid_shapes() {
    let mut s = ChatStream::new("m", 1, true);
    // ping without data, events named only by their data's type, cache usage, thinking.
    assert!(s.on_event(Some("ping"), b"").unwrap().is_empty());
    let start = r#"{"type":"message_start","message":{"id":"msg_c","usage":{"input_tokens":3,"cache_read_input_tokens":50,"cache_creation_input_tokens":7,"output_tokens":1}}}"#;
    s.on_event(None, start.as_bytes()).unwrap();
    let think = r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#;
    let c = parse_all(&s.on_event(None, think.as_bytes()).unwrap());
    assert_eq!(c[0]["choices"][0]["delta"]["reasoning_content"], "hmm");
    let sig = r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}}"#;
    assert!(s.on_event(None, sig.as_bytes()).unwrap().is_empty());
    let unknown = r#"{"type":"brand_new_event","x":1}"#;
    assert!(s.on_event(None, unknown.as_bytes()).unwrap().is_empty());
    // The stream ends without message_delta: finish() still closes it with "stop".
    let tail = parse_all(&s.finish());
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[0]["choices"][0]["finish_reason"], "stop");
    assert_eq!(tail[1]["usage"]["prompt_tokens"], 60);
    assert_eq!(tail[1]["usage"]["prompt_tokens_details"]["cached_tokens"], 50);
    assert_eq!(s.usage(), Some((60, 1)));
    assert!(s.finish().is_empty());

    let s = ChatStream::new("m", 1, true);
    assert_eq!(s.usage(), None);
}

#[test]
fn stream_max_tokens_and_message_delta_input_tokens() {
    let mut s = ChatStream::new("m", 1, true);
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_m","usage":{"input_tokens":5,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Once"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":6,"output_tokens":2}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let mut out = Vec::new();
    for e in events {
        out.extend(s.on_event(None, e.as_bytes()).unwrap());
    }
    let c = parse_all(&out);
    assert_eq!(c[1]["choices"][0]["delta"]["content"], "Once");
    assert_eq!(c[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(s.usage(), Some((6, 2)));
}

// ---- Anthropic client at /v1/messages → OpenAI-format upstream ----

#[test]
fn messages_request_fixtures() {
    for case in cases("messages_request.json") {
        let name = case["name"].as_str().unwrap();
        let got = anthropic::messages_to_openai(&case["anthropic"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, case["openai"], "{name}\n got: {got:#}");
    }
}

#[test]
fn messages_request_errors() {
    let bad = |req: Value, param: &str| {
        let err = anthropic::messages_to_openai(&req).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{err:?}");
    };
    bad(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}), "max_tokens");
    bad(json!({"model": "m", "max_tokens": 5}), "messages");
    bad(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}), "messages.0.role");
    bad(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
               "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        "tools[0].type",
    );
    bad(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}),
        "messages.0.content.0.source.type",
    );
}

#[test]
fn messages_response_fixtures() {
    for case in cases("messages_response.json") {
        let name = case["name"].as_str().unwrap();
        let got =
            anthropic::openai_to_messages(&case["openai"], "claude-front").unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, case["anthropic"], "{name}\n got: {got:#}");
    }
    let err = anthropic::openai_to_messages(&json!({"choices": []}), "m").unwrap_err();
    assert!(err.message.contains("choices"));
    let bad_args =
        json!({"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}]}}]});
    assert!(anthropic::openai_to_messages(&bad_args, "m").is_err());
}

/// Splits a frame into (event, data) and insists on the exact framing the SDK reads.
fn frame(f: &str) -> (String, Value) {
    let rest = f.strip_prefix("event: ").unwrap_or_else(|| panic!("no event line: {f:?}"));
    let (event, rest) = rest.split_once("\ndata: ").unwrap_or_else(|| panic!("no data line: {f:?}"));
    let data = rest.strip_suffix("\n\n").unwrap_or_else(|| panic!("frame not terminated: {f:?}"));
    assert!(!data.contains('\n'), "data spans lines: {f:?}");
    (event.to_string(), serde_json::from_str(data).unwrap())
}

/// Rebuilds the message from frames the way the Anthropic SDKs' stream accumulator does, and
/// fails on anything it would reject or misread: events without a matching `type`, blocks out of
/// order, deltas of the wrong kind, anything after `message_stop`. Returns the final message.
fn accumulate(frames: &[String]) -> Result<Value, String> {
    let mut msg: Option<Value> = None;
    let mut open: Option<usize> = None;
    let mut partial_json: Vec<String> = Vec::new();
    let mut stopped = false;
    let mut delta_seen = false;
    for f in frames {
        let (event, data) = frame(f);
        if data["type"] != event.as_str() {
            return Err(format!("event {event} carries type {}", data["type"]));
        }
        if stopped {
            return Err(format!("{event} after message_stop"));
        }
        match event.as_str() {
            "message_start" => {
                if msg.is_some() {
                    return Err("second message_start".into());
                }
                let m = data["message"].clone();
                for k in ["id", "type", "role", "model", "content", "usage"] {
                    if m.get(k).is_none() {
                        return Err(format!("message_start.message lacks {k}"));
                    }
                }
                if m["usage"]["input_tokens"].as_u64().is_none() || m["usage"]["output_tokens"].as_u64().is_none() {
                    return Err("message_start usage needs input_tokens and output_tokens".into());
                }
                msg = Some(m);
            }
            "error" => return Err(format!("error event: {data}")),
            "ping" => {}
            _ => {
                let m = msg.as_mut().ok_or_else(|| format!("{event} before message_start"))?;
                let content = m["content"].as_array_mut().unwrap();
                match event.as_str() {
                    "content_block_start" => {
                        if open.is_some() {
                            return Err("content_block_start while a block is open".into());
                        }
                        let index = data["index"].as_u64().ok_or("index")? as usize;
                        if index != content.len() {
                            return Err(format!("block index {index}, expected {}", content.len()));
                        }
                        content.push(data["content_block"].clone());
                        partial_json.push(String::new());
                        open = Some(index);
                    }
                    "content_block_delta" => {
                        let index = data["index"].as_u64().ok_or("index")? as usize;
                        if open != Some(index) {
                            return Err(format!("delta for block {index} while {open:?} is open"));
                        }
                        let block = &mut content[index];
                        match (block["type"].as_str(), data["delta"]["type"].as_str()) {
                            (Some("text"), Some("text_delta")) => {
                                let t = block["text"].as_str().unwrap().to_string()
                                    + data["delta"]["text"].as_str().unwrap();
                                block["text"] = t.into();
                            }
                            (Some("tool_use"), Some("input_json_delta")) => {
                                partial_json[index].push_str(data["delta"]["partial_json"].as_str().unwrap());
                            }
                            (b, d) => return Err(format!("{d:?} delta on a {b:?} block")),
                        }
                    }
                    "content_block_stop" => {
                        let index = data["index"].as_u64().ok_or("index")? as usize;
                        if open != Some(index) {
                            return Err(format!("stop for block {index} while {open:?} is open"));
                        }
                        if content[index]["type"] == "tool_use" && !partial_json[index].is_empty() {
                            content[index]["input"] =
                                serde_json::from_str(&partial_json[index]).map_err(|e| format!("tool input: {e}"))?;
                        }
                        open = None;
                    }
                    "message_delta" => {
                        if open.is_some() {
                            return Err("message_delta with a block open".into());
                        }
                        m["stop_reason"] = data["delta"]["stop_reason"].clone();
                        m["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                        let out = data["usage"]["output_tokens"].as_u64().ok_or("message_delta.usage.output_tokens")?;
                        m["usage"]["output_tokens"] = out.into();
                        if let Some(i) = data["usage"].get("input_tokens") {
                            m["usage"]["input_tokens"] = i.clone();
                        }
                        delta_seen = true;
                    }
                    "message_stop" => {
                        if !delta_seen {
                            return Err("message_stop without message_delta".into());
                        }
                        stopped = true;
                    }
                    other => return Err(format!("unknown event {other}")),
                }
            }
        }
    }
    if !stopped {
        return Err("stream did not end with message_stop".into());
    }
    msg.ok_or_else(|| "no message_start".into())
}

fn run_messages_stream(chunks: &[Value]) -> Vec<String> {
    let mut s = MessagesStream::new("claude-front");
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.on_chunk(c));
    }
    out.extend(s.finish());
    assert!(s.finish().is_empty(), "finish is not idempotent");
    out
}

#[test]
fn messages_stream_fixture() {
    let fx = fixture_json("messages_stream.json");
    let chunks = fx["chunks"].as_array().unwrap();
    let frames = run_messages_stream(chunks);
    let got: Vec<Value> = frames
        .iter()
        .map(|f| {
            let (event, data) = frame(f);
            json!({ "event": event, "data": data })
        })
        .collect();
    assert_eq!(Value::Array(got.clone()), fx["frames"], "{got:#?}");
    let msg = accumulate(&frames).unwrap();
    assert_eq!(
        msg["content"],
        json!([
            {"type": "text", "text": "Let me check"},
            {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}}
        ])
    );
    assert_eq!(msg["stop_reason"], "tool_use");
    assert_eq!(msg["usage"], json!({"input_tokens": 10, "output_tokens": 9}));
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "x",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn messages_stream_shapes_the_sdk_accepts() {
    // Plain text, like the mock's OpenAI stream: no finish_reason, no usage.
    let frames = run_messages_stream(&[
        chunk(json!({"role": "assistant", "content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
    ]);
    let msg = accumulate(&frames).unwrap();
    assert_eq!(msg["content"], json!([{"type": "text", "text": "Hello"}]));
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["id"], "msg_s");

    // Nothing at all: still a complete, empty message.
    let msg = accumulate(&run_messages_stream(&[])).unwrap();
    assert_eq!(msg["content"], json!([]));
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));

    // Text after a tool call opens a new block; length → max_tokens.
    let frames = run_messages_stream(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\":"}}]}),
            None,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]}), None),
        chunk(json!({"content": "done"}), Some("length")),
    ]);
    let msg = accumulate(&frames).unwrap();
    assert_eq!(
        msg["content"],
        json!([{"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 2}}, {"type": "text", "text": "done"}])
    );
    assert_eq!(msg["stop_reason"], "max_tokens");
}

#[test]
fn messages_stream_upstream_error_becomes_an_error_event() {
    let mut s = MessagesStream::new("m");
    let mut frames = s.on_chunk(&chunk(json!({"content": "partial"}), None));
    frames.extend(s.on_chunk(&json!({"error": {"message": "upstream died", "type": "server_error"}})));
    frames.extend(s.finish());
    let last = frame(frames.last().unwrap());
    assert_eq!(last.0, "error");
    assert_eq!(last.1, json!({"type": "error", "error": {"type": "api_error", "message": "upstream died"}}));
    assert!(accumulate(&frames).unwrap_err().contains("error event"));
}

// ---- errors ----

#[test]
fn error_mapping_follows_litellm() {
    let body = |t: &str, m: &str| json!({"type": "error", "error": {"type": t, "message": m}}).to_string();
    let cases: &[(u16, String, u16, &str, &str)] = &[
        (
            400,
            body("invalid_request_error", "messages: roles must alternate"),
            400,
            "BadRequestError",
            "messages: roles must alternate",
        ),
        (
            400,
            body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            400,
            "ContextWindowExceededError",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ),
        (401, body("authentication_error", "invalid x-api-key"), 401, "AuthenticationError", "invalid x-api-key"),
        (
            403,
            body("permission_error", "no access to this model"),
            403,
            "PermissionDeniedError",
            "no access to this model",
        ),
        (404, body("not_found_error", "model: claude-9"), 404, "NotFoundError", "model: claude-9"),
        (
            413,
            body("request_too_large", "Request exceeds the maximum size"),
            400,
            "BadRequestError",
            "Request exceeds the maximum size",
        ),
        (
            429,
            body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            429,
            "RateLimitError",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        (500, body("api_error", "Internal server error"), 500, "InternalServerError", "Internal server error"),
        (529, body("overloaded_error", "Overloaded"), 500, "InternalServerError", "Overloaded"),
        (503, "upstream connect error".to_string(), 503, "ServiceUnavailableError", "upstream connect error"),
        (502, "<html>bad gateway</html>".to_string(), 502, "BadGatewayError", "<html>bad gateway</html>"),
        (408, String::new(), 408, "Timeout", "upstream returned an empty body"),
    ];
    for (status, b, want_status, class, message) in cases {
        let got = anthropic::error(*status, b.as_bytes());
        assert_eq!(got, (*want_status, *class, message.to_string()), "{status} {b}");
    }
}

#[test]
fn error_bodies_for_the_front_door() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ] {
        assert_eq!(
            anthropic::error_body(status, "why"),
            json!({"type": "error", "error": {"type": kind, "message": "why"}}),
            "{status}"
        );
    }
    let (event, data) = frame(&anthropic::error_frame(429, "slow down"));
    assert_eq!(event, "error");
    assert_eq!(data["error"]["type"], "rate_limit_error");
}

// ---- property: OpenAI → Anthropic → OpenAI keeps what both formats carry ----

/// A small deterministic generator (64-bit LCG): no dependency, same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn text(&mut self) -> String {
        const WORDS: [&str; 8] = ["alpha", "beta", "gamma", "δέλτα", "\"quoted\"", "new\nline", "emoji 🚀", "x"];
        let n = 1 + self.below(4);
        (0..n).map(|_| WORDS[self.below(WORDS.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
    }
}

const TOOL_NAMES: [&str; 3] = ["get_weather", "search", "noop"];

fn generate(rng: &mut Rng, case: usize) -> Value {
    let mut messages = Vec::new();
    if rng.chance(60) {
        let role = if rng.chance(50) { "system" } else { "developer" };
        messages.push(json!({"role": role, "content": rng.text()}));
    }
    let tools = rng.chance(50);
    let turns = 1 + rng.below(6);
    let mut call = 0;
    for t in 0..turns {
        if t % 2 == 0 || rng.chance(20) {
            let content = if rng.chance(30) {
                json!([{"type": "text", "text": rng.text()}, {"type": "text", "text": rng.text()}])
            } else {
                json!(rng.text())
            };
            messages.push(json!({"role": "user", "content": content}));
        } else if tools && rng.chance(50) {
            let n = 1 + rng.below(2);
            let calls: Vec<Value> = (0..n)
                .map(|_| {
                    call += 1;
                    let name = TOOL_NAMES[rng.below(3) as usize];
                    let args = json!({"q": rng.text(), "n": rng.below(10)}).to_string();
                    json!({"id": format!("toolu_{case}_{call}"), "type": "function", "function": {"name": name, "arguments": args}})
                })
                .collect();
            let content = if rng.chance(50) { json!(rng.text()) } else { Value::Null };
            let ids: Vec<String> = calls.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
            messages.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            for id in ids {
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": rng.text()}));
            }
        } else {
            messages.push(json!({"role": "assistant", "content": rng.text()}));
        }
    }
    let mut req = json!({"model": "alias", "messages": messages});
    if rng.chance(70) {
        req["max_tokens"] = (1 + rng.below(5000)).into();
    }
    if rng.chance(50) {
        req["temperature"] = json!([0.0, 0.25, 0.5, 1.0][rng.below(4) as usize]);
    }
    match rng.below(3) {
        0 => req["stop"] = json!(format!("STOP{}", rng.below(9))),
        1 => req["stop"] = json!(["###", format!("END{}", rng.below(9))]),
        _ => {}
    }
    if tools {
        req["tools"] = TOOL_NAMES
            .iter()
            .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}))
            .collect();
    }
    req
}

/// What both formats carry, in a comparable form: the system text, and the conversation as
/// runs of (role, text, tool calls, tool results) with same-role runs merged (Anthropic merges
/// them; the way back cannot split them again).
fn essence(req: &Value) -> Value {
    let mut system = String::new();
    let mut turns: Vec<(String, String, Vec<Value>)> = Vec::new();
    for m in req["messages"].as_array().unwrap() {
        let role = m["role"].as_str().unwrap();
        let text = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts.iter().map(|p| p["text"].as_str().unwrap_or("")).collect(),
            _ => String::new(),
        };
        if role == "system" || role == "developer" {
            system.push_str(&text);
            continue;
        }
        let mut extra: Vec<Value> = m["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        let args: Value = serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
                        json!({"id": c["id"], "name": c["function"]["name"], "args": args})
                    })
                    .collect()
            })
            .unwrap_or_default();
        if role == "tool" {
            extra.push(json!({"result_for": m["tool_call_id"], "text": text}));
        }
        let text = if role == "tool" { String::new() } else { text };
        match turns.last_mut() {
            Some((r, t, e)) if r == role => {
                t.push_str(&text);
                e.extend(extra);
            }
            _ => turns.push((role.to_string(), text, extra)),
        }
    }
    let stop = match &req["stop"] {
        Value::String(s) => json!([s]),
        other => other.clone(),
    };
    let tools: Vec<Value> =
        req["tools"].as_array().map(|t| t.iter().map(|t| t["function"]["name"].clone()).collect()).unwrap_or_default();
    json!({
        "system": system,
        "turns": turns.into_iter().map(|(r, t, e)| json!([r, t, e])).collect::<Vec<_>>(),
        "max_tokens": req["max_tokens"].as_u64().unwrap_or(u64::from(anthropic::DEFAULT_MAX_TOKENS)),
        "temperature": req["temperature"],
        "stop": stop,
        "tools": tools,
    })
}

#[test]
fn round_trip_keeps_shared_fields() {
    let mut rng = Rng(0x5eed);
    let opts = Options::default();
    for case in 0..500 {
        let original = generate(&mut rng, case);
        let upstream = anthropic::chat_request(&original, "claude-x", &opts)
            .unwrap_or_else(|e| panic!("case {case}: {e:?}\n{original:#}"));
        // Anthropic's rule, which the translation exists to satisfy: roles alternate.
        let roles: Vec<&str> =
            upstream["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert!(roles.windows(2).all(|w| w[0] != w[1]), "case {case}: {roles:?}");
        let back =
            anthropic::messages_to_openai(&upstream).unwrap_or_else(|e| panic!("case {case}: {e:?}\n{upstream:#}"));
        assert_eq!(essence(&back), essence(&original), "case {case}\noriginal: {original:#}\nupstream: {upstream:#}");
    }
}
