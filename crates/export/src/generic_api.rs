//! LiteLLM's `generic_api` callback: each batch POSTed as one JSON array of records (its default
//! `json_array` format) to `GENERIC_LOGGER_ENDPOINT`, with `Content-Type: application/json` and
//! the headers of `GENERIC_LOGGER_HEADERS` (`k1=v1,k2=v2`, as LiteLLM splits them).

use crate::collector::{http_url, Collector};
use crate::queue::Sink;
use crate::record::LogRecord;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// The webhook a batch goes to.
#[derive(Debug)]
pub struct GenericApi {
    collector: Collector,
}

impl GenericApi {
    /// `endpoint` and `headers` as LiteLLM reads them from `GENERIC_LOGGER_ENDPOINT` and
    /// `GENERIC_LOGGER_HEADERS`. Errors say which variable to fix, never a header's value.
    pub fn new(endpoint: &str, headers: Option<&str>) -> Result<GenericApi, String> {
        let (endpoint, headers) = settings(endpoint, headers)?;
        Ok(GenericApi { collector: Collector::new(endpoint, headers) })
    }
}

/// Whether [`GenericApi::new`] would take these settings (its error if not), without building a
/// client: for checking a config.
pub fn check(endpoint: &str, headers: Option<&str>) -> Result<(), String> {
    settings(endpoint, headers).map(drop)
}

fn settings(endpoint: &str, headers: Option<&str>) -> Result<(http::Uri, http::HeaderMap), String> {
    let uri = http_url("GENERIC_LOGGER_ENDPOINT", endpoint)?;
    let mut map = http::HeaderMap::new();
    map.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in parse_headers(headers.unwrap_or("")) {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            format!(
                "GENERIC_LOGGER_HEADERS: \"{name}\" is not a valid header name; write it as name=value,name2=value2"
            )
        })?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            format!("GENERIC_LOGGER_HEADERS: the value of {name} is not a valid header value (value not shown)")
        })?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok((uri, map))
}

impl Sink for GenericApi {
    async fn send(&self, batch: &[Arc<LogRecord>]) -> Result<(), String> {
        let body = serde_json::to_vec(batch).map_err(|e| format!("cannot encode the records: {e}"))?;
        self.collector.post(Bytes::from(body)).await
    }
}

/// `k1=v1,k2=v2` into pairs, trimmed, as LiteLLM's `_get_headers` reads `GENERIC_LOGGER_HEADERS`:
/// an item without `=` is skipped, and a value keeps any `=` after the first.
pub fn parse_headers(text: &str) -> Vec<(&str, &str)> {
    text.split(',').filter_map(|item| item.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_litellm_reads_them() {
        assert_eq!(
            parse_headers(" Authorization=Bearer a=b , x-team=blue,junk,"),
            [("Authorization", "Bearer a=b"), ("x-team", "blue")]
        );
        assert!(parse_headers("").is_empty());
    }

    #[test]
    fn bad_settings_name_the_variable_and_hide_values() {
        let e = GenericApi::new("not a url", None).unwrap_err();
        assert!(e.contains("GENERIC_LOGGER_ENDPOINT"), "{e}");
        let e = GenericApi::new("ftp://host/x", None).unwrap_err();
        assert!(e.contains("GENERIC_LOGGER_ENDPOINT"), "{e}");
        let e = GenericApi::new("http://127.0.0.1:9/x", Some("bad name=secret-value")).unwrap_err();
        assert!(e.contains("GENERIC_LOGGER_HEADERS") && !e.contains("secret-value"), "{e}");
        let e = GenericApi::new("http://127.0.0.1:9/x", Some("x-key=secret\nvalue")).unwrap_err();
        assert!(e.contains("x-key") && !e.contains("secret"), "{e}");
        let ok = GenericApi::new("http://127.0.0.1:9/x", Some("x-key=hunter2")).unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }

    /// A batch reaches a real HTTP listener as one JSON array, with the configured headers.
    #[tokio::test]
    async fn posts_a_json_array_with_the_headers() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (head, body) = crate::collector::read_request(&mut conn).await;
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        let sink = GenericApi::new(&url, Some("x-team=blue")).unwrap();
        let batch = vec![Arc::new(crate::record::sample()), Arc::new(crate::record::sample())];
        sink.send(&batch).await.unwrap();
        let (head, body) = server.await.unwrap();
        assert!(head.starts_with("post /ingest"), "{head}");
        assert!(head.contains("x-team: blue") && head.contains("content-type: application/json"), "{head}");
        let records: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(records.as_array().unwrap().len(), 2);
        assert_eq!(records[0]["status"], "success");
    }

    /// Nothing listening: an error, in time, naming no secret.
    #[tokio::test]
    async fn an_unreachable_collector_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let sink = GenericApi::new(&url, Some("authorization=Bearer hunter2")).unwrap();
        let e = sink.send(&[Arc::new(crate::record::sample())]).await.unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
