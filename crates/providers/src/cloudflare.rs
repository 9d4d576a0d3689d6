//! Cloudflare Workers AI (`cloudflare/`), as LiteLLM's `CloudflareChatConfig` calls it: chat at
//! `{api_base}{model}` — `api_base` defaulting to
//! `https://api.cloudflare.com/client/v4/accounts/{CLOUDFLARE_ACCOUNT_ID}/ai/run/` — with the
//! token (`api_key`, else `CLOUDFLARE_API_KEY`) as a bearer token.
//!
//! The request is OpenAI's `messages` with the parameters Workers AI takes (`max_tokens`,
//! sampling, `tools`, `response_format`, `seed`, `stop`); others are refused by name unless
//! `drop_params`. The answer is Cloudflare's envelope, `{"result": {"response", "tool_calls",
//! "usage"}, "success", "errors"}`; the stream is SSE whose events carry `{"response": "<piece>"}`
//! and, last, the usage. Tool calls (`{"name", "arguments"}`, which LiteLLM drops) become
//! OpenAI's.
//!
//! Embeddings (the `@cf/baai/bge-*` models), as LiteLLM's `CloudflareEmbeddingConfig`: `{"text":
//! [...]}` to the same URL, answered `{"result": {"shape", "data": [[...]]}}`. Workers AI counts
//! no tokens for them: the usage is `result.usage` when an answer carries one, else LiteLLM's
//! stand-in, one token per vector.

use http::HeaderName;
use serde_json::{json, Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::{sse, ApiError};

use crate::chunks::{self, ChunkWriter};
use crate::errors::ExceptionClass;
use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

/// Parameters passed on under the same name.
const PASSED: &[&str] =
    &["temperature", "top_p", "frequency_penalty", "presence_penalty", "seed", "stop", "tools", "response_format"];

/// Hints to OpenAI's own service or what the gateway consumes: never sent, never an error.
const IGNORED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "store",
    "metadata",
    "service_tier",
    "user",
    "parallel_tool_calls",
    "tool_choice",
    "n",
];

#[derive(Debug)]
pub struct Cloudflare {
    address: Address,
    drop_params: bool,
}

/// The base a deployment calls (ending in `/`): `api_base`, else `CLOUDFLARE_API_BASE`, else the
/// account's Workers AI URL; `None` when neither a base nor `CLOUDFLARE_ACCOUNT_ID` is known.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> Option<String> {
    let base = api_base.filter(|b| !b.is_empty()).map(str::to_string).or_else(|| env("CLOUDFLARE_API_BASE"));
    let base = base.or_else(|| {
        env("CLOUDFLARE_ACCOUNT_ID")
            .filter(|a| !a.is_empty())
            .map(|a| format!("https://api.cloudflare.com/client/v4/accounts/{a}/ai/run/"))
    })?;
    Some(if base.ends_with('/') { base } else { format!("{base}/") })
}

impl Cloudflare {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let path = p.path();
        let base = base(p.api_base, env).ok_or_else(|| {
            format!(
                "{path}.api_base: missing; set CLOUDFLARE_ACCOUNT_ID (or api_base to \
                 https://api.cloudflare.com/client/v4/accounts/<account id>/ai/run/)"
            )
        })?;
        let key = p.api_key.map(str::to_string).or_else(|| env("CLOUDFLARE_API_KEY")).ok_or_else(|| {
            format!("{path}.api_key: missing; set it (or CLOUDFLARE_API_KEY) to a Workers AI API token")
        })?;
        let url = format!("{base}{}", p.model.upstream);
        let mut address = Address::new(p, url.clone(), url)?;
        address.headers.push(p.secret_header(HeaderName::from_static("authorization"), &format!("Bearer {key}"))?);
        Ok(Cloudflare { address, drop_params: p.drop_params })
    }
}

/// The Workers AI body for an OpenAI chat request.
pub fn chat_request(openai: &Value, stream: bool, drop_params: bool) -> Result<Value, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let messages = req.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(|| {
        bad_param(Some("messages".into()), "`messages` is required and must be a non-empty array".into())
    })?;
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages.clone()));
    for (key, value) in req {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "max_tokens" | "max_completion_tokens" => {
                let n = value
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad_param(Some(key.clone()), format!("`{key}` must be a positive integer")))?;
                out.insert("max_tokens".into(), n.into());
            }
            k if PASSED.contains(&k) => {
                out.insert(k.into(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            _ if drop_params => {}
            k => {
                return Err(bad_param(
                    Some(k.into()),
                    format!(
                        "cloudflare does not support parameters: ['{k}']. To drop unsupported parameters, set \
                         `litellm_settings: {{drop_params: true}}` or the deployment's `drop_params: true`"
                    ),
                ))
            }
        }
    }
    if stream {
        out.insert("stream".into(), true.into());
    }
    Ok(Value::Object(out))
}

/// The Workers AI body for an OpenAI embeddings request.
pub fn embed_request(openai: &Value, drop_params: bool) -> Result<Value, ApiError> {
    let (_, texts) = crate::embedding::checked(openai, "cloudflare", "Workers AI", drop_params)?;
    Ok(json!({ "text": texts }))
}

/// `{"result": {"shape": [n, d], "data": [[...]]}}` as OpenAI's list.
pub fn embed_response(v: &Value, meta: &AnswerMeta<'_>) -> Result<Value, String> {
    let result = v.get("result").filter(|r| r.is_object()).ok_or("no `result` object")?;
    let vectors = result.get("data").and_then(Value::as_array).ok_or("no `result.data` array")?;
    // LiteLLM's stand-in counts `shape[0]`; the vectors themselves are the same number, and
    // one the answer cannot inflate.
    let tokens = counts(result.get("usage")).map_or(vectors.len() as u64, |(prompt, _)| prompt);
    crate::embedding::answer(vectors, meta, tokens)
}

/// `(prompt_tokens, completion_tokens)` of a Workers AI `usage` object.
fn counts(usage: Option<&Value>) -> Option<(u64, u64)> {
    let u = usage.filter(|u| u.is_object())?;
    let n = |k: &str| u.get(k).and_then(Value::as_f64).map(|n| n.max(0.0) as u64).unwrap_or(0);
    Some((n("prompt_tokens"), n("completion_tokens")))
}

/// A tool call as Workers AI gives it — `{"name", "arguments"}` (an object or a string), or
/// OpenAI's own shape on the newer models — as `(id, name, arguments)`.
fn tool_call(call: &Value, answer_id: &str, index: usize) -> (String, String, String) {
    let f = call.get("function").filter(|f| f.is_object()).unwrap_or(call);
    let name = f.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let arguments = match f.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "{}".to_string(),
    };
    let id =
        call.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| chunks::call_id(answer_id, index));
    (id, name, arguments)
}

/// A Workers AI answer as OpenAI's `chat.completion`.
pub fn chat_response(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    let result = v.get("result").filter(|r| r.is_object()).ok_or("no `result` object")?;
    let text = match result.get("response") {
        Some(Value::String(s)) => Some(s.clone()),
        // JSON mode answers the object itself.
        Some(v) if !v.is_null() => Some(v.to_string()),
        _ => None,
    };
    let mut message = json!({ "role": "assistant", "content": text.filter(|t| !t.is_empty()) });
    let calls: Vec<Value> = result
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let (id, name, arguments) = tool_call(c, id, i);
                    json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } })
                })
                .collect()
        })
        .unwrap_or_default();
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    if !calls.is_empty() {
        message["tool_calls"] = calls.into();
    }
    Ok(chunks::completion(model, id, created, message, finish, counts(result.get("usage"))))
}

/// Workers AI's stream events → OpenAI chunks.
#[derive(Debug)]
pub struct Stream {
    writer: ChunkWriter,
    id: String,
    calls: usize,
}

impl Stream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Stream { writer: ChunkWriter::new(model, id, created, include_usage), id: id.to_string(), calls: 0 }
    }

    /// One SSE event's data; `[DONE]` ends nothing here (the relay writes its own).
    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = crate::chunks::frame(data, "Cloudflare")? else {
            return Ok(());
        };
        if let Some(text) = errors_text(&v) {
            return Err(text);
        }
        match v.get("response") {
            Some(Value::String(s)) => self.writer.text(out, s),
            Some(other) if !other.is_null() => self.writer.text(out, &other.to_string()),
            _ => {}
        }
        for call in v.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let (id, name, arguments) = tool_call(call, &self.id, self.calls);
            self.calls += 1;
            self.writer.tool_call(out, &id, &name, &arguments);
        }
        if let Some((p, c)) = counts(v.get("usage")) {
            self.writer.set_usage(p, c);
        }
        if let Some(reason) = v.get("finish_reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            self.writer.finish(out, reason);
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

/// The messages of Cloudflare's `errors` list, joined; `None` when it lists none.
fn errors_text(v: &Value) -> Option<String> {
    let errors = v.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty())?;
    let texts: Vec<String> = errors
        .iter()
        .map(|e| match (e.get("message").and_then(Value::as_str), e.get("code")) {
            (Some(m), Some(c)) if !c.is_null() => format!("{m} (code {c})"),
            (Some(m), _) => m.to_string(),
            _ => e.to_string(),
        })
        .collect();
    Some(texts.join("; "))
}

/// A non-2xx answer: its `errors` text (or the body's), classified by status.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| errors_text(&v))
        .unwrap_or_else(|| crate::errors::upstream_text(body));
    let class = ExceptionClass::from_status(status);
    (class.status(Some(status)), class.name(), text)
}

impl ChatProvider for Cloudflare {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Chat | Endpoint::Embeddings)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let body = match call.endpoint {
            Endpoint::Embeddings => embed_request(&request, self.drop_params)?,
            _ => chat_request(&request, call.stream, self.drop_params)?,
        };
        Ok(self.address.request(call.stream, crate::provider::json_body(&body)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        match meta.endpoint {
            Endpoint::Embeddings => embed_response(&parsed, meta),
            _ => chat_response(&parsed, meta.model, meta.id, meta.created),
        }
        .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Cloudflare(
            sse::Parser::new(),
            Stream::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, error(status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_the_accounts_run_url() {
        let env = |k: &str| (k == "CLOUDFLARE_ACCOUNT_ID").then(|| "acc1".to_string());
        assert_eq!(base(None, &env).as_deref(), Some("https://api.cloudflare.com/client/v4/accounts/acc1/ai/run/"));
        assert_eq!(base(Some("http://h/run"), &env).as_deref(), Some("http://h/run/"));
        assert_eq!(base(None, &|_: &str| None), None);
    }

    #[test]
    fn a_request_keeps_messages_and_maps_max_completion_tokens() {
        let req = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 9,
            "temperature": 0.5, "user": "u", "stream": true, "stream_options": {"include_usage": true}});
        let out = chat_request(&req, true, false).unwrap();
        assert_eq!(
            out,
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "temperature": 0.5, "stream": true})
        );
        let bad = json!({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}});
        let e = chat_request(&bad, false, false).unwrap_err();
        assert!(e.message.contains("logit_bias"), "{}", e.message);
        assert!(chat_request(&bad, false, true).is_ok());
        assert!(chat_request(&json!({"messages": []}), false, false).is_err());
        assert!(chat_request(&json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}), false, false)
            .is_err());
    }

    #[test]
    fn an_answer_with_text_or_tool_calls_and_its_usage() {
        let v = json!({"result": {"response": "Hi", "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}, "success": true, "errors": []});
        let out = chat_response(&v, "g", "chatcmpl-1", 3).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi");
        assert_eq!(out["usage"]["total_tokens"], 7);
        let v = json!({"result": {"response": null, "tool_calls": [{"name": "w", "arguments": {"city": "Oslo"}}]}});
        let out = chat_response(&v, "g", "chatcmpl-1", 3).unwrap();
        let call = &out["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "w");
        assert_eq!(
            serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
            json!({"city": "Oslo"})
        );
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert!(out.get("usage").is_none());
        assert!(chat_response(&json!({"success": true}), "g", "c", 1).is_err());
    }

    #[test]
    fn a_stream_reads_pieces_usage_and_an_error_event() {
        let mut s = Stream::new("g", "chatcmpl-1", 1, true);
        let mut out = Vec::new();
        for e in [
            &br#"{"response":"He","p":"x"}"#[..],
            br#"{"response":"llo"}"#,
            br#"{"response":"","usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
            b"[DONE]",
        ] {
            s.on_event(e, &mut out).unwrap();
        }
        out.extend(s.finish_values());
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(s.usage(), Some((4, 2)));
        assert_eq!(out.last().unwrap()["usage"]["total_tokens"], 6);
        let mut s = Stream::new("g", "c", 1, false);
        let e =
            s.on_event(br#"{"errors":[{"message":"Capacity","code":3040}],"success":false}"#, &mut out).unwrap_err();
        assert_eq!(e, "Capacity (code 3040)");
        assert!(s.on_event(b"{nope", &mut out).is_err());
    }

    #[test]
    fn embeddings_send_text_and_read_result_data() {
        let req = json!({"model": "g", "input": "hi", "encoding_format": "base64", "user": "u"});
        assert_eq!(embed_request(&req, false).unwrap(), json!({"text": ["hi"]}));
        let e = embed_request(&json!({"input": "hi", "dimensions": 8}), false).unwrap_err();
        assert!(e.message.contains("['dimensions']"), "{}", e.message);
        assert!(embed_request(&json!({"input": "hi", "dimensions": 8}), true).is_ok());
        assert!(embed_request(&json!({"input": [[1, 2]]}), false).is_err());
        let meta = crate::embedding::test_meta;
        let v = json!({"result": {"shape": [2, 2], "data": [[0.5, 1.0], [1.0, 0.5]], "pooling": "cls"}, "success": true, "errors": []});
        let out = embed_response(&v, &meta(br#"{"input":["a","b"]}"#)).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([1.0, 0.5]));
        assert_eq!(out["usage"]["prompt_tokens"], 2, "LiteLLM's stand-in: one per vector");
        let v = json!({"result": {"shape": [1, 1], "data": [[1.0]], "usage": {"prompt_tokens": 5, "total_tokens": 5}}});
        let out = embed_response(&v, &meta(br#"{"input":"a","encoding_format":"base64"}"#)).unwrap();
        assert_eq!(
            (out["usage"]["prompt_tokens"].as_u64(), out["data"][0]["embedding"].as_str()),
            (Some(5), Some("AACAPw=="))
        );
        assert!(embed_response(&json!({"result": {}}), &meta(b"{}")).is_err());
    }

    #[test]
    fn errors_read_cloudflares_list() {
        let (status, class, text) = error(401, br#"{"result":null,"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[]}"#);
        assert_eq!((status, class, text.as_str()), (401, "AuthenticationError", "Authentication error (code 10000)"));
        assert_eq!(error(429, b"slow down").1, "RateLimitError");
        assert_eq!(error(500, b"").2, "upstream returned an empty body");
    }
}
