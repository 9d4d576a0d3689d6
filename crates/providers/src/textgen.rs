//! What the text-generation servers share (Predibase and Triton; Hugging Face's TGI wire format,
//! which Predibase serves): a chat flattened into one prompt, and TGI's `/generate` answer and
//! `/generate_stream` events read back as OpenAI's.
//!
//! The prompt is LiteLLM's `default_pt`, its prompt factory's answer for a model it has no
//! template for: every message's text joined with a space. (LiteLLM first tries to download the
//! model's chat template from the Hugging Face Hub; a gateway does not fetch code-like templates
//! on the request path, so the prompt is the same whatever the model.)

use serde_json::{json, Map, Value};
use sluice_wire::ApiError;

use crate::chunks::{self, ChunkWriter};
use crate::provider::bad_param;

/// Every message's text, joined with a space; a message's content parts count by their text.
pub fn prompt(messages: &[Value]) -> Result<String, ApiError> {
    let mut texts = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        match m.get("content") {
            Some(Value::String(s)) => texts.push(s.as_str()),
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                        (Some("text") | None, Some(t)) => texts.push(t),
                        _ => {
                            return Err(bad_param(
                                Some(format!("messages[{i}].content[{j}]")),
                                format!(
                                    "messages[{i}].content[{j}] is not text; this provider takes a text prompt only"
                                ),
                            ))
                        }
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(bad_param(
                    Some(format!("messages[{i}].content")),
                    format!("messages[{i}].content must be a string or a list of text parts"),
                ))
            }
        }
    }
    Ok(texts.join(" "))
}

/// The request's `messages`, or the 400 when they are missing.
pub fn messages(request: &Value) -> Result<&Vec<Value>, ApiError> {
    request.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(|| {
        bad_param(Some("messages".into()), "`messages` is required and must be a non-empty array".into())
    })
}

/// The 400 for an OpenAI parameter the provider cannot take, as LiteLLM's
/// `UnsupportedParamsError` words it.
pub fn unsupported(provider: &str, param: &str) -> ApiError {
    bad_param(
        Some(param.into()),
        format!(
            "{provider} does not support parameters: ['{param}']. To drop unsupported parameters, set \
             `litellm_settings: {{drop_params: true}}` or the deployment's `drop_params: true`"
        ),
    )
}

/// A positive token count from `max_tokens` / `max_completion_tokens`.
pub fn max_tokens(key: &str, value: &Value) -> Result<u64, ApiError> {
    value
        .as_u64()
        .filter(|n| (1..=10_000_000).contains(n))
        .ok_or_else(|| bad_param(Some(key.into()), format!("`{key}` must be a positive integer")))
}

/// TGI's own parameters a client may send as extra body fields.
const TGI_NATIVE: &[&str] = &[
    "top_k",
    "repetition_penalty",
    "truncate",
    "typical_p",
    "watermark",
    "seed",
    "do_sample",
    "decoder_input_details",
    "details",
    "return_full_text",
];

const IGNORED: &[&str] =
    &["model", "messages", "stream", "stream_options", "store", "metadata", "service_tier", "user"];

/// TGI's `{"inputs", "parameters"}` for an OpenAI chat request, as LiteLLM maps it for
/// Predibase and SageMaker: `max_tokens` → `max_new_tokens`, a `temperature` of 0 sent as 0.01
/// (TGI refuses 0), `top_p`, `stop` as a list, `response_format`; TGI's own parameters and
/// `native` passed on; `defaults` for what the request leaves out; `stream: true` in the body
/// when `stream_flag` (SageMaker's way; Predibase streams by URL). `n` above 1 is refused.
pub fn tgi_request(
    openai: &Value,
    provider: &str,
    defaults: Map<String, Value>,
    native: &[&str],
    stream_flag: bool,
    drop_params: bool,
) -> Result<Value, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let inputs = prompt(messages(openai)?)?;
    let mut parameters = defaults;
    for (key, value) in req {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "max_tokens" | "max_completion_tokens" => {
                parameters.insert("max_new_tokens".into(), max_tokens(key, value)?.into());
            }
            "temperature" => {
                let t = value.as_f64().filter(|t| t.is_finite() && *t >= 0.0).ok_or_else(|| {
                    bad_param(Some("temperature".into()), "`temperature` must be a non-negative number".into())
                })?;
                parameters.insert("temperature".into(), json!(if t == 0.0 { 0.01 } else { t }));
            }
            "top_p" | "response_format" => {
                parameters.insert(key.clone(), value.clone());
            }
            "stop" => {
                let stops = match value {
                    Value::String(s) => vec![Value::String(s.clone())],
                    Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
                    _ => {
                        return Err(bad_param(
                            Some("stop".into()),
                            "`stop` must be a string or a list of strings".into(),
                        ))
                    }
                };
                parameters.insert("stop".into(), stops.into());
            }
            "n" if value.as_u64() == Some(1) => {}
            k if TGI_NATIVE.contains(&k) || native.contains(&k) => {
                parameters.insert(k.into(), value.clone());
            }
            k if IGNORED.contains(&k) => {}
            _ if drop_params => {}
            k => return Err(unsupported(provider, k)),
        }
    }
    let mut out = json!({ "inputs": inputs, "parameters": parameters });
    if stream_flag {
        out["stream"] = true.into();
    }
    Ok(out)
}

/// OpenAI's finish reason for TGI's (`eos_token`, `stop_sequence`, `length`), as LiteLLM's
/// `map_finish_reason` gives it.
pub fn finish_reason(tgi: Option<&str>) -> &'static str {
    match tgi {
        Some("length") => "length",
        _ => "stop",
    }
}

/// LiteLLM's `output_parser`: chat-template tokens a model echoes at either end are removed.
pub fn strip_template_tokens(text: &str) -> String {
    let mut t = text.to_string();
    for token in ["<|assistant|>", "<|system|>", "<|user|>", "<s>", "</s>"] {
        if t.trim().starts_with(token) {
            t = t.replacen(token, "", 1);
        }
        if let Some(stripped) = t.strip_suffix(token) {
            t = stripped.to_string();
        }
    }
    t
}

/// A TGI `/generate` answer (`{"generated_text", "details"}`, or a one-element list of it) as
/// OpenAI's `chat.completion`. Completion tokens are `details.generated_tokens`; the prompt's
/// only when the server lists its `prefill`.
pub fn tgi_response(v: &Value, model: &str, id: &str, created: u64) -> Result<Value, String> {
    let v = match v {
        Value::Array(items) => items.first().ok_or("an empty list")?,
        v => v,
    };
    // `generation` is what SageMaker JumpStart's own containers answer.
    let text =
        v.get("generated_text").or_else(|| v.get("generation")).and_then(Value::as_str).ok_or("no `generated_text`")?;
    let details = v.get("details").filter(|d| d.is_object());
    let finish = finish_reason(details.and_then(|d| d.get("finish_reason")).and_then(Value::as_str));
    let usage = details.map(|d| {
        let prompt = d.get("prefill").and_then(Value::as_array).map_or(0, |p| p.len() as u64);
        (prompt, d.get("generated_tokens").and_then(Value::as_u64).unwrap_or(0))
    });
    let text = strip_template_tokens(text);
    let message = json!({ "role": "assistant", "content": (!text.is_empty()).then_some(text) });
    Ok(chunks::completion(model, id, created, message, finish, usage))
}

/// TGI's `/generate_stream` events → OpenAI chunks: each event's `token.text` (special tokens
/// left out); the last carries `details` with the finish reason and the generated count.
#[derive(Debug)]
pub struct TgiStream {
    writer: ChunkWriter,
}

impl TgiStream {
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        TgiStream { writer: ChunkWriter::new(model, id, created, include_usage) }
    }

    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
        let Some(v) = crate::chunks::frame(data, "the server")? else {
            return Ok(());
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()));
        }
        let token = v.get("token");
        let special = token.and_then(|t| t.get("special")).and_then(Value::as_bool).unwrap_or(false);
        match token.and_then(|t| t.get("text")).and_then(Value::as_str) {
            Some(text) if !special => self.writer.text(out, text),
            _ => self.writer.text(out, ""),
        }
        if let Some(d) = v.get("details").filter(|d| d.is_object()) {
            let generated = d.get("generated_tokens").and_then(Value::as_u64).unwrap_or(0);
            self.writer.set_usage(0, generated);
            self.writer.finish(out, finish_reason(d.get("finish_reason").and_then(Value::as_str)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_joins_every_messages_text() {
        let m = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}, {"role": "assistant", "content": null}]);
        assert_eq!(prompt(m.as_array().unwrap()).unwrap(), "Be brief. hi there");
        let img = json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]);
        assert_eq!(prompt(img.as_array().unwrap()).unwrap_err().param.as_deref(), Some("messages[0].content[0]"));
    }

    #[test]
    fn a_tgi_answer_with_its_details() {
        let v = json!({"generated_text": "<s>Hi</s>", "details": {"finish_reason": "length", "generated_tokens": 3, "prefill": [{}, {}]}});
        let out = tgi_response(&v, "g", "c", 1).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi");
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(
            (out["usage"]["prompt_tokens"].as_u64(), out["usage"]["completion_tokens"].as_u64()),
            (Some(2), Some(3))
        );
        let out = tgi_response(&json!([{"generated_text": "x"}]), "g", "c", 1).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert!(out.get("usage").is_none());
        assert!(tgi_response(&json!({"text": "x"}), "g", "c", 1).is_err());
    }

    #[test]
    fn a_tgi_stream_skips_special_tokens_and_ends_with_its_details() {
        let mut s = TgiStream::new("g", "c", 1, true);
        let mut out = Vec::new();
        for e in [
            &br#"{"token":{"id":1,"text":"He","special":false},"generated_text":null,"details":null}"#[..],
            br#"{"token":{"id":2,"text":"llo","special":false},"generated_text":null,"details":null}"#,
            br#"{"token":{"id":3,"text":"</s>","special":true},"generated_text":"Hello","details":{"finish_reason":"eos_token","generated_tokens":3}}"#,
        ] {
            s.on_event(e, &mut out).unwrap();
        }
        out.extend(s.finish_values());
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(s.usage(), Some((0, 3)));
        assert_eq!(out.iter().filter(|c| !c["choices"][0]["finish_reason"].is_null()).count(), 1);
        assert!(s
            .on_event(br#"{"error":"Request failed during generation","error_type":"generation"}"#, &mut out)
            .is_err());
    }
}
