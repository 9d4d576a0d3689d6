//! The accept loop: HTTP/1.1 and h2c on one port, header and keep-alive timeouts so slow or idle
//! clients cannot pin tasks, TCP_NODELAY, and graceful shutdown.
//!
//! Each connection starts in `direct`, which serves the proxy routes' plain HTTP/1.1 requests
//! itself and hands the connection to hyper at the first request that is anything else.

mod direct;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Read buffer cap of a connection accepted while fewer than [`ROOMY_CONNECTIONS`] are open:
/// room for a ~16 KB chat request in one `recv`, where an 8 KiB cap takes three and a copy to
/// join the pieces (bench/README.md has what that cost).
const ROOMY_READ_BUFFER: usize = 32 * 1024;
/// Connections that get the roomy buffer: a few pooled clients (the usual case in front of an
/// SDK) get the faster reads, while thousands of connections cost at most 128 × 24 KiB more
/// than the lean cap.
const ROOMY_CONNECTIONS: usize = 128;

pub struct ListenSettings {
    /// Time a client has to send a request's headers (also bounds idle keep-alive connections).
    pub header_timeout: Duration,
    /// Each client connection's read buffer: what `direct` reads a request's head into (a
    /// larger body gets the room it needs for that request only), and the cap on hyper's buffer
    /// for connections handed to it (hyper's minimum is 8 KiB; uncapped it grows to ~400 KB and
    /// keeps it). A smaller buffer costs one more read per large request:
    /// `sluice_settings.client_read_buffer_kb` trades memory for
    /// that. The first [`ROOMY_CONNECTIONS`] open connections get at least [`ROOMY_READ_BUFFER`]
    /// and keep it while idle; the others hold none between requests.
    pub read_buffer_max: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: crate::Gateway,
    settings: ListenSettings,
    shutdown: impl Future<Output = ()>,
) {
    let lean_cap = settings.read_buffer_max.max(8192);
    let roomy_cap = lean_cap.max(ROOMY_READ_BUFFER);
    let lean = Arc::new(Hand {
        hyper: builder(&settings, lean_cap),
        direct: direct::Settings { header_timeout: settings.header_timeout, read_buffer: lean_cap, keep_buffer: false },
    });
    let roomy = Arc::new(Hand {
        hyper: builder(&settings, roomy_cap),
        direct: direct::Settings { header_timeout: settings.header_timeout, read_buffer: roomy_cap, keep_buffer: true },
    });
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // `direct`'s connections: told to stop through this, and counted by its receivers.
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let counted = OpenConnection::count(&open);
        let hand = if counted.others < ROOMY_CONNECTIONS { roomy.clone() } else { lean.clone() };
        let (app, watcher, stopping) = (app.for_peer(peer.ip()), graceful.watcher(), stopping.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, &hand, watcher, stopping).await;
            drop(counted);
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    tracing::info!(
        open_connections = open.load(Ordering::Relaxed),
        "shutdown: listener closed, draining requests in flight (up to {}s)",
        DRAIN.as_secs()
    );
    let drained = async {
        graceful.shutdown().await;
        stop.closed().await;
        // Calls whose clients hung up run on, and are billed before the last spend is written.
        crate::proxy::outlive::all_finished().await;
    };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        tracing::warn!("shutdown: some requests did not finish within {}s and were cut off", DRAIN.as_secs());
    } else {
        tracing::info!("shutdown: drained; every request in flight was answered");
    }
}

/// How a connection is served: `direct` first, hyper once a request needs it.
struct Hand {
    hyper: Builder<TokioExecutor>,
    direct: direct::Settings,
}

async fn serve_connection(
    stream: TcpStream,
    app: crate::Gateway,
    hand: &Hand,
    watcher: hyper_util::server::graceful::Watcher,
    mut stopping: watch::Receiver<bool>,
) {
    let direct::Next::Hyper(stream, read) = direct::serve(stream, &app, &hand.direct, &mut stopping).await else {
        return;
    };
    if *stopping.borrow() {
        // Shutting down: no new requests.
        return;
    }
    let io = TokioIo::new(sluice_http::rewind::Rewind::new(read, stream));
    let conn = hand.hyper.serve_connection_with_upgrades(io, TowerToHyperService::new(app));
    // Boxed: hyper's connection state is larger than `direct`'s, and every connection's task,
    // hyper's or not, would otherwise be the size of it.
    let _ = Box::pin(watcher.watch(conn.into_owned())).await;
}

fn builder(settings: &ListenSettings, read_buffer_max: usize) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(read_buffer_max)
        // A client that shuts down its sending side after the request still gets the answer.
        .half_close(true)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// One open client connection in the count; dropped when the connection ends.
struct OpenConnection {
    open: Arc<AtomicUsize>,
    /// Connections open when this one was accepted.
    others: usize,
}

impl OpenConnection {
    fn count(open: &Arc<AtomicUsize>) -> OpenConnection {
        let others = open.fetch_add(1, Ordering::Relaxed);
        OpenConnection { open: open.clone(), others }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_while_open() {
        let open = Arc::new(AtomicUsize::new(0));
        let first = OpenConnection::count(&open);
        let second = OpenConnection::count(&open);
        assert_eq!((first.others, second.others), (0, 1));
        drop(first);
        let third = OpenConnection::count(&open);
        assert_eq!(third.others, 1, "a closed connection leaves the count");
        drop((second, third));
        assert_eq!(open.load(Ordering::Relaxed), 0);
    }
}
