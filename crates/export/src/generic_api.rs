//! LiteLLM's `generic_api` callback: each batch POSTed as one JSON array of records (its default
//! `json_array` format) to `GENERIC_LOGGER_ENDPOINT`, with `Content-Type: application/json` and
//! the headers of `GENERIC_LOGGER_HEADERS` (`k1=v1,k2=v2`, as LiteLLM splits them); or, for a
//! webhook `callback_settings` names, to its `endpoint` with its `headers`, in its `log_format`
//! (a JSON array, one object a line, or one POST per record).

use crate::collector::{http_url, Collector};
use crate::queue::Sink;
use crate::record::LogRecord;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// How a batch is sent: LiteLLM's `log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One POST of a JSON array of the batch's records (LiteLLM's default).
    #[default]
    JsonArray,
    /// One POST of the records, one JSON object a line.
    Ndjson,
    /// One POST per record, each a JSON object.
    Single,
}

impl LogFormat {
    /// LiteLLM's names: `json_array`, `ndjson`, `single`.
    pub fn parse(name: &str) -> Option<LogFormat> {
        match name.trim() {
            "json_array" => Some(LogFormat::JsonArray),
            "ndjson" => Some(LogFormat::Ndjson),
            "single" => Some(LogFormat::Single),
            _ => None,
        }
    }
}

/// The webhook a batch goes to.
#[derive(Debug)]
pub struct GenericApi {
    collector: Collector,
    format: LogFormat,
}

impl GenericApi {
    /// `endpoint` and `headers` as LiteLLM reads them from `GENERIC_LOGGER_ENDPOINT` and
    /// `GENERIC_LOGGER_HEADERS`. Errors say which variable to fix, never a header's value.
    pub fn new(endpoint: &str, headers: Option<&str>) -> Result<GenericApi, String> {
        let (endpoint, headers) = settings(endpoint, headers)?;
        Ok(GenericApi { collector: Collector::new(endpoint, headers), format: LogFormat::JsonArray })
    }

    /// A webhook `callback_settings` names: its `endpoint`, `headers` (name, value) and
    /// `log_format`; errors name `at` (the entry's path), never a header's value.
    pub fn named(at: &str, endpoint: &str, headers: &[(&str, &str)], format: LogFormat) -> Result<GenericApi, String> {
        let (endpoint, mut headers) = named_settings(at, endpoint, headers)?;
        if format == LogFormat::Ndjson {
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        }
        Ok(GenericApi { collector: Collector::new(endpoint, headers), format })
    }
}

/// Whether [`GenericApi::named`] would take these settings (its error if not).
pub fn check_named(at: &str, endpoint: &str, headers: &[(&str, &str)]) -> Result<(), String> {
    named_settings(at, endpoint, headers).map(drop)
}

fn named_settings(at: &str, endpoint: &str, headers: &[(&str, &str)]) -> Result<(http::Uri, http::HeaderMap), String> {
    let uri = http_url(&format!("{at}.endpoint"), endpoint)?;
    let mut map = http::HeaderMap::new();
    map.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{at}.headers: \"{name}\" is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("{at}.headers.{name}: not a valid header value (value not shown)"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok((uri, map))
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
        let encode = |e: serde_json::Error| format!("cannot encode the records: {e}");
        match self.format {
            LogFormat::JsonArray => {
                let body = serde_json::to_vec(batch).map_err(encode)?;
                self.collector.post(Bytes::from(body)).await
            }
            LogFormat::Ndjson => {
                let mut body = Vec::new();
                for record in batch {
                    serde_json::to_writer(&mut body, record).map_err(encode)?;
                    body.push(b'\n');
                }
                self.collector.post(Bytes::from(body)).await
            }
            LogFormat::Single => {
                // Each record is its own delivery; the first failure is the batch's.
                let mut failed = None;
                for record in batch {
                    let body = serde_json::to_vec(record).map_err(encode)?;
                    if let Err(e) = self.collector.post(Bytes::from(body)).await {
                        failed.get_or_insert(e);
                    }
                }
                failed.map_or(Ok(()), Err)
            }
        }
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
    fn named_webhooks_name_their_entry_and_hide_values() {
        let at = "callback_settings.hook";
        assert!(GenericApi::named(
            at,
            "http://127.0.0.1:9/x",
            &[("Authorization", "Bearer s3cret")],
            LogFormat::Single
        )
        .is_ok());
        let e = check_named(at, "ftp://x", &[]).unwrap_err();
        assert!(e.contains("callback_settings.hook.endpoint"), "{e}");
        let e = check_named(at, "http://h/x", &[("x-key", "bad\nvalue s3cret")]).unwrap_err();
        assert!(e.contains("callback_settings.hook.headers.x-key") && !e.contains("s3cret"), "{e}");
        assert_eq!(LogFormat::parse("ndjson"), Some(LogFormat::Ndjson));
        assert_eq!(LogFormat::parse("xml"), None);
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
