//! `--vertex-credentials`: the token endpoint verifies RS256 assertions from the configured
//! service account, and Vertex routes accept only the tokens it issued.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use http::{Method, StatusCode};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};
use sluice_mock::{MockConfig, VertexKey};

/// The providers crate's throwaway test key: it belongs to no real account.
fn key_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../providers/tests/fixtures/vertex-test-sa.json")
}

fn sa() -> Value {
    serde_json::from_str(&std::fs::read_to_string(key_file()).unwrap()).unwrap()
}

/// Signs like google-auth does: RS256 over `b64url(header).b64url(claims)`.
fn assertion(claims: &Value) -> String {
    let pem = sa()["private_key"].as_str().unwrap().to_string();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": sa()["private_key_id"]});
    let input = format!("{}.{}", e.encode(header.to_string()), e.encode(claims.to_string()));
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", e.encode(sig))
}

fn claims(now: u64) -> Value {
    json!({
        "iss": sa()["client_email"],
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 3600,
    })
}

fn form(jwt: &str) -> String {
    format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}")
}

const CT: [(&str, &str); 1] = [("content-type", "application/x-www-form-urlencoded")];
const VERTEX: &str =
    "/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001:generateContent";
const BODY: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn token_endpoint_verifies_and_vertex_takes_only_issued_tokens() {
    let key = VertexKey::from_file(&key_file()).unwrap();
    let addr = start(MockConfig { vertex_key: Some(Arc::new(key)), ..MockConfig::bare() }).await;

    // Any bearer used to do; now it must be one of ours.
    let r = call(addr, Method::POST, VERTEX, &[("authorization", "Bearer ya29.real-looking")], BODY).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");

    // A well-formed assertion with a made-up signature is refused as Google refuses it.
    let good = assertion(&claims(now()));
    let parts: Vec<&str> = good.split('.').collect();
    let unsigned = format!("{}.{}.c2lnbmF0dXJl", parts[0], parts[1]);
    let r = call(addr, Method::POST, "/token", &CT, &form(&unsigned)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json(), json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}));

    // Expired, and too long-lived.
    let mut expired = claims(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let mut too_long = claims(now());
    too_long["exp"] = json!(now() + 7200);
    for c in [expired, too_long] {
        let r = call(addr, Method::POST, "/token", &CT, &form(&assertion(&c))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.json()["error_description"].as_str().unwrap().contains("short-lived"));
    }

    let r = call(addr, Method::POST, "/token", &CT, &form(&good)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_string();

    let bearer = format!("Bearer {token}");
    let r = call(addr, Method::POST, VERTEX, &[("authorization", &bearer)], BODY).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["candidates"][0]["finishReason"], "STOP");
    // A token number the mock has not handed out yet is not valid.
    let r = call(addr, Method::POST, VERTEX, &[("authorization", "Bearer mock-access-token-2")], BODY).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let s = stats(addr).await;
    assert_eq!(s["tokens_issued"], 1);
    assert_eq!(s["by_route"]["token"], 4);
}

#[tokio::test]
async fn without_credentials_any_bearer_still_works() {
    let addr = start(MockConfig::bare()).await;
    let r = call(addr, Method::POST, VERTEX, &[("authorization", "Bearer anything")], BODY).await;
    assert_eq!(r.status, StatusCode::OK);
    // Even an unsigned assertion gets a token, and it is counted.
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!("{}.{}.{}", e.encode(r#"{"alg":"RS256"}"#), e.encode(claims(now()).to_string()), e.encode("x"));
    let r = call(addr, Method::POST, "/token", &CT, &form(&jwt)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stats(addr).await["tokens_issued"], 1);
}
