//! Writing a response's or request's pieces (head, body slices) with as few system calls as the
//! socket takes: one `writev` when it accepts everything, the rest resumed where it stopped.

use std::io::{self, IoSlice};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most pieces handed to one `writev`; more are written by later calls.
const SLICES: usize = 4;

/// Writes every byte of `parts`, in order. `parts` is consumed as it goes.
pub async fn write_all<W: AsyncWrite + Unpin + ?Sized>(io: &mut W, parts: &mut [&[u8]]) -> io::Result<()> {
    let mut first = 0;
    loop {
        while first < parts.len() && parts[first].is_empty() {
            first += 1;
        }
        if first == parts.len() {
            return Ok(());
        }
        let mut slices = [IoSlice::new(&[]); SLICES];
        let count = (parts.len() - first).min(SLICES);
        for (slice, part) in slices.iter_mut().zip(&parts[first..first + count]) {
            *slice = IoSlice::new(part);
        }
        let mut n = io.write_vectored(&slices[..count]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let take = n.min(parts[first].len());
            parts[first] = &parts[first][take..];
            n -= take;
            if parts[first].is_empty() {
                first += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Takes at most three bytes per call, so every piece is split somewhere.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn every_piece_arrives_in_order_through_short_writes() {
        let mut out = Trickle(Vec::new());
        let mut parts: [&[u8]; 6] = [b"head ", b"", b"a", b"bcdefg", b" ", b"end"];
        write_all(&mut out, &mut parts).await.unwrap();
        assert_eq!(out.0, b"head abcdefg end");
    }
}
