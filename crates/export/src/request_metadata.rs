//! What a request says about its own place in Langfuse, as LiteLLM reads it: the body's
//! `metadata` keys (`trace_id`, `session_id`, `generation_name`, ...) and the `langfuse_*`
//! request headers, a header winning over the body's key of the same name (LiteLLM's
//! `add_metadata_from_header`: `langfuse_trace_id` is `trace_id`).
//!
//! The request path keeps only what it already holds: the body's `metadata` as a slice of the
//! body (no copy; counted against the records' content budget, [`crate::content`]) and the few
//! `langfuse_*` headers a request carries. The sinks read them ([`Carried::read`]), off that
//! path. Every value is bounded: at most [`MAX_VALUE`] bytes, [`MAX_TAGS`] tags.

use crate::content::Content;
use serde::Deserialize;
use serde_json::Value;

/// The longest value kept (an id, a name); a longer one is left out, not cut.
pub const MAX_VALUE: usize = 256;
/// The most tags kept from the request.
pub const MAX_TAGS: usize = 64;
/// The largest `metadata` object held for reading.
pub const MAX_METADATA: usize = 64 * 1024;
/// The most `langfuse_*` headers kept from one request.
pub const MAX_HEADERS: usize = 16;
/// The prefix of LiteLLM's Langfuse headers.
pub const HEADER_PREFIX: &str = "langfuse_";

/// The keys read, as LiteLLM names them in `metadata` (and, with [`HEADER_PREFIX`], as headers).
const KEYS: [&str; 10] = [
    "trace_id",
    "existing_trace_id",
    "trace_name",
    "trace_user_id",
    "session_id",
    "generation_name",
    "generation_id",
    "trace_version",
    "trace_release",
    "tags",
];

/// What the request path kept for [`RequestMetadata`].
#[derive(Debug, Default)]
pub struct Carried {
    metadata: Option<Content>,
    headers: Vec<(&'static str, Box<str>)>,
}

impl Carried {
    /// The request's `metadata` JSON (as its body has it) and its headers, as name and value;
    /// `None` when there is no `metadata` and no `langfuse_*` header LiteLLM reads. Only the
    /// `langfuse_*` headers' values are looked at.
    pub fn new<'h>(metadata: Option<&[u8]>, headers: impl Iterator<Item = (&'h str, &'h [u8])>) -> Option<Carried> {
        // Held as it is (copied, not parsed): what it names is the sink's to read, off the
        // request path.
        let metadata = metadata.filter(|m| m.len() <= MAX_METADATA).and_then(Content::hold);
        let mut kept = Vec::new();
        for (name, value) in headers {
            let Some(key) = name.strip_prefix(HEADER_PREFIX) else { continue };
            let Some(&key) = KEYS.iter().find(|k| **k == key) else { continue };
            let Ok(value) = std::str::from_utf8(value) else { continue };
            if kept.len() < MAX_HEADERS && !value.is_empty() && value.len() <= MAX_VALUE * 4 {
                kept.push((key, value.into()));
            }
        }
        (metadata.is_some() || !kept.is_empty()).then_some(Carried { metadata, headers: kept })
    }

    /// What was kept, read: the body's keys, then the headers over them.
    pub fn read(&self) -> RequestMetadata {
        let mut out = RequestMetadata::default();
        if let Some(m) = self.metadata.as_ref().and_then(|m| serde_json::from_slice::<Fields>(m.as_bytes()).ok()) {
            for (key, value) in [
                ("trace_id", m.trace_id),
                ("existing_trace_id", m.existing_trace_id),
                ("trace_name", m.trace_name),
                ("trace_user_id", m.trace_user_id),
                ("session_id", m.session_id),
                ("generation_name", m.generation_name),
                ("generation_id", m.generation_id),
                ("trace_version", m.trace_version),
                ("trace_release", m.trace_release),
                ("tags", m.tags),
            ] {
                if let Some(value) = value {
                    out.set(key, value);
                }
            }
        }
        for (key, value) in &self.headers {
            // A header's tags may be a JSON list or a comma-separated one.
            let value = match (*key, serde_json::from_str::<Value>(value)) {
                ("tags", Ok(list @ Value::Array(_))) => list,
                ("tags", _) => value.split(',').map(|t| Value::String(t.trim().to_string())).collect(),
                _ => Value::String(value.to_string()),
            };
            out.set(key, value);
        }
        out
    }
}

#[derive(Deserialize)]
struct Fields {
    trace_id: Option<Value>,
    existing_trace_id: Option<Value>,
    trace_name: Option<Value>,
    trace_user_id: Option<Value>,
    session_id: Option<Value>,
    generation_name: Option<Value>,
    generation_id: Option<Value>,
    trace_version: Option<Value>,
    trace_release: Option<Value>,
    tags: Option<Value>,
}

/// The request's Langfuse settings, each bounded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestMetadata {
    /// The trace this call is logged in (LiteLLM: the call id when not given).
    pub trace_id: Option<String>,
    /// An existing trace this call is added to, without changing its name, user or tags.
    pub existing_trace_id: Option<String>,
    pub trace_name: Option<String>,
    pub trace_user_id: Option<String>,
    pub session_id: Option<String>,
    pub generation_name: Option<String>,
    pub generation_id: Option<String>,
    pub trace_version: Option<String>,
    pub trace_release: Option<String>,
    pub tags: Vec<String>,
}

impl RequestMetadata {
    /// Sets `key` from a JSON value: a string (or a number, as text) of at most [`MAX_VALUE`]
    /// bytes; for `tags`, a list of such strings. Anything else leaves the key as it was.
    fn set(&mut self, key: &str, value: Value) {
        if key == "tags" {
            if let Value::Array(items) = value {
                self.tags = items.into_iter().filter_map(text).filter(|t| !t.is_empty()).take(MAX_TAGS).collect();
            }
            return;
        }
        let Some(value) = text(value).filter(|v| !v.is_empty()) else { return };
        let slot = match key {
            "trace_id" => &mut self.trace_id,
            "existing_trace_id" => &mut self.existing_trace_id,
            "trace_name" => &mut self.trace_name,
            "trace_user_id" => &mut self.trace_user_id,
            "session_id" => &mut self.session_id,
            "generation_name" => &mut self.generation_name,
            "generation_id" => &mut self.generation_id,
            "trace_version" => &mut self.trace_version,
            "trace_release" => &mut self.trace_release,
            _ => return,
        };
        *slot = Some(value);
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) if s.len() <= MAX_VALUE => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carried(metadata: &str, headers: &[(&str, &str)]) -> Option<Carried> {
        let metadata = (!metadata.is_empty()).then_some(metadata.as_bytes());
        Carried::new(metadata, headers.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn the_bodys_keys_are_read_and_headers_win() {
        let c = carried(
            r#"{"trace_id":"t-1","session_id":"s-1","generation_name":"g","generation_id":7,"trace_name":"n",
               "trace_user_id":"u","existing_trace_id":null,"tags":["a","b",3,{"x":1}],"other":"ignored"}"#,
            &[
                ("langfuse_session_id", "s-2"),
                ("langfuse_tags", "x, y"),
                ("langfuse_unknown", "z"),
                ("user-agent", "k"),
            ],
        )
        .unwrap();
        let m = c.read();
        assert_eq!(m.trace_id.as_deref(), Some("t-1"));
        assert_eq!(m.session_id.as_deref(), Some("s-2"));
        assert_eq!(m.generation_name.as_deref(), Some("g"));
        assert_eq!(m.generation_id.as_deref(), Some("7"));
        assert_eq!((m.trace_name.as_deref(), m.trace_user_id.as_deref()), (Some("n"), Some("u")));
        assert_eq!(m.existing_trace_id, None);
        assert_eq!(m.tags, ["x", "y"]);
        let m =
            carried("", &[("langfuse_existing_trace_id", "old"), ("langfuse_tags", r#"["p","q"]"#)]).unwrap().read();
        assert_eq!(
            (m.existing_trace_id.as_deref(), m.tags.as_slice()),
            (Some("old"), &["p".to_string(), "q".into()][..])
        );
    }

    #[test]
    fn nothing_is_kept_for_a_request_without_them() {
        assert!(carried("", &[("authorization", "Bearer sk-1"), ("langfuse_other", "x")]).is_none());
        // A body's metadata is kept as sent; what it names is read later.
        assert_eq!(carried(r#"{"user":"x"}"#, &[]).unwrap().read(), RequestMetadata::default());
    }

    #[test]
    fn values_are_bounded() {
        let long = "x".repeat(MAX_VALUE + 1);
        let tags: Vec<String> = (0..MAX_TAGS + 10).map(|i| i.to_string()).collect();
        let body = serde_json::json!({"trace_id": long, "session_id": "ok", "tags": tags}).to_string();
        let m = carried(&body, &[]).unwrap().read();
        assert_eq!((m.trace_id, m.session_id.as_deref(), m.tags.len()), (None, Some("ok"), MAX_TAGS));
        let huge = format!(r#"{{"trace_id":"t","pad":"{}"}}"#, "x".repeat(MAX_METADATA));
        assert!(carried(&huge, &[]).is_none());
        let many: Vec<(&str, &str)> = (0..MAX_HEADERS + 5).map(|_| ("langfuse_trace_id", "t")).collect();
        assert_eq!(carried("", &many).unwrap().headers.len(), MAX_HEADERS);
    }
}
