//! IBM Cloud IAM (watsonx.ai): an API key exchanged for a bearer token at
//! `https://iam.cloud.ibm.com/identity/token` (or `WATSONX_IAM_URL`, as LiteLLM reads it), a
//! form POST of `grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=…`. The token — an hour
//! long — sits in a [`Cached`]: refreshed before it expires, one fetch for every concurrent
//! caller, one cache for every deployment with the same key ([`shared`]).

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{BoxFuture, Cached, Fresh, Source};
use crate::fetch::{self, form_encode, preview};

pub const DEFAULT_IAM_URL: &str = "https://iam.cloud.ibm.com/identity/token";
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// IAM's tokens live an hour; a stated lifetime becomes a deadline, so it is bounded.
const MAX_EXPIRES_IN: u64 = 24 * 3600;
const DEFAULT_EXPIRES_IN: u64 = 3600;

/// An API key and the IAM endpoint that exchanges it. `Debug` shows the endpoint, never the key.
pub struct Iam {
    api_key: String,
    url: String,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam").field("url", &self.url).finish_non_exhaustive()
    }
}

/// The `Authorization` value (`Bearer …`, marked sensitive) for an IAM API key.
pub type IamToken = Cached<Iam>;

pub fn token(api_key: &str, url: &str) -> Arc<IamToken> {
    Cached::new(Iam { api_key: api_key.to_string(), url: url.to_string() })
}

/// As [`token`], refreshing `early` before expiry (tests).
pub fn token_with_margin(api_key: &str, url: &str, early: Duration) -> Arc<IamToken> {
    Cached::with_margin(Iam { api_key: api_key.to_string(), url: url.to_string() }, early)
}

/// As [`token`], one cache for every caller with the same key and endpoint; only caches still in
/// use are kept.
pub fn shared(api_key: &str, url: &str) -> Arc<IamToken> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, Weak};
    type Kept = Mutex<HashMap<(String, String), Weak<IamToken>>>;
    static KEPT: OnceLock<Kept> = OnceLock::new();
    let key = (api_key.to_string(), url.to_string());
    let mut kept = KEPT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    kept.retain(|_, c| c.strong_count() > 0);
    if let Some(c) = kept.get(&key).and_then(Weak::upgrade) {
        return c;
    }
    let c = token(api_key, url);
    kept.insert(key, Arc::downgrade(&c));
    c
}

impl Source for Iam {
    type Value = HeaderValue;

    fn fetch(&self) -> BoxFuture<'_, Result<Fresh<HeaderValue>, String>> {
        Box::pin(async move {
            let form =
                format!("grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey={}", form_encode(&self.api_key));
            let headers = [
                (CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded")),
                (ACCEPT, HeaderValue::from_static("application/json")),
            ];
            let answer = fetch::fetch(Method::POST, &self.url, &headers, Bytes::from(form), TOKEN_TIMEOUT)
                .await
                .map_err(|e| format!("IBM Cloud IAM: {e}"))?;
            if !answer.status.is_success() {
                return Err(format!(
                    "IBM Cloud IAM refused the API key ({}): {}; check the deployment's api_key (or WATSONX_APIKEY)",
                    answer.status,
                    refusal(&answer.body)
                ));
            }
            let (token, expires_in) = parse(&answer.body)?;
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "IBM Cloud IAM's token is not a valid header value".to_string())?;
            value.set_sensitive(true);
            Ok(Fresh { value, lifetime: Some(Duration::from_secs(expires_in)) })
        })
    }
}

/// IAM's error answer (`errorMessage`, `errorCode`), else its start.
fn refusal(body: &[u8]) -> String {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| v.as_ref().and_then(|v| v.get(k)).and_then(Value::as_str).map(str::to_string);
    match (field("errorCode"), field("errorMessage")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message,
        _ => preview(body),
    }
}

/// `access_token` and `expires_in` (seconds, bounded) of a successful answer.
pub fn parse(body: &[u8]) -> Result<(String, u64), String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "IBM Cloud IAM answered with something that is not JSON".to_string())?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("IBM Cloud IAM's answer has no access_token")?;
    let expires_in = v
        .get("expires_in")
        .and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(DEFAULT_EXPIRES_IN)
        .min(MAX_EXPIRES_IN);
    Ok((token.to_string(), expires_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_bounded() {
        assert_eq!(
            parse(br#"{"access_token":"eyJ","expires_in":3600,"token_type":"Bearer"}"#).unwrap(),
            ("eyJ".into(), 3600)
        );
        assert_eq!(parse(br#"{"access_token":"eyJ","expires_in":999999999}"#).unwrap().1, MAX_EXPIRES_IN);
        assert_eq!(parse(br#"{"access_token":"eyJ"}"#).unwrap().1, 3600);
        assert!(parse(br#"{"expires_in":3600}"#).is_err());
        assert!(parse(b"<html>").is_err());
        assert_eq!(
            refusal(br#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}"#),
            "BXNIM0415E: Provided API key could not be found."
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let t = token("very-secret-key", DEFAULT_IAM_URL);
        let d = format!("{t:?}");
        assert!(d.contains("iam.cloud.ibm.com") && !d.contains("very-secret"), "{d}");
        assert!(Arc::ptr_eq(&shared("k", "http://a"), &shared("k", "http://a")));
    }
}
