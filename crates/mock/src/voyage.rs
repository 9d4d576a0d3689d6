//! A fake Voyage AI API under `/voyage/v1/…` (Voyage's own paths are `/v1/embeddings` and
//! `/v1/rerank`, which the mock's OpenAI routes already hold: a test points `api_base` at
//! `<mock>/voyage/v1`). Answers in Voyage's documented shapes: embeddings as an OpenAI-like list
//! whose `usage` has only `total_tokens`; rerank as `{"object": "list", "data": [{"relevance_score",
//! "index", "document"?}], "model", "usage": {"total_tokens"}}` with `top_k`; errors as
//! `{"detail": "…"}`. Every call needs a bearer key.

use bytes::Bytes;
use serde_json::{json, Value};

fn object(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Request body is not valid JSON: {e}"))?;
    v.get("model").and_then(Value::as_str).ok_or("model is required")?;
    Ok(v)
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, String> {
    match v.get(key) {
        Some(Value::String(s)) if key == "input" => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if !a.is_empty() => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or(format!("{key} must be strings"))).collect()
        }
        _ => Err(format!("{key} is required")),
    }
}

fn words(texts: &[String]) -> usize {
    texts.iter().map(|t| t.split_whitespace().count().max(1)).sum()
}

pub fn embed_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    if v.get("dimensions").is_some() {
        return Err("Unknown field 'dimensions'; use output_dimension".into());
    }
    let inputs = strings(&v, "input")?;
    let length = v.get("output_dimension").and_then(Value::as_u64).unwrap_or(8).clamp(1, 4096) as usize;
    let data: Vec<Value> = (0..inputs.len())
        .map(|i| {
            let e: Vec<f64> = (0..length).map(|j| ((i + j) % 8) as f64 / 8.0 - 0.5).collect();
            json!({ "object": "embedding", "embedding": e, "index": i })
        })
        .collect();
    Ok(Bytes::from(
        json!({ "object": "list", "data": data, "model": v["model"], "usage": { "total_tokens": words(&inputs) } })
            .to_string(),
    ))
}

pub fn rerank_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    if v.get("top_n").is_some() {
        return Err("Unknown field 'top_n'; use top_k".into());
    }
    let query = v.get("query").and_then(Value::as_str).ok_or("query is required")?.to_lowercase();
    let docs = strings(&v, "documents")?;
    let q: Vec<&str> = query.split_whitespace().collect();
    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let shared = d.split_whitespace().filter(|w| q.contains(&w.to_lowercase().as_str())).count();
            (i, (shared as f64 + 1.0) / (q.len() as f64 + 2.0))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(k) = v.get("top_k").and_then(Value::as_u64) {
        scored.truncate(usize::try_from(k).unwrap_or(usize::MAX));
    }
    let with_docs = v.get("return_documents").and_then(Value::as_bool).unwrap_or(false);
    let data: Vec<Value> = scored
        .iter()
        .map(|(i, s)| {
            let mut r = json!({ "relevance_score": s, "index": i });
            if with_docs {
                r["document"] = docs[*i].clone().into();
            }
            r
        })
        .collect();
    let tokens = words(&docs) + q.len();
    Ok(Bytes::from(
        json!({ "object": "list", "data": data, "model": v["model"], "usage": { "total_tokens": tokens } }).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let v: Value = serde_json::from_slice(
            &embed_body(br#"{"model":"voyage-3","input":["a b"],"output_dimension":2}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["data"][0]["embedding"], json!([-0.5, -0.375]));
        assert_eq!(v["usage"], json!({"total_tokens": 2}));
        assert!(embed_body(br#"{"model":"m","input":"x","dimensions":2}"#).is_err());
        let v: Value = serde_json::from_slice(
            &rerank_body(br#"{"model":"rerank-2","query":"red cat","documents":["dog","red cat"],"top_k":1}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["data"][0]["index"], 1);
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert!(rerank_body(br#"{"model":"m","query":"x","documents":["a"],"top_n":1}"#).is_err());
    }
}
