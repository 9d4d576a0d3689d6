//! What passes between a server and the gateway's handler: the request as a server read it
//! ([`ClientRequest`]) and the one reply type every handler gives back ([`Reply`]).
//!
//! The handler does not know which server writes its reply. `listen::direct` writes the head
//! itself ([`Reply::write_head`]); hyper gets a `Response` through one adapter
//! (`impl From<Reply> for Response`). Headers the gateway adds to every proxied answer (the
//! upstream's, forwarded, and the `x-litellm-*` ones) are rendered once as `name: value\r\n`
//! lines: inserting them into a header map hashed every name (about 730 bytes of names per
//! answer), which the fast path never needs.

use axum::response::Response;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use rustc_hash::FxHashMap;
pub use sluice_http::push_field;
use std::cell::RefCell;

/// A request as a server hands it to the handler: its head, and its body as far as it was read.
pub struct ClientRequest {
    pub parts: http::request::Parts,
    pub body: ClientBody,
}

/// A request's body as the handler gets it.
pub enum ClientBody {
    /// All of it, read already (`listen::direct` reads a body before calling the handler): no
    /// body stream to box and collect, and no timer to arm for it.
    Whole(Bytes),
    /// Still to be read, within the size and time limits.
    Stream(axum::body::Body),
}

/// One answer, whichever server writes it.
pub struct Reply {
    pub status: StatusCode,
    /// Headers built as `http` values (the content type, an error's `retry-after`), written
    /// before [`lines`](Self::lines).
    pub headers: HeaderMap,
    /// Headers already rendered as lines.
    pub lines: Lines,
    pub body: ReplyBody,
    /// The body is in Anthropic's format already (the `/v1/messages` front door passing an
    /// Anthropic deployment's answer through), not OpenAI's.
    pub anthropic_native: bool,
}

/// A reply's body.
pub enum ReplyBody {
    /// All of it, as up to three slices (an answer around its re-stamped model name), sent with
    /// a `content-length` and without being joined.
    Whole([Bytes; 3]),
    /// Sent as it comes (a stream's events), of unknown length.
    Stream(axum::body::Body),
}

/// Marks a `Response` whose body is in Anthropic's format already ([`Reply::anthropic_native`]).
#[derive(Clone, Copy, Debug)]
pub struct NativeAnthropic;

impl Reply {
    /// A whole body with its content type.
    pub fn whole(status: StatusCode, content_type: &'static str, body: [Bytes; 3]) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply { status, headers, lines: Lines::default(), body: ReplyBody::Whole(body), anthropic_native: false }
    }

    /// A streamed body with its content type.
    pub fn stream(status: StatusCode, headers: HeaderMap, body: axum::body::Body) -> Reply {
        Reply { status, headers, lines: Lines::default(), body: ReplyBody::Stream(body), anthropic_native: false }
    }

    /// The body's length when it is whole.
    pub fn whole_len(&self) -> Option<usize> {
        match &self.body {
            ReplyBody::Whole(parts) => Some(parts.iter().map(Bytes::len).sum()),
            ReplyBody::Stream(_) => None,
        }
    }

    /// The status line and every header but the framing ones (`content-length`,
    /// `transfer-encoding`, `connection`), which the writer adds for the connection it writes on.
    pub fn write_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.canonical_reason().unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            if name == http::header::CONTENT_LENGTH
                || name == http::header::TRANSFER_ENCODING
                || name == http::header::CONNECTION
            {
                continue;
            }
            push_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        out.extend_from_slice(&self.lines.0);
    }
}

/// The adapter for hyper: the lines become header-map entries (names built once per thread).
impl From<Reply> for Response {
    fn from(reply: Reply) -> Response {
        let body = match reply.body {
            ReplyBody::Whole([a, b, c]) if b.is_empty() && c.is_empty() => axum::body::Body::from(a),
            ReplyBody::Whole(parts) => axum::body::Body::new(crate::proxy::body::ChainBody::new(parts)),
            ReplyBody::Stream(body) => body,
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = reply.status;
        let mut headers = reply.headers;
        if !reply.lines.0.is_empty() {
            headers.reserve(TYPICAL_REPLY_HEADERS.saturating_sub(headers.len()));
            reply.lines.into_map(&mut headers);
        }
        *resp.headers_mut() = headers;
        if reply.anthropic_native {
            resp.extensions_mut().insert(NativeAnthropic);
        }
        resp
    }
}

/// Room for what a proxied answer usually carries (the upstream's headers twice over, plus
/// ours: 21 for an OpenAI-style upstream), so the map is sized once instead of growing three or
/// four times. 24 is the most a 32-slot map holds; asking for more doubles it, and that costs
/// every idle connection, not only the request: hyper keeps each connection's last response map
/// to parse the next request into.
const TYPICAL_REPLY_HEADERS: usize = 24;

/// Response headers rendered as `name: value\r\n` lines, names in lower case.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Lines(pub Vec<u8>);

impl Lines {
    pub fn with_capacity(n: usize) -> Lines {
        Lines(Vec::with_capacity(n))
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        push_field(&mut self.0, name, value);
    }

    pub fn push_header(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.push(name.as_str().as_bytes(), value.as_bytes());
    }

    /// A line for an upstream's field: `prefix` and the name in lower case, as `http`'s names
    /// are (an HTTP/1.1 upstream may spell them with capitals).
    pub fn push_lower(&mut self, prefix: &[u8], name: &[u8], value: &[u8]) {
        let start = self.0.len() + prefix.len();
        self.0.extend_from_slice(prefix);
        self.push(name, value);
        self.0[start..start + name.len()].make_ascii_lowercase();
    }

    /// Every line as a `(name, value)` pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        Lines::view(&self.0)
    }

    /// Appends every line to `out` (values sharing one buffer, not copied each); lines `http`
    /// refuses are left out.
    fn into_map(self, out: &mut HeaderMap) {
        let bytes = Bytes::from(self.0);
        let lines = Lines::iter_in(&bytes);
        NAMES.with(|cache| {
            let mut cache = cache.borrow_mut();
            for (name, value) in lines {
                let Ok(value) = HeaderValue::from_maybe_shared(value) else { continue };
                let name = match cache.get(&name[..]) {
                    Some(name) => name.clone(),
                    None => {
                        let Ok(built) = HeaderName::from_bytes(&name) else { continue };
                        if cache.len() < NAMES_KEPT {
                            cache.insert(name.to_vec().into(), built.clone());
                        }
                        built
                    }
                };
                out.append(name, value);
            }
        });
    }

    /// [`iter`](Self::iter) over shared bytes, as slices of them.
    fn iter_in(bytes: &Bytes) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
        let base = bytes.as_ptr() as usize;
        let view = Lines::view(bytes);
        view.map(move |(n, v)| {
            let at = |s: &[u8]| s.as_ptr() as usize - base;
            (bytes.slice(at(n)..at(n) + n.len()), bytes.slice(at(v)..at(v) + v.len()))
        })
    }

    fn view(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
        bytes.split(|b| *b == b'\n').filter_map(|line| {
            let line = line.strip_suffix(b"\r")?;
            let colon = line.iter().position(|b| *b == b':')?;
            Some((&line[..colon], line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..])))
        })
    }
}

thread_local! {
    /// Header names met in lines, built once per thread: building a name that is not one of
    /// `http`'s standard ones allocates. A fast hasher: the names are the gateway's own and the
    /// configured upstreams', not clients'.
    static NAMES: RefCell<FxHashMap<Box<[u8]>, HeaderName>> = RefCell::new(FxHashMap::default());
}

/// Names kept in [`NAMES`], at most.
const NAMES_KEPT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as a proxied answer carries it: map headers, and lines from an upstream and ours
    /// (a name in capitals, a repeated one, one `http` would also have in its standard table).
    fn sample(body: ReplyBody) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
        let mut lines = Lines::default();
        lines.push_lower(b"llm_provider-", b"OpenAI-Processing-Ms", b"12");
        lines.push(b"x-ratelimit-remaining-requests", b"99");
        lines.push(b"llm_provider-set-cookie", b"a=1");
        lines.push(b"llm_provider-set-cookie", b"b=2");
        lines.push(b"x-litellm-call-id", b"0193-abc");
        lines.push(b"x-litellm-response-duration-ms", b"12.345");
        Reply { status: StatusCode::TOO_MANY_REQUESTS, headers, lines, body, anthropic_native: false }
    }

    /// The head `write_head` renders, parsed back as a client would.
    fn parsed_head(reply: &Reply) -> (u16, Vec<(String, String)>) {
        let mut head = Vec::new();
        reply.write_head(&mut head);
        head.extend_from_slice(b"\r\n");
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut fields);
        assert!(parsed.parse(&head).unwrap().is_complete());
        let pairs =
            parsed.headers.iter().map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap())).collect();
        (parsed.code.unwrap(), pairs)
    }

    async fn body_of(resp: Response) -> Bytes {
        axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()
    }

    #[tokio::test]
    async fn lines_and_the_header_map_render_the_same_reply() {
        let parts = [Bytes::from_static(b"{\"model\":"), Bytes::from_static(b"\"m\""), Bytes::from_static(b"}")];
        let reply = sample(ReplyBody::Whole(parts.clone()));
        assert_eq!(reply.whole_len(), Some(13));
        let (status, mut from_lines) = parsed_head(&reply);
        let resp = Response::from(reply);
        assert_eq!(resp.status().as_u16(), status);
        let mut from_map: Vec<(String, String)> =
            resp.headers().iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())).collect();
        from_lines.sort();
        from_map.sort();
        assert_eq!(from_lines, from_map);
        assert!(from_map.contains(&("llm_provider-openai-processing-ms".into(), "12".into())));
        assert_eq!(from_map.iter().filter(|(n, _)| n == "llm_provider-set-cookie").count(), 2);
        assert_eq!(&body_of(resp).await[..], &parts.concat()[..]);
    }

    #[tokio::test]
    async fn framing_headers_stay_to_the_writer() {
        let mut reply = sample(ReplyBody::Stream(axum::body::Body::from("data: 1\n\n")));
        reply.headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        reply.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("9"));
        let (_, fields) = parsed_head(&reply);
        assert!(fields.iter().all(|(n, _)| n != "connection" && n != "content-length"), "{fields:?}");
        assert_eq!(reply.whole_len(), None);
        reply.anthropic_native = true;
        let resp = Response::from(reply);
        assert!(resp.extensions().get::<NativeAnthropic>().is_some());
        assert_eq!(&body_of(resp).await[..], b"data: 1\n\n");
    }

    #[test]
    fn lines_read_back_as_they_were_written() {
        let mut lines = Lines::default();
        lines.push(b"a", b"1");
        lines.push_lower(b"p-", b"X-Up", b"v: w");
        lines.push(b"empty", b"");
        let read: Vec<(&[u8], &[u8])> = lines.iter().collect();
        assert_eq!(read, [(&b"a"[..], &b"1"[..]), (b"p-x-up", b"v: w"), (b"empty", b"")]);
    }
}
