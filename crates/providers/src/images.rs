//! What the translated image generations (Vertex Imagen, Bedrock's image models) share: the
//! OpenAI request's `prompt`, `n` and `size` read and checked once, the refusal of parameters a
//! model cannot honour (LiteLLM's `UnsupportedParamsError`, unless `drop_params`), and OpenAI's
//! answer of base64 images.

use serde_json::{json, Map, Value};

/// The most images one translated request asks for: OpenAI's own `n` limit (each model takes
/// fewer and says so itself).
pub const MAX_IMAGES: u64 = sluice_wire::units::MAX_IMAGES;

/// An image request refused: the parameter it names, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub param: Option<String>,
    pub message: String,
}

impl Refused {
    fn param(param: &str, message: impl Into<String>) -> Self {
        Refused { param: Some(param.to_string()), message: message.into() }
    }
}

/// An OpenAI image generation request, read.
pub struct Asked<'a> {
    /// Every field, for the model's own parameters a client sends beside OpenAI's.
    pub fields: &'a Map<String, Value>,
    pub prompt: &'a str,
    /// `n`, from 1 to [`MAX_IMAGES`], when sent.
    pub n: Option<u64>,
    /// `size` as sent (`"auto"` included), when a string.
    pub size: Option<&'a str>,
}

impl Asked<'_> {
    /// `size` as width and height, each from 1 to `MAX_SIDE`; `None` when absent or `auto`.
    pub fn dimensions(&self) -> Result<Option<(u64, u64)>, Refused> {
        let Some(size) = self.size.filter(|s| *s != "auto") else { return Ok(None) };
        let side = |v: &str| v.trim().parse::<u64>().ok().filter(|v| (1..=sluice_wire::units::MAX_SIDE).contains(v));
        let parsed = size.split_once('x').and_then(|(w, h)| Some((side(w)?, side(h)?)));
        parsed.map(Some).ok_or_else(|| Refused::param("size", "`size` must be WIDTHxHEIGHT, e.g. \"1024x1024\""))
    }

    /// The fields among `names` the request sets (not null).
    pub fn sent<'n>(&self, names: &[&'n str]) -> Vec<&'n str> {
        names.iter().copied().filter(|k| self.fields.get(*k).is_some_and(|v| !v.is_null())).collect()
    }

    /// Refuses the fields among `names` the request sets, naming them, unless `drop_params`.
    pub fn refuse(&self, names: &[&str], drop_params: bool, provider: &str) -> Result<(), Refused> {
        let sent = self.sent(names);
        match sent.first() {
            Some(first) if !drop_params => Err(Refused::param(
                first,
                format!(
                    "{provider} does not support parameters: {sent:?} for this model. Remove them, or set `drop_params: true` (litellm_settings or the deployment) to drop them."
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Copies the fields among `names` the request sets into `out`, as they are.
    pub fn copy_into(&self, out: &mut Map<String, Value>, names: &[&str]) {
        for name in names {
            if let Some(v) = self.fields.get(*name).filter(|v| !v.is_null()) {
                out.insert((*name).into(), v.clone());
            }
        }
    }
}

/// Reads an OpenAI image generation request: a JSON object with a string `prompt`, `n` a whole
/// number from 1 to [`MAX_IMAGES`] and `size` a string when they are set.
pub fn read(openai: &Value) -> Result<Asked<'_>, Refused> {
    let fields = openai.as_object().ok_or_else(|| Refused {
        param: None,
        message: "the request body must be a JSON object with `model` and `prompt`".into(),
    })?;
    let prompt = fields
        .get("prompt")
        .and_then(Value::as_str)
        .ok_or_else(|| Refused::param("prompt", "`prompt` is required and must be a string"))?;
    let n = match fields.get("n") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .filter(|n| (1..=MAX_IMAGES).contains(n))
                .ok_or_else(|| Refused::param("n", format!("`n` must be a whole number from 1 to {MAX_IMAGES}")))?,
        ),
    };
    let size = match fields.get("size") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Refused::param("size", "`size` must be a string like \"1024x1024\"")),
    };
    Ok(Asked { fields, prompt, n, size })
}

/// OpenAI's image answer: each base64 image as a `b64_json`.
pub fn answer<'a>(created: u64, images: impl Iterator<Item = &'a str>) -> Value {
    let data: Vec<Value> = images.map(|b64| json!({ "b64_json": b64 })).collect();
    json!({ "created": created, "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prompt_n_and_size() {
        let body = json!({"prompt": "a cat", "n": 2, "size": "512x768"});
        let a = read(&body).unwrap();
        assert_eq!((a.prompt, a.n, a.size), ("a cat", Some(2), Some("512x768")));
        assert_eq!(a.dimensions().unwrap(), Some((512, 768)));
        let body = json!({"prompt": "a cat", "size": "auto", "n": null});
        let a = read(&body).unwrap();
        assert_eq!((a.n, a.dimensions().unwrap()), (None, None));
    }

    #[test]
    fn bad_input_is_refused_by_name() {
        for (body, param) in [
            (json!({"n": 1}), "prompt"),
            (json!({"prompt": 3}), "prompt"),
            (json!({"prompt": "x", "n": 0}), "n"),
            (json!({"prompt": "x", "n": 11}), "n"),
            (json!({"prompt": "x", "n": "2"}), "n"),
            (json!({"prompt": "x", "size": 5}), "size"),
        ] {
            assert_eq!(read(&body).err().and_then(|e| e.param).as_deref(), Some(param), "{body}");
        }
        assert!(read(&json!([1])).err().is_some_and(|e| e.param.is_none()));
        for size in ["big", "99999999x2", "0x5", "12x"] {
            let body = json!({"prompt": "x", "size": size});
            assert_eq!(read(&body).unwrap().dimensions().unwrap_err().param.as_deref(), Some("size"), "{size}");
        }
    }

    #[test]
    fn refusals_name_what_was_sent_unless_dropped() {
        let body = json!({"prompt": "x", "style": "vivid", "quality": null});
        let a = read(&body).unwrap();
        let e = a.refuse(&["quality", "style"], false, "bedrock").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("style"));
        assert!(e.message.contains("bedrock") && e.message.contains("drop_params"), "{}", e.message);
        assert!(a.refuse(&["quality", "style"], true, "bedrock").is_ok());
        assert!(a.refuse(&["quality"], false, "bedrock").is_ok());
    }

    #[test]
    fn answers_are_b64_json() {
        assert_eq!(
            answer(5, ["A", "B"].into_iter()),
            json!({"created": 5, "data": [{"b64_json": "A"}, {"b64_json": "B"}]})
        );
    }
}
