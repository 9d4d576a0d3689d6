//! A kept answer sent as a stream: the events an upstream streaming the same answer would have
//! sent, in OpenAI's chunk format, `data: [DONE]` last. The text comes in one delta per choice
//! (a hit has nothing to wait for), then each choice's finish, then the usage when the request
//! asked for it (`stream_options.include_usage`).

use crate::key::Shape;
use bytes::Bytes;
use serde_json::{Map, Value};

/// The events of `answer` (a whole chat completion or text completion) as SSE frames; `None`
/// when it is not one (an entry of another shape).
pub fn as_stream(shape: Shape, answer: &[u8], include_usage: bool) -> Option<Vec<Bytes>> {
    let Ok(Value::Object(mut whole)) = serde_json::from_slice::<Value>(answer) else { return None };
    let Some(Value::Array(choices)) = whole.remove("choices") else { return None };
    let usage = whole.remove("usage");
    let object = match shape {
        Shape::Chat => "chat.completion.chunk",
        Shape::Completion => "text_completion",
        Shape::Embedding | Shape::Responses | Shape::Rerank => return None,
    };
    let mut head = Map::new();
    for field in ["id", "created", "model", "system_fingerprint", "service_tier"] {
        if let Some(v) = whole.remove(field) {
            head.insert(field.into(), v);
        }
    }
    head.insert("object".into(), Value::from(object));
    let chunk = |choices: Vec<Value>| {
        let mut c = head.clone();
        c.insert("choices".into(), Value::Array(choices));
        c
    };
    let mut frames = Vec::with_capacity(choices.len() * 2 + 2);
    let mut finishes = Vec::with_capacity(choices.len());
    for (i, choice) in choices.into_iter().enumerate() {
        let Value::Object(mut choice) = choice else { return None };
        let index = choice.remove("index").unwrap_or_else(|| Value::from(i));
        let finish = choice.remove("finish_reason").unwrap_or(Value::Null);
        let first = match shape {
            Shape::Completion => serde_json::json!({
                "text": choice.remove("text").unwrap_or_else(|| Value::from("")),
                "index": index, "logprobs": null, "finish_reason": null,
            }),
            _ => {
                let mut delta = match choice.remove("message") {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                    for (n, call) in calls.iter_mut().enumerate() {
                        if let Value::Object(call) = call {
                            call.insert("index".into(), Value::from(n));
                        }
                    }
                }
                serde_json::json!({"index": index, "delta": delta, "finish_reason": null})
            }
        };
        frames.push(frame(&chunk(vec![first])));
        let last = match shape {
            Shape::Completion => {
                serde_json::json!({"text": "", "index": index, "logprobs": null, "finish_reason": finish})
            }
            _ => serde_json::json!({"index": index, "delta": {}, "finish_reason": finish}),
        };
        finishes.push(last);
    }
    frames.push(frame(&chunk(finishes)));
    if let (true, Some(usage)) = (include_usage, usage) {
        let mut c = chunk(Vec::new());
        c.insert("usage".into(), usage);
        frames.push(frame(&c));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Some(frames)
}

fn frame(chunk: &Map<String, Value>) -> Bytes {
    let mut out = b"data: ".to_vec();
    // A map of JSON values always serialises.
    serde_json::to_writer(&mut out, chunk).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::Assembler;

    #[test]
    fn a_replayed_answer_assembles_to_itself() {
        let answer = serde_json::json!({
            "id": "c1", "created": 7, "model": "gpt", "object": "chat.completion",
            "choices": [
                {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Hi",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}},
                {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "Yo"}},
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        });
        let bytes = serde_json::to_vec(&answer).unwrap();
        let frames = as_stream(Shape::Chat, &bytes, true).unwrap();
        assert_eq!(frames.last().unwrap(), &Bytes::from_static(b"data: [DONE]\n\n"));
        let mut a = Assembler::new(Shape::Chat, 1 << 20);
        for f in &frames {
            a.push(f);
        }
        let back: Value = serde_json::from_slice(&a.finish().unwrap()).unwrap();
        assert_eq!(back, answer);

        let without_usage = as_stream(Shape::Chat, &bytes, false).unwrap();
        assert!(!without_usage.iter().any(|f| std::str::from_utf8(f).unwrap().contains("usage")));
    }

    #[test]
    fn completions_replay_as_text_completion_chunks() {
        let answer = br#"{"id":"t","object":"text_completion","created":1,"model":"m","choices":[{"text":"ab","index":0,"logprobs":null,"finish_reason":"stop"}]}"#;
        let frames = as_stream(Shape::Completion, answer, false).unwrap();
        let mut a = Assembler::new(Shape::Completion, 1 << 20);
        for f in &frames {
            a.push(f);
        }
        let back: Value = serde_json::from_slice(&a.finish().unwrap()).unwrap();
        assert_eq!(back["choices"][0]["text"], "ab");
        assert_eq!(back["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn what_is_not_a_completion_does_not_replay() {
        assert!(as_stream(Shape::Chat, b"not json", false).is_none());
        assert!(as_stream(Shape::Embedding, br#"{"data":[]}"#, false).is_none());
        assert!(as_stream(Shape::Chat, br#"{"choices":[1]}"#, false).is_none());
    }
}
