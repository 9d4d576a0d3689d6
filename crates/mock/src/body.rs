//! The response body: a whole buffer, or a paced sequence of SSE frames that can end cleanly,
//! just stop, or break the connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::stats::RequestGuard;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a stream ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// End of body: a clean chunked terminator (or END_STREAM on HTTP/2).
    Eof,
    /// A body error: hyper aborts the connection (or resets the HTTP/2 stream) without a
    /// terminator, which is what a provider dying mid-stream looks like to a gateway.
    Reset,
}

/// A response body that never allocates per poll and needs no task of its own: streams pace
/// themselves with a timer polled inside `poll_frame`.
pub struct MockBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Box<Paced>),
}

struct Paced {
    frames: std::vec::IntoIter<Bytes>,
    gap: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    end: StreamEnd,
    /// Whether the pause before a reset has happened.
    flushed: bool,
    done: bool,
    /// Held until the last frame is out, so a client that hangs up mid-stream counts as cancelled.
    guard: Option<RequestGuard>,
}

impl MockBody {
    pub fn full(bytes: impl Into<Bytes>) -> MockBody {
        MockBody { kind: Kind::Full(Some(bytes.into())) }
    }

    /// Frames sent `gap` apart (the first at once), then `end`.
    pub fn stream(frames: Vec<Bytes>, gap: Duration, end: StreamEnd, guard: Option<RequestGuard>) -> MockBody {
        MockBody {
            kind: Kind::Stream(Box::new(Paced {
                frames: frames.into_iter(),
                gap,
                sleep: None,
                end,
                flushed: false,
                done: false,
                guard,
            })),
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(p) => p.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Stream(p) => p.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

impl Paced {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut self.sleep {
            std::task::ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        if let Some(frame) = self.frames.next() {
            if !self.gap.is_zero() && self.frames.len() > 0 {
                self.sleep = Some(Box::pin(tokio::time::sleep(self.gap)));
            }
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        if self.end == StreamEnd::Reset && !self.flushed {
            // hyper writes buffered frames only when the body stalls; without this pause the
            // error would arrive first and the client would see no chunks at all.
            self.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.done = true;
        if let Some(mut guard) = self.guard.take() {
            guard.finish();
        }
        match self.end {
            StreamEnd::Eof => Poll::Ready(None),
            StreamEnd::Reset => Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "mock: simulated upstream reset mid-stream",
            ))))),
        }
    }
}
