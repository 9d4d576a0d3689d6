//! A file upload streamed to its upstream, never held whole: the form's text fields are read
//! first (`sluice_wire::form_head`, at most [`HEAD_LIMIT`] bytes) to decide where it goes, then
//! sent again without the gateway's own fields, and the file part follows as the client sends it.
//! `max_request_size_mb` is enforced while it streams: a body that passes it stops the upload
//! (the upstream sees the request fail, not a whole file) and the client gets the 413.

use super::upstream::{Body, BoxError};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use sluice_wire::form_head::{self, Scan};
use sluice_wire::ApiError;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The most bytes read before the file part begins: the text fields are a few short values.
const HEAD_LIMIT: usize = 64 * 1024;

/// The form fields LiteLLM reads and the upstream never gets.
pub(super) const GATEWAY_FIELDS: [&str; 4] = ["custom_llm_provider", "target_model_names", "model", "litellm_metadata"];

/// The start of an upload: its text fields, and the bytes to send before the rest of the body.
pub(super) struct Head {
    pub fields: Vec<(String, String)>,
    /// The fields the upstream gets, rebuilt, then the received bytes from the file part on.
    pub first: Bytes,
    /// The client's bytes this head stands for.
    pub consumed: u64,
    /// The length of the whole form as the upstream will get it, when the client said its own.
    pub upstream_length: Option<u64>,
    pub content_type: http::HeaderValue,
}

impl Head {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }
}

fn not_a_form() -> ApiError {
    ApiError::bad_request(
        "Upload the file as multipart/form-data with `purpose` and `file` fields, as the OpenAI SDK's `client.files.create(file=..., purpose=...)` does.",
    )
}

/// Reads the head of the upload in `body`; the client's `Content-Length` over `limit` is refused
/// before anything is read.
pub(super) async fn read_head(
    headers: &http::HeaderMap,
    body: &mut axum::body::Body,
    limit: usize,
    deadline: Instant,
) -> Result<Head, ApiError> {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = sluice_wire::form::boundary(content_type).ok_or_else(not_a_form)?.to_string();
    let length =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = length.filter(|&l| l > limit as u64) {
        return Err(closing(crate::proxy::body::too_large(limit, Some(len))));
    }
    let mut buf = BytesMut::new();
    loop {
        match form_head::scan(&buf, &boundary)? {
            Scan::Head { fields, file_at } => {
                let kept: Vec<(&str, &str)> =
                    fields.iter().copied().filter(|(n, _)| !GATEWAY_FIELDS.contains(n)).collect();
                let mut first = form_head::rebuild(&kept, &boundary);
                let rebuilt = first.len() as u64;
                first.extend_from_slice(buf.get(file_at..).unwrap_or_default());
                let owned = fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
                let consumed = buf.len() as u64;
                return Ok(Head {
                    fields: owned,
                    first: Bytes::from(first),
                    consumed,
                    upstream_length: length.map(|l| rebuilt + l.saturating_sub(file_at as u64)),
                    content_type: http::HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                        .map_err(|_| not_a_form())?,
                });
            }
            Scan::NeedMore if buf.len() > HEAD_LIMIT => {
                return Err(closing(ApiError::bad_request(format!(
                    "The upload's fields before its `file` part are over {} KiB. Send `purpose` and the file only.",
                    HEAD_LIMIT / 1024
                ))))
            }
            Scan::NeedMore => {}
        }
        match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => return Err(closing(slow())),
            Ok(None) => return Err(ApiError::bad_request("The upload ended before its `file` part.")),
            Ok(Some(Err(_))) => return Err(closing(cut_off())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
        if buf.len() > limit {
            return Err(closing(crate::proxy::body::too_large(limit, None)));
        }
    }
}

fn closing(e: ApiError) -> ApiError {
    e.header("connection", "close")
}

fn slow() -> ApiError {
    ApiError::new(408, "The upload was not received in time. Send the whole file promptly.").kind("timeout")
}

fn cut_off() -> ApiError {
    ApiError::bad_request("The upload was cut off before it was complete. Send the whole file.")
}

/// Why the streamed body stopped early, for the answer the client gets (the upstream only sees
/// its request fail).
pub(super) type Stopped = Arc<OnceLock<ApiError>>;

/// The body sent upstream: `head.first`, then the rest of the client's body, counted against
/// `limit` and the `deadline` as it goes.
pub(super) fn stream(head: &Head, rest: axum::body::Body, limit: usize, deadline: Instant) -> (Body, Stopped) {
    let stopped: Stopped = Arc::new(OnceLock::new());
    let state = (Some(head.first.clone()), rest, head.consumed, stopped.clone());
    let frames = futures_util::stream::unfold(state, move |(first, mut rest, seen, stopped)| async move {
        if let Some(first) = first {
            return Some((Ok(http_body::Frame::data(first)), (None, rest, seen, stopped)));
        }
        let stop = |e: ApiError, stopped: &Stopped| {
            let _ = stopped.set(e);
            Err::<http_body::Frame<Bytes>, BoxError>(Box::from("the client's upload stopped"))
        };
        loop {
            let frame = match tokio::time::timeout_at(deadline.into(), rest.frame()).await {
                Err(_) => {
                    let out = stop(slow(), &stopped);
                    return Some((out, (None, axum::body::Body::empty(), seen, stopped)));
                }
                Ok(None) => return None,
                Ok(Some(Err(_))) => {
                    let out = stop(cut_off(), &stopped);
                    return Some((out, (None, axum::body::Body::empty(), seen, stopped)));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            let seen = seen + data.len() as u64;
            if seen > limit as u64 {
                let out = stop(closing(crate::proxy::body::too_large(limit, None)), &stopped);
                return Some((out, (None, axum::body::Body::empty(), seen, stopped)));
            }
            return Some((Ok(http_body::Frame::data(data)), (None, rest, seen, stopped)));
        }
    });
    let body = http_body_util::StreamBody::new(frames.boxed());
    (BodyExt::boxed_unsync(body), stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn form(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
        let mut out = form_head::rebuild(fields, "bnd");
        out.extend_from_slice(b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.jsonl\"\r\n\r\n");
        out.extend_from_slice(file);
        out.extend_from_slice(b"\r\n--bnd--\r\n");
        out
    }

    fn headers(len: Option<usize>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, "multipart/form-data; boundary=bnd".parse().unwrap());
        if let Some(len) = len {
            h.insert(http::header::CONTENT_LENGTH, len.to_string().parse().unwrap());
        }
        h
    }

    /// A body that arrives in `chunk`-byte frames.
    fn chunked(bytes: Vec<u8>, chunk: usize) -> axum::body::Body {
        let frames: Vec<Result<Bytes, std::io::Error>> =
            bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        axum::body::Body::from_stream(futures_util::stream::iter(frames))
    }

    async fn sent(body: Body) -> Result<Vec<u8>, BoxError> {
        Ok(body.collect().await?.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn the_upstream_gets_the_form_without_the_gateways_fields() {
        let file = vec![b'x'; 10_000];
        let client = form(&[("purpose", "batch"), ("custom_llm_provider", "azure")], &file);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut body = chunked(client.clone(), 7);
        let head = read_head(&headers(Some(client.len())), &mut body, 1 << 20, deadline).await.unwrap();
        assert_eq!(head.field("custom_llm_provider"), Some("azure"));
        let (up, stopped) = stream(&head, body, 1 << 20, deadline);
        let out = sent(up).await.unwrap();
        assert_eq!(out, form(&[("purpose", "batch")], &file));
        assert_eq!(head.upstream_length, Some(out.len() as u64));
        assert!(stopped.get().is_none());
    }

    #[tokio::test]
    async fn an_oversized_upload_stops_while_it_streams() {
        let client = form(&[("purpose", "batch")], &vec![b'x'; 5000]);
        let deadline = Instant::now() + Duration::from_secs(5);
        // Without a length the limit is found on the way, after part of the file went up.
        let mut body = chunked(client.clone(), 512);
        let head = read_head(&headers(None), &mut body, 2000, deadline).await.unwrap();
        let (up, stopped) = stream(&head, body, 2000, deadline);
        assert!(sent(up).await.is_err());
        assert_eq!(stopped.get().unwrap().status, 413);
        // A declared length over the limit is refused before anything is read.
        let mut body = chunked(client.clone(), 512);
        let e = read_head(&headers(Some(client.len())), &mut body, 2000, deadline).await.err().unwrap();
        assert_eq!(e.status, 413);
    }

    #[tokio::test]
    async fn a_body_that_is_no_form_is_refused() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
        let mut body = axum::body::Body::from("{}");
        assert_eq!(read_head(&h, &mut body, 1000, deadline).await.err().unwrap().status, 400);
        let mut body = axum::body::Body::from(
            "--bnd\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--bnd--\r\n",
        );
        assert_eq!(read_head(&headers(None), &mut body, 1000, deadline).await.err().unwrap().status, 400);
    }
}
