//! Replicate (`replicate/`), as LiteLLM's `ReplicateConfig` calls it: a prediction created with
//! the chat flattened into `input.prompt` ([`crate::textgen::prompt`]) and the sampling
//! parameters under Replicate's names, then polled until it has finished; the key (`api_key`,
//! else `REPLICATE_API_KEY`, `REPLICATE_API_TOKEN`) sent as `Authorization: Token …`.
//!
//! Where the prediction is created: `owner/name` at `/v1/models/owner/name/predictions`,
//! `owner/name:<64-hex version>` at `/v1/predictions` with the version in the body,
//! `deployments/owner/name` at `/v1/deployments/owner/name/predictions`, under `api_base` (else
//! `https://api.replicate.com`).
//!
//! A call takes several exchanges ([`ChatProvider::next_exchange`]): the creation's answer names
//! the prediction's `urls.get`, polled (only on the API's own origin, so a forged answer cannot
//! send the key elsewhere) at a growing interval, 0.5 s to 2 s, until its status is
//! `succeeded` (its `output` pieces joined are the answer), `failed` or `canceled` (an error).
//! A stream is created with `stream: true` and read from the prediction's `urls.stream`:
//! Replicate's SSE, `output` events carrying pieces of text, `error`, and `done`.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Uri};
use serde_json::{json, Map, Value};
use sluice_wire::{sse, ApiError};
use std::time::Duration;

use crate::chunks::{self, usage_json, ChunkWriter};
use crate::errors::openai_class;
use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, NextExchange, Params,
    UpstreamRequest,
};
use crate::stream::StreamTranslator;
use crate::textgen;

pub const DEFAULT_BASE: &str = "https://api.replicate.com";
const KEY_ENV: &[&str] = &["REPLICATE_API_KEY", "REPLICATE_API_TOKEN"];

/// Replicate's own input fields a client may send as extra body parameters.
const NATIVE: &[&str] = &[
    "system_prompt",
    "prompt_template",
    "min_new_tokens",
    "top_k",
    "presence_penalty",
    "frequency_penalty",
    "length_penalty",
    "seed",
];

const IGNORED: &[&str] =
    &["model", "messages", "stream", "stream_options", "store", "metadata", "service_tier", "user"];

#[derive(Debug)]
pub struct Replicate {
    address: Address,
    /// The API's origin (`scheme://host:port`): polls go nowhere else.
    origin: String,
    auth: (HeaderName, HeaderValue),
    model: String,
    version: Option<String>,
    drop_params: bool,
}

/// The API's base: `api_base` without a trailing `/` or `/v1`, else Replicate's.
pub fn base(api_base: Option<&str>) -> String {
    let b = api_base.filter(|b| !b.is_empty()).unwrap_or(DEFAULT_BASE).trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b).to_string()
}

/// `scheme://host[:port]` of a URL, lower-cased; `None` when it is not an absolute http(s) URL.
fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str().filter(|s| matches!(*s, "http" | "https"))?;
    let authority = uri.authority()?.as_str().rsplit('@').next()?.to_ascii_lowercase();
    Some(format!("{scheme}://{authority}"))
}

/// Where a model's predictions are created, and the version the body names (if any).
pub fn create_url(base: &str, model: &str) -> (String, Option<String>) {
    if let Some(deployment) = model.strip_prefix("deployments/") {
        return (format!("{base}/v1/deployments/{deployment}/predictions"), None);
    }
    match model.split_once(':') {
        Some((_, version)) if version.len() == 64 && version.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (format!("{base}/v1/predictions"), Some(version.to_string()))
        }
        _ => (format!("{base}/v1/models/{model}/predictions"), None),
    }
}

impl Replicate {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let path = p.path();
        let key = p.api_key.map(str::to_string).or_else(|| KEY_ENV.iter().find_map(|n| env(n))).ok_or_else(|| {
            format!("{path}.api_key: missing; set it (or REPLICATE_API_KEY) to your Replicate API token")
        })?;
        let base = base(p.api_base);
        let origin = origin(&base).ok_or_else(|| {
            format!("{path}.api_base: \"{base}\" is not an http(s) URL; write it like https://api.replicate.com")
        })?;
        let (url, version) = create_url(&base, &p.model.upstream);
        let address = Address::new(p, url.clone(), url)?;
        let auth = p.secret_header(http::header::AUTHORIZATION, &format!("Token {key}"))?;
        Ok(Replicate { address, origin, auth, model: p.model.upstream.clone(), version, drop_params: p.drop_params })
    }

    /// A GET of one of the prediction's URLs.
    fn get(&self, url: &str, stream: bool, with_key: bool) -> Result<UpstreamRequest, ApiError> {
        let uri: Uri = url.parse().map_err(|_| self.bad_answer("a prediction URL that is not a URL"))?;
        let mut headers = http::HeaderMap::new();
        if with_key {
            headers.insert(self.auth.0.clone(), self.auth.1.clone());
        }
        let accept = if stream { "text/event-stream" } else { "application/json" };
        headers.insert(http::header::ACCEPT, HeaderValue::from_static(accept));
        Ok(UpstreamRequest {
            method: Method::GET,
            url: uri,
            headers,
            body: [Bytes::new(), Bytes::new(), Bytes::new()],
            token: None,
            aws: None,
            timeout: if stream { self.address.stream_timeout } else { self.address.timeout },
        })
    }

    fn bad_answer(&self, what: &str) -> ApiError {
        crate::errors::malformed(&self.address.provider, &format!("Replicate answered with {what}"), b"")
    }
}

/// The prediction body for an OpenAI chat request.
pub fn prediction_request(
    openai: &Value,
    model: &str,
    version: Option<&str>,
    stream: bool,
    drop_params: bool,
) -> Result<Value, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let mut input = Map::new();
    input.insert("prompt".into(), textgen::prompt(textgen::messages(openai)?)?.into());
    for (key, value) in req {
        match key.as_str() {
            _ if value.is_null() => {}
            "max_tokens" | "max_completion_tokens" => {
                // LiteLLM's names for the few model families that call it something else.
                let name = if model.contains("vicuna") || model.contains("flan") {
                    "max_length"
                } else if model.contains("meta/codellama-13b") {
                    "max_tokens"
                } else {
                    "max_new_tokens"
                };
                input.insert(name.into(), textgen::max_tokens(key, value)?.into());
            }
            "temperature" | "top_p" => {
                input.insert(key.clone(), value.clone());
            }
            "stop" => {
                let stops = match value {
                    Value::String(s) => s.clone(),
                    Value::Array(a) if a.iter().all(Value::is_string) => {
                        a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
                    }
                    _ => {
                        return Err(bad_param(
                            Some("stop".into()),
                            "`stop` must be a string or a list of strings".into(),
                        ))
                    }
                };
                input.insert("stop_sequences".into(), stops.into());
            }
            k if NATIVE.contains(&k) => {
                input.insert(k.into(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            _ if drop_params => {}
            k => return Err(textgen::unsupported("replicate", k)),
        }
    }
    let mut out = json!({ "input": input });
    if let Some(v) = version {
        out["version"] = v.into();
    }
    if stream {
        out["stream"] = true.into();
    }
    Ok(out)
}

/// A finished prediction as OpenAI's `chat.completion`: its `output` pieces joined; the token
/// counts Replicate's `metrics` give for language models.
pub fn chat_response(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    if v.get("status").and_then(Value::as_str) != Some("succeeded") {
        return Err(format!(
            "a prediction that has not succeeded (status {})",
            v.get("status").unwrap_or(&Value::Null)
        ));
    }
    let text = match v.get("output") {
        Some(Value::Array(pieces)) => {
            pieces.iter().map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string)).collect()
        }
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    let metrics = v.get("metrics");
    let count = |k: &str| metrics.and_then(|m| m.get(k)).and_then(Value::as_u64);
    let usage = match (count("input_token_count"), count("output_token_count")) {
        (None, None) => None,
        (p, c) => Some((p.unwrap_or(0), c.unwrap_or(0))),
    };
    let message = json!({ "role": "assistant", "content": text });
    Ok(chunks::completion(model, id, created, message, "stop", usage))
}

/// Replicate's SSE stream (`output`, `error`, `done` events) → OpenAI chunks.
#[derive(Debug)]
pub struct Stream {
    writer: ChunkWriter,
    done: bool,
}

impl Stream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Stream { writer: ChunkWriter::new(model, id, created, include_usage), done: false }
    }

    pub fn on_event(&mut self, name: Option<&str>, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        match name.unwrap_or("message") {
            "output" => self.writer.text(out, &String::from_utf8_lossy(data)),
            "error" => {
                let v: Option<Value> = serde_json::from_slice(data).ok();
                let detail = v
                    .as_ref()
                    .and_then(|v| v.get("detail").or_else(|| v.get("error")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(data).into_owned());
                return Err(format!("the Replicate prediction failed: {detail}"));
            }
            "done" => {
                let v: Option<Value> = serde_json::from_slice(data).ok();
                if let Some(reason) = v.as_ref().and_then(|v| v.get("reason")).and_then(Value::as_str) {
                    if reason == "canceled" || reason == "error" {
                        return Err(format!("the Replicate prediction ended early ({reason})"));
                    }
                }
                self.writer.finish(out, "stop");
                self.done = true;
            }
            _ => {}
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
        self.writer.usage().map(usage_json)
    }
}

/// How long to wait before the `made`-th poll: Replicate rate-limits its polls, and most
/// language-model predictions finish within seconds.
fn poll_interval(made: u32) -> Duration {
    Duration::from_millis((500 * u64::from(made)).min(2000))
}

impl ChatProvider for Replicate {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let body = prediction_request(&request, &self.model, self.version.as_deref(), call.stream, self.drop_params)?;
        // The creation is answered whole even for a stream: the stream has its own URL.
        let mut req = self.address.request(false, crate::provider::json_body(&body));
        req.headers.insert(self.auth.0.clone(), self.auth.1.clone());
        Ok(req)
    }

    fn in_exchanges(&self, _endpoint: sluice_wire::sniff::Endpoint) -> bool {
        true
    }

    fn next_exchange(
        &self,
        answer: &[u8],
        _request: &[u8],
        stream: bool,
        made: u32,
    ) -> Result<Option<NextExchange>, ApiError> {
        let v: Value = serde_json::from_slice(answer).map_err(|_| self.bad_answer("a body that is not JSON"))?;
        let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
        if matches!(status, "failed" | "canceled" | "aborted") {
            let error = v
                .get("error")
                .filter(|e| !e.is_null())
                .map_or_else(|| status.to_string(), |e| e.as_str().map_or_else(|| e.to_string(), str::to_string));
            return Err(ApiError::new(
                422,
                format!("litellm.UnprocessableEntityError: ReplicateException - the prediction {status}: {error}"),
            )
            .kind("invalid_request_error"));
        }
        let url = |name: &str| v.get("urls").and_then(|u| u.get(name)).and_then(Value::as_str);
        if stream && made == 1 {
            let Some(stream_url) = url("stream") else {
                return Err(ApiError::bad_request(
                    "this Replicate model does not stream (its prediction has no urls.stream); call it with stream false",
                )
                .param("stream"));
            };
            let same_origin = origin(stream_url).as_deref() == Some(self.origin.as_str());
            if origin(stream_url).is_none() {
                return Err(self.bad_answer("a stream URL that is not an http(s) URL"));
            }
            // Replicate's stream URLs are on another host and need no key: it is sent only to
            // the API's own origin.
            let request = self.get(stream_url, true, same_origin)?;
            return Ok(Some(NextExchange { request, after: Duration::ZERO, streams: true, keep_answer: false }));
        }
        if status == "succeeded" {
            return Ok(None);
        }
        let get = url("get").ok_or_else(|| self.bad_answer("a prediction without urls.get"))?;
        if origin(get).as_deref() != Some(self.origin.as_str()) {
            return Err(self.bad_answer("a prediction URL on another origin than the API's; it is not polled"));
        }
        let request = self.get(get, false, true)?;
        Ok(Some(NextExchange { request, after: poll_interval(made), streams: false, keep_answer: false }))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        chat_response(&parsed, meta.model, meta.id, meta.created)
            .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Replicate(
            sse::Parser::new(),
            Stream::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        let (class, text) = openai_class(status, body);
        crate::errors::classified(&self.address.provider, (class.status(Some(status)), class.name(), text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_are_created_where_the_model_names() {
        assert_eq!(
            create_url(DEFAULT_BASE, "meta/meta-llama-3-8b-instruct").0,
            "https://api.replicate.com/v1/models/meta/meta-llama-3-8b-instruct/predictions"
        );
        let v = "02e509c789964a7ea8736978a43525956ef40397be9033abf9fd2badfe68c9e3";
        assert_eq!(
            create_url(DEFAULT_BASE, &format!("meta/llama-2-70b-chat:{v}")),
            ("https://api.replicate.com/v1/predictions".into(), Some(v.into()))
        );
        assert_eq!(
            create_url("http://h", "deployments/acme/my-llama").0,
            "http://h/v1/deployments/acme/my-llama/predictions"
        );
        assert_eq!(base(Some("http://127.0.0.1:9/v1/")), "http://127.0.0.1:9");
        assert_eq!(origin("https://API.replicate.com/v1/predictions/x").as_deref(), Some("https://api.replicate.com"));
        assert_eq!(origin("ftp://x/y"), None);
    }

    #[test]
    fn a_request_is_an_input_with_replicates_names() {
        let req = json!({"model": "g", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "max_tokens": 9, "temperature": 0.2, "stop": ["a", "b"], "top_k": 5});
        let out = prediction_request(&req, "meta/llama", None, true, false).unwrap();
        assert_eq!(
            out,
            json!({"input": {"prompt": "Be brief. hi", "max_new_tokens": 9, "temperature": 0.2, "stop_sequences": "a,b", "top_k": 5}, "stream": true})
        );
        let out = prediction_request(&req, "replicate/vicuna-13b", Some("v1"), false, false).unwrap();
        assert_eq!((out["input"]["max_length"].as_u64(), out["version"].as_str()), (Some(9), Some("v1")));
        let tools = json!({"messages": [{"role": "user", "content": "hi"}], "tools": []});
        assert!(prediction_request(&tools, "m", None, false, false).unwrap_err().message.contains("['tools']"));
    }

    fn replicate() -> Replicate {
        let m = crate::catalogue::parse_model("replicate/meta/llama", None).unwrap();
        let p = Params { api_key: Some("r8_secret"), ..crate::provider::test_params(&m) };
        Replicate::new(&p, &|_: &str| None).unwrap()
    }

    #[test]
    fn a_prediction_is_polled_on_the_apis_origin_only_and_its_stream_fetched_without_the_key() {
        let r = replicate();
        let starting = br#"{"id":"p1","status":"starting","urls":{"get":"https://api.replicate.com/v1/predictions/p1","stream":"https://stream.replicate.net/v1/streams/p1"}}"#;
        let next = r.next_exchange(starting, b"{}", false, 1).unwrap().unwrap();
        assert_eq!(
            (next.request.method, next.request.url.to_string()),
            (Method::GET, "https://api.replicate.com/v1/predictions/p1".into())
        );
        assert_eq!(next.request.headers["authorization"], "Token r8_secret");
        assert_eq!((next.after, next.streams), (Duration::from_millis(500), false));
        assert_eq!(r.next_exchange(starting, b"{}", false, 9).unwrap().unwrap().after, Duration::from_secs(2));
        let streamed = r.next_exchange(starting, b"{}", true, 1).unwrap().unwrap();
        assert!(streamed.streams && streamed.request.headers.get("authorization").is_none());
        assert!(r.next_exchange(br#"{"status":"succeeded","output":["x"]}"#, b"{}", false, 2).unwrap().is_none());
        let forged = br#"{"status":"processing","urls":{"get":"https://evil.example/v1/predictions/p1"}}"#;
        assert!(r.next_exchange(forged, b"{}", false, 1).unwrap_err().message.contains("another origin"));
        let failed =
            r.next_exchange(br#"{"status":"failed","error":"CUDA out of memory"}"#, b"{}", false, 3).unwrap_err();
        assert_eq!(failed.status, 422);
        assert!(failed.message.contains("CUDA out of memory") && failed.message.contains("ReplicateException"));
        assert!(r
            .next_exchange(br#"{"status":"starting","urls":{}}"#, b"{}", true, 1)
            .unwrap_err()
            .message
            .contains("does not stream"));
    }

    #[test]
    fn a_finished_prediction_and_a_stream() {
        let v = json!({"status": "succeeded", "output": ["He", "llo"], "metrics": {"input_token_count": 4, "output_token_count": 2}});
        let out = chat_response(&v, "g", "c", 1).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hello");
        assert_eq!(out["usage"]["total_tokens"], 6);
        assert!(chat_response(&json!({"status": "processing"}), "g", "c", 1).is_err());
        let mut s = Stream::new("g", "c", 1, false);
        let mut out = Vec::new();
        s.on_event(Some("output"), b"He", &mut out).unwrap();
        s.on_event(Some("output"), b"llo", &mut out).unwrap();
        s.on_event(Some("done"), b"{}", &mut out).unwrap();
        out.extend(s.finish_values());
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(out.iter().filter(|c| c["choices"][0]["finish_reason"] == "stop").count(), 1);
        let e = Stream::new("g", "c", 1, false).on_event(Some("error"), br#"{"detail":"boom"}"#, &mut out).unwrap_err();
        assert!(e.contains("boom"));
    }
}
