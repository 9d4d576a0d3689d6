//! Bedrock's image models behind OpenAI's `/images/generations`, through InvokeModel
//! (`/model/{id}/invoke`), as LiteLLM's Bedrock image configs translate them: Amazon's Titan
//! Image Generator and Nova Canvas (a `TEXT_IMAGE` task, `imageGenerationConfig` with
//! `numberOfImages`, `width`, `height`, `quality`), Stability's SD3 and Stable Image models
//! (`prompt`; no OpenAI parameter maps), and Stable Diffusion XL (`text_prompts`). Every answer
//! becomes OpenAI's `data[].b64_json`.

use serde_json::{json, Map, Value};

use super::TranslateError;

/// The request and answer shape an image model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageModel {
    /// `amazon.titan-image-generator-v1`/`-v2:0`, `amazon.nova-canvas-v1:0`: one shape.
    Amazon,
    /// `stability.sd3-*`, `stability.stable-image-*`: `{prompt}` in, `{images}` out.
    Stability,
    /// `stability.stable-diffusion-xl-*`: `{text_prompts}` in, `{artifacts[].base64}` out.
    StableDiffusionXl,
}

/// The image model a Bedrock model id names (a cross-region prefix such as `us.` allowed), or
/// `None` for a chat model.
pub fn image_model(model_id: &str) -> Option<ImageModel> {
    if model_id.contains("amazon.titan-image-generator") || model_id.contains("amazon.nova-canvas") {
        return Some(ImageModel::Amazon);
    }
    if model_id.contains("stability.stable-diffusion-xl") {
        return Some(ImageModel::StableDiffusionXl);
    }
    model_id.contains("stability.").then_some(ImageModel::Stability)
}

/// The InvokeModel body for an OpenAI image generation request to `model`. OpenAI parameters the
/// model cannot take are refused by name unless `drop_params`, as LiteLLM's
/// `UnsupportedParamsError`; the model's own parameters a client sends go along.
pub fn request(openai: &Value, model: ImageModel, drop_params: bool) -> Result<Value, TranslateError> {
    let a = crate::images::read(openai)?;
    let size = a.dimensions()?;
    match model {
        ImageModel::Amazon => {
            a.refuse(&["style"], drop_params, "bedrock")?;
            let mut config = Map::new();
            if let Some(n) = a.n {
                config.insert("numberOfImages".into(), json!(n));
            }
            if let Some((w, h)) = size {
                config.insert("width".into(), json!(w));
                config.insert("height".into(), json!(h));
            }
            match a.fields.get("quality").and_then(Value::as_str) {
                Some("hd" | "premium" | "high") => {
                    config.insert("quality".into(), json!("premium"));
                }
                Some("standard" | "medium" | "low") => {
                    config.insert("quality".into(), json!("standard"));
                }
                _ => {}
            }
            a.copy_into(&mut config, &["cfgScale", "seed"]);
            // The client's own `imageGenerationConfig` wins, as in LiteLLM.
            if let Some(Value::Object(own)) = a.fields.get("imageGenerationConfig") {
                config.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let mut text = Map::new();
            text.insert("text".into(), json!(a.prompt));
            a.copy_into(&mut text, &["negativeText"]);
            let mut out = json!({ "taskType": "TEXT_IMAGE", "textToImageParams": text });
            if !config.is_empty() {
                out["imageGenerationConfig"] = Value::Object(config);
            }
            Ok(out)
        }
        ImageModel::Stability => {
            // LiteLLM maps no OpenAI parameter for these models: one image at the model's size.
            if a.n.is_some_and(|n| n > 1) || size.is_some() {
                a.refuse(&["n", "size"], drop_params, "bedrock")?;
            }
            a.refuse(&["quality", "style"], drop_params, "bedrock")?;
            let mut out = Map::new();
            out.insert("prompt".into(), json!(a.prompt));
            a.copy_into(
                &mut out,
                &["negative_prompt", "aspect_ratio", "mode", "seed", "output_format", "strength", "image"],
            );
            Ok(Value::Object(out))
        }
        ImageModel::StableDiffusionXl => {
            a.refuse(&["quality", "style"], drop_params, "bedrock")?;
            // LiteLLM replaces line breaks in the prompt for these models.
            let text = a.prompt.replace(['\r', '\n'], " ");
            let mut out = Map::new();
            out.insert("text_prompts".into(), json!([{ "text": text, "weight": 1 }]));
            if let Some(n) = a.n {
                out.insert("samples".into(), json!(n));
            }
            if let Some((w, h)) = size {
                out.insert("width".into(), json!(w));
                out.insert("height".into(), json!(h));
            }
            a.copy_into(&mut out, &["cfg_scale", "seed", "steps", "style_preset", "sampler"]);
            Ok(Value::Object(out))
        }
    }
}

/// OpenAI's image answer for an InvokeModel answer: `images` (Amazon, Stability) or
/// `artifacts[].base64` (Stable Diffusion XL), each a `b64_json`.
pub fn response(answer: &Value, model: ImageModel, created: u64) -> Result<Value, TranslateError> {
    match model {
        ImageModel::Amazon | ImageModel::Stability => {
            let images = answer.get("images").and_then(Value::as_array).ok_or_else(|| {
                let why = answer.get("error").and_then(Value::as_str).unwrap_or("the answer has no `images` list");
                TranslateError::other(why)
            })?;
            Ok(crate::images::answer(created, images.iter().filter_map(Value::as_str)))
        }
        ImageModel::StableDiffusionXl => {
            let artifacts = answer
                .get("artifacts")
                .and_then(Value::as_array)
                .ok_or_else(|| TranslateError::other("the answer has no `artifacts` list"))?;
            let images = artifacts.iter().filter_map(|a| a.get("base64").and_then(Value::as_str));
            Ok(crate::images::answer(created, images))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_image_models() {
        assert_eq!(image_model("amazon.titan-image-generator-v1"), Some(ImageModel::Amazon));
        assert_eq!(image_model("amazon.titan-image-generator-v2:0"), Some(ImageModel::Amazon));
        assert_eq!(image_model("us.amazon.nova-canvas-v1:0"), Some(ImageModel::Amazon));
        assert_eq!(image_model("stability.sd3-large-v1:0"), Some(ImageModel::Stability));
        assert_eq!(image_model("stability.stable-image-ultra-v1:0"), Some(ImageModel::Stability));
        assert_eq!(image_model("stability.stable-diffusion-xl-v1"), Some(ImageModel::StableDiffusionXl));
        assert_eq!(image_model("anthropic.claude-3-5-sonnet-20240620-v1:0"), None);
        assert_eq!(image_model("amazon.nova-pro-v1:0"), None);
    }

    #[test]
    fn invoke_urls_sit_beside_converse() {
        assert_eq!(
            super::super::invoke_url(None, "us-east-1", "amazon.nova-canvas-v1:0"),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-canvas-v1%3A0/invoke"
        );
        assert_eq!(
            super::super::invoke_url(Some("http://127.0.0.1:9/"), "r", "m"),
            "http://127.0.0.1:9/model/m/invoke"
        );
    }

    #[test]
    fn titan_and_nova_get_a_text_image_task() {
        let out = request(
            &json!({"model": "m", "prompt": "a cat", "n": 2, "size": "512x768", "quality": "hd", "user": "u"}),
            ImageModel::Amazon,
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a cat"},
                   "imageGenerationConfig": {"numberOfImages": 2, "width": 512, "height": 768, "quality": "premium"}})
        );
        let out = request(
            &json!({"prompt": "a cat", "negativeText": "dogs", "imageGenerationConfig": {"seed": 4}}),
            ImageModel::Amazon,
            false,
        )
        .unwrap();
        assert_eq!(out["textToImageParams"], json!({"text": "a cat", "negativeText": "dogs"}));
        assert_eq!(out["imageGenerationConfig"], json!({"seed": 4}));
        let out = request(&json!({"prompt": "a cat", "size": "auto"}), ImageModel::Amazon, false).unwrap();
        assert!(out.get("imageGenerationConfig").is_none(), "{out}");
    }

    #[test]
    fn stability_takes_the_prompt_alone() {
        let out =
            request(&json!({"prompt": "a cat", "n": 1, "aspect_ratio": "16:9"}), ImageModel::Stability, false).unwrap();
        assert_eq!(out, json!({"prompt": "a cat", "aspect_ratio": "16:9"}));
        let e = request(&json!({"prompt": "a cat", "n": 2}), ImageModel::Stability, false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("n"));
        assert!(e.message.contains("drop_params"), "{}", e.message);
        let out = request(&json!({"prompt": "a cat", "n": 2, "size": "512x512"}), ImageModel::Stability, true).unwrap();
        assert_eq!(out, json!({"prompt": "a cat"}));
        let out = request(&json!({"prompt": "a\ncat", "n": 2}), ImageModel::StableDiffusionXl, false).unwrap();
        assert_eq!(out, json!({"text_prompts": [{"text": "a cat", "weight": 1}], "samples": 2}));
    }

    #[test]
    fn bad_input_is_refused_by_name() {
        for (body, param) in [(json!({"n": 1}), "prompt"), (json!({"prompt": "x", "size": "big"}), "size")] {
            let e = request(&body, ImageModel::Amazon, false).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
        let e = request(&json!({"prompt": "x", "style": "vivid"}), ImageModel::Amazon, false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("style"));
    }

    #[test]
    fn answers_become_b64_json() {
        let want = json!({"created": 3, "data": [{"b64_json": "AAA"}, {"b64_json": "BBB"}]});
        assert_eq!(response(&json!({"images": ["AAA", "BBB"]}), ImageModel::Amazon, 3).unwrap(), want);
        assert_eq!(
            response(
                &json!({"seeds": [1], "finish_reasons": [null], "images": ["AAA", "BBB"]}),
                ImageModel::Stability,
                3
            )
            .unwrap(),
            want
        );
        let sdxl = json!({"result": "success", "artifacts": [{"base64": "AAA", "seed": 1}, {"base64": "BBB"}]});
        assert_eq!(response(&sdxl, ImageModel::StableDiffusionXl, 3).unwrap(), want);
        let e = response(&json!({"error": "blocked by the content filter"}), ImageModel::Amazon, 3).unwrap_err();
        assert!(e.message.contains("content filter"));
        assert!(response(&json!({}), ImageModel::StableDiffusionXl, 3).is_err());
    }
}
