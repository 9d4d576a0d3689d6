//! How an HTTP/1.1 answer's body is framed and whether its connection may carry another request
//! (RFC 9112 §6.3 and §9.3), decided from the answer head's fields. Shared by the gateway's
//! upstream client and the load generator, which read answers the same way.

use crate::chunked::Decoder;

/// How an answer's body ends.
#[derive(Debug)]
pub enum Framing {
    /// This many bytes are left (0: the body has ended).
    Length(u64),
    Chunked(Decoder),
    /// Until the peer closes the connection, which then cannot be reused.
    UntilClose,
}

/// The framing of an answer with `status` to a request (`head_request`: to a HEAD request), from
/// the last `Transfer-Encoding` field and every `Content-Length` one.
pub fn body_framing<'a>(
    status: u16,
    head_request: bool,
    transfer_encoding: Option<&[u8]>,
    content_lengths: impl Iterator<Item = &'a [u8]>,
) -> Result<Framing, &'static str> {
    if head_request || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    if let Some(last) = transfer_encoding {
        let chunked =
            last.rsplit(|b| *b == b',').next().is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked { Framing::Chunked(Decoder::default()) } else { Framing::UntilClose });
    }
    let mut length = None;
    for value in content_lengths {
        for item in value.split(|b| *b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                return Err("the answer's Content-Length is not a number");
            }
            let n: u64 = std::str::from_utf8(item)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("the answer's Content-Length is out of range")?;
            if length.is_some_and(|l| l != n) {
                return Err("the answer has differing Content-Length values");
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether the connection stays open after this answer: HTTP/1.1 unless `Connection: close`,
/// HTTP/1.0 only with `Connection: keep-alive`, and never after a body that ends at the close.
pub fn keeps_alive<'a>(http10: bool, connection: impl Iterator<Item = &'a [u8]>, framing: &Framing) -> bool {
    let (mut close, mut keep_alive_token) = (false, false);
    for token in connection.flat_map(|v| v.split(|b| *b == b',')) {
        let token = token.trim_ascii();
        close |= token.eq_ignore_ascii_case(b"close");
        keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
    }
    !close && (!http10 || keep_alive_token) && !matches!(framing, Framing::UntilClose)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(te: Option<&[u8]>, lengths: &[&[u8]]) -> Result<Framing, &'static str> {
        body_framing(200, false, te, lengths.iter().copied())
    }

    #[test]
    fn transfer_encoding_beats_content_length() {
        assert!(matches!(framing(Some(b"gzip, chunked"), &[b"9"]), Ok(Framing::Chunked(_))));
        assert!(matches!(framing(Some(b"gzip"), &[]), Ok(Framing::UntilClose)));
        assert!(matches!(framing(None, &[]), Ok(Framing::UntilClose)));
        assert!(matches!(framing(None, &[b"7, 7", b"7"]), Ok(Framing::Length(7))));
        assert!(framing(None, &[b"3", b"4"]).is_err());
        assert!(framing(None, &[b"-1"]).is_err());
        assert!(framing(None, &[b"99999999999999999999"]).is_err());
    }

    #[test]
    fn some_answers_never_have_a_body() {
        for (status, head) in [(204, false), (304, false), (200, true)] {
            assert!(matches!(
                body_framing(status, head, Some(b"chunked"), [&b"5"[..]].into_iter()),
                Ok(Framing::Length(0))
            ));
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_fields() {
        let ka = |http10: bool, fields: &[&[u8]], f: Framing| keeps_alive(http10, fields.iter().copied(), &f);
        assert!(ka(false, &[], Framing::Length(0)));
        assert!(!ka(false, &[b"Close"], Framing::Length(0)));
        assert!(!ka(false, &[b"upgrade, close"], Framing::Length(0)));
        assert!(!ka(true, &[], Framing::Length(0)));
        assert!(ka(true, &[b"Keep-Alive"], Framing::Length(0)));
        assert!(!ka(false, &[], Framing::UntilClose));
    }
}
