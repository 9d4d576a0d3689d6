//! The upstream connection pool: keep-alive HTTP/1.1 connections per upstream (scheme and
//! authority), one shared HTTP/2 connection where TLS negotiates it, TLS by hyper-rustls.
//!
//! It replaces hyper-util's general-purpose pool because that one cost ~6% of a proxied request's
//! instructions: the pool key hashed with SipHash on checkout and again on return, a checkout
//! raced against a connect future on every request, and a task spawned per request to wait until
//! the connection could be returned. Here a request pops a ready connection (or connects), and the
//! response body gives the connection back itself once the upstream's answer has been read to the
//! end: by then hyper's connection task has taken the next-request slot, so no task is needed.
//! A body dropped before its end takes its connection with it (hyper closes it).

use super::body::ChainBody;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustc_hash::FxHashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::Service;

/// How often idle connections past their timeout are closed (on the next return to the pool).
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Cheap to clone: every clone shares one pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    idle: Mutex<Idle>,
    idle_timeout: Duration,
}

struct Idle {
    h1: FxHashMap<Key, Vec<(http1::SendRequest<ChainBody>, Instant)>>,
    h2: FxHashMap<Key, http2::SendRequest<ChainBody>>,
    swept: Instant,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    https: bool,
    authority: Authority,
}

enum Conn {
    H1(http1::SendRequest<ChainBody>),
    H2(http2::SendRequest<ChainBody>),
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// The URL has no `http`/`https` scheme or no host.
    Url,
    /// TCP connect, TLS or the HTTP handshake failed: nothing was sent.
    Connect(String),
    /// The connection broke while the request was sent or before the answer's head arrived.
    Send(hyper::Error),
}

impl Error {
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Url | Error::Connect(_))
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
        let idle = Idle { h1: FxHashMap::default(), h2: FxHashMap::default(), swept: Instant::now() };
        Client { inner: Arc::new(Inner { connector, idle: Mutex::new(idle), idle_timeout }) }
    }

    /// Sends `req` (absolute URI) and returns the answer's head; its body returns the connection
    /// to the pool when read to the end. A request that a reused connection closed under before
    /// it was sent goes out again on a fresh one.
    pub async fn request(&self, mut req: Request<ChainBody>) -> Result<Response<UpstreamBody>, Error> {
        let key = Key::of(req.uri()).ok_or(Error::Url)?;
        // HTTP/1.1 needs a Host header; HTTP/2 carries the authority in the URI (`:authority`).
        let host = match req.headers().contains_key(header::HOST) {
            true => None,
            false => Some(HeaderValue::from_str(host_header(req.uri(), key.https)).map_err(|_| Error::Url)?),
        };
        let absolute = req.uri().clone();
        loop {
            let (conn, reused) = match self.checkout(&key) {
                Some(c) => (c, true),
                None => (self.connect(&key, &absolute).await?, false),
            };
            let sent = match conn {
                Conn::H1(mut tx) => {
                    *req.uri_mut() = origin_form(&absolute);
                    if let Some(host) = &host {
                        req.headers_mut().insert(header::HOST, host.clone());
                    }
                    match tx.try_send_request(req).await {
                        Ok(resp) => {
                            let back = GiveBack { tx, key, pool: self.inner.clone() };
                            return Ok(resp.map(|body| UpstreamBody { body, back: Some(back) }));
                        }
                        Err(e) => e,
                    }
                }
                Conn::H2(mut tx) => match tx.try_send_request(req).await {
                    Ok(resp) => return Ok(resp.map(|body| UpstreamBody { body, back: None })),
                    Err(e) => {
                        self.forget_h2(&key);
                        e
                    }
                },
            };
            let mut sent = sent;
            match sent.take_message() {
                Some(again) if reused => {
                    req = again;
                    *req.uri_mut() = absolute.clone();
                }
                _ => return Err(Error::Send(sent.into_error())),
            }
        }
    }

    fn checkout(&self, key: &Key) -> Option<Conn> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = idle.h2.get(key) {
            if !tx.is_closed() {
                return Some(Conn::H2(tx.clone()));
            }
            idle.h2.remove(key);
        }
        let list = idle.h1.get_mut(key)?;
        // The most recently used first: the one least likely to have timed out upstream.
        while let Some((tx, _)) = list.pop() {
            // Not ready: closed by the upstream while idle (hyper saw the EOF).
            if tx.is_ready() {
                return Some(Conn::H1(tx));
            }
        }
        None
    }

    fn forget_h2(&self, key: &Key) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.h2.get(key).is_some_and(|tx| tx.is_closed()) {
            idle.h2.remove(key);
        }
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
            let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.h2.insert(key.clone(), tx.clone());
            return Ok(Conn::H2(tx));
        }
        let (tx, conn) = http1::Builder::new().handshake(io).await.map_err(|e| Error::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn::H1(tx))
    }

    /// Idle HTTP/1 connections held for `authority` (tests).
    #[cfg(test)]
    fn idle_count(&self, https: bool, authority: &str) -> usize {
        let key = Key { https, authority: authority.parse().expect("authority") };
        let idle = self.inner.idle.lock().unwrap();
        idle.h1.get(&key).map_or(0, Vec::len)
    }
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

fn origin_form(uri: &Uri) -> Uri {
    let path = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::from(path)
}

struct GiveBack {
    tx: http1::SendRequest<ChainBody>,
    key: Key,
    pool: Arc<Inner>,
}

impl GiveBack {
    fn give_back(self) {
        if self.tx.is_ready() {
            self.pool.put(self.key, self.tx);
            return;
        }
        // hyper's connection task has not taken the next-request slot yet (a multi-thread
        // runtime can get here first): wait for it without holding up the response.
        tokio::spawn(async move {
            let GiveBack { mut tx, key, pool } = self;
            if tx.ready().await.is_ok() {
                pool.put(key, tx);
            }
        });
    }
}

impl Inner {
    fn put(&self, key: Key, tx: http1::SendRequest<ChainBody>) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(idle.swept) >= SWEEP_EVERY {
            idle.swept = now;
            let timeout = self.idle_timeout;
            for list in idle.h1.values_mut() {
                list.retain(|(tx, since)| now.duration_since(*since) < timeout && tx.is_ready());
            }
            idle.h1.retain(|_, list| !list.is_empty());
            idle.h2.retain(|_, tx| !tx.is_closed());
        }
        idle.h1.entry(key).or_default().push((tx, now));
    }
}

/// An upstream answer's body. Read to its end, it returns its connection to the pool.
pub struct UpstreamBody {
    body: Incoming,
    back: Option<GiveBack>,
}

impl UpstreamBody {
    fn ended(&mut self) {
        if let Some(back) = self.back.take() {
            back.give_back();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended(),
            // The last frame of a body with a length: give the connection back now rather than
            // on a further poll that a reader which knows the length may never make.
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.ended(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(super::super::upstream::rustls_config())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Client::new(https, Duration::from_secs(90))
    }

    /// A keep-alive HTTP/1.1 server answering `hello` to every request; counts connections.
    /// `close_after` closes each connection after that many answers (without saying so).
    async fn server(close_after: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let counted = conns.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
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
                                    let well_formed =
                                        head.starts_with("post /v1/chat ") && head.contains("\r\nhost: 127.0.0.1:");
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
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/v1/chat"), conns)
    }

    async fn get(c: &Client, url: &str) -> Result<Bytes, Error> {
        let mut req = Request::new(ChainBody::full(Bytes::from_static(b"{}")));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = url.parse().unwrap();
        let resp = c.request(req).await?;
        Ok(resp.into_body().collect().await.map_err(Error::Send)?.to_bytes())
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
    async fn a_body_dropped_before_its_end_does_not_return_its_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            // Promises 10 bytes, sends 5, then stalls.
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello").await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
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
    }
}
