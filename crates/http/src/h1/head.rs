//! Request heads written as bytes, answer heads parsed by httparse (their fields left in place,
//! see [`RawFields`]), and how the answer's body is framed (RFC 9112 §6.3).

use crate::answer::RawFields;
use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, StatusCode};

/// Most header fields accepted in an answer (hyper's default too).
const MAX_HEADERS: usize = 100;

pub use crate::framing::Framing;
use crate::framing::{body_framing, keeps_alive};

/// An answer's head and how to read the rest.
pub struct Answer {
    pub status: StatusCode,
    pub headers: RawFields,
    pub framing: Framing,
    /// The upstream lets the connection carry another request after this one.
    pub keep_alive: bool,
}

/// Writes `method path HTTP/1.1`, the Host header, `headers` and a Content-Length for a body of
/// `body_len` bytes (unless `headers` has one, or the method has no body and the body is empty).
pub fn encode_request(out: &mut Vec<u8>, method: &Method, path: &str, host: &str, headers: &HeaderMap, body_len: u64) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(http::header::HOST) {
        push_field(out, b"host", host.as_bytes());
    }
    for (name, value) in headers {
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let bodiless = matches!(*method, Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE);
    if !headers.contains_key(CONTENT_LENGTH) && (body_len > 0 || !bodiless) {
        push_field(out, b"content-length", decimal(body_len).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one `name: value` header line.
pub fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Decimal digits of `n` without going through the formatter.
fn decimal(mut n: u64) -> Digits {
    let mut d = Digits { buf: [0; 20], start: 20 };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Parses an answer's head from the front of `buf`, taking it out of `buf` when complete.
/// Interim 1xx answers are skipped. `None`: the head is not all here yet.
pub fn parse_response(buf: &mut BytesMut, method: &Method) -> Result<Option<Answer>, &'static str> {
    loop {
        let Some(raw) = parse_raw(buf)? else { return Ok(None) };
        if raw.status == 101 {
            return Err("the upstream switched protocols, which a proxied request cannot follow");
        }
        if (100..200).contains(&raw.status) {
            buf.advance(raw.len);
            continue;
        }
        let bytes = buf.split_to(raw.len).freeze();
        return answer(raw, bytes, method).map(Some);
    }
}

struct Raw {
    status: u16,
    http10: bool,
    len: usize,
    /// `[name start, name end, value start, value end]` of each field (see [`RawFields`]).
    fields: Vec<[u32; 4]>,
}

fn parse_raw(buf: &[u8]) -> Result<Option<Raw>, &'static str> {
    // Left uninitialised: httparse writes the fields it finds and the rest is never read, where
    // an initialised array is kilobytes cleared on every parse.
    let mut headers = [std::mem::MaybeUninit::uninit(); MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("the answer has over 100 header fields"),
        Err(_) => return Err("the answer is not HTTP/1.x"),
    };
    // The reader refuses heads past 64 KiB, so the offsets fit in u32.
    let base = buf.as_ptr() as usize;
    let start = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
    let fields = resp
        .headers
        .iter()
        .map(|h| {
            let (n, v) = (start(h.name.as_bytes()), start(h.value));
            [n, n + h.name.len() as u32, v, v + h.value.len() as u32]
        })
        .collect();
    Ok(Some(Raw { status: resp.code.unwrap_or(0), http10: resp.version == Some(0), len, fields }))
}

fn answer(raw: Raw, bytes: Bytes, method: &Method) -> Result<Answer, &'static str> {
    let status = StatusCode::from_u16(raw.status).map_err(|_| "the answer's status is out of range")?;
    let headers = RawFields::new(bytes, raw.fields);
    let framing = body_framing(
        raw.status,
        *method == Method::HEAD,
        headers.values(b"transfer-encoding").last(),
        headers.values(b"content-length"),
    )?;
    let keep_alive = keeps_alive(raw.http10, headers.values(b"connection"), &framing);
    Ok(Answer { status, headers, framing, keep_alive })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(wire: &[u8], method: Method) -> Result<Option<Answer>, &'static str> {
        parse_response(&mut BytesMut::from(wire), &method)
    }

    #[test]
    fn writes_a_request_head() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        let mut out = Vec::new();
        encode_request(&mut out, &Method::POST, "/v1/chat/completions?x=1", "up:8090", &headers, 16384);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: up:8090\r\ncontent-type: application/json\r\n\
             authorization: Bearer k\r\ncontent-length: 16384\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_request(&mut out, &Method::GET, "/", "h", &HeaderMap::new(), 0);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
        let mut out = Vec::new();
        encode_request(&mut out, &Method::POST, "/", "h", &HeaderMap::new(), 0);
        assert_eq!(out, b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n");
        let mut given = HeaderMap::new();
        given.insert("host", HeaderValue::from_static("other"));
        let mut out = Vec::new();
        encode_request(&mut out, &Method::GET, "/", "h", &given, 0);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: other\r\n\r\n");
    }

    #[test]
    fn reads_an_answer_head_and_leaves_the_body() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-Id: abc\r\n\r\nhello"[..]);
        let a = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(a.status, 200);
        let headers = crate::answer::UpstreamHeaders::Raw(a.headers);
        assert_eq!(headers.get("x-request-id"), Some(&b"abc"[..]));
        assert_eq!(headers.get("content-length"), Some(&b"5"[..]));
        assert!(matches!(a.framing, Framing::Length(5)));
        assert!(a.keep_alive);
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Len", Method::POST).unwrap().is_none());
        assert!(parse(b"", Method::POST).unwrap().is_none());
    }

    #[test]
    fn interim_answers_are_skipped() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"[..]);
        let a = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(a.status, 201);
        assert!(buf.is_empty());
        assert!(parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", Method::GET).is_err());
    }

    #[test]
    fn frames_the_body_as_rfc_9112_says() {
        let framing = |wire: &[u8], m: Method| parse(wire, m).unwrap().unwrap();
        let a =
            framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 9\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::Chunked(_)) && a.keep_alive);
        let a = framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::UntilClose) && !a.keep_alive);
        let a = framing(b"HTTP/1.1 200 OK\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::UntilClose) && !a.keep_alive);
        let a = framing(b"HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::Length(7)));
        let a = framing(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nCONTENT-LENGTH: 3\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::Length(3)), "names in any case, every field counted");
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\n", Method::POST).is_err());
        let a =
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTRANSFER-ENCODING: chunked\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::Chunked(_)), "the last Transfer-Encoding field decides");
        let a = framing(b"HTTP/1.1 204 No Content\r\n\r\n", Method::POST);
        assert!(matches!(a.framing, Framing::Length(0)) && a.keep_alive);
        let a = framing(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", Method::HEAD);
        assert!(matches!(a.framing, Framing::Length(0)));
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 7, 8\r\n\r\n", Method::POST).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", Method::POST).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n", Method::POST).is_err());
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let ka = |wire: &[u8]| parse(wire, Method::POST).unwrap().unwrap().keep_alive;
        assert!(!ka(b"HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n"));
        assert!(!ka(b"HTTP/1.1 200 OK\r\nconnection: upgrade, close\r\ncontent-length: 0\r\n\r\n"));
        assert!(!ka(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(ka(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 0\r\n\r\n"));
        assert!(ka(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    }

    #[test]
    fn refuses_what_is_not_an_answer() {
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", Method::POST).is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(parse(&many, Method::POST).is_err());
    }
}
