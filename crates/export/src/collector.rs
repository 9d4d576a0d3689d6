//! A collector reached over HTTP: one POST of a batch, bounded in time, its answer read (up to a
//! limit) so the connection goes back to the pool. Shared by the sinks that send over HTTP.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use http_body_util::BodyExt;
use sluice_http::ChainBody;
use std::time::Duration;

/// How long one delivery may take, answer included: a collector slower than this is counted as
/// failing, and the queue keeps filling (then dropping) meanwhile.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a collector's answer that is read (and thrown away), so its connection can be
/// reused; a longer answer costs the connection instead.
const MAX_ANSWER: usize = 64 * 1024;

/// Where batches are POSTed, and with which headers.
pub struct Collector {
    endpoint: http::Uri,
    /// Values marked sensitive: they are credentials as often as not.
    headers: HeaderMap,
    client: sluice_http::pool::Client,
}

/// Names only: header values are credentials as often as not.
impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Collector").field("endpoint", &self.endpoint).field("headers", &names).finish()
    }
}

impl Collector {
    pub fn new(endpoint: http::Uri, headers: HeaderMap) -> Collector {
        Collector { endpoint, headers, client: sluice_http::client(Duration::from_secs(5)) }
    }

    /// POSTs `body`; an error says why, without a header's value.
    pub async fn post(&self, body: Bytes) -> Result<(), String> {
        match tokio::time::timeout(SEND_TIMEOUT, self.post_untimed(body)).await {
            Ok(result) => result,
            Err(_) => Err(format!("the collector did not answer within {} s", SEND_TIMEOUT.as_secs())),
        }
    }

    async fn post_untimed(&self, body: Bytes) -> Result<(), String> {
        let mut req = http::Request::new(ChainBody::full(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.endpoint.clone();
        *req.headers_mut() = self.headers.clone();
        let answer = self.client.request(req).await.map_err(|e| format!("cannot reach the collector: {e}"))?;
        let status = answer.status();
        // Read to the end so that the connection goes back to the pool.
        let _ = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
        match status.is_success() {
            true => Ok(()),
            false => Err(format!("the collector answered {status}")),
        }
    }
}

/// An `http://` or `https://` URL with a host, or an error naming `variable`.
pub fn http_url(variable: &str, value: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = value.trim().parse().map_err(|_| {
        format!("{variable} is not a URL; set it to the collector's address, e.g. https://collector.example.com/path")
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{variable} needs an http:// or https:// address with a host"));
    }
    Ok(uri)
}

/// For the sinks' tests: reads one HTTP/1.1 request from `conn` — its head (lower-cased) and its
/// whole body (by `Content-Length`).
#[cfg(test)]
pub(crate) async fn read_request(conn: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before the request was in");
        got.extend_from_slice(&buf[..n]);
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..at]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if got.len() - at - 4 >= len {
                return (head, got[at + 4..].to_vec());
            }
        }
    }
}
