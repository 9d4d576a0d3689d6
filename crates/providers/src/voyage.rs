//! Voyage AI (`voyage/…`), as LiteLLM calls it: embeddings (`/v1/embeddings`, `dimensions` sent
//! as `output_dimension`, `input_type` passed on) and rerank (`/v1/rerank`, `top_n` sent as
//! `top_k`, the answer in LiteLLM's Cohere-shaped `RerankResponse`). Voyage has no chat: a chat
//! call answers 400. `api_base` defaults to `VOYAGE_API_BASE`, then `https://api.voyageai.com/v1`;
//! the key (`api_key` or `VOYAGE_API_KEY`) goes as a bearer token. Voyage counts only
//! `usage.total_tokens`, which is what its prices (per input token) bill.

use http::{HeaderName, Uri};
use serde_json::{json, Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

pub const DEFAULT_BASE: &str = "https://api.voyageai.com/v1";

/// The base a deployment calls: `api_base`, else `VOYAGE_API_BASE`, else Voyage's own.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> String {
    api_base
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .or_else(|| env("VOYAGE_API_BASE"))
        .unwrap_or_else(|| DEFAULT_BASE.to_string())
}

#[derive(Debug)]
pub struct Voyage {
    /// Embeddings; rerank goes to `rerank_url` with the same headers.
    address: Address,
    rerank_url: Uri,
    model: String,
}

impl Voyage {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let key =
            p.api_key.map(str::to_string).or_else(|| env("VOYAGE_API_KEY")).ok_or_else(|| {
                format!("{}.api_key: missing; set it (or VOYAGE_API_KEY) to a Voyage AI key", p.path())
            })?;
        let root = base(p.api_base, env);
        let root = root.trim_end_matches('/');
        let root = root.strip_suffix("/embeddings").unwrap_or(root);
        let url = format!("{root}/embeddings");
        let mut address = Address::new(p, url.clone(), url)?;
        address.headers.push(p.secret_header(HeaderName::from_static("authorization"), &format!("Bearer {key}"))?);
        Ok(Voyage { address, rerank_url: p.uri(format!("{root}/rerank"))?, model: p.model.upstream.clone() })
    }
}

fn object(v: &Value) -> Result<&Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))
}

fn positive(req: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=65_536).contains(n))
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("`{key}` must be a positive integer")).param(key)),
    }
}

/// The `/embeddings` body: floats asked for whatever the client's `encoding_format` (the gateway
/// encodes base64 itself, as OpenAI does).
fn embed_request(req: &Map<String, Value>, model: &str) -> Result<Value, ApiError> {
    let input = match req.get("input") {
        Some(Value::String(s)) => json!([s]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => json!(items),
        _ => {
            return Err(ApiError::bad_request(
                "`input` is required: a string or a non-empty array of strings (Voyage embeds text, not token ids)",
            )
            .param("input"))
        }
    };
    crate::embedding::wants_base64(req).map_err(|e| ApiError::bad_request(e).param("encoding_format"))?;
    let mut out = json!({ "input": input, "model": model });
    if let Some(d) = positive(req, "dimensions")? {
        out["output_dimension"] = d.into();
    }
    for key in ["input_type", "truncation", "output_dtype"] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            out[key] = v.clone();
        }
    }
    Ok(out)
}

fn documents(req: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let docs = req.get("documents").and_then(Value::as_array).filter(|d| !d.is_empty()).ok_or_else(|| {
        ApiError::bad_request("`documents` is required: a non-empty array of texts").param("documents")
    })?;
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

fn rerank_request(req: &Map<String, Value>, model: &str) -> Result<Value, ApiError> {
    let query = req.get("query").and_then(Value::as_str).filter(|q| !q.is_empty()).ok_or_else(|| {
        ApiError::bad_request("`query` is required: the text to rank the documents against").param("query")
    })?;
    let mut out = json!({ "query": query, "documents": documents(req)?, "model": model });
    if let Some(n) = positive(req, "top_n")? {
        out["top_k"] = n.into();
    }
    if let Some(t) = req.get("truncation").filter(|v| v.is_boolean()) {
        out["truncation"] = t.clone();
    }
    Ok(out)
}

fn total_tokens(v: &Value) -> u64 {
    v.pointer("/usage/total_tokens").and_then(Value::as_f64).map(|n| n.max(0.0) as u64).unwrap_or(0)
}

fn embed_response(v: &Value, meta: &AnswerMeta<'_>) -> Result<Value, String> {
    let mut items: Vec<&Value> = v.get("data").and_then(Value::as_array).ok_or("no `data` array")?.iter().collect();
    items.sort_by_key(|d| d.get("index").and_then(Value::as_u64).unwrap_or(0));
    let vectors: Vec<Value> = items.iter().map(|d| d.get("embedding").cloned().unwrap_or(Value::Null)).collect();
    let data = crate::embedding::data(&vectors, crate::embedding::wants_base64_in(meta.request))?;
    let tokens = total_tokens(v);
    Ok(json!({ "object": "list", "data": data, "model": meta.model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens } }))
}

/// Voyage's `data` as LiteLLM's `results`, documents from the request unless
/// `return_documents: false`; `usage` carries the tokens Voyage bills.
fn rerank_response(v: &Value, meta: &AnswerMeta<'_>) -> Result<Value, String> {
    let req: Map<String, Value> = serde_json::from_slice(meta.request).unwrap_or_default();
    let return_documents = req.get("return_documents").and_then(Value::as_bool).unwrap_or(true);
    let docs = documents(&req).unwrap_or_default();
    let results: Vec<Value> = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or("no `data` array")?
        .iter()
        .map(|r| {
            let index = r.get("index").and_then(Value::as_u64).unwrap_or(0);
            let mut out =
                json!({ "index": index, "relevance_score": r.get("relevance_score").cloned().unwrap_or(json!(0)) });
            if let (true, Some(text)) = (return_documents, usize::try_from(index).ok().and_then(|i| docs.get(i))) {
                out["document"] = json!({ "text": text });
            }
            out
        })
        .collect();
    let tokens = total_tokens(v);
    Ok(json!({
        "id": meta.id,
        "results": results,
        "meta": { "tokens": { "input_tokens": tokens, "output_tokens": 0 } },
        "usage": { "prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens },
    }))
}

impl ChatProvider for Voyage {
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::Embeddings | Endpoint::Rerank)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let req = object(&request)?;
        let (body, url) = match call.endpoint {
            Endpoint::Rerank => (rerank_request(req, &self.model)?, Some(self.rerank_url.clone())),
            Endpoint::Embeddings => (embed_request(req, &self.model)?, None),
            other => return Err(bad_param(None, format!("Voyage does not serve {}", other.route()))),
        };
        let mut out = self.address.request(false, crate::provider::json_body(&body));
        if let Some(url) = url {
            out.url = url;
        }
        Ok(out)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        let out = match meta.endpoint {
            Endpoint::Rerank => rerank_response(&parsed, meta),
            _ => embed_response(&parsed, meta),
        };
        out.map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    /// Voyage never streams: an empty OpenAI stream, never reached (the server only streams chat).
    fn stream_translator(&self, _meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::OpenAi(sluice_wire::sse::Parser::new(), None)
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::openai_shaped(&self.address.provider, status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta<'a>(endpoint: Endpoint, request: &'a [u8]) -> AnswerMeta<'a> {
        AnswerMeta { model: "group", id: "chatcmpl-1", created: 1, include_usage: false, endpoint, request }
    }

    #[test]
    fn embeddings_rename_dimensions_and_answer_openais_list() {
        let req = json!({"input": "hi", "dimensions": 256, "input_type": "query", "encoding_format": "base64"});
        let out = embed_request(req.as_object().unwrap(), "voyage-3").unwrap();
        assert_eq!(out, json!({"input": ["hi"], "model": "voyage-3", "output_dimension": 256, "input_type": "query"}));
        let answer = json!({"object": "list", "data": [{"object": "embedding", "embedding": [1.0], "index": 1},
            {"object": "embedding", "embedding": [0.5], "index": 0}], "model": "voyage-3", "usage": {"total_tokens": 7}});
        let body = br#"{"input":["a","b"]}"#;
        let out = embed_response(&answer, &meta(Endpoint::Embeddings, body)).unwrap();
        assert_eq!(out["data"][0]["embedding"], json!([0.5]), "ordered by index");
        assert_eq!(out["usage"]["prompt_tokens"], 7);
        assert!(embed_request(json!({"input": [[1]]}).as_object().unwrap(), "m").is_err());
    }

    #[test]
    fn rerank_sends_top_k_and_answers_cohere_shaped_results() {
        let req = json!({"query": "cat", "documents": ["dog", {"text": "cat"}], "top_n": 1});
        let out = rerank_request(req.as_object().unwrap(), "rerank-2").unwrap();
        assert_eq!(out, json!({"query": "cat", "documents": ["dog", "cat"], "model": "rerank-2", "top_k": 1}));
        let answer =
            json!({"object": "list", "data": [{"relevance_score": 0.9, "index": 1}], "usage": {"total_tokens": 20}});
        let body = req.to_string();
        let out = rerank_response(&answer, &meta(Endpoint::Rerank, body.as_bytes())).unwrap();
        assert_eq!(out["results"], json!([{"index": 1, "relevance_score": 0.9, "document": {"text": "cat"}}]));
        assert_eq!(out["usage"]["prompt_tokens"], 20);
        assert_eq!(rerank_request(json!({"documents": ["x"]}).as_object().unwrap(), "m").unwrap_err().status, 400);
    }
}
