//! AWS Signature Version 4, for every AWS call sluice makes: Bedrock (service `bedrock`, not
//! `bedrock-runtime`, as LiteLLM signs it: formats.md §6) in `providers`, and S3 log objects
//! (service `s3`) in `export`.
//!
//! Written against the AWS SigV4 documentation and checked with AWS's published test-suite
//! vectors (and S3's own examples), so the gateway needs no AWS SDK. The signature covers the
//! exact body bytes, so the caller must sign after the final serialization and send those bytes
//! unchanged. Pure functions: no I/O, no clock (the caller passes the time).

mod keys;

use ring::{digest, hmac};

/// AWS credentials for signing. `Debug` shows the access key id (AWS does not treat it as
/// secret; it is in every Authorization header) and never the secret key or session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Present for temporary (STS) credentials; sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How a service builds the canonical URI from the path sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRule {
    /// Every service but S3: dot segments and repeated slashes removed, then the (already
    /// percent-encoded) path encoded once more.
    EncodeTwice,
    /// S3: the path as it is, encoded once (an already-encoded path is decoded first, so a key
    /// sent as `%24` or as `$` signs alike), never normalized: `a//b` and `a/./b` are other keys.
    S3,
}

/// Signs a request to `service` (`bedrock`, `s3`, ...). `url` is the full URL the request goes to,
/// percent-encoded as it will be sent; `body` the exact bytes sent; `headers` any further headers
/// to sign (S3 wants every `x-amz-*` header sent to be signed; others may be left out).
///
/// Returns the headers to add: `authorization`, `x-amz-date`, `x-amz-content-sha256`, and
/// `x-amz-security-token` for temporary credentials. The signature also covers `host`, taken
/// from `url` (default ports dropped, as HTTP clients send it). `content-type` is not signed
/// unless passed in `headers`, so the caller may set it as it likes.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    service: &str,
    rule: PathRule,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    region: &str,
    creds: &Credentials,
    unix_time: u64,
) -> Result<Vec<(&'static str, String)>, String> {
    sign_pieces(service, rule, method, url, headers, &[body], region, creds, unix_time)
}

/// [`sign`] for a body sent in pieces, one after another: hashed piece by piece, not joined first.
#[allow(clippy::too_many_arguments)]
pub fn sign_pieces(
    service: &str,
    rule: PathRule,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[&[u8]],
    region: &str,
    creds: &Credentials,
    unix_time: u64,
) -> Result<Vec<(&'static str, String)>, String> {
    let mut hash = digest::Context::new(&digest::SHA256);
    for piece in body {
        hash.update(piece);
    }
    let payload_hash = hex(hash.finish().as_ref());
    let mut signed: Vec<(&str, &str)> = vec![("x-amz-content-sha256", payload_hash.as_str())];
    if let Some(token) = creds.session_token.as_deref() {
        signed.push(("x-amz-security-token", token));
    }
    signed.extend_from_slice(headers);
    // Hashed once: a translated chat's body is mostly its prompt, and SHA-256 over it is most of
    // what signing costs.
    let date_time = amz_date(unix_time);
    let authorization = authorization(service, rule, method, url, &signed, &payload_hash, region, creds, &date_time)?;
    let mut out =
        vec![("authorization", authorization), ("x-amz-date", date_time), ("x-amz-content-sha256", payload_hash)];
    if let Some(token) = &creds.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    Ok(out)
}

/// The SigV4 `Authorization` value for any service but S3 ([`PathRule::EncodeTwice`]). `headers`
/// are the headers to sign besides `host` (from `url`) and `x-amz-date` (from `unix_time`),
/// which are always signed. Public (but hidden) so tests can check it against AWS's test suite,
/// whose vectors use service `service`.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn sign_service(
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    region: &str,
    creds: &Credentials,
    unix_time: u64,
) -> Result<String, String> {
    let payload_hash = hex(digest::digest(&digest::SHA256, body).as_ref());
    let date_time = amz_date(unix_time);
    authorization(service, PathRule::EncodeTwice, method, url, headers, &payload_hash, region, creds, &date_time)
}

/// The `Authorization` value: see [`sign`] and [`sign_service`]. `date_time` is [`amz_date`]'s.
#[allow(clippy::too_many_arguments)]
fn authorization(
    service: &str,
    rule: PathRule,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    region: &str,
    creds: &Credentials,
    date_time: &str,
) -> Result<String, String> {
    if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
        return Err("AWS credentials are incomplete: both an access key id and a secret access key are needed".into());
    }
    if region.is_empty() {
        return Err(
            "no AWS region to sign for; set the region setting (aws_region_name, s3_region_name) or AWS_REGION".into(),
        );
    }
    let parts = split_url(url)?;
    let date = &date_time[..8];

    let mut canon: Vec<(String, String)> = Vec::with_capacity(headers.len() + 2);
    canon.push(("host".into(), parts.host));
    canon.push(("x-amz-date".into(), date_time.to_string()));
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if k != "host" && k != "x-amz-date" {
            canon.push((k, normalize_value(v)));
        }
    }
    canon.sort_by(|a, b| a.0.cmp(&b.0));
    let mut signed_headers = String::with_capacity(canon.iter().map(|(k, _)| k.len() + 1).sum());
    for (i, (k, _)) in canon.iter().enumerate() {
        if i > 0 {
            signed_headers.push(';');
        }
        signed_headers.push_str(k);
    }
    // The canonical request is only hashed: its lines go straight into the digest.
    let mut canonical_request = digest::Context::new(&digest::SHA256);
    let line = |hash: &mut digest::Context, piece: &str| {
        hash.update(piece.as_bytes());
        hash.update(b"\n");
    };
    line(&mut canonical_request, &method.to_ascii_uppercase());
    line(
        &mut canonical_request,
        &match rule {
            PathRule::EncodeTwice => canonical_uri(&parts.path),
            PathRule::S3 => uri_encode(&percent_decode(&parts.path), true),
        },
    );
    line(&mut canonical_request, &canonical_query(parts.query.as_deref().unwrap_or("")));
    for (k, v) in &canon {
        canonical_request.update(k.as_bytes());
        canonical_request.update(b":");
        line(&mut canonical_request, v);
    }
    line(&mut canonical_request, "");
    line(&mut canonical_request, &signed_headers);
    canonical_request.update(payload_hash.as_bytes());

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let mut string_to_sign = String::with_capacity(17 + date_time.len() + 1 + scope.len() + 1 + 64);
    string_to_sign.push_str("AWS4-HMAC-SHA256\n");
    string_to_sign.push_str(date_time);
    string_to_sign.push('\n');
    string_to_sign.push_str(&scope);
    string_to_sign.push('\n');
    string_to_sign.push_str(&hex(canonical_request.finish().as_ref()));
    let key = keys::signing_key(&creds.secret_access_key, date, region, service);
    let signature = hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref());
    Ok(format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    ))
}

/// Lower-case hex, as SigV4 writes hashes and signatures.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    // Hex digits are ASCII: never the default.
    String::from_utf8(out).unwrap_or_default()
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC), without a date library.
pub fn amz_date(unix_time: u64) -> String {
    let days = (unix_time / 86_400) as i64;
    let secs = unix_time % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Howard Hinnant's days-since-1970 → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct UrlParts {
    host: String,
    path: String,
    query: Option<String>,
}

/// Just enough URL parsing for signing: scheme, authority (userinfo refused), path, query.
fn split_url(url: &str) -> Result<UrlParts, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("cannot sign {url:?}: not an absolute URL"))?;
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("cannot sign a URL with host {authority:?}"));
    }
    let host = authority.to_ascii_lowercase();
    // HTTP clients leave the default port out of the Host header; the signature must match it.
    let host = match (scheme.to_ascii_lowercase().as_str(), host.rsplit_once(':')) {
        ("https", Some((h, "443"))) | ("http", Some((h, "80"))) => h.to_string(),
        _ => host,
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (tail, None),
    };
    let path = if path.is_empty() { "/".to_string() } else { path.to_string() };
    Ok(UrlParts { host, path, query })
}

/// The canonical URI for every service but S3: dot segments and repeated slashes removed, then
/// the (already percent-encoded) path encoded once more. So a model id's `:`, sent as `%3A`, is
/// signed as `%253A`, which is what AWS computes on its side.
fn canonical_uri(path: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    for seg in &segs {
        normalized.push('/');
        normalized.push_str(seg);
    }
    if normalized.is_empty() || path.ends_with('/') {
        normalized.push('/');
    }
    uri_encode(&normalized, true)
}

/// Query parameters sorted by encoded name then value, each decoded and re-encoded with AWS's
/// rules (only unreserved characters stay literal; a space is `%20`, never `+`).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Header values: leading and trailing spaces trimmed, inner runs of spaces made one.
fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// AWS's URI encoding: every byte except `A-Za-z0-9-_.~` (and `/` when `keep_slash`) as `%XX`
/// with upper-case hex.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 0xf)] as char);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_in_pieces_signs_as_the_same_body_whole() {
        let creds =
            Credentials { access_key_id: "AKID".into(), secret_access_key: "secret".into(), session_token: None };
        let body = br#"{"messages":[{"role":"user","content":[{"text":"hello there"}]}]}"#;
        let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse";
        let whole = sign("bedrock", PathRule::EncodeTwice, "POST", url, &[], body, "us-east-1", &creds, 1_700_000_000);
        for cut in [(0, 0), (0, 10), (10, 30), (30, body.len()), (body.len(), body.len())] {
            let pieces: [&[u8]; 3] = [&body[..cut.0], &body[cut.0..cut.1], &body[cut.1..]];
            let split = sign_pieces(
                "bedrock",
                PathRule::EncodeTwice,
                "POST",
                url,
                &[],
                &pieces,
                "us-east-1",
                &creds,
                1_700_000_000,
            );
            assert_eq!(split, whole, "{cut:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn canonical_paths_double_encode() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/model/a.b-v1%3A0/converse"), "/model/a.b-v1%253A0/converse");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/a/.."), "/");
        assert_eq!(canonical_uri("/a/../"), "/");
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(uri_encode("a b/ü~%", false), "a%20b%2F%C3%BC~%25");
        assert_eq!(uri_encode("a b/ü~%", true), "a%20b/%C3%BC~%25");
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(canonical_query(""), "");
    }

    #[test]
    fn hosts_drop_default_ports() {
        assert_eq!(split_url("https://H.example.com:443/x").unwrap().host, "h.example.com");
        assert_eq!(split_url("http://127.0.0.1:8090").unwrap().host, "127.0.0.1:8090");
        assert_eq!(split_url("http://127.0.0.1:8090").unwrap().path, "/");
        assert!(split_url("/relative").is_err());
        assert!(split_url("https://user:pw@h/").is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
        };
        let s = format!("{c:?}");
        assert!(s.contains("AKIDEXAMPLE"));
        assert!(!s.contains("very-secret") && !s.contains("token-secret"), "{s}");
    }
}
