//! A pass-through stream relayed byte for byte: each upstream frame goes to the client as it
//! came, read against the idle timeout, and the usage it reports is read on the way
//! ([`UsageTap`]) and billed when the stream ends, fails or is left by its client.

use crate::errors::{self, Flavour};
use crate::proxy::pool::UpstreamBody;
use crate::proxy::upstream;
use http_body_util::BodyExt;
use sluice_access::charge::Charge;
use sluice_providers::passthrough::UsageTap;
use sluice_providers::Provider;
use std::sync::Arc;
use std::time::Duration;

/// Whether an answer of this content type is relayed as a stream (SSE, or AWS's binary event
/// stream) rather than read whole.
pub fn is_stream(content_type: &[u8]) -> bool {
    let starts = |p: &[u8]| content_type.get(..p.len()).is_some_and(|c| c.eq_ignore_ascii_case(p));
    starts(b"text/event-stream") || starts(b"application/vnd.amazon.eventstream")
}

/// What a relayed stream bills: settled once, when the stream ends or the relay is dropped (the
/// client left, the upstream broke), for the usage reported up to then.
pub struct Tap {
    pub tap: UsageTap,
    pub charge: Option<Arc<Charge>>,
    /// A pass-through endpoint's `cost_per_request`.
    pub fixed_cost: f64,
}

impl Tap {
    fn settle(&mut self) {
        if let Some(charge) = self.charge.take() {
            charge.settle_with(self.tap.usage().unwrap_or_default(), self.fixed_cost);
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.settle();
    }
}

/// The client's body: the upstream's frames as they come. A failure once the answer has started
/// ends an SSE stream with one error frame in the client's format; a binary stream has no place
/// for one and is cut off, which its SDK reports.
pub fn body(
    upstream: UpstreamBody,
    tap: Tap,
    provider: Provider,
    idle_timeout: Duration,
    flavour: Flavour,
    sse: bool,
) -> axum::body::Body {
    let frames = futures_util::stream::unfold(Some((upstream, tap)), move |state| async move {
        let (mut upstream, mut tap) = state?;
        loop {
            let failed = match tokio::time::timeout(idle_timeout, upstream.frame()).await {
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        tap.tap.push(&data);
                        return Some((Ok(http_body::Frame::data(data)), Some((upstream, tap))));
                    }
                    // Trailers: nothing a client of these APIs reads.
                    Err(_) => continue,
                },
                Ok(None) => {
                    tap.settle();
                    return None;
                }
                Ok(Some(Err(_))) => ApiErrorKind::Broken,
                Err(_) => ApiErrorKind::Silent,
            };
            // Billed for what was reported before the failure.
            tap.settle();
            let e = match failed {
                ApiErrorKind::Silent => upstream::timeout_error(&provider, idle_timeout),
                ApiErrorKind::Broken => sluice_wire::ApiError::new(
                    500,
                    sluice_providers::errors::upstream_message(
                        sluice_providers::ExceptionClass::ApiConnection,
                        &provider,
                        "Connection error: the upstream connection broke while streaming its answer.",
                    ),
                ),
            };
            return match sse {
                true => Some((Ok(http_body::Frame::data(errors::sse_frame(&e, flavour))), None)),
                false => Some((Err(std::io::Error::other(e.message)), None)),
            };
        }
    });
    axum::body::Body::new(http_body_util::StreamBody::new(frames))
}

/// How a stream failed after its start.
enum ApiErrorKind {
    /// Nothing came within the idle timeout.
    Silent,
    /// The connection broke or the framing was corrupt.
    Broken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_told_by_content_type() {
        assert!(is_stream(b"text/event-stream"));
        assert!(is_stream(b"text/event-stream; charset=utf-8"));
        assert!(is_stream(b"Text/Event-Stream"));
        assert!(is_stream(b"application/vnd.amazon.eventstream"));
        assert!(!is_stream(b"application/json"));
        assert!(!is_stream(b"text/event"));
    }
}
