//! A fake Bedrock InvokeModel (`POST /model/{modelId}/invoke`) for the embedding models, in
//! their own request and answer shapes (AWS's model parameter references):
//!
//! - Amazon Titan Text Embeddings v1 / G1: `{"inputText"}` → `{"embedding", "inputTextTokenCount"}`
//!   (1536 values);
//! - Titan Text Embeddings v2: `dimensions` (256, 512, 1024 — the default), `normalize`,
//!   `embeddingTypes` → also `embeddingsByType`;
//! - Titan Multimodal Embeddings: `inputText` and/or `inputImage`, `embeddingConfig.
//!   outputEmbeddingLength` (256, 384, 1024 — the default);
//! - Cohere Embed v3: `{"texts", "input_type"}` → `embeddings` as a list (`embeddings_floats`),
//!   or by type when `embedding_types` is given (`embeddings_by_type`), with no token counts.
//!
//! Titan counts the words of its text as tokens (at least one). Other models answer Bedrock's
//! 400 ValidationException, as a chat model does to an embedding body.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::vectors;

/// A Titan model's request read, or Bedrock's 400 message.
fn titan(model: &str, v: &Value) -> Result<Value, String> {
    let text = v.get("inputText").and_then(Value::as_str);
    let image = v.get("inputImage").and_then(Value::as_str);
    let (default, allowed): (u64, &[u64]) = match model {
        "amazon.titan-embed-text-v2:0" => (1024, &[256, 512, 1024]),
        "amazon.titan-embed-image-v1" => (1024, &[256, 384, 1024]),
        _ => (1536, &[]),
    };
    let length = match model {
        "amazon.titan-embed-image-v1" => v.pointer("/embeddingConfig/outputEmbeddingLength"),
        _ => v.get("dimensions"),
    };
    let length = match length {
        None => default,
        Some(n) => n.as_u64().filter(|n| allowed.contains(n)).ok_or_else(|| {
            format!(
                "Malformed input request: {n} is not a valid output length, please reformat your input and try again."
            )
        })?,
    };
    let text = match (text, image) {
        (None, None) => {
            return Err("Malformed input request: required key [inputText] not found, please reformat your input and try again.".into())
        }
        (_, Some(_)) if model != "amazon.titan-embed-image-v1" => {
            return Err("Malformed input request: extraneous key [inputImage] is not permitted, please reformat your input and try again.".into())
        }
        (t, _) => t.unwrap_or(""),
    };
    let vector = vectors::fake(1, length as usize).remove(0);
    let tokens = match text.is_empty() {
        true => 0,
        false => vectors::words(&[text]),
    };
    let mut out = json!({ "embedding": vector, "inputTextTokenCount": tokens });
    if let Some(types) = v.get("embeddingTypes").and_then(Value::as_array) {
        if types.iter().any(|t| t == "float") {
            out["embeddingsByType"] = json!({ "float": out["embedding"].clone() });
        }
    }
    Ok(out)
}

/// Cohere Embed's request read, or Bedrock's 400 message.
fn cohere(v: &Value) -> Result<Value, String> {
    let texts = v.get("texts").and_then(Value::as_array).filter(|t| t.iter().all(Value::is_string)).ok_or(
        "Malformed input request: #: required key [texts] not found, please reformat your input and try again.",
    )?;
    v.get("input_type").and_then(Value::as_str).ok_or(
        "Malformed input request: #: required key [input_type] not found, please reformat your input and try again.",
    )?;
    let length = v.get("output_dimension").and_then(Value::as_u64).filter(|n| (1..=4096).contains(n)).unwrap_or(1024);
    let vectors = vectors::fake(texts.len(), length as usize);
    let by_type = v.get("embedding_types").and_then(Value::as_array).is_some();
    let embeddings = match by_type {
        true => json!({ "float": vectors }),
        false => json!(vectors),
    };
    let kind = if by_type { "embeddings_by_type" } else { "embeddings_floats" };
    Ok(json!({ "id": "mock-embed", "embeddings": embeddings, "texts": texts, "response_type": kind }))
}

/// The answer body for an InvokeModel call to `model` (decoded), or Bedrock's 400 message.
pub fn body(model: &str, body: &[u8]) -> Result<Bytes, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Malformed input request: {e}"))?;
    // A cross-region inference profile names its model after the region prefix.
    let base = ["us.", "eu.", "apac."].iter().find_map(|p| model.strip_prefix(p)).unwrap_or(model);
    let out = match base {
        m if m.starts_with("amazon.titan-embed") => titan(m, &v)?,
        m if m.starts_with("cohere.embed") => cohere(&v)?,
        _ => {
            return Err(format!(
                "Malformed input request: the mock's InvokeModel serves embedding models only, not {model}"
            ))
        }
    };
    Ok(Bytes::from(out.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(model: &str, req: Value) -> Result<Value, String> {
        body(model, req.to_string().as_bytes()).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn titan_answers_one_vector_with_its_token_count() {
        let v1 = answer("amazon.titan-embed-text-v1", json!({"inputText": "hello there world"})).unwrap();
        assert_eq!((v1["embedding"].as_array().unwrap().len(), v1["inputTextTokenCount"].as_u64()), (1536, Some(3)));
        let v2 = answer(
            "amazon.titan-embed-text-v2:0",
            json!({"inputText": "a", "dimensions": 256, "embeddingTypes": ["float"]}),
        )
        .unwrap();
        assert_eq!(v2["embeddingsByType"]["float"].as_array().unwrap().len(), 256);
        assert!(answer("amazon.titan-embed-text-v2:0", json!({"inputText": "a", "dimensions": 300})).is_err());
        assert!(answer("amazon.titan-embed-text-v1", json!({"texts": ["a"]})).is_err());
        let image = answer(
            "amazon.titan-embed-image-v1",
            json!({"inputImage": "iVBO", "embeddingConfig": {"outputEmbeddingLength": 384}}),
        )
        .unwrap();
        assert_eq!(
            (image["embedding"].as_array().unwrap().len(), image["inputTextTokenCount"].as_u64()),
            (384, Some(0))
        );
    }

    #[test]
    fn cohere_answers_every_text_in_the_shape_asked() {
        let floats =
            answer("cohere.embed-english-v3", json!({"texts": ["a", "b"], "input_type": "search_query"})).unwrap();
        assert_eq!(
            (floats["response_type"].as_str(), floats["embeddings"].as_array().unwrap().len()),
            (Some("embeddings_floats"), 2)
        );
        let typed = answer(
            "us.cohere.embed-multilingual-v3",
            json!({"texts": ["a"], "input_type": "search_document", "embedding_types": ["float"]}),
        )
        .unwrap();
        assert_eq!(typed["embeddings"]["float"].as_array().unwrap().len(), 1);
        assert!(answer("cohere.embed-english-v3", json!({"texts": ["a"]})).is_err());
        assert!(answer("anthropic.claude-3-haiku-20240307-v1:0", json!({"inputText": "a"})).is_err());
    }
}
