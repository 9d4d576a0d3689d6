//! Converse response → OpenAI `chat.completion`, as LiteLLM builds it: text blocks joined into
//! `content`, `toolUse` blocks as `tool_calls`, reasoning as `reasoning_content`, `stopReason`
//! mapped per formats.md §13, and usage with cache tokens counted into the prompt.
//!
//! [`converse_response`] reads a parsed answer; a provider holding the answer's bytes reads them
//! with [`read_answer`] instead, which keeps only what the translation needs (the answer's tree
//! would be built only to be taken apart), and makes the same `chat.completion` of it.

use serde_json::{json, Map, Value};

use super::{finish_reason, TranslateError, Usage};
use crate::chunks::object;
use read::Read;

/// The message of an answer without `output.message.content`.
const NO_CONTENT: &str = "Bedrock returned a response without output.message.content";

/// Translates a Converse response body (already parsed) into a `chat.completion` that names
/// `model` (the client's model name). Converse answers carry no id, so the caller supplies one.
pub fn converse_response(resp: &Value, model: &str, id: &str, created: u64) -> Result<Value, TranslateError> {
    let blocks = resp
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::other(NO_CONTENT))?;
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut has_reasoning = false;
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            has_text = true;
            text.push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            let input = tu.get("input").cloned().unwrap_or_else(|| json!({}));
            tool_calls.push(json!({
                "id": tu.get("toolUseId").and_then(Value::as_str).unwrap_or(""),
                "type": "function",
                "function": {
                    "name": tu.get("name").and_then(Value::as_str).unwrap_or(""),
                    "arguments": input.to_string(),
                },
            }));
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(t) = r.get("reasoningText").and_then(|t| t.get("text")).and_then(Value::as_str) {
                has_reasoning = true;
                reasoning.push_str(t);
            }
        }
        // Images, citations, guard content and newer block types have no OpenAI equivalent.
    }
    let mut message = json!({
        "role": "assistant",
        "content": if has_text { Value::from(text) } else { Value::Null },
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if has_reasoning {
        message["reasoning_content"] = reasoning.into();
    }
    let usage = resp.get("usage").map(Usage::from_json).unwrap_or_default();
    Ok(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(resp.get("stopReason").and_then(Value::as_str)),
        }],
        "usage": usage.to_openai(),
    }))
}

/// What [`converse_response`] reads of an answer, read from its bytes without building the
/// answer's tree: the members it needs are kept (the last of a name given twice, as the tree
/// keeps), the rest checked as the tree's reader would check them (so a body the tree refuses is
/// refused here too) and dropped. [`Answer::into_openai`] then makes what [`converse_response`]
/// makes of the tree.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// `output.message.content`, when `output` and `message` are objects and `content` an
    /// array: its objects (anything else in it is passed over, as the tree's reading does).
    blocks: Option<Vec<Block>>,
    stop_reason: Option<Value>,
    /// `usage`'s token counts as sent (each the last of its name), when `usage` is an object.
    usage: [Option<Value>; 5],
}

/// The `usage` members [`Usage::from_json`] reads, in [`Answer::usage`]'s order.
const USAGE_NAMES: [&str; 5] =
    ["inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens", "totalTokens"];

/// One content block: the members a translation reads.
#[derive(Debug, Default)]
struct Block {
    text: Option<Value>,
    /// Present (whatever its value) when the block has a `toolUse` member.
    tool_use: Option<ToolUse>,
    /// `reasoningContent.reasoningText.text`, when each step is an object holding the next.
    reasoning: Option<Value>,
}

/// A `toolUse` member's members; all absent when it is not an object.
#[derive(Debug, Default)]
struct ToolUse {
    id: Option<Value>,
    name: Option<Value>,
    input: Option<Value>,
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
    /// What [`converse_response`] makes of the same answer parsed.
    pub(crate) fn into_openai(self, model: &str, id: &str, created: u64) -> Result<Value, TranslateError> {
        let blocks = self.blocks.ok_or_else(|| TranslateError::other(NO_CONTENT))?;
        let mut text = String::new();
        let mut has_text = false;
        let mut reasoning = String::new();
        let mut has_reasoning = false;
        let mut tool_calls = Vec::new();
        for mut block in blocks {
            if let Some(t) = str_of(&block.text) {
                // The first text is taken, not copied: an answer is mostly one text block.
                if has_text {
                    text.push_str(t);
                } else if let Some(Value::String(s)) = block.text.take() {
                    text = s;
                }
                has_text = true;
            } else if let Some(tu) = block.tool_use {
                let input = tu.input.unwrap_or_else(|| Value::Object(Map::new()));
                let function =
                    object([("name", str_of(&tu.name).unwrap_or("").into()), ("arguments", input.to_string().into())]);
                tool_calls.push(object([
                    ("id", str_of(&tu.id).unwrap_or("").into()),
                    ("type", "function".into()),
                    ("function", function),
                ]));
            } else if let Some(t) = str_of(&block.reasoning) {
                has_reasoning = true;
                reasoning.push_str(t);
            }
        }
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert("content".into(), if has_text { Value::String(text) } else { Value::Null });
        if !tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(tool_calls));
        }
        if has_reasoning {
            message.insert("reasoning_content".into(), reasoning.into());
        }
        // As `Usage::from_json` reads them: a count that is not a whole number is not there.
        let [input, output, cache_read, cache_write, total] =
            self.usage.each_ref().map(|v| v.as_ref().and_then(Value::as_u64));
        let usage = Usage { input: input.unwrap_or(0), output: output.unwrap_or(0), cache_read, cache_write, total };
        let finish = finish_reason(str_of(&self.stop_reason));
        Ok(crate::chunks::one_choice(model, id, created, Value::Object(message), finish, Some(usage.to_openai())))
    }
}

/// The readers behind [`read_answer`]. Each takes any JSON value, as the tree does: the shape it
/// wants is kept, any other is checked and counts as absent.
mod read {
    use super::{Answer, Block, ToolUse, USAGE_NAMES};
    use crate::json_read::{object_reader, Items, Maybe, Skip};
    use serde_json::Value;

    /// The whole answer: an object's members, or (any other value) an empty [`Answer`].
    pub(super) struct Read(pub Answer);

    object_reader!(Read, "a Converse response", Read(Answer::default()), |out, name, map| match &*name.0 {
        "output" => out.0.blocks = map.next_value::<Output>()?.0,
        "stopReason" => out.0.stop_reason = Some(map.next_value()?),
        "usage" => out.0.usage = map.next_value::<Counts>()?.0,
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    /// `output`: its message's blocks, when it is an object.
    struct Output(Option<Vec<Block>>);

    object_reader!(Output, "Converse output", Output(None), |out, name, map| match &*name.0 {
        "message" => out.0 = map.next_value::<Message>()?.0,
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    /// `output.message`: its content blocks, when it is an object.
    struct Message(Option<Vec<Block>>);

    object_reader!(Message, "a Converse message", Message(None), |out, name, map| match &*name.0 {
        "content" => out.0 = map.next_value::<Items<Block>>()?.0,
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    // One item of `content`: a block when it is an object.
    object_reader!(Maybe<Block>, "a content block", Maybe(None), |out, name, map| {
        let b = out.0.get_or_insert_with(Block::default);
        match &*name.0 {
            "text" => b.text = Some(map.next_value()?),
            "toolUse" => b.tool_use = Some(map.next_value::<ToolUseRead>()?.0),
            "reasoningContent" => b.reasoning = map.next_value::<Reasoning>()?.0,
            _ => {
                map.next_value::<Skip>()?;
            }
        }
    });

    /// A `toolUse` member: its members when it is an object, else none of them.
    struct ToolUseRead(ToolUse);

    object_reader!(ToolUseRead, "a tool use", ToolUseRead(ToolUse::default()), |out, name, map| match &*name.0 {
        "toolUseId" => out.0.id = Some(map.next_value()?),
        "name" => out.0.name = Some(map.next_value()?),
        "input" => out.0.input = Some(map.next_value()?),
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    /// `reasoningContent`: its `reasoningText.text`, when both are objects.
    struct Reasoning(Option<Value>);

    object_reader!(Reasoning, "reasoning content", Reasoning(None), |out, name, map| match &*name.0 {
        "reasoningText" => out.0 = map.next_value::<ReasoningText>()?.0,
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    /// `reasoningText`: its `text`, when it is an object.
    struct ReasoningText(Option<Value>);

    object_reader!(ReasoningText, "reasoning text", ReasoningText(None), |out, name, map| match &*name.0 {
        "text" => out.0 = Some(map.next_value()?),
        _ => {
            map.next_value::<Skip>()?;
        }
    });

    /// `usage`: the counts [`Answer::usage`] keeps when it is an object.
    struct Counts([Option<Value>; 5]);

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
        Some(converse_response(&tree, "alias", "chatcmpl-x", 7))
    }

    fn by_bytes(body: &[u8]) -> Option<Result<Value, TranslateError>> {
        read_answer(body).map(|a| a.into_openai("alias", "chatcmpl-x", 7))
    }

    /// Both paths agree, down to the bytes the client would get.
    fn assert_same(body: &[u8]) {
        let (tree, bytes) = (by_tree(body), by_bytes(body));
        assert_eq!(bytes, tree, "{}", String::from_utf8_lossy(body));
        if let (Some(Ok(a)), Some(Ok(b))) = (&tree, &bytes) {
            assert_eq!(a.to_string(), b.to_string());
        }
    }

    #[test]
    fn answers_read_from_their_bytes_translate_as_their_trees_do() {
        let fixtures: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/bedrock/converse_response.json")).unwrap();
        for case in fixtures.as_array().unwrap() {
            assert_same(&serde_json::to_vec(&case["bedrock"]).unwrap());
        }
        let usage = r#"{"inputTokens":10,"outputTokens":3,"totalTokens":118,"cacheReadInputTokens":100,"cacheWriteInputTokens":5}"#;
        let answers = [
            // Text, the usual answer (the mock's).
            format!(r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"Hello from \"the\" model.\n"}}]}}}},"stopReason":"end_turn","usage":{usage},"metrics":{{"latencyMs":1}}}}"#),
            // Every block kind, with members a translation passes over.
            format!(r#"{{"output":{{"message":{{"role":"assistant","content":[
                {{"reasoningContent":{{"reasoningText":{{"text":"Let me think","signature":"sig=="}}}}}},
                {{"reasoningContent":{{"redactedContent":"b3BhcXVl"}}}},
                {{"text":"Part one","citationsContent":[{{"title":"x"}}]}},
                {{"toolUse":{{"toolUseId":"tooluse_1","name":"get_weather","input":{{"z":1,"a":{{"y":[true,null,1.5],"b":"é"}}}}}}}},
                {{"image":{{"format":"png","source":{{"bytes":"aGk="}}}}}},
                {{"guardContent":{{"text":{{"text":"g"}}}}}},
                {{"text":" and two"}},
                {{"reasoningContent":{{"reasoningText":{{"text":" more"}}}}}},
                {{"toolUse":{{"toolUseId":"tooluse_2","name":"noop"}}}},
                {{"toolUse":{{"toolUseId":"tooluse_3","name":"nil","input":null}}}},
                {{"toolUse":{{"input":[1,2]}}}},
                {{"toolUse":null}},
                {{"toolUse":"x","text":5}},
                {{"text":"wins","toolUse":{{"name":"ignored"}},"reasoningContent":{{"reasoningText":{{"text":"ignored"}}}}}},
                {{"toolUse":{{"name":"over reasoning"}},"reasoningContent":{{"reasoningText":{{"text":"ignored"}}}}}}
            ]}}}},"stopReason":"tool_use","usage":{usage}}}"#),
            // Missing and odd members.
            r#"{"output":{"message":{"content":[]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"text":""}]}},"stopReason":null,"usage":null}"#.to_string(),
            r#"{"output":{"message":{"content":[{"text":7},{"text":null},{},{"other":"x"}]}},"stopReason":3}"#.to_string(),
            r#"{"output":{"message":{"content":[{"text":7},{"text":"after"}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":["a",1,null,true,[{"text":"nested"}],{"text":"x"}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"reasoningContent":null},{"reasoningContent":{"reasoningText":"t"}},{"reasoningContent":{"reasoningText":{"text":5}}},{"reasoningContent":{"reasoningText":{"text":""}}}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"reasoningContent":{"reasoningText":{"text":"only reasoning"}}}]}}}"#.to_string(),
            r#"{"output":{"message":{"role":"assistant"}}}"#.to_string(),
            r#"{"output":{"message":{"content":{"text":"not a list"}}}}"#.to_string(),
            r#"{"output":{"message":null}}"#.to_string(),
            r#"{"output":{"message":[{"content":[]}]}}"#.to_string(),
            r#"{"output":[{"message":{"content":[]}}]}"#.to_string(),
            r#"{"output":"text"}"#.to_string(),
            r#"{"message":{"content":[{"text":"not under output"}]}}"#.to_string(),
            // Stop reasons, known and not.
            r#"{"output":{"message":{"content":[]}},"stopReason":"max_tokens"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"stopReason":"stop_sequence"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"stopReason":"guardrail_intervened"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"stopReason":"content_filtered"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"stopReason":"model_context_window_exceeded"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"stopReason":"something_new"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"stopReason":["tool_use"]}"#.to_string(),
            // Usage in every shape.
            r#"{"output":{"message":{"content":[]}},"usage":{"inputTokens":4}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":{"inputTokens":4.0,"outputTokens":-1,"cacheReadInputTokens":"9","cacheWriteInputTokens":null,"totalTokens":1.5}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":{"cacheReadInputTokens":0,"cacheWriteInputTokens":0,"serverToolUsage":{"x":1}}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":[1,2]}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":{"inputTokens":1},"usage":{"outputTokens":2}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":{"inputTokens":1,"inputTokens":"x"}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":{"inputTokens":18446744073709551615,"outputTokens":1,"cacheReadInputTokens":1}}"#.to_string(),
            // A name given twice: the last is the one read.
            r#"{"output":{"message":{"content":[{"text":"one"}]}},"output":{"message":{"content":[{"text":"two","text":"three"}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"text":"a"}]}},"output":5}"#.to_string(),
            r#"{"output":{"message":{"content":[{"text":"a"}],"content":null}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"text":"a"}]},"message":{"content":[{"text":"b"}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"toolUse":{"name":"a","name":"b","input":{"x":1},"input":{"y":2}},"toolUse":{"toolUseId":"last"}}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[{"reasoningContent":{"reasoningText":{"text":"a"}},"reasoningContent":{}}]}}}"#.to_string(),
            r#"{"stopReason":"tool_use","stopReason":"end_turn","output":{"message":{"content":[]}}}"#.to_string(),
            // Escaped names and texts.
            r#"{"\u006futput":{"message":{"content":[{"t\u0065xt":"caf\u00e9 \ud83e\udd80 \n"}]}},"stopReas\u006fn":"tool_use"}"#.to_string(),
            // Not an answer.
            r#"{"message":"The security token included in the request is invalid."}"#.to_string(),
            r#"{"output":null}"#.to_string(),
            r#"[{"output":{"message":{"content":[]}}}]"#.to_string(),
            r#""output""#.to_string(),
            "3".to_string(),
            "null".to_string(),
            "{}".to_string(),
            // Not JSON, or JSON the tree's reader refuses somewhere a translation never looks.
            "{not json".to_string(),
            String::new(),
            r#"{"output":{"message":{"content":[]}}} x"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"metrics":"\ud800"}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"metrics":{"latencyMs":1e400}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"extra":"\x"}"#.to_string(),
            r#"{"output":{"message":{"content":[{"toolUse":{"input":{"a":1e400}}}]}}}"#.to_string(),
            r#"{"output":{"message":{"content":[]}},"usage":{"inputTokens":1e400}}"#.to_string(),
            format!(r#"{{"output":{{"message":{{"content":[]}}}},"deep":{}{}}}"#, "[".repeat(200), "]".repeat(200)),
            format!(
                r#"{{"output":{{"message":{{"content":[{{"text":"x","deep":{}{}}}]}}}}}}"#,
                "[".repeat(124),
                "]".repeat(124)
            ),
            format!(
                r#"{{"output":{{"message":{{"content":[{{"toolUse":{{"input":{}{}}}}}]}}}}}}"#,
                "[".repeat(122),
                "]".repeat(122)
            ),
        ];
        for answer in &answers {
            assert_same(answer.as_bytes());
        }
        // Bytes that are not UTF-8, in a member a translation never reads.
        assert_same(b"{\"output\":{\"message\":{\"content\":[]}},\"metrics\":\"\xff\"}");
        assert_same(b"{\"output\":{\"message\":{\"content\":[{\"text\":\"ok\",\"x\":\"\xc3\"}]}}}");
        // The usual answer's text is taken whole, and the usage counts the cache into the prompt.
        let out = by_bytes(answers[0].as_bytes()).unwrap().unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hello from \"the\" model.\n");
        assert_eq!(
            (out["usage"]["prompt_tokens"].as_u64(), out["usage"]["total_tokens"].as_u64()),
            (Some(115), Some(118))
        );
        // The deepest nesting both readers take, and one level more, which both refuse.
        for depth in [125, 126, 127, 128] {
            let body = format!(
                r#"{{"output":{{"message":{{"content":[{{"text":"x","deep":{}{}}}]}}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert_same(body.as_bytes());
        }
    }
}
