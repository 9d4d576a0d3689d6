//! Request and response bodies: reading a client's body within its size and time limits, and a
//! body made of a few `Bytes` slices so a spliced request goes upstream without being copied
//! (`sluice_http::ChainBody`, re-exported here).

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use sluice_wire::ApiError;
use std::time::{Duration, Instant};

pub use sluice_http::ChainBody;

/// Reads a client's body, refusing more than `limit` bytes (413) or taking longer than `timeout`
/// (408), so a slow or oversized client costs a bounded amount of memory and time.
/// Largest unread body a refused request still has read, so its keep-alive connection stays
/// usable (an unread body would leave the connection to be closed just as the client may be
/// sending its next request on it).
const DRAIN_LIMIT: usize = 64 * 1024;

/// Reads and drops a small request body that will not be used (the request was refused before
/// its body mattered); a large or slow one is left, and its connection closes after the answer:
/// `refusal` then says so (see [`closing`]).
pub async fn drain_small(headers: &HeaderMap, body: axum::body::Body, refusal: ApiError) -> ApiError {
    let len = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if len.is_some_and(|n: usize| n <= DRAIN_LIMIT) {
        let limited = http_body_util::Limited::new(body, DRAIN_LIMIT);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), limited.collect()).await {
            return refusal;
        }
    }
    closing(refusal)
}

/// An answer given while the request's body is still (partly) unread: the connection cannot carry
/// another request and closes after it, so the answer says `connection: close`. Without it a
/// client keeps the connection in its pool and may send its next request just as the gateway
/// closes it, and that request fails with no answer at all.
fn closing(e: ApiError) -> ApiError {
    e.header("connection", "close")
}

/// The answer to a body over `limit` bytes (`size`, when known).
pub fn too_large(limit: usize, size: Option<u64>) -> ApiError {
    let mb = |b: f64| b / (1024.0 * 1024.0);
    let size = size.map(|s| format!("Request size is {:.2} MB. ", mb(s as f64))).unwrap_or_default();
    ApiError::new(
        413,
        format!(
            "Request size is too large. {size}Max size is {:.2} MB. Send a smaller request or raise general_settings.max_request_size_mb.",
            mb(limit as f64)
        ),
    )
    .kind("bad_request_error")
}

/// The timeout runs from `received`, when the request's head arrived: a server that waited on the
/// body before calling the handler has used part of it already.
pub async fn read_client_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
    timeout: Duration,
    received: Instant,
) -> Result<Bytes, ApiError> {
    let too_large = |size| too_large(limit, size);
    if let Some(len) =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(closing(too_large(Some(len))));
        }
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout_at((received + timeout).into(), limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(closing(too_large(None))),
        Ok(Err(_)) => Err(closing(ApiError::bad_request(
            "The request body was cut off before it was complete. Send the whole body.",
        ))),
        Err(_) => Err(closing(
            ApiError::new(
                408,
                format!(
                    "The request body was not received within {} seconds. Send the whole body promptly.",
                    timeout.as_secs_f64()
                ),
            )
            .kind("timeout"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn refuses_oversized_bodies() {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_LENGTH, "100".parse().unwrap());
        let e = read_client_body(&h, axum::body::Body::from("x"), 10, SECOND, Instant::now()).await.unwrap_err();
        assert_eq!(e.status, 413);
        let e = read_client_body(&HeaderMap::new(), axum::body::Body::from(vec![b'x'; 11]), 10, SECOND, Instant::now())
            .await
            .unwrap_err();
        assert_eq!(e.status, 413);
        let ok = read_client_body(&HeaderMap::new(), axum::body::Body::from("hello"), 10, SECOND, Instant::now())
            .await
            .unwrap();
        assert_eq!(&ok[..], b"hello");
    }
}
