//! OTLP over gRPC: the `TraceService/Export` unary call on HTTP/2 — the request message framed
//! with gRPC's five-byte prefix, the outcome read from `grpc-status` in the trailers (or, for an
//! answer without a body, in the headers).

use crate::collector::{http_url, SEND_TIMEOUT};
use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use sluice_http::ChainBody;

const METHOD: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The most of an answer read: an `ExportTraceServiceResponse` is a few bytes.
const MAX_ANSWER: usize = 64 * 1024;

pub struct Grpc {
    uri: http::Uri,
    headers: HeaderMap,
    client: sluice_http::H2Client,
}

/// Header values hidden.
impl std::fmt::Debug for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(http::HeaderName::as_str).collect();
        f.debug_struct("Grpc").field("uri", &self.uri).field("headers", &names).finish()
    }
}

impl Grpc {
    /// `endpoint` is the collector's address (`http://host:4317`); its path, if any, is replaced
    /// by the method's.
    pub fn new(endpoint: &str, mut headers: HeaderMap) -> Result<Grpc, String> {
        let base = http_url("OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_ENDPOINT)", endpoint)?;
        let uri = http::Uri::builder()
            .scheme(base.scheme_str().unwrap_or("http"))
            .authority(base.authority().map(|a| a.as_str()).unwrap_or_default())
            .path_and_query(METHOD)
            .build()
            .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        Ok(Grpc { uri, headers, client: sluice_http::h2_client(std::time::Duration::from_secs(5)) })
    }

    /// Sends one `ExportTraceServiceRequest` (encoded).
    pub async fn export(&self, message: Vec<u8>) -> Result<(), String> {
        match tokio::time::timeout(SEND_TIMEOUT, self.call(message)).await {
            Ok(result) => result,
            Err(_) => Err(format!("the collector did not answer within {} s", SEND_TIMEOUT.as_secs())),
        }
    }

    async fn call(&self, message: Vec<u8>) -> Result<(), String> {
        let mut framed = BytesMut::with_capacity(message.len() + 5);
        framed.put_u8(0);
        framed.put_u32(message.len() as u32);
        framed.put_slice(&message);
        let mut req = http::Request::new(ChainBody::full(framed.freeze()));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        let answer = self.client.request(req).await.map_err(|e| format!("cannot reach the collector: {e}"))?;
        let (head, body) = answer.into_parts();
        if !head.status.is_success() {
            return Err(format!("the collector answered {}", head.status));
        }
        let trailers = match http_body_util::Limited::new(body, MAX_ANSWER).collect().await {
            Ok(collected) => collected.trailers().cloned(),
            Err(e) => return Err(format!("the collector's answer broke off: {e}")),
        };
        status(trailers.as_ref().unwrap_or(&head.headers), &head.headers)
    }
}

/// `grpc-status` 0 is success; anything else, or none, is the collector's refusal.
fn status(trailers: &HeaderMap, headers: &HeaderMap) -> Result<(), String> {
    let code = trailers.get("grpc-status").or_else(|| headers.get("grpc-status"));
    match code.map(HeaderValue::as_bytes) {
        Some(b"0") => Ok(()),
        Some(code) => {
            let message = trailers.get("grpc-message").or_else(|| headers.get("grpc-message"));
            let message = message.and_then(|m| m.to_str().ok()).unwrap_or("");
            Err(format!("the collector refused the spans: grpc-status {} {message}", String::from_utf8_lossy(code)))
        }
        None => Err("the collector's answer has no grpc-status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_comes_from_trailers_or_headers() {
        let mut ok = HeaderMap::new();
        ok.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(status(&ok, &HeaderMap::new()).is_ok());
        assert!(status(&HeaderMap::new(), &ok).is_ok());
        let mut refused = HeaderMap::new();
        refused.insert("grpc-status", HeaderValue::from_static("16"));
        refused.insert("grpc-message", HeaderValue::from_static("unauthenticated"));
        let e = status(&refused, &HeaderMap::new()).unwrap_err();
        assert!(e.contains("16") && e.contains("unauthenticated"), "{e}");
        assert!(status(&HeaderMap::new(), &HeaderMap::new()).is_err());
    }

    #[test]
    fn the_method_replaces_the_endpoints_path() {
        let g = Grpc::new("http://127.0.0.1:4317/v1/traces", HeaderMap::new()).unwrap();
        assert_eq!(
            g.uri.to_string(),
            "http://127.0.0.1:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        );
    }
}
