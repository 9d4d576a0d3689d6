//! One HTTP/1.1 exchange on a hand-managed, persistent hyper connection (locust's model: each
//! user keeps one keep-alive connection). No pool, no locks: the caller owns the connection.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::plan::Endpoint;
use crate::sse::{SseScanner, StreamFigures};

pub type Sender = http1::SendRequest<Full<Bytes>>;

/// Most bytes of a failed response kept (for the message and the error file).
const FAILED_BODY_KEEP: usize = 64 * 1024;

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

/// Opens a connection and spawns its driver on the current `LocalSet`.
pub async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| io_text(&e))?;
    // Requests are written in one go; don't let Nagle hold back their tails.
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::Builder::new().handshake(TokioIo::new(tcp)).await.map_err(|e| hyper_text(&e))?;
    tokio::task::spawn_local(async move {
        // Errors surface on the request that was in flight; nothing more to do here.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request of `ep` on `conn` (opening a connection if there is none or it closed)
/// and reads the answer to its end. On any error `conn` is left empty so the next request
/// starts afresh. `scan_sse`: look for tokens in event-stream answers.
pub async fn exchange(
    conn: &mut Option<Sender>,
    addr: SocketAddr,
    ep: &Endpoint,
    body: Bytes,
    started: Instant,
    scan_sse: bool,
) -> Outcome {
    let mut fresh = false;
    if conn.as_ref().is_none_or(|s| s.is_closed()) {
        *conn = None;
        match connect(addr).await {
            Ok(s) => *conn = Some(s),
            Err(e) => return Outcome::Error(e),
        }
        fresh = true;
    }
    let response = loop {
        let sender = conn.as_mut().expect("a connection was just set");
        let sent = match sender.ready().await {
            Ok(()) => sender.send_request(build(ep, body.clone())).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(r) => break r,
            Err(e) => {
                *conn = None;
                // A kept-alive connection the server closed while idle: the request never left,
                // so retry once on a new connection, as HTTP clients do.
                if !fresh && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) {
                    match connect(addr).await {
                        Ok(s) => *conn = Some(s),
                        Err(e) => return Outcome::Error(e),
                    }
                    fresh = true;
                    continue;
                }
                return Outcome::Error(hyper_text(&e));
            }
        }
    };

    let status = response.status();
    let is_sse = scan_sse
        && response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mut body = response.into_body();
    let mut bytes = 0u64;

    if status.is_success() {
        let mut scanner = is_sse.then(|| SseScanner::new(started));
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        bytes += data.len() as u64;
                        if let Some(s) = scanner.as_mut() {
                            s.feed(data, Instant::now());
                        }
                    }
                }
                Some(Err(e)) => {
                    *conn = None;
                    return Outcome::Http {
                        status: status.as_u16(),
                        bytes,
                        body: Bytes::new(),
                        broken: Some(format!("body broke off: {}", hyper_text(&e))),
                    };
                }
            }
        }
        return Outcome::Ok { bytes, stream: scanner.map(|s| s.finish(Instant::now())) };
    }

    // A failure: keep the start of the body for the message and the error file, and read the
    // rest so the connection can be reused.
    let mut kept = Vec::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    bytes += data.len() as u64;
                    let room = FAILED_BODY_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(_)) => {
                *conn = None;
                break;
            }
        }
    }
    Outcome::Http { status: status.as_u16(), bytes, body: Bytes::from(kept), broken: None }
}

fn build(ep: &Endpoint, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = ep.method.clone();
    *req.uri_mut() = ep.uri.clone();
    *req.headers_mut() = ep.headers.clone();
    req
}

/// Short, stable text for an I/O error, so that failures group well.
pub fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        TimedOut => "timeout".into(),
        AddrNotAvailable => "address not available (out of local ports?)".into(),
        _ => e.to_string(),
    }
}

fn hyper_text(e: &hyper::Error) -> String {
    use std::error::Error;
    if let Some(io) = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
        return io_text(io);
    }
    if e.is_incomplete_message() {
        return "connection closed before the whole response arrived".into();
    }
    if e.is_closed() || e.is_canceled() {
        return "connection closed".into();
    }
    if e.is_timeout() {
        return "timeout".into();
    }
    e.to_string()
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
}
