//! OpenAI embeddings → Google's, as LiteLLM sends them: Google AI Studio's
//! `models/{m}:batchEmbedContents` (one request per input) and Vertex AI's `{model}:predict`
//! (one instance per input). `dimensions` is `outputDimensionality`; a request's own
//! `task_type` (or `input_type`) is Google's task type. AI Studio reports no token counts;
//! Vertex reports each input's in `statistics.token_count`.

use serde_json::{json, Map, Value};

use super::TranslateError;

fn texts(req: &Map<String, Value>) -> Result<Vec<String>, TranslateError> {
    match req.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        }
        _ => Err(TranslateError::param(
            "input",
            "`input` is required: a string or a non-empty array of strings (Google embeds text, not token ids)",
        )),
    }
}

fn dimensions(req: &Map<String, Value>) -> Result<Option<u64>, TranslateError> {
    match req.get("dimensions") {
        None | Some(Value::Null) => Ok(None),
        Some(d) => d
            .as_u64()
            .filter(|n| (1..=65_536).contains(n))
            .map(Some)
            .ok_or_else(|| TranslateError::param("dimensions", "`dimensions` must be a positive integer")),
    }
}

fn task_type(req: &Map<String, Value>) -> Option<Value> {
    req.get("task_type").or_else(|| req.get("input_type")).filter(|v| v.is_string()).cloned()
}

fn object(openai: &Value) -> Result<&Map<String, Value>, TranslateError> {
    openai.as_object().ok_or_else(|| TranslateError::other("the request body must be a JSON object"))
}

fn base64(req: &Map<String, Value>) -> Result<bool, TranslateError> {
    crate::embedding::wants_base64(req).map_err(|e| TranslateError::param("encoding_format", e))
}

/// AI Studio's `batchEmbedContents` body, and whether base64 vectors were asked for.
pub fn studio_request(openai: &Value, model: &str) -> Result<(Value, bool), TranslateError> {
    let req = object(openai)?;
    let dims = dimensions(req)?;
    let task = task_type(req);
    let model = format!("models/{}", model.strip_prefix("models/").unwrap_or(model));
    let requests: Vec<Value> = texts(req)?
        .into_iter()
        .map(|t| {
            let mut r = json!({ "model": model, "content": { "parts": [{ "text": t }] } });
            if let Some(d) = dims {
                r["outputDimensionality"] = d.into();
            }
            if let Some(t) = &task {
                r["taskType"] = t.clone();
            }
            r
        })
        .collect();
    Ok((json!({ "requests": requests }), base64(req)?))
}

/// Vertex AI's `predict` body for a text-embedding model.
pub fn vertex_request(openai: &Value) -> Result<(Value, bool), TranslateError> {
    let req = object(openai)?;
    let task = task_type(req);
    let instances: Vec<Value> = texts(req)?
        .into_iter()
        .map(|t| {
            let mut i = json!({ "content": t });
            if let Some(t) = &task {
                i["task_type"] = t.clone();
            }
            i
        })
        .collect();
    let mut out = json!({ "instances": instances });
    if let Some(d) = dimensions(req)? {
        out["parameters"] = json!({ "outputDimensionality": d });
    }
    Ok((out, base64(req)?))
}

fn list(data: Vec<Value>, model: &str, prompt: u64) -> Value {
    json!({ "object": "list", "data": data, "model": model, "usage": { "prompt_tokens": prompt, "total_tokens": prompt } })
}

/// `{"embeddings": [{"values": […]}, …]}` as OpenAI's list (no token counts: usage 0).
pub fn studio_response(v: &Value, model: &str, base64: bool) -> Result<Value, TranslateError> {
    let vectors: Vec<Value> = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::other("no `embeddings` array"))?
        .iter()
        .map(|e| e.get("values").cloned().unwrap_or(Value::Null))
        .collect();
    let data = crate::embedding::data(&vectors, base64).map_err(TranslateError::other)?;
    Ok(list(data, model, 0))
}

/// `{"predictions": [{"embeddings": {"values": […], "statistics": {"token_count": n}}}, …]}`.
pub fn vertex_response(v: &Value, model: &str, base64: bool) -> Result<Value, TranslateError> {
    let predictions = v
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::other("no `predictions` array"))?;
    let mut tokens = 0u64;
    let mut vectors = Vec::with_capacity(predictions.len());
    for p in predictions {
        let e = p.get("embeddings").unwrap_or(&Value::Null);
        let count = e.get("statistics").and_then(|s| s.get("token_count")).and_then(Value::as_f64).unwrap_or(0.0);
        tokens = tokens.saturating_add(count.max(0.0) as u64);
        vectors.push(e.get("values").cloned().unwrap_or(Value::Null));
    }
    let data = crate::embedding::data(&vectors, base64).map_err(TranslateError::other)?;
    Ok(list(data, model, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn studio_batches_one_request_per_input() {
        let (out, b64) = studio_request(
            &json!({"input": ["a", "b"], "dimensions": 8, "task_type": "RETRIEVAL_QUERY"}),
            "text-embedding-004",
        )
        .unwrap();
        assert!(!b64);
        assert_eq!(out["requests"].as_array().unwrap().len(), 2);
        assert_eq!(
            out["requests"][1],
            json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]},
                "outputDimensionality": 8, "taskType": "RETRIEVAL_QUERY"})
        );
        let v = json!({"embeddings": [{"values": [0.5]}, {"values": [1.0]}]});
        let out = studio_response(&v, "g", false).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([1.0]));
        assert!(studio_request(&json!({"input": [[1, 2]]}), "m").is_err());
    }

    #[test]
    fn vertex_predicts_one_instance_per_input_and_counts_tokens() {
        let (out, b64) = vertex_request(&json!({"input": "hi", "dimensions": 4, "encoding_format": "base64"})).unwrap();
        assert!(b64);
        assert_eq!(out, json!({"instances": [{"content": "hi"}], "parameters": {"outputDimensionality": 4}}));
        let v = json!({"predictions": [
            {"embeddings": {"values": [0.5], "statistics": {"token_count": 3, "truncated": false}}},
            {"embeddings": {"values": [1.0], "statistics": {"token_count": 2.0, "truncated": false}}},
        ]});
        let out = vertex_response(&v, "g", true).unwrap();
        assert_eq!(out["usage"]["prompt_tokens"], 5);
        assert_eq!(out["data"][0]["embedding"], "AAAAPw==");
        assert!(vertex_response(&json!({}), "g", false).is_err());
    }
}
