//! A request body made of a few `Bytes` slices, so a spliced request goes upstream without being
//! copied into one buffer.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A body sent as a fixed sequence of slices, with an exact length so it gets a Content-Length.
#[derive(Debug)]
pub struct ChainBody {
    parts: [Bytes; 3],
    next: usize,
}

impl ChainBody {
    pub fn new(parts: [Bytes; 3]) -> Self {
        ChainBody { parts, next: 0 }
    }

    pub fn full(b: Bytes) -> Self {
        ChainBody::new([b, Bytes::new(), Bytes::new()])
    }

    /// The slices not yet yielded (all of them for a body not yet polled).
    pub fn into_parts(mut self) -> [Bytes; 3] {
        for part in &mut self.parts[..self.next.min(3)] {
            *part = Bytes::new();
        }
        self.parts
    }

    fn remaining(&self) -> u64 {
        self.parts[self.next.min(3)..].iter().map(|p| p.len() as u64).sum()
    }
}

impl Body for ChainBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        while self.next < 3 {
            let i = self.next;
            self.next += 1;
            let part = std::mem::take(&mut self.parts[i]);
            if !part.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(part))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn chain_body_yields_parts_with_exact_length() {
        let body = ChainBody::new([Bytes::from_static(b"ab"), Bytes::new(), Bytes::from_static(b"cd")]);
        assert_eq!(body.size_hint().exact(), Some(4));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"abcd");
    }
}
