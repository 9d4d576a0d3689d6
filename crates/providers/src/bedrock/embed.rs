//! Bedrock embeddings through InvokeModel (`POST /model/{id}/invoke`), as LiteLLM's Bedrock
//! embedding handler makes them: Amazon Titan takes one text per call (`{"inputText"}`), so a
//! list is several calls whose vectors and `inputTextTokenCount`s are joined; Cohere Embed takes
//! every text in one call (`{"texts", "input_type"}`) and reports no tokens, so they are
//! estimated with `cl100k_base` as LiteLLM does.
//!
//! Nothing here does I/O: the provider sends one body per call and joins the answers.

use serde_json::{json, Map, Value};
use sluice_wire::ApiError;

use crate::provider::AnswerMeta;

/// The most texts one Titan request may carry: each is its own upstream call, made one after
/// another within the request's timeout (and the server's bound on exchanges).
pub const MAX_TITAN_TEXTS: usize = 256;

/// The embedding models served through InvokeModel, by request and answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedModel {
    /// `amazon.titan-embed-text-v1`, `amazon.titan-embed-g1-text-02`: `{"inputText"}` only.
    TitanG1,
    /// `amazon.titan-embed-text-v2:0`: `dimensions` (256, 512, 1024) and `normalize`.
    TitanV2,
    /// `amazon.titan-embed-image-v1`: a text or a base64 image, `embeddingConfig`.
    TitanImage,
    /// `cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, …: all texts in one call.
    Cohere,
}

impl EmbedModel {
    /// The embedding model a Bedrock model id names, if any. A cross-region inference profile
    /// (`us.cohere.embed-…`) names its model after the region prefix.
    pub fn of(model_id: &str) -> Option<EmbedModel> {
        let base = match model_id.split_once('.') {
            Some((prefix, rest)) if prefix.len() <= 4 && !matches!(prefix, "amazon" | "cohere") => rest,
            _ => model_id,
        };
        match base {
            "amazon.titan-embed-text-v1" | "amazon.titan-embed-g1-text-02" => Some(EmbedModel::TitanG1),
            "amazon.titan-embed-text-v2:0" => Some(EmbedModel::TitanV2),
            "amazon.titan-embed-image-v1" => Some(EmbedModel::TitanImage),
            b if b.starts_with("cohere.embed") => Some(EmbedModel::Cohere),
            _ => None,
        }
    }

    /// Whether the model takes one text per call.
    pub fn one_text_per_call(self) -> bool {
        self != EmbedModel::Cohere
    }

    fn name(self) -> &'static str {
        match self {
            EmbedModel::TitanG1 | EmbedModel::TitanV2 => "Amazon Titan Text Embeddings",
            EmbedModel::TitanImage => "Amazon Titan Multimodal Embeddings",
            EmbedModel::Cohere => "Cohere Embed on Bedrock",
        }
    }
}

/// The InvokeModel bodies of an OpenAI embeddings request, in order: one per text for Titan, one
/// for all texts for Cohere. A 400 for what the model cannot take.
pub fn invoke_bodies(model: EmbedModel, openai: &Value, drop_params: bool) -> Result<Vec<Value>, ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    crate::embedding::wants_base64(req).map_err(|e| ApiError::bad_request(e).param("encoding_format"))?;
    let texts = crate::embedding::texts(req, model.name())?;
    if model == EmbedModel::Cohere {
        return Ok(vec![cohere_body(req, texts)?]);
    }
    if texts.len() > MAX_TITAN_TEXTS {
        return Err(ApiError::bad_request(format!(
            "{} embeds one text per call; send at most {MAX_TITAN_TEXTS} texts per request (this one has {})",
            model.name(),
            texts.len()
        ))
        .param("input"));
    }
    let options = titan_options(model, req, drop_params)?;
    Ok(texts
        .into_iter()
        .map(|text| {
            let mut body = options.clone();
            match image_base64(model, &text) {
                Some(image) => body.insert("inputImage".into(), image.into()),
                None => body.insert("inputText".into(), text.into()),
            };
            Value::Object(body)
        })
        .collect())
}

/// What every Titan call of a request carries besides its text: v2's `dimensions` and
/// `normalize`, the multimodal model's `embeddingConfig`. v1 takes nothing: `dimensions` is
/// LiteLLM's unsupported-parameter 400 unless `drop_params`.
fn titan_options(
    model: EmbedModel,
    req: &Map<String, Value>,
    drop_params: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let dimensions = req.get("dimensions").filter(|v| !v.is_null());
    let allowed: &[u64] = match model {
        EmbedModel::TitanV2 => &[256, 512, 1024],
        EmbedModel::TitanImage => &[256, 384, 1024],
        _ => &[],
    };
    if let Some(d) = dimensions {
        if allowed.is_empty() {
            if !drop_params {
                return Err(crate::textgen::unsupported("bedrock", "dimensions"));
            }
        } else {
            let n = d.as_u64().filter(|n| allowed.contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!("{} takes `dimensions` {allowed:?}; got {d}", model.name()))
                    .param("dimensions")
            })?;
            match model {
                EmbedModel::TitanImage => out.insert("embeddingConfig".into(), json!({ "outputEmbeddingLength": n })),
                _ => out.insert("dimensions".into(), n.into()),
            };
        }
    }
    if model == EmbedModel::TitanV2 {
        match req.get("normalize") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => {
                out.insert("normalize".into(), (*b).into());
            }
            Some(_) => return Err(ApiError::bad_request("`normalize` must be true or false").param("normalize")),
        }
    }
    Ok(out)
}

/// The base64 of an image input to the multimodal model: a `data:image/…;base64,` URL, as
/// LiteLLM recognises one. Anything else is text.
fn image_base64(model: EmbedModel, input: &str) -> Option<String> {
    if model != EmbedModel::TitanImage {
        return None;
    }
    let (head, data) = input.strip_prefix("data:image/")?.split_once(',')?;
    head.ends_with(";base64").then(|| data.to_string())
}

/// Cohere's body: the texts, `input_type` (LiteLLM's default `search_document`), `truncate`, and
/// float vectors asked for explicitly so the answer's shape is known (base64 is encoded here).
fn cohere_body(req: &Map<String, Value>, texts: Vec<String>) -> Result<Value, ApiError> {
    let input_type = match req.get("input_type") {
        None | Some(Value::Null) => "search_document",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::bad_request("`input_type` must be a string").param("input_type")),
    };
    let mut out = json!({ "texts": texts, "input_type": input_type, "embedding_types": ["float"] });
    if let Some(t) = req.get("truncate").filter(|v| !v.is_null()) {
        out["truncate"] = t.clone();
    }
    if let Some(d) = req.get("dimensions").filter(|v| !v.is_null()) {
        let n = d
            .as_u64()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(|| ApiError::bad_request("`dimensions` must be a positive integer").param("dimensions"))?;
        out["output_dimension"] = n.into();
    }
    Ok(out)
}

/// The OpenAI answer for the InvokeModel answers of one request, in order.
pub fn answer(model: EmbedModel, answers: &[Value], meta: &AnswerMeta<'_>) -> Result<Value, String> {
    if model == EmbedModel::Cohere {
        let [one] = answers else { return Err("more than one Cohere answer for one request".into()) };
        let vectors = one
            .get("embeddings")
            .and_then(|e| e.get("float").or(Some(e)))
            .and_then(Value::as_array)
            .ok_or("no `embeddings` array")?;
        // Bedrock's Cohere answer has no token counts: LiteLLM counts the texts itself.
        let texts = crate::embedding::texts_in(meta.request);
        let tokens = crate::embedding::estimated_tokens(texts.iter().map(String::as_str));
        return crate::embedding::answer(vectors, meta, tokens);
    }
    let mut vectors = Vec::with_capacity(answers.len());
    let mut tokens: u64 = 0;
    for a in answers {
        let vector = a
            .get("embedding")
            .or_else(|| a.pointer("/embeddingsByType/float"))
            .ok_or("an answer with no `embedding`")?;
        vectors.push(vector.clone());
        let count = a.get("inputTextTokenCount").and_then(Value::as_u64).unwrap_or(0);
        tokens = tokens.saturating_add(count);
    }
    crate::embedding::answer(&vectors, meta, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::test_meta;

    #[test]
    fn models_by_id() {
        assert_eq!(EmbedModel::of("amazon.titan-embed-text-v1"), Some(EmbedModel::TitanG1));
        assert_eq!(EmbedModel::of("amazon.titan-embed-text-v2:0"), Some(EmbedModel::TitanV2));
        assert_eq!(EmbedModel::of("amazon.titan-embed-image-v1"), Some(EmbedModel::TitanImage));
        assert_eq!(EmbedModel::of("cohere.embed-english-v3"), Some(EmbedModel::Cohere));
        assert_eq!(EmbedModel::of("us.cohere.embed-multilingual-v3"), Some(EmbedModel::Cohere));
        assert_eq!(EmbedModel::of("anthropic.claude-3-haiku-20240307-v1:0"), None);
        assert_eq!(EmbedModel::of("cohere.command-r-v1:0"), None);
        assert_eq!(
            super::super::invoke_url(Some("http://127.0.0.1:9/"), "r", "amazon.titan-embed-text-v2:0"),
            "http://127.0.0.1:9/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
        assert_eq!(
            super::super::invoke_url(None, "eu-west-1", "cohere.embed-english-v3"),
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/cohere.embed-english-v3/invoke"
        );
    }

    #[test]
    fn titan_sends_one_text_per_call() {
        let req = json!({"input": ["a", "b"], "dimensions": 256, "normalize": false, "encoding_format": "base64"});
        let bodies = invoke_bodies(EmbedModel::TitanV2, &req, false).unwrap();
        assert_eq!(
            bodies,
            vec![
                json!({"inputText": "a", "dimensions": 256, "normalize": false}),
                json!({"inputText": "b", "dimensions": 256, "normalize": false})
            ]
        );
        let bad = invoke_bodies(EmbedModel::TitanV2, &json!({"input": "a", "dimensions": 300}), false).unwrap_err();
        assert_eq!(bad.param.as_deref(), Some("dimensions"));
        // v1 takes no parameters: LiteLLM's unsupported-parameter 400, or dropped.
        let v1 = json!({"input": "a", "dimensions": 256});
        assert!(invoke_bodies(EmbedModel::TitanG1, &v1, false).unwrap_err().message.contains("dimensions"));
        assert_eq!(invoke_bodies(EmbedModel::TitanG1, &v1, true).unwrap(), vec![json!({"inputText": "a"})]);
        let many = json!({ "input": vec!["x"; MAX_TITAN_TEXTS + 1] });
        assert_eq!(invoke_bodies(EmbedModel::TitanG1, &many, false).unwrap_err().status, 400);
        assert!(invoke_bodies(EmbedModel::TitanG1, &json!({"input": [1, 2]}), false).is_err());
    }

    #[test]
    fn the_multimodal_model_takes_images_as_data_urls() {
        let req = json!({"input": ["a cat", "data:image/png;base64,iVBORw0KGgo="], "dimensions": 384});
        let bodies = invoke_bodies(EmbedModel::TitanImage, &req, false).unwrap();
        assert_eq!(bodies[0], json!({"inputText": "a cat", "embeddingConfig": {"outputEmbeddingLength": 384}}));
        assert_eq!(bodies[1]["inputImage"], "iVBORw0KGgo=");
        assert_eq!(bodies[1].get("inputText"), None);
    }

    #[test]
    fn cohere_sends_every_text_in_one_call() {
        let req = json!({"input": ["a", "b"], "input_type": "search_query", "dimensions": 512});
        assert_eq!(
            invoke_bodies(EmbedModel::Cohere, &req, false).unwrap(),
            vec![json!({"texts": ["a", "b"], "input_type": "search_query", "embedding_types": ["float"],
                "output_dimension": 512})]
        );
        let plain = invoke_bodies(EmbedModel::Cohere, &json!({"input": "a"}), false).unwrap();
        assert_eq!(plain[0]["input_type"], "search_document");
    }

    #[test]
    fn titan_answers_are_joined_and_their_tokens_summed() {
        let answers = [
            json!({"embedding": [0.5, -1.0], "inputTextTokenCount": 3}),
            json!({"embeddingsByType": {"float": [1.0, 2.0]}, "inputTextTokenCount": 4}),
        ];
        let out = answer(EmbedModel::TitanV2, &answers, &test_meta(b"{}")).unwrap();
        assert_eq!(out["data"][1], json!({"object": "embedding", "index": 1, "embedding": [1.0, 2.0]}));
        assert_eq!(out["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
        let b64 = answer(EmbedModel::TitanG1, &answers[..1], &test_meta(br#"{"encoding_format":"base64"}"#)).unwrap();
        assert_eq!(b64["data"][0]["embedding"], crate::embedding::encode_base64(&[json!(0.5), json!(-1.0)]).unwrap());
        assert!(answer(EmbedModel::TitanG1, &[json!({"x": 1})], &test_meta(b"{}")).is_err());
    }

    #[test]
    fn cohere_answers_in_either_shape_with_estimated_tokens() {
        let request = br#"{"input":["hello world","hi"]}"#;
        let by_type =
            json!({"id": "x", "response_type": "embeddings_by_type", "embeddings": {"float": [[0.5], [1.0]]}});
        let out = answer(EmbedModel::Cohere, &[by_type], &test_meta(request)).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([1.0]));
        assert_eq!(out["usage"]["prompt_tokens"], 3);
        let floats = json!({"response_type": "embeddings_floats", "embeddings": [[0.25]]});
        assert_eq!(
            answer(EmbedModel::Cohere, &[floats], &test_meta(request)).unwrap()["data"][0]["embedding"],
            json!([0.25])
        );
    }
}
