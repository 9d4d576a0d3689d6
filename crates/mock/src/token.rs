//! Google's OAuth token endpoint (`POST /token`): trades a service-account JWT assertion for an
//! access token, as `https://oauth2.googleapis.com/token` does.
//!
//! Today the assertion is checked for structure only (three base64url parts, JSON header and
//! claims). [`Assertion::verify`] is the single place where signature and claim checks go.

use base64::Engine as _;
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

/// A decoded, not yet trusted, JWT.
// The parts are kept for `verify`, which does not look at them yet.
#[allow(dead_code)]
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

    /// Accepts every well-formed assertion for now. Checking the RS256 signature against a
    /// configured public key, and `iss`/`aud`/`exp`, belongs here; note that google-auth sets
    /// `aud` to Google's URL even when posting elsewhere, so `aud` must not be required to equal
    /// the mock's own URL.
    pub fn verify(&self) -> Result<(), OAuthError> {
        Ok(())
    }
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

/// Reads the form body and checks the grant; returns the verified assertion.
pub fn check_request(body: &[u8]) -> Result<Assertion, OAuthError> {
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
    a.verify()?;
    Ok(a)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn token_body(n: u64) -> String {
    format!(r#"{{"access_token":"mock-access-token-{n}","expires_in":3599,"token_type":"Bearer"}}"#)
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
        let got = check_request(body.as_bytes()).unwrap();
        assert_eq!(got.claims["iss"], "x@y");
        assert_eq!(got.signature, b"sig");
    }

    #[test]
    fn rejects_malformed() {
        let g = "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer";
        for assertion in ["abc", "a.b", "a.b.c.d", &jwt("not json", "{}"), &jwt("{}", "[1]")] {
            let e = check_request(format!("{g}&assertion={assertion}").as_bytes()).unwrap_err();
            assert_eq!(e.error, "invalid_grant", "{assertion}");
        }
        let e = check_request(b"grant_type=password&assertion=x").unwrap_err();
        assert_eq!(e.error, "unsupported_grant_type");
        assert_eq!(percent_decode("a%3Ab+c%zz%4"), "a:b c%zz%4");
    }
}
