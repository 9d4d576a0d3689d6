//! What a gateway's tests need to see of the requests that reached the mock: whether they
//! carried the provider credential the gateway was given (`--provider-key`: anything else is a
//! 401, as a real provider answers), and the last one as it arrived (`--record`, read back with
//! `GET /mock/last`): method, path, query, headers and body, so a test can show a body was
//! relayed untouched and that no gateway key went upstream.

use bytes::Bytes;
use http::HeaderMap;
use std::sync::Mutex;

/// Where a provider credential rides, in each provider's way.
pub fn credential_matches(expected: &str, headers: &HeaderMap, query: Option<&str>) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(auth) = header("authorization") {
        if auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) == Some(expected) {
            return true;
        }
        // SigV4: the access key id is the credential's first part.
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 Credential=") {
            if rest.split('/').next() == Some(expected) {
                return true;
            }
        }
    }
    if ["x-api-key", "x-goog-api-key", "api-key"].iter().any(|n| header(n) == Some(expected)) {
        return true;
    }
    query.is_some_and(|q| q.split('&').any(|pair| pair.strip_prefix("key=") == Some(expected)))
}

/// The 401 a request without the expected credential gets: OpenAI's envelope, echoing what the
/// request carried in full, as some OpenAI-compatible servers do (OpenAI itself masks all but
/// the last four characters), so a gateway's tests can show the echo never reaches a caller.
pub fn refused_credential(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let carried = header("authorization")
        .map(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")).unwrap_or(a))
        .or_else(|| ["x-api-key", "x-goog-api-key", "api-key"].iter().find_map(|n| header(n)))
        .unwrap_or("");
    let message = format!(
        "mock: the request did not carry the provider credential (--provider-key). Incorrect API key provided: {carried}."
    );
    serde_json::json!({"error": {"message": message, "type": "authentication_error", "code": "invalid_api_key"}})
        .to_string()
}

/// The last request seen, as `GET /mock/last` renders it.
#[derive(Default)]
pub struct Last {
    seen: Mutex<Option<Seen>>,
}

struct Seen {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Last {
    pub fn record(&self, parts: &http::request::Parts, body: &Bytes) {
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: body.clone(),
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
    }

    /// `{"method","path","query","headers":{name: value},"body"}` (the body as text, lossily),
    /// or `null` before any request.
    pub fn to_json(&self) -> String {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = seen.as_ref() else { return "null".into() };
        let mut headers = serde_json::Map::new();
        for (n, v) in &s.headers {
            // Repeated fields joined as HTTP allows.
            let joined = match headers.get(n).and_then(|x| x.as_str()) {
                Some(prev) => format!("{prev}, {v}"),
                None => v.clone(),
            };
            headers.insert(n.clone(), joined.into());
        }
        serde_json::json!({
            "method": s.method,
            "path": s.path,
            "query": s.query,
            "headers": headers,
            "body": String::from_utf8_lossy(&s.body),
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn each_providers_credential_is_recognised() {
        let k = "prov-key";
        assert!(credential_matches(k, &h(&[("authorization", "Bearer prov-key")]), None));
        assert!(credential_matches(k, &h(&[("x-api-key", "prov-key")]), None));
        assert!(credential_matches(k, &h(&[("x-goog-api-key", "prov-key")]), None));
        assert!(credential_matches(k, &h(&[("api-key", "prov-key")]), None));
        assert!(credential_matches(k, &HeaderMap::new(), Some("alt=sse&key=prov-key")));
        let sig = "AWS4-HMAC-SHA256 Credential=prov-key/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=0";
        assert!(credential_matches(k, &h(&[("authorization", sig)]), None));
        assert!(!credential_matches(k, &h(&[("authorization", "Bearer sk-gateway")]), None));
        assert!(!credential_matches(k, &h(&[("x-api-key", "prov-key-not")]), None));
        assert!(!credential_matches(k, &HeaderMap::new(), None));
    }
}
