//! Service-account JWTs signed with the throwaway test key in `fixtures/vertex-test-sa.json`,
//! checked with ring's RSA verifier the way Google's token endpoint checks them.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::Value;
use sluice_credentials::gcp::google_auth::{ServiceAccount, SCOPE};

fn key_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../providers/tests/fixtures/vertex-test-sa.json")
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn assertion_is_a_valid_rs256_jwt() {
    let sa = ServiceAccount::load(key_path().to_str().unwrap()).unwrap();
    assert_eq!(sa.client_email, "sluice-test@sluice-test-project.iam.gserviceaccount.com");
    assert_eq!(sa.project_id.as_deref(), Some("sluice-test-project"));
    assert_eq!(sa.token_uri, "http://127.0.0.1:1/token");

    let now = 1_700_000_000;
    let jwt = sa.assertion(now).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], "0123456789abcdef0123456789abcdef01234567");
    let claims = decode(parts[1]);
    assert_eq!(claims["iss"], sa.client_email.as_str());
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);

    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.public_key_der());
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify(signed.as_bytes(), &sig).expect("the signature verifies with the account's public key");
    // And it covers the claims: change one byte and it fails.
    let tampered = format!("{}.{}x", parts[0], parts[1]);
    assert!(key.verify(tampered.as_bytes(), &sig).is_err());
}

#[test]
fn token_request_body_is_the_jwt_bearer_form() {
    let text = std::fs::read_to_string(key_path()).unwrap();
    // Inline JSON works as well as a path, as LiteLLM's vertex_credentials allows.
    let sa = ServiceAccount::load(&text).unwrap();
    let body = sa.token_request_body(1_700_000_000).unwrap();
    let (grant, assertion) = body.split_once('&').unwrap();
    assert_eq!(grant, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    let jwt = assertion.strip_prefix("assertion=").unwrap();
    assert_eq!(jwt.split('.').count(), 3);
    assert!(jwt.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "nothing needs form-encoding");
}

#[test]
fn debug_never_shows_the_key() {
    let text = std::fs::read_to_string(key_path()).unwrap();
    let sa = ServiceAccount::from_json(&text).unwrap();
    let dbg = format!("{sa:?}");
    assert!(dbg.contains("sluice-test@"), "{dbg}");
    assert!(!dbg.contains("PRIVATE KEY") && !dbg.contains("MII"), "{dbg}");
}

#[test]
fn escaped_newlines_and_default_token_uri() {
    // Some tooling writes the key with literal `\n` escapes (e.g. pasted through an env var).
    let text = std::fs::read_to_string(key_path()).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let escaped = v["private_key"].as_str().unwrap().replace('\n', "\\n");
    v["private_key"] = Value::String(escaped);
    v.as_object_mut().unwrap().remove("token_uri");
    let sa = ServiceAccount::from_json(&v.to_string()).unwrap();
    assert_eq!(sa.token_uri, "https://oauth2.googleapis.com/token");
    assert!(sa.assertion(1).is_ok());
}
