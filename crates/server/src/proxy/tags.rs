//! A request's tags, for tag-based routing and the spend log's `request_tags`: `metadata.tags`,
//! else a top-level `tags` (LiteLLM reads both). Parsed only when tag routing is on or the body
//! mentions `"tags"` at all ([`mentioned`]); tags that are not a list of strings carry none, as
//! in LiteLLM.

use serde::Deserialize;
use serde_json::Value;

/// At most this many tags are read from one request, each at most [`MAX_TAG`] bytes: tags are
/// compared against every deployment's and logged with the request, so their count and size are
/// bounded by the gateway (the bounds the spend-log row keeps too).
pub use sluice_access::charge::{MAX_TAG, MAX_TAGS};

/// Only the two fields: the rest of the body is skipped, not built.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    tags: Option<Value>,
}

/// Whether `body` could carry tags: the word appears in it. One memchr-driven scan, so a body
/// without tags (nearly all) is never parsed for them.
pub fn mentioned(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"tags\"").is_some()
}

/// The tags of the JSON request `body` (already checked to be JSON by the sniffer).
pub fn of_request(body: &[u8]) -> Vec<String> {
    let Ok(b) = serde_json::from_slice::<Body>(body) else { return Vec::new() };
    let in_metadata = match b.metadata {
        Some(Value::Object(mut m)) => m.remove("tags").filter(Value::is_array),
        _ => None,
    };
    match in_metadata.or(b.tags) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|t| match t {
                Value::String(s) if s.len() <= MAX_TAG => Some(s),
                _ => None,
            })
            .take(MAX_TAGS)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{mentioned, of_request};
    use proptest::prelude::*;

    #[test]
    fn reads_metadata_tags_then_top_level_tags() {
        assert_eq!(of_request(br#"{"model":"m","metadata":{"tags":["a","b"],"x":1}}"#), ["a", "b"]);
        assert_eq!(of_request(br#"{"model":"m","tags":["t"]}"#), ["t"]);
        assert_eq!(of_request(br#"{"metadata":{"tags":"a"},"tags":["t"]}"#), ["t"]);
        assert_eq!(of_request(br#"{"metadata":{"tags":[1,"a",null]}}"#), ["a"]);
        assert!(of_request(br#"{"metadata":"tags"}"#).is_empty());
        assert!(of_request(br#"{"model":"m"}"#).is_empty());
        assert!(of_request(b"not json").is_empty());
        assert!(mentioned(br#"{"metadata":{"tags":["a"]}}"#));
        assert!(!mentioned(br#"{"model":"m","messages":[{"content":"no tags here"}]}"#));
        let many = format!(r#"{{"tags":[{}]}}"#, vec!["\"x\""; 1000].join(","));
        assert_eq!(of_request(many.as_bytes()).len(), super::MAX_TAGS);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = of_request(&bytes);
        }

        #[test]
        fn mutated_requests_never_panic(tags in proptest::collection::vec(".{0,12}", 0..8), cut in 0usize..200) {
            let body = serde_json::json!({"model": "m", "metadata": {"tags": tags}}).to_string();
            let cut = cut.min(body.len());
            let _ = of_request(&body.as_bytes()[..cut]);
            prop_assert_eq!(of_request(body.as_bytes()), tags);
        }
    }
}
