//! The upstream connection pool: keep-alive HTTP/1.1 connections per upstream (scheme and
//! authority), one shared HTTP/2 connection where TLS negotiates it, TLS by hyper-rustls.
//!
//! It replaces hyper-util's general-purpose pool because of what that one cost per request
//! (bench/README.md has the profile): the pool key hashed with SipHash on checkout and again on return, a checkout
//! raced against a connect future on every request, and a task spawned per request to wait until
//! the connection could be returned. Here a request pops an idle connection (or connects), sends
//! on it from its own task (`h1`), and the answer's body puts the connection back itself once
//! read to the end. A body dropped before its end closes its connection. Idle connections wait in
//! shards kept by thread ([`idle`]), so returning and taking one is not a lock every core contends
//! for.

use crate::answer::{UpstreamHead, UpstreamHeaders};
use crate::chain::ChainBody;
use crate::h1;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustc_hash::FxHashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::Service;

mod idle;

/// How often idle connections past their timeout are closed (on the next return to the pool).
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How long an answer may take to turn up once writing the request failed: one sent before the
/// upstream stopped reading is already here, so this only bounds a connection that is gone.
const ANSWER_AFTER_FAILED_WRITE: Duration = Duration::from_secs(1);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Cheap to clone: every clone shares one pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    h1: idle::Idle<Key, h1::Conn>,
    /// One shared connection per HTTP/2 upstream. Read on a checkout only while `h2_count` says
    /// there is one: an HTTP/1-only gateway never touches the lock.
    h2: RwLock<FxHashMap<Key, http2::SendRequest<ChainBody>>>,
    h2_count: AtomicUsize,
    idle_timeout: Duration,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    https: bool,
    authority: Authority,
}

enum Conn {
    H1(h1::Conn),
    H2(http2::SendRequest<ChainBody>),
}

/// An answer's head, and its body, which returns the connection to the pool once read to its
/// end.
pub struct Answer {
    pub head: UpstreamHead,
    pub body: UpstreamBody,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// The URL has no `http`/`https` scheme or no host.
    Url,
    /// TCP connect, TLS or the HTTP handshake failed: nothing was sent.
    Connect(String),
    /// The connection broke while the request was sent or before the answer's head arrived, or
    /// the answer's head was malformed.
    Send(BoxError),
}

impl Error {
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Url | Error::Connect(_))
    }

    /// What is wrong with the upstream's answer, when the answer is not valid HTTP.
    pub fn malformed_answer(&self) -> Option<&'static str> {
        match self {
            Error::Send(e) => match e.downcast_ref::<h1::Error>() {
                Some(h1::Error::Protocol(what)) => Some(what),
                _ => None,
            },
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Url => f.write_str("the upstream URL needs an http:// or https:// scheme and a host"),
            Error::Connect(e) => write!(f, "cannot connect: {e}"),
            Error::Send(e) => write!(f, "the connection failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl Client {
    pub fn new(connector: HttpsConnector<HttpConnector>, idle_timeout: Duration) -> Client {
        let inner = Inner {
            connector,
            h1: idle::Idle::new(),
            h2: RwLock::new(FxHashMap::default()),
            h2_count: AtomicUsize::new(0),
            idle_timeout,
        };
        Client { inner: Arc::new(inner) }
    }

    /// [`fetch`](Self::fetch), with the answer as an `http` response.
    pub async fn request(&self, req: Request<ChainBody>) -> Result<Response<UpstreamBody>, Error> {
        let answer = self.fetch(req).await?;
        let mut resp = Response::new(answer.body);
        *resp.status_mut() = answer.head.status;
        *resp.headers_mut() = answer.head.headers.into_map();
        Ok(resp)
    }

    /// Sends `req` (absolute URI) and returns the answer's head; its body returns the connection
    /// to the pool when read to the end. A request whose reused connection turns out closed
    /// before the request could be written goes out again on another one.
    pub async fn fetch(&self, req: Request<ChainBody>) -> Result<Answer, Error> {
        let key = Key::of(req.uri()).ok_or(Error::Url)?;
        let (parts, body) = req.into_parts();
        let body = body.into_parts();
        // Room for a request line and a dozen headers without growing.
        let mut h1_head = Vec::with_capacity(512);
        let mut h2_request = None;
        loop {
            let (conn, reused) = match self.checkout(&key) {
                Some(c) => (c, true),
                // Boxed: connecting (TCP, TLS, the HTTP/2 handshake) is a ~6.5 KB future, and
                // inline it made every request's future that much larger, though nearly every
                // request reuses a pooled connection (see `request_future_stays_small`).
                None => (Box::pin(self.connect(&key, &parts.uri)).await?, false),
            };
            let conn = match conn {
                Conn::H1(c) => c,
                Conn::H2(tx) => {
                    let req = h2_request.take().unwrap_or_else(|| {
                        let mut req = Request::new(ChainBody::new(body.clone()));
                        *req.method_mut() = parts.method.clone();
                        *req.uri_mut() = parts.uri.clone();
                        *req.headers_mut() = parts.headers.clone();
                        req
                    });
                    match self.send_h2(&key, tx, req).await {
                        Ok(resp) => return Ok(resp),
                        Err(H2Failed::Again(req)) if reused => {
                            h2_request = Some(*req);
                            continue;
                        }
                        Err(H2Failed::Again(_)) => return Err(Error::Send("the HTTP/2 connection closed".into())),
                        Err(H2Failed::Broken(e)) => return Err(Error::Send(e.into())),
                    }
                }
            };
            if h1_head.is_empty() {
                let len = body.iter().map(|b| b.len() as u64).sum();
                let host = host_header(&parts.uri, key.https);
                h1::encode_request(&mut h1_head, &parts.method, &origin_form(&parts.uri), host, &parts.headers, len);
            }
            match self.send_h1(conn, &key, &h1_head, &body, &parts.method).await {
                Ok(resp) => return Ok(resp),
                // The upstream closed the idle connection just before it was used.
                Err(H1Failed::Unsent(_)) if reused => continue,
                Err(H1Failed::Unsent(e) | H1Failed::Broken(e)) => return Err(Error::Send(e.into())),
            }
        }
    }

    /// Writes the request on `conn` and reads the answer's head. A write that fails is not the
    /// end: an upstream may answer before reading the whole body and then close (a 413 for a
    /// body too large), and that answer, already received, is the result.
    async fn send_h1(
        &self,
        mut conn: h1::Conn,
        key: &Key,
        head: &[u8],
        body: &[Bytes; 3],
        method: &http::Method,
    ) -> Result<Answer, H1Failed> {
        let answer = match conn.send(head, body).await {
            Ok(()) => conn.read_answer(method).await.map_err(H1Failed::Broken)?,
            Err(unsent) => match tokio::time::timeout(ANSWER_AFTER_FAILED_WRITE, conn.read_answer(method)).await {
                Ok(Ok(answer)) => h1::Answer { keep_alive: false, ..answer },
                _ => return Err(H1Failed::Unsent(unsent)),
            },
        };
        let back = answer.keep_alive.then(|| GiveBack { key: key.clone(), pool: self.inner.clone() });
        let mut body = UpstreamBody { kind: Kind::H1 { conn: Some(conn), framing: answer.framing, back } };
        body.end_if_empty();
        let headers = UpstreamHeaders::Raw(answer.headers);
        Ok(Answer { head: UpstreamHead { status: answer.status, headers }, body })
    }

    async fn send_h2(
        &self,
        key: &Key,
        mut tx: http2::SendRequest<ChainBody>,
        req: Request<ChainBody>,
    ) -> Result<Answer, H2Failed> {
        match tx.try_send_request(req).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let head = UpstreamHead { status: parts.status, headers: UpstreamHeaders::Map(parts.headers) };
                Ok(Answer { head, body: UpstreamBody { kind: Kind::H2(body) } })
            }
            Err(mut e) => {
                self.forget_h2(key);
                match e.take_message() {
                    Some(req) => Err(H2Failed::Again(Box::new(req))),
                    None => Err(H2Failed::Broken(e.into_error())),
                }
            }
        }
    }

    /// An idle connection for `key`: the shared HTTP/2 one, else the most recently used HTTP/1
    /// one that is still open (the least likely to have timed out upstream).
    fn checkout(&self, key: &Key) -> Option<Conn> {
        if self.inner.h2_count.load(Ordering::Relaxed) > 0 {
            if let Some(tx) = self.h2_for(key) {
                return Some(Conn::H2(tx));
            }
        }
        let now = Instant::now();
        loop {
            let (mut conn, since) = self.inner.h1.pop(key)?;
            // Checked outside the shard's lock: it may cost a system call.
            if now.duration_since(since) < self.inner.idle_timeout && conn.usable_after_idle() {
                return Some(Conn::H1(conn));
            }
        }
    }

    /// The open HTTP/2 connection to `key`, if there is one; a closed one is forgotten.
    fn h2_for(&self, key: &Key) -> Option<http2::SendRequest<ChainBody>> {
        {
            let h2 = self.inner.h2.read().unwrap_or_else(|e| e.into_inner());
            match h2.get(key) {
                None => return None,
                Some(tx) if !tx.is_closed() => return Some(tx.clone()),
                Some(_) => {}
            }
        }
        self.forget_h2(key);
        None
    }

    fn forget_h2(&self, key: &Key) {
        let mut h2 = self.inner.h2.write().unwrap_or_else(|e| e.into_inner());
        if h2.get(key).is_some_and(|tx| tx.is_closed()) {
            h2.remove(key);
        }
        self.inner.h2_count.store(h2.len(), Ordering::Relaxed);
    }

    async fn connect(&self, key: &Key, uri: &Uri) -> Result<Conn, Error> {
        let mut connector = self.inner.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await.map_err(|e| Error::Connect(e.to_string()))?;
        let io = connector.call(uri.clone()).await.map_err(|e| Error::Connect(e.to_string()))?;
        if io.connected().is_negotiated_h2() {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| Error::Connect(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut h2 = self.inner.h2.write().unwrap_or_else(|e| e.into_inner());
            h2.insert(key.clone(), tx.clone());
            self.inner.h2_count.store(h2.len(), Ordering::Relaxed);
            return Ok(Conn::H2(tx));
        }
        let io = match io {
            MaybeHttpsStream::Http(tcp) => h1::Io::Tcp(tcp.into_inner()),
            MaybeHttpsStream::Https(tls) => h1::Io::Tls(Box::new(tls.into_inner())),
        };
        Ok(Conn::H1(h1::Conn::new(io)))
    }

    /// Idle HTTP/1 connections held for `authority` (tests).
    #[cfg(test)]
    fn idle_count(&self, https: bool, authority: &str) -> usize {
        let key = Key { https, authority: authority.parse().expect("authority") };
        self.inner.h1.count(&key)
    }
}

enum H1Failed {
    /// Writing the request failed and no answer came: the upstream cannot have acted on it.
    Unsent(h1::Error),
    /// Sent, but the answer's head did not come whole: it may have acted on it.
    Broken(h1::Error),
}

enum H2Failed {
    /// Not sent: the connection had closed. The request comes back to go out on another.
    Again(Box<Request<ChainBody>>),
    Broken(hyper::Error),
}

impl Key {
    fn of(uri: &Uri) -> Option<Key> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return None,
        };
        let authority = uri.authority()?.clone();
        Some(Key { https, authority })
    }
}

/// `host[:port]`, the port left out when it is the scheme's default (as browsers and hyper do).
fn host_header(uri: &Uri, https: bool) -> &str {
    let authority = uri.authority().map_or("", Authority::as_str);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match uri.port_u16() {
        Some(443) if https => authority.trim_end_matches(":443"),
        Some(80) if !https => authority.trim_end_matches(":80"),
        _ => authority,
    }
}

/// The request target an HTTP/1.1 request line carries: the path and query, `/` for none.
fn origin_form(uri: &Uri) -> std::borrow::Cow<'_, str> {
    match uri.path_and_query().map(|p| p.as_str()) {
        Some(p) if p.starts_with('/') => p.into(),
        Some(p) => format!("/{p}").into(),
        None => "/".into(),
    }
}

/// Where a kept-alive connection goes once its answer has been read.
struct GiveBack {
    key: Key,
    pool: Arc<Inner>,
}

impl Inner {
    fn put(&self, key: Key, conn: h1::Conn) {
        self.h1.put(key, conn, Instant::now(), self.idle_timeout, SWEEP_EVERY, || {
            if self.h2_count.load(Ordering::Relaxed) > 0 {
                let mut h2 = self.h2.write().unwrap_or_else(|e| e.into_inner());
                h2.retain(|_, tx| !tx.is_closed());
                self.h2_count.store(h2.len(), Ordering::Relaxed);
            }
        });
    }
}

/// An upstream answer's body. Read to its end, it returns its connection to the pool.
pub struct UpstreamBody {
    kind: Kind,
}

enum Kind {
    H1 { conn: Option<h1::Conn>, framing: h1::Framing, back: Option<GiveBack> },
    H2(Incoming),
}

impl UpstreamBody {
    /// A body that has ended returns its connection now rather than on a further poll, which a
    /// reader that knows the length may never make.
    fn end_if_empty(&mut self) {
        let Kind::H1 { conn, framing: h1::Framing::Length(0), back } = &mut self.kind else { return };
        if let (Some(mut c), Some(back)) = (conn.take(), back.take()) {
            if c.finish_answer() {
                back.pool.put(back.key, c);
            }
        }
    }
}

impl UpstreamBody {
    /// The whole body, if it is no longer than `limit` and already here (see
    /// [`h1::Conn::take_buffered`]); the connection goes back to the pool.
    pub fn take_whole(&mut self, limit: usize) -> Option<Bytes> {
        let Kind::H1 { conn: Some(conn), framing, .. } = &mut self.kind else { return None };
        if matches!(framing, h1::Framing::Length(n) if *n > limit as u64) {
            return None;
        }
        let whole = conn.take_buffered(framing)?;
        self.end_if_empty();
        Some(whole)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = match &mut self.kind {
            Kind::H2(body) => return Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::H1 { conn: None, .. } => return Poll::Ready(None),
            Kind::H1 { conn: Some(conn), framing, .. } => conn.poll_body(framing, cx),
        };
        match polled {
            Poll::Ready(Some(Ok(data))) => {
                self.end_if_empty();
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(None) => {
                self.end_if_empty();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // The connection is in an unknown state: close it.
                if let Kind::H1 { conn, .. } = &mut self.kind {
                    *conn = None;
                }
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::H1 { conn: None, .. } => true,
            Kind::H1 { framing, .. } => matches!(framing, h1::Framing::Length(0)),
            Kind::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::H1 { conn: None, .. } => SizeHint::with_exact(0),
            Kind::H1 { framing: h1::Framing::Length(n), .. } => SizeHint::with_exact(*n),
            Kind::H1 { .. } => SizeHint::default(),
            Kind::H2(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn client() -> Client {
        client_trusting(crate::connect::rustls_config())
    }

    fn client_trusting(tls: rustls::ClientConfig) -> Client {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        Client::new(crate::connect::connector(http, tls), Duration::from_secs(90))
    }

    /// A request's future is part of every proxied request's state (and, through the handler, of
    /// every connection's task): connecting, rare once the pool is warm, is boxed so its ~6.5 KB
    /// future is not carried by every request. Inline it made this ~8 KB.
    #[tokio::test]
    async fn request_future_stays_small() {
        let c = client();
        let req = Request::post("http://127.0.0.1:9/").body(ChainBody::full(Bytes::new())).unwrap();
        let future = c.request(req);
        assert!(std::mem::size_of_val(&future) < 4096, "{} bytes", std::mem::size_of_val(&future));
    }

    /// A keep-alive HTTP/1.1 server answering `hello` to every request; counts connections.
    /// `close_after` closes each connection after that many answers (without saying so).
    async fn server(close_after: usize) -> (String, Arc<AtomicUsize>) {
        let (addr, conns) = serve_counted(move |s| answer_hellos(s, close_after)).await;
        (format!("http://{addr}/v1/chat"), conns)
    }

    /// Accepts connections on a fresh loopback port and runs `handle` on each; counts them.
    async fn serve_counted<F, Fut>(handle: F) -> (std::net::SocketAddr, Arc<AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let counted = conns.clone();
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handle(s));
            }
        });
        (addr, conns)
    }

    /// Answers `hello` to each request on `s`, `close_after` times at most; stops at a request
    /// without a Host header or not in origin form.
    async fn answer_hellos<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, close_after: usize) {
        let mut buf = vec![0u8; 65536];
        let mut have = Vec::new();
        for _ in 0..close_after {
            // One request: head up to the blank line, then Content-Length bytes.
            loop {
                if let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&have[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if have.len() >= end + 4 + len {
                        // HTTP/1.1 requires Host (and the origin form of the URI).
                        let well_formed = head.starts_with("post /v1/chat ") && head.contains("\r\nhost: 127.0.0.1:");
                        have.drain(..end + 4 + len);
                        if !well_formed {
                            return;
                        }
                        break;
                    }
                }
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                have.extend_from_slice(&buf[..n]);
            }
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
            if s.write_all(answer).await.is_err() || s.flush().await.is_err() {
                return;
            }
        }
    }

    /// [`server`] behind TLS (a self-signed certificate for 127.0.0.1, HTTP/1.1 by ALPN), and a
    /// client that trusts it.
    async fn tls_server(close_after: usize) -> (String, Arc<AtomicUsize>, Client) {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (addr, conns) = serve_counted(move |s| {
            let acceptor = acceptor.clone();
            async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer_hellos(tls, close_after).await;
                }
            }
        })
        .await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (format!("https://{addr}/v1/chat"), conns, client_trusting(tls))
    }

    /// Accepts one connection, reads once (up to 4 KiB), writes `answer`, waits `linger` and
    /// closes.
    async fn answer_once(answer: &'static [u8], linger: Duration) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(answer).await;
            tokio::time::sleep(linger).await;
        });
        addr
    }

    async fn get(c: &Client, url: &str) -> Result<Bytes, Error> {
        let resp = c.request(post(url, Bytes::from_static(b"{}"))).await?;
        Ok(resp.into_body().collect().await.map_err(Error::Send)?.to_bytes())
    }

    fn post(url: &str, body: Bytes) -> Request<ChainBody> {
        let mut req = Request::new(ChainBody::full(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = url.parse().unwrap();
        req
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (url, conns) = server(usize::MAX).await;
        let c = client();
        for _ in 0..20 {
            assert_eq!(get(&c, &url).await.unwrap(), "hello");
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
        assert_eq!(c.idle_count(false, &authority), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_and_keep_them() {
        let (url, conns) = server(usize::MAX).await;
        let c = client();
        let all = (0..8).map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { get(&c, &url).await.unwrap() })
        });
        for t in all.collect::<Vec<_>>() {
            assert_eq!(t.await.unwrap(), "hello");
        }
        let opened = conns.load(Ordering::SeqCst);
        assert!((1..=8).contains(&opened), "{opened} connections");
        for _ in 0..20 {
            get(&c, &url).await.unwrap();
        }
        assert_eq!(conns.load(Ordering::SeqCst), opened, "later requests reuse the pooled connections");
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
        let (url, conns) = server(1).await;
        let c = client();
        for _ in 0..5 {
            assert_eq!(get(&c, &url).await.unwrap(), "hello");
            // Let hyper see the upstream's close.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(conns.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn back_to_back_requests_to_an_upstream_that_closes_every_connection_all_succeed() {
        // No pause between requests: the close can land while a connection is being checked out
        // or the request sent on it, which must then go out again on a fresh connection.
        let (url, conns) = server(1).await;
        let c = client();
        for _ in 0..50 {
            assert_eq!(get(&c, &url).await.unwrap(), "hello");
        }
        assert_eq!(conns.load(Ordering::SeqCst), 50);
    }

    #[tokio::test]
    async fn a_body_already_here_is_taken_whole_and_its_connection_returned() {
        let (url, _) = server(usize::MAX).await;
        let c = client();
        let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
        let mut answer = c.fetch(post(&url, Bytes::from_static(b"{}"))).await.unwrap();
        assert_eq!(answer.body.take_whole(4), None, "over the limit: left to the limited read");
        assert_eq!(answer.body.take_whole(5).as_deref(), Some(&b"hello"[..]));
        assert_eq!(c.idle_count(false, &authority), 1);
        assert!(answer.body.is_end_stream());

        // Promises 10 bytes, sends 5: not all here, so not taken.
        let addr = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", Duration::from_secs(30)).await;
        let mut req = Request::new(ChainBody::full(Bytes::new()));
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let mut answer = c.fetch(req).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(answer.body.take_whole(100), None);
        let first = answer.body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "hello", "the body still reads from where it was");
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_does_not_return_its_connection() {
        // Promises 10 bytes, sends 5, then stalls.
        let addr = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", Duration::from_secs(30)).await;
        let c = client();
        let mut req = Request::new(ChainBody::full(Bytes::new()));
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let resp = c.request(req).await.unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "hello");
        drop(body);
        assert_eq!(c.idle_count(false, &addr.to_string()), 0);
    }

    /// A server that reads one request per turn and writes each of `answers` in the pieces
    /// given, pausing between pieces so they arrive in separate reads, and closes the connection
    /// after the last answer; counts connections.
    async fn scripted(answers: Vec<Vec<&'static [u8]>>) -> (String, Arc<AtomicUsize>) {
        let answers = Arc::new(answers);
        let next = Arc::new(AtomicUsize::new(0));
        let (addr, conns) = serve_counted(move |mut s| {
            let (answers, next) = (answers.clone(), next.clone());
            async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    // Requests here are small: one read holds the whole of one.
                    if s.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let Some(pieces) = answers.get(next.fetch_add(1, Ordering::SeqCst)) else { return };
                    for piece in pieces {
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    // The script is over: close, so an answer without a length can end.
                    if next.load(Ordering::SeqCst) >= answers.len() {
                        return;
                    }
                }
            }
        })
        .await;
        (format!("http://{addr}/v1/chat"), conns)
    }

    #[tokio::test]
    async fn chunked_answers_split_anywhere_are_decoded_and_the_connection_kept() {
        let chunked: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 200 OK\r\ntransfer-en",
            b"coding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6;x=y\r\n, worl\r\n1\r\nd\r",
            b"\n0\r\ntrailer: 1\r\n\r\n",
        ];
        let (url, conns) = scripted(vec![chunked.clone(), chunked]).await;
        let c = client();
        assert_eq!(get(&c, &url).await.unwrap(), "hello, world");
        assert_eq!(get(&c, &url).await.unwrap(), "hello, world");
        assert_eq!(conns.load(Ordering::SeqCst), 1, "the connection went back to the pool after the last chunk");
    }

    #[tokio::test]
    async fn an_answer_that_closes_its_connection_is_not_pooled() {
        let close: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"];
        let until_eof: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\n\r\nto the end"];
        let (url, conns) = scripted(vec![close.clone(), close]).await;
        let c = client();
        assert_eq!(get(&c, &url).await.unwrap(), "ok");
        assert_eq!(get(&c, &url).await.unwrap(), "ok");
        assert_eq!(conns.load(Ordering::SeqCst), 2);
        let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
        assert_eq!(c.idle_count(false, &authority), 0);

        // A body without a length ends when the upstream closes (the server task returns after
        // its script, dropping the socket).
        let (url, _) = scripted(vec![until_eof]).await;
        assert_eq!(get(&client(), &url).await.unwrap(), "to the end");
    }

    #[tokio::test]
    async fn a_connection_with_bytes_past_its_answer_is_not_reused() {
        // The answer claims 2 bytes and sends 4: the extra bytes sit unread on the connection.
        let sloppy: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokXX"];
        let fine: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"];
        let (url, conns) = scripted(vec![sloppy, fine]).await;
        let c = client();
        assert_eq!(get(&c, &url).await.unwrap(), "ok");
        assert_eq!(get(&c, &url).await.unwrap(), "ok");
        assert_eq!(conns.load(Ordering::SeqCst), 2, "the second request went out on a fresh connection");
    }

    #[tokio::test]
    async fn a_malformed_answer_is_an_error_not_a_hang() {
        let (url, _) = scripted(vec![vec![b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"]]).await;
        let e = get(&client(), &url).await.unwrap_err();
        assert!(!e.is_connect() && e.to_string().contains("Content-Length"), "{e}");
        let (url, _) = scripted(vec![vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]]).await;
        let e = get(&client(), &url).await.unwrap_err();
        assert!(e.to_string().contains("closed the connection"), "{e}");
    }

    #[tokio::test]
    async fn an_answer_sent_before_the_upstream_stopped_reading_is_returned() {
        // Reads the head only, refuses the body, and closes with most of it unread.
        let addr =
            answer_once(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!", Duration::ZERO).await;
        let c = client();
        let resp = c.request(post(&format!("http://{addr}/v1/chat"), Bytes::from(vec![b'x'; 64 << 20]))).await.unwrap();
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "too big!");
        assert_eq!(c.idle_count(false, &addr.to_string()), 0, "a connection that failed a write is not kept");
    }

    #[tokio::test]
    async fn tls_upstreams_keep_their_connections_and_replace_closed_ones() {
        // TLS 1.3 servers send session tickets after the handshake: records the idle check must
        // take as a live connection, not as bytes out of turn.
        let (url, conns, c) = tls_server(usize::MAX).await;
        for _ in 0..20 {
            assert_eq!(get(&c, &url).await.unwrap(), "hello");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        let (url, conns, c) = tls_server(1).await;
        for _ in 0..5 {
            assert_eq!(get(&c, &url).await.unwrap(), "hello");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(conns.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let e = get(&client(), &format!("http://{addr}/")).await.unwrap_err();
        assert!(e.is_connect(), "{e}");
        let e = get(&client(), "/no/scheme").await.unwrap_err();
        assert!(matches!(e, Error::Url), "{e}");
    }

    #[test]
    fn host_header_leaves_out_the_default_port() {
        let h = |u: &str, https| host_header(&u.parse().unwrap(), https).to_string();
        assert_eq!(h("https://api.openai.com:443/v1", true), "api.openai.com");
        assert_eq!(h("http://127.0.0.1:80/", false), "127.0.0.1");
        assert_eq!(h("http://127.0.0.1:8190/", false), "127.0.0.1:8190");
        assert_eq!(h("https://example.com/", true), "example.com");
        assert_eq!(origin_form(&"http://a:1/v1/x?y=1".parse().unwrap()), "/v1/x?y=1");
        assert_eq!(origin_form(&"http://a:1".parse().unwrap()), "/");
        assert_eq!(origin_form(&"http://a:1?q=1".parse().unwrap()), "/?q=1");
    }
}
