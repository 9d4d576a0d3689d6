//! HTTP/1.1 for the requests that carry the traffic, served without hyper.
//!
//! Every client connection starts here. This module serves a request that is a POST to one of
//! the gateway's direct routes (chat, completions, embeddings) over HTTP/1.1 with keep-alive and
//! a `Content-Length` body of at most [`MAX_BODY`]: what the OpenAI SDKs, LiteLLM's clients and
//! load tests send. At the first request that is anything else (another route or method, a
//! chunked or `Expect: 100-continue` body, HTTP/1.0, h2c, an upgrade, a head that does not parse
//! or is over [`MAX_HEAD`]) the connection goes to hyper, with the bytes read
//! so far put back in front, and hyper serves it from there on as it served every connection
//! before.
//!
//! Why: hyper's connection state machine, its body channel and its response encoding (a header
//! map walked with checks for each name) were about a fifth of a proxied request's instructions.
//! Here one task reads the request into one buffer, calls the handler with the body already
//! whole, and writes the response head and body in one vectored write.
//!
//! What hyper did that this keeps: the header timeout (which also ends idle keep-alive
//! connections), the request body's timeout (`client_body_timeout`, answered 408 by the handler),
//! cancelling the handler when the client hangs up, pipelined requests, chunked responses for
//! streams, a `date` header, and graceful shutdown (idle connections close at once, a request in
//! flight finishes first).

use crate::exchange::{push_field, ClientBody, ClientRequest, Reply, ReplyBody};
use crate::Gateway;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use http_body::Body as _;
use http_body_util::BodyExt;
use sluice_http::request_head::{self, MAX_HEAD};
use sluice_http::vectored::write_all;
use sluice_wire::sniff::Endpoint;
use std::cell::RefCell;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Largest body served here: the whole body is read before the handler runs, so this bounds
/// what one connection buffers. Larger bodies (images as base64, long documents) go to hyper,
/// whose handler reads them up to `general_settings.max_request_size_mb`.
pub const MAX_BODY: usize = 1024 * 1024;
/// Bytes of further (pipelined) requests read while one is in flight, at most; past this the
/// connection is not read again until the answer is out.
const MAX_PIPELINED: usize = 64 * 1024;

pub struct Settings {
    /// Time to receive a request's head, counted from when the connection became idle.
    pub header_timeout: Duration,
    /// Capacity the read buffer gets when a request starts arriving.
    pub read_buffer: usize,
    /// Keep the buffer while the connection is idle (the first connections, which carry most
    /// requests), instead of freeing it and allocating again for the next request — for a
    /// [`BUSY_GAP`]: a client quieter than that gets no faster reads from it, and a thousand
    /// such clients would keep megabytes.
    pub keep_buffer: bool,
}

/// How long an idle connection keeps its buffer (`keep_buffer`): longer than a busy client
/// takes between requests, far shorter than the seed's users wait (0.5–1 s).
const BUSY_GAP: Duration = Duration::from_millis(50);

/// What the connection needs next, once this module is done with it.
pub enum Next {
    /// Closed, or to be closed (the client left, a timeout, shutdown, or an error).
    Close,
    /// A request this module does not serve: hyper takes the connection from here, starting
    /// with the bytes already read from it.
    Hyper(TcpStream, Bytes),
}

/// Serves `stream`'s requests until one is not for this module, or the connection ends.
pub async fn serve(
    mut stream: TcpStream,
    gateway: &Gateway,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
) -> Next {
    let (max_request_bytes, body_timeout) = gateway.body_limits();
    let max_body = MAX_BODY.min(max_request_bytes);
    let mut buf = BytesMut::new();
    // No buffer to keep while idle: the connection has sent no request yet (a client quiet since
    // it connected gains nothing from one, and a thousand connecting at once would each hold the
    // roomy buffer until the busy gap had passed), or its last request needed a buffer larger
    // than `read_buffer`.
    let mut keep_none = true;
    loop {
        if *shutdown.borrow_and_update() {
            return Next::Close;
        }
        let idle_since = tokio::time::Instant::now();
        let head_deadline = idle_since + settings.header_timeout;
        // The head and what it holds (over 500 bytes) end with this block, once its bytes are
        // split off and made the request's parts: a task is as large as its largest state, idle
        // or not, and the body's, the handler's and the reply's states below need only what the
        // block hands out.
        let (route, close, received, body_len, parts) = {
            let head = loop {
                if !buf.is_empty() {
                    match parse(&buf, max_body) {
                        Parsed::Head(head) => break head,
                        Parsed::Partial if buf.len() < MAX_HEAD => {}
                        Parsed::Partial | Parsed::NotOurs => return Next::Hyper(stream, buf.freeze()),
                    }
                }
                let idle = buf.is_empty();
                let keep = idle && settings.keep_buffer && !keep_none;
                if keep {
                    // Takes back the whole allocation once the last request's body is dropped.
                    buf.reserve(settings.read_buffer);
                } else if idle {
                    // An idle connection holds no buffer: a thousand open connections cost a
                    // thousand sockets, not a thousand buffers (`fill` allocates when data comes).
                    buf = BytesMut::new();
                }
                let read = if idle {
                    // A kept buffer is kept for a busy client's gap only, then let go.
                    let first = if keep { head_deadline.min(idle_since + BUSY_GAP) } else { head_deadline };
                    let read = tokio::time::timeout_at(first, fill(&mut stream, &mut buf, settings.read_buffer));
                    let read = tokio::select! {
                        read = read => read,
                        _ = shutdown.changed() => return Next::Close,
                    };
                    match read {
                        Err(_) if keep && first < head_deadline => {
                            buf = BytesMut::new();
                            let read = tokio::time::timeout_at(
                                head_deadline,
                                fill(&mut stream, &mut buf, settings.read_buffer),
                            );
                            tokio::select! {
                                read = read => read,
                                _ = shutdown.changed() => return Next::Close,
                            }
                        }
                        read => read,
                    }
                } else {
                    tokio::time::timeout_at(head_deadline, fill(&mut stream, &mut buf, settings.read_buffer)).await
                };
                match read {
                    Ok(Ok(n)) if n > 0 => {}
                    // The client left, the connection broke, or the head did not come in time.
                    _ => return Next::Close,
                }
            };
            let received = Instant::now();

            // The body: all of it, or as much as came within the client's time.
            let whole = head.len + head.body_len;
            keep_none = whole > settings.read_buffer;
            if buf.len() < whole {
                // One byte more than the body needs: the read that completes it then leaves room,
                // which is what tells the runtime the socket is drained (`fill`).
                buf.reserve(whole - buf.len() + 1);
            }
            // The room reserved above stays with the body's part of the buffer.
            let head_bytes = buf.split_to(head.len).freeze();
            (head.route, head.close, received, head.body_len, head.parts(&head_bytes))
        };
        let mut complete = true;
        while buf.len() < body_len {
            match tokio::time::timeout_at((received + body_timeout).into(), fill(&mut stream, &mut buf, 0)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return Next::Close,
                Err(_) => {
                    complete = false;
                    break;
                }
            }
        }
        let body = buf.split_to(body_len.min(buf.len())).freeze();
        let request = parts.map(|parts| to_request(parts, body, complete));
        let Some(request) = request else {
            let _ = stream.write_all(BAD_REQUEST).await;
            return Next::Close;
        };

        // The handler runs while the connection is watched: a client whose connection breaks
        // cancels it (and with it the upstream call), as hyper did. The end of the stream is
        // not a break: a client may shut down its sending side once the request is out and
        // still wait for the answer (a half-close), and a socket cannot tell that from a client
        // gone for good until an answer is written to it. So the request goes on, its answer
        // is written (a stream stops at the first write that fails), and the connection ends;
        // a model call whose client did leave runs on to its end and is billed (`proxy::outlive`).
        let mut watching = true;
        let mut half_closed = false;
        // The handler's state ends with this block, before the reply is written.
        let response = {
            let handler = gateway.direct(route, request, received);
            tokio::pin!(handler);
            loop {
                tokio::select! {
                    biased;
                    response = &mut handler => break response,
                    ready = stream.readable(), if watching => {
                        if ready.is_err() {
                            return Next::Close;
                        }
                        buf.reserve(4096);
                        match stream.try_read_buf(&mut buf) {
                            Ok(0) => {
                                half_closed = true;
                                watching = false;
                            }
                            Ok(_) => watching = buf.len() < MAX_PIPELINED,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => return Next::Close,
                        }
                    }
                }
            }
        };
        // An incomplete body leaves the rest of it on the connection: it cannot carry another
        // request; nor can a connection whose client has stopped sending, once the requests it
        // pipelined before that are answered.
        let more_to_come = !half_closed || !buf.is_empty();
        let keep_alive = complete && !close && more_to_come && !*shutdown.borrow();
        if write_reply(&mut stream, response, keep_alive).await.is_err() || !keep_alive {
            return Next::Close;
        }
    }
}

/// Reads what the socket has into `buf`, making room for at least `room` bytes when it is full —
/// once the socket is readable, so that a connection waiting for its next request holds no
/// buffer. Resolves to 0 at the end of the stream.
///
/// Through `AsyncRead` rather than `readable` and `try_read_buf`: a read that leaves part of the
/// buffer unfilled has drained the socket, and tokio's `poll_read` then clears the socket's
/// readiness itself, so the next wait (for the client hanging up while the handler runs, or for
/// the next request) goes straight to the event loop instead of costing a `recv` that answers
/// "would block" — one system call a request, which nginx saves the same way.
///
/// Readable is not always read to come: tokio takes an accepted socket for readable before its
/// first event, so a connection waiting for its first request would reserve a buffer, find
/// nothing and keep the buffer for as long as it stays quiet (a thousand such connections held
/// 8 MB). So a read into an empty buffer is tried once, and when nothing came (the runtime then
/// holds the socket not readable, and the wait is a real one) the buffer goes until data does.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
    while buf.capacity() == buf.len() {
        stream.readable().await?;
        buf.reserve(room.max(4096));
        if !buf.is_empty() {
            break;
        }
        let tried = std::future::poll_fn(|cx| {
            Poll::Ready(tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, &mut *buf))
        })
        .await;
        match tried {
            Poll::Ready(read) => return read,
            Poll::Pending => *buf = BytesMut::new(),
        }
    }
    stream.read_buf(buf).await
}

const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

type Parsed = request_head::Parsed<Endpoint>;

/// The head at the front of `buf`, if it is a request for one of the direct routes.
fn parse(buf: &[u8], max_body: usize) -> Parsed {
    request_head::parse(buf, max_body, |method, path| {
        if method == "POST" {
            crate::direct_route(&http::Method::POST, path)
        } else {
            None
        }
    })
}

/// The request for the handler, of its head's `parts` (none when a name or value is not valid
/// in an `http` request) and the body that came.
fn to_request(parts: http::request::Parts, body: Bytes, complete: bool) -> ClientRequest {
    let body = if complete {
        ClientBody::Whole(body)
    } else {
        // What came, then nothing more: the handler's read runs into the body's deadline,
        // which has passed, and answers 408 as it does on hyper's connections.
        let rest =
            futures_util::stream::once(async move { Ok::<_, io::Error>(body) }).chain(futures_util::stream::pending());
        ClientBody::Stream(axum::body::Body::from_stream(rest))
    };
    ClientRequest { parts, body }
}

/// Writes `reply`: its head and a whole body in one vectored write, a streamed body chunk by
/// chunk as it comes (a stream's events reach the client as the upstream sends them).
///
/// Its future is small: the reply is taken apart before the first await, and a streamed body's
/// writer (which holds the body and its frames across many awaits) is boxed, so that the
/// connection's task, which holds this future inline, is not sized by it.
fn write_reply(
    stream: &mut TcpStream,
    reply: Reply,
    keep_alive: bool,
) -> impl std::future::Future<Output = io::Result<()>> + '_ {
    // An answer's head is ~1 KB: the upstream's headers twice over and ours.
    let mut head = Vec::with_capacity(2048);
    reply.write_head(&mut head);
    if !reply.headers.contains_key(http::header::DATE) {
        push_field(&mut head, b"date", &http_date());
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    let status = reply.status.as_u16();
    let body = if reply.status.is_informational() || status == 204 || status == 304 {
        head.extend_from_slice(b"\r\n");
        None
    } else {
        Some(reply.body)
    };
    write_body(stream, head, body)
}

async fn write_body(stream: &mut TcpStream, mut head: Vec<u8>, body: Option<ReplyBody>) -> io::Result<()> {
    match body {
        None => write_all(stream, &mut [&head]).await,
        Some(ReplyBody::Whole(parts)) => {
            let len: usize = parts.iter().map(Bytes::len).sum();
            let _ = write!(head, "content-length: {len}\r\n\r\n");
            // A proxied answer is up to three pieces (the body around the re-stamped model
            // name): written as they are, in the head's write.
            let [a, b, c] = &parts;
            write_all(stream, &mut [&head, a, b, c]).await
        }
        Some(ReplyBody::Stream(body)) => Box::pin(write_stream(stream, head, body)).await,
    }
}

/// A streamed reply's body after `head`: with its length when the stream knows it, else chunked.
async fn write_stream(stream: &mut TcpStream, mut head: Vec<u8>, mut body: axum::body::Body) -> io::Result<()> {
    if let Some(len) = body.size_hint().exact() {
        // A body of known length in a stream's clothes (an upstream's answer passed through):
        // written whole, with its length.
        let _ = write!(head, "content-length: {len}\r\n\r\n");
        // The first three pieces as they are, in the head's write; a fourth and later ones
        // joined.
        let mut pieces: [Bytes; 3] = Default::default();
        let mut count = 0;
        let mut rest = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(chunk) = frame.map_err(io::Error::other)?.into_data() else { continue };
            match pieces.get_mut(count) {
                Some(piece) => {
                    *piece = chunk;
                    count += 1;
                }
                None => rest.extend_from_slice(&chunk),
            }
        }
        let [a, b, c] = &pieces;
        return write_all(stream, &mut [&head, a, b, c, &rest]).await;
    }
    head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    let mut pending_head = Some(head);
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(io::Error::other)?.into_data() else { continue };
        if chunk.is_empty() {
            continue;
        }
        let mut size = [0u8; 18];
        let size = {
            let mut at = &mut size[..];
            let _ = write!(at, "{:x}\r\n", chunk.len());
            let left = at.len();
            &size[..18 - left]
        };
        let head = pending_head.take().unwrap_or_default();
        write_all(stream, &mut [&head, size, &chunk, b"\r\n"]).await?;
    }
    let head = pending_head.take().unwrap_or_default();
    write_all(stream, &mut [&head, b"0\r\n\r\n"]).await
}

thread_local! {
    /// The `date` header's value, formatted once per second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Now as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date() -> [u8; 29] {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == 29 {
                cached.1.copy_from_slice(text.as_bytes());
                cached.0 = second;
            }
        }
        cached.1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn head_of(text: &str) -> Parsed {
        parse(text.as_bytes(), MAX_BODY)
    }

    #[test]
    fn serves_keep_alive_posts_with_a_length_to_the_direct_routes() {
        let text = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: keep-alive\r\nContent-Length: 12\r\n\r\n{\"model\":1}";
        let Parsed::Head(head) = head_of(text) else { panic!("not served here") };
        assert_eq!(head.route, sluice_wire::sniff::Endpoint::Chat);
        assert_eq!(head.len, text.len() - 11);
        assert_eq!(head.body_len, 12);
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let ClientRequest { parts: request, body } =
            to_request(head.parts(&bytes).unwrap(), Bytes::from_static(b"{}"), true);
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(request.uri.path(), "/v1/chat/completions");
        assert_eq!(request.headers["authorization"], "Bearer k");
        assert_eq!(request.headers["host"], "x");
        assert_eq!(request.headers.len(), 4);
        assert!(matches!(body, ClientBody::Whole(b) if b == "{}"));
        let cut_off = to_request(head.parts(&bytes).unwrap(), Bytes::new(), false).body;
        assert!(matches!(cut_off, ClientBody::Stream(_)), "an incomplete body is read against its deadline");
        assert!(!head.close);
        let close = text.replace("keep-alive", "Close");
        let Parsed::Head(head) = head_of(&close) else { panic!("not served here") };
        assert!(head.close, "served, and the connection closed after it");
    }

    #[test]
    fn leaves_everything_else_to_hyper() {
        let post = |path: &str, extra: &str| format!("POST {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        for text in [
            post("/chat/completions", "Transfer-Encoding: chunked\r\n"),
            post("/chat/completions", "Content-Length: 5\r\nExpect: 100-continue\r\n"),
            post("/chat/completions", "Content-Length: 5\r\nConnection: close, upgrade\r\n"),
            post("/chat/completions", "Content-Length: 5\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"),
            post("/chat/completions", "Content-Length: 5\r\nContent-Length: 5\r\n"),
            post("/chat/completions", "Content-Length: +5\r\n"),
            post("/chat/completions", ""),
            post("/chat/completions", &format!("Content-Length: {}\r\n", MAX_BODY + 1)),
            post("/chat/completions?x=1", "Content-Length: 5\r\n"),
            post("/v1/messages", "Content-Length: 5\r\n"),
            "GET /chat/completions HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "POST /chat/completions HTTP/1.0\r\nContent-Length: 5\r\n\r\n".to_string(),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_string(),
            "NOT HTTP\r\n\r\n".to_string(),
        ] {
            assert!(matches!(head_of(&text), Parsed::NotOurs), "{text:?}");
        }
        assert!(matches!(head_of("POST /chat/completions HTTP/1.1\r\nHost:"), Parsed::Partial));
    }

    /// A body of the given pieces, of exact length when `sized`.
    struct Pieces {
        left: std::collections::VecDeque<Bytes>,
        sized: bool,
    }

    impl http_body::Body for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.left.pop_front().map(|b| Ok(http_body::Frame::data(b))))
        }

        fn size_hint(&self) -> http_body::SizeHint {
            let len = self.left.iter().map(|b| b.len() as u64).sum();
            if self.sized {
                http_body::SizeHint::with_exact(len)
            } else {
                http_body::SizeHint::new()
            }
        }
    }

    /// What `write_reply` puts on the wire for a streamed body of `pieces`.
    async fn written(pieces: &[&'static str], sized: bool, keep_alive: bool) -> String {
        let body = Pieces { left: pieces.iter().map(|p| Bytes::from_static(p.as_bytes())).collect(), sized };
        written_reply(ReplyBody::Stream(axum::body::Body::new(body)), keep_alive).await
    }

    /// What `write_reply` puts on the wire for `body`, with a header in the map and one in lines.
    async fn written_reply(body: ReplyBody, keep_alive: bool) -> String {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-one", HeaderValue::from_static("1"));
        let mut reply = Reply::stream(http::StatusCode::OK, headers, axum::body::Body::empty());
        reply.body = body;
        reply.lines.push(b"x-two", b"2");
        write_reply(&mut server, reply, keep_alive).await.unwrap();
        drop(server);
        let mut out = String::new();
        let mut client = client;
        client.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn whole_bodies_of_any_number_of_pieces_go_out_with_their_length() {
        for pieces in [&[][..], &["{}"], &["{\"a\":", "1", "}"], &["a", "b", "c", "d", "e"]] {
            let text = written(pieces, true, true).await;
            let body = pieces.concat();
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
            assert!(text.contains("\r\nx-one: 1\r\nx-two: 2\r\n"), "head lines follow the map's: {text}");
            assert!(text.contains(&format!("\r\ncontent-length: {}\r\n", body.len())), "{text}");
            assert!(!text.contains("connection: close"), "{text}");
            assert!(text.ends_with(&format!("\r\n\r\n{body}")), "{text}");
        }
    }

    #[tokio::test]
    async fn whole_replies_go_out_in_their_pieces_with_their_length() {
        let parts = [Bytes::from_static(b"{\"model\":"), Bytes::from_static(b"\"m\""), Bytes::from_static(b"}")];
        let text = written_reply(ReplyBody::Whole(parts), true).await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nx-one: 1\r\nx-two: 2\r\n"), "{text}");
        assert!(text.contains("\r\ncontent-length: 13\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{\"model\":\"m\"}"), "{text}");
    }

    #[tokio::test]
    async fn bodies_of_unknown_length_go_out_chunked() {
        let text = written(&["data: 1\n\n", "", "data: [DONE]\n\n"], false, false).await;
        assert!(text.contains("\r\ntransfer-encoding: chunked\r\n"), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n9\r\ndata: 1\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"), "{text:?}");
    }

    /// A connected pair on loopback: (the server's end, the client's).
    async fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    /// Whether the runtime holds `stream` readable right now, asking the kernel nothing.
    fn held_readable(stream: &TcpStream) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        stream.poll_read_ready(&mut cx).is_ready()
    }

    #[tokio::test]
    async fn a_read_that_drains_the_socket_leaves_it_not_readable() {
        let (mut server, mut client) = socket_pair().await;
        client.write_all(b"0123456789").await.unwrap();
        let mut buf = BytesMut::with_capacity(64);
        assert_eq!(fill(&mut server, &mut buf, 0).await.unwrap(), 10);
        // `readable` + `try_read_buf` left the readiness set here, and the next wait cost a
        // `recv` answering "would block".
        assert!(!held_readable(&server), "a short read must mark the socket drained");

        // What comes later still wakes the reader, and so does the client leaving.
        client.write_all(b"abc").await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), fill(&mut server, &mut buf, 0)).await;
        assert_eq!(read.unwrap().unwrap(), 3);
        assert_eq!(&buf[..], b"0123456789abc");
        client.write_all(b"xyz").await.unwrap();
        drop(client);
        let read = tokio::time::timeout(Duration::from_secs(5), fill(&mut server, &mut buf, 0)).await;
        assert_eq!(read.unwrap().unwrap(), 3);
        let read = tokio::time::timeout(Duration::from_secs(5), fill(&mut server, &mut buf, 0)).await;
        assert_eq!(read.unwrap().unwrap(), 0, "the end of the stream is seen after a draining read");
    }

    #[tokio::test]
    async fn a_connection_waiting_for_its_next_request_holds_no_buffer() {
        let (mut server, mut client) = socket_pair().await;
        client.write_all(b"first").await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(fill(&mut server, &mut buf, 8192).await.unwrap(), 5);
        // Between requests `serve` lets an idle connection's buffer go.
        buf = BytesMut::new();
        {
            let read = fill(&mut server, &mut buf, 8192);
            tokio::pin!(read);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(std::future::Future::poll(read.as_mut(), &mut cx).is_pending());
        }
        assert_eq!(buf.capacity(), 0, "a thousand idle connections must not cost a thousand buffers");
        client.write_all(b"next").await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), fill(&mut server, &mut buf, 8192)).await;
        assert_eq!(read.unwrap().unwrap(), 4);
        assert!(buf.capacity() >= 8192);
    }

    #[tokio::test]
    async fn a_new_connection_holds_no_buffer_until_its_first_request_comes() {
        // tokio holds an accepted socket readable before any byte came.
        let (mut server, mut client) = socket_pair().await;
        let mut buf = BytesMut::new();
        {
            let read = fill(&mut server, &mut buf, 8192);
            tokio::pin!(read);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(std::future::Future::poll(read.as_mut(), &mut cx).is_pending());
        }
        assert_eq!(buf.capacity(), 0, "a connection that has sent nothing must not cost a buffer");
        assert!(!held_readable(&server), "the wait for the first request is the event loop's");
        client.write_all(b"POST").await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), fill(&mut server, &mut buf, 8192)).await;
        assert_eq!(read.unwrap().unwrap(), 4);
        assert_eq!(&buf[..], b"POST");
        assert!(buf.capacity() >= 8192);
        // A head that came in pieces keeps what it has while it waits for the rest.
        {
            let read = fill(&mut server, &mut buf, 8192);
            tokio::pin!(read);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(std::future::Future::poll(read.as_mut(), &mut cx).is_pending());
        }
        assert_eq!(&buf[..], b"POST");
        client.write_all(b" /").await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), fill(&mut server, &mut buf, 8192)).await;
        assert_eq!(read.unwrap().unwrap(), 2);
        assert_eq!(&buf[..], b"POST /");
    }

    #[tokio::test]
    async fn a_read_that_fills_the_buffer_keeps_the_socket_readable() {
        let (mut server, mut client) = socket_pair().await;
        client.write_all(&[b'x'; 100]).await.unwrap();
        let mut buf = BytesMut::with_capacity(16);
        let room = buf.capacity();
        // Waits for the data, then reads exactly as much as the buffer holds.
        assert_eq!(fill(&mut server, &mut buf, 0).await.unwrap(), room);
        assert!(held_readable(&server), "a full buffer says nothing about what is left");
        let mut rest = 100 - room;
        while rest > 0 {
            rest -= fill(&mut server, &mut buf, 4096).await.unwrap();
        }
        assert_eq!(buf.len(), 100);
    }

    #[test]
    fn the_date_header_is_an_http_date() {
        let date = http_date();
        let text = std::str::from_utf8(&date).unwrap();
        let parsed = httpdate::parse_http_date(text).unwrap();
        let age = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(age < Duration::from_secs(5), "{text}");
    }
}
