//! A client's request head, as the gateway's direct path serves it: HTTP/1.1 with keep-alive and
//! a `Content-Length` body, on a route the caller names. Anything else (a chunked or
//! `Expect: 100-continue` body, HTTP/1.0, an upgrade, a head over [`MAX_HEAD`] or one httparse
//! refuses) is [`Parsed::NotOurs`]: hyper, with its own limits, serves it.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

/// Longest request head served here; a longer one goes to hyper, which applies its own limit.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most request headers served here (hyper allows 100).
pub const MAX_HEADERS: usize = 64;

// A head lives on the stack for one request; boxing it would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<R> {
    Head(RequestHead<R>),
    /// The head is not all here yet.
    Partial,
    /// A request the direct path does not serve.
    NotOurs,
}

/// A request head, as offsets into the bytes it was parsed from (at most [`MAX_HEAD`], so they
/// fit in `u16`).
pub struct RequestHead<R> {
    /// What the caller's route function made of the method and path.
    pub route: R,
    /// Length of the head, blank line included.
    pub len: usize,
    pub body_len: usize,
    /// The client asked to close the connection after this request.
    pub close: bool,
    method: (u16, u16),
    path: (u16, u16),
    headers: [(u16, u16, u16, u16); MAX_HEADERS],
    header_count: usize,
}

/// Parses the request head at the front of `buf`. `route` sees the method and the request
/// target and says whether (and as what) the direct path serves them; a body over `max_body`
/// is left to hyper.
pub fn parse<R>(buf: &[u8], max_body: usize, route: impl FnOnce(&str, &str) -> Option<R>) -> Parsed<R> {
    // Left uninitialised: httparse writes the fields it finds (an initialised array was 2 KB to
    // clear on every request).
    let mut headers = [std::mem::MaybeUninit::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => return Parsed::NotOurs,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    let (Some(1), Some(method), Some(path)) = (req.version, req.method, req.path) else {
        return Parsed::NotOurs;
    };
    let Some(route) = route(method, path) else {
        return Parsed::NotOurs;
    };
    let at = |s: &[u8]| (s.as_ptr() as usize - buf.as_ptr() as usize) as u16;
    let span = |s: &str| (at(s.as_bytes()), at(s.as_bytes()) + s.len() as u16);
    let mut head = RequestHead {
        route,
        len,
        body_len: 0,
        close: false,
        method: span(method),
        path: span(path),
        headers: [(0, 0, 0, 0); MAX_HEADERS],
        header_count: req.headers.len(),
    };
    let mut body_len = None;
    for (slot, h) in head.headers.iter_mut().zip(req.headers.iter()) {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            match (body_len, content_length(h.value)) {
                (None, Some(n)) => body_len = Some(n),
                _ => return Parsed::NotOurs,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::NotOurs;
        } else if name.eq_ignore_ascii_case(b"connection") {
            match connection(h.value) {
                Some(close) => head.close |= close,
                None => return Parsed::NotOurs,
            }
        }
        let (n, v) = (at(name), at(h.value));
        *slot = (n, n + name.len() as u16, v, v + h.value.len() as u16);
    }
    match body_len {
        Some(n) if n <= max_body => head.body_len = n,
        _ => return Parsed::NotOurs,
    }
    Parsed::Head(head)
}

/// A `Content-Length` of plain digits (anything else is hyper's to judge).
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 12 {
        return None;
    }
    value.iter().try_fold(0usize, |n, &b| b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0')))
}

/// Whether a `Connection` header asks to close after this request; `None` for any other option
/// (`upgrade`, lists), which hyper handles.
fn connection(value: &[u8]) -> Option<bool> {
    let value = value.trim_ascii();
    if value.eq_ignore_ascii_case(b"close") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"keep-alive") {
        Some(false)
    } else {
        None
    }
}

impl<R> RequestHead<R> {
    /// The request's method, target and headers, sharing `head` (the bytes it was parsed from);
    /// `None` if one is not valid in an `http` request.
    pub fn parts(&self, head: &Bytes) -> Option<http::request::Parts> {
        let mut headers = http::HeaderMap::with_capacity(self.header_count);
        for &(ns, ne, vs, ve) in &self.headers[..self.header_count] {
            let name = HeaderName::from_bytes(&head[ns as usize..ne as usize]).ok()?;
            let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize)).ok()?;
            headers.append(name, value);
        }
        let method = http::Method::from_bytes(&head[self.method.0 as usize..self.method.1 as usize]).ok()?;
        let uri = http::Uri::from_maybe_shared(head.slice(self.path.0 as usize..self.path.1 as usize)).ok()?;
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = method;
        parts.uri = uri;
        parts.headers = headers;
        Some(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(buf: &[u8]) -> Parsed<()> {
        parse(buf, 1 << 20, |method, path| (method == "POST" && path == "/chat/completions").then_some(()))
    }

    #[test]
    fn content_lengths_are_plain_digits() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"16384"), Some(16384));
        assert_eq!(content_length(b"999999999999"), Some(999_999_999_999));
        for bad in [&b""[..], b"1 2", b"-1", b"+1", b"0x10", b"1234567890123"] {
            assert_eq!(content_length(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_route_function_decides_what_is_served() {
        let text = b"POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let Parsed::Head(head) = post(text) else { panic!("not served") };
        let parts = head.parts(&Bytes::from_static(text)).unwrap();
        assert_eq!((parts.method, parts.uri.path(), parts.headers.len()), (http::Method::POST, "/chat/completions", 2));
        assert!(matches!(post(b"PUT /chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n"), Parsed::NotOurs));
        let long =
            format!("POST /chat/completions HTTP/1.1\r\nx: {}\r\nContent-Length: 2\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(post(long.as_bytes()), Parsed::NotOurs), "a head over MAX_HEAD");
    }
}
