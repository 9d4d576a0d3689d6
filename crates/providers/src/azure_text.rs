//! Azure OpenAI's text completions (`azure_text/`: `gpt-35-turbo-instruct` and the other
//! completion models), addressed like `azure/` (`api_base`, `api_version`, `api-key` or
//! `azure_ad_token`, the same environment variables) at the deployment's `/completions`.
//!
//! A chat request becomes a completion: the messages one prompt ([`crate::textgen::prompt`]), the
//! completion parameters passed on (`max_completion_tokens` as `max_tokens`), tools and the other
//! chat-only parameters refused by name unless `drop_params`; the answer's `choices[].text` comes
//! back as the assistant's message, the stream's pieces as chat chunks. A `/v1/completions` call
//! goes to the deployment as the client sent it.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::{splice, sse, ApiError};

use crate::chunks::ChunkWriter;
use crate::provider::{
    parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;
use crate::textgen;

/// Chat parameters the completions API takes under the same name.
const PASSED: &[&str] = &[
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
    "seed",
    "stream_options",
    "echo",
    "best_of",
    "suffix",
];

const IGNORED: &[&str] = &["model", "messages", "stream", "store", "metadata", "service_tier", "parallel_tool_calls"];

#[derive(Debug)]
pub struct AzureText {
    address: Address,
    upstream_model: Bytes,
    drop_params: bool,
}

impl AzureText {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let azure = crate::azure::resolve(p, env)?;
        let url = crate::azure::url(&azure.base, &p.model.upstream, Endpoint::Completions, &azure.version);
        let mut address = Address::new(p, url.clone(), url)?;
        address.headers.extend(azure.auth);
        Ok(AzureText { address, upstream_model: splice::json_string(&p.model.upstream), drop_params: p.drop_params })
    }
}

/// The completions body for a chat request.
pub fn completion_request(openai: &Value, model: &str, stream: bool, drop_params: bool) -> Result<Value, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let prompt = textgen::prompt(textgen::messages(openai)?)?;
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("prompt".into(), prompt.into());
    for (key, value) in req {
        match key.as_str() {
            _ if value.is_null() => {}
            "max_completion_tokens" => {
                out.insert("max_tokens".into(), textgen::max_tokens(key, value)?.into());
            }
            k if PASSED.contains(&k) => {
                out.insert(k.into(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            _ if drop_params => {}
            k => return Err(textgen::unsupported("azure_text", k)),
        }
    }
    if stream {
        out.insert("stream".into(), true.into());
    }
    Ok(Value::Object(out))
}

/// A `text_completion` answer as a `chat.completion`: each choice's `text` the assistant's
/// message.
pub fn chat_response(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    let choices = v.get("choices").and_then(Value::as_array).ok_or("no `choices` list")?;
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "index": c.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                "message": { "role": "assistant", "content": c.get("text").and_then(Value::as_str).unwrap_or_default() },
                "logprobs": null,
                "finish_reason": c.get("finish_reason").and_then(Value::as_str).unwrap_or("stop"),
            })
        })
        .collect();
    Ok(crate::chunks::stamped("chat.completion", id, created, model, Value::Array(choices), v))
}

/// Completion chunks → chat chunks (the first choice's text; Azure's opening chunk of prompt
/// filter results carries no choices and sends nothing).
#[derive(Debug)]
pub struct Stream {
    writer: ChunkWriter,
}

impl Stream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Stream { writer: ChunkWriter::new(model, id, created, include_usage) }
    }

    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = crate::chunks::frame(data, "Azure")? else {
            return Ok(());
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(e.get("message").and_then(Value::as_str).unwrap_or("upstream error").to_string());
        }
        let first = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0));
        if let Some(c) = first {
            self.writer.text(out, c.get("text").and_then(Value::as_str).unwrap_or_default());
            if let Some(reason) = c.get("finish_reason").and_then(Value::as_str) {
                self.writer.finish(out, reason);
            }
        }
        if let Some((p, c)) = crate::provider::usage(&v).filter(|_| v["usage"].is_object()) {
            self.writer.set_usage(p, c);
        }
        Ok(())
    }

    pub fn finish_values(&mut self) -> Vec<Value> {
        self.writer.finish_values()
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.writer.usage()
    }

    pub fn usage_object(&self) -> Option<Value> {
        self.writer.usage_object()
    }
}

impl ChatProvider for AzureText {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Completions)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        if call.endpoint == Endpoint::Completions {
            let mut req = self.address.request(call.stream, Bytes::new());
            req.body = match &call.model_span {
                Some(span) => splice::replace(call.body, span.clone(), self.upstream_model.clone()),
                None => crate::openai::insert_model(call.body, &self.upstream_model),
            };
            return Ok(req);
        }
        let model: String = serde_json::from_slice(&self.upstream_model).unwrap_or_default();
        let body = completion_request(&parse_request(call.body)?, &model, call.stream, self.drop_params)?;
        Ok(self.address.request(call.stream, crate::provider::json_body(&body)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let mut parsed = self.address.answer_json(body)?;
        if meta.endpoint == Endpoint::Completions {
            if !parsed.is_object() {
                return Err(crate::errors::malformed(&self.address.provider, "not a JSON object", body));
            }
            parsed["model"] = meta.model.into();
            return Ok(parsed);
        }
        chat_response(&parsed, meta.model, meta.id, meta.created)
            .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        if meta.endpoint == Endpoint::Completions {
            return StreamTranslator::OpenAi(sse::Parser::new(), None);
        }
        StreamTranslator::AzureText(
            sse::Parser::new(),
            Stream::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::openai_shaped(&self.address.provider, status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_becomes_a_prompt_with_the_completion_parameters() {
        let req = json!({"model": "g", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "max_completion_tokens": 5, "temperature": 0.2, "stop": ["\n"], "user": "u", "stream_options": {"include_usage": true}});
        let out = completion_request(&req, "instruct", true, false).unwrap();
        assert_eq!(
            out,
            json!({"model": "instruct", "prompt": "Be brief. hi", "max_tokens": 5, "temperature": 0.2, "stop": ["\n"],
                "user": "u", "stream_options": {"include_usage": true}, "stream": true})
        );
        let tools = json!({"messages": [{"role": "user", "content": "hi"}], "tools": []});
        assert!(completion_request(&tools, "m", false, false).unwrap_err().message.contains("['tools']"));
        assert!(completion_request(&tools, "m", false, true).is_ok());
    }

    #[test]
    fn a_text_completion_answers_as_chat() {
        let v = json!({"id": "cmpl-1", "object": "text_completion", "choices": [{"text": "Hi", "index": 0, "finish_reason": "length", "logprobs": null}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
        let out = chat_response(&v, "g", "chatcmpl-1", 9).unwrap();
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(out["choices"][0]["message"], json!({"role": "assistant", "content": "Hi"}));
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(out["usage"]["total_tokens"], 4);
        assert!(chat_response(&json!({}), "g", "c", 1).is_err());
    }

    #[test]
    fn completion_chunks_become_chat_chunks() {
        let mut s = Stream::new("g", "c", 1, true);
        let mut out = Vec::new();
        for e in [
            &br#"{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}"#[..],
            br#"{"choices":[{"text":"He","index":0,"finish_reason":null}]}"#,
            br#"{"choices":[{"text":"llo","index":0,"finish_reason":"stop"}]}"#,
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
            b"[DONE]",
        ] {
            s.on_event(e, &mut out).unwrap();
        }
        out.extend(s.finish_values());
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(out.last().unwrap()["usage"]["total_tokens"], 5);
        assert!(s.on_event(br#"{"error":{"message":"filtered"}}"#, &mut out).is_err());
    }
}
