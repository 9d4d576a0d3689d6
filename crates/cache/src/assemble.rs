//! A streamed answer made whole again, from the events the client was sent, so it can be kept
//! and later replayed whole or as a stream. Only a stream that ended with `[DONE]` and carried
//! no error is whole; anything else is not kept.

use crate::key::Shape;
use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_wire::sse;

/// One choice as its deltas built it.
#[derive(Default)]
struct Choice {
    role: Option<String>,
    content: Option<String>,
    refusal: Option<String>,
    reasoning: Option<String>,
    tool_calls: Vec<ToolCall>,
    finish_reason: Value,
    /// A completion's text.
    text: String,
}

/// One tool call as its deltas built it.
#[derive(Default)]
struct ToolCall {
    index: usize,
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

/// Builds the whole answer from a stream's events as they pass.
pub struct Assembler {
    shape: Shape,
    parser: sse::Parser,
    /// The answer's top level (`id`, `created`, `model`, …) from the first chunk.
    head: Map<String, Value>,
    choices: Vec<(u64, Choice)>,
    usage: Option<Value>,
    done: bool,
    broken: bool,
    /// Bytes seen; past `limit` nothing is kept.
    seen: usize,
    limit: usize,
}

impl Assembler {
    /// For an answer of `shape` kept only if its events come to at most `limit` bytes.
    pub fn new(shape: Shape, limit: usize) -> Assembler {
        Assembler {
            shape,
            parser: sse::Parser::new(),
            head: Map::new(),
            choices: Vec::new(),
            usage: None,
            done: false,
            broken: !matches!(shape, Shape::Chat | Shape::Completion),
            seen: 0,
            limit,
        }
    }

    /// Bytes of the stream as the client gets them.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.broken {
            return;
        }
        self.seen += chunk.len();
        if self.seen > self.limit {
            self.broken = true;
            return;
        }
        self.parser.push(chunk);
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => self.event(&event),
                Ok(None) => return,
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
        }
    }

    fn event(&mut self, event: &sse::Event) {
        if self.done {
            // Nothing follows `[DONE]` in a whole stream.
            self.broken = true;
            return;
        }
        if event.is_done() {
            self.done = true;
            return;
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_slice::<Value>(&event.data) else {
            self.broken = true;
            return;
        };
        if chunk.contains_key("error") {
            self.broken = true;
            return;
        }
        if let Some(u) = chunk.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u);
        }
        let choices = match chunk.remove("choices") {
            Some(Value::Array(c)) => c,
            _ => Vec::new(),
        };
        if self.head.is_empty() {
            for field in ["id", "created", "model", "system_fingerprint", "service_tier"] {
                if let Some(v) = chunk.remove(field) {
                    self.head.insert(field.into(), v);
                }
            }
        }
        for c in choices {
            let Value::Object(c) = c else { continue };
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let at = match self.choices.iter().position(|(i, _)| *i == index) {
                Some(at) => at,
                None => {
                    // A stream with more choices than any request asks for is not one to keep.
                    if self.choices.len() >= 128 {
                        self.broken = true;
                        return;
                    }
                    self.choices.push((index, Choice::default()));
                    self.choices.len() - 1
                }
            };
            let choice = &mut self.choices[at].1;
            if let Some(fr) = c.get("finish_reason").filter(|v| !v.is_null()) {
                choice.finish_reason = fr.clone();
            }
            if let Some(text) = c.get("text").and_then(Value::as_str) {
                choice.text.push_str(text);
            }
            let Some(Value::Object(delta)) = c.get("delta") else { continue };
            if let Some(role) = delta.get("role").and_then(Value::as_str) {
                choice.role = Some(role.to_string());
            }
            let append = |slot: &mut Option<String>, v: Option<&Value>| {
                if let Some(s) = v.and_then(Value::as_str) {
                    slot.get_or_insert_with(String::new).push_str(s);
                }
            };
            append(&mut choice.content, delta.get("content"));
            append(&mut choice.refusal, delta.get("refusal"));
            append(&mut choice.reasoning, delta.get("reasoning_content"));
            if let Some(Value::Array(calls)) = delta.get("tool_calls") {
                for call in calls {
                    let i = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                    let slot = match choice.tool_calls.iter().position(|t| t.index == i) {
                        Some(s) => s,
                        None => {
                            if choice.tool_calls.len() >= 128 {
                                self.broken = true;
                                return;
                            }
                            choice.tool_calls.push(ToolCall { index: i, ..ToolCall::default() });
                            choice.tool_calls.len() - 1
                        }
                    };
                    let t = &mut choice.tool_calls[slot];
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        t.id = Some(id.to_string());
                    }
                    if let Some(kind) = call.get("type").and_then(Value::as_str) {
                        t.kind = Some(kind.to_string());
                    }
                    if let Some(f) = call.get("function") {
                        if let Some(name) = f.get("name").and_then(Value::as_str) {
                            t.name.push_str(name);
                        }
                        if let Some(args) = f.get("arguments").and_then(Value::as_str) {
                            t.arguments.push_str(args);
                        }
                    }
                }
            }
        }
    }

    /// The whole answer, when the stream was whole.
    pub fn finish(mut self) -> Option<Bytes> {
        if let Some(event) = self.parser.finish() {
            self.event(&event);
        }
        if self.broken || !self.done || self.choices.is_empty() {
            return None;
        }
        let mut answer = self.head;
        self.choices.sort_by_key(|(i, _)| *i);
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, c)| match self.shape {
                Shape::Completion => serde_json::json!({
                    "text": c.text, "index": index, "logprobs": null, "finish_reason": c.finish_reason,
                }),
                _ => {
                    let mut message = Map::new();
                    message.insert("role".into(), Value::from(c.role.unwrap_or_else(|| "assistant".into())));
                    message.insert("content".into(), c.content.map_or(Value::Null, Value::from));
                    if let Some(r) = c.refusal {
                        message.insert("refusal".into(), Value::from(r));
                    }
                    if let Some(r) = c.reasoning {
                        message.insert("reasoning_content".into(), Value::from(r));
                    }
                    if !c.tool_calls.is_empty() {
                        let mut calls = c.tool_calls;
                        calls.sort_by_key(|t| t.index);
                        let calls: Vec<Value> = calls
                            .into_iter()
                            .map(|t| {
                                serde_json::json!({
                                    "id": t.id, "type": t.kind.unwrap_or_else(|| "function".into()),
                                    "function": {"name": t.name, "arguments": t.arguments},
                                })
                            })
                            .collect();
                        message.insert("tool_calls".into(), Value::Array(calls));
                    }
                    serde_json::json!({"index": index, "message": message, "finish_reason": c.finish_reason})
                }
            })
            .collect();
        let object = match self.shape {
            Shape::Completion => "text_completion",
            _ => "chat.completion",
        };
        answer.insert("object".into(), Value::from(object));
        answer.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            answer.insert("usage".into(), u);
        }
        serde_json::to_vec(&Value::Object(answer)).ok().map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
        "data: [DONE]\n\n",
    );

    fn whole(stream: &[u8], pieces: usize) -> Option<Value> {
        let mut a = Assembler::new(Shape::Chat, 1 << 20);
        for part in stream.chunks(stream.len().div_ceil(pieces.max(1)).max(1)) {
            a.push(part);
        }
        a.finish().map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_whole_stream_becomes_its_answer() {
        let v = whole(STREAM.as_bytes(), 1).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "c1", "created": 7, "model": "gpt", "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Hello",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}],
                }}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            })
        );
    }

    #[test]
    fn a_stream_cut_short_or_failed_or_too_long_is_not_kept() {
        let cut = STREAM.replace("data: [DONE]\n\n", "");
        assert!(whole(cut.as_bytes(), 1).is_none());
        let failed = STREAM.replace("data: [DONE]", "data: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]");
        assert!(whole(failed.as_bytes(), 1).is_none());
        let mut small = Assembler::new(Shape::Chat, 100);
        small.push(STREAM.as_bytes());
        assert!(small.finish().is_none());
        assert!(Assembler::new(Shape::Embedding, 1 << 20).finish().is_none());
    }

    #[test]
    fn completions_keep_their_text() {
        let s = "data: {\"id\":\"t\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"text\":\"a\",\"index\":0,\"finish_reason\":null}]}\n\ndata: {\"id\":\"t\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"text\":\"b\",\"index\":0,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let mut a = Assembler::new(Shape::Completion, 1 << 20);
        a.push(s.as_bytes());
        let v: Value = serde_json::from_slice(&a.finish().unwrap()).unwrap();
        assert_eq!(v["choices"][0]["text"], "ab");
        assert_eq!(v["object"], "text_completion");
    }

    proptest! {
        /// However the bytes arrive, the answer is the same.
        #[test]
        fn any_split_gives_the_same_answer(pieces in 1usize..200) {
            prop_assert_eq!(whole(STREAM.as_bytes(), pieces), whole(STREAM.as_bytes(), 1));
        }

        /// Mutated streams never panic, and whatever comes out is JSON.
        #[test]
        fn mutated_streams_never_panic(flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8), cut in 0usize..2000) {
            let mut bytes = STREAM.as_bytes().to_vec();
            for (at, b) in flips {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            bytes.truncate(bytes.len().saturating_sub(cut % 50));
            let mut a = Assembler::new(Shape::Chat, 1 << 20);
            a.push(&bytes);
            if let Some(out) = a.finish() {
                prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
            }
        }
    }
}
