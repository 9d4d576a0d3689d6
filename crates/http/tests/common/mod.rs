//! What the property tests compare with: hyper's client reading the same answer bytes, and this
//! crate's upstream connection reading them as they arrive in pieces.

#![allow(dead_code)] // each test file uses its share

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sluice_http::h1::{Conn, Io};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Header fields as read: names lower-cased, values as they came.
pub type Fields = Vec<(String, Vec<u8>)>;

/// An answer as read: status, header fields (names lower-cased) and the whole body.
#[derive(Debug, PartialEq)]
pub struct Read {
    pub status: u16,
    pub fields: Fields,
    pub body: Vec<u8>,
}

/// Long enough for any answer here; a reader still waiting then is a hang, reported as one.
const PATIENCE: Duration = Duration::from_secs(10);

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Writes `answer` in pieces of `step` bytes once a request has arrived, then closes.
fn upstream(answer: Vec<u8>, step: usize) -> tokio::io::DuplexStream {
    let (near, mut far) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match far.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        for piece in answer.chunks(step.max(1)) {
            if far.write_all(piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        let _ = far.shutdown().await;
    });
    near
}

/// hyper's client's reading of `answer` to a GET.
pub async fn hyper_reads(answer: Vec<u8>) -> Result<Read, String> {
    let io = TokioIo::new(upstream(answer, usize::MAX));
    let read = async move {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = http::Request::get("/").header("host", "up").body(Empty::<Bytes>::new()).expect("a request");
        let resp = tx.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let fields = parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
        Ok(Read { status: parts.status.as_u16(), fields, body })
    };
    tokio::time::timeout(PATIENCE, read).await.map_err(|_| "hyper hung".to_string())?
}

/// This crate's reading of `answer` to a GET, its bytes arriving `step` at a time.
pub async fn ours_reads(answer: Vec<u8>, step: usize) -> Result<Read, String> {
    let mut conn = Conn::new(Io::Tls(Box::new(upstream(answer, step))));
    let read = async move {
        conn.send(b"GET / HTTP/1.1\r\nhost: up\r\n\r\n", &Default::default()).await.map_err(|e| e.to_string())?;
        let mut answer = conn.read_answer(&http::Method::GET).await.map_err(|e| e.to_string())?;
        let mut fields = Vec::new();
        sluice_http::answer::UpstreamHeaders::Raw(answer.headers)
            .for_each(|n, v| fields.push((String::from_utf8_lossy(n).to_ascii_lowercase(), v.to_vec())));
        let mut body = Vec::new();
        while let Some(piece) = std::future::poll_fn(|cx| conn.poll_body(&mut answer.framing, cx)).await {
            body.extend_from_slice(&piece.map_err(|e| e.to_string())?);
        }
        Ok(Read { status: answer.status.as_u16(), fields, body })
    };
    tokio::time::timeout(PATIENCE, read).await.map_err(|_| "sluice_http hung".to_string())?
}

/// `body` in the chunked coding, cut into chunks of the given sizes (the rest in one last
/// chunk), with `ext` after each size and `upper` hex digits.
pub fn chunked(body: &[u8], sizes: &[usize], ext: bool, upper: bool, trailers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = sizes.iter().copied();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let size = if upper { format!("{n:X}") } else { format!("{n:x}") };
        out.extend_from_slice(size.as_bytes());
        if ext {
            out.extend_from_slice(b";name=value");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}
