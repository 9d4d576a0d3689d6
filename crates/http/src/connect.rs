//! How the pool reaches an upstream: TCP with the gateway's socket options, TLS by rustls with
//! the web's roots, HTTP/2 offered by ALPN beside HTTP/1.1.

use crate::pool::Client;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use std::time::Duration;

/// Keep-alive pooled client for every upstream: plain HTTP and TLS (HTTP/2 where offered).
pub fn client(connect_timeout: Duration) -> Client {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    Client::new(connector(http, rustls_config()), Duration::from_secs(90))
}

/// TCP by `http`, TLS by `tls` for https URLs, HTTP/2 offered by ALPN beside HTTP/1.1.
pub(crate) fn connector(http: HttpConnector, tls: rustls::ClientConfig) -> HttpsConnector<HttpConnector> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

pub(crate) fn rustls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A client that speaks only HTTP/2, for gRPC: over TLS where the URL says `https` (ALPN `h2`),
/// else in the clear by prior knowledge (h2c), as gRPC collectors listen. Off the request path
/// (telemetry export), so hyper-util's own pool serves.
pub type H2Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, crate::ChainBody>;

pub fn h2_client(connect_timeout: Duration) -> H2Client {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(rustls_config())
        .https_or_http()
        .enable_http2()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build(https)
}
