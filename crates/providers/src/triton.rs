//! NVIDIA Triton Inference Server (`triton/`), as LiteLLM's `TritonConfig` calls it. `api_base` is
//! the model's route itself and says which API it speaks:
//!
//! - `…/generate` (TensorRT-LLM's generate extension): `{"text_input", "parameters":
//!   {"max_tokens", "bad_words", "stop_words"}, "stream"}`, answered `{"text_output"}`; a stream
//!   goes to `…/generate_stream`, SSE events each with a piece in `text_output`;
//! - `…/infer` (KServe v2): the prompt as the `text_input` BYTES tensor with `max_tokens` as an
//!   INT32 one, answered with `outputs[0].data`. It does not stream.
//!
//! The prompt is the chat flattened ([`crate::textgen::prompt`]). Only `max_tokens` (or
//! `max_completion_tokens`) is taken, as in LiteLLM (default 2000 for generate, 20 for infer);
//! anything else is refused by name unless `drop_params`. Triton reports no token counts.

use serde_json::{json, Value};
use sluice_wire::{sse, ApiError};

use crate::chunks::{self, ChunkWriter};
use crate::errors::openai_class;
use crate::provider::{parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Headers, Params, UpstreamRequest};
use crate::stream::StreamTranslator;
use crate::textgen;

/// LiteLLM's `DEFAULT_MAX_TOKENS_FOR_TRITON`.
pub const GENERATE_MAX_TOKENS: u64 = 2000;
/// What LiteLLM sends an `/infer` model when the request names no limit.
pub const INFER_MAX_TOKENS: u64 = 20;

const IGNORED: &[&str] =
    &["model", "messages", "stream", "stream_options", "store", "metadata", "service_tier", "user"];

/// Which of Triton's APIs the deployment's `api_base` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Generate,
    Infer,
}

#[derive(Debug)]
pub struct Triton {
    address: Address,
    api: Api,
    drop_params: bool,
}

impl Triton {
    pub fn new(p: &Params<'_>) -> Result<Self, String> {
        let path = p.path();
        let base = p.api_base.filter(|b| !b.is_empty()).ok_or_else(|| {
            format!("{path}.api_base: missing; set it to the model's route, e.g. http://triton:8000/v2/models/<model>/generate")
        })?;
        let base = base.trim_end_matches('/');
        let api = if base.ends_with("/generate") {
            Api::Generate
        } else if base.ends_with("/infer") {
            Api::Infer
        } else {
            return Err(format!(
                "{path}.api_base: \"{base}\" must end in /generate (TensorRT-LLM's generate API) or /infer \
                 (KServe v2), e.g. http://triton:8000/v2/models/<model>/generate"
            ));
        };
        let stream_url = match api {
            Api::Generate => format!("{base}_stream"),
            Api::Infer => base.to_string(),
        };
        let mut address = Address::new(p, base.to_string(), stream_url)?;
        if let Some(key) = p.api_key {
            address.headers.push(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {key}"))?);
        }
        Ok(Triton { address, api, drop_params: p.drop_params })
    }
}

/// The request's `max_tokens`, with the other OpenAI parameters refused unless `drop_params`.
fn max_tokens(openai: &Value, default: u64, drop_params: bool) -> Result<u64, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let mut max = default;
    for (key, value) in req {
        match key.as_str() {
            _ if value.is_null() => {}
            "max_tokens" | "max_completion_tokens" => max = textgen::max_tokens(key, value)?,
            k if IGNORED.contains(&k) => {}
            _ if drop_params => {}
            k => return Err(textgen::unsupported("triton", k)),
        }
    }
    Ok(max)
}

/// The body for `/generate` or `/generate_stream`.
pub fn generate_request(openai: &Value, stream: bool, drop_params: bool) -> Result<Value, ApiError> {
    let max = max_tokens(openai, GENERATE_MAX_TOKENS, drop_params)?;
    let prompt = textgen::prompt(textgen::messages(openai)?)?;
    Ok(json!({
        "text_input": prompt,
        "parameters": { "max_tokens": max, "bad_words": [""], "stop_words": [""] },
        "stream": stream,
    }))
}

/// The KServe v2 body for `/infer`.
pub fn infer_request(openai: &Value, drop_params: bool) -> Result<Value, ApiError> {
    let max = max_tokens(openai, INFER_MAX_TOKENS, drop_params)?;
    let prompt = textgen::prompt(textgen::messages(openai)?)?;
    Ok(json!({ "inputs": [
        { "name": "text_input", "shape": [1], "datatype": "BYTES", "data": [prompt] },
        { "name": "max_tokens", "shape": [1], "datatype": "INT32", "data": [max] },
    ]}))
}

/// A `/generate` (`text_output`) or `/infer` (`outputs[0].data`, joined) answer.
pub fn chat_response(api: Api, v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    let text = match api {
        Api::Generate => v.get("text_output").and_then(Value::as_str).ok_or("no `text_output`")?.to_string(),
        Api::Infer => {
            let data = v
                .get("outputs")
                .and_then(Value::as_array)
                .and_then(|o| o.first())
                .and_then(|o| o.get("data"))
                .ok_or("no `outputs[0].data`")?;
            match data {
                Value::Array(items) => {
                    items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect()
                }
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        }
    };
    let message = json!({ "role": "assistant", "content": text });
    Ok(chunks::completion(model, id, created, message, "stop", None))
}

/// `/generate_stream` events → OpenAI chunks.
#[derive(Debug)]
pub struct Stream {
    writer: ChunkWriter,
}

impl Stream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Stream { writer: ChunkWriter::new(model, id, created, include_usage) }
    }

    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = crate::chunks::frame(data, "Triton")? else {
            return Ok(());
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()));
        }
        self.writer.text(out, v.get("text_output").and_then(Value::as_str).unwrap_or_default());
        if v.get("is_finished").and_then(Value::as_bool) == Some(true) {
            let reason = match v.get("stop_reason").and_then(Value::as_str) {
                Some("length") => "length",
                _ => "stop",
            };
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

/// A non-2xx answer (`{"error": "…"}`), classified by status.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let (class, text) = openai_class(status, body);
    (class.status(Some(status)), class.name(), text)
}

impl ChatProvider for Triton {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let body =
            match self.api {
                Api::Generate => generate_request(&request, call.stream, self.drop_params)?,
                Api::Infer if call.stream => return Err(ApiError::bad_request(
                    "this triton deployment's api_base is an /infer route, which does not stream; send the request \
                     with stream false, or point api_base at the model's /generate route",
                )
                .param("stream")),
                Api::Infer => infer_request(&request, self.drop_params)?,
            };
        Ok(self.address.request(call.stream, crate::provider::json_body(&body)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        chat_response(self.api, &parsed, meta.model, meta.id, meta.created)
            .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Triton(sse::Parser::new(), Stream::new(meta.model, meta.id, meta.created, meta.include_usage))
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, error(status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_and_infer_bodies_are_litellms() {
        let req = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5});
        assert_eq!(
            generate_request(&req, true, false).unwrap(),
            json!({"text_input": "hi", "parameters": {"max_tokens": 5, "bad_words": [""], "stop_words": [""]}, "stream": true})
        );
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(generate_request(&plain, false, false).unwrap()["parameters"]["max_tokens"], 2000);
        let infer = infer_request(&plain, false).unwrap();
        assert_eq!(infer["inputs"][0]["data"], json!(["hi"]));
        assert_eq!(infer["inputs"][1], json!({"name": "max_tokens", "shape": [1], "datatype": "INT32", "data": [20]}));
        let hot = json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2});
        assert!(generate_request(&hot, false, false).unwrap_err().message.contains("['temperature']"));
        assert!(generate_request(&hot, false, true).is_ok());
    }

    #[test]
    fn answers_of_both_apis() {
        let out = chat_response(Api::Generate, &json!({"model_name": "m", "text_output": "Hi"}), "g", "c", 1).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi");
        let out = chat_response(
            Api::Infer,
            &json!({"outputs": [{"name": "text_output", "data": ["Hi", " there"]}]}),
            "g",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi there");
        assert!(chat_response(Api::Generate, &json!({}), "g", "c", 1).is_err());
    }

    #[test]
    fn a_generate_stream() {
        let mut s = Stream::new("g", "c", 1, false);
        let mut out = Vec::new();
        s.on_event(br#"{"model_name":"m","text_output":"He"}"#, &mut out).unwrap();
        s.on_event(br#"{"model_name":"m","text_output":"llo"}"#, &mut out).unwrap();
        out.extend(s.finish_values());
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(out.last().unwrap()["choices"][0]["finish_reason"], "stop");
        assert!(s.on_event(br#"{"error":"in-flight batching failed"}"#, &mut out).is_err());
    }
}
