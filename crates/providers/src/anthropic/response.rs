//! Anthropic Messages response → OpenAI `chat.completion`, as LiteLLM builds it: text blocks
//! joined into `content`, `tool_use` blocks as `tool_calls`, thinking as `reasoning_content`,
//! `stop_reason` mapped per formats.md §13, and usage with cache tokens counted into the prompt.
//!
//! [`chat_response`] reads a parsed answer; a provider holding the answer's bytes reads them with
//! [`read_answer`] instead, which keeps only what the translation needs (the answer's tree would
//! be built only to be taken apart), and makes the same `chat.completion` of it.

use serde_json::{json, Map, Value};

use super::{finish_reason, TranslateError, Usage};
use crate::chunks::object;
use read::Read;

/// Translates a Messages API response body (already parsed) into a `chat.completion` that
/// names `model` (the client's model name) and `created`.
pub fn chat_response(msg: &Value, model: &str, created: u64) -> Result<Value, TranslateError> {
    let blocks = msg
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::upstream("Anthropic returned a response without a `content` array"))?;
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                has_text = true;
                text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            Some("tool_use") => tool_calls.push(tool_call(block)),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            // Server-tool results and future block types have no OpenAI equivalent.
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if has_text { Value::from(text) } else { Value::Null },
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !thinking_blocks.is_empty() {
        message["reasoning_content"] = reasoning.into();
        message["thinking_blocks"] = Value::Array(thinking_blocks);
    }
    let mut usage = Usage::default();
    if let Some(u) = msg.get("usage") {
        usage.update(u);
    }
    let id = msg
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| super::fresh_id("chatcmpl-"), str::to_string);
    Ok(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(msg.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": usage.to_openai(),
    }))
}

/// A `tool_use` block as an OpenAI tool call: the id is kept (the client sends it back as
/// `tool_call_id`, which becomes `tool_use_id` again), the input re-encoded as a JSON string.
fn tool_call(block: &Value) -> Value {
    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
    json!({
        "id": block.get("id").and_then(Value::as_str).unwrap_or(""),
        "type": "function",
        "function": {
            "name": block.get("name").and_then(Value::as_str).unwrap_or(""),
            "arguments": input.to_string(),
        },
    })
}

/// What [`chat_response`] reads of an answer, read from its bytes without building the answer's
/// tree: the members it needs are kept (the last of a name given twice, as the tree keeps), the
/// rest checked as a tree would check them (so a body the tree refuses is refused here too) and
/// dropped. [`Answer::into_openai`] then makes what [`chat_response`] makes of the tree.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    id: Option<Value>,
    /// `content`, when it is an array: its objects (anything else in it is passed over).
    blocks: Option<Vec<Block>>,
    stop_reason: Option<Value>,
    /// `usage`'s token counts as sent (each the last of its name), when `usage` is an object.
    usage: [Option<Value>; 4],
}

/// The `usage` members [`Usage::update`] reads, in [`Answer::usage`]'s order.
const USAGE_NAMES: [&str; 4] =
    ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"];

/// One content block: the members a translation reads, and the others kept for a thinking block
/// (passed on whole).
#[derive(Debug, Default)]
struct Block {
    kind: Option<Value>,
    text: Option<Value>,
    thinking: Option<Value>,
    id: Option<Value>,
    name: Option<Value>,
    input: Option<Value>,
    rest: Vec<(String, Value)>,
}

impl Block {
    /// The block as the tree holds it.
    fn into_value(self) -> Value {
        let mut out = serde_json::Map::new();
        for (name, v) in [
            ("type", self.kind),
            ("text", self.text),
            ("thinking", self.thinking),
            ("id", self.id),
            ("name", self.name),
            ("input", self.input),
        ] {
            if let Some(v) = v {
                out.insert(name.to_string(), v);
            }
        }
        for (name, v) in self.rest {
            out.insert(name, v);
        }
        Value::Object(out)
    }
}

fn str_of(v: &Option<Value>) -> Option<&str> {
    v.as_ref().and_then(Value::as_str)
}

/// `body` read as [`Answer`]; `None` when it is not JSON (the tree's reader then says why).
pub(crate) fn read_answer(body: &[u8]) -> Option<Answer> {
    // Checked whole once, rather than string by string as the reader would.
    let text = std::str::from_utf8(body).ok()?;
    let read = serde_json::from_str::<Read>(text).ok()?;
    Some(read.0)
}

impl Answer {
    /// What [`chat_response`] makes of the same answer parsed.
    pub(crate) fn into_openai(self, model: &str, created: u64) -> Result<Value, TranslateError> {
        let blocks = self
            .blocks
            .ok_or_else(|| TranslateError::upstream("Anthropic returned a response without a `content` array"))?;
        let mut text = String::new();
        let mut has_text = false;
        let mut reasoning = String::new();
        let mut thinking_blocks = Vec::new();
        let mut tool_calls = Vec::new();
        for mut block in blocks {
            match str_of(&block.kind) {
                Some("text") => {
                    // The first text is taken, not copied: an answer is mostly one text block.
                    match block.text.take() {
                        Some(Value::String(s)) if !has_text => text = s,
                        other => text.push_str(str_of(&other).unwrap_or("")),
                    }
                    has_text = true;
                }
                Some("tool_use") => {
                    let input = block.input.take().unwrap_or_else(|| Value::Object(Map::new()));
                    let function = object([
                        ("name", str_of(&block.name).unwrap_or("").into()),
                        ("arguments", input.to_string().into()),
                    ]);
                    tool_calls.push(object([
                        ("id", str_of(&block.id).unwrap_or("").into()),
                        ("type", "function".into()),
                        ("function", function),
                    ]));
                }
                Some("thinking") => {
                    reasoning.push_str(str_of(&block.thinking).unwrap_or(""));
                    thinking_blocks.push(block.into_value());
                }
                Some("redacted_thinking") => thinking_blocks.push(block.into_value()),
                _ => {}
            }
        }
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert("content".into(), if has_text { Value::String(text) } else { Value::Null });
        if !tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(tool_calls));
        }
        if !thinking_blocks.is_empty() {
            message.insert("reasoning_content".into(), reasoning.into());
            message.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
        }
        // As `Usage::update` reads them: a count that is not a whole number is not there.
        let [input, output, cache_read, cache_creation] =
            self.usage.each_ref().map(|v| v.as_ref().and_then(Value::as_u64));
        let usage = Usage { input: input.unwrap_or(0), output: output.unwrap_or(0), cache_read, cache_creation };
        let id = match self.id {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => super::fresh_id("chatcmpl-"),
        };
        let finish = finish_reason(str_of(&self.stop_reason));
        Ok(crate::chunks::one_choice(model, &id, created, Value::Object(message), finish, Some(usage.to_openai())))
    }
}

/// The readers behind [`read_answer`]. Each takes any JSON value, as the tree does: the shape it
/// wants is kept, any other is checked by [`Skip`] and counts as absent.
mod read {
    use super::{Answer, Block, USAGE_NAMES};
    use crate::json_read::{object_reader, Items, Maybe, Skip};
    use serde_json::Value;

    /// The whole answer: an object's members, or (any other value) an empty [`Answer`].
    pub(super) struct Read(pub Answer);

    object_reader!(Read, "an Anthropic message", Read(Answer::default()), |out, name, map| match &*name.0 {
        "id" => out.0.id = Some(map.next_value()?),
        "content" => out.0.blocks = map.next_value::<Items<Block>>()?.0,
        "stop_reason" => out.0.stop_reason = Some(map.next_value()?),
        "usage" => out.0.usage = map.next_value::<Counts>()?.0,
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    // One item of `content`: a block when it is an object (an empty one too).
    object_reader!(Maybe<Block>, "a content block", Maybe(None), Maybe(Some(Block::default())), |out, name, map| {
        let b = out.0.get_or_insert_with(Block::default);
        let slot = match &*name.0 {
            "type" => &mut b.kind,
            "text" => &mut b.text,
            "thinking" => &mut b.thinking,
            "id" => &mut b.id,
            "name" => &mut b.name,
            "input" => &mut b.input,
            _ => {
                b.rest.push((name.0.into_owned(), map.next_value()?));
                continue;
            }
        };
        *slot = Some(map.next_value()?)
    });

    /// `usage`: the counts [`Answer::usage`] keeps when it is an object.
    struct Counts([Option<Value>; 4]);

    object_reader!(Counts, "token counts", Counts(Default::default()), |out, name, map| {
        match USAGE_NAMES.iter().position(|n| *n == name.0) {
            Some(i) => out.0[i] = Some(map.next_value()?),
            None => {
                map.next_value::<Skip>()?;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the tree's path makes of `body`: the parse's failure, or the translation's result.
    fn by_tree(body: &[u8]) -> Option<Result<Value, TranslateError>> {
        let tree: Value = serde_json::from_slice(body).ok()?;
        Some(chat_response(&tree, "alias", 7))
    }

    fn by_bytes(body: &[u8]) -> Option<Result<Value, TranslateError>> {
        read_answer(body).map(|a| a.into_openai("alias", 7))
    }

    /// Made-up ids differ from call to call: both must make one, and then they are set aside.
    fn made_up_id_set_aside(out: Option<Result<Value, TranslateError>>) -> Option<Result<Value, TranslateError>> {
        out.map(|r| {
            r.map(|mut v| {
                let id = v["id"].as_str().unwrap_or_default();
                if id.starts_with("chatcmpl-") && id.len() == "chatcmpl-".len() + 24 {
                    v["id"] = "made-up".into();
                }
                v
            })
        })
    }

    fn assert_same(body: &[u8]) {
        let (tree, bytes) = (made_up_id_set_aside(by_tree(body)), made_up_id_set_aside(by_bytes(body)));
        assert_eq!(bytes, tree, "{}", String::from_utf8_lossy(body));
    }

    #[test]
    fn answers_read_from_their_bytes_translate_as_their_trees_do() {
        let fixtures: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/anthropic/chat_response.json")).unwrap();
        for case in fixtures.as_array().unwrap() {
            assert_same(&serde_json::to_vec(&case["anthropic"]).unwrap());
        }
        let usage = r#"{"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}"#;
        let answers = [
            // Text, the usual answer.
            format!(r#"{{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{{"type":"text","text":"Hello from \"the\" model.\n"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{usage}}}"#),
            // Every block kind, with members a translation passes over.
            format!(r#"{{"id":"msg_2","content":[
                {{"type":"thinking","thinking":"Let me think","signature":"sig==","extra":[1,{{"b":2,"a":1}}]}},
                {{"type":"redacted_thinking","data":"opaque"}},
                {{"type":"text","text":"Part one","citations":[{{"type":"char_location","cited_text":"x"}}]}},
                {{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{{"z":1,"a":{{"y":[true,null,1.5],"b":"é"}}}}}},
                {{"type":"server_tool_use","id":"srv","name":"web_search","input":{{"query":"q"}}}},
                {{"type":"web_search_tool_result","tool_use_id":"srv","content":[{{"type":"web_search_result","url":"u"}}]}},
                {{"type":"text","text":" and two"}},
                {{"type":"thinking","thinking":" more","signature":"s2"}},
                {{"type":"tool_use","id":"toolu_2","name":"noop"}},
                {{"type":"tool_use","id":"toolu_3","name":"nil","input":null}},
                {{"type":"tool_use","input":[1,2]}}
            ],"stop_reason":"tool_use","usage":{usage}}}"#),
            // Missing and odd members.
            r#"{"content":[]}"#.to_string(),
            r#"{"id":"","content":[{"type":"text","text":""}],"stop_reason":null,"usage":null}"#.to_string(),
            r#"{"id":5,"content":[{"type":"text","text":7},{"type":"text"},{"type":null},{"text":"no type"}],"stop_reason":3}"#.to_string(),
            r#"{"id":"m","content":[{"type":"text","text":7},{"type":"text","text":"after"}]}"#.to_string(),
            r#"{"id":"m","content":["a",1,null,true,[{"type":"text","text":"nested"}],{"type":"text","text":"x"}]}"#.to_string(),
            r#"{"content":[{"type":"thinking"},{"type":"thinking","thinking":5,"text":"t","id":"i","name":"n","input":{}}]}"#.to_string(),
            r#"{"content":[{},{"type":"text","text":"after an empty block"},{}]}"#.to_string(),
            // Stop reasons, known and not.
            r#"{"content":[],"stop_reason":"max_tokens"}"#.to_string(),
            r#"{"content":[],"stop_reason":"pause_turn"}"#.to_string(),
            r#"{"content":[],"stop_reason":"refusal"}"#.to_string(),
            r#"{"content":[],"stop_reason":"model_context_window_exceeded"}"#.to_string(),
            r#"{"content":[],"stop_reason":"stop_sequence","stop_sequence":"END"}"#.to_string(),
            r#"{"content":[],"stop_reason":"something_new"}"#.to_string(),
            // Usage in every shape.
            r#"{"content":[],"usage":{"input_tokens":4}}"#.to_string(),
            r#"{"content":[],"usage":{"input_tokens":4.0,"output_tokens":-1,"cache_read_input_tokens":"9","cache_creation_input_tokens":null}}"#.to_string(),
            r#"{"content":[],"usage":{"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":1}}}"#.to_string(),
            r#"{"content":[],"usage":[1,2]}"#.to_string(),
            r#"{"content":[],"usage":{"input_tokens":1},"usage":{"output_tokens":2}}"#.to_string(),
            r#"{"content":[],"usage":{"input_tokens":1,"input_tokens":"x"}}"#.to_string(),
            r#"{"content":[],"usage":{"input_tokens":18446744073709551615,"output_tokens":1,"cache_read_input_tokens":1}}"#.to_string(),
            // A name given twice: the last is the one read.
            r#"{"id":"a","id":"b","content":[{"type":"text","text":"one"}],"content":[{"type":"text","text":"two","text":"three"}]}"#.to_string(),
            r#"{"content":[{"type":"thinking","thinking":"a","x":1,"x":2,"type":"thinking"}]}"#.to_string(),
            r#"{"content":[{"type":"text","text":"a"}],"content":{"not":"a list"}}"#.to_string(),
            // Escaped names and texts.
            r#"{"\u0069d":"msg_\u00e9","content":[{"t\u0079pe":"text","text":"caf\u00e9 \ud83e\udd80 \n"}]}"#.to_string(),
            // Not a message.
            r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#.to_string(),
            r#"{"content":null}"#.to_string(),
            r#"[{"content":[]}]"#.to_string(),
            r#""content""#.to_string(),
            "3".to_string(),
            "null".to_string(),
            // Not JSON, or JSON the tree's reader refuses somewhere a translation never looks.
            "{not json".to_string(),
            r#"{"content":[]} x"#.to_string(),
            r#"{"content":[],"model":"\ud800"}"#.to_string(),
            r#"{"content":[],"stop_sequence":1e400}"#.to_string(),
            r#"{"content":[],"extra":"\x"}"#.to_string(),
            format!(r#"{{"content":[],"deep":{}{}}}"#, "[".repeat(200), "]".repeat(200)),
            format!(r#"{{"content":[{{"type":"text","text":"x","deep":{}{}}}]}}"#, "[".repeat(126), "]".repeat(126)),
        ];
        for answer in &answers {
            assert_same(answer.as_bytes());
        }
        // Bytes that are not UTF-8, in a member a translation never reads.
        assert_same(b"{\"content\":[],\"model\":\"\xff\"}");
        assert_same(b"{\"content\":[{\"type\":\"text\",\"text\":\"ok\",\"x\":\"\xc3\"}]}");
        // The usual answer's content is taken whole.
        let out = by_bytes(answers[0].as_bytes()).unwrap().unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hello from \"the\" model.\n");
        assert_eq!(out["usage"]["prompt_tokens"], 115);
    }
}
