//! What every translated provider's embeddings share: OpenAI's `encoding_format` read as OpenAI
//! reads it, and vectors written back as OpenAI writes them — floats, or for `base64` (what the
//! official OpenAI SDK asks for by default) little-endian f32s in base64.

use base64::Engine as _;
use serde_json::{json, Map, Value};

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
}
