//! Google service-account keys (formats.md §2.8, §10.4): read the key file LiteLLM's
//! `vertex_credentials` names, sign the RS256 JWT assertion, and read a token endpoint's answer
//! (the metadata server's has the same shape). Sending and caching are [`super`]'s job.
//!
//! The private key never leaves [`ServiceAccount`]: its `Debug` shows who the account is, not
//! what it holds, and no error message quotes key material.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

/// The one scope LiteLLM asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Where tokens come from when the key file does not say.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER_GRANT_FORM: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
/// Google's maximum assertion lifetime.
const LIFETIME_SECS: u64 = 3600;
/// The longest a token from the endpoint is kept before it is refreshed.
const MAX_EXPIRES_IN: u64 = 86_400;

/// A parsed service-account key. Cheap to clone (the key pair is shared).
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    pub token_uri: String,
    pub project_id: Option<String>,
    /// The key's id, sent as the JWT `kid`; not secret.
    pub private_key_id: Option<String>,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Parses a service-account key file's JSON.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            // serde's message quotes no input, only a position, so it cannot leak the key.
            format!("vertex_credentials is not valid JSON ({e}); expected a service-account key file downloaded from Google Cloud IAM")
        })?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        match field("type") {
            Some("service_account") | None => {}
            Some(other) => {
                return Err(format!(
                    "vertex_credentials has type {other:?}; only service-account keys (type \"service_account\") are supported — create one under IAM → Service accounts → Keys"
                ))
            }
        }
        let client_email = field("client_email")
            .ok_or("vertex_credentials has no client_email; is this a service-account key file?")?;
        let pem =
            field("private_key").ok_or("vertex_credentials has no private_key; is this a service-account key file?")?;
        let key = parse_private_key(pem)?;
        Ok(ServiceAccount {
            client_email: client_email.to_string(),
            token_uri: field("token_uri").unwrap_or(DEFAULT_TOKEN_URI).to_string(),
            project_id: field("project_id").map(str::to_string),
            private_key_id: field("private_key_id").map(str::to_string),
            key: Arc::new(key),
        })
    }

    /// `vertex_credentials` as LiteLLM takes it: the JSON itself, or a path to the file.
    pub fn load(path_or_json: &str) -> Result<Self, String> {
        let s = path_or_json.trim();
        if s.starts_with('{') {
            return Self::from_json(s);
        }
        let text = std::fs::read_to_string(s).map_err(|e| {
            format!("cannot read vertex_credentials file {s:?}: {e}; check the path and its permissions")
        })?;
        Self::from_json(&text).map_err(|e| format!("{s}: {e}"))
    }

    /// The signed RS256 JWT that asks for a `cloud-platform` token, valid for an hour from
    /// `now_unix`.
    pub fn assertion(&self, now_unix: u64) -> Result<String, String> {
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now_unix,
            "exp": now_unix + LIFETIME_SECS,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|_| format!("could not sign the token request for {}", self.client_email))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The `application/x-www-form-urlencoded` body to POST to [`ServiceAccount::token_uri`].
    pub fn token_request_body(&self, now_unix: u64) -> Result<String, String> {
        // A JWT is base64url and dots only: nothing in it needs form encoding.
        Ok(format!("grant_type={JWT_BEARER_GRANT_FORM}&assertion={}", self.assertion(now_unix)?))
    }

    /// The DER `RSAPublicKey` matching the private key, for checking signatures (tests, mocks).
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public().as_ref()
    }
}

/// A PEM private key, PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`).
fn parse_private_key(pem: &str) -> Result<RsaKeyPair, String> {
    // Key files carry `\n` escapes that JSON has already turned into newlines; a value pasted
    // through an environment variable may still hold them literally.
    let pem = pem.replace("\\n", "\n");
    let pkcs1 = pem.contains("BEGIN RSA PRIVATE KEY");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).flat_map(|l| l.trim().chars()).collect();
    let der = STANDARD.decode(body.as_bytes()).map_err(|_| {
        "vertex_credentials private_key is not a PEM key (bad base64); re-download the key file".to_string()
    })?;
    let parsed = if pkcs1 { RsaKeyPair::from_der(&der) } else { RsaKeyPair::from_pkcs8(&der) };
    parsed.map_err(|e| format!("vertex_credentials private_key was rejected ({e}); expected an RSA key of 2048+ bits in PKCS#8 PEM, as Google issues"))
}

/// The token endpoint's JSON answer: (access_token, expires_in seconds). `expires_in` may be a
/// number or a string (google-auth takes both) and defaults to an hour.
pub fn parse_token_response(body: &[u8]) -> Result<(String, u64), String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        format!("the Google token endpoint answered with something that is not JSON: {}", preview(body))
    })?;
    if let Some(err) = v.get("error") {
        let code = err.as_str().map(str::to_string).unwrap_or_else(|| err.to_string());
        let desc = v.get("error_description").and_then(Value::as_str).unwrap_or("");
        return Err(format!(
            "the Google token endpoint said {code}{}{desc}; check that the key or refresh token is current and the machine's clock is right",
            if desc.is_empty() { "" } else { ": " }
        ));
    }
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("the Google token endpoint's answer has no access_token")?;
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .unwrap_or(LIFETIME_SECS)
    // Becomes a refresh deadline: a day at most, whatever the endpoint says.
    .min(MAX_EXPIRES_IN);
    Ok((token.to_string(), expires_in))
}

/// The start of an unexpected body, for an error message (token bodies hold no secret unless
/// they succeed, and a successful one parses).
fn preview(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses() {
        assert_eq!(
            parse_token_response(br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#).unwrap(),
            ("ya29.x".to_string(), 3599)
        );
        assert_eq!(parse_token_response(br#"{"access_token":"t","expires_in":"120"}"#).unwrap().1, 120);
        assert_eq!(parse_token_response(br#"{"access_token":"t"}"#).unwrap().1, 3600);
        for huge in [r#""18446744073709551615""#, "18446744073709551615", "1e300"] {
            let body = format!(r#"{{"access_token":"t","expires_in":{huge}}}"#);
            assert_eq!(parse_token_response(body.as_bytes()).unwrap().1, MAX_EXPIRES_IN, "{huge}");
        }
        let e = parse_token_response(br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
            .unwrap_err();
        assert!(e.contains("invalid_grant: Invalid JWT Signature."), "{e}");
        assert!(parse_token_response(b"<html>").unwrap_err().contains("<html>"));
        assert!(parse_token_response(br#"{"token_type":"Bearer"}"#).is_err());
    }

    #[test]
    fn rejects_what_is_not_a_service_account() {
        let e = ServiceAccount::from_json(r#"{"type":"authorized_user","client_id":"x"}"#).unwrap_err();
        assert!(e.contains("authorized_user"), "{e}");
        let e = ServiceAccount::from_json(r#"{"type":"service_account","client_email":"a@b"}"#).unwrap_err();
        assert!(e.contains("private_key"), "{e}");
        let secretish = "-----BEGIN PRIVATE KEY-----\nTOPSECRETTOPSECRET\n-----END PRIVATE KEY-----\n";
        let json = json!({"type":"service_account","client_email":"a@b","private_key":secretish}).to_string();
        let e = ServiceAccount::from_json(&json).unwrap_err();
        assert!(!e.contains("TOPSECRET"), "{e}");
        let e = ServiceAccount::load("/nonexistent/sa.json").unwrap_err();
        assert!(e.contains("/nonexistent/sa.json"), "{e}");
    }
}
