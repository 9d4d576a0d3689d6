//! Vertex AI's Imagen models (`imagegeneration@006`, `imagen-3.0-generate-001`, …) behind
//! OpenAI's `/images/generations`, as LiteLLM's `VertexAIImagenImageGenerationConfig` maps them:
//! the model's `:predict` with `instances: [{prompt}]` and `parameters: {sampleCount,
//! aspectRatio}` for `n` and `size`, and the answer's `predictions[].bytesBase64Encoded` as
//! OpenAI's `data[].b64_json`.

use serde_json::{json, Map, Value};

use super::TranslateError;

/// OpenAI's sizes and the aspect ratios LiteLLM sends for them; any other size is `1:1`.
const ASPECT_RATIOS: [(&str, &str); 5] =
    [("1024x1024", "1:1"), ("1792x1024", "16:9"), ("1024x1792", "9:16"), ("1280x896", "4:3"), ("896x1280", "3:4")];

/// Imagen's own parameters a client may send beside OpenAI's (as LiteLLM passes a provider's
/// extra parameters on): they go into `parameters` as they are.
const IMAGEN_PARAMETERS: [&str; 9] = [
    "negativePrompt",
    "seed",
    "addWatermark",
    "personGeneration",
    "safetySetting",
    "outputOptions",
    "language",
    "enhancePrompt",
    "sampleImageSize",
];

/// OpenAI image parameters Imagen has no equivalent for: refused by name unless `drop_params`.
const UNSUPPORTED: [&str; 7] =
    ["quality", "style", "background", "moderation", "output_format", "output_compression", "partial_images"];

/// Whether a Vertex model is one of Imagen's (served through `:predict`), not a Gemini model.
pub fn is_imagen(model: &str) -> bool {
    model.starts_with("imagen") || model.starts_with("imagegeneration")
}

/// Imagen's `:predict` body for an OpenAI image generation request.
pub fn request(openai: &Value, drop_params: bool) -> Result<Value, TranslateError> {
    let asked = crate::images::read(openai)?;
    asked.refuse(&UNSUPPORTED, drop_params, "vertex_ai (Imagen)")?;
    // Imagen answers base64 only: asking for URLs cannot be honoured.
    if asked.fields.get("response_format").and_then(Value::as_str).is_some_and(|f| f != "b64_json") {
        asked.refuse(&["response_format"], drop_params, "vertex_ai (Imagen)")?;
    }
    let mut parameters = Map::new();
    parameters.insert("sampleCount".into(), json!(asked.n.unwrap_or(1)));
    if let Some(size) = asked.size {
        let ratio = ASPECT_RATIOS.iter().find(|(s, _)| *s == size).map_or("1:1", |(_, r)| r);
        parameters.insert("aspectRatio".into(), json!(ratio));
    }
    asked.copy_into(&mut parameters, &IMAGEN_PARAMETERS);
    Ok(json!({ "instances": [{ "prompt": asked.prompt }], "parameters": parameters }))
}

/// OpenAI's image answer for Imagen's: each prediction's `bytesBase64Encoded` as a `b64_json`.
/// An answer with no `predictions` (every image filtered) has no images.
pub fn response(imagen: &Value, created: u64) -> Result<Value, TranslateError> {
    let predictions = match imagen.get("predictions") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(p)) => p.as_slice(),
        Some(_) => return Err(TranslateError::other("`predictions` is not a list")),
    };
    let images = predictions.iter().filter_map(|p| p.get("bytesBase64Encoded").and_then(Value::as_str));
    Ok(crate::images::answer(created, images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_imagen_from_gemini() {
        assert!(is_imagen("imagegeneration@006"));
        assert!(is_imagen("imagen-3.0-generate-001"));
        assert!(!is_imagen("gemini-2.5-flash-image"));
    }

    #[test]
    fn maps_n_and_size_as_litellm_does() {
        let out = request(&json!({"model": "m", "prompt": "a cat", "n": 3, "size": "1792x1024"}), false).unwrap();
        assert_eq!(
            out,
            json!({"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 3, "aspectRatio": "16:9"}})
        );
        let out = request(&json!({"prompt": "a cat", "size": "512x512", "negativePrompt": "dogs"}), false).unwrap();
        assert_eq!(out["parameters"], json!({"sampleCount": 1, "aspectRatio": "1:1", "negativePrompt": "dogs"}));
        let out = request(&json!({"prompt": "a cat", "response_format": "b64_json", "user": "u"}), false).unwrap();
        assert_eq!(out["parameters"], json!({"sampleCount": 1}));
    }

    #[test]
    fn refuses_what_it_cannot_honour_by_name() {
        let e = request(&json!({"n": 1}), false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prompt"));
        assert_eq!(request(&json!({"prompt": "x", "n": 11}), false).unwrap_err().param.as_deref(), Some("n"));
        let e = request(&json!({"prompt": "x", "quality": "hd"}), false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("quality"));
        assert!(e.message.contains("drop_params"), "{}", e.message);
        let e = request(&json!({"prompt": "x", "response_format": "url"}), false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format"));
        let dropped = request(&json!({"prompt": "x", "quality": "hd", "response_format": "url"}), true).unwrap();
        assert_eq!(dropped["parameters"], json!({"sampleCount": 1}));
    }

    #[test]
    fn answers_carry_the_base64_images() {
        let imagen = json!({"predictions": [
            {"bytesBase64Encoded": "AAA", "mimeType": "image/png"},
            {"raiFilteredReason": "filtered"},
            {"bytesBase64Encoded": "BBB", "mimeType": "image/png"}
        ]});
        assert_eq!(
            response(&imagen, 7).unwrap(),
            json!({"created": 7, "data": [{"b64_json": "AAA"}, {"b64_json": "BBB"}]})
        );
        assert_eq!(response(&json!({}), 7).unwrap()["data"], json!([]));
        assert!(response(&json!({"predictions": 3}), 7).is_err());
    }
}
