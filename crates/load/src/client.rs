//! One HTTP/1.1 exchange on a persistent connection the caller owns (locust's model: each user
//! keeps one keep-alive connection). The client is written for the load generator's one job, so
//! that its cost stays far below the server's: the request goes out in one `write` straight from
//! bytes the worker prepared, the answer is read into the connection's buffer, its head parsed in
//! place by httparse and its body framed by the rules the gateway's upstream client uses
//! (`sluice_http::framing`). No task per connection, no channel, no header map, no copy of the
//! body. No pool and no locks either: the caller owns the connection.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use sluice_http::chunked::Chunk;
use sluice_http::framing::{body_framing, keeps_alive, Framing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::sse::{SseScanner, StreamFigures};

/// Most bytes of a failed response kept (for the message and the error file).
const FAILED_BODY_KEEP: usize = 64 * 1024;
/// Longest answer head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in an answer.
const MAX_HEADERS: usize = 100;
/// Room made in the read buffer before each read.
const READ_ROOM: usize = 8 * 1024;

/// How one request ended.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx, body read to its end.
    Ok { bytes: u64, stream: Option<StreamFigures> },
    /// A response that is not 2xx (or a 2xx stream whose body broke: then `broken` says how).
    Http { status: u16, bytes: u64, body: Bytes, broken: Option<String> },
    /// No response: connection refused, reset, timeout...
    Error(String),
}

/// One keep-alive connection and the bytes read from it but not yet used.
pub struct Conn {
    tcp: TcpStream,
    /// The part of the request the socket did not take at once.
    unsent: Vec<u8>,
    buf: BytesMut,
    /// Answers read whole on this connection: a connection that has served one may have been
    /// closed by the server while it sat idle.
    answers: u64,
}

/// What an answer's head says.
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    event_stream: bool,
}

/// Why no answer head was read.
enum HeadError {
    /// The connection failed before any byte of an answer came back: the server may never have
    /// read the request (a kept-alive connection it closed while idle), so it may be sent again.
    NothingBack(String),
    Failed(String),
}

impl Conn {
    /// Opens a connection to `addr`.
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| io_text(&e))?;
        // Requests are written in one go; don't let Nagle hold back their tails.
        let _ = tcp.set_nodelay(true);
        Ok(Conn { tcp, unsent: Vec::new(), buf: BytesMut::new(), answers: 0 })
    }

    /// Writes as much of `request` as the socket takes now and keeps the rest to be sent by the
    /// exchange: the caller's bytes need not outlive this call.
    pub fn start(&mut self, request: &[u8]) -> io::Result<()> {
        self.unsent.clear();
        let mut written = 0;
        while written < request.len() {
            match self.tcp.try_write(&request[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.unsent.extend_from_slice(&request[written..]);
        Ok(())
    }

    async fn finish_sending(&mut self) -> io::Result<()> {
        if !self.unsent.is_empty() {
            self.tcp.write_all(&self.unsent).await?;
            self.unsent.clear();
        }
        Ok(())
    }

    /// Reads more into the buffer; 0 at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_ROOM);
        // Through `AsyncRead`: a short read clears the socket's readiness, so the next read
        // waits for the event loop instead of first trying a `recv` that would fail.
        self.tcp.read_buf(&mut self.buf).await
    }

    /// Sends the request (`start` has begun it) and reads the answer's head; interim 1xx
    /// answers are skipped.
    async fn head(&mut self, head_request: bool) -> Result<Head, HeadError> {
        self.finish_sending().await.map_err(|e| HeadError::NothingBack(io_text(&e)))?;
        let mut got_any = false;
        loop {
            if !self.buf.is_empty() {
                got_any = true;
                if let Some((len, head)) = parse_head(&self.buf, head_request).map_err(HeadError::Failed)? {
                    self.buf.advance(len);
                    match head {
                        Some(head) => return Ok(head),
                        None => continue,
                    }
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(HeadError::Failed("answer head larger than 64 KiB".into()));
                }
            }
            match self.fill().await {
                Ok(0) if got_any => return Err(HeadError::Failed(CLOSED_EARLY.into())),
                Ok(0) => return Err(HeadError::NothingBack("connection closed".into())),
                Ok(_) => {}
                Err(e) if got_any => return Err(HeadError::Failed(io_text(&e))),
                Err(e) => return Err(HeadError::NothingBack(io_text(&e))),
            }
        }
    }

    /// Reads the body `framing` describes to its end, handing each piece to `data`.
    async fn body(&mut self, framing: &mut Framing, data: &mut impl FnMut(&[u8])) -> Result<(), String> {
        loop {
            match framing {
                Framing::Length(0) => return Ok(()),
                Framing::Length(left) => {
                    let take = (*left).min(self.buf.len() as u64) as usize;
                    if take > 0 {
                        data(&self.buf[..take]);
                        self.buf.advance(take);
                        *left -= take as u64;
                        continue;
                    }
                }
                Framing::Chunked(decoder) => match decoder.decode(&mut self.buf) {
                    Err(what) => return Err(what.into()),
                    Ok(Some(Chunk::Data(piece))) => {
                        data(&piece);
                        continue;
                    }
                    Ok(Some(Chunk::End)) => return Ok(()),
                    Ok(None) => {}
                },
                Framing::UntilClose if !self.buf.is_empty() => {
                    data(&self.buf);
                    self.buf.clear();
                }
                Framing::UntilClose => {}
            }
            match self.fill().await {
                Ok(0) if matches!(framing, Framing::UntilClose) => return Ok(()),
                Ok(0) => return Err(CLOSED_EARLY.into()),
                Ok(_) => {}
                Err(e) => return Err(io_text(&e)),
            }
        }
    }
}

const CLOSED_EARLY: &str = "connection closed before the whole response arrived";

/// Parses an answer head at the start of `buf`: `None` if it is not all there yet, else its
/// length and the head (`None` for an interim 1xx answer, which is skipped).
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(usize, Option<Head>)>, String> {
    // Left uninitialised: httparse writes the fields it finds and the rest is never read.
    let mut fields = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("answer head with over 100 fields".into()),
        Err(e) => return Err(format!("malformed answer head ({e})")),
    };
    let status = resp.code.unwrap_or(0);
    if status == 101 {
        return Err("the server switched protocols".into());
    }
    if (100..200).contains(&status) {
        return Ok(Some((len, None)));
    }
    let named =
        |name: &'static str| resp.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let framing = body_framing(status, head_request, named("transfer-encoding").next_back(), named("content-length"))?;
    let keep_alive = keeps_alive(resp.version == Some(0), named("connection"), &framing);
    let event_stream = named("content-type").next().is_some_and(|v| v.starts_with(b"text/event-stream"));
    Ok(Some((len, Some(Head { status, framing, keep_alive, event_stream }))))
}

/// Sends one request on `conn` (opening a connection if there is none) and reads the answer to
/// its end. `send` begins writing the request on the connection it is given (see
/// [`Conn::start`]); it is called again, on a new connection, if a kept-alive connection turns
/// out to have been closed by the server, as HTTP clients do. On any error `conn` is left empty
/// so the next request starts afresh. `scan_sse`: look for tokens in event-stream answers.
pub async fn exchange(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    head_request: bool,
    send: &mut dyn FnMut(&mut Conn) -> io::Result<()>,
    started: Instant,
    scan_sse: bool,
) -> Outcome {
    let mut sent_again = false;
    let (c, mut head) = loop {
        if conn.is_none() {
            match Conn::open(addr).await {
                Ok(c) => *conn = Some(c),
                Err(e) => return Outcome::Error(e),
            }
        }
        let c = conn.as_mut().expect("a connection was just set");
        let reused = c.answers > 0;
        let head = match send(c) {
            Ok(()) => c.head(head_request).await,
            Err(e) => Err(HeadError::NothingBack(io_text(&e))),
        };
        match head {
            Ok(head) => break (c, head),
            Err(HeadError::NothingBack(_)) if reused && !sent_again => {
                *conn = None;
                sent_again = true;
            }
            Err(HeadError::NothingBack(text) | HeadError::Failed(text)) => {
                *conn = None;
                return Outcome::Error(text);
            }
        }
    };

    let mut bytes = 0u64;
    let success = (200..300).contains(&head.status);
    let mut scanner = (success && scan_sse && head.event_stream).then(|| SseScanner::new(started));
    let mut kept = Vec::new();
    let read = c
        .body(&mut head.framing, &mut |piece| {
            bytes += piece.len() as u64;
            if success {
                if let Some(s) = scanner.as_mut() {
                    s.feed(piece, Instant::now());
                }
            } else {
                // A failure: keep the start of the body for the message and the error file.
                let room = FAILED_BODY_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&piece[..piece.len().min(room)]);
            }
        })
        .await;
    c.answers += 1;
    // Bytes past the answer would mean the two ends no longer agree where messages start.
    if read.is_err() || !head.keep_alive || !c.buf.is_empty() {
        *conn = None;
    }
    match read {
        Ok(()) if success => Outcome::Ok { bytes, stream: scanner.map(|s| s.finish(Instant::now())) },
        Ok(()) => Outcome::Http { status: head.status, bytes, body: Bytes::from(kept), broken: None },
        Err(what) => Outcome::Http {
            status: head.status,
            bytes,
            body: Bytes::from(kept),
            broken: Some(format!("body broke off: {what}")),
        },
    }
}

/// Short, stable text for an I/O error, so that failures group well.
pub fn io_text(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        BrokenPipe => "connection closed".into(),
        TimedOut => "timeout".into(),
        AddrNotAvailable => "address not available (out of local ports?)".into(),
        _ => e.to_string(),
    }
}

/// The short message a failure is grouped by: the JSON error message when there is one
/// (OpenAI `{"error":{"message"}}`, `{"message"}`, FastAPI `{"detail"}`), else the first
/// 200 bytes of the body.
pub fn failure_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| {
        let pick = |v: &serde_json::Value| -> Option<String> {
            match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        v.pointer("/error/message")
            .and_then(pick)
            .or_else(|| v.get("error").filter(|e| e.is_string()).and_then(pick))
            .or_else(|| v.get("message").and_then(pick))
            .or_else(|| v.get("detail").and_then(pick))
    });
    let text = match from_json {
        Some(m) => m,
        None => {
            let cut = &body[..body.len().min(200)];
            String::from_utf8_lossy(cut).into_owned()
        }
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&text, 200)
}

fn truncate_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::net::TcpListener;

    /// One scripted answer: its bytes, written in pieces of `piece` bytes a millisecond apart,
    /// and whether the server closes the connection after it.
    struct Answer {
        wire: Vec<u8>,
        piece: usize,
        close: bool,
    }

    fn answer(wire: &[u8], piece: usize, close: bool) -> Answer {
        Answer { wire: wire.to_vec(), piece, close }
    }

    /// What the scripted server saw: one entry per connection, with the body length of each
    /// request read on it.
    type Seen = Arc<Mutex<Vec<Vec<usize>>>>;

    /// A server on loopback that reads each request whole and writes the next scripted answer.
    async fn scripted(answers: Vec<Answer>) -> (SocketAddr, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            'connections: loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                log.lock().unwrap().push(Vec::new());
                loop {
                    let Some(body_len) = read_request(&mut tcp).await else { continue 'connections };
                    log.lock().unwrap().last_mut().unwrap().push(body_len);
                    let Some(a) = answers.next() else { return };
                    for piece in a.wire.chunks(a.piece) {
                        tcp.write_all(piece).await.unwrap();
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    if a.close {
                        continue 'connections;
                    }
                }
            }
        });
        (addr, seen)
    }

    /// Reads one request; its body's length, or `None` if the client closed the connection.
    async fn read_request(tcp: &mut TcpStream) -> Option<usize> {
        let mut buf = Vec::new();
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut fields);
            if let httparse::Status::Complete(len) = req.parse(&buf).unwrap() {
                let body_len = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
                while buf.len() < len + body_len {
                    if tcp.read_buf(&mut buf).await.unwrap() == 0 {
                        return None;
                    }
                }
                return Some(body_len);
            }
            if tcp.read_buf(&mut buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// One exchange of a POST with `body_len` bytes of body.
    async fn post(conn: &mut Option<Conn>, addr: SocketAddr, body_len: usize) -> Outcome {
        let mut request = format!("POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: {body_len}\r\n\r\n").into_bytes();
        request.resize(request.len() + body_len, b'x');
        let mut send = |c: &mut Conn| c.start(&request);
        let exchange = exchange(conn, addr, false, &mut send, Instant::now(), true);
        tokio::time::timeout(std::time::Duration::from_secs(20), exchange).await.expect("the exchange hung")
    }

    const OK_5: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

    #[tokio::test]
    async fn reads_answers_that_arrive_in_pieces_and_keeps_the_connection() {
        let (addr, seen) = scripted(vec![answer(OK_5, 3, false), answer(OK_5, 100, false)]).await;
        let mut conn = None;
        for _ in 0..2 {
            let outcome = post(&mut conn, addr, 10).await;
            assert!(matches!(outcome, Outcome::Ok { bytes: 5, stream: None }), "{outcome:?}");
            assert!(conn.is_some());
        }
        assert_eq!(*seen.lock().unwrap(), vec![vec![10, 10]]);
    }

    #[tokio::test]
    async fn decodes_chunked_event_streams_and_counts_their_tokens() {
        let events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\ndata: [DONE]\n\n";
        let mut wire =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for part in [&events[..30], &events[30..]] {
            wire.extend_from_slice(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let (addr, _) = scripted(vec![answer(&wire, 7, false)]).await;
        let mut conn = None;
        let Outcome::Ok { bytes, stream: Some(figures) } = post(&mut conn, addr, 0).await else {
            panic!("not a stream")
        };
        assert_eq!((bytes, figures.chunks), (events.len() as u64, 2));
        assert!(figures.ttft_us.is_some());
        assert!(conn.is_some(), "a chunked answer leaves the connection usable");
    }

    #[tokio::test]
    async fn answers_that_end_the_connection_drop_it() {
        let (addr, _) = scripted(vec![
            answer(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end", 4, true),
            answer(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", 100, true),
        ])
        .await;
        let mut conn = None;
        assert!(matches!(post(&mut conn, addr, 1).await, Outcome::Ok { bytes: 13, .. }));
        assert!(conn.is_none(), "a body that ends at the close leaves nothing to reuse");
        assert!(matches!(post(&mut conn, addr, 1).await, Outcome::Ok { bytes: 2, .. }));
        assert!(conn.is_none(), "Connection: close is obeyed");
    }

    #[tokio::test]
    async fn a_kept_alive_connection_the_server_closed_is_replaced_and_the_request_sent_again() {
        let (addr, seen) = scripted(vec![answer(OK_5, 100, true), answer(OK_5, 100, false)]).await;
        let mut conn = None;
        assert!(matches!(post(&mut conn, addr, 3).await, Outcome::Ok { .. }));
        // The server closed after its answer without saying so: the client finds out only now.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(conn.is_some());
        let outcome = post(&mut conn, addr, 4).await;
        assert!(matches!(outcome, Outcome::Ok { bytes: 5, .. }), "{outcome:?}");
        assert_eq!(*seen.lock().unwrap(), vec![vec![3], vec![4]]);
    }

    #[tokio::test]
    async fn a_fresh_connection_that_closes_is_a_failure_not_a_retry() {
        let (addr, seen) = scripted(vec![]).await;
        let mut conn = None;
        let outcome = post(&mut conn, addr, 3).await;
        assert!(matches!(&outcome, Outcome::Error(text) if text.contains("closed")), "{outcome:?}");
        assert!(conn.is_none());
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn failures_keep_their_body_and_broken_bodies_say_so() {
        let failure = br#"{"error":{"message":"deliberate"}}"#;
        let mut wire =
            format!("HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\n\r\n", failure.len()).into_bytes();
        wire.extend_from_slice(failure);
        let (addr, _) = scripted(vec![
            answer(&wire, 9, false),
            answer(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..", 100, true),
        ])
        .await;
        let mut conn = None;
        let Outcome::Http { status: 500, body, broken: None, .. } = post(&mut conn, addr, 1).await else { panic!() };
        assert_eq!(&body[..], failure);
        assert!(conn.is_some(), "a whole failure answer leaves the connection usable");
        let Outcome::Http { status: 200, bytes: 10, broken: Some(why), .. } = post(&mut conn, addr, 1).await else {
            panic!()
        };
        assert!(why.contains("before the whole response"), "{why}");
        assert!(conn.is_none());
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_head_requests_have_no_body() {
        let (addr, _) = scripted(vec![
            answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", 5, false),
            answer(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n", 100, false),
            answer(OK_5, 100, false),
        ])
        .await;
        let mut conn = None;
        assert!(matches!(post(&mut conn, addr, 0).await, Outcome::Ok { bytes: 2, .. }));
        let head = b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n";
        let outcome = exchange(&mut conn, addr, true, &mut |c| c.start(head), Instant::now(), false).await;
        assert!(matches!(outcome, Outcome::Ok { bytes: 0, .. }), "{outcome:?}");
        assert!(matches!(post(&mut conn, addr, 0).await, Outcome::Ok { bytes: 5, .. }), "still in step");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_socket_takes_at_once_is_sent_whole() {
        let (addr, seen) = scripted(vec![answer(OK_5, 100, false)]).await;
        let mut conn = None;
        let big = 8 * 1024 * 1024;
        assert!(matches!(post(&mut conn, addr, big).await, Outcome::Ok { bytes: 5, .. }));
        assert_eq!(*seen.lock().unwrap(), vec![vec![big]]);
    }

    #[test]
    fn failure_messages() {
        assert_eq!(
            failure_message(br#"{"error":{"message":"Rate limit\nexceeded","type":"x"}}"#),
            "Rate limit exceeded"
        );
        assert_eq!(failure_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(failure_message(br#"{"error":"bad key"}"#), "bad key");
        assert_eq!(failure_message(b"Internal Server Error"), "Internal Server Error");
        assert_eq!(failure_message(b""), "");
        let long = "x".repeat(500);
        assert_eq!(failure_message(long.as_bytes()).chars().count(), 200);
    }

    #[test]
    fn heads_are_parsed_and_framed() {
        let wire = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\n";
        let (len, head) = parse_head(wire, false).unwrap().unwrap();
        let head = head.unwrap();
        assert_eq!(&wire[len..], b"5\r\n");
        assert!(head.status == 200 && head.event_stream && head.keep_alive);
        assert!(matches!(head.framing, Framing::Chunked(_)));

        let (_, head) = parse_head(b"HTTP/1.0 503 Busy\r\nContent-Length: 4\r\n\r\n", false).unwrap().unwrap();
        let head = head.unwrap();
        assert!(head.status == 503 && !head.keep_alive && !head.event_stream);
        assert!(matches!(head.framing, Framing::Length(4)));

        let (len, head) = parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", false).unwrap().unwrap();
        assert!(head.is_none() && len == 25);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len", false).unwrap().is_none());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", false).is_err());
    }
}
