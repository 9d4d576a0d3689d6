//! Who is calling: the master key, read from the headers LiteLLM reads, compared in constant time.
//!
//! Virtual keys arrive with the key-management work; until then any key other than the master key
//! is answered with LiteLLM's "invalid token" 401.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use sluice_wire::ApiError;
use subtle::ConstantTimeEq;

/// The configured master key, kept only as its SHA-256 digest.
pub struct MasterKey {
    digest: [u8; 32],
}

impl MasterKey {
    pub fn new(key: &str) -> Self {
        MasterKey { digest: Sha256::digest(key.as_bytes()).into() }
    }

    /// Comparing digests makes the comparison constant-time whatever the presented key's length.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&self.digest).into()
    }
}

/// The key a request presents, in LiteLLM's order of precedence (reference §3.1).
pub fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(v) = headers.get("x-litellm-api-key") {
        return Ok(Some(header_str(v)?));
    }
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = header_str(v)?.trim();
        for prefix in ["Bearer ", "bearer ", "Basic ", "basic "] {
            if let Some(rest) = v.strip_prefix(prefix) {
                return Ok(Some(rest.trim()));
            }
        }
        return Err(auth_error("Malformed API Key passed in. Ensure Key has `Bearer ` prefix."));
    }
    for name in ["api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key"] {
        if let Some(v) = headers.get(name) {
            return Ok(Some(header_str(v)?));
        }
    }
    Ok(None)
}

/// Admits the request or says why not, with LiteLLM's 401 bodies.
pub fn check(master: Option<&MasterKey>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(master) = master else {
        return Ok(());
    };
    let key = presented_key(headers)?.filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(auth_error("No api key passed in."));
    };
    if master.matches(key) {
        return Ok(());
    }
    if !key.starts_with("sk-") {
        return Err(not_virtual_key(key));
    }
    Err(unknown_key(key, &hex::encode(Sha256::digest(key.as_bytes()))))
}

pub fn not_virtual_key(key: &str) -> ApiError {
    auth_error(format!("LiteLLM Virtual Key expected. Received={}, expected to start with 'sk-'.", abbreviate(key)))
}

/// LiteLLM's 401 for a well-formed key that is not in the database.
pub fn unknown_key(key: &str, hash: &str) -> ApiError {
    ApiError::new(
        401,
        format!(
            "Authentication Error, Invalid proxy server token passed. Received API Key = sk-...{}, Key Hash (Token) ={hash}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
            last4(key)
        ),
    )
    .kind("token_not_found_in_db")
    .param("key")
}

pub fn auth_error(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(401, format!("Authentication Error, {message}")).kind("auth_error")
}

fn header_str(v: &http::HeaderValue) -> Result<&str, ApiError> {
    v.to_str().map_err(|_| auth_error("API key header contains non-ASCII characters."))
}

fn last4(key: &str) -> &str {
    let n = key.len();
    if n <= 8 || !key.is_char_boundary(n - 4) {
        return "****";
    }
    &key[n - 4..]
}

/// `sk-1****abcd`: enough for a person to recognise their key, not enough to use it.
pub fn abbreviate(key: &str) -> String {
    if key.len() <= 8 || !key.is_char_boundary(4) || !key.is_char_boundary(key.len() - 4) {
        return "****".into();
    }
    format!("{}****{}", &key[..4], &key[key.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn accepts_master_key_from_every_litellm_header() {
        let m = MasterKey::new("sk-1234");
        for h in [
            headers(&[("authorization", "Bearer sk-1234")]),
            headers(&[("authorization", "bearer sk-1234")]),
            headers(&[("x-litellm-api-key", "sk-1234")]),
            headers(&[("api-key", "sk-1234")]),
            headers(&[("x-api-key", "sk-1234")]),
        ] {
            assert!(check(Some(&m), &h).is_ok(), "{h:?}");
        }
    }

    #[test]
    fn x_litellm_api_key_takes_precedence() {
        let m = MasterKey::new("sk-1234");
        let h = headers(&[("x-litellm-api-key", "sk-1234"), ("authorization", "Bearer upstream-key")]);
        assert!(check(Some(&m), &h).is_ok());
    }

    #[test]
    fn rejections_use_litellm_bodies_and_never_echo_the_key() {
        let m = MasterKey::new("sk-1234");
        let e = check(Some(&m), &HeaderMap::new()).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (401, "Authentication Error, No api key passed in."));
        let e = check(Some(&m), &headers(&[("authorization", "Token abc")])).unwrap_err();
        assert!(e.message.contains("Ensure Key has `Bearer ` prefix"));
        let e = check(Some(&m), &headers(&[("authorization", "Bearer sk-wrong-secret-value")])).unwrap_err();
        assert_eq!(e.kind.as_deref(), Some("token_not_found_in_db"));
        assert!(e.message.contains("sk-...alue"));
        assert!(!e.message.contains("wrong-secret"));
        let e = check(Some(&m), &headers(&[("authorization", "Bearer nope-not-a-virtual-key")])).unwrap_err();
        assert!(e.message.contains("nope****-key"), "{}", e.message);
    }

    #[test]
    fn open_without_master_key() {
        assert!(check(None, &HeaderMap::new()).is_ok());
    }
}
