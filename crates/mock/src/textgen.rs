//! Fake text-generation servers: Hugging Face TGI's `/generate` and `/generate_stream` as
//! Predibase serves them (`/{tenant}/deployments/v2/llms/{model}/…`, bearer token required), and
//! NVIDIA Triton's TensorRT-LLM `/generate`, `/generate_stream` and KServe v2 `/infer`
//! (`/v2/models/{model}/…`).
//!
//! TGI answers `{"generated_text", "details": {"finish_reason", "generated_tokens"}}` and streams
//! SSE events `{"token": {"text", "special"}, "generated_text", "details"}`, the last with the
//! details; it refuses a `temperature` that is not strictly positive, as TGI validates it, with
//! `{"error", "error_type"}`. Triton answers `{"text_output"}` (streamed one piece per event) or
//! `{"outputs": [{"name": "text_output", "data": [...]}]}`, errors as `{"error"}`.

use bytes::Bytes;
use serde_json::{json, Value};

pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " text generator."];

/// Which server and route a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// Predibase's TGI: the model, and whether it is `generate_stream`.
    Tgi(&'a str, bool),
    /// Triton's generate extension: the model, and whether it is `generate_stream`.
    TritonGenerate(&'a str, bool),
    TritonInfer(&'a str),
}

impl<'a> Call<'a> {
    pub fn model(self) -> &'a str {
        match self {
            Call::Tgi(m, _) | Call::TritonGenerate(m, _) | Call::TritonInfer(m) => m,
        }
    }
}

pub fn parse_path(path: &str) -> Option<Call<'_>> {
    if let Some(rest) = path.strip_prefix("/v2/models/") {
        let (model, route) = rest.rsplit_once('/')?;
        return match route {
            _ if model.is_empty() => None,
            "generate" => Some(Call::TritonGenerate(model, false)),
            "generate_stream" => Some(Call::TritonGenerate(model, true)),
            "infer" => Some(Call::TritonInfer(model)),
            _ => None,
        };
    }
    let (tenant, rest) = path.strip_prefix('/')?.split_once("/deployments/v2/llms/")?;
    let (model, route) = rest.rsplit_once('/')?;
    if tenant.is_empty() || tenant.contains('/') || model.is_empty() {
        return None;
    }
    match route {
        "generate" => Some(Call::Tgi(model, false)),
        "generate_stream" => Some(Call::Tgi(model, true)),
        _ => None,
    }
}

pub fn tgi_error(message: &str) -> String {
    json!({ "error": message, "error_type": "validation" }).to_string()
}

pub fn triton_error(message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// Checks a request as the server would; the message of its 4xx otherwise.
pub fn check(call: Call<'_>, body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Failed to deserialize the JSON body: {e}"))?;
    match call {
        Call::Tgi(..) => {
            v.get("inputs").and_then(Value::as_str).ok_or("Input validation error: `inputs` must be a string")?;
            let p = v.get("parameters").cloned().unwrap_or(Value::Null);
            if p.get("temperature").and_then(Value::as_f64).is_some_and(|t| t <= 0.0) {
                return Err("Input validation error: `temperature` must be strictly positive".into());
            }
            if p.get("max_new_tokens").and_then(Value::as_u64) == Some(0) {
                return Err("Input validation error: `max_new_tokens` must be strictly positive".into());
            }
        }
        Call::TritonGenerate(..) => {
            v.get("text_input").and_then(Value::as_str).ok_or("missing 'text_input' in the request")?;
        }
        Call::TritonInfer(_) => {
            let inputs = v.get("inputs").and_then(Value::as_array).ok_or("missing 'inputs' in the request")?;
            if !inputs.iter().any(|i| i.get("name").and_then(Value::as_str) == Some("text_input")) {
                return Err("expected input 'text_input'".into());
            }
        }
    }
    Ok(())
}

pub fn body(call: Call<'_>) -> Bytes {
    let text = PIECES.concat();
    let v = match call {
        Call::Tgi(..) => json!({ "generated_text": text,
            "details": { "finish_reason": "eos_token", "generated_tokens": PIECES.len(), "seed": null, "prefill": [], "tokens": [] } }),
        Call::TritonGenerate(model, _) => json!({ "model_name": model, "model_version": "1", "text_output": text }),
        Call::TritonInfer(model) => json!({ "model_name": model, "model_version": "1",
            "outputs": [{ "name": "text_output", "datatype": "BYTES", "shape": [1], "data": [text] }] }),
    };
    Bytes::from(v.to_string())
}

fn frame(v: Value) -> Bytes {
    Bytes::from(format!("data:{v}\n\n"))
}

pub fn stream_frames(call: Call<'_>) -> Vec<Bytes> {
    match call {
        Call::TritonGenerate(model, _) => PIECES
            .iter()
            .map(|p| frame(json!({ "model_name": model, "model_version": "1", "text_output": p })))
            .collect(),
        _ => {
            let mut frames: Vec<Bytes> = PIECES
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    frame(
                        json!({ "index": i + 1, "token": { "id": i + 1, "text": p, "logprob": -0.1, "special": false },
                        "generated_text": null, "details": null }),
                    )
                })
                .collect();
            frames.push(frame(json!({ "index": PIECES.len() + 1,
                "token": { "id": 2, "text": "</s>", "logprob": -0.1, "special": true },
                "generated_text": PIECES.concat(),
                "details": { "finish_reason": "eos_token", "generated_tokens": PIECES.len() + 1, "seed": null } })));
            frames
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/t1/deployments/v2/llms/llama-3-8b/generate"), Some(Call::Tgi("llama-3-8b", false)));
        assert_eq!(
            parse_path("/t1/deployments/v2/llms/llama-3-8b/generate_stream"),
            Some(Call::Tgi("llama-3-8b", true))
        );
        assert_eq!(parse_path("/v2/models/ensemble/generate_stream"), Some(Call::TritonGenerate("ensemble", true)));
        assert_eq!(parse_path("/v2/models/m/infer"), Some(Call::TritonInfer("m")));
        assert_eq!(parse_path("/v2/models//infer"), None);
        assert_eq!(parse_path("/v1/chat/completions"), None);
    }

    #[test]
    fn tgi_validates_temperature() {
        assert!(check(Call::Tgi("m", false), br#"{"inputs":"x","parameters":{"temperature":0}}"#).is_err());
        assert!(check(Call::Tgi("m", false), br#"{"inputs":"x","parameters":{"temperature":0.01}}"#).is_ok());
        assert!(check(Call::TritonInfer("m"), br#"{"inputs":[]}"#).is_err());
    }
}
