//! Chat-completion chunks as OpenAI's Responses event stream: `response.created`,
//! `response.in_progress`, then per output item `response.output_item.added`, its content
//! (`response.content_part.added`, `response.output_text.delta`…, or
//! `response.function_call_arguments.delta`…, or for the model's reasoning
//! `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`…), the
//! `.done` events, `response.output_item.done`,
//! and last `response.completed` (or `response.incomplete`) with the whole Response and usage.
//! Every event carries `sequence_number`, counted from 0, and goes out as
//! `event: <type>\ndata: <json>\n\n`.

use serde_json::{json, Value};

use super::answer::{status_of, Turn};

/// One output item being streamed.
enum Item {
    Reasoning { text: String },
    Message { text: String },
    Call { call_id: String, name: String, arguments: String },
}

/// Translates one stream; feed it chunks in order, then [`EventStream::finish`].
pub struct EventStream {
    turn: Turn,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The open message item's position in `items`.
    message: Option<usize>,
    /// The open reasoning item's position in `items`.
    reasoning: Option<usize>,
    /// Chat's tool-call `index` → position in `items`.
    calls: Vec<(u64, usize)>,
    /// The finished form of each closed item, by position.
    done: Vec<Option<Value>>,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

impl EventStream {
    pub fn new(turn: Turn) -> EventStream {
        EventStream {
            turn,
            seq: 0,
            started: false,
            items: Vec::new(),
            message: None,
            reasoning: None,
            calls: Vec::new(),
            done: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut event: Value) {
        event["type"] = Value::String(kind.to_string());
        event["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(event.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    /// The opening events, once.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.turn.response("in_progress", Vec::new(), None, None);
        self.emit(out, "response.created", json!({"response": r}));
        let r = self.turn.response("in_progress", Vec::new(), None, None);
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    /// One chat chunk's events.
    pub fn on_chunk(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        self.start(out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else { return };
        let delta = &choice["delta"];
        if let Some(text) = delta.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            let index = match self.reasoning {
                Some(i) => i,
                None => self.open_reasoning(out),
            };
            if let Item::Reasoning { text: all } = &mut self.items[index] {
                all.push_str(text);
            }
            let item_id = self.turn.item_id("rs", index);
            self.emit(
                out,
                "response.reasoning_summary_text.delta",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": text}),
            );
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            let index = match self.message {
                Some(i) => i,
                None => self.open_message(out),
            };
            if let Item::Message { text: all } = &mut self.items[index] {
                all.push_str(text);
            }
            let item_id = self.turn.item_id("msg", index);
            self.emit(
                out,
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}),
            );
        }
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let f = &call["function"];
            let index = match self.calls.iter().find(|(c, _)| *c == chat_index) {
                Some((_, i)) => *i,
                None => {
                    self.close_open(out);
                    let index = self.items.len();
                    let call_id = call["id"].as_str().unwrap_or("").to_string();
                    let name = f["name"].as_str().unwrap_or("").to_string();
                    let item = self.turn.call_item(index, &call_id, &name, "", "in_progress");
                    self.items.push(Item::Call { call_id, name, arguments: String::new() });
                    self.calls.push((chat_index, index));
                    self.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
                    index
                }
            };
            if let Some(args) = f.get("arguments").and_then(Value::as_str).filter(|a| !a.is_empty()) {
                if let Item::Call { arguments, .. } = &mut self.items[index] {
                    arguments.push_str(args);
                }
                let item_id = self.turn.item_id("fc", index);
                self.emit(
                    out,
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": index, "delta": args}),
                );
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    fn open_reasoning(&mut self, out: &mut Vec<u8>) -> usize {
        self.close_open(out);
        let index = self.items.len();
        self.items.push(Item::Reasoning { text: String::new() });
        self.reasoning = Some(index);
        let item_id = self.turn.item_id("rs", index);
        let item = json!({"type": "reasoning", "id": item_id, "summary": [], "status": "in_progress"});
        self.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
        self.emit(
            out,
            "response.reasoning_summary_part.added",
            json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}),
        );
        index
    }

    fn open_message(&mut self, out: &mut Vec<u8>) -> usize {
        self.close_open(out);
        let index = self.items.len();
        self.items.push(Item::Message { text: String::new() });
        self.message = Some(index);
        let item = self.turn.message_item(index, "", "in_progress");
        let item_id = self.turn.item_id("msg", index);
        self.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
        self.emit(
            out,
            "response.content_part.added",
            json!({"item_id": item_id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
        );
        index
    }

    /// Ends the open text and reasoning items: a new item starts after them, as OpenAI's
    /// streams order their events.
    fn close_open(&mut self, out: &mut Vec<u8>) {
        for index in [self.reasoning.take(), self.message.take()].into_iter().flatten() {
            self.close(index, out);
        }
    }

    /// Item `index`'s closing events, once; its finished form is kept for the Response.
    fn close(&mut self, index: usize, out: &mut Vec<u8>) {
        if self.done.get(index).is_some_and(Option::is_some) {
            return;
        }
        let done = match &self.items[index] {
            Item::Reasoning { text } => {
                let text = text.clone();
                let item_id = self.turn.item_id("rs", index);
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": part}),
                );
                self.turn.reasoning_item(index, &text)
            }
            Item::Message { text } => {
                let text = text.clone();
                let item_id = self.turn.item_id("msg", index);
                let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": part}),
                );
                self.turn.message_item(index, &text, "completed")
            }
            Item::Call { call_id, name, arguments } => {
                let (call_id, name, arguments) = (call_id.clone(), name.clone(), arguments.clone());
                let item_id = self.turn.item_id("fc", index);
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "name": name, "arguments": arguments}),
                );
                self.turn.call_item(index, &call_id, &name, &arguments, "completed")
            }
        };
        self.emit(out, "response.output_item.done", json!({"output_index": index, "item": done.clone()}));
        self.done.resize(self.items.len(), None);
        self.done[index] = Some(done);
    }

    /// The closing events; returns the finished Response (for storing it).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Value {
        self.start(out);
        for index in 0..self.items.len() {
            self.close(index, out);
        }
        let output: Vec<Value> = std::mem::take(&mut self.done).into_iter().flatten().collect();
        let (status, incomplete) = status_of(self.finish_reason.as_deref());
        let r = self.turn.response(status, output, self.usage.as_ref(), incomplete);
        let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.emit(out, kind, json!({"response": r.clone()}));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(out: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (event, data) = f.split_once('\n').unwrap();
                let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(event.strip_prefix("event: ").unwrap(), v["type"]);
                v
            })
            .collect()
    }

    #[test]
    fn text_and_a_tool_call_in_openai_order() {
        let turn = Turn::new(&json!({}), "resp_1".into(), "m", 1);
        let mut s = EventStream::new(turn);
        let mut out = Vec::new();
        for c in [
            json!({"choices": [{"delta": {"role": "assistant", "content": "He"}}]}),
            json!({"choices": [{"delta": {"content": "llo"}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}}),
        ] {
            s.on_chunk(&c, &mut out);
        }
        let done = s.finish(&mut out);
        let ev = events(&out);
        let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64);
        }
        assert_eq!(ev[6]["text"], "Hello");
        assert_eq!(ev[12]["arguments"], "{\"a\":1}");
        let last = &ev[14]["response"];
        assert_eq!(last, &done);
        assert_eq!(last["status"], "completed");
        assert_eq!(last["usage"]["input_tokens"], 2);
        assert_eq!(last["usage"]["output_tokens"], 5);
        assert_eq!(last["output"][1]["call_id"], "call_9");
    }

    #[test]
    fn reasoning_streams_as_a_summary_before_the_answer() {
        let mut s = EventStream::new(Turn::new(&json!({}), "resp_2".into(), "m", 1));
        let mut out = Vec::new();
        for c in [
            json!({"choices": [{"delta": {"reasoning_content": "Think"}}]}),
            json!({"choices": [{"delta": {"reasoning_content": "ing."}}]}),
            json!({"choices": [{"delta": {"content": "Yes."}, "finish_reason": "stop"}]}),
        ] {
            s.on_chunk(&c, &mut out);
        }
        let done = s.finish(&mut out);
        let ev = events(&out);
        let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(ev[6]["text"], "Thinking.");
        assert_eq!(
            done["output"][0],
            json!({"type": "reasoning", "id": "rs_2_0", "summary": [{"type": "summary_text", "text": "Thinking."}]})
        );
        assert_eq!(done["output"][1]["content"][0]["text"], "Yes.");
    }

    proptest::proptest! {
        /// Whatever chunks an upstream's stream carries (or a whole answer is), translating it
        /// never panics, and the events' sequence numbers count from 0 without a gap.
        #[test]
        fn any_chunks_make_a_well_formed_sequence(chunks in proptest::collection::vec(crate::responses::request::tests::any_json(), 0..8)) {
            let mut s = EventStream::new(Turn::new(&json!({}), "resp_p".into(), "m", 1));
            let mut out = Vec::new();
            let turn = Turn::new(chunks.first().unwrap_or(&Value::Null), "resp_q".into(), "m", 1);
            for c in &chunks {
                s.on_chunk(c, &mut out);
                // A whole answer of any shape becomes a Response too.
                proptest::prop_assert_eq!(&turn.answer(c)["object"], "response");
            }
            let done = s.finish(&mut out);
            let ev = events(&out);
            for (i, e) in ev.iter().enumerate() {
                proptest::prop_assert_eq!(&e["sequence_number"], &json!(i));
            }
            proptest::prop_assert_eq!(&ev.last().unwrap()["response"], &done);
        }
    }
}
