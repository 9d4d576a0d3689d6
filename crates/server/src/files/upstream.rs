//! Reaching the deployment that holds a file or batch: its address (beside its `/responses`, as
//! OpenAI and Azure lay out their APIs), its credential, and a client whose request body may be a
//! stream — an upload goes up as it arrives, which the pooled fast-path client (whole bodies
//! only) cannot send. These calls are rare next to chat, so hyper-util's own pool serves them.

use crate::app::OpenAiTarget;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use sluice_wire::ApiError;
use std::sync::OnceLock;
use std::time::Duration;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Body>;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> Result<&'static Client, ApiError> {
    static CLIENT: OnceLock<Result<Client, String>> = OnceLock::new();
    let made = CLIENT.get_or_init(|| {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
    });
    made.as_ref().map_err(|e| ApiError::new(500, format!("The upstream client could not be made: {e}")))
}

/// Whether `id` may stand in a URL path: upstream ids are plain (`file-…`, `batch_…`).
pub(super) fn plain_id(id: &str) -> bool {
    id.len() <= 256
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// `{base}{tail}` for the deployment, its own query (Azure's `api-version`) kept and `query`
/// (already encoded) added. The base is where its `/responses` lives: `…/v1` for OpenAI,
/// `…/openai` for Azure.
pub(super) fn uri(target: &OpenAiTarget, tail: &str, query: &str) -> Result<Uri, ApiError> {
    let responses = target.responses.to_string();
    let (path, own) = match responses.split_once('?') {
        Some((p, q)) => (p, q),
        None => (responses.as_str(), ""),
    };
    let base = path.strip_suffix("/responses").unwrap_or(path);
    let mut url = format!("{base}{tail}");
    let queries: Vec<&str> = [own, query].into_iter().filter(|q| !q.is_empty()).collect();
    if !queries.is_empty() {
        url.push('?');
        url.push_str(&queries.join("&"));
    }
    url.parse().map_err(|_| ApiError::bad_request("The file or batch id cannot be part of a URL."))
}

/// The headers every call carries: the deployment's credential and organization.
pub(super) fn headers(target: &OpenAiTarget) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))));
    if let Some((name, value)) = &target.auth {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(org) = &target.organization {
        headers.insert(HeaderName::from_static("openai-organization"), org.clone());
    }
    headers
}

/// A non-2xx answer as the error the client sees, less any echo of the deployment's key.
pub(super) fn failed(target: &OpenAiTarget, status: http::StatusCode, body: Bytes) -> ApiError {
    let sent: Vec<&[u8]> = target.auth.iter().map(|(_, v)| crate::redact::secret_part(v)).collect();
    let body = crate::redact::redact(body, &sent);
    crate::proxy::upstream::status_error(&target.provider, status.as_u16(), &body).0
}

/// A whole body.
pub(super) fn whole(bytes: Bytes) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// Sends one request within the deployment's timeout (to the answer's head).
pub(super) async fn send(
    target: &OpenAiTarget,
    method: http::Method,
    uri: Uri,
    headers: http::HeaderMap,
    body: Body,
) -> Result<http::Response<hyper::body::Incoming>, SendError> {
    let mut req = http::Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let client = client().map_err(SendError::Api)?;
    match tokio::time::timeout(target.timeout, client.request(req)).await {
        Err(_) => Err(SendError::Api(crate::proxy::upstream::timeout_error(&target.provider, target.timeout))),
        Ok(Err(e)) => Err(SendError::Transport(e.is_connect())),
        Ok(Ok(answer)) => Ok(answer),
    }
}

/// Why a request got no answer.
pub(super) enum SendError {
    Api(ApiError),
    /// The connection failed (`true`: it could not be opened), or the request's body did.
    Transport(bool),
}

impl SendError {
    pub(super) fn into_api(self, target: &OpenAiTarget) -> ApiError {
        match self {
            SendError::Api(e) => e,
            SendError::Transport(connect) => {
                let class = sluice_providers::ExceptionClass::ApiConnection;
                let detail = match connect {
                    true => "Connection error: the upstream refused or did not accept the connection. Check the deployment's api_base and that the server is up.",
                    false => "Connection error: the upstream closed the connection before answering.",
                };
                ApiError::new(
                    class.status(None),
                    sluice_providers::errors::upstream_message(class, &target.provider, detail),
                )
            }
        }
    }
}

/// Reads a whole answer body, at most `limit` bytes, by the deployment's timeout.
pub(super) async fn read(target: &OpenAiTarget, body: hyper::body::Incoming, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(target.timeout, limited.collect()).await {
        Err(_) => Err(crate::proxy::upstream::timeout_error(&target.provider, target.timeout)),
        Ok(Err(_)) => Err(ApiError::new(
            502,
            format!("The upstream's answer was cut off or is over {} MiB.", limit / (1024 * 1024)),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_ids_only() {
        assert!(super::plain_id("file-abc_12.3"));
        for bad in ["", "a/b", "a?b", "..", ".x", "..%2f", "a b", &"x".repeat(257)] {
            assert!(!super::plain_id(bad), "{bad}");
        }
    }
}
