//! Codestral's fill-in-the-middle completions (`text-completion-codestral/`), as LiteLLM's
//! `CodestralTextCompletionConfig` calls them: `POST` to `api_base`, the whole FIM URL (default
//! `https://codestral.mistral.ai/v1/fim/completions`), with `api_key` or `CODESTRAL_API_KEY` as a
//! bearer token.
//!
//! A `/v1/completions` call becomes Mistral's FIM body — `prompt` and `suffix`, `max_tokens` (or
//! `max_completion_tokens`), `min_tokens`, `temperature`, `top_p`, `stop`, `seed` as
//! `random_seed` — and every other parameter is refused by name unless `drop_params`. Mistral
//! answers in chat's shape (`choices[].message.content`, streamed as `delta.content`), which comes
//! back as a `text_completion` (`choices[].text`). A chat call is sent as a prompt of its messages
//! ([`crate::textgen::prompt`]) and its chat-shaped answer is relayed as it is.

use bytes::Bytes;
use http::HeaderValue;
use serde_json::{json, Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};

use crate::provider::{
    parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;
use crate::textgen;

const PROVIDER: &str = "text-completion-codestral";
pub const DEFAULT_URL: &str = "https://codestral.mistral.ai/v1/fim/completions";
const KEY_ENV: &str = "CODESTRAL_API_KEY";

/// Parameters Mistral's FIM API takes under the same name.
const PASSED: &[&str] = &["suffix", "temperature", "top_p", "stop", "min_tokens"];
/// Fields the request carries that are not parameters to pass on.
const IGNORED: &[&str] = &["model", "prompt", "messages", "stream", "stream_options"];

#[derive(Debug)]
pub struct Fim {
    address: Address,
    model: String,
    drop_params: bool,
}

/// The URL a deployment calls: `api_base` as written, else Codestral's.
pub fn url(api_base: Option<&str>) -> String {
    api_base.filter(|b| !b.is_empty()).unwrap_or(DEFAULT_URL).to_string()
}

impl Fim {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let url = url(p.api_base);
        let mut address = Address::new(p, url.clone(), url)?;
        if let Some(key) = p.api_key.map(str::to_string).or_else(|| env(KEY_ENV)) {
            address.headers.push(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {key}"))?);
        }
        Ok(Fim { address, model: p.model.upstream.clone(), drop_params: p.drop_params })
    }

    /// Mistral's FIM body for a completions (`prompt`) or chat (`messages`) request.
    fn body(&self, req: &Value, endpoint: Endpoint, stream: bool) -> Result<Value, ApiError> {
        let obj = req.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
        let prompt = match endpoint {
            Endpoint::Completions => one_prompt(obj.get("prompt"))?,
            _ => textgen::prompt(textgen::messages(req)?)?,
        };
        let mut out = Map::new();
        out.insert("model".into(), self.model.clone().into());
        out.insert("prompt".into(), prompt.into());
        for (key, value) in obj {
            match key.as_str() {
                _ if value.is_null() => {}
                "max_tokens" | "max_completion_tokens" => {
                    out.insert("max_tokens".into(), textgen::max_tokens(key, value)?.into());
                }
                "seed" => {
                    out.insert("random_seed".into(), value.clone());
                }
                k if PASSED.contains(&k) => {
                    out.insert(k.into(), value.clone());
                }
                k if IGNORED.contains(&k) => {}
                _ if self.drop_params => {}
                k => return Err(textgen::unsupported(PROVIDER, k)),
            }
        }
        if stream {
            out.insert("stream".into(), true.into());
        }
        Ok(Value::Object(out))
    }
}

/// The completion's prompt: a string, or a list holding one.
fn one_prompt(prompt: Option<&Value>) -> Result<String, ApiError> {
    let one = match prompt {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Array(list)) if list.len() == 1 => list[0].as_str(),
        _ => None,
    };
    one.map(str::to_string).ok_or_else(|| {
        crate::provider::bad_param(
            Some("prompt".into()),
            format!("{PROVIDER} takes `prompt` as one string (Codestral completes one prompt per call)"),
        )
    })
}

/// Mistral's chat-shaped FIM answer as a `text_completion`.
pub fn text_completion(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    let choices = v.get("choices").and_then(Value::as_array).ok_or("no `choices` list")?;
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "text": c.pointer("/message/content").and_then(Value::as_str).unwrap_or_default(),
                "index": c.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                "logprobs": null,
                "finish_reason": c.get("finish_reason").and_then(Value::as_str).unwrap_or("stop"),
            })
        })
        .collect();
    let id = v.get("id").and_then(Value::as_str).unwrap_or(id);
    let created = v.get("created").and_then(Value::as_u64).unwrap_or(created);
    Ok(crate::chunks::stamped("text_completion", id, created, model, Value::Array(choices), v))
}

/// Mistral's chat chunks → `text_completion` chunks; the usage, when the client asked for it, in
/// a last chunk with no choices (as OpenAI's `stream_options.include_usage`).
#[derive(Debug)]
pub struct Stream {
    model: String,
    id: String,
    created: u64,
    include_usage: bool,
    usage: Option<(u64, u64)>,
}

impl Stream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Stream { model: model.to_string(), id: id.to_string(), created, include_usage, usage: None }
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({ "id": self.id, "object": "text_completion", "created": self.created, "model": self.model, "choices": choices })
    }

    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = crate::chunks::frame(data, "Codestral")? else {
            return Ok(());
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(e.get("message").and_then(Value::as_str).unwrap_or("upstream error").to_string());
        }
        for (i, c) in v.get("choices").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let text = c.pointer("/delta/content").and_then(Value::as_str).unwrap_or_default();
            let finish = c.get("finish_reason").filter(|r| r.is_string());
            if text.is_empty() && finish.is_none() {
                continue;
            }
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            out.push(self.chunk(json!([{ "text": text, "index": index, "logprobs": null, "finish_reason": finish }])));
        }
        if let Some(u) = crate::provider::usage(&v).filter(|_| v["usage"].is_object()) {
            self.usage = Some(u);
        }
        Ok(())
    }

    pub fn finish_values(&mut self) -> Vec<Value> {
        match (self.include_usage, self.usage) {
            (true, Some(u)) => {
                let mut last = self.chunk(json!([]));
                last["usage"] = crate::chunks::usage_json(u);
                vec![last]
            }
            _ => Vec::new(),
        }
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    pub fn usage_object(&self) -> Option<Value> {
        self.usage.map(crate::chunks::usage_json)
    }
}

impl ChatProvider for Fim {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Completions)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let body = self.body(&parse_request(call.body)?, call.endpoint, call.stream)?;
        let mut req = self.address.request(call.stream, Bytes::from(body.to_string()));
        if call.stream {
            req.headers.insert(http::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let mut parsed = self.address.answer_json(body)?;
        if meta.endpoint == Endpoint::Completions {
            return text_completion(&parsed, meta.model, meta.id, meta.created)
                .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body));
        }
        if !parsed.is_object() {
            return Err(crate::errors::malformed(&self.address.provider, "not a JSON object", body));
        }
        parsed["model"] = meta.model.into();
        Ok(parsed)
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        if meta.endpoint == Endpoint::Completions {
            return StreamTranslator::Fim(
                sse::Parser::new(),
                Stream::new(meta.model, meta.id, meta.created, meta.include_usage),
            );
        }
        StreamTranslator::OpenAi(sse::Parser::new(), None)
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::openai_shaped(&self.address.provider, status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fim(drop_params: bool) -> Fim {
        let m = crate::catalogue::parse_model("text-completion-codestral/codestral-latest", None).unwrap();
        let mut p = crate::provider::test_params(&m);
        p.drop_params = drop_params;
        let env = |k: &str| (k == KEY_ENV).then(|| "cs-key".to_string());
        Fim::new(&p, &env).unwrap()
    }

    #[test]
    fn a_completion_becomes_a_fim_body_at_codestrals_url() {
        let f = fim(false);
        assert_eq!(f.address.url.to_string(), DEFAULT_URL);
        let auth = f.address.headers.iter().find(|(n, _)| n == http::header::AUTHORIZATION).unwrap();
        assert_eq!(auth.1, "Bearer cs-key");
        let req = json!({"model": "g", "prompt": ["def f(x):"], "suffix": "return y", "max_tokens": 16, "seed": 7,
            "temperature": 0, "stop": ["\n\n"], "stream_options": {"include_usage": true}});
        let body = f.body(&req, Endpoint::Completions, true).unwrap();
        assert_eq!(
            body,
            json!({"model": "codestral-latest", "prompt": "def f(x):", "suffix": "return y", "max_tokens": 16,
                "random_seed": 7, "temperature": 0, "stop": ["\n\n"], "stream": true})
        );
        let chat = json!({"messages": [{"role": "user", "content": "def f(x):"}], "max_completion_tokens": 4});
        assert_eq!(
            f.body(&chat, Endpoint::Chat, false).unwrap(),
            json!({"model": "codestral-latest", "prompt": "def f(x):", "max_tokens": 4})
        );
    }

    #[test]
    fn what_fim_cannot_take_is_refused_unless_dropped() {
        let req = json!({"prompt": "a", "echo": true});
        let e = fim(false).body(&req, Endpoint::Completions, false).unwrap_err();
        assert!(e.message.contains("['echo']"), "{}", e.message);
        assert!(fim(true).body(&req, Endpoint::Completions, false).is_ok());
        let two = json!({"prompt": ["a", "b"]});
        assert!(fim(true).body(&two, Endpoint::Completions, false).unwrap_err().message.contains("one string"));
    }

    #[test]
    fn the_chat_shaped_answer_comes_back_as_a_text_completion() {
        let v = json!({"id": "cmpl-9", "object": "chat.completion", "created": 5, "model": "codestral-latest",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "  return x"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}});
        let out = text_completion(&v, "g", "x", 1).unwrap();
        assert_eq!(out["object"], "text_completion");
        assert_eq!((out["id"].as_str(), out["model"].as_str()), (Some("cmpl-9"), Some("g")));
        assert_eq!(
            out["choices"][0],
            json!({"text": "  return x", "index": 0, "logprobs": null, "finish_reason": "length"})
        );
        assert_eq!(out["usage"]["total_tokens"], 7);
        assert!(text_completion(&json!({}), "g", "x", 1).is_err());
    }

    #[test]
    fn chat_chunks_stream_as_text_completion_chunks() {
        let mut s = Stream::new("g", "cmpl-1", 3, true);
        let mut out = Vec::new();
        for e in [
            &br#"{"id":"u","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#[..],
            br#"{"id":"u","choices":[{"index":0,"delta":{"content":"ret"},"finish_reason":null}]}"#,
            br#"{"id":"u","choices":[{"index":0,"delta":{"content":"urn"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}"#,
            b"[DONE]",
        ] {
            s.on_event(e, &mut out).unwrap();
        }
        out.extend(s.finish_values());
        assert_eq!(out.len(), 3);
        let text: String = out.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
        assert_eq!(text, "return");
        assert!(out.iter().all(|c| c["object"] == "text_completion" && c["model"] == "g"));
        assert_eq!(out[1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(out[2]["choices"], json!([]));
        assert_eq!(out[2]["usage"]["total_tokens"], 6);
        assert_eq!(s.usage(), Some((4, 2)));
        assert!(s.on_event(br#"{"error":{"message":"bad"}}"#, &mut out).is_err());
        assert!(s.on_event(b"{nope", &mut out).is_err());
    }
}
