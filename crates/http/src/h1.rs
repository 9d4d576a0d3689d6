//! HTTP/1.1 to an upstream, driven by the request's own task.
//!
//! hyper's client ran a task per connection and passed each request, its answer and every body
//! chunk between that task and the caller through channels, waking one task from the other at
//! each step, a large share of a proxied request's cost (bench/README.md). Here the caller writes the head and
//! body in one vectored write, reads the answer's head into the connection's buffer, and the
//! answer's body is read from the socket as the body is polled, so a proxied request is served
//! by the one task hyper's server runs for the client connection. HTTP/2 stays with hyper.

mod head;

pub use head::{encode_request, parse_response, push_field, Answer, Framing};

use crate::chunked::Chunk;
use bytes::{Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Longest answer head accepted (hyper's client allowed ~400 KB of buffer; heads are < 2 KB).
const MAX_HEAD: usize = 64 * 1024;
/// The read buffer a connection starts with; it grows only for an answer that needs more.
const READ_BUFFER: usize = 8 * 1024;
/// A buffer grown past this for one large answer is not kept for the connection's idle life.
const KEEP_BUFFER: usize = 64 * 1024;

/// One keep-alive connection and the bytes read from it but not yet used.
pub struct Conn {
    io: Io,
    buf: BytesMut,
}

/// Plain TCP, or TLS that negotiated HTTP/1.1.
pub enum Io {
    Tcp(TcpStream),
    Tls(Box<dyn Stream>),
}

pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

#[derive(Debug)]
pub enum Error {
    /// Writing the request failed: the upstream cannot have answered it.
    Write(io::Error),
    /// The connection broke, or closed, before the answer was complete.
    Read(io::Error),
    /// The answer is not valid HTTP/1.1.
    Protocol(&'static str),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Write(e) => write!(f, "sending the request failed: {e}"),
            Error::Read(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("the upstream closed the connection before its answer was complete")
            }
            Error::Read(e) => write!(f, "reading the answer failed: {e}"),
            Error::Protocol(what) => write!(f, "the upstream's answer is malformed: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl Conn {
    pub fn new(io: Io) -> Conn {
        Conn { io, buf: BytesMut::with_capacity(READ_BUFFER) }
    }

    /// Whether an idle connection can carry a request: the upstream has not closed it (or sent
    /// bytes out of turn) since its last answer. Costs no system call when the runtime has seen
    /// no event on the socket since the last read, one `recv` otherwise.
    pub fn usable_after_idle(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(Pin::new(&mut self.io).poll_read(&mut cx, &mut probe), Poll::Pending)
    }

    /// Writes the request head and body in as few system calls as the socket allows.
    pub async fn send(&mut self, head: &[u8], body: &[Bytes; 3]) -> Result<(), Error> {
        let mut parts: [&[u8]; 4] = [head, &body[0], &body[1], &body[2]];
        crate::vectored::write_all(&mut self.io, &mut parts).await.map_err(Error::Write)?;
        self.io.flush().await.map_err(Error::Write)
    }

    /// Reads the answer's head; what follows it stays in the buffer for the body.
    pub async fn read_answer(&mut self, method: &http::Method) -> Result<head::Answer, Error> {
        loop {
            // Nothing read yet (the usual case on the first pass): no parse to attempt.
            if !self.buf.is_empty() {
                if let Some(answer) = head::parse_response(&mut self.buf, method).map_err(Error::Protocol)? {
                    return Ok(answer);
                }
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Error::Protocol("the answer's head is over 64 KiB"));
            }
            self.buf.reserve(4096);
            let n = std::future::poll_fn(|cx| self.poll_fill(cx)).await.map_err(Error::Read)?;
            if n == 0 {
                return Err(Error::Read(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// The next piece of the answer's body; `None` once `framing` says it has ended.
    pub fn poll_body(&mut self, framing: &mut Framing, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            match framing {
                Framing::Length(0) => return Poll::Ready(None),
                Framing::Length(left) if !self.buf.is_empty() => {
                    let take = (*left).min(self.buf.len() as u64) as usize;
                    *left -= take as u64;
                    return Poll::Ready(Some(Ok(self.buf.split_to(take).freeze())));
                }
                Framing::Chunked(decoder) => match decoder.decode(&mut self.buf) {
                    Err(what) => return Poll::Ready(Some(Err(Error::Protocol(what)))),
                    Ok(Some(Chunk::Data(data))) => return Poll::Ready(Some(Ok(data))),
                    Ok(Some(Chunk::End)) => {
                        *framing = Framing::Length(0);
                        return Poll::Ready(None);
                    }
                    Ok(None) => {}
                },
                Framing::UntilClose if !self.buf.is_empty() => return Poll::Ready(Some(Ok(self.buf.split().freeze()))),
                _ => {}
            }
            let want = match framing {
                Framing::Length(left) => (*left).min(KEEP_BUFFER as u64) as usize,
                _ => READ_BUFFER,
            };
            self.buf.reserve(want);
            match ready!(self.poll_fill(cx)) {
                Ok(0) if matches!(framing, Framing::UntilClose) => {
                    *framing = Framing::Length(0);
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Ready(Some(Err(Error::Read(io::ErrorKind::UnexpectedEof.into())))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(Error::Read(e)))),
            }
        }
    }

    /// The whole rest of a body of known length, if it is all in the buffer already (a short
    /// answer usually arrives with its head): taken without polling.
    pub fn take_buffered(&mut self, framing: &mut Framing) -> Option<Bytes> {
        let Framing::Length(left) = framing else { return None };
        let left = usize::try_from(*left).ok().filter(|&n| n <= self.buf.len())?;
        *framing = Framing::Length(0);
        Some(self.buf.split_to(left).freeze())
    }

    /// Ready for the pool once an answer has been read to its end: nothing extra was sent, and a
    /// buffer grown for one large answer is given back.
    pub fn finish_answer(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::with_capacity(READ_BUFFER);
        }
        true
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Tcp(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
