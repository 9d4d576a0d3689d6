//! Google's OAuth token endpoint (`POST /token`): trades a service-account JWT assertion for an
//! access token, as `https://oauth2.googleapis.com/token` does.
//!
//! Without `--vertex-credentials` the assertion is checked for structure only (three base64url
//! parts, JSON header and claims), as LiteLLM's fake accepts any token. With it, the mock checks
//! what Google checks ([`Assertion::verify`]): the RS256 signature against the key file's public
//! key, `iss`, `aud`, and a lifetime of at most an hour that has not ended; the Vertex routes then
//! take only the tokens this mock issued ([`issued`]).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{Map, Value};

pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Why a token request was refused, in OAuth's `{"error","error_description"}` terms.
#[derive(Debug, PartialEq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn grant(description: impl Into<String>) -> OAuthError {
        OAuthError { error: "invalid_grant", description: description.into() }
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({ "error": self.error, "error_description": self.description }).to_string()
    }
}

/// Google's answer when an assertion lives longer than allowed or not at all any more.
const BAD_LIFETIME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

/// The prefix of every access token the mock issues; the rest is a sequence number.
const TOKEN_PREFIX: &str = "mock-access-token-";

/// The service account whose assertions `/token` trusts (`--vertex-credentials`): who it is and
/// the public half of its key. The private key is read once to derive the public key and then
/// dropped, so it cannot show up anywhere.
#[derive(Clone)]
pub struct VertexKey {
    client_email: String,
    key_id: Option<String>,
    /// DER `RSAPublicKey`.
    public_key: Vec<u8>,
}

impl std::fmt::Debug for VertexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VertexKey").field("client_email", &self.client_email).field("key_id", &self.key_id).finish()
    }
}

impl VertexKey {
    /// Reads a service-account key file.
    pub fn from_file(path: &std::path::Path) -> Result<VertexKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}; pass a service-account key file (JSON)", path.display()))?;
        VertexKey::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a service-account key file's JSON (`client_email`, `private_key` PEM PKCS#8).
    pub fn from_json(text: &str) -> Result<VertexKey, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("not valid JSON ({e}); expected a service-account key file"))?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let client_email = field("client_email").ok_or("no client_email; expected a service-account key file")?;
        let pem = field("private_key").ok_or("no private_key; expected a service-account key file")?;
        let pair = private_key(pem)?;
        Ok(VertexKey {
            client_email: client_email.to_string(),
            key_id: field("private_key_id").map(str::to_string),
            public_key: pair.public().as_ref().to_vec(),
        })
    }
}

/// A PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1.
fn private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let pem = pem.replace("\\n", "\n");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).flat_map(|l| l.trim().chars()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "private_key is not a PEM key (bad base64)".to_string())?;
    let pair =
        if pem.contains("BEGIN RSA PRIVATE KEY") { RsaKeyPair::from_der(&der) } else { RsaKeyPair::from_pkcs8(&der) };
    pair.map_err(|e| format!("private_key was rejected ({e}); expected an RSA key in PKCS#8 PEM"))
}

/// A decoded, not yet trusted, JWT.
#[derive(Debug)]
pub struct Assertion {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(claims)`: the bytes the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl Assertion {
    pub fn parse(jwt: &str) -> Result<Assertion, OAuthError> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(OAuthError::grant("Invalid JWT: expected three base64url parts separated by '.'"));
        };
        let header = json_part(h, "header")?;
        let claims = json_part(c, "claims")?;
        let signature = b64url(s).ok_or_else(|| OAuthError::grant("Invalid JWT signature encoding"))?;
        if signature.is_empty() {
            return Err(OAuthError::grant("Invalid JWT: empty signature"));
        }
        Ok(Assertion { header, claims, signing_input: format!("{h}.{c}"), signature })
    }

    /// With no key configured every well-formed assertion passes. With one, the checks Google
    /// makes, with Google's messages. `aud` must be a URL whose path is `/token` rather than
    /// the mock's own URL: google-auth sends Google's token URL as `aud` even when it posts to
    /// another `token_uri`, while other clients send the `token_uri` itself.
    pub fn verify(&self, key: Option<&VertexKey>, now_unix: u64) -> Result<(), OAuthError> {
        let Some(key) = key else {
            return Ok(());
        };
        if self.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(OAuthError::grant("Invalid JWT: the header's alg must be RS256."));
        }
        let kid = self.header.get("kid").and_then(Value::as_str);
        let signature_ok = (kid.is_none() || key.key_id.is_none() || kid == key.key_id.as_deref())
            && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public_key)
                .verify(self.signing_input.as_bytes(), &self.signature)
                .is_ok();
        if !signature_ok {
            return Err(OAuthError::grant("Invalid JWT Signature."));
        }
        if self.claims.get("iss").and_then(Value::as_str) != Some(key.client_email.as_str()) {
            return Err(OAuthError::grant("Invalid grant: account not found"));
        }
        let aud = self.claims.get("aud").and_then(Value::as_str).unwrap_or_default();
        if url_path(aud) != "/token" {
            return Err(OAuthError::grant(
                "Invalid JWT: Failed audience check. The right audience is https://oauth2.googleapis.com/token",
            ));
        }
        let (Some(iat), Some(exp)) =
            (self.claims.get("iat").and_then(Value::as_u64), self.claims.get("exp").and_then(Value::as_u64))
        else {
            return Err(OAuthError::grant(BAD_LIFETIME));
        };
        if exp <= now_unix || exp <= iat || exp - iat > 3600 {
            return Err(OAuthError::grant(BAD_LIFETIME));
        }
        Ok(())
    }
}

/// The path of an absolute URL, without query (`""` if it has none).
fn url_path(url: &str) -> &str {
    let Some((_, rest)) = url.split_once("://") else {
        return "";
    };
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or_default()
}

/// Whether `token` is one this mock issued (`issued` tokens so far). Tokens stay valid for the
/// mock's lifetime; `/mock/reset` does not revoke them.
pub fn issued(token: &str, issued: u64) -> bool {
    token.strip_prefix(TOKEN_PREFIX).and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| (1..=issued).contains(&n))
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn json_part(part: &str, what: &str) -> Result<Map<String, Value>, OAuthError> {
    let bytes = b64url(part).ok_or_else(|| OAuthError::grant(format!("Invalid JWT {what} encoding")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(OAuthError::grant(format!("Invalid JWT {what}: not a JSON object"))),
    }
}

/// Reads the form body and checks the grant (against `key` when one is configured); returns the
/// verified assertion.
pub fn check_request(body: &[u8], key: Option<&VertexKey>) -> Result<Assertion, OAuthError> {
    let form = std::str::from_utf8(body)
        .map_err(|_| OAuthError { error: "invalid_request", description: "body is not UTF-8".to_string() })?;
    let mut grant_type = None;
    let mut assertion = None;
    for pair in form.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(k).as_str() {
            "grant_type" => grant_type = Some(percent_decode(v)),
            "assertion" => assertion = Some(percent_decode(v)),
            _ => {}
        }
    }
    match grant_type.as_deref() {
        Some(JWT_BEARER_GRANT) => {}
        Some(_) => {
            return Err(OAuthError {
                error: "unsupported_grant_type",
                description: format!("Invalid grant_type: expected {JWT_BEARER_GRANT}"),
            })
        }
        None => {
            return Err(OAuthError {
                error: "invalid_request",
                description: "Missing required parameter: grant_type".to_string(),
            })
        }
    }
    let assertion = assertion.ok_or_else(|| OAuthError {
        error: "invalid_request",
        description: "Missing required parameter: assertion".to_string(),
    })?;
    let a = Assertion::parse(&assertion)?;
    a.verify(key, now_unix())?;
    Ok(a)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(s: &str) -> String {
    // A form's `+` is a space.
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

pub fn token_body(n: u64) -> String {
    format!(r#"{{"access_token":"{TOKEN_PREFIX}{n}","expires_in":3599,"token_type":"Bearer"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.{}", e.encode(header), e.encode(claims), e.encode("sig"))
    }

    #[test]
    fn accepts_a_well_formed_assertion() {
        let a = jwt(r#"{"alg":"RS256","typ":"JWT"}"#, r#"{"iss":"x@y","scope":"s"}"#);
        let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={a}");
        let got = check_request(body.as_bytes(), None).unwrap();
        assert_eq!(got.claims["iss"], "x@y");
        assert_eq!(got.signature, b"sig");
    }

    #[test]
    fn rejects_malformed() {
        let g = "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer";
        for assertion in ["abc", "a.b", "a.b.c.d", &jwt("not json", "{}"), &jwt("{}", "[1]")] {
            let e = check_request(format!("{g}&assertion={assertion}").as_bytes(), None).unwrap_err();
            assert_eq!(e.error, "invalid_grant", "{assertion}");
        }
        let e = check_request(b"grant_type=password&assertion=x", None).unwrap_err();
        assert_eq!(e.error, "unsupported_grant_type");
        assert_eq!(percent_decode("a%3Ab+c%zz%4"), "a:b c%zz%4");
    }

    /// The providers crate's throwaway test key (it is nobody's real account).
    pub(crate) const TEST_KEY: &str = include_str!("../../providers/tests/fixtures/vertex-test-sa.json");

    fn signed(header: &Value, claims: &Value) -> String {
        let v: Value = serde_json::from_str(TEST_KEY).unwrap();
        let pair = private_key(v["private_key"].as_str().unwrap()).unwrap();
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", e.encode(header.to_string()), e.encode(claims.to_string()));
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
            .unwrap();
        format!("{input}.{}", e.encode(sig))
    }

    const NOW: u64 = 1_700_000_000;
    const EMAIL: &str = "sluice-test@sluice-test-project.iam.gserviceaccount.com";

    fn check(header: Value, claims: Value) -> Result<(), OAuthError> {
        let key = VertexKey::from_json(TEST_KEY).unwrap();
        Assertion::parse(&signed(&header, &claims)).unwrap().verify(Some(&key), NOW)
    }

    #[test]
    fn verifies_signature_and_claims() {
        let header = serde_json::json!({"alg":"RS256","typ":"JWT","kid":"0123456789abcdef0123456789abcdef01234567"});
        let claims = |aud: &str, iat: u64, exp: u64| serde_json::json!({"iss":EMAIL,"scope":"https://www.googleapis.com/auth/cloud-platform","aud":aud,"iat":iat,"exp":exp});
        // google-auth's aud (Google's URL) and the token_uri itself both pass.
        check(header.clone(), claims("https://oauth2.googleapis.com/token", NOW, NOW + 3600)).unwrap();
        check(header.clone(), claims("http://127.0.0.1:4011/token", NOW - 10, NOW + 3590)).unwrap();

        let bad = |h: Value, c: Value| check(h, c).unwrap_err().description;
        assert_eq!(bad(header.clone(), claims("https://x/token", NOW - 4000, NOW - 400)), BAD_LIFETIME, "expired");
        assert_eq!(bad(header.clone(), claims("https://x/token", NOW, NOW + 7200)), BAD_LIFETIME, "too long");
        assert!(bad(header.clone(), claims("https://x/other", NOW, NOW + 60)).contains("audience"));
        let mut wrong_iss = claims("https://x/token", NOW, NOW + 60);
        wrong_iss["iss"] = "someone@else".into();
        assert!(bad(header.clone(), wrong_iss).contains("account not found"));
        let mut wrong_kid = header.clone();
        wrong_kid["kid"] = "ffff".into();
        assert_eq!(bad(wrong_kid, claims("https://x/token", NOW, NOW + 60)), "Invalid JWT Signature.");
        assert!(bad(serde_json::json!({"alg":"HS256"}), claims("https://x/token", NOW, NOW + 60)).contains("RS256"));

        // A valid signature over other claims does not carry over.
        let key = VertexKey::from_json(TEST_KEY).unwrap();
        let good = signed(&header, &claims("https://x/token", NOW, NOW + 60));
        let forged_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(claims("https://x/token", NOW, NOW + 3600).to_string());
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        let e = Assertion::parse(&forged).unwrap().verify(Some(&key), NOW).unwrap_err();
        assert_eq!(e.description, "Invalid JWT Signature.");
        // Without a key, structure is all that is checked.
        Assertion::parse(&forged).unwrap().verify(None, NOW).unwrap();
    }

    #[test]
    fn key_debug_and_issued_tokens() {
        let key = VertexKey::from_json(TEST_KEY).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains(EMAIL) && !dbg.contains("MII"), "{dbg}");
        assert!(issued("mock-access-token-3", 3));
        assert!(!issued("mock-access-token-4", 3));
        assert!(!issued("mock-access-token-0", 3));
        assert!(!issued("ya29.anything", 3));
        assert_eq!(url_path("https://oauth2.googleapis.com/token?x=1"), "/token");
        assert_eq!(url_path("token"), "");
    }
}
