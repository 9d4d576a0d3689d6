//! A request's tags, for tag-based routing and the spend log's `request_tags`: `metadata.tags`,
//! else a top-level `tags` (LiteLLM reads both). Read from those two fields alone, as the
//! sniffer found them ([`sluice_wire::sniff::RequestView`]'s `tags` and `metadata`): a body with
//! neither (nearly all) costs nothing, and `metadata` is parsed only when it names `tags`. Tags
//! that are not a list of strings carry none, as in LiteLLM.

use serde::Deserialize;
use serde_json::Value;

/// At most this many tags are read from one request, each at most [`MAX_TAG`] bytes: tags are
/// compared against every deployment's and logged with the request, so their count and size are
/// bounded by the gateway (the bounds the spend-log row keeps too).
pub use sluice_access::charge::{MAX_TAG, MAX_TAGS};

/// `metadata`'s one field read here: the rest is skipped, not built.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    tags: Option<Value>,
}

/// The tags of a request whose top-level `tags` and `metadata` hold this raw JSON.
pub fn of_request(tags: Option<&str>, metadata: Option<&str>) -> Vec<String> {
    let in_metadata = metadata
        .filter(|m| m.contains("\"tags\""))
        .and_then(|m| serde_json::from_str::<Metadata>(m).ok())
        .and_then(|m| m.tags)
        .filter(Value::is_array);
    let top_level = || tags.and_then(|t| serde_json::from_str::<Value>(t).ok());
    match in_metadata.or_else(top_level) {
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
    use super::of_request;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// The two fields as the sniffer hands them over.
    fn of_body(body: &[u8]) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Fields<'a> {
            #[serde(borrow, default)]
            tags: Option<&'a RawValue>,
            #[serde(borrow, default)]
            metadata: Option<&'a RawValue>,
        }
        match serde_json::from_slice::<Fields>(body) {
            Ok(f) => of_request(f.tags.map(RawValue::get), f.metadata.map(RawValue::get)),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn reads_metadata_tags_then_top_level_tags() {
        assert_eq!(of_body(br#"{"model":"m","metadata":{"tags":["a","b"],"x":1}}"#), ["a", "b"]);
        assert_eq!(of_body(br#"{"model":"m","tags":["t"]}"#), ["t"]);
        assert_eq!(of_body(br#"{"metadata":{"tags":"a"},"tags":["t"]}"#), ["t"]);
        assert_eq!(of_body(br#"{"metadata":{"x":1},"tags":["t"]}"#), ["t"]);
        assert_eq!(of_body(br#"{"metadata":{"tags":[1,"a",null]}}"#), ["a"]);
        assert!(of_body(br#"{"metadata":"tags"}"#).is_empty());
        assert!(of_body(br#"{"model":"m","messages":[{"content":"\"tags\": [\"no\"]"}]}"#).is_empty());
        assert!(of_body(br#"{"model":"m"}"#).is_empty());
        let many = format!(r#"{{"tags":[{}]}}"#, vec!["\"x\""; 1000].join(","));
        assert_eq!(of_body(many.as_bytes()).len(), super::MAX_TAGS);
    }

    #[test]
    fn the_sniffer_hands_over_both_fields() {
        let body = br#"{"model":"m","messages":[],"metadata":{"tags":["a"]},"tags":["t"]}"#;
        let view = sluice_wire::sniff::request(body, sluice_wire::sniff::Endpoint::Chat).unwrap();
        assert_eq!(of_request(view.tags, view.metadata), ["a"]);
        let body = br#"{"model":"m","messages":[{"role":"user","content":"\"tags\""}]}"#;
        let view = sluice_wire::sniff::request(body, sluice_wire::sniff::Endpoint::Chat).unwrap();
        assert!(view.tags.is_none() && view.metadata.is_none());
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(a in ".{0,256}", b in ".{0,256}") {
            let _ = of_request(Some(&a), Some(&b));
            let _ = of_request(None, Some(&a));
            let _ = of_request(Some(&b), None);
        }

        #[test]
        fn mutated_requests_never_panic(tags in proptest::collection::vec(".{0,12}", 0..8), cut in 0usize..200) {
            let body = serde_json::json!({"model": "m", "metadata": {"tags": tags}}).to_string();
            let cut = cut.min(body.len());
            let _ = of_body(&body.as_bytes()[..cut]);
            prop_assert_eq!(of_body(body.as_bytes()), tags);
        }
    }
}
