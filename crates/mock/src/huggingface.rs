//! A fake Hugging Face feature extraction, as LiteLLM's embeddings call it: the router's
//! `POST /hf-inference/pipeline/feature-extraction/{model}` (and the newer
//! `/hf-inference/models/{model}/pipeline/feature-extraction`), which needs a bearer token, and a
//! Text Embeddings Inference server's `POST /embed` (no key). The body is `{"inputs": "…" | […],
//! "normalize"?, "truncate"?}`; the answer a list of vectors, one per input (a bare vector for a
//! string). Errors are `{"error": "…"}`, TEI's with an `error_type`.

use bytes::Bytes;
use serde_json::{json, Value};

/// The length of every vector answered.
pub const LENGTH: usize = 8;

/// Where a feature-extraction request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door<'a> {
    /// The router's `hf-inference` pipeline, with the model the path names.
    Router(&'a str),
    /// A TEI server's `/embed`.
    Tei,
}

pub fn parse_path(path: &str) -> Option<Door<'_>> {
    if path == "/embed" {
        return Some(Door::Tei);
    }
    let model = match path.strip_prefix("/hf-inference/pipeline/feature-extraction/") {
        Some(model) => model,
        None => path.strip_prefix("/hf-inference/models/")?.strip_suffix("/pipeline/feature-extraction")?,
    };
    (!model.is_empty()).then_some(Door::Router(model))
}

pub fn error_body(door: Door<'_>, message: &str) -> String {
    match door {
        Door::Tei => json!({ "error": message, "error_type": "Validation" }).to_string(),
        Door::Router(_) => json!({ "error": message }).to_string(),
    }
}

/// The vectors for a feature-extraction body, or why the server refuses it (a 422 for TEI, a
/// 400 for the router).
pub fn body(body: &[u8]) -> Result<Bytes, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Failed to parse the request body as JSON: {e}"))?;
    let answer = match v.get("inputs") {
        Some(Value::String(_)) => json!(crate::vectors::fake(1, LENGTH)[0]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            json!(crate::vectors::fake(items.len(), LENGTH))
        }
        _ => return Err("Input validation error: `inputs` must be a string or a non-empty list of strings".into()),
    };
    Ok(Bytes::from(answer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_answers() {
        assert_eq!(
            parse_path("/hf-inference/pipeline/feature-extraction/BAAI/bge-small"),
            Some(Door::Router("BAAI/bge-small"))
        );
        assert_eq!(
            parse_path("/hf-inference/models/BAAI/bge-small/pipeline/feature-extraction"),
            Some(Door::Router("BAAI/bge-small"))
        );
        assert_eq!(parse_path("/embed"), Some(Door::Tei));
        assert_eq!(parse_path("/hf-inference/pipeline/feature-extraction/"), None);
        let many: Value = serde_json::from_slice(&body(br#"{"inputs":["a","b"]}"#).unwrap()).unwrap();
        assert_eq!(many.as_array().unwrap().len(), 2);
        let one: Value = serde_json::from_slice(&body(br#"{"inputs":"a"}"#).unwrap()).unwrap();
        assert_eq!(one.as_array().unwrap().len(), LENGTH);
        assert!(body(br#"{"inputs":[1]}"#).is_err());
        assert!(error_body(Door::Tei, "x").contains("error_type"));
    }
}
