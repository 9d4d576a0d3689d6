//! `/v1/completions` on a provider that only chats (LiteLLM's `text_completion`): the request
//! made into a chat request, the chat answer made back into a `text_completion`, and a stream's
//! chat chunks into text-completion chunks. Written once for every translated provider: the
//! server sends the chat request through the provider's own chat translation. A provider with a
//! completions API of its own says so (`ChatProvider::serves(Completions)`, `azure_text`) and
//! is sent the client's request instead.
//!
//! As LiteLLM does, each prompt of a list becomes one user message of one conversation (one
//! answer, not one per prompt). The parameters only completions have — `echo`, `suffix`,
//! `logprobs`, `best_of` — cannot be honoured through chat: a 400 names them, or `drop_params`
//! drops them. The others go to the chat request under the same names (`max_tokens`, `stop`,
//! `temperature`, `top_p`, `user`, `seed`, `n`, …), where the provider's chat translation maps
//! them, or refuses those it cannot honour (`n` on Anthropic) as it does for chat.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sluice_wire::ApiError;

use crate::provider::{bad_param, parse_request, ChatProvider};
use sluice_wire::sniff::Endpoint;

/// Whether a call on `endpoint` to `provider` is a completion made through its chat API.
pub fn through_chat(provider: &dyn ChatProvider, endpoint: Endpoint) -> bool {
    endpoint == Endpoint::Completions && !provider.serves(Endpoint::Completions) && provider.serves(Endpoint::Chat)
}

/// Parameters of the completions API that a chat request has no place for.
const COMPLETION_ONLY: &[&str] = &["echo", "suffix", "logprobs", "best_of"];

/// Whether a completion-only parameter asks for nothing chat would not do anyway: `echo: false`
/// and `best_of: 1` are the API's defaults.
fn harmless(key: &str, value: &Value) -> bool {
    match key {
        "echo" => value == &Value::Bool(false),
        "best_of" => value.as_u64() == Some(1),
        _ => false,
    }
}

/// The chat request for a `/v1/completions` body, for `provider` (named in errors).
pub fn chat_request(body: &[u8], provider: &str, drop_params: bool) -> Result<Bytes, ApiError> {
    let req = parse_request(body)?;
    let req = req.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let refused: Vec<&str> = COMPLETION_ONLY
        .iter()
        .copied()
        .filter(|k| req.get(*k).is_some_and(|v| !v.is_null() && !harmless(k, v)))
        .collect();
    if let (Some(first), false) = (refused.first(), drop_params) {
        let names: Vec<String> = refused.iter().map(|k| format!("'{k}'")).collect();
        return Err(bad_param(
            Some(first.to_string()),
            format!(
                "{provider} does not support parameters: [{}] on /completions (its completions are made \
                 through its chat API). Remove them, or set `litellm_settings: {{drop_params: true}}` or the \
                 deployment's `drop_params: true` to drop them",
                names.join(", ")
            ),
        ));
    }
    let mut out = Map::new();
    for (key, value) in req {
        match key.as_str() {
            "prompt" => {
                out.insert("messages".into(), messages(value, provider)?);
            }
            _ if value.is_null() => {}
            k if COMPLETION_ONLY.contains(&k) => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if !out.contains_key("messages") {
        return Err(bad_param(Some("prompt".into()), "`prompt` is required: a string or a list of strings".into()));
    }
    Ok(Bytes::from(Value::Object(out).to_string()))
}

/// `prompt` as user messages: a string one message, a list of strings one message each.
fn messages(prompt: &Value, provider: &str) -> Result<Value, ApiError> {
    let user = |text: &str| json!({ "role": "user", "content": text });
    match prompt {
        Value::String(s) => Ok(Value::Array(vec![user(s)])),
        Value::Array(items) if items.is_empty() => Err(bad_param(
            Some("prompt".into()),
            "`prompt` is an empty list; send a string or a list of strings".into(),
        )),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(user(s)),
                // Token ids (a list of integers, or of lists of them) name tokens of OpenAI's
                // tokenizers, which a chat API of another provider does not read.
                _ => Err(bad_param(
                    Some("prompt".into()),
                    format!(
                        "`prompt` as token ids cannot be sent to {provider}, whose completions are made through \
                         its chat API in text; send the prompt as a string or a list of strings"
                    ),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        _ => Err(bad_param(Some("prompt".into()), "`prompt` must be a string or a list of strings".into())),
    }
}

/// One choice's text: the message's (or a stream delta's) `content`, empty when it has none.
fn text_of(message: Option<&Value>) -> &str {
    message.and_then(|m| m.get("content")).and_then(Value::as_str).unwrap_or_default()
}

/// Each choice of `chat` as a completion's: its `part` (`message`, or a chunk's `delta`)
/// content as `text`, its finish reason or `default_finish`.
fn text_choices(chat: &Value, part: &str, default_finish: &Value) -> Vec<Value> {
    chat.get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "text": text_of(c.get(part)),
                "index": c.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                "logprobs": null,
                "finish_reason": c.get("finish_reason").filter(|r| !r.is_null()).unwrap_or(default_finish),
            })
        })
        .collect()
}

/// A `text_completion` (whole or a chunk) with `chat`'s time, model and usage.
fn completion(id: Value, chat: &Value, choices: Vec<Value>, usage: Option<&Value>) -> Value {
    let mut out = json!({
        "id": id,
        "object": "text_completion",
        "created": chat.get("created").cloned().unwrap_or(Value::Null),
        "model": chat.get("model").cloned().unwrap_or(Value::Null),
        "choices": choices,
    });
    if let Some(usage) = usage {
        out["usage"] = usage.clone();
    }
    out
}

/// A `chat.completion` as a `text_completion` (LiteLLM's `convert_chat_to_text_completion`):
/// each choice's message content its `text`, the usage as it was.
pub fn answer(chat: &Value, id: &str) -> Value {
    let choices = text_choices(chat, "message", &Value::from("stop"));
    completion(Value::from(id), chat, choices, chat.get("usage").filter(|u| u.is_object()))
}

/// A `chat.completion.chunk` as a text-completion chunk (LiteLLM's `TextCompletionStreamWrapper`):
/// each choice's delta content its `text`. `None` for a chunk that carries nothing a completion
/// has (the opening role chunk): neither text, nor a finish reason, nor usage.
pub fn chunk(chat: &Value) -> Option<Value> {
    let choices = text_choices(chat, "delta", &Value::Null);
    let usage = chat.get("usage").filter(|u| u.is_object());
    let says_something = |c: &Value| c["text"] != "" || !c["finish_reason"].is_null();
    if usage.is_none() && !choices.iter().any(says_something) {
        return None;
    }
    Some(completion(chat.get("id").cloned().unwrap_or(Value::Null), chat, choices, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value, drop_params: bool) -> Result<Value, ApiError> {
        chat_request(body.to_string().as_bytes(), "anthropic", drop_params).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_prompt_becomes_one_user_message_with_the_parameters_mapped() {
        let out = chat(
            json!({"model": "m", "prompt": "Say hi", "max_tokens": 7, "stop": ["\n"], "temperature": 0.5,
                "top_p": 0.9, "user": "u1", "seed": 3, "n": 1, "stream": true,
                "stream_options": {"include_usage": true}, "presence_penalty": null}),
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 7,
                "stop": ["\n"], "temperature": 0.5, "top_p": 0.9, "user": "u1", "seed": 3, "n": 1, "stream": true,
                "stream_options": {"include_usage": true}})
        );
    }

    #[test]
    fn a_list_of_prompts_becomes_one_user_message_each_in_one_conversation() {
        let out = chat(json!({"model": "m", "prompt": ["one", "two"]}), false).unwrap();
        assert_eq!(out["messages"], json!([{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]));
    }

    #[test]
    fn prompts_chat_cannot_carry_are_refused_by_name() {
        for prompt in [json!([1, 2, 3]), json!([[1, 2], [3]]), json!([]), json!(5), Value::Null] {
            let e = chat(json!({"model": "m", "prompt": prompt}), true).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (400, Some("prompt")), "{prompt}: {}", e.message);
        }
        let e = chat(json!({"model": "m", "prompt": [[1, 2]]}), false).unwrap_err();
        assert!(e.message.contains("token ids") && e.message.contains("anthropic"), "{}", e.message);
        assert!(chat(json!({"model": "m"}), false).unwrap_err().message.contains("`prompt` is required"));
    }

    #[test]
    fn completion_only_parameters_are_refused_by_name_unless_dropped() {
        let body = json!({"model": "m", "prompt": "x", "echo": true, "suffix": "!", "logprobs": 2, "best_of": 3});
        let e = chat(body.clone(), false).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.param.as_deref(), Some("echo"));
        assert!(e.message.contains("['echo', 'suffix', 'logprobs', 'best_of']"), "{}", e.message);
        assert!(e.message.contains("anthropic") && e.message.contains("drop_params"), "{}", e.message);
        let out = chat(body, true).unwrap();
        assert_eq!(out, json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        // The API's defaults ask for nothing chat does not do anyway; null is unset.
        let out = chat(json!({"model": "m", "prompt": "x", "echo": false, "best_of": 1, "logprobs": null}), false);
        assert_eq!(out.unwrap(), json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(chat(json!({"prompt": "x", "logprobs": 0}), false).unwrap_err().param.as_deref(), Some("logprobs"));
    }

    #[test]
    fn a_request_that_is_not_a_json_object_is_a_400() {
        for body in [&b"not json"[..], b"[1]"] {
            assert_eq!(chat_request(body, "p", false).unwrap_err().status, 400);
        }
    }

    #[test]
    fn a_chat_answer_becomes_a_text_completion() {
        let c = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 9, "model": "g",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "length"},
                        {"index": 1, "message": {"role": "assistant", "content": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
        assert_eq!(
            answer(&c, "cmpl-1"),
            json!({"id": "cmpl-1", "object": "text_completion", "created": 9, "model": "g",
                "choices": [{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": "length"},
                            {"text": "", "index": 1, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
        );
        let bare = answer(&json!({"choices": [{"message": {"content": "x"}}]}), "i");
        assert_eq!(bare["choices"][0]["finish_reason"], "stop");
        assert!(bare.get("usage").is_none());
    }

    #[test]
    fn chat_chunks_become_text_completion_chunks() {
        let head = |choices: Value| json!({"id": "cmpl-1", "object": "chat.completion.chunk", "created": 9, "model": "g", "choices": choices});
        let stream = [
            head(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])),
            head(json!([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}])),
            head(json!([{"index": 0, "delta": {"content": "lo"}, "finish_reason": null}])),
            head(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
            {
                let mut u = head(json!([]));
                u["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5});
                u
            },
        ];
        let out: Vec<Value> = stream.iter().filter_map(chunk).collect();
        assert_eq!(out.len(), 4, "the role chunk says nothing a completion has: {out:?}");
        for c in &out {
            assert_eq!(
                (&c["object"], &c["id"], &c["model"], &c["created"]),
                (&json!("text_completion"), &json!("cmpl-1"), &json!("g"), &json!(9))
            );
        }
        let text: String = out.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(out[0]["choices"][0], json!({"text": "Hel", "index": 0, "logprobs": null, "finish_reason": null}));
        assert_eq!(out[2]["choices"][0], json!({"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}));
        assert_eq!(out[3]["choices"], json!([]));
        assert_eq!(out[3]["usage"]["total_tokens"], 5);
    }
}
