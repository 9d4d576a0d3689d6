//! LiteLLM's `/rerank` request (Cohere's shape) → Cohere's `/v2/rerank`, and the answer back:
//! `results` best first with each document's text beside its score when `return_documents`
//! (LiteLLM's default, true), and Cohere's `meta` with its billed search units.

use serde_json::{json, Map, Value};

use super::TranslateError;

/// The `/v2/rerank` body. Documents given as objects are sent as their `text` (v2 takes
/// strings), others as their JSON.
pub fn rerank_request(req: &Value, model: &str) -> Result<Value, TranslateError> {
    let req = req.as_object().ok_or_else(|| TranslateError::other("the request body must be a JSON object"))?;
    let query =
        req.get("query").and_then(Value::as_str).filter(|q| !q.is_empty()).ok_or_else(|| {
            TranslateError::param("query", "`query` is required: the text to rank the documents against")
        })?;
    let documents: Vec<Value> = documents(req)?.into_iter().map(Value::String).collect();
    let mut out = json!({ "model": model, "query": query, "documents": documents });
    for key in ["top_n", "max_tokens_per_doc"] {
        match req.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| TranslateError::param(key, format!("`{key}` must be a positive integer")))?;
                out[key] = n.into();
            }
        }
    }
    Ok(out)
}

fn documents(req: &Map<String, Value>) -> Result<Vec<String>, TranslateError> {
    let docs = req
        .get("documents")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| TranslateError::param("documents", "`documents` is required: a non-empty array of texts"))?;
    Ok(docs
        .iter()
        .map(|d| match d {
            Value::String(s) => s.clone(),
            Value::Object(o) => {
                o.get("text").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| d.to_string())
            }
            other => other.to_string(),
        })
        .collect())
}

/// Cohere's answer as LiteLLM's `RerankResponse`, documents filled in from the request.
pub fn rerank_response(v: &Value, request: &[u8]) -> Result<Value, TranslateError> {
    let results = v.get("results").and_then(Value::as_array).ok_or_else(|| TranslateError::other("no `results`"))?;
    let req: Map<String, Value> = serde_json::from_slice(request).unwrap_or_default();
    let return_documents = req.get("return_documents").and_then(Value::as_bool).unwrap_or(true);
    let docs = documents(&req).unwrap_or_default();
    let results: Vec<Value> = results
        .iter()
        .map(|r| {
            let index = r.get("index").and_then(Value::as_u64).unwrap_or(0);
            let mut out =
                json!({ "index": index, "relevance_score": r.get("relevance_score").cloned().unwrap_or(json!(0)) });
            let text = usize::try_from(index).ok().and_then(|i| docs.get(i));
            if let (true, Some(text)) = (return_documents, text) {
                out["document"] = json!({ "text": text });
            }
            out
        })
        .collect();
    Ok(
        json!({ "id": v.get("id").cloned().unwrap_or(Value::Null), "results": results, "meta": v.get("meta").cloned().unwrap_or(json!({})) }),
    )
}

/// The search units Cohere billed for a rerank answer.
pub fn search_units(v: &Value) -> u64 {
    v.pointer("/meta/billed_units/search_units").and_then(Value::as_f64).map(|n| n.max(0.0) as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_strings_or_objects_and_answers_get_their_documents() {
        let req = json!({"model": "g", "query": "cat", "documents": ["a dog", {"text": "a cat"}], "top_n": 1, "return_documents": true});
        let out = rerank_request(&req, "rerank-v3.5").unwrap();
        assert_eq!(out, json!({"model": "rerank-v3.5", "query": "cat", "documents": ["a dog", "a cat"], "top_n": 1}));
        assert_eq!(rerank_request(&json!({"documents": ["x"]}), "m").unwrap_err().param.as_deref(), Some("query"));
        assert_eq!(
            rerank_request(&json!({"query": "x", "documents": []}), "m").unwrap_err().param.as_deref(),
            Some("documents")
        );
        assert_eq!(
            rerank_request(&json!({"query": "x", "documents": ["a"], "top_n": 0}), "m").unwrap_err().param.as_deref(),
            Some("top_n")
        );
        let answer = json!({"id": "r", "results": [{"index": 1, "relevance_score": 0.9}], "meta": {"billed_units": {"search_units": 1}}});
        let out = rerank_response(&answer, req.to_string().as_bytes()).unwrap();
        assert_eq!(out["results"][0], json!({"index": 1, "relevance_score": 0.9, "document": {"text": "a cat"}}));
        assert_eq!(search_units(&out), 1);
        let no_docs = json!({"query": "cat", "documents": ["a"], "return_documents": false});
        assert!(rerank_response(&answer, no_docs.to_string().as_bytes()).unwrap()["results"][0]
            .get("document")
            .is_none());
    }
}
