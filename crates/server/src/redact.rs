//! The credentials a call sent upstream, kept out of what the upstream answered: a provider (or
//! an OpenAI-compatible server) that echoes the key it was sent in an error must not hand the
//! gateway's credential to the caller, its logs or its callbacks.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

/// The secret part of a credential header's value: a bearer token without its scheme, else
/// the whole value.
pub fn secret_part(v: &HeaderValue) -> &[u8] {
    let b = v.as_bytes();
    match b.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &b[7..],
        _ => b,
    }
}

/// `body` with every occurrence of a secret (8 bytes or longer: shorter ones are not keys and
/// would mangle the text) replaced by `[redacted]`.
pub fn redact(body: Bytes, secrets: &[&[u8]]) -> Bytes {
    redacted(&body, secrets).map_or(body, Bytes::from)
}

/// `text` with its secrets replaced, or `None` when it holds none (nothing is copied then).
fn redacted(text: &[u8], secrets: &[&[u8]]) -> Option<Vec<u8>> {
    let secrets: Vec<&[u8]> = secrets.iter().copied().filter(|s| s.len() >= 8).collect();
    if !secrets.iter().any(|s| memchr::memmem::find(text, s).is_some()) {
        return None;
    }
    let mut out = text.to_vec();
    for s in secrets {
        while let Some(at) = memchr::memmem::find(&out, s) {
            out.splice(at..at + s.len(), b"[redacted]".iter().copied());
        }
    }
    Some(out)
}

/// Most calls send one credential header (`Authorization`, `api-key`, `x-api-key`, …); SigV4
/// sends a signature and a session token.
const KEPT: usize = 3;

/// The sensitive header values of the request last sent (shared, not copied), for the error
/// answer it may get.
#[derive(Default, Clone)]
pub struct SentSecrets([Option<HeaderValue>; KEPT]);

impl SentSecrets {
    pub fn of(headers: &HeaderMap) -> SentSecrets {
        let mut kept = SentSecrets::default();
        for (slot, value) in kept.0.iter_mut().zip(headers.values().filter(|v| v.is_sensitive())) {
            *slot = Some(value.clone());
        }
        kept
    }

    /// An error answer's body, less any echo of what was sent.
    pub fn redact(&self, body: Bytes) -> Bytes {
        redact(body, &self.secrets())
    }

    /// A stream's last frames (an upstream's error chunk among them), less any echo.
    pub fn redact_frames(&self, frames: bytes::BytesMut) -> bytes::BytesMut {
        match redacted(&frames, &self.secrets()) {
            Some(clean) => clean.as_slice().into(),
            None => frames,
        }
    }

    /// An error's message, which may quote what the upstream sent, less any echo.
    pub fn redact_text(&self, text: String) -> String {
        match redacted(text.as_bytes(), &self.secrets()) {
            // A secret is visible ASCII, which never falls inside a multi-byte character:
            // replacing it keeps the text UTF-8.
            Some(clean) => String::from_utf8(clean).unwrap_or_else(|_| "[redacted]".to_string()),
            None => text,
        }
    }

    fn secrets(&self) -> Vec<&[u8]> {
        self.0.iter().flatten().map(secret_part).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_credentials_are_redacted() {
        let body = Bytes::from_static(b"{\"error\":\"Incorrect API key provided: prov-secret-123. See docs.\"}");
        let out = redact(body.clone(), &[b"prov-secret-123"]);
        assert_eq!(&out[..], b"{\"error\":\"Incorrect API key provided: [redacted]. See docs.\"}");
        let twice = redact(Bytes::from_static(b"prov-secret-123 prov-secret-123"), &[b"prov-secret-123"]);
        assert_eq!(&twice[..], b"[redacted] [redacted]");
        assert_eq!(redact(body.clone(), &[b"absent-secret"]), body, "untouched without an echo");
        assert_eq!(redact(body.clone(), &[b"API"]), body, "too short to be a key");
    }

    #[test]
    fn stream_frames_and_messages_are_redacted_too() {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_static("Bearer sk-live-0123456789");
        auth.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, auth);
        let sent = SentSecrets::of(&headers);
        let frames = bytes::BytesMut::from(&b"data: {\"error\":{\"message\":\"bad key sk-live-0123456789\"}}\n\n"[..]);
        assert_eq!(&sent.redact_frames(frames)[..], b"data: {\"error\":{\"message\":\"bad key [redacted]\"}}\n\n");
        let clean = bytes::BytesMut::from(&b"data: {}\n\n"[..]);
        assert_eq!(sent.redact_frames(clean.clone()), clean);
        assert_eq!(sent.redact_text("é sk-live-0123456789 ü".to_string()), "é [redacted] ü");
        assert_eq!(SentSecrets::default().redact_text("sk-live-0123456789".into()), "sk-live-0123456789");
    }

    #[test]
    fn a_requests_sensitive_headers_are_what_is_redacted() {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_static("Bearer sk-live-0123456789");
        auth.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, auth);
        headers.insert("x-plain", HeaderValue::from_static("not-a-secret-value"));
        let sent = SentSecrets::of(&headers);
        let body = Bytes::from_static(b"bad key sk-live-0123456789 (header not-a-secret-value)");
        assert_eq!(&sent.redact(body)[..], b"bad key [redacted] (header not-a-secret-value)");
        assert_eq!(SentSecrets::default().redact(Bytes::from_static(b"x")), Bytes::from_static(b"x"));
    }
}
