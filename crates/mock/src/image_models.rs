//! The image models of the clouds, as they answer: Vertex AI's Imagen `:predict`
//! (`{"predictions": [{"bytesBase64Encoded", "mimeType"}]}`, `parameters.sampleCount` of them)
//! and Bedrock's InvokeModel (`POST /model/{modelId}/invoke`) for Amazon's Titan Image Generator
//! and Nova Canvas (`{"images": [...]}` for a `TEXT_IMAGE` task), Stability's SD3 and Stable
//! Image models (`{"seeds", "finish_reasons", "images"}`) and Stable Diffusion XL
//! (`{"artifacts": [{"base64"}]}`). Every image is the same 1×1 PNG; a request each model would
//! refuse gets its provider's 400 wording.

use serde_json::{json, Value};

/// A 1×1 PNG, the image every answer carries.
pub const PIXEL_PNG_B64: &str = crate::media::PIXEL_PNG_B64;

/// The most images Imagen makes for one request (its `sampleCount` limit).
const MAX_IMAGEN_SAMPLES: u64 = 8;
/// The most images Titan and Nova Canvas make for one request (`numberOfImages`).
const MAX_AMAZON_IMAGES: u64 = 5;

/// Whether a Vertex model is one of Imagen's.
pub fn is_imagen(model: &str) -> bool {
    model.starts_with("imagen") || model.starts_with("imagegeneration")
}

/// Imagen's answer to `:predict`; `Err` is the 400's message in Google's words.
pub fn imagen_body(body: &[u8]) -> Result<String, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload received. {e}"))?;
    let prompt = v.pointer("/instances/0/prompt").and_then(Value::as_str);
    if prompt.is_none_or(str::is_empty) {
        return Err("instances[0].prompt is required".into());
    }
    let samples = match v.pointer("/parameters/sampleCount") {
        None => 1,
        Some(n) => n
            .as_u64()
            .filter(|n| (1..=MAX_IMAGEN_SAMPLES).contains(n))
            .ok_or(format!("sampleCount must be from 1 to {MAX_IMAGEN_SAMPLES}"))?,
    };
    let predictions: Vec<Value> =
        (0..samples).map(|_| json!({ "bytesBase64Encoded": PIXEL_PNG_B64, "mimeType": "image/png" })).collect();
    Ok(json!({ "predictions": predictions }).to_string())
}

/// Whether InvokeModel's `model` (decoded) is one of the image models this mock draws for.
pub fn makes_images(model: &str) -> bool {
    model.contains("amazon.titan-image-generator")
        || model.contains("amazon.nova-canvas")
        || model.contains("stability.")
}

/// The answer InvokeModel gives an image model (`model`, decoded); `Err` is the
/// `ValidationException`'s message.
pub fn invoke_body(model: &str, body: &[u8]) -> Result<String, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Malformed input request: {e}"))?;
    if model.contains("amazon.titan-image-generator") || model.contains("amazon.nova-canvas") {
        if v.get("taskType").and_then(Value::as_str) != Some("TEXT_IMAGE") {
            return Err("taskType: this mock makes TEXT_IMAGE tasks only".into());
        }
        if v.pointer("/textToImageParams/text").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err("textToImageParams.text: must not be empty".into());
        }
        let n = match v.pointer("/imageGenerationConfig/numberOfImages") {
            None => 1,
            Some(n) => n
                .as_u64()
                .filter(|n| (1..=MAX_AMAZON_IMAGES).contains(n))
                .ok_or(format!("numberOfImages: must be from 1 to {MAX_AMAZON_IMAGES}"))?,
        };
        for side in ["width", "height"] {
            if let Some(s) = v.pointer(&format!("/imageGenerationConfig/{side}")) {
                s.as_u64().filter(|s| (320..=4096).contains(s)).ok_or(format!("{side}: must be from 320 to 4096"))?;
            }
        }
        return Ok(json!({ "images": vec![PIXEL_PNG_B64; n as usize], "error": null }).to_string());
    }
    if model.contains("stability.stable-diffusion-xl") {
        let text = v.pointer("/text_prompts/0/text").and_then(Value::as_str);
        if text.is_none_or(str::is_empty) {
            return Err("text_prompts: required".into());
        }
        let n = v.get("samples").and_then(Value::as_u64).unwrap_or(1).clamp(1, 10);
        let artifacts: Vec<Value> =
            (0..n).map(|i| json!({ "base64": PIXEL_PNG_B64, "seed": i, "finishReason": "SUCCESS" })).collect();
        return Ok(json!({ "result": "success", "artifacts": artifacts }).to_string());
    }
    if model.contains("stability.") {
        if v.get("prompt").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err("prompt: required".into());
        }
        return Ok(json!({ "seeds": [42], "finish_reasons": [null], "images": [PIXEL_PNG_B64] }).to_string());
    }
    Err("The provided model identifier is invalid.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagen_makes_its_samples() {
        let v: Value = serde_json::from_str(
            &imagen_body(br#"{"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":3}}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["predictions"].as_array().unwrap().len(), 3);
        assert_eq!(v["predictions"][0]["bytesBase64Encoded"], PIXEL_PNG_B64);
        assert!(imagen_body(br#"{"instances":[{}]}"#).is_err());
        assert!(imagen_body(br#"{"instances":[{"prompt":"x"}],"parameters":{"sampleCount":9}}"#).is_err());
        assert!(is_imagen("imagen-3.0-generate-001") && !is_imagen("gemini-1.5-pro"));
    }

    #[test]
    fn invoke_answers_each_family() {
        assert!(makes_images("amazon.nova-canvas-v1:0") && makes_images("stability.sd3-large-v1:0"));
        assert!(!makes_images("amazon.titan-embed-text-v2:0") && !makes_images("cohere.embed-english-v3"));
        let titan = r#"{"taskType":"TEXT_IMAGE","textToImageParams":{"text":"a cat"},"imageGenerationConfig":{"numberOfImages":2}}"#;
        let v: Value =
            serde_json::from_str(&invoke_body("amazon.titan-image-generator-v2:0", titan.as_bytes()).unwrap()).unwrap();
        assert_eq!(v["images"].as_array().unwrap().len(), 2);
        let v: Value =
            serde_json::from_str(&invoke_body("stability.sd3-large-v1:0", br#"{"prompt":"a cat"}"#).unwrap()).unwrap();
        assert_eq!(v["images"][0], PIXEL_PNG_B64);
        let sdxl = br#"{"text_prompts":[{"text":"a cat","weight":1}],"samples":2}"#;
        let v: Value = serde_json::from_str(&invoke_body("stability.stable-diffusion-xl-v1", sdxl).unwrap()).unwrap();
        assert_eq!(v["artifacts"].as_array().unwrap().len(), 2);
        assert!(invoke_body("amazon.nova-canvas-v1:0", br#"{"taskType":"TEXT_IMAGE"}"#).is_err());
        assert!(invoke_body("anthropic.claude-v2", br#"{"prompt":"x"}"#).is_err());
    }
}
