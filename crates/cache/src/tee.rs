//! A streamed answer on its way to the client, watched as it passes: once it has ended whole,
//! the assembled answer is handed to `keep` (the cache's write). The client's bytes are not held
//! up or changed; a stream that fails, is cut, or is dropped by its client keeps nothing.

use crate::assemble::Assembler;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct Tee<B> {
    inner: B,
    assembler: Option<Assembler>,
    keep: Option<Box<dyn FnOnce(Bytes) + Send>>,
}

impl<B> Tee<B> {
    pub fn new(inner: B, assembler: Assembler, keep: Box<dyn FnOnce(Bytes) + Send>) -> Tee<B> {
        Tee { inner, assembler: Some(assembler), keep: Some(keep) }
    }
}

impl<B> Body for Tee<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(a)) = (frame.data_ref(), this.assembler.as_mut()) {
                    a.push(data);
                }
            }
            Poll::Ready(Some(Err(_))) => this.assembler = None,
            Poll::Ready(None) => {
                if let (Some(a), Some(keep)) = (this.assembler.take(), this.keep.take()) {
                    if let Some(answer) = a.finish() {
                        keep(answer);
                    }
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Shape;
    use http_body_util::{BodyExt, StreamBody};
    use std::sync::{Arc, Mutex};

    const WHOLE: [&str; 3] = [
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ];

    /// The bytes the client got, and what was kept.
    async fn run(frames: Vec<Result<&'static str, &'static str>>, read: usize) -> (Vec<u8>, Option<Bytes>) {
        let kept: Arc<Mutex<Option<Bytes>>> = Arc::default();
        let k = kept.clone();
        let stream = futures_util::stream::iter(
            frames.into_iter().map(|f| f.map(|s| Frame::data(Bytes::from_static(s.as_bytes())))),
        );
        let tee = Tee::new(
            StreamBody::new(stream),
            Assembler::new(Shape::Chat, 1 << 20),
            Box::new(move |b| *k.lock().unwrap() = Some(b)),
        );
        let mut seen = Vec::new();
        let mut body = Box::pin(tee);
        for _ in 0..read {
            match body.frame().await {
                Some(Ok(f)) => seen.extend_from_slice(f.data_ref().unwrap()),
                _ => break,
            }
        }
        drop(body);
        let out = kept.lock().unwrap().take();
        (seen, out)
    }

    #[tokio::test]
    async fn a_whole_stream_is_kept_and_passed_on_unchanged() {
        let (seen, kept) = run(WHOLE.iter().map(|s| Ok(*s)).collect(), 10).await;
        assert_eq!(seen, WHOLE.concat().as_bytes());
        let v: serde_json::Value = serde_json::from_slice(&kept.unwrap()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Hi");
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_stream_keeps_nothing() {
        let (_, kept) = run(vec![Ok(WHOLE[0]), Err("reset"), Ok(WHOLE[2])], 10).await;
        assert!(kept.is_none());
        // The client went away after two events.
        let (seen, kept) = run(WHOLE.iter().map(|s| Ok(*s)).collect(), 2).await;
        assert_eq!(seen, WHOLE[..2].concat().as_bytes());
        assert!(kept.is_none());
    }
}
