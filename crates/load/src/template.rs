//! Request body templates. A template is split once, at start-up, around its `{{uuid}}`
//! placeholders; each request then writes one fresh UUID into every gap of a body rendered once.
//! No JSON is parsed or serialised per request, and the body's other bytes are not copied again.

/// The placeholder replaced by one fresh UUID per request (the same UUID at every occurrence,
/// as in the seed's locustfile, where the f-string is built once and then repeated).
pub const PLACEHOLDER: &str = "{{uuid}}";

/// The seed locustfile's sentence; with its UUID it is repeated 150 times per request.
pub const SEED_SENTENCE: &str = " This is a test there will be no cache hits and we'll fill up the context";
/// How often the seed repeats `f"{uuid4()}{SEED_SENTENCE}"`.
pub const SEED_REPEATS: usize = 150;
/// The seed's model and end user.
pub const SEED_MODEL: &str = "fake-openai-endpoint";
pub const SEED_USER: &str = "my-new-end-user-1";

/// A body with holes where the UUID goes.
#[derive(Debug, Clone)]
pub struct Template {
    /// Literal pieces; a UUID goes between every two consecutive pieces.
    parts: Vec<Box<[u8]>>,
    /// Where each UUID starts in a rendered body.
    holes: Vec<usize>,
    /// Length of a rendered body.
    len: usize,
}

/// Why a template could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path} is not valid JSON ({source}); --model and --stream can only be applied to a JSON object")]
    NotJson { path: String, source: serde_json::Error },
    #[error("{path} is a JSON {kind}, but --model and --stream need a JSON object at the top level")]
    NotObject { path: String, kind: &'static str },
}

impl Template {
    /// Splits `text` around every `{{uuid}}`.
    pub fn new(text: &str) -> Template {
        let parts: Vec<Box<[u8]>> = text.split(PLACEHOLDER).map(|p| p.as_bytes().into()).collect();
        let mut holes = Vec::with_capacity(parts.len() - 1);
        let mut len = 0;
        for part in &parts[..parts.len() - 1] {
            len += part.len();
            holes.push(len);
            len += UUID_LEN;
        }
        len += parts[parts.len() - 1].len();
        Template { parts, holes, len }
    }

    /// The seed locustfile's payload, with `model` and `stream` applied.
    pub fn seed(model: Option<&str>, stream: bool) -> Template {
        let content = format!("{PLACEHOLDER}{SEED_SENTENCE}").repeat(SEED_REPEATS);
        let mut body = serde_json::json!({
            "model": model.unwrap_or(SEED_MODEL),
            "messages": [{"role": "user", "content": content}],
            "user": SEED_USER,
        });
        if stream {
            body["stream"] = serde_json::Value::Bool(true);
        }
        Template::new(&body.to_string())
    }

    /// A template read from a file (`path` only names it in errors). The text is used verbatim
    /// unless `model` or `stream` must be set, which needs one JSON parse here, at start-up.
    pub fn from_file_text(
        path: &str,
        text: &str,
        model: Option<&str>,
        stream: bool,
    ) -> Result<Template, TemplateError> {
        if model.is_none() && !stream {
            return Ok(Template::new(text));
        }
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| TemplateError::NotJson { path: path.to_string(), source })?;
        let Some(obj) = value.as_object_mut() else {
            let kind = match value {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "boolean",
                _ => "null",
            };
            return Err(TemplateError::NotObject { path: path.to_string(), kind });
        };
        if let Some(m) = model {
            obj.insert("model".into(), m.into());
        }
        if stream {
            obj.insert("stream".into(), true.into());
        }
        Ok(Template::new(&value.to_string()))
    }

    /// How many placeholders the template holds.
    pub fn placeholders(&self) -> usize {
        self.parts.len() - 1
    }

    /// The length of every rendered body.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether rendered bodies are empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one body with `uuid` (36 ASCII bytes, hyphenated) in every hole to `out`.
    pub fn render_into(&self, out: &mut Vec<u8>, uuid: &[u8; UUID_LEN]) {
        out.reserve(self.len);
        let (last, init) = self.parts.split_last().expect("split yields one part or more");
        for part in init {
            out.extend_from_slice(part);
            out.extend_from_slice(uuid);
        }
        out.extend_from_slice(last);
    }

    /// Turns a body this template rendered into one with `uuid` in every hole.
    pub fn patch(&self, body: &mut [u8], uuid: &[u8; UUID_LEN]) {
        debug_assert_eq!(body.len(), self.len, "a body of another template");
        for &at in &self.holes {
            body[at..at + UUID_LEN].copy_from_slice(uuid);
        }
    }

    /// One body with `uuid` in every hole.
    pub fn render_with(&self, uuid: &[u8; UUID_LEN]) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(&mut out, uuid);
        out
    }

    /// One body with a fresh random UUID.
    pub fn render(&self) -> Vec<u8> {
        self.render_with(&fresh_uuid())
    }
}

/// The length of a hyphenated UUID.
pub const UUID_LEN: usize = 36;

/// A random (v4) UUID, hyphenated lower-case, without allocating.
pub fn fresh_uuid() -> [u8; UUID_LEN] {
    let mut buf = [0u8; UUID_LEN];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_body_is_valid_json_with_150_repeats_of_one_uuid() {
        let t = Template::seed(None, false);
        assert_eq!(t.placeholders(), SEED_REPEATS);
        let body = t.render();
        assert_eq!(body.len(), t.len);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], SEED_MODEL);
        assert_eq!(v["user"], SEED_USER);
        assert!(v.get("stream").is_none());
        let content = v["messages"][0]["content"].as_str().unwrap();
        assert_eq!(v["messages"][0]["role"], "user");
        let uuid = &content[..36];
        uuid::Uuid::parse_str(uuid).unwrap();
        // Python: f"{uuid} This is ... context" * 150
        assert_eq!(content, format!("{uuid}{SEED_SENTENCE}").repeat(150));
        assert_eq!(content.matches(uuid).count(), 150);
        // The seed payload is about 16 KB.
        assert!((15_000..18_000).contains(&body.len()), "{}", body.len());
    }

    #[test]
    fn each_render_gets_a_fresh_uuid() {
        let t = Template::seed(Some("gpt-4o"), true);
        let a: serde_json::Value = serde_json::from_slice(&t.render()).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&t.render()).unwrap();
        assert_ne!(a["messages"][0]["content"], b["messages"][0]["content"]);
        assert_eq!(a["model"], "gpt-4o");
        assert_eq!(a["stream"], true);
    }

    #[test]
    fn patching_a_rendered_body_equals_rendering_afresh() {
        let t = Template::new("{{uuid}}-a-{{uuid}}{{uuid}}-end");
        let first = fresh_uuid();
        let second = fresh_uuid();
        let mut body = t.render_with(&first);
        t.patch(&mut body, &second);
        assert_eq!(body, t.render_with(&second));
        assert_eq!(body.len(), t.len());
        assert_eq!(String::from_utf8(body).unwrap().matches(std::str::from_utf8(&second).unwrap()).count(), 3);
    }

    #[test]
    fn file_templates() {
        let text = r#"{"model":"x","input":"{{uuid}} and {{uuid}}"}"#;
        let t = Template::from_file_text("b.json", text, None, false).unwrap();
        assert_eq!(t.placeholders(), 2);
        let body = t.render_with(b"00000000-0000-4000-8000-000000000000");
        assert_eq!(
            &body[..],
            br#"{"model":"x","input":"00000000-0000-4000-8000-000000000000 and 00000000-0000-4000-8000-000000000000"}"#
        );
        let t = Template::from_file_text("b.json", text, Some("m2"), true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&t.render()).unwrap();
        assert_eq!((v["model"].as_str(), v["stream"].as_bool()), (Some("m2"), Some(true)));

        let none = Template::new("no holes");
        assert_eq!(&none.render()[..], b"no holes");
        assert_eq!((none.placeholders(), none.len()), (0, 8));
        let err = Template::from_file_text("a.json", "[1]", Some("m"), false).unwrap_err();
        assert!(err.to_string().contains("JSON object"));
        let err = Template::from_file_text("a.json", "{", Some("m"), false).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"));
    }
}
