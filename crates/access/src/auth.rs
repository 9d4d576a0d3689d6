//! The pieces of authentication: the key a request presents (from the headers LiteLLM reads), the
//! master key compared in constant time, and LiteLLM's 401 bodies. [`crate::Access::identify`]
//! puts them together with the virtual keys.

use http::HeaderMap;
use sluice_wire::ApiError;
use subtle::ConstantTimeEq;

/// The configured master key.
///
/// Compared byte for byte in constant time: how long a comparison takes tells a caller only
/// whether the key it sent has the master key's length, as with LiteLLM's
/// `secrets.compare_digest`. Comparing SHA-256 digests instead hid the length too, but hashed
/// every request's key on the request path.
pub struct MasterKey {
    key: Box<[u8]>,
}

impl MasterKey {
    pub fn new(key: &str) -> Self {
        MasterKey { key: key.as_bytes().into() }
    }

    pub fn matches(&self, presented: &str) -> bool {
        presented.as_bytes().ct_eq(&self.key).into()
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
    use super::MasterKey;

    #[test]
    fn master_key_matches_only_itself() {
        let master = MasterKey::new("sk-1234");
        assert!(master.matches("sk-1234"));
        for other in ["", "sk-123", "sk-12345", "sk-1235", "SK-1234", "sk-1234 "] {
            assert!(!master.matches(other), "{other:?}");
        }
    }
}
