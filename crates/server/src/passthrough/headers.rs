//! Which of a pass-through call's fields go where: where the caller's sluice key is found (the
//! header its provider's SDK puts a key in, a SigV4 `Credential=`, Gemini's `?key=`), which of
//! the caller's fields go upstream (never a form of its key, never hop-by-hop ones), and which
//! of the answer's come back.

use http::{HeaderMap, HeaderName, HeaderValue};

const LITELLM_KEY: HeaderName = HeaderName::from_static("x-litellm-api-key");

/// Where the caller's key is when it is not in a header `access` reads as it is: a map holding
/// it as `x-litellm-api-key`, else `None` (the request's own headers serve).
///
/// - LiteLLM's legacy `litellm_user_api_key` header (its boto3 examples add it);
/// - boto3 signs with whatever credentials it has: `Authorization: AWS4-HMAC-SHA256
///   Credential=<access key id>/…`. A sluice key used as the access key id is the caller's key
///   (LiteLLM reads it the same way); a dummy one is no key at all;
/// - `?key=` in the query (Google's API-key parameter) when no header carries a key.
pub fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<HeaderMap> {
    if headers.contains_key(&LITELLM_KEY) {
        return None;
    }
    let holding = |key: &str| {
        let mut map = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(key.trim()) {
            map.insert(LITELLM_KEY, v);
        }
        Some(map)
    };
    if let Some(v) = headers.get("litellm_user_api_key").and_then(|v| v.to_str().ok()) {
        return holding(v);
    }
    if let Some(auth) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") {
            let key = rest
                .split([',', ' '])
                .find_map(|part| part.trim().strip_prefix("Credential="))
                .and_then(|c| c.split('/').next())
                .map(|k| k.strip_prefix("Bearer ").unwrap_or(k))
                .unwrap_or("");
            return holding(key);
        }
        return None;
    }
    let any_key_header = ["api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key"]
        .iter()
        .any(|name| headers.contains_key(*name));
    if any_key_header {
        return None;
    }
    let key = query?.split('&').find_map(|pair| pair.strip_prefix("key="))?;
    holding(key)
}

/// The query without its `key` parameter.
pub fn without_key_param(query: &str) -> String {
    query.split('&').filter(|pair| *pair != "key" && !pair.starts_with("key=")).collect::<Vec<_>>().join("&")
}

/// Copies the caller's fields that go upstream: all but the hop-by-hop and framing ones (the
/// client writes its own), `accept-encoding` (the answer's usage is read on the way, so it comes
/// uncompressed), and, when `strip_key`, every header a sluice key may ride in. With `sigv4` the
/// caller's own signature fields go too: the request is signed again.
pub fn forward_request_fields(from: &HeaderMap, out: &mut HeaderMap, strip_key: bool, sigv4: bool) {
    for (name, value) in from {
        let n = name.as_str();
        let dropped = matches!(
            n,
            "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "keep-alive"
                | "proxy-connection"
                | "te"
                | "trailer"
                | "upgrade"
                | "expect"
                | "accept-encoding"
        ) || (strip_key && is_key_field(n))
            || (sigv4 && (n.starts_with("x-amz-") || n == "authorization"));
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
}

/// A header that may carry a sluice key.
fn is_key_field(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "x-api-key"
            | "x-goog-api-key"
            | "x-litellm-api-key"
            | "api-key"
            | "ocp-apim-subscription-key"
            | "litellm_user_api_key"
    )
}

/// Whether an answer's field goes back to the client: all but the hop-by-hop ones and the
/// framing, which the gateway's server writes for its own connection.
pub fn relayed_answer_field(name: &[u8]) -> bool {
    let is = |x: &[u8]| name.eq_ignore_ascii_case(x);
    !(is(b"connection")
        || is(b"keep-alive")
        || is(b"proxy-connection")
        || is(b"transfer-encoding")
        || is(b"content-length")
        || is(b"te")
        || is(b"trailer")
        || is(b"upgrade"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    fn key_in(found: Option<HeaderMap>) -> Option<String> {
        found.map(|m| m.get("x-litellm-api-key").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default())
    }

    #[test]
    fn keys_are_found_where_sdks_send_them() {
        let sigv4 = "AWS4-HMAC-SHA256 Credential=sk-abc/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=ff";
        assert_eq!(key_in(presented_key(&map(&[("authorization", sigv4)]), None)).as_deref(), Some("sk-abc"));
        let dummy = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request";
        assert_eq!(key_in(presented_key(&map(&[("authorization", dummy)]), None)).as_deref(), Some("AKIDEXAMPLE"));
        // The explicit header wins over a signature.
        assert!(presented_key(&map(&[("authorization", sigv4), ("x-litellm-api-key", "sk-x")]), None).is_none());
        let legacy = map(&[("authorization", dummy), ("litellm_user_api_key", "sk-legacy")]);
        assert_eq!(key_in(presented_key(&legacy, None)).as_deref(), Some("sk-legacy"));
        assert_eq!(key_in(presented_key(&HeaderMap::new(), Some("alt=sse&key=sk-q"))).as_deref(), Some("sk-q"));
        assert!(presented_key(&map(&[("x-goog-api-key", "sk-g")]), Some("key=sk-q")).is_none());
        assert!(presented_key(&map(&[("authorization", "Bearer sk-b")]), None).is_none());
        assert!(presented_key(&HeaderMap::new(), None).is_none());
    }

    #[test]
    fn no_form_of_the_key_goes_upstream() {
        let from = map(&[
            ("authorization", "Bearer sk-caller"),
            ("x-api-key", "sk-caller"),
            ("x-goog-api-key", "sk-caller"),
            ("x-litellm-api-key", "sk-caller"),
            ("api-key", "sk-caller"),
            ("ocp-apim-subscription-key", "sk-caller"),
            ("litellm_user_api_key", "sk-caller"),
            ("connection", "keep-alive"),
            ("accept-encoding", "gzip"),
            ("host", "gateway"),
            ("anthropic-version", "2023-06-01"),
            ("x-amz-date", "20250101T000000Z"),
        ]);
        let mut out = HeaderMap::new();
        forward_request_fields(&from, &mut out, true, true);
        let names: Vec<&str> = out.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["anthropic-version"]);
        let mut open = HeaderMap::new();
        forward_request_fields(&from, &mut open, false, false);
        assert!(open.contains_key("authorization") && open.contains_key("x-amz-date"));
        assert!(!open.contains_key("host") && !open.contains_key("accept-encoding"));
    }

    #[test]
    fn the_key_parameter_is_dropped_from_queries() {
        assert_eq!(without_key_param("key=sk-1&alt=sse"), "alt=sse");
        assert_eq!(without_key_param("alt=sse&key=sk-1"), "alt=sse");
        assert_eq!(without_key_param("keys=1&key"), "keys=1");
        assert_eq!(without_key_param("key=sk-1"), "");
    }

    #[test]
    fn answers_keep_all_but_framing() {
        for name in ["Connection", "transfer-encoding", "Content-Length", "keep-alive"] {
            assert!(!relayed_answer_field(name.as_bytes()), "{name}");
        }
        for name in ["content-type", "request-id", "x-amzn-requestid", "anthropic-ratelimit-requests-remaining"] {
            assert!(relayed_answer_field(name.as_bytes()), "{name}");
        }
    }

    proptest::proptest! {
        /// Whatever a caller puts in its signature or query, reading the key never panics, a
        /// key read from a SigV4 credential is its first part only, and no `key` parameter
        /// survives the query's cleaning.
        #[test]
        fn any_signature_or_query_is_read_safely(auth in "\\PC{0,80}", query in "[a-z=&%/.-]{0,60}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("AWS4-HMAC-SHA256 {auth}")) {
                h.insert("authorization", v);
            }
            if let Some(found) = presented_key(&h, Some(&query)) {
                if let Some(k) = found.get("x-litellm-api-key") {
                    proptest::prop_assert!(!k.as_bytes().contains(&b'/'));
                }
            }
            let cleaned = without_key_param(&query);
            proptest::prop_assert!(!cleaned.split('&').any(|p| p == "key" || p.starts_with("key=")));
            let only_query = presented_key(&HeaderMap::new(), Some(&query));
            if let Some(found) = only_query {
                proptest::prop_assert!(found.len() <= 1);
            }
        }
    }
}
