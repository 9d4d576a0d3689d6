//! Whatever an upstream answers, reading it never panics: every parser and translator that
//! reads an upstream's bytes (SSE, chunked framing, Bedrock's event stream, OpenAI usage, the
//! Anthropic, Gemini and Bedrock answers and streams, their error bodies) gets real answers with
//! their values replaced by hostile ones (huge, negative, fractional and non-numeric counts,
//! wrong types, deep nesting), and arbitrary bytes. A panic here would cost the request that
//! met it; the property is that none is reachable.

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_http::chunked;
use sluice_providers::{anthropic, bedrock, gemini};
use sluice_wire::{sniff, sse};

/// Values an upstream may put where a count, a string or an object should be.
fn hostile() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", serde_json::Number::from_f64).prop_map(Value::Number),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(0.5)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        "[ -~]{0,12}".prop_map(Value::String),
        Just(json!("18446744073709551616")),
        Just(json!("NaN")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every leaf and container of `v`, in a fixed order.
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// Replaces the node numbered `at` (in [`count`]'s order) with `with`.
fn replace(v: &mut Value, at: &mut usize, with: &Value) -> bool {
    if *at == 0 {
        *v = with.clone();
        return true;
    }
    *at -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| replace(x, at, with)),
        Value::Object(o) => o.values_mut().any(|x| replace(x, at, with)),
        _ => false,
    }
}

fn mutate(sample: &Value, edits: &[(usize, Value)]) -> Value {
    let mut v = sample.clone();
    for (at, with) in edits {
        let mut at = at % count(&v);
        replace(&mut v, &mut at, with);
    }
    v
}

fn edits() -> impl Strategy<Value = Vec<(usize, Value)>> {
    prop::collection::vec((any::<usize>(), hostile()), 1..4)
}

fn anthropic_message() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    {"type": "thinking", "thinking": "hmm", "signature": "s"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 1}})
}

fn anthropic_events() -> Vec<(&'static str, Value)> {
    vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 3}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]
}

fn gemini_answer() -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12, "cachedContentTokenCount": 1, "thoughtsTokenCount": 2}})
}

fn bedrock_answer() -> Value {
    json!({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}, {"toolUse": {"toolUseId": "t", "name": "f", "input": {"a": 1}}}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 37, "outputTokens": 8, "totalTokens": 45, "cacheReadInputTokens": 1, "cacheWriteInputTokens": 2}})
}

fn bedrock_events() -> Vec<(&'static str, Value)> {
    vec![
        ("messageStart", json!({"role": "assistant"})),
        ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "hi"}})),
        ("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}})),
        ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":1}"}}})),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 37, "outputTokens": 8, "totalTokens": 45}, "metrics": {"latencyMs": 1}}),
        ),
    ]
}

fn openai_answer() -> Value {
    json!({"id": "x", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
                  "prompt_tokens_details": {"cached_tokens": 3}, "cache_creation_input_tokens": 1}})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn answers_with_hostile_values_translate_or_fail_cleanly(edits in edits()) {
        let _ = anthropic::chat_response(&mutate(&anthropic_message(), &edits), "m", 1);
        let _ = gemini::chat_response(&mutate(&gemini_answer(), &edits), "m", "id", 1);
        let _ = bedrock::converse_response(&mutate(&bedrock_answer(), &edits), "m", "id", 1);
        let _ = anthropic::openai_to_messages(&mutate(&openai_answer(), &edits), "m");
        let openai = serde_json::to_vec(&mutate(&openai_answer(), &edits)).unwrap();
        if let Ok(view) = sniff::response(&openai) {
            if let Some(u) = view.usage {
                // Counts arrive as whole u64s or not at all; the bill bounds them.
                let _ = u.prompt_tokens.saturating_add(u.completion_tokens);
            }
        }
        for status in [400u16, 429, 500, 529] {
            let body = serde_json::to_vec(&mutate(&json!({"error": {"type": "overloaded_error", "message": "m", "code": 429, "status": "RESOURCE_EXHAUSTED"}}), &edits)).unwrap();
            let _ = anthropic::error(status, &body);
            let _ = gemini::error(status, &body);
            let _ = bedrock::error(status, Some("ThrottlingException"), &body);
        }
    }

    #[test]
    fn streams_with_hostile_values_translate_or_fail_cleanly(edits in edits(), which in 0usize..8, include_usage in any::<bool>()) {
        let mut a = anthropic::ChatStream::new("m", 1, include_usage);
        for (i, (name, event)) in anthropic_events().into_iter().enumerate() {
            let event = if i == which { mutate(&event, &edits) } else { event };
            if a.on_event(Some(name), &serde_json::to_vec(&event).unwrap()).is_err() {
                break;
            }
        }
        let _ = a.finish();
        let _ = a.usage();
        let _ = a.usage_object().map(|u| sniff::Usage::from_value(&u));

        let mut m = anthropic::MessagesStream::new("m");
        let chunk = mutate(&json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi", "tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}), &edits);
        let _ = m.on_chunk(&chunk);
        let _ = m.finish();

        let mut g = gemini::StreamTranslator::new("m", "id", 1, include_usage);
        let _ = g.on_event(&serde_json::to_vec(&mutate(&gemini_answer(), &edits)).unwrap());
        let _ = g.on_event(&serde_json::to_vec(&gemini_answer()).unwrap());
        let _ = g.finish();
        let _ = g.usage();
        let _ = g.usage_object().map(|u| sniff::Usage::from_value(&u));

        let mut b = bedrock::StreamTranslator::new("m", "id", 1, include_usage);
        for (i, (kind, payload)) in bedrock_events().into_iter().enumerate() {
            let payload = if i == which { mutate(&payload, &edits) } else { payload };
            let message = bedrock::EventMessage {
                headers: vec![(":event-type".into(), kind.into()), (":message-type".into(), "event".into())],
                payload: serde_json::to_vec(&payload).unwrap(),
            };
            if b.on_message(&message).is_err() {
                break;
            }
        }
        let _ = b.finish();
        let _ = b.usage();
        let _ = b.usage_object().map(|u| sniff::Usage::from_value(&u));
    }

    #[test]
    fn arbitrary_bytes_in_every_framing_are_read_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(0usize..512, 0..6),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let pieces = || {
            let mut at = 0;
            let mut out: Vec<&[u8]> = cuts.iter().map(|&c| { let p = &bytes[at..c]; at = c; p }).collect();
            out.push(&bytes[at..]);
            out
        };

        let mut parser = sse::Parser::new();
        for piece in pieces() {
            parser.push(piece);
            while let Ok(Some(_)) = parser.next_event() {}
        }
        let _ = parser.finish();

        let mut decoder = chunked::Decoder::default();
        let mut buf = BytesMut::new();
        for piece in pieces() {
            buf.extend_from_slice(piece);
            while let Ok(Some(chunked::Chunk::Data(_))) = decoder.decode(&mut buf) {}
        }

        // Bedrock frames: real ones with bytes flipped (lengths and checksums included), then
        // arbitrary bytes.
        let mut frames = Vec::new();
        for (kind, payload) in bedrock_events() {
            frames.extend(bedrock::encode_event(&[(":event-type", kind), (":message-type", "event")], payload.to_string().as_bytes()));
        }
        for (at, b) in &flips {
            let n = frames.len();
            frames[at % n] = *b;
        }
        frames.extend_from_slice(&bytes);
        let mut events = bedrock::EventStreamDecoder::new();
        events.push(&frames);
        let mut translator = bedrock::StreamTranslator::new("m", "id", 1, true);
        while let Ok(Some(message)) = events.next_message() {
            let _ = bedrock::stream_exception(&message);
            let _ = translator.on_message(&message);
        }
        let _ = events.pending();

        let _ = sniff::response(&bytes);
        let _ = anthropic::error(500, &bytes);
        let _ = gemini::error(500, &bytes);
        let _ = bedrock::error(500, None, &bytes);
        let mut a = anthropic::ChatStream::new("m", 1, true);
        let _ = a.on_event(Some("message_delta"), &bytes);
        let mut g = gemini::StreamTranslator::new("m", "id", 1, true);
        let _ = g.on_event(&bytes);
    }
}
