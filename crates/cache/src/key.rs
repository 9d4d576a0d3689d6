//! The cache key: a BLAKE3 hash of what changes an answer, taken from the bytes of the request
//! already in hand (no tree, no re-serialisation).
//!
//! BLAKE3 rather than LiteLLM's SHA-256: both are collision-resistant (a caller must not be able
//! to make its request share another's key), and the key is opaque to clients either way (64 hex
//! digits), but SHA-256 over the seed's 16 KB prompt was 14 % of a proxied request's CPU with the
//! cache on (`perf`, bench/README.md); BLAKE3 hashes the prompt's kilobyte chunks side by side.
//!
//! LiteLLM hashes the request's OpenAI parameters with `model` replaced by the model group, so
//! every deployment of a group shares entries. Here each top-level member of the body counts as
//! sent, sorted by name (two SDKs ordering fields differently still meet), except the members
//! that never change the answer: how it is delivered (`stream`, `stream_options`), the gateway's
//! own fields (`metadata`, `cache`, `tags`, LiteLLM's `litellm_*`) and a caller's credentials
//! (`api_key` and the addressing that goes with it). `user` counts, as in LiteLLM: one end
//! user's answers are not another's. Whitespace outside strings does not count either: SDKs
//! differ in how they space the JSON they send (Python's `json.dumps` puts a space after `:`
//! and `,`; the OpenAI SDK does not), and LiteLLM keys on the values, not their spelling.

/// Top-level members that do not change the answer.
const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "metadata",
    "cache",
    "tags",
    "litellm_metadata",
    "litellm_session_id",
    "litellm_trace_id",
    "litellm_call_id",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "extra_headers",
    "proxy_server_request",
];

/// What kind of answer a request gets: part of the key, so that two endpoints never read each
/// other's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Chat,
    Completion,
    Embedding,
    Responses,
    Rerank,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Chat => "chat",
            Shape::Completion => "completion",
            Shape::Embedding => "embedding",
            Shape::Responses => "responses",
            Shape::Rerank => "rerank",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Shape::Chat => 1,
            Shape::Completion => 2,
            Shape::Embedding => 3,
            Shape::Responses => 4,
            Shape::Rerank => 5,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Shape> {
        Some(match code {
            1 => Shape::Chat,
            2 => Shape::Completion,
            3 => Shape::Embedding,
            4 => Shape::Responses,
            5 => Shape::Rerank,
            _ => return None,
        })
    }
}

/// The key of `body` sent to `model_group`, as the client sees it in `x-litellm-cache-key`:
/// 64 hex digits, after `namespace:` when there is a namespace. `None` when the body is not a
/// JSON object (such a request never reaches an upstream either).
pub fn of(shape: Shape, model_group: &str, body: &[u8], namespace: Option<&str>) -> Option<String> {
    let mut members = sluice_wire::members::top_level(body)?;
    members.retain(|(name, _)| !IGNORED.contains(&name.as_ref()));
    members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut h = blake3::Hasher::new();
    // Lengths first, so no two different lists of members hash the same bytes (a value is
    // valid JSON, so the NUL after it, which JSON text never holds raw, ends it unambiguously).
    let field = |h: &mut blake3::Hasher, bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&mut h, b"sluice-cache-1");
    field(&mut h, shape.name().as_bytes());
    field(&mut h, model_group.as_bytes());
    for (name, value) in &members {
        field(&mut h, name.as_bytes());
        without_spaces(value.as_bytes(), |part| {
            h.update(part);
        });
        h.update(b"\0");
    }
    let digest = h.finalize().to_hex();
    Some(match namespace {
        Some(ns) => format!("{ns}:{digest}"),
        None => digest.to_string(),
    })
}

/// Hands `json` (a valid JSON value) to `out` in slices, without the whitespace between tokens;
/// strings go whole, found a run at a time between quotes and backslashes.
fn without_spaces(json: &[u8], mut out: impl FnMut(&[u8])) {
    let mut at = 0;
    let mut start = 0;
    while at < json.len() {
        match json[at] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                out(&json[start..at]);
                at += 1;
                start = at;
            }
            b'"' => {
                at += 1;
                // To the closing quote, stepping over escapes.
                loop {
                    match memchr::memchr2(b'"', b'\\', &json[at..]) {
                        Some(i) if json[at + i] == b'\\' => at += i + 2,
                        Some(i) => {
                            at += i + 1;
                            break;
                        }
                        None => {
                            at = json.len();
                            break;
                        }
                    }
                }
            }
            _ => at += 1,
        }
    }
    out(&json[start..json.len().min(at)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spaceless(json: &str) -> String {
        let mut out = Vec::new();
        without_spaces(json.as_bytes(), |p| out.extend_from_slice(p));
        String::from_utf8(out).unwrap()
    }

    proptest! {
        /// Whatever the spacing, the same value; and the value is what serde_json reads.
        #[test]
        fn spacing_never_changes_the_bytes_hashed(words in proptest::collection::vec("[a-z \"\\\\\n]{0,6}", 0..6), pretty in any::<bool>()) {
            let v = serde_json::json!({"m": words, "n": [1, {"x": words.first()}]});
            let compact = serde_json::to_string(&v).unwrap();
            let spaced = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { compact.replace(',', " , ").replace(':', " : ") };
            prop_assert_eq!(spaceless(&spaced), compact.clone());
            let back: serde_json::Value = serde_json::from_str(&spaceless(&spaced)).unwrap();
            prop_assert_eq!(back, v);
        }
    }

    fn key(body: &str) -> String {
        of(Shape::Chat, "gpt", body.as_bytes(), None).unwrap()
    }

    #[test]
    fn the_same_request_in_any_order_and_delivery_has_one_key() {
        let a = key(r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#);
        for same in [
            r#"{"temperature":0.2,"messages":[{"role":"user","content":"hi"}],"model":"gpt"}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"stream":true,"stream_options":{"include_usage":true}}"#,
            r#" { "model" : "other-alias", "messages":[{"role":"user","content":"hi"}] , "temperature":0.2, "metadata": {"tags": ["x"]}, "cache": {"ttl": 5}}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"temperature":0.2,"api_key":"sk-caller-a"}"#,
            // Python's json.dumps spacing.
            r#"{"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}"#,
            "{\"model\":\"gpt\",\"messages\":[\n  {\"role\":\"user\",\r\n\t\"content\":\"hi\"}\n],\"temperature\":0.2}",
        ] {
            assert_eq!(key(same), a, "{same}");
        }
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#;
        let mut seen = std::collections::HashSet::new();
        seen.insert(key(base));
        for other in [
            r#"{"model":"gpt","messages":[{"role":"user","content":"hello"}]}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"temperature":1}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"tools":[]}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"user":"u1"}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"n":2}"#,
            // Spaces inside a string are the prompt's own.
            r#"{"model":"gpt","messages":[{"role":"user","content":"h i"}]}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi "}]}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi\" "}]}"#,
            // A member's name and value cannot trade bytes.
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"ab":"c"}"#,
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"a":"bc"}"#,
        ] {
            assert!(seen.insert(key(other)), "{other} collided");
        }
        assert_ne!(of(Shape::Chat, "gpt", base.as_bytes(), None), of(Shape::Chat, "gpt-4o", base.as_bytes(), None));
        assert_ne!(of(Shape::Chat, "gpt", base.as_bytes(), None), of(Shape::Completion, "gpt", base.as_bytes(), None));
        let ns = of(Shape::Chat, "gpt", base.as_bytes(), Some("team-a")).unwrap();
        assert_eq!(ns, format!("team-a:{}", key(base)));
    }
}
