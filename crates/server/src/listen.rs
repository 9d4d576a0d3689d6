//! The accept loop: HTTP/1.1 and h2c on one port, header and keep-alive timeouts so slow or idle
//! clients cannot pin tasks, TCP_NODELAY, and graceful shutdown.

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

pub struct ListenSettings {
    /// Time a client has to send a request's headers (also bounds idle keep-alive connections).
    pub header_timeout: Duration,
    /// Cap on each client connection's read buffer (hyper's minimum is 8 KiB). hyper grows the
    /// buffer while reads fill it (to ~400 KB by default) and keeps it for the connection's life;
    /// with the seed's 16 KB requests that cost ~50 KB per open connection. 8 KiB holds 1,000
    /// locust users under 45 MB (embedded database and spend logs on) at the price of one more
    /// read per large request (about 5 µs of CPU on the seed payload):
    /// `sluice_settings.client_read_buffer_kb` trades one for the other.
    pub read_buffer_max: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    settings: ListenSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(settings.read_buffer_max.max(8192))
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
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
        let svc = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown: some requests did not finish within {}s and were cut off", DRAIN.as_secs());
    }
}
