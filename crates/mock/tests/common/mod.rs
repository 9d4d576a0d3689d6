//! A plain hyper client for talking to an in-process mock.

#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_mock::{serve, MockConfig};
use tokio::net::{TcpListener, TcpStream};

pub async fn start(cfg: MockConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, cfg));
    addr
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `Err` when the body broke off (a reset mid-stream).
    pub body: Result<Bytes, String>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone().expect("complete body").to_vec()).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text()).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `data:` payloads of an SSE body.
    pub fn sse(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| f.strip_prefix("data: ").expect("data: frame").to_string())
            .collect()
    }
}

pub fn request(method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path).header("host", "mock");
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

pub async fn read(resp: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).map_err(|e| e.to_string());
    Reply { status: parts.status, headers: parts.headers, body }
}

/// One request on a fresh HTTP/1.1 connection.
pub async fn call(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut client = Client::connect(addr).await;
    client.send(method, path, headers, body).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    call(addr, Method::POST, path, &[], body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    call(addr, Method::GET, path, &[], "").await
}

pub async fn stats(addr: SocketAddr) -> serde_json::Value {
    get(addr, "/mock/stats").await.json()
}

/// A keep-alive HTTP/1.1 connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        Client { sender }
    }

    pub async fn send(&mut self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(request(method, path, headers, body)).await.unwrap();
        read(resp).await
    }
}

/// One request over cleartext HTTP/2 (prior knowledge).
pub async fn call_h2(addr: SocketAddr, path: &str, body: &str) -> Reply {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut req = request(Method::POST, &format!("http://mock{path}"), &[], body);
    req.headers_mut().remove("host");
    let resp = sender.send_request(req).await.unwrap();
    read(resp).await
}
