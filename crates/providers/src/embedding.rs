//! What every translated provider's embeddings share: OpenAI's `encoding_format` read as OpenAI
//! reads it, and vectors written back as OpenAI writes them — floats, or for `base64` (what the
//! official OpenAI SDK asks for by default) little-endian f32s in base64; the texts of `input`;
//! OpenAI's `list` answer; and LiteLLM's token estimate for the providers that count none.

use base64::Engine as _;
use serde_json::{json, Map, Value};
use sluice_wire::ApiError;

use crate::provider::AnswerMeta;

/// The texts of `input`: a string, or a non-empty array of strings. `who` names the provider
/// in the 400 for token ids or anything else.
pub fn texts(req: &Map<String, Value>, who: &str) -> Result<Vec<String>, ApiError> {
    match req.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        }
        _ => Err(ApiError::bad_request(format!(
            "`input` is required: a string or a non-empty array of strings ({who} embeds text, not token ids)"
        ))
        .param("input")),
    }
}

/// An embeddings request checked for a provider that takes only text (no `dimensions` unless
/// `drop_params`): the request's members and its texts.
pub fn checked<'a>(
    openai: &'a Value,
    provider: &str,
    who: &str,
    drop_params: bool,
) -> Result<(&'a Map<String, Value>, Vec<String>), ApiError> {
    let req = openai.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    wants_base64(req).map_err(|e| ApiError::bad_request(e).param("encoding_format"))?;
    refuse_dimensions(req, provider, drop_params)?;
    Ok((req, texts(req, who)?))
}

/// `dimensions` on a provider that has no such setting: LiteLLM's unsupported-parameter 400,
/// unless `drop_params`.
fn refuse_dimensions(req: &Map<String, Value>, provider: &str, drop_params: bool) -> Result<(), ApiError> {
    match req.get("dimensions") {
        Some(v) if !v.is_null() && !drop_params => Err(crate::textgen::unsupported(provider, "dimensions")),
        _ => Ok(()),
    }
}

/// OpenAI's answer for the provider's vectors, in the client's `encoding_format`, with
/// `prompt_tokens` as its usage.
pub fn answer(vectors: &[Value], meta: &AnswerMeta<'_>, prompt_tokens: u64) -> Result<Value, String> {
    let data = data(vectors, wants_base64_in(meta.request))?;
    Ok(json!({ "object": "list", "data": data, "model": meta.model,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens } }))
}

/// LiteLLM's estimate where a provider reports no tokens: each text counted with its default
/// encoding (`cl100k_base`), as its Hugging Face and SageMaker handlers do.
pub fn estimated_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u64 {
    let bpe = crate::tokens::cl100k();
    texts.into_iter().map(|t| crate::tokens::count_text(bpe, t)).sum()
}

/// The texts of a request body already checked when its upstream request was built.
pub fn texts_in(request: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Map<String, Value>>(request).ok().and_then(|r| texts(&r, "").ok()).unwrap_or_default()
}

/// `encoding_format`: `float` (the default) or `base64`; `Err` is the 400's message.
pub fn wants_base64(req: &Map<String, Value>) -> Result<bool, String> {
    match req.get("encoding_format") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) if s == "float" => Ok(false),
        Some(Value::String(s)) if s == "base64" => Ok(true),
        Some(other) => Err(format!("encoding_format {other} is not one of \"float\", \"base64\"")),
    }
}

/// [`wants_base64`] of a request body already checked when its upstream request was built.
pub fn wants_base64_in(request: &[u8]) -> bool {
    serde_json::from_slice::<Map<String, Value>>(request).ok().and_then(|r| wants_base64(&r).ok()).unwrap_or(false)
}

/// OpenAI's `data` list for the provider's vectors.
pub fn data(vectors: &[Value], base64: bool) -> Result<Vec<Value>, String> {
    let mut data = Vec::with_capacity(vectors.len());
    for (i, vector) in vectors.iter().enumerate() {
        let values = vector.as_array().ok_or("an embedding that is not an array")?;
        let embedding = match base64 {
            true => Value::String(encode_base64(values)?),
            false => Value::Array(values.clone()),
        };
        data.push(json!({ "object": "embedding", "index": i, "embedding": embedding }));
    }
    Ok(data)
}

/// A vector as OpenAI's `encoding_format: base64` sends it.
pub fn encode_base64(values: &[Value]) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for x in values {
        let f = x.as_f64().ok_or("an embedding value that is not a number")?;
        bytes.extend_from_slice(&(f as f32).to_le_bytes());
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// What a test's embeddings answer is stamped with, for `request`.
#[cfg(test)]
pub(crate) fn test_meta(request: &[u8]) -> AnswerMeta<'_> {
    AnswerMeta {
        model: "g",
        id: "c",
        created: 1,
        include_usage: false,
        endpoint: sluice_wire::sniff::Endpoint::Embeddings,
        request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_f32_as_openai_sends_it() {
        assert_eq!(encode_base64(&[json!(1.0), json!(-2.0)]).unwrap(), "AACAPwAAAMA=");
        assert!(encode_base64(&[json!("x")]).is_err());
        let req = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(wants_base64(&req(json!({}))), Ok(false));
        assert_eq!(wants_base64(&req(json!({"encoding_format": "base64"}))), Ok(true));
        assert!(wants_base64(&req(json!({"encoding_format": "int8"}))).is_err());
    }

    #[test]
    fn texts_take_strings_only_and_tokens_are_estimated_with_cl100k() {
        let req = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(texts(&req(json!({"input": "a"})), "X").unwrap(), vec!["a"]);
        assert_eq!(texts(&req(json!({"input": ["a", "b"]})), "X").unwrap().len(), 2);
        let e = texts(&req(json!({"input": [1, 2]})), "Workers AI").unwrap_err();
        assert!(e.message.contains("Workers AI embeds text"), "{}", e.message);
        assert!(texts(&req(json!({"input": []})), "X").is_err());
        assert_eq!(estimated_tokens(["hello world", "hi"]), 3);
        assert_eq!(texts_in(br#"{"input":"x"}"#), vec!["x"]);
        let dims = json!({"input": "x", "dimensions": 8});
        assert!(checked(&dims, "cloudflare", "X", false).unwrap_err().message.contains("['dimensions']"));
        assert_eq!(checked(&dims, "cloudflare", "X", true).unwrap().1, vec!["x"]);
        assert!(checked(&json!({"input": "x", "encoding_format": "int8"}), "c", "X", false).is_err());
    }

    #[test]
    fn the_answer_is_openais_list_in_the_clients_encoding() {
        let meta = test_meta;
        let out = answer(&[json!([1.0, -2.0])], &meta(br#"{"encoding_format":"base64"}"#), 4).unwrap();
        assert_eq!(out["data"][0]["embedding"], "AACAPwAAAMA=");
        assert_eq!((out["model"].as_str(), out["usage"]["prompt_tokens"].as_u64()), (Some("g"), Some(4)));
        let out = answer(&[json!([0.5])], &meta(b"{}"), 0).unwrap();
        assert_eq!(out["data"][0], json!({"object": "embedding", "index": 0, "embedding": [0.5]}));
    }
}
