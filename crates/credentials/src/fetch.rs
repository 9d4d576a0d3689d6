//! One bounded HTTP exchange with a credential service: a deadline over the whole call, the
//! answer read up to [`MAX_ANSWER`], on a pool of its own (credential calls are rare, and must
//! not wait behind model calls for a connection).

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::BodyExt;
use sluice_http::ChainBody;
use std::sync::OnceLock;
use std::time::Duration;

/// The most of a credential service's answer that is read: real ones are a few KiB.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// One per process: the gateway runs one runtime, and credential calls are few. (Tests that run
/// several runtimes are safe because their stand-ins close each connection after answering.)
fn client() -> &'static sluice_http::pool::Client {
    static CLIENT: OnceLock<sluice_http::pool::Client> = OnceLock::new();
    CLIENT.get_or_init(|| sluice_http::client(Duration::from_secs(2)))
}

/// What came back: the status and the (bounded) body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Sends one request and reads its answer within `timeout`. The error says what went wrong with
/// the exchange, not which service it was: the caller names that.
pub(crate) async fn fetch(
    method: Method,
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, String> {
    let uri: Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    let mut req = http::Request::new(ChainBody::full(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    for (name, value) in headers {
        req.headers_mut().insert(name.clone(), value.clone());
    }
    let exchange = async {
        let resp = client().request(req).await.map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("{url} sent an answer over {} KiB or broke off: {e}", MAX_ANSWER / 1024))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{url} did not answer within {} s", timeout.as_secs_f64()))?
}

/// The start of an answer that was not what was expected, for an error message. Only failed
/// answers are quoted: a successful one carries the secret.
pub(crate) fn preview(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value as `application/x-www-form-urlencoded` writes it.
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A header value that may be secret, marked so it never reaches `Debug` output.
pub(crate) fn secret_header(value: &str, what: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("{what} holds characters an HTTP header cannot carry"))?;
    v.set_sensitive(true);
    Ok(v)
}
