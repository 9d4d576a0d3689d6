//! The cache key: a BLAKE3 hash of what changes an answer, taken from the bytes of the request
//! already in hand (no tree, no re-serialisation; [`crate::canonical`] writes them).
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

use crate::canonical::Canonical;

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

/// The 32 bytes a key names: a BLAKE3 digest, or (in process) a namespaced key's [`id`].
pub type Id = [u8; 32];

/// The digest of `body` sent to `model_group`: the key without its namespace, as bytes. `None`
/// when the body is not a JSON object (such a request never reaches an upstream either).
pub fn digest(shape: Shape, model_group: &str, body: &[u8]) -> Option<Id> {
    let fields: [&[u8]; 3] = [b"sluice-cache-1", shape.name().as_bytes(), model_group.as_bytes()];
    CANONICAL.with_borrow_mut(|canonical| {
        let digest = canonical.write(&fields, body, |name| !IGNORED.contains(&name)).map(blake3::hash);
        canonical.trim();
        digest.map(|d| *d.as_bytes())
    })
}

/// The key of `body` sent to `model_group`, as the client sees it in `x-litellm-cache-key`:
/// 64 hex digits, after `namespace:` when there is a namespace. `None` when the body is not a
/// JSON object.
pub fn of(shape: Shape, model_group: &str, body: &[u8], namespace: Option<&str>) -> Option<String> {
    digest(shape, model_group, body).map(|d| text(namespace, &d))
}

/// The key's text: what clients see, what `/cache/delete` names, and the Redis key's tail.
pub fn text(namespace: Option<&str>, digest: &Id) -> String {
    let hex = blake3::Hash::from_bytes(*digest).to_hex();
    match namespace {
        Some(ns) => format!("{ns}:{hex}"),
        None => hex.to_string(),
    }
}

/// A key's text read back into its namespace and digest; `None` for text no key has (not 64
/// lowercase hex digits at the end, or no `:` before them after a namespace).
pub fn parse(key: &str) -> Option<(Option<&str>, Id)> {
    let split = key.len().checked_sub(64)?;
    let (head, hex) = (key.get(..split)?, key.get(split..)?);
    let namespace = match head {
        "" => None,
        _ => Some(head.strip_suffix(':')?),
    };
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *out = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some((namespace, digest))
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// What the in-process store files an entry under: the digest itself, or with a namespace a
/// BLAKE3 of the two (in its key-derivation mode, so no such id can equal a request's digest),
/// so that the store holds 32 bytes an entry instead of the key's text and still keeps
/// namespaces apart.
pub fn id(namespace: Option<&str>, digest: &Id) -> Id {
    match namespace {
        None => *digest,
        Some(ns) => {
            let mut h = blake3::Hasher::new_derive_key("sluice cache 2026-12 namespaced local id");
            h.update(&(ns.len() as u64).to_le_bytes());
            h.update(ns.as_bytes());
            h.update(digest);
            *h.finalize().as_bytes()
        }
    }
}

thread_local! {
    static CANONICAL: std::cell::RefCell<Canonical> = std::cell::RefCell::new(Canonical::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The key as the previous build made it (members read by the shared scanner, each value's
    /// spaces dropped in a second walk, the pieces fed to an incremental hasher): the one-pass
    /// canonical form must hash exactly the same bytes, so entries kept in Redis by that build
    /// are still found.
    fn reference(shape: Shape, model_group: &str, body: &[u8]) -> Option<String> {
        let mut members = sluice_wire::members::top_level(body)?;
        members.retain(|(name, _)| !IGNORED.contains(&name.as_ref()));
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = blake3::Hasher::new();
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
        Some(h.finalize().to_hex().to_string())
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

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            "[a-z \"\\\\\n\u{e9}\u{1F600}]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-c\"]{0,3}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A body as some client might spell it: members in any order, spaced any way.
    fn spelled(members: &[(String, serde_json::Value)], spacing: u8) -> String {
        let parts: Vec<String> = members
            .iter()
            .map(|(k, v)| {
                let (k, v) = (serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap());
                match spacing % 3 {
                    0 => format!("{k}:{v}"),
                    1 => format!(
                        "{k}: {}",
                        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&v).unwrap()).unwrap()
                    ),
                    _ => format!("\n\t{k} :\r\n {v} "),
                }
            })
            .collect();
        format!(" {{{}}}\n", parts.join(if spacing.is_multiple_of(2) { "," } else { " , " }))
    }

    proptest! {
        /// The one-pass form hashes what the previous build hashed, whatever the members, their
        /// order and spacing: kept entries keep their keys.
        #[test]
        fn keys_are_the_previous_builds(
            members in proptest::collection::btree_map(
                prop_oneof![Just("model".to_string()), Just("stream".to_string()), Just("metadata".to_string()), "[a-z_\"\\\\\u{e9}]{0,8}"],
                json_value(),
                0..7,
            ),
            shuffle in any::<u64>(),
            spacing in any::<u8>(),
        ) {
            let mut members: Vec<(String, serde_json::Value)> = members.into_iter().collect();
            let n = members.len().max(1);
            members.rotate_left((shuffle as usize) % n);
            if shuffle & 1 == 1 { members.reverse(); }
            let body = spelled(&members, spacing);
            let old = reference(Shape::Chat, "g", body.as_bytes());
            prop_assert!(old.is_some(), "the reference refused {body}");
            prop_assert_eq!(of(Shape::Chat, "g", body.as_bytes(), None), old, "{}", body);
        }

        /// Bytes changed anywhere: never a panic, and wherever the previous build still read an
        /// object, the same key.
        #[test]
        fn mutated_bodies_never_panic_and_agree_where_they_are_json(
            members in proptest::collection::btree_map("[a-z]{1,4}", json_value(), 1..5),
            at in any::<usize>(),
            byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b','), Just(b':'), Just(b' '), any::<u8>()],
            cut in any::<bool>(),
        ) {
            let members: Vec<(String, serde_json::Value)> = members.into_iter().collect();
            let mut body = spelled(&members, 1).into_bytes();
            let at = at % body.len();
            match cut {
                true => body.truncate(at),
                false => body[at] = byte,
            }
            let new = of(Shape::Chat, "g", &body, None);
            if let Some(old) = reference(Shape::Chat, "g", &body) {
                prop_assert_eq!(new, Some(old));
            }
        }
    }

    #[test]
    fn a_keys_text_reads_back_and_namespaces_get_ids_of_their_own() {
        let d = digest(Shape::Chat, "g", br#"{"messages":[]}"#).unwrap();
        for ns in [None, Some(""), Some("team-a"), Some("a:b"), Some("\u{e9}t\u{e9}")] {
            assert_eq!(parse(&text(ns, &d)), Some((ns, d)), "{ns:?}");
        }
        let ids: std::collections::HashSet<Id> =
            [None, Some(""), Some("team-a"), Some("team-b")].into_iter().map(|ns| id(ns, &d)).collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(id(None, &d), d);
        let hex = text(None, &d);
        for bad in [
            String::new(),
            hex[1..].to_string(),
            hex.to_uppercase(),
            format!("x{hex}"),
            format!("ns{hex}"),
            format!("{}g", &hex[..63]),
            format!("{}\u{e9}", &hex[..62]),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
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
