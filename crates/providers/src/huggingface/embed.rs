//! Hugging Face embeddings as LiteLLM's `HuggingFaceEmbedding` makes them: the feature-extraction
//! task, `{"inputs": [...]}` POSTed to `api_base` exactly (an Inference Endpoint, a TEI server's
//! `/embed` or its root), else to the router's `hf-inference/pipeline/{task}/{model}`, answered
//! with a list of vectors.
//!
//! The task is the request's `input_type` when it names one of LiteLLM's; without one LiteLLM
//! asks the Hub for the model's `pipeline_tag` on every call, which sluice does not: the task is
//! `feature-extraction`. The similarity and rerank tasks answer scores, not vectors, and are
//! refused (`/rerank` is the route for ranking). Hugging Face counts no tokens: the usage is
//! LiteLLM's estimate, the inputs' `cl100k_base` tokens.

use http::Uri;
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

/// LiteLLM's embedding tasks (`hf_tasks_embeddings`).
const TASKS: &[&str] = &["sentence-similarity", "feature-extraction", "rerank", "embed", "similarity"];

/// How deep a vector may be nested in an answer (a batch of token-level vectors is three).
const MAX_NESTING: usize = 4;

#[derive(Debug)]
pub struct Embed {
    /// Headers and timeouts; `url` is `api_base` when one is set.
    address: Address,
    /// Without `api_base`, the router's pipeline URL is made per task.
    router: Option<String>,
    model: String,
    drop_params: bool,
}

impl Embed {
    /// `base` is `api_base` (or the environment's), `None` for the router.
    pub fn new(
        p: &Params<'_>,
        base: Option<&str>,
        auth: Option<(http::HeaderName, http::HeaderValue)>,
    ) -> Result<Self, String> {
        let model = p.model.upstream.clone();
        let url = match base {
            Some(b) => b.to_string(),
            None => pipeline_url(super::ROUTER, "feature-extraction", &model),
        };
        let mut address = Address::new(p, url.clone(), url)?;
        address.headers.extend(auth);
        let router = base.is_none().then(|| super::ROUTER.to_string());
        Ok(Embed { address, router, model, drop_params: p.drop_params })
    }

    fn url(&self, task: &str) -> Result<Uri, ApiError> {
        match &self.router {
            None => Ok(self.address.url.clone()),
            Some(root) => pipeline_url(root, task, &self.model).parse().map_err(|_| {
                bad_param(Some("model".into()), format!("the model name {:?} cannot go in a URL", self.model))
            }),
        }
    }
}

fn pipeline_url(root: &str, task: &str, model: &str) -> String {
    format!("{root}/hf-inference/pipeline/{task}/{model}")
}

/// The task a request asks for: its `input_type`, else feature extraction.
pub fn task(req: &serde_json::Map<String, Value>) -> Result<&'static str, ApiError> {
    let Some(asked) = req.get("input_type").filter(|v| !v.is_null()) else { return Ok("feature-extraction") };
    let task = asked.as_str().and_then(|a| TASKS.iter().find(|t| **t == a)).ok_or_else(|| {
        bad_param(Some("input_type".into()), format!("Invalid input_type={asked}. Expected one of={TASKS:?}"))
    })?;
    match *task {
        "feature-extraction" | "embed" => Ok(task),
        other => Err(bad_param(
            Some("input_type".into()),
            format!(
                "input_type={other} answers scores, not embeddings; use feature-extraction here, or /rerank to rank texts"
            ),
        )),
    }
}

/// The feature-extraction body, and the task it is sent to.
pub fn request(openai: &Value, drop_params: bool) -> Result<(Value, &'static str), ApiError> {
    let (req, texts) = crate::embedding::checked(openai, "huggingface", "Hugging Face", drop_params)?;
    Ok((serde_json::json!({ "inputs": texts }), task(req)?))
}

/// One vector of an answer: a list of numbers as it is; a nested one (token-level features)
/// by its first element, as LiteLLM takes `embedding[0][0]`.
fn vector(mut v: &Value) -> Result<&Value, String> {
    for _ in 0..MAX_NESTING {
        match v.as_array().and_then(|a| a.first()) {
            Some(first) if first.is_array() => v = first,
            Some(_) => return Ok(v),
            None => return Err("an embedding that is not a non-empty list of numbers".into()),
        }
    }
    Err("an embedding nested deeper than a feature-extraction answer".into())
}

/// A feature-extraction answer — a list with one vector per input (a bare vector for one) — as
/// OpenAI's list, the tokens estimated.
pub fn response(v: &Value, meta: &AnswerMeta<'_>) -> Result<Value, String> {
    let items = v.as_array().ok_or("not a list of vectors")?;
    let vectors: Vec<Value> = match items.first() {
        Some(first) if first.is_number() => vec![v.clone()],
        _ => items.iter().map(|i| vector(i).cloned()).collect::<Result<_, _>>()?,
    };
    let texts = crate::embedding::texts_in(meta.request);
    crate::embedding::answer(&vectors, meta, crate::embedding::estimated_tokens(texts.iter().map(String::as_str)))
}

impl ChatProvider for Embed {
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Embeddings
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let (body, task) = request(&parse_request(call.body)?, self.drop_params)?;
        let mut out = self.address.request(false, crate::provider::json_body(&body));
        out.url = self.url(task)?;
        Ok(out)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        response(&parsed, meta).map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    /// Embeddings never stream: an empty OpenAI stream, never reached.
    fn stream_translator(&self, _meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::OpenAi(sluice_wire::sse::Parser::new(), None)
    }

    /// `{"error": "…"}` (the Inference API, TEI), classified by status.
    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::openai_shaped(&self.address.provider, status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::embedding::test_meta as meta;

    #[test]
    fn the_task_is_input_type_or_feature_extraction() {
        let (body, task) = request(&json!({"model": "g", "input": "hi", "encoding_format": "base64"}), false).unwrap();
        assert_eq!((body, task), (json!({"inputs": ["hi"]}), "feature-extraction"));
        assert_eq!(request(&json!({"input": ["a"], "input_type": "embed"}), false).unwrap().1, "embed");
        let e = request(&json!({"input": "a", "input_type": "sentence-similarity"}), false).unwrap_err();
        assert!(e.message.contains("/rerank"), "{}", e.message);
        let e = request(&json!({"input": "a", "input_type": "search_query"}), false).unwrap_err();
        assert!(e.message.contains("Invalid input_type"), "{}", e.message);
        assert!(request(&json!({"input": [[1, 2]]}), false).is_err());
        assert_eq!(
            pipeline_url(super::super::ROUTER, "feature-extraction", "BAAI/bge-small-en-v1.5"),
            "https://router.huggingface.co/hf-inference/pipeline/feature-extraction/BAAI/bge-small-en-v1.5"
        );
    }

    #[test]
    fn answers_of_vectors_bare_vectors_and_token_features() {
        let body = br#"{"input":["hello world","hi"],"encoding_format":"base64"}"#;
        let out = response(&json!([[1.0, -2.0], [0.5, 0.5]]), &meta(body)).unwrap();
        assert_eq!(out["data"][0]["embedding"], "AACAPwAAAMA=");
        assert_eq!(out["usage"]["prompt_tokens"], 3);
        let out = response(&json!([0.5, 1.0]), &meta(br#"{"input":"a"}"#)).unwrap();
        assert_eq!(out["data"][0]["embedding"], json!([0.5, 1.0]), "one input's bare vector");
        let out = response(&json!([[[0.25, 0.5], [9.0, 9.0]]]), &meta(br#"{"input":"a"}"#)).unwrap();
        assert_eq!(out["data"][0]["embedding"], json!([0.25, 0.5]), "the first token's features");
        assert!(response(&json!({"error": "x"}), &meta(b"{}")).is_err());
        assert!(response(&json!([[[[[[1.0]]]]]]), &meta(b"{}")).is_err());
        assert!(response(&json!([[]]), &meta(b"{}")).is_err());
    }
}
